/* loss plugin: the training losses of torch.nn (CrossEntropyLoss,
 * MSELoss, BCEWithLogitsLoss), each an ordinary type with a backward, in
 * its own file.  Private helpers shared by them. */
#ifndef NN_LOSS_H
#define NN_LOSS_H

#include <nnkit/plugin.h>
#include <nnkit/train.h>

typedef enum {
  NN_LOSS_NONE,
  NN_LOSS_MEAN,
  NN_LOSS_SUM,
} NnLossReduction;

extern const char *const nn_loss_reductions[];

/* The schema key "reduction", shared by every loss. */
#define NN_LOSS_REDUCTION_KEY                                             \
  { "reduction", NN_KIND_ENUM, 0, NN_KEY_OPTIONAL, "\"mean\"", 0, 0,      \
    nn_loss_reductions, "'none', 'mean' or 'sum' over the elements" }

/* The functional signature's legacy size_average/reduce (None only) and
 * reduction (None: the config's). */
#define NN_LOSS_LEGACY_ARGS                                               \
  { "size_average", NN_ARG_NONE, 0, NN_ARG_OPTIONAL, "null",              \
    "deprecated in PyTorch; only None" },                                 \
  { "reduce", NN_ARG_NONE, 0, NN_ARG_OPTIONAL, "null",                    \
    "deprecated in PyTorch; only None" }
#define NN_LOSS_REDUCTION_ARG                                             \
  { "reduction", NN_ARG_STRING | NN_ARG_NONE, 0, NN_ARG_OPTIONAL, "null", \
    "'none', 'mean' or 'sum' (None: the config's)" }

/* Reads the reduction from argument @i, else the config. */
gboolean nn_loss_reduction (NnModule *self, const NnArgs *args, guint i,
                            NnLossReduction *out, GError **error);
/* Refuses a tensor in optional argument @i (weight, pos_weight), which
 * this plugin does not implement. */
gboolean nn_loss_refuse_tensor (const NnArgs *args, guint i,
                                const char *name, GError **error);
/* The reduced result: a 0-d tensor holding @v. */
NnValue *nn_loss_scalar (double v);
/* Gradient scale per element from the output gradient: for mean and sum
 * the scalar's gradient (over @count for mean), for none the element's. */
double nn_loss_grad_scale (NnLossReduction r, const float *g, gint64 i,
                           gint64 count);
/* A tuple of gradients (transfer full of each, nullable: None). */
NnValue *nn_loss_grads (NnTensor *a, NnTensor *b);
/* Errors for a same-shape pair (MSE, BCE). */
gboolean nn_loss_same_shape (NnTensor *input, NnTensor *target,
                             GError **error);

/* Per-element loss l(x, y) and its partial derivatives, in double. */
typedef double (*NnLossElem) (double x, double y);
typedef void (*NnLossElemGrad) (double x, double y, double *dx, double *dy);
/* A same-shape loss (MSE, BCE): @elem on every element, reduced by @r.
 * @x and @y are F32 of one shape (checked by the caller). Transfer full. */
NnValue *nn_loss_pointwise (NnTensor *x, NnTensor *y, NnLossReduction r,
                            NnLossElem elem);
/* Its backward: the tuple (d input, d target), each @grad's partial times
 * the output gradient's scale (nn_loss_grad_scale). Transfer full. */
NnValue *nn_loss_pointwise_backward (NnTensor *x, NnTensor *y,
                                     NnLossReduction r,
                                     const NnValue *grad_out,
                                     NnLossElemGrad grad);

extern const NnLayerType nn_cross_entropy_loss_type;
extern const NnLayerType nn_mse_loss_type;
extern const NnLayerType nn_bce_with_logits_loss_type;

#endif
