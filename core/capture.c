/* nnkit core: activation capture, in the manner of torchvision's
 * create_feature_extractor: forward hooks keep the selected outputs. */
#include "nn-private.h"

#include <string.h>

struct _NnCapture {
  NnModule *root;
  GPtrArray *targets;  /* NnNamedItem (path, module), selection order */
  GPtrArray *handles;  /* NnHookHandle */
  GPtrArray *outputs;  /* NnNamedItem (leaf name, tensor) of the last run */
  NnValue **slots;     /* latest output per target */
};

typedef struct {
  NnCapture *cap;
  guint index;
} Slot;

static gboolean
keep_output (NnModule *m, const char *path, const NnValue *args,
             const NnValue *kwargs, NnValue **output, gpointer user_data,
             GError **error)
{
  Slot *s = user_data;
  NnValue **dst = &s->cap->slots[s->index];
  if (*dst)
    nn_value_unref (*dst);
  *dst = nn_value_ref (*output);
  return TRUE;
}

static gboolean
is_glob (const char *ref)
{
  return strpbrk (ref, "*?") != NULL;
}

static gboolean
add_target (NnCapture *cap, const char *path, NnModule *m, GError **error)
{
  for (guint i = 0; i < cap->targets->len; i++)
    if (((NnNamedItem *) cap->targets->pdata[i])->module == m)
      return TRUE; /* selected twice: captured once */
  if (!m->type->forward) {
    g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_NO_FORWARD,
                 "cannot capture '%s': %s has no forward(), so it has no output",
                 path, m->type->name);
    return FALSE;
  }
  nn_named_list_add (cap->targets, path, m, NULL, 0);
  return TRUE;
}

NnCapture *
nn_capture_new (NnModule *root, const char *const *refs, guint n_refs,
                GError **error)
{
  g_return_val_if_fail (root != NULL && (refs || !n_refs), NULL);
  NnCapture *cap = g_new0 (NnCapture, 1);
  cap->root = nn_module_ref (root);
  cap->targets = nn_named_list_new ();
  cap->handles = g_ptr_array_new_with_free_func ((GDestroyNotify) nn_hook_handle_free);
  cap->outputs = nn_named_list_new ();
  for (guint i = 0; i < n_refs; i++) {
    if (is_glob (refs[i])) {
      g_autoptr (GPtrArray) hits = nn_module_glob (root, refs[i], "modules", error);
      if (!hits)
        goto fail;
      if (hits->len == 0) {
        g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_NOT_FOUND,
                     "capture: glob '%s' matches no module", refs[i]);
        goto fail;
      }
      guint runnable = 0;
      for (guint k = 0; k < hits->len; k++) {
        NnNamedItem *it = hits->pdata[k];
        /* A glob skips containers that never run rather than failing. */
        if (!it->module->type->forward)
          continue;
        runnable++;
        if (!add_target (cap, it->name, it->module, error))
          goto fail;
      }
      if (runnable == 0) {
        /* Silently capturing nothing would hide a wrong pattern. */
        NnNamedItem *first = hits->pdata[0];
        g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_NO_FORWARD,
                     "capture: glob '%s' matches only modules without forward() "
                     "('%s' is a %s), so there is no output to capture", refs[i],
                     first->name, first->module->type->name);
        goto fail;
      }
    } else {
      g_autofree char *path = NULL;
      NnModule *m = nn_module_lookup_ref (root, refs[i], &path, error);
      if (!m || !add_target (cap, path, m, error))
        goto fail;
    }
  }
  cap->slots = g_new0 (NnValue *, MAX (cap->targets->len, 1));
  for (guint i = 0; i < cap->targets->len; i++) {
    NnNamedItem *it = cap->targets->pdata[i];
    Slot *s = g_new (Slot, 1);
    s->cap = cap;
    s->index = i;
    NnHookHandle *h = nn_module_add_forward_hook (it->module, keep_output, s, g_free,
                                                  "capture", 0, error);
    if (!h) {
      g_free (s);
      goto fail;
    }
    g_ptr_array_add (cap->handles, h);
  }
  return cap;
fail:
  nn_capture_free (cap);
  return NULL;
}

static void
clear_slots (NnCapture *cap)
{
  for (guint i = 0; i < cap->targets->len; i++)
    g_clear_pointer (&cap->slots[i], nn_value_unref);
}

static void
add_leaf (const char *name, NnTensor *t, gpointer user_data)
{
  nn_named_list_add (user_data, name, NULL, t, 0);
}

NnValue *
nn_capture_run (NnCapture *cap, const NnValue *args, const NnValue *kwargs,
                GError **error)
{
  clear_slots (cap);
  g_ptr_array_set_size (cap->outputs, 0);
  NnValue *out = nn_module_call (cap->root, args, kwargs, error);
  if (!out) {
    clear_slots (cap);
    return NULL;
  }
  /* All or nothing: a failed run leaves no partial list of outputs. */
  for (guint i = 0; i < cap->targets->len; i++) {
    NnNamedItem *it = cap->targets->pdata[i];
    if (!cap->slots[i]) {
      /* Selected but never run: a Graph node may not call every child. */
      g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_NOT_FOUND,
                   "capture: '%s' did not run during the forward", it->name);
      clear_slots (cap);
      nn_value_unref (out);
      return NULL;
    }
  }
  /* Each output's tensor leaves, named as nn_value_foreach_tensor names
   * them under the module's path: "lstm", "lstm.0", "lstm.1.0". */
  for (guint i = 0; i < cap->targets->len; i++)
    nn_value_foreach_tensor (cap->slots[i],
                             ((NnNamedItem *) cap->targets->pdata[i])->name,
                             add_leaf, cap->outputs);
  return out;
}

GPtrArray *
nn_capture_get_outputs (NnCapture *cap)
{
  return cap->outputs;
}

gboolean
nn_capture_save (NnCapture *cap, const char *path, GError **error)
{
  guint n = cap->outputs->len;
  if (n == 0) {
    g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_FAILED,
                 "%s: nothing captured yet: run the capture first", path);
    return FALSE;
  }
  g_autofree const char **names = g_new (const char *, n);
  g_autofree NnTensor **tensors = g_new (NnTensor *, n);
  for (guint i = 0; i < n; i++) {
    NnNamedItem *it = cap->outputs->pdata[i];
    names[i] = it->name;
    tensors[i] = it->tensor;
  }
  return nn_safetensors_write (path, names, tensors, n, NULL, error);
}

void
nn_capture_free (NnCapture *cap)
{
  if (!cap)
    return;
  for (guint i = 0; i < cap->handles->len; i++)
    nn_hook_handle_remove (cap->handles->pdata[i]);
  g_ptr_array_unref (cap->handles);
  if (cap->slots)
    clear_slots (cap);
  g_free (cap->slots);
  g_ptr_array_unref (cap->outputs);
  g_ptr_array_unref (cap->targets);
  nn_module_unref (cap->root);
  g_free (cap);
}
