/* nnkit core: how long OpenMP's idle threads spin.  oneDNN (the dnnl
 * plugin) runs on libgomp, whose workers by default spin for about
 * 300000 iterations after every parallel region; between oneDNN's
 * primitives nnkit's own thread pool runs the elementwise work, so with
 * as many threads as cores a spinning OpenMP worker takes the core a pool
 * worker needs (the frozen-backbone resnet18 training step lost 2x on 2
 * threads).  libgomp reads its settings once, when it loads with the
 * first plugin that links it: set them before the first dlopen(). */
#include "nn-private.h"
#include "nn-engine-private.h"

#include <stdlib.h>

/* A short spin still catches back-to-back primitives (reorder, then the
 * convolution) without holding a core through the pool's work; libgomp
 * uses the same count itself when it has more threads than cores. */
#define NN_GOMP_SPINCOUNT "1000"

void
nn_omp_setup (void)
{
  static gsize once;

  if (!g_once_init_enter (&once))
    return;
  /* The user's settings win. */
  if (!g_getenv ("OMP_WAIT_POLICY") && !g_getenv ("GOMP_SPINCOUNT"))
    g_setenv ("GOMP_SPINCOUNT", NN_GOMP_SPINCOUNT, FALSE);
  g_once_init_leave (&once, 1);
}
