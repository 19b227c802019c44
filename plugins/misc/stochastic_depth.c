/* StochasticDepth (torchvision.ops): drops whole residual branches per row
 * or per batch in training; the identity in eval mode. */
#include "misc.h"

static const char *const stochastic_depth_modes[] = { "row", "batch", NULL };

static const NnSchemaKey stochastic_depth_schema[] = {
  { "p", NN_KIND_FLOAT, 0, NN_KEY_HAS_MIN | NN_KEY_HAS_MAX, NULL, 0, 1, NULL,
    "probability of the input to be zeroed (training only)" },
  { "mode", NN_KIND_ENUM, 0, 0, NULL, 0, 0, stochastic_depth_modes,
    "'row' drops per sample, 'batch' the whole batch (training only)" },
};

static const NnArgSpec stochastic_depth_args[] = { NN_MISC_INPUT_ARG };

/* torchvision prints the mode without quotes: "p=0.2, mode=row". */
static char *
stochastic_depth_extra_repr (NnModule *self)
{
  g_autofree char *p = nn_module_config_repr (self, "p");
  return g_strdup_printf ("p=%s, mode=%s", p, nn_module_config_string (self, "mode"));
}

const NnLayerType nn_stochastic_depth_type = {
  .struct_size = sizeof (NnLayerType),
  /* Returns its input, a laid-out one included (EfficientNet's blocks
   * had made every block's result plain here, before the residual add). */
  .flags = NN_LAYER_ALIASES | NN_LAYER_LAYOUT_AWARE,
  .name = "StochasticDepth",
  .doc = "torchvision's stochastic depth; the identity in eval mode",
  .schema = stochastic_depth_schema,
  .n_schema = G_N_ELEMENTS (stochastic_depth_schema),
  .args = stochastic_depth_args,
  .n_args = G_N_ELEMENTS (stochastic_depth_args),
  .create = nn_misc_create_nothing,
  .forward = nn_misc_forward_identity,
  .infer = nn_misc_forward_identity,
  .extra_repr = stochastic_depth_extra_repr,
};
