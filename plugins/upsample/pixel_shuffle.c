/* PixelShuffle and PixelUnshuffle: [*, C * r * r, H, W] <-> [*, C, H * r,
 * W * r], as torch.nn defines them (any dtype: it only moves elements). */
#include "upsample.h"
#include "../common/nn-layer-util.h"

static const NnSchemaKey shuffle_schema[] = {
  { "upscale_factor", NN_KIND_INT, 0, NN_KEY_HAS_MIN, NULL, 1, 0, NULL,
    "factor r: channels C * r * r become an r x r block" },
};
static const NnSchemaKey unshuffle_schema[] = {
  { "downscale_factor", NN_KIND_INT, 0, NN_KEY_HAS_MIN, NULL, 1, 0, NULL,
    "factor r: each r x r block becomes r * r channels" },
};

static const NnArgSpec shuffle_args[] = {
  { "input", NN_ARG_TENSOR, NN_DTYPES_ALL, 0, NULL, "[*, C, H, W]" },
};

static gboolean
shuffle_create (NnModule *self, GError **error)
{
  return TRUE;
}

/* @up: PixelShuffle, else PixelUnshuffle. */
static NnValue *
shuffle_run (NnTensor *input, gint64 r, gboolean up, GError **error)
{
  const char *op = up ? "pixel_shuffle" : "pixel_unshuffle";
  const NnShape *s = &input->shape;
  if (r < 1) {
    /* Only the functional forms get here: the layers' schema says >= 1. */
    g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH,
                 "%s expects a positive %s, but got %" G_GINT64_FORMAT, op,
                 up ? "upscale_factor" : "downscale_factor", r);
    return NULL;
  }
  if (s->ndim < 3) {
    g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH,
                 "%s expects input to have at least 3 dimensions, but got "
                 "input with %u dimension(s)", op, s->ndim);
    return NULL;
  }
  guint n = s->ndim;
  gint64 c = s->dims[n - 3], h = s->dims[n - 2], w = s->dims[n - 1];
  NnShape os = *s;
  if (up) {
    if (c % (r * r)) {
      g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH,
                   "pixel_shuffle expects its input's 'channel' dimension to be "
                   "divisible by the square of upscale_factor, but "
                   "input.size(-3)=%" G_GINT64_FORMAT " is not divisible by %"
                   G_GINT64_FORMAT, c, r * r);
      return NULL;
    }
    os.dims[n - 3] = c / (r * r), os.dims[n - 2] = h * r, os.dims[n - 1] = w * r;
  } else {
    if (h % r || w % r) {
      gboolean hb = h % r != 0;
      g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH,
                   "pixel_unshuffle expects %s to be divisible by "
                   "downscale_factor, but input.size(%d)=%" G_GINT64_FORMAT
                   " is not divisible by %" G_GINT64_FORMAT,
                   hb ? "height" : "width", hb ? -2 : -1, hb ? h : w, r);
      return NULL;
    }
    os.dims[n - 3] = c * r * r, os.dims[n - 2] = h / r, os.dims[n - 1] = w / r;
  }
  if (nn_tensor_is_meta (input))
    return nn_lu_result (nn_tensor_new_meta (input->dtype, &os), error);
  NnTensor *out = nn_tensor_new (input->dtype, &os);
  if (!out)
    return nn_lu_result (NULL, error);
  gsize es = nn_dtype_size (input->dtype);
  const guint8 *x = input->data;
  guint8 *y = out->data;
  /* The small side: [C', H', W'] with blocks of r x r. */
  gint64 cs = up ? os.dims[n - 3] : c, hs = up ? h : os.dims[n - 2], ws = up ? w : os.dims[n - 1];
  gint64 batch = nn_lu_prod (s, 0, n - 3);
  for (gint64 b = 0; b < batch; b++)
    for (gint64 ch = 0; ch < cs; ch++)
      for (gint64 i = 0; i < r; i++)
        for (gint64 j = 0; j < r; j++)
          for (gint64 hh = 0; hh < hs; hh++)
            for (gint64 ww = 0; ww < ws; ww++) {
              /* Deep side [C' * r * r, H', W'], wide side [C', H' r, W' r]. */
              gint64 deep = ((b * cs * r * r + (ch * r + i) * r + j) * hs + hh) * ws + ww;
              gint64 wide = ((b * cs + ch) * hs * r + hh * r + i) * ws * r + ww * r + j;
              if (up)
                memcpy (y + wide * es, x + deep * es, es);
              else
                memcpy (y + deep * es, x + wide * es, es);
            }
  return nn_value_take_tensor (out);
}

static NnValue *
shuffle_forward (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  return shuffle_run (nn_args_tensor (args, 0),
                      nn_module_config_int (self, "upscale_factor"), TRUE, error);
}

static NnValue *
unshuffle_forward (NnModule *self, NnCall *call, const NnArgs *args,
                   GError **error)
{
  return shuffle_run (nn_args_tensor (args, 0),
                      nn_module_config_int (self, "downscale_factor"), FALSE, error);
}

static char *
shuffle_extra_repr (NnModule *self)
{
  return g_strdup_printf ("upscale_factor=%" G_GINT64_FORMAT,
                          nn_module_config_int (self, "upscale_factor"));
}

static char *
unshuffle_extra_repr (NnModule *self)
{
  return g_strdup_printf ("downscale_factor=%" G_GINT64_FORMAT,
                          nn_module_config_int (self, "downscale_factor"));
}

const NnLayerType nn_pixel_shuffle_type = {
  .struct_size = sizeof (NnLayerType),
  .name = "PixelShuffle",
  .doc = "rearranges [*, C r^2, H, W] into [*, C, H r, W r]",
  .schema = shuffle_schema,
  .n_schema = G_N_ELEMENTS (shuffle_schema),
  .args = shuffle_args,
  .n_args = G_N_ELEMENTS (shuffle_args),
  .create = shuffle_create,
  .forward = shuffle_forward,
  .infer = shuffle_forward,
  .extra_repr = shuffle_extra_repr,
};

const NnLayerType nn_pixel_unshuffle_type = {
  .struct_size = sizeof (NnLayerType),
  .name = "PixelUnshuffle",
  .doc = "rearranges [*, C, H r, W r] into [*, C r^2, H, W]",
  .schema = unshuffle_schema,
  .n_schema = G_N_ELEMENTS (unshuffle_schema),
  .args = shuffle_args,
  .n_args = G_N_ELEMENTS (shuffle_args),
  .create = shuffle_create,
  .forward = unshuffle_forward,
  .infer = unshuffle_forward,
  .extra_repr = unshuffle_extra_repr,
};

/* F.pixel_shuffle(input, upscale_factor), F.pixel_unshuffle(input,
 * downscale_factor): the factor is a call argument. */
static const NnArgSpec shuffle_fn_args[] = {
  { "input", NN_ARG_TENSOR, NN_DTYPES_ALL, 0, NULL, "[*, C, H, W]" },
  { "upscale_factor", NN_ARG_INT, 0, 0, NULL, "factor r" },
};
static const NnArgSpec unshuffle_fn_args[] = {
  { "input", NN_ARG_TENSOR, NN_DTYPES_ALL, 0, NULL, "[*, C, H, W]" },
  { "downscale_factor", NN_ARG_INT, 0, 0, NULL, "factor r" },
};

static NnValue *
shuffle_fn_forward (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  return shuffle_run (nn_args_tensor (args, 0), nn_args_int (args, 1), TRUE, error);
}

static NnValue *
unshuffle_fn_forward (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  return shuffle_run (nn_args_tensor (args, 0), nn_args_int (args, 1), FALSE, error);
}

static const char *const shuffle_fn_aliases[] = {
  "torch.nn.functional.pixel_shuffle", "torch.pixel_shuffle", NULL };
static const char *const unshuffle_fn_aliases[] = {
  "torch.nn.functional.pixel_unshuffle", "torch.pixel_unshuffle", NULL };

const NnLayerType nn_pixel_shuffle_fn_type = {
  .struct_size = sizeof (NnLayerType),
  .name = "pixel_shuffle",
  .doc = "F.pixel_shuffle: [*, C r^2, H, W] into [*, C, H r, W r]",
  .flags = NN_LAYER_OP,
  .args = shuffle_fn_args,
  .n_args = G_N_ELEMENTS (shuffle_fn_args),
  .aliases = shuffle_fn_aliases,
  .create = shuffle_create,
  .forward = shuffle_fn_forward,
  .infer = shuffle_fn_forward,
};

const NnLayerType nn_pixel_unshuffle_fn_type = {
  .struct_size = sizeof (NnLayerType),
  .name = "pixel_unshuffle",
  .doc = "F.pixel_unshuffle: [*, C, H r, W r] into [*, C r^2, H, W]",
  .flags = NN_LAYER_OP,
  .args = unshuffle_fn_args,
  .n_args = G_N_ELEMENTS (unshuffle_fn_args),
  .aliases = unshuffle_fn_aliases,
  .create = shuffle_create,
  .forward = unshuffle_fn_forward,
  .infer = unshuffle_fn_forward,
};
