/* ops plugin: sum, mean, amax, amin, max, min, argmax, argmin, var, std,
 * logsumexp over all dims, one dim or a tuple of dims, with keepdim and
 * dtype. */
#include "reduce.h"

#include <math.h>
#include <string.h>

static gboolean
dtype_kw (const NnArgs *args, guint i, NnTensor **in, NnTensor **owned,
          GError **error)
{
  NnDType dt;
  gboolean given;
  if (!nn_ops_dtype_arg (nn_args_get (args, i), &dt, &given, error))
    return FALSE;
  if (given)
    *in = *owned = nn_tensor_to_dtype (*in, dt);
  return TRUE;
}

static NnValue *
sum_mean (const NnArgs *args, gboolean mean, GError **error)
{
  NnTensor *in = nn_args_tensor (args, 0);
  g_autoptr (NnTensor) owned = NULL;
  if (!dtype_kw (args, 3, &in, &owned, error))
    return NULL;
  NnDType out_dtype = in->dtype;
  if (!nn_dtype_is_float (in->dtype))
    {
      if (mean)
        {
          nn_ops_fail (error, "mean(): could not infer output dtype. Input "
                       "dtype must be either a floating point or complex "
                       "dtype. Got: %s", nn_ops_dtype_short (in->dtype));
          return NULL;
        }
      out_dtype = NN_DTYPE_I64;
    }
  g_auto (NnOpsPlan) p;
  if (!nn_ops_plan_init (&p, in, nn_args_get (args, 1), nn_args_bool (args, 2),
                  mean ? "mean" : "sum", error))
    return NULL;
  NnTensor *out = nn_ops_new (p.meta, out_dtype, &p.out, error);
  if (!out || p.meta)
    return nn_ops_take (out);
  for (gint64 o = 0; o < p.outer; o++)
    {
      if (out_dtype == NN_DTYPE_I64)
        {
          guint64 acc = 0; /* wraps as int64 does */
          for (gint64 k = 0; k < p.r; k++)
            acc += (guint64) nn_ops_get_i (p.rows, o * p.r + k);
          nn_ops_set_i (out, o, (gint64) acc);
          continue;
        }
      double acc = 0;
      for (gint64 k = 0; k < p.r; k++)
        acc += nn_ops_get_f (p.rows, o * p.r + k);
      nn_ops_set_f (out, o, mean ? acc / (double) p.r : acc);
    }
  return nn_value_take_tensor (out);
}

static NnValue *
sum_fn (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  return sum_mean (args, FALSE, error);
}

static NnValue *
mean_fn (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  return sum_mean (args, TRUE, error);
}

static NnValue *
prod_fn (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  NnTensor *in = nn_args_tensor (args, 0);
  g_autoptr (NnTensor) owned = NULL;
  if (!dtype_kw (args, 3, &in, &owned, error))
    return NULL;
  NnDType out_dtype = nn_dtype_is_float (in->dtype) ? in->dtype : NN_DTYPE_I64;
  g_auto (NnOpsPlan) p;
  if (!nn_ops_plan_init (&p, in, nn_args_get (args, 1), nn_args_bool (args, 2),
                  "prod", error))
    return NULL;
  NnTensor *out = nn_ops_new (p.meta, out_dtype, &p.out, error);
  if (!out || p.meta)
    return nn_ops_take (out);
  for (gint64 o = 0; o < p.outer; o++)
    {
      if (out_dtype == NN_DTYPE_I64)
        {
          guint64 acc = 1; /* wraps as int64 does */
          for (gint64 k = 0; k < p.r; k++)
            acc *= (guint64) nn_ops_get_i (p.rows, o * p.r + k);
          nn_ops_set_i (out, o, (gint64) acc);
          continue;
        }
      double acc = 1;
      for (gint64 k = 0; k < p.r; k++)
        acc *= nn_ops_get_f (p.rows, o * p.r + k);
      nn_ops_set_f (out, o, acc);
    }
  return nn_value_take_tensor (out);
}

/* all/any: whether every / some element is non-zero, as bool. */
static NnValue *
all_any (const NnArgs *args, gboolean all, GError **error)
{
  NnTensor *in = nn_args_tensor (args, 0);
  g_auto (NnOpsPlan) p;
  if (!nn_ops_plan_init (&p, in, nn_args_get (args, 1), nn_args_bool (args, 2),
                  all ? "all" : "any", error))
    return NULL;
  NnTensor *out = nn_ops_new (p.meta, NN_DTYPE_BOOL, &p.out, error);
  if (!out || p.meta)
    return nn_ops_take (out);
  gboolean fl = nn_dtype_is_float (in->dtype);
  for (gint64 o = 0; o < p.outer; o++)
    {
      gboolean acc = all;
      for (gint64 k = 0; k < p.r && acc == all; k++)
        {
          gint64 i = o * p.r + k;
          gboolean nz = fl ? nn_ops_get_f (p.rows, i) != 0
                           : nn_ops_get_i (p.rows, i) != 0;
          acc = nz;
        }
      ((guint8 *) out->data)[o] = acc ? 1 : 0;
    }
  return nn_value_take_tensor (out);
}

static NnValue *
all_fn (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  return all_any (args, TRUE, error);
}

static NnValue *
any_fn (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  return all_any (args, FALSE, error);
}

/* Index of the extreme of row @o: the first one, NaN beating everything,
 * as PyTorch's max/min/argmax. */
static gint64
extreme (const NnOpsPlan *p, gint64 o, gboolean want_max)
{
  gint64 best = 0;
  const NnTensor *t = p->rows;
  if (nn_dtype_is_float (t->dtype))
    {
      double b = nn_ops_get_f (t, o * p->r);
      for (gint64 k = 1; k < p->r && !isnan (b); k++)
        {
          double v = nn_ops_get_f (t, o * p->r + k);
          if (isnan (v) || (want_max ? v > b : v < b))
            {
              b = v;
              best = k;
            }
        }
      return best;
    }
  gint64 b = nn_ops_get_i (t, o * p->r);
  for (gint64 k = 1; k < p->r; k++)
    {
      gint64 v = nn_ops_get_i (t, o * p->r + k);
      if (want_max ? v > b : v < b)
        {
          b = v;
          best = k;
        }
    }
  return best;
}

static gboolean
nonempty (const NnOpsPlan *p, const char *op, GError **error)
{
  if (p->r > 0 || p->outer == 0)
    return TRUE;
  return nn_ops_shape_fail (error, "%s(): Expected reduction dim to be "
                            "specified for input.numel() == 0. Specify the "
                            "reduction dim with the 'dim' argument.", op);
}

/* Values (and with @indices, the index tensor) of the extremes. */
static gboolean
extremes (NnOpsPlan *p, NnDType dtype, gboolean want_max, NnTensor **values,
          NnTensor **indices, GError **error)
{
  *values = nn_ops_new (p->meta, dtype, &p->out, error);
  if (!*values)
    return FALSE;
  if (indices)
    {
      *indices = nn_ops_new (p->meta, NN_DTYPE_I64, &p->out, error);
      if (!*indices)
        return FALSE;
    }
  if (p->meta)
    return TRUE;
  gsize es = nn_dtype_size (dtype);
  for (gint64 o = 0; o < p->outer; o++)
    {
      gint64 k = extreme (p, o, want_max);
      memcpy ((guint8 *) (*values)->data + o * es,
              (guint8 *) p->rows->data + (o * p->r + k) * es, es);
      if (indices)
        nn_tensor_i64 (*indices)[o] = k;
    }
  return TRUE;
}

static NnValue *
amax_amin (const NnArgs *args, gboolean want_max, GError **error)
{
  NnTensor *in = nn_args_tensor (args, 0);
  const char *op = want_max ? "amax" : "amin";
  g_auto (NnOpsPlan) p;
  if (!nn_ops_plan_init (&p, in, nn_args_get (args, 1), nn_args_bool (args, 2), op,
                  error))
    return NULL;
  if (p.r == 0 && p.outer > 0)
    {
      nn_ops_shape_fail (error, "%s(): Expected reduction dim to be specified "
                         "for input.numel() == 0. Specify the reduction dim "
                         "with the 'dim' argument.", op);
      return NULL;
    }
  g_autoptr (NnTensor) values = NULL;
  if (!extremes (&p, in->dtype, want_max, &values, NULL, error))
    return NULL;
  return nn_value_take_tensor (g_steal_pointer (&values));
}

static NnValue *
amax_fn (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  return amax_amin (args, TRUE, error);
}

static NnValue *
amin_fn (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  return amax_amin (args, FALSE, error);
}

static double f_maximum (double a, double b)
{ return isnan (a) || isnan (b) ? NAN : MAX (a, b); }
static gboolean i_maximum (gint64 a, gint64 b, gint64 *o, GError **e)
{ *o = MAX (a, b); return TRUE; }
static double f_minimum (double a, double b)
{ return isnan (a) || isnan (b) ? NAN : MIN (a, b); }
static gboolean i_minimum (gint64 a, gint64 b, gint64 *o, GError **e)
{ *o = MIN (a, b); return TRUE; }
static const NnOpsBinary op_maximum = { "maximum", f_maximum, i_maximum };
static const NnOpsBinary op_minimum = { "minimum", f_minimum, i_minimum };

static NnValue *
maximum_fn (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  return nn_ops_binary (&op_maximum, nn_args_get (args, 0),
                        nn_args_get (args, 1), NULL, error);
}

static NnValue *
minimum_fn (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  return nn_ops_binary (&op_minimum, nn_args_get (args, 0),
                        nn_args_get (args, 1), NULL, error);
}

/* max(input), max(input, dim, keepdim) -> (values, indices), and
 * max(input, other) = maximum(input, other). */
static NnValue *
max_min (const NnArgs *args, gboolean want_max, GError **error)
{
  NnTensor *in = nn_args_tensor (args, 0);
  NnValue *dimv = nn_args_get (args, 1);
  const char *op = want_max ? "max" : "min";
  if (nn_value_kind (dimv) == NN_VALUE_TENSOR)
    return nn_ops_binary (want_max ? &op_maximum : &op_minimum,
                          nn_args_get (args, 0), dimv, NULL, error);
  gboolean with_dim = !nn_value_is_none (dimv);
  g_auto (NnOpsPlan) p;
  if (!nn_ops_plan_init (&p, in, dimv, with_dim && nn_args_bool (args, 2), op, error))
    return NULL;
  if (!with_dim && !nonempty (&p, op, error))
    return NULL;
  if (with_dim && p.r == 0 && p.outer > 0)
    {
      nn_ops_shape_fail (error, "%s(): Expected reduction dim %" G_GINT64_FORMAT
                         " to have non-zero size.", op,
                         nn_value_get_int (dimv));
      return NULL;
    }
  g_autoptr (NnTensor) values = NULL;
  g_autoptr (NnTensor) indices = NULL;
  if (!extremes (&p, in->dtype, want_max, &values, with_dim ? &indices : NULL,
                 error))
    return NULL;
  if (!with_dim)
    return nn_value_take_tensor (g_steal_pointer (&values));
  NnValue *t = nn_value_new_tuple ();
  nn_value_append (t, nn_value_take_tensor (g_steal_pointer (&values)));
  nn_value_append (t, nn_value_take_tensor (g_steal_pointer (&indices)));
  return t;
}

static NnValue *
max_fn (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  return max_min (args, TRUE, error);
}

static NnValue *
min_fn (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  return max_min (args, FALSE, error);
}

static NnValue *
arg_extreme (const NnArgs *args, gboolean want_max, GError **error)
{
  NnTensor *in = nn_args_tensor (args, 0);
  NnValue *dimv = nn_args_get (args, 1);
  const char *op = want_max ? "argmax" : "argmin";
  g_auto (NnOpsPlan) p;
  if (!nn_ops_plan_init (&p, in, dimv, nn_args_bool (args, 2), op, error))
    return NULL;
  if (p.r == 0 && p.outer > 0)
    {
      nn_ops_shape_fail (error, "%s(): Expected reduction dim to be specified "
                         "for input.numel() == 0.", op);
      return NULL;
    }
  NnTensor *out = nn_ops_new (p.meta, NN_DTYPE_I64, &p.out, error);
  if (!out || p.meta)
    return nn_ops_take (out);
  for (gint64 o = 0; o < p.outer; o++)
    nn_tensor_i64 (out)[o] = extreme (&p, o, want_max);
  return nn_value_take_tensor (out);
}

static NnValue *
argmax_fn (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  return arg_extreme (args, TRUE, error);
}

static NnValue *
argmin_fn (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  return arg_extreme (args, FALSE, error);
}

/* var(input, dim, unbiased, keepdim, *, correction): a bool in dim's
 * place is the old var(input, unbiased) overload.  @with_mean: var_mean
 * and std_mean's (result, mean) tuple, the mean from the same pass. */
static NnValue *
var_std (const NnArgs *args, gboolean sqrt_it, gboolean with_mean,
         GError **error)
{
  NnTensor *in = nn_args_tensor (args, 0);
  NnValue *dimv = nn_args_get (args, 1), *unb = nn_args_get (args, 2);
  NnValue *corr = nn_args_get (args, 4);
  g_autoptr (NnValue) none = nn_value_new_none ();
  const char *op = with_mean ? (sqrt_it ? "std_mean" : "var_mean")
                            : (sqrt_it ? "std" : "var");
  if (nn_value_kind (dimv) == NN_VALUE_BOOL)
    {
      unb = dimv;
      dimv = none;
    }
  if (!nn_dtype_is_float (in->dtype))
    {
      nn_ops_fail (error, "std and var only support floating point and "
                   "complex dtypes, found %s", nn_ops_dtype_short (in->dtype));
      return NULL;
    }
  if (!nn_value_is_none (unb) && !nn_value_is_none (corr))
    {
      nn_ops_fail (error, "%s: cannot specify both unbiased and correction", op);
      return NULL;
    }
  double c = 1;
  if (!nn_value_is_none (corr))
    c = nn_value_get_float (corr);
  else if (!nn_value_is_none (unb))
    c = nn_value_get_bool (unb) ? 1 : 0;
  g_auto (NnOpsPlan) p;
  if (!nn_ops_plan_init (&p, in, dimv, nn_args_bool (args, 3), op, error))
    return NULL;
  g_autoptr (NnTensor) out = nn_ops_new (p.meta, in->dtype, &p.out, error);
  g_autoptr (NnTensor) means = out && with_mean
    ? nn_ops_new (p.meta, in->dtype, &p.out, error) : NULL;
  if (!out || (with_mean && !means))
    return NULL;
  for (gint64 o = 0; o < p.outer && !p.meta; o++)
    {
      double mean = 0, ss = 0;
      for (gint64 k = 0; k < p.r; k++)
        mean += nn_ops_get_f (p.rows, o * p.r + k);
      mean /= (double) p.r;
      for (gint64 k = 0; k < p.r; k++)
        {
          double d = nn_ops_get_f (p.rows, o * p.r + k) - mean;
          ss += d * d;
        }
      double v = ss / MAX (0.0, (double) p.r - c);
      nn_ops_set_f (out, o, sqrt_it ? sqrt (v) : v);
      if (means)
        nn_ops_set_f (means, o, mean);
    }
  if (!with_mean)
    return nn_value_take_tensor (g_steal_pointer (&out));
  NnValue *t = nn_value_new_tuple ();
  nn_value_append (t, nn_value_take_tensor (g_steal_pointer (&out)));
  nn_value_append (t, nn_value_take_tensor (g_steal_pointer (&means)));
  return t;
}

/* logsumexp(input, dim, keepdim=False): log(sum(exp(x))) shifted by the
 * row's max, so large values do not overflow; a row whose max is +-inf
 * gives that inf, as PyTorch's.  Integers give float32. */
static NnValue *
logsumexp_fn (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  NnTensor *in = nn_args_tensor (args, 0);
  NnDType out_dtype = nn_dtype_is_float (in->dtype) ? in->dtype : NN_DTYPE_F32;
  g_auto (NnOpsPlan) p;
  if (!nn_ops_plan_init (&p, in, nn_args_get (args, 1), nn_args_bool (args, 2),
                         "logsumexp", error))
    return NULL;
  NnTensor *out = nn_ops_new (p.meta, out_dtype, &p.out, error);
  if (!out || p.meta)
    return nn_ops_take (out);
  for (gint64 o = 0; o < p.outer; o++)
    {
      double m = -INFINITY, acc = 0;
      for (gint64 k = 0; k < p.r; k++)
        m = MAX (m, nn_ops_get_f (p.rows, o * p.r + k));
      if (isinf (m) || p.r == 0)
        {
          nn_ops_set_f (out, o, m);
          continue;
        }
      for (gint64 k = 0; k < p.r; k++)
        acc += exp (nn_ops_get_f (p.rows, o * p.r + k) - m);
      nn_ops_set_f (out, o, m + log (acc));
    }
  return nn_value_take_tensor (out);
}

static NnValue *
var_fn (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  return var_std (args, FALSE, FALSE, error);
}

static NnValue *
std_fn (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  return var_std (args, TRUE, FALSE, error);
}

static NnValue *
var_mean_fn (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  return var_std (args, FALSE, TRUE, error);
}

static NnValue *
std_mean_fn (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  return var_std (args, TRUE, TRUE, error);
}

#define T_IN { "input", NN_ARG_TENSOR, NN_OPS_ALL, 0, NULL, "tensor" }
#define DIMS(def_) { "dim", NN_ARG_INT | NN_ARG_SEQ | NN_ARG_NONE, 0, \
                     NN_ARG_OPTIONAL, def_, "dim or dims; None: all" }
#define KEEPDIM { "keepdim", NN_ARG_BOOL, 0, NN_ARG_OPTIONAL, "false", \
                  "keep reduced dims with size 1" }

static const NnArgSpec sum_args[] = {
  T_IN, DIMS ("null"), KEEPDIM,
  { "dtype", NN_ARG_STRING | NN_ARG_NONE, 0, NN_ARG_OPTIONAL | NN_ARG_KW_ONLY,
    "null", "convert the input to this dtype first" },
};
static const NnArgSpec amax_args[] = { T_IN, DIMS ("[]"), KEEPDIM };
static const NnArgSpec max_args[] = {
  T_IN,
  { "dim", NN_ARG_INT | NN_ARG_TENSOR | NN_ARG_NONE, NN_OPS_ALL,
    NN_ARG_OPTIONAL, "null", "dim (gives values and indices), or other" },
  KEEPDIM,
};
static const NnArgSpec argmax_args[] = {
  T_IN,
  { "dim", NN_ARG_INT | NN_ARG_NONE, 0, NN_ARG_OPTIONAL, "null",
    "dim; None: index into the flattened input" },
  KEEPDIM,
};
static const NnArgSpec var_args[] = {
  T_IN,
  { "dim", NN_ARG_INT | NN_ARG_SEQ | NN_ARG_BOOL | NN_ARG_NONE, 0,
    NN_ARG_OPTIONAL, "null", "dim or dims; None: all" },
  { "unbiased", NN_ARG_BOOL | NN_ARG_NONE, 0, NN_ARG_OPTIONAL, "null",
    "Bessel's correction (default True)" },
  KEEPDIM,
  { "correction", NN_ARG_INT | NN_ARG_NONE, 0, NN_ARG_OPTIONAL | NN_ARG_KW_ONLY,
    "null", "subtracted from N in the divisor (default 1)" },
};

static const NnArgSpec logsumexp_args[] = {
  T_IN,
  { "dim", NN_ARG_INT | NN_ARG_SEQ, 0, 0, NULL, "dim or dims to reduce" },
  KEEPDIM,
};

static const NnArgSpec pair_args[] = {
  T_IN,
  { "other", NN_ARG_TENSOR, NN_OPS_ALL, 0, NULL, "tensor" },
};
static const NnArgSpec prod_args[] = {
  T_IN,
  { "dim", NN_ARG_INT | NN_ARG_NONE, 0, NN_ARG_OPTIONAL, "null",
    "dim; None: all" },
  KEEPDIM,
  { "dtype", NN_ARG_STRING | NN_ARG_NONE, 0, NN_ARG_OPTIONAL | NN_ARG_KW_ONLY,
    "null", "convert the input to this dtype first" },
};
static const NnArgSpec all_args[] = {
  T_IN,
  { "dim", NN_ARG_INT | NN_ARG_NONE, 0, NN_ARG_OPTIONAL, "null",
    "dim; None: all" },
  KEEPDIM,
};
static const char *const prod_aliases[] = { "torch.prod", "Tensor.prod", NULL };
static const char *const all_aliases[] = { "torch.all", "Tensor.all", NULL };
static const char *const any_aliases[] = { "torch.any", "Tensor.any", NULL };
static NN_OPS_TYPE (prod_type, "prod", "product over a dim or all",
                    prod_args, prod_aliases, prod_fn);
static NN_OPS_TYPE (all_type, "all", "every element non-zero (bool)",
                    all_args, all_aliases, all_fn);
static NN_OPS_TYPE (any_type, "any", "some element non-zero (bool)",
                    all_args, any_aliases, any_fn);

static const char *const maximum_aliases[] = {
  "torch.maximum", "Tensor.maximum", NULL };
static const char *const minimum_aliases[] = {
  "torch.minimum", "Tensor.minimum", NULL };
static NN_OPS_TYPE (maximum_type, "maximum", "element-wise maximum, NaN kept",
                    pair_args, maximum_aliases, maximum_fn);
static NN_OPS_TYPE (minimum_type, "minimum", "element-wise minimum, NaN kept",
                    pair_args, minimum_aliases, minimum_fn);

static const char *const sum_aliases[] = { "torch.sum", "Tensor.sum", NULL };
static const char *const mean_aliases[] = { "torch.mean", "Tensor.mean", NULL };
static const char *const amax_aliases[] = { "torch.amax", "Tensor.amax", NULL };
static const char *const amin_aliases[] = { "torch.amin", "Tensor.amin", NULL };
static const char *const max_aliases[] = { "torch.max", "Tensor.max", NULL };
static const char *const min_aliases[] = { "torch.min", "Tensor.min", NULL };
static const char *const argmax_aliases[] = {
  "torch.argmax", "Tensor.argmax", NULL };
static const char *const argmin_aliases[] = {
  "torch.argmin", "Tensor.argmin", NULL };
static const char *const var_aliases[] = { "torch.var", "Tensor.var", NULL };
static const char *const std_aliases[] = { "torch.std", "Tensor.std", NULL };
static const char *const var_mean_aliases[] = { "torch.var_mean", NULL };
static const char *const logsumexp_aliases[] = {
  "torch.logsumexp", "Tensor.logsumexp", "torch.special.logsumexp", NULL };
static const char *const std_mean_aliases[] = { "torch.std_mean", NULL };

static NN_OPS_TYPE (sum_type, "sum", "sum over dims", sum_args, sum_aliases,
                    sum_fn);
static NN_OPS_TYPE (mean_type, "mean", "mean over dims", sum_args,
                    mean_aliases, mean_fn);
static NN_OPS_TYPE (amax_type, "amax", "maximum over dims", amax_args,
                    amax_aliases, amax_fn);
static NN_OPS_TYPE (amin_type, "amin", "minimum over dims", amax_args,
                    amin_aliases, amin_fn);
static NN_OPS_TYPE (max_type, "max",
                    "maximum; with dim (values, indices); with a tensor, "
                    "element-wise", max_args, max_aliases, max_fn);
static NN_OPS_TYPE (min_type, "min",
                    "minimum; with dim (values, indices); with a tensor, "
                    "element-wise", max_args, min_aliases, min_fn);
static NN_OPS_TYPE (argmax_type, "argmax", "index of the first maximum",
                    argmax_args, argmax_aliases, argmax_fn);
static NN_OPS_TYPE (argmin_type, "argmin", "index of the first minimum",
                    argmax_args, argmin_aliases, argmin_fn);
static NN_OPS_TYPE (var_type, "var", "variance over dims", var_args,
                    var_aliases, var_fn);
static NN_OPS_TYPE (std_type, "std", "standard deviation over dims", var_args,
                    std_aliases, std_fn);
static NN_OPS_TYPE (logsumexp_type, "logsumexp", "log(sum(exp(input))) over dims",
                    logsumexp_args, logsumexp_aliases, logsumexp_fn);
static NN_OPS_TYPE (var_mean_type, "var_mean", "(variance, mean) over dims",
                    var_args, var_mean_aliases, var_mean_fn);
static NN_OPS_TYPE (std_mean_type, "std_mean", "(standard deviation, mean) over dims",
                    var_args, std_mean_aliases, std_mean_fn);

const NnLayerType *const nn_ops_reduce_types[] = {
  &sum_type, &mean_type, &amax_type, &amin_type, &max_type, &min_type,
  &argmax_type, &argmin_type, &var_type, &std_type, &logsumexp_type, &var_mean_type,
  &std_mean_type, &maximum_type,
  &minimum_type, &prod_type, &all_type, &any_type, NULL,
};
