/* F.conv3d: a 3-d convolution whose weight and bias are call arguments,
 * as torchvision's video ResNets reach it through Conv3d subclasses the
 * exporter traces (Conv3DSimple); the vol2col kernel of Conv3d
 * (conv3d.c), zero padding only, as PyTorch's function. */
#include "conv_nd.h"
#include "nn-blas.h"
#include "../common/nn-layer-util.h"

static gboolean
conv3d_fn_create (NnModule *self, GError **error)
{
  return TRUE;
}

/* Argument @i (stride, padding or dilation) as three values in @v, each
 * at least @least; the binding refuses another count, naming it. */
static gboolean
read_triple (const NnArgs *args, guint i, const char *name, gint64 least, gint64 v[3],
             GError **error)
{
  guint n = 0;
  g_autofree gint64 *t = nn_args_ints (args, i, 3, &n, error);
  if (!t)
    return FALSE;
  for (guint k = 0; k < 3; k++) {
    if (t[k] < least)
      return nn_lu_shape_fail (error, "%s must be %s, found %" G_GINT64_FORMAT, name,
                               least == 0 ? "non-negative" : "positive", t[k]);
    v[k] = t[k];
  }
  return TRUE;
}

/* Stride, padding (ints, 'same' or 'valid'), dilation and groups into @g. */
static gboolean
read_geometry (const NnArgs *args, NnConv3d *g, GError **error)
{
  if (!read_triple (args, 3, "stride", 1, g->s, error)
      || !read_triple (args, 5, "dilation", 1, g->d, error))
    return FALSE;
  NnValue *pad = nn_args_get (args, 4);
  if (nn_value_kind (pad) != NN_VALUE_STRING) {
    if (!read_triple (args, 4, "padding", 0, g->pad0, error))
      return FALSE;
    for (guint k = 0; k < 3; k++)
      g->pad1[k] = g->pad0[k];
  } else if (g_strcmp0 (nn_value_get_string (pad), "same") == 0) {
    if (g->s[0] != 1 || g->s[1] != 1 || g->s[2] != 1)
      return nn_lu_shape_fail (error, "padding='same' is not supported for strided "
                               "convolutions");
    nn_convnd_same_padding (3, g->k, g->d, g->pad0, g->pad1);
  } else if (g_strcmp0 (nn_value_get_string (pad), "valid") != 0) {
    return nn_lu_shape_fail (error, "Invalid padding string '%s', should be one of "
                             "{'valid', 'same'}", nn_value_get_string (pad));
  }
  g->groups = nn_args_int (args, 6);
  if (g->groups < 1)
    return nn_lu_shape_fail (error, "non-positive groups is not supported");
  return TRUE;
}

static NnValue *
conv3d_fn_forward (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  NnTensor *input = nn_args_tensor (args, 0);
  NnTensor *w = nn_args_tensor (args, 1);
  NnTensor *b = nn_args_tensor (args, 2);
  if (w->shape.ndim != 5) {
    g_autofree char *w_s = nn_shape_to_string (&w->shape);
    g_autofree char *in_s = nn_shape_to_string (&input->shape);
    nn_lu_shape_fail (error, "Expected 5-dimensional weight for 5-dimensional input %s, "
                      "but got %u-dimensional weight of size %s", in_s, w->shape.ndim,
                      w_s);
    return NULL;
  }
  NnConv3d g = { .mode = NN_CONVND_ZEROS };
  for (guint k = 0; k < 3; k++)
    g.k[k] = w->shape.dims[2 + k];
  if (!read_geometry (args, &g, error))
    return NULL;
  g.out_c = w->shape.dims[0];
  g.in_c = w->shape.dims[1] * g.groups;
  if (!nn_conv_fn_check_weight (w, b, g.groups, error))
    return NULL;
  NnTensor *y = nn_conv3d_run (&g, input, w, b, error);
  return y ? nn_value_take_tensor (y) : NULL;
}

static const char *const conv3d_fn_aliases[] = {
  "torch.nn.functional.conv3d", "torch.conv3d", NULL };

const NnLayerType nn_conv3d_fn_type = {
  .struct_size = sizeof (NnLayerType),
  .name = "conv3d",
  .doc = "F.conv3d: a 3-d convolution with weight and bias as arguments",
  .flags = NN_LAYER_OP,
  .args = nn_conv_fn_args,
  .n_args = NN_CONV_FN_N_ARGS,
  .aliases = conv3d_fn_aliases,
  .create = conv3d_fn_create,
  .forward = conv3d_fn_forward,
  .infer = conv3d_fn_forward,
};
