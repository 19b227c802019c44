/* ops plugin: cdist(x1, x2, p=2.0), the p-norm distance between every row
 * of x1 [..., P, M] and every row of x2 [..., R, M], batch dims broadcast:
 * a VQ-VAE's codebook distances, nearest-neighbour lookups. */
#include "ops.h"

#include <math.h>
#include <string.h>

/* The p-norm of the difference of two rows of @m floats, as PyTorch's
 * special cases: p = 0 counts the differing entries, p = inf is the max. */
static double
row_dist (const float *a, const float *b, gint64 m, double p)
{
  double acc = 0;
  for (gint64 k = 0; k < m; k++)
    {
      double d = fabs ((double) a[k] - (double) b[k]);
      if (p == 0)
        acc += d != 0;
      else if (isinf (p))
        acc = MAX (acc, d);
      else if (p == 1)
        acc += d;
      else if (p == 2)
        acc += d * d;
      else
        acc += pow (d, p);
    }
  if (p == 0 || p == 1 || isinf (p))
    return acc;
  return p == 2 ? sqrt (acc) : pow (acc, 1.0 / p);
}

static NnValue *
cdist_fn (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  NnTensor *a = nn_args_tensor (args, 0), *b = nn_args_tensor (args, 1);
  double p = nn_args_float (args, 2);
  if (a->shape.ndim < 2 || b->shape.ndim < 2)
    {
      nn_ops_shape_fail (error, "cdist only supports at least 2D tensors, %s got: %uD",
                         a->shape.ndim < 2 ? "X1" : "X2",
                         a->shape.ndim < 2 ? a->shape.ndim : b->shape.ndim);
      return NULL;
    }
  guint na = a->shape.ndim, nb = b->shape.ndim;
  gint64 m = a->shape.dims[na - 1];
  if (b->shape.dims[nb - 1] != m)
    {
      nn_ops_shape_fail (error, "X1 and X2 must have the same number of columns. "
                         "X1: %" G_GINT64_FORMAT " X2: %" G_GINT64_FORMAT, m,
                         b->shape.dims[nb - 1]);
      return NULL;
    }
  if (!(p >= 0))
    {
      nn_ops_fail (error, "cdist only supports non-negative p values");
      return NULL;
    }
  NnShape ba = { na - 2 }, bb = { nb - 2 }, batch;
  memcpy (ba.dims, a->shape.dims, (na - 2) * sizeof (gint64));
  memcpy (bb.dims, b->shape.dims, (nb - 2) * sizeof (gint64));
  if (!nn_ops_broadcast (&ba, &bb, &batch, error))
    return NULL;
  gint64 pa = a->shape.dims[na - 2], rb = b->shape.dims[nb - 2];
  NnShape os = batch;
  os.dims[os.ndim++] = pa;
  os.dims[os.ndim++] = rb;
  gboolean meta = nn_tensor_is_meta (a) || nn_tensor_is_meta (b);
  NnTensor *out = nn_ops_new (meta, NN_DTYPE_F32, &os, error);
  if (!out || meta)
    return nn_ops_take (out);
  /* Each batch index's offset into a and b, through broadcasting. */
  gint64 sa[NN_MAX_DIMS], sb[NN_MAX_DIMS];
  nn_ops_bcast_strides (&ba, &batch, sa);
  nn_ops_bcast_strides (&bb, &batch, sb);
  const float *x = nn_tensor_f32 (a), *y = nn_tensor_f32 (b);
  float *o = nn_tensor_f32 (out);
  NnOpsIter it;
  nn_ops_iter_init (&it, &batch);
  gint64 nbatch = nn_shape_numel (&batch);
  for (gint64 bi = 0; bi < nbatch; bi++, nn_ops_iter_next (&it))
    {
      gint64 offa = 0, offb = 0;
      for (guint d = 0; d < batch.ndim; d++)
        {
          offa += it.idx[d] * sa[d];
          offb += it.idx[d] * sb[d];
        }
      const float *xa = x + offa * pa * m, *yb = y + offb * rb * m;
      for (gint64 i = 0; i < pa; i++)
        for (gint64 j = 0; j < rb; j++)
          o[(bi * pa + i) * rb + j] = (float) row_dist (xa + i * m, yb + j * m, m, p);
    }
  return nn_value_take_tensor (out);
}

static const NnArgSpec cdist_args[] = {
  { "x1", NN_ARG_TENSOR, 0, 0, NULL, "[..., P, M] float32 rows" },
  { "x2", NN_ARG_TENSOR, 0, 0, NULL, "[..., R, M] float32 rows" },
  { "p", NN_ARG_FLOAT, 0, NN_ARG_OPTIONAL, "2.0", "the norm, >= 0 (inf: max)" },
  { "compute_mode", NN_ARG_STRING | NN_ARG_NONE, 0, NN_ARG_OPTIONAL, "null",
    "accepted and ignored: distances are computed directly" },
};
static const char *const cdist_aliases[] = { "torch.cdist", NULL };
static NN_OPS_TYPE (cdist_type, "cdist", "p-norm distances between two sets of rows",
                    cdist_args, cdist_aliases, cdist_fn);

const NnLayerType *const nn_ops_cdist_types[] = { &cdist_type, NULL };
