/* nnkit core: where plugins are searched: API paths, NN_PLUGIN_PATH, then
 * the build tree (found with dladdr()) or the installed directory. */
#include "registry-private.h"

#include <dlfcn.h>
#include <string.h>
#include <sys/stat.h>

#ifndef NN_BUILD_ROOT
#error "NN_BUILD_ROOT must be defined by the build"
#endif
#ifndef NN_INSTALLED_PLUGIN_DIR
#error "NN_INSTALLED_PLUGIN_DIR must be defined by the build"
#endif

/* The loadable-module suffix (GModule's G_MODULE_SUFFIX on ELF systems). */
#define NN_MODULE_SUFFIX ".so"

static gboolean
has_suffix (const char *name, const char *suffix)
{
  gsize n = strlen (name), s = strlen (suffix);

  return n > s && strcmp (name + n - s, suffix) == 0;
}

/* Returns: (transfer none) the build tree's plugin directory when this
 * libnnkit is the one in the build tree, else NULL.  Found with dladdr()
 * on our own code, so no environment variable is needed to run
 * uninstalled. */
static const char *build_plugin_root (void);

const char *
nn_registry_build_root (void)
{
  static char *root;
  static gsize once;
  if (g_once_init_enter (&once))
    {
      if (build_plugin_root ())
        root = g_path_get_dirname (build_plugin_root ());
      g_once_init_leave (&once, 1);
    }
  return root;
}

static const char *
build_plugin_root (void)
{
  static const char *root;
  static gsize once;

  if (g_once_init_enter (&once))
    {
      Dl_info info;
      char *lib = NULL, *build = nn_canonical_path (NN_BUILD_ROOT);

      if (dladdr ((void *) nn_registry_new, &info) && info.dli_fname)
        lib = nn_canonical_path (info.dli_fname);
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
  g_ptr_array_sort (names, nn_str_ptr_compare);
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
          nn_load_error (&rec, dir, NN_PLUGIN_ERROR_IO,
                         "cannot read plugin directory: %s", e->message);
          g_mutex_lock (&reg->lock);
          nn_registry_record_failure_locked (reg, dir, rec);
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
      canonical = nn_canonical_path (path);
      g_mutex_lock (&reg->lock);
      seen = canonical && g_hash_table_contains (reg->seen, canonical);
      g_mutex_unlock (&reg->lock);
      /* A file the plugin index knows waits for a lookup of one of its
       * names (registry_lazy.c). */
      if (canonical)
        nn_registry_note_discovered (reg, canonical);
      if (!seen && !nn_registry_defer (reg, path, canonical))
        nn_registry_load_file_serialised (reg, path, NULL);
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
