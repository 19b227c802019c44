/* F.interpolate: nearest, nearest-exact, linear, bilinear, bicubic,
 * trilinear and area resampling of [N, C, d1, ..., dk] float32 (k = 1 to
 * 3), with PyTorch 1.13's size and scale rules and its source-index
 * arithmetic (in float, as its CPU kernels).  Every mode is separable: each
 * output position of each dim reads a few taps with weights, and an output
 * element is the sum over the product of its dims' taps. */
#include "upsample.h"
#include "../common/nn-layer-util.h"

/* Taps of one dim: output position o reads idx[first[o] + t] with weight
 * w[first[o] + t], t < count[o]. */
typedef struct {
  gint64 *first, *count, *idx;
  float *w;
} Taps;

static void
taps_free (Taps *t)
{
  g_free (t->first);
  g_free (t->count);
  g_free (t->idx);
  g_free (t->w);
}

/* PyTorch's compute_scales_value: 1 / scale when a scale was given. */
static float
scales_value (double scale, gint64 in, gint64 out)
{
  return scale > 0 ? (float) (1.0 / scale) : (float) in / (float) out;
}

static float
area_scale (gint64 in, gint64 out, gboolean align, double scale)
{
  if (align)
    return out > 1 ? (float) (in - 1) / (float) (out - 1) : 0.0f;
  return scales_value (scale, in, out);
}

static float
source_index (float scale, gint64 dst, gboolean align, gboolean cubic)
{
  if (align)
    return scale * (float) dst;
  float src = scale * ((float) dst + 0.5f) - 0.5f;
  return (!cubic && src < 0.0f) ? 0.0f : src;
}

/* A = -0.75, as PyTorch's upsample_bicubic2d. */
static float
cubic1 (float x)
{
  const float a = -0.75f;
  return ((a + 2.0f) * x - (a + 3.0f)) * x * x + 1.0f;
}

static float
cubic2 (float x)
{
  const float a = -0.75f;
  return ((a * x - 5.0f * a) * x + 8.0f * a) * x - 4.0f * a;
}

static void
build_taps (const char *mode, gint64 in, gint64 out, double scale,
            gboolean align, Taps *t)
{
  gint64 max_taps = g_str_equal (mode, "bicubic") ? 4
                    : g_str_equal (mode, "area") ? in / out + 2 : 2;
  t->first = g_new (gint64, out);
  t->count = g_new0 (gint64, out);
  t->idx = g_new0 (gint64, out * max_taps);
  t->w = g_new0 (float, out * max_taps);
  for (gint64 o = 0; o < out; o++) {
    gint64 f = t->first[o] = o * max_taps;
    if (g_str_equal (mode, "nearest") || g_str_equal (mode, "nearest-exact")) {
      gint64 i;
      if (g_str_equal (mode, "nearest") && out == in)
        i = o;
      else if (g_str_equal (mode, "nearest") && out == 2 * in)
        i = o >> 1;
      else {
        float s = scales_value (scale, in, out);
        float pos = g_str_equal (mode, "nearest") ? (float) o * s
                                                  : ((float) o + 0.5f) * s;
        i = MIN ((gint64) floorf (pos), in - 1);
      }
      t->idx[f] = i;
      t->w[f] = 1.0f;
      t->count[o] = 1;
    } else if (g_str_equal (mode, "area")) {
      gint64 a = (o * in) / out, b = ((o + 1) * in + out - 1) / out;
      for (gint64 i = a; i < b; i++) {
        t->idx[f + i - a] = i;
        t->w[f + i - a] = 1.0f / (float) (b - a);
      }
      t->count[o] = b - a;
    } else if (g_str_equal (mode, "bicubic")) {
      float s = area_scale (in, out, align, scale);
      float src = source_index (s, o, align, TRUE);
      float fl = floorf (src), x = src - fl;
      float c[4] = { cubic2 (x + 1.0f), cubic1 (x), cubic1 (1.0f - x),
                     cubic2 (2.0f - x) };
      for (gint64 k = 0; k < 4; k++) {
        gint64 i = (gint64) fl - 1 + k;
        t->idx[f + k] = CLAMP (i, 0, in - 1);
        t->w[f + k] = c[k];
      }
      t->count[o] = 4;
    } else {
      float s = area_scale (in, out, align, scale);
      float src = source_index (s, o, align, FALSE);
      gint64 i0 = (gint64) src;
      gint64 i1 = i0 + (i0 < in - 1 ? 1 : 0);
      float l1 = src - (float) i0;
      t->idx[f] = i0;
      t->w[f] = 1.0f - l1;
      t->idx[f + 1] = i1;
      t->w[f + 1] = l1;
      t->count[o] = 2;
    }
  }
}

/* Number of spatial dims each mode needs (0: any of 1 to 3). */
static int
mode_dims (const char *mode)
{
  static const struct { const char *name; int dims; } modes[] = {
    { "nearest", 0 }, { "nearest-exact", 0 }, { "area", 0 }, { "linear", 1 },
    { "bilinear", 2 }, { "bicubic", 2 }, { "trilinear", 3 },
  };
  for (guint i = 0; i < G_N_ELEMENTS (modes); i++)
    if (g_str_equal (mode, modes[i].name))
      return modes[i].dims;
  return -1;
}

/* Reads None, a number or a sequence of @nd numbers into @out. */
static gboolean
read_per_dim (const NnValue *v, guint nd, const char *what, const NnShape *s,
              double *out, gboolean *given, GError **error)
{
  *given = v && !nn_value_is_none (v);
  if (!*given)
    return TRUE;
  NnValueKind k = nn_value_kind (v);
  if (k == NN_VALUE_TUPLE || k == NN_VALUE_LIST) {
    guint n = nn_value_n_items (v);
    if (n != nd) {
      GString *in = g_string_new ("[");
      for (guint i = 2; i < s->ndim; i++)
        g_string_append_printf (in, "%s%" G_GINT64_FORMAT, i > 2 ? ", " : "", s->dims[i]);
      g_string_append_c (in, ']');
      g_autofree char *vs = nn_value_to_string (v);
      g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH,
                   "Input and %s must have the same number of spatial "
                   "dimensions, but got input with spatial dimensions of %s "
                   "and %s%s", what, in->str,
                   g_str_equal (what, "output") ? "output size of " : "scale_factor of shape ",
                   vs);
      g_string_free (in, TRUE);
      return FALSE;
    }
    for (guint i = 0; i < n; i++)
      out[i] = nn_value_get_float (nn_value_item (v, i));
    return TRUE;
  }
  for (guint i = 0; i < nd; i++)
    out[i] = nn_value_get_float (v);
  return TRUE;
}

/* The planes [begin, end) of an interpolation, one dim at a time: the
 * last dim of every input row, then the middle dim by whole rows, then
 * the first by whole planes.  The same sums as taking every output element
 * over the product of its taps (2-D and 1-D: the same floats), without
 * re-reading each input row for each output row: LR-ASPP's final
 * bilinear upsampling took 38% of its forward that way. */
typedef struct {
  const float *x;
  float *y;
  const Taps *taps;
  gint64 in[3], out[3];
} Resample;

/* dst[j] = sum over the taps of @t at position @o of w * rows[idx][j]. */
static void
combine_rows (float *restrict dst, const float *src, gint64 row_len,
              const Taps *t, gint64 o)
{
  gint64 f = t->first[o];
  for (gint64 j = 0; j < row_len; j++)
    dst[j] = 0.0f;
  for (gint64 k = 0; k < t->count[o]; k++)
    {
      const float *restrict row = src + t->idx[f + k] * row_len;
      float w = t->w[f + k];
      for (gint64 j = 0; j < row_len; j++)
        dst[j] += w * row[j];
    }
}

static void
resample_planes (gsize begin, gsize end, gpointer data)
{
  const Resample *r = data;
  const Taps *t = r->taps;
  gint64 in_plane = r->in[0] * r->in[1] * r->in[2];
  gint64 out_plane = r->out[0] * r->out[1] * r->out[2];
  /* After the last dim: in0 x in1 rows of out2; after the middle one:
   * in0 planes of out1 x out2 (the output itself when dim 0 is a unit). */
  gboolean unit0 = r->in[0] == 1 && r->out[0] == 1;
  g_autofree float *a = g_new (float, r->in[0] * r->in[1] * r->out[2]);
  g_autofree float *b = unit0 ? NULL : g_new (float, r->in[0] * r->out[1] * r->out[2]);
  for (gsize p = begin; p < end; p++)
    {
      const float *src = r->x + p * in_plane;
      float *dst = r->y + p * out_plane;
      for (gint64 row = 0; row < r->in[0] * r->in[1]; row++)
        {
          const float *in = src + row * r->in[2];
          float *o = a + row * r->out[2];
          for (gint64 o2 = 0; o2 < r->out[2]; o2++)
            {
              gint64 f = t[2].first[o2];
              float acc = 0.0f;
              for (gint64 k = 0; k < t[2].count[o2]; k++)
                acc += t[2].w[f + k] * in[t[2].idx[f + k]];
              o[o2] = acc;
            }
        }
      float *mid = unit0 ? dst : b;
      for (gint64 i0 = 0; i0 < r->in[0]; i0++)
        for (gint64 o1 = 0; o1 < r->out[1]; o1++)
          combine_rows (mid + (i0 * r->out[1] + o1) * r->out[2],
                        a + i0 * r->in[1] * r->out[2], r->out[2], &t[1], o1);
      if (unit0)
        continue;
      for (gint64 o0 = 0; o0 < r->out[0]; o0++)
        combine_rows (dst + o0 * r->out[1] * r->out[2], b,
                      r->out[1] * r->out[2], &t[0], o0);
    }
}

NnValue *
nn_interpolate (NnTensor *input, const NnInterpArgs *a, GError **error)
{
  const NnShape *s = &input->shape;
  int need = mode_dims (a->mode);
  if (s->ndim < 3 || s->ndim > 5 || need < 0) {
    g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH,
                 "Input Error: Only 3D, 4D and 5D input Tensors supported (got "
                 "%uD) for the modes: nearest | linear | bilinear | bicubic | "
                 "trilinear | area | nearest-exact (got %s)", s->ndim, a->mode);
    return NULL;
  }
  guint nd = s->ndim - 2;
  gboolean interpolating = need > 0;
  if (a->align_corners >= 0 && !interpolating) {
    g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_FAILED,
                 "align_corners option can only be set with the interpolating "
                 "modes: linear | bilinear | bicubic | trilinear");
    return NULL;
  }
  double size[3] = { 0 }, scale[3] = { 0 };
  gboolean has_size, has_scale;
  if (!read_per_dim (a->size, nd, "output", s, size, &has_size, error)
      || !read_per_dim (a->scale_factor, nd, "scale_factor", s, scale,
                        &has_scale, error))
    return NULL;
  if (has_size == has_scale) {
    g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_FAILED,
                 has_size ? "only one of size or scale_factor should be defined"
                          : "either size or scale_factor should be defined");
    return NULL;
  }
  if (a->recompute > 0 && has_size) {
    g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_FAILED,
                 "recompute_scale_factor is not meaningful with an explicit size.");
    return NULL;
  }
  if (need > 0 && (guint) need != nd) {
    g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH,
                 "Got %uD input, but %s mode needs %dD input", s->ndim, a->mode,
                 need + 2);
    return NULL;
  }
  /* area, and recompute_scale_factor=True, turn the scale into a size and
   * let the kernels derive the scale from the sizes. */
  gboolean pass_scale = has_scale && !(a->recompute > 0 || g_str_equal (a->mode, "area"));
  NnShape os = *s;
  for (guint i = 0; i < nd; i++)
    os.dims[2 + i] = has_size ? (gint64) size[i]
                              : (gint64) floor ((double) s->dims[2 + i] * scale[i]);
  for (guint i = 0; i < nd; i++)
    if (os.dims[2 + i] <= 0 || s->dims[2 + i] <= 0) {
      g_autofree char *in = nn_shape_to_string (s);
      g_autofree char *out = nn_shape_to_string (&os);
      g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH,
                   "Input and output sizes should be greater than 0, but got "
                   "input %s output %s", in, out);
      return NULL;
    }
  NnTensor *out = nn_lu_new_f32 (&os, nn_tensor_is_meta (input));
  if (!out || nn_tensor_is_meta (input))
    return nn_lu_result (out, error);

  /* Three dims always: leading unit dims read their one tap. */
  gint64 in3[3] = { 1, 1, 1 }, out3[3] = { 1, 1, 1 };
  Taps taps[3];
  for (guint i = 0; i < 3; i++) {
    guint d = i + nd - 3 + 2;  /* dim of s for i >= 3 - nd */
    gboolean real = i >= 3 - nd;
    in3[i] = real ? s->dims[d] : 1;
    out3[i] = real ? os.dims[d] : 1;
    build_taps (real ? a->mode : "nearest", in3[i], out3[i],
                real && pass_scale ? scale[i - (3 - nd)] : 0.0,
                a->align_corners > 0, &taps[i]);
  }
  Resample r = { nn_tensor_f32 (input), nn_tensor_f32 (out), taps,
                 { in3[0], in3[1], in3[2] }, { out3[0], out3[1], out3[2] } };
  gint64 planes = s->dims[0] * s->dims[1];
  nn_thread_pool_parallel_for_work (nn_call_get_thread_pool (NULL),
                                    (gsize) planes,
                                    planes * (out3[0] * out3[1] * out3[2]
                                              + in3[0] * in3[1] * in3[2]),
                                    resample_planes, &r);
  for (guint i = 0; i < 3; i++)
    taps_free (&taps[i]);
  return nn_value_take_tensor (out);
}
