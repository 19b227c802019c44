/* nnkit core: libzip, opened on the first .pth read instead of linked.
 * Linked, it and its libcrypto cost every process that links libnnkit
 * about 1.5 ms and 1.6 MB of RSS at start-up, for a format few runs read. */
#include "pth-private.h"

#include <dlfcn.h>
#include <string.h>

#ifndef NN_ZIP_SONAME
#error "NN_ZIP_SONAME (libzip's soname, set by meson.build) is not defined"
#endif

typedef struct {
  NnPthZipApi api;
  char *why; /* NULL once loaded, else dlerror()'s text; never freed */
} ZipLib;

/* Stores @name's address in the function pointer at @fn, or sets *@why. */
static void
zip_lib_sym (void *handle, const char *name, void *fn, char **why)
{
  void *sym = dlsym (handle, name);
  if (sym == NULL) {
    const char *e = dlerror ();
    *why = e ? g_strdup (e) : g_strdup_printf ("undefined symbol: %s", name);
    return;
  }
  /* POSIX: a function's address survives the trip through void *. */
  memcpy (fn, &sym, sizeof sym);
}

/* Fills @lib, or sets lib->why.  The handle is never closed once every
 * symbol resolved: the table points into it for the process's lifetime
 * (so valgrind counts libzip's own allocations as still reachable). */
static void
zip_lib_load (ZipLib *lib)
{
  void *handle = dlopen (NN_ZIP_SONAME, RTLD_NOW | RTLD_LOCAL);
  if (handle == NULL) {
    const char *e = dlerror ();
    lib->why = g_strdup (e ? e : "dlopen failed");
    return;
  }
#define NN_PTH_ZIP_SYM(f)                                                    \
  G_STATIC_ASSERT (sizeof lib->api.f == sizeof (void *));                    \
  if (lib->why == NULL)                                                      \
    zip_lib_sym (handle, #f, &lib->api.f, &lib->why);
  NN_PTH_ZIP_FUNCTIONS (NN_PTH_ZIP_SYM)
#undef NN_PTH_ZIP_SYM
  if (lib->why != NULL) {
    memset (&lib->api, 0, sizeof lib->api);
    dlclose (handle);
  }
}

const NnPthZipApi *
nn_pth_zip_api (const char *path, GError **error)
{
  static gsize once;
  static ZipLib lib;

  if (g_once_init_enter (&once)) {
    zip_lib_load (&lib);
    g_once_init_leave (&once, 1);
  }
  if (lib.why != NULL) {
    g_set_error (error, NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_IO,
                 "%s: cannot load %s to read PyTorch checkpoints: %s", path,
                 NN_ZIP_SONAME, lib.why);
    return NULL;
  }
  return &lib.api;
}
