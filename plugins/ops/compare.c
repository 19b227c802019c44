/* ops plugin: comparisons, logical and bitwise ops, where, masked_fill,
 * tril, triu, isnan, isinf, isfinite. */
#include "ops.h"

#include <math.h>
#include <string.h>

#define NUM (NN_ARG_TENSOR | NN_ARG_SCALAR)

static const NnArgSpec two_args[] = {
  { "input", NUM, NN_OPS_ALL, 0, NULL, "tensor or number" },
  { "other", NUM, NN_OPS_ALL, 0, NULL, "tensor or number" },
};
static const NnArgSpec one_args[] = {
  { "input", NN_ARG_TENSOR, NN_OPS_ALL, 0, NULL, "tensor" },
};

#define CMP(id_, expr_)                                                     \
  static double f_##id_ (double a, double b) { return (expr_); }            \
  static gboolean i_##id_ (gint64 a, gint64 b, gint64 *o, GError **e)      \
  { *o = (expr_); return TRUE; }

CMP (eq, a == b)
CMP (ne, a != b)
CMP (lt, a < b)
CMP (le, a <= b)
CMP (gt, a > b)
CMP (ge, a >= b)
CMP (land, (a != 0) && (b != 0))
CMP (lor, (a != 0) || (b != 0))
CMP (lxor, (a != 0) != (b != 0))

static gboolean i_band (gint64 a, gint64 b, gint64 *o, GError **e)
{ *o = a & b; return TRUE; }
static gboolean i_bor (gint64 a, gint64 b, gint64 *o, GError **e)
{ *o = a | b; return TRUE; }
static gboolean i_bxor (gint64 a, gint64 b, gint64 *o, GError **e)
{ *o = a ^ b; return TRUE; }
static double f_never (double a, double b) { return NAN; }

static gboolean
bitwise_check (NnDType common, const NnValue *a, const NnValue *b,
               GError **error)
{
  if (!nn_dtype_is_float (common))
    return TRUE;
  return nn_ops_fail (error, "\"bitwise_cpu\" not implemented for '%s'",
                      nn_ops_dtype_short (common));
}

#define BINARY_TYPE(id_, name_, op_, doc_, ...)                             \
  static NnValue *id_##_fn (NnModule *self, NnCall *call,                 \
                            const NnArgs *args, GError **error)           \
  { return nn_ops_binary (&op_, nn_args_get (args, 0),                    \
                          nn_args_get (args, 1), NULL, error); }          \
  static const char *const id_##_aliases[] = { __VA_ARGS__, NULL };       \
  static NN_OPS_TYPE (id_##_type, name_, doc_, two_args, id_##_aliases,   \
                      id_##_fn)

static const NnOpsBinary op_eq = { "eq", f_eq, i_eq, TRUE };
static const NnOpsBinary op_ne = { "ne", f_ne, i_ne, TRUE };
static const NnOpsBinary op_lt = { "lt", f_lt, i_lt, TRUE };
static const NnOpsBinary op_le = { "le", f_le, i_le, TRUE };
static const NnOpsBinary op_gt = { "gt", f_gt, i_gt, TRUE };
static const NnOpsBinary op_ge = { "ge", f_ge, i_ge, TRUE };
static const NnOpsBinary op_land = { "logical_and", f_land, i_land, TRUE };
static const NnOpsBinary op_lor = { "logical_or", f_lor, i_lor, TRUE };
static const NnOpsBinary op_lxor = { "logical_xor", f_lxor, i_lxor, TRUE };
static const NnOpsBinary op_band = { "bitwise_and", f_never, i_band,
                                     .check = bitwise_check };
static const NnOpsBinary op_bor = { "bitwise_or", f_never, i_bor,
                                    .check = bitwise_check };
static const NnOpsBinary op_bxor = { "bitwise_xor", f_never, i_bxor,
                                     .check = bitwise_check };

BINARY_TYPE (eq, "eq", op_eq, "input == other", "torch.eq", "operator.eq",
             "Tensor.eq", "Tensor.eq_", "Tensor.__eq__");
BINARY_TYPE (ne, "ne", op_ne, "input != other", "torch.ne", "torch.not_equal",
             "operator.ne", "Tensor.ne", "Tensor.ne_", "Tensor.not_equal",
             "Tensor.__ne__");
BINARY_TYPE (lt, "lt", op_lt, "input < other", "torch.lt", "torch.less",
             "operator.lt", "Tensor.lt", "Tensor.lt_", "Tensor.less",
             "Tensor.__lt__");
BINARY_TYPE (le, "le", op_le, "input <= other", "torch.le",
             "torch.less_equal", "operator.le", "Tensor.le", "Tensor.le_",
             "Tensor.less_equal", "Tensor.__le__");
BINARY_TYPE (gt, "gt", op_gt, "input > other", "torch.gt", "torch.greater",
             "operator.gt", "Tensor.gt", "Tensor.gt_", "Tensor.greater",
             "Tensor.__gt__");
BINARY_TYPE (ge, "ge", op_ge, "input >= other", "torch.ge",
             "torch.greater_equal", "operator.ge", "Tensor.ge", "Tensor.ge_",
             "Tensor.greater_equal", "Tensor.__ge__");
BINARY_TYPE (logical_and, "logical_and", op_land, "both non-zero",
             "torch.logical_and", "Tensor.logical_and", "Tensor.logical_and_");
BINARY_TYPE (logical_or, "logical_or", op_lor, "either non-zero",
             "torch.logical_or", "Tensor.logical_or", "Tensor.logical_or_");
BINARY_TYPE (logical_xor, "logical_xor", op_lxor, "exactly one non-zero",
             "torch.logical_xor", "Tensor.logical_xor", "Tensor.logical_xor_");
BINARY_TYPE (bitwise_and, "bitwise_and", op_band, "input & other (bool, int)",
             "and_", "torch.bitwise_and", "operator.and_", "operator.iand",
             "Tensor.bitwise_and", "Tensor.bitwise_and_", "Tensor.__and__",
             "Tensor.__iand__");
BINARY_TYPE (bitwise_or, "bitwise_or", op_bor, "input | other (bool, int)",
             "or_", "torch.bitwise_or", "operator.or_", "operator.ior",
             "Tensor.bitwise_or", "Tensor.bitwise_or_", "Tensor.__or__",
             "Tensor.__ior__");
BINARY_TYPE (bitwise_xor, "bitwise_xor", op_bxor, "input ^ other (bool, int)",
             "xor", "torch.bitwise_xor", "operator.xor", "operator.ixor",
             "Tensor.bitwise_xor", "Tensor.bitwise_xor_", "Tensor.__xor__",
             "Tensor.__ixor__");

/* A bool result computed from one input element by @pred. */
static NnValue *
predicate (NnTensor *in, gboolean (*pred) (const NnTensor *t, gint64 i),
           GError **error)
{
  NnTensor *out = nn_ops_new (nn_tensor_is_meta (in), NN_DTYPE_BOOL,
                              &in->shape, error);
  if (!out || nn_tensor_is_meta (in))
    return nn_ops_take (out);
  gint64 n = nn_tensor_numel (in);
  guint8 *o = out->data;
  for (gint64 k = 0; k < n; k++)
    o[k] = pred (in, k) ? 1 : 0;
  return nn_value_take_tensor (out);
}

static gboolean p_not (const NnTensor *t, gint64 i)
{ return nn_dtype_is_float (t->dtype) ? nn_ops_get_f (t, i) == 0
                                      : nn_ops_get_i (t, i) == 0; }
static gboolean p_isnan (const NnTensor *t, gint64 i)
{ return nn_dtype_is_float (t->dtype) && isnan (nn_ops_get_f (t, i)); }
static gboolean p_isinf (const NnTensor *t, gint64 i)
{ return nn_dtype_is_float (t->dtype) && isinf (nn_ops_get_f (t, i)); }
static gboolean p_isfinite (const NnTensor *t, gint64 i)
{ return !nn_dtype_is_float (t->dtype) || isfinite (nn_ops_get_f (t, i)); }

#define PREDICATE_TYPE(id_, name_, pred_, doc_, ...)                        \
  static NnValue *id_##_fn (NnModule *self, NnCall *call,                 \
                            const NnArgs *args, GError **error)           \
  { return predicate (nn_args_tensor (args, 0), pred_, error); }          \
  static const char *const id_##_aliases[] = { __VA_ARGS__, NULL };       \
  static NN_OPS_TYPE (id_##_type, name_, doc_, one_args, id_##_aliases,   \
                      id_##_fn)

PREDICATE_TYPE (logical_not, "logical_not", p_not, "input == 0",
                "torch.logical_not", "Tensor.logical_not",
                "Tensor.logical_not_");
PREDICATE_TYPE (isnan, "isnan", p_isnan, "input is NaN", "torch.isnan",
                "Tensor.isnan");
PREDICATE_TYPE (isinf, "isinf", p_isinf, "input is +-inf", "torch.isinf",
                "Tensor.isinf");
PREDICATE_TYPE (isfinite, "isfinite", p_isfinite, "input is finite",
                "torch.isfinite", "Tensor.isfinite");

/* ~x: logical not on bool, two's complement not on integers. */
static NnValue *
bitwise_not_fn (NnModule *self, NnCall *call, const NnArgs *args,
                GError **error)
{
  NnValue *v = nn_args_get (args, 0);
  if (nn_value_kind (v) == NN_VALUE_INT)
    return nn_value_new_int (~nn_value_get_int (v));
  NnTensor *in = nn_value_get_tensor (v);
  if (nn_dtype_is_float (in->dtype))
    {
      nn_ops_fail (error, "\"bitwise_not_cpu\" not implemented for '%s'",
                   nn_ops_dtype_short (in->dtype));
      return NULL;
    }
  NnTensor *out = nn_ops_new (nn_tensor_is_meta (in), in->dtype, &in->shape,
                              error);
  if (!out || nn_tensor_is_meta (in))
    return nn_ops_take (out);
  gint64 n = nn_tensor_numel (in);
  for (gint64 k = 0; k < n; k++)
    {
      gint64 x = nn_ops_get_i (in, k);
      nn_ops_set_i (out, k, in->dtype == NN_DTYPE_BOOL ? !x : ~x);
    }
  return nn_value_take_tensor (out);
}

static const NnArgSpec not_args[] = {
  { "input", NN_ARG_TENSOR | NN_ARG_INT, NN_DTYPES_INT | NN_DTYPE_BIT (NN_DTYPE_BOOL),
    0, NULL, "bool or integer tensor" },
};
static const char *const bitwise_not_aliases[] = {
  "invert", "torch.bitwise_not", "operator.invert", "operator.inv", "Tensor.bitwise_not",
  "Tensor.bitwise_not_", "Tensor.__invert__", NULL };
static NN_OPS_TYPE (bitwise_not_type, "bitwise_not", "~input (bool, int)",
                    not_args, bitwise_not_aliases, bitwise_not_fn);

static NnTensor *
operand (const NnValue *v, NnDType dt)
{
  return nn_value_kind (v) == NN_VALUE_TENSOR
    ? nn_tensor_ref (nn_value_get_tensor (v)) : nn_ops_scalar_tensor (v, dt);
}

static NnValue *
where_fn (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  NnTensor *cond = nn_args_tensor (args, 0);
  NnValue *a = nn_args_get (args, 1), *b = nn_args_get (args, 2);
  if (cond->dtype != NN_DTYPE_BOOL)
    {
      nn_ops_fail (error, "where expected condition to be a boolean tensor, "
                   "but got a tensor with dtype %s",
                   nn_ops_dtype_short (cond->dtype));
      return NULL;
    }
  const NnValue *vals[] = { a, b };
  NnDType dt = nn_ops_result_type (vals, 2);
  g_autoptr (NnTensor) ta = operand (a, dt);
  g_autoptr (NnTensor) tb = operand (b, dt);
  NnShape shape;
  if (!nn_ops_broadcast (&cond->shape, &ta->shape, &shape, error)
      || !nn_ops_broadcast (&shape, &tb->shape, &shape, error))
    return NULL;
  gboolean meta = nn_tensor_is_meta (cond) || nn_tensor_is_meta (ta)
                  || nn_tensor_is_meta (tb);
  NnTensor *out = nn_ops_new (meta, dt, &shape, error);
  if (!out || meta)
    return nn_ops_take (out);
  NnOpsIter it;
  nn_ops_iter_init (&it, &shape);
  nn_ops_iter_add (&it, &cond->shape);
  nn_ops_iter_add (&it, &ta->shape);
  nn_ops_iter_add (&it, &tb->shape);
  gint64 n = nn_shape_numel (&shape);
  const guint8 *c = cond->data;
  for (gint64 k = 0; k < n; k++, nn_ops_iter_next (&it))
    {
      NnTensor *src = c[it.off[0]] ? ta : tb;
      gint64 off = c[it.off[0]] ? it.off[1] : it.off[2];
      if (nn_dtype_is_float (dt))
        nn_ops_set_f (out, k, nn_ops_get_f (src, off));
      else
        nn_ops_set_i (out, k, nn_ops_get_i (src, off));
    }
  return nn_value_take_tensor (out);
}

static NnValue *
masked_fill_fn (NnModule *self, NnCall *call, const NnArgs *args,
                GError **error)
{
  NnTensor *in = nn_args_tensor (args, 0), *mask = nn_args_tensor (args, 1);
  NnValue *value = nn_args_get (args, 2);
  /* PyTorch 1.13 still takes integer masks holding only 0 and 1; its
   * float masks fill nothing, which nnkit refuses rather than copy. */
  if (nn_dtype_is_float (mask->dtype))
    {
      nn_ops_fail (error, "masked_fill_ only supports boolean masks, but got "
                   "mask with dtype %s", nn_dtype_torch_name (mask->dtype));
      return NULL;
    }
  if (mask->dtype != NN_DTYPE_BOOL && !nn_tensor_is_meta (mask))
    for (gint64 k = 0; k < nn_tensor_numel (mask); k++)
      {
        double v = nn_ops_get_f (mask, k);
        if (v != 0 && v != 1)
          {
            nn_ops_fail (error, "Mask tensor can take 0 and 1 values only");
            return NULL;
          }
      }
  double fv;
  if (nn_value_kind (value) == NN_VALUE_TENSOR)
    {
      NnTensor *vt = nn_value_get_tensor (value);
      if (vt->shape.ndim != 0)
        {
          nn_ops_fail (error, "masked_fill_ only supports a 0-dimensional "
                       "value tensor, but got tensor with %u dimension(s).",
                       vt->shape.ndim);
          return NULL;
        }
      fv = nn_tensor_is_meta (vt) ? 0 : nn_ops_get_f (vt, 0);
    }
  else
    fv = nn_value_get_float (value);
  NnShape shape;
  if (!nn_ops_broadcast (&in->shape, &mask->shape, &shape, error))
    return NULL;
  if (!nn_shape_equal (&shape, &in->shape))
    {
      g_autofree char *a = nn_shape_to_string (&mask->shape);
      g_autofree char *b = nn_shape_to_string (&in->shape);
      nn_ops_shape_fail (error, "masked_fill: the mask %s must broadcast to "
                         "the input's shape %s", a, b);
      return NULL;
    }
  gboolean meta = nn_tensor_is_meta (in) || nn_tensor_is_meta (mask);
  NnTensor *out = nn_ops_new (meta, in->dtype, &shape, error);
  if (!out || meta)
    return nn_ops_take (out);
  memcpy (out->data, in->data, nn_tensor_nbytes (in));
  if (in->dtype == NN_DTYPE_F32 && mask->dtype == NN_DTYPE_BOOL
      && nn_tensor_numel (out) > 0)
    {
      /* By runs (a [T, T] mask over [B, H, T, T] scores is one run per
       * head), with no per-element dtype dispatch. */
      const NnShape *ins[] = { &mask->shape };
      const guint8 *m = mask->data;
      float *z = out->data, f = (float) fv;
      NnOpsRuns r;
      nn_ops_runs_init (&r, &shape, 1, ins);
      for (gint64 i = 0; i < r.runs; i++, nn_ops_iter_next (&r.outer))
        {
          const guint8 *mr = m + r.outer.off[0];
          float *zr = z + i * r.inner;
          for (gint64 j = 0; j < r.inner; j++)
            if (mr[j * r.step[0]])
              zr[j] = f;
        }
      return nn_value_take_tensor (out);
    }
  NnOpsIter it;
  nn_ops_iter_init (&it, &shape);
  nn_ops_iter_add (&it, &mask->shape);
  gint64 n = nn_shape_numel (&shape);
  for (gint64 k = 0; k < n; k++, nn_ops_iter_next (&it))
    if (nn_ops_get_i (mask, it.off[0]))
      nn_ops_set_f (out, k, fv);
  return nn_value_take_tensor (out);
}

static NnValue *
tri (const NnArgs *args, gboolean lower, GError **error)
{
  NnTensor *in = nn_args_tensor (args, 0);
  gint64 diag = nn_args_int (args, 1);
  if (in->shape.ndim < 2)
    {
      nn_ops_shape_fail (error, "%s: input tensor must have at least 2 "
                         "dimensions", lower ? "tril" : "triu");
      return NULL;
    }
  NnTensor *out = nn_ops_new (nn_tensor_is_meta (in), in->dtype, &in->shape,
                              error);
  if (!out || nn_tensor_is_meta (in))
    return nn_ops_take (out);
  gint64 rows = in->shape.dims[in->shape.ndim - 2];
  gint64 cols = in->shape.dims[in->shape.ndim - 1];
  gint64 mats = (rows * cols) != 0 ? nn_tensor_numel (in) / (rows * cols) : 0;
  gsize es = nn_dtype_size (in->dtype);
  for (gint64 b = 0; b < mats; b++)
    for (gint64 i = 0; i < rows; i++)
      for (gint64 j = 0; j < cols; j++)
        {
          gboolean keep = lower ? j - i <= diag : j - i >= diag;
          gint64 k = (b * rows + i) * cols + j;
          if (keep)
            memcpy ((guint8 *) out->data + k * es,
                    (guint8 *) in->data + k * es, es);
        }
  return nn_value_take_tensor (out);
}

static NnValue *
tril_fn (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  return tri (args, TRUE, error);
}

static NnValue *
triu_fn (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  return tri (args, FALSE, error);
}

static const NnArgSpec where_args[] = {
  { "condition", NN_ARG_TENSOR, NN_OPS_ALL, 0, NULL, "bool tensor" },
  { "input", NUM, NN_OPS_ALL, 0, NULL, "taken where condition is true" },
  { "other", NUM, NN_OPS_ALL, 0, NULL, "taken elsewhere" },
};
static const NnArgSpec masked_fill_args[] = {
  { "input", NN_ARG_TENSOR, NN_OPS_ALL, 0, NULL, "tensor" },
  { "mask", NN_ARG_TENSOR, NN_OPS_ALL, 0, NULL, "bool mask" },
  { "value", NUM, NN_OPS_ALL, 0, NULL, "number or 0-d tensor" },
};
static const NnArgSpec tri_args[] = {
  { "input", NN_ARG_TENSOR, NN_OPS_ALL, 0, NULL, "tensor of >= 2 dims" },
  { "diagonal", NN_ARG_INT, 0, NN_ARG_OPTIONAL, "0", "diagonal offset" },
};

static const char *const where_aliases[] = {
  "torch.where", NULL };
static const char *const masked_fill_aliases[] = {
  "torch.masked_fill", "Tensor.masked_fill", "Tensor.masked_fill_", NULL };
static const char *const tril_aliases[] = {
  "torch.tril", "Tensor.tril", "Tensor.tril_", NULL };
static const char *const triu_aliases[] = {
  "torch.triu", "Tensor.triu", "Tensor.triu_", NULL };

static NN_OPS_TYPE (where_type, "where", "input where condition, else other",
                    where_args, where_aliases, where_fn);
static NN_OPS_TYPE (masked_fill_type, "masked_fill",
                    "input with value where mask", masked_fill_args,
                    masked_fill_aliases, masked_fill_fn);
static NN_OPS_TYPE (tril_type, "tril", "lower triangle of the last 2 dims",
                    tri_args, tril_aliases, tril_fn);
static NN_OPS_TYPE (triu_type, "triu", "upper triangle of the last 2 dims",
                    tri_args, triu_aliases, triu_fn);

const NnLayerType *const nn_ops_compare_types[] = {
  &eq_type, &ne_type, &lt_type, &le_type, &gt_type, &ge_type,
  &logical_and_type, &logical_or_type, &logical_xor_type, &logical_not_type,
  &bitwise_and_type, &bitwise_or_type, &bitwise_xor_type, &bitwise_not_type,
  &isnan_type, &isinf_type, &isfinite_type, &where_type, &masked_fill_type,
  &tril_type, &triu_type, NULL,
};
