/* Identity: returns its input, as torch.nn.Identity (whose constructor
 * arguments are ignored, so it has no config keys). */
#include "misc.h"

/* nn.Identity.forward(input) returns whatever it is given. */
static const NnArgSpec identity_args[] = {
  { "input", NN_ARG_ANY, NN_DTYPES_ALL, 0, NULL, "any value, returned as is" },
};

const NnLayerType nn_identity_type = {
  .struct_size = sizeof (NnLayerType),
  /* Returns its input, a oneDNN step's laid-out result included: a
   * plain copy would cost a reorder for nothing. */
  .flags = NN_LAYER_ALIASES | NN_LAYER_LAYOUT_AWARE,
  .name = "Identity",
  .doc = "returns its input unchanged",
  .schema = NULL,
  .n_schema = 0,
  .args = identity_args,
  .n_args = G_N_ELEMENTS (identity_args),
  .create = nn_misc_create_nothing,
  .forward = nn_misc_forward_identity,
  .infer = nn_misc_forward_identity,
};
