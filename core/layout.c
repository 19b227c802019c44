/* nnkit core: laid-out tensors, a provider's private layout carried
 * between its steps, made plain in place where anything else reads them
 * (docs/ENGINE.md "Memory", docs/PLUGINS.md "Layouts"). */
#include "nn-private.h"

#include <string.h>

static gint64 reorder_count;
static int layouts_state = -1;   /* -1: NN_DNNL_LAYOUT not read yet */

void
nn_engine_note_reorders (guint n)
{
  __atomic_add_fetch (&reorder_count, (gint64) n, __ATOMIC_RELAXED);
}

guint64
nn_engine_get_reorder_count (void)
{
  return (guint64) __atomic_load_n (&reorder_count, __ATOMIC_RELAXED);
}

gboolean
nn_engine_get_layouts (void)
{
  int s = __atomic_load_n (&layouts_state, __ATOMIC_RELAXED);
  if (s < 0) {
    const char *env = g_getenv ("NN_DNNL_LAYOUT");
    s = !(env && (g_ascii_strcasecmp (env, "off") == 0
                  || strcmp (env, "0") == 0));
    __atomic_store_n (&layouts_state, s, __ATOMIC_RELAXED);
  }
  return s;
}

void
nn_engine_set_layouts (gboolean enabled)
{
  __atomic_store_n (&layouts_state, enabled ? 1 : 0, __ATOMIC_RELAXED);
}

gboolean
nn_call_may_lay_out (NnCall *call)
{
  /* A tape keeps the inputs and results of its leaves for backward, which
   * reads plain values: laying them out would only add a conversion.  A
   * backward's own calls (walking) read their results themselves. */
  return call && !call->meta && !call->tape && !call->walking
         && nn_engine_get_layouts ();
}

gboolean
nn_type_takes_layouts (const NnLayerType *t)
{
  /* A routing composite never reads tensor data: it passes values on. */
  return (t->flags & (NN_LAYER_LAYOUT_AWARE | NN_LAYER_ROUTES_ONLY)) != 0;
}

NnTensor *
nn_tensor_new_laid_out (NnDType dtype, const NnShape *shape,
                        const NnLayoutClass *klass, gpointer layout_data,
                        gpointer laid, GDestroyNotify laid_free)
{
  g_return_val_if_fail (klass != NULL && klass->to_plain != NULL
                        && laid != NULL && shape != NULL, NULL);
  NnTensor *t = nn_tensor_new_meta (dtype, shape);
  if (!t) {
    if (laid_free)
      laid_free (laid);
    if (klass->free_layout_data && layout_data)
      klass->free_layout_data (layout_data);
    return NULL;
  }
  t->meta = FALSE;
  t->layout = klass;
  t->layout_data = layout_data;
  t->laid = laid;
  t->laid_free = laid_free;
  return t;
}

void
nn_tensor_layout_clear (NnTensor *t)
{
  if (t->laid_free)
    t->laid_free (t->laid);
  if (t->layout->free_layout_data && t->layout_data)
    t->layout->free_layout_data (t->layout_data);
  t->layout = NULL;
  t->laid = t->layout_data = NULL;
}

const NnLayoutClass *
nn_tensor_get_layout (const NnTensor *t, gpointer *layout_data, gpointer *laid)
{
  g_return_val_if_fail (t != NULL, NULL);
  const NnLayoutClass *k = t->layout;
  if (k && __atomic_load_n (&t->laid_stale, __ATOMIC_ACQUIRE))
    k = NULL;
  if (layout_data)
    *layout_data = k ? t->layout_data : NULL;
  if (laid)
    *laid = k ? t->laid : NULL;
  return k;
}

gboolean
nn_tensor_is_plain (const NnTensor *t)
{
  g_return_val_if_fail (t != NULL, TRUE);
  return !t->layout || __atomic_load_n (&t->plain, __ATOMIC_ACQUIRE);
}

gboolean
nn_tensor_make_plain (NnTensor *t, GError **error)
{
  g_return_val_if_fail (t != NULL, FALSE);
  if (nn_tensor_is_plain (t))
    return TRUE;
  /* One thread converts; a racing reader waits for it and then finds the
   * data published (the release store of plain). */
  g_bit_lock (&t->layout_lock, 0);
  gboolean ok = TRUE;
  if (!__atomic_load_n (&t->plain, __ATOMIC_ACQUIRE)) {
    GDestroyNotify release = NULL;
    gsize n = nn_tensor_nbytes (t);
    gpointer data = nn_tensor_storage_alloc (n, &release);
    GError *local = NULL;
    if (!data) {
      g_set_error (&local, NN_MODULE_ERROR, NN_MODULE_ERROR_FAILED,
                   "cannot allocate %" G_GSIZE_FORMAT " bytes to make a "
                   "tensor in the %s layout plain", n, t->layout->name);
      ok = FALSE;
    } else if (!t->layout->to_plain (t, t->layout_data, t->laid, data,
                                     &local)) {
      release (data);
      ok = FALSE;
      if (!local)
        g_set_error (&local, NN_MODULE_ERROR, NN_MODULE_ERROR_FAILED,
                     "the %s layout's to_plain() failed without an error",
                     t->layout->name);
    } else {
      t->data = data;
      t->release = release;
      t->release_data = data;
      __atomic_store_n (&t->plain, 1, __ATOMIC_RELEASE);
    }
    if (local)
      g_propagate_error (error, local);
  }
  g_bit_unlock (&t->layout_lock, 0);
  return ok;
}

/* Walks @v's tensor leaves without naming them (foreach_tensor builds a
 * name per leaf; this runs around every call).  Stops when @fn says so. */
static gboolean
walk (const NnValue *v, gboolean (*fn) (NnTensor *, gpointer), gpointer data)
{
  switch (nn_value_kind (v)) {
  case NN_VALUE_TENSOR:
    return fn (nn_value_get_tensor (v), data);
  case NN_VALUE_TUPLE:
  case NN_VALUE_LIST:
  case NN_VALUE_DICT:
    for (guint i = 0; i < nn_value_n_items (v); i++)
      if (!walk (nn_value_item (v, i), fn, data))
        return FALSE;
    return TRUE;
  default:
    return TRUE;
  }
}

static gboolean
make_leaf_plain (NnTensor *t, gpointer data)
{
  return nn_tensor_is_plain (t) || nn_tensor_make_plain (t, data);
}

gboolean
nn_value_make_plain (const NnValue *v, GError **error)
{
  return !v || walk (v, make_leaf_plain, error);
}

/* Plain, and the laid copy forgotten: the tensor goes where it may be
 * written without nn_tensor_mark_written() (a hook, the caller), so no
 * provider may read the laid values again.  They are freed at once when
 * nothing else holds the tensor. */
static gboolean
detach_leaf (NnTensor *t, gpointer data)
{
  if (!t->layout)
    return TRUE;
  if (!nn_tensor_is_plain (t) && !nn_tensor_make_plain (t, data))
    return FALSE;
  __atomic_store_n (&t->laid_stale, 1, __ATOMIC_RELEASE);
  if (g_atomic_int_get (&t->ref_count) == 1) {
    g_bit_lock (&t->layout_lock, 0);
    if (t->laid_free && t->laid)
      t->laid_free (t->laid);
    t->laid = NULL;
    t->laid_free = NULL;
    g_bit_unlock (&t->layout_lock, 0);
  }
  return TRUE;
}

gboolean
nn_value_detach_layouts (const NnValue *v, GError **error)
{
  return !v || walk (v, detach_leaf, error);
}

static gboolean
is_plain_leaf (NnTensor *t, gpointer data)
{
  return nn_tensor_is_plain (t);
}

gboolean
nn_value_has_layout (const NnValue *v)
{
  return v && !walk (v, is_plain_leaf, NULL);
}
