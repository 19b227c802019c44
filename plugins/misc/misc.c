/* misc plugin: entry point and the helpers shared by its types; each type
 * lives in its own file. */
#include "misc.h"

static const NnLayerType *const misc_types[] = {
  &nn_dropout_type,
  &nn_flatten_type,
  &nn_identity_type,
  &nn_stochastic_depth_type,
  &nn_zero_pad2d_type,
  &nn_constant_pad1d_type,
  &nn_constant_pad2d_type,
  &nn_reflection_pad1d_type,
  &nn_reflection_pad2d_type,
  &nn_replication_pad1d_type,
  &nn_replication_pad2d_type,
  &nn_unflatten_type,
  &nn_dropout1d_type,
  &nn_dropout2d_type,
  &nn_dropout3d_type,
  &nn_alpha_dropout_type,
  &nn_feature_alpha_dropout_type,
  &nn_cosine_similarity_type,
  &nn_pairwise_distance_type,
  &nn_cosine_similarity_fn_type,
  &nn_pairwise_distance_fn_type,
};

NnValue *
nn_misc_forward_identity (NnModule *self, NnCall *call, const NnArgs *args,
                          GError **error)
{
  return nn_value_ref (nn_args_get (args, 0));
}

gboolean
nn_misc_create_nothing (NnModule *self, GError **error)
{
  return TRUE;
}

static gboolean
misc_init (NnPlugin *plugin, GError **error)
{
  for (gsize i = 0; i < G_N_ELEMENTS (misc_types); i++)
    if (!nn_plugin_register_type (plugin, misc_types[i], error))
      return FALSE;
  return TRUE;
}

NN_PLUGIN_DEFINE ("misc", "0.1.0", "MIT",
                  "Dropout, Flatten, Identity, StochasticDepth, padding, Unflatten, "
                  "CosineSimilarity and PairwiseDistance", misc_init)
