/* dnnl plugin: float32 matrix products on oneDNN's matmul primitive,
 * cached by shapes and strides (dnnl_prim_cache.c).  Shared by the
 * matmul-family op providers and the MultiheadAttention provider. */
#include "dnnl-private.h"

#include <string.h>

static NnDnnlCache cache;

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

/* Memory descriptors kept in the entry: A, B, C, bias. */
/* A product's multiply-adds: numel (C) * k. */
static gint64
matmul_work (const NnDnnlMatmulKey *key)
{
  gint64 work = key->a_dims[key->nd - 1];
  for (guint i = 0; i < key->nd; i++)
    work *= key->c_dims[i];
  return work;
}

static gboolean
build (gconstpointer k, NnDnnlCached *e, GError **error)
{
  const NnDnnlMatmulKey *key = k;
  /* oneDNN reads DNNL_MAX_NDIMS entries: the key's arrays are shorter. */
  dnnl_dims_t ad = { 0 }, as = { 0 }, bd = { 0 }, bs = { 0 }, cd = { 0 };
  dnnl_dims_t c_strides = { 0 }, bias_dims = { 0 }, bias_strides = { 0 };
  const int nd = (int) key->nd;
  dnnl_matmul_desc_t desc;

  for (int i = 0; i < nd; i++)
    {
      ad[i] = key->a_dims[i], as[i] = key->a_strides[i];
      bd[i] = key->b_dims[i], bs[i] = key->b_strides[i];
      cd[i] = key->c_dims[i];
      bias_dims[i] = i == nd - 1 ? key->c_dims[i] : 1;
    }
  nn_dnnl_matmul_key_contiguous (cd, key->nd, c_strides);
  nn_dnnl_matmul_key_contiguous (bias_dims, key->nd, bias_strides);
  return nn_dnnl_ok (dnnl_memory_desc_init_by_strides (&e->md[0], nd, ad, dnnl_f32, as),
                     "matmul src md", error)
         && nn_dnnl_ok (dnnl_memory_desc_init_by_strides (&e->md[1], nd, bd, dnnl_f32, bs),
                        "matmul weights md", error)
         && nn_dnnl_ok (dnnl_memory_desc_init_by_strides (&e->md[2], nd, cd, dnnl_f32,
                                                          c_strides), "matmul dst md", error)
         && nn_dnnl_ok (dnnl_memory_desc_init_by_strides (&e->md[3], nd, bias_dims, dnnl_f32,
                                                          bias_strides), "matmul bias md", error)
         && nn_dnnl_ok (dnnl_matmul_desc_init (&desc, &e->md[0], &e->md[1],
                                               key->bias ? &e->md[3] : NULL, &e->md[2]),
                        "describing the matmul", error)
         && nn_dnnl_cached_build (e, &desc, matmul_work (key), NN_GEMM_GRAIN, error);
}

NnDnnlResult
nn_dnnl_matmul_run (const NnDnnlMatmulKey *key, const float *a, const float *b,
                    const float *bias, float *c, GError **error)
{
  g_return_val_if_fail (key->nd >= 2 && key->nd <= NN_DNNL_MATMUL_MAX_DIMS,
                        NN_DNNL_DECLINED);
  NnDnnlCached *e = nn_dnnl_cache_get (&cache, key, sizeof *key, build, error);
  if (!e)
    return NN_DNNL_FAILED;
  if (!e->prim)
    {
      nn_dnnl_cached_unref (e);
      return NN_DNNL_DECLINED;
    }
  const int ids[] = { DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DST, DNNL_ARG_BIAS };
  const dnnl_memory_desc_t *mds[] = { &e->md[0], &e->md[1], &e->md[2], &e->md[3] };
  void *data[] = { (void *) a, (void *) b, c, (void *) bias };
  gboolean ok = nn_dnnl_cached_run (e, key->bias ? 4 : 3, ids, mds, data, error);
  nn_dnnl_cached_unref (e);
  return ok ? NN_DNNL_DONE : NN_DNNL_FAILED;
}

/* Before the plugin is unmapped. */
__attribute__ ((destructor)) static void
dnnl_matmul_cache_unload (void)
{
  nn_dnnl_cache_clear (&cache);
}
