/* conv plugin: its layer types and the kernels they share.  Private to
 * the plugin. */
#ifndef NN_CONV_H
#define NN_CONV_H

#include <nnkit/plugin.h>

extern const NnLayerType nn_conv2d_type;
extern const NnLayerType nn_unfold_type;
extern const NnLayerType nn_fold_type;

typedef enum {
  NN_CONV_PAD_ZEROS,
  NN_CONV_PAD_REFLECT,
  NN_CONV_PAD_REPLICATE,
  NN_CONV_PAD_CIRCULAR,
} NnConvPadMode;

/* A Conv2d's geometry, resolved once from its config in create(). */
typedef struct {
  gint64 in_channels, out_channels, groups;
  gint64 kh, kw;           /* kernel extent, rows and columns */
  gint64 sh, sw;           /* stride */
  gint64 dh, dw;           /* dilation */
  gint64 pad_top, pad_bottom, pad_left, pad_right; /* 'same' may be uneven */
  NnConvPadMode pad_mode;
  gboolean has_bias;
} NnConvGeom;

/* One image plane set of @c channels, [c, h, w], unfolded into the
 * [c * kh * kw, ho * wo] matrix whose product with the weights is the
 * convolution; taps falling into the zero padding read as 0. */
void nn_conv_im2col (const float *in, gint64 c, gint64 h, gint64 w,
                     const NnConvGeom *g, gint64 ho, gint64 wo, float *col);

/* Depthwise convolution of one image: output channel o reads input
 * channel o / (out / in) only.  @bias (nullable).  Writes every element
 * of output channels [oc_begin, oc_end) of @out [out_channels, ho, wo],
 * so that threads can split the channels. */
void nn_conv_depthwise (const float *in, gint64 h, gint64 w,
                        const float *weight, const float *bias,
                        const NnConvGeom *g, gint64 ho, gint64 wo,
                        gint64 oc_begin, gint64 oc_end, float *out);

/* Copies one image [c, h, w] into @out [c, h + top + bottom,
 * w + left + right], filling the border by @g's non-zero padding mode. */
void nn_conv_pad_image (const float *in, gint64 c, gint64 h, gint64 w,
                        const NnConvGeom *g, float *out);


#endif
