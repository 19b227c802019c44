/* nnkit core: a leaf forward's result against its type's infer, so a
 * plugin whose forward and infer disagree is named at once instead of the
 * next module getting the blame, and surgery (which checks with infer)
 * cannot pass a module whose forward returns something else.  Runs infer
 * on meta copies of the arguments: no data is touched. */
#include "check-shapes-private.h"

static NnTensor *
as_meta (NnTensor *t, gpointer user_data, GError **error)
{
  return nn_tensor_is_meta (t) ? nn_tensor_ref (t)
                               : nn_tensor_new_meta (t->dtype, &t->shape);
}

/* Structure (kinds, lengths, dict keys) and every tensor leaf's shape and
 * dtype; the values of non-tensor leaves are not compared, as infer may
 * not know them. */
static gboolean
same_layout (const NnValue *a, const NnValue *b)
{
  NnValueKind k = nn_value_kind (a);
  if (k != nn_value_kind (b))
    return FALSE;
  switch (k) {
  case NN_VALUE_TENSOR: {
    NnTensor *x = nn_value_get_tensor (a), *y = nn_value_get_tensor (b);
    return x->dtype == y->dtype && nn_shape_equal (&x->shape, &y->shape);
  }
  case NN_VALUE_TUPLE:
  case NN_VALUE_LIST:
  case NN_VALUE_DICT:
    if (nn_value_n_items (a) != nn_value_n_items (b))
      return FALSE;
    for (guint i = 0; i < nn_value_n_items (a); i++) {
      if (k == NN_VALUE_DICT
          && g_strcmp0 (nn_value_dict_key (a, i), nn_value_dict_key (b, i)))
        return FALSE;
      if (!same_layout (nn_value_item (a, i), nn_value_item (b, i)))
        return FALSE;
    }
    return TRUE;
  default:
    return TRUE;
  }
}

/* Python's repr of @v with tensors as "Tensor[1, 3] F32", real or meta
 * alike, so the two results read the same way. */
static void
append_layout (GString *s, const NnValue *v)
{
  NnValueKind k = nn_value_kind (v);
  if (k == NN_VALUE_TENSOR) {
    NnTensor *t = nn_value_get_tensor (v);
    g_autofree char *shape = nn_shape_to_string (&t->shape);
    g_string_append_printf (s, "Tensor%s %s", shape, nn_dtype_name (t->dtype));
    return;
  }
  if (k != NN_VALUE_TUPLE && k != NN_VALUE_LIST && k != NN_VALUE_DICT) {
    g_autofree char *text = nn_value_to_string (v);
    g_string_append (s, text);
    return;
  }
  guint n = nn_value_n_items (v);
  g_string_append_c (s, k == NN_VALUE_TUPLE ? '(' : k == NN_VALUE_LIST ? '[' : '{');
  for (guint i = 0; i < n; i++) {
    if (i)
      g_string_append (s, ", ");
    if (k == NN_VALUE_DICT)
      g_string_append_printf (s, "'%s': ", nn_value_dict_key (v, i));
    append_layout (s, nn_value_item (v, i));
  }
  if (k == NN_VALUE_TUPLE && n == 1)
    g_string_append_c (s, ',');
  g_string_append_c (s, k == NN_VALUE_TUPLE ? ')' : k == NN_VALUE_LIST ? ']' : '}');
}

static char *
layout_string (const NnValue *v)
{
  GString *s = g_string_new (NULL);
  append_layout (s, v);
  return g_string_free (s, FALSE);
}

const char *
nn_check_plugin_name (NnModule *m)
{
  return m->plugin ? nn_plugin_get_name (m->plugin) : "(none)";
}


gboolean
nn_check_shapes (NnCall *call, NnModule *m, const NnValue *args,
                 const NnValue *kwargs, const NnValue *out, GError **error)
{
  const NnLayerType *t = m->type;
  if (!t->infer || (t->flags & (NN_LAYER_ROUTES_ONLY | NN_LAYER_SHAPE_FROM_DATA)))
    return TRUE;
  g_autoptr (NnValue) margs = nn_value_map_tensors (args, as_meta, NULL, NULL);
  g_autoptr (NnValue) mkwargs = kwargs ? nn_value_map_tensors (kwargs, as_meta,
                                                               NULL, NULL)
                                       : NULL;
  GError *local = NULL;
  NnArgs *bound = nn_args_bind (t, margs, mkwargs, &local);
  NnValue *inferred = NULL;
  if (bound) {
    /* Nested calls of infer are shape inference too, and must neither be
     * reported to an observer, nor recorded on a training tape (a child
     * without infer runs forward on zeros), nor mark the caller's error
     * as located. */
    gboolean saved_meta = call->meta, saved_located = call->located;
    GArray *saved_events = call->events;
    struct _NnTape *saved_tape = call->tape;
    call->meta = TRUE;
    call->events = NULL;
    call->tape = NULL;
    inferred = t->infer (m, call, bound, &local);
    call->meta = saved_meta;
    call->events = saved_events;
    call->tape = saved_tape;
    call->located = saved_located;
    nn_args_free (bound);
  }
  if (!inferred || local) {
    /* Data-dependent shapes (a bool mask's getitem) make infer refuse
     * honestly: nothing to compare. */
    g_clear_error (&local);
    g_clear_pointer (&inferred, nn_value_unref);
    return TRUE;
  }
  gboolean ok = same_layout (out, inferred);
  if (!ok) {
    g_autofree char *got = layout_string (out);
    g_autofree char *want = layout_string (inferred);
    g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_FAILED,
                 "forward returned %s but infer says %s (a bug in plugin "
                 "'%s')", got, want, nn_check_plugin_name (m));
  }
  nn_value_unref (inferred);
  return ok;
}
