/* containers plugin: the layer types it registers.  Private to the plugin. */
#ifndef NN_CONTAINERS_H
#define NN_CONTAINERS_H

#include <nnkit/plugin.h>

extern const NnLayerType nn_sequential_type;
extern const NnLayerType nn_module_list_type;
extern const NnLayerType nn_module_dict_type;
extern const NnLayerType nn_graph_type;

#endif
