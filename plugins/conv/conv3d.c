/* Conv3d: PyTorch's nn.Conv3d on [N, C, D, H, W] (or unbatched
 * [C, D, H, W]) float32, for video and volumes: vol2col + sgemm per image
 * and group, padding ints or 'same' / 'valid', the four padding modes. */
#include "conv_nd.h"
#include "nn-blas.h"
#include "../common/nn-layer-util.h"

#include <cblas.h>
#include <string.h>

static const char *const padding_strings[] = { "same", "valid", NULL };
static const char *const padding_modes[] = {
  "zeros", "reflect", "replicate", "circular", NULL
};

static const NnSchemaKey conv3d_schema[] = {
  { "in_channels", NN_KIND_INT, 0, NN_KEY_HAS_MIN, NULL, 1, 0, NULL,
    "channels C of the input" },
  { "out_channels", NN_KIND_INT, 0, NN_KEY_HAS_MIN, NULL, 1, 0, NULL,
    "channels produced" },
  { "kernel_size", NN_KIND_INT_TUPLE, 3, NN_KEY_EXPAND | NN_KEY_HAS_MIN,
    NULL, 1, 0, NULL, "kernel (d, h, w)" },
  { "stride", NN_KIND_INT_TUPLE, 3,
    NN_KEY_OPTIONAL | NN_KEY_EXPAND | NN_KEY_HAS_MIN, "[1, 1, 1]", 1, 0, NULL,
    "stride" },
  { "padding", NN_KIND_INT_TUPLE, 3,
    NN_KEY_OPTIONAL | NN_KEY_EXPAND | NN_KEY_OR_ENUM | NN_KEY_HAS_MIN,
    "[0, 0, 0]", 0, 0, padding_strings,
    "padding on both sides of each dim, or 'same' / 'valid'" },
  { "dilation", NN_KIND_INT_TUPLE, 3,
    NN_KEY_OPTIONAL | NN_KEY_EXPAND | NN_KEY_HAS_MIN, "[1, 1, 1]", 1, 0, NULL,
    "spacing between kernel taps" },
  { "groups", NN_KIND_INT, 0, NN_KEY_OPTIONAL | NN_KEY_HAS_MIN, "1", 1, 0,
    NULL, "blocked connections from input to output channels" },
  { "bias", NN_KIND_BOOL, 0, NN_KEY_OPTIONAL, "true", 0, 0, NULL,
    "learnable bias" },
  { "padding_mode", NN_KIND_ENUM, 0, NN_KEY_OPTIONAL, "\"zeros\"", 0, 0,
    padding_modes, "how the padding is filled" },
};

static gboolean
conv3d_create (NnModule *self, GError **error)
{
  NnConv3d *g = g_new0 (NnConv3d, 1);
  nn_module_set_private (self, g);
  g->in_c = nn_module_config_int (self, "in_channels");
  g->out_c = nn_module_config_int (self, "out_channels");
  g->groups = nn_module_config_int (self, "groups");
  nn_module_config_ints (self, "kernel_size", g->k, 3);
  nn_module_config_ints (self, "stride", g->s, 3);
  nn_module_config_ints (self, "dilation", g->d, 3);
  const char *mode = nn_module_config_string (self, "padding_mode");
  for (guint i = 0; padding_modes[i]; i++)
    if (g_strcmp0 (mode, padding_modes[i]) == 0)
      g->mode = (NnConvNdPad) i;
  if (g->in_c % g->groups || g->out_c % g->groups) {
    g_set_error (error, NN_DESCRIPTOR_ERROR, NN_DESCRIPTOR_ERROR_OUT_OF_RANGE,
                 "%s must be divisible by groups (found %" G_GINT64_FORMAT
                 ", groups=%" G_GINT64_FORMAT ")",
                 g->in_c % g->groups ? "in_channels" : "out_channels",
                 g->in_c % g->groups ? g->in_c : g->out_c, g->groups);
    return FALSE;
  }
  if (nn_module_config_ints (self, "padding", g->pad0, 3)) {
    memcpy (g->pad1, g->pad0, sizeof g->pad0);
  } else if (g_strcmp0 (nn_module_config_string (self, "padding"), "same") == 0) {
    if (g->s[0] != 1 || g->s[1] != 1 || g->s[2] != 1) {
      g_set_error (error, NN_DESCRIPTOR_ERROR, NN_DESCRIPTOR_ERROR_INVALID,
                   "padding='same' is not supported for strided convolutions");
      return FALSE;
    }
    nn_convnd_same_padding (3, g->k, g->d, g->pad0, g->pad1);
  }
  NnShape ws = { 5, { g->out_c, g->in_c / g->groups, g->k[0], g->k[1], g->k[2] } };
  return nn_lu_add_weight_bias (self, &ws, nn_module_config_bool (self, "bias"),
                                g->out_c, error);
}

static void
conv3d_destroy (NnModule *self)
{
  g_free (nn_module_get_private (self));
}

/* Channels [c0, c0 + cg) of one volume unfolded into col
 * [cg * kd * kh * kw, od * oh * ow]. */
static void
vol2col (const NnConv3d *g, const float *vol, gint64 c0, gint64 cg, const gint64 ext[3],
         const gint64 out[3], float *col)
{
  gint64 ovol = out[0] * out[1] * out[2], plane = ext[0] * ext[1] * ext[2];
  float *dst = col;
  for (gint64 c = 0; c < cg; c++)
    for (gint64 k0 = 0; k0 < g->k[0]; k0++)
      for (gint64 k1 = 0; k1 < g->k[1]; k1++)
        for (gint64 k2 = 0; k2 < g->k[2]; k2++, dst += ovol) {
          const float *src = vol + (c0 + c) * plane;
          gint64 o = 0;
          for (gint64 o0 = 0; o0 < out[0]; o0++) {
            gint64 i0 = nn_convnd_source (g->mode, o0 * g->s[0] + k0 * g->d[0], g->pad0[0], ext[0]);
            for (gint64 o1 = 0; o1 < out[1]; o1++) {
              gint64 i1 = nn_convnd_source (g->mode, o1 * g->s[1] + k1 * g->d[1], g->pad0[1], ext[1]);
              for (gint64 o2 = 0; o2 < out[2]; o2++, o++) {
                gint64 i2 = nn_convnd_source (g->mode, o2 * g->s[2] + k2 * g->d[2], g->pad0[2],
                                    ext[2]);
                dst[o] = (i0 < 0 || i1 < 0 || i2 < 0)
                           ? 0.0f : src[(i0 * ext[1] + i1) * ext[2] + i2];
              }
            }
          }
        }
}

NnTensor *
nn_conv3d_run (const NnConv3d *g, NnTensor *input, NnTensor *w, NnTensor *b,
               GError **error)
{
  const NnShape *s = &input->shape;
  if (s->ndim != 4 && s->ndim != 5) {
    g_autofree char *found = nn_shape_to_string (s);
    g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH,
                 "Expected 4D (unbatched) or 5D (batched) input to conv3d, but got "
                 "input of size: %s", found);
    return NULL;
  }
  gboolean batched = s->ndim == 5;
  gint64 n = batched ? s->dims[0] : 1, c = s->dims[batched];
  gint64 ext[3] = { s->dims[batched + 1], s->dims[batched + 2], s->dims[batched + 3] };
  if (c != g->in_c) {
    g_autofree char *ws = nn_shape_to_string (&w->shape);
    g_autofree char *found = nn_shape_to_string (s);
    g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH,
                 "Given groups=%" G_GINT64_FORMAT ", weight of size %s, expected "
                 "input%s to have %" G_GINT64_FORMAT " channels, but got %"
                 G_GINT64_FORMAT " channels instead", g->groups, ws, found, g->in_c, c);
    return NULL;
  }
  gint64 out[3], padded[3], span[3];
  for (guint i = 0; i < 3; i++) {
    padded[i] = ext[i] + g->pad0[i] + g->pad1[i];
    span[i] = g->d[i] * (g->k[i] - 1) + 1;
  }
  for (guint i = 0; i < 3; i++) {
    if (padded[i] < span[i]) {
      /* PyTorch names every dim, not only the one too small. */
      g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH,
                   "Calculated padded input size per channel: (%" G_GINT64_FORMAT " x %"
                   G_GINT64_FORMAT " x %" G_GINT64_FORMAT "). Kernel size: (%"
                   G_GINT64_FORMAT " x %" G_GINT64_FORMAT " x %" G_GINT64_FORMAT
                   "). Kernel size can't be greater than actual input size",
                   padded[0], padded[1], padded[2], span[0], span[1], span[2]);
      return NULL;
    }
    if (g->mode == NN_CONVND_REFLECT && (g->pad0[i] >= ext[i] || g->pad1[i] >= ext[i])) {
      nn_lu_shape_error (error, "an input larger than the reflect padding", s);
      return NULL;
    }
    if (g->mode == NN_CONVND_CIRCULAR && (g->pad0[i] > ext[i] || g->pad1[i] > ext[i])) {
      nn_lu_shape_error (error, "an input at least as large as the circular padding", s);
      return NULL;
    }
    out[i] = (padded[i] - span[i]) / g->s[i] + 1;
  }
  NnShape os = *s;
  os.dims[batched] = g->out_c;
  for (guint i = 0; i < 3; i++)
    os.dims[batched + 1 + i] = out[i];
  gboolean meta = nn_tensor_is_meta (input);
  if (!meta && !nn_blas_ready (error))
    return NULL;
  NnTensor *y = nn_lu_new_f32 (&os, meta);
  if (!y || meta) {
    if (!y)
      g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_FAILED,
                   "cannot allocate the conv3d output");
    return y;
  }
  gint64 cg = g->in_c / g->groups, og = g->out_c / g->groups;
  gint64 kk = cg * g->k[0] * g->k[1] * g->k[2], ovol = out[0] * out[1] * out[2];
  gint64 vol = ext[0] * ext[1] * ext[2];
  float *col = g_try_new (float, MAX (kk * ovol, 1));
  if (!col) {
    nn_tensor_unref (y);
    g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_FAILED,
                 "cannot allocate the %" G_GINT64_FORMAT "-float unfolded input",
                 kk * ovol);
    return NULL;
  }
  const float *x = nn_tensor_f32 (input), *wd = nn_tensor_f32 (w);
  const float *bd = b ? nn_tensor_f32 (b) : NULL;
  float *yd = nn_tensor_f32 (y);
  nn_blas_prepare ();
  for (gint64 bi = 0; bi < n; bi++) {
    float *o = yd + bi * g->out_c * ovol;
    for (gint64 gr = 0; gr < g->groups; gr++) {
      vol2col (g, x + bi * c * vol, gr * cg, cg, ext, out, col);
      cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasNoTrans, (int) og, (int) ovol,
                   (int) kk, 1.0f, wd + gr * og * kk, (int) kk, col, (int) ovol, 0.0f,
                   o + gr * og * ovol, (int) ovol);
    }
    if (bd)
      for (gint64 oc = 0; oc < g->out_c; oc++)
        for (gint64 i = 0; i < ovol; i++)
          o[oc * ovol + i] += bd[oc];
  }
  g_free (col);
  return y;
}

static NnValue *
conv3d_forward (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  NnTensor *y = nn_conv3d_run (nn_module_get_private (self), nn_args_tensor (args, 0),
                               nn_module_get_parameter (self, "weight"),
                               nn_module_get_parameter (self, "bias"), error);
  return y ? nn_value_take_tensor (y) : NULL;
}

/* Appends ", key=(a, b, c)" unless every element equals @dflt. */
static void
append_triple (GString *s, NnModule *self, const char *key, gint64 dflt, gboolean always)
{
  gint64 t[3];
  if (!nn_module_config_ints (self, key, t, 3)) {
    g_string_append_printf (s, ", %s=%s", key, nn_module_config_string (self, key));
    return;
  }
  if (!always && t[0] == dflt && t[1] == dflt && t[2] == dflt)
    return;
  g_string_append_printf (s, ", %s=(%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT ", %"
                          G_GINT64_FORMAT ")", key, t[0], t[1], t[2]);
}

/* PyTorch's _ConvNd.extra_repr. */
static char *
conv3d_extra_repr (NnModule *self)
{
  const NnConv3d *g = nn_module_get_private (self);
  GString *s = g_string_new (NULL);
  g_string_append_printf (s, "%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT, g->in_c, g->out_c);
  append_triple (s, self, "kernel_size", 0, TRUE);
  append_triple (s, self, "stride", 1, TRUE);
  append_triple (s, self, "padding", 0, FALSE);
  append_triple (s, self, "dilation", 1, FALSE);
  if (g->groups != 1)
    g_string_append_printf (s, ", groups=%" G_GINT64_FORMAT, g->groups);
  if (!nn_module_config_bool (self, "bias"))
    g_string_append (s, ", bias=False");
  if (g->mode != NN_CONVND_ZEROS)
    g_string_append_printf (s, ", padding_mode=%s", padding_modes[g->mode]);
  return g_string_free (s, FALSE);
}

const NnLayerType nn_conv3d_type = {
  .struct_size = sizeof (NnLayerType),
  .name = "Conv3d",
  .doc = "3-d convolution of [N, C, D, H, W] input",
  .schema = conv3d_schema,
  .n_schema = G_N_ELEMENTS (conv3d_schema),
  .create = conv3d_create,
  .destroy = conv3d_destroy,
  .forward = conv3d_forward,
  .infer = conv3d_forward,
  .extra_repr = conv3d_extra_repr,
  .reset_parameters = nn_convnd_reset_parameters,
  .count_macs = nn_convnd_count_macs,
};
