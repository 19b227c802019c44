/* nnkit example plugin: the layer types it registers. */
#ifndef NN_EXAMPLE_H
#define NN_EXAMPLE_H

#include <nnkit/nnkit.h>
#include <nnkit/plugin.h>

extern const NnLayerType nn_example_scaled_leaky_relu_type;
extern const NnLayerType nn_example_residual_block_type;
extern const NnLayerType nn_example_gated_sum_type;

#endif
