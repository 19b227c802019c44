/* nnkit-blas-probe: prints the kernel OpenBLAS picks in this environment,
 * then the file OpenBLAS was loaded from.  libnnkit runs it before loading
 * any plugin, since OpenBLAS reads OPENBLAS_CORETYPE only once, when it
 * loads (core/blas_setup.c); the file lets it cache the answer. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* dladdr */
#endif
#include <cblas.h>
#include <dlfcn.h>
#include <stdio.h>

int
main (void)
{
  const char *name = openblas_get_corename ();
  Dl_info info;

  if (!name || !*name)
    return 1;
  printf ("%s\n", name);
  if (dladdr ((void *) openblas_get_corename, &info) && info.dli_fname)
    printf ("%s\n", info.dli_fname);
  return 0;
}
