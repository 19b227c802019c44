/* dnnl plugin: Conv2d on oneDNN.  The primitive is built for the first
 * input shape and rebuilt when the shape or the weights change; the
 * weights are reordered into the primitive's layout once per build. */
#include "dnnl-private.h"
#include "conv.h"

#include <malloc.h>
#include <nnkit/train.h>
#include <string.h>

typedef struct {
  NnShape in;              /* the input shape the primitive was built for */
  NnActKind act;           /* the fused activation post-op, and its */
  float alpha, beta;       /* parameters */
  guint64 fold_id;         /* the fused BatchNorm folded in, 0: none */
  float *folded_bias;      /* (nullable) the bias memory's data then */
  NnDnnlPrim prim;
  dnnl_memory_t weights;   /* reordered copy */
  dnnl_memory_t bias;      /* (nullable) wraps the bias tensor's data */
  NnDnnlSeen w_seen, b_seen;
  /* A fused residual add: a sum post-op, the destination pre-filled with
   * the residual (nn_dnnl_run_weighted_tensor). */
  gboolean sum;
  /* Winograd (or, for a plain input, the blocked result that feeds it)
   * was allowed when this state was built (conv_winograd_on); and how
   * many forwards ran with this input shape, over rebuilds. */
  gboolean winograd_allowed;
  guint runs;
  /* Whether results could stay laid out when it was built: the layouts
   * chosen then follow the producers' (a toggle rebuilds). */
  gboolean lay;
  /* Built on oneDNN's own layouts, not the input's (conv_direct_own_layout):
   * an input laid out otherwise is reordered in, never a reason to
   * rebuild. */
  gboolean own_layout;
  /* The input's layout when it was built (has_in_md): one its primitive
   * cannot read as is (Winograd's blocks, fed NHWC) is reordered in at
   * every run, and is no reason to rebuild for; only a producer changing
   * its layout since is. */
  dnnl_memory_desc_t in_md;
  gboolean has_in_md;
} ConvState;

static void
conv_state_free (gpointer p)
{
  ConvState *s = p;

  nn_dnnl_prim_clear (&s->prim);
  nn_dnnl_weights_free (s->weights);
  if (s->bias) dnnl_memory_destroy (s->bias);
  nn_dnnl_seen_clear (&s->w_seen);
  nn_dnnl_seen_clear (&s->b_seen);
  g_free (s->folded_bias);
  g_free (s);
}

typedef struct {
  NnTensor *w;
  const NnEpilogue *ep;
} FoldArgs;

/* Weights with @ep's affine folded in, in a temporary plain buffer that
 * is reordered and freed at once: only the reordered copy stays.  Made
 * only when the weights cache has no such reorder
 * (nn_dnnl_reorder_weights_derived()), whose entries are named by the
 * file and the scale, not by these values: a change of what this computes
 * must change the cache's MAGIC (dnnl_weights_cache.c). */
static float *
fold_weights (gpointer data)
{
  NnTensor *w = ((FoldArgs *) data)->w;
  const NnEpilogue *ep = ((FoldArgs *) data)->ep;
  gint64 n = nn_tensor_numel (w), per = n / ep->n_channels;
  float *t = g_try_malloc ((gsize) n * sizeof (float));
  const float *src = nn_tensor_f32 (w);
  if (t)
    for (gint64 o = 0; o < ep->n_channels; o++)
      for (gint64 k = 0; k < per; k++)
        t[o * per + k] = src[o * per + k] * ep->scale[o];
  return t;
}

static float *
fold_bias (NnTensor *b, const NnEpilogue *ep)
{
  float *t = g_new (float, ep->n_channels);
  for (gint64 o = 0; o < ep->n_channels; o++)
    t[o] = (float) ((b ? (double) nn_tensor_f32 (b)[o] : 0.0) * ep->scale[o]
                    + ep->shift[o]);
  return t;
}

/* The layouts and algorithm a convolution runs with: candidates tried in
 * order, the first oneDNN implements (with a vectorised kernel, for the
 * ones that prefer a layout) wins.  Measured per primitive on AVX-512
 * (CPU time, docs/ENGINE.md "Choosing a convolution"): Winograd is about
 * twice as fast as the direct kernels on 3x3 stride-1 convolutions and
 * reads nChw16c only; the direct kernels ran as fast on nChw16c as on
 * NHWC on Zen 4, but oneDNN's NHWC brgconv is faster on Zen 5
 * (conv_direct_own_layout), so which layout a step follows depends on
 * how many layers Winograd takes. */
typedef struct {
  dnnl_alg_kind_t alg;
  const dnnl_memory_desc_t *src, *dst;
  gboolean vector_only;   /* refuse oneDNN's ref: and gemm: kernels */
  /* Refuse it when its weights' growth over @w_bytes (the plain ones)
   * plus its scratchpad exceed this many bytes; -1: no bound. */
  gint64 max_extra;
  gboolean own;           /* oneDNN's own layouts, whatever the input's */
} ConvChoice;

/* NN_DNNL_WINOGRAD (read once): "off" the direct kernels only, "always"
 * Winograd wherever it applies, else (the default) from batch 2, and at
 * batch 1 only where it costs little memory (conv_winograd_bounded). */
typedef enum { WINOGRAD_OFF, WINOGRAD_DEFAULT, WINOGRAD_ALWAYS } WinogradMode;

static WinogradMode
conv_winograd_mode (void)
{
  static gsize once;
  static WinogradMode mode;
  if (g_once_init_enter (&once))
    {
      const char *v = g_getenv ("NN_DNNL_WINOGRAD");
      mode = g_strcmp0 (v, "off") == 0 ? WINOGRAD_OFF
             : g_strcmp0 (v, "always") == 0 ? WINOGRAD_ALWAYS : WINOGRAD_DEFAULT;
      g_once_init_leave (&once, 1);
    }
  return mode;
}

/* Below this many output pixels (N x OH x OW) a convolution keeps the
 * direct kernels: there the layers are the widest (resnet18's 512
 * channels at 7x7), Winograd saves least (1.4x, against 2x at 14x14 and
 * more) and its weights, 1.8x the plain ones, would be most of the
 * model's. */
#define NN_DNNL_WINOGRAD_MIN_PIXELS 128

/* Whether Winograd may run at all.  Which convolution takes it depends
 * on the shapes only, never on how often a module ran, so repeated
 * forwards give the same floats. */
static gboolean
conv_winograd_on (void)
{
  return conv_winograd_mode () != WINOGRAD_OFF;
}

/* Whether Winograd at batch @n must keep its memory small: by default a
 * batch-1 forward (nnctl run, the memory budget of docs/ENGINE.md) takes
 * it only where its transformed weights beyond the plain ones, plus its
 * scratchpad, are no larger than the layer's result (conv_pd_choose):
 * the early, wide-image layers, where it also saves the most.  Deeper
 * layers' would be 1.8x their weights plus scratchpads of up to 10 MB. */
static gboolean
conv_winograd_bounded (gint64 n)
{
  return conv_winograd_mode () == WINOGRAD_DEFAULT && n < 2;
}

/* Whether a direct convolution of batch @n takes oneDNN's own layouts
 * (reordering an input laid out otherwise) before the input's: where
 * Winograd runs on few layers (batch 1 by default, or off), the direct
 * kernels are most of the forward, and on AVX-512 oneDNN's choice for
 * them, brgconv on NHWC, ran resnet18's 3x3 layers 20-30% faster than
 * the nChw16c kernels that read the blocked input (Zen 5: resnet18 16.8
 * -> 14.0 ms, resnet50 37.2 -> 34.7, batch 1, one thread).  Where
 * Winograd takes every 3x3 stride-1 layer (batch 2 up), its nChw16c is
 * the network's layout and following it saves a reorder on each side of
 * every one (resnet50 at batch 8 was 4% slower the other way). */
static gboolean
conv_direct_own_layout (gint64 n)
{
  WinogradMode m = conv_winograd_mode ();
  return m == WINOGRAD_OFF || (m == WINOGRAD_DEFAULT && n < 2);
}

static gboolean
conv_winograd_wanted (const NnConvGeom *g, const dnnl_dims_t dd)
{
  return conv_winograd_on ()
         && dd[0] * dd[2] * dd[3] >= NN_DNNL_WINOGRAD_MIN_PIXELS
         && g->groups == 1 && g->kh == 3 && g->kw == 3 && g->sh == 1
         && g->sw == 1 && g->dh == 1 && g->dw == 1;
}

/* The blocked layout of this CPU's direct kernels, for a plain input's
 * result (the stem): nChw16c with AVX-512, nChw8c with AVX2, else none. */
static dnnl_format_tag_t
conv_blocked_tag (void)
{
  const NnCpuInfo *cpu = nn_cpu_info_get ();
  return nn_cpu_has (cpu, NN_CPU_AVX512F) ? dnnl_nChw16c
         : nn_cpu_has (cpu, NN_CPU_AVX2) ? dnnl_nChw8c : dnnl_format_tag_undef;
}

/* Whether @pd runs a vector kernel of this CPU's full width: not oneDNN's
 * ref: or gemm: ones, and on AVX-512 not an AVX2 or SSE4.1 one.  Reading a
 * producer's narrow blocks (aBcd8b after a grouped convolution) as is had
 * ResNeXt's 1x1 convolutions on AVX2 kernels, each handing its layout on:
 * a reorder to the layout oneDNN prefers costs far less. */
static gboolean
conv_impl_vectorised (const_dnnl_primitive_desc_t pd)
{
  const char *impl = NULL;
  if (!nn_dnnl_ok (dnnl_primitive_desc_query (pd, dnnl_query_impl_info_str, 0,
                                              &impl), "naming a kernel", NULL)
      || !impl)
    return FALSE;
  if (g_str_has_prefix (impl, "ref") || strstr (impl, "gemm"))
    return FALSE;
  return !nn_cpu_has (nn_cpu_info_get (), NN_CPU_AVX512F)
         || (!strstr (impl, ":avx2") && !strstr (impl, ":sse41"));
}

/* The memory @pd needs beyond @w_bytes of plain weights: the growth of
 * its weights' layout and its scratchpad (counted whole, although the
 * pool shares scratchpads between layers: a bound, not an estimate). */
static gint64
conv_extra_bytes (const_dnnl_primitive_desc_t pd, gint64 w_bytes)
{
  const dnnl_memory_desc_t *w = dnnl_primitive_desc_query_md (pd, dnnl_query_weights_md, 0);
  const dnnl_memory_desc_t *scr = dnnl_primitive_desc_query_md (pd, dnnl_query_scratchpad_md, 0);
  return (gint64) (w ? dnnl_memory_desc_get_size (w) : 0) - w_bytes
         + (gint64) (scr ? dnnl_memory_desc_get_size (scr) : 0);
}

/* Returns: (transfer full) the primitive descriptor of the first
 * candidate oneDNN implements (within its memory bound, if any), NULL
 * with @error when none is (the last candidate's error). */
static dnnl_primitive_desc_t
conv_pd_choose (const ConvChoice *c, int n, gboolean *own, gint64 w_bytes,
                const dnnl_memory_desc_t *w_any,
                const dnnl_memory_desc_t *b_md, const dnnl_dims_t strides,
                const dnnl_dims_t dil, const dnnl_dims_t pl,
                const dnnl_dims_t pr, const_dnnl_primitive_attr_t attr,
                dnnl_engine_t eng, GError **error)
{
  for (int i = 0; i < n; i++)
    {
      dnnl_convolution_desc_t desc;
      dnnl_primitive_desc_t pd = NULL;
      gboolean last = i == n - 1;
      if (!nn_dnnl_ok (dnnl_dilated_convolution_forward_desc_init (
                         &desc, dnnl_forward_inference, c[i].alg, c[i].src,
                         w_any, b_md, c[i].dst, strides, dil, pl, pr),
                       "describing the convolution", last ? error : NULL)
          || !nn_dnnl_ok (dnnl_primitive_desc_create (&pd, &desc, attr, eng, NULL),
                          "choosing a convolution", last ? error : NULL))
        continue;
      if ((!c[i].vector_only || conv_impl_vectorised (pd))
          && (c[i].max_extra < 0 || conv_extra_bytes (pd, w_bytes) <= c[i].max_extra))
        {
          *own = c[i].own;
          return pd;
        }
      dnnl_primitive_desc_destroy (pd);
    }
  return NULL;
}

/* Returns: (transfer full) the convolution's primitive descriptor, its
 * candidates in order: Winograd (3x3, stride 1, no dilation, one group)
 * reading the input's layout, then in any; the direct kernels in
 * oneDNN's own layouts where they are most of the forward
 * (conv_direct_own_layout); the direct kernels reading the input's
 * layout (a laid-out input: no reorder between steps); a plain input read
 * as is into this CPU's blocked layout (the stem of a network whose next
 * steps are blocked); the layouts oneDNN prefers. */
static dnnl_primitive_desc_t
conv_pd_create (const NnConvGeom *g, gboolean winograd, gboolean lay,
                const dnnl_memory_desc_t *in_md,
                const dnnl_memory_desc_t *src_any,
                const dnnl_memory_desc_t *src_user,
                const dnnl_memory_desc_t *dst_any,
                dnnl_memory_desc_t *dst_blocked, const dnnl_dims_t dd,
                const dnnl_memory_desc_t *w_any, const dnnl_memory_desc_t *b_md,
                const dnnl_dims_t strides, const dnnl_dims_t dil,
                const dnnl_dims_t pl, const dnnl_dims_t pr,
                const_dnnl_primitive_attr_t attr, dnnl_engine_t eng,
                gboolean *own_taken, GError **error)
{
  ConvChoice c[5];
  int n = 0;
  dnnl_format_tag_t blocked = conv_blocked_tag ();

  gint64 w_bytes = g->out_channels * (g->in_channels / g->groups) * g->kh * g->kw
                   * (gint64) sizeof (float);
  gint64 bound = conv_winograd_bounded (dd[0])
                 ? dd[0] * dd[1] * dd[2] * dd[3] * (gint64) sizeof (float) : -1;

  if (winograd && conv_winograd_wanted (g, dd))
    {
      if (in_md)
        c[n++] = (ConvChoice) { dnnl_convolution_winograd, in_md, dst_any, FALSE, bound };
      c[n++] = (ConvChoice) { dnnl_convolution_winograd, src_any, dst_any, FALSE, bound };
    }
  /* Grouped and depthwise ones keep following the input's layout: the
   * 1x1 layers around them (MobileNet, RegNet) then need no reorder. */
  gboolean own = g->groups == 1 && conv_direct_own_layout (dd[0]);
  if (own)
    c[n++] = (ConvChoice) { dnnl_convolution_direct, src_any, dst_any, TRUE, -1, TRUE };
  if (in_md)
    c[n++] = (ConvChoice) { dnnl_convolution_direct, in_md, dst_any, TRUE, -1 };
  /* The stem's result in the blocked layout the Winograd steps after it
   * read, where Winograd takes every 3x3 layer (oneDNN alone picks NHWC
   * there). */
  else if (!own && winograd && lay && g->groups == 1
           && blocked != dnnl_format_tag_undef
           && dnnl_memory_desc_init_by_tag (dst_blocked, 4, dd, dnnl_f32,
                                            blocked) == dnnl_success)
    c[n++] = (ConvChoice) { dnnl_convolution_direct, src_user, dst_blocked, TRUE, -1 };
  c[n++] = (ConvChoice) { dnnl_convolution_direct, src_any, dst_any, FALSE, -1 };
  return conv_pd_choose (c, n, own_taken, w_bytes, w_any, b_md, strides, dil, pl, pr, attr, eng,
                         error);
}

static ConvState *
conv_state_new (const NnConvGeom *g, const NnShape *in4, const NnShape *out4,
                const dnnl_memory_desc_t *in_md, gboolean winograd, gboolean lay,
                NnTensor *w, NnTensor *b, const NnEpilogue *ep, GError **error)
{
  ConvState *s = g_new0 (ConvState, 1);
  dnnl_engine_t eng = nn_dnnl_engine (error);
  dnnl_memory_desc_t src_any, dst_any, w_any, w_user, b_md, src_user, dst_user;
  dnnl_memory_desc_t dst_blocked;
  dnnl_primitive_desc_t pd = NULL;
  dnnl_primitive_attr_t attr = NULL;
  gboolean grouped = g->groups > 1;
  dnnl_dims_t sd = { in4->dims[0], in4->dims[1], in4->dims[2], in4->dims[3] };
  dnnl_dims_t dd = { out4->dims[0], out4->dims[1], out4->dims[2], out4->dims[3] };
  dnnl_dims_t wd = { g->out_channels, g->in_channels / g->groups, g->kh, g->kw };
  dnnl_dims_t gwd = { g->groups, g->out_channels / g->groups,
                      g->in_channels / g->groups, g->kh, g->kw };
  dnnl_dims_t bd = { g->out_channels };
  dnnl_dims_t strides = { g->sh, g->sw };
  dnnl_dims_t dil = { g->dh - 1, g->dw - 1 };   /* oneDNN counts the gaps */
  dnnl_dims_t pl = { g->pad_top, g->pad_left };
  dnnl_dims_t pr = { g->pad_bottom, g->pad_right };

  gboolean fold = ep && ep->n_channels > 0;
  FoldArgs fa = { w, ep };
  s->fold_id = fold ? ep->fold_id : 0;
  s->folded_bias = fold ? fold_bias (b, ep) : NULL;
  float *bdata = fold ? s->folded_bias : b ? nn_tensor_f32 (b) : NULL;
  s->in = *in4;
  s->act = ep ? ep->act : NN_ACT_NONE;
  s->alpha = ep ? ep->alpha : 0.0f;
  s->beta = ep ? ep->beta : 0.0f;
  s->sum = ep && ep->residual;
  s->winograd_allowed = winograd;
  s->lay = lay;
  if (in_md)
    {
      s->in_md = *in_md;
      s->has_in_md = TRUE;
    }
  gboolean ok = eng
    && nn_dnnl_ok (dnnl_memory_desc_init_by_tag (&src_any, 4, sd, dnnl_f32, dnnl_format_tag_any), "src md", error)
    && nn_dnnl_ok (dnnl_memory_desc_init_by_tag (&dst_any, 4, dd, dnnl_f32, dnnl_format_tag_any), "dst md", error)
    && nn_dnnl_ok (dnnl_memory_desc_init_by_tag (&src_user, 4, sd, dnnl_f32, dnnl_nchw), "src md", error)
    && nn_dnnl_ok (dnnl_memory_desc_init_by_tag (&dst_user, 4, dd, dnnl_f32, dnnl_nchw), "dst md", error)
    && nn_dnnl_ok (grouped
                   ? dnnl_memory_desc_init_by_tag (&w_any, 5, gwd, dnnl_f32, dnnl_format_tag_any)
                   : dnnl_memory_desc_init_by_tag (&w_any, 4, wd, dnnl_f32, dnnl_format_tag_any),
                   "weights md", error)
    && nn_dnnl_ok (grouped
                   ? dnnl_memory_desc_init_by_tag (&w_user, 5, gwd, dnnl_f32, dnnl_goihw)
                   : dnnl_memory_desc_init_by_tag (&w_user, 4, wd, dnnl_f32, dnnl_oihw),
                   "weights md", error)
    && nn_dnnl_ok (dnnl_memory_desc_init_by_tag (&b_md, 1, bd, dnnl_f32, dnnl_x), "bias md", error)
    && (attr = nn_dnnl_attr_new (error))
    && nn_dnnl_attr_add_sum_act (attr, s->sum, s->act, s->alpha, s->beta,
                                 error)
    && (pd = conv_pd_create (g, winograd, lay, in_md, &src_any, &src_user, &dst_any,
                             &dst_blocked, dd, &w_any, bdata ? &b_md : NULL,
                             strides, dil, pl, pr, attr, eng, &s->own_layout,
                             error))
    && nn_dnnl_prim_init (&s->prim, pd, &src_user, &dst_user, error)
    && (s->weights = fold
          ? nn_dnnl_reorder_weights_derived (
              &w_user, w, ep->scale, sizeof (float) * (gsize) ep->n_channels,
              fold_weights, &fa,
              dnnl_primitive_desc_query_md (pd, dnnl_query_weights_md, 0), error)
          : nn_dnnl_reorder_weights (
              &w_user, nn_tensor_f32 (w), w,
              dnnl_primitive_desc_query_md (pd, dnnl_query_weights_md, 0), error))
    && (!bdata || nn_dnnl_ok (dnnl_memory_create (&s->bias, &b_md, eng, bdata),
                              "wrapping the bias", error));
  if (pd)
    dnnl_primitive_desc_destroy (pd);
  if (attr)
    dnnl_primitive_attr_destroy (attr);
  if (!ok)
    {
      conv_state_free (s);
      return NULL;
    }
  nn_dnnl_seen_set (&s->w_seen, w);
  nn_dnnl_seen_set (&s->b_seen, b);
  /* The plain weights leave the resident set once reordered (a mapped
   * file's; a rebuild maps them again from the page cache). */
  nn_tensor_release_pages (w);
  return s;
}

/* The output shape, as the reference computes it; FALSE for anything the
 * reference must report (it then runs and names the problem). */
static gboolean
conv_out_shape (const NnConvGeom *g, const NnShape *in, NnShape *out)
{
  if ((in->ndim != 4 && in->ndim != 3) || in->dims[in->ndim - 3] != g->in_channels)
    return FALSE;
  gint64 h = in->dims[in->ndim - 2], w = in->dims[in->ndim - 1];
  gint64 ho = (h + g->pad_top + g->pad_bottom - g->dh * (g->kh - 1) - 1) / g->sh + 1;
  gint64 wo = (w + g->pad_left + g->pad_right - g->dw * (g->kw - 1) - 1) / g->sw + 1;
  if (h + g->pad_top + g->pad_bottom < g->dh * (g->kh - 1) + 1
      || w + g->pad_left + g->pad_right < g->dw * (g->kw - 1) + 1 || ho < 1 || wo < 1)
    return FALSE;
  *out = *in;
  out->dims[in->ndim - 3] = g->out_channels;
  out->dims[in->ndim - 2] = ho;
  out->dims[in->ndim - 1] = wo;
  return TRUE;
}

/* The forward, with the epilogue @ep (nullable) of a fused plan step: a
 * BatchNorm folded into the weights while they are reordered (once per
 * fold: ep->fold_id), a residual add as a sum post-op, and the
 * activation as an eltwise post-op. */
static NnValue *
dnnl_conv2d_run (NnModule *self, NnCall *call, const NnArgs *args,
                 const NnEpilogue *ep, GError **error)
{
  const NnConvGeom *g = nn_module_get_private (self);
  NnTensor *x = nn_args_tensor (args, 0);
  NnTensor *w = nn_module_get_parameter (self, "weight");
  NnTensor *b = g->has_bias ? nn_module_get_parameter (self, "bias") : NULL;
  NnActKind act = ep ? ep->act : NN_ACT_NONE;
  guint64 fold_id = ep && ep->n_channels > 0 ? ep->fold_id : 0;
  NnTensor *residual = ep ? ep->residual : NULL;
  NnShape os, in4, out4;
  void *laid = NULL;

  /* Another provider's layout is made plain here; ours is read as is. */
  if (!nn_dnnl_tensor_md (x, &laid) && !nn_tensor_make_plain (x, error))
    return NULL;
  /* Anything unusual goes to the reference, which computes it or names
   * what is wrong exactly as without this provider. */
  NnShape ws = { 4, { g->out_channels, g->in_channels / g->groups, g->kh, g->kw } };
  NnShape bs = { 1, { g->out_channels } };
  if (!conv_out_shape (g, &x->shape, &os) || x->dtype != NN_DTYPE_F32
      || !w || !nn_tensor_f32 (w) || !nn_shape_equal (&w->shape, &ws)
      || nn_tensor_numel (x) == 0
      || (fold_id && ep->n_channels != g->out_channels)
      || (residual && (residual->dtype != NN_DTYPE_F32
                       || !nn_shape_equal (&residual->shape, &os)))
      || (g->has_bias && (!b || !nn_tensor_f32 (b) || !nn_shape_equal (&b->shape, &bs))))
    return !nn_tensor_make_plain (x, error)
           || (residual && !nn_tensor_make_plain (residual, error)) ? NULL
           : ep ? nn_conv2d_type.fuse->forward_fused (self, call, args, ep, error)
           : nn_conv2d_type.forward (self, call, args, error);

  in4 = x->shape;
  out4 = os;
  if (x->shape.ndim == 3)
    {
      in4 = (NnShape) { 4, { 1, x->shape.dims[0], x->shape.dims[1], x->shape.dims[2] } };
      out4 = (NnShape) { 4, { 1, os.dims[0], os.dims[1], os.dims[2] } };
    }
  NnDnnlSlot *slot = nn_dnnl_slot_lock (self);
  ConvState *s = slot->state;
  guint runs = s && nn_shape_equal (&s->in, &in4) ? s->runs : 0;
  gboolean lay = nn_dnnl_may_lay_out (call);
  /* A laid-out input's layout, when it is the batched one built for. */
  const dnnl_memory_desc_t *xmd = lay ? nn_dnnl_tensor_md (x, &laid) : NULL;
  if (xmd && (xmd->ndims != 4 || memcmp (xmd->dims, in4.dims,
                                         4 * sizeof xmd->dims[0]) != 0))
    xmd = NULL;
  /* Winograd by the shapes alone (conv_winograd_on): a Winograd
   * convolution, or a stem (plain input) writing the blocked layout the
   * Winograd steps after it read. */
  dnnl_dims_t od = { out4.dims[0], out4.dims[1], out4.dims[2], out4.dims[3] };
  gboolean winograd = conv_winograd_on ()
                      && (conv_winograd_wanted (g, od) || (g->groups == 1 && !xmd));
  /* While the producers settle (their second forward changes layouts),
   * a laid-out input in another layout than built for rebuilds, so the
   * primitive reads it as is; later a mismatch is reordered (an input
   * alternating layouts would otherwise rebuild every call). */
  gboolean relayout = s && xmd && runs <= 2 && !s->own_layout
                      && !dnnl_memory_desc_equal (xmd, &s->prim.src_md)
                      && !(s->has_in_md && dnnl_memory_desc_equal (xmd, &s->in_md));
  if (s && (relayout || !nn_shape_equal (&s->in, &in4) || !nn_dnnl_seen_same (&s->w_seen, w)
            || !nn_dnnl_seen_same (&s->b_seen, b) || s->act != act
            || s->fold_id != fold_id || s->sum != (residual != NULL)
            || s->winograd_allowed != winograd || s->lay != lay
            || (act != NN_ACT_NONE && (s->alpha != ep->alpha
                                       || s->beta != ep->beta))))
    {
      conv_state_free (s);
      slot->state = s = NULL;
      /* The freed reordered weights go back to the system before the new
       * ones are made (a fused plan rebuilds every layer once), so the
       * heap does not keep both.  Not in training: the weights change
       * every step, and trimming the heap each time made every step
       * fault all its pages in again (trainbwd). */
      if (!nn_module_is_training (self))
        malloc_trim (0);
    }
  if (!s)
    {
      slot->state = s = conv_state_new (g, &in4, &out4, xmd, winograd, lay,
                                        w, b, ep, error);
      slot->state_free = conv_state_free;
    }
  if (s)
    s->runs = runs + 1;
  /* The result stays in the primitive's blocked layout for the next
   * oneDNN step; the core makes it plain for any other reader.  A fused
   * residual fills the destination first, for the sum post-op. */
  return nn_dnnl_run_weighted_tensor (slot, s ? &s->prim : NULL,
                                      s ? s->weights : NULL, s ? s->bias : NULL,
                                      x, &os, lay,
                                      residual, error);
}

static NnValue *
dnnl_conv2d_forward (NnModule *self, NnCall *call, const NnArgs *args,
                     GError **error)
{
  /* trainbwd: in training mode the weights change every step, so the
   * forward runs beside its backward (dnnl_conv2d_bwd.c), in its layouts. */
  NnValue *trained = NULL;
  if (nn_module_is_training (self)
      && nn_dnnl_conv2d_train_forward (self, call, args, &trained, error))
    return trained;
  return dnnl_conv2d_run (self, call, args, NULL, error);
}

/* The reference's declaration with this provider's fused forward. */
static NnFuseInfo dnnl_conv2d_fuse;

/* oneDNN pads with zeros only; the other modes stay with the reference. */
static gboolean
dnnl_conv2d_supports (const NnLayerType *type, JsonObject *config,
                      const NnArgs *args, const NnCpuInfo *cpu)
{
  const char *mode = json_object_get_string_member_with_default (
    config, "padding_mode", "zeros");
  return g_strcmp0 (mode, "zeros") == 0 && nn_cpu_has (cpu, NN_CPU_SSE4_1);
}

static void
dnnl_conv2d_destroy (NnModule *self)
{
  nn_dnnl_slot_drop (self);
  if (nn_conv2d_type.destroy)
    nn_conv2d_type.destroy (self);
}

void
nn_dnnl_conv2d_setup (NnLayerType *t)
{
  nn_dnnl_provider_init (t, &nn_conv2d_type, "Conv2d on oneDNN (zero padding), as torch.nn.Conv2d");
  /* oneDNN reads F32 weights itself: they are converted at load. */
  t->flags &= ~(guint) NN_LAYER_HALF_WEIGHTS;
  t->flags |= NN_LAYER_LAYOUT_AWARE;
  t->forward = dnnl_conv2d_forward;
  dnnl_conv2d_fuse = *nn_conv2d_type.fuse;
  dnnl_conv2d_fuse.forward_fused = dnnl_conv2d_run;
  t->fuse = &dnnl_conv2d_fuse;
  t->supports = dnnl_conv2d_supports;
  t->destroy = dnnl_conv2d_destroy;
}
