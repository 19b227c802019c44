/* ops plugin: the copy behind every permute, transpose, slice and expand
 * (nn_ops_gather).  A permuted copy that moved one element per iterator
 * step spent most of a ConvNeXt or Swin forward in the walk itself, so the
 * dims are simplified first and the two common shapes get loops of their
 * own: contiguous rows (slices) and a transpose of the input's contiguous
 * dim with the output's (NCHW <-> NHWC, attention heads). */
#include "ops.h"

#include <string.h>

/* Tiles of a transpose: 16 x 16 elements keep the 16 source lines one
 * tile reads in L1 while the destination rows fill. */
#define TILE 16

typedef struct {
  guint ndim;
  gint64 dims[NN_MAX_DIMS];
  gint64 in[NN_MAX_DIMS];  /* input strides, elements */
  gint64 out[NN_MAX_DIMS]; /* output strides (contiguous), elements */
} Walk;

/* Drops extent-1 dims and merges neighbours that are contiguous with each
 * other in the input (the output is contiguous throughout). */
static void
walk_simplify (Walk *w, const NnShape *shape, const gint64 *strides)
{
  w->ndim = 0;
  for (guint i = 0; i < shape->ndim; i++)
    {
      if (shape->dims[i] == 1)
        continue;
      guint k = w->ndim;
      if (k > 0 && w->in[k - 1] == strides[i] * shape->dims[i])
        {
          w->dims[k - 1] *= shape->dims[i];
          w->in[k - 1] = strides[i];
          continue;
        }
      w->dims[k] = shape->dims[i];
      w->in[k] = strides[i];
      w->ndim++;
    }
  gint64 st = 1;
  for (gint i = (gint) w->ndim - 1; i >= 0; i--)
    {
      w->out[i] = st;
      st *= w->dims[i];
    }
}

/* The walk over every dim but @skip_a and @skip_b (G_MAXUINT: none), with
 * operand 0 the input and operand 1 the output. */
static gint64
outer_init (NnOpsIter *it, const Walk *w, guint skip_a, guint skip_b)
{
  NnShape s = { 0 };
  gint64 in[NN_MAX_DIMS], out[NN_MAX_DIMS], n = 1;
  for (guint i = 0; i < w->ndim; i++)
    if (i != skip_a && i != skip_b)
      {
        s.dims[s.ndim] = w->dims[i];
        in[s.ndim] = w->in[i];
        out[s.ndim++] = w->out[i];
        n *= w->dims[i];
      }
  nn_ops_iter_init (it, &s);
  nn_ops_iter_add_strided (it, in, 0);
  nn_ops_iter_add_strided (it, out, 0);
  return n;
}

/* One element of size @es: a constant @es lets the compiler make the
 * memcpy a single load and store. */
static inline void
put (guint8 *dst, const guint8 *src, gsize es)
{
  memcpy (dst, src, es);
}

/* dst[i * ldd + j] = src[i + j * lds] for a @rows x @cols block: the
 * input's contiguous dim becomes the output's rows. */
static inline void
transpose_block (guint8 *dst, gint64 ldd, const guint8 *src, gint64 lds,
                 gint64 rows, gint64 cols, gsize es)
{
  for (gint64 i0 = 0; i0 < rows; i0 += TILE)
    for (gint64 j0 = 0; j0 < cols; j0 += TILE)
      {
        gint64 i1 = MIN (rows, i0 + TILE), j1 = MIN (cols, j0 + TILE);
        for (gint64 i = i0; i < i1; i++)
          for (gint64 j = j0; j < j1; j++)
            put (dst + (i * ldd + j) * es, src + (i + j * lds) * es, es);
      }
}

/* dst[j] = src[j * step] for @n elements (step 0: one element repeated). */
static inline void
strided_row (guint8 *dst, const guint8 *src, gint64 step, gint64 n, gsize es)
{
  for (gint64 j = 0; j < n; j++)
    put (dst + j * es, src + j * step * es, es);
}

static void
transpose_all (guint8 *dst, const guint8 *src, const Walk *w, guint k,
               gsize es)
{
  guint last = w->ndim - 1;
  NnOpsIter it;
  gint64 n = outer_init (&it, w, k, last);
  for (gint64 o = 0; o < n; o++, nn_ops_iter_next (&it))
    {
      guint8 *d = dst + it.off[1] * es;
      const guint8 *s = src + it.off[0] * es;
      switch (es)
        {
        case 4:
          transpose_block (d, w->out[k], s, w->in[last], w->dims[k],
                           w->dims[last], 4);
          break;
        case 8:
          transpose_block (d, w->out[k], s, w->in[last], w->dims[k],
                           w->dims[last], 8);
          break;
        default:
          transpose_block (d, w->out[k], s, w->in[last], w->dims[k],
                           w->dims[last], es);
        }
    }
}

static void
rows_all (guint8 *dst, const guint8 *src, const Walk *w, gsize es)
{
  guint last = w->ndim - 1;
  gint64 row = w->dims[last], step = w->in[last];
  NnOpsIter it;
  gint64 n = outer_init (&it, w, last, G_MAXUINT);
  for (gint64 o = 0; o < n; o++, nn_ops_iter_next (&it))
    {
      guint8 *d = dst + it.off[1] * es;
      const guint8 *s = src + it.off[0] * es;
      if (step == 1)
        memcpy (d, s, row * es);
      else if (es == 4)
        strided_row (d, s, step, row, 4);
      else if (es == 8)
        strided_row (d, s, step, row, 8);
      else
        strided_row (d, s, step, row, es);
    }
}

void
nn_ops_strided_copy (guint8 *dst, const guint8 *src, const NnShape *shape,
                     const gint64 *strides, gsize es)
{
  if (nn_shape_numel (shape) == 0)
    return;
  Walk w;
  walk_simplify (&w, shape, strides);
  if (w.ndim == 0)
    {
      memcpy (dst, src, es);
      return;
    }
  guint last = w.ndim - 1;
  /* A transpose pays off when the input has a contiguous dim other than
   * the last and the last one is not contiguous (nor broadcast). */
  if (w.in[last] > 1)
    for (guint k = 0; k < last; k++)
      if (w.in[k] == 1)
        {
          transpose_all (dst, src, &w, k, es);
          return;
        }
  rows_all (dst, src, &w, es);
}
