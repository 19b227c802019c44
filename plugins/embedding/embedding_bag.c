/* EmbeddingBag: sums, means or maxima of bags of embedding rows, as
 * torch.nn.EmbeddingBag: a 2-d input is one bag per row; a 1-d input is
 * cut into bags at `offsets`.  padding_idx entries are left out of their
 * bag (and of a mean's count); an empty bag gives zeros. */
#include "embedding.h"
#include "../common/nn-layer-util.h"

static const char *const bag_modes[] = { "sum", "mean", "max", NULL };

static const NnSchemaKey embedding_bag_schema[] = {
  { "num_embeddings", NN_KIND_INT, 0, NN_KEY_HAS_MIN, NULL, 1, 0, NULL,
    "rows of the table" },
  { "embedding_dim", NN_KIND_INT, 0, NN_KEY_HAS_MIN, NULL, 1, 0, NULL,
    "length of each row" },
  { "max_norm", NN_KIND_FLOAT, 0, NN_KEY_OPTIONAL | NN_KEY_NULLABLE
    | NN_KEY_HAS_MIN, "null", 0, 0, NULL,
    "rows with a larger norm are rescaled to this norm" },
  { "norm_type", NN_KIND_FLOAT, 0, NN_KEY_OPTIONAL | NN_KEY_HAS_MIN, "2.0",
    0, 0, NULL, "p of the p-norm for max_norm" },
  { "scale_grad_by_freq", NN_KIND_BOOL, 0, NN_KEY_OPTIONAL, "false", 0, 0,
    NULL, "training only" },
  { "mode", NN_KIND_ENUM, 0, NN_KEY_OPTIONAL, "\"mean\"", 0, 0, bag_modes,
    "how a bag's rows are reduced" },
  { "sparse", NN_KIND_BOOL, 0, NN_KEY_OPTIONAL, "false", 0, 0, NULL,
    "training only: sparse gradients" },
  { "include_last_offset", NN_KIND_BOOL, 0, NN_KEY_OPTIONAL, "false", 0, 0,
    NULL, "offsets has one more entry, the end of the last bag" },
  { "padding_idx", NN_KIND_INT, 0, NN_KEY_OPTIONAL | NN_KEY_NULLABLE, "null",
    0, 0, NULL, "row left out of the bags; negative counts from the end" },
};

static const NnArgSpec embedding_bag_args[] = {
  { "input", NN_ARG_TENSOR, NN_EMB_INDEX_DTYPES, 0, NULL,
    "[B, N] bags of indices, or 1-d indices cut by offsets" },
  { "offsets", NN_ARG_TENSOR | NN_ARG_NONE, NN_EMB_INDEX_DTYPES,
    NN_ARG_OPTIONAL, "null", "start of each bag in a 1-d input" },
  { "per_sample_weights", NN_ARG_TENSOR | NN_ARG_NONE, 0, NN_ARG_OPTIONAL,
    "null", "weights of input's shape (mode 'sum' only)" },
};

static gboolean
embedding_bag_create (NnModule *self, GError **error)
{
  gint64 rows = nn_module_config_int (self, "num_embeddings"), pad;
  if (!nn_emb_padding_idx (self, rows, &pad, error))
    return FALSE;
  NnShape ws = { 2, { rows, nn_module_config_int (self, "embedding_dim") } };
  nn_module_add_parameter (self, "weight", NN_DTYPE_F32, &ws);
  return TRUE;
}

static void
embedding_bag_reset_parameters (NnModule *self, GRand *rng)
{
  gint64 pad = -1;
  nn_emb_padding_idx (self, nn_module_config_int (self, "num_embeddings"),
                      &pad, NULL);
  nn_emb_reset_weight (self, pad, rng);
}

/* The bag layout of one call: bag b holds input entries
 * [start[b], start[b + 1]). */
typedef struct {
  gint64 n_bags;
  gint64 *start; /* n_bags + 1 entries */
} Bags;

static gboolean
bags_layout (NnModule *self, NnTensor *input, NnTensor *offsets, Bags *bags,
             GError **error)
{
  const NnShape *s = &input->shape;
  gboolean last = nn_module_config_bool (self, "include_last_offset");
  bags->start = NULL;
  if (s->ndim == 2) {
    if (offsets) {
      g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH,
                   "if input is 2D, then offsets has to be None, as input is "
                   "treated is a mini-batch of fixed length sequences. "
                   "However, found offsets of type Tensor");
      return FALSE;
    }
    bags->n_bags = s->dims[0];
    if (nn_tensor_is_meta (input))
      return TRUE;
    bags->start = g_new (gint64, bags->n_bags + 1);
    for (gint64 b = 0; b <= bags->n_bags; b++)
      bags->start[b] = b * s->dims[1];
    return TRUE;
  }
  if (s->ndim != 1) {
    g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH,
                 "input has to be 1D or 2D Tensor, but got Tensor of "
                 "dimension %u", s->ndim);
    return FALSE;
  }
  if (!offsets || offsets->shape.ndim != 1) {
    g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH,
                 "offsets has to be a 1D Tensor but got %s",
                 offsets ? "a Tensor of another rank" : "None");
    return FALSE;
  }
  gint64 n_off = offsets->shape.dims[0];
  bags->n_bags = last ? MAX (n_off - 1, 0) : n_off;
  if (nn_tensor_is_meta (input) || nn_tensor_is_meta (offsets))
    return TRUE;
  for (gint64 b = 0; b < n_off; b++) {
    gint64 o = nn_emb_index (offsets, b);
    gint64 prev = b ? nn_emb_index (offsets, b - 1) : 0;
    if (b == 0 && o != 0) {
      g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH,
                   "offsets[0] has to be 0, i.e., the first sequence in the "
                   "mini-batch has to start from position 0. However, got %"
                   G_GINT64_FORMAT, o);
      return FALSE;
    }
    if (o > s->dims[0]) {
      g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH,
                   "offsets[-1] can not be greater than input's length %"
                   G_GINT64_FORMAT " but got offsets[%" G_GINT64_FORMAT
                   "] of %" G_GINT64_FORMAT, s->dims[0], b, o);
      return FALSE;
    }
    if (o < prev) {
      g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH,
                   "offsets must be non-decreasing, found offsets[%"
                   G_GINT64_FORMAT "] = %" G_GINT64_FORMAT " after %"
                   G_GINT64_FORMAT, b, o, prev);
      return FALSE;
    }
  }
  bags->start = g_new (gint64, bags->n_bags + 1);
  for (gint64 b = 0; b < bags->n_bags; b++)
    bags->start[b] = nn_emb_index (offsets, b);
  bags->start[bags->n_bags] = last && n_off > 0
                                  ? nn_emb_index (offsets, n_off - 1)
                                  : s->dims[0];
  return TRUE;
}

static gboolean
check_weights (const char *mode, NnTensor *input, NnTensor *psw,
               GError **error)
{
  if (!psw)
    return TRUE;
  if (!g_str_equal (mode, "sum")) {
    g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH,
                 "embedding_bag: per_sample_weights was not None. "
                 "per_sample_weights is only supported for mode='sum' (got "
                 "mode='%s').", mode);
    return FALSE;
  }
  if (!nn_shape_equal (&psw->shape, &input->shape)) {
    g_autofree char *p = nn_shape_to_string (&psw->shape);
    g_autofree char *i = nn_shape_to_string (&input->shape);
    g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH,
                 "embedding_bag: If per_sample_weights (%s) is not None, then "
                 "it must have the same shape as the input (%s)", p, i);
    return FALSE;
  }
  return TRUE;
}

static void
reduce_bag (NnModule *self, const char *mode, NnTensor *input, NnTensor *psw,
            gint64 from, gint64 to, gint64 pad, float *row, float *dst)
{
  NnTensor *w = nn_module_get_parameter (self, "weight");
  gint64 dim = w->shape.dims[1], count = 0;
  double max_norm = nn_module_config_is_null (self, "max_norm")
                        ? 0.0 : nn_module_config_float (self, "max_norm");
  double norm_type = nn_module_config_float (self, "norm_type");
  gboolean is_max = g_str_equal (mode, "max");
  for (gint64 k = from; k < to; k++) {
    gint64 r = nn_emb_index (input, k);
    if (r == pad)
      continue;
    nn_emb_copy_row (nn_tensor_f32 (w), dim, r, max_norm, norm_type, row);
    float sw = psw ? nn_tensor_f32 (psw)[k] : 1.0f;
    for (gint64 i = 0; i < dim; i++) {
      if (is_max)
        dst[i] = count == 0 || row[i] > dst[i] ? row[i] : dst[i];
      else
        dst[i] += row[i] * sw;
    }
    count++;
  }
  if (g_str_equal (mode, "mean") && count > 0)
    for (gint64 i = 0; i < dim; i++)
      dst[i] /= (float) count;
}

static NnValue *
embedding_bag_forward (NnModule *self, NnCall *call, const NnArgs *args,
                       GError **error)
{
  NnTensor *input = nn_args_tensor (args, 0);
  NnTensor *offsets = nn_args_tensor (args, 1);
  NnTensor *psw = nn_args_tensor (args, 2);
  const char *mode = nn_module_config_string (self, "mode");
  NnTensor *w = nn_module_get_parameter (self, "weight");
  gint64 rows = w->shape.dims[0], dim = w->shape.dims[1], pad;
  Bags bags;
  if (!check_weights (mode, input, psw, error)
      || !bags_layout (self, input, offsets, &bags, error))
    return NULL;
  g_autofree gint64 *start = bags.start;
  NnShape os = { 2, { bags.n_bags, dim } };
  if (!start)
    return nn_lu_result (nn_tensor_new_meta (NN_DTYPE_F32, &os), error);
  nn_emb_padding_idx (self, rows, &pad, NULL);
  if (!nn_emb_check_indices (input, rows, error))
    return NULL;
  NnTensor *out = nn_tensor_new (NN_DTYPE_F32, &os);
  if (!out)
    return nn_lu_result (NULL, error);
  g_autofree float *row = g_new (float, dim);
  for (gint64 b = 0; b < bags.n_bags; b++)
    reduce_bag (self, mode, input, psw, start[b], start[b + 1], pad, row,
                nn_tensor_f32 (out) + b * dim);
  return nn_value_take_tensor (out);
}

static char *
embedding_bag_extra_repr (NnModule *self)
{
  GString *s = g_string_new (NULL);
  gint64 rows = nn_module_config_int (self, "num_embeddings"), pad = -1;
  g_string_append_printf (s, "%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT, rows,
                          nn_module_config_int (self, "embedding_dim"));
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
  /* 1.13 prints the mode unquoted. */
  g_string_append_printf (s, ", mode=%s", nn_module_config_string (self, "mode"));
  nn_emb_padding_idx (self, rows, &pad, NULL);
  if (pad >= 0)
    g_string_append_printf (s, ", padding_idx=%" G_GINT64_FORMAT, pad);
  return g_string_free (s, FALSE);
}

static guint64
embedding_bag_count_macs (NnModule *self, const NnArgs *args,
                          const NnValue *out)
{
  return nn_lu_count_macs_params (self, out, FALSE);
}

const NnLayerType nn_embedding_bag_type = {
  .struct_size = sizeof (NnLayerType),
  .name = "EmbeddingBag",
  .doc = "sum, mean or max over bags of embedding rows",
  .schema = embedding_bag_schema,
  .n_schema = G_N_ELEMENTS (embedding_bag_schema),
  .args = embedding_bag_args,
  .n_args = G_N_ELEMENTS (embedding_bag_args),
  .create = embedding_bag_create,
  .forward = embedding_bag_forward,
  .infer = embedding_bag_forward,
  .extra_repr = embedding_bag_extra_repr,
  .reset_parameters = embedding_bag_reset_parameters,
  .count_macs = embedding_bag_count_macs,
};
