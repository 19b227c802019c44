/* nnkit core: the plugin registry.
 *
 * Finds plugin files, dlopen()s them, checks their descriptor and layer
 * types, and maps type names to the plugins providing them.  Every
 * failure is recorded with its file and cause so that the other plugins
 * still load and an unknown type can say why it is missing.  See
 * docs/PLUGIN_LOADING.md.
 */
#include "nn-private.h"

#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef NN_BUILD_ROOT
#error "NN_BUILD_ROOT must be defined by the build"
#endif
#ifndef NN_INSTALLED_PLUGIN_DIR
#error "NN_INSTALLED_PLUGIN_DIR must be defined by the build"
#endif

/* The loadable-module suffix (GModule's G_MODULE_SUFFIX on ELF systems). */
#define NN_MODULE_SUFFIX ".so"

/* Descriptor fields every ABI version shares: enough to read the versions. */
#define NN_DESC_HEADER_SIZE \
  (offsetof (NnPluginDesc, abi_minor) + sizeof (guint16))
/* The smallest descriptor of this ABI major: up to the init pointer. */
#define NN_DESC_MIN_SIZE \
  (offsetof (NnPluginDesc, init) + sizeof (gpointer))
/* The smallest layer type: up to create, the last mandatory slot. */
#define NN_TYPE_MIN_SIZE \
  (offsetof (NnLayerType, create) + sizeof (gpointer))

#define NN_LAYER_KNOWN_FLAGS \
  (NN_LAYER_INDEXABLE | NN_LAYER_CONTAINER | NN_LAYER_KEYED)
#define NN_KEY_KNOWN_FLAGS                                              \
  (NN_KEY_OPTIONAL | NN_KEY_NULLABLE | NN_KEY_EXPAND | NN_KEY_OR_ENUM | \
   NN_KEY_HAS_MIN | NN_KEY_HAS_MAX)

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
  GPtrArray *failures;     /* NnFailureRec *, load order */
  GHashTable *seen;        /* canonical paths of files tried */
  GPtrArray *searched;     /* NnSearchedDir *, for unknown-type errors */
};

/* --- small helpers ------------------------------------------------------ */

static void
failure_rec_free (gpointer p)
{
  NnFailureRec *f = p;

  g_free (f->path);
  g_free (f->cause);
  g_free (f);
}

static void
searched_dir_free (gpointer p)
{
  NnSearchedDir *s = p;

  g_free (s->dir);
  g_free (s);
}

/* Sets @error to "@path: <cause>" in NN_PLUGIN_ERROR, so every load error
 * starts with the file it is about. */
static void G_GNUC_PRINTF (4, 5)
set_load_error (GError **error, const char *path, int code,
                const char *fmt, ...)
{
  va_list ap;
  char *cause;

  va_start (ap, fmt);
  cause = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  g_set_error (error, NN_PLUGIN_ERROR, code, "%s: %s", path, cause);
  g_free (cause);
}

static gboolean
has_suffix (const char *name, const char *suffix)
{
  gsize n = strlen (name), s = strlen (suffix);

  return n > s && strcmp (name + n - s, suffix) == 0;
}

static char *
canonical_path (const char *path)
{
  char *real = realpath (path, NULL);
  char *copy;

  if (!real)
    return NULL;
  copy = g_strdup (real);
  free (real);
  return copy;
}

/* Replaces an earlier failure of the same file: retrying a file with
 * nn_registry_load_file() must not list it twice. */
static void
record_failure_locked (NnRegistry *reg, const char *path, const GError *e)
{
  NnFailureRec *f;
  gsize plen = strlen (path);

  for (guint i = 0; i < reg->failures->len; i++)
    {
      NnFailureRec *old = g_ptr_array_index (reg->failures, i);
      if (strcmp (old->path, path) == 0)
        {
          g_ptr_array_remove_index (reg->failures, i);
          break;
        }
    }
  f = g_new0 (NnFailureRec, 1);
  f->path = g_strdup (path);
  if (strncmp (e->message, path, plen) == 0
      && strncmp (e->message + plen, ": ", 2) == 0)
    f->cause = g_strdup (e->message + plen + 2);
  else
    f->cause = g_strdup (e->message);
  f->domain = e->domain;
  f->code = e->code;
  g_ptr_array_add (reg->failures, f);
}

static void
forget_failure_locked (NnRegistry *reg, const char *path)
{
  for (guint i = 0; i < reg->failures->len; i++)
    {
      NnFailureRec *f = g_ptr_array_index (reg->failures, i);
      if (strcmp (f->path, path) == 0)
        {
          g_ptr_array_remove_index (reg->failures, i);
          return;
        }
    }
}

static NnPlugin *
find_plugin_by_name_locked (NnRegistry *reg, const char *name)
{
  for (guint i = 0; i < reg->plugins->len; i++)
    {
      NnPlugin *p = g_ptr_array_index (reg->plugins, i);
      if (strcmp (p->name, name) == 0)
        return p;
    }
  return NULL;
}

static NnPlugin *
find_plugin_by_file_locked (NnRegistry *reg, const char *canonical)
{
  for (guint i = 0; i < reg->plugins->len; i++)
    {
      NnPlugin *p = g_ptr_array_index (reg->plugins, i);
      if (strcmp (p->canonical, canonical) == 0)
        return p;
    }
  return NULL;
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
  reg->failures = g_ptr_array_new_with_free_func (failure_rec_free);
  reg->seen = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  reg->searched = g_ptr_array_new_with_free_func (searched_dir_free);
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

/* --- plugins ------------------------------------------------------------ */

static NnPlugin *
plugin_new (void *handle, const char *path, const char *canonical,
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

/* --- layer type validation ---------------------------------------------- */

static gboolean
json_is_int (JsonNode *n)
{
  return JSON_NODE_HOLDS_VALUE (n) && json_node_get_value_type (n) == G_TYPE_INT64;
}

static gboolean
json_is_number (JsonNode *n)
{
  GType t;

  if (!JSON_NODE_HOLDS_VALUE (n))
    return FALSE;
  t = json_node_get_value_type (n);
  return t == G_TYPE_INT64 || t == G_TYPE_DOUBLE;
}

static gboolean
json_is_string (JsonNode *n)
{
  return JSON_NODE_HOLDS_VALUE (n) && json_node_get_value_type (n) == G_TYPE_STRING;
}

static gboolean
enum_contains (const char *const *values, const char *s)
{
  for (guint i = 0; values && values[i]; i++)
    if (strcmp (values[i], s) == 0)
      return TRUE;
  return FALSE;
}

static gboolean
default_fits_kind (const NnSchemaKey *k, JsonNode *n)
{
  if (JSON_NODE_HOLDS_NULL (n))
    return (k->flags & NN_KEY_NULLABLE) != 0;
  switch (k->kind)
    {
    case NN_KIND_INT:
      return json_is_int (n);
    case NN_KIND_FLOAT:
      return json_is_number (n);
    case NN_KIND_BOOL:
      return JSON_NODE_HOLDS_VALUE (n)
             && json_node_get_value_type (n) == G_TYPE_BOOLEAN;
    case NN_KIND_STRING:
      return json_is_string (n);
    case NN_KIND_ENUM:
      return json_is_string (n)
             && enum_contains (k->enum_values, json_node_get_string (n));
    case NN_KIND_INT_TUPLE:
      if (json_is_int (n))
        return TRUE;
      if (json_is_string (n))
        return (k->flags & NN_KEY_OR_ENUM)
               && enum_contains (k->enum_values, json_node_get_string (n));
      if (JSON_NODE_HOLDS_ARRAY (n))
        {
          JsonArray *a = json_node_get_array (n);
          if (json_array_get_length (a) != k->tuple_len)
            return FALSE;
          for (guint i = 0; i < json_array_get_length (a); i++)
            if (!json_is_int (json_array_get_element (a, i)))
              return FALSE;
          return TRUE;
        }
      return FALSE;
    case NN_KIND_JSON:
      return TRUE;
    }
  return FALSE;
}

/* Returns: (transfer full) (nullable) what is wrong with schema key @i,
 * NULL when it is sane.  Catching a bad schema here names the plugin once
 * instead of failing every module created from it. */
static char *
schema_key_problem (const NnSchemaKey *keys, guint i)
{
  const NnSchemaKey *k = &keys[i];
  gboolean tuple = k->kind == NN_KIND_INT_TUPLE;
  gboolean enums = k->kind == NN_KIND_ENUM || (k->flags & NN_KEY_OR_ENUM);
  JsonNode *def;
  GError *e = NULL;
  char *problem = NULL;

  if (!k->name || !*k->name)
    return g_strdup_printf ("schema key #%u has no name", i);
  for (guint j = 0; j < i; j++)
    if (keys[j].name && strcmp (keys[j].name, k->name) == 0)
      return g_strdup_printf ("schema key '%s' is declared twice", k->name);
  if ((guint) k->kind > NN_KIND_JSON)
    return g_strdup_printf ("schema key '%s' has unknown kind %d", k->name,
                            (int) k->kind);
  if (k->flags & ~NN_KEY_KNOWN_FLAGS)
    return g_strdup_printf ("schema key '%s' has unknown flags 0x%x", k->name,
                            k->flags & ~NN_KEY_KNOWN_FLAGS);
  if (tuple && k->tuple_len == 0)
    return g_strdup_printf ("schema key '%s' is an int tuple of length 0",
                            k->name);
  if (!tuple && (k->flags & (NN_KEY_EXPAND | NN_KEY_OR_ENUM)))
    return g_strdup_printf ("schema key '%s' is a %s but has a flag for int "
                            "tuples (EXPAND or OR_ENUM)", k->name,
                            nn_kind_name (k->kind));
  if (enums && (!k->enum_values || !k->enum_values[0]))
    return g_strdup_printf ("schema key '%s' has no enum values", k->name);
  if ((k->flags & NN_KEY_HAS_MIN) && (k->flags & NN_KEY_HAS_MAX)
      && k->min > k->max)
    return g_strdup_printf ("schema key '%s' has an empty range [%g, %g]",
                            k->name, k->min, k->max);
  if (!k->default_json)
    return NULL;

  def = json_from_string (k->default_json, &e);
  if (!def)
    problem = g_strdup_printf ("schema key '%s' has a default that is not "
                               "JSON: '%s'%s%s", k->name, k->default_json,
                               e ? ": " : "", e ? e->message : "");
  else if (!default_fits_kind (k, def))
    problem = g_strdup_printf ("schema key '%s' has default %s, which is not "
                               "a valid %s", k->name, k->default_json,
                               nn_kind_name (k->kind));
  g_clear_error (&e);
  if (def)
    json_node_unref (def);
  return problem;
}

/* Returns: (transfer full) (nullable) what is wrong with @t, NULL when it
 * can be registered. */
static char *
layer_type_problem (const NnLayerType *t)
{
  if (t->struct_size < NN_TYPE_MIN_SIZE)
    return g_strdup_printf ("struct_size %" G_GSIZE_FORMAT " is smaller than "
                            "the minimum %" G_GSIZE_FORMAT " (up to create)",
                            t->struct_size, (gsize) NN_TYPE_MIN_SIZE);
  if (!t->name || !*t->name)
    return g_strdup ("it has no name");
  for (const char *c = t->name; *c; c++)
    if (!g_ascii_isgraph (*c))
      return g_strdup ("its name contains a space or a non-printable "
                       "character");
  if (!t->create)
    return g_strdup ("create is NULL");
  if (t->flags & ~NN_LAYER_KNOWN_FLAGS)
    return g_strdup_printf ("unknown flags 0x%x",
                            t->flags & ~NN_LAYER_KNOWN_FLAGS);
  if (t->n_schema > 0 && !t->schema)
    return g_strdup_printf ("n_schema is %u but schema is NULL", t->n_schema);
  for (guint i = 0; i < t->n_schema; i++)
    {
      char *p = schema_key_problem (t->schema, i);
      if (p)
        return p;
    }
  return NULL;
}

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
      set_load_error (error, plugin->path, NN_PLUGIN_ERROR_INVALID,
                      "plugin '%s' registered layer type '%s' outside its "
                      "init function", plugin->name,
                      type && type->struct_size >= NN_TYPE_MIN_SIZE
                      && type->name ? type->name : "?");
      return FALSE;
    }

  index = plugin->types->len;
  problem = type ? layer_type_problem (type) : g_strdup ("it is NULL");
  if (problem)
    {
      if (type && type->struct_size >= NN_TYPE_MIN_SIZE && type->name
          && *type->name)
        set_load_error (&e, plugin->path, NN_PLUGIN_ERROR_INVALID,
                        "plugin '%s': invalid layer type '%s': %s",
                        plugin->name, type->name, problem);
      else
        set_load_error (&e, plugin->path, NN_PLUGIN_ERROR_INVALID,
                        "plugin '%s': invalid layer type #%u: %s",
                        plugin->name, index + 1, problem);
      g_free (problem);
      stage_fail (plugin, error, e);
      return FALSE;
    }

  for (guint i = 0; i < plugin->types->len; i++)
    {
      const NnLayerType *t = g_ptr_array_index (plugin->types, i);
      if (strcmp (t->name, type->name) == 0)
        {
          set_load_error (&e, plugin->path, NN_PLUGIN_ERROR_DUPLICATE_TYPE,
                          "plugin '%s' registers layer type '%s' twice",
                          plugin->name, type->name);
          stage_fail (plugin, error, e);
          return FALSE;
        }
    }

  reg = plugin->registry;
  g_mutex_lock (&reg->lock);
  other = g_hash_table_lookup (reg->types, type->name);
  if (other)
    set_load_error (&e, plugin->path, NN_PLUGIN_ERROR_DUPLICATE_TYPE,
                    "plugin '%s' registers layer type '%s', which plugin "
                    "'%s' (%s) already registered", plugin->name, type->name,
                    other->plugin->name, other->plugin->path);
  g_mutex_unlock (&reg->lock);
  if (e)
    {
      stage_fail (plugin, error, e);
      return FALSE;
    }

  g_ptr_array_add (plugin->types, (gpointer) type);
  return TRUE;
}

/* --- loading one file --------------------------------------------------- */

static const char *
elf_type_name (guint type)
{
  switch (type)
    {
    case ET_REL: return "a relocatable object";
    case ET_EXEC: return "an executable";
    case ET_CORE: return "a core dump";
    default: return "of an unknown kind";
    }
}

/* Reads the ELF identification before dlopen(): dlopen() of a random file
 * gives confusing messages, and of a linker script none at all. */
static gboolean
check_elf (const char *path, GError **error)
{
  guchar buf[EI_NIDENT + 2];
  ssize_t n;
  guint type;
  int fd = open (path, O_RDONLY | O_CLOEXEC);

  if (fd < 0)
    {
      int saved = errno;
      set_load_error (error, path, NN_PLUGIN_ERROR_IO,
                      "cannot open plugin file: %s", g_strerror (saved));
      return FALSE;
    }
  do
    n = read (fd, buf, sizeof buf);
  while (n < 0 && errno == EINTR);
  if (n < 0)
    {
      int saved = errno;
      close (fd);
      set_load_error (error, path, NN_PLUGIN_ERROR_IO,
                      "cannot read plugin file: %s", g_strerror (saved));
      return FALSE;
    }
  close (fd);

  if (n < SELFMAG || memcmp (buf, ELFMAG, SELFMAG) != 0)
    {
      GString *found = g_string_new (NULL);
      for (ssize_t i = 0; i < MIN (n, (ssize_t) SELFMAG); i++)
        g_string_append_printf (found, "%s%02x", i ? " " : "", buf[i]);
      set_load_error (error, path, NN_PLUGIN_ERROR_NOT_A_PLUGIN,
                      "not a plugin: not an ELF shared object (expected the "
                      "ELF magic 7f 45 4c 46, found %s)",
                      n == 0 ? "an empty file" : found->str);
      g_string_free (found, TRUE);
      return FALSE;
    }
  if (n < (ssize_t) sizeof buf)
    {
      set_load_error (error, path, NN_PLUGIN_ERROR_NOT_A_PLUGIN,
                      "not a plugin: truncated ELF header (%zd bytes)", n);
      return FALSE;
    }
  if (buf[EI_DATA] == ELFDATA2MSB)
    type = (guint) buf[EI_NIDENT] << 8 | buf[EI_NIDENT + 1];
  else
    type = buf[EI_NIDENT] | (guint) buf[EI_NIDENT + 1] << 8;
  if (type != ET_DYN)
    {
      set_load_error (error, path, NN_PLUGIN_ERROR_NOT_A_PLUGIN,
                      "not a plugin: an ELF file but %s (ELF type %u), not a "
                      "shared object (type %u)", elf_type_name (type), type,
                      (guint) ET_DYN);
      return FALSE;
    }
  return TRUE;
}

static void *
open_shared_object (const char *path, GError **error)
{
  void *handle = dlopen (path, RTLD_NOW | RTLD_LOCAL);
  const char *why;

  if (handle)
    return handle;
  why = dlerror ();
  if (!why)
    why = "unknown dlopen() error";
  if (strstr (why, "undefined symbol"))
    set_load_error (error, path, NN_PLUGIN_ERROR_DLOPEN,
                    "cannot load plugin: %s (a library it depends on may be "
                    "missing or too old, or it needs a newer nnkit core than "
                    "this one)", why);
  else
    set_load_error (error, path, NN_PLUGIN_ERROR_DLOPEN,
                    "cannot load plugin: %s", why);
  return NULL;
}

/* dlsym() on a handle also searches the object's dependencies; the entry
 * point must be the plugin's own, not one of a library it links. */
static NnPluginEntryFunc
find_entry (void *handle, const char *path, GError **error)
{
  struct link_map *own = NULL, *where = NULL;
  Dl_info info;
  void *sym;

  dlerror ();
  sym = dlsym (handle, NN_PLUGIN_ENTRY_SYMBOL);
  if (!sym)
    {
      set_load_error (error, path, NN_PLUGIN_ERROR_NO_ENTRY,
                      "not an nnkit plugin: entry symbol '%s' not found "
                      "(plugins define it with NN_PLUGIN_DEFINE)",
                      NN_PLUGIN_ENTRY_SYMBOL);
      return NULL;
    }
  if (dlinfo (handle, RTLD_DI_LINKMAP, &own) == 0
      && dladdr1 (sym, &info, (void **) &where, RTLD_DL_LINKMAP) != 0
      && own && where && own != where)
    {
      set_load_error (error, path, NN_PLUGIN_ERROR_NO_ENTRY,
                      "not an nnkit plugin: entry symbol '%s' is not defined "
                      "in this file but in its dependency %s",
                      NN_PLUGIN_ENTRY_SYMBOL,
                      info.dli_fname ? info.dli_fname : "(unknown)");
      return NULL;
    }
  return (NnPluginEntryFunc) sym;
}

/* Checks in order: magic, the version header, the ABI, then the fields of
 * this ABI.  The ABI is checked before name and init because another
 * major version may lay those out differently. */
static gboolean
check_desc (const NnPluginDesc *desc, const char *path, GError **error)
{
  if (!desc)
    {
      set_load_error (error, path, NN_PLUGIN_ERROR_INVALID,
                      "invalid plugin descriptor: %s() returned NULL",
                      NN_PLUGIN_ENTRY_SYMBOL);
      return FALSE;
    }
  if (desc->magic != NN_PLUGIN_MAGIC)
    {
      set_load_error (error, path, NN_PLUGIN_ERROR_BAD_MAGIC,
                      "bad plugin magic number: expected 0x%08x, found 0x%08x",
                      NN_PLUGIN_MAGIC, desc->magic);
      return FALSE;
    }
  if (desc->struct_size < NN_DESC_HEADER_SIZE)
    {
      set_load_error (error, path, NN_PLUGIN_ERROR_INVALID,
                      "invalid plugin descriptor: struct_size %" G_GSIZE_FORMAT
                      " is too small to hold the ABI version (%" G_GSIZE_FORMAT
                      " bytes)", desc->struct_size,
                      (gsize) NN_DESC_HEADER_SIZE);
      return FALSE;
    }
  if (desc->abi_major != NN_ABI_MAJOR || desc->abi_minor > NN_ABI_MINOR)
    {
      set_load_error (error, path, NN_PLUGIN_ERROR_ABI,
                      "plugin built for nnkit ABI %u.%u, this core is %u.%u "
                      "(%s)", desc->abi_major, desc->abi_minor, NN_ABI_MAJOR,
                      NN_ABI_MINOR,
                      desc->abi_major != NN_ABI_MAJOR
                      ? "the major version must be the same"
                      : "the plugin needs a newer core");
      return FALSE;
    }
  if (desc->struct_size < NN_DESC_MIN_SIZE)
    {
      set_load_error (error, path, NN_PLUGIN_ERROR_INVALID,
                      "invalid plugin descriptor: struct_size %" G_GSIZE_FORMAT
                      " is smaller than the minimum %" G_GSIZE_FORMAT
                      " (up to init)", desc->struct_size,
                      (gsize) NN_DESC_MIN_SIZE);
      return FALSE;
    }
  if (!desc->name || !*desc->name)
    {
      set_load_error (error, path, NN_PLUGIN_ERROR_INVALID,
                      "invalid plugin descriptor: the plugin has no name");
      return FALSE;
    }
  if (!desc->init)
    {
      set_load_error (error, path, NN_PLUGIN_ERROR_INVALID,
                      "invalid plugin descriptor: plugin '%s' has no init "
                      "function", desc->name);
      return FALSE;
    }
  return TRUE;
}

static gboolean
check_name_free (NnRegistry *reg, NnPlugin *plugin, GError **error)
{
  NnPlugin *first;

  g_mutex_lock (&reg->lock);
  first = find_plugin_by_name_locked (reg, plugin->name);
  if (first)
    set_load_error (error, plugin->path, NN_PLUGIN_ERROR_DUPLICATE_PLUGIN,
                    "plugin '%s' is already loaded from %s; this copy is "
                    "ignored (the first one found wins)", plugin->name,
                    first->path);
  g_mutex_unlock (&reg->lock);
  return first == NULL;
}

/* Runs init with registrations staged; the plugin is rejected as a whole
 * if init fails or any registration did. */
static gboolean
run_init (NnRegistry *reg, NnPlugin *plugin, const NnPluginDesc *desc,
          GError **error)
{
  GError *e = NULL;
  gboolean ok;

  g_atomic_pointer_set (&plugin->registry, reg);
  plugin->in_init = TRUE;
  ok = desc->init (plugin, &e);
  plugin->in_init = FALSE;

  if (plugin->stage_error)
    {
      g_clear_error (&e);
      g_propagate_error (error, g_steal_pointer (&plugin->stage_error));
      return FALSE;
    }
  if (!ok)
    {
      set_load_error (error, plugin->path, NN_PLUGIN_ERROR_INIT_FAILED,
                      "plugin '%s' init failed: %s", plugin->name,
                      e ? e->message : "init returned FALSE without an error");
      g_clear_error (&e);
      return FALSE;
    }
  g_clear_error (&e);
  return TRUE;
}

/* Makes the staged types visible.  Loads are serialised, so nothing can
 * have taken a name since init checked it; checked again all the same
 * so the table can never hold two owners. */
static gboolean
commit_plugin (NnRegistry *reg, NnPlugin *plugin, GError **error)
{
  g_mutex_lock (&reg->lock);
  for (guint i = 0; i < plugin->types->len; i++)
    {
      const NnLayerType *t = g_ptr_array_index (plugin->types, i);
      NnTypeEntry *other = g_hash_table_lookup (reg->types, t->name);
      if (other)
        {
          set_load_error (error, plugin->path, NN_PLUGIN_ERROR_DUPLICATE_TYPE,
                          "plugin '%s' registers layer type '%s', which "
                          "plugin '%s' (%s) already registered", plugin->name,
                          t->name, other->plugin->name, other->plugin->path);
          g_mutex_unlock (&reg->lock);
          return FALSE;
        }
    }
  for (guint i = 0; i < plugin->types->len; i++)
    {
      const NnLayerType *t = g_ptr_array_index (plugin->types, i);
      NnTypeEntry *entry = g_new0 (NnTypeEntry, 1);
      entry->type = t;
      entry->plugin = plugin;
      g_hash_table_insert (reg->types, (gpointer) t->name, entry);
    }
  g_ptr_array_add (reg->plugins, plugin);
  forget_failure_locked (reg, plugin->path);
  g_mutex_unlock (&reg->lock);
  return TRUE;
}

/* Returns: (transfer full) (nullable) the plugin in @path, not yet part of
 * the registry.  Called with @reg->load_lock held. */
static NnPlugin *
open_plugin (NnRegistry *reg, const char *path, const char *canonical,
             GError **error)
{
  const NnPluginDesc *desc;
  NnPluginEntryFunc entry;
  NnPlugin *plugin;
  void *handle;

  if (!check_elf (path, error))
    return NULL;
  handle = open_shared_object (path, error);
  if (!handle)
    return NULL;
  entry = find_entry (handle, path, error);
  desc = entry ? entry () : NULL;
  if (!entry || !check_desc (desc, path, error))
    {
      dlclose (handle);
      return NULL;
    }

  plugin = plugin_new (handle, path, canonical, desc);
  if (!check_name_free (reg, plugin, error) || !run_init (reg, plugin, desc, error))
    {
      g_atomic_pointer_set (&plugin->registry, NULL);
      nn_plugin_unref (plugin);
      return NULL;
    }
  return plugin;
}

/* Loads @path unless that very file is loaded already.  Called with
 * @reg->load_lock held; failures are recorded. */
static gboolean
load_file_serialised (NnRegistry *reg, const char *path, GError **error)
{
  GError *e = NULL;
  NnPlugin *plugin;
  char *canonical = canonical_path (path);
  gboolean loaded;

  if (!canonical)
    {
      int saved = errno;
      set_load_error (&e, path, NN_PLUGIN_ERROR_IO,
                      "cannot open plugin file: %s", g_strerror (saved));
      goto fail;
    }

  g_mutex_lock (&reg->lock);
  loaded = find_plugin_by_file_locked (reg, canonical) != NULL;
  g_hash_table_add (reg->seen, g_strdup (canonical));
  g_mutex_unlock (&reg->lock);
  if (loaded)
    {
      g_free (canonical);
      return TRUE;
    }

  plugin = open_plugin (reg, path, canonical, &e);
  g_free (canonical);
  if (plugin && commit_plugin (reg, plugin, &e))
    return TRUE;
  if (plugin)
    {
      g_atomic_pointer_set (&plugin->registry, NULL);
      nn_plugin_unref (plugin);
    }

fail:
  g_mutex_lock (&reg->lock);
  record_failure_locked (reg, path, e);
  g_mutex_unlock (&reg->lock);
  g_propagate_error (error, e);
  return FALSE;
}

/* @path (transfer none).  MT safe: loads are serialised with each other but
 * not with lookups. */
gboolean
nn_registry_load_file (NnRegistry *reg, const char *path, GError **error)
{
  gboolean ok;

  g_return_val_if_fail (reg != NULL, FALSE);
  g_return_val_if_fail (path != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  g_mutex_lock (&reg->load_lock);
  ok = load_file_serialised (reg, path, error);
  g_mutex_unlock (&reg->load_lock);
  return ok;
}

/* --- discovery ---------------------------------------------------------- */

/* Returns: (transfer none) the build tree's plugin directory when this
 * libnnkit is the one in the build tree, else NULL.  Found with dladdr()
 * on our own code, so no environment variable is needed to run
 * uninstalled. */
static const char *
build_plugin_root (void)
{
  static const char *root;
  static gsize once;

  if (g_once_init_enter (&once))
    {
      Dl_info info;
      char *lib = NULL, *build = canonical_path (NN_BUILD_ROOT);

      if (dladdr ((void *) nn_registry_new, &info) && info.dli_fname)
        lib = canonical_path (info.dli_fname);
      if (lib && build && g_str_has_prefix (lib, build)
          && lib[strlen (build)] == G_DIR_SEPARATOR)
        root = g_build_filename (build, "plugins", NULL);
      g_free (lib);
      g_free (build);
      g_once_init_leave (&once, 1);
    }
  return root;
}

/* Returns: (transfer none) the installed plugin directory.  MT safe. */
const char *
nn_registry_installed_dir (void)
{
  return NN_INSTALLED_PLUGIN_DIR;
}

static int
compare_names (gconstpointer a, gconstpointer b)
{
  return strcmp (*(const char *const *) a, *(const char *const *) b);
}

/* Returns: (transfer full) (nullable) the sorted names in @dir, or NULL
 * with @error set. */
static GPtrArray *
sorted_entries (const char *dir, GError **error)
{
  GDir *d = g_dir_open (dir, 0, error);
  GPtrArray *names;
  const char *name;

  if (!d)
    return NULL;
  names = g_ptr_array_new_with_free_func (g_free);
  while ((name = g_dir_read_name (d)))
    g_ptr_array_add (names, g_strdup (name));
  g_dir_close (d);
  g_ptr_array_sort (names, compare_names);
  return names;
}

static void
note_searched (NnRegistry *reg, const char *dir, gboolean missing,
               gboolean with_subdirs)
{
  NnSearchedDir *s;

  g_mutex_lock (&reg->lock);
  for (guint i = 0; i < reg->searched->len; i++)
    {
      s = g_ptr_array_index (reg->searched, i);
      if (strcmp (s->dir, dir) == 0)
        {
          s->missing = missing;
          s->with_subdirs |= with_subdirs;
          g_mutex_unlock (&reg->lock);
          return;
        }
    }
  s = g_new0 (NnSearchedDir, 1);
  s->dir = g_strdup (dir);
  s->missing = missing;
  s->with_subdirs = with_subdirs;
  g_ptr_array_add (reg->searched, s);
  g_mutex_unlock (&reg->lock);
}

/* Loads the plugin files of @dir not seen before.  A directory that cannot
 * be read is an error only when @required (add_path); otherwise a missing
 * one is skipped and an unreadable one recorded as a failure. */
static gboolean
scan_dir (NnRegistry *reg, const char *dir, gboolean required,
          gboolean noted, GError **error)
{
  GError *e = NULL;
  GPtrArray *names = sorted_entries (dir, &e);

  if (!names)
    {
      gboolean missing = g_error_matches (e, G_FILE_ERROR, G_FILE_ERROR_NOENT);
      if (!noted)
        note_searched (reg, dir, missing, FALSE);
      if (required)
        g_set_error (error, NN_PLUGIN_ERROR, NN_PLUGIN_ERROR_IO,
                     "cannot read plugin directory %s: %s", dir, e->message);
      else if (!missing)
        {
          GError *rec = NULL;
          set_load_error (&rec, dir, NN_PLUGIN_ERROR_IO,
                          "cannot read plugin directory: %s", e->message);
          g_mutex_lock (&reg->lock);
          record_failure_locked (reg, dir, rec);
          g_mutex_unlock (&reg->lock);
          g_error_free (rec);
        }
      g_error_free (e);
      return !required;
    }
  if (!noted)
    note_searched (reg, dir, FALSE, FALSE);

  for (guint i = 0; i < names->len; i++)
    {
      const char *name = g_ptr_array_index (names, i);
      char *path, *canonical;
      struct stat st;
      gboolean seen;

      if (!has_suffix (name, NN_MODULE_SUFFIX))
        continue;
      path = g_build_filename (dir, name, NULL);
      /* A directory named *.so is not a plugin; a dangling link is
       * reported by the load below. */
      if (stat (path, &st) == 0 && S_ISDIR (st.st_mode))
        {
          g_free (path);
          continue;
        }
      canonical = canonical_path (path);
      g_mutex_lock (&reg->lock);
      seen = canonical && g_hash_table_contains (reg->seen, canonical);
      g_mutex_unlock (&reg->lock);
      if (!seen)
        load_file_serialised (reg, path, NULL);
      g_free (canonical);
      g_free (path);
    }
  g_ptr_array_unref (names);
  return TRUE;
}

/* The build tree keeps each family in its own subdirectory
 * (plugins/<family>/nn-<family>.so), so one level below is searched too. */
static void
scan_build_tree (NnRegistry *reg, const char *root)
{
  GPtrArray *names;

  note_searched (reg, root, !g_file_test (root, G_FILE_TEST_IS_DIR), TRUE);
  scan_dir (reg, root, FALSE, TRUE, NULL);
  names = sorted_entries (root, NULL);
  if (!names)
    return;
  for (guint i = 0; i < names->len; i++)
    {
      char *sub = g_build_filename (root, g_ptr_array_index (names, i), NULL);
      if (g_file_test (sub, G_FILE_TEST_IS_DIR))
        scan_dir (reg, sub, FALSE, TRUE, NULL);
      g_free (sub);
    }
  g_ptr_array_unref (names);
}

/* MT safe.  Reads NN_PLUGIN_PATH at call time. */
gboolean
nn_registry_load_default (NnRegistry *reg, GError **error)
{
  GError *first = NULL;
  GPtrArray *dirs;
  gboolean use_default;
  const char *env;

  g_return_val_if_fail (reg != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  g_mutex_lock (&reg->load_lock);

  g_mutex_lock (&reg->lock);
  dirs = g_ptr_array_new_with_free_func (g_free);
  for (guint i = 0; i < reg->extra_dirs->len; i++)
    g_ptr_array_add (dirs, g_strdup (g_ptr_array_index (reg->extra_dirs, i)));
  use_default = reg->use_default_dir;
  g_mutex_unlock (&reg->lock);

  /* 1. directories from the API: each must be readable. */
  for (guint i = 0; i < dirs->len; i++)
    {
      GError *e = NULL;
      if (!scan_dir (reg, g_ptr_array_index (dirs, i), TRUE, FALSE, &e) && !first)
        first = e;
      else
        g_clear_error (&e);
    }

  /* 2. NN_PLUGIN_PATH; empty entries mean nothing. */
  env = g_getenv ("NN_PLUGIN_PATH");
  if (env)
    {
      char **parts = g_strsplit (env, G_SEARCHPATH_SEPARATOR_S, -1);
      for (guint i = 0; parts[i]; i++)
        if (*parts[i])
          scan_dir (reg, parts[i], FALSE, FALSE, NULL);
      g_strfreev (parts);
    }

  /* 3. the build tree when running uninstalled, else the installed dir. */
  if (use_default)
    {
      const char *root = build_plugin_root ();
      if (root)
        scan_build_tree (reg, root);
      else
        scan_dir (reg, nn_registry_installed_dir (), FALSE, FALSE, NULL);
    }

  g_mutex_unlock (&reg->load_lock);
  g_ptr_array_unref (dirs);

  if (first)
    {
      g_propagate_error (error, first);
      return FALSE;
    }
  return TRUE;
}

/* --- lookups ------------------------------------------------------------ */

static char **
sorted_type_names_locked (NnRegistry *reg)
{
  guint n = 0;
  char **names = (char **) g_hash_table_get_keys_as_array (reg->types, &n);
  char **copy = g_new0 (char *, n + 1);

  for (guint i = 0; i < n; i++)
    copy[i] = g_strdup (names[i]);
  g_free (names);
  qsort (copy, n, sizeof (char *), compare_names);
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
  g_mutex_lock (&reg->lock);
  entry = g_hash_table_lookup (reg->types, name);
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
  g_mutex_lock (&reg->lock);
  names = sorted_type_names_locked (reg);
  g_mutex_unlock (&reg->lock);
  return names;
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
