/* Mapping a weight file as the oneDNN weights cache maps an entry, shared
 * by the start-up floor programs (nn-startup-floor, nn-startup-stack).
 * Header-only and GLib-free: nn-startup-floor must link nothing but
 * libdnnl, so its time holds no other library's linking. */
#ifndef NN_BENCH_MAP_H
#define NN_BENCH_MAP_H

#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* Maps @path privately and read-only; the mapping (munmap() it) and its
 * size in @size, or NULL after one line on stderr that starts with @who
 * and names the file. */
static inline const unsigned char *
nn_bench_map_file (const char *who, const char *path, size_t *size)
{
  struct stat st;
  int fd = open (path, O_RDONLY | O_CLOEXEC);
  if (fd < 0 || fstat (fd, &st) != 0 || st.st_size < 1)
    {
      fprintf (stderr, "%s: %s: cannot open or empty\n", who, path);
      if (fd >= 0)
        close (fd);
      return NULL;
    }
  void *p = mmap (NULL, st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
  close (fd);
  if (p == MAP_FAILED)
    {
      fprintf (stderr, "%s: %s: cannot map\n", who, path);
      return NULL;
    }
  *size = st.st_size;
  return p;
}

/* Reads one byte of every page of @p[0..size), faulting each page in;
 * their sum, which the caller must use so the reads are kept. */
static inline unsigned long
nn_bench_touch_pages (const unsigned char *p, size_t size)
{
  unsigned long sum = 0;
  for (size_t i = 0; i < size; i += 4096)
    sum += p[i];
  return sum;
}

#endif
