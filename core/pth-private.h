/* nnkit core: the reader of PyTorch's torch.save files, split in three
 * layers: the zip archive (pth_zip.c), a restricted unpickler that builds
 * plain values and never runs code (pth_pickle.c), and the walk that turns
 * a state_dict of rebuilt tensors into a name -> tensor map (pth_read.c).
 * libzip itself is opened on the first read (pth_zip_load.c).  Never
 * installed. */
#ifndef NN_PTH_PRIVATE_H
#define NN_PTH_PRIVATE_H

#include "safetensors-private.h"

#include <zip.h>

G_BEGIN_DECLS

/* --- libzip, loaded on first use (pth_zip_load.c) ----------------------- */

/* Every libzip function pth_zip.c calls.  Each entry's type is taken from
 * <zip.h>'s own prototype, so calls through the table are checked. */
#define NN_PTH_ZIP_FUNCTIONS(X)                                              \
  X (zip_open) X (zip_discard) X (zip_get_num_entries) X (zip_get_name)      \
  X (zip_name_locate) X (zip_stat_init) X (zip_stat) X (zip_fopen)           \
  X (zip_fread) X (zip_fclose) X (zip_strerror) X (zip_file_strerror)        \
  X (zip_error_init_with_code) X (zip_error_strerror) X (zip_error_fini)

#define NN_PTH_ZIP_FIELD(f) __typeof__ (f) *f;
typedef struct {
  NN_PTH_ZIP_FUNCTIONS (NN_PTH_ZIP_FIELD)
} NnPthZipApi;
#undef NN_PTH_ZIP_FIELD

/* libzip's functions, dlopen()ed (NN_ZIP_SONAME) on the first call in the
 * process; later calls return the same table, or the same failure.  @path
 * (the .pth being read) names the file in @error, an NN_WEIGHTS_ERROR_IO
 * carrying dlerror()'s text when libzip or one of its functions is
 * missing.  MT safe.  Returns: (transfer none) (nullable) a table valid
 * for the process's lifetime. */
const NnPthZipApi *nn_pth_zip_api (const char *path, GError **error);

/* --- zip (pth_zip.c) ----------------------------------------------------- */

typedef struct _NnPthZip NnPthZip;

/* Opens the archive at @path read-only; @path names it in errors.
 * Returns: (transfer full) (nullable). */
NnPthZip *nn_pth_zip_open (const char *path, GError **error);
void nn_pth_zip_free (NnPthZip *z);
/* Returns: (transfer none) the archive's top folder ("resnet18/"), found
 * from its "<dir>/data.pkl" member. */
const char *nn_pth_zip_prefix (NnPthZip *z);
/* TRUE if the archive has member @prefix + @name. */
gboolean nn_pth_zip_has (NnPthZip *z, const char *name);
/* Reads member @prefix + @name whole: exactly @expect bytes if @expect is
 * not -1 (the member must hold at least that many), else all of it, up to
 * a size bounded by the archive's own.  Returns: (transfer full)
 * (nullable) a g_malloc'ed buffer of *@len_out bytes. */
guint8 *nn_pth_zip_read (NnPthZip *z, const char *name, gint64 expect,
                         gsize *len_out, GError **error);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (NnPthZip, nn_pth_zip_free)

/* --- values (pth_pickle.c) ---------------------------------------------- */

typedef enum {
  NN_PV_NONE,
  NN_PV_BOOL,
  NN_PV_INT,
  NN_PV_FLOAT,
  NN_PV_STR,     /* UTF-8 text or bytes */
  NN_PV_TUPLE,
  NN_PV_LIST,
  NN_PV_DICT,    /* dict or OrderedDict: items alternate key, value */
  NN_PV_GLOBAL,  /* a whitelisted global, not yet called */
  NN_PV_STORAGE, /* a persistent id ('storage', type, key, location, numel) */
  NN_PV_TENSOR,  /* the result of _rebuild_tensor_v2 / _rebuild_parameter */
} NnPvKind;

typedef struct _NnPthGlobal NnPthGlobal;
typedef struct _NnPv NnPv;

/* A storage element type of torch.save: the dtype it is read as, its size
 * in the file and whether it widens on the way (int16, which has no
 * NnDType, becomes I32). */
typedef struct {
  NnDType dtype;
  guint8 elsize;     /* bytes per element in the file */
  gboolean is_signed;/* for a widened integer type */
  gboolean widen;    /* sign- or zero-extended to the dtype's size */
} NnPthStorageType;

struct _NnPv {
  NnPvKind kind;
  union {
    gboolean b;
    gint64 i;
    double f;
    struct { char *s; gsize len; } str;
    GPtrArray *items; /* (element-type NnPv*) tuple, list, dict */
    const NnPthGlobal *global;
    struct {
      const NnPthStorageType *type;
      const char *type_name; /* "FloatStorage", for messages */
      char *key;             /* member data/<key> */
      gint64 numel;
    } storage;
    struct {
      NnPv *storage;
      gint64 offset; /* in elements */
      NnShape size;
      gint64 stride[NN_MAX_DIMS];
    } tensor;
  };
};

typedef struct _NnPickle NnPickle;

/* Runs the restricted unpickler over @len bytes at @data; @what names the
 * stream in errors ("model.pth: data.pkl").  Returns: (transfer full)
 * (nullable) the unpickler, which owns every value it made. */
NnPickle *nn_pickle_load (const guint8 *data, gsize len, const char *what,
                          GError **error);
void nn_pickle_free (NnPickle *p);
/* Returns: (transfer none) the value STOP returned. */
NnPv *nn_pickle_result (NnPickle *p);
/* Returns: "dict", "int", ... for messages. */
const char *nn_pv_kind_name (const NnPv *v);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (NnPickle, nn_pickle_free)

G_END_DECLS

#endif
