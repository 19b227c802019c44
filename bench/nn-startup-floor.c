/* nn-startup-floor: the part of `nnctl run`'s start-up that belongs to
 * oneDNN and the kernel, with no nnkit code: link libdnnl, create its CPU
 * engine, map weight files and read one byte of every page, exit.
 * bench/startup_floor.py times it as a whole process and adds the
 * primitive creation and execution oneDNN reports for nnctl's first
 * forward, a floor under `nnctl run` (docs/ENGINE.md, "Start-up").
 *
 *   nn-startup-floor [FILE]...
 *
 * Each file is mapped privately and read-only, as the oneDNN weights
 * cache maps its entries; the sum of the values read is the exit status's
 * only use, so the compiler keeps the reads. */
#include <oneapi/dnnl/dnnl.h>
#include <stdio.h>
#include <sys/mman.h>

#include "bench-map.h"

int
main (int argc, char **argv)
{
  dnnl_engine_t engine;
  unsigned long sum = 0;

  if (dnnl_engine_create (&engine, dnnl_cpu, 0) != dnnl_success)
    {
      fprintf (stderr, "nn-startup-floor: oneDNN has no CPU engine\n");
      return 1;
    }
  for (int a = 1; a < argc; a++)
    {
      size_t size;
      const unsigned char *p = nn_bench_map_file ("nn-startup-floor", argv[a], &size);
      if (!p)
        return 1;
      sum += nn_bench_touch_pages (p, size);
      munmap ((void *) p, size);
    }
  dnnl_engine_destroy (engine);
  return sum == 1 ? 3 : 0;
}
