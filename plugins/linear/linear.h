/* linear plugin: its layer type.  Private to the plugin (and to the
 * providers that reuse its config and shape code, plugins/dnnl). */
#ifndef NN_LINEAR_H
#define NN_LINEAR_H

#include <nnkit/plugin.h>

extern const NnLayerType nn_linear_type;
extern const NnLayerType nn_bilinear_type;

#endif
