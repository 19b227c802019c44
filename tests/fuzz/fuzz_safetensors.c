/* libFuzzer target: the safetensors reader (header parse, layout checks,
 * metadata) on arbitrary bytes, through a memory file. */
#define _GNU_SOURCE
#include <nnkit/nnkit.h>

#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

int
LLVMFuzzerTestOneInput (const unsigned char *data, size_t size)
{
  int fd = memfd_create ("fuzz.safetensors", MFD_CLOEXEC);
  if (fd < 0)
    return 0;
  if (size == 0 || write (fd, data, size) == (ssize_t) size) {
    char path[64];
    snprintf (path, sizeof path, "/proc/self/fd/%d", fd);
    GError *error = NULL;
    NnSafetensors *st = nn_safetensors_open (path, &error);
    if (st)
      nn_safetensors_free (st);
    g_clear_error (&error);
  }
  close (fd);
  return 0;
}
