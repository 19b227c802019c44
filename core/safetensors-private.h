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

/* File dtypes this reader understands; the others (I32, U8, BOOL, ...) are
 * refused by name rather than guessed at. */
typedef enum {
  NN_ST_F32,
  NN_ST_F16,
  NN_ST_BF16,
  NN_ST_F64,
  NN_ST_I64,
} NnStDType;

typedef struct {
  const char *name;
  gsize size; /* bytes per element */
} NnStDTypeInfo;

/* dtype_convert.c: indexed by NnStDType. */
extern const NnStDTypeInfo nn_st_dtypes[];

#define NN_ST_METADATA_KEY "__metadata__"

typedef struct {
  char *name;
  NnStDType dtype;
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
};

/* dtype_convert.c */
/* Finds the file dtype called @name ("F32", ...); FALSE if unsupported. */
gboolean nn_st_dtype_lookup (const char *name, NnStDType *out);
/* Converts @n elements of @dtype at @src (little-endian, maybe unaligned)
 * to float32. */
void nn_st_convert_f32 (NnStDType dtype, const guint8 *src, float *dst,
                        gsize n);
/* Copies @n little-endian, maybe unaligned I64 elements at @src. */
void nn_st_convert_i64 (const guint8 *src, gint64 *dst, gsize n);

/* safetensors_header.c */
/* Parses and checks the @len-byte JSON header @text of @st, whose data
 * section is already set, filling its entries and metadata. */
gboolean nn_st_parse_header (NnSafetensors *st, const char *text, gsize len,
                             GError **error);

G_END_DECLS

#endif
