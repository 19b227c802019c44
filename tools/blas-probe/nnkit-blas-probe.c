/* nnkit-blas-probe: prints the kernel OpenBLAS picks in this environment.
 * libnnkit runs it before loading any plugin, since OpenBLAS reads
 * OPENBLAS_CORETYPE only once, when it loads (core/blas_setup.c). */
#include <cblas.h>
#include <stdio.h>

int
main (void)
{
  const char *name = openblas_get_corename ();

  if (!name || !*name)
    return 1;
  printf ("%s\n", name);
  return 0;
}
