/* nnkit: the plugin registry.
 *
 * The registry dlopen()s plugins (RTLD_NOW | RTLD_LOCAL) and maps layer
 * type names to the plugins providing them.  Discovery order:
 *   1. directories added with nn_registry_add_path();
 *   2. NN_PLUGIN_PATH, a colon-separated list;
 *   3. the build tree's plugins when libnnkit runs uninstalled, otherwise
 *      the installed directory $libdir/nnkit-1/plugins.
 * The first plugin found with a given name wins; later ones are reported
 * as failures.  A plugin that fails to load is recorded with its reason and
 * the others load anyway.  A plugin stays loaded while the registry or any
 * module of its types is alive.
 *
 * All registry functions are MT safe.
 */
#ifndef NNKIT_REGISTRY_H
#define NNKIT_REGISTRY_H

#include <glib.h>
#include <nnkit/export.h>
#include <nnkit/error.h>

G_BEGIN_DECLS

typedef struct _NnRegistry NnRegistry;
typedef struct _NnLayerType NnLayerType;
typedef struct _NnPlugin NnPlugin;

/* Returns: (transfer full) an empty registry; nothing is loaded yet. */
NN_API NnRegistry *nn_registry_new (void);
NN_API NnRegistry *nn_registry_ref (NnRegistry *reg);
NN_API void nn_registry_unref (NnRegistry *reg);

/* Adds a directory searched before NN_PLUGIN_PATH (e.g. --plugin-path).
 * Only affects a later nn_registry_load_default(). */
NN_API void nn_registry_add_path (NnRegistry *reg, const char *dir);
/* Leaves out the installed / build-tree directory (step 3); for tests
 * that want exactly their own plugin paths. */
NN_API void nn_registry_set_use_default_dir (NnRegistry *reg, gboolean use);

/* Scans every directory in discovery order and loads each file with the
 * module suffix (a lazy registry defers the files the plugin index knows
 * until a lookup needs them: see nn_registry_set_lazy).  Per-file failures
 * are recorded (see nn_registry_get_failures) and do not make this fail;
 * it returns FALSE only if a directory given with add_path cannot be read.
 * Calling it again loads only files not seen before. */
NN_API gboolean nn_registry_load_default (NnRegistry *reg, GError **error);

/* Loads one plugin file.  On failure the error names @path and the cause;
 * the failure is also recorded. */
NN_API gboolean nn_registry_load_file (NnRegistry *reg, const char *path,
                                       GError **error);

/* Returns: (transfer none) (nullable) the type called @name, or NULL with
 * NN_PLUGIN_ERROR_UNKNOWN_TYPE listing the known types and the plugins
 * that failed to load.  The pointer stays valid while @reg lives. */
NN_API const NnLayerType *nn_registry_lookup_type (NnRegistry *reg,
                                                   const char *name,
                                                   GError **error);

typedef struct {
  char *name;         /* plugin name */
  char *version;
  char *license;
  char *description;
  char *path;         /* file it was loaded from */
  char **type_names;  /* NULL-terminated, registration order */
} NnPluginInfo;

typedef struct {
  char *path;         /* file that failed */
  char *message;      /* the GError message, naming the file and cause */
  GQuark domain;
  int code;
} NnPluginFailure;

/* Returns: (transfer full) (element-type NnPluginInfo) loaded plugins in
 * load order; free with g_ptr_array_unref. */
NN_API GPtrArray *nn_registry_list_plugins (NnRegistry *reg);
/* Returns: (transfer full) (element-type NnPluginFailure) in load order. */
NN_API GPtrArray *nn_registry_get_failures (NnRegistry *reg);
/* Returns: (transfer full) NULL-terminated sorted type names. */
NN_API char **nn_registry_list_types (NnRegistry *reg);
/* Returns: (transfer full) NULL-terminated sorted aliases of the type
 * named @type_name, whichever provider registered them (aliases are one
 * namespace: every provider of the type answers to them).  MT safe. */
NN_API char **nn_registry_get_aliases (NnRegistry *reg, const char *type_name);
/* Like nn_registry_lookup_type, also returning (transfer none) the
 * plugin that provides the type. */
NN_API const NnLayerType *nn_registry_resolve_type (NnRegistry *reg,
                                                    const char *name,
                                                    NnPlugin **plugin_out,
                                                    GError **error);
/* Returns: (transfer none) (nullable) the registry that loaded @plugin,
 * NULL once that registry is gone (its plugins stay loaded while modules
 * of theirs live). */
NN_API NnRegistry *nn_plugin_get_registry (NnPlugin *plugin);
/* Plugins are reference-counted: a module holds its type's plugin, so the
 * shared object stays loaded while any of its modules exists. */
NN_API NnPlugin *nn_plugin_ref (NnPlugin *plugin);
NN_API void nn_plugin_unref (NnPlugin *plugin);
/* Returns: (transfer none) the file @plugin was loaded from. */
NN_API const char *nn_plugin_get_path (NnPlugin *plugin);

/* Returns: (transfer none) the installed plugin directory. */
NN_API const char *nn_registry_installed_dir (void);

/* Returns: (transfer full) NULL-terminated directories searched so far
 * by nn_registry_load_default(), in discovery order; *@missing_out
 * (nullable, transfer full) flags those that did not exist.  MT safe. */
NN_API char **nn_registry_get_search_path (NnRegistry *reg,
                                           gboolean **missing_out);

/* Loading on demand (docs/PLUGIN_LOADING.md).  A lazy registry (the
 * default; NN_PLUGIN_LAZY=0 turns it off) does not dlopen() a plugin file
 * that the plugin index in $XDG_CACHE_HOME/nnkit/plugin-index/ recorded
 * from an earlier load of that very file (path, size, mtime): the scan
 * defers it, and the first lookup of one of its type names or aliases
 * loads it.  Listing plugins, types or failures, and looking up a name no
 * plugin is known to register, load every deferred plugin first, so the
 * answers are those of an eager scan.  FALSE loads the deferred plugins
 * now and defers none later.  MT safe. */
NN_API void nn_registry_set_lazy (NnRegistry *reg, gboolean lazy);
/* Returns: (transfer full) NULL-terminated paths of the plugin files found
 * and deferred, not loaded yet, in discovery order.  Loads nothing.  MT
 * safe. */
NN_API char **nn_registry_list_deferred (NnRegistry *reg);
/* Loads every deferred plugin (failures are recorded as usual).  MT safe. */
NN_API void nn_registry_load_deferred (NnRegistry *reg);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (NnRegistry, nn_registry_unref)

G_END_DECLS

#endif
