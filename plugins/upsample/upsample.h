/* upsample plugin: the layer types it registers and the interpolation
 * they share.  Private to the plugin. */
#ifndef NN_UPSAMPLE_H
#define NN_UPSAMPLE_H

#include <nnkit/plugin.h>

extern const NnLayerType nn_upsample_type;
extern const NnLayerType nn_upsampling_nearest2d_type;
extern const NnLayerType nn_upsampling_bilinear2d_type;
extern const NnLayerType nn_interpolate_type;
extern const NnLayerType nn_pixel_shuffle_type;
extern const NnLayerType nn_pixel_unshuffle_type;
extern const NnLayerType nn_pixel_shuffle_fn_type;
extern const NnLayerType nn_pixel_unshuffle_fn_type;
extern const NnLayerType nn_channel_shuffle_type;
extern const NnLayerType nn_channel_shuffle_fn_type;
extern const NnLayerType nn_affine_grid_type;
extern const NnLayerType nn_grid_sample_type;

/* F.interpolate's arguments, as Python values: @size and @scale_factor
 * (transfer none) are None, a number or a sequence; @align_corners and
 * @recompute are -1 for None, else 0/1. */
typedef struct {
  const NnValue *size;
  const NnValue *scale_factor;
  const char *mode;
  int align_corners;
  int recompute;
} NnInterpArgs;

/* F.interpolate on @input (transfer none; a meta tensor gives a meta
 * result).  Returns (transfer full) a tensor value, or NULL with
 * PyTorch's error. */
NnValue *nn_interpolate (NnTensor *input, const NnInterpArgs *a,
                         GError **error);

#endif
