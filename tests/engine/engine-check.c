/* A helper the engine tests run in a fresh process per case, since the CPU
 * probe and the BLAS decision happen once per process.
 *   engine-check cpu        features, vendor, family, model, name
 *   engine-check blas       nn_blas_setup(), then load OpenBLAS
 *   engine-check threads    nn_get_num_threads()
 *   engine-check preloaded  load OpenBLAS with a weak kernel first
 *   engine-check blas-threads  nn_blas_setup(), load OpenBLAS, its threads
 * Prints key=value lines. */
#include <nnkit/blas.h>
#include <nnkit/cpu.h>
#include <nnkit/plugin.h>

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *
load_openblas (void)
{
  void *h = dlopen ("libopenblas.so.0", RTLD_NOW | RTLD_LOCAL);
  const char *(*corename) (void);

  if (!h)
    return "cannot-load";
  corename = (const char *(*) (void)) dlsym (h, "openblas_get_corename");
  return corename ? corename () : "no-corename";
}

static void
print_blas (void)
{
  const char *env = getenv ("OPENBLAS_CORETYPE");
  char *desc = nn_blas_describe ();

  printf ("setup=%d\n", (int) nn_blas_get_setup ());
  printf ("coretype=%s\n", env ? env : "(unset)");
  printf ("best=%s\n", nn_blas_best_kernel_for_cpu ());
  printf ("describe=%s\n", desc);
  g_free (desc);
}

int
main (int argc, char **argv)
{
  const char *mode = argc > 1 ? argv[1] : "";

  if (strcmp (mode, "cpu") == 0)
    {
      const NnCpuInfo *cpu = nn_cpu_info_get ();
      char *f = nn_cpu_describe_features (cpu);
      printf ("features=%s\n", f);
      printf ("vendor=%s\nfamily=%u\nmodel=%u\nname=%s\n",
              nn_cpu_get_vendor (cpu), nn_cpu_get_family (cpu),
              nn_cpu_get_model (cpu), nn_cpu_get_model_name (cpu));
      g_free (f);
      return 0;
    }
  if (strcmp (mode, "threads") == 0)
    {
      printf ("threads=%d\n", nn_get_num_threads ());
      return 0;
    }
  if (strcmp (mode, "blas") == 0)
    {
      nn_blas_setup ();
      nn_blas_setup (); /* the second call must do nothing */
      print_blas ();
      printf ("loaded=%s\n", load_openblas ());
      return 0;
    }
  if (strcmp (mode, "blas-threads") == 0)
    {
      nn_blas_setup ();
      void *h = dlopen ("libopenblas.so.0", RTLD_NOW | RTLD_LOCAL);
      int (*get) (void) = h ? (int (*) (void)) dlsym (h, "openblas_get_num_threads")
                            : NULL;
      const char *env = getenv ("OPENBLAS_NUM_THREADS");
      printf ("env=%s\n", env ? env : "(unset)");
      printf ("openblas_threads=%d\n", get ? get () : -1);
      return 0;
    }
  if (strcmp (mode, "preloaded") == 0)
    {
      setenv ("OPENBLAS_CORETYPE", "Prescott", 1);
      printf ("loaded=%s\n", load_openblas ());
      unsetenv ("OPENBLAS_CORETYPE");
      nn_blas_setup ();
      print_blas ();
      return 0;
    }
  fprintf (stderr, "usage: engine-check cpu|blas|blas-threads|preloaded\n");
  return 2;
}
