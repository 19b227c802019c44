/* ReLU: max(x, 0), as torch.nn.ReLU; NaN propagates. */
#include "activations.h"

static const NnSchemaKey relu_schema[] = { NN_ACT_INPLACE_KEY };

static void
relu_kernel (const float *restrict x, float *restrict y, gint64 n,
             gconstpointer params)
{
  for (gint64 i = 0; i < n; i++)
    y[i] = x[i] < 0.0f ? 0.0f : x[i];
}

static NnValue *
relu_forward (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  return nn_act_map (args, relu_kernel, NULL, error);
}

/* The engine's in-place path: @out may be the input itself, when the
 * input dies at this call (no restrict here, unlike the kernels). */
static gboolean
relu_forward_into (NnModule *self, NnCall *call, const NnArgs *args,
                   NnTensor *out, NnWorkspace *ws, NnThreadPool *pool,
                   GError **error)
{
  const float *x = nn_tensor_f32 (nn_args_tensor (args, 0));
  float *y = nn_tensor_f32 (out);
  for (gint64 i = 0, n = nn_tensor_numel (out); i < n; i++)
    y[i] = x[i] < 0.0f ? 0.0f : x[i];
  return TRUE;
}

typedef struct {
  const float *x, *g;
  float *d;
} ReluBwd;

static void
relu_backward_range (gsize begin, gsize end, gpointer data)
{
  const ReluBwd *j = data;
  const float *restrict x = j->x + begin;
  const float *restrict g = j->g + begin;
  float *restrict d = j->d + begin;
  /* The load unconditional, so the select vectorises. */
  for (gsize i = 0, n = end - begin; i < n; i++) {
    const float gi = g[i];
    d[i] = x[i] > 0.0f ? gi : 0.0f;
  }
}

/* dx = g where x > 0, else 0 (PyTorch's threshold_backward: 0 at x = 0). */
static NnValue *
relu_backward (NnModule *self, NnCall *call, const NnArgs *args,
               const NnValue *out, const NnValue *grad_out, GError **error)
{
  NnTensor *input = nn_args_tensor (args, 0);
  NnTensor *dx = nn_act_alloc_full (&input->shape, error);
  if (!dx)
    return NULL;
  ReluBwd j = { nn_tensor_f32 (input), nn_tensor_f32 (nn_value_get_tensor (grad_out)),
                nn_tensor_f32 (dx) };
  nn_act_parallel (nn_tensor_numel (dx), relu_backward_range, &j);
  NnValue *res = nn_value_new_tuple ();
  nn_value_append (res, nn_value_take_tensor (dx));
  return res;
}

static const char *const relu_aliases[] = {
  "relu", "torch.relu", "torch.nn.functional.relu", "Tensor.relu", NULL
};

const NnLayerType nn_relu_type = {
  .struct_size = sizeof (NnLayerType),
  .name = "ReLU",
  .doc = "rectified linear unit max(x, 0)",
  .schema = relu_schema,
  .n_schema = G_N_ELEMENTS (relu_schema),
  .args = nn_act_inplace_args,
  .n_args = G_N_ELEMENTS (nn_act_inplace_args),
  .aliases = relu_aliases,
  .create = nn_act_create_nothing,
  .forward = relu_forward,
  .inplace_arg = 1, /* input */
  .forward_into = relu_forward_into,
  .backward = relu_backward,
  .infer = nn_act_infer_same,
  .extra_repr = nn_act_inplace_repr,
  .fuse = &nn_relu_fuse,
};
