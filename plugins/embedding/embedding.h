/* embedding plugin: the layer types it registers and the row lookup they
 * share.  Private to the plugin. */
#ifndef NN_EMBEDDING_H
#define NN_EMBEDDING_H

#include <nnkit/plugin.h>

extern const NnLayerType nn_embedding_type;
extern const NnLayerType nn_embedding_bag_type;
extern const NnLayerType nn_embedding_functional_type;

/* Index tensors: int64 or int32, as PyTorch's embedding accepts. */
#define NN_EMB_INDEX_DTYPES \
  (NN_DTYPE_BIT (NN_DTYPE_I64) | NN_DTYPE_BIT (NN_DTYPE_I32))

/* Index @i of an I64 or I32 tensor. */
gint64 nn_emb_index (const NnTensor *t, gint64 i);

/* Checks every index of @idx against [0, @rows) with PyTorch's wording,
 * naming the first offender. */
gboolean nn_emb_check_indices (const NnTensor *idx, gint64 rows,
                               GError **error);

/* Reads `padding_idx` (None or an int in [-rows, rows)) of @self, wrapped
 * to [0, rows); -1 for None.  FALSE with PyTorch's message when out of
 * range. */
gboolean nn_emb_padding_idx (NnModule *self, gint64 rows, gint64 *out,
                             GError **error);

/* Copies row @r of the [rows, dim] @weight into @dst, scaled down to
 * norm @max_norm (p-norm @norm_type) when @max_norm > 0 and the row's norm
 * exceeds it, as PyTorch's embedding_renorm_ does. */
void nn_emb_copy_row (const float *weight, gint64 dim, gint64 r,
                      double max_norm, double norm_type, float *dst);

/* The weight gradient of a lookup: d weight[idx[i]] += g[i] (rows of
 * @dim floats), skipping row @pad (>= 0; -1: none), divided by the
 * index's count among @idx when @by_freq, as PyTorch's
 * embedding_dense_backward. */
void nn_emb_accumulate_grad (const NnTensor *idx, const float *g, gint64 rows,
                             gint64 dim, gint64 pad, gboolean by_freq,
                             float *dw);

/* init.normal_(weight) then zero row @padding_idx (>= 0). */
void nn_emb_reset_weight (NnModule *self, gint64 padding_idx, GRand *rng);

#endif
