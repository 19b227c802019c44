/* ops plugin: the row layout of reductions (reduce.h). */
#include "reduce.h"

void
nn_ops_plan_clear (NnOpsPlan *p)
{
  g_clear_pointer (&p->rows, nn_tensor_unref);
}

gboolean
nn_ops_plan_init (NnOpsPlan *p, NnTensor *in, const NnValue *dimv,
                  gboolean keepdim, const char *op, GError **error)
{
  gboolean reduce[NN_MAX_DIMS] = { FALSE };
  guint nd = in->shape.ndim;
  *p = (NnOpsPlan) { .meta = nn_tensor_is_meta (in) };
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

