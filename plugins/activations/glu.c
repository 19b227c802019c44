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

/* With s = sigmoid(b): da = g * s, db = g * a * s * (1 - s), written into
 * the matching halves of the input's gradient.  The dim was checked by
 * the forward. */
static NnValue *
glu_backward_apply (NnTensor *input, gint64 dim_arg, const NnValue *grad_out,
                    GError **error)
{
  const NnShape *s = &input->shape;
  guint dim;
  if (!nn_lu_wrap_dim (dim_arg, s->ndim, &dim, error))
    return NULL;
  gint64 half = s->dims[dim] / 2;
  gint64 outer = nn_lu_prod (s, 0, dim), inner = nn_lu_prod (s, dim + 1, s->ndim);
  NnTensor *dx = nn_tensor_new (NN_DTYPE_F32, s);
  if (!dx)
    return nn_lu_result (NULL, error);
  const float *x = nn_tensor_f32 (input);
  const float *g = nn_tensor_f32 (nn_value_get_tensor (grad_out));
  float *d = nn_tensor_f32 (dx);
  for (gint64 o = 0; o < outer; o++) {
    const float *a = x + o * 2 * half * inner, *b = a + half * inner;
    float *da = d + o * 2 * half * inner, *db = da + half * inner;
    const float *go = g + o * half * inner;
    for (gint64 i = 0; i < half * inner; i++) {
      double sg = 1.0 / (1.0 + exp (-(double) b[i]));
      da[i] = (float) (go[i] * sg);
      db[i] = (float) (go[i] * a[i] * sg * (1.0 - sg));
    }
  }
  NnValue *res = nn_value_new_tuple ();
  nn_value_append (res, nn_value_take_tensor (dx));
  return res;
}

static NnValue *
glu_backward (NnModule *self, NnCall *call, const NnArgs *args,
              const NnValue *out, const NnValue *grad_out, GError **error)
{
  return glu_backward_apply (nn_args_tensor (args, 0),
                             nn_module_config_int (self, "dim"), grad_out, error);
}

static NnValue *
glu_fn_backward (NnModule *self, NnCall *call, const NnArgs *args,
                 const NnValue *out, const NnValue *grad_out, GError **error)
{
  return glu_backward_apply (nn_args_tensor (args, 0), nn_args_int (args, 1),
                             grad_out, error);
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
  .backward = glu_backward,
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
  .backward = glu_fn_backward,
  .infer = glu_fn_forward,
};
