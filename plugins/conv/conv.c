/* conv plugin: entry point.  Registers the convolution types; each lives
 * in its own file. */
#include "conv.h"
#include "conv_nd.h"

static const NnLayerType *const conv_types[] = {
  &nn_conv2d_type,
  &nn_conv1d_type,
  &nn_conv_transpose1d_type,
  &nn_conv_transpose2d_type,
  &nn_conv3d_type,
  &nn_conv1d_fn_type,
  &nn_conv2d_fn_type,
  &nn_conv3d_fn_type,
  &nn_unfold_type,
  &nn_fold_type,
};

static gboolean
conv_init (NnPlugin *plugin, GError **error)
{
  for (gsize i = 0; i < G_N_ELEMENTS (conv_types); i++)
    if (!nn_plugin_register_type (plugin, conv_types[i], error))
      return FALSE;
  return TRUE;
}

NN_PLUGIN_DEFINE ("conv", "0.1.0", "MIT",
                  "Conv1d, Conv2d, Conv3d, ConvTranspose1d/2d, F.conv1d/2d/3d on OpenBLAS, Unfold, Fold",
                  conv_init)
