/* conv plugin: entry point.  Registers the convolution types; each lives
 * in its own file. */
#include "conv.h"
#include "nn-blas.h"

static gboolean
conv_init (NnPlugin *plugin, GError **error)
{
  nn_blas_plugin_init ();
  return nn_plugin_register_type (plugin, &nn_conv2d_type, error);
}

NN_PLUGIN_DEFINE ("conv", "0.1.0", "MIT",
                  "Conv2d on OpenBLAS: im2col + sgemm, direct depthwise",
                  conv_init)
