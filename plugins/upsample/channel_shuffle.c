/* ChannelShuffle and F.channel_shuffle: [N, C, *] read as [N, g, C / g, *]
 * and written as [N, C / g, g, *] (ShuffleNet's block), as torch.nn
 * defines it; any dtype, since it only moves elements.  Beside
 * PixelShuffle, the other pure rearrangement of channels. */
#include "upsample.h"
#include "../common/nn-layer-util.h"

#include <string.h>

static const NnSchemaKey channel_shuffle_schema[] = {
  { "groups", NN_KIND_INT, 0, NN_KEY_HAS_MIN, NULL, 1, 0, NULL,
    "number of groups the channels are split into" },
};

static const NnArgSpec channel_shuffle_args[] = {
  { "input", NN_ARG_TENSOR, NN_DTYPES_ALL, 0, NULL, "[N, C, *], at least 3 dims" },
};
static const NnArgSpec channel_shuffle_fn_args[] = {
  { "input", NN_ARG_TENSOR, NN_DTYPES_ALL, 0, NULL, "[N, C, *], at least 3 dims" },
  { "groups", NN_ARG_INT, 0, 0, NULL, "number of groups" },
};

static gboolean
channel_shuffle_create (NnModule *self, GError **error)
{
  return TRUE;
}

static NnValue *
channel_shuffle_run (NnTensor *input, gint64 g, GError **error)
{
  const NnShape *s = &input->shape;
  if (s->ndim <= 2) {
    g_autofree char *f = nn_shape_to_string (s);
    nn_lu_shape_fail (error, "channel_shuffle expects input with > 2 dims, but got "
                      "input with sizes %s", f);
    return NULL;
  }
  if (g <= 0) {
    nn_lu_shape_fail (error, "Number of groups to divide channels in must be positive. "
                      "Value of groups:%" G_GINT64_FORMAT, g);
    return NULL;
  }
  gint64 c = s->dims[1];
  if (c % g) {
    nn_lu_shape_fail (error, "Number of channels must be divisible by groups. Got %"
                      G_GINT64_FORMAT " channels and %" G_GINT64_FORMAT " groups.", c, g);
    return NULL;
  }
  if (nn_tensor_is_meta (input))
    return nn_lu_result (nn_tensor_new_meta (input->dtype, s), error);
  NnTensor *out = nn_tensor_new (input->dtype, s);
  if (!out)
    return nn_lu_result (NULL, error);
  gsize plane = (gsize) nn_lu_prod (s, 2, s->ndim) * nn_dtype_size (input->dtype);
  gint64 per = c / g;
  const guint8 *x = input->data;
  guint8 *y = out->data;
  for (gint64 b = 0; b < s->dims[0]; b++)
    for (gint64 i = 0; i < g; i++)
      for (gint64 j = 0; j < per; j++)
        memcpy (y + ((b * c) + j * g + i) * plane, x + ((b * c) + i * per + j) * plane, plane);
  return nn_value_take_tensor (out);
}

static NnValue *
channel_shuffle_forward (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  return channel_shuffle_run (nn_args_tensor (args, 0), nn_module_config_int (self, "groups"),
                              error);
}

static NnValue *
channel_shuffle_fn_forward (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  return channel_shuffle_run (nn_args_tensor (args, 0), nn_args_int (args, 1), error);
}

static char *
channel_shuffle_extra_repr (NnModule *self)
{
  return g_strdup_printf ("groups=%" G_GINT64_FORMAT, nn_module_config_int (self, "groups"));
}

const NnLayerType nn_channel_shuffle_type = {
  .struct_size = sizeof (NnLayerType),
  .name = "ChannelShuffle",
  .doc = "interleaves the channels of g groups, as torch.nn.ChannelShuffle",
  .schema = channel_shuffle_schema,
  .n_schema = G_N_ELEMENTS (channel_shuffle_schema),
  .args = channel_shuffle_args,
  .n_args = G_N_ELEMENTS (channel_shuffle_args),
  .create = channel_shuffle_create,
  .forward = channel_shuffle_forward,
  .infer = channel_shuffle_forward,
  .extra_repr = channel_shuffle_extra_repr,
};

static const char *const channel_shuffle_fn_aliases[] = {
  "torch.nn.functional.channel_shuffle", "torch.channel_shuffle",
  "torch.native_channel_shuffle", NULL };

const NnLayerType nn_channel_shuffle_fn_type = {
  .struct_size = sizeof (NnLayerType),
  .name = "channel_shuffle",
  .doc = "F.channel_shuffle: interleaves the channels of g groups",
  .flags = NN_LAYER_OP,
  .args = channel_shuffle_fn_args,
  .n_args = G_N_ELEMENTS (channel_shuffle_fn_args),
  .aliases = channel_shuffle_fn_aliases,
  .create = channel_shuffle_create,
  .forward = channel_shuffle_fn_forward,
  .infer = channel_shuffle_fn_forward,
};
