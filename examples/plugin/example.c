/* nnkit example plugin: its entry point.  The registry dlopen()s the file,
 * calls the one exported symbol NN_PLUGIN_DEFINE generates, checks the
 * descriptor's magic and ABI, then runs example_init. */
#include "example.h"

static const NnLayerType *const example_types[] = {
  &nn_example_scaled_leaky_relu_type,
  &nn_example_residual_block_type,
  &nn_example_gated_sum_type,
};

/* Registrations are staged by the core: if one fails, none is kept. */
static gboolean
example_init (NnPlugin *plugin, GError **error)
{
  for (gsize i = 0; i < G_N_ELEMENTS (example_types); i++)
    if (!nn_plugin_register_type (plugin, example_types[i], error))
      return FALSE;
  return TRUE;
}

NN_PLUGIN_DEFINE ("example", "1.0.0", "MIT",
                  "out-of-tree example: ScaledLeakyReLU, ResidualBlock and GatedSum",
                  example_init)
