/* Conv2d: PyTorch's nn.Conv2d on NCHW float32.  The general case unfolds
 * each image with im2col and multiplies by the weights with sgemm, one
 * gemm per image and group; a 1x1 stride-1 unpadded conv multiplies the
 * input directly, and a depthwise conv runs a direct kernel. */
#include "conv.h"
#include "nn-blas.h"

#include <nnkit/train.h>

#include <cblas.h>
#include <math.h>
#include <string.h>

static const char *const padding_strings[] = { "same", "valid", NULL };
static const char *const padding_modes[] = {
  "zeros", "reflect", "replicate", "circular", NULL
};

static const NnSchemaKey conv2d_schema[] = {
  { "in_channels", NN_KIND_INT, 0, NN_KEY_HAS_MIN, NULL, 1, 0, NULL,
    "Number of channels in the input image" },
  { "out_channels", NN_KIND_INT, 0, NN_KEY_HAS_MIN, NULL, 1, 0, NULL,
    "Number of channels produced by the convolution" },
  { "kernel_size", NN_KIND_INT_TUPLE, 2, NN_KEY_EXPAND | NN_KEY_HAS_MIN,
    NULL, 1, 0, NULL, "Size of the convolving kernel (kh, kw)" },
  { "stride", NN_KIND_INT_TUPLE, 2,
    NN_KEY_OPTIONAL | NN_KEY_EXPAND | NN_KEY_HAS_MIN, "[1, 1]", 1, 0, NULL,
    "Stride of the convolution" },
  { "padding", NN_KIND_INT_TUPLE, 2,
    NN_KEY_OPTIONAL | NN_KEY_EXPAND | NN_KEY_OR_ENUM | NN_KEY_HAS_MIN,
    "[0, 0]", 0, 0, padding_strings,
    "Padding added to all four sides, or 'same' / 'valid'" },
  { "dilation", NN_KIND_INT_TUPLE, 2,
    NN_KEY_OPTIONAL | NN_KEY_EXPAND | NN_KEY_HAS_MIN, "[1, 1]", 1, 0, NULL,
    "Spacing between kernel elements" },
  { "groups", NN_KIND_INT, 0, NN_KEY_OPTIONAL | NN_KEY_HAS_MIN, "1", 1, 0,
    NULL, "Number of blocked connections from input to output channels" },
  { "bias", NN_KIND_BOOL, 0, NN_KEY_OPTIONAL, "true", 0, 0, NULL,
    "Adds a learnable bias to the output" },
  { "padding_mode", NN_KIND_ENUM, 0, NN_KEY_OPTIONAL, "\"zeros\"", 0, 0,
    padding_modes, "How the padding is filled" },
};

static const NnConvGeom *
conv2d_geom (NnModule *self)
{
  return nn_module_get_private (self);
}

/* Reads the padding key into @g: ints as given, 'valid' as none, 'same'
 * as PyTorch splits it, the odd pixel going to the bottom/right. */
static gboolean
conv2d_read_padding (NnModule *self, NnConvGeom *g, GError **error)
{
  gint64 p[2];

  if (nn_module_config_ints (self, "padding", p, 2))
    {
      g->pad_top = g->pad_bottom = p[0];
      g->pad_left = g->pad_right = p[1];
      return TRUE;
    }
  const char *s = nn_module_config_string (self, "padding");
  if (g_strcmp0 (s, "valid") == 0)
    return TRUE;
  if (g->sh != 1 || g->sw != 1)
    {
      g_set_error (error, NN_DESCRIPTOR_ERROR, NN_DESCRIPTOR_ERROR_INVALID,
                   "padding='same' is not supported for strided convolutions "
                   "(stride=(%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT "))",
                   g->sh, g->sw);
      return FALSE;
    }
  gint64 th = g->dh * (g->kh - 1), tw = g->dw * (g->kw - 1);
  g->pad_top = th / 2;
  g->pad_bottom = th - th / 2;
  g->pad_left = tw / 2;
  g->pad_right = tw - tw / 2;
  return TRUE;
}

static gboolean
conv2d_create (NnModule *self, GError **error)
{
  g_autofree NnConvGeom *g = g_new0 (NnConvGeom, 1);
  gint64 t[2];

  g->in_channels = nn_module_config_int (self, "in_channels");
  g->out_channels = nn_module_config_int (self, "out_channels");
  g->groups = nn_module_config_int (self, "groups");
  g->has_bias = nn_module_config_bool (self, "bias");
  nn_module_config_ints (self, "kernel_size", t, 2);
  g->kh = t[0], g->kw = t[1];
  nn_module_config_ints (self, "stride", t, 2);
  g->sh = t[0], g->sw = t[1];
  nn_module_config_ints (self, "dilation", t, 2);
  g->dh = t[0], g->dw = t[1];

  const char *mode = nn_module_config_string (self, "padding_mode");
  for (guint i = 0; padding_modes[i]; i++)
    if (g_strcmp0 (mode, padding_modes[i]) == 0)
      g->pad_mode = (NnConvPadMode) i;

  const char *which = g->in_channels % g->groups ? "in_channels"
                      : g->out_channels % g->groups ? "out_channels" : NULL;
  if (which)
    {
      g_set_error (error, NN_DESCRIPTOR_ERROR, NN_DESCRIPTOR_ERROR_OUT_OF_RANGE,
                   "%s must be divisible by groups: %s=%" G_GINT64_FORMAT
                   ", groups=%" G_GINT64_FORMAT, which, which,
                   nn_module_config_int (self, which), g->groups);
      return FALSE;
    }
  if (!conv2d_read_padding (self, g, error))
    return FALSE;

  /* sgemm takes int extents, so one group's weight matrix must fit. */
  double numel = (double) g->out_channels * (double) (g->in_channels / g->groups)
                 * (double) g->kh * (double) g->kw;
  if (numel > G_MAXINT32)
    {
      g_set_error (error, NN_DESCRIPTOR_ERROR, NN_DESCRIPTOR_ERROR_OUT_OF_RANGE,
                   "weight [%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT ", %"
                   G_GINT64_FORMAT ", %" G_GINT64_FORMAT "] would hold %.0f "
                   "elements, more than %d", g->out_channels,
                   g->in_channels / g->groups, g->kh, g->kw, numel, G_MAXINT32);
      return FALSE;
    }

  NnShape ws = { 4, { g->out_channels, g->in_channels / g->groups, g->kh, g->kw } };
  NnShape bs = { 1, { g->out_channels } };
  if (!nn_module_add_parameter (self, "weight", NN_DTYPE_F32, &ws)
      || (g->has_bias && !nn_module_add_parameter (self, "bias", NN_DTYPE_F32, &bs)))
    {
      g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_FAILED,
                   "cannot allocate the weights");
      return FALSE;
    }
  nn_module_set_private (self, g_steal_pointer (&g));
  return TRUE;
}

static void
conv2d_destroy (NnModule *self)
{
  g_free (nn_module_get_private (self));
}

/* Output shape for @in; also the forward's input check. */
static gboolean
conv2d_out_shape (const NnConvGeom *g, const NnShape *in, NnShape *out,
                  GError **error)
{
  if ((in->ndim != 4 && in->ndim != 3) || in->dims[in->ndim - 3] != g->in_channels)
    {
      g_autofree char *got = nn_shape_to_string (in);
      g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH,
                   "expected input [N, %" G_GINT64_FORMAT ", H, W] (4-D with %"
                   G_GINT64_FORMAT " channels, or 3-D unbatched), got %s",
                   g->in_channels, g->in_channels, got);
      return FALSE;
    }
  gint64 h = in->dims[in->ndim - 2], w = in->dims[in->ndim - 1];

  /* PyTorch's limits for padding by reflection or wrapping. */
  gint64 pmax_h = MAX (g->pad_top, g->pad_bottom);
  gint64 pmax_w = MAX (g->pad_left, g->pad_right);
  gboolean bad_pad =
    (g->pad_mode == NN_CONV_PAD_REFLECT && (pmax_h >= h || pmax_w >= w))
    || (g->pad_mode == NN_CONV_PAD_CIRCULAR && (pmax_h > h || pmax_w > w));
  if (bad_pad)
    {
      g_autofree char *got = nn_shape_to_string (in);
      g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH,
                   "padding_mode '%s' needs padding (%" G_GINT64_FORMAT ", %"
                   G_GINT64_FORMAT ") %s the input's height and width, got %s",
                   padding_modes[g->pad_mode], pmax_h, pmax_w,
                   g->pad_mode == NN_CONV_PAD_REFLECT ? "smaller than"
                                                      : "no larger than", got);
      return FALSE;
    }

  /* Huge paddings or dilations must not overflow (UB) into a bogus size. */
  gint64 eh, ew, kext_h, kext_w;
  if (__builtin_mul_overflow (g->dh, g->kh - 1, &kext_h)
      || __builtin_mul_overflow (g->dw, g->kw - 1, &kext_w)
      || __builtin_add_overflow (h, g->pad_top, &eh)
      || __builtin_add_overflow (eh, g->pad_bottom, &eh)
      || __builtin_add_overflow (w, g->pad_left, &ew)
      || __builtin_add_overflow (ew, g->pad_right, &ew))
    {
      g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_INVALID,
                   "padding (%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT
                   ") or dilated kernel too large: the padded size overflows "
                   "64 bits", MAX (g->pad_top, g->pad_bottom),
                   MAX (g->pad_left, g->pad_right));
      return FALSE;
    }
  eh -= kext_h + 1;
  ew -= kext_w + 1;
  if (eh < 0 || ew < 0)
    {
      g_autofree char *got = nn_shape_to_string (in);
      g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH,
                   "input %s is too small: padded size (%" G_GINT64_FORMAT
                   ", %" G_GINT64_FORMAT ") is smaller than the dilated kernel (%"
                   G_GINT64_FORMAT ", %" G_GINT64_FORMAT ")", got,
                   h + g->pad_top + g->pad_bottom, w + g->pad_left + g->pad_right,
                   g->dh * (g->kh - 1) + 1, g->dw * (g->kw - 1) + 1);
      return FALSE;
    }
  *out = *in;
  out->dims[in->ndim - 3] = g->out_channels;
  out->dims[in->ndim - 2] = eh / g->sh + 1;
  out->dims[in->ndim - 1] = ew / g->sw + 1;
  if (nn_shape_numel (out) == G_MAXINT64) /* saturated: overflow */
    {
      g_autofree char *got = nn_shape_to_string (out);
      g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_INVALID,
                   "output %s has more elements than 64-bit sizes can count",
                   got);
      return FALSE;
    }
  return TRUE;
}

static const NnArgSpec conv2d_args[] = {
  { "input", NN_ARG_TENSOR, NN_DTYPE_BIT (NN_DTYPE_F32), 0, NULL,
    "float32 [N, in_channels, H, W] or [in_channels, H, W]" },
};

static NnValue *
conv2d_infer (NnModule *self, NnCall *call, const NnArgs *args,
              GError **error)
{
  NnShape os;
  if (!conv2d_out_shape (conv2d_geom (self), &nn_args_tensor (args, 0)->shape,
                         &os, error))
    return NULL;
  return nn_value_take_tensor (nn_tensor_new_meta (NN_DTYPE_F32, &os));
}

/* Fetches the weights at call time (load_state_dict may have swapped
 * them) and checks them against the geometry. */
static gboolean
conv2d_weights (NnModule *self, const NnConvGeom *g, const NnEpilogue *ep,
                NnTensor **wkeep, NnTensor **bkeep, const float **w,
                const float **b, GError **error)
{
  /* A fused epilogue may fold a BatchNorm into the weights, which then
   * have a bias where the module has none. */
  gboolean folded = ep && ep->n_channels > 0;
  gboolean has_bias = g->has_bias || folded;
  NnTensor *wp, *bp;
  if (folded)
    {
      if (!nn_epilogue_get_folded (ep, &wp, &bp, error))
        return FALSE;
    }
  else
    {
      wp = nn_module_get_parameter (self, "weight");
      bp = g->has_bias ? nn_module_get_parameter (self, "bias") : NULL;
    }
  /* F16/BF16 weights kept as stored convert per call (a ref when F32);
   * the caller releases *@wkeep and *@bkeep. */
  NnTensor *wt = *wkeep = wp ? nn_tensor_to_dtype (wp, NN_DTYPE_F32) : NULL;
  NnTensor *bt = *bkeep = bp ? nn_tensor_to_dtype (bp, NN_DTYPE_F32) : NULL;
  gint64 wn = g->out_channels * (g->in_channels / g->groups) * g->kh * g->kw;

  *w = wt ? nn_tensor_f32 (wt) : NULL;
  *b = bt ? nn_tensor_f32 (bt) : NULL;
  if (!*w || nn_tensor_numel (wt) != wn
      || (has_bias && (!*b || nn_tensor_numel (bt) != g->out_channels)))
    {
      g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_FAILED,
                   "weight or bias is missing or not float32 of the configured shape");
      return FALSE;
    }
  return TRUE;
}

/* The im2col + sgemm path for one image [c, h, w] (already padded when
 * the padding mode is not zeros): one gemm per group.  @col (nullable)
 * holds one group's unfolded image; NULL for the direct 1x1 case. */
static void
conv2d_gemm_image (const NnConvGeom *g, const float *img, gint64 h, gint64 w,
                   const float *weight, const float *bias, gint64 ho,
                   gint64 wo, float *col, float *out)
{
  const gint64 cin = g->in_channels / g->groups;
  const gint64 cout = g->out_channels / g->groups;
  const gint64 k = cin * g->kh * g->kw;
  const gint64 hw = ho * wo;

  for (gint64 grp = 0; grp < g->groups; grp++)
    {
      const float *src = img + grp * cin * h * w;
      float *dst = out + grp * cout * hw;
      if (col)
        {
          nn_conv_im2col (src, cin, h, w, g, ho, wo, col);
          src = col;
        }
      if (bias)
        for (gint64 o = 0; o < cout; o++)
          {
            float bv = bias[grp * cout + o];
            float *row = dst + o * hw;
            for (gint64 i = 0; i < hw; i++)
              row[i] = bv;
          }
      cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasNoTrans, (int) cout,
                   (int) hw, (int) k, 1.0f, weight + grp * cout * k, (int) k,
                   src, (int) hw, bias ? 1.0f : 0.0f, dst, (int) hw);
    }
}

/* One image's depthwise convolution, split by output channel. */
typedef struct {
  const NnConvGeom *g;
  const float *img, *weight, *bias;
  gint64 h, w, ho, wo;
  float *out;
} DepthwiseJob;

static void
depthwise_job_run (gsize oc_begin, gsize oc_end, gpointer data)
{
  DepthwiseJob *j = data;
  nn_conv_depthwise (j->img, j->h, j->w, j->weight, j->bias, j->g, j->ho,
                     j->wo, (gint64) oc_begin, (gint64) oc_end, j->out);
}

/* The depthwise kernel is memory-bound and outside OpenBLAS, so it splits
 * the channels over the core's persistent thread pool when the image is
 * big enough to repay waking the workers. */
static void
conv2d_depthwise_image (const NnConvGeom *g, NnThreadPool *pool,
                        const float *img, gint64 h, gint64 w,
                        const float *weight, const float *bias, gint64 ho,
                        gint64 wo, float *out)
{
  enum { MIN_WORK_PER_THREAD = 1 << 15 };
  gint64 work = g->out_channels * ho * wo * g->kh * g->kw;
  DepthwiseJob job = { g, img, weight, bias, h, w, ho, wo, out };

  if (work < 2 * MIN_WORK_PER_THREAD)
    depthwise_job_run (0, (gsize) g->out_channels, &job);
  else
    nn_thread_pool_parallel_for (pool, (gsize) g->out_channels,
                                 depthwise_job_run, &job);
}

static float *
try_alloc_floats (gint64 n, const char *what, GError **error)
{
  float *p = n > 0 && (guint64) n < G_MAXSIZE / sizeof (float)
               ? g_try_malloc ((gsize) n * sizeof (float)) : NULL;
  if (!p)
    g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_FAILED,
                 "cannot allocate %" G_GINT64_FORMAT " floats for the %s",
                 n, what);
  return p;
}

/* The forward, with the epilogue @ep (nullable) of a fused plan step:
 * folded weights, then the residual and the activation on each image
 * while it is hot. */
static NnValue *
conv2d_run (NnModule *self, NnCall *call, const NnArgs *args,
            const NnEpilogue *ep, GError **error)
{
  const NnConvGeom *g = conv2d_geom (self);
  NnTensor *input = nn_args_tensor (args, 0);
  const float *weight, *bias, *x = nn_tensor_f32 (input);
  NnShape os;
  g_autoptr (NnTensor) wkeep = NULL;
  g_autoptr (NnTensor) bkeep = NULL;

  if (!conv2d_out_shape (g, &input->shape, &os, error)
      || !conv2d_weights (self, g, ep, &wkeep, &bkeep, &weight, &bias, error))
    return NULL;
  const float *res = ep && ep->residual ? nn_tensor_f32 (ep->residual) : NULL;
  if (ep && ep->residual
      && (!res || !nn_shape_equal (&ep->residual->shape, &os)))
    {
      /* The core gives the result's shape; anything else is its bug. */
      g_autofree char *r = nn_shape_to_string (&ep->residual->shape);
      g_autofree char *o = nn_shape_to_string (&os);
      g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH,
                   "fused residual add: residual %s (%s) where the output is "
                   "float32 %s", r, nn_dtype_name (ep->residual->dtype), o);
      return NULL;
    }

  const guint nd = input->shape.ndim;
  const gint64 n = nd == 4 ? input->shape.dims[0] : 1;
  gint64 h = input->shape.dims[nd - 2], w = input->shape.dims[nd - 1];
  const gint64 ho = os.dims[nd - 2], wo = os.dims[nd - 1];
  const gint64 in_img = g->in_channels * h * w;
  const gint64 out_img = g->out_channels * ho * wo;
  const gint64 cin = g->in_channels / g->groups;

  if (ho * wo > G_MAXINT32)
    {
      g_autofree char *s = nn_shape_to_string (&os);
      g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH,
                   "output %s has more than %d pixels per channel", s, G_MAXINT32);
      return NULL;
    }

  /* Non-zero padding modes pad each image into a buffer first, then run
   * the zero-padding kernels with no padding, as PyTorch does. */
  NnConvGeom cg = *g;
  g_autofree float *padded = NULL;
  if (g->pad_mode != NN_CONV_PAD_ZEROS)
    {
      cg.pad_top = cg.pad_bottom = cg.pad_left = cg.pad_right = 0;
      padded = try_alloc_floats (g->in_channels * (h + g->pad_top + g->pad_bottom)
                                   * (w + g->pad_left + g->pad_right),
                                 "padded input", error);
      if (!padded)
        return NULL;
    }

  gboolean depthwise = g->groups > 1 && g->groups == g->in_channels;
  if (!depthwise && !nn_blas_ready (error))
    return NULL;
  gboolean direct = g->kh == 1 && g->kw == 1 && g->sh == 1 && g->sw == 1
                    && cg.pad_top == 0 && cg.pad_bottom == 0
                    && cg.pad_left == 0 && cg.pad_right == 0;
  g_autofree float *col = NULL;
  if (!depthwise && !direct && n > 0)
    {
      col = try_alloc_floats (cin * g->kh * g->kw * ho * wo, "im2col buffer", error);
      if (!col)
        return NULL;
    }

  NnTensor *out = nn_tensor_new (NN_DTYPE_F32, &os);
  if (!out)
    {
      g_autofree char *s = nn_shape_to_string (&os);
      g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_FAILED,
                   "cannot allocate the output %s", s);
      return NULL;
    }
  float *y = nn_tensor_f32 (out);

  if (!depthwise)
    nn_blas_prepare ();
  for (gint64 i = 0; i < n; i++)
    {
      const float *img = x + i * in_img;
      gint64 ih = h, iw = w;
      if (padded)
        {
          nn_conv_pad_image (img, g->in_channels, h, w, g, padded);
          img = padded;
          ih = h + g->pad_top + g->pad_bottom;
          iw = w + g->pad_left + g->pad_right;
        }
      if (depthwise)
        conv2d_depthwise_image (&cg, nn_call_get_thread_pool (call), img, ih,
                                iw, weight, bias, ho, wo, y + i * out_img);
      else
        conv2d_gemm_image (&cg, img, ih, iw, weight, bias, ho, wo, col,
                           y + i * out_img);
      if (res)
        {
          /* The absorbed residual add, before the activation. */
          float *yi = y + i * out_img;
          const float *ri = res + i * out_img;
          for (gint64 k = 0; k < out_img; k++)
            yi[k] += ri[k];
        }
      if (ep && ep->act != NN_ACT_NONE)
        nn_fuse_apply_act (y + i * out_img, (gsize) out_img, ep->act,
                           ep->alpha, ep->beta);
    }
  return nn_value_take_tensor (out);
}

static NnValue *
conv2d_forward (NnModule *self, NnCall *call, const NnArgs *args,
                GError **error)
{
  return conv2d_run (self, call, args, NULL, error);
}

/* Fused plan steps (docs/ENGINE.md, "Fusion"): a following BatchNorm
 * folds into the weights, a residual add and any activation the core
 * applies run per image. */
const NnFuseInfo nn_conv2d_fuse = {
  .struct_size = sizeof (NnFuseInfo),
  .accepts = NN_FUSE_ACCEPT_AFFINE | NN_FUSE_ACCEPT_ADD,
  .act_kinds = NN_ACT_BIT (NN_ACT_RELU) | NN_ACT_BIT (NN_ACT_CLIP)
               | NN_ACT_BIT (NN_ACT_SILU) | NN_ACT_BIT (NN_ACT_HARDSWISH)
               | NN_ACT_BIT (NN_ACT_GELU_ERF) | NN_ACT_BIT (NN_ACT_GELU_TANH)
               | NN_ACT_BIT (NN_ACT_SIGMOID) | NN_ACT_BIT (NN_ACT_TANH),
  .affine_dim_from_end = -3,
  .weight_name = "weight",
  .bias_name = "bias",
  .forward_fused = conv2d_run,
};

/* The input coordinate that padded position @i (may be < 0 or >= @n)
 * reads under @mode, or -1 for a zero.  conv2d_out_shape guarantees
 * reflect pads < n and circular pads <= n, so one fold suffices. */
static inline gint64
tap_source (gint64 i, gint64 n, NnConvPadMode mode)
{
  if (i >= 0 && i < n)
    return i;
  switch (mode)
    {
    case NN_CONV_PAD_REFLECT:
      return i < 0 ? -i : 2 * (n - 1) - i;
    case NN_CONV_PAD_CIRCULAR:
      return ((i % n) + n) % n;
    case NN_CONV_PAD_REPLICATE:
      return i < 0 ? 0 : n - 1;
    case NN_CONV_PAD_ZEROS:
    default:
      return -1;
    }
}

/* The three gradients of the convolution, per image and group on GEMMs
 * (as PyTorch's CPU path): with col the im2col matrix [cin*kh*kw, ho*wo]
 * of the image and G the group's output gradient [cout, ho*wo],
 * d weight += G col^T, dcol = W^T G, folded back onto the input taps it
 * came from (col2im), d bias += row sums of G.  Every padding mode: a tap
 * that read a reflected, replicated or wrapped pixel sends its gradient
 * to that pixel; a zero tap sends none. */
static NnValue *
conv2d_backward (NnModule *self, NnCall *call, const NnArgs *args,
                 const NnValue *out, const NnValue *grad_out, GError **error)
{
  const NnConvGeom *g = conv2d_geom (self);
  NnTensor *input = nn_args_tensor (args, 0);
  const float *weight, *bias;
  g_autoptr (NnTensor) wkeep = NULL;
  g_autoptr (NnTensor) bkeep = NULL;
  if (!nn_blas_ready (error)
      || !conv2d_weights (self, g, NULL, &wkeep, &bkeep, &weight, &bias, error))
    return NULL;
  NnTensor *gt = nn_value_get_tensor (grad_out);
  const guint nd = input->shape.ndim;
  const gint64 n = nd == 4 ? input->shape.dims[0] : 1;
  const gint64 h = input->shape.dims[nd - 2], w = input->shape.dims[nd - 1];
  const gint64 ho = gt->shape.dims[nd - 2], wo = gt->shape.dims[nd - 1];
  const gint64 cin = g->in_channels / g->groups, cout = g->out_channels / g->groups;
  const gint64 kk = cin * g->kh * g->kw, P = ho * wo;
  const float *x = nn_tensor_f32 (input), *go = nn_tensor_f32 (gt);
  float *gw = nn_module_grad_f32 (self, "weight");
  float *gb = g->has_bias ? nn_module_grad_f32 (self, "bias") : NULL;
  g_autofree gint64 *rows = g_new (gint64, MAX (g->kh * ho, 1));
  g_autofree gint64 *cols = g_new (gint64, MAX (g->kw * wo, 1));
  for (gint64 ki = 0; ki < g->kh; ki++)
    for (gint64 oh = 0; oh < ho; oh++)
      rows[ki * ho + oh] = tap_source (oh * g->sh - g->pad_top + ki * g->dh, h,
                                       g->pad_mode);
  for (gint64 kj = 0; kj < g->kw; kj++)
    for (gint64 ow = 0; ow < wo; ow++)
      cols[kj * wo + ow] = tap_source (ow * g->sw - g->pad_left + kj * g->dw, w,
                                       g->pad_mode);
  /* No input gradient for a network's first convolution (PyTorch's
   * output_mask): its GEMM and col2im are skipped. */
  const gboolean want_dx = nn_call_input_needs_grad (call, args, 0);
  g_autofree float *col = try_alloc_floats (MAX (kk * P, 1), "im2col buffer", error);
  g_autofree float *dcol = col && want_dx
                           ? try_alloc_floats (MAX (kk * P, 1), "im2col gradient", error)
                           : NULL;
  NnTensor *dx = dcol ? nn_tensor_new (NN_DTYPE_F32, &input->shape) : NULL;
  if (want_dx ? !dx : !col)
    {
      if (error && !*error)
        g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_FAILED,
                     "cannot allocate the input gradient");
      return NULL;
    }
  float *d = dx ? nn_tensor_f32 (dx) : NULL;
  nn_blas_prepare ();
  for (gint64 b = 0; b < n; b++)
    for (gint64 grp = 0; grp < g->groups; grp++)
      {
        const float *xg = x + (b * g->in_channels + grp * cin) * h * w;
        float *dg = d ? d + (b * g->in_channels + grp * cin) * h * w : NULL;
        const float *gg = go + (b * g->out_channels + grp * cout) * P;
        if (gb)
          for (gint64 oc = 0; oc < cout; oc++)
            {
              double sum = 0.0;
              for (gint64 p = 0; p < P; p++)
                sum += gg[oc * P + p];
              gb[grp * cout + oc] += (float) sum;
            }
        if (P == 0 || kk == 0)
          continue;
        if (cin == 1)
          {
            /* Depthwise: one input plane per group, where GEMMs would be
             * tiny; direct loops over the taps instead. */
            const float *plane = xg;
            for (gint64 oc = 0; oc < cout; oc++)
              {
                const float *wk = weight + (grp * cout + oc) * kk;
                const float *go_oc = gg + oc * P;
                for (gint64 ki = 0; ki < g->kh; ki++)
                  for (gint64 kj = 0; kj < g->kw; kj++)
                    {
                      const gint64 t = ki * g->kw + kj;
                      const float wv = wk[t];
                      double acc = 0.0;
                      for (gint64 oh = 0; oh < ho; oh++)
                        {
                          gint64 sr = rows[ki * ho + oh];
                          if (sr < 0)
                            continue;
                          const float *gr = go_oc + oh * wo;
                          for (gint64 ow = 0; ow < wo; ow++)
                            {
                              gint64 sc = cols[kj * wo + ow];
                              if (sc < 0)
                                continue;
                              acc += gr[ow] * plane[sr * w + sc];
                              if (dg)
                                dg[sr * w + sc] += gr[ow] * wv;
                            }
                        }
                      if (gw)
                        gw[(grp * cout + oc) * kk + t] += (float) acc;
                    }
              }
            continue;
          }
        if (gw)
          {
            for (gint64 ic = 0; ic < cin; ic++)
              for (gint64 ki = 0; ki < g->kh; ki++)
                for (gint64 kj = 0; kj < g->kw; kj++)
                  {
                    float *cr = col + ((ic * g->kh + ki) * g->kw + kj) * P;
                    const float *plane = xg + ic * h * w;
                    for (gint64 oh = 0; oh < ho; oh++)
                      {
                        gint64 sr = rows[ki * ho + oh];
                        for (gint64 ow = 0; ow < wo; ow++)
                          {
                            gint64 sc = cols[kj * wo + ow];
                            cr[oh * wo + ow] = sr < 0 || sc < 0 ? 0.0f
                                                                : plane[sr * w + sc];
                          }
                      }
                  }
            cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasTrans, cout, kk, P,
                         1.0f, gg, P, col, P, 1.0f, gw + grp * cout * kk, kk);
          }
        if (!dg)
          continue;
        cblas_sgemm (CblasRowMajor, CblasTrans, CblasNoTrans, kk, P, cout, 1.0f,
                     weight + grp * cout * kk, kk, gg, P, 0.0f, dcol, P);
        for (gint64 ic = 0; ic < cin; ic++)
          for (gint64 ki = 0; ki < g->kh; ki++)
            for (gint64 kj = 0; kj < g->kw; kj++)
              {
                const float *cr = dcol + ((ic * g->kh + ki) * g->kw + kj) * P;
                float *plane = dg + ic * h * w;
                for (gint64 oh = 0; oh < ho; oh++)
                  {
                    gint64 sr = rows[ki * ho + oh];
                    if (sr < 0)
                      continue;
                    for (gint64 ow = 0; ow < wo; ow++)
                      {
                        gint64 sc = cols[kj * wo + ow];
                        if (sc >= 0)
                          plane[sr * w + sc] += cr[oh * wo + ow];
                      }
                  }
              }
      }
  NnValue *res = nn_value_new_tuple ();
  nn_value_append (res, dx ? nn_value_take_tensor (dx) : nn_value_new_none ());
  return res;
}

static char *
conv2d_extra_repr (NnModule *self)
{
  const NnConvGeom *g = conv2d_geom (self);
  GString *s = g_string_new (NULL);
  gint64 p[2];

  g_string_append_printf (s, "%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT
                          ", kernel_size=(%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT
                          "), stride=(%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT ")",
                          g->in_channels, g->out_channels, g->kh, g->kw,
                          g->sh, g->sw);
  /* PyTorch formats the padding string bare: padding=same. */
  if (!nn_module_config_ints (self, "padding", p, 2))
    g_string_append_printf (s, ", padding=%s",
                            nn_module_config_string (self, "padding"));
  else if (p[0] != 0 || p[1] != 0)
    g_string_append_printf (s, ", padding=(%" G_GINT64_FORMAT ", %"
                            G_GINT64_FORMAT ")", p[0], p[1]);
  if (g->dh != 1 || g->dw != 1)
    g_string_append_printf (s, ", dilation=(%" G_GINT64_FORMAT ", %"
                            G_GINT64_FORMAT ")", g->dh, g->dw);
  if (g->groups != 1)
    g_string_append_printf (s, ", groups=%" G_GINT64_FORMAT, g->groups);
  if (!g->has_bias)
    g_string_append (s, ", bias=False");
  if (g->pad_mode != NN_CONV_PAD_ZEROS)
    g_string_append_printf (s, ", padding_mode=%s", padding_modes[g->pad_mode]);
  return g_string_free (s, FALSE);
}

/* kaiming_uniform_(a=sqrt(5)) reduces to U(-1/sqrt(fan_in), 1/sqrt(fan_in)),
 * and PyTorch draws the bias from the same bound. */
static void
conv2d_reset_parameters (NnModule *self, GRand *rng)
{
  const NnConvGeom *g = conv2d_geom (self);
  double fan_in = (double) (g->in_channels / g->groups) * g->kh * g->kw;
  double bound = 1.0 / sqrt (fan_in);
  const char *names[] = { "weight", "bias" };

  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    nn_module_init_uniform (self, names[i], bound, rng);
}

/* torchinfo: every weight and bias element is used once per output pixel
 * of every image (the channel dimension is ignored). */
static guint64
conv2d_count_macs (NnModule *self, const NnArgs *args, const NnValue *value)
{
  const NnConvGeom *g = conv2d_geom (self);
  NnTensor *y = nn_value_get_tensor (value);
  if (!y)
    return 0;
  const NnShape *out = &y->shape;
  guint64 params = (guint64) g->out_channels * (guint64) (g->in_channels / g->groups)
                   * (guint64) g->kh * (guint64) g->kw;
  if (g->has_bias)
    params += (guint64) g->out_channels;
  if (out->ndim < 3)
    return 0;
  guint64 n = out->ndim == 4 ? (guint64) out->dims[0] : 1;
  /* G_MAXUINT64 when the count overflows: callers report it. */
  if (__builtin_mul_overflow (params, n, &n)
      || __builtin_mul_overflow (n, (guint64) out->dims[out->ndim - 2], &n)
      || __builtin_mul_overflow (n, (guint64) out->dims[out->ndim - 1], &n))
    return G_MAXUINT64;
  return n;
}

const NnLayerType nn_conv2d_type = {
  .struct_size = sizeof (NnLayerType),
  .name = "Conv2d",
  .doc = "2-D convolution over an NCHW input, as torch.nn.Conv2d",
  .schema = conv2d_schema,
  .n_schema = G_N_ELEMENTS (conv2d_schema),
  .flags = NN_LAYER_HALF_WEIGHTS,
  .create = conv2d_create,
  .args = conv2d_args,
  .n_args = G_N_ELEMENTS (conv2d_args),
  .destroy = conv2d_destroy,
  .infer = conv2d_infer,
  .forward = conv2d_forward,
  .fuse = &nn_conv2d_fuse,
  .backward = conv2d_backward,
  .extra_repr = conv2d_extra_repr,
  .reset_parameters = conv2d_reset_parameters,
  .count_macs = conv2d_count_macs,
};
