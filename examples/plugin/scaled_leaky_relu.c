/* ScaledLeakyReLU: a leaf layer with a learnable per-channel scale,
 *   y[n, c, ...] = scale[c] * (x >= 0 ? x : negative_slope * x).
 * It shows a schema, a parameter, reset_parameters, shape inference,
 * forward and extra_repr. */
#include "example.h"

static const NnSchemaKey scaled_leaky_relu_schema[] = {
  /* name, kind, tuple_len, flags, default (JSON), min, max, enum, doc */
  { "num_channels", NN_KIND_INT, 0, NN_KEY_HAS_MIN, NULL, 1, 0, NULL,
    "number of channels C (dimension 1 of the input)" },
  { "negative_slope", NN_KIND_FLOAT, 0, NN_KEY_OPTIONAL | NN_KEY_HAS_MIN,
    "0.01", 0, 0, NULL, "slope for negative inputs, as LeakyReLU" },
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
scaled_leaky_relu_infer_shape (NnModule *self, NnCall *call,
                               const NnShape *in, NnShape *out, GError **error)
{
  gint64 c = nn_module_config_int (self, "num_channels");
  if (in->ndim < 2 || in->dims[1] != c) {
    g_autofree char *found = nn_shape_to_string (in);
    g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH,
                 "expected input [N, %" G_GINT64_FORMAT ", ...], found %s",
                 c, found);
    return FALSE;
  }
  *out = *in;
  return TRUE;
}

/* @input is borrowed; the result is a new tensor owned by the caller. */
static NnTensor *
scaled_leaky_relu_forward (NnModule *self, NnCall *call, NnTensor *input,
                           GError **error)
{
  const float *x = nn_tensor_f32 (input);
  if (!x) {
    g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH,
                 "expected a float32 input, found %s",
                 nn_dtype_name (input->dtype));
    return NULL;
  }
  NnShape shape;
  if (!scaled_leaky_relu_infer_shape (self, call, &input->shape, &shape, error))
    return NULL;

  const float slope = (float) nn_module_config_float (self, "negative_slope");
  const float *scale = nn_tensor_f32 (nn_module_get_parameter (self, "scale"));
  gint64 n = shape.dims[0], c = shape.dims[1], inner = 1;
  for (guint d = 2; d < shape.ndim; d++)
    inner *= shape.dims[d];

  NnTensor *out = nn_tensor_new (NN_DTYPE_F32, &shape);
  float *y = nn_tensor_f32 (out);
  for (gint64 i = 0; i < n * c; i++) {
    const float s = scale[i % c];
    const float *src = x + i * inner;
    float *dst = y + i * inner;
    for (gint64 j = 0; j < inner; j++)
      dst[j] = s * (src[j] >= 0.0f ? src[j] : slope * src[j]);
  }
  return out;
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
  .create = scaled_leaky_relu_create,
  .infer_shape = scaled_leaky_relu_infer_shape,
  .forward = scaled_leaky_relu_forward,
  .extra_repr = scaled_leaky_relu_extra_repr,
  .reset_parameters = scaled_leaky_relu_reset_parameters,
};
