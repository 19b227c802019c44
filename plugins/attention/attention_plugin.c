/* attention plugin: entry point.  Registers MultiheadAttention and the
 * Transformer composites. */
#include "attention.h"

static const NnLayerType *const attention_types[] = {
  &nn_multihead_attention_type,
  &nn_transformer_encoder_layer_type,
  &nn_transformer_decoder_layer_type,
  &nn_transformer_encoder_type,
  &nn_transformer_decoder_type,
  &nn_transformer_type,
};

static gboolean
attention_init (NnPlugin *plugin, GError **error)
{
  for (gsize i = 0; i < G_N_ELEMENTS (attention_types); i++)
    if (!nn_plugin_register_type (plugin, attention_types[i], error))
      return FALSE;
  return TRUE;
}

NN_PLUGIN_DEFINE ("attention", "0.1.0", "MIT",
                  "MultiheadAttention, TransformerEncoder/DecoderLayer, "
                  "TransformerEncoder/Decoder and Transformer", attention_init)
