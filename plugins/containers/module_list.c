/* ModuleList: an indexable list of modules with no forward of its own, as
 * in PyTorch.  Its repr is the generic one, one line per item, as the
 * reference PyTorch (Debian's 1.13) prints it; 2.x folds identical runs. */
#include "containers.h"

static gboolean
module_list_create (NnModule *self, GError **error)
{
  return TRUE;
}

const NnLayerType nn_module_list_type = {
  .struct_size = sizeof (NnLayerType),
  .name = "ModuleList",
  .doc = "Holds modules in an indexable list; has no forward",
  .schema = NULL,
  .n_schema = 0,
  .flags = NN_LAYER_INDEXABLE | NN_LAYER_CONTAINER,
  .create = module_list_create,
  /* No forward, as in PyTorch: the core reports NN_MODULE_ERROR_NO_FORWARD
   * for calls and shape inference alike. */
  .forward = NULL,
};
