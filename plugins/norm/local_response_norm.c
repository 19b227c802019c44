/* LocalResponseNorm: x / (k + alpha / size * sum of x^2 over a window of
 * `size` neighbouring channels)^beta, as torch.nn.LocalResponseNorm (the
 * window is zero-padded by size // 2 before and (size - 1) // 2 after). */
#include "norm.h"
#include "../common/nn-layer-util.h"

static const NnSchemaKey lrn_schema[] = {
  { "size", NN_KIND_INT, 0, NN_KEY_HAS_MIN, NULL, 1, 0, NULL,
    "number of neighbouring channels in the window" },
  { "alpha", NN_KIND_FLOAT, 0, NN_KEY_OPTIONAL, "0.0001", 0, 0, NULL,
    "multiplicative factor" },
  { "beta", NN_KIND_FLOAT, 0, NN_KEY_OPTIONAL, "0.75", 0, 0, NULL,
    "exponent" },
  { "k", NN_KIND_FLOAT, 0, NN_KEY_OPTIONAL, "1.0", 0, 0, NULL,
    "additive factor" },
};

static gboolean
lrn_create (NnModule *self, GError **error)
{
  return TRUE;
}

static NnValue *
lrn_forward (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  NnTensor *input = nn_args_tensor (args, 0);
  const NnShape *s = &input->shape;
  if (s->ndim < 3) {
    /* PyTorch's wording, less the run of spaces its source leaves. */
    g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH,
                 "Expected 3D or higher dimensionality input (got %u "
                 "dimensions)", s->ndim);
    return NULL;
  }
  NnTensor *out = nn_lu_new_f32 (s, nn_tensor_is_meta (input));
  if (!out || nn_tensor_is_meta (input))
    return nn_lu_result (out, error);

  gint64 size = nn_module_config_int (self, "size");
  double alpha = nn_module_config_float (self, "alpha");
  double beta = nn_module_config_float (self, "beta");
  double k = nn_module_config_float (self, "k");
  gint64 n = s->dims[0], c = s->dims[1], hw = nn_lu_prod (s, 2, s->ndim);
  gint64 before = size / 2, after = (size - 1) / 2;
  const float *x = nn_tensor_f32 (input);
  float *y = nn_tensor_f32 (out);
  g_autofree double *acc = g_new (double, hw);
  for (gint64 b = 0; b < n; b++)
    for (gint64 ch = 0; ch < c; ch++) {
      memset (acc, 0, sizeof (double) * hw);
      for (gint64 j = MAX (ch - before, 0); j <= MIN (ch + after, c - 1); j++) {
        const float *p = x + (b * c + j) * hw;
        for (gint64 i = 0; i < hw; i++)
          acc[i] += (double) p[i] * p[i];
      }
      const float *src = x + (b * c + ch) * hw;
      float *dst = y + (b * c + ch) * hw;
      for (gint64 i = 0; i < hw; i++)
        dst[i] = (float) (src[i] / pow (acc[i] / (double) size * alpha + k, beta));
    }
  return nn_value_take_tensor (out);
}

static char *
lrn_extra_repr (NnModule *self)
{
  g_autofree char *a = nn_module_config_repr (self, "alpha");
  g_autofree char *b = nn_module_config_repr (self, "beta");
  g_autofree char *k = nn_module_config_repr (self, "k");
  return g_strdup_printf ("%" G_GINT64_FORMAT ", alpha=%s, beta=%s, k=%s",
                          nn_module_config_int (self, "size"), a, b, k);
}

const NnLayerType nn_local_response_norm_type = {
  .struct_size = sizeof (NnLayerType),
  .name = "LocalResponseNorm",
  .doc = "local response normalisation across neighbouring channels",
  .schema = lrn_schema,
  .n_schema = G_N_ELEMENTS (lrn_schema),
  .create = lrn_create,
  .forward = lrn_forward,
  .infer = lrn_forward,
  .extra_repr = lrn_extra_repr,
};
