/* linear plugin: entry point. */
#include "linear.h"

static gboolean
linear_init (NnPlugin *plugin, GError **error)
{
  return nn_plugin_register_type (plugin, &nn_linear_type, error)
         && nn_plugin_register_type (plugin, &nn_bilinear_type, error);
}

NN_PLUGIN_DEFINE ("linear", "0.1.0", "MIT", "Linear and Bilinear on OpenBLAS",
                  linear_init)
