/* embedding plugin: entry point.  Registers Embedding, EmbeddingBag and
 * F.embedding; each lives in its own file. */
#include "embedding.h"

static const NnLayerType *const embedding_types[] = {
  &nn_embedding_type,
  &nn_embedding_bag_type,
  &nn_embedding_functional_type,
};

static gboolean
embedding_init (NnPlugin *plugin, GError **error)
{
  for (gsize i = 0; i < G_N_ELEMENTS (embedding_types); i++)
    if (!nn_plugin_register_type (plugin, embedding_types[i], error))
      return FALSE;
  return TRUE;
}

NN_PLUGIN_DEFINE ("embedding", "0.1.0", "MIT",
                  "Embedding, EmbeddingBag and F.embedding", embedding_init)
