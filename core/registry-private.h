/* nnkit core: the registry's and plugins' private structures, shared by
 * the files that load, validate and discover plugins.  Never installed. */
#ifndef NN_REGISTRY_PRIVATE_H
#define NN_REGISTRY_PRIVATE_H

#include "nn-private.h"

#include <stddef.h>
#include <sys/stat.h>

G_BEGIN_DECLS

/* The smallest struct a type's name can be read from, for messages about
 * a vtable of the wrong size. */
#define NN_TYPE_MIN_SIZE \
  (offsetof (NnLayerType, name) + sizeof (gpointer))
/* The NnLayerType sizes of released ABI 2 minors, the only ones accepted:
 * 2.0 is this header's. */
#define NN_TYPE_SIZE_2_0 sizeof (NnLayerType)

struct _NnPlugin {
  gint ref_count;          /* atomic */
  NnRegistry *registry;    /* (nullable) not a reference; atomic access */
  void *handle;            /* dlopen() handle, closed with the last ref */
  char *path;              /* the file as found */
  char *canonical;         /* realpath() of @path, for "seen before" */
  char *name;
  char *version;
  char *license;
  char *description;
  GPtrArray *types;        /* const NnLayerType *, registration order */
  /* Touched only by the loading thread while init runs: registrations are
   * staged in @types and committed only if the whole plugin is good. */
  gboolean in_init;
  GError *stage_error;     /* first failed registration */
  /* (nullable) every staged type's name and aliases -> its type, so a
   * plugin of hundreds of ops checks its own names in O(1) each (the
   * pairwise check took 0.66 ms of every load of the ops plugin). */
  GHashTable *staged_names;
};

typedef struct {
  const NnLayerType *type;
  NnPlugin *plugin;        /* not a reference: reg->plugins holds one */
} NnTypeEntry;

typedef struct {
  char *path;
  char *cause;             /* the message without its "path: " prefix */
  GQuark domain;
  int code;
} NnFailureRec;

typedef struct {
  char *dir;
  gboolean missing;
  gboolean with_subdirs;   /* the build tree: plugins/<family>/ too */
} NnSearchedDir;

struct _NnRegistry {
  gint ref_count;          /* atomic */
  /* @lock guards every field below.  @load_lock serialises loading, so
   * discovery order is deterministic; plugin init runs under @load_lock
   * only, so lookups from other threads go on meanwhile. */
  GMutex lock;
  GMutex load_lock;
  GPtrArray *extra_dirs;   /* char *, from nn_registry_add_path() */
  gboolean use_default_dir;
  GPtrArray *plugins;      /* NnPlugin *, load order; holds references */
  GHashTable *types;       /* type name -> NnTypeEntry * */
  GHashTable *aliases;     /* alias -> NnTypeEntry * (owned by @types) */
  GPtrArray *failures;     /* NnFailureRec *, load order */
  GHashTable *seen;        /* canonical paths of files tried */
  GPtrArray *searched;     /* NnSearchedDir *, for unknown-type errors */
  /* providers.c: type name -> GPtrArray of NnTypeEntry * (owned), every
   * provider in load order; @types holds the highest-ranked one.  Both
   * NULL until first needed. */
  GHashTable *providers;
  struct NnProviderRulesState *provider_rules;
  /* registry_lazy.c: NnPendingPlugin *, discovery order: files the plugin
   * index knows, found by a scan and not loaded yet. */
  gboolean lazy;
  GPtrArray *pending;
  /* canonical path -> 1 + its position in discovery order, so @plugins
   * stays in discovery order whenever a plugin loads. */
  GHashTable *discovered;
};

typedef struct _NnPendingPlugin NnPendingPlugin;

/* registry.c */
/* The entry whose name or alias is @name, or NULL.  Call with @reg->lock. */
NnTypeEntry *nn_registry_find_locked (NnRegistry *reg, const char *name);
/* strcmp() for qsort() over an array of strings. */
int nn_str_ptr_compare (gconstpointer a, gconstpointer b);

/* plugin.c */
/* Returns: (transfer full) a plugin for @handle (ownership taken), not yet
 * part of any registry; the strings of @desc are copied. */
NnPlugin *nn_plugin_new (void *handle, const char *path, const char *canonical,
                         const NnPluginDesc *desc);

/* plugin_validate.c */
/* Returns: (transfer full) (nullable) what is wrong with @t, NULL when it
 * can be registered. */
char *nn_layer_type_problem (const NnLayerType *t);

/* plugin_load.c */
/* Sets @error to "@path: <cause>" in NN_PLUGIN_ERROR, so every load error
 * starts with the file it is about. */
/* plugin_probe.c: FALSE with @error set if @path crashed, exited or hung
 * when loaded in the nn-plugin-scanner helper (cached per file). */
gboolean nn_plugin_probe (const char *path, const char *canonical,
                          GError **error);
/* discovery.c: (transfer none) the build tree when this libnnkit runs
 * uninstalled from it, else NULL.  MT safe. */
const char *nn_registry_build_root (void);
/* save_protocol.c */
gboolean nn_write_all_fd (int fd, const void *buf, gsize len);
void nn_load_error (GError **error, const char *path, int code,
                    const char *fmt, ...) G_GNUC_PRINTF (4, 5);
/* Returns: (transfer full) (nullable) realpath() of @path. */
char *nn_canonical_path (const char *path);
/* Records @e as @path's failure, replacing an earlier one of that path. */
void nn_registry_record_failure_locked (NnRegistry *reg, const char *path,
                                        const GError *e);
/* Loads @path unless that very file is loaded already.  Called with
 * @reg->load_lock held; failures are recorded. */
gboolean nn_registry_load_file_serialised (NnRegistry *reg, const char *path,
                                           GError **error);

/* plugin_index.c */
/* TRUE with *@plugin_name, *@types (type name -> effective rank, as
 * GINT_TO_POINTER) and *@aliases (a set), all transfer full, when the
 * index holds an entry for this very file (@st: its stat()). */
gboolean nn_plugin_index_lookup (const char *canonical, const struct stat *st,
                                 char **plugin_name, GHashTable **types,
                                 GHashTable **aliases);
/* Records what @plugin, just loaded, registers; best effort. */
void nn_plugin_index_store (NnPlugin *plugin);

/* registry_lazy.c */
gboolean nn_registry_lazy_default (void);
void nn_pending_plugin_free (gpointer p);
/* TRUE when a deferred plugin registers @name (any deferred plugin when
 * @name is NULL).  Call with @reg->lock. */
gboolean nn_registry_lazy_wants_locked (NnRegistry *reg, const char *name);
/* Loads the deferred plugins registering @name (all when NULL), after the
 * earlier ones that share a name with them.  Takes @reg->load_lock. */
void nn_registry_lazy_load (NnRegistry *reg, const char *name);
/* +1 when this thread starts running a plugin's init, -1 after. */
void nn_registry_lazy_init_depth (int delta);
/* Before @canonical is loaded: loads the deferred plugins that must load
 * before it (every deferred one when @everything_before, as for a file the
 * index does not know) and drops @canonical from the deferred list.  Call
 * with @reg->load_lock held. */
void nn_registry_lazy_before_file (NnRegistry *reg, const char *canonical,
                                   gboolean everything_before);
/* Notes that the scan found @canonical now (first time only). */
void nn_registry_note_discovered (NnRegistry *reg, const char *canonical);
/* Defers @path when the registry is lazy and the index knows the file:
 * TRUE then, and the file counts as seen.  Call with @reg->load_lock. */
gboolean nn_registry_defer (NnRegistry *reg, const char *path,
                            const char *canonical);

/* providers.c */
/* Returns: (transfer none) (nullable) the provider of @type's name that
 * @type would tie with (same effective rank), so registering it is a
 * duplicate. */
NnTypeEntry *nn_providers_conflict_locked (NnRegistry *reg,
                                           const NnLayerType *type);
/* Adds @type of @plugin as a provider; @types keeps the top rank. */
void nn_providers_add_locked (NnRegistry *reg, const NnLayerType *type,
                              NnPlugin *plugin);
/* Frees the provider lists and rules of a dying registry. */
void nn_providers_clear (NnRegistry *reg);
/* The provider of @type_name for a module with @config (transfer none,
 * nullable) at @path: see include/nnkit/providers.h.  @plugin_out: (out)
 * (transfer none).  MT safe. */
const NnLayerType *nn_providers_choose (NnRegistry *reg, const char *type_name,
                                        JsonObject *config, const char *path,
                                        NnPlugin **plugin_out, GError **error);

G_END_DECLS

#endif
