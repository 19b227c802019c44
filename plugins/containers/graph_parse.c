/* Graph config parsing: validates the node list once, at create time
 * (names, args, targets, kwargs, functional layer instances), and plans
 * when each value can be freed. */
#include "graph.h"

static void
graph_node_clear (NnGraphNode *node)
{
  g_free (node->name);
  g_free (node->target);
  g_free (node->args);
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
  g_free (g->input);
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

/* --- parsing ------------------------------------------------------------- */

static gboolean
graph_parse_input (NnGraph *g, JsonNode *inputs, GError **error)
{
  if (inputs == NULL || !JSON_NODE_HOLDS_ARRAY (inputs)
      || json_array_get_length (json_node_get_array (inputs)) != 1
      || !node_is_string (json_array_get_element (json_node_get_array (inputs), 0)))
    {
      g_set_error (error, NN_DESCRIPTOR_ERROR, NN_DESCRIPTOR_ERROR_INVALID,
                   "'inputs' must be an array of exactly one string "
                   "(a module takes one tensor), found %s%s",
                   json_kind (inputs),
                   inputs != NULL && JSON_NODE_HOLDS_ARRAY (inputs)
                     ? " of another length or kind" : "");
      return FALSE;
    }
  const char *name = json_array_get_string_element (json_node_get_array (inputs), 0);
  if (name[0] == '\0')
    {
      g_set_error (error, NN_DESCRIPTOR_ERROR, NN_DESCRIPTOR_ERROR_INVALID,
                   "the input name in 'inputs' is empty");
      return FALSE;
    }
  g->input = g_strdup (name);
  return TRUE;
}

/* Names of every value defined so far, for "known values" in errors. */
static char *
graph_known_values (const NnGraph *g, guint n_defined)
{
  GString *s = g_string_new (NULL);
  g_string_append_printf (s, "'%s'", g->input);
  for (guint i = 0; i < n_defined; i++)
    g_string_append_printf (s, ", '%s'", g->nodes[i].name);
  return g_string_free (s, FALSE);
}

static gboolean
graph_parse_args (NnGraph *g, guint idx, JsonObject *obj, GHashTable *values,
                  GError **error)
{
  NnGraphNode *node = &g->nodes[idx];
  JsonNode *args = json_object_get_member (obj, "args");

  if (args == NULL || !JSON_NODE_HOLDS_ARRAY (args))
    {
      g_set_error (error, NN_DESCRIPTOR_ERROR, NN_DESCRIPTOR_ERROR_INVALID,
                   "nodes[%u] '%s': 'args' must be an array of value "
                   "names, found %s", idx, node->name, json_kind (args));
      return FALSE;
    }
  JsonArray *arr = json_node_get_array (args);
  node->n_args = json_array_get_length (arr);
  node->args = g_new0 (guint, MAX (node->n_args, 1));
  for (guint a = 0; a < node->n_args; a++)
    {
      JsonNode *el = json_array_get_element (arr, a);
      gpointer v;
      if (!node_is_string (el))
        {
          g_set_error (error, NN_DESCRIPTOR_ERROR, NN_DESCRIPTOR_ERROR_INVALID,
                       "nodes[%u] '%s': args[%u] must be a value name, "
                       "found %s", idx, node->name, a, json_kind (el));
          return FALSE;
        }
      const char *name = json_node_get_string (el);
      if (!g_hash_table_lookup_extended (values, name, NULL, &v))
        {
          char *known = graph_known_values (g, idx);
          g_set_error (error, NN_DESCRIPTOR_ERROR, NN_DESCRIPTOR_ERROR_INVALID,
                       "node '%s': arg '%s' is neither the input nor "
                       "an earlier node (defined so far: %s)", node->name,
                       name, known);
          g_free (known);
          return FALSE;
        }
      node->args[a] = GPOINTER_TO_UINT (v);
    }
  g->max_args = MAX (g->max_args, node->n_args);
  return TRUE;
}

static gboolean
graph_check_arity (const NnGraphNode *node, guint min, guint max,
                   GError **error)
{
  if (node->n_args >= min && (max == 0 || node->n_args <= max))
    return TRUE;
  if (max == 0)
    g_set_error (error, NN_DESCRIPTOR_ERROR, NN_DESCRIPTOR_ERROR_INVALID,
                 "node '%s': op '%s' takes at least %u args, found %u",
                 node->name, node->target, min, node->n_args);
  else if (min == max)
    g_set_error (error, NN_DESCRIPTOR_ERROR, NN_DESCRIPTOR_ERROR_INVALID,
                 "node '%s': %s '%s' takes %u arg%s, found %u",
                 node->name, node->kind == NN_GRAPH_NODE_MODULE ? "module"
                                                                : "op",
                 node->target, min, min == 1 ? "" : "s", node->n_args);
  else
    g_set_error (error, NN_DESCRIPTOR_ERROR, NN_DESCRIPTOR_ERROR_INVALID,
                 "node '%s': op '%s' takes %u to %u args, found %u",
                 node->name, node->target, min, max, node->n_args);
  return FALSE;
}

/* A layer type used as a function: an instance that is not a child, so it
 * has no name in named_modules, no parameters in the state_dict and no
 * hooks, like F.relu.  Container types need children and are refused. */
static gboolean
graph_make_functional (NnModule *self, NnGraphNode *node, JsonObject *kwargs,
                       GError **error)
{
  NnRegistry *reg = nn_module_get_registry (self);
  const NnGraphAlias *alias = nn_graph_alias_lookup (node->target);
  const char *type_name = alias != NULL ? alias->type_name : node->target;
  GError *lookup_error = NULL;

  if (reg == NULL)
    {
      g_set_error (error, NN_PLUGIN_ERROR, NN_PLUGIN_ERROR_UNKNOWN_TYPE,
                   "node '%s': op '%s' needs a layer type, but the "
                   "registry is gone", node->name, node->target);
      return FALSE;
    }
  const NnLayerType *type = nn_registry_lookup_type (reg, type_name,
                                                     &lookup_error);
  if (type == NULL)
    {
      char *known = nn_graph_known_ops ();
      if (alias != NULL)
        g_set_error (error, NN_PLUGIN_ERROR, NN_PLUGIN_ERROR_UNKNOWN_TYPE,
                     "node '%s': op '%s' runs layer type '%s', which "
                     "is not available: %s", node->name, node->target,
                     type_name, lookup_error->message);
      else
        g_set_error (error, NN_PLUGIN_ERROR, NN_PLUGIN_ERROR_UNKNOWN_TYPE,
                     "node '%s': unknown op '%s': not a built-in op "
                     "(%s) nor a layer type: %s", node->name, node->target,
                     known, lookup_error->message);
      g_free (known);
      g_error_free (lookup_error);
      return FALSE;
    }
  if (type->flags & NN_LAYER_CONTAINER)
    {
      g_set_error (error, NN_DESCRIPTOR_ERROR, NN_DESCRIPTOR_ERROR_INVALID,
                   "node '%s': op '%s' is a container type, which "
                   "cannot be used as a function", node->name, node->target);
      return FALSE;
    }

  JsonObject *config = NULL;
  if (alias != NULL)
    {
      config = nn_graph_alias_config (alias, node, kwargs, error);
      if (config == NULL)
        return FALSE;
    }
  else if (kwargs != NULL)
    config = json_object_ref (kwargs);

  char *path = g_strdup_printf ("node '%s'", node->name);
  node->fn = nn_module_new_from_type (reg, type_name, config, path, error);
  g_free (path);
  if (config != NULL)
    json_object_unref (config);
  if (node->fn == NULL)
    return FALSE;
  /* Its tensors would be zeros that no state_dict can ever fill. */
  if (nn_module_n_parameters (node->fn) + nn_module_n_buffers (node->fn) > 0)
    {
      g_set_error (error, NN_DESCRIPTOR_ERROR, NN_DESCRIPTOR_ERROR_INVALID,
                   "node '%s': op '%s' holds parameters or buffers, so it "
                   "cannot be used as a function; make it a child and use "
                   "\"module\"", node->name, node->target);
      return FALSE;
    }
  return graph_check_arity (node, 1, 1, error);
}

static const char *const node_fields[] = { "name", "module", "op", "args",
                                           "kwargs", NULL };

static gboolean
graph_parse_target (NnModule *self, NnGraphNode *node, guint idx,
                    JsonObject *obj, GError **error)
{
  JsonNode *module = json_object_get_member (obj, "module");
  JsonNode *op = json_object_get_member (obj, "op");
  JsonNode *kw = json_object_get_member (obj, "kwargs");
  JsonObject *kwargs = NULL;

  if ((module == NULL) == (op == NULL))
    {
      g_set_error (error, NN_DESCRIPTOR_ERROR, NN_DESCRIPTOR_ERROR_INVALID,
                   "node '%s': give exactly one of \"module\" (a child "
                   "name) and \"op\" (a functional op), found %s", node->name,
                   module == NULL ? "neither" : "both");
      return FALSE;
    }
  JsonNode *target = module != NULL ? module : op;
  if (!node_is_string (target))
    {
      g_set_error (error, NN_DESCRIPTOR_ERROR, NN_DESCRIPTOR_ERROR_INVALID,
                   "node '%s': \"%s\" must be a string, found %s",
                   node->name, module != NULL ? "module" : "op",
                   json_kind (target));
      return FALSE;
    }
  node->target = g_strdup (json_node_get_string (target));
  if (kw != NULL && !JSON_NODE_HOLDS_NULL (kw))
    {
      if (!JSON_NODE_HOLDS_OBJECT (kw))
        {
          g_set_error (error, NN_DESCRIPTOR_ERROR, NN_DESCRIPTOR_ERROR_INVALID,
                       "node '%s': 'kwargs' must be an object, found %s",
                       node->name, json_kind (kw));
          return FALSE;
        }
      kwargs = json_node_get_object (kw);
    }

  if (module != NULL)
    {
      node->kind = NN_GRAPH_NODE_MODULE;
      if (kwargs != NULL && json_object_get_size (kwargs) > 0)
        {
          g_set_error (error, NN_DESCRIPTOR_ERROR, NN_DESCRIPTOR_ERROR_INVALID,
                       "node '%s': a module node takes no kwargs (the "
                       "child's config holds its settings)", node->name);
          return FALSE;
        }
      return graph_check_arity (node, 1, 1, error);
    }

  node->op = nn_graph_op_lookup (node->target);
  if (node->op != NULL)
    {
      node->kind = NN_GRAPH_NODE_BUILTIN;
      return graph_check_arity (node, node->op->min_args, node->op->max_args,
                                error)
             && nn_graph_op_parse (node->op, node, kwargs, error);
    }
  node->kind = NN_GRAPH_NODE_FUNCTIONAL;
  return graph_make_functional (self, node, kwargs, error);
}

static gboolean
graph_parse_node (NnModule *self, NnGraph *g, guint idx, JsonNode *jn,
                  GHashTable *values, GError **error)
{
  NnGraphNode *node = &g->nodes[idx];

  if (!JSON_NODE_HOLDS_OBJECT (jn))
    {
      g_set_error (error, NN_DESCRIPTOR_ERROR, NN_DESCRIPTOR_ERROR_INVALID,
                   "nodes[%u] must be an object, found %s", idx,
                   json_kind (jn));
      return FALSE;
    }
  JsonObject *obj = json_node_get_object (jn);
  JsonNode *name = json_object_get_member (obj, "name");
  if (!node_is_string (name) || json_node_get_string (name)[0] == '\0')
    {
      g_set_error (error, NN_DESCRIPTOR_ERROR, NN_DESCRIPTOR_ERROR_INVALID,
                   "nodes[%u] needs a non-empty string 'name', found %s",
                   idx, json_kind (name));
      return FALSE;
    }
  node->name = g_strdup (json_node_get_string (name));

  GList *members = json_object_get_members (obj);
  for (GList *l = members; l != NULL; l = l->next)
    if (!g_strv_contains (node_fields, l->data))
      {
        g_set_error (error, NN_DESCRIPTOR_ERROR, NN_DESCRIPTOR_ERROR_UNKNOWN_KEY,
                     "node '%s': unknown field '%s' (expected name, "
                     "module or op, args, kwargs)", node->name,
                     (const char *) l->data);
        g_list_free (members);
        return FALSE;
      }
  g_list_free (members);

  if (g_hash_table_contains (values, node->name))
    {
      guint prev = GPOINTER_TO_UINT (g_hash_table_lookup (values, node->name));
      if (prev == 0)
        g_set_error (error, NN_DESCRIPTOR_ERROR,
                     NN_DESCRIPTOR_ERROR_DUPLICATE_NAME,
                     "nodes[%u]: node name '%s' is the graph input's "
                     "name", idx, node->name);
      else
        g_set_error (error, NN_DESCRIPTOR_ERROR,
                     NN_DESCRIPTOR_ERROR_DUPLICATE_NAME,
                     "nodes[%u]: duplicate node name '%s' (first at "
                     "nodes[%u])", idx, node->name, prev - 1);
      return FALSE;
    }

  if (!graph_parse_args (g, idx, obj, values, error)
      || !graph_parse_target (self, node, idx, obj, error))
    return FALSE;
  g_hash_table_insert (values, node->name, GUINT_TO_POINTER (idx + 1));
  return TRUE;
}

/* For each value, the node after which nothing reads it; the output is
 * never released and an unread node result is released at once. */
static void
graph_plan_releases (NnGraph *g)
{
  guint n_values = g->n_nodes + 1;
  gint *last = g_new (gint, n_values);

  /* Every op takes at least one arg, so some node reads the input. */
  last[0] = -1;
  for (guint v = 1; v < n_values; v++)
    last[v] = (gint) v - 1;
  for (guint i = 0; i < g->n_nodes; i++)
    for (guint a = 0; a < g->nodes[i].n_args; a++)
      last[g->nodes[i].args[a]] = (gint) i;
  last[g->output] = G_MAXINT;

  for (guint i = 0; i < g->n_nodes; i++)
    {
      NnGraphNode *node = &g->nodes[i];
      node->release = g_new (guint, n_values);
      for (guint v = 0; v < n_values; v++)
        if (last[v] == (gint) i)
          node->release[node->n_release++] = v;
    }
  g_free (last);
}

static gboolean
graph_parse (NnModule *self, NnGraph *g, GError **error)
{
  JsonNode *nodes = nn_module_config_node (self, "nodes");
  const char *output = nn_module_config_string (self, "output");

  if (!graph_parse_input (g, nn_module_config_node (self, "inputs"), error))
    return FALSE;
  if (nodes == NULL || !JSON_NODE_HOLDS_ARRAY (nodes))
    {
      g_set_error (error, NN_DESCRIPTOR_ERROR, NN_DESCRIPTOR_ERROR_INVALID,
                   "'nodes' must be an array of node objects, found %s",
                   json_kind (nodes));
      return FALSE;
    }

  JsonArray *arr = json_node_get_array (nodes);
  GHashTable *values = g_hash_table_new (g_str_hash, g_str_equal);
  gboolean ok = TRUE;

  g->n_nodes = json_array_get_length (arr);
  g->nodes = g_new0 (NnGraphNode, MAX (g->n_nodes, 1));
  g_hash_table_insert (values, g->input, GUINT_TO_POINTER (0));
  for (guint i = 0; ok && i < g->n_nodes; i++)
    ok = graph_parse_node (self, g, i, json_array_get_element (arr, i), values,
                           error);

  gpointer v;
  if (ok && (output == NULL
             || !g_hash_table_lookup_extended (values, output, NULL, &v)))
    {
      char *known = graph_known_values (g, g->n_nodes);
      g_set_error (error, NN_DESCRIPTOR_ERROR, NN_DESCRIPTOR_ERROR_INVALID,
                   "output '%s' is neither the input nor a node "
                   "(values: %s)", output ? output : "(null)", known);
      g_free (known);
      ok = FALSE;
    }
  if (ok)
    {
      g->output = GPOINTER_TO_UINT (v);
      graph_plan_releases (g);
    }
  g_hash_table_unref (values);
  return ok;
}

NnGraph *
nn_graph_parse (NnModule *self, GError **error)
{
  NnGraph *g = g_new0 (NnGraph, 1);

  if (!graph_parse (self, g, error))
    {
      nn_graph_free (g);
      return NULL;
    }
  return g;
}
