/* dnnl plugin: the buffers of reordered weights, each in a mapping of its
 * own rather than in the malloc heap.  A fused plan rebuilds every layer
 * once (the BatchNorm folded in), freeing one copy of the weights and
 * making another: in the heap the new copies landed above the holes of
 * the old (a folding buffer took each hole first), the heap grew by the
 * weights' size, and activations later faulted pages into the holes
 * again (resnet18: 20 MB more resident after the third forward).  A
 * mapping goes back to the system whole when the weights go. */
#include "dnnl-private.h"

#include <sys/mman.h>

/* Transparent huge pages on the 2 MiB-aligned inside of a weights buffer
 * before the reorder first writes it: one fault per 2 MiB instead of 512
 * (a third of resnet18's start-up faults).  THP's default mode on Debian
 * is "madvise", so nothing happens without the advice; the advice ends
 * with the mapping. */
static void
advise_huge (void *p, gsize bytes)
{
  guintptr huge = 2u << 20;
  guintptr begin = ((guintptr) p + huge - 1) & ~(huge - 1);
  guintptr end = ((guintptr) p + bytes) & ~(huge - 1);
  if (end > begin)
    (void) madvise ((void *) begin, end - begin, MADV_HUGEPAGE);
}

static gsize
mapped_size (gsize bytes)
{
  gsize page = 4096;
  return (MAX (bytes, 1) + page - 1) & ~(page - 1);
}

/* Buffers mapped from the weights cache (void * -> itself); every other
 * weights buffer is an anonymous mapping. */
static GMutex cached_lock;
static GHashTable *cached;

dnnl_memory_t
nn_dnnl_weights_memory_cached (const NnDnnlCacheKey *key,
                               const dnnl_memory_desc_t *to)
{
  dnnl_engine_t eng = nn_dnnl_engine (NULL);
  dnnl_memory_t m = NULL;
  gsize bytes = dnnl_memory_desc_get_size (to);
  void *p = eng ? nn_dnnl_weights_cache_map (key, bytes) : NULL;

  if (!p)
    return NULL;
  if (dnnl_memory_create (&m, to, eng, p) != dnnl_success)
    {
      nn_dnnl_weights_cache_unmap (p, bytes);
      return NULL;
    }
  g_mutex_lock (&cached_lock);
  if (!cached)
    cached = g_hash_table_new (g_direct_hash, g_direct_equal);
  g_hash_table_add (cached, p);
  g_mutex_unlock (&cached_lock);
  return m;
}

dnnl_memory_t
nn_dnnl_weights_memory_new (const dnnl_memory_desc_t *md, GError **error)
{
  dnnl_engine_t eng = nn_dnnl_engine (error);
  dnnl_memory_t m = NULL;
  gsize bytes = dnnl_memory_desc_get_size (md);

  if (!eng)
    return NULL;
  void *p = mmap (NULL, mapped_size (bytes), PROT_READ | PROT_WRITE,
                  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED)
    {
      g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_FAILED,
                   "cannot allocate %" G_GSIZE_FORMAT " bytes for the "
                   "weights layout", bytes);
      return NULL;
    }
  advise_huge (p, bytes);
  if (!nn_dnnl_ok (dnnl_memory_create (&m, md, eng, p),
                   "wrapping the weights layout", error))
    {
      munmap (p, mapped_size (bytes));
      return NULL;
    }
  return m;
}

void
nn_dnnl_weights_free (dnnl_memory_t m)
{
  void *p = NULL;
  const dnnl_memory_desc_t *md = NULL;

  if (!m)
    return;
  if (dnnl_memory_get_data_handle (m, &p) != dnnl_success
      || dnnl_memory_get_memory_desc (m, &md) != dnnl_success)
    p = NULL;
  gsize bytes = p ? dnnl_memory_desc_get_size (md) : 0;
  dnnl_memory_destroy (m);
  /* Weights replaced (a fused rebuild, a training step): what start-up
   * reorders is cached, nothing after. */
  nn_dnnl_weights_cache_stop ();
  g_mutex_lock (&cached_lock);
  gboolean from_cache = p && cached && g_hash_table_remove (cached, p);
  g_mutex_unlock (&cached_lock);
  if (from_cache)
    nn_dnnl_weights_cache_unmap (p, bytes);
  else if (p)
    munmap (p, mapped_size (bytes));
}

/* The plugin is dlclose()d once its last module is gone, so every weights
 * buffer has been freed by then; the table itself goes too. */
__attribute__ ((destructor)) static void
dnnl_weights_mem_unload (void)
{
  g_clear_pointer (&cached, g_hash_table_unref);
}
