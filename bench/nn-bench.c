/* nn-bench: times nnkit's forward for bench/bench_engine.py.
 *
 *   nn-bench forward MODEL --shape 1,3,224,224 [--threads N] [--repeat R]
 *                    [--warmup W] [--hooks] [--providers RULES]
 *   nn-bench steps [--n 1000] [--repeat R] [--warmup W]
 *   nn-bench memory MODEL --shape 1,3,224,224 [--threads N] [--providers R]
 *                   [--preload]
 *
 * forward prints "median_ms", "cpu_ms" (all threads), one "provider TYPE
 * PLUGIN" line per layer type in the model and the BLAS line; --hooks puts
 * a no-op pre and forward hook on every module first.  steps times a
 * Sequential of N Identity modules and prints "per_step_ns".  memory
 * prints the weights' bytes, the largest activation (shape inference),
 * and the peak RSS of a forward above the process before the model was
 * loaded (VmHWM, reset through /proc/self/clear_refs), for the first
 * forward and for a later one, all in MB, with the budget weights + 2 x
 * largest activation + 10 MB that docs/ENGINE.md states; --preload
 * loads and frees the model first, so the plugins' libraries (loaded on
 * demand) are in the baseline, and prints their share as preloaded_mb.
 * Timing only:
 * the input is seeded noise; correctness is the conformance tests' job. */
#include <nnkit/nnkit.h>
#include <nnkit/plugin.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench-time.h"

static gboolean
noop_pre (NnModule *m, const char *path, NnValue **args, NnValue **kwargs,
          gpointer user_data, GError **error)
{
  return TRUE;
}

static gboolean
noop_forward (NnModule *m, const char *path, const NnValue *args,
              const NnValue *kwargs, NnValue **output, gpointer user_data,
              GError **error)
{
  return TRUE;
}

static int
fail (const char *what, GError *e)
{
  fprintf (stderr, "nn-bench: %s: %s\n", what, e ? e->message : "failed");
  g_clear_error (&e);
  return 1;
}

/* Times @repeat forwards of @m on @x after @warmup; prints the medians. */
static int
time_forward (NnModule *m, NnTensor *x, int warmup, int repeat, double scale,
              const char *key)
{
  double *wall = g_new (double, repeat), *cpu = g_new (double, repeat);
  GError *e = NULL;
  /* Called with a tuple, so that models returning a dict or a tuple
   * (segmentation, detection backbones) time as well. */
  NnValue *args = nn_value_new_tuple ();
  nn_value_append (args, nn_value_new_tensor (x));

  for (int i = 0; i < warmup + repeat; i++)
    {
      double c0 = nn_bench_now_ms (CLOCK_PROCESS_CPUTIME_ID), t0 = nn_bench_now_ms (CLOCK_MONOTONIC);
      NnValue *y = nn_module_call (m, args, NULL, &e);
      double t1 = nn_bench_now_ms (CLOCK_MONOTONIC), c1 = nn_bench_now_ms (CLOCK_PROCESS_CPUTIME_ID);
      if (!y)
        {
          nn_value_unref (args);
          return fail ("forward", e);
        }
      nn_value_unref (y);
      if (i >= warmup)
        {
          wall[i - warmup] = t1 - t0;
          cpu[i - warmup] = c1 - c0;
        }
    }
  nn_value_unref (args);
  printf ("%s %.4f\n", key, nn_bench_median (wall, repeat) * scale);
  if (scale == 1.0)
    printf ("cpu_ms %.4f\n", nn_bench_median (cpu, repeat));
  g_free (wall);
  g_free (cpu);
  return 0;
}

static void
print_providers (NnModule *root)
{
  GPtrArray *mods = nn_module_named_modules (root);
  GHashTable *seen = g_hash_table_new (g_str_hash, g_str_equal);

  for (guint i = 0; i < mods->len; i++)
    {
      NnModule *m = ((NnNamedItem *) mods->pdata[i])->module;
      const char *type = nn_module_get_type_name (m);
      if (g_hash_table_add (seen, (gpointer) type))
        printf ("provider %s %s\n", type,
                nn_plugin_get_name (nn_module_get_plugin (m)));
    }
  g_hash_table_unref (seen);
  g_ptr_array_unref (mods);
}

static void
add_hooks (NnModule *root)
{
  GPtrArray *mods = nn_module_named_modules (root);

  for (guint i = 0; i < mods->len; i++)
    {
      NnModule *m = ((NnNamedItem *) mods->pdata[i])->module;
      /* Modules that never run (ModuleList) take no hooks. */
      NnHookHandle *a = nn_module_add_pre_hook (m, noop_pre, NULL, NULL, "bench", 0, NULL);
      NnHookHandle *b = nn_module_add_forward_hook (m, noop_forward, NULL, NULL, "bench", 0, NULL);
      if (a) nn_hook_handle_free (a);
      if (b) nn_hook_handle_free (b);
    }
  g_ptr_array_unref (mods);
}

/* A field of /proc/self/status in kB ("VmRSS:", "VmHWM:"), or -1. */
static double
status_kb (const char *key)
{
  char *text = NULL;
  double v = -1;
  if (!g_file_get_contents ("/proc/self/status", &text, NULL, NULL))
    return -1;
  const char *p = strstr (text, key);
  if (p)
    v = g_ascii_strtod (p + strlen (key), NULL);
  g_free (text);
  return v;
}

/* Resets VmHWM to the current RSS (Linux >= 4.0); FALSE when refused. */
static gboolean
reset_peak (void)
{
  FILE *f = fopen ("/proc/self/clear_refs", "w");
  if (!f)
    return FALSE;
  gboolean ok = fputs ("5", f) >= 0;
  return fclose (f) == 0 && ok;
}

static void
largest_out (NnModule *m, const char *path, guint depth, const NnValue *args,
             const NnValue *kwargs, const NnValue *out, gpointer user_data)
{
  gsize *max = user_data;
  NnTensor *t = nn_value_get_tensor (out);
  if (t)
    *max = MAX (*max, nn_tensor_nbytes (t));
}

static int
memory (NnRegistry *reg, const char *path, const NnShape *s, gboolean preload)
{
  GError *e = NULL;
  double before = status_kb ("VmRSS:");
  /* --preload: the model's plugins and the libraries they link (libdnnl,
   * OpenBLAS) load with a first load of the model, freed again, so the
   * baseline holds them and the peaks count the forward's own memory. */
  if (preload)
    {
      NnModule *m0 = nn_model_load (reg, path, NULL, TRUE, &e);
      if (!m0)
        return fail (path, e);
      nn_module_unref (m0);
    }
  double base = status_kb ("VmRSS:");
  NnModule *m = nn_model_load (reg, path, NULL, TRUE, &e);
  if (!m)
    return fail (path, e);
  gsize weights = 0, largest = 0;
  GPtrArray *sd = nn_module_state_dict (m);
  for (guint i = 0; i < sd->len; i++)
    weights += nn_tensor_nbytes (((NnNamedItem *) sd->pdata[i])->tensor);
  g_ptr_array_unref (sd);
  NnTensor *x = nn_tensor_new (NN_DTYPE_F32, s);
  GRand *rng = g_rand_new_with_seed (7);
  for (gint64 i = 0; i < nn_tensor_numel (x); i++)
    nn_tensor_f32 (x)[i] = (float) g_rand_double_range (rng, -1, 1);
  g_rand_free (rng);
  NnValue *args = nn_value_new_tuple ();
  nn_value_append (args, nn_value_new_tensor (x));
  NnValue *meta = nn_module_infer_observed (m, args, NULL, largest_out, &largest, &e);
  nn_value_unref (args);
  if (!meta)
    return fail ("shape inference", e);
  nn_value_unref (meta);
  double peaks[2];
  for (int i = 0; i < 3; i++)
    {
      if (!reset_peak ())
        return fail ("/proc/self/clear_refs", NULL);
      NnTensor *y = nn_module_forward (m, x, &e);
      if (!y)
        return fail ("forward", e);
      nn_tensor_unref (y);
      if (i != 1)
        peaks[i / 2] = (status_kb ("VmHWM:") - base) / 1024.0;
    }
  double mb = 1024.0 * 1024.0;
  printf ("weights_mb %.1f\nlargest_activation_mb %.1f\n", weights / mb,
          largest / mb);
  printf ("first_forward_peak_mb %.1f\nforward_peak_mb %.1f\n", peaks[0],
          peaks[1]);
  printf ("budget_mb %.1f\npool_mb %.1f\n",
          weights / mb + 2 * largest / mb + 10, nn_tensor_pool_get_bytes () / mb);
  if (preload)
    printf ("preloaded_mb %.1f\n", (base - before) / 1024.0);
  print_providers (m);
  nn_tensor_unref (x);
  nn_module_unref (m);
  return 0;
}

int
main (int argc, char **argv)
{
  char *shape_text = NULL, *providers = NULL;
  int threads = 0, repeat = 9, warmup = 3, n = 1000;
  gboolean hooks = FALSE, preload = FALSE;
  GError *e = NULL;
  GOptionEntry entries[] = {
    { "shape", 0, 0, G_OPTION_ARG_STRING, &shape_text, "input shape", "SHAPE" },
    { "threads", 0, 0, G_OPTION_ARG_INT, &threads, "threads", "N" },
    { "repeat", 0, 0, G_OPTION_ARG_INT, &repeat, "timed runs", "R" },
    { "warmup", 0, 0, G_OPTION_ARG_INT, &warmup, "untimed runs first", "W" },
    { "hooks", 0, 0, G_OPTION_ARG_NONE, &hooks, "no-op hooks on every module", NULL },
    { "providers", 0, 0, G_OPTION_ARG_STRING, &providers, "provider rules", "RULES" },
    { "n", 0, 0, G_OPTION_ARG_INT, &n, "steps: Identity modules", "N" },
    { "preload", 0, 0, G_OPTION_ARG_NONE, &preload,
      "memory: load the model once first, so that its plugins' libraries "
      "are in the baseline", NULL },
    { NULL }
  };
  GOptionContext *ctx = g_option_context_new ("forward MODEL | steps | memory MODEL");

  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!g_option_context_parse (ctx, &argc, &argv, &e))
    return fail ("options", e);
  g_option_context_free (ctx);
  if (argc < 2 || repeat < 1 || warmup < 0 || n < 1)
    {
      fprintf (stderr, "usage: nn-bench forward MODEL --shape S | nn-bench steps\n");
      return 2;
    }
  if (threads > 0)
    nn_set_num_threads (threads);

  NnRegistry *reg = nn_registry_new ();
  if (!nn_registry_load_default (reg, &e))
    return fail ("plugins", e);
  if (providers && !nn_registry_set_providers (reg, providers, &e))
    return fail ("--providers", e);

  if (strcmp (argv[1], "steps") == 0)
    {
      GString *d = g_string_new ("{\"format\": \"nnkit\", \"version\": 1, \"model\": "
                                 "{\"type\": \"Sequential\", \"children\": [");
      for (int i = 0; i < n; i++)
        g_string_append_printf (d, "%s{\"name\": \"%d\", \"type\": \"Identity\"}",
                                i ? ", " : "", i);
      g_string_append (d, "]}}");
      NnModule *m = nn_descriptor_load_data (reg, d->str, -1, "steps", &e);
      g_string_free (d, TRUE);
      if (!m)
        return fail ("steps model", e);
      NnShape s = { 1, { 1 } };
      NnTensor *x = nn_tensor_new (NN_DTYPE_F32, &s);
      int rc = time_forward (m, x, warmup, repeat, 1e6 / n, "per_step_ns");
      nn_tensor_unref (x);
      nn_module_unref (m);
      nn_registry_unref (reg);
      return rc;
    }

  if (strcmp (argv[1], "memory") == 0 && argc >= 3 && shape_text)
    {
      NnShape ms;
      if (!nn_shape_parse (shape_text, &ms, &e))
        return fail ("--shape", e);
      int rc = memory (reg, argv[2], &ms, preload);
      nn_registry_unref (reg);
      return rc;
    }
  if (strcmp (argv[1], "forward") != 0 || argc < 3 || !shape_text)
    {
      fprintf (stderr, "usage: nn-bench forward MODEL --shape S\n");
      return 2;
    }
  NnShape s;
  if (!nn_shape_parse (shape_text, &s, &e))
    return fail ("--shape", e);
  NnModule *m = nn_model_load (reg, argv[2], NULL, TRUE, &e);
  if (!m)
    return fail (argv[2], e);
  NnTensor *x = nn_tensor_new (NN_DTYPE_F32, &s);
  GRand *rng = g_rand_new_with_seed (7);
  float *xd = nn_tensor_f32 (x);
  for (gint64 i = 0; i < nn_tensor_numel (x); i++)
    xd[i] = (float) g_rand_double_range (rng, -1, 1);
  g_rand_free (rng);
  if (hooks)
    add_hooks (m);
  print_providers (m);
  int rc = time_forward (m, x, warmup, repeat, 1.0, "median_ms");
  char *blas = nn_blas_describe ();
  printf ("blas %s\n", blas);
  g_free (blas);
  nn_tensor_unref (x);
  nn_module_unref (m);
  nn_registry_unref (reg);
  g_free (shape_text);
  g_free (providers);
  return rc;
}
