/* nn-bench-train: times one nnkit training step for bench/bench_train.py.
 *
 *   nn-bench-train MODEL --batch 8 --size 224 --classes 10 [--freeze GLOB]
 *                  [--unfreeze GLOB] [--threads N] [--repeat R] [--warmup W]
 *                  [--lr LR]
 *
 * One step is PyTorch's opt.zero_grad(); loss = cross_entropy(model(x), y);
 * loss.backward(); opt.step() with plain SGD, the model in train mode
 * (BatchNorm on batch statistics).  Prints "median_ms" (wall clock),
 * "cpu_ms" (process CPU time, all threads), "page_faults" (minor faults
 * of the process per step: fresh pages a step touches) and
 * "loss_first"/"loss_last" so the driver can see that the steps trained.  Input and labels are
 * seeded noise; correctness is tests/train's job. */
#include <nnkit/nnkit.h>
#include <nnkit/train.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "bench-time.h"

static double
minor_faults (void)
{
  struct rusage u;
  return getrusage (RUSAGE_SELF, &u) == 0 ? (double) u.ru_minflt : 0.0;
}

static int
fail (const char *what, GError *e)
{
  fprintf (stderr, "nn-bench-train: %s: %s\n", what, e ? e->message : "failed");
  g_clear_error (&e);
  return 1;
}

/* One training step; returns the loss, or NAN with @error set. */
static double
step (NnModule *m, NnModule *loss, NnOptimizer *opt, NnTensor *x, NnTensor *y,
      guint32 seed, GError **error)
{
  double value = NAN;
  nn_module_zero_grad (m);
  NnTape *tape = nn_tape_new (seed);
  NnValue *xa = nn_value_new_tuple ();
  nn_value_append (xa, nn_value_new_tensor (x));
  NnValue *out = nn_tape_call (tape, m, xa, NULL, error);
  NnValue *l = NULL;
  if (out) {
    NnValue *la = nn_value_new_tuple ();
    nn_value_append (la, nn_value_new_tensor (nn_value_get_tensor (out)));
    nn_value_append (la, nn_value_new_tensor (y));
    l = nn_tape_call (tape, loss, la, NULL, error);
    nn_value_unref (la);
  }
  if (l && nn_backward (tape, nn_value_get_tensor (l), NULL, error)
      && nn_optimizer_step (opt, error))
    value = nn_tensor_f32 (nn_value_get_tensor (l))[0];
  if (l)
    nn_value_unref (l);
  if (out)
    nn_value_unref (out);
  nn_value_unref (xa);
  nn_tape_free (tape);
  return value;
}

int
main (int argc, char **argv)
{
  gint batch = 8, size = 224, classes = 10, threads = 1, repeat = 9, warmup = 2;
  double lr = 0.01;
  char *freeze = NULL, *unfreeze = NULL;
  GError *e = NULL;
  const GOptionEntry entries[] = {
    { "batch", 0, 0, G_OPTION_ARG_INT, &batch, "Batch size (8)", "B" },
    { "size", 0, 0, G_OPTION_ARG_INT, &size, "Image side (224)", "S" },
    { "classes", 0, 0, G_OPTION_ARG_INT, &classes, "Label range (10)", "C" },
    { "freeze", 0, 0, G_OPTION_ARG_STRING, &freeze, "Freeze parameters matching GLOB", "GLOB" },
    { "unfreeze", 0, 0, G_OPTION_ARG_STRING, &unfreeze,
      "Then make those matching GLOB trainable again: --freeze '*' --unfreeze fc", "GLOB" },
    { "threads", 0, 0, G_OPTION_ARG_INT, &threads, "nn_set_num_threads (1)", "N" },
    { "repeat", 0, 0, G_OPTION_ARG_INT, &repeat, "Timed steps (9)", "R" },
    { "warmup", 0, 0, G_OPTION_ARG_INT, &warmup, "Untimed steps first (2)", "W" },
    { "lr", 0, 0, G_OPTION_ARG_DOUBLE, &lr, "SGD learning rate (0.01)", "LR" },
    { NULL }
  };
  GOptionContext *ctx = g_option_context_new ("MODEL - time one training step");
  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!g_option_context_parse (ctx, &argc, &argv, &e))
    return fail ("options", e);
  g_option_context_free (ctx);
  if (argc != 2 || batch < 1 || size < 1 || classes < 1 || threads < 1 || repeat < 1
      || warmup < 0) {
    fprintf (stderr, "usage: nn-bench-train MODEL [--batch B] [--size S] [--classes C] "
             "[--freeze GLOB] [--threads N] [--repeat R] [--warmup W]\n");
    return 2;
  }
  nn_set_num_threads (threads);
  NnRegistry *reg = nn_registry_new ();
  if (!nn_registry_load_default (reg, &e))
    return fail ("plugins", e);
  NnModule *m = nn_model_load (reg, argv[1], NULL, TRUE, &e);
  if (!m)
    return fail (argv[1], e);
  if (freeze && !nn_module_set_requires_grad (m, freeze, FALSE, NULL, &e))
    return fail ("--freeze", e);
  if (unfreeze && !nn_module_set_requires_grad (m, unfreeze, TRUE, NULL, &e))
    return fail ("--unfreeze", e);
  NnModule *loss = nn_module_new_from_type (reg, "CrossEntropyLoss", NULL, "loss", &e);
  if (!loss)
    return fail ("CrossEntropyLoss", e);
  NnOptimConfig cfg;
  nn_optim_config_init (&cfg, NN_OPTIM_SGD);
  cfg.lr = lr;
  NnOptimizer *opt = nn_optimizer_new (m, &cfg);
  nn_module_train (m, TRUE);

  NnShape xs = { 4, { batch, 3, size, size } }, ys = { 1, { batch } };
  NnTensor *x = nn_tensor_new (NN_DTYPE_F32, &xs), *y = nn_tensor_new (NN_DTYPE_I64, &ys);
  GRand *r = g_rand_new_with_seed (7);
  float *xd = nn_tensor_f32 (x);
  for (gint64 i = 0, n = nn_tensor_numel (x); i < n; i++)
    xd[i] = (float) g_rand_double_range (r, -1.0, 1.0);
  for (gint i = 0; i < batch; i++)
    nn_tensor_i64 (y)[i] = g_rand_int_range (r, 0, classes);
  g_rand_free (r);

  double *wall = g_new (double, repeat), *cpu = g_new (double, repeat);
  double *faults = g_new (double, repeat);
  double first = NAN, last = NAN;
  for (int i = 0; i < warmup + repeat; i++) {
    double f0 = minor_faults ();
    double c0 = nn_bench_now_ms (CLOCK_PROCESS_CPUTIME_ID), t0 = nn_bench_now_ms (CLOCK_MONOTONIC);
    double v = step (m, loss, opt, x, y, (guint32) i, &e);
    double t1 = nn_bench_now_ms (CLOCK_MONOTONIC), c1 = nn_bench_now_ms (CLOCK_PROCESS_CPUTIME_ID);
    if (isnan (v))
      return fail ("step", e);
    if (i == 0)
      first = v;
    last = v;
    if (i >= warmup) {
      wall[i - warmup] = t1 - t0;
      cpu[i - warmup] = c1 - c0;
      faults[i - warmup] = minor_faults () - f0;
    }
  }
  printf ("median_ms %.3f\ncpu_ms %.3f\npage_faults %.0f\nloss_first %.6f\nloss_last %.6f\n",
          nn_bench_median (wall, repeat), nn_bench_median (cpu, repeat),
          nn_bench_median (faults, repeat), first, last);
  g_free (wall);
  g_free (cpu);
  g_free (faults);
  g_free (freeze);
  g_free (unfreeze);
  nn_tensor_unref (x);
  nn_tensor_unref (y);
  nn_optimizer_free (opt);
  nn_module_unref (loss);
  nn_module_unref (m);
  nn_registry_unref (reg);
  return 0;
}
