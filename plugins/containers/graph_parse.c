/* Graph config parsing: validates the inputs, nodes and output once, at
 * create time, creates each op node's functional instance through the
 * registry, and plans when each value can be freed. */
#include "graph.h"

#include <string.h>

static void
graph_node_clear (NnGraphNode *node)
{
  g_free (node->name);
  g_free (node->target);
  nn_graph_expr_clear (&node->args);
  nn_graph_expr_clear (&node->kwargs);
  g_free (node->release);
  if (node->fn != NULL)
    nn_module_unref (node->fn);
}

void
nn_graph_free (NnGraph *g)
{
  if (g == NULL)
    return;
  for (guint i = 0; i < g->n_nodes; i++)
    graph_node_clear (&g->nodes[i]);
  g_free (g->nodes);
  for (guint i = 0; i < g->n_inputs; i++)
    {
      g_free ((char *) g->inputs[i].name);
      if (g->defaults[i] != NULL)
        nn_value_unref (g->defaults[i]);
    }
  g_free (g->inputs);
  g_free (g->defaults);
  nn_graph_expr_clear (&g->output);
  g_free (g->release_unread);
  g_free (g);
}

static const char *
json_kind (JsonNode *n)
{
  if (n == NULL || JSON_NODE_HOLDS_NULL (n))
    return "null";
  if (JSON_NODE_HOLDS_OBJECT (n))
    return "an object";
  if (JSON_NODE_HOLDS_ARRAY (n))
    return "an array";
  GType t = json_node_get_value_type (n);
  if (t == G_TYPE_STRING)
    return "a string";
  if (t == G_TYPE_BOOLEAN)
    return "a boolean";
  return "a number";
}

static gboolean
node_is_string (JsonNode *n)
{
  return n != NULL && JSON_NODE_HOLDS_VALUE (n)
         && json_node_get_value_type (n) == G_TYPE_STRING;
}

static gboolean
invalid (GError **error, const char *fmt, ...) G_GNUC_PRINTF (2, 3);

static gboolean
invalid (GError **error, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  char *msg = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  g_set_error_literal (error, NN_DESCRIPTOR_ERROR,
                       NN_DESCRIPTOR_ERROR_INVALID, msg);
  g_free (msg);
  return FALSE;
}

static gboolean
scope_add (NnGraphScope *scope, const char *name, guint index,
           const char *what, GError **error)
{
  if (g_hash_table_contains (scope->index, name))
    {
      g_set_error (error, NN_DESCRIPTOR_ERROR,
                   NN_DESCRIPTOR_ERROR_DUPLICATE_NAME,
                   "%s: the name '%s' is already %s", what, name,
                   GPOINTER_TO_UINT (g_hash_table_lookup (scope->index, name))
                   <= index ? "taken by an earlier input or node" : "taken");
      return FALSE;
    }
  g_hash_table_insert (scope->index, (gpointer) name,
                       GUINT_TO_POINTER (index + 1));
  g_ptr_array_add (scope->names, (gpointer) name);
  return TRUE;
}

/* --- inputs ------------------------------------------------------------ */

static gboolean
graph_parse_inputs (NnGraph *g, JsonNode *inputs, NnGraphScope *scope,
                    GError **error)
{
  if (inputs == NULL || !JSON_NODE_HOLDS_ARRAY (inputs))
    return invalid (error, "'inputs' must be an array of input names or "
                    "{\"name\": N, \"default\": V} objects, found %s",
                    json_kind (inputs));
  JsonArray *a = json_node_get_array (inputs);
  g->n_inputs = json_array_get_length (a);
  g->inputs = g_new0 (NnArgSpec, MAX (g->n_inputs, 1));
  g->defaults = g_new0 (NnValue *, MAX (g->n_inputs, 1));
  gboolean seen_default = FALSE;
  for (guint i = 0; i < g->n_inputs; i++)
    {
      JsonNode *e = json_array_get_element (a, i);
      NnArgSpec *spec = &g->inputs[i];
      spec->kinds = NN_ARG_ANY;
      spec->dtypes = NN_DTYPES_ALL;
      const char *name = NULL;
      if (node_is_string (e))
        name = json_node_get_string (e);
      else if (JSON_NODE_HOLDS_OBJECT (e))
        {
          JsonObject *o = json_node_get_object (e);
          JsonNode *nn = json_object_get_member (o, "name");
          GList *members = json_object_get_members (o);
          gboolean extra = FALSE;
          for (GList *l = members; l; l = l->next)
            extra |= strcmp (l->data, "name") != 0
                     && strcmp (l->data, "default") != 0;
          g_list_free (members);
          if (extra || !node_is_string (nn)
              || !json_object_has_member (o, "default"))
            return invalid (error, "inputs[%u] must be {\"name\": N, "
                            "\"default\": V} and nothing else", i);
          name = json_node_get_string (nn);
          NnGraphScope empty = { scope->index, scope->names };
          NnGraphExpr def;
          char *where = g_strdup_printf ("inputs[%u] default", i);
          /* A default is a constant: it cannot name other values. */
          GHashTable *none = g_hash_table_new (g_str_hash, g_str_equal);
          empty.index = none;
          gboolean ok = nn_graph_expr_parse (&def,
                                             json_object_get_member (o, "default"),
                                             &empty, where, error);
          g_hash_table_unref (none);
          g_free (where);
          if (!ok)
            {
              nn_graph_expr_clear (&def);
              return FALSE;
            }
          g->defaults[i] = nn_graph_expr_eval (&def, NULL);
          nn_graph_expr_clear (&def);
          spec->flags = NN_ARG_OPTIONAL;
          seen_default = TRUE;
        }
      else
        return invalid (error, "inputs[%u] must be a name or {\"name\": N, "
                        "\"default\": V}, found %s", i, json_kind (e));
      if (name[0] == '\0')
        return invalid (error, "inputs[%u]: the input name is empty", i);
      if (seen_default && !(spec->flags & NN_ARG_OPTIONAL))
        return invalid (error, "inputs[%u] '%s': a required input follows "
                        "one with a default", i, name);
      spec->name = g_strdup (name);
      char *what = g_strdup_printf ("inputs[%u]", i);
      gboolean ok = scope_add (scope, spec->name, i, what, error);
      g_free (what);
      if (!ok)
        return FALSE;
    }
  return TRUE;
}

/* --- nodes ------------------------------------------------------------- */

/* A registry type used as a function: an instance that is not a child, so
 * it has no name in named_modules, no parameters in the state_dict and no
 * hooks, like F.relu.  Container types need children and are refused. */
static gboolean
graph_make_op (NnModule *self, NnGraphNode *node, JsonNode *config,
               GError **error)
{
  NnRegistry *reg = nn_module_get_registry (self);
  if (reg == NULL)
    return invalid (error, "node '%s': op '%s' needs the registry, which is "
                    "gone", node->name, node->target);
  GError *lookup_error = NULL;
  const NnLayerType *type = nn_registry_lookup_type (reg, node->target,
                                                     &lookup_error);
  if (type == NULL)
    {
      g_set_error (error, NN_PLUGIN_ERROR, NN_PLUGIN_ERROR_UNKNOWN_TYPE,
                   "node '%s': unknown op '%s': %s", node->name, node->target,
                   lookup_error->message);
      g_error_free (lookup_error);
      return FALSE;
    }
  if (type->flags & NN_LAYER_CONTAINER)
    return invalid (error, "node '%s': op '%s' is a container type, which "
                    "cannot be used as a function", node->name, node->target);
  if (config != NULL && !JSON_NODE_HOLDS_OBJECT (config))
    return invalid (error, "node '%s': 'config' must be an object, found %s",
                    node->name, json_kind (config));
  char *path = g_strdup_printf ("node '%s'", node->name);
  node->fn = nn_module_new_from_type (reg, node->target,
                                      config ? json_node_get_object (config)
                                             : NULL,
                                      path, error);
  g_free (path);
  if (node->fn == NULL)
    return FALSE;
  /* Its tensors would be zeros that no state_dict can ever fill. */
  if (nn_module_n_parameters (node->fn) + nn_module_n_buffers (node->fn) > 0)
    return invalid (error, "node '%s': op '%s' holds parameters or buffers, "
                    "so it cannot be used as a function; make it a child "
                    "and use \"module\"", node->name, node->target);
  return TRUE;
}

static const char *const node_fields[] = { "name", "module", "op", "attr",
                                           "args", "kwargs", "config", NULL };

static gboolean
graph_parse_call (NnGraphNode *node, JsonObject *obj,
                  const NnGraphScope *scope, GError **error)
{
  JsonNode *args = json_object_get_member (obj, "args");
  JsonNode *kwargs = json_object_get_member (obj, "kwargs");
  char *where = g_strdup_printf ("node '%s' args", node->name);
  gboolean ok;

  if (args != NULL && !JSON_NODE_HOLDS_ARRAY (args))
    ok = invalid (error, "node '%s': 'args' must be an array of argument "
                  "expressions, found %s", node->name, json_kind (args));
  else if (args == NULL)
    {
      node->args.kind = NN_GRAPH_EXPR_TUPLE;
      ok = TRUE;
    }
  else
    {
      /* Parsed as a list, then marked a tuple: the call's positionals. */
      ok = nn_graph_expr_parse (&node->args, args, scope, where, error);
      node->args.kind = NN_GRAPH_EXPR_TUPLE;
    }
  g_free (where);
  if (!ok)
    return FALSE;

  if (kwargs == NULL || JSON_NODE_HOLDS_NULL (kwargs))
    {
      node->kwargs.kind = NN_GRAPH_EXPR_DICT;
      return TRUE;
    }
  if (!JSON_NODE_HOLDS_OBJECT (kwargs))
    return invalid (error, "node '%s': 'kwargs' must be an object, found %s",
                    node->name, json_kind (kwargs));
  /* {"dict": kwargs} parses the object as a dict expression. */
  JsonObject *wrap = json_object_new ();
  json_object_set_member (wrap, "dict", json_node_copy (kwargs));
  JsonNode *wn = json_node_new (JSON_NODE_OBJECT);
  json_node_take_object (wn, wrap);
  where = g_strdup_printf ("node '%s' kwargs", node->name);
  ok = nn_graph_expr_parse (&node->kwargs, wn, scope, where, error);
  g_free (where);
  json_node_unref (wn);
  return ok;
}

static gboolean
graph_parse_node (NnModule *self, NnGraph *g, guint idx, JsonNode *jn,
                  NnGraphScope *scope, GError **error)
{
  NnGraphNode *node = &g->nodes[idx];

  if (!JSON_NODE_HOLDS_OBJECT (jn))
    return invalid (error, "nodes[%u] must be an object, found %s", idx,
                    json_kind (jn));
  JsonObject *obj = json_node_get_object (jn);
  JsonNode *name = json_object_get_member (obj, "name");
  if (!node_is_string (name) || json_node_get_string (name)[0] == '\0')
    return invalid (error, "nodes[%u] needs a non-empty string 'name', "
                    "found %s", idx, json_kind (name));
  node->name = g_strdup (json_node_get_string (name));

  GList *members = json_object_get_members (obj);
  for (GList *l = members; l != NULL; l = l->next)
    if (!g_strv_contains (node_fields, l->data))
      {
        g_set_error (error, NN_DESCRIPTOR_ERROR,
                     NN_DESCRIPTOR_ERROR_UNKNOWN_KEY,
                     "node '%s': unknown field '%s' (expected name, module, "
                     "op or attr, args, kwargs, config)", node->name,
                     (const char *) l->data);
        g_list_free (members);
        return FALSE;
      }
  g_list_free (members);

  const char *kinds[] = { "module", "op", "attr" };
  JsonNode *target = NULL;
  guint n_targets = 0;
  for (guint k = 0; k < G_N_ELEMENTS (kinds); k++)
    if (json_object_has_member (obj, kinds[k]))
      {
        target = json_object_get_member (obj, kinds[k]);
        node->kind = (NnGraphNodeKind) k;
        n_targets++;
      }
  if (n_targets != 1)
    return invalid (error, "node '%s': give exactly one of \"module\" (a "
                    "descendant's path), \"op\" (a functional op) and "
                    "\"attr\" (a tensor), found %u", node->name, n_targets);
  if (!node_is_string (target) || !*json_node_get_string (target))
    return invalid (error, "node '%s': \"%s\" must be a non-empty string, "
                    "found %s", node->name, kinds[node->kind],
                    json_kind (target));
  node->target = g_strdup (json_node_get_string (target));

  JsonNode *config = json_object_get_member (obj, "config");
  if (config != NULL && node->kind != NN_GRAPH_NODE_OP)
    return invalid (error, "node '%s': only an op node takes a 'config' (a "
                    "module's settings are in its own config)", node->name);
  if (node->kind == NN_GRAPH_NODE_ATTR
      && (json_object_has_member (obj, "args")
          || json_object_has_member (obj, "kwargs")))
    return invalid (error, "node '%s': an attr node takes no args or kwargs",
                    node->name);

  if (!graph_parse_call (node, obj, scope, error))
    return FALSE;
  if (node->kind == NN_GRAPH_NODE_OP
      && !graph_make_op (self, node, config, error))
    return FALSE;

  char *what = g_strdup_printf ("nodes[%u]", idx);
  gboolean ok = scope_add (scope, node->name, g->n_inputs + idx, what, error);
  g_free (what);
  return ok;
}

/* --- liveness ---------------------------------------------------------- */

typedef struct {
  gint *last;
  gint reader;
} LastRead;

static void
mark_read (guint ref, gpointer data)
{
  LastRead *lr = data;
  lr->last[ref] = lr->reader;
}

/* For each value, the node after which nothing reads it; values the
 * output reads are never released, unread inputs are released at once. */
static void
graph_plan_releases (NnGraph *g)
{
  guint n_values = g->n_inputs + g->n_nodes;
  LastRead lr = { g_new (gint, MAX (n_values, 1)), 0 };

  for (guint v = 0; v < n_values; v++)
    lr.last[v] = v < g->n_inputs ? -1 : (gint) (v - g->n_inputs);
  for (guint i = 0; i < g->n_nodes; i++)
    {
      lr.reader = (gint) i;
      nn_graph_expr_refs (&g->nodes[i].args, mark_read, &lr);
      nn_graph_expr_refs (&g->nodes[i].kwargs, mark_read, &lr);
    }
  lr.reader = G_MAXINT;
  nn_graph_expr_refs (&g->output, mark_read, &lr);

  g->release_unread = g_new (guint, MAX (g->n_inputs, 1));
  for (guint v = 0; v < g->n_inputs; v++)
    if (lr.last[v] == -1)
      g->release_unread[g->n_release_unread++] = v;
  for (guint i = 0; i < g->n_nodes; i++)
    {
      NnGraphNode *node = &g->nodes[i];
      node->release = g_new (guint, MAX (n_values, 1));
      for (guint v = 0; v < n_values; v++)
        if (lr.last[v] == (gint) i)
          node->release[node->n_release++] = v;
    }
  g_free (lr.last);
}

static gboolean
graph_parse (NnModule *self, NnGraph *g, JsonObject *config, GError **error)
{
  NnGraphScope scope = { g_hash_table_new (g_str_hash, g_str_equal),
                         g_ptr_array_new () };
  gboolean ok = graph_parse_inputs (g, json_object_get_member (config,
                                                               "inputs"),
                                    &scope, error);
  JsonNode *nodes = json_object_get_member (config, "nodes");
  if (ok && (nodes == NULL || !JSON_NODE_HOLDS_ARRAY (nodes)))
    ok = invalid (error, "'nodes' must be an array of node objects, found %s",
                  json_kind (nodes));
  if (ok)
    {
      JsonArray *arr = json_node_get_array (nodes);
      g->n_nodes = json_array_get_length (arr);
      g->nodes = g_new0 (NnGraphNode, MAX (g->n_nodes, 1));
      for (guint i = 0; ok && i < g->n_nodes; i++)
        ok = graph_parse_node (self, g, i, json_array_get_element (arr, i),
                               &scope, error);
    }
  JsonNode *output = json_object_get_member (config, "output");
  if (ok && output == NULL)
    ok = invalid (error, "'output' is missing: give the expression the "
                  "graph returns");
  if (ok)
    ok = nn_graph_expr_parse (&g->output, output, &scope, "output", error);
  if (ok)
    graph_plan_releases (g);
  g_hash_table_unref (scope.index);
  g_ptr_array_unref (scope.names);
  return ok;
}

NnGraph *
nn_graph_parse (NnModule *self, JsonObject *config, GError **error)
{
  NnGraph *g = g_new0 (NnGraph, 1);

  if (!graph_parse (self, g, config, error))
    {
      nn_graph_free (g);
      return NULL;
    }
  return g;
}
