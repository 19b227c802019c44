/* Hardtanh: clamp(x, min_val, max_val), and ReLU6, which PyTorch defines
 * as Hardtanh(0, 6) with its own repr. */
#include "activations.h"

static const NnSchemaKey hardtanh_schema[] = {
  { "min_val", NN_KIND_FLOAT, 0, NN_KEY_OPTIONAL, "-1.0", 0, 0, NULL,
    "lower end of the linear region" },
  { "max_val", NN_KIND_FLOAT, 0, NN_KEY_OPTIONAL, "1.0", 0, 0, NULL,
    "upper end of the linear region, greater than min_val" },
  NN_ACT_INPLACE_KEY,
};

static const NnSchemaKey relu6_schema[] = { NN_ACT_INPLACE_KEY };

typedef struct {
  float lo, hi;
} Clamp;

static void
clamp_kernel (const float *restrict x, float *restrict y, gint64 n,
              gconstpointer params)
{
  const Clamp *c = params;
  const float lo = c->lo, hi = c->hi;
  /* Written so that a NaN input compares false twice and stays NaN. */
  for (gint64 i = 0; i < n; i++) {
    float v = x[i] < lo ? lo : x[i];
    y[i] = v > hi ? hi : v;
  }
}

static gboolean
hardtanh_create (NnModule *self, GError **error)
{
  double lo = nn_module_config_float (self, "min_val");
  double hi = nn_module_config_float (self, "max_val");
  if (!(hi > lo)) {
    g_autofree char *l = nn_format_py_float (lo);
    g_autofree char *h = nn_format_py_float (hi);
    g_set_error (error, NN_DESCRIPTOR_ERROR, NN_DESCRIPTOR_ERROR_OUT_OF_RANGE,
                 "key 'max_val' must be greater than min_val (%s), "
                 "found %s", l, h);
    return FALSE;
  }
  return TRUE;
}

static NnTensor *
hardtanh_forward (NnModule *self, NnCall *call, NnTensor *input, GError **error)
{
  Clamp c = { (float) nn_module_config_float (self, "min_val"),
              (float) nn_module_config_float (self, "max_val") };
  return nn_act_map (self, input, clamp_kernel, &c, error);
}

static char *
hardtanh_extra_repr (NnModule *self)
{
  g_autofree char *lo = nn_module_config_repr (self, "min_val");
  g_autofree char *hi = nn_module_config_repr (self, "max_val");
  return g_strdup_printf ("min_val=%s, max_val=%s%s", lo, hi,
                          nn_module_config_bool (self, "inplace") ? ", inplace=True" : "");
}

static NnTensor *
relu6_forward (NnModule *self, NnCall *call, NnTensor *input, GError **error)
{
  static const Clamp c = { 0.0f, 6.0f };
  return nn_act_map (self, input, clamp_kernel, &c, error);
}

const NnLayerType nn_hardtanh_type = {
  .struct_size = sizeof (NnLayerType),
  .name = "Hardtanh",
  .doc = "clamp(x, min_val, max_val)",
  .schema = hardtanh_schema,
  .n_schema = G_N_ELEMENTS (hardtanh_schema),
  .create = hardtanh_create,
  .forward = hardtanh_forward,
  .extra_repr = hardtanh_extra_repr,
};

const NnLayerType nn_relu6_type = {
  .struct_size = sizeof (NnLayerType),
  .name = "ReLU6",
  .doc = "min(max(x, 0), 6)",
  .schema = relu6_schema,
  .n_schema = G_N_ELEMENTS (relu6_schema),
  .create = nn_act_create_nothing,
  .forward = relu6_forward,
  .extra_repr = nn_act_inplace_repr,
};
