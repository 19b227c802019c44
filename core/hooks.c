/* nnkit core: forward hooks.  Hooks are kept on the module object, so
 * they follow the object, not its path, as in PyTorch.  Handles stay valid
 * after the module is gone: removing then is a no-op. */
#include "nn-private.h"

#include <stdatomic.h>
#include <string.h>

typedef struct {
  gint ref_count;
  NnHookKind kind;
  guint64 id;
  gpointer func;          /* NnPreHookFunc or NnForwardHookFunc */
  gpointer user_data;
  GDestroyNotify destroy;
  char *label;
  guint flags;            /* NnHookFlags */
  NnHookList *owner;      /* (nullable) list it is in; NULL once removed */
} NnHookEntry;

struct _NnHookList {
  GPtrArray *pre;         /* NnHookEntry, firing order */
  GPtrArray *fwd;
  gboolean global;
};

struct _NnHookHandle {
  NnHookEntry *entry;
};

static atomic_uint_fast64_t next_id = 1;
static GMutex global_lock;
static NnHookList *global_hooks;
static gint global_count;

static NnHookEntry *
entry_ref (NnHookEntry *e)
{
  g_atomic_int_inc (&e->ref_count);
  return e;
}

static void
entry_unref (gpointer p)
{
  NnHookEntry *e = p;
  if (!g_atomic_int_dec_and_test (&e->ref_count))
    return;
  g_free (e->label);
  g_free (e);
}

static NnHookList *
list_new (gboolean global)
{
  NnHookList *l = g_new0 (NnHookList, 1);
  l->pre = g_ptr_array_new_with_free_func (entry_unref);
  l->fwd = g_ptr_array_new_with_free_func (entry_unref);
  l->global = global;
  return l;
}

/* Takes the entry out of its list and frees its user data, once. */
static void
entry_detach (NnHookEntry *e)
{
  NnHookList *l = e->owner;
  if (!l)
    return;
  e->owner = NULL;
  if (l->global)
    g_atomic_int_add (&global_count, -1);
  if (e->destroy)
    e->destroy (e->user_data);
  e->destroy = NULL;
  GPtrArray *arr = e->kind == NN_HOOK_KIND_PRE ? l->pre : l->fwd;
  g_ptr_array_remove (arr, e); /* drops the list's reference */
}

void
nn_hook_list_detach (NnHookList *list)
{
  while (list->pre->len)
    entry_detach (list->pre->pdata[0]);
  while (list->fwd->len)
    entry_detach (list->fwd->pdata[0]);
  g_ptr_array_unref (list->pre);
  g_ptr_array_unref (list->fwd);
  g_free (list);
}

static NnHookHandle *
add_entry (NnHookList *l, NnHookKind kind, gpointer func, gpointer user_data,
           GDestroyNotify destroy, const char *label, guint flags)
{
  NnHookEntry *e = g_new0 (NnHookEntry, 1);
  e->ref_count = 1; /* the list's */
  e->kind = kind;
  e->id = atomic_fetch_add (&next_id, 1);
  e->func = func;
  e->user_data = user_data;
  e->destroy = destroy;
  e->label = g_strdup (label);
  e->flags = flags;
  e->owner = l;
  GPtrArray *arr = kind == NN_HOOK_KIND_PRE ? l->pre : l->fwd;
  if (flags & NN_HOOK_PREPEND)
    g_ptr_array_insert (arr, 0, e);
  else
    g_ptr_array_add (arr, e);
  NnHookHandle *h = g_new0 (NnHookHandle, 1);
  h->entry = entry_ref (e);
  return h;
}

static gboolean
check_runs (NnModule *m, GError **error)
{
  if (m->type->forward)
    return TRUE;
  g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_NO_FORWARD,
               "cannot hook %s: %s has no forward(), so it never runs and a "
               "hook on it would never fire; hook its children instead",
               nn_module_get_class_name (m), m->type->name);
  return FALSE;
}

static NnHookHandle *
add_module_hook (NnModule *m, NnHookKind kind, gpointer func, gpointer ud,
                 GDestroyNotify destroy, const char *label, guint flags,
                 GError **error)
{
  g_return_val_if_fail (m != NULL && func != NULL, NULL);
  if (!check_runs (m, error))
    return NULL;
  if (!m->hooks)
    m->hooks = list_new (FALSE);
  return add_entry (m->hooks, kind, func, ud, destroy, label, flags);
}

NnHookHandle *
nn_module_add_pre_hook (NnModule *m, NnPreHookFunc func, gpointer user_data,
                        GDestroyNotify destroy, const char *label, guint flags,
                        GError **error)
{
  return add_module_hook (m, NN_HOOK_KIND_PRE, (gpointer) func, user_data,
                          destroy, label, flags, error);
}

NnHookHandle *
nn_module_add_forward_hook (NnModule *m, NnForwardHookFunc func,
                            gpointer user_data, GDestroyNotify destroy,
                            const char *label, guint flags, GError **error)
{
  return add_module_hook (m, NN_HOOK_KIND_FORWARD, (gpointer) func, user_data,
                          destroy, label, flags, error);
}

static NnHookHandle *
add_global (NnHookKind kind, gpointer func, gpointer ud, GDestroyNotify destroy,
            const char *label, guint flags)
{
  g_mutex_lock (&global_lock);
  if (!global_hooks)
    global_hooks = list_new (TRUE);
  NnHookHandle *h = add_entry (global_hooks, kind, func, ud, destroy, label, flags);
  g_atomic_int_inc (&global_count);
  g_mutex_unlock (&global_lock);
  return h;
}

NnHookHandle *
nn_add_global_pre_hook (NnPreHookFunc func, gpointer user_data,
                        GDestroyNotify destroy, const char *label, guint flags)
{
  return add_global (NN_HOOK_KIND_PRE, (gpointer) func, user_data, destroy, label, flags);
}

NnHookHandle *
nn_add_global_forward_hook (NnForwardHookFunc func, gpointer user_data,
                            GDestroyNotify destroy, const char *label,
                            guint flags)
{
  return add_global (NN_HOOK_KIND_FORWARD, (gpointer) func, user_data, destroy,
                     label, flags);
}

void
nn_hook_handle_remove (NnHookHandle *h)
{
  if (!h)
    return;
  NnHookList *l = h->entry->owner;
  gboolean global = l && l->global;
  if (global)
    g_mutex_lock (&global_lock);
  entry_detach (h->entry);
  if (global)
    g_mutex_unlock (&global_lock);
}

void
nn_hook_handle_free (NnHookHandle *h)
{
  if (!h)
    return;
  entry_unref (h->entry);
  g_free (h);
}

void
nn_module_remove_all_hooks (NnModule *m, gboolean recursive)
{
  if (!recursive) {
    if (m->hooks) {
      nn_hook_list_detach (m->hooks);
      m->hooks = NULL;
    }
    return;
  }
  g_autoptr (GPtrArray) mods = nn_module_named_modules (m);
  for (guint i = 0; i < mods->len; i++)
    nn_module_remove_all_hooks (((NnNamedItem *) mods->pdata[i])->module, FALSE);
}

static void
hook_info_free (gpointer p)
{
  NnHookInfo *i = p;
  g_free (i->label);
  g_free (i);
}

GPtrArray *
nn_module_list_hooks (NnModule *m)
{
  GPtrArray *out = g_ptr_array_new_with_free_func (hook_info_free);
  if (!m->hooks)
    return out;
  GPtrArray *lists[] = { m->hooks->pre, m->hooks->fwd };
  for (guint k = 0; k < 2; k++)
    for (guint i = 0; i < lists[k]->len; i++) {
      NnHookEntry *e = lists[k]->pdata[i];
      NnHookInfo *info = g_new0 (NnHookInfo, 1);
      info->kind = e->kind;
      info->id = e->id;
      info->label = g_strdup (e->label);
      g_ptr_array_add (out, info);
    }
  return out;
}

gboolean
nn_hooks_module_has_any (NnModule *m)
{
  return m->hooks && (m->hooks->pre->len || m->hooks->fwd->len);
}

void
nn_hooks_move (NnModule *from, NnModule *to)
{
  g_return_if_fail (to->hooks == NULL || !nn_hooks_module_has_any (to));
  if (to->hooks)
    nn_hook_list_detach (to->hooks);
  to->hooks = from->hooks;
  from->hooks = NULL;
}

/* Snapshot, so a hook may remove itself (or others) while firing. */
static GPtrArray *
snapshot (GPtrArray *arr, gboolean global)
{
  if (global)
    g_mutex_lock (&global_lock);
  GPtrArray *s = g_ptr_array_new_full (arr->len, entry_unref);
  for (guint i = 0; i < arr->len; i++)
    g_ptr_array_add (s, entry_ref (arr->pdata[i]));
  if (global)
    g_mutex_unlock (&global_lock);
  return s;
}

/* A pre-hook's non-tuple result becomes a 1-tuple, as in PyTorch. */
static gboolean
normalise_args (NnValue **args, NnHookEntry *e, GError **error)
{
  if (*args == NULL) {
    g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_FAILED,
                 "pre-hook%s%s%s set the arguments to NULL; set a tuple "
                 "value instead", e->label ? " '" : "",
                 e->label ? e->label : "", e->label ? "'" : "");
    return FALSE;
  }
  if (nn_value_kind (*args) != NN_VALUE_TUPLE) {
    NnValue *t = nn_value_new_tuple ();
    nn_value_append (t, *args);
    *args = t;
  }
  return TRUE;
}

static gboolean
fire_pre (GPtrArray *arr, gboolean global, NnModule *m, NnCall *call,
          NnValue **args, NnValue **kwargs, GError **error)
{
  g_autoptr (GPtrArray) s = snapshot (arr, global);
  for (guint i = 0; i < s->len; i++) {
    NnHookEntry *e = s->pdata[i];
    if (!e->owner)
      continue; /* removed by an earlier hook of this call */
    NnValue **kw = NULL;
    if (e->flags & NN_HOOK_WITH_KWARGS) {
      if (!*kwargs)
        *kwargs = nn_value_new_dict ();
      kw = kwargs;
    }
    if (!((NnPreHookFunc) e->func) (m, call->path->str, args, kw,
                                    e->user_data, error))
      return FALSE;
    if (!normalise_args (args, e, error))
      return FALSE;
    if (kw && (!*kwargs || nn_value_kind (*kwargs) != NN_VALUE_DICT)) {
      g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_FAILED,
                   "pre-hook%s%s%s set the keyword arguments to something "
                   "other than a dict", e->label ? " '" : "",
                   e->label ? e->label : "", e->label ? "'" : "");
      return FALSE;
    }
  }
  return TRUE;
}

static gboolean
fire_fwd (GPtrArray *arr, gboolean global, NnModule *m, NnCall *call,
          const NnValue *args, const NnValue *kwargs, NnValue **out,
          GError **error)
{
  g_autoptr (GPtrArray) s = snapshot (arr, global);
  g_autoptr (NnValue) empty = NULL;
  for (guint i = 0; i < s->len; i++) {
    NnHookEntry *e = s->pdata[i];
    if (!e->owner)
      continue;
    const NnValue *kw = NULL;
    if (e->flags & NN_HOOK_WITH_KWARGS) {
      if (!kwargs && !empty)
        empty = nn_value_new_dict ();
      kw = kwargs ? kwargs : empty;
    }
    if (!((NnForwardHookFunc) e->func) (m, call->path->str, args, kw, out,
                                        e->user_data, error))
      return FALSE;
    if (!*out) {
      g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_FAILED,
                   "forward hook%s%s%s set the output to NULL; set a value "
                   "(None included) instead", e->label ? " '" : "",
                   e->label ? e->label : "", e->label ? "'" : "");
      return FALSE;
    }
  }
  return TRUE;
}

gboolean
nn_hooks_any (NnModule *m)
{
  return g_atomic_int_get (&global_count) > 0 || nn_hooks_module_has_any (m);
}

gboolean
nn_hooks_fire_pre (NnModule *m, NnCall *call, NnValue **args,
                   NnValue **kwargs, GError **error)
{
  if (g_atomic_int_get (&global_count) > 0 && global_hooks
      && !fire_pre (global_hooks->pre, TRUE, m, call, args, kwargs, error))
    return FALSE;
  if (m->hooks && !fire_pre (m->hooks->pre, FALSE, m, call, args, kwargs,
                             error))
    return FALSE;
  return TRUE;
}

gboolean
nn_hooks_fire_forward (NnModule *m, NnCall *call, const NnValue *args,
                       const NnValue *kwargs, NnValue **out, GError **error)
{
  if (g_atomic_int_get (&global_count) > 0 && global_hooks
      && !fire_fwd (global_hooks->fwd, TRUE, m, call, args, kwargs, out,
                    error))
    return FALSE;
  if (m->hooks && !fire_fwd (m->hooks->fwd, FALSE, m, call, args, kwargs,
                             out, error))
    return FALSE;
  return TRUE;
}
