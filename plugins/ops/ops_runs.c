/* ops plugin: a broadcast walk as runs.  The innermost dims where every
 * operand keeps a fixed element step (1 when contiguous, 0 when
 * broadcast) merge into one run, so an element-wise kernel loops over a
 * plain stretch of memory instead of stepping an iterator per element
 * (x * scale, x + bias, a mask over heads). */
#include "ops.h"

void
nn_ops_runs_init (NnOpsRuns *r, const NnShape *out, guint n_ops,
                  const NnShape *const *ins)
{
  gint64 strides[NN_OPS_RUNS_MAX][NN_MAX_DIMS];
  guint nd = out->ndim;

  g_return_if_fail (n_ops <= NN_OPS_RUNS_MAX);
  for (guint k = 0; k < n_ops; k++)
    nn_ops_bcast_strides (ins[k], out, strides[k]);
  r->inner = 1;
  for (guint k = 0; k < n_ops; k++)
    r->step[k] = 0;
  /* Merge dims from the innermost while each operand continues evenly:
   * its stride there is its step times the run so far. */
  gint d = (gint) nd - 1;
  gboolean first = TRUE;
  for (; d >= 0; d--)
    {
      if (out->dims[d] == 1)
        continue;
      gboolean fits = TRUE;
      for (guint k = 0; k < n_ops && !first; k++)
        fits = fits && strides[k][d] == r->step[k] * r->inner;
      if (!fits)
        break;
      if (first)
        for (guint k = 0; k < n_ops; k++)
          r->step[k] = strides[k][d];
      first = FALSE;
      r->inner *= out->dims[d];
    }
  /* The dims left walk the runs' starts. */
  NnShape outer = { (guint) (d + 1) };
  for (gint i = 0; i <= d; i++)
    outer.dims[i] = out->dims[i];
  r->runs = nn_shape_numel (&outer);
  nn_ops_iter_init (&r->outer, &outer);
  for (guint k = 0; k < n_ops; k++)
    nn_ops_iter_add_strided (&r->outer, strides[k], 0);
}
