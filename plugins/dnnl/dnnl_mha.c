/* dnnl plugin: MultiheadAttention with its products on oneDNN: the q/k/v
 * projections (self-attention: one inner product with the weights
 * reordered once, as Linear's; else three matmuls), Q K^T and
 * P V per head as batched products, the masks (bool or float attn_mask
 * [L, S] or [N * H, L, S], key_padding_mask [N, S]) added to the scores,
 * softmax on oneDNN's, in chunks of heads whose scores fit L2; out_proj
 * is the child, called through the core as by the reference.  The
 * reference type (plugins/attention, compiled in) keeps schema, create,
 * infer and repr, and runs whatever the fast path does not take:
 * add_bias_kv, add_zero_attn, separate kdim/vdim, meta masks, bad shapes
 * (which it reports). */
#include "dnnl-private.h"
#include "attention.h"

#include <math.h>
#include <string.h>
#include <unistd.h>

typedef struct {
  gint64 n, h, l, s, hd, e;
  gboolean bf;        /* rows are [N, L] (batch first) rather than [L, N] */
  const float *q, *k, *v;   /* projections: element (row, c) at row * stride + c */
  gint64 q_stride, k_stride, v_stride;
  float *qh, *kh, *vh;      /* head-major [N, H, L or S, hd] */
  float *p;                 /* scores then probabilities of one chunk:
                             * [chunk heads, L, S] */
  gint64 slab0;             /* the chunk's first (batch, head) slab */
  float *o;                 /* [N, H, L, hd] */
  float *attn;              /* the query's layout [rows, E] */
  float scale;
  NnTensor *am, *kpm;       /* (nullable) masks, shapes checked */
  float *kpm_add;           /* kpm as [N, S] addends (0 or -inf) */
} MhaRun;

static inline gint64
row_of (const MhaRun *m, gint64 b, gint64 t, gint64 len)
{
  return m->bf ? b * len + t : t * m->n + b;
}

/* (n, t) rows to head-major [N, H, T, hd]; @scale applied (the query's
 * 1 / sqrt(hd), as PyTorch scales q before the product). */
static void
to_heads (const MhaRun *m, const float *src, gint64 stride, gint64 len,
          float *dst, float scale, gsize begin, gsize end)
{
  for (gsize i = begin; i < end; i++)
    {
      gint64 b = (gint64) i / len, t = (gint64) i % len;
      const float *x = src + row_of (m, b, t, len) * stride;
      for (gint64 hh = 0; hh < m->h; hh++)
        {
          float *y = dst + ((b * m->h + hh) * len + t) * m->hd;
          const float *xh = x + hh * m->hd;
          for (gint64 d = 0; d < m->hd; d++)
            y[d] = xh[d] * scale;
        }
    }
}

static void
split_q (gsize begin, gsize end, gpointer data)
{
  MhaRun *m = data;
  to_heads (m, m->q, m->q_stride, m->l, m->qh, m->scale, begin, end);
}

static void
split_kv (gsize begin, gsize end, gpointer data)
{
  MhaRun *m = data;
  to_heads (m, m->k, m->k_stride, m->s, m->kh, 1.0f, begin, end);
  to_heads (m, m->v, m->v_stride, m->s, m->vh, 1.0f, begin, end);
}

/* Softmax of each [S] row, sums in double as the reference: where
 * oneDNN declines its softmax. */
static void
softmax_rows (gsize begin, gsize end, gpointer data)
{
  MhaRun *m = data;
  for (gsize r = begin; r < end; r++)
    {
      float *x = m->p + (gint64) r * m->s, mx = -INFINITY;
      double sum = 0;
      for (gint64 j = 0; j < m->s; j++)
        mx = fmaxf (mx, x[j]);
      for (gint64 j = 0; j < m->s; j++)
        sum += (x[j] = expf (x[j] - mx));
      float inv = (float) (1.0 / sum);
      for (gint64 j = 0; j < m->s; j++)
        x[j] *= inv;
    }
}

static inline float
mask_add (NnTensor *mask, gint64 i)
{
  if (mask->dtype == NN_DTYPE_BOOL)
    return ((const guint8 *) mask->data)[i] ? -INFINITY : 0.0f;
  return nn_tensor_f32 (mask)[i];
}

/* Adds the masks to score rows (n, h, i) of [N, H, L, S], as the
 * reference does before its softmax: a row all -inf comes out NaN there
 * and here. */
static void
add_masks (gsize begin, gsize end, gpointer data)
{
  MhaRun *m = data;
  for (gsize lr = begin; lr < end; lr++)
    {
      /* @lr counts the chunk's rows; r is the row of [N, H, L]. */
      gint64 r = m->slab0 * m->l + (gint64) lr;
      gint64 i = r % m->l, bh = r / m->l, b = bh / m->h;
      float *x = m->p + (gint64) lr * m->s;
      if (m->am)
        {
          gint64 at = (m->am->shape.ndim == 2 ? i : bh * m->l + i) * m->s;
          if (m->am->dtype == NN_DTYPE_BOOL)
            {
              const guint8 *mk = (const guint8 *) m->am->data + at;
              for (gint64 j = 0; j < m->s; j++)
                x[j] = mk[j] ? -INFINITY : x[j];
            }
          else
            {
              const float *mk = nn_tensor_f32 (m->am) + at;
              for (gint64 j = 0; j < m->s; j++)
                x[j] += mk[j];
            }
        }
      if (m->kpm_add)
        {
          const float *mk = m->kpm_add + b * m->s;
          for (gint64 j = 0; j < m->s; j++)
            x[j] += mk[j];
        }
    }
}

static void
merge_heads (gsize begin, gsize end, gpointer data)
{
  MhaRun *m = data;
  for (gsize i = begin; i < end; i++)
    {
      gint64 b = (gint64) i / m->l, t = (gint64) i % m->l;
      float *y = m->attn + row_of (m, b, t, m->l) * m->e;
      for (gint64 hh = 0; hh < m->h; hh++)
        memcpy (y + hh * m->hd, m->o + ((b * m->h + hh) * m->l + t) * m->hd,
                sizeof (float) * m->hd);
    }
}

/* rows x [rows, in] @ w[off.., in]^T + bias -> y [rows, out]. */
static NnDnnlResult
project (const float *x, gint64 rows, gint64 in, const float *w, gint64 out,
         const float *bias, float *y, GError **error)
{
  NnDnnlMatmulKey key;

  nn_dnnl_matmul_key_init (&key, 2);
  key.bias = bias != NULL;
  key.a_dims[0] = rows, key.a_dims[1] = in;
  key.a_strides[0] = in, key.a_strides[1] = 1;
  key.b_dims[0] = in, key.b_dims[1] = out;
  key.b_strides[0] = 1, key.b_strides[1] = in;
  key.c_dims[0] = rows, key.c_dims[1] = out;
  return nn_dnnl_matmul_run (&key, x, w, bias, y, error);
}

/* [B, M, K] @ [B, K, N] -> [B, M, N]; @b_trans: @b is stored [B, N, K]. */
static NnDnnlResult
batched (gint64 batch, gint64 m, gint64 k, gint64 n, const float *a,
         const float *b, gboolean b_trans, float *c, GError **error)
{
  NnDnnlMatmulKey key;

  nn_dnnl_matmul_key_init (&key, 3);
  key.a_dims[0] = batch, key.a_dims[1] = m, key.a_dims[2] = k;
  key.b_dims[0] = batch, key.b_dims[1] = k, key.b_dims[2] = n;
  key.c_dims[0] = batch, key.c_dims[1] = m, key.c_dims[2] = n;
  nn_dnnl_matmul_key_contiguous (key.a_dims, 3, key.a_strides);
  if (b_trans)
    {
      key.b_strides[0] = k * n, key.b_strides[1] = 1, key.b_strides[2] = k;
    }
  else
    nn_dnnl_matmul_key_contiguous (key.b_dims, 3, key.b_strides);
  return nn_dnnl_matmul_run (&key, a, b, NULL, c, error);
}

static gboolean
plain (NnTensor *t)
{
  return t && t->dtype == NN_DTYPE_F32 && !nn_tensor_is_meta (t)
         && nn_tensor_numel (t) > 0;
}

/* A mask the fast path adds: float32 or bool, real, of shape @want. */
static gboolean
mask_fits (NnTensor *mask, const NnShape *want)
{
  return !mask || ((mask->dtype == NN_DTYPE_F32 || mask->dtype == NN_DTYPE_BOOL)
                   && !nn_tensor_is_meta (mask) && mask->data
                   && nn_shape_equal (&mask->shape, want));
}

/* The cases the fast path takes; everything else is the reference's. */
static gboolean
fast_path (NnModule *self, const NnArgs *args, gint64 e, gint64 heads)
{
  NnTensor *q = nn_args_tensor (args, 0), *k = nn_args_tensor (args, 1);
  NnTensor *v = nn_args_tensor (args, 2);
  NnTensor *w = nn_module_get_parameter (self, "in_proj_weight");
  NnTensor *b = nn_module_get_parameter (self, "in_proj_bias");
  NnShape ws = { 2, { 3 * e, e } }, bs = { 1, { 3 * e } };
  guint nd = q ? q->shape.ndim : 0;

  if (nn_module_config_bool (self, "add_bias_kv")
      || nn_module_config_bool (self, "add_zero_attn")
      || !plain (q) || !plain (k) || !plain (v) || (nd != 2 && nd != 3)
      || k->shape.ndim != nd || !nn_shape_equal (&k->shape, &v->shape)
      || q->shape.dims[nd - 1] != e || k->shape.dims[nd - 1] != e
      || !w || !nn_shape_equal (&w->shape, &ws) || !nn_tensor_f32 (w)
      || (nn_module_config_bool (self, "bias")
          && (!b || !nn_shape_equal (&b->shape, &bs) || !nn_tensor_f32 (b))))
    return FALSE;
  /* Batched: the batch dim (0 batch first, else 1) must agree. */
  gboolean bf = nd == 2 || nn_module_config_bool (self, "batch_first");
  gint64 n = 1, l = q->shape.dims[0], s = k->shape.dims[0];
  if (nd == 3)
    {
      guint bd = bf ? 0 : 1;
      if (q->shape.dims[bd] != k->shape.dims[bd])
        return FALSE;
      n = q->shape.dims[bd];
      l = q->shape.dims[1 - bd];
      s = k->shape.dims[1 - bd];
    }
  /* The masks' shapes as the reference requires them (it reports others). */
  NnTensor *am = nn_args_tensor (args, 5), *kpm = nn_args_tensor (args, 3);
  NnShape am2 = { 2, { l, s } }, am3 = { 3, { n * heads, l, s } };
  NnShape kpm_want = nd == 3 ? (NnShape) { 2, { n, s } } : (NnShape) { 1, { s } };
  return (!am || mask_fits (am, am->shape.ndim == 2 ? &am2 : &am3))
         && mask_fits (kpm, &kpm_want);
}

static gboolean
ok_or_fallback (NnDnnlResult r, gboolean *declined)
{
  if (r == NN_DNNL_DECLINED)
    *declined = TRUE;
  return r == NN_DNNL_DONE;
}

/* An uninitialised float32 buffer of @n elements, as a tensor. */
static NnTensor *
flat_new (gint64 n)
{
  NnShape s = { 1, { MAX (n, 1) } };
  return nn_tensor_new_uninitialized (NN_DTYPE_F32, &s);
}

/* The per-core cache the scores of one chunk should fit: L2 where the C
 * library knows it, else 1 MiB (Zen 4's, and most recent server cores'). */
static gint64
l2_bytes (void)
{
  static gint64 bytes;
  if (g_once_init_enter (&bytes))
    {
      long l2 = -1;
#ifdef _SC_LEVEL2_CACHE_SIZE
      l2 = sysconf (_SC_LEVEL2_CACHE_SIZE);
#endif
      g_once_init_leave (&bytes, l2 > 0 ? (gint64) l2 : 1 << 20);
    }
  return bytes;
}

/* How many (batch, head) slabs of [L, S] scores one chunk takes: as many
 * as fit L2 (at least one).  Scores written by Q K^T are then still in
 * L2 for the softmax and P V; all of a large batch's scores at once
 * (vit_b_16 at batch 8: 15 MB) went to memory and back three times. */
static gint64
attn_chunk (gint64 slabs, gint64 l, gint64 s)
{
  gint64 per = MAX (l * s * (gint64) sizeof (float), 1);
  return CLAMP (l2_bytes () / per, 1, slabs);
}

/* Q K^T, the masks, softmax and P V for the @count slabs from
 * m->slab0, scores in m->p.  FALSE with @declined set where oneDNN
 * declined (the caller runs the reference), or with @error set. */
static gboolean
attend_chunk (MhaRun *m, gint64 count, NnThreadPool *pool, gboolean *declined,
              GError **error)
{
  const gint64 rows = count * m->l;
  const float *q = m->qh + m->slab0 * m->l * m->hd;
  const float *k = m->kh + m->slab0 * m->s * m->hd;
  const float *v = m->vh + m->slab0 * m->s * m->hd;
  float *o = m->o + m->slab0 * m->l * m->hd;

  if (!ok_or_fallback (batched (count, m->l, m->hd, m->s, q, k, TRUE, m->p, error),
                       declined))
    return FALSE;
  if (m->am || m->kpm)
    nn_thread_pool_parallel_for_work (pool, (gsize) rows, rows * m->s, add_masks, m);
  /* oneDNN's vectorised exp; our rows only where it has none. */
  switch (nn_dnnl_softmax_run (rows, m->s, 1, FALSE, m->p, m->p, error))
    {
    case NN_DNNL_DONE:
      break;
    case NN_DNNL_DECLINED:
      nn_thread_pool_parallel_for_work (pool, (gsize) rows, 4 * rows * m->s,
                                        softmax_rows, m);
      break;
    case NN_DNNL_FAILED:
    default:
      return FALSE;
    }
  return ok_or_fallback (batched (count, m->l, m->s, m->hd, m->p, v, FALSE, o, error),
                         declined);
}

static NnValue *
dnnl_mha_forward (NnModule *self, NnCall *call, const NnArgs *args,
                  GError **error)
{
  const gint64 e = nn_module_config_int (self, "embed_dim");
  const gint64 heads = nn_module_config_int (self, "num_heads");

  if (!fast_path (self, args, e, heads))
    return nn_multihead_attention_type.forward (self, call, args, error);

  NnTensor *qt = nn_args_tensor (args, 0), *kt = nn_args_tensor (args, 1);
  NnTensor *vt = nn_args_tensor (args, 2);
  gboolean need_weights = nn_args_bool (args, 4), average = nn_args_bool (args, 6);
  gboolean batched_in = qt->shape.ndim == 3;
  MhaRun m = { 0 };
  m.bf = !batched_in || nn_module_config_bool (self, "batch_first");
  m.e = e;
  m.h = heads;
  m.hd = e / heads;
  m.n = batched_in ? qt->shape.dims[m.bf ? 0 : 1] : 1;
  m.l = batched_in ? qt->shape.dims[m.bf ? 1 : 0] : qt->shape.dims[0];
  m.s = batched_in ? kt->shape.dims[m.bf ? 1 : 0] : kt->shape.dims[0];
  m.scale = 1.0f / sqrtf ((float) m.hd);
  m.am = nn_args_tensor (args, 5);
  m.kpm = nn_args_tensor (args, 3);

  NnTensor *wt = nn_module_get_parameter (self, "in_proj_weight");
  const float *w = nn_tensor_f32 (wt);
  NnTensor *bt = nn_module_config_bool (self, "bias")
                   ? nn_module_get_parameter (self, "in_proj_bias") : NULL;
  const float *bias = bt ? nn_tensor_f32 (bt) : NULL;
  const gint64 rq = m.l * m.n, rk = m.s * m.n;
  gboolean self_attn = qt->data == kt->data && kt->data == vt->data
                       && nn_shape_equal (&qt->shape, &kt->shape);
  gboolean declined = FALSE, ok;
  const gint64 slabs = m.n * m.h;
  /* Scores in chunks of whole (batch, head) slabs that stay in L2 from
   * their product through the softmax to P V (all of them when the
   * weights are returned). */
  const gint64 chunk = need_weights ? slabs : attn_chunk (slabs, m.l, m.s);
  /* Buffers are tensors: a block of 32 MiB or more (large batches) comes
   * from the core's storage pool instead of being mapped every call, and
   * none is zero-filled (each is written in full). */
  NnTensor *attn = nn_tensor_new_uninitialized (NN_DTYPE_F32, &qt->shape);
  NnTensor *proj = flat_new (self_attn ? rq * 3 * e : rq * e + 2 * rk * e);
  NnTensor *qh = flat_new (rq * e), *kh = flat_new (rk * e), *vh = flat_new (rk * e);
  NnTensor *p = flat_new (chunk * m.l * m.s), *o = flat_new (rq * e);
  m.kpm_add = m.kpm ? g_try_new (float, m.n * m.s) : NULL;

  if (!attn || !proj || !qh || !kh || !vh || !p || !o || (m.kpm && !m.kpm_add))
    {
      g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_FAILED,
                   "MultiheadAttention: cannot allocate the attention buffers");
      ok = FALSE;
      goto out;
    }
  m.qh = nn_tensor_f32 (qh);
  m.kh = nn_tensor_f32 (kh);
  m.vh = nn_tensor_f32 (vh);
  m.p = nn_tensor_f32 (p);
  m.o = nn_tensor_f32 (o);
  m.attn = nn_tensor_f32 (attn);
  float *pf = nn_tensor_f32 (proj);
  if (self_attn)
    {
      /* One product against the packed [3E, E] weight, reordered once
       * into the inner product's layout as a Linear's (a product reading
       * it transposed in place ran 3-4% slower). */
      m.q = pf, m.k = pf + e, m.v = pf + 2 * e;
      m.q_stride = m.k_stride = m.v_stride = 3 * e;
      NnDnnlSlot *slot = nn_dnnl_slot_lock (self);
      NnDnnlInner *in = nn_dnnl_inner_get (slot, self, rq, e, 3 * e, wt, bt,
                                           NULL, error);
      ok = in && nn_dnnl_inner_run (in, nn_tensor_f32 (qt), pf, error);
      nn_dnnl_slot_unlock (slot);
    }
  else
    {
      float *pq = pf, *pk = pf + rq * e, *pv = pk + rk * e;
      m.q = pq, m.k = pk, m.v = pv;
      m.q_stride = m.k_stride = m.v_stride = e;
      ok = ok_or_fallback (project (nn_tensor_f32 (qt), rq, e, w, e, bias, pq, error),
                           &declined)
           && ok_or_fallback (project (nn_tensor_f32 (kt), rk, e, w + e * e, e,
                                       bias ? bias + e : NULL, pk, error), &declined)
           && ok_or_fallback (project (nn_tensor_f32 (vt), rk, e, w + 2 * e * e, e,
                                       bias ? bias + 2 * e : NULL, pv, error), &declined);
    }
  if (!ok)
    goto out;
  NnThreadPool *pool = nn_call_get_thread_pool (call);
  nn_thread_pool_parallel_for_work (pool, (gsize) (m.n * m.l), rq * e, split_q, &m);
  nn_thread_pool_parallel_for_work (pool, (gsize) (m.n * m.s), 2 * rk * e, split_kv, &m);
  if (m.kpm)
    for (gint64 i = 0; i < m.n * m.s; i++)
      m.kpm_add[i] = mask_add (m.kpm, i);
  for (m.slab0 = 0; ok && m.slab0 < slabs; m.slab0 += chunk)
    ok = attend_chunk (&m, MIN (chunk, slabs - m.slab0), pool, &declined, error);
  if (!ok)
    goto out;
  nn_thread_pool_parallel_for_work (pool, (gsize) (m.n * m.l), rq * e, merge_heads, &m);

out:
  g_clear_pointer (&proj, nn_tensor_unref);
  g_clear_pointer (&qh, nn_tensor_unref);
  g_clear_pointer (&kh, nn_tensor_unref);
  g_clear_pointer (&vh, nn_tensor_unref);
  g_clear_pointer (&o, nn_tensor_unref);
  g_free (m.kpm_add);
  if (!ok)
    {
      g_clear_pointer (&p, nn_tensor_unref);
      g_clear_pointer (&attn, nn_tensor_unref);
      return declined ? nn_multihead_attention_type.forward (self, call, args, error)
                      : NULL;
    }

  NnTensor *weights = NULL;
  if (need_weights)
    {
      /* [N, L, S] averaged over heads, or [N, H, L, S]; no N unbatched.
       * One chunk holds every slab's probabilities here. */
      NnShape ws = { 0 };
      if (batched_in)
        ws.dims[ws.ndim++] = m.n;
      if (!average)
        ws.dims[ws.ndim++] = m.h;
      ws.dims[ws.ndim++] = m.l;
      ws.dims[ws.ndim++] = m.s;
      weights = nn_tensor_new (NN_DTYPE_F32, &ws);
      if (weights && !average)
        memcpy (nn_tensor_f32 (weights), m.p, sizeof (float) * nn_tensor_numel (weights));
      else if (weights)
        {
          float *wo = nn_tensor_f32 (weights);
          const gint64 ls = m.l * m.s;
          for (gint64 b = 0; b < m.n; b++)
            for (gint64 hh = 0; hh < m.h; hh++)
              for (gint64 i = 0; i < ls; i++)
                wo[b * ls + i] += m.p[(b * m.h + hh) * ls + i] / (float) m.h;
        }
    }
  nn_tensor_unref (p);
  if (need_weights && !weights)
    {
      nn_tensor_unref (attn);
      g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_FAILED,
                   "MultiheadAttention: cannot allocate the attention weights");
      return NULL;
    }
  NnTensor *y = nn_call_child (call, self, "out_proj", attn, error);
  nn_tensor_unref (attn);
  if (!y)
    {
      g_clear_pointer (&weights, nn_tensor_unref);
      return NULL;
    }
  NnValue *res = nn_value_new_tuple ();
  nn_value_append (res, nn_value_take_tensor (y));
  nn_value_append (res, weights ? nn_value_take_tensor (weights) : nn_value_new_none ());
  return res;
}

static void
dnnl_mha_destroy (NnModule *self)
{
  nn_dnnl_slot_drop (self);
  if (nn_multihead_attention_type.destroy)
    nn_multihead_attention_type.destroy (self);
}

void
nn_dnnl_mha_setup (NnLayerType *t)
{
  nn_dnnl_provider_init (t, &nn_multihead_attention_type,
                         "multi-head scaled dot-product attention, products "
                         "on oneDNN's matmul; child out_proj (Linear); "
                         "returns (attn_output, attn_weights or None)");
  t->forward = dnnl_mha_forward;
  t->supports = nn_dnnl_supports_cpu;
  t->destroy = dnnl_mha_destroy;
}
