/* nnkit core: an NnSafetensors built in memory.  Tensors are written one
 * at a time into an anonymous memory file and the file is then mapped, so
 * only one tensor is ever held twice and the result behaves exactly like a
 * mapped safetensors file. */
#include "weights-private.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* Entries start on 64-byte boundaries: aligned for every dtype and for
 * the kernels that read weights in place. */
#define BUILDER_ALIGN 64u

struct _NnStBuilder {
  char *path;
  int fd;
  guint64 size;        /* bytes written so far, aligned */
  guint8 *pending;     /* the last entry's buffer, not yet written */
  gsize pending_len;
  guint64 pending_at;
  GPtrArray *entries;  /* NnStEntry* */
  GHashTable *by_name; /* name -> NnStEntry* */
  GHashTable *metadata;
};

static void
entry_free (gpointer p)
{
  NnStEntry *e = p;
  g_free (e->name);
  g_free (e);
}

void
nn_st_builder_free (NnStBuilder *b)
{
  if (b == NULL)
    return;
  if (b->fd >= 0)
    close (b->fd);
  g_free (b->pending);
  g_free (b->path);
  if (b->entries)
    g_ptr_array_unref (b->entries);
  if (b->by_name)
    g_hash_table_unref (b->by_name);
  if (b->metadata)
    g_hash_table_unref (b->metadata);
  g_free (b);
}

NnStBuilder *
nn_st_builder_new (const char *path, GError **error)
{
  int fd = memfd_create ("nnkit-weights", MFD_CLOEXEC);
  if (fd < 0) {
    int e = errno;
    g_set_error (error, NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_IO,
                 "%s: cannot create memory for the tensors: %s", path,
                 g_strerror (e));
    return NULL;
  }
  NnStBuilder *b = g_new0 (NnStBuilder, 1);
  b->fd = fd;
  b->path = g_strdup (path);
  b->entries = g_ptr_array_new_with_free_func (entry_free);
  b->by_name = g_hash_table_new (g_str_hash, g_str_equal);
  b->metadata = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                       g_free);
  return b;
}

static gboolean
builder_flush (NnStBuilder *b, GError **error)
{
  const guint8 *p = b->pending;
  gsize left = b->pending_len;
  off_t at = (off_t) b->pending_at;
  while (left > 0) {
    ssize_t w = pwrite (b->fd, p, left, at);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0) {
      int e = errno;
      g_set_error (error, NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_IO,
                   "%s: cannot store the tensors in memory: %s", b->path,
                   g_strerror (e));
      return FALSE;
    }
    p += w;
    left -= (gsize) w;
    at += w;
  }
  g_clear_pointer (&b->pending, g_free);
  b->pending_len = 0;
  return TRUE;
}

guint8 *
nn_st_builder_add (NnStBuilder *b, const char *name, NnDType dtype,
                   const NnShape *shape, GError **error)
{
  if (g_hash_table_contains (b->by_name, name)) {
    g_set_error (error, NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_HEADER,
                 "%s: key '%s' appears twice", b->path, name);
    return NULL;
  }
  if (!builder_flush (b, error))
    return NULL;
  guint64 n = 1, nbytes;
  for (guint i = 0; i < shape->ndim; i++)
    if (shape->dims[i] < 0 ||
        __builtin_mul_overflow (n, (guint64) shape->dims[i], &n))
      goto too_big;
  if (__builtin_mul_overflow (n, (guint64) nn_dtype_size (dtype), &nbytes)
      || nbytes > (guint64) G_MAXINT64 || nbytes > G_MAXSIZE / 2)
    goto too_big;
  b->pending = g_try_malloc0 (MAX (nbytes, 1));
  if (b->pending == NULL) {
    g_set_error (error, NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_IO,
                 "%s: out of memory for tensor '%s' (%" G_GUINT64_FORMAT
                 " bytes)", b->path, name, nbytes);
    return NULL;
  }
  b->pending_len = (gsize) nbytes;
  b->pending_at = b->size;

  NnStEntry *e = g_new0 (NnStEntry, 1);
  e->name = g_strdup (name);
  e->dtype = dtype;
  e->shape = *shape;
  e->begin = b->size;
  e->end = b->size + nbytes;
  g_ptr_array_add (b->entries, e);
  g_hash_table_insert (b->by_name, e->name, e);
  b->size = (e->end + BUILDER_ALIGN - 1) / BUILDER_ALIGN * BUILDER_ALIGN;
  return b->pending;

too_big:
  g_set_error (error, NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_SHAPE,
               "%s: tensor '%s': byte size overflows", b->path, name);
  return NULL;
}

void
nn_st_builder_set_metadata (NnStBuilder *b, const char *key,
                            const char *value)
{
  g_hash_table_replace (b->metadata, g_strdup (key), g_strdup (value));
}

gboolean
nn_st_builder_has_metadata (NnStBuilder *b, const char *key)
{
  return g_hash_table_contains (b->metadata, key);
}

NnSafetensors *
nn_st_builder_finish (NnStBuilder *b, GError **error)
{
  g_autoptr (NnStBuilder) owned = b;
  if (!builder_flush (b, error))
    return NULL;
  /* One spare page so that even an empty map has contents to point at. */
  if (ftruncate (b->fd, (off_t) (b->size + BUILDER_ALIGN)) != 0) {
    int e = errno;
    g_set_error (error, NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_IO,
                 "%s: cannot size the tensors' memory: %s", b->path,
                 g_strerror (e));
    return NULL;
  }
  g_autoptr (GError) merr = NULL;
  GMappedFile *map = g_mapped_file_new_from_fd (b->fd, TRUE, &merr);
  if (map == NULL) {
    g_set_error (error, NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_IO,
                 "%s: cannot map the tensors' memory: %s", b->path,
                 merr->message);
    return NULL;
  }
  NnSafetensors *st = g_new0 (NnSafetensors, 1);
  st->path = g_steal_pointer (&b->path);
  st->map = map;
  st->data = (const guint8 *) g_mapped_file_get_contents (map);
  st->data_len = (gsize) b->size;
  st->entries = g_steal_pointer (&b->entries);
  st->by_name = g_steal_pointer (&b->by_name);
  st->metadata = g_steal_pointer (&b->metadata);
  return st;
}
