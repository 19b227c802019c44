/* Graph: a module whose forward is a dataflow of nodes, each calling a
 * descendant (through the core, by path, every time), a functional op
 * (an instance of any registry type, made once in create()) or reading a
 * tensor.  The config is parsed once in create() (graph_parse.c); forward
 * walks the nodes in order and frees each intermediate right after its
 * last reader to keep peak memory low.  It only routes values, so shape
 * inference runs the same walk on meta tensors. */
#include "graph.h"
#include "containers.h"

static gboolean
graph_create (NnModule *self, GError **error)
{
  JsonObject *config = nn_module_get_config (self);
  JsonObject *upgraded = NULL;

  /* Version 1 configs are rewritten once, so a save writes version 2. */
  if (nn_module_descriptor_version (self) < 2)
    {
      upgraded = nn_graph_upgrade_v1 (nn_module_get_registry (self), config,
                                      error);
      if (upgraded == NULL)
        return FALSE;
      nn_module_replace_config (self, upgraded);
      config = upgraded;
    }
  NnGraph *g = nn_graph_parse (self, config, error);
  if (upgraded != NULL)
    json_object_unref (upgraded);
  if (g == NULL)
    return FALSE;
  nn_module_set_private (self, g);
  return TRUE;
}

static void
graph_destroy (NnModule *self)
{
  nn_graph_free (nn_module_get_private (self));
}

static gboolean
graph_check (NnModule *self, GError **error)
{
  NnGraph *g = nn_module_get_private (self);

  for (guint i = 0; i < g->n_nodes; i++)
    {
      const NnGraphNode *node = &g->nodes[i];
      GError *e = NULL;
      if (node->kind != NN_GRAPH_NODE_MODULE)
        continue;
      if (node->target[0] == '#')
        {
          g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_BAD_REFERENCE,
                       "node '%s' calls '%s': expected a dotted path",
                       node->name, node->target);
          return FALSE;
        }
      if (nn_module_lookup_path (self, node->target, &e) == NULL)
        {
          g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_NOT_FOUND,
                       "node '%s' calls '%s', which does not exist: %s",
                       node->name, node->target, e->message);
          g_error_free (e);
          return FALSE;
        }
    }
  return TRUE;
}

static void
graph_release (const guint *release, guint n, NnValue **values)
{
  for (guint r = 0; r < n; r++)
    g_clear_pointer (&values[release[r]], nn_value_unref);
}

static NnValue *
graph_eval_node (NnModule *self, NnCall *call, const NnGraphNode *node,
                 NnValue **values, GError **error)
{
  if (node->kind == NN_GRAPH_NODE_ATTR)
    {
      NnTensor *t = nn_call_get_tensor (call, self, node->target, error);
      if (t == NULL)
        {
          g_prefix_error (error, "node '%s': ", node->name);
          return NULL;
        }
      return nn_value_new_tensor (t);
    }

  NnValue *args = nn_graph_expr_eval (&node->args, values);
  NnValue *kwargs = node->kwargs.n_items
                    ? nn_graph_expr_eval (&node->kwargs, values) : NULL;
  /* Values this node reads last go now: then only the call holds them,
   * and the engine may reuse a dying input's storage in place. */
  graph_release (node->release, node->n_release, values);
  /* The argument values are given up with the call (transfer full). */
  NnValue *y;
  if (node->kind == NN_GRAPH_NODE_MODULE)
    y = nn_call_module_take (call, self, node->target, args, kwargs, error);
  else
    {
      y = nn_call_functional_take (call, node->fn, args, kwargs, error);
      if (y == NULL)
        g_prefix_error (error, "node '%s' (op '%s'): ", node->name,
                        node->target);
    }
  return y;
}

static NnValue *
graph_forward (NnModule *self, NnCall *call, const NnArgs *args,
               GError **error)
{
  NnGraph *g = nn_module_get_private (self);
  /* The type's signature is (*args, **kwargs); the graph's own inputs
   * are bound here, with the core's rules and messages. */
  NnArgs *bound = nn_args_bind_signature (g->inputs, g->n_inputs,
                                          g->defaults, nn_args_get (args, 0),
                                          nn_args_get (args, 1), error);
  if (bound == NULL)
    return NULL;

  guint n_values = g->n_inputs + g->n_nodes;
  NnValue **values = g_new0 (NnValue *, MAX (n_values, 1));
  for (guint i = 0; i < g->n_inputs; i++)
    values[i] = nn_value_ref (nn_args_get (bound, i));
  nn_args_free (bound);
  graph_release (g->release_unread, g->n_release_unread, values);

  NnValue *result = NULL;
  guint i;
  for (i = 0; i < g->n_nodes; i++)
    {
      const NnGraphNode *node = &g->nodes[i];
      values[g->n_inputs + i] = graph_eval_node (self, call, node, values,
                                                 error);
      if (values[g->n_inputs + i] == NULL)
        break;
      /* A result nothing reads goes at once, as before the call. */
      graph_release (node->release, node->n_release, values);
    }
  if (i == g->n_nodes)
    result = nn_graph_expr_eval (&g->output, values);

  for (guint v = 0; v < n_values; v++)
    g_clear_pointer (&values[v], nn_value_unref);
  g_free (values);
  return result;
}

static const NnSchemaKey graph_schema[] = {
  { .name = "inputs", .kind = NN_KIND_JSON,
    .doc = "the forward's parameters: names, or {name, default}" },
  { .name = "nodes", .kind = NN_KIND_JSON,
    .doc = "ordered dataflow nodes: {name, module|op|attr, args, kwargs, "
           "config}" },
  { .name = "output", .kind = NN_KIND_JSON,
    .doc = "expression over node names: the value the graph returns" },
};

/* forward(self, *args, **kwargs): bound to the graph's inputs in forward. */
static const NnArgSpec graph_args[] = {
  { .name = "args", .kinds = NN_ARG_ANY, .dtypes = NN_DTYPES_ALL,
    .flags = NN_ARG_VARIADIC, .doc = "the graph's positional inputs" },
  { .name = "kwargs", .kinds = NN_ARG_ANY, .dtypes = NN_DTYPES_ALL,
    .flags = NN_ARG_VAR_KEYWORD, .doc = "the graph's inputs by name" },
};

const NnLayerType nn_graph_type = {
  .struct_size = sizeof (NnLayerType),
  .name = "Graph",
  .doc = "Named children plus a dataflow of nodes over descendants, "
         "functional ops and tensors",
  .schema = graph_schema,
  .n_schema = G_N_ELEMENTS (graph_schema),
  .flags = NN_LAYER_CONTAINER | NN_LAYER_ROUTES_ONLY
           | NN_LAYER_DECLARED_TENSORS | NN_LAYER_FIXED_DATAFLOW,
  .args = graph_args,
  .n_args = G_N_ELEMENTS (graph_args),
  .create = graph_create,
  .destroy = graph_destroy,
  .check = graph_check,
  .forward = graph_forward,
};
