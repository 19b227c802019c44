/* nnkit core: the GError domains declared in <nnkit/error.h>. */
#include "nn-private.h"

G_DEFINE_QUARK (nn-plugin-error-quark, nn_plugin_error)
G_DEFINE_QUARK (nn-descriptor-error-quark, nn_descriptor_error)
G_DEFINE_QUARK (nn-module-error-quark, nn_module_error)
G_DEFINE_QUARK (nn-weights-error-quark, nn_weights_error)
G_DEFINE_QUARK (nn-shape-error-quark, nn_shape_error)
