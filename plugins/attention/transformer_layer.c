/* TransformerEncoderLayer and TransformerDecoderLayer as composites over
 * their children, which keep PyTorch's names and are called through the
 * core (hooks fire, replacements are used):
 *
 *   encoder: self_attn (MultiheadAttention), linear1, dropout, linear2
 *            (Linear / Dropout), norm1, norm2 (LayerNorm), dropout1, dropout2
 *   decoder: the same plus multihead_attn, norm3 and dropout3
 *
 * The activation between linear1 and linear2 is F.relu or F.gelu (config
 * `activation`), not a child, as in PyTorch.  norm_first picks pre- or
 * post-norm.  Eval-mode semantics (PyTorch's fused fast path computes the
 * same within float tolerance). */
#include "attention.h"
#include "../common/nn-layer-util.h"

#define LAYER_KEYS                                                          \
  { "d_model", NN_KIND_INT, 0, NN_KEY_HAS_MIN, NULL, 1, 0, NULL,            \
    "model dimension E (self_attn.embed_dim)" },                            \
  { "nhead", NN_KIND_INT, 0, NN_KEY_HAS_MIN, NULL, 1, 0, NULL,              \
    "attention heads" },                                                    \
  { "dim_feedforward", NN_KIND_INT, 0, NN_KEY_OPTIONAL | NN_KEY_HAS_MIN,    \
    "2048", 1, 0, NULL, "hidden size of the feed-forward block" },          \
  { "dropout", NN_KIND_FLOAT, 0, NN_KEY_OPTIONAL | NN_KEY_HAS_MIN           \
    | NN_KEY_HAS_MAX, "0.1", 0, 1, NULL, "dropout (training only)" },       \
  NN_ATT_ACTIVATION_KEY,                                                    \
  { "layer_norm_eps", NN_KIND_FLOAT, 0, NN_KEY_OPTIONAL | NN_KEY_HAS_MIN,   \
    "1e-05", 0, 0, NULL, "eps of the LayerNorm children" },                 \
  { "batch_first", NN_KIND_BOOL, 0, NN_KEY_OPTIONAL, "false", 0, 0, NULL,   \
    "tensors are [N, L, E] instead of [L, N, E]" },                         \
  { "norm_first", NN_KIND_BOOL, 0, NN_KEY_OPTIONAL, "false", 0, 0, NULL,    \
    "LayerNorm before each block (pre-norm) instead of after" }

static const NnSchemaKey layer_schema[] = { LAYER_KEYS };

#define MASK_ARG(name_, doc_)                                               \
  { name_, NN_ARG_TENSOR | NN_ARG_NONE, NN_ATT_MASK_DTYPES,                 \
    NN_ARG_OPTIONAL, "null", doc_ }

static const NnArgSpec encoder_layer_args[] = {
  { "src", NN_ARG_TENSOR, 0, 0, NULL, "[L, N, E], [N, L, E] or [L, E]" },
  MASK_ARG ("src_mask", "attention mask [L, L] or [N * nhead, L, L]"),
  MASK_ARG ("src_key_padding_mask", "[N, L]: True = padding"),
};

static const NnArgSpec decoder_layer_args[] = {
  { "tgt", NN_ARG_TENSOR, 0, 0, NULL, "[T, N, E], [N, T, E] or [T, E]" },
  { "memory", NN_ARG_TENSOR, 0, 0, NULL, "the encoder's output [S, N, E]" },
  MASK_ARG ("tgt_mask", "self-attention mask [T, T]"),
  MASK_ARG ("memory_mask", "cross-attention mask [T, S]"),
  MASK_ARG ("tgt_key_padding_mask", "[N, T]: True = padding"),
  MASK_ARG ("memory_key_padding_mask", "[N, S]: True = padding"),
};


static gboolean
layer_create (NnModule *self, GError **error)
{
  return TRUE;
}

static gboolean
check_children (NnModule *self, gboolean decoder, GError **error)
{
  static const struct { const char *name; const char *what; gboolean dec; } kids[] = {
    { "self_attn", "a MultiheadAttention", FALSE },
    { "multihead_attn", "a MultiheadAttention", TRUE },
    { "linear1", "a Linear", FALSE }, { "dropout", "a Dropout", FALSE },
    { "linear2", "a Linear", FALSE }, { "norm1", "a LayerNorm", FALSE },
    { "norm2", "a LayerNorm", FALSE }, { "norm3", "a LayerNorm", TRUE },
    { "dropout1", "a Dropout", FALSE }, { "dropout2", "a Dropout", FALSE },
    { "dropout3", "a Dropout", TRUE },
  };
  for (guint i = 0; i < G_N_ELEMENTS (kids); i++)
    if ((!kids[i].dec || decoder)
        && !nn_att_require_child (self, kids[i].name, kids[i].what, error))
      return FALSE;
  return TRUE;
}

static gboolean
encoder_layer_check (NnModule *self, GError **error)
{
  return check_children (self, FALSE, error);
}

static gboolean
decoder_layer_check (NnModule *self, GError **error)
{
  return check_children (self, TRUE, error);
}

/* Attention child @path on (q, kv, kv) with the masks, need_weights=False,
 * then @drop: the _sa_block / _mha_block of PyTorch. */
static NnTensor *
attention_block (NnCall *call, NnModule *self, const char *path,
                 const char *drop, NnTensor *q, NnTensor *kv, NnTensor *mask,
                 NnTensor *kpm, GError **error)
{
  NnValue *args = nn_value_new_tuple ();
  nn_value_append (args, nn_value_new_tensor (q));
  nn_value_append (args, nn_value_new_tensor (kv));
  nn_value_append (args, nn_value_new_tensor (kv));
  NnValue *kwargs = nn_value_new_dict ();
  nn_value_dict_set (kwargs, "attn_mask", nn_att_tensor_or_none (mask));
  nn_value_dict_set (kwargs, "key_padding_mask", nn_att_tensor_or_none (kpm));
  nn_value_dict_set (kwargs, "need_weights", nn_value_new_bool (FALSE));
  g_autoptr (NnTensor) a = nn_att_first (nn_att_call (call, self, path, args,
                                                      kwargs, error),
                                         path, error);
  return a ? nn_call_child (call, self, drop, a, error) : NULL;
}

/* linear2(dropout(act(linear1(x)))) then @drop: PyTorch's _ff_block. */
static NnTensor *
ff_block (NnCall *call, NnModule *self, const char *drop, NnTensor *x,
          GError **error)
{
  gboolean gelu = g_str_equal (nn_module_config_string (self, "activation"), "gelu");
  g_autoptr (NnTensor) a = nn_call_child (call, self, "linear1", x, error);
  if (!a)
    return NULL;
  g_autoptr (NnTensor) b = nn_att_activation (a, gelu);
  g_autoptr (NnTensor) c = nn_call_child (call, self, "dropout", b, error);
  if (!c)
    return NULL;
  g_autoptr (NnTensor) d = nn_call_child (call, self, "linear2", c, error);
  return d ? nn_call_child (call, self, drop, d, error) : NULL;
}

/* One residual step: pre-norm x + block(norm(x)) or post-norm
 * norm(x + block(x)); @block_kind 0 self-attention, 1 cross-attention,
 * 2 feed-forward.  Returns (transfer full). */
typedef struct {
  NnTensor *memory, *mask, *kpm;
} BlockArgs;

static NnTensor *
residual (NnCall *call, NnModule *self, int kind, const char *norm,
          const char *drop, NnTensor *x, const BlockArgs *ba, GError **error)
{
  gboolean pre = nn_module_config_bool (self, "norm_first");
  g_autoptr (NnTensor) in = pre ? nn_call_child (call, self, norm, x, error)
                                : nn_tensor_ref (x);
  if (!in)
    return NULL;
  g_autoptr (NnTensor) branch =
      kind == 2 ? ff_block (call, self, drop, in, error)
      : attention_block (call, self, kind == 0 ? "self_attn" : "multihead_attn",
                         drop, in, kind == 0 ? in : ba->memory, ba->mask,
                         ba->kpm, error);
  if (!branch)
    return NULL;
  g_autoptr (NnTensor) sum = nn_att_add (x, branch, error);
  if (!sum || pre)
    return g_steal_pointer (&sum);
  return nn_call_child (call, self, norm, sum, error);
}

static NnValue *
encoder_layer_forward (NnModule *self, NnCall *call, const NnArgs *args,
                       GError **error)
{
  BlockArgs sa = { NULL, nn_args_tensor (args, 1), nn_args_tensor (args, 2) };
  g_autoptr (NnTensor) x1 = residual (call, self, 0, "norm1", "dropout1",
                                      nn_args_tensor (args, 0), &sa, error);
  if (!x1)
    return NULL;
  return nn_lu_result (residual (call, self, 2, "norm2", "dropout2", x1, NULL,
                                 error), error);
}

static NnValue *
decoder_layer_forward (NnModule *self, NnCall *call, const NnArgs *args,
                       GError **error)
{
  NnTensor *memory = nn_args_tensor (args, 1);
  BlockArgs sa = { NULL, nn_args_tensor (args, 2), nn_args_tensor (args, 4) };
  BlockArgs ca = { memory, nn_args_tensor (args, 3), nn_args_tensor (args, 5) };
  g_autoptr (NnTensor) x1 = residual (call, self, 0, "norm1", "dropout1",
                                      nn_args_tensor (args, 0), &sa, error);
  if (!x1)
    return NULL;
  g_autoptr (NnTensor) x2 = residual (call, self, 1, "norm2", "dropout2", x1,
                                      &ca, error);
  if (!x2)
    return NULL;
  return nn_lu_result (residual (call, self, 2, "norm3", "dropout3", x2, NULL,
                                 error), error);
}

const NnLayerType nn_transformer_encoder_layer_type = {
  .struct_size = sizeof (NnLayerType),
  .name = "TransformerEncoderLayer",
  .doc = "self-attention and feed-forward blocks; children self_attn, "
         "linear1, dropout, linear2, norm1, norm2, dropout1, dropout2",
  .schema = layer_schema,
  .n_schema = G_N_ELEMENTS (layer_schema),
  .args = encoder_layer_args,
  .n_args = G_N_ELEMENTS (encoder_layer_args),
  .create = layer_create,
  .check = encoder_layer_check,
  .forward = encoder_layer_forward,
  .infer = encoder_layer_forward,
};

const NnLayerType nn_transformer_decoder_layer_type = {
  .struct_size = sizeof (NnLayerType),
  .name = "TransformerDecoderLayer",
  .doc = "self-attention, cross-attention and feed-forward blocks; children "
         "as the encoder layer's plus multihead_attn, norm3, dropout3",
  .schema = layer_schema,
  .n_schema = G_N_ELEMENTS (layer_schema),
  .args = decoder_layer_args,
  .n_args = G_N_ELEMENTS (decoder_layer_args),
  .create = layer_create,
  .check = decoder_layer_check,
  .forward = decoder_layer_forward,
  .infer = decoder_layer_forward,
};
