/* F.conv1d and F.conv2d: a convolution whose weight and bias are call
 * arguments (weight standardisation, a fixed blur kernel held in a buffer,
 * hypernetworks), on the same im2col kernels as Conv1d (conv_nd_kernels.c),
 * zero padding only, as PyTorch's functions. */
#include "conv_nd.h"
#include "nn-blas.h"
#include "../common/nn-layer-util.h"

static gboolean
conv_fn_create (NnModule *self, GError **error)
{
  return TRUE;
}

/* Reads stride, padding, dilation (ints, or 'same' / 'valid' padding) and
 * groups into @g, index 0 being the height (1 for 1-d), as NnConvNd
 * keeps them. */
static gboolean
read_geometry (const NnArgs *args, guint nd, NnConvNd *g, GError **error)
{
  static const char *const names[] = { "stride", "padding", "dilation" };
  gint64 *v[3] = { g->s, g->pad0, g->d };
  const gint64 unit[3] = { 1, 0, 1 };
  const char *pad_str = NULL;
  for (guint a = 0; a < 3; a++) {
    NnValue *val = nn_args_get (args, 3 + a);
    if (a == 1 && nn_value_kind (val) == NN_VALUE_STRING) {
      pad_str = nn_value_get_string (val);
      continue;
    }
    guint n = 0;
    g_autofree gint64 *t = nn_args_ints (args, 3 + a, nd, &n, error);
    if (!t)
      return FALSE;
    if (n != nd)
      return nn_lu_shape_fail (error, "expected %s to be a single integer value or a list "
                         "of %u values to match the convolution dimensions, but "
                         "got %s=%u values", names[a], nd, names[a], n);
    for (guint i = 0; i < nd; i++)
      if (t[i] < unit[a])
        return nn_lu_shape_fail (error, "%s must be %s, found %" G_GINT64_FORMAT, names[a],
                           a == 1 ? "non-negative" : "positive", t[i]);
    v[a][0] = nd == 2 ? t[0] : unit[a];
    v[a][1] = t[nd - 1];
  }
  g->pad1[0] = g->pad0[0];
  g->pad1[1] = g->pad0[1];
  if (pad_str && g_strcmp0 (pad_str, "valid") == 0) {
    g->pad0[0] = g->pad0[1] = g->pad1[0] = g->pad1[1] = 0;
  } else if (pad_str && g_strcmp0 (pad_str, "same") == 0) {
    if (g->s[0] != 1 || g->s[1] != 1)
      return nn_lu_shape_fail (error, "padding='same' is not supported for strided "
                         "convolutions");
    nn_convnd_same_padding (2, g->k, g->d, g->pad0, g->pad1);
  } else if (pad_str) {
    return nn_lu_shape_fail (error, "Invalid padding string '%s', should be one of "
                       "{'valid', 'same'}", pad_str);
  }
  g->groups = nn_args_int (args, 6);
  if (g->groups < 1)
    return nn_lu_shape_fail (error, "non-positive groups is not supported");
  return TRUE;
}

gboolean
nn_conv_fn_check_weight (NnTensor *w, NnTensor *b, gint64 groups, GError **error)
{
  g_autofree char *w_s = nn_shape_to_string (&w->shape);
  gint64 out_c = w->shape.dims[0];
  if (out_c % groups)
    return nn_lu_shape_fail (error, "Given groups=%" G_GINT64_FORMAT ", expected weight "
                             "to be divisible by %" G_GINT64_FORMAT " at dimension 0, but "
                             "got weight of size %s instead", groups, groups, w_s);
  if (b && (b->shape.ndim != 1 || b->shape.dims[0] != out_c)) {
    g_autofree char *b_s = nn_shape_to_string (&b->shape);
    return nn_lu_shape_fail (error, "Given weight of size %s, expected bias to be "
                             "1-dimensional with %" G_GINT64_FORMAT " elements, but got "
                             "bias of size %s instead", w_s, out_c, b_s);
  }
  return TRUE;
}

static NnValue *
conv_fn_run (const NnArgs *args, guint nd, GError **error)
{
  NnTensor *input = nn_args_tensor (args, 0);
  NnTensor *w = nn_args_tensor (args, 1);
  NnTensor *b = nn_args_tensor (args, 2);
  const NnShape *s = &input->shape;
  g_autofree char *in_s = nn_shape_to_string (s);
  g_autofree char *w_s = nn_shape_to_string (&w->shape);
  if (s->ndim != nd + 1 && s->ndim != nd + 2) {
    nn_lu_shape_fail (error, "Expected %uD (unbatched) or %uD (batched) input to conv%ud, "
                "but got input of size: %s", nd + 1, nd + 2, nd, in_s);
    return NULL;
  }
  if (w->shape.ndim != nd + 2) {
    nn_lu_shape_fail (error, "Expected %u-dimensional weight for %u-dimensional input "
                "%s, but got %u-dimensional weight of size %s", nd + 2, nd + 2,
                in_s, w->shape.ndim, w_s);
    return NULL;
  }
  NnConvNd g = { .nd = nd, .pad_mode = NN_CONVND_ZEROS };
  g.k[0] = nd == 2 ? w->shape.dims[2] : 1;
  g.k[1] = w->shape.dims[nd + 1];
  if (!read_geometry (args, nd, &g, error))
    return NULL;
  gboolean batched = s->ndim == nd + 2;
  gint64 n = batched ? s->dims[0] : 1, c = s->dims[batched];
  gint64 h = nd == 2 ? s->dims[batched + 1] : 1, wd = s->dims[s->ndim - 1];
  g.out_channels = w->shape.dims[0];
  g.in_channels = w->shape.dims[1] * g.groups;
  if (!nn_conv_fn_check_weight (w, b, g.groups, error))
    return NULL;
  if (c != g.in_channels) {
    nn_lu_shape_fail (error, "Given groups=%" G_GINT64_FORMAT ", weight of size %s, "
                "expected input%s to have %" G_GINT64_FORMAT " channels, but got %"
                G_GINT64_FORMAT " channels instead", g.groups, w_s, in_s,
                g.in_channels, c);
    return NULL;
  }
  g.has_bias = b != NULL;
  gint64 ext[2] = { h, wd }, out[2];
  for (guint i = 0; i < 2; i++) {
    gint64 padded = ext[i] + g.pad0[i] + g.pad1[i], span = g.d[i] * (g.k[i] - 1) + 1;
    if (padded < span) {
      nn_lu_shape_fail (error, "Calculated padded input size per channel: (%" G_GINT64_FORMAT
                  "). Kernel size: (%" G_GINT64_FORMAT "). Kernel size can't be "
                  "greater than actual input size", padded, span);
      return NULL;
    }
    out[i] = (padded - span) / g.s[i] + 1;
  }
  NnShape os = *s;
  os.dims[batched] = g.out_channels;
  if (nd == 2)
    os.dims[batched + 1] = out[0];
  os.dims[s->ndim - 1] = out[1];
  gboolean meta = nn_tensor_is_meta (input);
  if (!meta && !nn_blas_ready (error))
    return NULL;
  NnTensor *y = nn_lu_new_f32 (&os, meta);
  if (!y || meta)
    return nn_lu_result (y, error);
  nn_convnd_forward_kernel (&g, nn_tensor_f32 (input), n, h, wd, nn_tensor_f32 (w),
                            b ? nn_tensor_f32 (b) : NULL, out[0], out[1],
                            nn_tensor_f32 (y));
  return nn_value_take_tensor (y);
}

static NnValue *
conv1d_fn_forward (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  return conv_fn_run (args, 1, error);
}

static NnValue *
conv2d_fn_forward (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  return conv_fn_run (args, 2, error);
}

/* F.convNd(input, weight, bias=None, stride=1, padding=0, dilation=1,
 * groups=1), for 1, 2 and 3 dims (conv3d_fn.c). */
const NnArgSpec nn_conv_fn_args[NN_CONV_FN_N_ARGS] = {
  { "input", NN_ARG_TENSOR, 0, 0, NULL, "[N, C, *] or unbatched [C, *]" },
  { "weight", NN_ARG_TENSOR, 0, 0, NULL, "[out_channels, C / groups, *kernel]" },
  { "bias", NN_ARG_TENSOR | NN_ARG_NONE, 0, NN_ARG_OPTIONAL, "null", "[out_channels]" },
  { "stride", NN_ARG_INT | NN_ARG_SEQ, 0, NN_ARG_OPTIONAL, "1", "int or tuple" },
  { "padding", NN_ARG_INT | NN_ARG_SEQ | NN_ARG_STRING, 0, NN_ARG_OPTIONAL, "0",
    "int, tuple, 'same' or 'valid'; zeros" },
  { "dilation", NN_ARG_INT | NN_ARG_SEQ, 0, NN_ARG_OPTIONAL, "1", "int or tuple" },
  { "groups", NN_ARG_INT, 0, NN_ARG_OPTIONAL, "1", "blocked channel groups" },
};

static const char *const conv1d_fn_aliases[] = {
  "torch.nn.functional.conv1d", "torch.conv1d", NULL };
static const char *const conv2d_fn_aliases[] = {
  "torch.nn.functional.conv2d", "torch.conv2d", NULL };

const NnLayerType nn_conv1d_fn_type = {
  .struct_size = sizeof (NnLayerType),
  .name = "conv1d",
  .doc = "F.conv1d: a 1-d convolution with weight and bias as arguments",
  .flags = NN_LAYER_OP,
  .args = nn_conv_fn_args,
  .n_args = NN_CONV_FN_N_ARGS,
  .aliases = conv1d_fn_aliases,
  .create = conv_fn_create,
  .forward = conv1d_fn_forward,
  .infer = conv1d_fn_forward,
};

const NnLayerType nn_conv2d_fn_type = {
  .struct_size = sizeof (NnLayerType),
  .name = "conv2d",
  .doc = "F.conv2d: a 2-d convolution with weight and bias as arguments",
  .flags = NN_LAYER_OP,
  .args = nn_conv_fn_args,
  .n_args = NN_CONV_FN_N_ARGS,
  .aliases = conv2d_fn_aliases,
  .create = conv_fn_create,
  .forward = conv2d_fn_forward,
  .infer = conv2d_fn_forward,
};
