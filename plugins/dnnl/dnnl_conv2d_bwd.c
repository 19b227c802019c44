/* dnnl plugin: Conv2d's backward on oneDNN (backward_data for the input
 * gradient, backward_weights for the weight and bias gradients), every
 * group count and depthwise included, and its forward in training mode
 * (the forward_training primitive the backward ones were built from, in
 * the layouts they read: no NHWC round trip around every convolution, and
 * 1x1 convolutions on NCHW directly).  The primitives let oneDNN pick
 * its fast (blocked) layouts; the caller's NCHW tensors are reordered in
 * and out per call.  Both are built once per shape and geometry and
 * cached process-wide, since a training loop meets the same shapes every
 * step.  What oneDNN declines, or a reference-only input, runs on the
 * reference backward (plugins/conv/conv2d.c). */
#include "dnnl-private.h"
#include "conv.h"

#include <nnkit/train.h>
#include <omp.h>
#include <string.h>

/* Hashed bytewise: every field is a gint64, so there is no padding. */
typedef struct {
  gint64 n, ic, h, w, oc, ho, wo, groups, kh, kw, sh, sw, dh, dw;
  gint64 pad_top, pad_left, pad_bottom, pad_right, has_bias;
} BwdKey;

/* Which buffer a step reads or writes. */
enum { B_SRC, B_DDST, B_WEI, B_DSRC, B_DWEI, B_DBIAS, B_DDST_D, B_DDST_W,
       B_SRC_W, B_WEI_D, B_DSRC_D, B_DWEI_W,
       /* the training forward: user output, primitive src/weights/dst */
       B_DST, B_SRC_F, B_WEI_F, B_DST_F, N_BUFS };

typedef struct {
  gint ref_count;
  /* (nullable) NULL: oneDNN declined, the reference runs */
  dnnl_primitive_t bwd_d, bwd_w;
  /* (nullable) the training forward (dnnl_forward_training, the hint of
   * both backward primitives); NULL: the inference forward runs */
  dnnl_primitive_t fwd;
  dnnl_memory_desc_t md[N_BUFS];          /* zero for buffers not needed */
  dnnl_memory_desc_t scratch_d, scratch_w, scratch_f;
  /* (nullable) user layout <-> primitive layout; NULL when they agree */
  dnnl_primitive_t r_ddst_d, r_wei_d, r_dsrc_d, r_ddst_w, r_src_w, r_dwei_w;
  dnnl_primitive_t r_src_f, r_wei_f, r_dst_f;
} BwdEntry;

static GMutex cache_lock;
static GHashTable *cache;   /* BwdKey* (owned) -> BwdEntry* */
#define CACHE_MAX 256

/* Destroys @e's primitives (the entry itself stays). */
static void
entry_clear (BwdEntry *e)
{
  dnnl_primitive_t *prims[] = { &e->bwd_d, &e->bwd_w, &e->r_ddst_d, &e->r_wei_d,
                                &e->r_dsrc_d, &e->r_ddst_w, &e->r_src_w, &e->r_dwei_w,
                                &e->fwd, &e->r_src_f, &e->r_wei_f, &e->r_dst_f };

  for (gsize i = 0; i < G_N_ELEMENTS (prims); i++)
    if (*prims[i])
      {
        dnnl_primitive_destroy (*prims[i]);
        *prims[i] = NULL;
      }
}

static void
entry_unref (gpointer p)
{
  BwdEntry *e = p;

  if (!g_atomic_int_dec_and_test (&e->ref_count))
    return;
  entry_clear (e);
  g_free (e);
}

static guint
key_hash (gconstpointer p)
{
  const guint8 *b = p;
  guint h = 2166136261u;   /* FNV-1a */
  for (gsize i = 0; i < sizeof (BwdKey); i++)
    h = (h ^ b[i]) * 16777619u;
  return h;
}

static gboolean
key_equal (gconstpointer a, gconstpointer b)
{
  return memcmp (a, b, sizeof (BwdKey)) == 0;
}

/* A reorder from @from to @to, or NULL (no error) when they are equal. */
static gboolean
reorder_new (const dnnl_memory_desc_t *from, const dnnl_memory_desc_t *to,
             dnnl_primitive_t *out, GError **error)
{
  dnnl_engine_t eng = nn_dnnl_engine (error);
  dnnl_primitive_desc_t pd = NULL;

  *out = NULL;
  if (!eng)
    return FALSE;
  if (dnnl_memory_desc_equal (from, to))
    return TRUE;
  gboolean ok = nn_dnnl_ok (dnnl_reorder_primitive_desc_create (&pd, from, eng, to, eng, NULL),
                            "choosing a reorder", error)
                && nn_dnnl_ok (dnnl_primitive_create (out, pd), "creating a reorder", error);
  if (pd)
    dnnl_primitive_desc_destroy (pd);
  return ok;
}

/* Creates the primitive of @desc with @hint as forward hint; TRUE with
 * *prim NULL when oneDNN has no implementation, or only a reference one
 * (a scalar loop, slower than nnkit's GEMM path). */
static gboolean
prim_new (const_dnnl_op_desc_t desc, const_dnnl_primitive_desc_t hint,
          dnnl_primitive_t *prim, dnnl_primitive_desc_t *pd_out, GError **error)
{
  dnnl_engine_t eng = nn_dnnl_engine (error);
  dnnl_primitive_attr_t attr = eng ? nn_dnnl_attr_new (error) : NULL;
  dnnl_primitive_desc_t pd = NULL;
  const char *impl = NULL;

  *prim = NULL;
  *pd_out = NULL;
  if (!attr)
    return FALSE;
  dnnl_status_t st = dnnl_primitive_desc_create (&pd, desc, attr, eng, hint);
  dnnl_primitive_attr_destroy (attr);
  if (st == dnnl_unimplemented)
    return TRUE;
  if (!nn_dnnl_ok (st, "choosing a convolution backward", error))
    return FALSE;
  if (dnnl_primitive_desc_query (pd, dnnl_query_impl_info_str, 0, &impl) == dnnl_success
      && impl && g_str_has_prefix (impl, "ref"))
    {
      dnnl_primitive_desc_destroy (pd);
      return TRUE;
    }
  if (!nn_dnnl_ok (dnnl_primitive_create (prim, pd), "creating a convolution backward",
                   error))
    {
      dnnl_primitive_desc_destroy (pd);
      return FALSE;
    }
  *pd_out = pd;
  return TRUE;
}

/* @plain: NCHW activations (no reorders) rather than oneDNN's choice. */
static gboolean
entry_build_layout (const BwdKey *k, BwdEntry *e, gboolean plain, GError **error)
{
  dnnl_engine_t eng = nn_dnnl_engine (error);
  gboolean grouped = k->groups > 1;
  dnnl_dims_t sd = { k->n, k->ic, k->h, k->w };
  dnnl_dims_t dd = { k->n, k->oc, k->ho, k->wo };
  dnnl_dims_t wd = { k->oc, k->ic / k->groups, k->kh, k->kw };
  dnnl_dims_t gwd = { k->groups, k->oc / k->groups, k->ic / k->groups, k->kh, k->kw };
  dnnl_dims_t bd = { k->oc };
  dnnl_dims_t strides = { k->sh, k->sw };
  dnnl_dims_t dil = { k->dh - 1, k->dw - 1 };   /* oneDNN counts the gaps */
  dnnl_dims_t pl = { k->pad_top, k->pad_left };
  dnnl_dims_t pr = { k->pad_bottom, k->pad_right };
  dnnl_memory_desc_t src_any, dst_any, w_any, b_md;
  dnnl_convolution_desc_t fwd, bwd_d, bwd_w;
  dnnl_primitive_desc_t fwd_pd = NULL, d_pd = NULL, w_pd = NULL;
  dnnl_primitive_attr_t attr = NULL;
  dnnl_memory_desc_t *md = e->md;

  gboolean ok = eng
    && nn_dnnl_ok (dnnl_memory_desc_init_by_tag (&src_any, 4, sd, dnnl_f32, dnnl_format_tag_any), "src md", error)
    && nn_dnnl_ok (dnnl_memory_desc_init_by_tag (&dst_any, 4, dd, dnnl_f32, dnnl_format_tag_any), "dst md", error)
    && nn_dnnl_ok (grouped
                   ? dnnl_memory_desc_init_by_tag (&w_any, 5, gwd, dnnl_f32, dnnl_format_tag_any)
                   : dnnl_memory_desc_init_by_tag (&w_any, 4, wd, dnnl_f32, dnnl_format_tag_any),
                   "weights md", error)
    && nn_dnnl_ok (dnnl_memory_desc_init_by_tag (&md[B_SRC], 4, sd, dnnl_f32, dnnl_nchw), "src md", error)
    && nn_dnnl_ok (dnnl_memory_desc_init_by_tag (&md[B_DDST], 4, dd, dnnl_f32, dnnl_nchw), "dst md", error)
    && nn_dnnl_ok (grouped
                   ? dnnl_memory_desc_init_by_tag (&md[B_WEI], 5, gwd, dnnl_f32, dnnl_goihw)
                   : dnnl_memory_desc_init_by_tag (&md[B_WEI], 4, wd, dnnl_f32, dnnl_oihw),
                   "weights md", error)
    && nn_dnnl_ok (dnnl_memory_desc_init_by_tag (&b_md, 1, bd, dnnl_f32, dnnl_x), "bias md", error)
    && (attr = nn_dnnl_attr_new (error));
  if (!ok)
    goto out;
  /* Plain: the activations stay NCHW; else oneDNN picks their layouts. */
  if (plain)
    {
      src_any = md[B_SRC];
      dst_any = md[B_DDST];
    }
  ok = nn_dnnl_ok (dnnl_dilated_convolution_forward_desc_init (
                     &fwd, dnnl_forward_training, dnnl_convolution_direct, &src_any,
                     &w_any, k->has_bias ? &b_md : NULL, &dst_any, strides, dil, pl, pr),
                   "describing the convolution", error)
    && nn_dnnl_ok (dnnl_dilated_convolution_backward_data_desc_init (
                     &bwd_d, dnnl_convolution_direct, &src_any, &w_any, &dst_any,
                     strides, dil, pl, pr), "describing the backward data", error)
    && nn_dnnl_ok (dnnl_dilated_convolution_backward_weights_desc_init (
                     &bwd_w, dnnl_convolution_direct, &src_any, &w_any,
                     k->has_bias ? &b_md : NULL, &dst_any, strides, dil, pl, pr),
                   "describing the backward weights", error);
  if (!ok)
    goto out;
  md[B_DSRC] = md[B_SRC];
  md[B_DWEI] = md[B_WEI];
  md[B_DBIAS] = b_md;
  /* The forward's choice is the hint both backward primitives need. */
  dnnl_status_t st = dnnl_primitive_desc_create (&fwd_pd, &fwd, attr, eng, NULL);
  if (st == dnnl_unimplemented)
    goto out;   /* declined: both stay NULL */
  ok = nn_dnnl_ok (st, "choosing a convolution", error)
       && prim_new (&bwd_d, fwd_pd, &e->bwd_d, &d_pd, error)
       && prim_new (&bwd_w, fwd_pd, &e->bwd_w, &w_pd, error);
  if (!ok)
    goto out;
  md[B_DST] = md[B_DDST];
  const char *impl = NULL;
  /* The forward in the layouts its backward reads (no reference kernels,
   * and the bias in the caller's layout, as the forward plugin's). */
  if (dnnl_primitive_desc_query (fwd_pd, dnnl_query_impl_info_str, 0, &impl) == dnnl_success
      && impl && !g_str_has_prefix (impl, "ref")
      && (!k->has_bias
          || dnnl_memory_desc_equal (dnnl_primitive_desc_query_md (fwd_pd, dnnl_query_weights_md, 1),
                                     &b_md)))
    {
      md[B_SRC_F] = *dnnl_primitive_desc_query_md (fwd_pd, dnnl_query_src_md, 0);
      md[B_WEI_F] = *dnnl_primitive_desc_query_md (fwd_pd, dnnl_query_weights_md, 0);
      md[B_DST_F] = *dnnl_primitive_desc_query_md (fwd_pd, dnnl_query_dst_md, 0);
      e->scratch_f = *dnnl_primitive_desc_query_md (fwd_pd, dnnl_query_scratchpad_md, 0);
      ok = nn_dnnl_ok (dnnl_primitive_create (&e->fwd, fwd_pd), "creating a convolution",
                       error)
           && reorder_new (&md[B_SRC], &md[B_SRC_F], &e->r_src_f, error)
           && reorder_new (&md[B_WEI], &md[B_WEI_F], &e->r_wei_f, error)
           && reorder_new (&md[B_DST_F], &md[B_DST], &e->r_dst_f, error);
      if (!ok)
        goto out;
    }
  if (e->bwd_d)
    {
      md[B_DDST_D] = *dnnl_primitive_desc_query_md (d_pd, dnnl_query_diff_dst_md, 0);
      md[B_WEI_D] = *dnnl_primitive_desc_query_md (d_pd, dnnl_query_weights_md, 0);
      md[B_DSRC_D] = *dnnl_primitive_desc_query_md (d_pd, dnnl_query_diff_src_md, 0);
      e->scratch_d = *dnnl_primitive_desc_query_md (d_pd, dnnl_query_scratchpad_md, 0);
      ok = reorder_new (&md[B_DDST], &md[B_DDST_D], &e->r_ddst_d, error)
           && reorder_new (&md[B_WEI], &md[B_WEI_D], &e->r_wei_d, error)
           && reorder_new (&md[B_DSRC_D], &md[B_DSRC], &e->r_dsrc_d, error);
    }
  if (ok && e->bwd_w)
    {
      md[B_DDST_W] = *dnnl_primitive_desc_query_md (w_pd, dnnl_query_diff_dst_md, 0);
      md[B_SRC_W] = *dnnl_primitive_desc_query_md (w_pd, dnnl_query_src_md, 0);
      md[B_DWEI_W] = *dnnl_primitive_desc_query_md (w_pd, dnnl_query_diff_weights_md, 0);
      e->scratch_w = *dnnl_primitive_desc_query_md (w_pd, dnnl_query_scratchpad_md, 0);
      ok = reorder_new (&md[B_DDST], &md[B_DDST_W], &e->r_ddst_w, error)
           && reorder_new (&md[B_SRC], &md[B_SRC_W], &e->r_src_w, error)
           && reorder_new (&md[B_DWEI_W], &md[B_DWEI], &e->r_dwei_w, error);
    }

out:
  if (fwd_pd) dnnl_primitive_desc_destroy (fwd_pd);
  if (d_pd) dnnl_primitive_desc_destroy (d_pd);
  if (w_pd) dnnl_primitive_desc_destroy (w_pd);
  if (attr) dnnl_primitive_attr_destroy (attr);
  return ok;
}

/* A 1x1 stride-1 convolution is one GEMM per image on NCHW: oneDNN's
 * GEMM kernels take the caller's layout, which saves reordering the
 * input, the gradient and the input gradient (most of mobilenet_v2's
 * convolutions).  The rest, or when oneDNN has nothing for NCHW, use its
 * blocked layouts. */
static gboolean
entry_build (const BwdKey *k, BwdEntry *e, GError **error)
{
  if (k->kh == 1 && k->kw == 1 && k->sh == 1 && k->sw == 1 && k->groups == 1
      && k->pad_top == 0 && k->pad_left == 0 && k->pad_bottom == 0 && k->pad_right == 0)
    {
      if (!entry_build_layout (k, e, TRUE, error))
        return FALSE;
      if (e->bwd_d && e->bwd_w)
        return TRUE;
      BwdEntry fresh = { e->ref_count };
      entry_clear (e);
      *e = fresh;
    }
  return entry_build_layout (k, e, FALSE, error);
}

/* Returns: (transfer full) the entry of @k, built on first use; NULL
 * with @error. */
static BwdEntry *
entry_get (const BwdKey *k, GError **error)
{
  BwdEntry *e;

  g_mutex_lock (&cache_lock);
  if (!cache)
    cache = g_hash_table_new_full (key_hash, key_equal, g_free, entry_unref);
  e = g_hash_table_lookup (cache, k);
  if (!e)
    {
      e = g_new0 (BwdEntry, 1);
      e->ref_count = 1;
      if (!entry_build (k, e, error))
        {
          entry_unref (e);
          g_mutex_unlock (&cache_lock);
          return NULL;
        }
      if (g_hash_table_size (cache) >= CACHE_MAX)
        g_hash_table_remove_all (cache);
      g_hash_table_insert (cache, g_memdup2 (k, sizeof *k), e);
    }
  g_atomic_int_inc (&e->ref_count);
  g_mutex_unlock (&cache_lock);
  return e;
}

/* The memories of one run: each wraps a caller's buffer or one of
 * @owned.  Temporary buffers (oneDNN's layouts, scratchpads) are nnkit
 * tensors rather than oneDNN's own allocations: during training the core
 * pools them between steps, where oneDNN's mapped and unmapped every
 * large one per call, so each step faulted its pages in again. */
typedef struct {
  dnnl_memory_t mem[N_BUFS];
  NnTensor *owned[N_BUFS + 1];
  dnnl_stream_t stream;
} Run;

static void
run_clear (Run *r)
{
  for (int i = 0; i < N_BUFS; i++)
    if (r->mem[i])
      dnnl_memory_destroy (r->mem[i]);
  for (int i = 0; i < N_BUFS + 1; i++)
    if (r->owned[i])
      nn_tensor_unref (r->owned[i]);
  if (r->stream)
    dnnl_stream_destroy (r->stream);
}

/* Returns: (transfer none) an uninitialised buffer of @bytes owned by @r as
 * slot @slot, or NULL with @error. */
static void *
run_buffer (Run *r, int slot, gsize bytes, GError **error)
{
  NnShape s = { 1, { (gint64) ((bytes + sizeof (float) - 1) / sizeof (float)) } };
  r->owned[slot] = nn_tensor_new_uninitialized (NN_DTYPE_F32, &s);
  if (!r->owned[slot])
    g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_FAILED,
                 "cannot allocate a convolution gradient buffer of %" G_GSIZE_FORMAT
                 " bytes", bytes);
  return r->owned[slot] ? nn_tensor_f32 (r->owned[slot]) : NULL;
}

/* The memory of buffer @i: wrapping @data, or a buffer of its own (@data
 * NULL). */
static gboolean
run_mem (Run *r, const BwdEntry *e, int i, void *data, GError **error)
{
  dnnl_engine_t eng = nn_dnnl_engine (error);
  if (eng && !data)
    data = run_buffer (r, i, dnnl_memory_desc_get_size (&e->md[i]), error);
  return eng && data
         && nn_dnnl_ok (dnnl_memory_create (&r->mem[i], &e->md[i], eng, data),
                        "allocating a convolution gradient buffer", error);
}

/* The primitive-layout memory of user buffer @user as @i: the user's own
 * when no reorder is needed (@reorder NULL), else a new one, filled by
 * the reorder when @fill. */
static gboolean
run_layout (Run *r, const BwdEntry *e, int i, int user, dnnl_primitive_t reorder,
            gboolean fill, GError **error)
{
  if (!reorder)
    return TRUE;
  if (!run_mem (r, e, i, NULL, error))
    return FALSE;
  if (!fill)
    return TRUE;
  dnnl_exec_arg_t a[] = { { DNNL_ARG_FROM, r->mem[user] }, { DNNL_ARG_TO, r->mem[i] } };
  return nn_dnnl_ok (dnnl_primitive_execute (reorder, r->stream, 2, a), "reordering", error);
}

static dnnl_memory_t
run_get (Run *r, int i, int user)
{
  return r->mem[i] ? r->mem[i] : r->mem[user];
}

static gboolean
exec_with_scratch (Run *r, dnnl_primitive_t prim, const dnnl_memory_desc_t *scratch_md,
                   int n, dnnl_exec_arg_t *args, GError **error)
{
  dnnl_engine_t eng = nn_dnnl_engine (error);
  dnnl_memory_t scratch = NULL;
  gboolean ok = eng != NULL;
  gsize bytes = dnnl_memory_desc_get_size (scratch_md);

  /* A scratchpad per run, so that runs from several threads share none. */
  if (ok && bytes > 0)
    {
      if (r->owned[N_BUFS])
        {
          nn_tensor_unref (r->owned[N_BUFS]);
          r->owned[N_BUFS] = NULL;
        }
      void *data = run_buffer (r, N_BUFS, bytes, error);
      ok = data && nn_dnnl_ok (dnnl_memory_create (&scratch, scratch_md, eng, data),
                               "allocating the scratchpad", error);
      args[n++] = (dnnl_exec_arg_t) { DNNL_ARG_SCRATCHPAD, scratch };
    }
  ok = ok && nn_dnnl_ok (dnnl_primitive_execute (prim, r->stream, n, args),
                         "running the convolution backward", error);
  if (scratch)
    dnnl_memory_destroy (scratch);
  return ok;
}

/* Runs @e: the input gradient into @dx (nullable: not wanted) and the
 * weight and bias gradients into @dw and @db (nullable), overwriting.
 * @src_w (nullable): the input already in backward_weights' layout. */
static gboolean
entry_run (BwdEntry *e, const float *x, const float *w, const float *go,
           float *dx, float *dw, float *db, float *src_w, GError **error)
{
  dnnl_engine_t eng = nn_dnnl_engine (error);
  Run r = { { NULL }, { NULL }, NULL };
  gboolean ok = eng
    && nn_dnnl_ok (dnnl_stream_create (&r.stream, eng, dnnl_stream_default_flags),
                   "creating a stream", error)
    && run_mem (&r, e, B_DDST, (void *) go, error);

  omp_set_num_threads (nn_get_num_threads ());
  if (ok && dx)
    {
      ok = run_mem (&r, e, B_WEI, (void *) w, error)
           && run_mem (&r, e, B_DSRC, dx, error)
           && run_layout (&r, e, B_DDST_D, B_DDST, e->r_ddst_d, TRUE, error)
           && run_layout (&r, e, B_WEI_D, B_WEI, e->r_wei_d, TRUE, error)
           && run_layout (&r, e, B_DSRC_D, B_DSRC, e->r_dsrc_d, FALSE, error);
      if (ok)
        {
          dnnl_exec_arg_t a[4] = {
            { DNNL_ARG_DIFF_DST, run_get (&r, B_DDST_D, B_DDST) },
            { DNNL_ARG_WEIGHTS, run_get (&r, B_WEI_D, B_WEI) },
            { DNNL_ARG_DIFF_SRC, run_get (&r, B_DSRC_D, B_DSRC) },
          };
          ok = exec_with_scratch (&r, e->bwd_d, &e->scratch_d, 3, a, error);
        }
      if (ok && e->r_dsrc_d)
        {
          dnnl_exec_arg_t a[] = { { DNNL_ARG_FROM, r.mem[B_DSRC_D] },
                                  { DNNL_ARG_TO, r.mem[B_DSRC] } };
          ok = nn_dnnl_ok (dnnl_primitive_execute (e->r_dsrc_d, r.stream, 2, a),
                           "reordering", error);
        }
    }
  if (ok && (dw || db))
    {
      /* The weight gradient is always computed (oneDNN has no bias-only
       * mode); without @dw it goes to a buffer of its own. */
      gboolean same_ddst = r.mem[B_DDST_D] && e->r_ddst_w
                           && dnnl_memory_desc_equal (&e->md[B_DDST_D], &e->md[B_DDST_W]);
      ok = run_mem (&r, e, B_SRC, (void *) x, error)
           && run_mem (&r, e, B_DWEI, dw, error)
           && (!db || run_mem (&r, e, B_DBIAS, db, error))
           && (same_ddst || run_layout (&r, e, B_DDST_W, B_DDST, e->r_ddst_w, TRUE, error))
           && (src_w ? run_mem (&r, e, B_SRC_W, src_w, error)
                     : run_layout (&r, e, B_SRC_W, B_SRC, e->r_src_w, TRUE, error))
           && run_layout (&r, e, B_DWEI_W, B_DWEI, e->r_dwei_w, FALSE, error);
      if (ok)
        {
          dnnl_memory_t ddst = same_ddst ? r.mem[B_DDST_D] : run_get (&r, B_DDST_W, B_DDST);
          dnnl_exec_arg_t a[5] = {
            { DNNL_ARG_SRC, run_get (&r, B_SRC_W, B_SRC) },
            { DNNL_ARG_DIFF_DST, ddst },
            { DNNL_ARG_DIFF_WEIGHTS, run_get (&r, B_DWEI_W, B_DWEI) },
            { DNNL_ARG_DIFF_BIAS, r.mem[B_DBIAS] },
          };
          ok = exec_with_scratch (&r, e->bwd_w, &e->scratch_w, db ? 4 : 3, a, error);
        }
      if (ok && e->r_dwei_w)
        {
          dnnl_exec_arg_t a[] = { { DNNL_ARG_FROM, r.mem[B_DWEI_W] },
                                  { DNNL_ARG_TO, r.mem[B_DWEI] } };
          ok = nn_dnnl_ok (dnnl_primitive_execute (e->r_dwei_w, r.stream, 2, a),
                           "reordering", error);
        }
    }
  ok = ok && nn_dnnl_ok (dnnl_stream_wait (r.stream), "waiting for the stream", error);
  run_clear (&r);
  return ok;
}

/* Runs @e's training forward: @x and @w (NCHW, OIHW) into @y (NCHW). */
static gboolean
entry_run_forward (BwdEntry *e, const float *x, const float *w, const float *b, float *y,
                   NnTensor **blocked_src, GError **error)
{
  dnnl_engine_t eng = nn_dnnl_engine (error);
  dnnl_memory_t bias = NULL;
  Run r = { { NULL }, { NULL }, NULL };
  gboolean ok = eng
    && nn_dnnl_ok (dnnl_stream_create (&r.stream, eng, dnnl_stream_default_flags),
                   "creating a stream", error)
    && run_mem (&r, e, B_SRC, (void *) x, error)
    && run_mem (&r, e, B_WEI, (void *) w, error)
    && run_mem (&r, e, B_DST, y, error)
    && (!b || nn_dnnl_ok (dnnl_memory_create (&bias, &e->md[B_DBIAS], eng, (void *) b),
                          "wrapping the bias", error));

  omp_set_num_threads (nn_get_num_threads ());
  ok = ok && run_layout (&r, e, B_SRC_F, B_SRC, e->r_src_f, TRUE, error)
       && run_layout (&r, e, B_WEI_F, B_WEI, e->r_wei_f, TRUE, error)
       && run_layout (&r, e, B_DST_F, B_DST, e->r_dst_f, FALSE, error);
  if (ok)
    {
      dnnl_exec_arg_t a[5] = {
        { DNNL_ARG_SRC, run_get (&r, B_SRC_F, B_SRC) },
        { DNNL_ARG_WEIGHTS, run_get (&r, B_WEI_F, B_WEI) },
        { DNNL_ARG_DST, run_get (&r, B_DST_F, B_DST) },
        { DNNL_ARG_BIAS, bias },
      };
      ok = exec_with_scratch (&r, e->fwd, &e->scratch_f, bias ? 4 : 3, a, error);
    }
  if (ok && e->r_dst_f)
    {
      dnnl_exec_arg_t a[] = { { DNNL_ARG_FROM, r.mem[B_DST_F] }, { DNNL_ARG_TO, r.mem[B_DST] } };
      ok = nn_dnnl_ok (dnnl_primitive_execute (e->r_dst_f, r.stream, 2, a), "reordering",
                       error);
    }
  ok = ok && nn_dnnl_ok (dnnl_stream_wait (r.stream), "waiting for the stream", error);
  if (ok && blocked_src && r.owned[B_SRC_F])
    *blocked_src = nn_tensor_ref (r.owned[B_SRC_F]);
  if (bias)
    dnnl_memory_destroy (bias);
  run_clear (&r);
  return ok;
}

/* --- the forward's reordered input, kept for backward_weights ----------
 * The training forward reorders its input into the layout that
 * backward_weights reads too; when a tape records the call and the
 * weights want gradients, that copy is kept (one per module, the last
 * call's) and the backward takes it instead of reordering the input
 * again.  Matched by the input tensor, its data and version, and the
 * shape key; anything else reorders as before. */
typedef struct {
  BwdKey key;
  NnTensor *x;          /* compared by address only */
  gpointer x_data;
  guint64 x_version;
  NnTensor *blocked;    /* holds a reference */
} SavedSrc;

static GMutex saved_lock;
static GHashTable *saved_src;   /* NnModule * -> SavedSrc * */

static void
saved_src_free (gpointer p)
{
  SavedSrc *s = p;
  nn_tensor_unref (s->blocked);
  g_free (s);
}

static void
saved_src_put (NnModule *self, SavedSrc *s)
{
  g_mutex_lock (&saved_lock);
  if (!saved_src)
    saved_src = g_hash_table_new_full (g_direct_hash, g_direct_equal, NULL, saved_src_free);
  if (s)
    g_hash_table_replace (saved_src, self, s);
  else
    g_hash_table_remove (saved_src, self);
  g_mutex_unlock (&saved_lock);
}

/* Returns: (transfer full) (nullable) @self's kept input of @x for @k. */
static NnTensor *
saved_src_take (NnModule *self, NnTensor *x, const BwdKey *k)
{
  NnTensor *t = NULL;
  g_mutex_lock (&saved_lock);
  SavedSrc *s = saved_src ? g_hash_table_lookup (saved_src, self) : NULL;
  if (s && s->x == x && s->x_data == x->data && s->x_version == nn_tensor_get_version (x)
      && memcmp (&s->key, k, sizeof *k) == 0)
    t = nn_tensor_ref (s->blocked);
  if (s)
    g_hash_table_remove (saved_src, self);
  g_mutex_unlock (&saved_lock);
  return t;
}

/* The key of @g on input shape @xs, or FALSE for a shape the forward
 * plugin should judge (it names what is wrong). */
static gboolean
key_for (const NnConvGeom *g, const NnShape *xs, BwdKey *k)
{
  const guint nd = xs->ndim;
  if (nd != 3 && nd != 4)
    return FALSE;
  gint64 h = xs->dims[nd - 2], w = xs->dims[nd - 1];
  gint64 eh = g->dh * (g->kh - 1) + 1, ew = g->dw * (g->kw - 1) + 1;
  if (xs->dims[nd - 3] != g->in_channels || h + g->pad_top + g->pad_bottom < eh
      || w + g->pad_left + g->pad_right < ew)
    return FALSE;
  *k = (BwdKey) {
    .n = nd == 4 ? xs->dims[0] : 1, .ic = g->in_channels, .h = h, .w = w,
    .oc = g->out_channels, .ho = (h + g->pad_top + g->pad_bottom - eh) / g->sh + 1,
    .wo = (w + g->pad_left + g->pad_right - ew) / g->sw + 1, .groups = g->groups,
    .kh = g->kh, .kw = g->kw, .sh = g->sh, .sw = g->sw, .dh = g->dh, .dw = g->dw,
    .pad_top = g->pad_top, .pad_left = g->pad_left, .pad_bottom = g->pad_bottom,
    .pad_right = g->pad_right, .has_bias = g->has_bias,
  };
  return k->n > 0 && k->ho > 0 && k->wo > 0;
}

gboolean
nn_dnnl_conv2d_train_forward (NnModule *self, NnCall *call, const NnArgs *args,
                              NnValue **out, GError **error)
{
  const NnConvGeom *g = nn_module_get_private (self);
  NnTensor *x = nn_args_tensor (args, 0);
  NnTensor *w = nn_module_get_parameter (self, "weight");
  NnTensor *b = g->has_bias ? nn_module_get_parameter (self, "bias") : NULL;
  NnShape ws = { 4, { g->out_channels, g->in_channels / g->groups, g->kh, g->kw } };
  NnShape bs = { 1, { g->out_channels } };
  BwdKey k;

  *out = NULL;
  saved_src_put (self, NULL);   /* a new call: the last one's is stale */
  if (!x || !nn_tensor_f32 (x) || nn_tensor_numel (x) == 0 || !key_for (g, &x->shape, &k)
      || g->pad_mode != NN_CONV_PAD_ZEROS || !w || !nn_tensor_f32 (w)
      || !nn_shape_equal (&w->shape, &ws)
      || (g->has_bias && (!b || !nn_tensor_f32 (b) || !nn_shape_equal (&b->shape, &bs))))
    return FALSE;
  GError *e_build = NULL;
  BwdEntry *e = entry_get (&k, &e_build);
  if (!e || !e->fwd)
    {
      /* The inference forward reports or runs it. */
      g_clear_error (&e_build);
      if (e)
        entry_unref (e);
      return FALSE;
    }
  NnShape os = x->shape;
  os.dims[os.ndim - 3] = k.oc;
  os.dims[os.ndim - 2] = k.ho;
  os.dims[os.ndim - 1] = k.wo;
  NnTensor *y = nn_tensor_new_uninitialized (NN_DTYPE_F32, &os);
  if (!y)
    {
      entry_unref (e);
      g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_FAILED,
                   "cannot allocate the output");
      return TRUE;
    }
  const gboolean keep = e->r_src_f && e->bwd_w
                        && dnnl_memory_desc_equal (&e->md[B_SRC_F], &e->md[B_SRC_W])
                        && nn_call_is_recording (call)
                        && (nn_module_param_requires_grad (self, "weight")
                            || (b && nn_module_param_requires_grad (self, "bias")));
  NnTensor *blocked = NULL;
  gboolean ok = entry_run_forward (e, nn_tensor_f32 (x), nn_tensor_f32 (w),
                                   b ? nn_tensor_f32 (b) : NULL, nn_tensor_f32 (y),
                                   keep ? &blocked : NULL, error);
  entry_unref (e);
  if (ok && blocked)
    {
      SavedSrc *sv = g_new0 (SavedSrc, 1);
      sv->key = k;
      sv->x = x;
      sv->x_data = x->data;
      sv->x_version = nn_tensor_get_version (x);
      sv->blocked = blocked;
      saved_src_put (self, sv);
    }
  else if (blocked)
    nn_tensor_unref (blocked);
  if (!ok)
    {
      nn_tensor_unref (y);
      return TRUE;
    }
  *out = nn_value_take_tensor (y);
  return TRUE;
}

static void
add_into (float *acc, const float *g, gint64 n)
{
  for (gint64 i = 0; i < n; i++)
    acc[i] += g[i];
}

/* Parameter gradients accumulate (+=) as PyTorch's .grad; oneDNN
 * overwrites, so it writes to scratch that is then added. */
static NnValue *
dnnl_conv2d_backward (NnModule *self, NnCall *call, const NnArgs *args,
                      const NnValue *out, const NnValue *grad_out, GError **error)
{
  const NnConvGeom *g = nn_module_get_private (self);
  NnTensor *x = nn_args_tensor (args, 0);
  NnTensor *w = nn_module_get_parameter (self, "weight");
  NnTensor *gt = nn_value_get_tensor (grad_out);
  NnShape ws = { 4, { g->out_channels, g->in_channels / g->groups, g->kh, g->kw } };
  const guint nd = x->shape.ndim;

  if ((nd != 3 && nd != 4) || !gt || gt->shape.ndim != nd || g->pad_mode != NN_CONV_PAD_ZEROS
      || !nn_tensor_f32 (x) || !nn_tensor_f32 (gt) || !w || !nn_tensor_f32 (w)
      || !nn_shape_equal (&w->shape, &ws) || nn_tensor_numel (x) == 0
      || nn_tensor_numel (gt) == 0)
    return nn_conv2d_type.backward (self, call, args, out, grad_out, error);

  BwdKey k = {
    .n = nd == 4 ? x->shape.dims[0] : 1, .ic = g->in_channels,
    .h = x->shape.dims[nd - 2], .w = x->shape.dims[nd - 1], .oc = g->out_channels,
    .ho = gt->shape.dims[nd - 2], .wo = gt->shape.dims[nd - 1], .groups = g->groups,
    .kh = g->kh, .kw = g->kw, .sh = g->sh, .sw = g->sw, .dh = g->dh, .dw = g->dw,
    .pad_top = g->pad_top, .pad_left = g->pad_left, .pad_bottom = g->pad_bottom,
    .pad_right = g->pad_right, .has_bias = g->has_bias,
  };
  float *gw = nn_module_grad_f32 (self, "weight");
  float *gb = g->has_bias ? nn_module_grad_f32 (self, "bias") : NULL;
  /* A network's first convolution needs no input gradient: skipped, as
   * PyTorch's output_mask does. */
  const gboolean want_dx = nn_call_input_needs_grad (call, args, 0);
  NnValue *res = nn_value_new_tuple ();
  if (!want_dx && !gw && !gb)
    {
      nn_value_append (res, nn_value_new_none ());
      return res;
    }
  BwdEntry *e = entry_get (&k, error);
  if (!e)
    {
      nn_value_unref (res);
      return NULL;
    }
  if ((want_dx && !e->bwd_d) || (!e->bwd_w && (gw || gb)))
    {
      entry_unref (e);
      nn_value_unref (res);
      return nn_conv2d_type.backward (self, call, args, out, grad_out, error);
    }

  const gint64 nw = nn_tensor_numel (w);
  /* Uninitialised: every result below is written in full by oneDNN. */
  NnTensor *dx = want_dx ? nn_tensor_new_uninitialized (NN_DTYPE_F32, &x->shape) : NULL;
  /* Tensors, not heap blocks: pooled in training like the other
   * buffers of a step (a weight gradient reaches megabytes). */
  NnShape dws = { 1, { nw } }, dbs = { 1, { g->out_channels } };
  g_autoptr (NnTensor) dwt = gw || gb ? nn_tensor_new_uninitialized (NN_DTYPE_F32, &dws) : NULL;
  g_autoptr (NnTensor) dbt = gb ? nn_tensor_new_uninitialized (NN_DTYPE_F32, &dbs) : NULL;
  float *dw = dwt ? nn_tensor_f32 (dwt) : NULL, *db = dbt ? nn_tensor_f32 (dbt) : NULL;
  if ((want_dx && !dx) || ((gw || gb) && !dw) || (gb && !db))
    {
      entry_unref (e);
      if (dx)
        nn_tensor_unref (dx);
      nn_value_unref (res);
      g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_FAILED,
                   "cannot allocate the convolution's gradients");
      return NULL;
    }
  g_autoptr (NnTensor) src_w = (gw || gb) ? saved_src_take (self, x, &k) : NULL;
  gboolean ok = entry_run (e, nn_tensor_f32 (x), nn_tensor_f32 (w), nn_tensor_f32 (gt),
                           dx ? nn_tensor_f32 (dx) : NULL, dw, db,
                           src_w ? nn_tensor_f32 (src_w) : NULL, error);
  entry_unref (e);
  if (!ok)
    {
      if (dx)
        nn_tensor_unref (dx);
      nn_value_unref (res);
      return NULL;
    }
  if (gw)
    add_into (gw, dw, nw);
  if (gb)
    add_into (gb, db, g->out_channels);
  nn_value_append (res, dx ? nn_value_take_tensor (dx) : nn_value_new_none ());
  return res;
}

void
nn_dnnl_conv2d_backward_setup (NnLayerType *t)
{
  t->backward = dnnl_conv2d_backward;
}
