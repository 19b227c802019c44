/* Flatten: merges dims start_dim..end_dim into one, as torch.nn.Flatten.
 * The output shares the input's storage. */
#include "misc.h"

static const NnSchemaKey flatten_schema[] = {
  { "start_dim", NN_KIND_INT, 0, NN_KEY_OPTIONAL, "1", 0, 0, NULL,
    "first dim to flatten, negative from the end" },
  { "end_dim", NN_KIND_INT, 0, NN_KEY_OPTIONAL, "-1", 0, 0, NULL,
    "last dim to flatten, negative from the end" },
};

/* nn.Flatten.forward(input), and torch.flatten(input, start_dim=0,
 * end_dim=-1) / Tensor.flatten as an op: a dim given in the call wins, a
 * None one (the default) takes the config's.  The config defaults are
 * nn.Flatten's (1, -1), so an exporter writing torch.flatten(x) passes
 * start_dim=0 explicitly, in the call or in the node's config. */
static const NnArgSpec flatten_args[] = {
  NN_MISC_INPUT_ARG,
  { "start_dim", NN_ARG_INT | NN_ARG_NONE, 0, NN_ARG_OPTIONAL, "null",
    "first dim to flatten (None: the config's start_dim)" },
  { "end_dim", NN_ARG_INT | NN_ARG_NONE, 0, NN_ARG_OPTIONAL, "null",
    "last dim to flatten (None: the config's end_dim)" },
};

static const char *const flatten_aliases[] = {
  "flatten", "torch.flatten", "Tensor.flatten", NULL
};

static gint64
dim_arg (NnModule *self, const NnArgs *args, guint i, const char *key)
{
  NnValue *v = nn_args_get (args, i);
  return nn_value_is_none (v) ? nn_module_config_int (self, key)
                              : nn_value_get_int (v);
}

/* Wraps @dim for @ndim dims as PyTorch does (a 0-d tensor counts as 1-d). */
static gboolean
wrap_dim (const char *key, gint64 dim, const NnShape *in, gint64 *out,
          GError **error)
{
  gint64 n = MAX ((gint64) in->ndim, 1);
  if (dim < -n || dim >= n) {
    g_autofree char *found = nn_shape_to_string (in);
    g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH,
                 "%s %" G_GINT64_FORMAT " is out of range for input %s "
                 "(expected a dim in [%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT "])",
                 key, dim, found, -n, n - 1);
    return FALSE;
  }
  *out = dim < 0 ? dim + n : dim;
  return TRUE;
}

static gboolean
flatten_out_shape (NnModule *self, const NnArgs *args, NnShape *out,
                   GError **error)
{
  const NnShape *in = &nn_args_tensor (args, 0)->shape;
  gint64 start, end;
  if (!wrap_dim ("start_dim", dim_arg (self, args, 1, "start_dim"), in, &start, error) ||
      !wrap_dim ("end_dim", dim_arg (self, args, 2, "end_dim"), in, &end, error))
    return FALSE;
  if (start > end) {
    g_autofree char *found = nn_shape_to_string (in);
    g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH,
                 "start_dim %" G_GINT64_FORMAT " comes after end_dim %"
                 G_GINT64_FORMAT " for input %s", start, end, found);
    return FALSE;
  }
  if (in->ndim == 0) {
    /* PyTorch flattens a scalar into a 1-d tensor of one element. */
    out->ndim = 1;
    out->dims[0] = 1;
    return TRUE;
  }
  NnShape s = { 0 };
  for (gint64 i = 0; i < start; i++)
    s.dims[s.ndim++] = in->dims[i];
  gint64 merged = 1;
  for (gint64 i = start; i <= end; i++)
    merged *= in->dims[i];
  s.dims[s.ndim++] = merged;
  for (gint64 i = end + 1; i < (gint64) in->ndim; i++)
    s.dims[s.ndim++] = in->dims[i];
  *out = s;
  return TRUE;
}

static NnValue *
flatten_forward (NnModule *self, NnCall *call, const NnArgs *args,
                 GError **error)
{
  NnShape shape;
  if (!flatten_out_shape (self, args, &shape, error))
    return NULL;
  return nn_value_take_tensor (nn_tensor_reshape (nn_args_tensor (args, 0), &shape));
}

static NnValue *
flatten_infer (NnModule *self, NnCall *call, const NnArgs *args,
               GError **error)
{
  NnShape shape;
  if (!flatten_out_shape (self, args, &shape, error))
    return NULL;
  return nn_value_take_tensor (nn_tensor_new_meta (nn_args_tensor (args, 0)->dtype,
                                                   &shape));
}

/* The gradient is the output's, reshaped back to the input's shape. */
static NnValue *
flatten_backward (NnModule *self, NnCall *call, const NnArgs *args,
                  const NnValue *out, const NnValue *grad_out, GError **error)
{
  NnTensor *g = nn_value_get_tensor (grad_out);
  NnValue *res = nn_value_new_tuple ();
  nn_value_append (res, nn_value_take_tensor (
                            nn_tensor_reshape (g, &nn_args_tensor (args, 0)->shape)));
  return res;
}

static char *
flatten_extra_repr (NnModule *self)
{
  return g_strdup_printf ("start_dim=%" G_GINT64_FORMAT ", end_dim=%" G_GINT64_FORMAT,
                          nn_module_config_int (self, "start_dim"),
                          nn_module_config_int (self, "end_dim"));
}

const NnLayerType nn_flatten_type = {
  .struct_size = sizeof (NnLayerType),
  .flags = NN_LAYER_ALIASES, /* returns its input or a view of it */
  .name = "Flatten",
  .doc = "flattens dims start_dim..end_dim into one",
  .schema = flatten_schema,
  .n_schema = G_N_ELEMENTS (flatten_schema),
  .args = flatten_args,
  .n_args = G_N_ELEMENTS (flatten_args),
  .aliases = flatten_aliases,
  .create = nn_misc_create_nothing,
  .infer = flatten_infer,
  .forward = flatten_forward,
  .backward = flatten_backward,
  .extra_repr = flatten_extra_repr,
};
