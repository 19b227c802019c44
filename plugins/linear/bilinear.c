/* Bilinear: y[n, o] = x1[n] . W[o] . x2[n] + b[o], as torch.nn.Bilinear,
 * on [*, in1_features] and [*, in2_features] float32 with the same leading
 * dims.  Per output feature one sgemm (x1 @ W[o]) and a row-wise dot. */
#include "linear.h"
#include "nn-blas.h"
#include "../common/nn-layer-util.h"

#include <cblas.h>
#include <math.h>

static const NnSchemaKey bilinear_schema[] = {
  { "in1_features", NN_KIND_INT, 0, NN_KEY_HAS_MIN, NULL, 1, 0, NULL,
    "size of the last dim of input1" },
  { "in2_features", NN_KIND_INT, 0, NN_KEY_HAS_MIN, NULL, 1, 0, NULL,
    "size of the last dim of input2" },
  { "out_features", NN_KIND_INT, 0, NN_KEY_HAS_MIN, NULL, 1, 0, NULL,
    "size of the last dim of the output" },
  { "bias", NN_KIND_BOOL, 0, NN_KEY_OPTIONAL, "true", 0, 0, NULL,
    "learnable bias" },
};

static const NnArgSpec bilinear_args[] = {
  { "input1", NN_ARG_TENSOR, 0, 0, NULL, "float32 [*, in1_features]" },
  { "input2", NN_ARG_TENSOR, 0, 0, NULL, "float32 [*, in2_features], same leading dims" },
};

static gboolean
bilinear_create (NnModule *self, GError **error)
{
  gint64 i1 = nn_module_config_int (self, "in1_features");
  gint64 i2 = nn_module_config_int (self, "in2_features");
  gint64 o = nn_module_config_int (self, "out_features");
  NnShape ws = { 3, { o, i1, i2 } };
  return nn_lu_add_weight_bias (self, &ws, nn_module_config_bool (self, "bias"), o,
                                error);
}

static NnValue *
bilinear_forward (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  NnTensor *a = nn_args_tensor (args, 0), *b = nn_args_tensor (args, 1);
  gint64 i1 = nn_module_config_int (self, "in1_features");
  gint64 i2 = nn_module_config_int (self, "in2_features");
  gint64 no = nn_module_config_int (self, "out_features");
  const NnShape *sa = &a->shape, *sb = &b->shape;
  gboolean same_lead = sa->ndim == sb->ndim && sa->ndim >= 1;
  for (guint d = 0; same_lead && d + 1 < sa->ndim; d++)
    same_lead = sa->dims[d] == sb->dims[d];
  if (!same_lead) {
    g_autofree char *fa = nn_shape_to_string (sa);
    g_autofree char *fb = nn_shape_to_string (sb);
    g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH,
                 "bilinear(): input batch dimensions do not match: got %s and %s",
                 fa, fb);
    return NULL;
  }
  if (sa->dims[sa->ndim - 1] != i1 || sb->dims[sb->ndim - 1] != i2) {
    gboolean first = sa->dims[sa->ndim - 1] != i1;
    g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH,
                 "bilinear(): input%d size does not match weight size: got %"
                 G_GINT64_FORMAT " but expected %" G_GINT64_FORMAT, first ? 1 : 2,
                 first ? sa->dims[sa->ndim - 1] : sb->dims[sb->ndim - 1],
                 first ? i1 : i2);
    return NULL;
  }
  NnShape os = *sa;
  os.dims[os.ndim - 1] = no;
  gboolean meta = nn_tensor_is_meta (a) || nn_tensor_is_meta (b);
  if (!meta && !nn_blas_ready (error))
    return NULL;
  NnTensor *y = nn_lu_new_f32 (&os, meta);
  if (!y || meta)
    return nn_lu_result (y, error);
  gint64 n = nn_lu_prod (sa, 0, sa->ndim - 1);
  const float *x1 = nn_tensor_f32 (a), *x2 = nn_tensor_f32 (b);
  const float *w = nn_tensor_f32 (nn_module_get_parameter (self, "weight"));
  NnTensor *bt = nn_module_get_parameter (self, "bias");
  float *yd = nn_tensor_f32 (y);
  float *tmp = g_try_new (float, MAX (n * i2, 1));
  if (!tmp) {
    nn_tensor_unref (y);
    g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_FAILED,
                 "cannot allocate a [%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT "] buffer",
                 n, i2);
    return NULL;
  }
  nn_blas_prepare ();
  for (gint64 o = 0; o < no && n > 0; o++) {
    /* tmp = x1 @ W[o]: [n, in1] x [in1, in2]. */
    cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasNoTrans, (int) n, (int) i2, (int) i1,
                 1.0f, x1, (int) i1, w + o * i1 * i2, (int) i2, 0.0f, tmp, (int) i2);
    for (gint64 r = 0; r < n; r++) {
      double acc = bt ? nn_tensor_f32 (bt)[o] : 0.0;
      for (gint64 j = 0; j < i2; j++)
        acc += (double) tmp[r * i2 + j] * x2[r * i2 + j];
      yd[r * no + o] = (float) acc;
    }
  }
  g_free (tmp);
  return nn_value_take_tensor (y);
}

/* PyTorch's reset_parameters: U(-1/sqrt(in1), 1/sqrt(in1)) for both. */
static void
bilinear_reset_parameters (NnModule *self, GRand *rng)
{
  double bound = 1.0 / sqrt ((double) nn_module_config_int (self, "in1_features"));
  nn_module_init_uniform (self, "weight", bound, rng);
  nn_module_init_uniform (self, "bias", bound, rng);
}

static char *
bilinear_extra_repr (NnModule *self)
{
  return g_strdup_printf ("in1_features=%" G_GINT64_FORMAT ", in2_features=%"
                          G_GINT64_FORMAT ", out_features=%" G_GINT64_FORMAT
                          ", bias=%s", nn_module_config_int (self, "in1_features"),
                          nn_module_config_int (self, "in2_features"),
                          nn_module_config_int (self, "out_features"),
                          nn_lu_py_bool (nn_module_config_bool (self, "bias")));
}

/* torchinfo's Mult-Adds, as Linear's. */
static guint64
bilinear_count_macs (NnModule *self, const NnArgs *args, const NnValue *out)
{
  return nn_lu_count_macs_params (self, out, FALSE);
}

const NnLayerType nn_bilinear_type = {
  .struct_size = sizeof (NnLayerType),
  .name = "Bilinear",
  .doc = "y = x1^T W x2 + b over the last dims, as torch.nn.Bilinear",
  .schema = bilinear_schema,
  .n_schema = G_N_ELEMENTS (bilinear_schema),
  .args = bilinear_args,
  .n_args = G_N_ELEMENTS (bilinear_args),
  .create = bilinear_create,
  .forward = bilinear_forward,
  .infer = bilinear_forward,
  .extra_repr = bilinear_extra_repr,
  .reset_parameters = bilinear_reset_parameters,
  .count_macs = bilinear_count_macs,
};
