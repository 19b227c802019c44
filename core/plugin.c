/* nnkit core: the NnPlugin object: its lifetime, which keeps the shared
 * object loaded, and the type registrations its init stages. */
#include "registry-private.h"

#include <dlfcn.h>
#include <string.h>

/* --- lifetime ----------------------------------------------------------- */

NnPlugin *
nn_plugin_new (void *handle, const char *path, const char *canonical,
               const NnPluginDesc *desc)
{
  NnPlugin *p = g_new0 (NnPlugin, 1);

  p->ref_count = 1;
  p->handle = handle;
  p->path = g_strdup (path);
  p->canonical = g_strdup (canonical);
  /* Copied so that lists stay valid independently of the plugin. */
  p->name = g_strdup (desc->name);
  p->version = g_strdup (desc->version ? desc->version : "");
  p->license = g_strdup (desc->license ? desc->license : "");
  p->description = g_strdup (desc->description ? desc->description : "");
  p->types = g_ptr_array_new ();
  return p;
}

/* Returns: (transfer full) @plugin.  MT safe. */
NnPlugin *
nn_plugin_ref (NnPlugin *plugin)
{
  g_return_val_if_fail (plugin != NULL, NULL);
  g_atomic_int_inc (&plugin->ref_count);
  return plugin;
}

/* Drops a reference; the last one dlclose()s the shared object, so every
 * pointer into it (types, schemas) must be gone by then.  MT safe. */
void
nn_plugin_unref (NnPlugin *plugin)
{
  if (!plugin || !g_atomic_int_dec_and_test (&plugin->ref_count))
    return;

  g_ptr_array_unref (plugin->types);
  g_clear_error (&plugin->stage_error);
  g_clear_pointer (&plugin->staged_names, g_hash_table_unref);
  if (plugin->handle)
    dlclose (plugin->handle);
  g_free (plugin->path);
  g_free (plugin->canonical);
  g_free (plugin->name);
  g_free (plugin->version);
  g_free (plugin->license);
  g_free (plugin->description);
  g_free (plugin);
}

/* Returns: (transfer none) the plugin's name.  MT safe. */
const char *
nn_plugin_get_name (NnPlugin *plugin)
{
  g_return_val_if_fail (plugin != NULL, NULL);
  return plugin->name;
}

/* Returns: (transfer none) the file @plugin was loaded from.  MT safe. */
const char *
nn_plugin_get_path (NnPlugin *plugin)
{
  g_return_val_if_fail (plugin != NULL, NULL);
  return plugin->path;
}

/* Returns: (transfer none) (nullable) the loading registry, NULL once it
 * is finalized.  MT safe. */
NnRegistry *
nn_plugin_get_registry (NnPlugin *plugin)
{
  g_return_val_if_fail (plugin != NULL, NULL);
  return g_atomic_pointer_get (&plugin->registry);
}

/* --- registrations, staged until the plugin commits --------------------- */

static void
stage_fail (NnPlugin *plugin, GError **error, GError *e)
{
  if (!plugin->stage_error)
    plugin->stage_error = g_error_copy (e);
  g_propagate_error (error, e);
}

/* Registers @type (transfer none; must outlive the plugin's loading,
 * normally static const) from within @plugin's init.  The type becomes
 * visible only if the whole plugin loads.  Called on the loading thread. */
gboolean
nn_plugin_register_type (NnPlugin *plugin, const NnLayerType *type,
                         GError **error)
{
  GError *e = NULL;
  NnRegistry *reg;
  NnTypeEntry *other;
  char *problem;
  guint index;

  g_return_val_if_fail (plugin != NULL, FALSE);

  if (!plugin->in_init)
    {
      nn_load_error (error, plugin->path, NN_PLUGIN_ERROR_INVALID,
                     "plugin '%s' registered layer type '%s' outside its "
                     "init function", plugin->name,
                     type && type->struct_size >= NN_TYPE_MIN_SIZE
                     && type->name ? type->name : "?");
      return FALSE;
    }

  index = plugin->types->len;
  problem = type ? nn_layer_type_problem (type) : g_strdup ("it is NULL");
  if (problem)
    {
      if (type && type->struct_size >= NN_TYPE_MIN_SIZE && type->name
          && *type->name)
        nn_load_error (&e, plugin->path, NN_PLUGIN_ERROR_INVALID,
                       "plugin '%s': invalid layer type '%s': %s",
                       plugin->name, type->name, problem);
      else
        nn_load_error (&e, plugin->path, NN_PLUGIN_ERROR_INVALID,
                       "plugin '%s': invalid layer type #%u: %s",
                       plugin->name, index + 1, problem);
      g_free (problem);
      stage_fail (plugin, error, e);
      return FALSE;
    }

  /* Names and aliases share one namespace, across plugins and within. */
  const char *mine[64];
  guint n_mine = 0;
  mine[n_mine++] = type->name;
  for (guint k = 0; type->aliases && type->aliases[k] && n_mine < 64; k++)
    mine[n_mine++] = type->aliases[k];
  if (!plugin->staged_names)
    plugin->staged_names = g_hash_table_new (g_str_hash, g_str_equal);
  for (guint k = 0; k < n_mine && !e; k++)
    {
      const NnLayerType *t = g_hash_table_lookup (plugin->staged_names, mine[k]);
      if (t)
        nn_load_error (&e, plugin->path, NN_PLUGIN_ERROR_DUPLICATE_TYPE,
                       "plugin '%s' registers layer type %s'%s' twice "
                       "(types '%s' and '%s')", plugin->name,
                       k ? "alias " : "", mine[k], t->name, type->name);
    }
  if (e)
    {
      stage_fail (plugin, error, e);
      return FALSE;
    }

  reg = plugin->registry;
  g_mutex_lock (&reg->lock);
  for (guint k = 0; k < n_mine && !e; k++)
    {
      other = nn_registry_find_locked (reg, mine[k]);
      /* Another provider of this very type is fine unless it ties on
       * rank (providers.c); aliases stay unique. */
      if (other && k == 0 && strcmp (other->type->name, mine[0]) == 0)
        other = nn_providers_conflict_locked (reg, type);
      if (other)
        nn_load_error (&e, plugin->path, NN_PLUGIN_ERROR_DUPLICATE_TYPE,
                       "plugin '%s' registers layer type %s'%s', which "
                       "plugin '%s' (%s) already registered%s", plugin->name,
                       k ? "alias " : "", mine[k], other->plugin->name,
                       other->plugin->path, k ? "" : " at the same rank");
    }
  g_mutex_unlock (&reg->lock);
  if (e)
    {
      stage_fail (plugin, error, e);
      return FALSE;
    }

  g_ptr_array_add (plugin->types, (gpointer) type);
  for (guint k = 0; k < n_mine; k++)
    g_hash_table_insert (plugin->staged_names, (gpointer) mine[k], (gpointer) type);
  return TRUE;
}
