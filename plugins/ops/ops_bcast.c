/* ops plugin: broadcasting and the row-major walk over broadcast shapes. */
#include "ops.h"

gboolean
nn_ops_broadcast (const NnShape *a, const NnShape *b, NnShape *out,
                  GError **error)
{
  guint n = MAX (a->ndim, b->ndim);
  NnShape r = { n };
  for (guint i = 0; i < n; i++)
    {
      /* Align from the right, as PyTorch does; the message counts dims of
       * the result from the left. */
      gint ia = (gint) a->ndim - (gint) n + (gint) i;
      gint ib = (gint) b->ndim - (gint) n + (gint) i;
      gint64 da = ia >= 0 ? a->dims[ia] : 1;
      gint64 db = ib >= 0 ? b->dims[ib] : 1;
      if (da != db && da != 1 && db != 1)
        return nn_ops_shape_fail (error,
                                  "The size of tensor a (%" G_GINT64_FORMAT
                                  ") must match the size of tensor b (%"
                                  G_GINT64_FORMAT ") at non-singleton "
                                  "dimension %u", da, db, i);
      r.dims[i] = da == 1 ? db : da;
    }
  *out = r;
  return TRUE;
}

void
nn_ops_strides (const NnShape *s, gint64 *strides)
{
  gint64 st = 1;
  for (gint i = (gint) s->ndim - 1; i >= 0; i--)
    {
      strides[i] = st;
      st *= s->dims[i];
    }
}

void
nn_ops_around_dim (const NnShape *s, guint dim, gint64 *outer, gint64 *size, gint64 *inner)
{
  *outer = *inner = 1;
  *size = s->ndim ? s->dims[dim] : 1;
  for (guint i = 0; i < s->ndim; i++)
    {
      if (i < dim)
        *outer *= s->dims[i];
      else if (i > dim)
        *inner *= s->dims[i];
    }
}

void
nn_ops_bcast_strides (const NnShape *in, const NnShape *out, gint64 *strides)
{
  gint64 own[NN_MAX_DIMS];
  nn_ops_strides (in, own);
  guint lead = out->ndim - in->ndim;
  for (guint i = 0; i < out->ndim; i++)
    {
      if (i < lead)
        strides[i] = 0;
      else
        strides[i] = in->dims[i - lead] == 1 ? 0 : own[i - lead];
    }
}

void
nn_ops_iter_init (NnOpsIter *it, const NnShape *shape)
{
  *it = (NnOpsIter) { .ndim = shape->ndim };
  for (guint i = 0; i < shape->ndim; i++)
    it->dims[i] = shape->dims[i];
}

void
nn_ops_iter_add (NnOpsIter *it, const NnShape *in)
{
  NnShape out = { it->ndim };
  for (guint i = 0; i < it->ndim; i++)
    out.dims[i] = it->dims[i];
  nn_ops_bcast_strides (in, &out, it->strides[it->n_ops]);
  it->off[it->n_ops++] = 0;
}

void
nn_ops_iter_add_strided (NnOpsIter *it, const gint64 *strides, gint64 base)
{
  for (guint i = 0; i < it->ndim; i++)
    it->strides[it->n_ops][i] = strides[i];
  it->off[it->n_ops++] = base;
}

void
nn_ops_iter_next (NnOpsIter *it)
{
  for (gint d = (gint) it->ndim - 1; d >= 0; d--)
    {
      it->idx[d]++;
      for (guint k = 0; k < it->n_ops; k++)
        it->off[k] += it->strides[k][d];
      if (it->idx[d] < it->dims[d])
        return;
      for (guint k = 0; k < it->n_ops; k++)
        it->off[k] -= it->strides[k][d] * it->dims[d];
      it->idx[d] = 0;
    }
}
