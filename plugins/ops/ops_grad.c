/* ops plugin: the backward shared by the ops that only move elements
 * (permute, transpose, slicing, indexing, cat, split, expand, ...).
 *
 * Instead of one adjoint per op, the op's own forward runs again on an
 * int64 "index tensor" holding each input element's position: its result
 * says, for every output element, which input element it came from, and
 * the gradient is scattered (summed, for repeats and broadcasts) back to
 * those positions.  So the backward can never disagree with the forward. */
#include "ops.h"

/* Rebinds the arguments of one call with argument @i replaced by
 * @replacement (transfer none): positional arguments (a variadic tuple
 * spread out again), keyword-only ones by name. */
static NnArgs *
rebind (const NnArgSpec *specs, guint n, const NnArgs *args, guint i,
        NnValue *replacement, GError **error)
{
  g_autoptr (NnValue) pos = nn_value_new_tuple ();
  g_autoptr (NnValue) kw = nn_value_new_dict ();
  for (guint k = 0; k < n; k++)
    {
      NnValue *v = k == i ? replacement : nn_args_get (args, k);
      if (specs[k].flags & NN_ARG_VARIADIC)
        for (guint j = 0; j < nn_value_n_items (v); j++)
          nn_value_append (pos, nn_value_ref (nn_value_item (v, j)));
      else if (specs[k].flags & NN_ARG_VAR_KEYWORD)
        for (guint j = 0; j < nn_value_n_items (v); j++)
          nn_value_dict_set (kw, nn_value_dict_key (v, j),
                             nn_value_ref (nn_value_item (v, j)));
      else if (specs[k].flags & NN_ARG_KW_ONLY)
        nn_value_dict_set (kw, specs[k].name, nn_value_ref (v));
      else
        nn_value_append (pos, nn_value_ref (v));
    }
  return nn_args_bind_signature (specs, n, NULL, pos, kw, error);
}

typedef struct {
  gint64 next;        /* the next free position */
  GPtrArray *leaves;  /* the input tensors, in order (transfer none) */
  GArray *offsets;    /* gint64: each leaf's first position */
} IndexPlan;

/* Replaces one input tensor by the positions next .. next + numel - 1. */
static NnTensor *
to_positions (NnTensor *t, gpointer user_data, GError **error)
{
  IndexPlan *p = user_data;
  NnTensor *idx = nn_ops_new (FALSE, NN_DTYPE_I64, &t->shape, error);
  if (!idx)
    return NULL;
  gint64 *d = idx->data;
  for (gint64 k = 0, n = nn_tensor_numel (t); k < n; k++)
    d[k] = p->next + k;
  g_ptr_array_add (p->leaves, t);
  g_array_append_val (p->offsets, p->next);
  p->next += nn_tensor_numel (t);
  return idx;
}

static void
collect (const char *name, NnTensor *t, gpointer user_data)
{
  g_ptr_array_add (user_data, t);
}

typedef struct {
  IndexPlan *plan;
  const double *sum;
  guint next_leaf;
} GradOut;

/* The gradient of one input tensor: its slice of the summed positions. */
static NnTensor *
from_positions (NnTensor *t, gpointer user_data, GError **error)
{
  GradOut *g = user_data;
  gint64 off = g_array_index (g->plan->offsets, gint64, g->next_leaf++);
  NnTensor *dx = nn_ops_new (FALSE, NN_DTYPE_F32, &t->shape, error);
  if (!dx)
    return NULL;
  float *d = nn_tensor_f32 (dx);
  for (gint64 k = 0, n = nn_tensor_numel (t); k < n; k++)
    d[k] = (float) g->sum[off + k];
  return dx;
}

NnValue *
nn_ops_move_backward (NnOpsForward fn, const NnArgSpec *specs, guint n_specs,
                      NnModule *self, NnCall *call, const NnArgs *args,
                      const NnValue *out, const NnValue *grad_out,
                      GError **error)
{
  IndexPlan plan = { 0, g_ptr_array_new (), g_array_new (FALSE, FALSE, sizeof (gint64)) };
  NnValue *res = NULL;
  g_autoptr (GPtrArray) idx_leaves = g_ptr_array_new ();
  g_autoptr (GPtrArray) grad_leaves = g_ptr_array_new ();
  g_autofree double *sum = NULL;
  NnArgs *again = NULL;
  NnValue *positions = NULL;
  g_autoptr (NnValue) moved = nn_value_map_tensors (nn_args_get (args, 0),
                                                    to_positions, &plan, error);
  if (!moved)
    goto out;
  again = rebind (specs, n_specs, args, 0, moved, error);
  if (!again)
    goto out;
  /* The backward's own call, which no tape records. */
  positions = fn (self, call, again, error);
  if (!positions)
    goto out;
  nn_value_foreach_tensor (positions, "", collect, idx_leaves);
  nn_value_foreach_tensor (grad_out, "", collect, grad_leaves);
  if (idx_leaves->len != grad_leaves->len)
    {
      nn_ops_fail (error, "backward: the op's result has %u tensors on "
                   "positions and %u gradients", idx_leaves->len,
                   grad_leaves->len);
      goto out;
    }
  sum = g_new0 (double, MAX (plan.next, 1));
  for (guint l = 0; l < idx_leaves->len; l++)
    {
      NnTensor *idx = idx_leaves->pdata[l], *g = grad_leaves->pdata[l];
      if (idx->dtype != NN_DTYPE_I64 || g->dtype != NN_DTYPE_F32
          || nn_tensor_numel (idx) != nn_tensor_numel (g))
        {
          nn_ops_fail (error, "backward: gradients flow through float32 "
                       "tensors of the op's own result only");
          goto out;
        }
      const gint64 *ix = idx->data;
      const float *gv = nn_tensor_f32 (g);
      for (gint64 k = 0, n = nn_tensor_numel (g); k < n; k++)
        sum[ix[k]] += gv[k];
    }
  GradOut go = { &plan, sum, 0 };
  NnValue *grad_in = nn_value_map_tensors (nn_args_get (args, 0),
                                           from_positions, &go, error);
  if (!grad_in)
    goto out;
  res = nn_value_new_tuple ();
  nn_value_append (res, grad_in);
out:
  if (positions)
    nn_value_unref (positions);
  if (again)
    nn_args_free (again);
  g_ptr_array_unref (plan.leaves);
  g_array_unref (plan.offsets);
  return res;
}
