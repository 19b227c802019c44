/* nnkit core: files in the per-user cache ($XDG_CACHE_HOME/nnkit/...),
 * shared by the plugin probe verdicts, the plugin index and the OpenBLAS
 * probe answer.  In the engine library, which its tests link alone. */
#include "nn-engine-private.h"

char *
nn_cache_file (const char *what, const char *key)
{
  g_autofree char *sum = g_compute_checksum_for_string (G_CHECKSUM_SHA256,
                                                        key, -1);
  return g_build_filename (g_get_user_cache_dir (), "nnkit", what, sum, NULL);
}

void
nn_cache_store (const char *file, const char *text)
{
  g_autofree char *dir = g_path_get_dirname (file);
  /* CONSISTENT: a temp file then rename, never a torn entry. */
  if (g_mkdir_with_parents (dir, 0700) == 0)
    g_file_set_contents_full (file, text, -1, G_FILE_SET_CONTENTS_CONSISTENT,
                              0600, NULL);
}
