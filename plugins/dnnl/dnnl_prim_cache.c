/* dnnl plugin: process-wide caches of primitives keyed by shapes (the
 * matrix products, softmax), and running a cached primitive on the
 * caller's buffers. */
#include "dnnl-private.h"

#include <omp.h>
#include <string.h>

/* Enough for the distinct shapes of several models at once; when a cache
 * is full it is emptied (entries in use live on). */
#define CACHE_MAX 256

/* The cache's table hashes and compares keys of its own size: each table
 * keeps the size in its user data. */
typedef struct {
  gpointer key;
  gsize size;
} Key;

static guint
key_hash (gconstpointer p)
{
  const Key *k = p;
  const guint8 *b = k->key;
  guint h = 2166136261u;   /* FNV-1a over the key's bytes (zero-padded) */

  for (gsize i = 0; i < k->size; i++)
    h = (h ^ b[i]) * 16777619u;
  return h;
}

static gboolean
key_equal (gconstpointer a, gconstpointer b)
{
  const Key *x = a, *y = b;
  return x->size == y->size && memcmp (x->key, y->key, x->size) == 0;
}

static void
key_free (gpointer p)
{
  Key *k = p;
  g_free (k->key);
  g_free (k);
}

void
nn_dnnl_cached_unref (NnDnnlCached *e)
{
  if (!g_atomic_int_dec_and_test (&e->ref_count))
    return;
  if (e->prim)
    dnnl_primitive_destroy (e->prim);
  g_free (e);
}

NnDnnlCached *
nn_dnnl_cache_get (NnDnnlCache *cache, gconstpointer key, gsize key_size,
                   NnDnnlBuildFunc build, GError **error)
{
  Key k = { (gpointer) key, key_size };
  NnDnnlCached *e;

  g_mutex_lock (&cache->lock);
  if (!cache->table)
    cache->table = g_hash_table_new_full (key_hash, key_equal, key_free,
                                          (GDestroyNotify) nn_dnnl_cached_unref);
  e = g_hash_table_lookup (cache->table, &k);
  if (!e)
    {
      /* Built under the lock: two threads meeting a new shape build it
       * once, and a build takes microseconds next to the runs. */
      e = g_new0 (NnDnnlCached, 1);
      e->ref_count = 1;
      if (!build (key, e, error))
        {
          nn_dnnl_cached_unref (e);
          g_mutex_unlock (&cache->lock);
          return NULL;
        }
      if (g_hash_table_size (cache->table) >= CACHE_MAX)
        g_hash_table_remove_all (cache->table);
      Key *owned = g_new (Key, 1);
      owned->key = g_memdup2 (key, key_size);
      owned->size = key_size;
      g_hash_table_insert (cache->table, owned, e);
    }
  g_atomic_int_inc (&e->ref_count);
  g_mutex_unlock (&cache->lock);
  return e;
}

void
nn_dnnl_cache_clear (NnDnnlCache *cache)
{
  if (cache->table)
    g_hash_table_unref (cache->table);
  cache->table = NULL;
}

gboolean
nn_dnnl_cached_build (NnDnnlCached *e, const_dnnl_op_desc_t desc, gint64 work,
                      gint64 grain, GError **error)
{
  dnnl_engine_t eng = nn_dnnl_engine (error);
  dnnl_primitive_attr_t attr = eng ? nn_dnnl_attr_new_for (work, grain, error) : NULL;
  e->work = work;
  e->grain = grain;
  dnnl_primitive_desc_t pd = NULL;
  dnnl_status_t st;

  if (!attr)
    return FALSE;
  st = dnnl_primitive_desc_create (&pd, desc, attr, eng, NULL);
  dnnl_primitive_attr_destroy (attr);
  if (st == dnnl_unimplemented)
    return TRUE;   /* declined: prim stays NULL, the reference runs */
  if (!nn_dnnl_ok (st, "choosing a primitive", error))
    return FALSE;
  /* oneDNN's "ref:" implementations are scalar loops (softmax over a
   * strided axis), slower than nnkit's own: declined too. */
  const char *impl = NULL;
  if (dnnl_primitive_desc_query (pd, dnnl_query_impl_info_str, 0, &impl) == dnnl_success
      && impl && g_str_has_prefix (impl, "ref"))
    {
      dnnl_primitive_desc_destroy (pd);
      return TRUE;
    }
  e->scratch_md = *dnnl_primitive_desc_query_md (pd, dnnl_query_scratchpad_md, 0);
  st = dnnl_primitive_create (&e->prim, pd);
  dnnl_primitive_desc_destroy (pd);
  return nn_dnnl_ok (st, "creating a primitive", error);
}

gboolean
nn_dnnl_run_args (dnnl_primitive_t prim, const dnnl_memory_desc_t *scratch_md,
                  gint64 work, gint64 grain, int n, const int *arg_ids,
                  const dnnl_memory_desc_t *const *mds, void *const *data,
                  GError **error)
{
  dnnl_engine_t eng = nn_dnnl_engine (error);
  /* n operands and the scratchpad (a concatenation has one per input). */
  dnnl_memory_t *mem = g_new0 (dnnl_memory_t, n + 1);
  dnnl_exec_arg_t *args = g_new (dnnl_exec_arg_t, n + 1);
  dnnl_stream_t s = NULL;
  int n_args = 0;
  gboolean ok = eng != NULL;

  /* The scratchpad is taken from the pool for this run only, so runs of
   * one primitive from several threads share nothing. */
  for (int i = 0; ok && i < n; i++)
    {
      ok = nn_dnnl_ok (dnnl_memory_create (&mem[i], mds[i], eng, data[i]),
                       "wrapping an operand", error);
      args[n_args++] = (dnnl_exec_arg_t) { arg_ids[i], mem[i] };
    }
  gsize scratch_size = scratch_md ? dnnl_memory_desc_get_size (scratch_md) : 0;
  void *scratch = NULL;
  if (ok && scratch_size > 0)
    {
      ok = (scratch = nn_dnnl_scratch_take (scratch_size, error))
           && nn_dnnl_ok (dnnl_memory_create (&mem[n], scratch_md, eng, scratch),
                          "wrapping the scratchpad", error);
      args[n_args++] = (dnnl_exec_arg_t) { DNNL_ARG_SCRATCHPAD, mem[n] };
    }
  ok = ok && nn_dnnl_ok (dnnl_stream_create (&s, eng, dnnl_stream_default_flags),
                         "creating a stream", error);
  if (ok)
    {
      /* OpenMP's count is per calling thread: nnkit's, every run, cut
       * by the grain rule for small work, which waking the others would
       * cost more than it saves. */
      nn_dnnl_set_threads (work, grain);
      ok = nn_dnnl_ok (dnnl_primitive_execute (prim, s, n_args, args),
                       "running the primitive", error)
           && nn_dnnl_ok (dnnl_stream_wait (s), "waiting for the stream", error);
    }
  if (s)
    dnnl_stream_destroy (s);
  for (int i = 0; i <= n; i++)
    if (mem[i])
      dnnl_memory_destroy (mem[i]);
  nn_dnnl_scratch_give (scratch);
  g_free (mem);
  g_free (args);
  return ok;
}

gboolean
nn_dnnl_cached_run (NnDnnlCached *e, int n,
                    const int *arg_ids,
                    const dnnl_memory_desc_t *const *mds, void *const *data,
                    GError **error)
{
  g_return_val_if_fail (n <= NN_DNNL_CACHED_MAX_ARGS && e->prim, FALSE);
  return nn_dnnl_run_args (e->prim, &e->scratch_md, e->work, e->grain, n, arg_ids,
                           mds, data, error);
}

/* --- fused epilogues (docs/ENGINE.md, "Fusion") ------------------------ */

/* oneDNN's eltwise algorithm of @act with its alpha and beta; FALSE for
 * none. */
static gboolean
act_alg (NnActKind act, float alpha, float beta, dnnl_alg_kind_t *alg,
         float *a, float *b)
{
  *a = 0.0f;
  *b = 0.0f;
  switch (act)
    {
    case NN_ACT_RELU: *alg = dnnl_eltwise_relu; *a = alpha; return TRUE;
    case NN_ACT_CLIP: *alg = dnnl_eltwise_clip_v2; *a = alpha; *b = beta; return TRUE;
    case NN_ACT_SILU: *alg = dnnl_eltwise_swish; *a = 1.0f; return TRUE;
    case NN_ACT_HARDSWISH: *alg = dnnl_eltwise_hardswish; return TRUE;
    case NN_ACT_GELU_ERF: *alg = dnnl_eltwise_gelu_erf; return TRUE;
    case NN_ACT_GELU_TANH: *alg = dnnl_eltwise_gelu_tanh; return TRUE;
    case NN_ACT_SIGMOID: *alg = dnnl_eltwise_logistic; return TRUE;
    case NN_ACT_TANH: *alg = dnnl_eltwise_tanh; return TRUE;
    default: return FALSE;
    }
}

gboolean
nn_dnnl_attr_add_sum_act (dnnl_primitive_attr_t attr, gboolean sum,
                          NnActKind act, float alpha, float beta,
                          GError **error)
{
  dnnl_alg_kind_t alg;
  float a, b;
  dnnl_post_ops_t po = NULL;
  gboolean has_act = act_alg (act, alpha, beta, &alg, &a, &b);

  if (!sum && !has_act)
    return TRUE;
  /* The sum first: act (conv (x) + dst), dst holding the residual. */
  gboolean ok = nn_dnnl_ok (dnnl_post_ops_create (&po), "creating post-ops", error)
    && (!sum || nn_dnnl_ok (dnnl_post_ops_append_sum (po, 1.0f),
                            "adding a sum post-op", error))
    && (!has_act || nn_dnnl_ok (dnnl_post_ops_append_eltwise (po, 1.0f, alg, a, b),
                                "adding an activation post-op", error))
    && nn_dnnl_ok (dnnl_primitive_attr_set_post_ops (attr, po),
                   "setting post-ops", error);
  if (po)
    dnnl_post_ops_destroy (po);
  return ok;
}

gboolean
nn_dnnl_attr_add_act (dnnl_primitive_attr_t attr, NnActKind act, float alpha,
                      float beta, GError **error)
{
  return nn_dnnl_attr_add_sum_act (attr, FALSE, act, alpha, beta, error);
}

