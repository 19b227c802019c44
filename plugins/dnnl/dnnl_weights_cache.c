/* dnnl plugin: reordered weights kept on disk between processes.  A
 * process's first forward reorders every weight into its primitive's
 * layout (resnet18: 44.6 MB, about a third of `nnctl run`'s CPU time);
 * the next process with the same weights and layouts maps the file the
 * first one wrote instead, straight from the page cache.
 *
 * One file per reorder in $XDG_CACHE_HOME/nnkit/dnnl-weights/, named by
 * a 128-bit hash of both layouts and of the plain weights: the weights
 * file's identity and offset when they are read in place from one
 * (nn_tensor_get_file_key(): a rewritten file has a new mtime), else
 * their bytes; it holds a header page (with a checksum of the contents,
 * checked before use: a damaged entry is reordered again, never served)
 * and the reordered bytes.  Only until the process first
 * replaces weights (a fused rebuild, training's changed weights): what
 * start-up reorders is cached, a training loop writes nothing.  The
 * directory is kept under NN_DNNL_WEIGHTS_CACHE_MB (default 1024) by
 * removing the least recently used files; NN_DNNL_WEIGHTS_CACHE=off turns
 * the cache off.  Any failure (unwritable directory, a short or foreign
 * file) falls back to reordering. */
#include "dnnl-private.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>
#include <xxh_x86dispatch.h>

#define HEADER 4096
#define MAGIC "nnkit-dnnl-weights-3"   /* -1 had no checksum, -2 another hash */
/* A temp file older than this is a crashed writer's, removed when the
 * directory is trimmed (a live writer's is seconds old). */
#define STALE_TEMP_USEC ((gint64) G_USEC_PER_SEC * 3600)

static gint stopped;    /* atomic: weights were replaced, or off */

static gboolean
enabled (void)
{
  static gsize once;
  static gboolean on;

  if (g_once_init_enter (&once))
    {
      const char *v = g_getenv ("NN_DNNL_WEIGHTS_CACHE");
      on = !(v && (g_ascii_strcasecmp (v, "off") == 0 || strcmp (v, "0") == 0));
      g_once_init_leave (&once, 1);
    }
  return on && !g_atomic_int_get (&stopped);
}

void
nn_dnnl_weights_cache_stop (void)
{
  g_atomic_int_set (&stopped, 1);
}

/* --- the hash: XXH3, 128 bits, streamed over the key's fields -------- */

/* xxHash's XXH3 (Debian's libxxhash, dispatched to this CPU's widest
 * vectors): the checksum of every mapped entry runs on each start-up, and
 * at about 12 GB/s it keeps up with the page faults that bring the bytes
 * in, where the multiply-rotate hash it replaced ran at 7.6 (measured
 * over 1 GB of entries: 87 against 141 ms). */
static void
hash_bytes (XXH3_state_t *s, const void *data, gsize n)
{
  XXH3_128bits_update (s, data, n);
}

/* The fields a memory descriptor's layout consists of (the struct's
 * padding bytes are left out: they need not be zero). */
static void
hash_md (XXH3_state_t *s, const dnnl_memory_desc_t *md)
{
  hash_bytes (s, &md->ndims, sizeof md->ndims);
  hash_bytes (s, md->dims, sizeof md->dims[0] * md->ndims);
  hash_bytes (s, md->padded_dims, sizeof md->padded_dims[0] * md->ndims);
  hash_bytes (s, md->padded_offsets, sizeof md->padded_offsets[0] * md->ndims);
  hash_bytes (s, &md->data_type, sizeof md->data_type);
  hash_bytes (s, &md->offset0, sizeof md->offset0);
  hash_bytes (s, &md->format_kind, sizeof md->format_kind);
  if (md->format_kind == dnnl_blocked)
    {
      const dnnl_blocking_desc_t *b = &md->format_desc.blocking;
      hash_bytes (s, b->strides, sizeof b->strides[0] * md->ndims);
      hash_bytes (s, &b->inner_nblks, sizeof b->inner_nblks);
      hash_bytes (s, b->inner_blks, sizeof b->inner_blks[0] * b->inner_nblks);
      hash_bytes (s, b->inner_idxs, sizeof b->inner_idxs[0] * b->inner_nblks);
    }
  else if (md->format_kind == dnnl_format_kind_wino)
    {
      /* Winograd's transformed weights (dnnl_conv2d.c): field by field,
       * as the struct ends in padding. */
      const dnnl_wino_desc_t *w = &md->format_desc.wino_desc;
      const gint64 f[] = { w->wino_format, w->r, w->alpha, w->ic, w->oc,
                           w->ic_block, w->oc_block, w->ic2_block,
                           w->oc2_block, (gint64) w->size };
      hash_bytes (s, f, sizeof f);
      hash_bytes (s, &w->adj_scale, sizeof w->adj_scale);
    }
  hash_bytes (s, &md->extra.flags, sizeof md->extra.flags);
}

gboolean
nn_dnnl_weights_cache_key (const dnnl_memory_desc_t *from, const void *data,
                           NnTensor *plain, const void *derived,
                           gsize derived_len, const dnnl_memory_desc_t *to,
                           NnDnnlCacheKey *key)
{
  XXH3_state_t *s;
  guint64 file[6];

  /* From a plain layout into a blocked or Winograd one only: anything
   * else is reordered every time. */
  if (!enabled () || from->format_kind != dnnl_blocked
      || (to->format_kind != dnnl_blocked
          && to->format_kind != dnnl_format_kind_wino))
    return FALSE;
  /* Allocated: the state's layout is private to the library's version. */
  s = XXH3_createState ();
  if (!s || XXH3_128bits_reset (s) != XXH_OK)
    {
      XXH3_freeState (s);
      return FALSE;
    }
  hash_md (s, from);
  hash_md (s, to);
  /* Weights read in place from a file are named by the file's identity
   * and their offset, without reading them (a fifth of the start-up's
   * weight work); anything else by its bytes. */
  if (plain && (derived || nn_tensor_f32 (plain) == data)
      && nn_tensor_get_file_key (plain, file))
    {
      static const char tag[] = "file";
      hash_bytes (s, tag, sizeof tag);
      hash_bytes (s, file, sizeof file);
      if (derived)
        {
          /* Values made from the file's with these bytes (a folded
           * BatchNorm's scale): named without making them. */
          static const char dtag[] = "derived";
          hash_bytes (s, dtag, sizeof dtag);
          hash_bytes (s, derived, derived_len);
        }
    }
  else if (data)
    hash_bytes (s, data, dnnl_memory_desc_get_size (from));
  else
    {
      XXH3_freeState (s);
      return FALSE;
    }
  XXH128_hash_t h = XXH3_128bits_digest (s);
  XXH3_freeState (s);
  key->h[0] = h.high64;
  key->h[1] = h.low64;
  return TRUE;
}

/* --- files ------------------------------------------------------------ */

static char *
cache_dir (void)
{
  return g_build_filename (g_get_user_cache_dir (), "nnkit", "dnnl-weights",
                           NULL);
}

static char *
entry_path (const NnDnnlCacheKey *key)
{
  g_autofree char *dir = cache_dir ();
  g_autofree char *name = g_strdup_printf ("%016" G_GINT64_MODIFIER "x%016"
                                           G_GINT64_MODIFIER "x.w",
                                           key->h[0], key->h[1]);
  return g_build_filename (dir, name, NULL);
}

/* The contents' checksum (2 to 4 ms for `nnctl run resnet18`'s 45 MB,
 * page faults included; a reorder of them takes about 26 ms). */
static void
checksum (const void *data, gsize bytes, guint64 out[2])
{
  XXH128_hash_t h = XXH3_128bits (data, bytes);
  out[0] = h.high64;
  out[1] = h.low64;
}

/* The header page: magic, key, size, then the contents' checksum at
 * SUM_AT, compared separately (it needs the contents read). */
#define SUM_AT 56

static void
header_fill (char *h, const NnDnnlCacheKey *key, gsize bytes,
             const guint64 sum[2])
{
  memset (h, 0, HEADER);
  memcpy (h, MAGIC, sizeof MAGIC);
  memcpy (h + 32, key->h, sizeof key->h);
  guint64 n = bytes;
  memcpy (h + 48, &n, sizeof n);
  memcpy (h + SUM_AT, sum, 2 * sizeof sum[0]);
}

void *
nn_dnnl_weights_cache_map (const NnDnnlCacheKey *key, gsize bytes)
{
  g_autofree char *path = entry_path (key);
  char want[HEADER];
  struct stat st;
  int fd = open (path, O_RDONLY | O_CLOEXEC);

  if (fd < 0)
    return NULL;
  if (fstat (fd, &st) != 0 || (guint64) st.st_size != HEADER + (guint64) bytes)
    {
      close (fd);
      return NULL;
    }
  /* Private and writable: oneDNN zero-fills a blocked layout's padding
   * when the buffer becomes a memory's handle (already zero in the file,
   * a copied page at most); nothing reaches the file. */
  guint8 *p = mmap (NULL, HEADER + bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE,
                    fd, 0);
  close (fd);
  if (p == MAP_FAILED)
    return NULL;
  guint64 stored[2], sum[2];
  memcpy (stored, p + SUM_AT, sizeof stored);
  header_fill (want, key, bytes, stored);
  if (memcmp (p, want, HEADER) != 0)
    {
      munmap (p, HEADER + bytes);
      return NULL;
    }
  /* A damaged entry (a flipped bit, a page of zeros) of the right size
   * would otherwise become the model's weights without a word. */
  checksum (p + HEADER, bytes, sum);
  if (memcmp (sum, stored, sizeof sum) != 0)
    {
      g_debug ("%s: contents do not match their checksum; reordering again", path);
      munmap (p, HEADER + bytes);
      return NULL;
    }
  /* Least recently used goes first when the directory is trimmed. */
  (void) utimensat (AT_FDCWD, path, NULL, 0);
  return p + HEADER;
}

void
nn_dnnl_weights_cache_unmap (void *data, gsize bytes)
{
  munmap ((guint8 *) data - HEADER, HEADER + bytes);
}

typedef struct {
  char *path;
  gint64 size;
  gint64 mtime;
} Entry;

static gint
older_first (gconstpointer a, gconstpointer b)
{
  const Entry *x = a, *y = b;
  return x->mtime < y->mtime ? -1 : x->mtime > y->mtime;
}

/* Removes the least recently used entries until @adding more bytes fit
 * under the cap. */
static gint64
cap_bytes (void)
{
  const char *v = g_getenv ("NN_DNNL_WEIGHTS_CACHE_MB");
  guint64 cap_mb = 1024;
  if (v && !g_ascii_string_to_unsigned (v, 10, 0, G_MAXUINT32, &cap_mb, NULL))
    cap_mb = 1024;
  return (gint64) cap_mb << 20;
}

/* Whether @name is a temp file of an entry being written ("*.w.XXXXXX",
 * nn_dnnl_weights_cache_store). */
static gboolean
is_temp_name (const char *name)
{
  const char *dot = strrchr (name, '.');
  return dot && dot - name > 2 && strlen (dot + 1) == 6
         && strncmp (dot - 2, ".w", 2) == 0;
}

static void
trim_dir (const char *dir, gsize adding, gint64 cap)
{
  gint64 total = (gint64) adding, now = g_get_real_time ();
  GDir *d = g_dir_open (dir, 0, NULL);
  GArray *all = g_array_new (FALSE, FALSE, sizeof (Entry));
  for (const char *n; d && (n = g_dir_read_name (d));)
    {
      Entry e = { g_build_filename (dir, n, NULL), 0, 0 };
      struct stat st;
      gboolean temp = is_temp_name (n);
      if ((!temp && !g_str_has_suffix (n, ".w")) || lstat (e.path, &st) != 0
          || !S_ISREG (st.st_mode))
        {
          g_free (e.path);
          continue;
        }
      e.size = st.st_size;
      e.mtime = (gint64) st.st_mtim.tv_sec * G_USEC_PER_SEC
                + st.st_mtim.tv_nsec / 1000;
      /* A crashed writer's leftover is removed; a live one's counts. */
      if (temp && now - e.mtime > STALE_TEMP_USEC && g_unlink (e.path) == 0)
        {
          g_free (e.path);
          continue;
        }
      total += e.size;
      if (temp)
        {
          g_free (e.path);
          continue;
        }
      g_array_append_val (all, e);
    }
  if (d)
    g_dir_close (d);
  g_array_sort (all, older_first);
  for (guint i = 0; i < all->len; i++)
    {
      Entry *e = &g_array_index (all, Entry, i);
      if (total > cap && g_unlink (e->path) == 0)
        total -= e->size;
      g_free (e->path);
    }
  g_array_free (all, TRUE);
}

static gboolean
write_all (int fd, const void *data, gsize n)
{
  const guint8 *p = data;
  while (n > 0)
    {
      ssize_t w = write (fd, p, n);
      if (w < 0 && errno == EINTR)
        continue;
      if (w <= 0)
        return FALSE;
      p += w;
      n -= (gsize) w;
    }
  return TRUE;
}

void
nn_dnnl_weights_cache_store (const NnDnnlCacheKey *key, const void *data,
                             gsize bytes)
{
  g_autofree char *dir = cache_dir ();
  g_autofree char *path = entry_path (key);
  g_autofree char *tmp = NULL;
  char header[HEADER];

  if (!enabled () || g_mkdir_with_parents (dir, 0700) != 0)
    return;
  gint64 cap = cap_bytes ();
  if ((gint64) bytes + HEADER > cap)
    return;
  trim_dir (dir, bytes + HEADER, cap);
  tmp = g_strconcat (path, ".XXXXXX", NULL);
  int fd = g_mkstemp_full (tmp, O_WRONLY | O_CLOEXEC, 0600);
  if (fd < 0)
    return;
  guint64 sum[2];
  checksum (data, bytes, sum);
  header_fill (header, key, bytes, sum);
  /* A temp file renamed into place: a reader never sees half an entry. */
  gboolean ok = write_all (fd, header, HEADER) && write_all (fd, data, bytes);
  ok = close (fd) == 0 && ok;
  if (!ok || g_rename (tmp, path) != 0)
    g_unlink (tmp);
}
