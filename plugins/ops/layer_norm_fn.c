/* ops plugin: torch.nn.functional.layer_norm over the last dims named by
 * normalized_shape, with optional elementwise weight and bias. */
#include "ops.h"

#include <math.h>

static gboolean
check_affine (NnTensor *t, const char *what, const NnShape *norm,
              GError **error)
{
  if (!t || nn_shape_equal (&t->shape, norm))
    return TRUE;
  g_autofree char *a = nn_shape_to_string (&t->shape);
  g_autofree char *b = nn_shape_to_string (norm);
  return nn_ops_shape_fail (error, "Expected %s to be of same shape as "
                            "normalized_shape, but got %s of shape %s and "
                            "normalized_shape = %s", what, what, a, b);
}

/* float32 rows: the moments in double as below, the normalisation in
 * float.  Reading each element through nn_ops_get_f made the functional
 * form (ConvNeXt's LayerNorm2d) several times slower than the module. */
static void
rows_f32 (const float *x, const float *w, const float *b, float *y,
          gint64 rows, gint64 inner, double eps)
{
  for (gint64 r = 0; r < rows; r++)
    {
      const float *xr = x + r * inner;
      float *yr = y + r * inner;
      double mean = 0, var = 0;
      for (gint64 k = 0; k < inner; k++)
        mean += xr[k];
      mean /= (double) inner;
      for (gint64 k = 0; k < inner; k++)
        {
          double d = xr[k] - mean;
          var += d * d;
        }
      float m = (float) mean;
      float rstd = (float) (1 / sqrt (var / (double) inner + eps));
      for (gint64 k = 0; k < inner; k++)
        {
          float v = (xr[k] - m) * rstd;
          if (w)
            v *= w[k];
          if (b)
            v += b[k];
          yr[k] = v;
        }
    }
}

static NnValue *
layer_norm_fn (NnModule *self, NnCall *call, const NnArgs *args,
               GError **error)
{
  NnTensor *in = nn_args_tensor (args, 0);
  NnTensor *w = nn_args_tensor (args, 2), *b = nn_args_tensor (args, 3);
  double eps = nn_args_float (args, 4);
  gint64 dims[NN_MAX_DIMS];
  guint n;
  if (!nn_ops_sizes (nn_args_get (args, 1), "normalized_shape", dims, &n,
                     error))
    return NULL;
  NnShape norm;
  nn_shape_set (&norm, n, dims);
  gboolean fits = n >= 1 && n <= in->shape.ndim;
  for (guint i = 0; fits && i < n; i++)
    fits = in->shape.dims[in->shape.ndim - n + i] == dims[i];
  if (!fits)
    {
      g_autofree char *a = nn_shape_to_string (&norm);
      g_autofree char *s = nn_shape_to_string (&in->shape);
      nn_ops_shape_fail (error, "Given normalized_shape=%s, expected input "
                         "with shape [*, %s, but got input of size%s", a,
                         a + 1, s);
      return NULL;
    }
  if (!check_affine (w, "weight", &norm, error)
      || !check_affine (b, "bias", &norm, error))
    return NULL;
  if (!nn_dtype_is_float (in->dtype))
    {
      nn_ops_fail (error, "\"LayerNormKernelImpl\" not implemented for '%s'",
                   nn_ops_dtype_short (in->dtype));
      return NULL;
    }
  gboolean meta = nn_tensor_is_meta (in) || (w && nn_tensor_is_meta (w))
                  || (b && nn_tensor_is_meta (b));
  NnTensor *out = nn_ops_new (meta, in->dtype, &in->shape, error);
  if (!out || meta)
    return nn_ops_take (out);
  gint64 inner = nn_shape_numel (&norm);
  gint64 rows = inner ? nn_tensor_numel (in) / inner : 0;
  if (in->dtype == NN_DTYPE_F32 && (!w || w->dtype == NN_DTYPE_F32)
      && (!b || b->dtype == NN_DTYPE_F32))
    {
      rows_f32 (in->data, w ? w->data : NULL, b ? b->data : NULL, out->data,
                rows, inner, eps);
      return nn_value_take_tensor (out);
    }
  for (gint64 r = 0; r < rows; r++)
    {
      double mean = 0, var = 0;
      for (gint64 k = 0; k < inner; k++)
        mean += nn_ops_get_f (in, r * inner + k);
      mean /= (double) inner;
      for (gint64 k = 0; k < inner; k++)
        {
          double d = nn_ops_get_f (in, r * inner + k) - mean;
          var += d * d;
        }
      double rstd = 1 / sqrt (var / (double) inner + eps);
      for (gint64 k = 0; k < inner; k++)
        {
          double y = (nn_ops_get_f (in, r * inner + k) - mean) * rstd;
          if (w)
            y *= nn_ops_get_f (w, k);
          if (b)
            y += nn_ops_get_f (b, k);
          nn_ops_set_f (out, r * inner + k, y);
        }
    }
  return nn_value_take_tensor (out);
}

static const NnArgSpec layer_norm_args[] = {
  { "input", NN_ARG_TENSOR, NN_OPS_ALL, 0, NULL, "tensor" },
  { "normalized_shape", NN_ARG_INT | NN_ARG_SEQ, 0, 0, NULL,
    "the trailing dims to normalise" },
  { "weight", NN_ARG_TENSOR | NN_ARG_NONE, NN_DTYPES_FLOAT, NN_ARG_OPTIONAL,
    "null", "scale, of normalized_shape" },
  { "bias", NN_ARG_TENSOR | NN_ARG_NONE, NN_DTYPES_FLOAT, NN_ARG_OPTIONAL,
    "null", "shift, of normalized_shape" },
  { "eps", NN_ARG_FLOAT, 0, NN_ARG_OPTIONAL, "1e-05", "added to the variance" },
};
static const char *const layer_norm_aliases[] = {
  "torch.nn.functional.layer_norm", "torch.layer_norm", NULL };

static NN_OPS_TYPE (layer_norm_type, "layer_norm",
                    "normalises the trailing dims to zero mean, unit variance",
                    layer_norm_args, layer_norm_aliases, layer_norm_fn);

const NnLayerType *const nn_ops_layer_norm_types[] = { &layer_norm_type, NULL };
