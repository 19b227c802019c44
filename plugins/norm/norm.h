/* norm plugin: the layer types it registers.  Private to the plugin. */
#ifndef NN_NORM_H
#define NN_NORM_H

#include <nnkit/plugin.h>

extern const NnLayerType nn_batch_norm2d_type;
extern const NnLayerType nn_batch_norm1d_type;
extern const NnLayerType nn_batch_norm3d_type;
extern const NnLayerType nn_layer_norm_type;
extern const NnLayerType nn_group_norm_type;
extern const NnLayerType nn_group_norm_fn_type;
extern const NnLayerType nn_instance_norm1d_type;
extern const NnLayerType nn_instance_norm2d_type;
extern const NnLayerType nn_local_response_norm_type;

/* Shared by BatchNorm1d and BatchNorm2d (batch_norm2d.c), on [n, c, hw]
 * float32 data.  Training mode: num_batches_tracked += 1, running stats
 * move by momentum (None: 1 / tracked) toward @mean and the unbiased
 * @var of @count values per channel.  FALSE with @error when a buffer
 * cannot be made writable. */
gboolean nn_norm_update_running (NnModule *self, const double *mean,
                                 const double *var, gint64 c, gint64 count,
                                 GError **error);
/* The backward of batch normalisation of @input seen as [n, c, hw]: batch
 * statistics in training or without running stats, else the running
 * ones; accumulates weight and bias gradients.  (transfer full) */
NnValue *nn_norm_batch_backward (NnModule *self, NnTensor *input, gint64 n,
                                 gint64 c, gint64 hw, const NnValue *grad_out);

#endif
