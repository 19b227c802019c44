/* nnkit core: iteration in PyTorch's orders (named_modules, named_parameters,
 * named_buffers, state_dict) and glob selection. */
#include "nn-private.h"

#include <string.h>

void
nn_named_item_free (gpointer p)
{
  NnNamedItem *it = p;
  g_free (it->name);
  if (it->module)
    nn_module_unref (it->module);
  if (it->tensor)
    nn_tensor_unref (it->tensor);
  g_free (it);
}

GPtrArray *
nn_named_list_new (void)
{
  return g_ptr_array_new_with_free_func (nn_named_item_free);
}

void
nn_named_list_add (GPtrArray *list, const char *name, NnModule *m,
                   NnTensor *t, guint depth)
{
  NnNamedItem *it = g_new0 (NnNamedItem, 1);
  it->name = g_strdup (name);
  it->module = m ? nn_module_ref (m) : NULL;
  it->tensor = t ? nn_tensor_ref (t) : NULL;
  it->depth = depth;
  g_ptr_array_add (list, it);
}

static char *
join (const char *prefix, const char *name)
{
  return *prefix ? g_strconcat (prefix, ".", name, NULL) : g_strdup (name);
}

GPtrArray *
nn_module_named_children (NnModule *m)
{
  GPtrArray *out = nn_named_list_new ();
  for (guint i = 0; i < m->children->len; i++) {
    NnChild *c = &g_array_index (m->children, NnChild, i);
    nn_named_list_add (out, c->name, c->module, NULL, 1);
  }
  return out;
}

/* Pre-order walk; @seen (nullable) deduplicates as remove_duplicate=True. */
static void
walk_modules (NnModule *m, const char *prefix, guint depth, GHashTable *seen,
              GPtrArray *out)
{
  if (seen) {
    if (g_hash_table_contains (seen, m))
      return;
    g_hash_table_add (seen, m);
  }
  nn_named_list_add (out, prefix, m, NULL, depth);
  for (guint i = 0; i < m->children->len; i++) {
    NnChild *c = &g_array_index (m->children, NnChild, i);
    g_autofree char *sub = join (prefix, c->name);
    walk_modules (c->module, sub, depth + 1, seen, out);
  }
}

GPtrArray *
nn_module_named_modules (NnModule *m)
{
  g_autoptr (GHashTable) seen = g_hash_table_new (NULL, NULL);
  GPtrArray *out = nn_named_list_new ();
  walk_modules (m, "", 0, seen, out);
  return out;
}

GPtrArray *
nn_module_named_modules_all_paths (NnModule *m)
{
  GPtrArray *out = nn_named_list_new ();
  walk_modules (m, "", 0, NULL, out);
  return out;
}

typedef enum { WANT_PARAMS = 1, WANT_BUFFERS = 2, WANT_PERSISTENT = 4 } Want;

/* Collects own tensors per module in named_modules() order.  @dedup_mods
 * and @dedup_tensors select named_parameters() versus state_dict(). */
static GPtrArray *
collect_tensors (NnModule *root, guint want, gboolean dedup)
{
  g_autoptr (GPtrArray) mods = dedup ? nn_module_named_modules (root)
                                     : nn_module_named_modules_all_paths (root);
  g_autoptr (GHashTable) seen = g_hash_table_new (NULL, NULL);
  GPtrArray *out = nn_named_list_new ();
  for (guint i = 0; i < mods->len; i++) {
    NnNamedItem *it = mods->pdata[i];
    NnModule *m = it->module;
    if (want & WANT_PARAMS)
      for (guint j = 0; j < m->params->len; j++) {
        NnSlot *s = &g_array_index (m->params, NnSlot, j);
        if (dedup && !g_hash_table_add (seen, s->tensor))
          continue;
        g_autofree char *name = join (it->name, s->name);
        nn_named_list_add (out, name, m, s->tensor, it->depth);
      }
    if (want & WANT_BUFFERS)
      for (guint j = 0; j < m->buffers->len; j++) {
        NnSlot *s = &g_array_index (m->buffers, NnSlot, j);
        if ((want & WANT_PERSISTENT) && !s->persistent)
          continue;
        if (dedup && !g_hash_table_add (seen, s->tensor))
          continue;
        g_autofree char *name = join (it->name, s->name);
        nn_named_list_add (out, name, m, s->tensor, it->depth);
      }
  }
  return out;
}

GPtrArray *
nn_module_named_parameters (NnModule *m)
{
  return collect_tensors (m, WANT_PARAMS, TRUE);
}

GPtrArray *
nn_module_named_buffers (NnModule *m)
{
  return collect_tensors (m, WANT_BUFFERS, TRUE);
}

GPtrArray *
nn_module_state_dict (NnModule *m)
{
  return collect_tensors (m, WANT_PARAMS | WANT_BUFFERS | WANT_PERSISTENT, FALSE);
}

gint64
nn_module_count_parameters (NnModule *m)
{
  g_autoptr (GPtrArray) ps = nn_module_named_parameters (m);
  gint64 n = 0;
  for (guint i = 0; i < ps->len; i++)
    n += nn_tensor_numel (((NnNamedItem *) ps->pdata[i])->tensor);
  return n;
}

GPtrArray *
nn_module_glob (NnModule *m, const char *pattern, const char *what,
                GError **error)
{
  g_return_val_if_fail (pattern != NULL, NULL);
  GPtrArray *all;
  if (what == NULL || strcmp (what, "modules") == 0)
    all = nn_module_named_modules (m);
  else if (strcmp (what, "parameters") == 0)
    all = nn_module_named_parameters (m);
  else if (strcmp (what, "buffers") == 0)
    all = nn_module_named_buffers (m);
  else if (strcmp (what, "tensors") == 0) {
    all = nn_module_named_parameters (m);
    g_autoptr (GPtrArray) bufs = nn_module_named_buffers (m);
    for (guint i = 0; i < bufs->len; i++)
      g_ptr_array_add (all, g_steal_pointer (&bufs->pdata[i]));
    g_ptr_array_set_free_func (bufs, NULL);
  } else {
    g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_BAD_REFERENCE,
                 "glob: unknown selection '%s' (expected modules, parameters, "
                 "buffers or tensors)", what);
    return NULL;
  }
  g_autoptr (GPatternSpec) spec = g_pattern_spec_new (pattern);
  GPtrArray *out = nn_named_list_new ();
  for (guint i = 0; i < all->len; i++) {
    NnNamedItem *it = all->pdata[i];
    /* The root's empty path matches only an empty pattern. */
    if (*it->name == '\0' && *pattern != '\0')
      continue;
    if (g_pattern_spec_match_string (spec, it->name))
      nn_named_list_add (out, it->name, it->module, it->tensor, it->depth);
  }
  g_ptr_array_unref (all);
  return out;
}
