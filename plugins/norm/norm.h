/* norm plugin: the layer types it registers.  Private to the plugin. */
#ifndef NN_NORM_H
#define NN_NORM_H

#include <nnkit/plugin.h>

extern const NnLayerType nn_batch_norm2d_type;
extern const NnLayerType nn_batch_norm1d_type;
extern const NnLayerType nn_layer_norm_type;
extern const NnLayerType nn_group_norm_type;
extern const NnLayerType nn_group_norm_fn_type;
extern const NnLayerType nn_instance_norm1d_type;
extern const NnLayerType nn_instance_norm2d_type;
extern const NnLayerType nn_local_response_norm_type;

#endif
