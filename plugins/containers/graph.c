/* Graph: a container whose forward is a dataflow of nodes, each applying a
 * child (through the core, by name, every time) or a functional op to
 * earlier values.  The node list is parsed once in create()
 * (graph_parse.c); forward and infer_shape walk it in order, and forward
 * frees each intermediate right after its last reader to keep peak memory
 * low. */
#include "graph.h"
#include "containers.h"

static gboolean
graph_create (NnModule *self, GError **error)
{
  NnGraph *g = nn_graph_parse (self, error);

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

/* --- check ------------------------------------------------------------- */

static char *
graph_child_names (NnModule *self)
{
  GString *s = g_string_new (NULL);
  guint n = nn_module_n_children (self);
  for (guint i = 0; i < n; i++)
    {
      const char *name = NULL;
      nn_module_child_at (self, i, &name);
      g_string_append_printf (s, "%s'%s'", i ? ", " : "", name);
    }
  if (n == 0)
    g_string_append (s, "none");
  return g_string_free (s, FALSE);
}

static gboolean
graph_check (NnModule *self, GError **error)
{
  NnGraph *g = nn_module_get_private (self);

  for (guint i = 0; i < g->n_nodes; i++)
    {
      const NnGraphNode *node = &g->nodes[i];
      if (node->kind != NN_GRAPH_NODE_MODULE
          || nn_module_get_child (self, node->target) != NULL)
        continue;
      char *children = graph_child_names (self);
      g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_NOT_FOUND,
                   "node '%s' calls child '%s', which does not exist "
                   "(children: %s)", node->name, node->target, children);
      g_free (children);
      return FALSE;
    }
  return TRUE;
}

/* --- forward -------------------------------------------------------------- */

static NnTensor *
graph_eval_node (NnModule *self, NnCall *call, const NnGraphNode *node,
                 NnTensor **values, NnTensor **scratch, GError **error)
{
  NnTensor *y;

  switch (node->kind)
    {
    case NN_GRAPH_NODE_MODULE:
      return nn_call_child (call, self, node->target, values[node->args[0]],
                            error);
    case NN_GRAPH_NODE_FUNCTIONAL:
      y = nn_call_functional (call, node->fn, values[node->args[0]], error);
      if (y == NULL)
        g_prefix_error (error, "node '%s' (op '%s'): ", node->name,
                        node->target);
      return y;
    case NN_GRAPH_NODE_BUILTIN:
    default:
      for (guint a = 0; a < node->n_args; a++)
        scratch[a] = values[node->args[a]];
      return node->op->apply (node, scratch, node->n_args, error);
    }
}

static void
graph_release (const NnGraphNode *node, NnTensor **values)
{
  for (guint r = 0; r < node->n_release; r++)
    g_clear_pointer (&values[node->release[r]], nn_tensor_unref);
}

static NnTensor *
graph_forward (NnModule *self, NnCall *call, NnTensor *input, GError **error)
{
  NnGraph *g = nn_module_get_private (self);
  guint n_values = g->n_nodes + 1;
  NnTensor **values = g_new0 (NnTensor *, n_values);
  NnTensor **scratch = g_new0 (NnTensor *, MAX (g->max_args, 1));
  NnTensor *result = NULL;

  values[0] = nn_tensor_ref (input);

  guint i;
  for (i = 0; i < g->n_nodes; i++)
    {
      values[i + 1] = graph_eval_node (self, call, &g->nodes[i], values,
                                       scratch, error);
      if (values[i + 1] == NULL)
        break;
      graph_release (&g->nodes[i], values);
    }
  if (i == g->n_nodes)
    result = g_steal_pointer (&values[g->output]);

  for (guint v = 0; v < n_values; v++)
    g_clear_pointer (&values[v], nn_tensor_unref);
  g_free (values);
  g_free (scratch);
  return result;
}

static gboolean
graph_infer_shape (NnModule *self, NnCall *call, const NnShape *in,
                   NnShape *out, GError **error)
{
  NnGraph *g = nn_module_get_private (self);
  NnShape *shapes = g_new (NnShape, g->n_nodes + 1);
  const NnShape **scratch = g_new0 (const NnShape *, MAX (g->max_args, 1));
  gboolean ok = TRUE;

  shapes[0] = *in;
  for (guint i = 0; ok && i < g->n_nodes; i++)
    {
      const NnGraphNode *node = &g->nodes[i];
      const NnShape *x = &shapes[node->args[0]];
      switch (node->kind)
        {
        case NN_GRAPH_NODE_MODULE:
          ok = nn_call_child_shape (call, self, node->target, x,
                                    &shapes[i + 1], error);
          break;
        case NN_GRAPH_NODE_FUNCTIONAL:
          ok = nn_call_functional_shape (call, node->fn, x, &shapes[i + 1],
                                         error);
          if (!ok)
            g_prefix_error (error, "node '%s' (op '%s'): ", node->name,
                            node->target);
          break;
        case NN_GRAPH_NODE_BUILTIN:
        default:
          for (guint a = 0; a < node->n_args; a++)
            scratch[a] = &shapes[node->args[a]];
          ok = node->op->shape (node, scratch, node->n_args, &shapes[i + 1],
                                error);
          break;
        }
    }
  if (ok)
    *out = shapes[g->output];
  g_free (shapes);
  g_free (scratch);
  return ok;
}

static const NnSchemaKey graph_schema[] = {
  { .name = "inputs", .kind = NN_KIND_JSON,
    .doc = "array with the name of the graph's one input, e.g. [\"x\"]" },
  { .name = "nodes", .kind = NN_KIND_JSON,
    .doc = "ordered dataflow nodes: {name, module|op, args, kwargs}" },
  { .name = "output", .kind = NN_KIND_STRING,
    .doc = "name of the value the graph returns" },
};

const NnLayerType nn_graph_type = {
  .struct_size = sizeof (NnLayerType),
  .name = "Graph",
  .doc = "Named children plus a dataflow of nodes over them and functional ops",
  .schema = graph_schema,
  .n_schema = G_N_ELEMENTS (graph_schema),
  .flags = NN_LAYER_CONTAINER,
  .create = graph_create,
  .destroy = graph_destroy,
  .check = graph_check,
  .infer_shape = graph_infer_shape,
  .forward = graph_forward,
};
