/* Softmax along one dimension of a tensor of any rank, as torch.nn.Softmax,
 * including its legacy implicit dimension when dim is None; and
 * Softmax2d, softmax over the channels (dim -3) of 3-d or 4-d input. */
#include "activations.h"
#include "../common/nn-grad-util.h"

#include <math.h>

static const NnSchemaKey softmax_schema[] = {
  { "dim", NN_KIND_INT, 0, NN_KEY_OPTIONAL | NN_KEY_NULLABLE, "null", 0, 0, NULL,
    "dimension the values sum to 1 along, negative from the end; None: "
    "PyTorch's implicit choice (0 for 0-, 1- and 3-d input, else 1)" },
};

/* As F.softmax(input, dim=None, _stacklevel=3, dtype=None): a None dim
 * takes the config's.  The functional spellings (softmax, Tensor.softmax)
 * are the ops plugin's softmax op, so this type registers no aliases; the
 * signature still lets a Graph node call the layer type with a dim. */
static const NnArgSpec softmax_args[] = {
  NN_ACT_INPUT_ARG,
  { "dim", NN_ARG_INT | NN_ARG_NONE, 0, NN_ARG_OPTIONAL, "null",
    "dimension to normalise (None: the config's dim)" },
  { "_stacklevel", NN_ARG_INT, 0, NN_ARG_OPTIONAL, "3",
    "PyTorch's warning stack level, ignored" },
  { "dtype", NN_ARG_STRING | NN_ARG_NONE, 0, NN_ARG_OPTIONAL, "null",
    "result dtype: None or torch.float32 (the only one supported)" },
};

/* Resolves the dimension for an input of @ndim dims, wrapping negatives
 * as PyTorch does (a 0-d tensor counts as 1-d), and checks the dtype. */
static gboolean
softmax_resolve_dim (NnModule *self, const NnArgs *args, guint *dim_out,
                     GError **error)
{
  const NnShape *in = &nn_args_tensor (args, 0)->shape;
  NnValue *dim_arg = nn_args_get (args, 1), *dtype_arg = nn_args_get (args, 3);
  NnDType dtype = NN_DTYPE_F32;
  if (!nn_value_is_none (dtype_arg)
      && (!nn_dtype_parse (nn_value_get_string (dtype_arg), &dtype)
          || dtype != NN_DTYPE_F32)) {
    g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_FAILED,
                 "argument 'dtype' must be None or torch.float32, found %s",
                 nn_value_get_string (dtype_arg));
    return FALSE;
  }
  gint64 ndim = in->ndim, dim;
  if (!nn_value_is_none (dim_arg))
    dim = nn_value_get_int (dim_arg);
  else if (nn_module_config_is_null (self, "dim"))
    dim = (ndim == 0 || ndim == 1 || ndim == 3) ? 0 : 1;
  else
    dim = nn_module_config_int (self, "dim");
  gint64 n = MAX (ndim, 1);
  if (dim < -n || dim >= n) {
    g_autofree char *found = nn_shape_to_string (in);
    g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH,
                 "dim %" G_GINT64_FORMAT " is out of range for input %s "
                 "(expected a dim in [%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT "])",
                 dim, found, -n, n - 1);
    return FALSE;
  }
  *dim_out = (guint) (dim < 0 ? dim + n : dim);
  return TRUE;
}

static NnValue *
softmax_infer (NnModule *self, NnCall *call, const NnArgs *args,
               GError **error)
{
  guint dim;
  if (!softmax_resolve_dim (self, args, &dim, error))
    return NULL;
  return nn_act_infer_same (self, call, args, error);
}

/* One [len, inner] slab: the reduction runs across rows, each step over
 * @inner contiguous lanes, so the inner loops vectorise.  @acc holds
 * 2 * inner floats of scratch. */
static void
softmax_slab (const float *x, float *y, gint64 len, gint64 inner, float *acc)
{
  float *mx = acc, *sum = acc + inner;
  for (gint64 i = 0; i < inner; i++) {
    mx[i] = x[i];
    sum[i] = 0.0f;
  }
  for (gint64 k = 1; k < len; k++) {
    const float *row = x + k * inner;
    for (gint64 i = 0; i < inner; i++)
      mx[i] = row[i] > mx[i] ? row[i] : mx[i];
  }
  for (gint64 k = 0; k < len; k++) {
    const float *row = x + k * inner;
    float *dst = y + k * inner;
    for (gint64 i = 0; i < inner; i++) {
      dst[i] = expf (row[i] - mx[i]);
      sum[i] += dst[i];
    }
  }
  for (gint64 k = 0; k < len; k++) {
    float *dst = y + k * inner;
    for (gint64 i = 0; i < inner; i++)
      dst[i] /= sum[i];
  }
}

/* Softmax of @input along @dim (already resolved). */
static NnValue *
softmax_along (NnTensor *input, guint dim, GError **error)
{
  const float *x = nn_tensor_f32 (input);
  const NnShape *s = &input->shape;
  gint64 outer = 1, len = s->ndim ? s->dims[dim] : 1, inner = 1;
  for (guint i = 0; i < dim && i < s->ndim; i++)
    outer *= s->dims[i];
  for (guint i = dim + 1; i < s->ndim; i++)
    inner *= s->dims[i];
  NnTensor *out = nn_act_alloc (s, error);
  if (!out)
    return NULL;
  float *y = nn_tensor_f32 (out);
  if (len > 0 && inner > 0) {
    g_autofree float *acc = g_new (float, 2 * inner);
    for (gint64 o = 0; o < outer; o++)
      softmax_slab (x + o * len * inner, y + o * len * inner, len, inner, acc);
  }
  return nn_value_take_tensor (out);
}

static NnValue *
softmax_forward (NnModule *self, NnCall *call, const NnArgs *args,
                 GError **error)
{
  guint dim;
  if (!softmax_resolve_dim (self, args, &dim, error))
    return NULL;
  return softmax_along (nn_args_tensor (args, 0), dim, error);
}

/* The input gradient of a softmax along @dim from its output @out. */
static NnValue *
softmax_backward_along (const NnArgs *args, guint dim, const NnValue *out,
                        const NnValue *grad_out, GError **error)
{
  const NnShape *s = &nn_args_tensor (args, 0)->shape;
  gint64 outer = 1, len = s->ndim ? s->dims[dim] : 1, inner = 1;
  for (guint i = 0; i < dim && i < s->ndim; i++)
    outer *= s->dims[i];
  for (guint i = dim + 1; i < s->ndim; i++)
    inner *= s->dims[i];
  NnTensor *dx = nn_act_alloc (s, error);
  if (!dx)
    return NULL;
  nn_grad_softmax (nn_tensor_f32 (nn_value_get_tensor (out)),
                   nn_tensor_f32 (nn_value_get_tensor (grad_out)),
                   nn_tensor_f32 (dx), outer, len, inner, FALSE, 1.0f);
  NnValue *res = nn_value_new_tuple ();
  nn_value_append (res, nn_value_take_tensor (dx));
  return res;
}

static NnValue *
softmax_backward (NnModule *self, NnCall *call, const NnArgs *args,
                  const NnValue *out, const NnValue *grad_out, GError **error)
{
  guint dim;
  if (!softmax_resolve_dim (self, args, &dim, error))
    return NULL;
  return softmax_backward_along (args, dim, out, grad_out, error);
}

static char *
softmax_extra_repr (NnModule *self)
{
  g_autofree char *d = nn_module_config_repr (self, "dim");
  return g_strdup_printf ("dim=%s", d);
}

const NnLayerType nn_softmax_type = {
  .struct_size = sizeof (NnLayerType),
  .name = "Softmax",
  .doc = "softmax along dim: exp(x) / sum(exp(x))",
  .schema = softmax_schema,
  .n_schema = G_N_ELEMENTS (softmax_schema),
  .args = softmax_args,
  .n_args = G_N_ELEMENTS (softmax_args),
  .create = nn_act_create_nothing,
  .infer = softmax_infer,
  .forward = softmax_forward,
  .backward = softmax_backward,
  .extra_repr = softmax_extra_repr,
};

/* Softmax2d: the channel dim of [C, H, W] or [N, C, H, W]. */
static gboolean
softmax2d_dim (const NnArgs *args, guint *dim, GError **error)
{
  const NnShape *s = &nn_args_tensor (args, 0)->shape;
  if (s->ndim != 3 && s->ndim != 4) {
    g_autofree char *found = nn_shape_to_string (s);
    g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH,
                 "Softmax2d requires a 3D or 4D tensor as input, found %s", found);
    return FALSE;
  }
  *dim = s->ndim - 3;
  return TRUE;
}

static NnValue *
softmax2d_forward (NnModule *self, NnCall *call, const NnArgs *args,
                   GError **error)
{
  guint dim;
  if (!softmax2d_dim (args, &dim, error))
    return NULL;
  return softmax_along (nn_args_tensor (args, 0), dim, error);
}

static NnValue *
softmax2d_infer (NnModule *self, NnCall *call, const NnArgs *args,
                 GError **error)
{
  guint dim;
  if (!softmax2d_dim (args, &dim, error))
    return NULL;
  return nn_act_infer_same (self, call, args, error);
}

static NnValue *
softmax2d_backward (NnModule *self, NnCall *call, const NnArgs *args,
                    const NnValue *out, const NnValue *grad_out, GError **error)
{
  guint dim;
  if (!softmax2d_dim (args, &dim, error))
    return NULL;
  return softmax_backward_along (args, dim, out, grad_out, error);
}

static const NnArgSpec softmax2d_args[] = { NN_ACT_INPUT_ARG };

const NnLayerType nn_softmax2d_type = {
  .struct_size = sizeof (NnLayerType),
  .name = "Softmax2d",
  .doc = "softmax over the channels of [C, H, W] or [N, C, H, W]",
  .args = softmax2d_args,
  .n_args = G_N_ELEMENTS (softmax2d_args),
  .create = nn_act_create_nothing,
  .infer = softmax2d_infer,
  .forward = softmax2d_forward,
  .backward = softmax2d_backward,
};
