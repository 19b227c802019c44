/* Conv1d: PyTorch's nn.Conv1d on [N, C, L] (or unbatched [C, L]) float32,
 * run as a 2-d convolution of height 1 (conv_nd_kernels.c). */
#include "conv_nd.h"
#include "nn-blas.h"
#include "../common/nn-layer-util.h"

static const char *const padding_strings[] = { "same", "valid", NULL };
static const char *const padding_modes[] = {
  "zeros", "reflect", "replicate", "circular", NULL
};

static const NnSchemaKey conv1d_schema[] = {
  { "in_channels", NN_KIND_INT, 0, NN_KEY_HAS_MIN, NULL, 1, 0, NULL,
    "channels C of the input" },
  { "out_channels", NN_KIND_INT, 0, NN_KEY_HAS_MIN, NULL, 1, 0, NULL,
    "channels produced" },
  { "kernel_size", NN_KIND_INT_TUPLE, 1, NN_KEY_EXPAND | NN_KEY_HAS_MIN,
    NULL, 1, 0, NULL, "kernel length" },
  { "stride", NN_KIND_INT_TUPLE, 1,
    NN_KEY_OPTIONAL | NN_KEY_EXPAND | NN_KEY_HAS_MIN, "[1]", 1, 0, NULL,
    "stride" },
  { "padding", NN_KIND_INT_TUPLE, 1,
    NN_KEY_OPTIONAL | NN_KEY_EXPAND | NN_KEY_OR_ENUM | NN_KEY_HAS_MIN, "[0]",
    0, 0, padding_strings, "padding on both ends, or 'same' / 'valid'" },
  { "dilation", NN_KIND_INT_TUPLE, 1,
    NN_KEY_OPTIONAL | NN_KEY_EXPAND | NN_KEY_HAS_MIN, "[1]", 1, 0, NULL,
    "spacing between kernel taps" },
  { "groups", NN_KIND_INT, 0, NN_KEY_OPTIONAL | NN_KEY_HAS_MIN, "1", 1, 0,
    NULL, "blocked connections from input to output channels" },
  { "bias", NN_KIND_BOOL, 0, NN_KEY_OPTIONAL, "true", 0, 0, NULL,
    "learnable bias" },
  { "padding_mode", NN_KIND_ENUM, 0, NN_KEY_OPTIONAL, "\"zeros\"", 0, 0,
    padding_modes, "how the padding is filled" },
};

static gboolean
conv1d_create (NnModule *self, GError **error)
{
  return nn_convnd_create (self, 1, FALSE, error);
}

static NnValue *
conv1d_forward (NnModule *self, NnCall *call, const NnArgs *args,
                GError **error)
{
  const NnConvNd *g = nn_module_get_private (self);
  NnTensor *input = nn_args_tensor (args, 0);
  const NnShape *s = &input->shape;
  NnTensor *w = nn_module_get_parameter (self, "weight");
  if (s->ndim != 2 && s->ndim != 3) {
    g_autofree char *found = nn_shape_to_string (s);
    g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH,
                 "Expected 2D (unbatched) or 3D (batched) input to conv1d, "
                 "but got input of size: %s", found);
    return NULL;
  }
  gboolean batched = s->ndim == 3;
  gint64 n = batched ? s->dims[0] : 1, c = s->dims[batched], l = s->dims[batched + 1];
  if (c != g->in_channels) {
    g_autofree char *ws = nn_shape_to_string (&w->shape);
    NnShape b = *s;
    if (!batched) {
      b.ndim = 3;
      b.dims[0] = 1, b.dims[1] = c, b.dims[2] = l;
    }
    g_autofree char *found = nn_shape_to_string (&b);
    g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH,
                 "Given groups=%" G_GINT64_FORMAT ", weight of size %s, "
                 "expected input%s to have %" G_GINT64_FORMAT " channels, but "
                 "got %" G_GINT64_FORMAT " channels instead", g->groups, ws,
                 found, g->in_channels, c);
    return NULL;
  }
  gint64 padded = l + g->pad0[1] + g->pad1[1], span = g->d[1] * (g->k[1] - 1) + 1;
  if (padded < span) {
    g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH,
                 "Calculated padded input size per channel: (%" G_GINT64_FORMAT
                 "). Kernel size: (%" G_GINT64_FORMAT "). Kernel size can't be "
                 "greater than actual input size", padded, span);
    return NULL;
  }
  if (g->pad_mode == NN_CONVND_REFLECT && (g->pad0[1] >= l || g->pad1[1] >= l)) {
    nn_lu_shape_error (error, "an input longer than the reflect padding", s);
    return NULL;
  }
  gint64 lo = (padded - span) / g->s[1] + 1;
  NnShape os = *s;
  os.dims[batched] = g->out_channels;
  os.dims[batched + 1] = lo;
  if (!nn_tensor_is_meta (input) && !nn_blas_ready (error))
    return NULL;
  NnTensor *out = nn_lu_new_f32 (&os, nn_tensor_is_meta (input));
  if (!out || nn_tensor_is_meta (input))
    return nn_lu_result (out, error);
  NnTensor *b = nn_module_get_parameter (self, "bias");
  nn_convnd_forward_kernel (g, nn_tensor_f32 (input), n, 1, l, nn_tensor_f32 (w),
                            b ? nn_tensor_f32 (b) : NULL, 1, lo,
                            nn_tensor_f32 (out));
  return nn_value_take_tensor (out);
}

const NnLayerType nn_conv1d_type = {
  .struct_size = sizeof (NnLayerType),
  .name = "Conv1d",
  .doc = "1-d convolution of [N, C, L] input",
  .schema = conv1d_schema,
  .n_schema = G_N_ELEMENTS (conv1d_schema),
  .create = conv1d_create,
  .destroy = nn_convnd_destroy,
  .forward = conv1d_forward,
  .infer = conv1d_forward,
  .extra_repr = nn_convnd_extra_repr,
  .reset_parameters = nn_convnd_reset_parameters,
  .count_macs = nn_convnd_count_macs,
};
