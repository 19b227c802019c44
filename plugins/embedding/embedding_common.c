/* Row lookup shared by Embedding, EmbeddingBag and F.embedding. */
#include "embedding.h"
#include "../common/nn-layer-util.h"

gint64
nn_emb_index (const NnTensor *t, gint64 i)
{
  if (t->dtype == NN_DTYPE_I32)
    return ((const gint32 *) t->data)[i];
  return ((const gint64 *) t->data)[i];
}

gboolean
nn_emb_check_indices (const NnTensor *idx, gint64 rows, GError **error)
{
  for (gint64 i = 0, n = nn_tensor_numel (idx); i < n; i++) {
    gint64 v = nn_emb_index (idx, i);
    if (v < 0 || v >= rows) {
      g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH,
                   "index out of range in self: index %" G_GINT64_FORMAT
                   " at position %" G_GINT64_FORMAT ", expected 0 to %"
                   G_GINT64_FORMAT, v, i, rows - 1);
      return FALSE;
    }
  }
  return TRUE;
}

gboolean
nn_emb_padding_idx (NnModule *self, gint64 rows, gint64 *out, GError **error)
{
  *out = -1;
  if (nn_module_config_is_null (self, "padding_idx"))
    return TRUE;
  gint64 p = nn_module_config_int (self, "padding_idx");
  if (p < -rows || p >= rows) {
    g_set_error (error, NN_DESCRIPTOR_ERROR, NN_DESCRIPTOR_ERROR_OUT_OF_RANGE,
                 "Padding_idx must be within num_embeddings: expected "
                 "padding_idx in [%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT
                 "], found %" G_GINT64_FORMAT, -rows, rows - 1, p);
    return FALSE;
  }
  *out = p < 0 ? p + rows : p;
  return TRUE;
}

void
nn_emb_copy_row (const float *weight, gint64 dim, gint64 r, double max_norm,
                 double norm_type, float *dst)
{
  const float *src = weight + r * dim;
  double scale = 1.0;
  if (max_norm > 0) {
    double norm = 0.0;
    for (gint64 i = 0; i < dim; i++)
      norm += pow (fabs (src[i]), norm_type);
    norm = pow (norm, 1.0 / norm_type);
    /* PyTorch's embedding_renorm_ adds 1e-7 to the norm. */
    if (norm > max_norm)
      scale = max_norm / (norm + 1e-7);
  }
  for (gint64 i = 0; i < dim; i++)
    dst[i] = scale == 1.0 ? src[i] : (float) (src[i] * scale);
}

void
nn_emb_reset_weight (NnModule *self, gint64 padding_idx, GRand *rng)
{
  NnTensor *w = nn_module_get_parameter (self, "weight");
  float *d = nn_tensor_f32 (w);
  for (gint64 i = 0, n = nn_tensor_numel (w); i < n; i++)
    d[i] = (float) nn_lu_randn (rng);
  if (padding_idx >= 0) {
    gint64 dim = w->shape.dims[1];
    memset (d + padding_idx * dim, 0, sizeof (float) * dim);
  }
}

void
nn_emb_accumulate_grad (const NnTensor *idx, const float *g, gint64 rows,
                        gint64 dim, gint64 pad, gboolean by_freq, float *dw)
{
  gint64 n = nn_tensor_numel (idx);
  g_autofree gint64 *count = NULL;
  if (by_freq) {
    count = g_new0 (gint64, rows);
    for (gint64 i = 0; i < n; i++)
      count[nn_emb_index (idx, i)]++;
  }
  for (gint64 i = 0; i < n; i++) {
    gint64 r = nn_emb_index (idx, i);
    if (r == pad)
      continue;
    float scale = count ? 1.0f / (float) count[r] : 1.0f;
    for (gint64 j = 0; j < dim; j++)
      dw[r * dim + j] += g[i * dim + j] * scale;
  }
}
