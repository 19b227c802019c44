/* ops plugin: the entry point and its registration list, one line per op
 * group file; each file exports a NULL-terminated table of its types. */
#include "ops.h"

static const NnLayerType *const *const ops_groups[] = {
  nn_ops_arith_types,
  nn_ops_shape_types,
  nn_ops_pad_types,
  nn_ops_join_types,
  nn_ops_index_types,
  nn_ops_setitem_types,
  nn_ops_reduce_types,
  nn_ops_cumulative_types,
  nn_ops_sort_types,
  nn_ops_norm_types,
  nn_ops_matmul_types,
  nn_ops_einsum_types,
  nn_ops_softmax_types,
  nn_ops_unary_types,
  nn_ops_compare_types,
  nn_ops_create_types,
  nn_ops_convert_types,
  nn_ops_layer_norm_types,
  nn_ops_concat_types,
  nn_ops_index_add_types,
  nn_ops_meshgrid_types,
  nn_ops_cdist_types,
  nn_ops_pointwise3_types,
  nn_ops_diag_types,
  nn_ops_bucketize_types,
  nn_ops_tensor_split_types,
};

gboolean
nn_ops_create (NnModule *self, GError **error)
{
  return TRUE;
}

static gboolean
ops_init (NnPlugin *plugin, GError **error)
{
  for (gsize g = 0; g < G_N_ELEMENTS (ops_groups); g++)
    for (const NnLayerType *const *t = ops_groups[g]; *t; t++)
      if (!nn_plugin_register_type (plugin, *t, error))
        return FALSE;
  return TRUE;
}

NN_PLUGIN_DEFINE ("ops", "0.1.0", "MIT",
                  "PyTorch's functional ops: arithmetic, shapes, indexing, "
                  "reductions, matmul, softmax, comparisons, creation",
                  ops_init)
