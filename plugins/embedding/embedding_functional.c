/* F.embedding(input, weight, padding_idx, max_norm, norm_type, ...): the
 * functional lookup, with the table passed as an argument (a tied or
 * computed weight).  An op: no parameters, no hooks. */
#include "embedding.h"
#include "../common/nn-layer-util.h"

static const NnArgSpec embedding_fn_args[] = {
  { "input", NN_ARG_TENSOR, NN_EMB_INDEX_DTYPES, 0, NULL,
    "indices of any shape, int64 or int32" },
  { "weight", NN_ARG_TENSOR, 0, 0, NULL, "[num_embeddings, embedding_dim] table" },
  { "padding_idx", NN_ARG_INT | NN_ARG_NONE, 0, NN_ARG_OPTIONAL, "null",
    "training only: the row without gradient" },
  { "max_norm", NN_ARG_FLOAT | NN_ARG_NONE, 0, NN_ARG_OPTIONAL, "null",
    "rows with a larger norm are rescaled to this norm" },
  { "norm_type", NN_ARG_FLOAT, 0, NN_ARG_OPTIONAL, "2.0", "p of the p-norm" },
  { "scale_grad_by_freq", NN_ARG_BOOL, 0, NN_ARG_OPTIONAL, "false",
    "training only" },
  { "sparse", NN_ARG_BOOL, 0, NN_ARG_OPTIONAL, "false", "training only" },
};

static const char *const embedding_fn_aliases[] = {
  "torch.nn.functional.embedding", NULL
};

static gboolean
embedding_fn_create (NnModule *self, GError **error)
{
  return TRUE;
}

static NnValue *
embedding_fn_forward (NnModule *self, NnCall *call, const NnArgs *args,
                      GError **error)
{
  NnTensor *idx = nn_args_tensor (args, 0);
  NnTensor *w = nn_args_tensor (args, 1);
  if (w->shape.ndim != 2) {
    nn_lu_shape_error (error, "a 2-d weight [num_embeddings, embedding_dim]",
                       &w->shape);
    return NULL;
  }
  gint64 rows = w->shape.dims[0], dim = w->shape.dims[1];
  NnShape os = idx->shape;
  if (os.ndim >= NN_MAX_DIMS) {
    nn_lu_shape_error (error, "indices of at most 7 dims", &idx->shape);
    return NULL;
  }
  os.dims[os.ndim++] = dim;
  if (nn_tensor_is_meta (idx) || nn_tensor_is_meta (w))
    return nn_lu_result (nn_tensor_new_meta (NN_DTYPE_F32, &os), error);
  if (!nn_emb_check_indices (idx, rows, error))
    return NULL;
  NnTensor *out = nn_tensor_new (NN_DTYPE_F32, &os);
  if (!out)
    return nn_lu_result (NULL, error);
  NnValue *mn = nn_args_get (args, 3);
  double max_norm = nn_value_is_none (mn) ? 0.0 : nn_value_get_float (mn);
  double norm_type = nn_args_float (args, 4);
  for (gint64 i = 0, n = nn_tensor_numel (idx); i < n; i++)
    nn_emb_copy_row (nn_tensor_f32 (w), dim, nn_emb_index (idx, i), max_norm,
                     norm_type, nn_tensor_f32 (out) + i * dim);
  return nn_value_take_tensor (out);
}

/* The weight argument's gradient (an input gradient here: the table is
 * passed in), as the module's; padding_idx < 0 counts from the end, as
 * F.embedding wraps it. */
static NnValue *
embedding_fn_backward (NnModule *self, NnCall *call, const NnArgs *args,
                       const NnValue *out, const NnValue *grad_out,
                       GError **error)
{
  NnTensor *idx = nn_args_tensor (args, 0), *w = nn_args_tensor (args, 1);
  gint64 rows = w->shape.dims[0], dim = w->shape.dims[1], pad = -1;
  NnValue *pv = nn_args_get (args, 2);
  if (!nn_value_is_none (pv))
    pad = nn_value_get_int (pv) < 0 ? rows + nn_value_get_int (pv) : nn_value_get_int (pv);
  NnTensor *dw = nn_tensor_new (NN_DTYPE_F32, &w->shape);
  if (!dw)
    return nn_lu_result (NULL, error);
  nn_emb_accumulate_grad (idx, nn_tensor_f32 (nn_value_get_tensor (grad_out)),
                          rows, dim, pad, nn_args_bool (args, 5), nn_tensor_f32 (dw));
  NnValue *res = nn_value_new_tuple ();
  nn_value_append (res, nn_value_new_none ());
  nn_value_append (res, nn_value_take_tensor (dw));
  return res;
}

const NnLayerType nn_embedding_functional_type = {
  .struct_size = sizeof (NnLayerType),
  .name = "embedding",
  .doc = "F.embedding: rows of a weight passed as an argument",
  .flags = NN_LAYER_OP,
  .args = embedding_fn_args,
  .n_args = G_N_ELEMENTS (embedding_fn_args),
  .aliases = embedding_fn_aliases,
  .create = embedding_fn_create,
  .forward = embedding_fn_forward,
  .backward = embedding_fn_backward,
  .infer = embedding_fn_forward,
};
