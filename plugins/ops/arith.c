/* ops plugin: add, sub, rsub, mul, div (rounding modes), floor_divide and
 * remainder, on tensors and Python numbers (operator.* on ints in a graph
 * computes sizes such as C // 4 and stays an int). */
#include "ops.h"
#include "../common/nn-vecmath.h"

#include <nnkit/train.h>

#include <math.h>

#define NUM (NN_ARG_TENSOR | NN_ARG_SCALAR)

static const NnArgSpec alpha_args[] = {
  { "input", NUM, NN_OPS_ALL, 0, NULL, "tensor or number" },
  { "other", NUM, NN_OPS_ALL, 0, NULL, "tensor or number" },
  { "alpha", NN_ARG_SCALAR, 0, NN_ARG_OPTIONAL | NN_ARG_KW_ONLY, "1",
    "multiplier of other" },
};

static const NnArgSpec two_args[] = {
  { "input", NUM, NN_OPS_ALL, 0, NULL, "tensor or number" },
  { "other", NUM, NN_OPS_ALL, 0, NULL, "tensor or number" },
};

static const NnArgSpec div_args[] = {
  { "input", NUM, NN_OPS_ALL, 0, NULL, "dividend" },
  { "other", NUM, NN_OPS_ALL, 0, NULL, "divisor" },
  { "rounding_mode", NN_ARG_STRING | NN_ARG_NONE, 0,
    NN_ARG_OPTIONAL | NN_ARG_KW_ONLY, "null", "None, 'trunc' or 'floor'" },
};

static gboolean
zero_division (GError **error)
{
  return nn_ops_fail (error, "ZeroDivisionError: integer division or modulo "
                      "by zero");
}

/* Integers wrap on overflow as two's complement, as PyTorch's do. */
static double f_add (double a, double b) { return a + b; }
static gboolean i_add (gint64 a, gint64 b, gint64 *o, GError **e)
{ *o = (gint64) ((guint64) a + (guint64) b); return TRUE; }
static double f_sub (double a, double b) { return a - b; }
static gboolean i_sub (gint64 a, gint64 b, gint64 *o, GError **e)
{ *o = (gint64) ((guint64) a - (guint64) b); return TRUE; }
static double f_mul (double a, double b) { return a * b; }
static gboolean i_mul (gint64 a, gint64 b, gint64 *o, GError **e)
{ *o = (gint64) ((guint64) a * (guint64) b); return TRUE; }
static double f_div (double a, double b) { return a / b; }
static double f_div_trunc (double a, double b) { return trunc (a / b); }

static gboolean
i_div_trunc (gint64 a, gint64 b, gint64 *o, GError **e)
{
  if (b == 0)
    return zero_division (e);
  *o = (b == -1) ? (gint64) (0 - (guint64) a) : a / b;
  return TRUE;
}

/* ATen's div_floor_floating: floor of the exact quotient, computed from
 * fmod so that it agrees with remainder(). */
static double
f_div_floor (double a, double b)
{
  if (b == 0)
    return a / b;
  double mod = fmod (a, b);
  double div = (a - mod) / b;
  if (mod != 0 && ((b < 0) != (mod < 0)))
    div -= 1;
  double fl;
  if (div != 0)
    {
      fl = floor (div);
      if (div - fl > 0.5)
        fl += 1;
    }
  else
    fl = copysign (0, a / b);
  return fl;
}

static gboolean
i_div_floor (gint64 a, gint64 b, gint64 *o, GError **e)
{
  if (b == 0)
    return zero_division (e);
  if (b == -1)
    {
      *o = (gint64) (0 - (guint64) a);
      return TRUE;
    }
  gint64 q = a / b, r = a % b;
  if (r != 0 && ((r < 0) != (b < 0)))
    q--;
  *o = q;
  return TRUE;
}

static double
f_rem (double a, double b)
{
  double mod = fmod (a, b);
  if (mod != 0 && ((b < 0) != (mod < 0)))
    mod += b;
  return mod;
}

static gboolean
i_rem (gint64 a, gint64 b, gint64 *o, GError **e)
{
  if (b == 0)
    return zero_division (e);
  if (b == -1)
    {
      *o = 0;
      return TRUE;
    }
  gint64 r = a % b;
  if (r != 0 && ((r < 0) != (b < 0)))
    r += b;
  *o = r;
  return TRUE;
}

/* fmod: the sign of the dividend, as C's fmod and %. */
static double f_fmod (double a, double b) { return fmod (a, b); }

static gboolean
i_fmod (gint64 a, gint64 b, gint64 *o, GError **e)
{
  if (b == 0)
    return zero_division (e);
  *o = b == -1 ? 0 : a % b;
  return TRUE;
}

static gboolean
is_bool (const NnValue *v)
{
  if (nn_value_kind (v) == NN_VALUE_TENSOR)
    return nn_value_get_tensor (v)->dtype == NN_DTYPE_BOOL;
  return nn_value_kind (v) == NN_VALUE_BOOL;
}

static gboolean
sub_check (NnDType common, const NnValue *a, const NnValue *b, GError **error)
{
  if (is_bool (a) && is_bool (b))
    return nn_ops_fail (error, "Subtraction, the `-` operator, with two bool "
                        "tensors is not supported. Use the `^` or "
                        "`logical_xor()` operator instead.");
  if (is_bool (a) || is_bool (b))
    return nn_ops_fail (error, "Subtraction, the `-` operator, with a bool "
                        "tensor is not supported. If you are trying to invert "
                        "a mask, use the `~` or `logical_not()` operator "
                        "instead.");
  return TRUE;
}

/* float32 kernels of a run (NnOpsBinary.f32), 8 lanes at a time where
 * an operand is contiguous or one value.  A float op rounds as f's double
 * result rounded to float does (+ - * / are exact in double first). */
#define NN_OPS_F32_RUN(name, OP)                                              \
  static void                                                               \
  name (const float *x, gint64 sx, const float *y, gint64 sy, float *z,     \
        gint64 n)                                                           \
  {                                                                         \
    if (sx == 1 && sy == 1)                                                 \
      for (gint64 i = 0; i < n; i += 8) {                                   \
        gint64 w = MIN (8, n - i);                                          \
        nn_v8_store (z + i, nn_v8_load (x + i, w) OP nn_v8_load (y + i, w), w); \
      }                                                                     \
    else if (sx == 1 && sy == 0)                                            \
      for (gint64 i = 0; i < n; i += 8) {                                   \
        gint64 w = MIN (8, n - i);                                          \
        nn_v8_store (z + i, nn_v8_load (x + i, w) OP NN_V8 (*y), w);        \
      }                                                                     \
    else if (sx == 0 && sy == 1)                                            \
      for (gint64 i = 0; i < n; i += 8) {                                   \
        gint64 w = MIN (8, n - i);                                          \
        nn_v8_store (z + i, NN_V8 (*x) OP nn_v8_load (y + i, w), w);        \
      }                                                                     \
    else                                                                    \
      for (gint64 i = 0; i < n; i++)                                        \
        z[i] = x[i * sx] OP y[i * sy];                                      \
  }

NN_OPS_F32_RUN (r_add, +)
NN_OPS_F32_RUN (r_sub, -)
NN_OPS_F32_RUN (r_mul, *)
NN_OPS_F32_RUN (r_div, /)

static const NnOpsBinary op_add = { "add", f_add, i_add, .f32 = r_add };
static const NnOpsBinary op_sub = { "sub", f_sub, i_sub, .check = sub_check, .f32 = r_sub };
static const NnOpsBinary op_mul = { "mul", f_mul, i_mul, .f32 = r_mul };
static const NnOpsBinary op_div = { "div", f_div, i_div_trunc, .int_to_float = TRUE,
                                    .f32 = r_div };
static const NnOpsBinary op_div_trunc = { "div", f_div_trunc, i_div_trunc };
static const NnOpsBinary op_div_floor = { "div", f_div_floor, i_div_floor };
static const NnOpsBinary op_floor_divide = { "floor_divide", f_div_floor, i_div_floor };
static const NnOpsBinary op_remainder = { "remainder", f_rem, i_rem };
static const NnOpsBinary op_fmod = { "fmod", f_fmod, i_fmod };

NnValue *
nn_ops_add_forward (NnModule *self, NnCall *call, const NnArgs *args,
                    GError **error)
{
  return nn_ops_binary (&op_add, nn_args_get (args, 0), nn_args_get (args, 1),
                        nn_args_get (args, 2), error);
}

static NnValue *
sub_fn (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  return nn_ops_binary (&op_sub, nn_args_get (args, 0), nn_args_get (args, 1),
                        nn_args_get (args, 2), error);
}

/* rsub(input, other, alpha) = other - alpha * input. */
static NnValue *
rsub_fn (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  return nn_ops_binary (&op_sub, nn_args_get (args, 1), nn_args_get (args, 0),
                        nn_args_get (args, 2), error);
}

/* Tensor.__rsub__(self, other) = other - self. */
static NnValue *
rsub_dunder_fn (NnModule *self, NnCall *call, const NnArgs *args,
                GError **error)
{
  return nn_ops_binary (&op_sub, nn_args_get (args, 1), nn_args_get (args, 0),
                        NULL, error);
}

static NnValue *
mul_fn (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  return nn_ops_binary (&op_mul, nn_args_get (args, 0), nn_args_get (args, 1),
                        NULL, error);
}

static NnValue *
div_fn (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  NnValue *mode = nn_args_get (args, 2);
  const NnOpsBinary *op = &op_div;
  if (!nn_value_is_none (mode))
    {
      const char *m = nn_value_get_string (mode);
      if (g_strcmp0 (m, "trunc") == 0)
        op = &op_div_trunc;
      else if (g_strcmp0 (m, "floor") == 0)
        op = &op_div_floor;
      else
        {
          nn_ops_fail (error, "div expected rounding_mode to be one of None, "
                       "'trunc', or 'floor' but found '%s'", m);
          return NULL;
        }
    }
  return nn_ops_binary (op, nn_args_get (args, 0), nn_args_get (args, 1), NULL,
                        error);
}

static NnValue *
floor_divide_fn (NnModule *self, NnCall *call, const NnArgs *args,
                 GError **error)
{
  return nn_ops_binary (&op_floor_divide, nn_args_get (args, 0),
                        nn_args_get (args, 1), NULL, error);
}

static NnValue *
remainder_fn (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  return nn_ops_binary (&op_remainder, nn_args_get (args, 0),
                        nn_args_get (args, 1), NULL, error);
}

static NnValue *
fmod_fn (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  return nn_ops_binary (&op_fmod, nn_args_get (args, 0), nn_args_get (args, 1),
                        NULL, error);
}

static const char *const add_aliases[] = {
  "torch.add", "operator.add", "operator.iadd", "Tensor.add", "Tensor.add_",
  "Tensor.__add__", "Tensor.__radd__", "Tensor.__iadd__", NULL };
static const char *const sub_aliases[] = {
  "torch.sub", "torch.subtract", "operator.sub", "operator.isub",
  "Tensor.sub", "Tensor.sub_", "Tensor.subtract", "Tensor.subtract_",
  "Tensor.__sub__", "Tensor.__isub__", NULL };
static const char *const rsub_aliases[] = { "torch.rsub", NULL };
static const char *const mul_aliases[] = {
  "torch.mul", "torch.multiply", "operator.mul", "operator.imul",
  "Tensor.mul", "Tensor.mul_", "Tensor.multiply", "Tensor.multiply_",
  "Tensor.__mul__", "Tensor.__rmul__", "Tensor.__imul__", NULL };
static const char *const div_aliases[] = {
  "torch.div", "torch.divide", "torch.true_divide", "operator.truediv",
  "operator.itruediv", "Tensor.div", "Tensor.div_", "Tensor.divide",
  "Tensor.divide_", "Tensor.true_divide", "Tensor.true_divide_",
  "Tensor.__truediv__", "Tensor.__itruediv__", "Tensor.__div__", NULL };
static const char *const floor_divide_aliases[] = {
  "floordiv", "torch.floor_divide", "operator.floordiv", "operator.ifloordiv",
  "Tensor.floor_divide", "Tensor.floor_divide_", "Tensor.__floordiv__",
  "Tensor.__ifloordiv__", NULL };
static const char *const remainder_aliases[] = {
  "mod", "torch.remainder", "operator.mod", "operator.imod", "Tensor.remainder",
  "Tensor.remainder_", "Tensor.__mod__", "Tensor.__imod__", NULL };

static const char *const fmod_aliases[] = {
  "torch.fmod", "Tensor.fmod", "Tensor.fmod_", NULL };

/* --- backward of add, sub and mul (float32), with broadcasting ---------- */

/* Offset in a tensor of @s broadcast (right-aligned) to @out of element
 * @i of @out. */
static gint64
bcast_offset (const NnShape *out, const NnShape *s, gint64 i)
{
  gint64 off = 0, stride = 1;
  for (gint d = (gint) out->ndim - 1, e = (gint) s->ndim - 1; d >= 0; d--, e--) {
    gint64 idx = i % out->dims[d];
    i /= out->dims[d];
    if (e >= 0) {
      if (s->dims[e] != 1)
        off += idx * stride;
      stride *= s->dims[e];
    }
  }
  return off;
}

/* The gradient of a tensor operand @a: sum over the broadcast dims of
 * g * factor, factor being the other operand (mul), @scale (add/sub).
 * Returns None for a number or a non-float32 operand. */
static NnValue *
operand_grad (const NnValue *a, const NnValue *other, gboolean times_other,
              double scale, NnTensor *g)
{
  NnTensor *t = nn_value_get_tensor (a);
  if (!t || t->dtype != NN_DTYPE_F32)
    return nn_value_new_none ();
  /* A residual add's operands: the gradient itself, shared (the tape
   * never writes into a returned gradient). */
  if (!times_other && scale == 1.0 && nn_shape_equal (&t->shape, &g->shape))
    return nn_value_new_tensor (g);
  NnTensor *d = nn_tensor_new (NN_DTYPE_F32, &t->shape);
  float *dd = nn_tensor_f32 (d);
  const float *gd = nn_tensor_f32 (g);
  NnTensor *ot = times_other ? nn_value_get_tensor (other) : NULL;
  const float *od = ot && ot->dtype == NN_DTYPE_F32 ? nn_tensor_f32 (ot) : NULL;
  double num = times_other && !ot ? (nn_value_kind (other) == NN_VALUE_FLOAT
                                         ? nn_value_get_float (other)
                                         : (double) nn_value_get_int (other))
                                  : 1.0;
  for (gint64 i = 0, n = nn_tensor_numel (g); i < n; i++) {
    double f = od ? od[bcast_offset (&g->shape, &ot->shape, i)] : num;
    dd[bcast_offset (&g->shape, &t->shape, i)] += (float) (gd[i] * f * scale);
  }
  return nn_value_take_tensor (d);
}

static double
alpha_of (const NnArgs *args)
{
  NnValue *a = nn_args_get (args, 2);
  return nn_value_kind (a) == NN_VALUE_FLOAT ? nn_value_get_float (a)
                                             : (double) nn_value_get_int (a);
}

static NnValue *
add_sub_backward (const NnArgs *args, const NnValue *grad_out, double sign)
{
  NnTensor *g = nn_value_get_tensor (grad_out);
  NnValue *res = nn_value_new_tuple ();
  nn_value_append (res, operand_grad (nn_args_get (args, 0), NULL, FALSE, 1.0, g));
  nn_value_append (res, operand_grad (nn_args_get (args, 1), NULL, FALSE,
                                      sign * alpha_of (args), g));
  return res;
}

/* d input = g, d other = +-alpha g, each summed to its operand's shape. */
static NnValue *
add_backward (NnModule *self, NnCall *call, const NnArgs *args,
              const NnValue *out, const NnValue *grad_out, GError **error)
{
  return add_sub_backward (args, grad_out, 1.0);
}

static NnValue *
sub_backward (NnModule *self, NnCall *call, const NnArgs *args,
              const NnValue *out, const NnValue *grad_out, GError **error)
{
  return add_sub_backward (args, grad_out, -1.0);
}

/* d input = g * other, d other = g * input. */
static NnValue *
mul_backward (NnModule *self, NnCall *call, const NnArgs *args,
              const NnValue *out, const NnValue *grad_out, GError **error)
{
  NnTensor *g = nn_value_get_tensor (grad_out);
  NnValue *a = nn_args_get (args, 0), *b = nn_args_get (args, 1);
  NnValue *res = nn_value_new_tuple ();
  nn_value_append (res, operand_grad (a, b, TRUE, 1.0, g));
  nn_value_append (res, operand_grad (b, a, TRUE, 1.0, g));
  return res;
}

/* As NN_OPS_GRAD_TYPE, with what the plan may fuse (add_fuse.c). */
static const NnLayerType add_type = {
  .struct_size = sizeof (NnLayerType),
  .name = "add",
  .doc = "input + alpha * other",
  .flags = NN_LAYER_OP,
  .args = alpha_args,
  .n_args = G_N_ELEMENTS (alpha_args),
  .aliases = add_aliases,
  .create = nn_ops_create,
  .forward = nn_ops_add_forward,
  .infer = nn_ops_add_forward,
  .backward = add_backward,
  .fuse = &nn_ops_add_fuse,
};
static NN_OPS_GRAD_TYPE (sub_type, "sub", "input - alpha * other", alpha_args,
                         sub_aliases, sub_fn, sub_backward);
static NN_OPS_TYPE (rsub_type, "rsub", "other - alpha * input", alpha_args,
                    rsub_aliases, rsub_fn);
static NN_OPS_TYPE (rsub_dunder_type, "Tensor.__rsub__", "other - input",
                    two_args, NULL, rsub_dunder_fn);
static NN_OPS_GRAD_TYPE (mul_type, "mul", "input * other", two_args, mul_aliases,
                         mul_fn, mul_backward);
static NN_OPS_TYPE (div_type, "div", "input / other, rounded as rounding_mode",
                    div_args, div_aliases, div_fn);
static NN_OPS_TYPE (floor_divide_type, "floor_divide",
                    "input // other (floor, also on Python ints)", two_args,
                    floor_divide_aliases, floor_divide_fn);
static NN_OPS_TYPE (remainder_type, "remainder",
                    "input % other, sign of the divisor", two_args,
                    remainder_aliases, remainder_fn);

static NN_OPS_TYPE (fmod_type, "fmod", "input % other, sign of the dividend",
                    two_args, fmod_aliases, fmod_fn);

const NnLayerType *const nn_ops_arith_types[] = {
  &add_type, &sub_type, &rsub_type, &rsub_dunder_type, &mul_type, &div_type,
  &floor_divide_type, &remainder_type, &fmod_type, NULL,
};
