/* upsample plugin: entry point.  Registers Upsample and its fixed-mode
 * variants, F.interpolate, PixelShuffle, PixelUnshuffle, ChannelShuffle and their
 * functional forms, F.affine_grid and F.grid_sample. */
#include "upsample.h"

static const NnLayerType *const upsample_types[] = {
  &nn_upsample_type,
  &nn_upsampling_nearest2d_type,
  &nn_upsampling_bilinear2d_type,
  &nn_interpolate_type,
  &nn_pixel_shuffle_type,
  &nn_pixel_unshuffle_type,
  &nn_pixel_shuffle_fn_type,
  &nn_pixel_unshuffle_fn_type,
  &nn_channel_shuffle_type,
  &nn_channel_shuffle_fn_type,
  &nn_affine_grid_type,
  &nn_grid_sample_type,
};

static gboolean
upsample_init (NnPlugin *plugin, GError **error)
{
  for (gsize i = 0; i < G_N_ELEMENTS (upsample_types); i++)
    if (!nn_plugin_register_type (plugin, upsample_types[i], error))
      return FALSE;
  return TRUE;
}

NN_PLUGIN_DEFINE ("upsample", "0.1.0", "MIT",
                  "Upsample, F.interpolate, PixelShuffle, PixelUnshuffle, ChannelShuffle, F.affine_grid, "
                  "F.grid_sample",
                  upsample_init)
