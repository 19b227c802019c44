/* ops plugin: sum, mean, amax, amin, max, min, argmax, argmin, var, std
 * over all dims, one dim or a tuple of dims, with keepdim and dtype. */
#include "ops.h"

#include <math.h>
#include <string.h>

/* A reduction laid out as @outer rows of @r contiguous elements: the
 * input is copied with the reduced dims last. */
typedef struct {
  NnShape out;        /* result shape (keepdim applied) */
  gint64 outer, r;
  NnTensor *rows;     /* (transfer full) the permuted copy; NULL for meta */
  gboolean meta;
} Plan;

static void
plan_clear (Plan *p)
{
  g_clear_pointer (&p->rows, nn_tensor_unref);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (Plan, plan_clear)

/* @dimv: None or an empty sequence (all dims), an int, or a sequence. */
static gboolean
plan_init (Plan *p, NnTensor *in, const NnValue *dimv, gboolean keepdim,
           const char *op, GError **error)
{
  gboolean reduce[NN_MAX_DIMS] = { FALSE };
  guint nd = in->shape.ndim;
  *p = (Plan) { .meta = nn_tensor_is_meta (in) };
  NnValueKind k = nn_value_kind (dimv);
  gboolean all = k == NN_VALUE_NONE
                 || ((k == NN_VALUE_TUPLE || k == NN_VALUE_LIST)
                     && nn_value_n_items (dimv) == 0);
  if (all)
    for (guint d = 0; d < nd; d++)
      reduce[d] = TRUE;
  else
    {
      gint64 dims[NN_MAX_DIMS];
      guint n;
      if (!nn_ops_sizes (dimv, "dim", dims, &n, error))
        return FALSE;
      for (guint i = 0; i < n; i++)
        {
          guint d;
          if (!nn_ops_dim (dims[i], nd, &d, error))
            return FALSE;
          if (nd && reduce[d])
            return nn_ops_shape_fail (error, "dim %u appears multiple times in "
                                      "the list of dims", d);
          if (nd)
            reduce[d] = TRUE;
        }
    }
  gint64 own[NN_MAX_DIMS], strides[NN_MAX_DIMS];
  NnShape walk = { 0 };
  nn_ops_strides (&in->shape, own);
  p->outer = 1;
  p->r = 1;
  for (guint d = 0; d < nd; d++)
    if (!reduce[d])
      {
        p->out.dims[p->out.ndim++] = in->shape.dims[d];
        walk.dims[walk.ndim] = in->shape.dims[d];
        strides[walk.ndim++] = own[d];
        p->outer *= in->shape.dims[d];
      }
    else if (keepdim)
      p->out.dims[p->out.ndim++] = 1;
  for (guint d = 0; d < nd; d++)
    if (reduce[d])
      {
        walk.dims[walk.ndim] = in->shape.dims[d];
        strides[walk.ndim++] = own[d];
        p->r *= in->shape.dims[d];
      }
  if (!keepdim)
    {
      /* Rebuild without reduced dims (keepdim FALSE). */
      p->out.ndim = 0;
      for (guint d = 0; d < nd; d++)
        if (!reduce[d])
          p->out.dims[p->out.ndim++] = in->shape.dims[d];
    }
  if (p->meta)
    return TRUE;
  p->rows = nn_ops_gather (in, &walk, strides, 0, error);
  return p->rows != NULL;
}

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
  g_auto (Plan) p;
  if (!plan_init (&p, in, nn_args_get (args, 1), nn_args_bool (args, 2),
                  mean ? "mean" : "sum", error))
    return NULL;
  NnTensor *out = nn_ops_new (p.meta, out_dtype, &p.out, error);
  if (!out || p.meta)
    return nn_ops_take (out);
  for (gint64 o = 0; o < p.outer; o++)
    {
      if (out_dtype == NN_DTYPE_I64)
        {
          gint64 acc = 0;
          for (gint64 k = 0; k < p.r; k++)
            acc += nn_ops_get_i (p.rows, o * p.r + k);
          nn_ops_set_i (out, o, acc);
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

/* Index of the extreme of row @o: the first one, NaN beating everything,
 * as PyTorch's max/min/argmax. */
static gint64
extreme (const Plan *p, gint64 o, gboolean want_max)
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
nonempty (const Plan *p, const char *op, GError **error)
{
  if (p->r > 0 || p->outer == 0)
    return TRUE;
  return nn_ops_shape_fail (error, "%s(): Expected reduction dim to be "
                            "specified for input.numel() == 0. Specify the "
                            "reduction dim with the 'dim' argument.", op);
}

/* Values (and with @indices, the index tensor) of the extremes. */
static gboolean
extremes (Plan *p, NnDType dtype, gboolean want_max, NnTensor **values,
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
  g_auto (Plan) p;
  if (!plan_init (&p, in, nn_args_get (args, 1), nn_args_bool (args, 2), op,
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
  g_auto (Plan) p;
  if (!plan_init (&p, in, dimv, with_dim && nn_args_bool (args, 2), op, error))
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
  g_auto (Plan) p;
  if (!plan_init (&p, in, dimv, nn_args_bool (args, 2), op, error))
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
 * place is the old var(input, unbiased) overload. */
static NnValue *
var_std (const NnArgs *args, gboolean sqrt_it, GError **error)
{
  NnTensor *in = nn_args_tensor (args, 0);
  NnValue *dimv = nn_args_get (args, 1), *unb = nn_args_get (args, 2);
  NnValue *corr = nn_args_get (args, 4);
  g_autoptr (NnValue) none = nn_value_new_none ();
  const char *op = sqrt_it ? "std" : "var";
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
  g_auto (Plan) p;
  if (!plan_init (&p, in, dimv, nn_args_bool (args, 3), op, error))
    return NULL;
  NnTensor *out = nn_ops_new (p.meta, in->dtype, &p.out, error);
  if (!out || p.meta)
    return nn_ops_take (out);
  for (gint64 o = 0; o < p.outer; o++)
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
    }
  return nn_value_take_tensor (out);
}

static NnValue *
var_fn (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  return var_std (args, FALSE, error);
}

static NnValue *
std_fn (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  return var_std (args, TRUE, error);
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

const NnLayerType *const nn_ops_reduce_types[] = {
  &sum_type, &mean_type, &amax_type, &amin_type, &max_type, &min_type,
  &argmax_type, &argmin_type, &var_type, &std_type, NULL,
};
