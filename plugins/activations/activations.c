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

NnValue *
nn_act_map (const NnArgs *args, NnActKernel kernel, gconstpointer params,
            GError **error)
{
  NnTensor *input = nn_args_tensor (args, 0);
  NnTensor *out = nn_act_alloc (&input->shape, error);
  if (!out)
    return NULL;
  kernel (nn_tensor_f32 (input), nn_tensor_f32 (out), nn_tensor_numel (input),
          params);
  return nn_value_take_tensor (out);
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
                  "GELU, Tanh and Softmax",
                  activations_init)
