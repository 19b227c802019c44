/* Embedding: row lookup in a [num_embeddings, embedding_dim] table, as
 * torch.nn.Embedding.  max_norm rescales the looked-up rows to that norm;
 * unlike PyTorch the weight itself is not rewritten (the output is the
 * same, and forward never writes module tensors). */
#include "embedding.h"
#include "../common/nn-layer-util.h"

#include <nnkit/train.h>

static const NnSchemaKey embedding_schema[] = {
  { "num_embeddings", NN_KIND_INT, 0, NN_KEY_HAS_MIN, NULL, 1, 0, NULL,
    "rows of the table (the vocabulary size)" },
  { "embedding_dim", NN_KIND_INT, 0, NN_KEY_HAS_MIN, NULL, 1, 0, NULL,
    "length of each row" },
  { "padding_idx", NN_KIND_INT, 0, NN_KEY_OPTIONAL | NN_KEY_NULLABLE, "null",
    0, 0, NULL, "row initialised to zero and left out of gradients; "
    "negative counts from the end" },
  { "max_norm", NN_KIND_FLOAT, 0, NN_KEY_OPTIONAL | NN_KEY_NULLABLE
    | NN_KEY_HAS_MIN, "null", 0, 0, NULL,
    "rows with a larger norm are rescaled to this norm" },
  { "norm_type", NN_KIND_FLOAT, 0, NN_KEY_OPTIONAL | NN_KEY_HAS_MIN, "2.0",
    0, 0, NULL, "p of the p-norm for max_norm" },
  { "scale_grad_by_freq", NN_KIND_BOOL, 0, NN_KEY_OPTIONAL, "false", 0, 0,
    NULL, "training only: scale gradients by word frequency" },
  { "sparse", NN_KIND_BOOL, 0, NN_KEY_OPTIONAL, "false", 0, 0, NULL,
    "training only: sparse gradients" },
};

static const NnArgSpec embedding_args[] = {
  { "input", NN_ARG_TENSOR, NN_EMB_INDEX_DTYPES, 0, NULL,
    "indices of any shape, int64 or int32" },
};

static gboolean
embedding_create (NnModule *self, GError **error)
{
  gint64 rows = nn_module_config_int (self, "num_embeddings"), pad;
  if (!nn_emb_padding_idx (self, rows, &pad, error))
    return FALSE;
  NnShape ws = { 2, { rows, nn_module_config_int (self, "embedding_dim") } };
  nn_module_add_parameter (self, "weight", NN_DTYPE_F32, &ws);
  return TRUE;
}

static void
embedding_reset_parameters (NnModule *self, GRand *rng)
{
  gint64 pad = -1;
  nn_emb_padding_idx (self, nn_module_config_int (self, "num_embeddings"),
                      &pad, NULL);
  nn_emb_reset_weight (self, pad, rng);
}

static NnValue *
embedding_forward (NnModule *self, NnCall *call, const NnArgs *args,
                   GError **error)
{
  NnTensor *idx = nn_args_tensor (args, 0);
  NnTensor *w = nn_module_get_parameter (self, "weight");
  gint64 rows = w->shape.dims[0], dim = w->shape.dims[1];
  NnShape os = idx->shape;
  if (os.ndim >= NN_MAX_DIMS) {
    nn_lu_shape_error (error, "indices of at most 7 dims", &idx->shape);
    return NULL;
  }
  os.dims[os.ndim++] = dim;
  if (nn_tensor_is_meta (idx))
    return nn_lu_result (nn_tensor_new_meta (NN_DTYPE_F32, &os), error);
  if (!nn_emb_check_indices (idx, rows, error))
    return NULL;
  NnTensor *out = nn_tensor_new (NN_DTYPE_F32, &os);
  if (!out)
    return nn_lu_result (NULL, error);
  double max_norm = nn_module_config_is_null (self, "max_norm")
                        ? 0.0 : nn_module_config_float (self, "max_norm");
  double norm_type = nn_module_config_float (self, "norm_type");
  const float *wd = nn_tensor_f32 (w);
  float *y = nn_tensor_f32 (out);
  for (gint64 i = 0, n = nn_tensor_numel (idx); i < n; i++)
    nn_emb_copy_row (wd, dim, nn_emb_index (idx, i), max_norm, norm_type,
                     y + i * dim);
  return nn_value_take_tensor (out);
}

/* d weight[idx[i]] += g[i], except the padding_idx row, divided by the
 * index's count in the batch under scale_grad_by_freq, as PyTorch's
 * embedding_dense_backward (sparse=True gives the same values densely).
 * The indices get no gradient. */
static NnValue *
embedding_backward (NnModule *self, NnCall *call, const NnArgs *args,
                    const NnValue *out, const NnValue *grad_out,
                    GError **error)
{
  NnTensor *idx = nn_args_tensor (args, 0);
  float *dw = nn_module_grad_f32 (self, "weight");
  NnValue *res = nn_value_new_tuple ();
  nn_value_append (res, nn_value_new_none ());
  if (!dw)
    return res;
  NnTensor *w = nn_module_get_parameter (self, "weight");
  gint64 rows = w->shape.dims[0], dim = w->shape.dims[1], pad = -1;
  nn_emb_padding_idx (self, rows, &pad, NULL);
  nn_emb_accumulate_grad (idx, nn_tensor_f32 (nn_value_get_tensor (grad_out)),
                          rows, dim, pad,
                          nn_module_config_bool (self, "scale_grad_by_freq"), dw);
  return res;
}

static char *
embedding_extra_repr (NnModule *self)
{
  GString *s = g_string_new (NULL);
  gint64 rows = nn_module_config_int (self, "num_embeddings"), pad = -1;
  g_string_append_printf (s, "%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT, rows,
                          nn_module_config_int (self, "embedding_dim"));
  nn_emb_padding_idx (self, rows, &pad, NULL);
  if (pad >= 0)
    g_string_append_printf (s, ", padding_idx=%" G_GINT64_FORMAT, pad);
  if (!nn_module_config_is_null (self, "max_norm")) {
    g_autofree char *v = nn_module_config_repr (self, "max_norm");
    g_string_append_printf (s, ", max_norm=%s", v);
  }
  if (nn_module_config_float (self, "norm_type") != 2.0) {
    g_autofree char *v = nn_module_config_repr (self, "norm_type");
    g_string_append_printf (s, ", norm_type=%s", v);
  }
  if (nn_module_config_bool (self, "scale_grad_by_freq"))
    g_string_append (s, ", scale_grad_by_freq=True");
  if (nn_module_config_bool (self, "sparse"))
    g_string_append (s, ", sparse=True");
  return g_string_free (s, FALSE);
}

const NnLayerType nn_embedding_type = {
  .struct_size = sizeof (NnLayerType),
  .name = "Embedding",
  .doc = "lookup table: each index selects a row of weight",
  .schema = embedding_schema,
  .n_schema = G_N_ELEMENTS (embedding_schema),
  .args = embedding_args,
  .n_args = G_N_ELEMENTS (embedding_args),
  .create = embedding_create,
  .forward = embedding_forward,
  .backward = embedding_backward,
  .infer = embedding_forward,
  .extra_repr = embedding_extra_repr,
  .reset_parameters = embedding_reset_parameters,
  /* No count_macs: a lookup copies rows and multiplies nothing, so 0
   * (torchinfo's weight rule would show batch x numel; docs/NNCTL.md). */
};
