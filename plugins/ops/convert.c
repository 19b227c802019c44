/* ops plugin: dtype conversions (to, type, float, double, half, bfloat16,
 * long, int, bool, byte, char, type_as) and copies (clone, detach).
 * Device arguments are accepted and ignored: nnkit runs on the CPU. */
#include "ops.h"

#include <string.h>

static NnValue *
convert (NnTensor *in, NnDType dt)
{
  return nn_value_take_tensor (nn_tensor_to_dtype (in, dt));
}

/* "torch.FloatTensor" style names, as Tensor.type() takes and gives. */
static const struct { const char *name; NnDType dtype; } legacy_names[] = {
  { "torch.FloatTensor", NN_DTYPE_F32 }, { "torch.DoubleTensor", NN_DTYPE_F64 },
  { "torch.HalfTensor", NN_DTYPE_F16 }, { "torch.BFloat16Tensor", NN_DTYPE_BF16 },
  { "torch.LongTensor", NN_DTYPE_I64 }, { "torch.IntTensor", NN_DTYPE_I32 },
  { "torch.CharTensor", NN_DTYPE_I8 }, { "torch.ByteTensor", NN_DTYPE_U8 },
  { "torch.BoolTensor", NN_DTYPE_BOOL },
};

static gboolean
parse_type (const char *s, NnDType *out)
{
  if (nn_dtype_parse (s, out))
    return TRUE;
  for (gsize i = 0; i < G_N_ELEMENTS (legacy_names); i++)
    if (strcmp (s, legacy_names[i].name) == 0)
      {
        *out = legacy_names[i].dtype;
        return TRUE;
      }
  return FALSE;
}

/* to(dtype), to(device), to(device, dtype), to(other), to(dtype=...). */
static NnValue *
to_fn (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  NnTensor *in = nn_args_tensor (args, 0);
  NnValue *pos = nn_args_get (args, 1);
  NnDType dt = in->dtype;
  gboolean given;
  for (guint i = 0; i < nn_value_n_items (pos); i++)
    {
      NnValue *v = nn_value_item (pos, i);
      if (nn_value_kind (v) == NN_VALUE_TENSOR)
        dt = nn_value_get_tensor (v)->dtype;
      else if (nn_value_kind (v) == NN_VALUE_STRING)
        {
          /* Not a dtype: a device such as "cpu" or "cuda:0". */
          parse_type (nn_value_get_string (v), &dt);
        }
      else if (nn_value_kind (v) == NN_VALUE_BOOL
               || nn_value_kind (v) == NN_VALUE_NONE)
        continue; /* non_blocking, copy */
      else
        {
          g_autofree char *s = nn_value_to_string (v);
          nn_ops_fail (error, "to() received an invalid combination of "
                       "arguments: %s", s);
          return NULL;
        }
    }
  if (!nn_ops_dtype_arg (nn_args_get (args, 2), &dt, &given, error))
    return NULL;
  return convert (in, dt);
}

static NnValue *
type_fn (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  NnTensor *in = nn_args_tensor (args, 0);
  NnValue *v = nn_args_get (args, 1);
  NnDType dt;
  if (nn_value_is_none (v))
    {
      for (gsize i = 0; i < G_N_ELEMENTS (legacy_names); i++)
        if (legacy_names[i].dtype == in->dtype)
          return nn_value_new_string (legacy_names[i].name);
      return nn_value_new_string (nn_dtype_torch_name (in->dtype));
    }
  if (!parse_type (nn_value_get_string (v), &dt))
    {
      nn_ops_fail (error, "invalid type: '%s'", nn_value_get_string (v));
      return NULL;
    }
  return convert (in, dt);
}

static NnValue *
type_as_fn (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  return convert (nn_args_tensor (args, 0), nn_args_tensor (args, 1)->dtype);
}

static NnValue *
clone_fn (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  NnTensor *in = nn_args_tensor (args, 0);
  if (nn_tensor_is_meta (in))
    return nn_value_take_tensor (nn_tensor_new_meta (in->dtype, &in->shape));
  NnTensor *c = nn_tensor_copy (in);
  if (!c)
    {
      nn_ops_fail (error, "clone: out of memory");
      return NULL;
    }
  return nn_value_take_tensor (c);
}

#define CAST(id_, dtype_, ...)                                              \
  static NnValue *id_##_fn (NnModule *self, NnCall *call,                 \
                            const NnArgs *args, GError **error)           \
  { return convert (nn_args_tensor (args, 0), dtype_); }                  \
  static const char *const id_##_aliases[] = { __VA_ARGS__, NULL };       \
  static NN_OPS_VIEW_TYPE (id_##_type, "Tensor." #id_, "converts to " #dtype_, \
                      cast_args, id_##_aliases, id_##_fn)

static const NnArgSpec cast_args[] = {
  { "input", NN_ARG_TENSOR, NN_OPS_ALL, 0, NULL, "tensor" },
  { "memory_format", NN_ARG_ANY, NN_OPS_ALL, NN_ARG_OPTIONAL | NN_ARG_KW_ONLY, "null",
    "accepted and ignored" },
};

/* The canonical name is the method's ("Tensor.float"); the short name is
 * the exporter's spelling (Python's builtin float() is "builtins.float"). */
CAST (float, NN_DTYPE_F32, "float");
CAST (double, NN_DTYPE_F64, "double");
CAST (half, NN_DTYPE_F16, "half");
CAST (bfloat16, NN_DTYPE_BF16, "bfloat16");
CAST (long, NN_DTYPE_I64, "long");
CAST (int, NN_DTYPE_I32, "int");
CAST (char, NN_DTYPE_I8, "char");
CAST (byte, NN_DTYPE_U8, "byte");
CAST (bool, NN_DTYPE_BOOL, "bool");

static const NnArgSpec to_args[] = {
  { "input", NN_ARG_TENSOR, NN_OPS_ALL, 0, NULL, "tensor" },
  { "args", NN_ARG_ANY, NN_OPS_ALL, NN_ARG_VARIADIC, NULL,
    "dtype, device or a tensor whose dtype to take" },
  { "dtype", NN_ARG_STRING | NN_ARG_NONE, 0, NN_ARG_OPTIONAL | NN_ARG_KW_ONLY,
    "null", "result dtype" },
  { "device", NN_ARG_ANY, NN_OPS_ALL, NN_ARG_OPTIONAL | NN_ARG_KW_ONLY, "null",
    "accepted and ignored" },
  { "non_blocking", NN_ARG_ANY, NN_OPS_ALL, NN_ARG_OPTIONAL | NN_ARG_KW_ONLY, "false",
    "accepted and ignored" },
  { "copy", NN_ARG_ANY, NN_OPS_ALL, NN_ARG_OPTIONAL | NN_ARG_KW_ONLY, "false",
    "accepted and ignored: ops never write their inputs" },
  { "memory_format", NN_ARG_ANY, NN_OPS_ALL, NN_ARG_OPTIONAL | NN_ARG_KW_ONLY, "null",
    "accepted and ignored" },
};
static const NnArgSpec type_args[] = {
  { "input", NN_ARG_TENSOR, NN_OPS_ALL, 0, NULL, "tensor" },
  { "dtype", NN_ARG_STRING | NN_ARG_NONE, 0, NN_ARG_OPTIONAL, "null",
    "'torch.float32' or 'torch.FloatTensor'; None returns the type name" },
  { "non_blocking", NN_ARG_ANY, NN_OPS_ALL, NN_ARG_OPTIONAL, "false",
    "accepted and ignored" },
};
static const NnArgSpec type_as_args[] = {
  { "input", NN_ARG_TENSOR, NN_OPS_ALL, 0, NULL, "tensor" },
  { "other", NN_ARG_TENSOR, NN_OPS_ALL, 0, NULL, "tensor whose dtype to take" },
};
static const NnArgSpec clone_args[] = {
  { "input", NN_ARG_TENSOR, NN_OPS_ALL, 0, NULL, "tensor" },
  { "memory_format", NN_ARG_ANY, NN_OPS_ALL, NN_ARG_OPTIONAL | NN_ARG_KW_ONLY, "null",
    "accepted and ignored" },
};

static const char *const to_aliases[] = { "Tensor.to", NULL };
static const char *const type_aliases[] = { "Tensor.type", NULL };
static const char *const type_as_aliases[] = { "Tensor.type_as", NULL };
static const char *const clone_aliases[] = {
  "torch.clone", "Tensor.clone", NULL };
static const char *const detach_aliases[] = {
  "torch.detach", "Tensor.detach", "Tensor.detach_", NULL };

static NN_OPS_VIEW_TYPE (to_type, "to", "converts to a dtype (device ignored)",
                    to_args, to_aliases, to_fn);
static NN_OPS_VIEW_TYPE (type_type, "type", "converts to a dtype, or names it",
                    type_args, type_aliases, type_fn);
static NN_OPS_VIEW_TYPE (type_as_type, "type_as", "converts to other's dtype",
                    type_as_args, type_as_aliases, type_as_fn);
static NN_OPS_TYPE (clone_type, "clone", "a copy", clone_args, clone_aliases,
                    clone_fn);
static NN_OPS_TYPE (detach_type, "detach", "a copy (no autograd in nnkit)",
                    cast_args, detach_aliases, clone_fn);

const NnLayerType *const nn_ops_convert_types[] = {
  &to_type, &type_type, &type_as_type, &clone_type, &detach_type,
  &float_type, &double_type, &half_type, &bfloat16_type, &long_type,
  &int_type, &char_type, &byte_type, &bool_type, NULL,
};
