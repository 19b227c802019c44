/* ModuleDict: modules under string keys, no forward, as in PyTorch. */
#include "containers.h"

static gboolean
module_dict_create (NnModule *self, GError **error)
{
  return TRUE;
}

const NnLayerType nn_module_dict_type = {
  .struct_size = sizeof (NnLayerType),
  .name = "ModuleDict",
  .doc = "Holds modules under string keys; has no forward",
  .schema = NULL,
  .n_schema = 0,
  .flags = NN_LAYER_CONTAINER | NN_LAYER_KEYED,
  .create = module_dict_create,
  /* No forward, as in PyTorch: the core reports NN_MODULE_ERROR_NO_FORWARD
   * for calls and shape inference alike. */
  .forward = NULL,
};
