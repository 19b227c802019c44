/* nnkit core: makes sure OpenBLAS does not silently run generic kernels.
 * The core never links OpenBLAS: a helper process reports the kernel
 * OpenBLAS would pick, and OPENBLAS_CORETYPE is set before the first
 * plugin (which may link OpenBLAS) is dlopen'ed.  See include/nnkit/blas.h. */
#include "nn-private.h"
#include "nn-engine-private.h"

#include <nnkit/blas.h>
#include <nnkit/cpu.h>

#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

#ifndef NN_BUILD_ROOT
#error "NN_BUILD_ROOT must be defined by the build"
#endif
#ifndef NN_INSTALLED_LIBEXEC_DIR
#error "NN_INSTALLED_LIBEXEC_DIR must be defined by the build"
#endif

#define PROBE_NAME "nnkit-blas-probe"

/* OpenBLAS 0.3.21's DYNAMIC_ARCH kernels (openblas_get_corename()
 * spellings) ranked by the instructions they use.  Names are compared
 * without case, as OpenBLAS reads OPENBLAS_CORETYPE. */
typedef struct {
  const char *name;
  int level;
} KernelLevel;

enum { L_GENERIC, L_SSE3, L_SSE42, L_AVX, L_AVX2, L_AVX512, L_AVX512_BF16 };

static const KernelLevel kernel_levels[] = {
  { "Unknown", L_GENERIC }, { "Katmai", L_GENERIC },
  { "Coppermine", L_GENERIC }, { "Northwood", L_GENERIC },
  { "Banias", L_GENERIC }, { "Athlon", L_GENERIC },
  { "Opteron", L_GENERIC },
  { "Prescott", L_SSE3 }, { "Atom", L_SSE3 }, { "Core2", L_SSE3 },
  { "Penryn", L_SSE3 }, { "Dunnington", L_SSE3 },
  { "Opteron(SSE3)", L_SSE3 }, { "Barcelona", L_SSE3 },
  { "Nano", L_SSE3 }, { "Bobcat", L_SSE3 },
  { "Nehalem", L_SSE42 },
  { "Sandybridge", L_AVX }, { "Bulldozer", L_AVX },
  { "Piledriver", L_AVX }, { "Steamroller", L_AVX },
  { "Haswell", L_AVX2 }, { "Excavator", L_AVX2 }, { "Zen", L_AVX2 },
  { "SkylakeX", L_AVX512 },
  { "Cooperlake", L_AVX512_BF16 },
};

/* The strongest kernel per level, tried from the CPU's level down. */
static const char *const level_kernel[] = {
  [L_GENERIC] = NULL, [L_SSE3] = "Prescott", [L_SSE42] = "Nehalem",
  [L_AVX] = "Sandybridge", [L_AVX2] = "Haswell", [L_AVX512] = "SkylakeX",
  [L_AVX512_BF16] = "Cooperlake",
};

static int
kernel_level (const char *name)
{
  for (guint i = 0; name && i < G_N_ELEMENTS (kernel_levels); i++)
    if (g_ascii_strcasecmp (kernel_levels[i].name, name) == 0)
      return kernel_levels[i].level;
  return -1;
}

static int
cpu_level (void)
{
  const NnCpuInfo *cpu = nn_cpu_info_get ();
  const guint64 avx512 = NN_CPU_AVX512F | NN_CPU_AVX512CD | NN_CPU_AVX512DQ
                         | NN_CPU_AVX512BW | NN_CPU_AVX512VL;

  if (nn_cpu_has (cpu, avx512 | NN_CPU_AVX512_BF16))
    return L_AVX512_BF16;
  if (nn_cpu_has (cpu, avx512))
    return L_AVX512;
  if (nn_cpu_has (cpu, NN_CPU_AVX2 | NN_CPU_FMA))
    return L_AVX2;
  if (nn_cpu_has (cpu, NN_CPU_AVX))
    return L_AVX;
  if (nn_cpu_has (cpu, NN_CPU_SSE4_2))
    return L_SSE42;
  if (nn_cpu_has (cpu, NN_CPU_SSE3))
    return L_SSE3;
  return L_GENERIC;
}

const char *
nn_blas_best_kernel_for_cpu (void)
{
  const char *k = level_kernel[cpu_level ()];
  return k ? k : "generic";
}

static struct {
  GMutex lock;               /* guards everything below */
  NnBlasSetup setup;
  char *default_kernel;      /* the probe's answer without an override */
  char *chosen;              /* OPENBLAS_CORETYPE value nnkit set */
  char *reported;            /* what a plugin says OpenBLAS runs */
  char *why;                 /* NN_BLAS_UNKNOWN / TOO_LATE: the reason */
} state;

/* The probe helper: NN_BLAS_PROBE, else the build tree's when this
 * libnnkit is the build tree's, else the installed one. */
static char *
probe_path (void)
{
  const char *env = g_getenv ("NN_BLAS_PROBE");
  Dl_info info;
  char *lib = NULL, *build = NULL, *path = NULL;

  if (env && *env)
    return g_strdup (env);
  if (dladdr ((void *) nn_blas_setup, &info) && info.dli_fname)
    lib = realpath (info.dli_fname, NULL);
  build = realpath (NN_BUILD_ROOT, NULL);
  if (lib && build && g_str_has_prefix (lib, build)
      && lib[strlen (build)] == G_DIR_SEPARATOR)
    path = g_build_filename (build, "tools", "blas-probe", PROBE_NAME, NULL);
  else
    path = g_build_filename (NN_INSTALLED_LIBEXEC_DIR, PROBE_NAME, NULL);
  free (lib);
  free (build);
  return path;
}

/* Runs the helper, with OPENBLAS_CORETYPE=@coretype when non-NULL.
 * Returns: (transfer full) (nullable) the kernel it reports (its first
 * line); *@lib_out (optional, transfer full, nullable) the OpenBLAS file
 * it names on its second line. */
static char *
run_probe (const char *path, const char *coretype, char **lib_out,
           GError **error)
{
  char **envp = g_get_environ ();
  const char *argv[] = { path, NULL };
  char *out = NULL, *err = NULL;
  int status = 0;

  /* One thread is enough to name a kernel; OpenBLAS would start one per
   * core otherwise. */
  envp = g_environ_setenv (envp, "OPENBLAS_NUM_THREADS", "1", TRUE);
  envp = coretype ? g_environ_setenv (envp, "OPENBLAS_CORETYPE", coretype, TRUE)
                  : g_environ_unsetenv (envp, "OPENBLAS_CORETYPE");
  gboolean ok = g_spawn_sync (NULL, (char **) argv, envp,
                              G_SPAWN_DEFAULT, NULL, NULL, &out, &err,
                              &status, error)
                && g_spawn_check_wait_status (status, error);
  g_strfreev (envp);
  g_free (err);
  if (!ok)
    {
      g_free (out);
      return NULL;
    }
  char *nl = strchr (out, '\n');
  if (nl)
    {
      *nl = '\0';
      if (lib_out)
        *lib_out = g_strdup (g_strstrip (nl + 1));
    }
  g_strstrip (out);
  if (*out == '\0')
    {
      g_set_error (error, G_SPAWN_ERROR, G_SPAWN_ERROR_FAILED,
                   "%s printed no kernel name", path);
      g_clear_pointer (&out, g_free);
    }
  return out;
}

#define OPENBLAS_SONAME "libopenblas.so.0"

/* Returns: (transfer full) (nullable) the kernel of the OpenBLAS that
 * dlopen() gives with @flags (RTLD_NOLOAD: only one already in the
 * process, whose handle is closed again), or NULL.  A library loaded here
 * stays: the plugins use the same one. */
static char *
openblas_corename (int flags)
{
  void *h = dlopen (OPENBLAS_SONAME, RTLD_NOW | flags);
  const char *(*corename) (void) =
    h ? (const char *(*) (void)) dlsym (h, "openblas_get_corename") : NULL;
  char *k = corename ? g_strdup (corename ()) : NULL;
  if (h && (flags & RTLD_NOLOAD))
    dlclose (h);
  return k;
}

/* OpenBLAS already in the process (linked by the host program): its
 * kernel is fixed; read it and complain if it is weak. */
static gboolean
check_loaded_locked (void)
{
  char *k = openblas_corename (RTLD_NOLOAD);
  if (k)
    {
      state.default_kernel = k;
      if (kernel_level (k) >= 0 && kernel_level (k) < cpu_level ())
        {
          state.setup = NN_BLAS_TOO_LATE;
          state.why = g_strdup_printf (
            "OpenBLAS was loaded before nnkit with the '%s' kernel; this "
            "CPU runs '%s': set OPENBLAS_CORETYPE=%s before the program "
            "starts", k, nn_blas_best_kernel_for_cpu (),
            nn_blas_best_kernel_for_cpu ());
          g_printerr ("nnkit: warning: %s\n", state.why);
        }
      else
        state.setup = NN_BLAS_DEFAULT_OK;
    }
  return k != NULL;
}

static void
decide_locked (void)
{
  const char *user = g_getenv ("OPENBLAS_CORETYPE");
  const char *fake = g_getenv ("NN_BLAS_PROBE_CORENAME");
  g_autofree char *path = NULL, *lib = NULL;
  GError *e = NULL;
  int want = cpu_level ();

  if (user)
    {
      state.setup = NN_BLAS_USER_SET;
      return;
    }
  if (check_loaded_locked ())
    return;

  path = probe_path ();
  /* The answer of an earlier process with this very probe, OpenBLAS and
   * CPU: no helper to spawn (blas_cache.c). */
  if (!(fake && *fake)
      && nn_blas_cache_lookup (path, &state.default_kernel, &state.chosen))
    {
      if (state.chosen)
        {
          g_setenv ("OPENBLAS_CORETYPE", state.chosen, TRUE);
          state.setup = NN_BLAS_OVERRIDDEN;
        }
      else
        state.setup = NN_BLAS_DEFAULT_OK;
      return;
    }
  /* NN_BLAS_PROBE_CORENAME stands in for the probe's first answer, so a
   * test can play a CPU OpenBLAS does not know. */
  state.default_kernel = fake && *fake ? g_strdup (fake)
                                       : run_probe (path, NULL, &lib, &e);
  if (!state.default_kernel)
    {
      state.setup = NN_BLAS_UNKNOWN;
      state.why = g_strdup_printf ("cannot tell which OpenBLAS kernel runs: %s",
                                   e->message);
      g_printerr ("nnkit: warning: %s\n", state.why);
      g_clear_error (&e);
      return;
    }
  int have = kernel_level (state.default_kernel);
  if (have < 0 || have >= want)
    {
      state.setup = NN_BLAS_DEFAULT_OK;
      if (lib)
        nn_blas_cache_store (path, lib, state.default_kernel, NULL);
      return;
    }

  /* Try the CPU's level first, then weaker ones still better than the
   * default, until the helper confirms OpenBLAS takes the override (a
   * build may lack a kernel). */
  for (int level = want; level > have; level--)
    {
      const char *k = level_kernel[level];
      g_autofree char *got = k ? run_probe (path, k, NULL, NULL) : NULL;

      if (got && kernel_level (got) == level)
        {
          g_setenv ("OPENBLAS_CORETYPE", k, TRUE);
          state.chosen = g_strdup (k);
          state.setup = NN_BLAS_OVERRIDDEN;
          if (lib && !(fake && *fake))
            nn_blas_cache_store (path, lib, state.default_kernel, k);
          return;
        }
    }
  state.setup = NN_BLAS_UNKNOWN;
  state.why = g_strdup_printf ("OpenBLAS picks the '%s' kernel and accepts no "
                               "stronger one this CPU could run ('%s')",
                               state.default_kernel,
                               nn_blas_best_kernel_for_cpu ());
  g_printerr ("nnkit: warning: %s\n", state.why);
}

/* OpenBLAS (pthread build) starts one worker per core when it loads, and
 * each spins in sched_yield() for about 0.1 s before it sleeps: a second
 * core's worth of CPU at every start-up, even when oneDNN does all the
 * work and OpenBLAS never runs.  It loads with one thread instead; the
 * BLAS plugins raise the count to nnkit's before their first product
 * (nn_blas_prepare(), plugins/blas), and OpenBLAS then starts the
 * workers.  The user's OPENBLAS_NUM_THREADS or GOTO_NUM_THREADS wins. */
static void
defer_threads (void)
{
  void *h = dlopen (OPENBLAS_SONAME, RTLD_NOW | RTLD_NOLOAD);

  if (h)
    {
      dlclose (h); /* already loaded: its threads are running */
      return;
    }
  if (!g_getenv ("OPENBLAS_NUM_THREADS") && !g_getenv ("GOTO_NUM_THREADS"))
    g_setenv ("OPENBLAS_NUM_THREADS", "1", FALSE);
}

void
nn_blas_setup (void)
{
  static gsize once;

  if (g_once_init_enter (&once))
    {
      g_mutex_lock (&state.lock);
      defer_threads ();
      decide_locked ();
      g_mutex_unlock (&state.lock);
      g_once_init_leave (&once, 1);
    }
}

NnBlasSetup
nn_blas_get_setup (void)
{
  NnBlasSetup s;

  g_mutex_lock (&state.lock);
  s = state.setup;
  g_mutex_unlock (&state.lock);
  return s;
}

void
nn_blas_report_kernel (const char *corename)
{
  g_return_if_fail (corename != NULL);
  g_mutex_lock (&state.lock);
  if (!state.reported)
    state.reported = g_strdup (corename);
  g_mutex_unlock (&state.lock);
}

/* The plugins load OpenBLAS on first use (plugins/blas/nn-blas.c), so a
 * process that has not multiplied through it yet has no kernel reported.
 * Asking loads it here, as a plugin would (after the setup above): the
 * kernel a BLAS call will run is what `nnctl plugins` is read for.  A
 * library that cannot be loaded leaves nothing reported. */
static void
load_to_report (void)
{
  g_mutex_lock (&state.lock);
  gboolean known = state.reported != NULL;
  g_mutex_unlock (&state.lock);
  if (known)
    return;
  nn_blas_setup ();
  g_autofree char *k = openblas_corename (RTLD_LOCAL);
  if (k)
    nn_blas_report_kernel (k);
}

char *
nn_blas_get_kernel (void)
{
  char *k;

  load_to_report ();
  g_mutex_lock (&state.lock);
  k = g_strdup (state.reported);
  g_mutex_unlock (&state.lock);
  return k;
}

char *
nn_blas_describe (void)
{
  GString *s = g_string_new ("OpenBLAS kernel: ");
  const char *best = nn_blas_best_kernel_for_cpu ();

  load_to_report ();
  g_mutex_lock (&state.lock);
  g_string_append (s, state.reported ? state.reported
                      : "unknown (OpenBLAS cannot be loaded)");
  switch (state.setup)
    {
    case NN_BLAS_NOT_CHECKED:
      g_string_append (s, " (not checked yet)");
      break;
    case NN_BLAS_DEFAULT_OK:
      g_string_append_printf (s, " (OpenBLAS's own choice '%s'; this CPU "
                              "runs up to '%s')", state.default_kernel
                              ? state.default_kernel : "?", best);
      break;
    case NN_BLAS_OVERRIDDEN:
      g_string_append_printf (s, " (OPENBLAS_CORETYPE=%s set by nnkit: "
                              "OpenBLAS alone picks '%s' on this CPU)",
                              state.chosen, state.default_kernel);
      break;
    case NN_BLAS_USER_SET:
      g_string_append_printf (s, " (OPENBLAS_CORETYPE=%s set by the user; "
                              "this CPU runs up to '%s')",
                              g_getenv ("OPENBLAS_CORETYPE"), best);
      break;
    case NN_BLAS_TOO_LATE:
    case NN_BLAS_UNKNOWN:
      g_string_append_printf (s, " (warning: %s)", state.why);
      break;
    }
  g_mutex_unlock (&state.lock);
  return g_string_free (s, FALSE);
}
