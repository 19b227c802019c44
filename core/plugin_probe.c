/* nnkit core: crash isolation for plugins (docs/PLUGIN_LOADING.md).  A
 * plugin file not seen before, or changed since, is first loaded by the
 * nn-plugin-scanner helper in its own process, with a timeout, as
 * GStreamer's plugin scanner does.  One that crashes, aborts, exits or
 * hangs there is reported and never loaded into the host.  Verdicts are
 * cached per file (path, size, mtime) in the user's cache directory. */
#include "registry-private.h"
#include "nn-engine-private.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef NN_INSTALLED_SCANNER
#error "NN_INSTALLED_SCANNER must be defined by the build"
#endif

/* What the scanner prints once loading returned, whatever its outcome. */
#define NN_PROBE_DONE "nnkit-probe-done"
#define NN_PROBE_DEFAULT_TIMEOUT_S 10

static gboolean
probe_disabled (void)
{
  const char *v = g_getenv ("NN_PLUGIN_PROBE");
  return v && (strcmp (v, "0") == 0 || g_ascii_strcasecmp (v, "no") == 0);
}

static guint
probe_timeout_ms (void)
{
  const char *v = g_getenv ("NN_PLUGIN_PROBE_TIMEOUT");
  gint64 s = v ? g_ascii_strtoll (v, NULL, 10) : 0;
  if (s <= 0 || s > 3600)
    s = NN_PROBE_DEFAULT_TIMEOUT_S;
  return (guint) s * 1000;
}

/* Returns: (transfer full) (nullable) the scanner to run: NN_PLUGIN_SCANNER,
 * the build tree's when this libnnkit is uninstalled, else the installed
 * one; NULL if none is there (loading then goes on without a probe). */
static char *
scanner_path (void)
{
  const char *env = g_getenv ("NN_PLUGIN_SCANNER");
  if (env && *env)
    return g_strdup (env);
  const char *build = nn_registry_build_root ();
  char *p = build
      ? g_build_filename (build, "tools", "nn-plugin-scanner",
                          "nn-plugin-scanner", NULL)
      : g_strdup (NN_INSTALLED_SCANNER);
  if (g_file_test (p, G_FILE_TEST_IS_EXECUTABLE))
    return p;
  g_free (p);
  return NULL;
}

/* --- the verdict cache ---------------------------------------------------- */

static char *
cache_file (const char *canonical)
{
  return nn_cache_file ("plugin-probe", canonical);
}
/* A cache line: "<size> <mtime s> <mtime ns> <ok|broken> <canonical path>\n"
 * then, for "broken", the reason on the second line. */
static char *
cache_text (const struct stat *st, const char *canonical, const char *broken)
{
  return g_strdup_printf ("%" G_GINT64_FORMAT " %" G_GINT64_FORMAT " %ld %s "
                          "%s\n%s\n", (gint64) st->st_size,
                          (gint64) st->st_mtim.tv_sec, st->st_mtim.tv_nsec,
                          broken ? "broken" : "ok", canonical,
                          broken ? broken : "");
}

/* TRUE with *@broken_out set (transfer full, NULL if the plugin is fine)
 * when the cache holds a verdict for this very file. */
static gboolean
cache_lookup (const char *canonical, const struct stat *st, char **broken_out)
{
  g_autofree char *file = cache_file (canonical);
  g_autofree char *text = NULL;
  if (!g_file_get_contents (file, &text, NULL, NULL))
    return FALSE;
  g_autofree char *want_ok = cache_text (st, canonical, NULL);
  /* Everything up to the verdict word must match; then the verdict. */
  g_autofree char *key = g_strdup_printf ("%" G_GINT64_FORMAT " %"
                                          G_GINT64_FORMAT " %ld ",
                                          (gint64) st->st_size,
                                          (gint64) st->st_mtim.tv_sec,
                                          st->st_mtim.tv_nsec);
  if (strcmp (text, want_ok) == 0) {
    *broken_out = NULL;
    return TRUE;
  }
  g_autofree char *broken_head = g_strdup_printf ("%sbroken %s\n", key,
                                                  canonical);
  if (!g_str_has_prefix (text, broken_head))
    return FALSE;
  char *reason = g_strdup (text + strlen (broken_head));
  g_strchomp (reason);
  *broken_out = reason;
  return TRUE;
}

/* Atomic: a temp file then rename(), so racing processes each leave a
 * whole verdict.  A cache that cannot be written only costs a probe. */
static void
cache_store (const char *canonical, const struct stat *st, const char *broken)
{
  g_autofree char *file = cache_file (canonical);
  g_autofree char *text = cache_text (st, canonical, broken);
  nn_cache_store (file, text);
}

/* --- running the scanner -------------------------------------------------- */

static gint64
now_ms (void)
{
  return g_get_monotonic_time () / 1000;
}

/* Reads the scanner's stdout until EOF or the deadline; TRUE if it said it
 * was done. */
static gboolean
read_until_done (int fd, gint64 deadline, gboolean *timed_out)
{
  GString *out = g_string_new (NULL);
  char buf[256];
  *timed_out = FALSE;
  for (;;) {
    gint64 left = deadline - now_ms ();
    if (left <= 0) {
      *timed_out = TRUE;
      break;
    }
    struct pollfd p = { fd, POLLIN, 0 };
    int r = poll (&p, 1, (int) MIN (left, G_MAXINT));
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      continue; /* the deadline check above ends the loop */
    ssize_t n = read (fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    if (out->len < 4096)
      g_string_append_len (out, buf, n);
  }
  gboolean done = strstr (out->str, NN_PROBE_DONE "\n") != NULL;
  g_string_free (out, TRUE);
  return done;
}

/* Runs the scanner on @path.  Returns: (transfer full) (nullable) why the
 * plugin is broken, NULL if it loaded or failed cleanly; *@ran_out is
 * FALSE if the scanner could not run at all. */
static char *
run_scanner (const char *scanner, const char *path, gboolean *ran_out)
{
  const char *argv[] = { scanner, path, NULL };
  GPid pid;
  int out_fd;
  g_autoptr (GError) e = NULL;
  *ran_out = FALSE;
  if (!g_spawn_async_with_pipes (NULL, (char **) argv, NULL,
                                 G_SPAWN_DO_NOT_REAP_CHILD |
                                 G_SPAWN_STDERR_TO_DEV_NULL |
                                 G_SPAWN_CLOEXEC_PIPES,
                                 NULL, NULL, &pid, NULL, &out_fd, NULL, &e))
    return NULL;
  *ran_out = TRUE;
  guint timeout = probe_timeout_ms ();
  gboolean timed_out;
  gboolean done = read_until_done (out_fd, now_ms () + timeout, &timed_out);
  close (out_fd);
  if (timed_out)
    kill (pid, SIGKILL);
  int status = 0;
  while (waitpid (pid, &status, 0) < 0 && errno == EINTR)
    ;
  if (timed_out)
    return g_strdup_printf ("hung while loading (no answer within %u s; "
                            "NN_PLUGIN_PROBE_TIMEOUT sets the limit)",
                            timeout / 1000);
  if (WIFSIGNALED (status))
    return g_strdup_printf ("crashed while loading: killed by signal %d (%s)",
                            WTERMSIG (status), g_strsignal (WTERMSIG (status)));
  if (!done)
    return g_strdup_printf ("ended the process while loading (exit status "
                            "%d)", WIFEXITED (status) ? WEXITSTATUS (status)
                                                      : -1);
  return NULL;
}

gboolean
nn_plugin_probe (const char *path, const char *canonical, GError **error)
{
  if (probe_disabled ())
    return TRUE;
  struct stat st;
  if (stat (canonical, &st) != 0 || !S_ISREG (st.st_mode))
    return TRUE; /* the load reports it */
  g_autofree char *broken = NULL;
  if (!cache_lookup (canonical, &st, &broken)) {
    g_autofree char *scanner = scanner_path ();
    gboolean ran = FALSE;
    if (scanner)
      broken = run_scanner (scanner, path, &ran);
    if (!ran)
      return TRUE; /* no helper: load in-process, as without isolation */
    cache_store (canonical, &st, broken);
  }
  if (broken == NULL)
    return TRUE;
  nn_load_error (error, path, NN_PLUGIN_ERROR_CRASHED,
                 "broken plugin, not loaded: it %s when probed in a helper "
                 "process (NN_PLUGIN_PROBE=0 loads it in-process, to debug "
                 "it)", broken);
  return FALSE;
}
