/* nnkit core: the directories the registry searched for plugins, in
 * discovery order, for `nnctl doctor` and similar diagnostics. */
#include "registry-private.h"

char **
nn_registry_get_search_path (NnRegistry *reg, gboolean **missing_out)
{
  g_return_val_if_fail (reg != NULL, NULL);
  g_mutex_lock (&reg->lock);
  guint n = reg->searched->len;
  char **dirs = g_new0 (char *, n + 1);
  gboolean *missing = missing_out ? g_new0 (gboolean, n + 1) : NULL;
  for (guint i = 0; i < n; i++) {
    NnSearchedDir *s = g_ptr_array_index (reg->searched, i);
    dirs[i] = g_strdup (s->dir);
    if (missing)
      missing[i] = s->missing;
  }
  g_mutex_unlock (&reg->lock);
  if (missing_out)
    *missing_out = missing;
  return dirs;
}
