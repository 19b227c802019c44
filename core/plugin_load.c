/* nnkit core: loads one plugin file: ELF check, dlopen(), entry symbol,
 * descriptor, init with staged registrations, then commit.  Every failure
 * is recorded with its file and cause, so the other plugins still load. */
#include "registry-private.h"
#include "nn-engine-private.h"

#include <nnkit/blas.h>

#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <link.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Descriptor fields every ABI version shares: enough to read the versions. */
#define NN_DESC_HEADER_SIZE \
  (offsetof (NnPluginDesc, abi_minor) + sizeof (guint16))
/* The smallest descriptor of this ABI major: up to the init pointer. */
#define NN_DESC_MIN_SIZE \
  (offsetof (NnPluginDesc, init) + sizeof (gpointer))

/* --- errors and failure records ----------------------------------------- */

void
nn_load_error (GError **error, const char *path, int code,
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

char *
nn_canonical_path (const char *path)
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
void
nn_registry_record_failure_locked (NnRegistry *reg, const char *path,
                                   const GError *e)
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
  /* O_NONBLOCK: opening a FIFO named *.so must not wait for a writer. */
  int fd = open (path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  struct stat st;

  if (fd < 0)
    {
      int saved = errno;
      nn_load_error (error, path, NN_PLUGIN_ERROR_IO,
                     "cannot open plugin file: %s", g_strerror (saved));
      return FALSE;
    }
  if (fstat (fd, &st) != 0 || !S_ISREG (st.st_mode))
    {
      close (fd);
      nn_load_error (error, path, NN_PLUGIN_ERROR_NOT_A_PLUGIN,
                     "not a plugin: not a regular file");
      return FALSE;
    }
  do
    n = read (fd, buf, sizeof buf);
  while (n < 0 && errno == EINTR);
  if (n < 0)
    {
      int saved = errno;
      close (fd);
      nn_load_error (error, path, NN_PLUGIN_ERROR_IO,
                     "cannot read plugin file: %s", g_strerror (saved));
      return FALSE;
    }
  close (fd);

  if (n < SELFMAG || memcmp (buf, ELFMAG, SELFMAG) != 0)
    {
      GString *found = g_string_new (NULL);
      for (ssize_t i = 0; i < MIN (n, (ssize_t) SELFMAG); i++)
        g_string_append_printf (found, "%s%02x", i ? " " : "", buf[i]);
      nn_load_error (error, path, NN_PLUGIN_ERROR_NOT_A_PLUGIN,
                     "not a plugin: not an ELF shared object (expected the "
                     "ELF magic 7f 45 4c 46, found %s)",
                     n == 0 ? "an empty file" : found->str);
      g_string_free (found, TRUE);
      return FALSE;
    }
  if (n < (ssize_t) sizeof buf)
    {
      nn_load_error (error, path, NN_PLUGIN_ERROR_NOT_A_PLUGIN,
                     "not a plugin: truncated ELF header (%zd bytes)", n);
      return FALSE;
    }
  if (buf[EI_DATA] == ELFDATA2MSB)
    type = (guint) buf[EI_NIDENT] << 8 | buf[EI_NIDENT + 1];
  else
    type = buf[EI_NIDENT] | (guint) buf[EI_NIDENT + 1] << 8;
  if (type != ET_DYN)
    {
      nn_load_error (error, path, NN_PLUGIN_ERROR_NOT_A_PLUGIN,
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
  void *handle;

  /* OpenBLAS reads OPENBLAS_CORETYPE once, when a plugin linking it
   * loads: settle it before the first dlopen(). */
  nn_blas_setup ();
  /* libgomp reads its spin count once too (omp_setup.c). */
  nn_omp_setup ();
  handle = dlopen (path, RTLD_NOW | RTLD_LOCAL);
  const char *why;

  if (handle)
    return handle;
  why = dlerror ();
  if (!why)
    why = "unknown dlopen() error";
  if (strstr (why, "undefined symbol"))
    nn_load_error (error, path, NN_PLUGIN_ERROR_DLOPEN,
                   "cannot load plugin: %s (a library it depends on may be "
                   "missing or too old, or it needs a newer nnkit core than "
                   "this one)", why);
  else
    nn_load_error (error, path, NN_PLUGIN_ERROR_DLOPEN,
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
      nn_load_error (error, path, NN_PLUGIN_ERROR_NO_ENTRY,
                     "not an nnkit plugin: entry symbol '%s' not found "
                     "(plugins define it with NN_PLUGIN_DEFINE)",
                     NN_PLUGIN_ENTRY_SYMBOL);
      return NULL;
    }
  if (dlinfo (handle, RTLD_DI_LINKMAP, &own) == 0
      && dladdr1 (sym, &info, (void **) &where, RTLD_DL_LINKMAP) != 0
      && own && where && own != where)
    {
      nn_load_error (error, path, NN_PLUGIN_ERROR_NO_ENTRY,
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
      nn_load_error (error, path, NN_PLUGIN_ERROR_INVALID,
                     "invalid plugin descriptor: %s() returned NULL",
                     NN_PLUGIN_ENTRY_SYMBOL);
      return FALSE;
    }
  if (desc->magic != NN_PLUGIN_MAGIC)
    {
      nn_load_error (error, path, NN_PLUGIN_ERROR_BAD_MAGIC,
                     "bad plugin magic number: expected 0x%08x, found 0x%08x",
                     NN_PLUGIN_MAGIC, desc->magic);
      return FALSE;
    }
  if (desc->struct_size < NN_DESC_HEADER_SIZE)
    {
      nn_load_error (error, path, NN_PLUGIN_ERROR_INVALID,
                     "invalid plugin descriptor: struct_size %" G_GSIZE_FORMAT
                     " is too small to hold the ABI version (%" G_GSIZE_FORMAT
                     " bytes)", desc->struct_size,
                     (gsize) NN_DESC_HEADER_SIZE);
      return FALSE;
    }
  if (desc->abi_major != NN_ABI_MAJOR || desc->abi_minor > NN_ABI_MINOR)
    {
      nn_load_error (error, path, NN_PLUGIN_ERROR_ABI,
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
      nn_load_error (error, path, NN_PLUGIN_ERROR_INVALID,
                     "invalid plugin descriptor: struct_size %" G_GSIZE_FORMAT
                     " is smaller than the minimum %" G_GSIZE_FORMAT
                     " (up to init)", desc->struct_size,
                     (gsize) NN_DESC_MIN_SIZE);
      return FALSE;
    }
  if (!desc->name || !*desc->name)
    {
      nn_load_error (error, path, NN_PLUGIN_ERROR_INVALID,
                     "invalid plugin descriptor: the plugin has no name");
      return FALSE;
    }
  if (!desc->init)
    {
      nn_load_error (error, path, NN_PLUGIN_ERROR_INVALID,
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
    nn_load_error (error, plugin->path, NN_PLUGIN_ERROR_DUPLICATE_PLUGIN,
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
  nn_registry_lazy_init_depth (1);
  ok = desc->init (plugin, &e);
  nn_registry_lazy_init_depth (-1);
  plugin->in_init = FALSE;
  g_clear_pointer (&plugin->staged_names, g_hash_table_unref);

  if (plugin->stage_error)
    {
      g_clear_error (&e);
      g_propagate_error (error, g_steal_pointer (&plugin->stage_error));
      return FALSE;
    }
  if (!ok)
    {
      nn_load_error (error, plugin->path, NN_PLUGIN_ERROR_INIT_FAILED,
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
/* Every name a type answers to: its name, then its aliases. */
static guint
type_names (const NnLayerType *t, const char **out, guint max)
{
  guint n = 0;
  out[n++] = t->name;
  for (guint i = 0; t->aliases && t->aliases[i] && n < max; i++)
    out[n++] = t->aliases[i];
  return n;
}

static gboolean
commit_plugin (NnRegistry *reg, NnPlugin *plugin, GError **error)
{
  const char *names[64];
  g_mutex_lock (&reg->lock);
  for (guint i = 0; i < plugin->types->len; i++)
    {
      const NnLayerType *t = g_ptr_array_index (plugin->types, i);
      guint n = type_names (t, names, G_N_ELEMENTS (names));
      for (guint k = 0; k < n; k++)
        {
          NnTypeEntry *other = nn_registry_find_locked (reg, names[k]);
          /* A provider of this very type at another rank is welcome. */
          if (other && k == 0 && strcmp (other->type->name, t->name) == 0)
            other = nn_providers_conflict_locked (reg, t);
          if (!other)
            continue;
          nn_load_error (error, plugin->path, NN_PLUGIN_ERROR_DUPLICATE_TYPE,
                         "plugin '%s' registers layer type %s'%s', which "
                         "plugin '%s' (%s) already registered%s", plugin->name,
                         k ? "alias " : "", names[k], other->plugin->name,
                         other->plugin->path, k ? "" : " at the same rank");
          g_mutex_unlock (&reg->lock);
          return FALSE;
        }
    }
  for (guint i = 0; i < plugin->types->len; i++)
    {
      const NnLayerType *t = g_ptr_array_index (plugin->types, i);
      nn_providers_add_locked (reg, t, plugin);
    }
  /* Listed in discovery order however late a deferred plugin loads; it
   * never moves before one loaded by path alone (as an eager scan after
   * that load would list them). */
  guint pos = reg->plugins->len;
  guint mine = GPOINTER_TO_UINT (g_hash_table_lookup (reg->discovered,
                                                      plugin->canonical));
  while (mine && pos > 0)
    {
      NnPlugin *prev = g_ptr_array_index (reg->plugins, pos - 1);
      guint theirs = GPOINTER_TO_UINT (g_hash_table_lookup (reg->discovered,
                                                            prev->canonical));
      if (!theirs || theirs < mine)
        break;
      pos--;
    }
  g_ptr_array_insert (reg->plugins, (gint) pos, plugin);
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

  plugin = nn_plugin_new (handle, path, canonical, desc);
  if (!check_name_free (reg, plugin, error) || !run_init (reg, plugin, desc, error))
    {
      g_atomic_pointer_set (&plugin->registry, NULL);
      nn_plugin_unref (plugin);
      return NULL;
    }
  return plugin;
}

gboolean
nn_registry_load_file_serialised (NnRegistry *reg, const char *path,
                                  GError **error)
{
  GError *e = NULL;
  NnPlugin *plugin;
  char *canonical = nn_canonical_path (path);
  gboolean loaded;

  if (!canonical)
    {
      int saved = errno;
      nn_load_error (&e, path, NN_PLUGIN_ERROR_IO,
                     "cannot open plugin file: %s", g_strerror (saved));
      goto fail;
    }

  g_mutex_lock (&reg->lock);
  loaded = find_plugin_by_file_locked (reg, canonical) != NULL;
  gboolean known = g_hash_table_contains (reg->seen, canonical);
  g_hash_table_add (reg->seen, g_strdup (canonical));
  g_mutex_unlock (&reg->lock);
  if (loaded)
    {
      g_free (canonical);
      return TRUE;
    }
  /* Load order decides which of two files with a common name wins: the
   * deferred plugins found before this file load first.  A file found
   * for the first time may register anything, so all of them do. */
  nn_registry_lazy_before_file (reg, canonical, !known);

  /* A plugin that crashes or hangs while loading must not take us down. */
  plugin = nn_plugin_probe (path, canonical, &e)
           ? open_plugin (reg, path, canonical, &e) : NULL;
  g_free (canonical);
  if (plugin && commit_plugin (reg, plugin, &e))
    {
      nn_plugin_index_store (plugin);
      return TRUE;
    }
  if (plugin)
    {
      g_atomic_pointer_set (&plugin->registry, NULL);
      nn_plugin_unref (plugin);
    }

fail:
  g_mutex_lock (&reg->lock);
  nn_registry_record_failure_locked (reg, path, e);
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
  ok = nn_registry_load_file_serialised (reg, path, error);
  g_mutex_unlock (&reg->load_lock);
  return ok;
}
