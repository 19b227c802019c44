/* ops plugin: element-wise math: exp, log, sqrt, rsqrt, erf, sin, cos,
 * reciprocal, log1p, expm1, log2, log10, tan, atan, asin, acos, sinh, cosh
 * (integers give float32), neg, abs, sign, square (dtype kept), floor,
 * ceil, round, trunc (integers copied), pow, clamp/clip. */
#include "ops.h"

#include <math.h>

typedef enum {
  TO_FLOAT,    /* integral inputs give the default dtype, float32 */
  KEEP,        /* same dtype; integers computed as integers */
  KEEP_COPY,   /* same dtype; integers are returned unchanged */
} UnaryKind;

typedef struct {
  const char *name;
  double (*f) (double);
  gint64 (*i) (gint64); /* KEEP: the integer version */
  UnaryKind kind;
  const char *bool_error; /* (nullable) bool input is this error */
} UnaryOp;

static double
call_f (double x, gpointer data)
{
  return ((const UnaryOp *) data)->f (x);
}

static NnValue *
unary (const NnArgs *args, const UnaryOp *op, GError **error)
{
  NnTensor *in = nn_args_tensor (args, 0);
  if (op->bool_error && in->dtype == NN_DTYPE_BOOL)
    {
      nn_ops_fail (error, "%s", op->bool_error);
      return NULL;
    }
  if (nn_dtype_is_float (in->dtype) || op->kind == TO_FLOAT)
    {
      NnDType out = nn_dtype_is_float (in->dtype) ? in->dtype : NN_DTYPE_F32;
      return nn_ops_take (nn_ops_map_f (in, out, call_f, (gpointer) op, error));
    }
  if (op->kind == KEEP_COPY)
    return nn_ops_take (nn_tensor_is_meta (in)
                        ? nn_tensor_new_meta (in->dtype, &in->shape)
                        : nn_tensor_copy (in));
  NnTensor *out = nn_ops_new (nn_tensor_is_meta (in), in->dtype, &in->shape,
                              error);
  if (!out || nn_tensor_is_meta (in))
    return nn_ops_take (out);
  gint64 n = nn_tensor_numel (in);
  for (gint64 k = 0; k < n; k++)
    nn_ops_set_i (out, k, op->i (nn_ops_get_i (in, k)));
  return nn_value_take_tensor (out);
}

static double f_rsqrt (double x) { return 1 / sqrt (x); }
static double f_reciprocal (double x) { return 1 / x; }
static double f_neg (double x) { return -x; }
static gint64 i_neg (gint64 x) { return (gint64) (0 - (guint64) x); }
static gint64 i_abs (gint64 x) { return x < 0 ? i_neg (x) : x; }
static double f_sign (double x) { return isnan (x) ? x : (x > 0) - (x < 0); }
static gint64 i_sign (gint64 x) { return (x > 0) - (x < 0); }
static double f_square (double x) { return x * x; }
/* Wraps as PyTorch's integer multiply does. */
static gint64 i_square (gint64 x) { return (gint64) ((guint64) x * (guint64) x); }

#define UNARY(id_, name_, f_, i_, kind_, bool_error_, doc_, ...)            \
  static const UnaryOp id_##_op = { name_, f_, i_, kind_, bool_error_ };   \
  static NnValue *id_##_fn (NnModule *self, NnCall *call,                 \
                            const NnArgs *args, GError **error)           \
  { return unary (args, &id_##_op, error); }                              \
  static const char *const id_##_aliases[] = { __VA_ARGS__, NULL };       \
  static NN_OPS_TYPE (id_##_type, name_, doc_, one_args, id_##_aliases,   \
                      id_##_fn)

#define NEG_BOOL "Negation, the `-` operator, on a bool tensor is not " \
  "supported. If you are trying to invert a mask, use the `~` or " \
  "`logical_not()` operator instead."
#define ABS_BOOL "\"abs_cpu\" not implemented for 'Bool'"

static const NnArgSpec one_args[] = {
  { "input", NN_ARG_TENSOR, NN_OPS_ALL, 0, NULL, "tensor" },
};

UNARY (exp, "exp", exp, NULL, TO_FLOAT, NULL, "e ** input",
       "torch.exp", "Tensor.exp", "Tensor.exp_");
UNARY (log, "log", log, NULL, TO_FLOAT, NULL, "natural logarithm",
       "torch.log", "Tensor.log", "Tensor.log_");
UNARY (sqrt, "sqrt", sqrt, NULL, TO_FLOAT, NULL, "square root",
       "torch.sqrt", "Tensor.sqrt", "Tensor.sqrt_");
UNARY (rsqrt, "rsqrt", f_rsqrt, NULL, TO_FLOAT, NULL, "1 / sqrt(input)",
       "torch.rsqrt", "Tensor.rsqrt", "Tensor.rsqrt_");
UNARY (erf, "erf", erf, NULL, TO_FLOAT, NULL, "error function",
       "torch.erf", "torch.special.erf", "Tensor.erf", "Tensor.erf_");
UNARY (sin, "sin", sin, NULL, TO_FLOAT, NULL, "sine",
       "torch.sin", "Tensor.sin", "Tensor.sin_");
UNARY (cos, "cos", cos, NULL, TO_FLOAT, NULL, "cosine",
       "torch.cos", "Tensor.cos", "Tensor.cos_");
UNARY (reciprocal, "reciprocal", f_reciprocal, NULL, TO_FLOAT, NULL,
       "1 / input", "torch.reciprocal", "Tensor.reciprocal",
       "Tensor.reciprocal_");
UNARY (neg, "neg", f_neg, i_neg, KEEP, NEG_BOOL, "-input",
       "torch.neg", "torch.negative", "operator.neg", "Tensor.neg",
       "Tensor.neg_", "Tensor.negative", "Tensor.__neg__");
UNARY (abs, "abs", fabs, i_abs, KEEP, ABS_BOOL, "absolute value",
       "torch.abs", "torch.absolute", "operator.abs", "Tensor.abs",
       "Tensor.abs_", "Tensor.__abs__");
UNARY (sign, "sign", f_sign, i_sign, KEEP, NULL, "-1, 0 or 1",
       "torch.sign", "Tensor.sign", "Tensor.sign_");
UNARY (floor, "floor", floor, NULL, KEEP_COPY, "\"floor_vml_cpu\" not implemented for 'Bool'", "round down",
       "torch.floor", "Tensor.floor", "Tensor.floor_");
UNARY (ceil, "ceil", ceil, NULL, KEEP_COPY, "\"ceil_vml_cpu\" not implemented for 'Bool'", "round up",
       "torch.ceil", "Tensor.ceil", "Tensor.ceil_");
UNARY (trunc, "trunc", trunc, NULL, KEEP_COPY, "\"trunc_vml_cpu\" not implemented for 'Bool'", "round toward zero",
       "torch.trunc", "torch.fix", "Tensor.trunc", "Tensor.trunc_");
UNARY (log1p, "log1p", log1p, NULL, TO_FLOAT, NULL, "log(1 + input)",
       "torch.log1p", "Tensor.log1p", "Tensor.log1p_");
UNARY (expm1, "expm1", expm1, NULL, TO_FLOAT, NULL, "e ** input - 1",
       "torch.expm1", "Tensor.expm1", "Tensor.expm1_");
UNARY (log2, "log2", log2, NULL, TO_FLOAT, NULL, "base-2 logarithm",
       "torch.log2", "Tensor.log2", "Tensor.log2_");
UNARY (log10, "log10", log10, NULL, TO_FLOAT, NULL, "base-10 logarithm",
       "torch.log10", "Tensor.log10", "Tensor.log10_");
UNARY (tan, "tan", tan, NULL, TO_FLOAT, NULL, "tangent",
       "torch.tan", "Tensor.tan", "Tensor.tan_");
UNARY (atan, "atan", atan, NULL, TO_FLOAT, NULL, "arc tangent",
       "torch.atan", "torch.arctan", "Tensor.atan", "Tensor.atan_", "Tensor.arctan");
UNARY (asin, "asin", asin, NULL, TO_FLOAT, NULL, "arc sine",
       "torch.asin", "torch.arcsin", "Tensor.asin", "Tensor.asin_", "Tensor.arcsin");
UNARY (acos, "acos", acos, NULL, TO_FLOAT, NULL, "arc cosine",
       "torch.acos", "torch.arccos", "Tensor.acos", "Tensor.acos_", "Tensor.arccos");
UNARY (sinh, "sinh", sinh, NULL, TO_FLOAT, NULL, "hyperbolic sine",
       "torch.sinh", "Tensor.sinh", "Tensor.sinh_");
UNARY (cosh, "cosh", cosh, NULL, TO_FLOAT, NULL, "hyperbolic cosine",
       "torch.cosh", "Tensor.cosh", "Tensor.cosh_");
static const UnaryOp square_op = { "square", f_square, i_square, KEEP, NULL };

/* square: a bool input squares as int64, as PyTorch's (bool * bool
 * promotes through pow). */
static NnValue *
square_fn (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  NnTensor *in = nn_args_tensor (args, 0);
  if (in->dtype != NN_DTYPE_BOOL)
    return unary (args, &square_op, error);
  if (nn_tensor_is_meta (in))
    return nn_ops_take (nn_tensor_new_meta (NN_DTYPE_I64, &in->shape));
  return nn_ops_take (nn_tensor_to_dtype (in, NN_DTYPE_I64));
}
static const char *const square_aliases[] = {
  "torch.square", "Tensor.square", "Tensor.square_", NULL };
static NN_OPS_TYPE (square_type, "square", "input * input", one_args, square_aliases,
                    square_fn);

/* round(input, decimals=0): half to even, as nearbyint; decimals scale
 * first, as ATen's round_decimals. */
static NnValue *
round_fn (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  NnTensor *in = nn_args_tensor (args, 0);
  gint64 decimals = nn_args_int (args, 1);
  if (in->dtype == NN_DTYPE_BOOL)
    {
      nn_ops_fail (error, "\"round_vml_cpu\" not implemented for 'Bool'");
      return NULL;
    }
  if (!nn_dtype_is_float (in->dtype))
    {
      if (decimals != 0)
        {
          nn_ops_fail (error, "round_decimals: integer inputs do not support "
                       "decimals");
          return NULL;
        }
      return nn_ops_take (nn_tensor_is_meta (in)
                          ? nn_tensor_new_meta (in->dtype, &in->shape)
                          : nn_tensor_copy (in));
    }
  NnTensor *out = nn_ops_new (nn_tensor_is_meta (in), in->dtype, &in->shape,
                              error);
  if (!out || nn_tensor_is_meta (in))
    return nn_ops_take (out);
  gboolean neg = decimals < 0;
  double scale = nn_ops_round_to (in->dtype, pow (10, (double) ABS (decimals)));
  gint64 n = nn_tensor_numel (in);
  for (gint64 k = 0; k < n; k++)
    {
      double x = nn_ops_get_f (in, k), r;
      if (decimals == 0)
        r = nearbyint (x);
      else if (neg)
        r = nearbyint (nn_ops_round_to (in->dtype, x / scale)) * scale;
      else
        r = nearbyint (nn_ops_round_to (in->dtype, x * scale)) / scale;
      nn_ops_set_f (out, k, r);
    }
  return nn_value_take_tensor (out);
}

static double f_pow (double a, double b) { return pow (a, b); }

static gboolean
i_pow (gint64 a, gint64 b, gint64 *o, GError **error)
{
  if (b < 0)
    {
      /* 1 and -1 have integer powers of any sign; PyTorch refuses the rest
       * only for tensors, so the check is on the exponent alone. */
      return nn_ops_fail (error, "Integers to negative integer powers are not "
                          "allowed.");
    }
  guint64 r = 1, base = (guint64) a;
  while (b)
    {
      if (b & 1)
        r *= base;
      base *= base;
      b >>= 1;
    }
  *o = (gint64) r;
  return TRUE;
}

static const NnOpsBinary op_pow = { "pow", f_pow, i_pow };

static NnValue *
pow_fn (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  return nn_ops_binary (&op_pow, nn_args_get (args, 0), nn_args_get (args, 1),
                        NULL, error);
}

/* clamp(input, min=None, max=None): min(max(input, min), max), NaN kept;
 * bounds are numbers or tensors that broadcast. */
static NnValue *
clamp_fn (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  NnValue *x = nn_args_get (args, 0), *lo = nn_args_get (args, 1),
          *hi = nn_args_get (args, 2);
  if (nn_value_is_none (lo) && nn_value_is_none (hi))
    {
      nn_ops_fail (error, "torch.clamp: At least one of 'min' or 'max' must "
                   "not be None");
      return NULL;
    }
  NnTensor *in = nn_value_get_tensor (x);
  const NnValue *vals[] = { x, nn_value_is_none (lo) ? NULL : lo,
                            nn_value_is_none (hi) ? NULL : hi };
  NnDType dt = nn_ops_result_type (vals, 3);
  if (dt == NN_DTYPE_BOOL)
    {
      nn_ops_fail (error, "\"clamp_cpu\" not implemented for 'Bool'");
      return NULL;
    }
  g_autoptr (NnTensor) tlo = NULL;
  g_autoptr (NnTensor) thi = NULL;
  NnShape shape = in->shape;
  gboolean meta = nn_tensor_is_meta (in);
  if (vals[1])
    {
      tlo = nn_value_kind (lo) == NN_VALUE_TENSOR
        ? nn_tensor_ref (nn_value_get_tensor (lo)) : nn_ops_scalar_tensor (lo, dt);
      meta |= nn_tensor_is_meta (tlo);
      if (!nn_ops_broadcast (&shape, &tlo->shape, &shape, error))
        return NULL;
    }
  if (vals[2])
    {
      thi = nn_value_kind (hi) == NN_VALUE_TENSOR
        ? nn_tensor_ref (nn_value_get_tensor (hi)) : nn_ops_scalar_tensor (hi, dt);
      meta |= nn_tensor_is_meta (thi);
      if (!nn_ops_broadcast (&shape, &thi->shape, &shape, error))
        return NULL;
    }
  NnTensor *out = nn_ops_new (meta, dt, &shape, error);
  if (!out || meta)
    return nn_ops_take (out);
  NnOpsIter it;
  nn_ops_iter_init (&it, &shape);
  nn_ops_iter_add (&it, &in->shape);
  nn_ops_iter_add (&it, tlo ? &tlo->shape : &in->shape);
  nn_ops_iter_add (&it, thi ? &thi->shape : &in->shape);
  gint64 n = nn_shape_numel (&shape);
  gboolean fl = nn_dtype_is_float (dt);
  for (gint64 k = 0; k < n; k++, nn_ops_iter_next (&it))
    {
      if (fl)
        {
          double v = nn_ops_round_to (dt, nn_ops_get_f (in, it.off[0]));
          if (tlo && !isnan (v))
            {
              double l = nn_ops_round_to (dt, nn_ops_get_f (tlo, it.off[1]));
              v = isnan (l) ? l : MAX (v, l);
            }
          if (thi && !isnan (v))
            {
              double h = nn_ops_round_to (dt, nn_ops_get_f (thi, it.off[2]));
              v = isnan (h) ? h : MIN (v, h);
            }
          nn_ops_set_f (out, k, v);
          continue;
        }
      gint64 v = nn_ops_get_i (in, it.off[0]);
      if (tlo)
        v = MAX (v, nn_ops_get_i (tlo, it.off[1]));
      if (thi)
        v = MIN (v, nn_ops_get_i (thi, it.off[2]));
      nn_ops_set_i (out, k, v);
    }
  return nn_value_take_tensor (out);
}

static const NnArgSpec round_args[] = {
  { "input", NN_ARG_TENSOR, NN_OPS_ALL, 0, NULL, "tensor" },
  { "decimals", NN_ARG_INT, 0, NN_ARG_OPTIONAL | NN_ARG_KW_ONLY, "0",
    "decimal places" },
};
static const NnArgSpec pow_args[] = {
  { "input", NN_ARG_TENSOR | NN_ARG_SCALAR, NN_OPS_ALL, 0, NULL, "base" },
  { "exponent", NN_ARG_TENSOR | NN_ARG_SCALAR, NN_OPS_ALL, 0, NULL, "exponent" },
};
static const NnArgSpec clamp_args[] = {
  { "input", NN_ARG_TENSOR, NN_OPS_ALL, 0, NULL, "tensor" },
  { "min", NN_ARG_TENSOR | NN_ARG_SCALAR | NN_ARG_NONE, NN_OPS_ALL,
    NN_ARG_OPTIONAL, "null", "lower bound" },
  { "max", NN_ARG_TENSOR | NN_ARG_SCALAR | NN_ARG_NONE, NN_OPS_ALL,
    NN_ARG_OPTIONAL, "null", "upper bound" },
};

static const char *const round_aliases[] = {
  "torch.round", "Tensor.round", "Tensor.round_", NULL };
static const char *const pow_aliases[] = {
  "torch.pow", "operator.pow", "operator.ipow", "Tensor.pow", "Tensor.pow_",
  "Tensor.__pow__", "Tensor.__ipow__", NULL };
static const char *const clamp_aliases[] = {
  "torch.clamp", "torch.clip", "Tensor.clamp", "Tensor.clamp_", "Tensor.clip",
  "Tensor.clip_", NULL };

static NN_OPS_TYPE (round_type, "round", "round half to even", round_args,
                    round_aliases, round_fn);
static NN_OPS_TYPE (pow_type, "pow", "input ** exponent", pow_args,
                    pow_aliases, pow_fn);
static NN_OPS_TYPE (clamp_type, "clamp", "min(max(input, min), max)",
                    clamp_args, clamp_aliases, clamp_fn);

const NnLayerType *const nn_ops_unary_types[] = {
  &exp_type, &log_type, &sqrt_type, &rsqrt_type, &erf_type, &sin_type,
  &cos_type, &reciprocal_type, &neg_type, &abs_type, &sign_type, &floor_type,
  &ceil_type, &trunc_type, &round_type, &pow_type, &clamp_type, &log1p_type,
  &expm1_type, &log2_type, &log10_type, &tan_type, &atan_type, &asin_type,
  &acos_type, &sinh_type, &cosh_type, &square_type, NULL,
};
