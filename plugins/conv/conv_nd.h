/* conv plugin: geometry and kernels of Conv1d, ConvTranspose1d and
 * ConvTranspose2d.  A 1-d layer runs as a 2-d one of height 1, so one set
 * of kernels serves all three.  Private to the plugin. */
#ifndef NN_CONV_ND_H
#define NN_CONV_ND_H

#include <nnkit/plugin.h>

extern const NnLayerType nn_conv1d_type;
extern const NnLayerType nn_conv_transpose1d_type;
extern const NnLayerType nn_conv_transpose2d_type;
/* Conv3d (conv3d.c). */
extern const NnLayerType nn_conv3d_type;
/* F.conv1d and F.conv2d (conv_fn.c). */
extern const NnLayerType nn_conv1d_fn_type;
extern const NnLayerType nn_conv2d_fn_type;
/* F.conv3d (conv3d_fn.c). */
extern const NnLayerType nn_conv3d_fn_type;
/* The signature F.conv1d, conv2d and conv3d share (conv_fn.c). */
#define NN_CONV_FN_N_ARGS 7
extern const NnArgSpec nn_conv_fn_args[NN_CONV_FN_N_ARGS];
/* F.convNd's checks, in PyTorch's words: @w's out_channels divisible by
 * @groups, @b (nullable) one value per out_channel (conv_fn.c). */
gboolean nn_conv_fn_check_weight (NnTensor *w, NnTensor *b, gint64 groups,
                                  GError **error);

typedef enum {
  NN_CONVND_ZEROS,
  NN_CONVND_REFLECT,
  NN_CONVND_REPLICATE,
  NN_CONVND_CIRCULAR,
} NnConvNdPad;

/* Input index for padded position @p of an extent-@n dim padded by
 * @before (reflected, replicated or wrapped per @mode), or -1 for a zero
 * (conv_nd_kernels.c; the 1-d, 2-d and 3-d kernels' one rule). */
gint64 nn_convnd_source (NnConvNdPad mode, gint64 p, gint64 before, gint64 n);

/* padding='same' for @n dims of kernel @k and dilation @d (stride 1):
 * each dim's d * (k - 1) split into @pad0 before and @pad1 after, the odd
 * tap of an even kernel after, as PyTorch pads (conv_nd.c). */
void nn_convnd_same_padding (guint n, const gint64 *k, const gint64 *d,
                             gint64 *pad0, gint64 *pad1);

/* A 3-d convolution's geometry, (d, h, w) order: Conv3d's config or
 * F.conv3d's arguments. */
typedef struct {
  gint64 in_c, out_c, groups;
  gint64 k[3], s[3], d[3];   /* kernel, stride, dilation */
  gint64 pad0[3], pad1[3];   /* padding before and after ('same' may differ) */
  NnConvNdPad mode;
} NnConv3d;

/* @input [N, C, D, H, W] or [C, D, H, W] convolved by @w
 * [out_c, in_c / groups, kd, kh, kw] plus @b (nullable) under @g: a new
 * float32 tensor (transfer full), meta when @input is; NULL and @error,
 * in PyTorch's words, when the shapes do not fit (conv3d.c).  Reentrant. */
NnTensor *nn_conv3d_run (const NnConv3d *g, NnTensor *input, NnTensor *w,
                         NnTensor *b, GError **error);

/* Geometry resolved from the config; index 0 is height (1 for 1-d). */
typedef struct {
  guint nd;                  /* spatial dims: 1 or 2 */
  gboolean transposed;
  gint64 in_channels, out_channels, groups;
  gint64 k[2], s[2], d[2];   /* kernel, stride, dilation */
  gint64 pad0[2], pad1[2];   /* padding before and after ('same' may differ) */
  gint64 out_pad[2];         /* transposed only: output_padding */
  NnConvNdPad pad_mode;
  gboolean has_bias;
} NnConvNd;

/* Reads @self's config into a new NnConvNd set as private data, registers
 * weight and bias; errors in PyTorch's words. */
gboolean nn_convnd_create (NnModule *self, guint nd, gboolean transposed,
                           GError **error);
void nn_convnd_destroy (NnModule *self);
/* PyTorch's ConvNd.extra_repr. */
char *nn_convnd_extra_repr (NnModule *self);
/* kaiming_uniform_(a=sqrt(5)) for weight and the matching bias bound. */
void nn_convnd_reset_parameters (NnModule *self, GRand *rng);
guint64 nn_convnd_count_macs (NnModule *self, const NnArgs *args,
                              const NnValue *out);

/* Direct convolution of @n images [n, C, H, W] into @y [n, O, Ho, Wo]. */
void nn_convnd_forward_kernel (const NnConvNd *g, const float *x, gint64 n,
                               gint64 h, gint64 w, const float *weight,
                               const float *bias, gint64 ho, gint64 wo,
                               float *y);
/* Transposed convolution of @n images into @y [n, O, Ho, Wo]. */
void nn_convnd_transpose_kernel (const NnConvNd *g, const float *x, gint64 n,
                                 gint64 h, gint64 w, const float *weight,
                                 const float *bias, gint64 ho, gint64 wo,
                                 float *y);

#endif
