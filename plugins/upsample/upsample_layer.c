/* Upsample, UpsamplingNearest2d and UpsamplingBilinear2d: F.interpolate
 * with the module's size or scale_factor, as torch.nn defines them; and
 * the interpolate op, F.interpolate with its arguments at call time. */
#include "upsample.h"
#include "../common/nn-layer-util.h"

static const char *const modes[] = {
  "nearest", "linear", "bilinear", "bicubic", "trilinear", "area",
  "nearest-exact", NULL
};

static const NnSchemaKey upsample_schema[] = {
  { "size", NN_KIND_JSON, 0, NN_KEY_OPTIONAL, "null", 0, 0, NULL,
    "output spatial size: an int or a list, or None" },
  { "scale_factor", NN_KIND_JSON, 0, NN_KEY_OPTIONAL, "null", 0, 0, NULL,
    "multiplier of the spatial size: a number or a list, or None" },
  { "mode", NN_KIND_ENUM, 0, NN_KEY_OPTIONAL, "\"nearest\"", 0, 0, modes,
    "resampling mode" },
  { "align_corners", NN_KIND_BOOL, 0, NN_KEY_OPTIONAL | NN_KEY_NULLABLE,
    "null", 0, 0, NULL, "linear modes: map corner pixels onto each other" },
  { "recompute_scale_factor", NN_KIND_BOOL, 0,
    NN_KEY_OPTIONAL | NN_KEY_NULLABLE, "null", 0, 0, NULL,
    "derive the kernel's scale from the computed size" },
};

static const NnSchemaKey upsampling2d_schema[] = {
  { "size", NN_KIND_JSON, 0, NN_KEY_OPTIONAL, "null", 0, 0, NULL,
    "output spatial size: an int or a list, or None" },
  { "scale_factor", NN_KIND_JSON, 0, NN_KEY_OPTIONAL, "null", 0, 0, NULL,
    "multiplier of the spatial size: a number or a list, or None" },
};

/* A JSON null, int, float or list of them, as a value. */
static NnValue *
json_value (JsonNode *n)
{
  if (!n || JSON_NODE_HOLDS_NULL (n))
    return nn_value_new_none ();
  if (JSON_NODE_HOLDS_ARRAY (n)) {
    NnValue *t = nn_value_new_tuple ();
    JsonArray *a = json_node_get_array (n);
    for (guint i = 0; i < json_array_get_length (a); i++)
      nn_value_append (t, json_value (json_array_get_element (a, i)));
    return t;
  }
  if (json_node_get_value_type (n) == G_TYPE_INT64)
    return nn_value_new_int (json_node_get_int (n));
  return nn_value_new_float (json_node_get_double (n));
}

static gboolean
numbers_ok (JsonNode *n, gboolean ints_only)
{
  if (!n || JSON_NODE_HOLDS_NULL (n))
    return TRUE;
  if (JSON_NODE_HOLDS_ARRAY (n)) {
    JsonArray *a = json_node_get_array (n);
    gboolean ok = json_array_get_length (a) >= 1 && json_array_get_length (a) <= 3;
    for (guint i = 0; ok && i < json_array_get_length (a); i++) {
      JsonNode *e = json_array_get_element (a, i);
      ok = JSON_NODE_HOLDS_VALUE (e) && !JSON_NODE_HOLDS_ARRAY (e) && numbers_ok (e, ints_only);
    }
    return ok;
  }
  if (!JSON_NODE_HOLDS_VALUE (n))
    return FALSE;
  GType t = json_node_get_value_type (n);
  return t == G_TYPE_INT64 || (!ints_only && t == G_TYPE_DOUBLE);
}

static gboolean
upsample_create (NnModule *self, GError **error)
{
  if (!numbers_ok (nn_module_config_node (self, "size"), TRUE)
      || !numbers_ok (nn_module_config_node (self, "scale_factor"), FALSE)) {
    g_set_error (error, NN_DESCRIPTOR_ERROR, NN_DESCRIPTOR_ERROR_WRONG_KIND,
                 "keys 'size' (ints) and 'scale_factor' (numbers) must each be "
                 "None, a number or a list of 1 to 3 numbers");
    return FALSE;
  }
  return TRUE;
}

static int
config_tristate (NnModule *self, const char *key)
{
  return nn_module_config_is_null (self, key) ? -1 : nn_module_config_bool (self, key);
}

static NnValue *
run (NnModule *self, const NnArgs *args, const char *mode, int align,
     int recompute, GError **error)
{
  g_autoptr (NnValue) size = json_value (nn_module_config_node (self, "size"));
  g_autoptr (NnValue) scale = json_value (nn_module_config_node (self, "scale_factor"));
  NnInterpArgs a = { size, scale, mode, align, recompute };
  return nn_interpolate (nn_args_tensor (args, 0), &a, error);
}

static NnValue *
upsample_forward (NnModule *self, NnCall *call, const NnArgs *args,
                  GError **error)
{
  return run (self, args, nn_module_config_string (self, "mode"),
              config_tristate (self, "align_corners"),
              config_tristate (self, "recompute_scale_factor"), error);
}

static NnValue *
upsampling_nearest2d_forward (NnModule *self, NnCall *call, const NnArgs *args,
                              GError **error)
{
  return run (self, args, "nearest", -1, -1, error);
}

static NnValue *
upsampling_bilinear2d_forward (NnModule *self, NnCall *call,
                               const NnArgs *args, GError **error)
{
  return run (self, args, "bilinear", 1, -1, error);
}

/* Upsample stores float(scale_factor): "scale_factor=2.0", tuples of
 * floats; size prints as given. */
static char *
repr_with_mode (NnModule *self, const char *mode)
{
  GString *s = g_string_new (NULL);
  JsonNode *sf = nn_module_config_node (self, "scale_factor");
  if (sf && !JSON_NODE_HOLDS_NULL (sf)) {
    g_string_append (s, "scale_factor=");
    if (JSON_NODE_HOLDS_ARRAY (sf)) {
      JsonArray *a = json_node_get_array (sf);
      g_string_append_c (s, '(');
      for (guint i = 0; i < json_array_get_length (a); i++) {
        g_autofree char *f = nn_format_py_float (json_array_get_double_element (a, i));
        g_string_append_printf (s, "%s%s", i ? ", " : "", f);
      }
      g_string_append (s, json_array_get_length (a) == 1 ? ",)" : ")");
    } else {
      g_autofree char *f = nn_format_py_float (json_node_get_double (sf));
      g_string_append (s, f);
    }
  } else {
    g_autofree char *sz = nn_module_config_repr (self, "size");
    g_string_append_printf (s, "size=%s", sz);
  }
  g_string_append_printf (s, ", mode=%s", mode);
  return g_string_free (s, FALSE);
}

static char *
upsample_extra_repr (NnModule *self)
{
  return repr_with_mode (self, nn_module_config_string (self, "mode"));
}

static char *
upsampling_nearest2d_extra_repr (NnModule *self)
{
  return repr_with_mode (self, "nearest");
}

static char *
upsampling_bilinear2d_extra_repr (NnModule *self)
{
  return repr_with_mode (self, "bilinear");
}

const NnLayerType nn_upsample_type = {
  .struct_size = sizeof (NnLayerType),
  .name = "Upsample",
  .doc = "F.interpolate with the module's size or scale_factor and mode",
  .schema = upsample_schema,
  .n_schema = G_N_ELEMENTS (upsample_schema),
  .create = upsample_create,
  .forward = upsample_forward,
  .infer = upsample_forward,
  .extra_repr = upsample_extra_repr,
};

const NnLayerType nn_upsampling_nearest2d_type = {
  .struct_size = sizeof (NnLayerType),
  .name = "UpsamplingNearest2d",
  .doc = "Upsample with mode 'nearest'",
  .schema = upsampling2d_schema,
  .n_schema = G_N_ELEMENTS (upsampling2d_schema),
  .create = upsample_create,
  .forward = upsampling_nearest2d_forward,
  .infer = upsampling_nearest2d_forward,
  .extra_repr = upsampling_nearest2d_extra_repr,
};

const NnLayerType nn_upsampling_bilinear2d_type = {
  .struct_size = sizeof (NnLayerType),
  .name = "UpsamplingBilinear2d",
  .doc = "Upsample with mode 'bilinear' and align_corners=True",
  .schema = upsampling2d_schema,
  .n_schema = G_N_ELEMENTS (upsampling2d_schema),
  .create = upsample_create,
  .forward = upsampling_bilinear2d_forward,
  .infer = upsampling_bilinear2d_forward,
  .extra_repr = upsampling_bilinear2d_extra_repr,
};

/* --- F.interpolate ------------------------------------------------------ */

static const NnArgSpec interpolate_args[] = {
  { "input", NN_ARG_TENSOR, 0, 0, NULL, "[N, C, d1, ..., dk], k = 1 to 3" },
  { "size", NN_ARG_INT | NN_ARG_SEQ | NN_ARG_NONE, 0, NN_ARG_OPTIONAL, "null",
    "output spatial size" },
  { "scale_factor", NN_ARG_FLOAT | NN_ARG_SEQ | NN_ARG_NONE, 0,
    NN_ARG_OPTIONAL, "null", "multiplier of the spatial size" },
  { "mode", NN_ARG_STRING, 0, NN_ARG_OPTIONAL, "\"nearest\"", "resampling mode" },
  { "align_corners", NN_ARG_BOOL | NN_ARG_NONE, 0, NN_ARG_OPTIONAL, "null",
    "linear modes: map corner pixels onto each other" },
  { "recompute_scale_factor", NN_ARG_BOOL | NN_ARG_NONE, 0, NN_ARG_OPTIONAL,
    "null", "derive the kernel's scale from the computed size" },
  { "antialias", NN_ARG_BOOL, 0, NN_ARG_OPTIONAL, "false",
    "anti-aliased downsampling (not supported)" },
};

static const char *const interpolate_aliases[] = {
  "torch.nn.functional.interpolate", "torch.nn.functional.upsample", NULL
};

static gboolean
upsample_create_nothing (NnModule *self, GError **error)
{
  return TRUE;
}

static int
arg_tristate (const NnArgs *args, guint i)
{
  NnValue *v = nn_args_get (args, i);
  return nn_value_is_none (v) ? -1 : nn_value_get_bool (v);
}

static NnValue *
interpolate_forward (NnModule *self, NnCall *call, const NnArgs *args,
                     GError **error)
{
  if (nn_args_bool (args, 6)) {
    g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_FAILED,
                 "interpolate: antialias=True is not supported by nnkit");
    return NULL;
  }
  NnInterpArgs a = {
    nn_args_get (args, 1), nn_args_get (args, 2),
    nn_value_get_string (nn_args_get (args, 3)),
    arg_tristate (args, 4), arg_tristate (args, 5),
  };
  return nn_interpolate (nn_args_tensor (args, 0), &a, error);
}

const NnLayerType nn_interpolate_type = {
  .struct_size = sizeof (NnLayerType),
  .name = "interpolate",
  .doc = "F.interpolate: resampling by size or scale_factor",
  .flags = NN_LAYER_OP,
  .args = interpolate_args,
  .n_args = G_N_ELEMENTS (interpolate_args),
  .aliases = interpolate_aliases,
  .create = upsample_create_nothing,
  .forward = interpolate_forward,
  .infer = interpolate_forward,
};
