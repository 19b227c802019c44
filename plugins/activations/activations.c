/* activations plugin: entry point and the elementwise helpers shared by
 * the types; each type (or small family of types) lives in its own file. */
#include "activations.h"

static const NnLayerType *const activation_types[] = {
  &nn_relu_type,
  &nn_relu6_type,
  &nn_hardtanh_type,
  &nn_sigmoid_type,
  &nn_hardsigmoid_type,
  &nn_silu_type,
  &nn_hardswish_type,
  &nn_gelu_type,
  &nn_tanh_type,
  &nn_softmax_type,
  &nn_softmax2d_type,
  &nn_rrelu_type,
  &nn_rrelu_fn_type,
  &nn_leaky_relu_type,
  &nn_prelu_type,
  &nn_elu_type,
  &nn_selu_type,
  &nn_celu_type,
  &nn_mish_type,
  &nn_softplus_type,
  &nn_softsign_type,
  &nn_log_sigmoid_type,
  &nn_log_softmax_type,
  &nn_softmin_type,
  &nn_glu_type,
  &nn_threshold_type,
  &nn_hardshrink_type,
  &nn_softshrink_type,
  &nn_tanhshrink_type,
  &nn_leaky_relu_fn_type,
  &nn_prelu_fn_type,
  &nn_elu_fn_type,
  &nn_selu_fn_type,
  &nn_celu_fn_type,
  &nn_mish_fn_type,
  &nn_softplus_fn_type,
  &nn_softsign_fn_type,
  &nn_log_sigmoid_fn_type,
  &nn_glu_fn_type,
  &nn_threshold_fn_type,
  &nn_hardshrink_fn_type,
  &nn_softshrink_fn_type,
  &nn_tanhshrink_fn_type,
};

const NnArgSpec nn_act_input_args[1] = { NN_ACT_INPUT_ARG };
const NnArgSpec nn_act_inplace_args[2] = { NN_ACT_INPUT_ARG, NN_ACT_INPLACE_ARG };

NnTensor *
nn_act_alloc (const NnShape *shape, GError **error)
{
  NnTensor *out = nn_tensor_new (NN_DTYPE_F32, shape);
  if (!out) {
    g_autofree char *s = nn_shape_to_string (shape);
    g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_FAILED,
                 "cannot allocate the float32 output %s", s);
  }
  return out;
}

NnTensor *
nn_act_alloc_full (const NnShape *shape, GError **error)
{
  NnTensor *out = nn_tensor_new_uninitialized (NN_DTYPE_F32, shape);
  if (!out) {
    g_autofree char *s = nn_shape_to_string (shape);
    g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_FAILED,
                 "cannot allocate the float32 output %s", s);
  }
  return out;
}

void
nn_act_parallel (gint64 n, NnParallelFunc func, gpointer data)
{
  if (n > 0)
    nn_thread_pool_parallel_for_work (nn_thread_pool_get_default (), (gsize) n, n,
                                      func, data);
}

typedef struct {
  NnActKernel kernel;
  NnActDeriv deriv;
  gconstpointer params;
  const float *x, *y, *g;
  float *out;
} ActJob;

static void
map_range (gsize begin, gsize end, gpointer data)
{
  const ActJob *j = data;
  j->kernel (j->x + begin, j->out + begin, (gint64) (end - begin), j->params);
}

NnValue *
nn_act_map (const NnArgs *args, NnActKernel kernel, gconstpointer params,
            GError **error)
{
  NnTensor *input = nn_args_tensor (args, 0);
  NnTensor *out = nn_act_alloc_full (&input->shape, error);
  if (!out)
    return NULL;
  ActJob j = { .kernel = kernel, .params = params, .x = nn_tensor_f32 (input),
               .out = nn_tensor_f32 (out) };
  nn_act_parallel (nn_tensor_numel (input), map_range, &j);
  return nn_value_take_tensor (out);
}

static void
deriv_range (gsize begin, gsize end, gpointer data)
{
  const ActJob *j = data;
  for (gsize i = begin; i < end; i++)
    j->out[i] = j->g[i] * j->deriv (j->x[i], j->y[i]);
}

NnValue *
nn_act_backward_map (const NnArgs *args, const NnValue *out,
                     const NnValue *grad_out, NnActDeriv deriv, GError **error)
{
  NnTensor *input = nn_args_tensor (args, 0);
  NnTensor *dx = nn_act_alloc_full (&input->shape, error);
  if (!dx)
    return NULL;
  ActJob j = { .deriv = deriv, .x = nn_tensor_f32 (input),
               .y = nn_tensor_f32 (nn_value_get_tensor (out)),
               .g = nn_tensor_f32 (nn_value_get_tensor (grad_out)), .out = nn_tensor_f32 (dx) };
  nn_act_parallel (nn_tensor_numel (dx), deriv_range, &j);
  NnValue *res = nn_value_new_tuple ();
  nn_value_append (res, nn_value_take_tensor (dx));
  return res;
}

NnValue *
nn_act_infer_same (NnModule *self, NnCall *call, const NnArgs *args,
                   GError **error)
{
  NnTensor *input = nn_args_tensor (args, 0);
  return nn_value_take_tensor (nn_tensor_new_meta (input->dtype, &input->shape));
}

char *
nn_act_inplace_repr (NnModule *self)
{
  return nn_module_config_bool (self, "inplace") ? g_strdup ("inplace=True") : NULL;
}

gboolean
nn_act_create_nothing (NnModule *self, GError **error)
{
  return TRUE;
}

static gboolean
activations_init (NnPlugin *plugin, GError **error)
{
  for (gsize i = 0; i < G_N_ELEMENTS (activation_types); i++)
    if (!nn_plugin_register_type (plugin, activation_types[i], error))
      return FALSE;
  return TRUE;
}

NN_PLUGIN_DEFINE ("activations", "0.1.0", "MIT",
                  "ReLU, ReLU6, Hardtanh, Sigmoid, Hardsigmoid, SiLU, Hardswish, "
                  "GELU, Tanh, Softmax, LeakyReLU, PReLU, ELU, SELU, CELU, Mish, "
                  "Softplus, Softsign, LogSigmoid, LogSoftmax, Softmin, GLU, "
                  "Threshold, Hardshrink, Softshrink, Tanhshrink, Softmax2d, RReLU",
                  activations_init)
