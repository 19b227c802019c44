/* GELU: x * Phi(x), exact (erf) or PyTorch's tanh approximation. */
#include "activations.h"

#include <math.h>

static const char *const gelu_approximations[] = { "none", "tanh", NULL };

static const NnSchemaKey gelu_schema[] = {
  { "approximate", NN_KIND_ENUM, 0, NN_KEY_OPTIONAL, "\"none\"", 0, 0,
    gelu_approximations, "'none' for the exact erf form, 'tanh' for the "
    "tanh approximation" },
};

static void
gelu_erf_kernel (const float *restrict x, float *restrict y, gint64 n,
                 gconstpointer params)
{
  for (gint64 i = 0; i < n; i++)
    y[i] = x[i] * 0.5f * (1.0f + erff (x[i] * (float) M_SQRT1_2));
}

static void
gelu_tanh_kernel (const float *restrict x, float *restrict y, gint64 n,
                  gconstpointer params)
{
  const float k = (float) (M_2_SQRTPI * M_SQRT1_2); /* sqrt(2 / pi) */
  for (gint64 i = 0; i < n; i++) {
    float v = x[i];
    y[i] = 0.5f * v * (1.0f + tanhf (k * (v + 0.044715f * v * v * v)));
  }
}

static NnTensor *
gelu_forward (NnModule *self, NnCall *call, NnTensor *input, GError **error)
{
  gboolean tanh_form = g_str_equal (nn_module_config_string (self, "approximate"), "tanh");
  return nn_act_map (self, input, tanh_form ? gelu_tanh_kernel : gelu_erf_kernel,
                     NULL, error);
}

static char *
gelu_extra_repr (NnModule *self)
{
  g_autofree char *a = nn_module_config_repr (self, "approximate");
  return g_strdup_printf ("approximate=%s", a);
}

const NnLayerType nn_gelu_type = {
  .struct_size = sizeof (NnLayerType),
  .name = "GELU",
  .doc = "Gaussian error linear unit x * Phi(x)",
  .schema = gelu_schema,
  .n_schema = G_N_ELEMENTS (gelu_schema),
  .create = nn_act_create_nothing,
  .forward = gelu_forward,
  .extra_repr = gelu_extra_repr,
};
