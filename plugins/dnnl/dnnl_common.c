/* dnnl plugin: the engine, primitives run around user layouts, weight
 * reorders and the per-module state table. */
#include "dnnl-private.h"

#include <malloc.h>

#include <omp.h>
#include <stdlib.h>
#include <string.h>

gboolean
nn_dnnl_ok (dnnl_status_t st, const char *what, GError **error)
{
  if (st == dnnl_success)
    return TRUE;
  g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_FAILED,
               "oneDNN: %s failed (status %d)", what, (int) st);
  return FALSE;
}

static dnnl_engine_t engine;

dnnl_engine_t
nn_dnnl_engine (GError **error)
{
  static dnnl_status_t status;
  static gsize once;

  if (g_once_init_enter (&once))
    {
      status = dnnl_engine_create (&engine, dnnl_cpu, 0);
      g_once_init_leave (&once, 1);
    }
  if (!nn_dnnl_ok (status, "creating the CPU engine", error))
    return NULL;
  return engine;
}

void
nn_dnnl_set_threads (gint64 work, gint64 grain)
{
  omp_set_num_threads (work > 0 ? nn_threads_for_work (work, grain)
                                : nn_get_num_threads ());
}

dnnl_primitive_attr_t
nn_dnnl_attr_new (GError **error)
{
  return nn_dnnl_attr_new_for (0, 0, error);
}

dnnl_primitive_attr_t
nn_dnnl_attr_new_for (gint64 work, gint64 grain, GError **error)
{
  dnnl_primitive_attr_t attr = NULL;

  /* A count a small product or reorder left behind would otherwise be
   * the one this primitive splits its work for, at every run. */
  nn_dnnl_set_threads (work, grain);

  if (!nn_dnnl_ok (dnnl_primitive_attr_create (&attr), "creating an attr", error))
    return NULL;
  if (!nn_dnnl_ok (dnnl_primitive_attr_set_scratchpad_mode (
                     attr, dnnl_scratchpad_mode_user), "setting the scratchpad",
                   error))
    {
      dnnl_primitive_attr_destroy (attr);
      return NULL;
    }
  return attr;
}

static gboolean
reorder_prim (const dnnl_memory_desc_t *from, const dnnl_memory_desc_t *to,
              dnnl_engine_t eng, dnnl_primitive_t *out, GError **error)
{
  dnnl_primitive_desc_t pd = NULL;
  gboolean ok = nn_dnnl_ok (dnnl_reorder_primitive_desc_create (&pd, from, eng,
                                                                to, eng, NULL),
                            "creating a reorder", error)
                && nn_dnnl_ok (dnnl_primitive_create (out, pd),
                               "creating a reorder", error);
  if (pd)
    dnnl_primitive_desc_destroy (pd);
  return ok;
}

gboolean
nn_dnnl_prim_init (NnDnnlPrim *p, const_dnnl_primitive_desc_t pd,
                   const dnnl_memory_desc_t *user_src,
                   const dnnl_memory_desc_t *user_dst, GError **error)
{
  dnnl_engine_t eng = nn_dnnl_engine (error);
  const dnnl_memory_desc_t *src = dnnl_primitive_desc_query_md (pd, dnnl_query_src_md, 0);
  const dnnl_memory_desc_t *dst = dnnl_primitive_desc_query_md (pd, dnnl_query_dst_md, 0);
  const dnnl_memory_desc_t *scr = dnnl_primitive_desc_query_md (pd, dnnl_query_scratchpad_md, 0);

  memset (p, 0, sizeof *p);
  if (!eng
      || !nn_dnnl_ok (dnnl_stream_create (&p->stream, eng, dnnl_stream_default_flags),
                      "creating a stream", error)
      || !nn_dnnl_ok (dnnl_primitive_create (&p->prim, pd), "creating a primitive", error)
      || !nn_dnnl_ok (dnnl_memory_create (&p->user_src, user_src, eng, DNNL_MEMORY_NONE),
                      "wrapping the input", error)
      || !nn_dnnl_ok (dnnl_memory_create (&p->user_dst, user_dst, eng, DNNL_MEMORY_NONE),
                      "wrapping the output", error))
    goto fail;
  /* Blocked layouts (nChw16c) are faster inside; the caller's tensors are
   * plain NCHW, so reorder at the edges when the primitive chose others. */
  p->src_md = *src;
  p->dst_md = *dst;
  if (!dnnl_memory_desc_equal (src, user_src))
    {
      if (!nn_dnnl_ok (dnnl_memory_create (&p->src, src, eng, DNNL_MEMORY_NONE),
                       "describing the input layout", error)
          || !nn_dnnl_ok (dnnl_memory_create (&p->lay_src, src, eng, DNNL_MEMORY_NONE),
                          "wrapping a laid-out input", error)
          || !reorder_prim (user_src, src, eng, &p->reorder_in, error))
        goto fail;
    }
  if (!dnnl_memory_desc_equal (dst, user_dst))
    {
      if (!nn_dnnl_ok (dnnl_memory_create (&p->dst, dst, eng, DNNL_MEMORY_NONE),
                       "describing the output layout", error)
          || !nn_dnnl_ok (dnnl_memory_create (&p->lay_dst, dst, eng, DNNL_MEMORY_NONE),
                          "wrapping a laid-out output", error)
          || !reorder_prim (dst, user_dst, eng, &p->reorder_out, error))
        goto fail;
    }
  p->scratch_size = scr ? dnnl_memory_desc_get_size (scr) : 0;
  if (p->scratch_size > 0
      && !nn_dnnl_ok (dnnl_memory_create (&p->scratch, scr, eng, DNNL_MEMORY_NONE),
                      "describing the scratchpad", error))
    goto fail;
  return TRUE;

fail:
  nn_dnnl_prim_clear (p);
  return FALSE;
}

/* Whether @md pads a dimension (channels rounded up to its blocks). */
static gboolean
md_padded (const dnnl_memory_desc_t *md)
{
  for (int i = 0; i < md->ndims; i++)
    if (md->padded_dims[i] != md->dims[i])
      return TRUE;
  return FALSE;
}

/* Gives @mem (of layout @md) a buffer for a run.  Unpadded, one from the
 * core's storage pool for this run only, returned in *@run to free when
 * the run ends: a buffer per primitive, kept between runs, held 8.6 MB in
 * resnet18's batch-1 forward, whose steps change layouts at eleven
 * places.  Padded, the primitive's own in *@kept, made once: setting a
 * handle zero-fills the padding, a pass per run over a fresh buffer
 * (efficientnet_b0's 24- and 40-channel blocked layouts: 5% of its batch-8
 * forward). */
static gboolean
run_buffer (dnnl_memory_t mem, const dnnl_memory_desc_t *md, void **kept,
            void **run, GError **error)
{
  gboolean keep = md_padded (md);
  *run = NULL;
  if (keep && *kept)
    return TRUE;
  gsize n = dnnl_memory_desc_get_size (md);
  void *buf = nn_tensor_storage_new (MAX (n, 64));
  if (!buf)
    {
      g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_FAILED,
                   "cannot allocate %" G_GSIZE_FORMAT " bytes for a "
                   "primitive's layout", n);
      return FALSE;
    }
  if (!nn_dnnl_ok (dnnl_memory_set_data_handle (mem, buf),
                   "setting a layout's buffer", error))
    {
      nn_tensor_storage_free (buf);
      return FALSE;
    }
  *(keep ? kept : run) = buf;
  return TRUE;
}

static gboolean
exec (dnnl_primitive_t prim, dnnl_stream_t s, dnnl_memory_t from,
      dnnl_memory_t to, GError **error)
{
  dnnl_exec_arg_t args[] = { { DNNL_ARG_FROM, from }, { DNNL_ARG_TO, to } };
  return nn_dnnl_ok (dnnl_primitive_execute (prim, s, 2, args), "reordering",
                     error);
}

/* Runs @p's primitive on @args (n of them, with room for one more: the
 * scratchpad, from the shared pool for this run only) and waits for it. */
/* Makes (or keeps) p->relayout, the reorder from laid-out layout @xmd
 * straight into p->src, with p->relayout_from wrapping its input; FALSE
 * leaving @error unset when oneDNN has no such reorder. */
static gboolean
relayout_ready (NnDnnlPrim *p, const dnnl_memory_desc_t *xmd, GError **error)
{
  if (p->relayout && dnnl_memory_desc_equal (&p->relayout_md, xmd))
    return TRUE;
  if (p->relayout)
    dnnl_primitive_destroy (p->relayout);
  if (p->relayout_from)
    dnnl_memory_destroy (p->relayout_from);
  p->relayout = NULL;
  p->relayout_from = NULL;
  dnnl_engine_t eng = nn_dnnl_engine (error);
  dnnl_primitive_desc_t pd = NULL;
  if (!eng || dnnl_reorder_primitive_desc_create (&pd, xmd, eng, &p->src_md, eng, NULL)
                != dnnl_success)
    return FALSE;
  gboolean ok = nn_dnnl_ok (dnnl_primitive_create (&p->relayout, pd),
                            "making a reorder between layouts", error)
                && nn_dnnl_ok (dnnl_memory_create (&p->relayout_from, xmd, eng,
                                                   DNNL_MEMORY_NONE),
                               "wrapping a laid-out input", error);
  dnnl_primitive_desc_destroy (pd);
  if (ok)
    p->relayout_md = *xmd;
  return ok;
}

static gboolean
prim_execute (NnDnnlPrim *p, int n, dnnl_exec_arg_t *args, GError **error)
{
  void *scratch = NULL;
  gboolean ok = TRUE;

  if (p->scratch)
    {
      ok = (scratch = nn_dnnl_scratch_take (p->scratch_size, error))
           && nn_dnnl_ok (dnnl_memory_set_data_handle (p->scratch, scratch),
                          "setting the scratchpad", error);
      args[n++] = (dnnl_exec_arg_t) { DNNL_ARG_SCRATCHPAD, p->scratch };
    }
  ok = ok && nn_dnnl_ok (dnnl_primitive_execute (p->prim, p->stream, n, args),
                         "running the primitive", error)
       && nn_dnnl_ok (dnnl_stream_wait (p->stream), "waiting for the stream", error);
  nn_dnnl_scratch_give (scratch);
  return ok;
}

gboolean
nn_dnnl_prim_run (NnDnnlPrim *p, const float *x, float *y, int n_extra,
                  const dnnl_exec_arg_t *extra, GError **error)
{
  dnnl_exec_arg_t args[16];
  void *sbuf = NULL, *dbuf = NULL;
  gboolean ok = FALSE;
  int n = 0;

  g_return_val_if_fail (n_extra <= 12, FALSE);
  /* Debian's oneDNN threads with OpenMP, whose count is per calling
   * thread: apply nnkit's before every run (fewer for a small product). */
  nn_dnnl_set_threads (p->macs, NN_GEMM_GRAIN);
  if (!nn_dnnl_ok (dnnl_memory_set_data_handle (p->user_src, (void *) x),
                   "setting the input", error)
      || !nn_dnnl_ok (dnnl_memory_set_data_handle (p->user_dst, y),
                      "setting the output", error))
    return FALSE;
  if ((p->src && !run_buffer (p->src, &p->src_md, &p->src_kept, &sbuf, error))
      || (p->dst && !run_buffer (p->dst, &p->dst_md, &p->dst_kept, &dbuf, error)))
    goto done;
  if (p->reorder_in && !exec (p->reorder_in, p->stream, p->user_src, p->src, error))
    goto done;
  if (p->reorder_in)
    nn_engine_note_reorders (1);
  args[n++] = (dnnl_exec_arg_t) { DNNL_ARG_SRC, p->src ? p->src : p->user_src };
  args[n++] = (dnnl_exec_arg_t) { DNNL_ARG_DST, p->dst ? p->dst : p->user_dst };
  for (int i = 0; i < n_extra; i++)
    args[n++] = extra[i];
  if (!prim_execute (p, n, args, error))
    goto done;
  if (p->reorder_out && !exec (p->reorder_out, p->stream, p->dst, p->user_dst, error))
    goto done;
  if (p->reorder_out)
    nn_engine_note_reorders (1);
  ok = nn_dnnl_ok (dnnl_stream_wait (p->stream), "waiting for the stream", error);
done:
  nn_tensor_storage_free (sbuf);
  nn_tensor_storage_free (dbuf);
  return ok;
}

/* Fills @dst (the plain user_dst, or a memory of p->dst_md) with @sum's
 * values: copied when it is plain into plain or laid out in dst_md,
 * else made plain and reordered into dst_md. */
static gboolean
fill_sum (NnDnnlPrim *p, NnTensor *sum, dnnl_memory_t dst, GError **error)
{
  void *laid = NULL, *to = NULL;
  const dnnl_memory_desc_t *smd = nn_dnnl_tensor_md (sum, &laid);
  const dnnl_memory_desc_t *dmd = NULL;
  if (!nn_dnnl_ok (dnnl_memory_get_memory_desc (dst, &dmd),
                   "querying the output layout", error)
      || !nn_dnnl_ok (dnnl_memory_get_data_handle (dst, &to),
                      "querying the output", error))
    return FALSE;
  if (smd && dnnl_memory_desc_equal (smd, dmd))
    {
      memcpy (to, laid, dnnl_memory_desc_get_size (dmd));
      return TRUE;
    }
  if (!nn_tensor_make_plain (sum, error))
    return FALSE;
  if (dst == p->user_dst)
    {
      memcpy (to, sum->data, nn_tensor_nbytes (sum));
      return TRUE;
    }
  if (!p->reorder_sum)
    {
      const dnnl_memory_desc_t *umd = NULL;
      dnnl_primitive_desc_t rpd = NULL;
      dnnl_engine_t eng = nn_dnnl_engine (error);
      gboolean ok = eng
        && nn_dnnl_ok (dnnl_memory_get_memory_desc (p->user_dst, &umd),
                       "querying the plain layout", error)
        && nn_dnnl_ok (dnnl_memory_create (&p->sum_user, umd, eng,
                                           DNNL_MEMORY_NONE),
                       "wrapping the residual", error)
        && nn_dnnl_ok (dnnl_reorder_primitive_desc_create (&rpd, umd, eng,
                                                           dmd, eng, NULL),
                       "describing the residual's reorder", error)
        && nn_dnnl_ok (dnnl_primitive_create (&p->reorder_sum, rpd),
                       "creating the residual's reorder", error);
      if (rpd)
        dnnl_primitive_desc_destroy (rpd);
      if (!ok)
        return FALSE;
    }
  nn_engine_note_reorders (1);
  return nn_dnnl_ok (dnnl_memory_set_data_handle (p->sum_user, sum->data),
                     "setting the residual", error)
    && exec (p->reorder_sum, p->stream, p->sum_user, dst, error);
}

static NnTensor *
prim_run_tensor (NnDnnlPrim *p, NnTensor *x, const NnShape *out_shape,
                 gboolean lay_out, NnTensor *sum, int n_extra,
                 const dnnl_exec_arg_t *extra, GError **error)
{
  dnnl_exec_arg_t args[16];
  dnnl_memory_t src, dst;
  void *laid = NULL;
  const dnnl_memory_desc_t *xmd = nn_dnnl_tensor_md (x, &laid);
  NnTensor *out = NULL;
  void *sbuf = NULL, *dbuf = NULL;
  int n = 0;

  g_return_val_if_fail (n_extra <= 12, NULL);
  /* A laid-out input in the primitive's own src layout is read as is;
   * any other is made plain (once: the tensor keeps it) and reordered in
   * as a caller's plain input would be. */
  gboolean relaid = FALSE;
  if (xmd && p->lay_src && dnnl_memory_desc_equal (xmd, &p->src_md))
    {
      if (!nn_dnnl_ok (dnnl_memory_set_data_handle (p->lay_src, laid),
                       "setting the laid-out input", error))
        return NULL;
      src = p->lay_src;
    }
  else if (xmd && p->src && relayout_ready (p, xmd, NULL))
    {
      /* Ours in another layout than the primitive reads: straight into
       * the primitive's own src buffer. */
      if (!run_buffer (p->src, &p->src_md, &p->src_kept, &sbuf, error)
          || !nn_dnnl_ok (dnnl_memory_set_data_handle (p->relayout_from, laid),
                          "setting the laid-out input", error))
        goto fail;
      src = p->src;
      relaid = TRUE;
    }
  else
    {
      if (!nn_tensor_make_plain (x, error)
          || !nn_dnnl_ok (dnnl_memory_set_data_handle (p->user_src, x->data),
                          "setting the input", error))
        return NULL;
      src = p->src ? p->src : p->user_src;
      if (p->src && !run_buffer (p->src, &p->src_md, &p->src_kept, &sbuf, error))
        return NULL;
    }
  if (lay_out && p->lay_dst)
    {
      void *buf = NULL;
      out = nn_dnnl_tensor_new_laid (out_shape, &p->dst_md, error);
      if (!out || !nn_dnnl_tensor_md (out, &buf)
          || !nn_dnnl_ok (dnnl_memory_set_data_handle (p->lay_dst, buf),
                          "setting the laid-out output", error))
        goto fail;
      dst = p->lay_dst;
    }
  else
    {
      out = nn_tensor_new (NN_DTYPE_F32, out_shape);
      if (!out)
        {
          g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_FAILED,
                       "cannot allocate the output");
          goto fail;
        }
      if (!nn_dnnl_ok (dnnl_memory_set_data_handle (p->user_dst, out->data),
                       "setting the output", error))
        goto fail;
      dst = p->dst ? p->dst : p->user_dst;
      if (p->dst && !run_buffer (p->dst, &p->dst_md, &p->dst_kept, &dbuf, error))
        goto fail;
    }

  nn_dnnl_set_threads (p->macs, NN_GEMM_GRAIN);
  if (src == p->src)
    {
      if (!(relaid ? exec (p->relayout, p->stream, p->relayout_from, p->src, error)
                   : exec (p->reorder_in, p->stream, p->user_src, p->src, error)))
        goto fail;
      nn_engine_note_reorders (1);
    }
  if (sum && !fill_sum (p, sum, dst, error))
    goto fail;
  args[n++] = (dnnl_exec_arg_t) { DNNL_ARG_SRC, src };
  args[n++] = (dnnl_exec_arg_t) { DNNL_ARG_DST, dst };
  for (int i = 0; i < n_extra; i++)
    args[n++] = extra[i];
  if (!prim_execute (p, n, args, error))
    goto fail;
  if (dst == p->dst)
    {
      if (!exec (p->reorder_out, p->stream, p->dst, p->user_dst, error))
        goto fail;
      nn_engine_note_reorders (1);
    }
  if (!nn_dnnl_ok (dnnl_stream_wait (p->stream), "waiting for the stream", error))
    goto fail;
  nn_tensor_storage_free (sbuf);
  nn_tensor_storage_free (dbuf);
  return out;

fail:
  nn_tensor_storage_free (sbuf);
  nn_tensor_storage_free (dbuf);
  if (out)
    nn_tensor_unref (out);
  return NULL;
}

NnTensor *
nn_dnnl_prim_run_tensor (NnDnnlPrim *p, NnTensor *x, const NnShape *out_shape,
                         gboolean lay_out, int n_extra,
                         const dnnl_exec_arg_t *extra, GError **error)
{
  return prim_run_tensor (p, x, out_shape, lay_out, NULL, n_extra, extra,
                          error);
}

void
nn_dnnl_prim_clear (NnDnnlPrim *p)
{
  if (p->prim) dnnl_primitive_destroy (p->prim);
  if (p->reorder_sum) dnnl_primitive_destroy (p->reorder_sum);
  if (p->sum_user) dnnl_memory_destroy (p->sum_user);
  if (p->reorder_in) dnnl_primitive_destroy (p->reorder_in);
  if (p->reorder_out) dnnl_primitive_destroy (p->reorder_out);
  if (p->user_src) dnnl_memory_destroy (p->user_src);
  if (p->user_dst) dnnl_memory_destroy (p->user_dst);
  if (p->src) dnnl_memory_destroy (p->src);
  if (p->dst) dnnl_memory_destroy (p->dst);
  if (p->scratch) dnnl_memory_destroy (p->scratch);
  if (p->lay_src) dnnl_memory_destroy (p->lay_src);
  if (p->lay_dst) dnnl_memory_destroy (p->lay_dst);
  if (p->relayout) dnnl_primitive_destroy (p->relayout);
  if (p->relayout_from) dnnl_memory_destroy (p->relayout_from);
  if (p->stream) dnnl_stream_destroy (p->stream);
  nn_tensor_storage_free (p->src_kept);
  nn_tensor_storage_free (p->dst_kept);
  memset (p, 0, sizeof *p);
}

dnnl_memory_t
nn_dnnl_reorder_new (const dnnl_memory_desc_t *from, const void *data,
                     const dnnl_memory_desc_t *to, GError **error)
{
  return nn_dnnl_reorder_weights (from, data, NULL, to, error);
}

/* Reorders @data into a fresh memory of layout @to, and caches the result
 * under @key (nullable). */
static dnnl_memory_t
reorder_into (const dnnl_memory_desc_t *from, const void *data,
              const NnDnnlCacheKey *key, const dnnl_memory_desc_t *to,
              GError **error)
{
  dnnl_engine_t eng = nn_dnnl_engine (error);
  dnnl_memory_t src = NULL, dst = NULL;
  dnnl_primitive_t r = NULL;
  dnnl_stream_t s = NULL;
  gboolean ok;

  if (!eng)
    return NULL;
  /* The first reorder may be oneDNN's first OpenMP region: without this it
   * would start every core's worker even under --threads 1. */
  omp_set_num_threads (nn_get_num_threads ());
  ok = (dst = nn_dnnl_weights_memory_new (to, error))
       && nn_dnnl_ok (dnnl_memory_create (&src, from, eng, (void *) data),
                      "wrapping the weights", error)
       && nn_dnnl_ok (dnnl_stream_create (&s, eng, dnnl_stream_default_flags),
                      "creating a stream", error)
       && reorder_prim (from, to, eng, &r, error)
       && exec (r, s, src, dst, error)
       && nn_dnnl_ok (dnnl_stream_wait (s), "waiting for the stream", error);
  if (r) dnnl_primitive_destroy (r);
  if (s) dnnl_stream_destroy (s);
  if (src) dnnl_memory_destroy (src);
  if (!ok)
    {
      nn_dnnl_weights_free (dst);
      dst = NULL;
    }
  void *handle = NULL;
  if (dst && key && dnnl_memory_get_data_handle (dst, &handle) == dnnl_success)
    nn_dnnl_weights_cache_store (key, handle, dnnl_memory_desc_get_size (to));
  return dst;
}

dnnl_memory_t
nn_dnnl_reorder_weights (const dnnl_memory_desc_t *from, const void *data,
                         NnTensor *plain, const dnnl_memory_desc_t *to,
                         GError **error)
{
  /* A reorder an earlier process made of these very bytes and layouts. */
  NnDnnlCacheKey key;
  gboolean keyed = nn_dnnl_weights_cache_key (from, data, plain, NULL, 0, to,
                                              &key);
  dnnl_memory_t dst = keyed ? nn_dnnl_weights_memory_cached (&key, to) : NULL;
  return dst ? dst : reorder_into (from, data, keyed ? &key : NULL, to, error);
}

dnnl_memory_t
nn_dnnl_reorder_weights_derived (const dnnl_memory_desc_t *from,
                                 NnTensor *plain, const void *derived,
                                 gsize derived_len, NnDnnlMakeWeights make,
                                 gpointer user_data,
                                 const dnnl_memory_desc_t *to, GError **error)
{
  NnDnnlCacheKey key;
  gboolean keyed = nn_dnnl_weights_cache_key (from, NULL, plain, derived,
                                              derived_len, to, &key);
  dnnl_memory_t dst = keyed ? nn_dnnl_weights_memory_cached (&key, to) : NULL;
  if (dst)
    return dst;
  float *data = make (user_data);
  if (!data)
    {
      g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_FAILED,
                   "cannot allocate the folded weights");
      return NULL;
    }
  /* Not named by a file: by the values themselves, as any others. */
  if (!keyed)
    keyed = nn_dnnl_weights_cache_key (from, data, NULL, NULL, 0, to, &key);
  dst = reorder_into (from, data, keyed ? &key : NULL, to, error);
  g_free (data);
  /* The plain buffer (as large as the weights: 9.4 MB for resnet18's
   * last layers) goes back to the system now, not as a resident hole in
   * the heap (resnet18's later forwards peaked 9 to 15 MB higher). */
  malloc_trim (0);
  return dst;
}

/* --- per-module state ------------------------------------------------- */

static GMutex slots_lock;
static GHashTable *slots;   /* NnModule * -> NnDnnlSlot * */

NnDnnlSlot *
nn_dnnl_slot_lock (NnModule *m)
{
  NnDnnlSlot *slot;

  g_mutex_lock (&slots_lock);
  if (!slots)
    slots = g_hash_table_new (g_direct_hash, g_direct_equal);
  slot = g_hash_table_lookup (slots, m);
  if (!slot)
    {
      slot = g_new0 (NnDnnlSlot, 1);
      g_mutex_init (&slot->lock);
      g_hash_table_insert (slots, m, slot);
    }
  g_mutex_unlock (&slots_lock);
  g_mutex_lock (&slot->lock);
  return slot;
}

void
nn_dnnl_slot_unlock (NnDnnlSlot *slot)
{
  g_mutex_unlock (&slot->lock);
}

void
nn_dnnl_slot_drop (NnModule *m)
{
  NnDnnlSlot *slot = NULL;

  g_mutex_lock (&slots_lock);
  if (slots)
    {
      slot = g_hash_table_lookup (slots, m);
      g_hash_table_remove (slots, m);
    }
  g_mutex_unlock (&slots_lock);
  if (!slot)
    return;
  if (slot->state && slot->state_free)
    slot->state_free (slot->state);
  g_mutex_clear (&slot->lock);
  g_free (slot);
}

NnValue *
nn_dnnl_run_weighted (NnDnnlSlot *slot, NnDnnlPrim *prim,
                      dnnl_memory_t weights, dnnl_memory_t bias, NnTensor *x,
                      NnTensor *out, GError **error)
{
  gboolean ok = prim != NULL;
  if (ok)
    {
      dnnl_exec_arg_t extra[2] = { { DNNL_ARG_WEIGHTS, weights },
                                   { DNNL_ARG_BIAS, bias } };
      ok = nn_dnnl_prim_run (prim, nn_tensor_f32 (x), nn_tensor_f32 (out),
                             bias ? 2 : 1, extra, error);
    }
  nn_dnnl_slot_unlock (slot);
  if (!ok)
    {
      nn_tensor_unref (out);
      return NULL;
    }
  return nn_value_take_tensor (out);
}

NnValue *
nn_dnnl_run_weighted_tensor (NnDnnlSlot *slot, NnDnnlPrim *prim,
                             dnnl_memory_t weights, dnnl_memory_t bias,
                             NnTensor *x, const NnShape *out_shape,
                             gboolean lay_out, NnTensor *sum, GError **error)
{
  NnTensor *out = NULL;
  if (prim)
    {
      dnnl_exec_arg_t extra[2] = { { DNNL_ARG_WEIGHTS, weights },
                                   { DNNL_ARG_BIAS, bias } };
      out = prim_run_tensor (prim, x, out_shape, lay_out, sum,
                             bias ? 2 : 1, extra, error);
    }
  nn_dnnl_slot_unlock (slot);
  return out ? nn_value_take_tensor (out) : NULL;
}

gboolean
nn_dnnl_seen_same (const NnDnnlSeen *s, NnTensor *t)
{
  return s->tensor == t
         && (!t || (s->data == t->data && s->version == nn_tensor_get_version (t)));
}

void
nn_dnnl_seen_set (NnDnnlSeen *s, NnTensor *t)
{
  nn_dnnl_seen_clear (s);
  s->tensor = t ? nn_tensor_ref (t) : NULL;
  s->data = t ? t->data : NULL;
  s->version = t ? nn_tensor_get_version (t) : 0;
}

void
nn_dnnl_seen_clear (NnDnnlSeen *s)
{
  g_clear_pointer (&s->tensor, nn_tensor_unref);
  s->data = NULL;
}

/* The plugin is dlclose()d once its last module and registry are gone:
 * nothing of ours may outlive the unmapping. */
__attribute__ ((destructor)) static void
dnnl_plugin_unload (void)
{
  if (engine)
    dnnl_engine_destroy (engine);
  engine = NULL;
  if (slots)
    g_hash_table_unref (slots);
  slots = NULL;
}

gboolean
nn_dnnl_supports_cpu (const NnLayerType *type, JsonObject *config,
                      const NnArgs *args, const NnCpuInfo *cpu)
{
  return nn_cpu_has (cpu, NN_CPU_SSE4_1);
}

void
nn_dnnl_provider_init (NnLayerType *t, const NnLayerType *ref,
                       const char *doc)
{
  *t = *ref;
  t->doc = doc;
  t->aliases = NULL;
  t->rank = NN_DNNL_RANK;
}
