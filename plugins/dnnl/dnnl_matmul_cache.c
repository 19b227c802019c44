/* dnnl plugin: float32 matrix products on oneDNN's matmul primitive, the
 * primitives cached process-wide by shapes and strides.  Shared by the
 * matmul-family op providers and the MultiheadAttention provider. */
#include "dnnl-private.h"

#include <omp.h>
#include <string.h>

/* Enough for the distinct products of several models at once; when it
 * is full the whole cache is dropped (entries in use live on). */
#define CACHE_MAX 256

typedef struct {
  gint ref_count;
  dnnl_primitive_t prim;     /* NULL: oneDNN has no implementation */
  dnnl_memory_desc_t a_md, b_md, c_md, bias_md, scratch_md;
} Entry;

static GMutex cache_lock;
static GHashTable *cache;    /* NnDnnlMatmulKey * (owned) -> Entry * */

static guint
key_hash (gconstpointer p)
{
  const guint8 *b = p;
  guint h = 2166136261u;   /* FNV-1a over the key's bytes (zero-padded) */

  for (gsize i = 0; i < sizeof (NnDnnlMatmulKey); i++)
    h = (h ^ b[i]) * 16777619u;
  return h;
}

static gboolean
key_equal (gconstpointer a, gconstpointer b)
{
  return memcmp (a, b, sizeof (NnDnnlMatmulKey)) == 0;
}

static void
entry_unref (gpointer p)
{
  Entry *e = p;

  if (!g_atomic_int_dec_and_test (&e->ref_count))
    return;
  if (e->prim)
    dnnl_primitive_destroy (e->prim);
  g_free (e);
}

void
nn_dnnl_matmul_key_init (NnDnnlMatmulKey *key, guint nd)
{
  memset (key, 0, sizeof *key);
  key->nd = nd;
}

void
nn_dnnl_matmul_key_contiguous (const gint64 *dims, guint nd, gint64 *strides)
{
  gint64 s = 1;

  for (guint i = nd; i-- > 0;)
    {
      strides[i] = s;
      s *= MAX (dims[i], 1);
    }
}

/* Builds the primitive of @key; an Entry without primitive when oneDNN
 * implements none for it (strides it does not take), so that the caller
 * falls back once and the question is not asked again. */
static Entry *
entry_new (const NnDnnlMatmulKey *key, GError **error)
{
  dnnl_engine_t eng = nn_dnnl_engine (error);
  Entry *e = g_new0 (Entry, 1);
  dnnl_matmul_desc_t desc;
  dnnl_primitive_desc_t pd = NULL;
  dnnl_primitive_attr_t attr = NULL;
  /* oneDNN reads DNNL_MAX_NDIMS entries: the key's arrays are shorter. */
  dnnl_dims_t ad = { 0 }, as = { 0 }, bd = { 0 }, bs = { 0 }, cd = { 0 };
  dnnl_dims_t c_strides = { 0 }, bias_dims = { 0 }, bias_strides = { 0 };
  const int nd = (int) key->nd;
  dnnl_status_t st;

  e->ref_count = 1;
  if (!eng)
    goto fail;
  for (int i = 0; i < nd; i++)
    {
      ad[i] = key->a_dims[i], as[i] = key->a_strides[i];
      bd[i] = key->b_dims[i], bs[i] = key->b_strides[i];
      cd[i] = key->c_dims[i];
      bias_dims[i] = i == nd - 1 ? key->c_dims[i] : 1;
    }
  nn_dnnl_matmul_key_contiguous (cd, key->nd, c_strides);
  nn_dnnl_matmul_key_contiguous (bias_dims, key->nd, bias_strides);
  if (!nn_dnnl_ok (dnnl_memory_desc_init_by_strides (&e->a_md, nd, ad, dnnl_f32, as),
                   "matmul src md", error)
      || !nn_dnnl_ok (dnnl_memory_desc_init_by_strides (&e->b_md, nd, bd, dnnl_f32, bs),
                      "matmul weights md", error)
      || !nn_dnnl_ok (dnnl_memory_desc_init_by_strides (&e->c_md, nd, cd, dnnl_f32,
                                                        c_strides), "matmul dst md", error)
      || !nn_dnnl_ok (dnnl_memory_desc_init_by_strides (&e->bias_md, nd, bias_dims, dnnl_f32,
                                                        bias_strides), "matmul bias md", error)
      || !nn_dnnl_ok (dnnl_matmul_desc_init (&desc, &e->a_md, &e->b_md,
                                             key->bias ? &e->bias_md : NULL, &e->c_md),
                      "describing the matmul", error)
      || !(attr = nn_dnnl_attr_new (error)))
    goto fail;
  st = dnnl_primitive_desc_create (&pd, &desc, attr, eng, NULL);
  dnnl_primitive_attr_destroy (attr);
  if (st == dnnl_unimplemented)
    return e;   /* declined: the caller's reference runs */
  if (!nn_dnnl_ok (st, "choosing a matmul", error))
    goto fail;
  e->scratch_md = *dnnl_primitive_desc_query_md (pd, dnnl_query_scratchpad_md, 0);
  st = dnnl_primitive_create (&e->prim, pd);
  dnnl_primitive_desc_destroy (pd);
  if (!nn_dnnl_ok (st, "creating a matmul", error))
    goto fail;
  return e;

fail:
  entry_unref (e);
  return NULL;
}

/* Returns: (transfer full) the entry of @key, built on first use. */
static Entry *
entry_get (const NnDnnlMatmulKey *key, GError **error)
{
  Entry *e;

  g_mutex_lock (&cache_lock);
  if (!cache)
    cache = g_hash_table_new_full (key_hash, key_equal, g_free, entry_unref);
  e = g_hash_table_lookup (cache, key);
  if (!e)
    {
      /* Built under the lock: two threads meeting a new shape build it
       * once, and a build takes microseconds next to the products. */
      e = entry_new (key, error);
      if (e)
        {
          if (g_hash_table_size (cache) >= CACHE_MAX)
            g_hash_table_remove_all (cache);
          g_hash_table_insert (cache, g_memdup2 (key, sizeof *key), e);
        }
    }
  if (e)
    g_atomic_int_inc (&e->ref_count);
  g_mutex_unlock (&cache_lock);
  return e;
}

static gboolean
wrap (dnnl_memory_t *m, const dnnl_memory_desc_t *md, void *data, GError **error)
{
  return nn_dnnl_ok (dnnl_memory_create (m, md, nn_dnnl_engine (NULL), data),
                     "wrapping a matmul operand", error);
}

NnDnnlMatmulResult
nn_dnnl_matmul_run (const NnDnnlMatmulKey *key, const float *a, const float *b,
                    const float *bias, float *c, GError **error)
{
  dnnl_memory_t ma = NULL, mb = NULL, mc = NULL, mbias = NULL, mscr = NULL;
  dnnl_stream_t s = NULL;
  dnnl_exec_arg_t args[5];
  int n = 0;
  gboolean ok;

  g_return_val_if_fail (key->nd >= 2 && key->nd <= NN_DNNL_MATMUL_MAX_DIMS,
                        NN_DNNL_MATMUL_DECLINED);
  Entry *e = entry_get (key, error);
  if (!e)
    return NN_DNNL_MATMUL_FAILED;
  if (!e->prim)
    {
      entry_unref (e);
      return NN_DNNL_MATMUL_DECLINED;
    }
  /* The scratchpad is the caller's (per run), so runs of one primitive
   * from several threads share nothing. */
  ok = wrap (&ma, &e->a_md, (void *) a, error)
       && wrap (&mb, &e->b_md, (void *) b, error)
       && wrap (&mc, &e->c_md, c, error)
       && (!key->bias || wrap (&mbias, &e->bias_md, (void *) bias, error))
       && (dnnl_memory_desc_get_size (&e->scratch_md) == 0
           || nn_dnnl_ok (dnnl_memory_create (&mscr, &e->scratch_md, nn_dnnl_engine (NULL),
                                              DNNL_MEMORY_ALLOCATE),
                          "allocating the matmul scratchpad", error))
       && nn_dnnl_ok (dnnl_stream_create (&s, nn_dnnl_engine (NULL),
                                          dnnl_stream_default_flags),
                      "creating a stream", error);
  if (ok)
    {
      args[n++] = (dnnl_exec_arg_t) { DNNL_ARG_SRC, ma };
      args[n++] = (dnnl_exec_arg_t) { DNNL_ARG_WEIGHTS, mb };
      args[n++] = (dnnl_exec_arg_t) { DNNL_ARG_DST, mc };
      if (mbias)
        args[n++] = (dnnl_exec_arg_t) { DNNL_ARG_BIAS, mbias };
      if (mscr)
        args[n++] = (dnnl_exec_arg_t) { DNNL_ARG_SCRATCHPAD, mscr };
      /* OpenMP's count is per calling thread: nnkit's, every run. */
      omp_set_num_threads (nn_get_num_threads ());
      ok = nn_dnnl_ok (dnnl_primitive_execute (e->prim, s, n, args),
                       "running the matmul", error)
           && nn_dnnl_ok (dnnl_stream_wait (s), "waiting for the stream", error);
    }
  if (s) dnnl_stream_destroy (s);
  if (ma) dnnl_memory_destroy (ma);
  if (mb) dnnl_memory_destroy (mb);
  if (mc) dnnl_memory_destroy (mc);
  if (mbias) dnnl_memory_destroy (mbias);
  if (mscr) dnnl_memory_destroy (mscr);
  entry_unref (e);
  return ok ? NN_DNNL_MATMUL_DONE : NN_DNNL_MATMUL_FAILED;
}

/* Before the plugin is unmapped (dnnl_common.c destroys the engine in
 * its own destructor; primitives do not need it to be destroyed). */
__attribute__ ((destructor)) static void
dnnl_matmul_cache_unload (void)
{
  if (cache)
    g_hash_table_unref (cache);
  cache = NULL;
}
