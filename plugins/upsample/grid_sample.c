/* F.affine_grid and F.grid_sample in 2-d, as spatial transformer networks
 * use them: affine_grid turns [N, 2, 3] matrices into a sampling grid
 * [N, H, W, 2] of normalised (x, y) in [-1, 1]; grid_sample reads
 * [N, C, H_in, W_in] at those points (bilinear or nearest; zeros, border
 * or reflection padding; align_corners as PyTorch defines it). */
#include "upsample.h"
#include "../common/nn-layer-util.h"

#include <math.h>

static gboolean
grid_create (NnModule *self, GError **error)
{
  return TRUE;
}

/* Normalised coordinate of pixel @i of @n: the corners' centres at -1, 1
 * (align_corners) or the corners themselves. */
static double
base_coord (gint64 i, gint64 n, gboolean align)
{
  if (n <= 1)
    return 0.0;
  return align ? -1.0 + 2.0 * (double) i / (double) (n - 1)
               : (2.0 * (double) i + 1.0) / (double) n - 1.0;
}

static NnValue *
affine_grid_forward (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  NnTensor *theta = nn_args_tensor (args, 0);
  guint n_size = 0;
  g_autofree gint64 *size = nn_args_ints (args, 1, 0, &n_size, error);
  if (!size)
    return NULL;
  gboolean align = nn_args_bool (args, 2);
  if (n_size != 4) {
    nn_lu_shape_fail (error, "affine_grid only supports 4D sizes (2-d images) here, found a size of "
          "%u dims", n_size);
    return NULL;
  }
  const NnShape *ts = &theta->shape;
  if (ts->ndim != 3 || ts->dims[1] != 2 || ts->dims[2] != 3 || ts->dims[0] != size[0]) {
    g_autofree char *found = nn_shape_to_string (ts);
    nn_lu_shape_fail (error, "Expected a batch of 2D affine matrices of shape Nx2x3 for size [%"
          G_GINT64_FORMAT ", %" G_GINT64_FORMAT ", %" G_GINT64_FORMAT ", %" G_GINT64_FORMAT
          "]. Got %s.", size[0], size[1], size[2], size[3], found);
    return NULL;
  }
  gint64 n = size[0], h = size[2], w = size[3];
  NnShape os = { 4, { n, h, w, 2 } };
  gboolean meta = nn_tensor_is_meta (theta);
  NnTensor *grid = nn_lu_new_f32 (&os, meta);
  if (!grid || meta)
    return nn_lu_result (grid, error);
  const float *t = nn_tensor_f32 (theta);
  float *g = nn_tensor_f32 (grid);
  for (gint64 b = 0; b < n; b++)
    for (gint64 i = 0; i < h; i++)
      for (gint64 j = 0; j < w; j++) {
        double x = base_coord (j, w, align), y = base_coord (i, h, align);
        const float *m = t + b * 6;
        float *out = g + ((b * h + i) * w + j) * 2;
        out[0] = (float) (m[0] * x + m[1] * y + m[2]);
        out[1] = (float) (m[3] * x + m[4] * y + m[5]);
      }
  return nn_value_take_tensor (grid);
}

typedef enum { PAD_ZEROS, PAD_BORDER, PAD_REFLECTION } Pad;

/* Reflects @x into [lo, hi], as PyTorch's reflect_coordinates. */
static double
reflect (double x, double lo, double hi)
{
  if (hi <= lo)
    return 0.0;
  double span = hi - lo;
  x = fabs (x - lo);
  double flips = floor (x / span), extra = fmod (x, span);
  return fmod (flips, 2.0) == 0.0 ? extra + lo : span - extra + lo;
}

/* A normalised coordinate in pixels, with the padding applied. */
static double
source_index (double c, gint64 n, Pad pad, gboolean align)
{
  double x = align ? (c + 1.0) / 2.0 * (double) (n - 1)
                   : ((c + 1.0) * (double) n - 1.0) / 2.0;
  if (pad == PAD_REFLECTION) {
    x = align ? reflect (x, 0.0, (double) (n - 1))
              : reflect (x, -0.5, (double) n - 0.5);
    pad = PAD_BORDER;
  }
  if (pad == PAD_BORDER)
    x = CLAMP (x, 0.0, (double) (n - 1));
  return x;
}

static NnValue *
grid_sample_forward (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  NnTensor *input = nn_args_tensor (args, 0), *grid = nn_args_tensor (args, 1);
  const char *mode = nn_value_get_string (nn_args_get (args, 2));
  const char *padding = nn_value_get_string (nn_args_get (args, 3));
  NnValue *alignv = nn_args_get (args, 4);
  gboolean align = !nn_value_is_none (alignv) && nn_value_get_bool (alignv);
  gboolean nearest = g_strcmp0 (mode, "nearest") == 0;
  if (!nearest && g_strcmp0 (mode, "bilinear") != 0) {
    nn_lu_shape_fail (error, "grid_sample(): mode '%s' is not supported (bilinear or nearest)", mode);
    return NULL;
  }
  Pad pad;
  if (g_strcmp0 (padding, "zeros") == 0)
    pad = PAD_ZEROS;
  else if (g_strcmp0 (padding, "border") == 0)
    pad = PAD_BORDER;
  else if (g_strcmp0 (padding, "reflection") == 0)
    pad = PAD_REFLECTION;
  else {
    nn_lu_shape_fail (error, "nn.functional.grid_sample(): expected padding_mode to be 'zeros', "
          "'border', or 'reflection', but got: '%s'", padding);
    return NULL;
  }
  const NnShape *s = &input->shape, *gs = &grid->shape;
  if (s->ndim != 4 || gs->ndim != 4 || gs->dims[3] != 2 || gs->dims[0] != s->dims[0]) {
    g_autofree char *a = nn_shape_to_string (s);
    g_autofree char *b = nn_shape_to_string (gs);
    nn_lu_shape_fail (error, "grid_sample(): expected a 4-D input [N, C, H, W] and a grid [N, H_out, "
          "W_out, 2] of the same N, found %s and %s", a, b);
    return NULL;
  }
  gint64 n = s->dims[0], c = s->dims[1], h = s->dims[2], w = s->dims[3];
  gint64 ho = gs->dims[1], wo = gs->dims[2];
  NnShape os = { 4, { n, c, ho, wo } };
  gboolean meta = nn_tensor_is_meta (input) || nn_tensor_is_meta (grid);
  NnTensor *y = nn_lu_new_f32 (&os, meta);
  if (!y || meta)
    return nn_lu_result (y, error);
  const float *x = nn_tensor_f32 (input), *g = nn_tensor_f32 (grid);
  float *yd = nn_tensor_f32 (y);
  for (gint64 b = 0; b < n; b++)
    for (gint64 i = 0; i < ho; i++)
      for (gint64 j = 0; j < wo; j++) {
        const float *pt = g + ((b * ho + i) * wo + j) * 2;
        double ix = source_index (pt[0], w, pad, align);
        double iy = source_index (pt[1], h, pad, align);
        for (gint64 ch = 0; ch < c; ch++) {
          const float *plane = x + (b * c + ch) * h * w;
          double v = 0.0;
          if (nearest) {
            /* Half to even, as nearbyint. */
            gint64 xi = (gint64) nearbyint (ix), yi = (gint64) nearbyint (iy);
            if (xi >= 0 && xi < w && yi >= 0 && yi < h)
              v = plane[yi * w + xi];
          } else {
            gint64 x0 = (gint64) floor (ix), y0 = (gint64) floor (iy);
            double fx = ix - (double) x0, fy = iy - (double) y0;
            for (gint64 dy = 0; dy < 2; dy++)
              for (gint64 dx = 0; dx < 2; dx++) {
                gint64 xx = x0 + dx, yy = y0 + dy;
                if (xx < 0 || xx >= w || yy < 0 || yy >= h)
                  continue;
                double wt = (dx ? fx : 1.0 - fx) * (dy ? fy : 1.0 - fy);
                v += wt * plane[yy * w + xx];
              }
          }
          yd[((b * c + ch) * ho + i) * wo + j] = (float) v;
        }
      }
  return nn_value_take_tensor (y);
}

/* F.affine_grid(theta, size, align_corners=None); None is False, as
 * PyTorch's default (with a warning there). */
static const NnArgSpec affine_grid_args[] = {
  { "theta", NN_ARG_TENSOR, 0, 0, NULL, "float32 [N, 2, 3] affine matrices" },
  { "size", NN_ARG_SEQ, 0, 0, NULL, "the output image size [N, C, H, W]" },
  { "align_corners", NN_ARG_BOOL | NN_ARG_NONE, 0, NN_ARG_OPTIONAL, "null",
    "-1 and 1 at the corner pixels' centres (True) or at their outer edges" },
};

/* F.grid_sample(input, grid, mode='bilinear', padding_mode='zeros',
 * align_corners=None). */
static const NnArgSpec grid_sample_args[] = {
  { "input", NN_ARG_TENSOR, 0, 0, NULL, "float32 [N, C, H, W]" },
  { "grid", NN_ARG_TENSOR, 0, 0, NULL, "float32 [N, H_out, W_out, 2], (x, y) in [-1, 1]" },
  { "mode", NN_ARG_STRING, 0, NN_ARG_OPTIONAL, "\"bilinear\"", "bilinear or nearest" },
  { "padding_mode", NN_ARG_STRING, 0, NN_ARG_OPTIONAL, "\"zeros\"",
    "zeros, border or reflection" },
  { "align_corners", NN_ARG_BOOL | NN_ARG_NONE, 0, NN_ARG_OPTIONAL, "null",
    "as affine_grid's (None is False)" },
};

static const char *const affine_grid_aliases[] = { "torch.nn.functional.affine_grid", NULL };
static const char *const grid_sample_aliases[] = { "torch.nn.functional.grid_sample", NULL };

const NnLayerType nn_affine_grid_type = {
  .struct_size = sizeof (NnLayerType),
  .name = "affine_grid",
  .doc = "F.affine_grid: a 2-d sampling grid from [N, 2, 3] affine matrices",
  .flags = NN_LAYER_OP,
  .args = affine_grid_args,
  .n_args = G_N_ELEMENTS (affine_grid_args),
  .aliases = affine_grid_aliases,
  .create = grid_create,
  .forward = affine_grid_forward,
  .infer = affine_grid_forward,
};

const NnLayerType nn_grid_sample_type = {
  .struct_size = sizeof (NnLayerType),
  .name = "grid_sample",
  .doc = "F.grid_sample: [N, C, H, W] read at a grid's points (2-d)",
  .flags = NN_LAYER_OP,
  .args = grid_sample_args,
  .n_args = G_N_ELEMENTS (grid_sample_args),
  .aliases = grid_sample_aliases,
  .create = grid_create,
  .forward = grid_sample_forward,
  .infer = grid_sample_forward,
};
