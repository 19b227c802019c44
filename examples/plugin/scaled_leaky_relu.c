/* ScaledLeakyReLU: a leaf layer with a learnable per-channel scale,
 *   y[n, c, ...] = scale[c] * (x >= 0 ? x : negative_slope * x).
 * It shows a schema, a forward signature, a parameter, reset_parameters,
 * shape inference on meta tensors, forward and extra_repr. */
#include "example.h"

static const NnSchemaKey scaled_leaky_relu_schema[] = {
  /* name, kind, tuple_len, flags, default (JSON), min, max, enum, doc */
  { "num_channels", NN_KIND_INT, 0, NN_KEY_HAS_MIN, NULL, 1, 0, NULL,
    "number of channels C (dimension 1 of the input)" },
  { "negative_slope", NN_KIND_FLOAT, 0, NN_KEY_OPTIONAL | NN_KEY_HAS_MIN,
    "0.01", 0, 0, NULL, "slope for negative inputs, as LeakyReLU" },
};

/* forward(input): one float32 tensor.  The core binds the call's
 * arguments to this list and checks kinds and dtypes before forward runs,
 * so a float64 input is refused with a message naming "input". */
static const NnArgSpec scaled_leaky_relu_args[] = {
  /* name, kinds, dtypes, flags, default (JSON), doc */
  { "input", NN_ARG_TENSOR, NN_DTYPE_BIT (NN_DTYPE_F32), 0, NULL,
    "float32 [N, C, ...]" },
};

/* The config is validated and defaulted before create runs, so the values
 * read here are known to be present and in range. */
static gboolean
scaled_leaky_relu_create (NnModule *self, GError **error)
{
  NnShape c = { 1, { nn_module_config_int (self, "num_channels") } };
  nn_module_add_parameter (self, "scale", NN_DTYPE_F32, &c);
  return TRUE;
}

/* As BatchNorm2d's weight: ones, so a fresh layer is a plain LeakyReLU. */
static void
scaled_leaky_relu_reset_parameters (NnModule *self, GRand *rng)
{
  NnTensor *scale = nn_module_get_parameter (self, "scale");
  float *s = nn_tensor_f32 (scale);
  for (gint64 i = 0, n = nn_tensor_numel (scale); i < n; i++)
    s[i] = 1.0f;
}

/* Any [N, C, ...] input; the error need not name the module path, the
 * core prefixes it. */
static gboolean
scaled_leaky_relu_check (NnModule *self, const NnShape *in, GError **error)
{
  gint64 c = nn_module_config_int (self, "num_channels");
  if (in->ndim < 2 || in->dims[1] != c) {
    g_autofree char *found = nn_shape_to_string (in);
    g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH,
                 "expected input [N, %" G_GINT64_FORMAT ", ...], found %s",
                 c, found);
    return FALSE;
  }
  return TRUE;
}

/* Shape inference: @args hold meta tensors (shape and dtype, no data);
 * the result is a meta tensor too. */
static NnValue *
scaled_leaky_relu_infer (NnModule *self, NnCall *call, const NnArgs *args,
                         GError **error)
{
  NnTensor *input = nn_args_tensor (args, 0);
  if (!scaled_leaky_relu_check (self, &input->shape, error))
    return NULL;
  return nn_value_take_tensor (nn_tensor_new_meta (NN_DTYPE_F32, &input->shape));
}

/* @args are borrowed; the result is a new value owned by the caller. */
static NnValue *
scaled_leaky_relu_forward (NnModule *self, NnCall *call, const NnArgs *args,
                           GError **error)
{
  NnTensor *input = nn_args_tensor (args, 0);
  const float *x = nn_tensor_f32 (input);
  if (!scaled_leaky_relu_check (self, &input->shape, error))
    return NULL;
  const NnShape shape = input->shape;

  const float slope = (float) nn_module_config_float (self, "negative_slope");
  const float *scale = nn_tensor_f32 (nn_module_get_parameter (self, "scale"));
  gint64 n = shape.dims[0], c = shape.dims[1], inner = 1;
  for (guint d = 2; d < shape.ndim; d++)
    inner *= shape.dims[d];

  NnTensor *out = nn_tensor_new (NN_DTYPE_F32, &shape);
  if (!out) {
    g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_FAILED,
                 "cannot allocate the output");
    return NULL;
  }
  float *y = nn_tensor_f32 (out);
  for (gint64 i = 0; i < n * c; i++) {
    const float s = scale[i % c];
    const float *src = x + i * inner;
    float *dst = y + i * inner;
    for (gint64 j = 0; j < inner; j++)
      dst[j] = s * (src[j] >= 0.0f ? src[j] : slope * src[j]);
  }
  return nn_value_take_tensor (out);
}

/* The text inside "ScaledLeakyReLU(...)", in PyTorch's style. */
static char *
scaled_leaky_relu_extra_repr (NnModule *self)
{
  g_autofree char *slope = nn_module_config_repr (self, "negative_slope");
  return g_strdup_printf ("%" G_GINT64_FORMAT ", negative_slope=%s",
                          nn_module_config_int (self, "num_channels"), slope);
}

const NnLayerType nn_example_scaled_leaky_relu_type = {
  .struct_size = sizeof (NnLayerType),
  .name = "ScaledLeakyReLU",
  .doc = "LeakyReLU followed by a learnable per-channel scale",
  .schema = scaled_leaky_relu_schema,
  .n_schema = G_N_ELEMENTS (scaled_leaky_relu_schema),
  .args = scaled_leaky_relu_args,
  .n_args = G_N_ELEMENTS (scaled_leaky_relu_args),
  .create = scaled_leaky_relu_create,
  .infer = scaled_leaky_relu_infer,
  .forward = scaled_leaky_relu_forward,
  .extra_repr = scaled_leaky_relu_extra_repr,
  .reset_parameters = scaled_leaky_relu_reset_parameters,
};
