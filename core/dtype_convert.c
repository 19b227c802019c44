/* nnkit core: the dtypes a safetensors file may hold, and loading stored
 * elements into a tensor of the dtype a module wants. */
#include "safetensors-private.h"
#include "nn-private.h"

#include <string.h>

gboolean
nn_st_dtype_lookup (const char *name, NnDType *out)
{
  for (guint d = 0; d < NN_DTYPE_COUNT_; d++)
    if (strcmp (nn_dtype_name ((NnDType) d), name) == 0) {
      *out = (NnDType) d;
      return TRUE;
    }
  return FALSE;
}

/* Byte-swaps little-endian elements in place on a big-endian host. */
static void
to_native (guint8 *data, gsize n, gsize esize)
{
  if (G_BYTE_ORDER == G_LITTLE_ENDIAN || esize == 1)
    return;
  for (gsize i = 0; i < n; i++)
    for (gsize b = 0; b < esize / 2; b++) {
      guint8 tmp = data[i * esize + b];
      data[i * esize + b] = data[i * esize + esize - 1 - b];
      data[i * esize + esize - 1 - b] = tmp;
    }
}

NnTensor *
nn_st_load (NnDType from, const guint8 *src, const NnShape *shape,
            NnDType to)
{
  NnTensor *raw = nn_tensor_new (from, shape);
  if (!raw)
    return NULL;
  gsize n = (gsize) nn_shape_numel (shape);
  memcpy (raw->data, src, n * nn_dtype_size (from));
  to_native (raw->data, n, nn_dtype_size (from));
  NnTensor *out = nn_tensor_to_dtype (raw, to);
  nn_tensor_unref (raw);
  return out;
}
