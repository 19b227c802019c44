/* dnnl plugin: softmax and log_softmax on oneDNN's softmax primitive,
 * cached by shape: the functional ops (F.softmax, torch.softmax,
 * Tensor.softmax and the log_ ones; plugins/ops/softmax.c compiled in,
 * whose forward runs what this path does not take: other dtypes, a dtype
 * argument, the implicit dim, empty or meta tensors, errors) and the
 * attention rows of the MultiheadAttention provider. */
#include "dnnl-private.h"
#include "ops.h"

#include <string.h>

typedef struct {
  gint64 outer, size, inner;
  gint64 log_it;   /* gint64: no padding in the hashed bytes */
} SoftmaxKey;

static NnDnnlCache cache;

static gboolean
build (gconstpointer k, NnDnnlCached *e, GError **error)
{
  const SoftmaxKey *key = k;
  dnnl_dims_t dims = { key->outer, key->size, key->inner };
  dnnl_softmax_v2_desc_t desc;

  return nn_dnnl_ok (dnnl_memory_desc_init_by_tag (&e->md[0], 3, dims, dnnl_f32, dnnl_abc),
                     "softmax md", error)
         && nn_dnnl_ok (dnnl_softmax_v2_forward_desc_init (
                          &desc, dnnl_forward_inference,
                          key->log_it ? dnnl_softmax_log : dnnl_softmax_accurate,
                          &e->md[0], &e->md[0], 1), "describing the softmax", error)
         && nn_dnnl_cached_build (e, &desc, key->outer * key->size * key->inner,
                                  NN_WORK_GRAIN, error);
}

NnDnnlResult
nn_dnnl_softmax_run (gint64 outer, gint64 size, gint64 inner, gboolean log_it,
                     const float *x, float *y, GError **error)
{
  SoftmaxKey key = { outer, size, inner, log_it != FALSE };
  NnDnnlCached *e = nn_dnnl_cache_get (&cache, &key, sizeof key, build, error);

  if (!e)
    return NN_DNNL_FAILED;
  if (!e->prim)
    {
      nn_dnnl_cached_unref (e);
      return NN_DNNL_DECLINED;
    }
  const int ids[] = { DNNL_ARG_SRC, DNNL_ARG_DST };
  const dnnl_memory_desc_t *mds[] = { &e->md[0], &e->md[0] };
  void *data[] = { (void *) x, y };
  gboolean ok = nn_dnnl_cached_run (e, 2, ids, mds, data, error);
  nn_dnnl_cached_unref (e);
  return ok ? NN_DNNL_DONE : NN_DNNL_FAILED;
}

static const NnLayerType *ref_softmax, *ref_log_softmax;

static NnValue *
softmax_forward (const NnLayerType *ref, gboolean log_it, NnModule *self,
                 NnCall *call, const NnArgs *args, GError **error)
{
  NnTensor *in = nn_args_tensor (args, 0);
  NnValue *dimv = nn_args_get (args, 1);
  guint nd = in ? in->shape.ndim : 0;

  /* The reference decides the implicit dim, converts dtypes, reports. */
  if (!in || in->dtype != NN_DTYPE_F32 || nn_tensor_is_meta (in) || nd == 0
      || nn_tensor_numel (in) == 0 || nn_value_kind (dimv) != NN_VALUE_INT
      || nn_value_kind (nn_args_get (args, 2)) == NN_VALUE_STRING
      || !nn_value_is_none (nn_args_get (args, 3)))
    return ref->forward (self, call, args, error);
  gint64 d = nn_value_get_int (dimv);
  if (d < 0)
    d += nd;
  if (d < 0 || d >= (gint64) nd)
    return ref->forward (self, call, args, error);
  gint64 outer = 1, inner = 1;
  for (guint i = 0; i < (guint) d; i++)
    outer *= in->shape.dims[i];
  for (guint i = (guint) d + 1; i < nd; i++)
    inner *= in->shape.dims[i];
  NnTensor *out = nn_tensor_new_uninitialized (NN_DTYPE_F32, &in->shape);
  if (!out)
    {
      g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_FAILED,
                   "%s: cannot allocate the result", ref->name);
      return NULL;
    }
  switch (nn_dnnl_softmax_run (outer, in->shape.dims[d], inner, log_it,
                               nn_tensor_f32 (in), nn_tensor_f32 (out), error))
    {
    case NN_DNNL_DONE:
      return nn_value_take_tensor (out);
    case NN_DNNL_DECLINED:
      nn_tensor_unref (out);
      return ref->forward (self, call, args, error);
    case NN_DNNL_FAILED:
    default:
      nn_tensor_unref (out);
      return NULL;
    }
}

static NnValue *
dnnl_softmax_forward (NnModule *self, NnCall *call, const NnArgs *args,
                      GError **error)
{
  return softmax_forward (ref_softmax, FALSE, self, call, args, error);
}

static NnValue *
dnnl_log_softmax_forward (NnModule *self, NnCall *call, const NnArgs *args,
                          GError **error)
{
  return softmax_forward (ref_log_softmax, TRUE, self, call, args, error);
}

static const NnLayerType *
reference (const char *name)
{
  for (const NnLayerType *const *t = nn_ops_softmax_types; *t; t++)
    if (g_str_equal ((*t)->name, name))
      return *t;
  g_assert_not_reached ();
  return NULL;
}

void
nn_dnnl_softmax_setup (NnLayerType *t)
{
  ref_softmax = reference ("softmax");
  nn_dnnl_provider_init (t, ref_softmax, "exp(x) / sum(exp(x)) along dim, on oneDNN's softmax (float32)");
  t->forward = dnnl_softmax_forward;
  t->supports = nn_dnnl_supports_cpu;
}

void
nn_dnnl_log_softmax_setup (NnLayerType *t)
{
  ref_log_softmax = reference ("log_softmax");
  nn_dnnl_provider_init (t, ref_log_softmax, "log of softmax along dim, on oneDNN's softmax (float32)");
  t->forward = dnnl_log_softmax_forward;
  t->supports = nn_dnnl_supports_cpu;
}

/* Before the plugin is unmapped. */
__attribute__ ((destructor)) static void
dnnl_softmax_unload (void)
{
  nn_dnnl_cache_clear (&cache);
}
