/* nnkit core: the safetensors reader's private structures, shared by the
 * files that map, validate and convert a safetensors file.  Never installed.
 *
 * Layout: 8-byte little-endian header length N, N bytes of JSON, then the
 * data section.  Each JSON entry is {dtype, shape, data_offsets} relative
 * to the data section; as in the reference implementation, the entries
 * sorted by offset must cover the data section exactly, with no overlap
 * and no hole. */
#ifndef NN_SAFETENSORS_PRIVATE_H
#define NN_SAFETENSORS_PRIVATE_H

#include <nnkit/nnkit.h>

G_BEGIN_DECLS

#define NN_ST_METADATA_KEY "__metadata__"

typedef struct {
  char *name;
  NnDType dtype;    /* as stored; all nine dtypes are accepted */
  NnShape shape;
  guint64 begin; /* byte offsets into the data section */
  guint64 end;
} NnStEntry;

struct _NnSafetensors {
  char *path;
  GMappedFile *map;
  const guint8 *data;  /* first byte of the data section */
  gsize data_len;      /* bytes in the data section */
  GPtrArray *entries;  /* NnStEntry*, sorted by offset */
  GHashTable *by_name; /* name -> NnStEntry* (owned by entries) */
  GHashTable *metadata;/* char* -> char* */
  /* What borrowed tensors hold (nn_safetensors_get): the mapping, and
   * for a file opened by path its identity (nn_tensor_get_file_key). */
  struct _NnStOrigin *origin;
  gboolean has_file_id;
  guint64 file_id[5];  /* device, inode, size, mtime ns, ctime ns */
};

/* dtype_convert.c */
/* Finds the file dtype called @name ("F32", "BF16", ...: safetensors'
 * spelling only); FALSE if unknown. */
gboolean nn_st_dtype_lookup (const char *name, NnDType *out);
/* Returns: (transfer full) @n elements of file dtype @from at @src
 * (little-endian, maybe unaligned) as a new tensor of @shape converted to
 * @to. */
NnTensor *nn_st_load (NnDType from, const guint8 *src, const NnShape *shape,
                      NnDType to);

/* safetensors_header.c */
/* Parses and checks the @len-byte JSON header @text of @st, whose data
 * section is already set, filling its entries and metadata. */
/* Whether @release is the one tensors borrowed from a safetensors mapping
 * carry: their data is a read-only view of the file (tensor.c). */
gboolean nn_st_is_mapping_release (GDestroyNotify release);
/* For a tensor whose release_data is @origin (nn_st_is_mapping_release()
 * of its release): the file's identity and @data's byte offset in it;
 * FALSE when the mapping is not of a file opened by path (an in-memory
 * builder's memfd). */
gboolean nn_st_origin_key (gpointer origin, const void *data, guint64 key[6]);
gboolean nn_st_parse_header (NnSafetensors *st, const char *text, gsize len,
                             GError **error);

G_END_DECLS

#endif
