/* pool plugin: entry point.  Registers the pooling types; each lives in
 * its own file. */
#include "pool.h"

static const NnLayerType *const pool_types[] = {
  &nn_max_pool2d_type,
  &nn_avg_pool2d_type,
  &nn_adaptive_avg_pool2d_type,
  &nn_adaptive_max_pool2d_type,
  &nn_max_pool1d_type,
  &nn_avg_pool1d_type,
  &nn_adaptive_avg_pool1d_type,
  &nn_adaptive_max_pool1d_type,
  &nn_max_pool3d_type,
  &nn_avg_pool3d_type,
  &nn_adaptive_avg_pool3d_type,
  &nn_adaptive_max_pool3d_type,
  &nn_max_unpool2d_type,
};

static gboolean
pool_init (NnPlugin *plugin, GError **error)
{
  for (gsize i = 0; i < G_N_ELEMENTS (pool_types); i++)
    if (!nn_plugin_register_type (plugin, pool_types[i], error))
      return FALSE;
  return TRUE;
}

NN_PLUGIN_DEFINE ("pool", "0.1.0", "MIT",
                  "MaxPool1d/2d/3d, AvgPool1d/2d/3d, AdaptiveAvgPool1d/2d/3d, AdaptiveMaxPool1d/2d/3d, MaxUnpool2d",
                  pool_init)
