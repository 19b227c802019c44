/* ops plugin: torch.nn.functional.pad with constant, reflect, replicate and
 * circular modes.  Pads apply to the last dims, last dim first, as
 * (left, right, top, bottom, ...); negative constant pads crop. */
#include "ops.h"

#include <string.h>

typedef gint64 (*PadMap) (gint64 i, gint64 n);

/* Each maps an index outside [0, n) back into it; -1: the constant. */
static gint64 map_constant (gint64 i, gint64 n) { return i >= 0 && i < n ? i : -1; }
static gint64 map_reflect (gint64 i, gint64 n)
{
  if (i < 0)
    i = -i;
  if (i >= n)
    i = 2 * (n - 1) - i;
  return i;
}
static gint64 map_replicate (gint64 i, gint64 n) { return CLAMP (i, 0, n - 1); }
static gint64 map_circular (gint64 i, gint64 n) { return ((i % n) + n) % n; }

static gboolean
check_pads (NnTensor *in, const char *mode, const gint64 *pad, guint npad,
            GError **error)
{
  guint nd = npad / 2, ndim = in->shape.ndim;
  if (strcmp (mode, "constant") == 0)
    return TRUE;
  /* Non-constant modes need a batch (or channel) dim in front and pad at
   * most the last three dims, as ATen's _pad_enum. */
  if (nd > 3 || ndim < nd + 1 || ndim > nd + 2)
    return nn_ops_shape_fail (error, "Only 2D, 3D, 4D, 5D padding with "
                              "non-constant padding are supported for now "
                              "(%s padding of %u values on a %uD input)",
                              mode, npad, ndim);
  for (guint k = 0; k < nd; k++)
    {
      guint d = ndim - 1 - k;
      gint64 size = in->shape.dims[d], l = pad[2 * k], r = pad[2 * k + 1];
      if (strcmp (mode, "reflect") == 0 && (l >= size || r >= size))
        {
          g_autofree char *s = nn_shape_to_string (&in->shape);
          return nn_ops_shape_fail (error, "Argument #4: Padding size should "
                                    "be less than the corresponding input "
                                    "dimension, but got: padding (%"
                                    G_GINT64_FORMAT ", %" G_GINT64_FORMAT
                                    ") at dimension %u of input %s", l, r, d,
                                    s);
        }
      if (strcmp (mode, "circular") == 0 && (l > size || r > size))
        return nn_ops_shape_fail (error, "Padding value causes wrapping "
                                  "around more than once.");
      if (size == 0)
        return nn_ops_shape_fail (error, "%s padding of dimension %u needs a "
                                  "non-empty input", mode, d);
    }
  return TRUE;
}

/* The padded copy, a row (last dim) at a time: the last dim's mapping is
 * worked out once and its identity-mapped middle is one memcpy, since an
 * element-by-element walk made Swin's (often zero) pads a tenth of its
 * forward. */
static void
fill (NnTensor *out, NnTensor *in, const gint64 *before, PadMap map,
      double value)
{
  const NnShape *shape = &out->shape;
  guint last = shape->ndim ? shape->ndim - 1 : 0;
  gint64 w_out = shape->ndim ? shape->dims[last] : 1;
  gint64 w_in = shape->ndim ? in->shape.dims[last] : 1;
  gint64 b = shape->ndim ? before[last] : 0;
  gsize es = nn_dtype_size (in->dtype);
  guint8 *dst = out->data, *cval = g_alloca (es);
  const guint8 *src = in->data;
  nn_ops_set_f (out, 0, value);
  memcpy (cval, dst, es);
  g_autofree gint64 *col = g_new (gint64, w_out);
  for (gint64 j = 0; j < w_out; j++)
    col[j] = shape->ndim ? map (j - b, w_in) : 0;
  /* Output columns [lo, hi) read input columns [lo - b, hi - b). */
  gint64 lo = CLAMP (b, 0, w_out), hi = CLAMP (b + w_in, lo, w_out);
  gint64 own[NN_MAX_DIMS];
  nn_ops_strides (&in->shape, own);
  NnShape rows = *shape;
  rows.ndim = last;
  NnOpsIter it;
  nn_ops_iter_init (&it, &rows);
  gint64 n_rows = nn_shape_numel (&rows);
  for (gint64 r = 0; r < n_rows; r++, nn_ops_iter_next (&it))
    {
      guint8 *d = dst + r * w_out * es;
      gint64 base = 0;
      for (guint k = 0; k < rows.ndim && base >= 0; k++)
        {
          gint64 j = map (it.idx[k] - before[k], in->shape.dims[k]);
          base = j < 0 ? -1 : base + j * own[k];
        }
      for (gint64 j = 0; j < w_out; j++)
        {
          if (j == lo && base >= 0 && hi > lo)
            {
              memcpy (d + lo * es, src + (base + lo - b) * es, (hi - lo) * es);
              j = hi - 1;
              continue;
            }
          const guint8 *from = base < 0 || col[j] < 0
                               ? cval : src + (base + col[j]) * es;
          memcpy (d + j * es, from, es);
        }
    }
}

static NnValue *
pad_fn (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  NnTensor *in = nn_args_tensor (args, 0);
  gint64 pad[2 * NN_MAX_DIMS];
  guint npad;
  const char *mode = nn_value_get_string (nn_args_get (args, 2));
  NnValue *valv = nn_args_get (args, 3);
  if (!nn_ops_sizes (nn_args_get (args, 1), "pad", pad, &npad, error))
    return NULL;
  PadMap map;
  if (strcmp (mode, "constant") == 0)
    map = map_constant;
  else if (strcmp (mode, "reflect") == 0)
    map = map_reflect;
  else if (strcmp (mode, "replicate") == 0)
    map = map_replicate;
  else if (strcmp (mode, "circular") == 0)
    map = map_circular;
  else
    {
      nn_ops_fail (error, "Unrecognised padding mode %s, expected one of "
                   "'constant', 'reflect', 'replicate', 'circular'", mode);
      return NULL;
    }
  if (npad % 2 != 0)
    {
      nn_ops_shape_fail (error, "Padding length must be divisible by 2");
      return NULL;
    }
  if (npad / 2 > in->shape.ndim)
    {
      nn_ops_shape_fail (error, "Padding length should be less than or equal "
                         "to two times the input dimension but got padding "
                         "length %u and input of dimension %u", npad,
                         in->shape.ndim);
      return NULL;
    }
  if (map != map_constant && !nn_value_is_none (valv)
      && nn_value_get_float (valv) != 0)
    {
      nn_ops_fail (error, "Padding mode \"%s\" doesn't take in value argument",
                   mode);
      return NULL;
    }
  if (!check_pads (in, mode, pad, npad, error))
    return NULL;

  NnShape shape = in->shape;
  gint64 before[NN_MAX_DIMS] = { 0 };
  for (guint k = 0; k < npad / 2; k++)
    {
      guint d = in->shape.ndim - 1 - k;
      before[d] = pad[2 * k];
      shape.dims[d] += pad[2 * k] + pad[2 * k + 1];
      if (shape.dims[d] < 0)
        {
          g_autofree char *s = nn_shape_to_string (&in->shape);
          nn_ops_shape_fail (error, "The input size %" G_GINT64_FORMAT ", plus "
                             "negative padding %" G_GINT64_FORMAT " and %"
                             G_GINT64_FORMAT " resulted in a negative output "
                             "size, which is invalid. Check dimension %u of "
                             "your input.", in->shape.dims[d], pad[2 * k],
                             pad[2 * k + 1], d);
          return NULL;
        }
    }
  NnTensor *out = nn_ops_new (nn_tensor_is_meta (in), in->dtype, &shape, error);
  if (!out || nn_tensor_is_meta (in))
    return nn_ops_take (out);
  double value = nn_value_is_none (valv) ? 0 : nn_value_get_float (valv);
  if (nn_shape_numel (&shape) == 0)
    return nn_value_take_tensor (out);
  fill (out, in, before, map, value);
  return nn_value_take_tensor (out);
}

static const NnArgSpec pad_args[] = {
  { "input", NN_ARG_TENSOR, NN_OPS_ALL, 0, NULL, "tensor" },
  { "pad", NN_ARG_SEQ, 0, 0, NULL, "(left, right, top, bottom, ...)" },
  { "mode", NN_ARG_STRING, 0, NN_ARG_OPTIONAL, "\"constant\"",
    "constant, reflect, replicate or circular" },
  { "value", NN_ARG_SCALAR | NN_ARG_NONE, 0, NN_ARG_OPTIONAL, "null",
    "fill value of constant padding (None: 0)" },
};
static const char *const pad_aliases[] = {
  "torch.nn.functional.pad", NULL };

static NN_OPS_TYPE (pad_type, "pad", "pads the last dims", pad_args,
                    pad_aliases, pad_fn);

const NnLayerType *const nn_ops_pad_types[] = { &pad_type, NULL };
