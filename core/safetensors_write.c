/* nnkit core: writes safetensors files, and any file that must be replaced
 * atomically: a flushed temp file beside the destination, then rename(). */
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

static gboolean
st_write_all (int fd, const void *buf, gsize len)
{
  const guint8 *p = buf;
  while (len > 0) {
    ssize_t w = write (fd, p, MIN (len, (gsize) G_MAXSSIZE));
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0) {
      if (w == 0)
        errno = EIO;
      return FALSE;
    }
    p += w;
    len -= (gsize) w;
  }
  return TRUE;
}

/* Tensor bytes in little-endian order, swapped in chunks on big-endian. */
static gboolean
st_write_tensor (int fd, const NnTensor *t)
{
  gsize nbytes = nn_tensor_nbytes (t);
  if (G_BYTE_ORDER == G_LITTLE_ENDIAN || nbytes == 0)
    return st_write_all (fd, t->data, nbytes);
  gsize esize = nn_dtype_size (t->dtype);
  guint8 chunk[4096];
  const guint8 *src = t->data;
  for (gsize off = 0; off < nbytes; off += sizeof chunk) {
    gsize len = MIN (sizeof chunk, nbytes - off);
    for (gsize i = 0; i < len; i += esize)
      for (gsize b = 0; b < esize; b++)
        chunk[i + b] = src[off + i + esize - 1 - b];
    if (!st_write_all (fd, chunk, len))
      return FALSE;
  }
  return TRUE;
}

/* --- pending files: written, flushed, not yet in place -------------------- */

struct _NnPendingFile {
  char *path;   /* destination */
  char *tmp;    /* temp file beside it; NULL once committed */
  GQuark domain;
  int code;
};

void
nn_pending_file_free (NnPendingFile *pf)
{
  if (pf == NULL)
    return;
  if (pf->tmp)
    unlink (pf->tmp);
  g_free (pf->tmp);
  g_free (pf->path);
  g_free (pf);
}

/* Creates the temp file; @fd_out receives its descriptor. */
static NnPendingFile *
pending_file_open (const char *path, GQuark domain, int code, int *fd_out,
                   GError **error)
{
  /* Beside the destination, so rename() stays on one file system and an
   * existing file is untouched until the very end. */
  char *tmp = g_strdup_printf ("%s.XXXXXX", path);
  int fd = g_mkstemp_full (tmp, O_WRONLY | O_CLOEXEC, 0644);
  if (fd < 0) {
    int e = errno;
    g_set_error (error, domain, code, "%s: cannot create a temporary file "
                 "beside it: %s", path, g_strerror (e));
    g_free (tmp);
    return NULL;
  }
  NnPendingFile *pf = g_new0 (NnPendingFile, 1);
  pf->path = g_strdup (path);
  pf->tmp = tmp;
  pf->domain = domain;
  pf->code = code;
  *fd_out = fd;
  return pf;
}

/* Flushes and closes @fd; @ok says whether writing it went well (errno
 * holds the cause if not).  On failure the temp file is removed. */
static NnPendingFile *
pending_file_finish (NnPendingFile *pf, int fd, gboolean ok, GError **error)
{
  const char *what = "write";
  int e = errno;
  if (ok) {
    what = "flush";
    ok = fsync (fd) == 0;
    e = errno;
  }
  if (close (fd) != 0 && ok) {
    e = errno;
    ok = FALSE;
  }
  if (!ok) {
    g_set_error (error, pf->domain, pf->code, "%s: cannot %s: %s", pf->path,
                 what, g_strerror (e));
    nn_pending_file_free (pf);
    return NULL;
  }
  return pf;
}

NnPendingFile *
nn_pending_file_new_data (const char *path, const void *data, gsize len,
                          GQuark domain, int code, GError **error)
{
  int fd;
  NnPendingFile *pf = pending_file_open (path, domain, code, &fd, error);
  if (pf == NULL)
    return NULL;
  return pending_file_finish (pf, fd, st_write_all (fd, data, len), error);
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
  NnPendingFile *pf = pending_file_open (path, NN_WEIGHTS_ERROR,
                                         NN_WEIGHTS_ERROR_IO, &fd, error);
  if (pf == NULL)
    return NULL;
  gboolean ok = st_write_all (fd, &hlen, 8) &&
                st_write_all (fd, header->str, header->len);
  for (guint i = 0; ok && i < n; i++)
    ok = st_write_tensor (fd, tensors[i]);
  return pending_file_finish (pf, fd, ok, error);
}

gboolean
nn_pending_file_check (NnPendingFile *pf, GError **error)
{
  /* rename() cannot replace a directory; say so before anything moves. */
  if (g_file_test (pf->path, G_FILE_TEST_IS_DIR)) {
    g_set_error (error, pf->domain, pf->code, "%s: cannot replace: it is a "
                 "directory", pf->path);
    return FALSE;
  }
  return TRUE;
}

gboolean
nn_pending_file_commit (NnPendingFile *pf, GError **error)
{
  g_return_val_if_fail (pf->tmp != NULL, FALSE);
  if (rename (pf->tmp, pf->path) != 0) {
    int e = errno;
    g_set_error (error, pf->domain, pf->code, "%s: cannot rename into place: "
                 "%s", pf->path, g_strerror (e));
    return FALSE; /* the temp file goes with nn_pending_file_free() */
  }
  g_clear_pointer (&pf->tmp, g_free);
  /* Makes the rename itself durable; failure here loses nothing. */
  g_autofree char *dir = g_path_get_dirname (pf->path);
  int fd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    (void) fsync (fd);
    close (fd);
  }
  return TRUE;
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
