/* nnkit core: the plugin index, a per-file cache of which names a plugin
 * registers (docs/PLUGIN_LOADING.md, "Loading on demand").  It lets the
 * registry defer dlopen() of a plugin it has loaded before, unchanged,
 * until a lookup asks for one of its type names or aliases.  Entries live
 * in $XDG_CACHE_HOME/nnkit/plugin-index/, one small file per plugin path,
 * keyed by size, mtime and this core's ABI, and are written only after a
 * successful in-process load. */
#include "registry-private.h"
#include "nn-engine-private.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Bumped when the entry layout changes: older entries then never match. */
#define NN_INDEX_FORMAT 2

static char *
index_file (const char *canonical)
{
  return nn_cache_file ("plugin-index", canonical);
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

/* The whole entry for @plugin: the head, the plugin's name, then one line
 * per type, "T <name> <effective rank>", and per alias, "A <alias>": the
 * rank tells whether two providers of a name would tie. */
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
      g_string_append_printf (s, "T %s %d\n", t->name,
                              nn_provider_effective_rank (t->rank));
      for (guint k = 0; t->aliases && t->aliases[k]; k++)
        g_string_append_printf (s, "A %s\n", t->aliases[k]);
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
                        char **plugin_name, GHashTable **types,
                        GHashTable **aliases)
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
  if (n < 2 || *lines[n - 1] != '\0' || !is_word (lines[0]))
    return FALSE;
  GHashTable *t = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  GHashTable *a = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  gboolean ok = TRUE;
  for (guint i = 1; ok && i + 1 < n; i++)
    {
      g_auto (GStrv) w = g_strsplit (lines[i], " ", -1);
      guint nw = g_strv_length (w);
      gint64 rank = 0;
      if (nw == 3 && strcmp (w[0], "T") == 0 && is_word (w[1])
          && g_ascii_string_to_signed (w[2], 10, G_MININT, G_MAXINT, &rank, NULL))
        g_hash_table_insert (t, g_strdup (w[1]), GINT_TO_POINTER ((int) rank));
      else if (nw == 2 && strcmp (w[0], "A") == 0 && is_word (w[1]))
        g_hash_table_add (a, g_strdup (w[1]));
      else
        ok = FALSE;
    }
  if (!ok)
    {
      g_hash_table_unref (t);
      g_hash_table_unref (a);
      return FALSE;
    }
  *plugin_name = g_strdup (lines[0]);
  *types = t;
  *aliases = a;
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

  nn_cache_store (file, text);
}
