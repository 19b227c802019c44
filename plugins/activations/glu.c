/* GLU: a * sigmoid(b) where a and b are the halves of the input along
 * dim, as torch.nn.GLU and F.glu(input, dim). */
#include "pointwise.h"
#include "../common/nn-layer-util.h"

static const NnSchemaKey glu_schema[] = {
  { "dim", NN_KIND_INT, 0, NN_KEY_OPTIONAL, "-1", 0, 0, NULL,
    "dimension halved; negative counts from the end" },
};

static NnValue *
glu_apply (NnTensor *input, gint64 dim_arg, GError **error)
{
  NnShape s = input->shape;
  guint dim;
  if (s.ndim == 0) {
    g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH,
                 "glu does not support scalars because halving size must be even");
    return NULL;
  }
  if (!nn_lu_wrap_dim (dim_arg, s.ndim, &dim, error))
    return NULL;
  if (s.dims[dim] % 2) {
    g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH,
                 "Halving dimension must be even, but dimension %u is size %"
                 G_GINT64_FORMAT, dim, s.dims[dim]);
    return NULL;
  }
  gint64 half = s.dims[dim] / 2;
  gint64 outer = nn_lu_prod (&s, 0, dim), inner = nn_lu_prod (&s, dim + 1, s.ndim);
  s.dims[dim] = half;
  NnTensor *out = nn_lu_new_f32 (&s, nn_tensor_is_meta (input));
  if (!out || nn_tensor_is_meta (input))
    return nn_lu_result (out, error);
  const float *x = nn_tensor_f32 (input);
  float *y = nn_tensor_f32 (out);
  for (gint64 o = 0; o < outer; o++) {
    const float *a = x + o * 2 * half * inner, *b = a + half * inner;
    float *dst = y + o * half * inner;
    for (gint64 i = 0; i < half * inner; i++)
      dst[i] = (float) (a[i] / (1.0 + exp (-(double) b[i])));
  }
  return nn_value_take_tensor (out);
}

static NnValue *
glu_forward (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  return glu_apply (nn_args_tensor (args, 0), nn_module_config_int (self, "dim"),
                    error);
}

static char *
glu_extra_repr (NnModule *self)
{
  return g_strdup_printf ("dim=%" G_GINT64_FORMAT, nn_module_config_int (self, "dim"));
}

const NnLayerType nn_glu_type = {
  .struct_size = sizeof (NnLayerType),
  .name = "GLU",
  .doc = "gated linear unit: first half * sigmoid(second half) along dim",
  .schema = glu_schema,
  .n_schema = G_N_ELEMENTS (glu_schema),
  .create = nn_pw_create_nothing,
  .forward = glu_forward,
  .infer = glu_forward,
  .extra_repr = glu_extra_repr,
};

static const NnArgSpec glu_fn_args[] = {
  NN_PW_INPUT_ARG,
  { "dim", NN_ARG_INT, 0, NN_ARG_OPTIONAL, "-1", "dimension halved" },
};

static const char *const glu_fn_aliases[] = { "torch.nn.functional.glu", NULL };

static NnValue *
glu_fn_forward (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  return glu_apply (nn_args_tensor (args, 0), nn_args_int (args, 1), error);
}

const NnLayerType nn_glu_fn_type = {
  .struct_size = sizeof (NnLayerType),
  .name = "glu",
  .doc = "F.glu",
  .flags = NN_LAYER_OP,
  .args = glu_fn_args,
  .n_args = G_N_ELEMENTS (glu_fn_args),
  .aliases = glu_fn_aliases,
  .create = nn_pw_create_nothing,
  .forward = glu_fn_forward,
  .infer = glu_fn_forward,
};
