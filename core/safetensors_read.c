/* nnkit core: opens a safetensors file by mapping it, and hands out its
 * tensors: borrowed from the mapping when possible, else converted. */
#include "safetensors-private.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void
st_entry_free (gpointer p)
{
  NnStEntry *e = p;
  g_free (e->name);
  g_free (e);
}

/* The mapping as borrowed tensors hold it: one reference each. */
typedef struct _NnStOrigin {
  gint ref;
  GMappedFile *map;
  gboolean is_file;
  guint64 id[5];
} NnStOrigin;

static void
origin_unref (gpointer p)
{
  NnStOrigin *o = p;
  if (!g_atomic_int_dec_and_test (&o->ref))
    return;
  g_mapped_file_unref (o->map);
  g_free (o);
}

void
nn_safetensors_free (NnSafetensors *st)
{
  if (st == NULL)
    return;
  g_free (st->path);
  if (st->map)
    g_mapped_file_unref (st->map);
  if (st->origin)
    origin_unref (st->origin);
  if (st->entries)
    g_ptr_array_unref (st->entries);
  if (st->by_name)
    g_hash_table_unref (st->by_name);
  if (st->metadata)
    g_hash_table_unref (st->metadata);
  g_free (st);
}

static GMappedFile *
st_map (const char *path, guint64 id[5], GError **error)
{
  int fd = open (path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int e = errno;
    g_set_error (error, NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_IO,
                 "%s: cannot open: %s", path, g_strerror (e));
    return NULL;
  }
  struct stat sb;
  if (fstat (fd, &sb) != 0 || !S_ISREG (sb.st_mode)) {
    g_set_error (error, NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_IO,
                 "%s: not a regular file", path);
    close (fd);
    return NULL;
  }
  id[0] = (guint64) sb.st_dev;
  id[1] = (guint64) sb.st_ino;
  id[2] = (guint64) sb.st_size;
  id[3] = (guint64) sb.st_mtim.tv_sec * G_GUINT64_CONSTANT (1000000000)
          + (guint64) sb.st_mtim.tv_nsec;
  id[4] = (guint64) sb.st_ctim.tv_sec * G_GUINT64_CONSTANT (1000000000)
          + (guint64) sb.st_ctim.tv_nsec;
  g_autoptr (GError) merr = NULL;
  /* A private writable mapping: tensors borrowed from it are flagged
   * read-only, but a stray write then costs a copied page, not a crash,
   * and never reaches the file. */
  GMappedFile *map = g_mapped_file_new_from_fd (fd, TRUE, &merr);
  close (fd); /* the mapping outlives the descriptor */
  if (map == NULL)
    g_set_error (error, NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_IO,
                 "%s: cannot map: %s", path, merr->message);
  return map;
}

NnSafetensors *
nn_safetensors_open (const char *path, GError **error)
{
  g_return_val_if_fail (path != NULL, NULL);
  g_autoptr (NnSafetensors) st = g_new0 (NnSafetensors, 1);
  st->path = g_strdup (path);
  st->entries = g_ptr_array_new_with_free_func (st_entry_free);
  st->by_name = g_hash_table_new (g_str_hash, g_str_equal);
  st->metadata = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  st->map = st_map (path, st->file_id, error);
  if (st->map == NULL)
    return NULL;
  st->has_file_id = TRUE;

  const guint8 *bytes = (const guint8 *) g_mapped_file_get_contents (st->map);
  gsize size = g_mapped_file_get_length (st->map);
  if (size < 8) {
    g_set_error (error, NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_HEADER,
                 "%s: file is %" G_GSIZE_FORMAT " bytes, too short for the "
                 "8-byte header length (not a safetensors file?)", path, size);
    return NULL;
  }
  guint64 n;
  memcpy (&n, bytes, 8);
  n = GUINT64_FROM_LE (n);
  if (n > NN_SAFETENSORS_MAX_HEADER) {
    g_set_error (error, NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_HEADER,
                 "%s: header length %" G_GUINT64_FORMAT " exceeds the limit "
                 "of %u bytes (not a safetensors file?)", path, n,
                 NN_SAFETENSORS_MAX_HEADER);
    return NULL;
  }
  if (n > size - 8) {
    g_set_error (error, NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_HEADER,
                 "%s: header length %" G_GUINT64_FORMAT " runs past the end "
                 "of the file (%" G_GSIZE_FORMAT " bytes, expected at least %"
                 G_GUINT64_FORMAT ")", path, n, size, n + 8);
    return NULL;
  }
  st->data = bytes + 8 + n;
  st->data_len = size - 8 - (gsize) n;
  if (!nn_st_parse_header (st, (const char *) bytes + 8, (gsize) n, error))
    return NULL;
  return g_steal_pointer (&st);
}

guint
nn_safetensors_n_tensors (NnSafetensors *st)
{
  g_return_val_if_fail (st != NULL, 0);
  return st->entries->len;
}

const char *
nn_safetensors_name_at (NnSafetensors *st, guint i)
{
  g_return_val_if_fail (st != NULL && i < st->entries->len, NULL);
  return ((NnStEntry *) st->entries->pdata[i])->name;
}

const char *
nn_safetensors_get_info (NnSafetensors *st, const char *name,
                         NnShape *shape_out)
{
  g_return_val_if_fail (st != NULL && name != NULL, NULL);
  NnStEntry *e = g_hash_table_lookup (st->by_name, name);
  if (e == NULL)
    return NULL;
  if (shape_out)
    *shape_out = e->shape;
  return nn_dtype_name (e->dtype);
}

const char *
nn_safetensors_get_metadata (NnSafetensors *st, const char *key)
{
  g_return_val_if_fail (st != NULL && key != NULL, NULL);
  return g_hash_table_lookup (st->metadata, key);
}

gboolean
nn_st_is_mapping_release (GDestroyNotify release)
{
  return release == origin_unref;
}

gboolean
nn_st_origin_key (gpointer origin, const void *data, guint64 key[6])
{
  NnStOrigin *o = origin;
  const guint8 *base = (const guint8 *) g_mapped_file_get_contents (o->map);

  /* Whole-second times (a file system that keeps no more) would not tell
   * two writes within one second apart: no key then. */
  guint64 ns = G_GUINT64_CONSTANT (1000000000);
  if (!o->is_file || (o->id[3] % ns == 0 && o->id[4] % ns == 0))
    return FALSE;
  memcpy (key, o->id, sizeof o->id);
  key[5] = (guint64) ((const guint8 *) data - base);
  return TRUE;
}

static NnStOrigin *
st_origin (NnSafetensors *st)
{
  if (!st->origin)
    {
      NnStOrigin *o = g_new0 (NnStOrigin, 1);
      o->ref = 1;
      o->map = g_mapped_file_ref (st->map);
      o->is_file = st->has_file_id;
      memcpy (o->id, st->file_id, sizeof o->id);
      st->origin = o;
    }
  g_atomic_int_inc (&st->origin->ref);
  return st->origin;
}

NnTensor *
nn_safetensors_get (NnSafetensors *st, const char *name, NnDType dtype,
                    GError **error)
{
  g_return_val_if_fail (st != NULL && name != NULL, NULL);
  g_return_val_if_fail ((guint) dtype < NN_DTYPE_COUNT_, NULL);
  NnStEntry *e = g_hash_table_lookup (st->by_name, name);
  if (e == NULL) {
    g_set_error (error, NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_NOT_FOUND,
                 "%s: no tensor '%s' in the file (it holds %u)", st->path,
                 name, st->entries->len);
    return NULL;
  }
  const guint8 *src = st->data + e->begin;
  gsize n = (gsize) nn_shape_numel (&e->shape);

  /* Integers and bools are read from integer storage only: rounding
   * floats into an index or a mask would hide a wrong file. */
  if (!nn_dtype_is_float (dtype) && nn_dtype_is_float (e->dtype)) {
    g_set_error (error, NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_DTYPE,
                 "%s: tensor '%s' is %s, but %s %s tensor is expected "
                 "(floating point values are not converted to integers)",
                 st->path, name, nn_dtype_name (e->dtype),
                 strchr ("FI", nn_dtype_name (dtype)[0]) ? "an" : "a",
                 nn_dtype_name (dtype));
    return NULL;
  }

  /* Zero-copy: the tensor borrows the mapping and keeps it alive. */
  if (G_BYTE_ORDER == G_LITTLE_ENDIAN && e->dtype == dtype &&
      ((guintptr) src % nn_dtype_size (dtype)) == 0 && n > 0)
    return nn_tensor_new_borrowed (dtype, &e->shape, (gpointer) src,
                                   TRUE, origin_unref, st_origin (st));

  NnTensor *t = nn_st_load (e->dtype, src, &e->shape, dtype);
  if (!t)
    g_set_error (error, NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_SHAPE,
                 "%s: tensor '%s': out of memory for %" G_GSIZE_FORMAT
                 " elements", st->path, name, n);
  return t;
}
