/* ConvTranspose1d and ConvTranspose2d: PyTorch's transposed convolutions
 * (output_padding, groups, dilation, and forward's output_size argument),
 * on batched or unbatched float32 input. */
#include "conv_nd.h"
#include "nn-blas.h"
#include "../common/nn-layer-util.h"

/* All of Conv's modes are accepted by the schema so that create() can
 * refuse the others with PyTorch's message. */
static const char *const padding_modes[] = {
  "zeros", "reflect", "replicate", "circular", NULL
};

#define CONVT_SCHEMA(n_, dflt0_, dflt1_)                                       \
  { "in_channels", NN_KIND_INT, 0, NN_KEY_HAS_MIN, NULL, 1, 0, NULL,           \
    "channels C of the input" },                                               \
  { "out_channels", NN_KIND_INT, 0, NN_KEY_HAS_MIN, NULL, 1, 0, NULL,          \
    "channels produced" },                                                     \
  { "kernel_size", NN_KIND_INT_TUPLE, n_, NN_KEY_EXPAND | NN_KEY_HAS_MIN,      \
    NULL, 1, 0, NULL, "kernel extent" },                                       \
  { "stride", NN_KIND_INT_TUPLE, n_,                                           \
    NN_KEY_OPTIONAL | NN_KEY_EXPAND | NN_KEY_HAS_MIN, dflt1_, 1, 0, NULL,      \
    "stride" },                                                                \
  { "padding", NN_KIND_INT_TUPLE, n_,                                          \
    NN_KEY_OPTIONAL | NN_KEY_EXPAND | NN_KEY_HAS_MIN, dflt0_, 0, 0, NULL,      \
    "dilation * (kernel_size - 1) - padding zeros on both sides" },            \
  { "output_padding", NN_KIND_INT_TUPLE, n_,                                   \
    NN_KEY_OPTIONAL | NN_KEY_EXPAND | NN_KEY_HAS_MIN, dflt0_, 0, 0, NULL,      \
    "extra size on one side of the output" },                                  \
  { "groups", NN_KIND_INT, 0, NN_KEY_OPTIONAL | NN_KEY_HAS_MIN, "1", 1, 0,     \
    NULL, "blocked connections from input to output channels" },               \
  { "bias", NN_KIND_BOOL, 0, NN_KEY_OPTIONAL, "true", 0, 0, NULL,              \
    "learnable bias" },                                                        \
  { "dilation", NN_KIND_INT_TUPLE, n_,                                         \
    NN_KEY_OPTIONAL | NN_KEY_EXPAND | NN_KEY_HAS_MIN, dflt1_, 1, 0, NULL,      \
    "spacing between kernel taps" },                                           \
  { "padding_mode", NN_KIND_ENUM, 0, NN_KEY_OPTIONAL, "\"zeros\"", 0, 0,       \
    padding_modes, "only 'zeros' is supported, as in PyTorch" }

static const NnSchemaKey convt1d_schema[] = { CONVT_SCHEMA (1, "[0]", "[1]") };
static const NnSchemaKey convt2d_schema[] = { CONVT_SCHEMA (2, "[0, 0]", "[1, 1]") };

static const NnArgSpec convt_args[] = {
  { "input", NN_ARG_TENSOR, 0, 0, NULL, "[N, C, *] or unbatched [C, *]" },
  { "output_size", NN_ARG_SEQ | NN_ARG_NONE, 0, NN_ARG_OPTIONAL, "null",
    "wanted spatial size (chooses output_padding)" },
};

static gboolean
convt1d_create (NnModule *self, GError **error)
{
  return nn_convnd_create (self, 1, TRUE, error);
}

static gboolean
convt2d_create (NnModule *self, GError **error)
{
  return nn_convnd_create (self, 2, TRUE, error);
}

/* The output padding for @args' output_size, as PyTorch's
 * _output_padding: the wanted size must lie in [min, min + stride - 1]. */
static gboolean
output_padding (const NnConvNd *g, const NnArgs *args, const gint64 *in,
                gint64 *out_pad, GError **error)
{
  out_pad[0] = g->out_pad[0];
  out_pad[1] = g->out_pad[1];
  if (nn_value_is_none (nn_args_get (args, 1)))
    return TRUE;
  guint n = 0;
  g_autofree gint64 *want = nn_args_ints (args, 1, 0, &n, error);
  if (!want)
    return FALSE;
  if (n != g->nd && n != g->nd + 2) {
    g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH,
                 "ConvTranspose%ud: for %ud input, output_size must have %u "
                 "or %u elements (got %u)", g->nd, g->nd + 2, g->nd,
                 g->nd + 2, n);
    return FALSE;
  }
  const gint64 *sz = want + (n - g->nd);
  gint64 lo[2], hi[2];
  gboolean ok = TRUE;
  for (guint i = 0; i < g->nd; i++) {
    guint a = 2 - g->nd + i;
    lo[i] = (in[a] - 1) * g->s[a] - 2 * g->pad0[a] + g->d[a] * (g->k[a] - 1) + 1;
    hi[i] = lo[i] + g->s[a] - 1;
    ok = ok && sz[i] >= lo[i] && sz[i] <= hi[i];
    out_pad[a] = sz[i] - lo[i];
  }
  if (!ok) {
    GString *m = g_string_new (NULL);
    g_string_append (m, "requested an output size of [");
    for (guint i = 0; i < g->nd; i++)
      g_string_append_printf (m, "%s%" G_GINT64_FORMAT, i ? ", " : "", sz[i]);
    g_string_append (m, "], but valid sizes range from [");
    for (guint i = 0; i < g->nd; i++)
      g_string_append_printf (m, "%s%" G_GINT64_FORMAT, i ? ", " : "", lo[i]);
    g_string_append (m, "] to [");
    for (guint i = 0; i < g->nd; i++)
      g_string_append_printf (m, "%s%" G_GINT64_FORMAT, i ? ", " : "", hi[i]);
    g_string_append (m, "]");
    g_set_error_literal (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH, m->str);
    g_string_free (m, TRUE);
    return FALSE;
  }
  return TRUE;
}

static NnValue *
convt_forward (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  const NnConvNd *g = nn_module_get_private (self);
  NnTensor *input = nn_args_tensor (args, 0);
  NnTensor *w = nn_module_get_parameter (self, "weight");
  const NnShape *s = &input->shape;
  if (s->ndim != g->nd + 1 && s->ndim != g->nd + 2) {
    g_autofree char *found = nn_shape_to_string (s);
    g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH,
                 "Expected %uD (unbatched) or %uD (batched) input to "
                 "conv_transpose%ud, but got input of size: %s", g->nd + 1,
                 g->nd + 2, g->nd, found);
    return NULL;
  }
  gboolean batched = s->ndim == g->nd + 2;
  guint cd = batched ? 1 : 0;
  gint64 n = batched ? s->dims[0] : 1, c = s->dims[cd];
  gint64 in[2] = { g->nd == 2 ? s->dims[cd + 1] : 1, s->dims[s->ndim - 1] };
  if (c != g->in_channels) {
    g_autofree char *ws = nn_shape_to_string (&w->shape);
    NnShape b = *s;
    if (!batched) {
      b.ndim = s->ndim + 1;
      b.dims[0] = 1;
      for (guint i = 0; i < s->ndim; i++)
        b.dims[i + 1] = s->dims[i];
    }
    g_autofree char *found = nn_shape_to_string (&b);
    g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH,
                 "Given transposed=1, weight of size %s, expected input%s to "
                 "have %" G_GINT64_FORMAT " channels, but got %" G_GINT64_FORMAT
                 " channels instead", ws, found, g->in_channels, c);
    return NULL;
  }
  gint64 op[2];
  if (!output_padding (g, args, in, op, error))
    return NULL;
  gint64 o[2];
  for (guint a = 0; a < 2; a++) {
    if (op[a] >= g->s[a] && op[a] >= g->d[a]) {
      g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH,
                   "output padding must be smaller than either stride or "
                   "dilation, but got output_padding=%" G_GINT64_FORMAT
                   ", stride=%" G_GINT64_FORMAT ", dilation=%" G_GINT64_FORMAT,
                   op[a], g->s[a], g->d[a]);
      return NULL;
    }
    o[a] = (in[a] - 1) * g->s[a] - g->pad0[a] - g->pad1[a]
           + g->d[a] * (g->k[a] - 1) + op[a] + 1;
  }
  if (o[0] < 1 || o[1] < 1) {
    g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH,
                 "Given input size per channel: (%" G_GINT64_FORMAT " x %"
                 G_GINT64_FORMAT "). Calculated output size per channel: (%"
                 G_GINT64_FORMAT " x %" G_GINT64_FORMAT "). Output size is too "
                 "small", in[0], in[1], o[0], o[1]);
    return NULL;
  }
  NnShape os = *s;
  os.dims[cd] = g->out_channels;
  if (g->nd == 2)
    os.dims[cd + 1] = o[0];
  os.dims[s->ndim - 1] = o[1];
  if (!nn_tensor_is_meta (input) && !nn_blas_ready (error))
    return NULL;
  NnTensor *out = nn_lu_new_f32 (&os, nn_tensor_is_meta (input));
  if (!out || nn_tensor_is_meta (input))
    return nn_lu_result (out, error);
  NnTensor *b = nn_module_get_parameter (self, "bias");
  nn_convnd_transpose_kernel (g, nn_tensor_f32 (input), n, in[0], in[1],
                              nn_tensor_f32 (w), b ? nn_tensor_f32 (b) : NULL,
                              o[0], o[1], nn_tensor_f32 (out));
  return nn_value_take_tensor (out);
}

const NnLayerType nn_conv_transpose1d_type = {
  .struct_size = sizeof (NnLayerType),
  .name = "ConvTranspose1d",
  .doc = "1-d transposed convolution (fractionally strided)",
  .schema = convt1d_schema,
  .n_schema = G_N_ELEMENTS (convt1d_schema),
  .args = convt_args,
  .n_args = G_N_ELEMENTS (convt_args),
  .create = convt1d_create,
  .destroy = nn_convnd_destroy,
  .forward = convt_forward,
  .infer = convt_forward,
  .extra_repr = nn_convnd_extra_repr,
  .reset_parameters = nn_convnd_reset_parameters,
  .count_macs = nn_convnd_count_macs,
};

const NnLayerType nn_conv_transpose2d_type = {
  .struct_size = sizeof (NnLayerType),
  .name = "ConvTranspose2d",
  .doc = "2-d transposed convolution (fractionally strided)",
  .schema = convt2d_schema,
  .n_schema = G_N_ELEMENTS (convt2d_schema),
  .args = convt_args,
  .n_args = G_N_ELEMENTS (convt_args),
  .create = convt2d_create,
  .destroy = nn_convnd_destroy,
  .forward = convt_forward,
  .infer = convt_forward,
  .extra_repr = nn_convnd_extra_repr,
  .reset_parameters = nn_convnd_reset_parameters,
  .count_macs = nn_convnd_count_macs,
};
