/* nn-startup-floor: the part of `nnctl run`'s start-up that belongs to
 * oneDNN and the kernel, with no nnkit code: link libdnnl, create its CPU
 * engine, map weight files and read one value of every page, exit.
 * bench/startup_floor.py times it as a whole process and adds the
 * primitive creation and execution oneDNN reports for nnctl's first
 * forward, a floor under `nnctl run` (docs/ENGINE.md, "Start-up").
 *
 *   nn-startup-floor [FILE]...
 *
 * Each file is mapped privately and read-only, as the oneDNN weights
 * cache maps its entries; the sum of the values read is the exit status's
 * only use, so the compiler keeps the reads. */
#include <fcntl.h>
#include <oneapi/dnnl/dnnl.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

int
main (int argc, char **argv)
{
  dnnl_engine_t engine;
  float sum = 0;

  if (dnnl_engine_create (&engine, dnnl_cpu, 0) != dnnl_success)
    {
      fprintf (stderr, "nn-startup-floor: oneDNN has no CPU engine\n");
      return 1;
    }
  for (int a = 1; a < argc; a++)
    {
      struct stat st;
      int fd = open (argv[a], O_RDONLY | O_CLOEXEC);
      if (fd < 0 || fstat (fd, &st) != 0 || st.st_size < (off_t) sizeof (float))
        {
          fprintf (stderr, "nn-startup-floor: %s: cannot open or empty\n", argv[a]);
          return 1;
        }
      const float *p = mmap (NULL, st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
      close (fd);
      if (p == MAP_FAILED)
        {
          fprintf (stderr, "nn-startup-floor: %s: cannot map\n", argv[a]);
          return 1;
        }
      for (off_t i = 0; i < st.st_size / (off_t) sizeof (float); i += 1024)
        sum += p[i];
    }
  dnnl_engine_destroy (engine);
  return sum == 1234.5f ? 3 : 0;
}
