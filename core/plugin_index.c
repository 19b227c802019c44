/* nnkit core: the plugin index, a per-file cache of which names a plugin
 * registers (docs/PLUGIN_LOADING.md, "Loading on demand").  It lets the
 * registry defer dlopen() of a plugin it has loaded before, unchanged,
 * until a lookup asks for one of its type names or aliases.  Entries live
 * in $XDG_CACHE_HOME/nnkit/plugin-index/, one small file per plugin path,
 * keyed by size, mtime and this core's ABI, and are written only after a
 * successful in-process load. */
#include "registry-private.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Bumped when the entry layout changes: older entries then never match. */
#define NN_INDEX_FORMAT 1

static char *
index_file (const char *canonical)
{
  g_autofree char *key = g_compute_checksum_for_string (G_CHECKSUM_SHA256,
                                                        canonical, -1);
  return g_build_filename (g_get_user_cache_dir (), "nnkit", "plugin-index",
                           key, NULL);
}

/* The first line: everything an entry depends on.  The core's ABI and
 * vtable size are in it because validation (which types a plugin may
 * register) is the core's. */
static char *
index_head (const char *canonical, const struct stat *st)
{
  return g_strdup_printf ("nnkit-plugin-index %d abi %d.%d type-size %"
                          G_GSIZE_FORMAT " %" G_GINT64_FORMAT " %"
                          G_GINT64_FORMAT " %ld %s\n", NN_INDEX_FORMAT,
                          NN_ABI_MAJOR, NN_ABI_MINOR,
                          (gsize) sizeof (NnLayerType), (gint64) st->st_size,
                          (gint64) st->st_mtim.tv_sec, st->st_mtim.tv_nsec,
                          canonical);
}

/* The whole entry for @plugin: the head, the plugin's name, then every
 * type name and alias it registered, one per line. */
static char *
index_text (const char *canonical, const struct stat *st, NnPlugin *plugin)
{
  GString *s = g_string_new (NULL);
  g_autofree char *head = index_head (canonical, st);

  g_string_append (s, head);
  g_string_append_printf (s, "%s\n", plugin->name);
  for (guint i = 0; i < plugin->types->len; i++)
    {
      const NnLayerType *t = g_ptr_array_index (plugin->types, i);
      g_string_append_printf (s, "%s\n", t->name);
      for (guint k = 0; t->aliases && t->aliases[k]; k++)
        g_string_append_printf (s, "%s\n", t->aliases[k]);
    }
  return g_string_free (s, FALSE);
}

/* Names are single printable words: a line that is not one means the
 * entry is damaged, and a damaged entry is ignored. */
static gboolean
is_word (const char *s)
{
  if (!*s)
    return FALSE;
  for (; *s; s++)
    if (!g_ascii_isgraph (*s))
      return FALSE;
  return TRUE;
}

gboolean
nn_plugin_index_lookup (const char *canonical, const struct stat *st,
                        char **plugin_name, GHashTable **names)
{
  g_autofree char *file = index_file (canonical);
  g_autofree char *text = NULL;
  g_autofree char *head = index_head (canonical, st);

  if (!g_file_get_contents (file, &text, NULL, NULL)
      || !g_str_has_prefix (text, head))
    return FALSE;

  g_auto (GStrv) lines = g_strsplit (text + strlen (head), "\n", -1);
  guint n = g_strv_length (lines);
  /* The text ends with a newline, so the last piece is empty. */
  if (n < 2 || *lines[n - 1] != '\0')
    return FALSE;
  for (guint i = 0; i + 1 < n; i++)
    if (!is_word (lines[i]))
      return FALSE;

  *plugin_name = g_strdup (lines[0]);
  *names = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  for (guint i = 1; i + 1 < n; i++)
    g_hash_table_add (*names, g_strdup (lines[i]));
  return TRUE;
}

/* Atomic (a temp file then rename()), so racing processes each leave a
 * whole entry; an entry that cannot be written only costs a load. */
void
nn_plugin_index_store (NnPlugin *plugin)
{
  struct stat st;

  if (!plugin->canonical || stat (plugin->canonical, &st) != 0
      || !S_ISREG (st.st_mode))
    return;
  g_autofree char *file = index_file (plugin->canonical);
  g_autofree char *text = index_text (plugin->canonical, &st, plugin);
  g_autofree char *old = NULL;
  if (g_file_get_contents (file, &old, NULL, NULL) && strcmp (old, text) == 0)
    return; /* already there: the common case costs one read */

  g_autofree char *dir = g_path_get_dirname (file);
  if (g_mkdir_with_parents (dir, 0700) != 0)
    return;
  g_autofree char *tmp = g_strconcat (file, ".XXXXXX", NULL);
  int fd = g_mkstemp_full (tmp, O_WRONLY | O_CLOEXEC, 0600);
  if (fd < 0)
    return;
  gboolean ok = nn_write_all_fd (fd, text, strlen (text));
  ok = close (fd) == 0 && ok;
  if (!ok || rename (tmp, file) != 0)
    unlink (tmp);
}
