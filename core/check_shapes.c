/* nnkit core: a leaf forward's result against its type's infer, so a
 * plugin whose forward and infer disagree is named at once instead of the
 * next module getting the blame, and surgery (which checks with infer)
 * cannot pass a module whose forward returns something else.  Runs infer
 * on meta copies of the arguments: no data is touched. */
#include "check-shapes-private.h"

#include <string.h>

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


/* One more word into @h (FxHash's step): cheap, as this runs on every
 * call; the signature must tell calls apart, never be read back. */
static inline guint64
mix (guint64 h, guint64 w)
{
  return (((h << 5) | (h >> 59)) ^ w) * 0x517cc1b727220a95ull;
}

static guint64
mix_string (guint64 h, const char *s)
{
  if (!s)
    return mix (h, 1);
  for (; *s; s++)
    h = mix (h, (guchar) *s);
  return mix (h, 0x100);
}

/* Everything infer may read of a value: kinds, lengths, dict keys, scalar
 * values, and every tensor's dtype and shape. */
static guint64
signature (guint64 h, const NnValue *v)
{
  if (!v)
    return mix (h, 0xdead);
  NnValueKind k = nn_value_kind (v);
  h = mix (h, k);
  switch (k) {
  case NN_VALUE_TENSOR: {
    NnTensor *t = nn_value_get_tensor (v);
    h = mix (mix (h, t->dtype), t->shape.ndim);
    for (guint i = 0; i < t->shape.ndim; i++)
      h = mix (h, (guint64) t->shape.dims[i]);
    return h;
  }
  case NN_VALUE_INT:
  case NN_VALUE_BOOL:
    return mix (h, (guint64) nn_value_get_int (v));
  case NN_VALUE_FLOAT: {
    double d = nn_value_get_float (v);
    guint64 bits;
    memcpy (&bits, &d, sizeof bits);
    return mix (h, bits);
  }
  case NN_VALUE_STRING:
    return mix_string (h, nn_value_get_string (v));
  case NN_VALUE_TUPLE:
  case NN_VALUE_LIST:
  case NN_VALUE_DICT:
  case NN_VALUE_SLICE:
    h = mix (h, nn_value_n_items (v));
    for (guint i = 0; i < nn_value_n_items (v); i++) {
      if (k == NN_VALUE_DICT)
        h = mix_string (h, nn_value_dict_key (v, i));
      h = signature (h, nn_value_item (v, i));
    }
    return h;
  default:
    return h;
  }
}

gboolean
nn_check_shapes (NnCall *call, NnModule *m, const NnValue *args,
                 const NnValue *kwargs, const NnValue *out,
                 const NnPlanStep *step, GError **error)
{
  const NnLayerType *t = m->type;
  if (!t->infer || (t->flags & (NN_LAYER_ROUTES_ONLY | NN_LAYER_SHAPE_FROM_DATA)))
    return TRUE;
  /* A plan step's module is unedited while the step holds (plan.c), and
   * infer depends on nothing but the module and this signature: a result
   * whose signature already agreed needs no second look.  That halves the
   * plan's per-step cost (docs/PLUGINS.md "Checked forwards"). */
  guint64 sig = 0;
  guint64 *seen = step ? (guint64 *) &step->shapes_ok : NULL;
  if (seen) {
    sig = signature (signature (signature (mix ((guintptr) m, (guintptr) t),
                                           args), kwargs), out);
    sig += !sig; /* 0 means none */
    if (__atomic_load_n (seen, __ATOMIC_RELAXED) == sig)
      return TRUE;
  }
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
     * as located, nor be steps of the plan: recorded, a composite's
     * nested call (MultiheadAttention's out_proj) became a second step
     * that the next forward, whose check is skipped, did not make; the
     * plan was left there and recorded again at every forward, unfused. */
    gboolean saved_meta = call->meta, saved_located = call->located;
    gboolean saved_plan_on = call->plan_on;
    GArray *saved_events = call->events;
    struct _NnTape *saved_tape = call->tape;
    call->meta = TRUE;
    call->events = NULL;
    call->tape = NULL;
    call->plan_on = FALSE;
    inferred = t->infer (m, call, bound, &local);
    call->plan_on = saved_plan_on;
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
  if (ok && seen)
    __atomic_store_n (seen, sig, __ATOMIC_RELAXED);
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
