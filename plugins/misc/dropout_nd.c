/* Dropout1d, Dropout2d, Dropout3d, AlphaDropout and FeatureAlphaDropout:
 * the identity in eval mode, as torch.nn defines them after .eval();
 * Dropout1d still checks its input's rank, as F.dropout1d does. */
#include "misc.h"
#include "../common/nn-layer-util.h"

static const NnSchemaKey dropout_nd_schema[] = {
  { "p", NN_KIND_FLOAT, 0, NN_KEY_OPTIONAL | NN_KEY_HAS_MIN | NN_KEY_HAS_MAX,
    "0.5", 0, 1, NULL, "probability of a channel or element to be zeroed "
    "(training only)" },
  { "inplace", NN_KIND_BOOL, 0, NN_KEY_OPTIONAL, "false", 0, 0, NULL,
    "in PyTorch, zero the input in place (repr only here)" },
};

static const NnArgSpec dropout_nd_args[] = {
  { "input", NN_ARG_TENSOR, NN_DTYPES_ALL, 0, NULL, "tensor, passed through" },
};

static gboolean
dropout_nd_create (NnModule *self, GError **error)
{
  return TRUE;
}

static NnValue *
dropout_nd_forward (NnModule *self, NnCall *call, const NnArgs *args,
                    GError **error)
{
  return nn_value_ref (nn_args_get (args, 0));
}

static NnValue *
dropout1d_forward (NnModule *self, NnCall *call, const NnArgs *args,
                   GError **error)
{
  guint nd = nn_args_tensor (args, 0)->shape.ndim;
  if (nd != 2 && nd != 3) {
    g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH,
                 "dropout1d: Expected 2D or 3D input, but received a %uD "
                 "input. Note that dropout1d exists to provide channel-wise "
                 "dropout on inputs with 1 spatial dimension, a channel "
                 "dimension, and an optional batch dimension (i.e. 2D or 3D "
                 "inputs).", nd);
    return NULL;
  }
  return nn_value_ref (nn_args_get (args, 0));
}

static char *
dropout_nd_extra_repr (NnModule *self)
{
  g_autofree char *p = nn_module_config_repr (self, "p");
  return g_strdup_printf ("p=%s, inplace=%s", p,
                          nn_lu_py_bool (nn_module_config_bool (self, "inplace")));
}

#define DROPOUT_TYPE(var_, name_, doc_, forward_)                          \
  const NnLayerType var_ = {                                              \
    .struct_size = sizeof (NnLayerType), .name = name_, .doc = doc_,      \
    .flags = NN_LAYER_ALIASES, /* in eval, the input itself */        \
    .schema = dropout_nd_schema,                                          \
    .n_schema = G_N_ELEMENTS (dropout_nd_schema),                         \
    .args = dropout_nd_args, .n_args = G_N_ELEMENTS (dropout_nd_args),    \
    .create = dropout_nd_create, .forward = forward_, .infer = forward_,  \
    .extra_repr = dropout_nd_extra_repr,                                  \
  }

DROPOUT_TYPE (nn_dropout1d_type, "Dropout1d",
              "channel dropout of [N, C, L] input; identity in eval mode",
              dropout1d_forward);
DROPOUT_TYPE (nn_dropout2d_type, "Dropout2d",
              "channel dropout of [N, C, H, W] input; identity in eval mode",
              dropout_nd_forward);
DROPOUT_TYPE (nn_dropout3d_type, "Dropout3d",
              "channel dropout of [N, C, D, H, W] input; identity in eval mode",
              dropout_nd_forward);
DROPOUT_TYPE (nn_alpha_dropout_type, "AlphaDropout",
              "SELU-preserving dropout; identity in eval mode",
              dropout_nd_forward);
DROPOUT_TYPE (nn_feature_alpha_dropout_type, "FeatureAlphaDropout",
              "channel AlphaDropout; identity in eval mode", dropout_nd_forward);
