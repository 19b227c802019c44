/* nnkit core: writes safetensors files through the save protocol of
 * save_protocol.c (a flushed temp file beside the destination, then
 * rename()). */
#include "nn-weights-private.h"
#include "safetensors-private.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* --- writer -------------------------------------------------------------- */

static void
json_append_string (GString *out, const char *s)
{
  g_string_append_c (out, '"');
  for (const unsigned char *p = (const unsigned char *) s; *p; p++) {
    if (*p == '"' || *p == '\\')
      g_string_append_printf (out, "\\%c", *p);
    else if (*p < 0x20)
      g_string_append_printf (out, "\\u%04x", *p);
    else
      g_string_append_c (out, (char) *p);
  }
  g_string_append_c (out, '"');
}

static gboolean
st_check_inputs (const char *path, const char *const *names,
                 NnTensor *const *tensors, guint n, GHashTable *metadata,
                 GError **error)
{
  g_autoptr (GHashTable) seen = g_hash_table_new (g_str_hash, g_str_equal);
  for (guint i = 0; i < n; i++) {
    const char *name = names[i];
    if (name == NULL || tensors[i] == NULL || !g_utf8_validate (name, -1, NULL) ||
        strcmp (name, NN_ST_METADATA_KEY) == 0) {
      g_set_error (error, NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_HEADER,
                   "%s: entry %u: tensor name '%s' is not usable (expected "
                   "UTF-8 other than '" NN_ST_METADATA_KEY "', with a tensor)",
                   path, i, name ? name : "(null)");
      return FALSE;
    }
    if (nn_tensor_is_meta (tensors[i])) {
      g_set_error (error, NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_HEADER,
                   "%s: tensor '%s' is a meta tensor (shape only, no data) "
                   "and cannot be saved", path, name);
      return FALSE;
    }
    if (!g_hash_table_add (seen, (gpointer) name)) {
      g_set_error (error, NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_HEADER,
                   "%s: tensor name '%s' is given twice", path, name);
      return FALSE;
    }
  }
  if (metadata) {
    GHashTableIter it;
    gpointer k, v;
    g_hash_table_iter_init (&it, metadata);
    while (g_hash_table_iter_next (&it, &k, &v)) {
      if (!g_utf8_validate (k, -1, NULL) || v == NULL ||
          !g_utf8_validate (v, -1, NULL)) {
        g_set_error (error, NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_HEADER,
                     "%s: metadata entry '%s' is not a UTF-8 string", path,
                     (const char *) k);
        return FALSE;
      }
    }
  }
  return TRUE;
}

static int
st_str_ptr_cmp (const void *a, const void *b)
{
  return strcmp (*(const char *const *) a, *(const char *const *) b);
}

/* The header as PyTorch's safetensors writes it: compact JSON,
 * __metadata__ first (keys sorted, so saves are reproducible), tensors in
 * the given order, padded with spaces to a multiple of 8 so that the data
 * section stays 8-byte aligned. */
static GString *
st_build_header (const char *const *names, NnTensor *const *tensors, guint n,
                 GHashTable *metadata)
{
  GString *h = g_string_new ("{");
  gboolean first = TRUE;
  if (metadata && g_hash_table_size (metadata) > 0) {
    g_autofree gpointer *keys = g_hash_table_get_keys_as_array (metadata, NULL);
    guint nk = g_hash_table_size (metadata);
    qsort (keys, nk, sizeof (gpointer), st_str_ptr_cmp);
    g_string_append (h, "\"" NN_ST_METADATA_KEY "\":{");
    for (guint i = 0; i < nk; i++) {
      if (i)
        g_string_append_c (h, ',');
      json_append_string (h, keys[i]);
      g_string_append_c (h, ':');
      json_append_string (h, g_hash_table_lookup (metadata, keys[i]));
    }
    g_string_append_c (h, '}');
    first = FALSE;
  }
  guint64 offset = 0;
  for (guint i = 0; i < n; i++) {
    const NnTensor *t = tensors[i];
    if (!first)
      g_string_append_c (h, ',');
    first = FALSE;
    json_append_string (h, names[i]);
    g_string_append_printf (h, ":{\"dtype\":\"%s\",\"shape\":[",
                            nn_dtype_name (t->dtype));
    for (guint d = 0; d < t->shape.ndim; d++)
      g_string_append_printf (h, "%s%" G_GINT64_FORMAT, d ? "," : "",
                              t->shape.dims[d]);
    guint64 end = offset + nn_tensor_nbytes (t);
    g_string_append_printf (h, "],\"data_offsets\":[%" G_GUINT64_FORMAT ",%"
                            G_GUINT64_FORMAT "]}", offset, end);
    offset = end;
  }
  g_string_append_c (h, '}');
  while (h->len % 8 != 0)
    g_string_append_c (h, ' ');
  return h;
}

/* Tensor bytes in little-endian order, swapped in chunks on big-endian. */
static gboolean
st_write_tensor (int fd, const NnTensor *t)
{
  gsize nbytes = nn_tensor_nbytes (t);
  if (G_BYTE_ORDER == G_LITTLE_ENDIAN || nbytes == 0)
    return nn_write_all_fd (fd, t->data, nbytes);
  gsize esize = nn_dtype_size (t->dtype);
  guint8 chunk[4096];
  const guint8 *src = t->data;
  for (gsize off = 0; off < nbytes; off += sizeof chunk) {
    gsize len = MIN (sizeof chunk, nbytes - off);
    for (gsize i = 0; i < len; i += esize)
      for (gsize b = 0; b < esize; b++)
        chunk[i + b] = src[off + i + esize - 1 - b];
    if (!nn_write_all_fd (fd, chunk, len))
      return FALSE;
  }
  return TRUE;
}

NnPendingFile *
nn_pending_file_new_safetensors (const char *path, const char *const *names,
                                 NnTensor *const *tensors, guint n,
                                 GHashTable *metadata, GError **error)
{
  if (!st_check_inputs (path, names, tensors, n, metadata, error))
    return NULL;
  g_autoptr (GString) header = st_build_header (names, tensors, n, metadata);
  guint64 hlen = GUINT64_TO_LE ((guint64) header->len);
  int fd;
  NnPendingFile *pf = nn_pending_file_open (path, NN_WEIGHTS_ERROR,
                                            NN_WEIGHTS_ERROR_IO, &fd, error);
  if (pf == NULL)
    return NULL;
  gboolean ok = nn_write_all_fd (fd, &hlen, 8) &&
                nn_write_all_fd (fd, header->str, header->len);
  for (guint i = 0; ok && i < n; i++)
    ok = st_write_tensor (fd, tensors[i]);
  return nn_pending_file_finish (pf, fd, ok, error);
}

gboolean
nn_safetensors_write (const char *path, const char *const *names,
                      NnTensor *const *tensors, guint n,
                      GHashTable *metadata, GError **error)
{
  g_return_val_if_fail (path != NULL, FALSE);
  g_return_val_if_fail (n == 0 || (names != NULL && tensors != NULL), FALSE);
  NnPendingFile *pf = nn_pending_file_new_safetensors (path, names, tensors, n,
                                                       metadata, error);
  if (pf == NULL)
    return FALSE;
  gboolean ok = nn_pending_file_commit (pf, error);
  nn_pending_file_free (pf);
  return ok;
}
