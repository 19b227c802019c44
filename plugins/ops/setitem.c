/* ops plugin: setitem, Python's obj[index] = value, as dataflow: the
 * result is a new tensor (or list, or dict) with the assignment
 * done, which later reads of obj use; the input is never written.  The
 * index is getitem's; value broadcasts to the indexed region and is cast
 * to obj's dtype, as Tensor.__setitem__ does. */
#include "index.h"

#include <string.h>

/* Element offsets into the tensor of the positions @plan indexes. */
static NnTensor *
region_offsets (NnTensor *in, const NnOpsIndexPlan *plan, GError **error)
{
  g_autoptr (NnTensor) offs = nn_ops_new (FALSE, NN_DTYPE_I64, &plan->shape,
                                          error);
  if (!offs)
    return NULL;
  gint64 n = nn_tensor_numel (offs);
  NnOpsIter it;
  nn_ops_iter_init (&it, &plan->shape);
  nn_ops_iter_add_strided (&it, plan->strides, plan->base);
  for (gint64 i = 0; i < n; i++, nn_ops_iter_next (&it))
    nn_tensor_i64 (offs)[i] = it.off[0];
  if (!plan->adv)
    return g_steal_pointer (&offs);
  if (plan->adv->dtype == NN_DTYPE_BOOL)
    return nn_ops_take_mask (offs, plan->adv_dim, plan->adv, error);
  return nn_ops_take_along (offs, plan->adv_dim, plan->adv, error);
}

/* Whether @value broadcasts to the indexed @region, with PyTorch's two
 * messages: copy_'s expand error for basic indexing, index_put's for an
 * index tensor.  @vs gets the value's shape without the leading size-1
 * dims copy_ drops (x[0] = v of shape [1, n]). */
static gboolean
value_fits (const NnShape *region, const NnShape *value, gboolean advanced,
            NnShape *vs, GError **error)
{
  *vs = *value;
  while (vs->ndim > region->ndim && vs->dims[0] == 1)
    {
      memmove (vs->dims, vs->dims + 1, (vs->ndim - 1) * sizeof (gint64));
      vs->ndim--;
    }
  gboolean ok = vs->ndim <= region->ndim;
  guint bad = 0;
  for (guint i = 0; ok && i < vs->ndim; i++)
    {
      guint r = region->ndim - vs->ndim + i;
      if (vs->dims[i] != 1 && vs->dims[i] != region->dims[r])
        {
          ok = FALSE;
          bad = r;
        }
    }
  if (ok)
    return TRUE;
  g_autofree char *a = nn_shape_to_string (value);
  g_autofree char *r = nn_shape_to_string (region);
  if (advanced || vs->ndim > region->ndim)
    return nn_ops_shape_fail (error, "shape mismatch: value tensor of shape %s "
                              "cannot be broadcast to indexing result of "
                              "shape %s", a, r);
  return nn_ops_shape_fail (error, "The expanded size of the tensor (%"
                            G_GINT64_FORMAT ") must match the existing size (%"
                            G_GINT64_FORMAT ") at non-singleton dimension %u.  "
                            "Target sizes: %s.  Tensor sizes: %s",
                            region->dims[bad],
                            vs->dims[bad - (region->ndim - vs->ndim)], bad, r, a);
}

static NnValue *
setitem_tensor (NnTensor *in, const NnValue *idx, const NnValue *val,
                GError **error)
{
  g_autoptr (NnValue) iv = nn_ops_index_value (idx, error);
  NnOpsIndexPlan plan;
  if (!iv || !nn_ops_index_plan (in, iv, &plan, error))
    return NULL;
  NnTensor *vt = nn_value_kind (val) == NN_VALUE_TENSOR
    ? nn_value_get_tensor (val) : NULL;
  if (!vt && !nn_ops_is_scalar_value (val))
    {
      nn_ops_fail (error, "setitem: value must be a Tensor or a number, found "
                   "%s", nn_value_kind_name (nn_value_kind (val)));
      return NULL;
    }
  gboolean meta = nn_tensor_is_meta (in) || (vt && nn_tensor_is_meta (vt))
                  || (plan.adv && nn_tensor_is_meta (plan.adv));
  /* The result has obj's shape whatever the mask holds, so inference
   * needs no data; it checks the value's shape where it can. */
  if (meta && (!plan.adv || plan.adv->dtype != NN_DTYPE_BOOL) && vt)
    {
      NnShape region = plan.shape;
      if (plan.adv)
        {
          g_autoptr (NnTensor) m = nn_tensor_new_meta (NN_DTYPE_I64, &plan.shape);
          g_autoptr (NnTensor) r = nn_ops_take_along (m, plan.adv_dim, plan.adv,
                                                      error);
          if (!r)
            return NULL;
          region = r->shape;
        }
      NnShape vs;
      if (!value_fits (&region, &vt->shape, plan.adv != NULL, &vs, error))
        return NULL;
    }
  if (meta)
    return nn_value_take_tensor (nn_tensor_new_meta (in->dtype, &in->shape));

  g_autoptr (NnTensor) offs = region_offsets (in, &plan, error);
  if (!offs)
    return NULL;
  g_autoptr (NnTensor) value = vt ? nn_tensor_ref (vt)
                                  : nn_ops_scalar_tensor (val, in->dtype);
  NnShape vs;
  if (!value_fits (&offs->shape, &value->shape, plan.adv != NULL, &vs, error))
    return NULL;
  NnTensor *out = nn_tensor_copy (in);
  if (!out)
    {
      nn_ops_fail (error, "setitem: out of memory");
      return NULL;
    }
  gint64 n = nn_tensor_numel (offs);
  gboolean fl = nn_dtype_is_float (in->dtype);
  NnOpsIter it;
  nn_ops_iter_init (&it, &offs->shape);
  nn_ops_iter_add (&it, &vs);
  for (gint64 i = 0; i < n; i++, nn_ops_iter_next (&it))
    {
      gint64 dst = nn_tensor_i64 (offs)[i];
      if (fl)
        nn_ops_set_f (out, dst, nn_ops_get_f (value, it.off[0]));
      else
        nn_ops_set_i (out, dst, nn_ops_get_i (value, it.off[0]));
    }
  return nn_value_take_tensor (out);
}

/* A copy of list @obj with item @idx replaced. */
static NnValue *
setitem_list (const NnValue *obj, const NnValue *idx, const NnValue *val,
              GError **error)
{
  gint64 n = nn_value_n_items (obj), i;
  if (!nn_ops_int_value (idx, &i))
    {
      nn_ops_fail (error, "list indices must be integers, not %s",
                   nn_value_kind_name (nn_value_kind (idx)));
      return NULL;
    }
  if (i < -n || i >= n)
    {
      nn_ops_fail (error, "list assignment index out of range");
      return NULL;
    }
  if (i < 0)
    i += n;
  NnValue *out = nn_value_new_list ();
  for (gint64 k = 0; k < n; k++)
    nn_value_append (out, nn_value_ref (k == i ? (NnValue *) val
                                               : nn_value_item (obj, k)));
  return out;
}

static NnValue *
setitem_dict (const NnValue *obj, const NnValue *idx, const NnValue *val,
              GError **error)
{
  const char *key = nn_value_get_string (idx);
  if (nn_value_kind (idx) != NN_VALUE_STRING)
    {
      nn_ops_fail (error, "setitem: nnkit dict keys are strings, found %s",
                   nn_value_kind_name (nn_value_kind (idx)));
      return NULL;
    }
  NnValue *out = nn_value_new_dict ();
  for (guint k = 0; k < nn_value_n_items (obj); k++)
    nn_value_dict_set (out, nn_value_dict_key (obj, k),
                       nn_value_ref (nn_value_item (obj, k)));
  nn_value_dict_set (out, key, nn_value_ref ((NnValue *) val));
  return out;
}

static NnValue *
setitem_fn (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  NnValue *obj = nn_args_get (args, 0), *idx = nn_args_get (args, 1),
          *val = nn_args_get (args, 2);
  switch (nn_value_kind (obj))
    {
    case NN_VALUE_TENSOR:
      return setitem_tensor (nn_value_get_tensor (obj), idx, val, error);
    case NN_VALUE_LIST:
      return setitem_list (obj, idx, val, error);
    case NN_VALUE_DICT:
      return setitem_dict (obj, idx, val, error);
    default:
      nn_ops_fail (error, "'%s' object does not support item assignment",
                   nn_value_kind_name (nn_value_kind (obj)));
      return NULL;
    }
}

static const NnArgSpec setitem_args[] = {
  { "obj", NN_ARG_TENSOR | NN_ARG_SEQ | NN_ARG_DICT, NN_OPS_ALL, 0, NULL,
    "tensor, list or dict assigned into" },
  { "index", NN_ARG_ANY, NN_OPS_ALL, 0, NULL, "as getitem's" },
  { "value", NN_ARG_ANY, NN_OPS_ALL, 0, NULL,
    "tensor or number (any value for lists and dicts)" },
};
static const char *const setitem_aliases[] = {
  "operator.setitem", "Tensor.__setitem__", NULL };

static NN_OPS_TYPE (setitem_type, "setitem",
                    "obj with obj[index] = value done (a new value)",
                    setitem_args, setitem_aliases, setitem_fn);

const NnLayerType *const nn_ops_setitem_types[] = { &setitem_type, NULL };
