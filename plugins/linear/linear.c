/* linear plugin: PyTorch's nn.Linear, y = x W^T + b over the last
 * dimension of an input of any leading shape, as one sgemm. */
#include "linear.h"
#include <nnkit/train.h>

#include <cblas.h>
#include "nn-blas.h"
#include <math.h>

static const NnSchemaKey linear_schema[] = {
  { "in_features", NN_KIND_INT, 0, NN_KEY_HAS_MIN, NULL, 1, 0, NULL,
    "Size of each input sample (the last dimension)" },
  { "out_features", NN_KIND_INT, 0, NN_KEY_HAS_MIN, NULL, 1, 0, NULL,
    "Size of each output sample" },
  { "bias", NN_KIND_BOOL, 0, NN_KEY_OPTIONAL, "true", 0, 0, NULL,
    "Adds a learnable bias to the output" },
};

static gboolean
linear_create (NnModule *self, GError **error)
{
  gint64 in = nn_module_config_int (self, "in_features");
  gint64 out = nn_module_config_int (self, "out_features");

  /* sgemm takes int extents and leading dimensions. */
  if (in > G_MAXINT32 || out > G_MAXINT32 || (double) in * (double) out > G_MAXINT64 / 4)
    {
      g_set_error (error, NN_DESCRIPTOR_ERROR, NN_DESCRIPTOR_ERROR_OUT_OF_RANGE,
                   "weight [%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT "] is too large",
                   out, in);
      return FALSE;
    }
  NnShape ws = { 2, { out, in } };
  NnShape bs = { 1, { out } };
  if (!nn_module_add_parameter (self, "weight", NN_DTYPE_F32, &ws)
      || (nn_module_config_bool (self, "bias")
          && !nn_module_add_parameter (self, "bias", NN_DTYPE_F32, &bs)))
    {
      g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_FAILED,
                   "cannot allocate the weights [%" G_GINT64_FORMAT ", %"
                   G_GINT64_FORMAT "]", out, in);
      return FALSE;
    }
  return TRUE;
}

static gboolean
linear_out_shape (NnModule *self, const NnShape *in, NnShape *out,
                  GError **error)
{
  gint64 in_f = nn_module_config_int (self, "in_features");

  if (in->ndim < 1 || in->dims[in->ndim - 1] != in_f)
    {
      g_autofree char *got = nn_shape_to_string (in);
      g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH,
                   "expected input [..., %" G_GINT64_FORMAT "] (last dimension %"
                   G_GINT64_FORMAT "), got %s", in_f, in_f, got);
      return FALSE;
    }
  *out = *in;
  out->dims[in->ndim - 1] = nn_module_config_int (self, "out_features");
  return TRUE;
}

static const NnArgSpec linear_args[] = {
  { "input", NN_ARG_TENSOR, NN_DTYPE_BIT (NN_DTYPE_F32), 0, NULL,
    "float32 [..., in_features]" },
};

static NnValue *
linear_infer (NnModule *self, NnCall *call, const NnArgs *args,
              GError **error)
{
  NnShape os;
  if (!linear_out_shape (self, &nn_args_tensor (args, 0)->shape, &os, error))
    return NULL;
  return nn_value_take_tensor (nn_tensor_new_meta (NN_DTYPE_F32, &os));
}

/* The forward, with the epilogue @ep (nullable) of a fused plan step: an
 * activation over the result. */
static NnValue *
linear_run (NnModule *self, NnCall *call, const NnArgs *args,
            const NnEpilogue *ep, GError **error)
{
  const gint64 in_f = nn_module_config_int (self, "in_features");
  const gint64 out_f = nn_module_config_int (self, "out_features");
  const gboolean has_bias = nn_module_config_bool (self, "bias");
  NnTensor *input = nn_args_tensor (args, 0);
  const float *x = nn_tensor_f32 (input);
  NnShape os;

  if (!linear_out_shape (self, &input->shape, &os, error))
    return NULL;

  /* Looked up at every call: load_state_dict may have swapped them. */
  NnTensor *wp = nn_module_get_parameter (self, "weight");
  NnTensor *bp = has_bias ? nn_module_get_parameter (self, "bias") : NULL;
  /* F16/BF16 weights kept as stored convert per call (a ref when F32). */
  g_autoptr (NnTensor) wt = wp ? nn_tensor_to_dtype (wp, NN_DTYPE_F32) : NULL;
  g_autoptr (NnTensor) bt = bp ? nn_tensor_to_dtype (bp, NN_DTYPE_F32) : NULL;
  const float *w = wt ? nn_tensor_f32 (wt) : NULL;
  const float *b = bt ? nn_tensor_f32 (bt) : NULL;
  if (!w || nn_tensor_numel (wt) != in_f * out_f
      || (has_bias && (!b || nn_tensor_numel (bt) != out_f)))
    {
      g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_FAILED,
                   "weight or bias is missing or not float32 of the configured shape");
      return NULL;
    }

  gint64 rows = nn_shape_numel (&input->shape) / in_f;
  if (!nn_blas_ready (error))
    return NULL;
  if (rows > G_MAXINT32)
    {
      g_autofree char *s = nn_shape_to_string (&input->shape);
      g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH,
                   "input %s has more than %d rows", s, G_MAXINT32);
      return NULL;
    }
  NnTensor *out = nn_tensor_new (NN_DTYPE_F32, &os);
  if (!out)
    {
      g_autofree char *s = nn_shape_to_string (&os);
      g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_FAILED,
                   "cannot allocate the output %s", s);
      return NULL;
    }
  float *y = nn_tensor_f32 (out);
  if (rows == 0)
    return nn_value_take_tensor (out);

  if (b)
    for (gint64 r = 0; r < rows; r++)
      for (gint64 j = 0; j < out_f; j++)
        y[r * out_f + j] = b[j];
  float beta = b ? 1.0f : 0.0f;
  nn_blas_prepare ();
  if (rows == 1)
    cblas_sgemv (CblasRowMajor, CblasNoTrans, (int) out_f, (int) in_f, 1.0f,
                 w, (int) in_f, x, 1, beta, y, 1);
  else
    cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasTrans, (int) rows,
                 (int) out_f, (int) in_f, 1.0f, x, (int) in_f, w, (int) in_f,
                 beta, y, (int) out_f);
  if (ep && ep->act != NN_ACT_NONE)
    nn_fuse_apply_act (y, (gsize) (rows * out_f), ep->act, ep->alpha, ep->beta);
  return nn_value_take_tensor (out);
}

static NnValue *
linear_forward (NnModule *self, NnCall *call, const NnArgs *args,
                GError **error)
{
  return linear_run (self, call, args, NULL, error);
}

/* Fused plan steps (docs/ENGINE.md, "Fusion"): a following activation
 * module runs over the result in the same call. */
const NnFuseInfo nn_linear_fuse = {
  .struct_size = sizeof (NnFuseInfo),
  .act_kinds = NN_ACT_BIT (NN_ACT_RELU) | NN_ACT_BIT (NN_ACT_CLIP)
               | NN_ACT_BIT (NN_ACT_SILU) | NN_ACT_BIT (NN_ACT_HARDSWISH)
               | NN_ACT_BIT (NN_ACT_GELU_ERF) | NN_ACT_BIT (NN_ACT_GELU_TANH)
               | NN_ACT_BIT (NN_ACT_SIGMOID) | NN_ACT_BIT (NN_ACT_TANH),
  .forward_fused = linear_run,
};

/* dW += g^T x, db += column sums of g, dx = g W: the three products of
 * y = x W^T + b, over every leading row. */
static NnValue *
linear_backward (NnModule *self, NnCall *call, const NnArgs *args,
                 const NnValue *out, const NnValue *grad_out, GError **error)
{
  const gint64 in_f = nn_module_config_int (self, "in_features");
  const gint64 out_f = nn_module_config_int (self, "out_features");
  NnTensor *input = nn_args_tensor (args, 0);
  const float *x = nn_tensor_f32 (input);
  const float *g = nn_tensor_f32 (nn_value_get_tensor (grad_out));
  const float *w = nn_tensor_f32 (nn_module_get_parameter (self, "weight"));
  gint64 rows = nn_shape_numel (&input->shape) / in_f;

  if (!nn_blas_ready (error))
    return NULL;
  float *gw = nn_module_grad_f32 (self, "weight");
  float *gb = nn_module_config_bool (self, "bias")
                  ? nn_module_grad_f32 (self, "bias") : NULL;
  nn_blas_prepare ();
  if (gw && rows > 0)
    cblas_sgemm (CblasRowMajor, CblasTrans, CblasNoTrans, (int) out_f,
                 (int) in_f, (int) rows, 1.0f, g, (int) out_f, x, (int) in_f,
                 1.0f, gw, (int) in_f);
  if (gb)
    for (gint64 r = 0; r < rows; r++)
      for (gint64 j = 0; j < out_f; j++)
        gb[j] += g[r * out_f + j];

  NnTensor *dx = nn_tensor_new (NN_DTYPE_F32, &input->shape);
  if (!dx) {
    g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_FAILED,
                 "cannot allocate the input gradient");
    return NULL;
  }
  if (rows > 0)
    cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasNoTrans, (int) rows,
                 (int) in_f, (int) out_f, 1.0f, g, (int) out_f, w, (int) in_f,
                 0.0f, nn_tensor_f32 (dx), (int) in_f);
  NnValue *res = nn_value_new_tuple ();
  nn_value_append (res, nn_value_take_tensor (dx));
  return res;
}

static char *
linear_extra_repr (NnModule *self)
{
  return g_strdup_printf ("in_features=%" G_GINT64_FORMAT ", out_features=%"
                          G_GINT64_FORMAT ", bias=%s",
                          nn_module_config_int (self, "in_features"),
                          nn_module_config_int (self, "out_features"),
                          nn_module_config_bool (self, "bias") ? "True" : "False");
}

/* kaiming_uniform_(a=sqrt(5)) is U(-1/sqrt(in), 1/sqrt(in)); PyTorch draws
 * the bias from the same bound. */
static void
linear_reset_parameters (NnModule *self, GRand *rng)
{
  double bound = 1.0 / sqrt ((double) nn_module_config_int (self, "in_features"));
  nn_module_init_uniform (self, "weight", bound, rng);
  nn_module_init_uniform (self, "bias", bound, rng);
}

/* torchinfo: each weight and bias element is used once per output row. */
static guint64
linear_count_macs (NnModule *self, const NnArgs *args, const NnValue *value)
{
  NnTensor *y = nn_value_get_tensor (value);
  if (!y)
    return 0;
  const NnShape *out = &y->shape;
  guint64 in_f = (guint64) nn_module_config_int (self, "in_features");
  guint64 out_f = (guint64) nn_module_config_int (self, "out_features");
  guint64 params = in_f * out_f + (nn_module_config_bool (self, "bias") ? out_f : 0);
  guint64 rows = 1;
  for (guint i = 0; i + 1 < out->ndim; i++)
    rows *= (guint64) out->dims[i];
  return params * rows;
}

const NnLayerType nn_linear_type = {
  .struct_size = sizeof (NnLayerType),
  .name = "Linear",
  .doc = "Fully connected layer y = x W^T + b, as torch.nn.Linear",
  .schema = linear_schema,
  .n_schema = G_N_ELEMENTS (linear_schema),
  .flags = NN_LAYER_HALF_WEIGHTS,
  .args = linear_args,
  .n_args = G_N_ELEMENTS (linear_args),
  .create = linear_create,
  .infer = linear_infer,
  .forward = linear_forward,
  .backward = linear_backward,
  .extra_repr = linear_extra_repr,
  .reset_parameters = linear_reset_parameters,
  .count_macs = linear_count_macs,
  .fuse = &nn_linear_fuse,
};
