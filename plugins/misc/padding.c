/* The padding layers ZeroPad2d, ConstantPad1d/2d, ReflectionPad1d/2d and
 * ReplicationPad1d/2d, as torch.nn defines them: the last one or two dims
 * grow by (left, right[, top, bottom]); negative amounts crop.  One
 * index map serves all modes: an output position reads input position
 * o - before, reflected, clamped, or (constant) outside gives the value. */
#include "misc.h"
#include "../common/nn-layer-util.h"

typedef enum { PAD_CONSTANT, PAD_REFLECT, PAD_REPLICATE } PadMode;

typedef struct {
  PadMode mode;
  guint dims;            /* 1 or 2 padded trailing dims */
  gint64 pad[4];         /* left, right, top, bottom, as PyTorch's tuple */
  float value;           /* the constant fill */
} Pad;

static const NnSchemaKey pad1d_schema[] = {
  { "padding", NN_KIND_INT_TUPLE, 2, NN_KEY_EXPAND, NULL, 0, 0, NULL,
    "(left, right), or one int for both" },
};
static const NnSchemaKey pad2d_schema[] = {
  { "padding", NN_KIND_INT_TUPLE, 4, NN_KEY_EXPAND, NULL, 0, 0, NULL,
    "(left, right, top, bottom), or one int for all four" },
};
static const NnSchemaKey const_pad1d_schema[] = {
  { "padding", NN_KIND_INT_TUPLE, 2, NN_KEY_EXPAND, NULL, 0, 0, NULL,
    "(left, right), or one int for both" },
  { "value", NN_KIND_JSON, 0, 0, NULL, 0, 0, NULL, "fill value (a number)" },
};
static const NnSchemaKey const_pad2d_schema[] = {
  { "padding", NN_KIND_INT_TUPLE, 4, NN_KEY_EXPAND, NULL, 0, 0, NULL,
    "(left, right, top, bottom), or one int for all four" },
  { "value", NN_KIND_JSON, 0, 0, NULL, 0, 0, NULL, "fill value (a number)" },
};

/* @with_value: the config has a numeric `value` key (ConstantPadNd). */
static gboolean
pad_create (NnModule *self, PadMode mode, guint dims, gboolean with_value,
            GError **error)
{
  Pad *p = g_new0 (Pad, 1);
  nn_module_set_private (self, p);
  p->mode = mode;
  p->dims = dims;
  nn_module_config_ints (self, "padding", p->pad, 2 * dims);
  if (!with_value)
    return TRUE;
  JsonNode *n = nn_module_config_node (self, "value");
  GType t = n && JSON_NODE_HOLDS_VALUE (n) ? json_node_get_value_type (n)
                                           : G_TYPE_INVALID;
  if (t != G_TYPE_INT64 && t != G_TYPE_DOUBLE) {
    g_set_error (error, NN_DESCRIPTOR_ERROR, NN_DESCRIPTOR_ERROR_WRONG_KIND,
                 "key 'value' must be a number");
    return FALSE;
  }
  p->value = (float) json_node_get_double (n);
  return TRUE;
}

static void
pad_destroy (NnModule *self)
{
  g_free (nn_module_get_private (self));
}

/* Input position for output position @o of a dim of extent @n padded by
 * @before, or -1 for the constant fill. */
static gint64
source_index (PadMode mode, gint64 o, gint64 before, gint64 n)
{
  gint64 i = o - before;
  if (i >= 0 && i < n)
    return i;
  if (mode == PAD_CONSTANT)
    return -1;
  if (mode == PAD_REPLICATE)
    return i < 0 ? 0 : n - 1;
  return i < 0 ? -i : 2 * (n - 1) - i;
}

static gboolean
check_shape (const Pad *p, const NnShape *s, NnShape *out, GError **error)
{
  if (p->mode != PAD_CONSTANT && s->ndim < 2) {
    g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH,
                 "Only 2D, 3D, 4D, 5D padding with non-constant padding are "
                 "supported for now");
    return FALSE;
  }
  if (p->mode != PAD_CONSTANT && s->ndim != p->dims + 1 && s->ndim != p->dims + 2) {
    g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH,
                 "expected %uD or %uD input (got %uD input)", p->dims + 1,
                 p->dims + 2, s->ndim);
    return FALSE;
  }
  if (s->ndim < p->dims) {
    g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH,
                 "Padding length too large");
    return FALSE;
  }
  *out = *s;
  for (guint k = 0; k < p->dims; k++) {
    guint d = s->ndim - 1 - k;
    gint64 before = p->pad[2 * k], after = p->pad[2 * k + 1], n = s->dims[d];
    if (p->mode == PAD_REFLECT && (before >= n || after >= n)) {
      g_autofree char *found = nn_shape_to_string (s);
      g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH,
                   "Padding size should be less than the corresponding input "
                   "dimension, but got: padding (%" G_GINT64_FORMAT ", %"
                   G_GINT64_FORMAT ") at dimension %u of input %s", before,
                   after, d, found);
      return FALSE;
    }
    if (p->mode == PAD_REPLICATE && n == 0) {
      nn_lu_shape_error (error, "non-zero padded dimensions", s);
      return FALSE;
    }
    out->dims[d] = n + before + after;
    if (out->dims[d] < 0) {
      g_autofree char *found = nn_shape_to_string (s);
      g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH,
                   "padding (%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT ") crops "
                   "dimension %u of input %s below size 0", before, after, d,
                   found);
      return FALSE;
    }
  }
  return TRUE;
}

static NnValue *
pad_forward (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  const Pad *p = nn_module_get_private (self);
  NnTensor *input = nn_args_tensor (args, 0);
  NnShape os;
  if (!check_shape (p, &input->shape, &os, error))
    return NULL;
  NnTensor *out = nn_lu_new_f32 (&os, nn_tensor_is_meta (input));
  if (!out || nn_tensor_is_meta (input))
    return nn_lu_result (out, error);
  const NnShape *s = &input->shape;
  /* View both as [outer, H, W] with H = 1 for one padded dim. */
  gint64 w = s->dims[s->ndim - 1], h = p->dims == 2 ? s->dims[s->ndim - 2] : 1;
  gint64 ow = os.dims[os.ndim - 1], oh = p->dims == 2 ? os.dims[os.ndim - 2] : 1;
  gint64 outer = nn_tensor_numel (input) / MAX (h * w, 1);
  if (h * w == 0)
    outer = nn_lu_prod (s, 0, s->ndim - p->dims);
  gint64 top = p->dims == 2 ? p->pad[2] : 0, left = p->pad[0];
  const float fill = p->value;
  const float *x = nn_tensor_f32 (input);
  float *y = nn_tensor_f32 (out);
  g_autofree gint64 *cols = g_new (gint64, MAX (ow, 1));
  for (gint64 j = 0; j < ow; j++)
    cols[j] = source_index (p->mode, j, left, w);
  for (gint64 b = 0; b < outer; b++)
    for (gint64 i = 0; i < oh; i++) {
      gint64 si = p->dims == 2 ? source_index (p->mode, i, top, h) : 0;
      float *dst = y + (b * oh + i) * ow;
      const float *src = x + (b * h + si) * w;
      for (gint64 j = 0; j < ow; j++)
        dst[j] = (si < 0 || cols[j] < 0) ? fill : src[cols[j]];
    }
  return nn_value_take_tensor (out);
}

/* "(1, 1, 2, 0)": the padding tuple as PyTorch stores it. */
static char *
padding_tuple (const Pad *p)
{
  GString *s = g_string_new ("(");
  for (guint i = 0; i < 2 * p->dims; i++)
    g_string_append_printf (s, "%s%" G_GINT64_FORMAT, i ? ", " : "", p->pad[i]);
  g_string_append_c (s, ')');
  return g_string_free (s, FALSE);
}

static char *
pad_extra_repr (NnModule *self)
{
  return padding_tuple (nn_module_get_private (self));
}

static char *
const_pad_extra_repr (NnModule *self)
{
  g_autofree char *t = padding_tuple (nn_module_get_private (self));
  g_autofree char *v = nn_module_config_repr (self, "value");
  return g_strdup_printf ("padding=%s, value=%s", t, v);
}

#define PAD_CREATE(fn_, mode_, dims_, with_value_)                        \
  static gboolean fn_ (NnModule *self, GError **error)                    \
  {                                                                       \
    return pad_create (self, mode_, dims_, with_value_, error);           \
  }

PAD_CREATE (zero_pad2d_create, PAD_CONSTANT, 2, FALSE)
PAD_CREATE (const_pad1d_create, PAD_CONSTANT, 1, TRUE)
PAD_CREATE (const_pad2d_create, PAD_CONSTANT, 2, TRUE)
PAD_CREATE (reflect_pad1d_create, PAD_REFLECT, 1, FALSE)
PAD_CREATE (reflect_pad2d_create, PAD_REFLECT, 2, FALSE)
PAD_CREATE (replicate_pad1d_create, PAD_REPLICATE, 1, FALSE)
PAD_CREATE (replicate_pad2d_create, PAD_REPLICATE, 2, FALSE)

#define PAD_TYPE(var_, name_, doc_, schema_, create_, repr_)               \
  const NnLayerType var_ = {                                              \
    .struct_size = sizeof (NnLayerType), .name = name_, .doc = doc_,      \
    .schema = schema_, .n_schema = G_N_ELEMENTS (schema_),                \
    .create = create_, .destroy = pad_destroy, .forward = pad_forward,    \
    .infer = pad_forward, .extra_repr = repr_,                            \
  }

PAD_TYPE (nn_zero_pad2d_type, "ZeroPad2d", "pads the last two dims with zeros",
          pad2d_schema, zero_pad2d_create, pad_extra_repr);
PAD_TYPE (nn_constant_pad1d_type, "ConstantPad1d", "pads the last dim with value",
          const_pad1d_schema, const_pad1d_create, const_pad_extra_repr);
PAD_TYPE (nn_constant_pad2d_type, "ConstantPad2d",
          "pads the last two dims with value", const_pad2d_schema,
          const_pad2d_create, const_pad_extra_repr);
PAD_TYPE (nn_reflection_pad1d_type, "ReflectionPad1d",
          "pads the last dim with its reflection", pad1d_schema,
          reflect_pad1d_create, pad_extra_repr);
PAD_TYPE (nn_reflection_pad2d_type, "ReflectionPad2d",
          "pads the last two dims with their reflection", pad2d_schema,
          reflect_pad2d_create, pad_extra_repr);
PAD_TYPE (nn_replication_pad1d_type, "ReplicationPad1d",
          "pads the last dim by repeating its edge", pad1d_schema,
          replicate_pad1d_create, pad_extra_repr);
PAD_TYPE (nn_replication_pad2d_type, "ReplicationPad2d",
          "pads the last two dims by repeating their edges", pad2d_schema,
          replicate_pad2d_create, pad_extra_repr);
