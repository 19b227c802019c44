/* dnnl plugin: LayerNorm on oneDNN's layer normalisation, the primitive
 * cached by shape.  The reference type (plugins/norm/layer_norm.c,
 * compiled in) keeps schema, create, infer and repr, and runs what this
 * path does not take: other dtypes, empty or meta tensors, shapes that do
 * not end with normalized_shape (which it reports). */
#include "dnnl-private.h"
#include "norm.h"

typedef struct {
  gint64 rows, d;
  gint64 affine;
  double eps;
} LnKey;

static NnDnnlCache cache;

static gboolean
build (gconstpointer k, NnDnnlCached *e, GError **error)
{
  const LnKey *key = k;
  dnnl_dims_t dims = { key->rows, key->d }, sd = { key->d };
  dnnl_layer_normalization_desc_t desc;
  unsigned flags = key->affine ? (dnnl_use_scale | dnnl_use_shift) : 0;

  return nn_dnnl_ok (dnnl_memory_desc_init_by_tag (&e->md[0], 2, dims, dnnl_f32, dnnl_ab),
                     "layer norm md", error)
         && nn_dnnl_ok (dnnl_memory_desc_init_by_tag (&e->md[1], 1, sd, dnnl_f32, dnnl_a),
                        "layer norm scale md", error)
         && nn_dnnl_ok (dnnl_layer_normalization_forward_desc_init (
                          &desc, dnnl_forward_inference, &e->md[0], NULL,
                          (float) key->eps, flags), "describing the layer norm", error)
         && nn_dnnl_cached_build (e, &desc, key->rows * key->d, NN_WORK_GRAIN, error);
}

/* normalized_shape, an int or a list (the schema and create checked it). */
static void
norm_shape (NnModule *self, NnShape *out)
{
  JsonNode *node = nn_module_config_node (self, "normalized_shape");

  out->ndim = 0;
  if (JSON_NODE_HOLDS_ARRAY (node))
    {
      JsonArray *a = json_node_get_array (node);
      for (guint i = 0; i < json_array_get_length (a) && i < NN_MAX_DIMS; i++)
        out->dims[out->ndim++] = json_array_get_int_element (a, i);
    }
  else
    out->dims[out->ndim++] = json_node_get_int (node);
}

static gboolean
usable_param (NnTensor *t, const NnShape *ns)
{
  return t && t->dtype == NN_DTYPE_F32 && !nn_tensor_is_meta (t)
         && nn_shape_equal (&t->shape, ns);
}

static NnValue *
dnnl_layer_norm_forward (NnModule *self, NnCall *call, const NnArgs *args,
                         GError **error)
{
  NnTensor *x = nn_args_tensor (args, 0);
  gboolean affine = nn_module_config_bool (self, "elementwise_affine");
  NnTensor *w = affine ? nn_module_get_parameter (self, "weight") : NULL;
  NnTensor *b = affine ? nn_module_get_parameter (self, "bias") : NULL;
  NnShape ns, tail = { 0 };
  norm_shape (self, &ns);
  gint64 d = nn_shape_numel (&ns);

  if (!x || x->dtype != NN_DTYPE_F32 || nn_tensor_is_meta (x)
      || nn_tensor_numel (x) == 0 || x->shape.ndim < ns.ndim)
    return nn_layer_norm_type.forward (self, call, args, error);
  /* The trailing dims must be normalized_shape, as the parameters. */
  for (guint i = x->shape.ndim - ns.ndim; i < x->shape.ndim; i++)
    tail.dims[tail.ndim++] = x->shape.dims[i];
  if (!nn_shape_equal (&tail, &ns)
      || (affine && (!usable_param (w, &ns) || !usable_param (b, &ns))))
    return nn_layer_norm_type.forward (self, call, args, error);

  LnKey key = { nn_tensor_numel (x) / d, d, affine, nn_module_config_float (self, "eps") };
  NnDnnlCached *e = nn_dnnl_cache_get (&cache, &key, sizeof key, build, error);
  if (!e)
    return NULL;
  if (!e->prim)
    {
      nn_dnnl_cached_unref (e);
      return nn_layer_norm_type.forward (self, call, args, error);
    }
  NnTensor *out = nn_tensor_new_uninitialized (NN_DTYPE_F32, &x->shape);
  gboolean ok = out != NULL;
  if (ok)
    {
      const int ids[] = { DNNL_ARG_SRC, DNNL_ARG_DST, DNNL_ARG_SCALE, DNNL_ARG_SHIFT };
      const dnnl_memory_desc_t *mds[] = { &e->md[0], &e->md[0], &e->md[1], &e->md[1] };
      void *data[] = { nn_tensor_f32 (x), nn_tensor_f32 (out),
                       w ? nn_tensor_f32 (w) : NULL, b ? nn_tensor_f32 (b) : NULL };
      ok = nn_dnnl_cached_run (e, affine ? 4 : 2, ids, mds, data, error);
    }
  else
    g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_FAILED,
                 "LayerNorm: cannot allocate the output");
  nn_dnnl_cached_unref (e);
  if (!ok)
    {
      g_clear_pointer (&out, nn_tensor_unref);
      return NULL;
    }
  return nn_value_take_tensor (out);
}

void
nn_dnnl_layer_norm_setup (NnLayerType *t)
{
  nn_dnnl_provider_init (t, &nn_layer_norm_type, "LayerNorm on oneDNN's layer normalisation, as torch.nn.LayerNorm");
  t->forward = dnnl_layer_norm_forward;
  t->supports = nn_dnnl_supports_cpu;
}

/* Before the plugin is unmapped. */
__attribute__ ((destructor)) static void
dnnl_layer_norm_unload (void)
{
  nn_dnnl_cache_clear (&cache);
}
