/* nnctl dot MODEL: a Graphviz picture.  Each module with children is a
 * cluster; leaves are boxes.  Edges follow the dataflow: a Graph's nodes
 * (read from its config), a Sequential's order.  Containers without a
 * forward (ModuleList, ModuleDict) are drawn without edges. */
#include "nnctl.h"

#include <string.h>

typedef struct {
  GString *out;
  guint next_id;
} Dot;

typedef struct {
  char *entry; /* node id where the input goes in */
  char *exit;  /* node id the output leaves from */
} Ends;

static void
ends_clear (Ends *e)
{
  g_free (e->entry);
  g_free (e->exit);
}

static char *
escape (const char *s)
{
  GString *r = g_string_new (NULL);
  for (; *s; s++) {
    if (*s == '"' || *s == '\\')
      g_string_append_c (r, '\\');
    if (*s == '\n')
      g_string_append (r, "\\l");
    else
      g_string_append_c (r, *s);
  }
  return g_string_free (r, FALSE);
}

static char *
new_id (Dot *d, const char *prefix)
{
  return g_strdup_printf ("%s%u", prefix, d->next_id++);
}

static void
indent (Dot *d, guint depth)
{
  for (guint i = 0; i < depth + 1; i++)
    g_string_append (d->out, "  ");
}

static void
point_node (Dot *d, guint depth, const char *id, const char *label)
{
  indent (d, depth);
  if (label) {
    g_autofree char *l = escape (label);
    g_string_append_printf (d->out, "%s [shape=ellipse, label=\"%s\"];\n",
                            id, l);
  } else {
    g_string_append_printf (d->out, "%s [shape=point];\n", id);
  }
}

static void
edge (Dot *d, guint depth, const char *from, const char *to)
{
  indent (d, depth);
  g_string_append_printf (d->out, "%s -> %s;\n", from, to);
}

static void emit (Dot *d, NnModule *m, const char *name, guint depth,
                  Ends *ends);

static gboolean
is_dataflow_graph (JsonObject *cfg)
{
  return json_object_has_member (cfg, "nodes")
         && JSON_NODE_HOLDS_ARRAY (json_object_get_member (cfg, "nodes"))
         && json_object_has_member (cfg, "output");
}

static const char *
node_str (JsonObject *o, const char *key)
{
  JsonNode *n = json_object_get_member (o, key);
  return n && JSON_NODE_HOLDS_VALUE (n)
         && json_node_get_value_type (n) == G_TYPE_STRING
         ? json_node_get_string (n) : NULL;
}

/* Calls @func for every value name an argument expression of
 * docs/DESCRIPTORS.md refers to: a bare string, inside lists, tuples,
 * dicts and slices; string, dtype and float constants name nothing. */
static void
expr_refs (JsonNode *n, void (*func) (const char *name, gpointer data),
           gpointer data)
{
  if (!n)
    return;
  if (JSON_NODE_HOLDS_VALUE (n)) {
    if (json_node_get_value_type (n) == G_TYPE_STRING)
      func (json_node_get_string (n), data);
    return;
  }
  if (JSON_NODE_HOLDS_ARRAY (n)) {
    JsonArray *a = json_node_get_array (n);
    for (guint i = 0; i < json_array_get_length (a); i++)
      expr_refs (json_array_get_element (a, i), func, data);
    return;
  }
  if (!JSON_NODE_HOLDS_OBJECT (n))
    return;
  JsonObject *o = json_node_get_object (n);
  if (json_object_has_member (o, "tuple"))
    expr_refs (json_object_get_member (o, "tuple"), func, data);
  else if (json_object_has_member (o, "slice"))
    expr_refs (json_object_get_member (o, "slice"), func, data);
  else if (json_object_has_member (o, "dict")) {
    JsonNode *dn = json_object_get_member (o, "dict");
    if (JSON_NODE_HOLDS_OBJECT (dn)) {
      g_autoptr (GList) vals = json_object_get_values (json_node_get_object (dn));
      for (GList *l = vals; l; l = l->next)
        expr_refs (l->data, func, data);
    }
  }
}

typedef struct {
  Dot *d;
  guint depth;
  GHashTable *values; /* value name -> node id */
  const char *to;     /* node id the edges go to */
} EdgeCtx;

static void
edge_from_ref (const char *name, gpointer data)
{
  EdgeCtx *c = data;
  const char *from_id = g_hash_table_lookup (c->values, name);
  if (from_id)
    edge (c->d, c->depth, from_id, c->to);
}

/* Draws a Graph's dataflow (version 1 or 2 configs): module nodes as the
 * descendants they call, op and attr nodes as dashed boxes, an edge for
 * every value an argument names. */
static void
emit_graph (Dot *d, NnModule *m, JsonObject *cfg, guint depth, Ends *ends)
{
  g_autoptr (GHashTable) values = g_hash_table_new_full (g_str_hash,
                                                         g_str_equal, g_free,
                                                         g_free);
  g_autoptr (GHashTable) drawn = g_hash_table_new_full (g_str_hash,
                                                        g_str_equal, g_free,
                                                        NULL);
  /* First path components of the descendants drawn: a child reached only
   * through "layers.0" is not drawn again as a whole. */
  g_autoptr (GHashTable) touched = g_hash_table_new_full (g_str_hash,
                                                          g_str_equal, g_free,
                                                          NULL);
  JsonArray *nodes = json_object_get_array_member (cfg, "nodes");
  JsonNode *inputs = json_object_get_member (cfg, "inputs");
  GArray *child_ends = g_array_new (FALSE, TRUE, sizeof (Ends));

  ends->entry = new_id (d, "in");
  point_node (d, depth, ends->entry, NULL);
  if (inputs && JSON_NODE_HOLDS_ARRAY (inputs)) {
    JsonArray *a = json_node_get_array (inputs);
    for (guint i = 0; i < json_array_get_length (a); i++) {
      JsonNode *in = json_array_get_element (a, i);
      const char *name = NULL;
      if (JSON_NODE_HOLDS_VALUE (in)
          && json_node_get_value_type (in) == G_TYPE_STRING)
        name = json_node_get_string (in);
      else if (JSON_NODE_HOLDS_OBJECT (in))
        name = node_str (json_node_get_object (in), "name");
      if (name)
        g_hash_table_insert (values, g_strdup (name), g_strdup (ends->entry));
    }
  }
  for (guint i = 0; i < json_array_get_length (nodes); i++) {
    JsonNode *nn = json_array_get_element (nodes, i);
    if (!JSON_NODE_HOLDS_OBJECT (nn))
      continue;
    JsonObject *node = json_node_get_object (nn);
    const char *name = node_str (node, "name");
    const char *child = node_str (node, "module");
    const char *op = node_str (node, "op");
    const char *attr = node_str (node, "attr");
    const char *in_id = NULL, *out_id = NULL;
    g_autofree char *op_id = NULL;
    if (!name)
      continue;
    if (child) {
      gpointer pos;
      NnModule *cm = nn_module_lookup_path (m, child, NULL);
      if (!cm)
        continue;
      g_auto (GStrv) parts = g_strsplit (child, ".", 2);
      g_hash_table_add (touched, g_strdup (parts[0]));
      /* A leaf used twice (BasicBlock's relu) is drawn at each call, so
       * the picture keeps no false cycle; a composite is drawn once. */
      if (!g_hash_table_lookup_extended (drawn, child, NULL, &pos)
          || nn_module_n_children (cm) == 0) {
        Ends ce = { 0 };
        emit (d, cm, child, depth, &ce);
        g_array_append_val (child_ends, ce);
        pos = GUINT_TO_POINTER (child_ends->len);
        g_hash_table_replace (drawn, g_strdup (child), pos);
      }
      Ends *ce = &g_array_index (child_ends, Ends, GPOINTER_TO_UINT (pos) - 1);
      in_id = ce->entry;
      out_id = ce->exit;
    } else {
      g_autofree char *label = escape (op ? op : attr ? attr : name);
      op_id = new_id (d, "op");
      indent (d, depth);
      g_string_append_printf (d->out, "%s [shape=box, style=dashed, "
                              "label=\"%s%s\"];\n", op_id,
                              attr ? "attr " : "", label);
      in_id = out_id = op_id;
    }
    EdgeCtx ec = { d, depth, values, in_id };
    expr_refs (json_object_get_member (node, "args"), edge_from_ref, &ec);
    JsonNode *kw = json_object_get_member (node, "kwargs");
    if (kw && JSON_NODE_HOLDS_OBJECT (kw)) {
      g_autoptr (GList) vals = json_object_get_values (json_node_get_object (kw));
      for (GList *l = vals; l; l = l->next)
        expr_refs (l->data, edge_from_ref, &ec);
    }
    g_hash_table_insert (values, g_strdup (name), g_strdup (out_id));
  }
  /* Children no node calls are still part of the tree. */
  for (guint i = 0; i < nn_module_n_children (m); i++) {
    const char *cname;
    NnModule *cm = nn_module_child_at (m, i, &cname);
    if (!g_hash_table_contains (drawn, cname)
        && !g_hash_table_contains (touched, cname)) {
      Ends ce = { 0 };
      emit (d, cm, cname, depth, &ce);
      ends_clear (&ce);
    }
  }
  /* A structured output (a tuple of values) meets in one point. */
  JsonNode *output = json_object_get_member (cfg, "output");
  const char *out_name = output && JSON_NODE_HOLDS_VALUE (output)
                         && json_node_get_value_type (output) == G_TYPE_STRING
                         ? json_node_get_string (output) : NULL;
  const char *single = out_name ? g_hash_table_lookup (values, out_name) : NULL;
  if (single) {
    ends->exit = g_strdup (single);
  } else if (output) {
    ends->exit = new_id (d, "out");
    point_node (d, depth, ends->exit, NULL);
    EdgeCtx ec = { d, depth, values, ends->exit };
    expr_refs (output, edge_from_ref, &ec);
  } else {
    ends->exit = g_strdup (ends->entry);
  }
  for (guint i = 0; i < child_ends->len; i++)
    ends_clear (&g_array_index (child_ends, Ends, i));
  g_array_unref (child_ends);
}

static void
emit_children (Dot *d, NnModule *m, guint depth, gboolean chain, Ends *ends)
{
  Ends prev = { 0 };
  guint n = nn_module_n_children (m);

  for (guint i = 0; i < n; i++) {
    const char *cname;
    NnModule *cm = nn_module_child_at (m, i, &cname);
    Ends ce = { 0 };
    emit (d, cm, cname, depth, &ce);
    if (chain && prev.exit)
      edge (d, depth, prev.exit, ce.entry);
    if (chain && i == 0)
      ends->entry = g_strdup (ce.entry);
    ends_clear (&prev);
    prev = ce;
  }
  if (chain && n > 0) {
    ends->exit = g_strdup (prev.exit);
  } else {
    ends->entry = new_id (d, "in");
    point_node (d, depth, ends->entry, NULL);
    ends->exit = g_strdup (ends->entry);
  }
  ends_clear (&prev);
}

static void
emit (Dot *d, NnModule *m, const char *name, guint depth, Ends *ends)
{
  const NnLayerType *t = nn_module_get_type (m);
  JsonObject *cfg = nn_module_get_config (m);

  if (nn_module_n_children (m) == 0) {
    g_autofree char *id = new_id (d, "m");
    g_autofree char *text = nn_module_to_string (m);
    g_autofree char *label = *name ? g_strdup_printf ("%s: %s", name, text)
                                   : g_strdup (text);
    g_autofree char *esc = escape (label);
    indent (d, depth);
    g_string_append_printf (d->out, "%s [label=\"%s\"];\n", id, esc);
    ends->entry = g_strdup (id);
    ends->exit = g_strdup (id);
    return;
  }

  g_autofree char *cid = new_id (d, "cluster_");
  g_autofree char *title = *name ? g_strdup_printf ("%s: %s", name,
                                                    nn_module_get_class_name (m))
                                 : g_strdup (nn_module_get_class_name (m));
  g_autofree char *esc = escape (title);
  indent (d, depth);
  g_string_append_printf (d->out, "subgraph %s {\n", cid);
  indent (d, depth + 1);
  g_string_append_printf (d->out, "label=\"%s\"; style=rounded; "
                          "color=gray50;\n", esc);
  if (cfg && is_dataflow_graph (cfg))
    emit_graph (d, m, cfg, depth + 1, ends);
  else
    /* Sequential-like: indexable with a forward runs children in order. */
    emit_children (d, m, depth + 1,
                   t->forward && (t->flags & NN_LAYER_INDEXABLE), ends);
  indent (d, depth);
  g_string_append (d->out, "}\n");
}

int
nnctl_cmd_dot (NnctlGlobal *g, const NnctlCommand *cmd, int argc,
               char **argv)
{
  char *out = NULL;
  GError *err = NULL;
  const GOptionEntry entries[] = {
    { "output", 'o', 0, G_OPTION_ARG_FILENAME, &out,
      "Write to FILE (atomically) instead of stdout", "FILE" },
    { NULL }
  };
  int rc = nnctl_parse (g, cmd, entries, 0, &argc, &argv,
                        1, 1);
  g_autoptr (NnModule) model = NULL;
  Dot d = { 0 };
  Ends ends = { 0 };
  g_autofree char *in_label = NULL;

  if (rc != NNCTL_CONTINUE)
    goto done;
  model = nnctl_load_structure (g, argv[1], &err);
  if (!model) {
    rc = nnctl_fail ("dot", err);
    goto done;
  }
  NnValue *spec = nn_module_get_input_spec (model);
  if (spec && nn_value_n_items (spec) > 0) {
    /* One line per recorded input: "input [1, 3, 224, 224]". */
    GString *l = g_string_new (NULL);
    for (guint i = 0; i < nn_value_n_items (spec); i++) {
      NnTensor *t = nn_value_get_tensor (nn_value_item (spec, i));
      g_autofree char *s = t ? nnctl_shape_str (&t->shape) : g_strdup ("?");
      g_string_append_printf (l, "%s%s %s%s%s", i ? "\n" : "",
                              nn_value_dict_key (spec, i), s,
                              t && t->dtype != NN_DTYPE_F32 ? " " : "",
                              t && t->dtype != NN_DTYPE_F32
                                ? nn_dtype_name (t->dtype) : "");
    }
    in_label = g_string_free (l, FALSE);
  } else {
    in_label = g_strdup ("input");
  }
  d.out = g_string_new ("digraph nnkit {\n"
                        "  rankdir=TB;\n"
                        "  node [shape=box, fontname=\"Helvetica\", "
                        "fontsize=10];\n"
                        "  graph [fontname=\"Helvetica\", fontsize=11];\n");
  point_node (&d, 0, "input", in_label);
  point_node (&d, 0, "output", "output");
  emit (&d, model, "", 0, &ends);
  edge (&d, 0, "input", ends.entry);
  edge (&d, 0, ends.exit, "output");
  g_string_append (d.out, "}\n");
  ends_clear (&ends);

  if (out) {
    /* g_file_set_contents writes a temp file and renames it. */
    if (!g_file_set_contents (out, d.out->str, d.out->len, &err)) {
      rc = nnctl_error ("dot", "%s: %s", out, err->message);
      g_clear_error (&err);
      goto done;
    }
    nnctl_info (g, "wrote %s (render: dot -Tsvg %s -o picture.svg)\n", out,
                out);
  } else {
    fputs (d.out->str, stdout);
  }
  rc = NNCTL_EXIT_OK;
done:
  if (d.out)
    g_string_free (d.out, TRUE);
  g_free (out);
  return rc;
}
