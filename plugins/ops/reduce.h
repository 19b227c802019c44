/* ops plugin: reductions laid out as rows, shared by reduce.c and
 * norm_fn.c.  Private. */
#ifndef NN_OPS_REDUCE_H
#define NN_OPS_REDUCE_H

#include "ops.h"

/* A reduction laid out as @outer rows of @r contiguous elements: the
 * input is copied with the reduced dims last. */
typedef struct {
  NnShape out;        /* result shape (keepdim applied) */
  gint64 outer, r;
  NnTensor *rows;     /* (transfer full) the permuted copy; NULL for meta */
  gboolean meta;
} NnOpsPlan;

/* @dimv: None or an empty sequence (all dims), an int, or a sequence of
 * ints; @keepdim keeps reduced dims with size 1. */
gboolean nn_ops_plan_init (NnOpsPlan *p, NnTensor *in, const NnValue *dimv,
                           gboolean keepdim, const char *op, GError **error);
void nn_ops_plan_clear (NnOpsPlan *p);

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (NnOpsPlan, nn_ops_plan_clear)

#endif
