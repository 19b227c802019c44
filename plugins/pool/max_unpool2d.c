/* MaxUnpool2d: the inverse of MaxPool2d(return_indices=True), as
 * torch.nn.MaxUnpool2d and F.max_unpool2d: a zero [N, C, oH, oW] output
 * with each input value written at its index into the oH * oW plane
 * (SegNet's decoder). */
#include "pool.h"

#include "../common/nn-layer-util.h"

#include <string.h>

static const NnSchemaKey max_unpool2d_schema[] = {
  { "kernel_size", NN_KIND_INT_TUPLE, 2, NN_KEY_HAS_MIN, NULL, 1, 0, NULL,
    "size of the pooling window that gave the indices" },
  { "stride", NN_KIND_INT_TUPLE, 2,
    NN_KEY_OPTIONAL | NN_KEY_NULLABLE | NN_KEY_HAS_MIN, "null", 1, 0, NULL,
    "stride of that window; None means kernel_size" },
  { "padding", NN_KIND_INT_TUPLE, 2, NN_KEY_OPTIONAL | NN_KEY_HAS_MIN, "0", 0, 0,
    NULL, "padding that window had" },
};

static const NnArgSpec max_unpool2d_args[] = {
  { "input", NN_ARG_TENSOR, 0, 0, NULL, "[N, C, H, W] or [C, H, W] float32 values" },
  { "indices", NN_ARG_TENSOR, NN_DTYPE_BIT (NN_DTYPE_I64), 0, NULL,
    "int64 indices into the output's H * W planes, the shape of input" },
  { "output_size", NN_ARG_SEQ | NN_ARG_NONE, 0, NN_ARG_OPTIONAL, "null",
    "(oH, oW) or (N, C, oH, oW); None: the pooled input's size" },
};

typedef struct {
  gint64 kernel[2], stride[2], padding[2];
} Unpool;

static gboolean
max_unpool2d_create (NnModule *self, GError **error)
{
  Unpool *u = g_new0 (Unpool, 1);
  nn_module_config_ints (self, "kernel_size", u->kernel, 2);
  if (!nn_module_config_ints (self, "stride", u->stride, 2))
    memcpy (u->stride, u->kernel, sizeof u->stride);
  nn_module_config_ints (self, "padding", u->padding, 2);
  nn_module_set_private (self, u);
  return TRUE;
}

static void
max_unpool2d_destroy (NnModule *self)
{
  g_free (nn_module_get_private (self));
}

/* The output's H and W: PyTorch's _unpool_output_size, its checks and
 * messages included. */
static gboolean
unpool_out_hw (const Unpool *u, const NnShape *in, const NnArgs *args,
               gint64 out[2], GError **error)
{
  for (guint d = 0; d < 2; d++)
    out[d] = (in->dims[in->ndim - 2 + d] - 1) * u->stride[d] + u->kernel[d]
             - 2 * u->padding[d];
  NnValue *os = nn_args_get (args, 2);
  if (nn_value_is_none (os))
    return TRUE;
  guint n = 0;
  g_autofree gint64 *req = nn_args_ints (args, 2, 0, &n, error);
  if (!req)
    return FALSE;
  const gint64 *hw = n == 4 ? req + 2 : req;
  if (n != 2 && n != 4)
    return nn_lu_shape_fail (error, "output_size should be a sequence containing "
                             "2 or 4 elements, but it has a length of '%u'", n);
  for (guint d = 0; d < 2; d++) {
    gint64 lo = out[d] - u->stride[d], hi = out[d] + u->stride[d];
    if (!(lo < hw[d] && hw[d] < hi))
      return nn_lu_shape_fail (error, "invalid output_size (dim %u must be "
                               "between %" G_GINT64_FORMAT " and %" G_GINT64_FORMAT
                               ", found %" G_GINT64_FORMAT ")", d, lo, hi, hw[d]);
  }
  out[0] = hw[0];
  out[1] = hw[1];
  return TRUE;
}

/* Checks the input and indices and computes the output shape. */
static gboolean
unpool_shape (NnModule *self, const NnArgs *args, NnShape *os, GError **error)
{
  const Unpool *u = nn_module_get_private (self);
  const NnShape *in = &nn_args_tensor (args, 0)->shape;
  const NnShape *is = &nn_args_tensor (args, 1)->shape;
  if (in->ndim != 3 && in->ndim != 4)
    return nn_lu_shape_fail (error, "Input to max_unpooling2d should be a 3d "
                             "or 4d Tensor, but got a tensor with %u dimensions.",
                             in->ndim);
  if (!nn_shape_equal (in, is)) {
    g_autofree char *a = nn_shape_to_string (in);
    g_autofree char *b = nn_shape_to_string (is);
    return nn_lu_shape_fail (error, "Expected shape of indices to be same as "
                             "that of the input tensor (%s) but got indices "
                             "tensor with shape: %s", a, b);
  }
  gint64 hw[2];
  if (!unpool_out_hw (u, in, args, hw, error))
    return FALSE;
  *os = *in;
  os->dims[in->ndim - 2] = hw[0];
  os->dims[in->ndim - 1] = hw[1];
  return TRUE;
}

static NnValue *
max_unpool2d_infer (NnModule *self, NnCall *call, const NnArgs *args,
                    GError **error)
{
  NnShape os;
  if (!unpool_shape (self, args, &os, error))
    return NULL;
  return nn_value_take_tensor (nn_tensor_new_meta (NN_DTYPE_F32, &os));
}

static NnValue *
max_unpool2d_forward (NnModule *self, NnCall *call, const NnArgs *args,
                      GError **error)
{
  NnShape os;
  if (!unpool_shape (self, args, &os, error))
    return NULL;
  NnTensor *input = nn_args_tensor (args, 0);
  const gint64 plane_in = input->shape.dims[input->shape.ndim - 2]
                          * input->shape.dims[input->shape.ndim - 1];
  const gint64 oh = os.dims[os.ndim - 2], ow = os.dims[os.ndim - 1];
  NnTensor *out = nn_pool_alloc (&os, error);
  if (!out)
    return NULL;
  const float *x = nn_tensor_f32 (input);
  const gint64 *idx = nn_tensor_i64 (nn_args_tensor (args, 1));
  float *y = nn_tensor_f32 (out);
  const gint64 planes = plane_in > 0 ? nn_tensor_numel (input) / plane_in : 0;
  for (gint64 p = 0; p < planes; p++)
    for (gint64 i = p * plane_in; i < (p + 1) * plane_in; i++) {
      if (idx[i] < 0 || idx[i] >= oh * ow) {
        nn_tensor_unref (out);
        nn_lu_shape_fail (error, "Found an invalid max index: %" G_GINT64_FORMAT
                          " (output volumes are of size %" G_GINT64_FORMAT "x%"
                          G_GINT64_FORMAT ")", idx[i], oh, ow);
        return NULL;
      }
      y[p * oh * ow + idx[i]] = x[i];
    }
  return nn_value_take_tensor (out);
}

static char *
max_unpool2d_extra_repr (NnModule *self)
{
  const Unpool *u = nn_module_get_private (self);
  g_autofree char *k = nn_pool_pair_text (u->kernel);
  g_autofree char *s = nn_pool_pair_text (u->stride);
  g_autofree char *p = nn_pool_pair_text (u->padding);
  return g_strdup_printf ("kernel_size=%s, stride=%s, padding=%s", k, s, p);
}

static const char *const max_unpool2d_aliases[] = {
  "max_unpool2d", "torch.nn.functional.max_unpool2d", NULL
};

const NnLayerType nn_max_unpool2d_type = {
  .struct_size = sizeof (NnLayerType),
  .name = "MaxUnpool2d",
  .doc = "2D max unpooling: values written back at MaxPool2d's indices",
  .schema = max_unpool2d_schema,
  .n_schema = G_N_ELEMENTS (max_unpool2d_schema),
  .create = max_unpool2d_create,
  .args = max_unpool2d_args,
  .n_args = G_N_ELEMENTS (max_unpool2d_args),
  .aliases = max_unpool2d_aliases,
  .destroy = max_unpool2d_destroy,
  .infer = max_unpool2d_infer,
  .forward = max_unpool2d_forward,
  .extra_repr = max_unpool2d_extra_repr,
};
