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

static void
emit_graph (Dot *d, NnModule *m, JsonObject *cfg, guint depth, Ends *ends)
{
  g_autoptr (GHashTable) values = g_hash_table_new_full (g_str_hash,
                                                         g_str_equal, g_free,
                                                         g_free);
  g_autoptr (GHashTable) drawn = g_hash_table_new_full (g_str_hash,
                                                        g_str_equal, g_free,
                                                        NULL);
  JsonArray *nodes = json_object_get_array_member (cfg, "nodes");
  JsonNode *inputs = json_object_get_member (cfg, "inputs");
  const char *output = node_str (cfg, "output");
  GArray *child_ends = g_array_new (FALSE, TRUE, sizeof (Ends));
  g_autoptr (GPtrArray) child_names = g_ptr_array_new_with_free_func (g_free);

  ends->entry = new_id (d, "in");
  point_node (d, depth, ends->entry, NULL);
  if (inputs && JSON_NODE_HOLDS_ARRAY (inputs)) {
    JsonArray *a = json_node_get_array (inputs);
    for (guint i = 0; i < json_array_get_length (a); i++) {
      const char *in = json_array_get_string_element (a, i);
      if (in)
        g_hash_table_insert (values, g_strdup (in), g_strdup (ends->entry));
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
    const char *in_id = NULL, *out_id = NULL;
    if (!name)
      continue;
    if (child) {
      gpointer pos;
      NnModule *cm = nn_module_get_child (m, child);
      if (!cm)
        continue;
      /* A leaf used twice (BasicBlock's relu) is drawn at each call, so
       * the picture keeps no false cycle; a composite is drawn once. */
      if (!g_hash_table_lookup_extended (drawn, child, NULL, &pos)
          || nn_module_n_children (cm) == 0) {
        Ends ce = { 0 };
        emit (d, cm, child, depth, &ce);
        g_array_append_val (child_ends, ce);
        g_ptr_array_add (child_names, g_strdup (child));
        pos = GUINT_TO_POINTER (child_ends->len);
        g_hash_table_replace (drawn, g_strdup (child), pos);
      }
      Ends *ce = &g_array_index (child_ends, Ends, GPOINTER_TO_UINT (pos) - 1);
      in_id = ce->entry;
      out_id = ce->exit;
    } else {
      g_autofree char *id = new_id (d, "op");
      g_autofree char *label = escape (op ? op : name);
      indent (d, depth);
      g_string_append_printf (d->out, "%s [shape=box, style=dashed, "
                              "label=\"%s\"];\n", id, label);
      g_hash_table_insert (values, g_strdup (name), g_strdup (id));
      in_id = out_id = g_hash_table_lookup (values, name);
    }
    JsonNode *args = json_object_get_member (node, "args");
    if (args && JSON_NODE_HOLDS_ARRAY (args)) {
      JsonArray *a = json_node_get_array (args);
      for (guint k = 0; k < json_array_get_length (a); k++) {
        const char *from = json_array_get_string_element (a, k);
        const char *from_id = from ? g_hash_table_lookup (values, from) : NULL;
        if (from_id)
          edge (d, depth, from_id, in_id);
      }
    }
    if (child)
      g_hash_table_insert (values, g_strdup (name), g_strdup (out_id));
  }
  /* Children no node calls are still part of the tree. */
  for (guint i = 0; i < nn_module_n_children (m); i++) {
    const char *cname;
    NnModule *cm = nn_module_child_at (m, i, &cname);
    if (!g_hash_table_contains (drawn, cname)) {
      Ends ce = { 0 };
      emit (d, cm, cname, depth, &ce);
      ends_clear (&ce);
    }
  }
  const char *out_id = output ? g_hash_table_lookup (values, output) : NULL;
  ends->exit = g_strdup (out_id ? out_id : ends->entry);
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
  NnShape shape;
  g_autofree char *in_label = NULL;

  if (rc != NNCTL_CONTINUE)
    goto done;
  model = nnctl_load_structure (g, argv[1], &err);
  if (!model) {
    rc = nnctl_fail ("dot", err);
    goto done;
  }
  if (nn_module_get_input_shape (model, &shape)) {
    g_autofree char *s = nnctl_shape_str (&shape);
    in_label = g_strdup_printf ("input %s", s);
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
