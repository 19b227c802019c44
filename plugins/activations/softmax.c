/* Softmax along one dimension of a tensor of any rank, as torch.nn.Softmax,
 * including its legacy implicit dimension when dim is None. */
#include "activations.h"

#include <math.h>

static const NnSchemaKey softmax_schema[] = {
  { "dim", NN_KIND_INT, 0, NN_KEY_OPTIONAL | NN_KEY_NULLABLE, "null", 0, 0, NULL,
    "dimension the values sum to 1 along, negative from the end; None: "
    "PyTorch's implicit choice (0 for 0-, 1- and 3-d input, else 1)" },
};

/* Resolves the dimension for an input of @ndim dims, wrapping negatives
 * as PyTorch does (a 0-d tensor counts as 1-d). */
static gboolean
softmax_resolve_dim (NnModule *self, const NnShape *in, guint *dim_out,
                     GError **error)
{
  gint64 ndim = in->ndim, dim;
  if (nn_module_config_is_null (self, "dim"))
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

static gboolean
softmax_infer_shape (NnModule *self, NnCall *call, const NnShape *in,
                     NnShape *out, GError **error)
{
  guint dim;
  if (!softmax_resolve_dim (self, in, &dim, error))
    return FALSE;
  *out = *in;
  return TRUE;
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

static NnTensor *
softmax_forward (NnModule *self, NnCall *call, NnTensor *input, GError **error)
{
  guint dim;
  const float *x = nn_tensor_f32 (input);
  if (!x) {
    g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH,
                 "expected a float32 input, found %s",
                 nn_dtype_name (input->dtype));
    return NULL;
  }
  if (!softmax_resolve_dim (self, &input->shape, &dim, error))
    return NULL;
  const NnShape *s = &input->shape;
  gint64 outer = 1, len = s->ndim ? s->dims[dim] : 1, inner = 1;
  for (guint i = 0; i < dim && i < s->ndim; i++)
    outer *= s->dims[i];
  for (guint i = dim + 1; i < s->ndim; i++)
    inner *= s->dims[i];
  NnTensor *out = nn_tensor_new (NN_DTYPE_F32, s);
  float *y = nn_tensor_f32 (out);
  if (len > 0 && inner > 0) {
    g_autofree float *acc = g_new (float, 2 * inner);
    for (gint64 o = 0; o < outer; o++)
      softmax_slab (x + o * len * inner, y + o * len * inner, len, inner, acc);
  }
  return out;
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
  .create = nn_act_create_nothing,
  .infer_shape = softmax_infer_shape,
  .forward = softmax_forward,
  .extra_repr = softmax_extra_repr,
};
