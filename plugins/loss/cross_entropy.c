/* CrossEntropyLoss: log_softmax then the negative log-likelihood of class
 * indices, with ignore_index and label_smoothing, as
 * torch.nn.functional.cross_entropy on an [N, C] input. */
#include "loss.h"

#include <math.h>

static const NnSchemaKey cross_entropy_schema[] = {
  { "ignore_index", NN_KIND_INT, 0, NN_KEY_OPTIONAL, "-100", 0, 0, NULL,
    "target value that contributes neither loss nor gradient" },
  NN_LOSS_REDUCTION_KEY,
  { "label_smoothing", NN_KIND_FLOAT, 0,
    NN_KEY_OPTIONAL | NN_KEY_HAS_MIN | NN_KEY_HAS_MAX, "0.0", 0, 1, NULL,
    "mass spread uniformly over the classes" },
};

/* F.cross_entropy(input, target, weight=None, size_average=None,
 * ignore_index=-100, reduce=None, reduction='mean', label_smoothing=0.0);
 * None takes the config's value. */
static const NnArgSpec cross_entropy_args[] = {
  { "input", NN_ARG_TENSOR, NN_DTYPE_BIT (NN_DTYPE_F32), 0, NULL,
    "float32 logits [N, C]" },
  { "target", NN_ARG_TENSOR, NN_DTYPE_BIT (NN_DTYPE_I64), 0, NULL,
    "int64 class indices [N]" },
  { "weight", NN_ARG_TENSOR | NN_ARG_NONE, NN_DTYPES_ALL, NN_ARG_OPTIONAL,
    "null", "per-class weights: only None" },
  { "size_average", NN_ARG_NONE, 0, NN_ARG_OPTIONAL, "null",
    "deprecated in PyTorch; only None" },
  { "ignore_index", NN_ARG_INT | NN_ARG_NONE, 0, NN_ARG_OPTIONAL, "null",
    "ignored target value (None: the config's)" },
  { "reduce", NN_ARG_NONE, 0, NN_ARG_OPTIONAL, "null",
    "deprecated in PyTorch; only None" },
  NN_LOSS_REDUCTION_ARG,
  { "label_smoothing", NN_ARG_FLOAT | NN_ARG_NONE, 0, NN_ARG_OPTIONAL, "null",
    "smoothing in [0, 1] (None: the config's)" },
};

static const char *const cross_entropy_aliases[] = {
  "cross_entropy", "torch.nn.functional.cross_entropy", NULL
};

typedef struct {
  gint64 n, c, ignore;
  double eps;
  NnLossReduction red;
} CeParams;

static gboolean
ce_params (NnModule *self, const NnArgs *args, CeParams *p, GError **error)
{
  NnTensor *x = nn_args_tensor (args, 0), *t = nn_args_tensor (args, 1);
  NnValue *ii = nn_args_get (args, 4), *ls = nn_args_get (args, 7);
  if (!nn_loss_refuse_tensor (args, 2, "weight", error)
      || !nn_loss_reduction (self, args, 6, &p->red, error))
    return FALSE;
  p->ignore = nn_value_is_none (ii) ? nn_module_config_int (self, "ignore_index")
                                    : nn_value_get_int (ii);
  p->eps = nn_value_is_none (ls) ? nn_module_config_float (self, "label_smoothing")
                                 : nn_value_get_float (ls);
  if (!(p->eps >= 0.0 && p->eps <= 1.0)) {
    g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_BAD_ARGUMENTS,
                 "label_smoothing must be in [0, 1], found %g", p->eps);
    return FALSE;
  }
  if (x->shape.ndim != 2 || t->shape.ndim != 1
      || t->shape.dims[0] != x->shape.dims[0]) {
    g_autofree char *a = nn_shape_to_string (&x->shape);
    g_autofree char *b = nn_shape_to_string (&t->shape);
    g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH,
                 "expected input [N, C] and target [N], found input %s and "
                 "target %s", a, b);
    return FALSE;
  }
  p->n = x->shape.dims[0];
  p->c = x->shape.dims[1];
  return TRUE;
}

/* Checks the targets (when there is data) and counts the rows that are
 * not ignored. */
static gboolean
ce_targets (const CeParams *p, NnTensor *t, gint64 *count, GError **error)
{
  const gint64 *td = nn_tensor_i64 (t);
  *count = 0;
  for (gint64 i = 0; i < p->n; i++) {
    if (td[i] == p->ignore)
      continue;
    if (td[i] < 0 || td[i] >= p->c) {
      g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_BAD_ARGUMENTS,
                   "target %" G_GINT64_FORMAT " of row %" G_GINT64_FORMAT
                   " is out of bounds for %" G_GINT64_FORMAT " classes",
                   td[i], i, p->c);
      return FALSE;
    }
    (*count)++;
  }
  return TRUE;
}

static double
row_lse (const float *x, gint64 c)
{
  double m = -INFINITY, s = 0.0;
  for (gint64 j = 0; j < c; j++)
    m = MAX (m, (double) x[j]);
  for (gint64 j = 0; j < c; j++)
    s += exp ((double) x[j] - m);
  return m + log (s);
}

static NnValue *
cross_entropy_infer (NnModule *self, NnCall *call, const NnArgs *args,
                     GError **error)
{
  CeParams p;
  if (!ce_params (self, args, &p, error))
    return NULL;
  NnShape s = { p.red == NN_LOSS_NONE ? 1u : 0u, { p.n } };
  return nn_value_take_tensor (nn_tensor_new_meta (NN_DTYPE_F32, &s));
}

static NnValue *
cross_entropy_forward (NnModule *self, NnCall *call, const NnArgs *args,
                       GError **error)
{
  CeParams p;
  gint64 count;
  NnTensor *x = nn_args_tensor (args, 0), *t = nn_args_tensor (args, 1);
  if (!ce_params (self, args, &p, error) || !ce_targets (&p, t, &count, error))
    return NULL;
  const float *xd = nn_tensor_f32 (x);
  const gint64 *td = nn_tensor_i64 (t);
  NnShape rs = { 1, { p.n } };
  NnTensor *rows = nn_tensor_new (NN_DTYPE_F32, &rs);
  float *rd = nn_tensor_f32 (rows);
  double total = 0.0;
  for (gint64 i = 0; i < p.n; i++) {
    if (td[i] == p.ignore)
      continue;
    const float *r = xd + i * p.c;
    double lse = row_lse (r, p.c), sum_logp = 0.0;
    for (gint64 j = 0; j < p.c; j++)
      sum_logp += (double) r[j] - lse;
    double nll = lse - (double) r[td[i]];
    double li = (1.0 - p.eps) * nll - p.eps * sum_logp / (double) p.c;
    rd[i] = (float) li;
    total += li;
  }
  if (p.red == NN_LOSS_NONE)
    return nn_value_take_tensor (rows);
  nn_tensor_unref (rows);
  /* PyTorch: the mean is over the rows not ignored (NaN when none). */
  return nn_loss_scalar (p.red == NN_LOSS_SUM ? total : total / (double) count);
}

/* d input[i, j] = (softmax[i, j] - (1 - eps) [j = t_i] - eps / C) * scale_i;
 * ignored rows get none. */
static NnValue *
cross_entropy_backward (NnModule *self, NnCall *call, const NnArgs *args,
                        const NnValue *out, const NnValue *grad_out,
                        GError **error)
{
  CeParams p;
  gint64 count;
  NnTensor *x = nn_args_tensor (args, 0), *t = nn_args_tensor (args, 1);
  if (!ce_params (self, args, &p, error) || !ce_targets (&p, t, &count, error))
    return NULL;
  const float *xd = nn_tensor_f32 (x), *g = nn_tensor_f32 (nn_value_get_tensor (grad_out));
  const gint64 *td = nn_tensor_i64 (t);
  NnTensor *dx = nn_tensor_new (NN_DTYPE_F32, &x->shape);
  float *d = nn_tensor_f32 (dx);
  for (gint64 i = 0; i < p.n; i++) {
    if (td[i] == p.ignore)
      continue;
    const float *r = xd + i * p.c;
    double lse = row_lse (r, p.c);
    double sc = nn_loss_grad_scale (p.red, g, i, count);
    for (gint64 j = 0; j < p.c; j++) {
      double v = exp ((double) r[j] - lse) - p.eps / (double) p.c;
      if (j == td[i])
        v -= 1.0 - p.eps;
      d[i * p.c + j] = (float) (v * sc);
    }
  }
  return nn_loss_grads (dx, NULL);
}

static char *
cross_entropy_extra_repr (NnModule *self)
{
  return NULL; /* PyTorch's CrossEntropyLoss prints as CrossEntropyLoss() */
}

static gboolean
cross_entropy_create (NnModule *self, GError **error)
{
  return TRUE;
}

const NnLayerType nn_cross_entropy_loss_type = {
  .struct_size = sizeof (NnLayerType),
  .name = "CrossEntropyLoss",
  .doc = "cross entropy of [N, C] logits and class indices, with backward",
  .schema = cross_entropy_schema,
  .n_schema = G_N_ELEMENTS (cross_entropy_schema),
  .args = cross_entropy_args,
  .n_args = G_N_ELEMENTS (cross_entropy_args),
  .aliases = cross_entropy_aliases,
  .create = cross_entropy_create,
  .forward = cross_entropy_forward,
  .infer = cross_entropy_infer,
  .backward = cross_entropy_backward,
  .extra_repr = cross_entropy_extra_repr,
};
