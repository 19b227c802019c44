/* containers plugin: entry point.  Registers the container types; each
 * lives in its own file. */
#include "containers.h"

static const NnLayerType *const containers_types[] = {
  &nn_sequential_type,
  &nn_module_list_type,
  &nn_module_dict_type,
  &nn_graph_type,
};

static gboolean
containers_init (NnPlugin *plugin, GError **error)
{
  for (gsize i = 0; i < G_N_ELEMENTS (containers_types); i++)
    if (!nn_plugin_register_type (plugin, containers_types[i], error))
      return FALSE;
  return TRUE;
}

NN_PLUGIN_DEFINE ("containers", "0.1.0", "MIT",
                  "Sequential, ModuleList, ModuleDict and the dataflow Graph",
                  containers_init)
