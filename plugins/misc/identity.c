/* Identity: returns its input, as torch.nn.Identity (whose constructor
 * arguments are ignored, so it has no config keys). */
#include "misc.h"

const NnLayerType nn_identity_type = {
  .struct_size = sizeof (NnLayerType),
  .name = "Identity",
  .doc = "returns its input unchanged",
  .schema = NULL,
  .n_schema = 0,
  .create = nn_misc_create_nothing,
  .forward = nn_misc_forward_identity,
};
