/* norm plugin: entry point.  Registers the normalisation types; each
 * lives in its own file. */
#include "norm.h"

static const NnLayerType *const norm_types[] = {
  &nn_batch_norm2d_type,
  &nn_batch_norm1d_type,
  &nn_batch_norm3d_type,
  &nn_layer_norm_type,
  &nn_group_norm_type,
  &nn_group_norm_fn_type,
  &nn_instance_norm1d_type,
  &nn_instance_norm2d_type,
  &nn_local_response_norm_type,
};

static gboolean
norm_init (NnPlugin *plugin, GError **error)
{
  for (gsize i = 0; i < G_N_ELEMENTS (norm_types); i++)
    if (!nn_plugin_register_type (plugin, norm_types[i], error))
      return FALSE;
  return TRUE;
}

NN_PLUGIN_DEFINE ("norm", "0.1.0", "MIT", "BatchNorm1d/2d, LayerNorm, GroupNorm, InstanceNorm1d/2d, "
                  "LocalResponseNorm (eval mode)", norm_init)
