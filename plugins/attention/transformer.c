/* TransformerEncoder, TransformerDecoder and Transformer as composites
 * over their children, called through the core:
 *
 *   TransformerEncoder / TransformerDecoder: layers (a ModuleList whose
 *     children 0 .. num_layers - 1 are the layers), norm (optional
 *     LayerNorm);
 *   Transformer: encoder (TransformerEncoder), decoder (TransformerDecoder).
 *
 * TransformerEncoder reproduces PyTorch 1.13's nested-tensor fast path of
 * inference (no grad): with enable_nested_tensor, a batch_first post-norm
 * TransformerEncoderLayer with an even head count, a left-aligned
 * src_key_padding_mask and no mask, padded positions come back as 0 and
 * the sequence is cut to the longest unpadded row (before `norm`).  The
 * layers then run on that cut already (positions every row pads are keys
 * the mask removes and queries the result drops: the same numbers for
 * less work), without the mask when no row of the cut pads. */
#include "attention.h"
#include "../common/nn-layer-util.h"

static const NnSchemaKey encoder_schema[] = {
  { "num_layers", NN_KIND_INT, 0, NN_KEY_HAS_MIN, NULL, 1, 0, NULL,
    "layers.0 .. layers.<num_layers - 1> are run in turn" },
  { "enable_nested_tensor", NN_KIND_BOOL, 0, NN_KEY_OPTIONAL, "true", 0, 0,
    NULL, "PyTorch's nested-tensor fast path with a padding mask" },
  { "mask_check", NN_KIND_BOOL, 0, NN_KEY_OPTIONAL, "true", 0, 0, NULL,
    "take the fast path only for a left-aligned padding mask" },
};

static const NnSchemaKey decoder_schema[] = {
  { "num_layers", NN_KIND_INT, 0, NN_KEY_HAS_MIN, NULL, 1, 0, NULL,
    "layers.0 .. layers.<num_layers - 1> are run in turn" },
};

static const NnSchemaKey transformer_schema[] = {
  { "d_model", NN_KIND_INT, 0, NN_KEY_OPTIONAL | NN_KEY_HAS_MIN, "512", 1, 0,
    NULL, "model dimension E" },
  { "nhead", NN_KIND_INT, 0, NN_KEY_OPTIONAL | NN_KEY_HAS_MIN, "8", 1, 0,
    NULL, "attention heads" },
  { "num_encoder_layers", NN_KIND_INT, 0, NN_KEY_OPTIONAL | NN_KEY_HAS_MIN,
    "6", 1, 0, NULL, "encoder layers" },
  { "num_decoder_layers", NN_KIND_INT, 0, NN_KEY_OPTIONAL | NN_KEY_HAS_MIN,
    "6", 1, 0, NULL, "decoder layers" },
  { "dim_feedforward", NN_KIND_INT, 0, NN_KEY_OPTIONAL | NN_KEY_HAS_MIN,
    "2048", 1, 0, NULL, "feed-forward hidden size" },
  { "dropout", NN_KIND_FLOAT, 0, NN_KEY_OPTIONAL | NN_KEY_HAS_MIN
    | NN_KEY_HAS_MAX, "0.1", 0, 1, NULL, "dropout (training only)" },
  NN_ATT_ACTIVATION_KEY,
  { "layer_norm_eps", NN_KIND_FLOAT, 0, NN_KEY_OPTIONAL | NN_KEY_HAS_MIN,
    "1e-05", 0, 0, NULL, "eps of the LayerNorms" },
  { "batch_first", NN_KIND_BOOL, 0, NN_KEY_OPTIONAL, "false", 0, 0, NULL,
    "tensors are [N, L, E] instead of [L, N, E]" },
  { "norm_first", NN_KIND_BOOL, 0, NN_KEY_OPTIONAL, "false", 0, 0, NULL,
    "pre-norm layers" },
};

#define MASK_ARG(name_, doc_)                                               \
  { name_, NN_ARG_TENSOR | NN_ARG_NONE, NN_ATT_MASK_DTYPES,                 \
    NN_ARG_OPTIONAL, "null", doc_ }

static const NnArgSpec encoder_args[] = {
  { "src", NN_ARG_TENSOR, 0, 0, NULL, "[L, N, E], [N, L, E] or [L, E]" },
  MASK_ARG ("mask", "attention mask [L, L]"),
  MASK_ARG ("src_key_padding_mask", "[N, L]: True = padding"),
};

static const NnArgSpec decoder_args[] = {
  { "tgt", NN_ARG_TENSOR, 0, 0, NULL, "[T, N, E]" },
  { "memory", NN_ARG_TENSOR, 0, 0, NULL, "[S, N, E]" },
  MASK_ARG ("tgt_mask", "[T, T]"),
  MASK_ARG ("memory_mask", "[T, S]"),
  MASK_ARG ("tgt_key_padding_mask", "[N, T]"),
  MASK_ARG ("memory_key_padding_mask", "[N, S]"),
};

static const NnArgSpec transformer_args[] = {
  { "src", NN_ARG_TENSOR, 0, 0, NULL, "[S, N, E]" },
  { "tgt", NN_ARG_TENSOR, 0, 0, NULL, "[T, N, E]" },
  MASK_ARG ("src_mask", "[S, S]"),
  MASK_ARG ("tgt_mask", "[T, T]"),
  MASK_ARG ("memory_mask", "[T, S]"),
  MASK_ARG ("src_key_padding_mask", "[N, S]"),
  MASK_ARG ("tgt_key_padding_mask", "[N, T]"),
  MASK_ARG ("memory_key_padding_mask", "[N, S]"),
};

static gboolean
stack_create (NnModule *self, GError **error)
{
  return TRUE;
}

static gboolean
stack_check (NnModule *self, const char *layer_type, GError **error)
{
  if (!nn_att_require_child (self, "layers", "a ModuleList", error))
    return FALSE;
  gint64 n = nn_module_config_int (self, "num_layers");
  NnModule *layers = nn_module_get_child (self, "layers");
  for (gint64 i = 0; i < n; i++) {
    g_autofree char *name = g_strdup_printf ("%" G_GINT64_FORMAT, i);
    if (!nn_module_get_child (layers, name)) {
      g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_NOT_FOUND,
                   "expected num_layers=%" G_GINT64_FORMAT " children of "
                   "'layers' (a %s each), found no 'layers.%s'", n, layer_type,
                   name);
      return FALSE;
    }
  }
  return TRUE;
}

static gboolean
encoder_check (NnModule *self, GError **error)
{
  return stack_check (self, "TransformerEncoderLayer", error);
}

static gboolean
decoder_check (NnModule *self, GError **error)
{
  return stack_check (self, "TransformerDecoderLayer", error);
}

static gboolean
transformer_check (NnModule *self, GError **error)
{
  return nn_att_require_child (self, "encoder", "a TransformerEncoder", error)
         && nn_att_require_child (self, "decoder", "a TransformerDecoder", error);
}

/* Runs the optional `norm` child on @x (transfer full). */
static NnTensor *
final_norm (NnCall *call, NnModule *self, NnTensor *x, GError **error)
{
  if (!x || !nn_module_get_child (self, "norm"))
    return x;
  NnTensor *y = nn_call_child (call, self, "norm", x, error);
  nn_tensor_unref (x);
  return y;
}

static gboolean
mask_true (NnTensor *m, gint64 i)
{
  return m->dtype == NN_DTYPE_BOOL ? ((const guint8 *) m->data)[i] != 0
                                   : nn_tensor_f32 (m)[i] != 0.0f;
}

/* PyTorch's _qkv_same_embed_dim, per key: kdim / vdim None or equal to
 * embed_dim (torch2nn writes the value PyTorch holds, never None). */
static gboolean
same_embed_dim (NnModule *sa, const char *key)
{
  return nn_module_config_is_null (sa, key)
         || nn_module_config_int (sa, key) == nn_module_config_int (sa, "embed_dim");
}

/* Whether PyTorch 1.13 converts to nested tensors here, and then the
 * length of each row (@lens, n entries) and the longest. */
static gboolean
nested_path (NnModule *self, NnTensor *src, NnTensor *mask, NnTensor *kpm,
             gint64 *longest)
{
  if (!nn_module_config_bool (self, "enable_nested_tensor") || !kpm || mask
      || src->shape.ndim != 3 || nn_tensor_is_meta (kpm))
    return FALSE;
  NnModule *first = nn_module_lookup_path (self, "layers.0", NULL);
  NnModule *sa = first ? nn_module_get_child (first, "self_attn") : NULL;
  NnModule *n1 = first ? nn_module_get_child (first, "norm1") : NULL;
  NnModule *n2 = first ? nn_module_get_child (first, "norm2") : NULL;
  if (!first || !sa || !n1 || !n2
      || !g_str_equal (nn_module_get_type_name (first), "TransformerEncoderLayer")
      || !g_str_equal (nn_module_get_type_name (sa), "MultiheadAttention")
      || !g_str_equal (nn_module_get_type_name (n1), "LayerNorm")
      || !g_str_equal (nn_module_get_type_name (n2), "LayerNorm")
      || nn_module_config_bool (first, "norm_first")
      || !nn_module_config_bool (sa, "batch_first")
      || !same_embed_dim (sa, "kdim") || !same_embed_dim (sa, "vdim")
      || nn_module_config_float (n1, "eps") != nn_module_config_float (n2, "eps")
      || nn_module_config_int (sa, "num_heads") % 2 == 1)
    return FALSE;
  /* batch_first: kpm is [N, L]; unpadded positions must be a prefix. */
  gint64 n = kpm->shape.dims[0], l = kpm->shape.ndim == 2 ? kpm->shape.dims[1] : 0;
  *longest = 0;
  for (gint64 b = 0; b < n; b++) {
    gint64 len = 0;
    while (len < l && !mask_true (kpm, b * l + len))
      len++;
    for (gint64 j = len; j < l; j++)
      if (!mask_true (kpm, b * l + j) && nn_module_config_bool (self, "mask_check"))
        return FALSE;
    *longest = MAX (*longest, len);
  }
  return TRUE;
}

/* The nested result padded back: row b keeps its first len_b positions,
 * 0 elsewhere, cut to @longest. */
static NnTensor *
to_padded (NnTensor *x, NnTensor *kpm, gint64 longest)
{
  gint64 n = x->shape.dims[0], l = x->shape.dims[1], e = x->shape.dims[2];
  NnShape s = { 3, { n, longest, e } };
  NnTensor *y = nn_tensor_new (NN_DTYPE_F32, &s);
  if (!y)
    return NULL;
  for (gint64 b = 0; b < n; b++)
    for (gint64 i = 0; i < longest && i < l && !mask_true (kpm, b * l + i); i++)
      memcpy (nn_tensor_f32 (y) + (b * longest + i) * e,
              nn_tensor_f32 (x) + (b * l + i) * e, sizeof (float) * e);
  return y;
}

/* [N, L, ...] of @t cut to [N, @len, ...] (a copy). */
static NnTensor *
cut_rows (NnTensor *t, gint64 len)
{
  NnShape s = t->shape;
  gint64 n = s.dims[0], l = s.dims[1];
  gsize row = nn_tensor_nbytes (t) / (gsize) MAX (n * l, 1);
  s.dims[1] = len;
  NnTensor *y = nn_tensor_new (t->dtype, &s);
  for (gint64 b = 0; y && b < n; b++)
    memcpy ((guint8 *) y->data + (gsize) (b * len) * row,
            (const guint8 *) t->data + (gsize) (b * l) * row, (gsize) len * row);
  return y;
}

static gboolean
any_true (NnTensor *m)
{
  for (gint64 i = 0, n = nn_tensor_numel (m); i < n; i++)
    if (mask_true (m, i))
      return TRUE;
  return FALSE;
}

static NnValue *
encoder_forward (NnModule *self, NnCall *call, const NnArgs *args,
                 GError **error)
{
  NnTensor *src = nn_args_tensor (args, 0), *mask = nn_args_tensor (args, 1);
  NnTensor *kpm = nn_args_tensor (args, 2);
  gint64 longest = 0;
  gboolean nested = nested_path (self, src, mask, kpm, &longest);
  g_autoptr (NnTensor) src_cut = NULL, kpm_cut = NULL;
  /* A float mask adds its values to the scores: only a bool one drops. */
  if (nested && longest > 0 && longest < src->shape.dims[1]
      && kpm->dtype == NN_DTYPE_BOOL && !nn_tensor_is_meta (src) && src->data) {
    src_cut = cut_rows (src, longest);
    kpm_cut = cut_rows (kpm, longest);
    if (!src_cut || !kpm_cut) {
      g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_FAILED,
                   "cannot allocate the cut sequence");
      return NULL;
    }
    src = src_cut;
    kpm = kpm_cut;
  }
  NnTensor *pad = kpm;   /* what to_padded reads */
  if (nested && kpm->dtype == NN_DTYPE_BOOL && !any_true (kpm))
    kpm = NULL;   /* nothing left to mask */
  NnTensor *x = nn_tensor_ref (src);
  for (gint64 i = 0; x && i < nn_module_config_int (self, "num_layers"); i++) {
    g_autofree char *path = g_strdup_printf ("layers.%" G_GINT64_FORMAT, i);
    NnValue *a = nn_value_new_tuple ();
    nn_value_append (a, nn_value_take_tensor (x));
    NnValue *kw = nn_value_new_dict ();
    nn_value_dict_set (kw, "src_mask", nn_att_tensor_or_none (mask));
    nn_value_dict_set (kw, "src_key_padding_mask", nn_att_tensor_or_none (kpm));
    NnValue *out = nn_att_call (call, self, path, a, kw, error);
    x = out && nn_value_kind (out) == NN_VALUE_TENSOR
            ? nn_tensor_ref (nn_value_get_tensor (out)) : NULL;
    if (out && !x)
      g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_FAILED,
                   "%s: expected a tensor result", path);
    if (out)
      nn_value_unref (out);
  }
  if (x && nested && !nn_tensor_is_meta (x)) {
    NnTensor *p = to_padded (x, pad, longest);
    nn_tensor_unref (x);
    x = p;
  }
  return nn_lu_result (final_norm (call, self, x, error), error);
}

static NnValue *
decoder_forward (NnModule *self, NnCall *call, const NnArgs *args,
                 GError **error)
{
  static const char *const kw_names[] = {
    "tgt_mask", "memory_mask", "tgt_key_padding_mask", "memory_key_padding_mask"
  };
  NnTensor *x = nn_tensor_ref (nn_args_tensor (args, 0));
  for (gint64 i = 0; x && i < nn_module_config_int (self, "num_layers"); i++) {
    g_autofree char *path = g_strdup_printf ("layers.%" G_GINT64_FORMAT, i);
    NnValue *a = nn_value_new_tuple ();
    nn_value_append (a, nn_value_take_tensor (x));
    nn_value_append (a, nn_value_new_tensor (nn_args_tensor (args, 1)));
    NnValue *kw = nn_value_new_dict ();
    for (guint k = 0; k < G_N_ELEMENTS (kw_names); k++)
      nn_value_dict_set (kw, kw_names[k], nn_att_tensor_or_none (nn_args_tensor (args, 2 + k)));
    NnValue *out = nn_att_call (call, self, path, a, kw, error);
    x = out && nn_value_kind (out) == NN_VALUE_TENSOR
            ? nn_tensor_ref (nn_value_get_tensor (out)) : NULL;
    if (out && !x)
      g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_FAILED,
                   "%s: expected a tensor result", path);
    if (out)
      nn_value_unref (out);
  }
  return nn_lu_result (final_norm (call, self, x, error), error);
}

static NnValue *
transformer_forward (NnModule *self, NnCall *call, const NnArgs *args,
                     GError **error)
{
  NnTensor *src = nn_args_tensor (args, 0), *tgt = nn_args_tensor (args, 1);
  gboolean bf = nn_module_config_bool (self, "batch_first");
  gint64 d = nn_module_config_int (self, "d_model");
  if (src->shape.ndim == 3 && tgt->shape.ndim == 3
      && src->shape.dims[bf ? 0 : 1] != tgt->shape.dims[bf ? 0 : 1]) {
    g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH,
                 "the batch number of src and tgt must be equal");
    return NULL;
  }
  if (src->shape.ndim == 0 || tgt->shape.ndim == 0
      || src->shape.dims[src->shape.ndim - 1] != d
      || tgt->shape.dims[tgt->shape.ndim - 1] != d) {
    g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH,
                 "the feature number of src and tgt must be equal to d_model");
    return NULL;
  }
  NnValue *a = nn_value_new_tuple ();
  nn_value_append (a, nn_value_new_tensor (src));
  NnValue *kw = nn_value_new_dict ();
  nn_value_dict_set (kw, "mask", nn_att_tensor_or_none (nn_args_tensor (args, 2)));
  nn_value_dict_set (kw, "src_key_padding_mask", nn_att_tensor_or_none (nn_args_tensor (args, 5)));
  g_autoptr (NnValue) memory = nn_att_call (call, self, "encoder", a, kw, error);
  if (!memory)
    return NULL;
  a = nn_value_new_tuple ();
  nn_value_append (a, nn_value_new_tensor (tgt));
  nn_value_append (a, nn_value_ref (memory));
  kw = nn_value_new_dict ();
  nn_value_dict_set (kw, "tgt_mask", nn_att_tensor_or_none (nn_args_tensor (args, 3)));
  nn_value_dict_set (kw, "memory_mask", nn_att_tensor_or_none (nn_args_tensor (args, 4)));
  nn_value_dict_set (kw, "tgt_key_padding_mask", nn_att_tensor_or_none (nn_args_tensor (args, 6)));
  nn_value_dict_set (kw, "memory_key_padding_mask", nn_att_tensor_or_none (nn_args_tensor (args, 7)));
  return nn_att_call (call, self, "decoder", a, kw, error);
}

const NnLayerType nn_transformer_encoder_type = {
  .struct_size = sizeof (NnLayerType),
  .name = "TransformerEncoder",
  .doc = "a stack of encoder layers; children layers (ModuleList), norm (optional)",
  /* The nested path's length is the padding mask's: infer gives L. */
  .flags = NN_LAYER_SHAPE_FROM_DATA,
  .schema = encoder_schema,
  .n_schema = G_N_ELEMENTS (encoder_schema),
  .args = encoder_args,
  .n_args = G_N_ELEMENTS (encoder_args),
  .create = stack_create,
  .check = encoder_check,
  .forward = encoder_forward,
  .infer = encoder_forward,
};

const NnLayerType nn_transformer_decoder_type = {
  .struct_size = sizeof (NnLayerType),
  .name = "TransformerDecoder",
  .doc = "a stack of decoder layers; children layers (ModuleList), norm (optional)",
  .schema = decoder_schema,
  .n_schema = G_N_ELEMENTS (decoder_schema),
  .args = decoder_args,
  .n_args = G_N_ELEMENTS (decoder_args),
  .create = stack_create,
  .check = decoder_check,
  .forward = decoder_forward,
  .infer = decoder_forward,
};

const NnLayerType nn_transformer_type = {
  .struct_size = sizeof (NnLayerType),
  .name = "Transformer",
  .doc = "encoder-decoder Transformer; children encoder, decoder",
  .schema = transformer_schema,
  .n_schema = G_N_ELEMENTS (transformer_schema),
  .args = transformer_args,
  .n_args = G_N_ELEMENTS (transformer_args),
  .create = stack_create,
  .check = transformer_check,
  .forward = transformer_forward,
  .infer = transformer_forward,
};
