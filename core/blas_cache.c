/* nnkit core: remembers the OpenBLAS probe's answer (core/blas_setup.c),
 * so a process does not spawn nnkit-blas-probe on every start.  One small
 * file per probe and environment in $XDG_CACHE_HOME/nnkit/blas-probe/,
 * valid while the probe, the OpenBLAS file it loaded (followed through its
 * links, so an alternatives switch counts), the CPU and the loader's
 * environment are the same. */
#include "nn-private.h"
#include "nn-engine-private.h"

#include <nnkit/cpu.h>

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define NN_BLAS_CACHE_FORMAT 1

/* "path size mtime" of @file after links, or NULL when it is gone. */
static char *
file_identity (const char *file)
{
  char *real = realpath (file, NULL);
  struct stat st;
  char *id = NULL;

  if (real && stat (real, &st) == 0)
    id = g_strdup_printf ("%s %" G_GINT64_FORMAT " %" G_GINT64_FORMAT " %ld",
                          real, (gint64) st.st_size,
                          (gint64) st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
  free (real);
  return id;
}

/* Everything the answer depends on but the OpenBLAS file itself. */
static char *
context_line (const char *probe)
{
  g_autofree char *probe_id = file_identity (probe);
  const NnCpuInfo *cpu = nn_cpu_info_get ();
  const char *lib_path = g_getenv ("LD_LIBRARY_PATH");
  const char *preload = g_getenv ("LD_PRELOAD");

  if (!probe_id)
    return NULL;
  return g_strdup_printf ("nnkit-blas-probe-cache %d probe %s cpu %s %u %u "
                          "%" G_GINT64_MODIFIER "x ld-library-path '%s' "
                          "ld-preload '%s'\n", NN_BLAS_CACHE_FORMAT, probe_id,
                          nn_cpu_get_vendor (cpu), nn_cpu_get_family (cpu),
                          nn_cpu_get_model (cpu), nn_cpu_get_features (cpu),
                          lib_path ? lib_path : "", preload ? preload : "");
}

static char *
cache_file (const char *context)
{
  return nn_cache_file ("blas-probe", context);
}
gboolean
nn_blas_cache_lookup (const char *probe, char **default_kernel,
                      char **chosen)
{
  g_autofree char *context = context_line (probe);
  g_autofree char *file = NULL, *text = NULL;

  if (!context)
    return FALSE;
  file = cache_file (context);
  if (!g_file_get_contents (file, &text, NULL, NULL)
      || !g_str_has_prefix (text, context))
    return FALSE;
  g_auto (GStrv) lines = g_strsplit (text + strlen (context), "\n", -1);
  if (g_strv_length (lines) != 5 || !g_str_has_prefix (lines[0], "lib ")
      || !g_str_has_prefix (lines[1], "libid ")
      || !g_str_has_prefix (lines[2], "default ")
      || !g_str_has_prefix (lines[3], "chosen ") || *lines[4])
    return FALSE;
  g_autofree char *libid = file_identity (lines[0] + 4);
  if (!libid || strcmp (libid, lines[1] + 6) != 0)
    return FALSE;
  *default_kernel = g_strdup (lines[2] + 8);
  *chosen = strcmp (lines[3] + 7, "-") == 0 ? NULL : g_strdup (lines[3] + 7);
  return **default_kernel != '\0';
}

/* nn_cache_store() writes whole entries; a cache that cannot be written
 * only costs a probe next time. */
void
nn_blas_cache_store (const char *probe, const char *lib,
                     const char *default_kernel, const char *chosen)
{
  g_autofree char *context = context_line (probe);
  g_autofree char *libid = file_identity (lib);

  if (!context || !libid || strchr (lib, '\n') || strchr (default_kernel, '\n'))
    return;
  g_autofree char *file = cache_file (context);
  g_autofree char *text = g_strdup_printf ("%slib %s\nlibid %s\ndefault %s\n"
                                           "chosen %s\n", context, lib, libid,
                                           default_kernel,
                                           chosen ? chosen : "-");
  nn_cache_store (file, text);
}
