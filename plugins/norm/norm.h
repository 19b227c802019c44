/* norm plugin: the layer types it registers.  Private to the plugin. */
#ifndef NN_NORM_H
#define NN_NORM_H

#include <nnkit/plugin.h>

extern const NnLayerType nn_batch_norm2d_type;

#endif
