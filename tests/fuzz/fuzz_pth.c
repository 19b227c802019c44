/* libFuzzer target for the weights readers (core/pth_*.c, shards.c,
 * weights_open.c) through the public nn_weights_open().
 *
 * The first input byte picks what the rest is:
 *   0: a whole file (zip, pickle, safetensors, index: detection decides);
 *   1: the data.pkl of a torch.save archive built here around it, with
 *      storages "0" (24 bytes) and "1" (8 bytes), so mutations reach the
 *      unpickler and the tensor checks instead of dying in the zip layer.
 * Every input must give a map or a GError, never a crash, a leak or a
 * hang; nothing else is checked.
 *
 * Built and run with the other targets (-Dfuzzing=true, docs/FUZZING.md);
 * seeds in tests/fuzz/corpus/pth/.
 * By hand: build-fuzz/tests/fuzz/fuzz-pth -max_len=4096 CORPUS tests/fuzz/corpus/pth */
#include <nnkit/nnkit.h>

#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>
#include <zip.h>

static char *path;

static void
remove_scratch (void)
{
  if (path)
    unlink (path);
}

/* One scratch file per process, removed at exit: libzip writes archives to
 * a path, not to memory. */
static const char *
scratch_path (void)
{
  if (path == NULL) {
    int fd = g_file_open_tmp ("nnkit-fuzz-XXXXXX.pth", &path, NULL);
    if (fd < 0)
      return NULL;
    close (fd);
    atexit (remove_scratch);
  }
  return path;
}

static gboolean
write_archive (const char *path, const uint8_t *pkl, size_t len)
{
  static const uint8_t storage0[24] = { 0, 0, 128, 63, 0, 0, 0, 64 };
  static const uint8_t storage1[8] = { 7 };
  int err = 0;
  zip_t *z = zip_open (path, ZIP_CREATE | ZIP_TRUNCATE, &err);
  if (z == NULL)
    return FALSE;
  struct { const char *name; const void *data; size_t len; } m[] = {
    { "archive/data.pkl", pkl, len },
    { "archive/data/0", storage0, sizeof storage0 },
    { "archive/data/1", storage1, sizeof storage1 },
    { "archive/version", "3\n", 2 },
  };
  for (size_t i = 0; i < G_N_ELEMENTS (m); i++) {
    zip_source_t *src = zip_source_buffer (z, m[i].data, m[i].len, 0);
    if (src == NULL || zip_file_add (z, m[i].name, src, 0) < 0) {
      zip_source_free (src);
      zip_discard (z);
      return FALSE;
    }
  }
  return zip_close (z) == 0;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  const char *path = scratch_path ();
  if (path == NULL || size < 1)
    return 0;
  gboolean ok = data[0] == 1
                ? write_archive (path, data + 1, size - 1)
                : g_file_set_contents (path, (const char *) data + 1,
                                       (gssize) size - 1, NULL);
  if (!ok)
    return 0;
  GError *error = NULL;
  NnSafetensors *st = nn_weights_open (path, NULL, &error);
  if (st) {
    /* Touch every tensor, as a load would. */
    for (guint i = 0; i < nn_safetensors_n_tensors (st); i++) {
      const char *name = nn_safetensors_name_at (st, i);
      NnDType d = NN_DTYPE_F32;
      nn_dtype_parse (nn_safetensors_get_info (st, name, NULL), &d);
      NnTensor *t = nn_safetensors_get (st, name, d, NULL);
      if (t)
        nn_tensor_unref (t);
    }
    nn_safetensors_free (st);
  } else {
    g_clear_error (&error);
  }
  return 0;
}
