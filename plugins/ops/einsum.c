/* ops plugin: torch.einsum over any number of operands: labels a-z and
 * A-Z, "..." for broadcast dims, an explicit "->" output or the implicit
 * one (the ellipsis dims, then the labels used once, alphabetically).  A
 * label repeated in one operand takes its diagonal.  Computed as one loop
 * over every label's range (output labels outside, summed ones inside),
 * accumulating in double (int64 for integers). */
#include "ops.h"
#include "nn-blas.h"

#include <string.h>

#define N_LETTERS 52
#define MAX_LABELS (N_LETTERS + NN_MAX_DIMS)
#define MAX_OPERANDS 8

typedef struct {
  guint n_ops;
  NnTensor *ops[MAX_OPERANDS];
  /* Per operand: the label of each of its dims. */
  gint labels[MAX_OPERANDS][NN_MAX_DIMS];
  guint n_out;
  gint out[MAX_LABELS];      /* output labels in order */
  gint64 size[MAX_LABELS];   /* -1: unused label */
  guint n_ell;               /* broadcast dims of "..." */
} Spec;

static int
letter (char c)
{
  if (c >= 'a' && c <= 'z')
    return c - 'a';
  if (c >= 'A' && c <= 'Z')
    return 26 + c - 'A';
  return -1;
}

/* Parses one side of the equation for an operand of @ndim dims (or the
 * output when @ndim < 0), writing labels to @lab; "..." becomes the
 * ellipsis labels N_LETTERS.., right-aligned. */
static gboolean
parse_term (const char *t, gsize len, gint ndim, guint *n_ell, gint *lab,
            guint *n_lab, GError **error)
{
  guint n = 0, letters = 0;
  gboolean ell = FALSE;
  for (gsize i = 0; i < len; i++)
    if (t[i] == '.')
      {
        if (ell || i + 2 >= len || t[i + 1] != '.' || t[i + 2] != '.')
          return nn_ops_fail (error, "einsum(): found '.' for operand that "
                              "is not part of any ellipsis");
        ell = TRUE;
        i += 2;
      }
    else if (t[i] == ' ')
      continue;
    else if (letter (t[i]) < 0)
      return nn_ops_fail (error, "einsum(): invalid subscript given at index "
                          "%zu in the equation string, subscripts must be in "
                          "[a-zA-Z]", i);
    else
      letters++;
  if (letters > (ndim >= 0 ? NN_MAX_DIMS : MAX_LABELS - NN_MAX_DIMS))
    return nn_ops_shape_fail (error, "einsum(): too many subscripts (%u) in "
                              "one term", letters);
  guint e = 0;
  if (ndim >= 0)
    {
      if (ell ? (guint) ndim < letters : (guint) ndim != letters)
        return nn_ops_shape_fail (error, "einsum(): the number of subscripts "
                                  "in the equation (%u) %s the number of "
                                  "dimensions (%d) for operand", letters,
                                  ell ? "is more than" : "does not match",
                                  ndim);
      e = ell ? (guint) ndim - letters : 0;
      *n_ell = MAX (*n_ell, e);
    }
  else
    e = ell ? *n_ell : 0;
  for (gsize i = 0; i < len; i++)
    {
      if (t[i] == ' ')
        continue;
      if (t[i] == '.')
        {
          /* Right-aligned: this operand's e dims are the last of n_ell. */
          for (guint k = 0; k < e; k++)
            lab[n++] = N_LETTERS + (gint) (NN_MAX_DIMS - e + k);
          i += 2;
          continue;
        }
      lab[n++] = letter (t[i]);
    }
  *n_lab = n;
  return TRUE;
}

static gboolean
parse (const char *eq, Spec *s, GError **error)
{
  const char *arrow = strstr (eq, "->");
  gsize lhs_len = arrow ? (gsize) (arrow - eq) : strlen (eq);
  gchar **terms = NULL;
  g_autofree char *lhs = g_strndup (eq, lhs_len);
  terms = g_strsplit (lhs, ",", -1);
  guint n_terms = g_strv_length (terms);
  gboolean ok = FALSE;
  guint counts[MAX_LABELS] = { 0 };
  if (n_terms != s->n_ops)
    {
      nn_ops_fail (error, "einsum(): %s operands were provided than specified "
                   "in the equation", n_terms > s->n_ops ? "fewer" : "more");
      goto out;
    }
  for (guint l = 0; l < MAX_LABELS; l++)
    s->size[l] = -1;
  for (guint k = 0; k < s->n_ops; k++)
    {
      NnTensor *t = s->ops[k];
      guint n;
      if (!parse_term (terms[k], strlen (terms[k]), (gint) t->shape.ndim,
                       &s->n_ell, s->labels[k], &n, error))
        goto out;
      for (guint d = 0; d < n; d++)
        {
          gint l = s->labels[k][d];
          gint64 sz = t->shape.dims[d];
          gboolean seen_here = FALSE;
          for (guint d2 = 0; d2 < d; d2++)
            seen_here |= s->labels[k][d2] == l;
          if (!seen_here)
            counts[l]++;
          /* Size-1 dims broadcast, as PyTorch's einsum allows. */
          if (s->size[l] < 0 || s->size[l] == 1)
            s->size[l] = sz;
          else if (sz != s->size[l] && sz != 1)
            {
              nn_ops_shape_fail (error, "einsum(): operands do not broadcast "
                                 "with remapped shapes (subscript '%c' is %"
                                 G_GINT64_FORMAT " in one operand and %"
                                 G_GINT64_FORMAT " in another)",
                                 l < 26 ? 'a' + l : l < N_LETTERS ? 'A' + l - 26 : '.',
                                 s->size[l], sz);
              goto out;
            }
        }
    }
  if (arrow)
    {
      guint n;
      if (!parse_term (arrow + 2, strlen (arrow + 2), -1, &s->n_ell, s->out,
                       &n, error))
        goto out;
      s->n_out = n;
      for (guint i = 0; i < n; i++)
        {
          if (s->out[i] < N_LETTERS && s->size[s->out[i]] < 0)
            {
              gint l = s->out[i];
              nn_ops_fail (error, "einsum(): output subscript %c does not "
                           "appear in the equation for any input operand",
                           l < 26 ? 'a' + l : 'A' + l - 26);
              goto out;
            }
          for (guint j = 0; j < i; j++)
            if (s->out[j] == s->out[i])
              {
                nn_ops_fail (error, "einsum(): output subscript appears more "
                             "than once in the output");
                goto out;
              }
        }
    }
  else
    {
      /* Implicit output: ellipsis dims, then labels used once, sorted. */
      s->n_out = 0;
      for (guint e = 0; e < s->n_ell; e++)
        s->out[s->n_out++] = N_LETTERS + NN_MAX_DIMS - s->n_ell + e;
      for (gint l = 0; l < N_LETTERS; l++)
        if (counts[l] == 1)
          s->out[s->n_out++] = l;
    }
  if (s->n_out > NN_MAX_DIMS)
    {
      nn_ops_shape_fail (error, "einsum(): the result would have more than "
                         "%d dims", NN_MAX_DIMS);
      goto out;
    }
  ok = TRUE;
out:
  g_strfreev (terms);
  return ok;
}

/* The dim of operand @k labelled @l, or -1. */
static gint
dim_of (const Spec *s, guint k, gint l)
{
  for (guint d = 0; d < s->ops[k]->shape.ndim; d++)
    if (s->labels[k][d] == l)
      return (gint) d;
  return -1;
}

/* @t's dims listed in @dims (in that order) as a new contiguous tensor. */
static NnTensor *
arrange (NnTensor *t, const gint *dims, guint n, GError **error)
{
  gint64 own[NN_MAX_DIMS], strides[NN_MAX_DIMS];
  NnShape shape = { n };
  nn_ops_strides (&t->shape, own);
  for (guint i = 0; i < n; i++)
    {
      shape.dims[i] = t->shape.dims[dims[i]];
      strides[i] = own[dims[i]];
    }
  return nn_ops_gather (t, &shape, strides, 0, error);
}

/* Two float operands without diagonals, broadcasting or labels summed
 * away in one operand only: a batched matrix product, as PyTorch computes
 * einsum.  A is arranged [batch, left, contracted], B [batch, contracted,
 * right], one gemm per batch, then the result's dims are put in the
 * output's order.  Returns NULL without @error when the case does not
 * apply. */
static NnTensor *
as_gemm (const Spec *s, NnDType dt, GError **error)
{
  if (s->n_ops != 2 || (dt != NN_DTYPE_F32 && dt != NN_DTYPE_F64)
      || s->ops[0]->dtype != dt || s->ops[1]->dtype != dt)
    return NULL;
  gint in_op[2][MAX_LABELS];
  gboolean in_out[MAX_LABELS] = { FALSE };
  for (guint i = 0; i < s->n_out; i++)
    in_out[s->out[i]] = TRUE;
  for (guint k = 0; k < 2; k++)
    for (gint l = 0; l < MAX_LABELS; l++)
      in_op[k][l] = dim_of (s, k, l);
  for (guint k = 0; k < 2; k++)
    for (guint d = 0; d < s->ops[k]->shape.ndim; d++)
      {
        gint l = s->labels[k][d];
        if (dim_of (s, k, l) != (gint) d
            || s->ops[k]->shape.dims[d] != s->size[l]
            || (!in_out[l] && in_op[1 - k][l] < 0))
          return NULL;
      }
  gint a_dims[NN_MAX_DIMS], b_dims[NN_MAX_DIMS], r_labels[MAX_LABELS];
  guint na = 0, nb = 0, nr = 0;
  gint64 batch = 1, m = 1, n = 1, kk = 1;
  /* Batch labels, then left, then right, each in output order. */
  for (guint i = 0; i < s->n_out; i++)
    {
      gint l = s->out[i];
      if (in_op[0][l] >= 0 && in_op[1][l] >= 0)
        {
          a_dims[na++] = in_op[0][l];
          b_dims[nb++] = in_op[1][l];
          r_labels[nr++] = l;
          batch *= s->size[l];
        }
    }
  for (guint i = 0; i < s->n_out; i++)
    {
      gint l = s->out[i];
      if (in_op[0][l] >= 0 && in_op[1][l] < 0)
        {
          a_dims[na++] = in_op[0][l];
          r_labels[nr++] = l;
          m *= s->size[l];
        }
    }
  for (guint d = 0; d < s->ops[0]->shape.ndim; d++)
    {
      gint l = s->labels[0][d];
      if (!in_out[l])
        {
          a_dims[na++] = (gint) d;
          b_dims[nb++] = in_op[1][l];
          kk *= s->size[l];
        }
    }
  for (guint i = 0; i < s->n_out; i++)
    {
      gint l = s->out[i];
      if (in_op[1][l] >= 0 && in_op[0][l] < 0)
        {
          b_dims[nb++] = in_op[1][l];
          r_labels[nr++] = l;
          n *= s->size[l];
        }
    }
  g_autoptr (NnTensor) a = arrange (s->ops[0], a_dims, na, error);
  g_autoptr (NnTensor) b = a ? arrange (s->ops[1], b_dims, nb, error) : NULL;
  if (!b)
    return NULL;
  NnShape rs = { nr };
  for (guint i = 0; i < nr; i++)
    rs.dims[i] = s->size[r_labels[i]];
  if (!nn_blas_ready (error))
    return NULL;
  g_autoptr (NnTensor) r = nn_ops_new (FALSE, dt, &rs, error);
  if (!r)
    return NULL;
  gsize es = nn_dtype_size (dt);
  for (gint64 i = 0; i < batch; i++)
    nn_ops_gemm (dt, m, n, kk, (guint8 *) a->data + i * m * kk * es,
                 (guint8 *) b->data + i * kk * n * es, FALSE,
                 (guint8 *) r->data + i * m * n * es);
  /* The result's dims into the output's order. */
  gint perm[NN_MAX_DIMS];
  for (guint i = 0; i < s->n_out; i++)
    for (guint j = 0; j < nr; j++)
      if (r_labels[j] == s->out[i])
        perm[i] = (gint) j;
  return arrange (r, perm, s->n_out, error);
}

static NnValue *
einsum_fn (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  const char *eq = nn_value_get_string (nn_args_get (args, 0));
  NnValue *rest = nn_args_get (args, 1);
  /* einsum(eq, a, b) and einsum(eq, [a, b]) are one call. */
  if (nn_value_n_items (rest) == 1
      && nn_value_kind (nn_value_item (rest, 0)) != NN_VALUE_TENSOR)
    rest = nn_value_item (rest, 0);
  Spec s = { 0 };
  s.n_ops = nn_value_n_items (rest);
  if (s.n_ops == 0 || s.n_ops > MAX_OPERANDS)
    {
      nn_ops_fail (error, "einsum(): takes 1 to %d operands, found %u",
                   MAX_OPERANDS, s.n_ops);
      return NULL;
    }
  const NnValue *vals[MAX_OPERANDS];
  gboolean meta = FALSE;
  for (guint k = 0; k < s.n_ops; k++)
    {
      vals[k] = nn_value_item (rest, k);
      if (nn_value_kind (vals[k]) != NN_VALUE_TENSOR)
        {
          nn_ops_fail (error, "einsum(): operand %u must be a Tensor, found %s",
                       k, nn_value_kind_name (nn_value_kind (vals[k])));
          return NULL;
        }
      s.ops[k] = nn_value_get_tensor (vals[k]);
      meta |= nn_tensor_is_meta (s.ops[k]);
    }
  if (!parse (eq, &s, error))
    return NULL;
  NnDType dt = nn_ops_result_type (vals, s.n_ops);
  NnShape shape = { s.n_out };
  for (guint i = 0; i < s.n_out; i++)
    shape.dims[i] = s.size[s.out[i]] < 0 ? 1 : s.size[s.out[i]];
  if (!meta)
    {
      GError *e = NULL;
      NnTensor *fast = as_gemm (&s, dt, &e);
      if (e)
        g_propagate_error (error, e);
      if (fast || e)
        return nn_ops_take (fast);
    }
  NnTensor *out = nn_ops_new (meta, dt, &shape, error);
  if (!out || meta)
    return nn_ops_take (out);

  /* The loop space: output labels, then every other used label. */
  gint order[MAX_LABELS];
  guint n_all = 0;
  gboolean in_out[MAX_LABELS] = { FALSE };
  for (guint i = 0; i < s.n_out; i++)
    {
      order[n_all++] = s.out[i];
      in_out[s.out[i]] = TRUE;
    }
  for (gint l = 0; l < MAX_LABELS; l++)
    if (s.size[l] >= 0 && !in_out[l])
      order[n_all++] = l;
  gint64 dims[MAX_LABELS], idx[MAX_LABELS] = { 0 };
  gint64 stride[MAX_OPERANDS][MAX_LABELS] = { { 0 } };
  gint64 off[MAX_OPERANDS] = { 0 };
  gint64 inner = 1;
  for (guint a = 0; a < n_all; a++)
    {
      dims[a] = s.size[order[a]];
      if (a >= s.n_out)
        inner *= dims[a];
    }
  for (guint k = 0; k < s.n_ops; k++)
    {
      gint64 own[NN_MAX_DIMS];
      nn_ops_strides (&s.ops[k]->shape, own);
      for (guint d = 0; d < s.ops[k]->shape.ndim; d++)
        for (guint a = 0; a < n_all; a++)
          /* A broadcast size-1 dim stays put; a repeated label adds up
           * its strides, walking the diagonal. */
          if (order[a] == s.labels[k][d] && s.ops[k]->shape.dims[d] != 1)
            stride[k][a] += own[d];
    }
  gint64 n_out = nn_tensor_numel (out);
  gboolean fl = nn_dtype_is_float (dt);
  for (gint64 o = 0; o < n_out; o++)
    {
      double facc = 0;
      gint64 iacc = 0;
      for (gint64 r = 0; r < inner; r++)
        {
          double fp = 1;
          gint64 ip = 1;
          for (guint k = 0; k < s.n_ops; k++)
            {
              if (fl)
                fp *= nn_ops_round_to (dt, nn_ops_get_f (s.ops[k], off[k]));
              else
                ip *= nn_ops_get_i (s.ops[k], off[k]);
            }
          facc += fp;
          iacc += ip;
          /* Odometer over every label, the last fastest. */
          for (gint a = (gint) n_all - 1; a >= 0; a--)
            {
              idx[a]++;
              for (guint k = 0; k < s.n_ops; k++)
                off[k] += stride[k][a];
              if (idx[a] < dims[a])
                break;
              for (guint k = 0; k < s.n_ops; k++)
                off[k] -= stride[k][a] * dims[a];
              idx[a] = 0;
            }
        }
      if (fl)
        nn_ops_set_f (out, o, facc);
      else
        nn_ops_set_i (out, o, iacc);
    }
  return nn_value_take_tensor (out);
}

static const NnArgSpec einsum_args[] = {
  { "equation", NN_ARG_STRING, 0, 0, NULL, "subscripts, e.g. 'bij,bjk->bik'" },
  { "operands", NN_ARG_ANY, NN_OPS_ALL, NN_ARG_VARIADIC, NULL,
    "tensors, or one list of them" },
};
static const char *const einsum_aliases[] = { "torch.einsum", NULL };

static NN_OPS_TYPE (einsum_type, "einsum", "Einstein summation", einsum_args,
                    einsum_aliases, einsum_fn);

const NnLayerType *const nn_ops_einsum_types[] = { &einsum_type, NULL };
