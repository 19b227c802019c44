/* nnkit core: the zip layer of torch.save files, through libzip, whose
 * functions come from the table pth_zip_load.c fills on the first read.
 * Every read is bounded by what the central directory declares and by the
 * archive's own size, so a forged size cannot make us allocate without
 * limit. */
#include "pth-private.h"

#include <string.h>
#include <sys/stat.h>

/* Deflate cannot expand more than about 1032:1; anything claiming more is
 * forged. */
#define PTH_MAX_RATIO 1100u

struct _NnPthZip {
  char *path;
  const NnPthZipApi *lib; /* libzip, loaded on first use */
  zip_t *zip;
  char *prefix;     /* "archive/" */
  guint64 file_size;
};

void
nn_pth_zip_free (NnPthZip *z)
{
  if (z == NULL)
    return;
  if (z->zip)
    z->lib->zip_discard (z->zip);
  g_free (z->path);
  g_free (z->prefix);
  g_free (z);
}

/* The top folder holding data.pkl; torch names it after the file's stem
 * but readers must not rely on that. */
static gboolean
zip_find_prefix (NnPthZip *z, GError **error)
{
  zip_int64_t n = z->lib->zip_get_num_entries (z->zip, 0);
  gboolean torchscript = FALSE;
  for (zip_int64_t i = 0; i < n; i++) {
    const char *name = z->lib->zip_get_name (z->zip, (zip_uint64_t) i, 0);
    if (name == NULL)
      continue;
    const char *slash = strchr (name, '/');
    if (slash && slash != name && strcmp (slash + 1, "data.pkl") == 0) {
      z->prefix = g_strndup (name, (gsize) (slash - name + 1));
      return TRUE;
    }
    if (slash && strcmp (slash + 1, "constants.pkl") == 0)
      torchscript = TRUE;
  }
  if (torchscript)
    g_set_error (error, NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_HEADER,
                 "%s: a TorchScript archive (torch.jit.save), not a "
                 "torch.save file; save model.state_dict() with torch.save "
                 "instead", z->path);
  else
    g_set_error (error, NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_HEADER,
                 "%s: zip archive without a '<dir>/data.pkl' member "
                 "(%" G_GINT64_FORMAT " members): not a torch.save file",
                 z->path, (gint64) n);
  return FALSE;
}

NnPthZip *
nn_pth_zip_open (const char *path, GError **error)
{
  g_autoptr (NnPthZip) z = g_new0 (NnPthZip, 1);
  z->path = g_strdup (path);
  struct stat sb;
  if (stat (path, &sb) != 0 || !S_ISREG (sb.st_mode)) {
    g_set_error (error, NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_IO,
                 "%s: cannot open: not a readable regular file", path);
    return NULL;
  }
  z->file_size = (guint64) sb.st_size;
  z->lib = nn_pth_zip_api (path, error);
  if (z->lib == NULL)
    return NULL;
  int code = 0;
  z->zip = z->lib->zip_open (path, ZIP_RDONLY | ZIP_CHECKCONS, &code);
  if (z->zip == NULL) {
    zip_error_t ze;
    z->lib->zip_error_init_with_code (&ze, code);
    g_set_error (error, NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_HEADER,
                 "%s: broken zip archive (truncated or corrupt torch.save "
                 "file): %s", path, z->lib->zip_error_strerror (&ze));
    z->lib->zip_error_fini (&ze);
    return NULL;
  }
  if (!zip_find_prefix (z, error))
    return NULL;
  return g_steal_pointer (&z);
}

const char *
nn_pth_zip_prefix (NnPthZip *z)
{
  return z->prefix;
}

gboolean
nn_pth_zip_has (NnPthZip *z, const char *name)
{
  g_autofree char *full = g_strconcat (z->prefix, name, NULL);
  return z->lib->zip_name_locate (z->zip, full, 0) >= 0;
}

guint8 *
nn_pth_zip_read (NnPthZip *z, const char *name, gint64 expect,
                 gsize *len_out, GError **error)
{
  g_autofree char *full = g_strconcat (z->prefix, name, NULL);
  zip_stat_t st;
  z->lib->zip_stat_init (&st);
  if (z->lib->zip_stat (z->zip, full, 0, &st) != 0 ||
      !(st.valid & ZIP_STAT_SIZE) || !(st.valid & ZIP_STAT_COMP_SIZE)) {
    g_set_error (error, NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_NOT_FOUND,
                 "%s: no member '%s' in the archive", z->path, full);
    return NULL;
  }
  guint64 limit = MIN (z->file_size, (guint64) G_MAXUINT64 / PTH_MAX_RATIO)
                  * PTH_MAX_RATIO;
  if (st.size > limit || st.comp_size > z->file_size) {
    g_set_error (error, NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_OFFSETS,
                 "%s: member '%s' claims %" G_GUINT64_FORMAT " bytes (%"
                 G_GUINT64_FORMAT " compressed) in a %" G_GUINT64_FORMAT
                 "-byte archive: corrupt", z->path, full,
                 (guint64) st.size, (guint64) st.comp_size, z->file_size);
    return NULL;
  }
  guint64 want = st.size;
  if (expect >= 0) {
    if ((guint64) expect > st.size) {
      g_set_error (error, NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_OFFSETS,
                   "%s: member '%s' holds %" G_GUINT64_FORMAT " bytes, "
                   "expected at least %" G_GINT64_FORMAT, z->path, full,
                   (guint64) st.size, expect);
      return NULL;
    }
    want = (guint64) expect;
  }
  if (want > G_MAXSIZE - 1) {
    g_set_error (error, NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_OFFSETS,
                 "%s: member '%s' is too large for this machine", z->path,
                 full);
    return NULL;
  }
  guint8 *buf = g_try_malloc (MAX (want, 1));
  if (buf == NULL) {
    g_set_error (error, NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_IO,
                 "%s: out of memory reading %" G_GUINT64_FORMAT " bytes of "
                 "member '%s'", z->path, want, full);
    return NULL;
  }
  zip_file_t *f = z->lib->zip_fopen (z->zip, full, 0);
  zip_int64_t got = -1;
  const char *why = NULL;
  if (f == NULL) {
    why = z->lib->zip_strerror (z->zip);
  } else {
    got = z->lib->zip_fread (f, buf, want);
    if (got < 0)
      why = z->lib->zip_file_strerror (f);
  }
  if (got < 0 || (guint64) got != want) {
    g_set_error (error, NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_OFFSETS,
                 "%s: member '%s': read %" G_GINT64_FORMAT " of %"
                 G_GUINT64_FORMAT " bytes%s%s (truncated or corrupt archive)",
                 z->path, full, (gint64) MAX (got, 0), want,
                 why ? ": " : "", why ? why : "");
    if (f)
      z->lib->zip_fclose (f);
    g_free (buf);
    return NULL;
  }
  z->lib->zip_fclose (f);
  *len_out = (gsize) want;
  return buf;
}
