/* ops plugin: matmul (1-d, 2-d, batched with broadcasting), mm, bmm and
 * torch.nn.functional.linear, on OpenBLAS's sgemm and dgemm. */
#include "ops.h"

#include <cblas.h>
#include "nn-blas.h"

#define GEMM_DTYPES (NN_DTYPE_BIT (NN_DTYPE_F32) | NN_DTYPE_BIT (NN_DTYPE_F64))

static gboolean
same_dtype (NnTensor *a, NnTensor *b, GError **error)
{
  if (a->dtype == b->dtype)
    return TRUE;
  return nn_ops_fail (error, "expected m1 and m2 to have the same dtype, but "
                      "got: %s != %s", nn_dtype_torch_name (a->dtype),
                      nn_dtype_torch_name (b->dtype));
}

static gboolean
cannot_multiply (gint64 m, gint64 k1, gint64 k2, gint64 n, GError **error)
{
  return nn_ops_shape_fail (error, "mat1 and mat2 shapes cannot be multiplied "
                            "(%" G_GINT64_FORMAT "x%" G_GINT64_FORMAT " and %"
                            G_GINT64_FORMAT "x%" G_GINT64_FORMAT ")",
                            m, k1, k2, n);
}

void
nn_ops_gemm (NnDType dt, gint64 m, gint64 n, gint64 k, const void *a,
             const void *b, gboolean b_trans, void *c)
{
  if (m == 0 || n == 0)
    return;
  if (k == 0)
    return; /* c is zero-filled */
  nn_blas_prepare ();
  CBLAS_TRANSPOSE tb = b_trans ? CblasTrans : CblasNoTrans;
  gint64 ldb = b_trans ? k : n;
  if (dt == NN_DTYPE_F64)
    cblas_dgemm (CblasRowMajor, CblasNoTrans, tb, m, n, k, 1.0, a, k, b, ldb,
                 0.0, c, n);
  else
    cblas_sgemm (CblasRowMajor, CblasNoTrans, tb, m, n, k, 1.0f, a, k, b, ldb,
                 0.0f, c, n);
}

/* Batched product of @a [..., m, k] and @b [..., k, n] with broadcast
 * batch dims; @drop_m / @drop_n remove the dims that 1-d operands had
 * gained. */
static NnTensor *
batched (NnTensor *a, NnTensor *b, const NnShape *as, const NnShape *bs,
         gboolean drop_m, gboolean drop_n, GError **error)
{
  gint64 m = as->dims[as->ndim - 2], k = as->dims[as->ndim - 1];
  gint64 k2 = bs->dims[bs->ndim - 2], n = bs->dims[bs->ndim - 1];
  if (k != k2)
    {
      cannot_multiply (m, k, k2, n, error);
      return NULL;
    }
  NnShape ab = { as->ndim - 2 }, bb = { bs->ndim - 2 }, batch;
  for (guint i = 0; i < ab.ndim; i++)
    ab.dims[i] = as->dims[i];
  for (guint i = 0; i < bb.ndim; i++)
    bb.dims[i] = bs->dims[i];
  if (!nn_ops_broadcast (&ab, &bb, &batch, error))
    return NULL;
  if (batch.ndim + 2 > NN_MAX_DIMS)
    {
      nn_ops_shape_fail (error, "matmul: too many dims");
      return NULL;
    }
  NnShape out = batch;
  if (!drop_m)
    out.dims[out.ndim++] = m;
  if (!drop_n)
    out.dims[out.ndim++] = n;
  gboolean meta = nn_tensor_is_meta (a) || nn_tensor_is_meta (b);
  if (!meta && !nn_blas_ready (error))
    return NULL;
  NnTensor *r = nn_ops_new (meta, a->dtype, &out, error);
  if (!r || meta)
    return r;
  gint64 nb = nn_shape_numel (&batch);
  gsize es = nn_dtype_size (a->dtype);
  NnOpsIter it;
  nn_ops_iter_init (&it, &batch);
  nn_ops_iter_add (&it, &ab);
  nn_ops_iter_add (&it, &bb);
  for (gint64 i = 0; i < nb; i++, nn_ops_iter_next (&it))
    nn_ops_gemm (a->dtype, m, n, k, (guint8 *) a->data + it.off[0] * m * k * es,
          (guint8 *) b->data + it.off[1] * k * n * es, FALSE,
          (guint8 *) r->data + i * m * n * es);
  return r;
}

static NnValue *
matmul_fn (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  NnTensor *a = nn_args_tensor (args, 0), *b = nn_args_tensor (args, 1);
  if (!same_dtype (a, b, error))
    return NULL;
  if (a->shape.ndim == 0 || b->shape.ndim == 0)
    {
      nn_ops_shape_fail (error, "both arguments to matmul need to be at least "
                         "1D, but they are %uD and %uD", a->shape.ndim,
                         b->shape.ndim);
      return NULL;
    }
  if (a->shape.ndim == 1 && b->shape.ndim == 1
      && a->shape.dims[0] != b->shape.dims[0])
    {
      nn_ops_shape_fail (error, "inconsistent tensor size, expected tensor [%"
                         G_GINT64_FORMAT "] and src [%" G_GINT64_FORMAT "] to "
                         "have the same number of elements, but got %"
                         G_GINT64_FORMAT " and %" G_GINT64_FORMAT " elements "
                         "respectively", a->shape.dims[0], b->shape.dims[0],
                         a->shape.dims[0], b->shape.dims[0]);
      return NULL;
    }
  /* A 1-d left operand is a row, a 1-d right operand a column; the dims
   * they gain are dropped from the result. */
  NnShape as = a->shape, bs = b->shape;
  gboolean drop_m = FALSE, drop_n = FALSE;
  if (as.ndim == 1)
    {
      as = (NnShape) { 2, { 1, a->shape.dims[0] } };
      drop_m = TRUE;
    }
  if (bs.ndim == 1)
    {
      bs = (NnShape) { 2, { b->shape.dims[0], 1 } };
      drop_n = TRUE;
    }
  return nn_ops_take (batched (a, b, &as, &bs, drop_m, drop_n, error));
}

static NnValue *
mm_fn (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  NnTensor *a = nn_args_tensor (args, 0), *b = nn_args_tensor (args, 1);
  if (a->shape.ndim != 2 || b->shape.ndim != 2)
    {
      nn_ops_shape_fail (error, "%s must be a matrix", a->shape.ndim != 2
                         ? "self" : "mat2");
      return NULL;
    }
  if (!same_dtype (a, b, error))
    return NULL;
  return nn_ops_take (batched (a, b, &a->shape, &b->shape, FALSE, FALSE, error));
}

static NnValue *
bmm_fn (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  NnTensor *a = nn_args_tensor (args, 0), *b = nn_args_tensor (args, 1);
  if (a->shape.ndim != 3 || b->shape.ndim != 3)
    {
      nn_ops_shape_fail (error, "%s must be a 3D tensor", a->shape.ndim != 3
                         ? "batch1" : "batch2");
      return NULL;
    }
  if (!same_dtype (a, b, error))
    return NULL;
  if (a->shape.dims[0] != b->shape.dims[0]
      || a->shape.dims[2] != b->shape.dims[1])
    {
      nn_ops_shape_fail (error, "Expected size for first two dimensions of "
                         "batch2 tensor to be: [%" G_GINT64_FORMAT ", %"
                         G_GINT64_FORMAT "] but got: [%" G_GINT64_FORMAT ", %"
                         G_GINT64_FORMAT "].", a->shape.dims[0],
                         a->shape.dims[2], b->shape.dims[0], b->shape.dims[1]);
      return NULL;
    }
  return nn_ops_take (batched (a, b, &a->shape, &b->shape, FALSE, FALSE, error));
}

/* linear(input, weight, bias) = input @ weight.T + bias. */
static NnValue *
linear_fn (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  NnTensor *x = nn_args_tensor (args, 0), *w = nn_args_tensor (args, 1);
  NnTensor *bias = nn_args_tensor (args, 2);
  if (!same_dtype (x, w, error) || (bias && !same_dtype (x, bias, error)))
    return NULL;
  if (w->shape.ndim != 2 || x->shape.ndim == 0)
    {
      nn_ops_shape_fail (error, "linear: expected a 2-d weight and an input of "
                         "at least 1 dim, found weight of %uD and input of %uD",
                         w->shape.ndim, x->shape.ndim);
      return NULL;
    }
  gint64 in_f = x->shape.dims[x->shape.ndim - 1];
  gint64 out_f = w->shape.dims[0];
  gint64 rows = in_f ? nn_tensor_numel (x) / in_f : 0;
  if (in_f != w->shape.dims[1])
    {
      cannot_multiply (rows, in_f, w->shape.dims[1], out_f, error);
      return NULL;
    }
  NnShape out = x->shape;
  out.dims[out.ndim - 1] = out_f;
  if (bias)
    {
      NnShape tmp;
      GError *e = NULL;
      if (!nn_ops_broadcast (&out, &bias->shape, &tmp, &e)
          || !nn_shape_equal (&tmp, &out))
        {
          g_autofree char *bs = nn_shape_to_string (&bias->shape);
          g_autofree char *os = nn_shape_to_string (&out);
          g_clear_error (&e);
          nn_ops_shape_fail (error, "linear: bias of shape %s does not "
                             "broadcast to the output %s", bs, os);
          return NULL;
        }
    }
  gboolean meta = nn_tensor_is_meta (x) || nn_tensor_is_meta (w)
                  || (bias && nn_tensor_is_meta (bias));
  if (!meta && !nn_blas_ready (error))
    return NULL;
  NnTensor *r = nn_ops_new (meta, x->dtype, &out, error);
  if (!r || meta)
    return nn_ops_take (r);
  nn_ops_gemm (x->dtype, rows, out_f, in_f, x->data, w->data, TRUE, r->data);
  if (bias && bias->shape.ndim == 1 && x->dtype == NN_DTYPE_F32)
    {
      /* The usual [out_features] float32 bias, row by row. */
      const float *bv = bias->data;
      float *y = r->data;
      for (gint64 i = 0; i < rows; i++)
        for (gint64 j = 0; j < out_f; j++)
          y[i * out_f + j] += bv[j];
    }
  else if (bias)
    {
      NnOpsIter it;
      gint64 n = nn_tensor_numel (r);
      nn_ops_iter_init (&it, &out);
      nn_ops_iter_add (&it, &bias->shape);
      for (gint64 i = 0; i < n; i++, nn_ops_iter_next (&it))
        nn_ops_set_f (r, i, nn_ops_round_to (x->dtype, nn_ops_get_f (r, i)
                                             + nn_ops_get_f (bias, it.off[0])));
    }
  return nn_value_take_tensor (r);
}

/* beta * input + alpha * product, input broadcast to the product. */
static NnValue *
scaled_add (NnTensor *input, NnTensor *prod, double beta, double alpha,
            GError **error)
{
  NnShape b;
  if (!nn_ops_broadcast (&prod->shape, &input->shape, &b, error))
    return NULL;
  if (!nn_shape_equal (&b, &prod->shape))
    {
      g_autofree char *a = nn_shape_to_string (&input->shape);
      g_autofree char *p = nn_shape_to_string (&prod->shape);
      nn_ops_shape_fail (error, "expand: input of shape %s does not broadcast "
                         "to the product's %s", a, p);
      return NULL;
    }
  if (!same_dtype (input, prod, error))
    return NULL;
  if (nn_tensor_is_meta (prod) || nn_tensor_is_meta (input))
    return nn_value_take_tensor (nn_tensor_new_meta (prod->dtype, &prod->shape));
  NnTensor *out = nn_tensor_copy (prod);
  NnOpsIter it;
  gint64 n = nn_tensor_numel (out);
  nn_ops_iter_init (&it, &out->shape);
  nn_ops_iter_add (&it, &input->shape);
  for (gint64 i = 0; i < n; i++, nn_ops_iter_next (&it))
    {
      /* beta 0 ignores input, NaN included, as PyTorch does. */
      double in = beta == 0 ? 0 : beta * nn_ops_get_f (input, it.off[0]);
      nn_ops_set_f (out, i, in + alpha * nn_ops_get_f (prod, i));
    }
  return nn_value_take_tensor (out);
}

static NnValue *
addmm_fn (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  NnTensor *a = nn_args_tensor (args, 1), *b = nn_args_tensor (args, 2);
  if (a->shape.ndim != 2 || b->shape.ndim != 2)
    {
      nn_ops_shape_fail (error, "%s must be a matrix", a->shape.ndim != 2
                         ? "mat1" : "mat2");
      return NULL;
    }
  if (!same_dtype (a, b, error))
    return NULL;
  g_autoptr (NnTensor) p = batched (a, b, &a->shape, &b->shape, FALSE, FALSE,
                                    error);
  if (!p)
    return NULL;
  return scaled_add (nn_args_tensor (args, 0), p, nn_args_float (args, 3),
                     nn_args_float (args, 4), error);
}

static NnValue *
baddbmm_fn (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  NnTensor *a = nn_args_tensor (args, 1), *b = nn_args_tensor (args, 2);
  if (a->shape.ndim != 3 || b->shape.ndim != 3)
    {
      nn_ops_shape_fail (error, "%s must be a 3D tensor", a->shape.ndim != 3
                         ? "batch1" : "batch2");
      return NULL;
    }
  if (!same_dtype (a, b, error))
    return NULL;
  if (a->shape.dims[0] != b->shape.dims[0]
      || a->shape.dims[2] != b->shape.dims[1])
    {
      nn_ops_shape_fail (error, "Expected size for first two dimensions of "
                         "batch2 tensor to be: [%" G_GINT64_FORMAT ", %"
                         G_GINT64_FORMAT "] but got: [%" G_GINT64_FORMAT ", %"
                         G_GINT64_FORMAT "].", a->shape.dims[0],
                         a->shape.dims[2], b->shape.dims[0], b->shape.dims[1]);
      return NULL;
    }
  g_autoptr (NnTensor) p = batched (a, b, &a->shape, &b->shape, FALSE, FALSE,
                                    error);
  if (!p)
    return NULL;
  return scaled_add (nn_args_tensor (args, 0), p, nn_args_float (args, 3),
                     nn_args_float (args, 4), error);
}

static const NnArgSpec two_args[] = {
  { "input", NN_ARG_TENSOR, GEMM_DTYPES, 0, NULL, "left operand" },
  { "other", NN_ARG_TENSOR, GEMM_DTYPES, 0, NULL, "right operand" },
};
static const NnArgSpec linear_args[] = {
  { "input", NN_ARG_TENSOR, GEMM_DTYPES, 0, NULL, "[..., in_features]" },
  { "weight", NN_ARG_TENSOR, GEMM_DTYPES, 0, NULL, "[out_features, in_features]" },
  { "bias", NN_ARG_TENSOR | NN_ARG_NONE, GEMM_DTYPES, NN_ARG_OPTIONAL, "null",
    "[out_features] or None" },
};

static const NnArgSpec addmm_args[] = {
  { "input", NN_ARG_TENSOR, GEMM_DTYPES, 0, NULL, "added, broadcast" },
  { "mat1", NN_ARG_TENSOR, GEMM_DTYPES, 0, NULL, "left operand" },
  { "mat2", NN_ARG_TENSOR, GEMM_DTYPES, 0, NULL, "right operand" },
  { "beta", NN_ARG_FLOAT, 0, NN_ARG_OPTIONAL | NN_ARG_KW_ONLY, "1",
    "multiplier of input" },
  { "alpha", NN_ARG_FLOAT, 0, NN_ARG_OPTIONAL | NN_ARG_KW_ONLY, "1",
    "multiplier of the product" },
};
static const NnArgSpec baddbmm_args[] = {
  { "input", NN_ARG_TENSOR, GEMM_DTYPES, 0, NULL, "added, broadcast" },
  { "batch1", NN_ARG_TENSOR, GEMM_DTYPES, 0, NULL, "left operands [B, n, k]" },
  { "batch2", NN_ARG_TENSOR, GEMM_DTYPES, 0, NULL, "right operands [B, k, m]" },
  { "beta", NN_ARG_FLOAT, 0, NN_ARG_OPTIONAL | NN_ARG_KW_ONLY, "1",
    "multiplier of input" },
  { "alpha", NN_ARG_FLOAT, 0, NN_ARG_OPTIONAL | NN_ARG_KW_ONLY, "1",
    "multiplier of the products" },
};
static const char *const addmm_aliases[] = {
  "torch.addmm", "Tensor.addmm", NULL };
static const char *const baddbmm_aliases[] = {
  "torch.baddbmm", "Tensor.baddbmm", NULL };

static const char *const matmul_aliases[] = {
  "torch.matmul", "operator.matmul", "operator.imatmul", "Tensor.matmul",
  "Tensor.__matmul__", NULL };
static const char *const mm_aliases[] = { "torch.mm", "Tensor.mm", NULL };
static const char *const bmm_aliases[] = { "torch.bmm", "Tensor.bmm", NULL };
static const char *const linear_aliases[] = {
  "torch.nn.functional.linear", NULL };

/* One multiply-add per output element and reduced index, as torchinfo
 * counts matrix products: numel(out) * k, k the input's last dim. */
static guint64
product_macs (NnModule *self, const NnArgs *args, const NnValue *out)
{
  NnTensor *a = nn_args_tensor (args, 0), *o = nn_value_get_tensor (out);
  if (!a || !o || a->shape.ndim == 0)
    return 0;
  return (guint64) nn_tensor_numel (o) * (guint64) a->shape.dims[a->shape.ndim - 1];
}

/* The gradients of matmul, mm and bmm (float32): per batch item
 * dA += G @ B^T and dB += A^T @ G, summed over the batch dims an operand
 * was broadcast along; 1-d operands are the row and column they were in
 * the forward. */
static NnValue *
product_backward (NnModule *self, NnCall *call, const NnArgs *args,
                  const NnValue *out, const NnValue *grad_out, GError **error)
{
  NnTensor *a = nn_args_tensor (args, 0), *b = nn_args_tensor (args, 1);
  NnTensor *g = nn_value_get_tensor (grad_out);
  if (a->dtype != NN_DTYPE_F32)
    {
      nn_ops_fail (error, "backward of a matrix product supports float32 "
                   "only, found %s", nn_dtype_name (a->dtype));
      return NULL;
    }
  if (!nn_blas_ready (error))
    return NULL;
  NnShape as = a->shape, bs = b->shape;
  if (as.ndim == 1)
    as = (NnShape) { 2, { 1, a->shape.dims[0] } };
  if (bs.ndim == 1)
    bs = (NnShape) { 2, { b->shape.dims[0], 1 } };
  gint64 m = as.dims[as.ndim - 2], k = as.dims[as.ndim - 1];
  gint64 n = bs.dims[bs.ndim - 1];
  NnShape ab = { as.ndim - 2 }, bb = { bs.ndim - 2 }, batch;
  for (guint i = 0; i < ab.ndim; i++)
    ab.dims[i] = as.dims[i];
  for (guint i = 0; i < bb.ndim; i++)
    bb.dims[i] = bs.dims[i];
  if (!nn_ops_broadcast (&ab, &bb, &batch, error))
    return NULL;
  NnTensor *da = nn_ops_new (FALSE, NN_DTYPE_F32, &a->shape, error);
  NnTensor *db = da ? nn_ops_new (FALSE, NN_DTYPE_F32, &b->shape, error) : NULL;
  if (!db)
    {
      if (da)
        nn_tensor_unref (da);
      return NULL;
    }
  const float *av = a->data, *bv = b->data, *gv = nn_tensor_f32 (g);
  float *dav = da->data, *dbv = db->data;
  if (m > 0 && n > 0 && k > 0)
    {
      nn_blas_prepare ();
      NnOpsIter it;
      nn_ops_iter_init (&it, &batch);
      nn_ops_iter_add (&it, &ab);
      nn_ops_iter_add (&it, &bb);
      for (gint64 i = 0, nb = nn_shape_numel (&batch); i < nb;
           i++, nn_ops_iter_next (&it))
        {
          const float *gi = gv + i * m * n;
          const float *ai = av + it.off[0] * m * k, *bi = bv + it.off[1] * k * n;
          cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasTrans, m, k, n, 1.0f,
                       gi, n, bi, n, 1.0f, dav + it.off[0] * m * k, k);
          cblas_sgemm (CblasRowMajor, CblasTrans, CblasNoTrans, k, n, m, 1.0f,
                       ai, k, gi, n, 1.0f, dbv + it.off[1] * k * n, n);
        }
    }
  NnValue *res = nn_value_new_tuple ();
  nn_value_append (res, nn_value_take_tensor (da));
  nn_value_append (res, nn_value_take_tensor (db));
  return res;
}

#define PRODUCT_TYPE(var_, name_, doc_, args_, aliases_, fn_)              \
  const NnLayerType var_ = {                                              \
    .struct_size = sizeof (NnLayerType),                                  \
    .name = name_,                                                        \
    .doc = doc_,                                                          \
    .flags = NN_LAYER_OP,                                                 \
    .args = args_,                                                        \
    .n_args = G_N_ELEMENTS (args_),                                       \
    .aliases = aliases_,                                                  \
    .create = nn_ops_create,                                              \
    .forward = fn_,                                                       \
    .infer = fn_,                                                         \
    .count_macs = product_macs,                                           \
    .backward = product_backward,                                         \
  }

static PRODUCT_TYPE (matmul_type, "matmul", "matrix product with broadcasting",
                     two_args, matmul_aliases, matmul_fn);
static PRODUCT_TYPE (mm_type, "mm", "product of two matrices", two_args,
                     mm_aliases, mm_fn);
static PRODUCT_TYPE (bmm_type, "bmm", "batched product of 3-d tensors",
                     two_args, bmm_aliases, bmm_fn);
static NN_OPS_TYPE (addmm_type, "addmm", "beta * input + alpha * (mat1 @ mat2)",
                    addmm_args, addmm_aliases, addmm_fn);
static NN_OPS_TYPE (baddbmm_type, "baddbmm",
                    "beta * input + alpha * bmm(batch1, batch2)", baddbmm_args,
                    baddbmm_aliases, baddbmm_fn);
/* F.linear has no backward here (the Linear module has one). */
static const NnLayerType linear_type = {
  .struct_size = sizeof (NnLayerType),
  .name = "linear",
  .doc = "input @ weight.T + bias",
  .flags = NN_LAYER_OP,
  .args = linear_args,
  .n_args = G_N_ELEMENTS (linear_args),
  .aliases = linear_aliases,
  .create = nn_ops_create,
  .forward = linear_fn,
  .infer = linear_fn,
  .count_macs = product_macs,
};

const NnLayerType *const nn_ops_matmul_types[] = {
  &matmul_type, &mm_type, &bmm_type, &linear_type, &addmm_type,
  &baddbmm_type, NULL,
};
