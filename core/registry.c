/* nnkit core: the registry object, its table of layer types and what it
 * answers about them: lookups, listings and the unknown-type message. */
#include "registry-private.h"

#include <stdlib.h>
#include <string.h>

/* --- small helpers ------------------------------------------------------ */

static void
searched_dir_free (gpointer p)
{
  NnSearchedDir *s = p;

  g_free (s->dir);
  g_free (s);
}

static void
failure_rec_free (gpointer p)
{
  NnFailureRec *f = p;

  g_free (f->path);
  g_free (f->cause);
  g_free (f);
}

/* --- the registry object ------------------------------------------------ */

NnRegistry *
nn_registry_new (void)
{
  NnRegistry *reg = g_new0 (NnRegistry, 1);

  reg->ref_count = 1;
  g_mutex_init (&reg->lock);
  g_mutex_init (&reg->load_lock);
  reg->extra_dirs = g_ptr_array_new_with_free_func (g_free);
  reg->use_default_dir = TRUE;
  reg->plugins = g_ptr_array_new ();
  reg->types = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, g_free);
  reg->aliases = g_hash_table_new (g_str_hash, g_str_equal);
  reg->failures = g_ptr_array_new_with_free_func (failure_rec_free);
  reg->seen = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  reg->searched = g_ptr_array_new_with_free_func (searched_dir_free);
  reg->lazy = nn_registry_lazy_default ();
  reg->pending = g_ptr_array_new_with_free_func (nn_pending_plugin_free);
  reg->discovered = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                           NULL);
  return reg;
}

/* Returns: (transfer full) @reg.  MT safe. */
NnRegistry *
nn_registry_ref (NnRegistry *reg)
{
  g_return_val_if_fail (reg != NULL, NULL);
  g_atomic_int_inc (&reg->ref_count);
  return reg;
}

/* Drops a reference.  The last one detaches the plugins (their registry
 * pointer becomes NULL) and drops the registry's references on them; a
 * plugin whose modules are still alive stays loaded.  MT safe. */
void
nn_registry_unref (NnRegistry *reg)
{
  if (!reg || !g_atomic_int_dec_and_test (&reg->ref_count))
    return;

  nn_providers_clear (reg);
  g_hash_table_unref (reg->aliases);
  g_hash_table_unref (reg->types);
  for (guint i = 0; i < reg->plugins->len; i++)
    {
      NnPlugin *p = g_ptr_array_index (reg->plugins, i);
      g_atomic_pointer_set (&p->registry, NULL);
      nn_plugin_unref (p);
    }
  g_ptr_array_unref (reg->plugins);
  g_ptr_array_unref (reg->extra_dirs);
  g_ptr_array_unref (reg->failures);
  g_hash_table_unref (reg->seen);
  g_ptr_array_unref (reg->searched);
  g_ptr_array_unref (reg->pending);
  g_hash_table_unref (reg->discovered);
  g_mutex_clear (&reg->lock);
  g_mutex_clear (&reg->load_lock);
  g_free (reg);
}

/* @dir (transfer none) is copied.  MT safe. */
void
nn_registry_add_path (NnRegistry *reg, const char *dir)
{
  g_return_if_fail (reg != NULL);
  g_return_if_fail (dir != NULL);

  g_mutex_lock (&reg->lock);
  g_ptr_array_add (reg->extra_dirs, g_strdup (dir));
  g_mutex_unlock (&reg->lock);
}

/* MT safe. */
void
nn_registry_set_use_default_dir (NnRegistry *reg, gboolean use)
{
  g_return_if_fail (reg != NULL);

  g_mutex_lock (&reg->lock);
  reg->use_default_dir = !!use;
  g_mutex_unlock (&reg->lock);
}

/* --- lookups ------------------------------------------------------------ */

int
nn_str_ptr_compare (gconstpointer a, gconstpointer b)
{
  return strcmp (*(const char *const *) a, *(const char *const *) b);
}

static char **
sorted_type_names_locked (NnRegistry *reg)
{
  guint n = 0;
  char **names = (char **) g_hash_table_get_keys_as_array (reg->types, &n);
  char **copy = g_new0 (char *, n + 1);

  for (guint i = 0; i < n; i++)
    copy[i] = g_strdup (names[i]);
  g_free (names);
  qsort (copy, n, sizeof (char *), nn_str_ptr_compare);
  return copy;
}

/* The closest known name, if close enough to be a plausible typo.  Case
 * is ignored so that "conv2d" finds "Conv2d". */
static const char *
closest_name (char **known, const char *name)
{
  const char *best = NULL;
  guint best_d = G_MAXUINT;
  guint limit = MAX (1, (guint) strlen (name) / 3);
  char *lower = g_ascii_strdown (name, -1);

  for (guint i = 0; known[i]; i++)
    {
      char *k = g_ascii_strdown (known[i], -1);
      guint d = nn_edit_distance (k, lower);
      g_free (k);
      if (d < best_d)
        {
          best_d = d;
          best = known[i];
        }
    }
  g_free (lower);
  return best_d <= limit ? best : NULL;
}

static char *
unknown_type_message_locked (NnRegistry *reg, const char *name)
{
  GString *msg = g_string_new (NULL);
  char **known = sorted_type_names_locked (reg);
  const char *close = closest_name (known, name);

  g_string_append_printf (msg, "unknown layer type '%s'", name);
  if (close)
    g_string_append_printf (msg, " (did you mean '%s'?)", close);

  g_string_append (msg, " (known types: ");
  if (!known[0])
    g_string_append (msg, "none");
  for (guint i = 0; known[i]; i++)
    g_string_append_printf (msg, "%s%s", i ? ", " : "", known[i]);

  g_string_append (msg, "; plugins that failed to load: ");
  if (reg->failures->len == 0)
    g_string_append (msg, "none");
  for (guint i = 0; i < reg->failures->len; i++)
    {
      NnFailureRec *f = g_ptr_array_index (reg->failures, i);
      g_string_append_printf (msg, "%s%s (%s)", i ? ", " : "", f->path,
                              f->cause);
    }

  /* Saying where we looked answers most "why is my plugin not found". */
  if (reg->searched->len > 0)
    {
      g_string_append (msg, "; searched: ");
      for (guint i = 0; i < reg->searched->len; i++)
        {
          NnSearchedDir *s = g_ptr_array_index (reg->searched, i);
          g_string_append_printf (msg, "%s%s%s%s", i ? ", " : "", s->dir,
                                  s->with_subdirs ? " and its subdirectories" : "",
                                  s->missing ? " (missing)" : "");
        }
    }
  g_string_append_c (msg, ')');
  g_strfreev (known);
  return g_string_free (msg, FALSE);
}

NnTypeEntry *
nn_registry_find_locked (NnRegistry *reg, const char *name)
{
  NnTypeEntry *e = g_hash_table_lookup (reg->types, name);
  return e ? e : g_hash_table_lookup (reg->aliases, name);
}

/* @plugin_out: (out) (optional) (transfer none).  MT safe. */
const NnLayerType *
nn_registry_resolve_type (NnRegistry *reg, const char *name,
                          NnPlugin **plugin_out, GError **error)
{
  NnTypeEntry *entry;
  const NnLayerType *type = NULL;
  char *msg = NULL;

  g_return_val_if_fail (reg != NULL, NULL);
  g_return_val_if_fail (name != NULL, NULL);

  if (plugin_out)
    *plugin_out = NULL;
  /* Deferred plugins registering @name load first: one of them may rank
   * above a provider already loaded. */
  nn_registry_lazy_load (reg, name);
  g_mutex_lock (&reg->lock);
  entry = nn_registry_find_locked (reg, name);
  if (!entry && nn_registry_lazy_wants_locked (reg, NULL))
    {
      /* Not where the index says: it may be stale, and the message below
       * lists every type, so load everything and look again. */
      g_mutex_unlock (&reg->lock);
      nn_registry_lazy_load (reg, NULL);
      g_mutex_lock (&reg->lock);
      entry = nn_registry_find_locked (reg, name);
    }
  if (entry && strcmp (entry->type->name, name) != 0
      && nn_registry_lazy_wants_locked (reg, entry->type->name))
    {
      /* Found by an alias: providers that declare only the type's name
       * (oneDNN's copies) must be loaded too.  The name lives in the
       * plugin, which the registry keeps loaded. */
      const char *type_name = entry->type->name;
      g_mutex_unlock (&reg->lock);
      nn_registry_lazy_load (reg, type_name);
      g_mutex_lock (&reg->lock);
      entry = nn_registry_find_locked (reg, name);
    }
  if (entry)
    {
      type = entry->type;
      if (plugin_out)
        *plugin_out = entry->plugin;
    }
  else
    msg = unknown_type_message_locked (reg, name);
  g_mutex_unlock (&reg->lock);

  if (msg)
    {
      g_set_error_literal (error, NN_PLUGIN_ERROR,
                           NN_PLUGIN_ERROR_UNKNOWN_TYPE, msg);
      g_free (msg);
    }
  return type;
}

/* MT safe. */
const NnLayerType *
nn_registry_lookup_type (NnRegistry *reg, const char *name, GError **error)
{
  return nn_registry_resolve_type (reg, name, NULL, error);
}

/* Returns: (transfer full).  MT safe. */
char **
nn_registry_list_types (NnRegistry *reg)
{
  char **names;

  g_return_val_if_fail (reg != NULL, NULL);
  nn_registry_lazy_load (reg, NULL);
  g_mutex_lock (&reg->lock);
  names = sorted_type_names_locked (reg);
  g_mutex_unlock (&reg->lock);
  return names;
}

static void
add_aliases (GPtrArray *out, const NnLayerType *t)
{
  for (guint i = 0; t && t->aliases && t->aliases[i]; i++) {
    gboolean seen = FALSE;
    for (guint k = 0; k < out->len && !seen; k++)
      seen = strcmp (out->pdata[k], t->aliases[i]) == 0;
    if (!seen)
      g_ptr_array_add (out, g_strdup (t->aliases[i]));
  }
}

/* Every provider of the type is asked, in rank order, so a provider that
 * declares no aliases of its own (oneDNN's copies) hides none. */
char **
nn_registry_get_aliases (NnRegistry *reg, const char *type_name)
{
  GPtrArray *out = g_ptr_array_new ();
  GPtrArray *list;
  NnTypeEntry *top;

  g_return_val_if_fail (reg != NULL && type_name != NULL, NULL);
  nn_registry_lazy_load (reg, type_name);
  g_mutex_lock (&reg->lock);
  list = reg->providers ? g_hash_table_lookup (reg->providers, type_name) : NULL;
  top = g_hash_table_lookup (reg->types, type_name);
  if (top)
    add_aliases (out, top->type);
  for (guint i = 0; list && i < list->len; i++)
    add_aliases (out, ((NnTypeEntry *) list->pdata[i])->type);
  g_mutex_unlock (&reg->lock);
  g_ptr_array_add (out, NULL);
  return (char **) g_ptr_array_free (out, FALSE);
}

static void
plugin_info_free (gpointer p)
{
  NnPluginInfo *info = p;

  g_free (info->name);
  g_free (info->version);
  g_free (info->license);
  g_free (info->description);
  g_free (info->path);
  g_strfreev (info->type_names);
  g_free (info);
}

static void
plugin_failure_free (gpointer p)
{
  NnPluginFailure *f = p;

  g_free (f->path);
  g_free (f->message);
  g_free (f);
}

/* Returns: (transfer full) (element-type NnPluginInfo).  MT safe. */
GPtrArray *
nn_registry_list_plugins (NnRegistry *reg)
{
  GPtrArray *out;

  g_return_val_if_fail (reg != NULL, NULL);
  nn_registry_lazy_load (reg, NULL);
  out = g_ptr_array_new_with_free_func (plugin_info_free);
  g_mutex_lock (&reg->lock);
  for (guint i = 0; i < reg->plugins->len; i++)
    {
      NnPlugin *p = g_ptr_array_index (reg->plugins, i);
      NnPluginInfo *info = g_new0 (NnPluginInfo, 1);

      info->name = g_strdup (p->name);
      info->version = g_strdup (p->version);
      info->license = g_strdup (p->license);
      info->description = g_strdup (p->description);
      info->path = g_strdup (p->path);
      info->type_names = g_new0 (char *, p->types->len + 1);
      for (guint j = 0; j < p->types->len; j++)
        {
          const NnLayerType *t = g_ptr_array_index (p->types, j);
          info->type_names[j] = g_strdup (t->name);
        }
      g_ptr_array_add (out, info);
    }
  g_mutex_unlock (&reg->lock);
  return out;
}

/* Returns: (transfer full) (element-type NnPluginFailure).  MT safe. */
GPtrArray *
nn_registry_get_failures (NnRegistry *reg)
{
  GPtrArray *out;

  g_return_val_if_fail (reg != NULL, NULL);
  /* A deferred plugin loaded before, unchanged, yet loading it may fail
   * now (a name another file took since): load them all to know. */
  nn_registry_lazy_load (reg, NULL);
  out = g_ptr_array_new_with_free_func (plugin_failure_free);
  g_mutex_lock (&reg->lock);
  for (guint i = 0; i < reg->failures->len; i++)
    {
      NnFailureRec *rec = g_ptr_array_index (reg->failures, i);
      NnPluginFailure *f = g_new0 (NnPluginFailure, 1);

      f->path = g_strdup (rec->path);
      f->message = g_strdup_printf ("%s: %s", rec->path, rec->cause);
      f->domain = rec->domain;
      f->code = rec->code;
      g_ptr_array_add (out, f);
    }
  g_mutex_unlock (&reg->lock);
  return out;
}
