/* Unflatten: splits dim into unflattened_size (one entry may be -1), as
 * torch.nn.Unflatten.  The result shares the input's storage, as PyTorch's
 * view does. */
#include "misc.h"
#include "../common/nn-layer-util.h"

static const NnSchemaKey unflatten_schema[] = {
  { "dim", NN_KIND_INT, 0, 0, NULL, 0, 0, NULL,
    "dimension to split; negative counts from the end" },
  { "unflattened_size", NN_KIND_JSON, 0, 0, NULL, 0, 0, NULL,
    "new sizes of that dimension (a list; a tuple prints as one)" },
};

static const NnArgSpec unflatten_args[] = {
  { "input", NN_ARG_TENSOR, NN_DTYPES_ALL, 0, NULL, "tensor of any dtype" },
};

typedef struct {
  NnShape sizes;
} Unflatten;

static gboolean
unflatten_create (NnModule *self, GError **error)
{
  Unflatten *u = g_new0 (Unflatten, 1);
  nn_module_set_private (self, u);
  JsonNode *n = nn_module_config_node (self, "unflattened_size");
  JsonArray *a = JSON_NODE_HOLDS_ARRAY (n) ? json_node_get_array (n) : NULL;
  guint len = a ? json_array_get_length (a) : 0, inferred = 0;
  gboolean ok = a && len >= 1 && len <= NN_MAX_DIMS;
  for (guint i = 0; ok && i < len; i++) {
    JsonNode *e = json_array_get_element (a, i);
    ok = JSON_NODE_HOLDS_VALUE (e) && json_node_get_value_type (e) == G_TYPE_INT64;
    gint64 v = ok ? json_node_get_int (e) : 0;
    ok = ok && (v >= 0 || v == -1);
    inferred += v == -1;
    u->sizes.dims[i] = v;
  }
  u->sizes.ndim = len;
  if (!ok || inferred > 1) {
    g_set_error (error, NN_DESCRIPTOR_ERROR, NN_DESCRIPTOR_ERROR_WRONG_KIND,
                 "key 'unflattened_size' must be a list of 1 to %d sizes "
                 ">= 0, at most one of them -1", NN_MAX_DIMS);
    return FALSE;
  }
  return TRUE;
}

static void
unflatten_destroy (NnModule *self)
{
  g_free (nn_module_get_private (self));
}

static NnValue *
unflatten_forward (NnModule *self, NnCall *call, const NnArgs *args,
                   GError **error)
{
  const Unflatten *u = nn_module_get_private (self);
  NnTensor *input = nn_args_tensor (args, 0);
  const NnShape *s = &input->shape;
  guint dim;
  if (!nn_lu_wrap_dim (nn_module_config_int (self, "dim"), s->ndim, &dim, error))
    return NULL;
  gint64 n = s->ndim ? s->dims[dim] : 1, prod = 1;
  gint hole = -1;
  for (guint i = 0; i < u->sizes.ndim; i++) {
    if (u->sizes.dims[i] == -1)
      hole = (gint) i;
    else
      prod *= u->sizes.dims[i];
  }
  NnShape sizes = u->sizes;
  if (hole >= 0 && prod > 0 && n % prod == 0)
    sizes.dims[hole] = n / prod;
  if (nn_shape_numel (&sizes) != n || (hole >= 0 && prod == 0)
      || s->ndim - 1 + sizes.ndim > NN_MAX_DIMS) {
    g_autofree char *want = nn_shape_to_string (&u->sizes);
    g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH,
                 "unflatten: Provided sizes %s don't multiply up to the size "
                 "of dim %u (%" G_GINT64_FORMAT ") in the input tensor", want,
                 dim, n);
    return NULL;
  }
  NnShape os = { 0 };
  for (guint i = 0; i < s->ndim; i++) {
    if (i != dim) {
      os.dims[os.ndim++] = s->dims[i];
      continue;
    }
    for (guint k = 0; k < sizes.ndim; k++)
      os.dims[os.ndim++] = sizes.dims[k];
  }
  if (nn_tensor_is_meta (input))
    return nn_lu_result (nn_tensor_new_meta (input->dtype, &os), error);
  return nn_lu_result (nn_tensor_reshape (input, &os), error);
}

static char *
unflatten_extra_repr (NnModule *self)
{
  g_autofree char *sz = nn_module_config_repr (self, "unflattened_size");
  return g_strdup_printf ("dim=%" G_GINT64_FORMAT ", unflattened_size=%s",
                          nn_module_config_int (self, "dim"), sz);
}

const NnLayerType nn_unflatten_type = {
  .struct_size = sizeof (NnLayerType),
  .flags = NN_LAYER_ALIASES, /* returns its input or a view of it */
  .name = "Unflatten",
  .doc = "splits one dimension into several",
  .schema = unflatten_schema,
  .n_schema = G_N_ELEMENTS (unflatten_schema),
  .args = unflatten_args,
  .n_args = G_N_ELEMENTS (unflatten_args),
  .create = unflatten_create,
  .destroy = unflatten_destroy,
  .forward = unflatten_forward,
  .infer = unflatten_forward,
  .extra_repr = unflatten_extra_repr,
};
