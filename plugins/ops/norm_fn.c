/* ops plugin: vector norms (torch.norm, torch.linalg.vector_norm) and
 * torch.nn.functional.normalize. */
#include "reduce.h"

#include <math.h>
#include <string.h>

/* The p-norm of row @o: max |x| for inf, min |x| for -inf, the count of
 * non-zeros for 0, else (sum |x|^p)^(1/p); summed in double. */
static double
row_norm (const NnOpsPlan *p, gint64 o, double ord)
{
  double acc = isinf (ord) && ord < 0 ? INFINITY : 0;
  for (gint64 k = 0; k < p->r; k++)
    {
      double a = fabs (nn_ops_get_f (p->rows, o * p->r + k));
      if (isinf (ord))
        acc = ord > 0 ? fmax (acc, a) : fmin (acc, a);
      else if (ord == 0)
        acc += a != 0;
      else if (ord == 1)
        acc += a;
      else if (ord == 2)
        acc += a * a;
      else
        acc += pow (a, ord);
    }
  if (isinf (ord) || ord == 0 || ord == 1)
    return acc;
  return ord == 2 ? sqrt (acc) : pow (acc, 1 / ord);
}

static gboolean
read_ord (const NnValue *v, double *ord, GError **error)
{
  if (nn_value_kind (v) == NN_VALUE_STRING)
    {
      /* The Frobenius norm of any dims is the 2-norm of their elements. */
      if (strcmp (nn_value_get_string (v), "fro") == 0)
        {
          *ord = 2;
          return TRUE;
        }
      return nn_ops_fail (error, "norm: p='%s' is not supported by nnkit "
                          "(numbers and 'fro' are)", nn_value_get_string (v));
    }
  *ord = nn_value_is_none (v) ? 2 : nn_value_get_float (v);
  return TRUE;
}

static NnValue *
norm_common (NnTensor *in, const NnValue *ordv, const NnValue *dimv,
             gboolean keepdim, const NnValue *dtv, GError **error)
{
  double ord = 2;
  NnDType dt;
  gboolean given;
  if (!read_ord (ordv, &ord, error)
      || !nn_ops_dtype_arg (dtv, &dt, &given, error))
    return NULL;
  g_autoptr (NnTensor) conv = given ? nn_tensor_to_dtype (in, dt) : NULL;
  if (conv)
    in = conv;
  if (!nn_dtype_is_float (in->dtype))
    {
      nn_ops_fail (error, "norm(): input dtype should be either floating "
                   "point or complex. Got %s instead.",
                   nn_ops_dtype_short (in->dtype));
      return NULL;
    }
  g_auto (NnOpsPlan) p;
  if (!nn_ops_plan_init (&p, in, dimv, keepdim, "norm", error))
    return NULL;
  NnTensor *out = nn_ops_new (p.meta, in->dtype, &p.out, error);
  if (!out || p.meta)
    return nn_ops_take (out);
  for (gint64 o = 0; o < p.outer; o++)
    nn_ops_set_f (out, o, row_norm (&p, o, ord));
  return nn_value_take_tensor (out);
}

/* torch.norm(input, p='fro', dim=None, keepdim=False, dtype=None). */
static NnValue *
norm_fn (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  return norm_common (nn_args_tensor (args, 0), nn_args_get (args, 1),
                      nn_args_get (args, 2), nn_args_bool (args, 3),
                      nn_args_get (args, 4), error);
}

/* torch.linalg.vector_norm(x, ord=2, dim=None, keepdim=False, *, dtype). */
static NnValue *
vector_norm_fn (NnModule *self, NnCall *call, const NnArgs *args,
                GError **error)
{
  return norm_common (nn_args_tensor (args, 0), nn_args_get (args, 1),
                      nn_args_get (args, 2), nn_args_bool (args, 3),
                      nn_args_get (args, 4), error);
}

/* normalize(input, p=2.0, dim=1, eps=1e-12): input / max(norm, eps). */
static NnValue *
normalize_fn (NnModule *self, NnCall *call, const NnArgs *args,
              GError **error)
{
  NnTensor *in = nn_args_tensor (args, 0);
  double eps = nn_args_float (args, 3);
  g_autoptr (NnValue) dtv = nn_value_new_none ();
  g_autoptr (NnValue) n = norm_common (in, nn_args_get (args, 1),
                                       nn_args_get (args, 2), TRUE, dtv, error);
  if (!n)
    return NULL;
  NnTensor *nt = nn_value_get_tensor (n);
  NnTensor *out = nn_ops_new (nn_tensor_is_meta (in), in->dtype, &in->shape,
                              error);
  if (!out || nn_tensor_is_meta (in))
    return nn_ops_take (out);
  NnOpsIter it;
  gint64 total = nn_tensor_numel (in);
  nn_ops_iter_init (&it, &in->shape);
  nn_ops_iter_add (&it, &nt->shape);
  for (gint64 i = 0; i < total; i++, nn_ops_iter_next (&it))
    nn_ops_set_f (out, i, nn_ops_get_f (in, i)
                          / fmax (nn_ops_get_f (nt, it.off[0]), eps));
  return nn_value_take_tensor (out);
}

#define T_IN { "input", NN_ARG_TENSOR, NN_DTYPES_FLOAT | NN_DTYPES_INT, 0, \
               NULL, "tensor" }
#define DIMS { "dim", NN_ARG_INT | NN_ARG_SEQ | NN_ARG_NONE, 0, \
               NN_ARG_OPTIONAL, "null", "dim or dims; None: all" }
#define KEEPDIM { "keepdim", NN_ARG_BOOL, 0, NN_ARG_OPTIONAL, "false", \
                  "keep reduced dims with size 1" }

static const NnArgSpec norm_args[] = {
  T_IN,
  { "p", NN_ARG_FLOAT | NN_ARG_STRING | NN_ARG_NONE, 0, NN_ARG_OPTIONAL,
    "\"fro\"", "order: a number (inf too) or 'fro'" },
  DIMS, KEEPDIM,
  { "dtype", NN_ARG_STRING | NN_ARG_NONE, 0, NN_ARG_OPTIONAL, "null",
    "convert the input to this dtype first" },
};
static const NnArgSpec vector_norm_args[] = {
  T_IN,
  { "ord", NN_ARG_FLOAT, 0, NN_ARG_OPTIONAL, "2", "order, inf too" },
  DIMS, KEEPDIM,
  { "dtype", NN_ARG_STRING | NN_ARG_NONE, 0, NN_ARG_OPTIONAL | NN_ARG_KW_ONLY,
    "null", "convert the input to this dtype first" },
};
static const NnArgSpec normalize_args[] = {
  T_IN,
  { "p", NN_ARG_FLOAT, 0, NN_ARG_OPTIONAL, "2.0", "order of the norm" },
  { "dim", NN_ARG_INT | NN_ARG_SEQ, 0, NN_ARG_OPTIONAL, "1",
    "dim or dims normalised" },
  { "eps", NN_ARG_FLOAT, 0, NN_ARG_OPTIONAL, "1e-12",
    "lower bound of the divisor" },
  { "out", NN_ARG_NONE, 0, NN_ARG_OPTIONAL, "null", "must be None" },
};
static const char *const norm_aliases[] = { "torch.norm", "Tensor.norm", NULL };
static const char *const vector_norm_aliases[] = {
  "torch.linalg.vector_norm", NULL };
static const char *const normalize_aliases[] = {
  "torch.nn.functional.normalize", NULL };

static NN_OPS_TYPE (norm_type, "norm", "vector p-norm over dims", norm_args,
                    norm_aliases, norm_fn);
static NN_OPS_TYPE (vector_norm_type, "vector_norm", "vector p-norm over dims",
                    vector_norm_args, vector_norm_aliases, vector_norm_fn);
static NN_OPS_TYPE (normalize_type, "normalize",
                    "input divided by its p-norm over dim (at least eps)",
                    normalize_args, normalize_aliases, normalize_fn);

const NnLayerType *const nn_ops_norm_types[] = {
  &norm_type, &vector_norm_type, &normalize_type, NULL,
};
