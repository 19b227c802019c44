/* nnkit core: the safetensors format.  The reader maps the file and checks
 * every header field before any tensor data is touched; the writer streams
 * through a temp file in the destination's directory, then renames it.
 *
 * Layout: 8-byte little-endian header length N, N bytes of JSON, then the
 * data section.  Each JSON entry is {dtype, shape, data_offsets} relative
 * to the data section; as in the reference implementation, the entries
 * sorted by offset must cover the data section exactly, with no overlap
 * and no hole. */
#include "nn-private.h"
#include "nn-weights-private.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* File dtypes this reader understands; the others (I32, U8, BOOL, ...) are
 * refused by name rather than guessed at. */
typedef enum {
  ST_F32,
  ST_F16,
  ST_BF16,
  ST_F64,
  ST_I64,
} StDType;

static const struct {
  const char *name;
  gsize size; /* bytes per element */
} st_dtypes[] = {
  [ST_F32] = { "F32", 4 },
  [ST_F16] = { "F16", 2 },
  [ST_BF16] = { "BF16", 2 },
  [ST_F64] = { "F64", 8 },
  [ST_I64] = { "I64", 8 },
};

#define ST_DTYPES_ACCEPTED "F32, F16, BF16, F64 or I64"
#define ST_METADATA_KEY "__metadata__"

typedef struct {
  char *name;
  StDType dtype;
  NnShape shape;
  guint64 begin; /* byte offsets into the data section */
  guint64 end;
} StEntry;

struct _NnSafetensors {
  char *path;
  GMappedFile *map;
  const guint8 *data;  /* first byte of the data section */
  gsize data_len;      /* bytes in the data section */
  GPtrArray *entries;  /* StEntry*, sorted by offset */
  GHashTable *by_name; /* name -> StEntry* (owned by entries) */
  GHashTable *metadata;/* char* -> char* */
};

static void
st_entry_free (gpointer p)
{
  StEntry *e = p;
  g_free (e->name);
  g_free (e);
}

void
nn_safetensors_free (NnSafetensors *st)
{
  if (st == NULL)
    return;
  g_free (st->path);
  if (st->map)
    g_mapped_file_unref (st->map);
  if (st->entries)
    g_ptr_array_unref (st->entries);
  if (st->by_name)
    g_hash_table_unref (st->by_name);
  if (st->metadata)
    g_hash_table_unref (st->metadata);
  g_free (st);
}

static gboolean
st_lookup_dtype (const char *name, StDType *out)
{
  for (guint i = 0; i < G_N_ELEMENTS (st_dtypes); i++) {
    if (strcmp (st_dtypes[i].name, name) == 0) {
      *out = (StDType) i;
      return TRUE;
    }
  }
  return FALSE;
}

static const char *
json_node_kind (JsonNode *n)
{
  switch (JSON_NODE_TYPE (n)) {
  case JSON_NODE_OBJECT: return "object";
  case JSON_NODE_ARRAY: return "array";
  case JSON_NODE_NULL: return "null";
  case JSON_NODE_VALUE:
    break;
  }
  GType t = json_node_get_value_type (n);
  if (t == G_TYPE_STRING)
    return "string";
  if (t == G_TYPE_BOOLEAN)
    return "boolean";
  if (t == G_TYPE_DOUBLE)
    return "non-integer number";
  return "number";
}

/* A JSON integer >= 0, rejecting floats, strings and negatives. */
static gboolean
json_node_get_uint (JsonNode *n, guint64 *out)
{
  if (!JSON_NODE_HOLDS_VALUE (n) || json_node_get_value_type (n) != G_TYPE_INT64)
    return FALSE;
  gint64 v = json_node_get_int (n);
  if (v < 0)
    return FALSE;
  *out = (guint64) v;
  return TRUE;
}

static char *
json_node_text (JsonNode *n)
{
  g_autoptr (JsonGenerator) gen = json_generator_new ();
  json_generator_set_root (gen, n);
  return json_generator_to_data (gen, NULL);
}

static gboolean
st_parse_metadata (NnSafetensors *st, JsonNode *node, GError **error)
{
  if (!JSON_NODE_HOLDS_OBJECT (node)) {
    g_set_error (error, NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_HEADER,
                 "%s: '" ST_METADATA_KEY "' is a JSON %s, expected an object "
                 "of strings", st->path, json_node_kind (node));
    return FALSE;
  }
  JsonObject *obj = json_node_get_object (node);
  g_autoptr (GList) members = json_object_get_members (obj);
  for (GList *l = members; l; l = l->next) {
    const char *key = l->data;
    JsonNode *v = json_object_get_member (obj, key);
    if (!JSON_NODE_HOLDS_VALUE (v) || json_node_get_value_type (v) != G_TYPE_STRING) {
      g_set_error (error, NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_HEADER,
                   "%s: '" ST_METADATA_KEY "' entry '%s' is a JSON %s, "
                   "expected a string", st->path, key, json_node_kind (v));
      return FALSE;
    }
    g_hash_table_insert (st->metadata, g_strdup (key),
                         g_strdup (json_node_get_string (v)));
  }
  return TRUE;
}

static gboolean
st_parse_shape (NnSafetensors *st, const char *name, JsonNode *node,
                StEntry *e, GError **error)
{
  if (!JSON_NODE_HOLDS_ARRAY (node)) {
    g_set_error (error, NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_SHAPE,
                 "%s: tensor '%s': 'shape' is a JSON %s, expected an array of "
                 "non-negative integers", st->path, name, json_node_kind (node));
    return FALSE;
  }
  JsonArray *arr = json_node_get_array (node);
  guint ndim = json_array_get_length (arr);
  if (ndim > NN_MAX_DIMS) {
    g_set_error (error, NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_SHAPE,
                 "%s: tensor '%s': shape has %u dimensions, at most %d are "
                 "supported", st->path, name, ndim, NN_MAX_DIMS);
    return FALSE;
  }
  /* numel * element size must fit both gsize and gint64 (NnShape). */
  guint64 nbytes = st_dtypes[e->dtype].size;
  gboolean overflow = FALSE;
  e->shape.ndim = ndim;
  for (guint i = 0; i < ndim; i++) {
    JsonNode *d = json_array_get_element (arr, i);
    guint64 v;
    if (!json_node_get_uint (d, &v)) {
      g_autofree char *text = json_node_text (d);
      g_set_error (error, NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_SHAPE,
                   "%s: tensor '%s': shape[%u] is %s, expected a non-negative "
                   "integer below 2^63", st->path, name, i, text);
      return FALSE;
    }
    e->shape.dims[i] = (gint64) v;
    if (__builtin_mul_overflow (nbytes, v, &nbytes))
      overflow = TRUE;
  }
  if (overflow || nbytes > (guint64) G_MAXINT64 || nbytes > G_MAXSIZE) {
    g_autofree char *text = json_node_text (node);
    g_set_error (error, NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_SHAPE,
                 "%s: tensor '%s': shape %s of %s overflows: its byte size "
                 "does not fit in 63 bits", st->path, name, text,
                 st_dtypes[e->dtype].name);
    return FALSE;
  }
  return TRUE;
}

static gboolean
st_parse_offsets (NnSafetensors *st, const char *name, JsonNode *node,
                  StEntry *e, GError **error)
{
  JsonArray *arr = JSON_NODE_HOLDS_ARRAY (node) ? json_node_get_array (node) : NULL;
  if (arr == NULL || json_array_get_length (arr) != 2 ||
      !json_node_get_uint (json_array_get_element (arr, 0), &e->begin) ||
      !json_node_get_uint (json_array_get_element (arr, 1), &e->end)) {
    g_autofree char *text = json_node_text (node);
    g_set_error (error, NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_OFFSETS,
                 "%s: tensor '%s': data_offsets is %s, expected [begin, end] "
                 "with non-negative integers below 2^63", st->path, name, text);
    return FALSE;
  }
  if (e->begin > e->end) {
    g_set_error (error, NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_OFFSETS,
                 "%s: tensor '%s': data_offsets [%" G_GUINT64_FORMAT ", %"
                 G_GUINT64_FORMAT "] begin after end", st->path, name,
                 e->begin, e->end);
    return FALSE;
  }
  if (e->end > st->data_len) {
    g_set_error (error, NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_OFFSETS,
                 "%s: tensor '%s': data_offsets [%" G_GUINT64_FORMAT ", %"
                 G_GUINT64_FORMAT "] run past the end of the data section "
                 "(%" G_GSIZE_FORMAT " bytes; is the file truncated?)",
                 st->path, name, e->begin, e->end, st->data_len);
    return FALSE;
  }
  guint64 want = (guint64) nn_shape_numel (&e->shape) * st_dtypes[e->dtype].size;
  if (e->end - e->begin != want) {
    g_autofree char *shape = nn_shape_to_string (&e->shape);
    g_set_error (error, NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_OFFSETS,
                 "%s: tensor '%s': data_offsets [%" G_GUINT64_FORMAT ", %"
                 G_GUINT64_FORMAT "] hold %" G_GUINT64_FORMAT " bytes, but "
                 "shape %s of %s needs %" G_GUINT64_FORMAT, st->path, name,
                 e->begin, e->end, e->end - e->begin, shape,
                 st_dtypes[e->dtype].name, want);
    return FALSE;
  }
  return TRUE;
}

static JsonNode *
st_require_member (NnSafetensors *st, const char *name, JsonObject *obj,
                   const char *member, GError **error)
{
  JsonNode *n = json_object_get_member (obj, member);
  if (n == NULL)
    g_set_error (error, NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_HEADER,
                 "%s: tensor '%s': entry has no '%s' (expected dtype, shape "
                 "and data_offsets)", st->path, name, member);
  return n;
}

static StEntry *
st_parse_entry (NnSafetensors *st, const char *name, JsonNode *node,
                GError **error)
{
  if (!JSON_NODE_HOLDS_OBJECT (node)) {
    g_set_error (error, NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_HEADER,
                 "%s: tensor '%s': entry is a JSON %s, expected an object "
                 "with dtype, shape and data_offsets", st->path, name,
                 json_node_kind (node));
    return NULL;
  }
  JsonObject *obj = json_node_get_object (node);
  JsonNode *dtype, *shape, *offsets;
  if (!(dtype = st_require_member (st, name, obj, "dtype", error)) ||
      !(shape = st_require_member (st, name, obj, "shape", error)) ||
      !(offsets = st_require_member (st, name, obj, "data_offsets", error)))
    return NULL;

  StEntry *e = g_new0 (StEntry, 1);
  if (!JSON_NODE_HOLDS_VALUE (dtype) || json_node_get_value_type (dtype) != G_TYPE_STRING) {
    g_set_error (error, NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_DTYPE,
                 "%s: tensor '%s': dtype is a JSON %s, expected a string (%s)",
                 st->path, name, json_node_kind (dtype), ST_DTYPES_ACCEPTED);
    goto fail;
  }
  if (!st_lookup_dtype (json_node_get_string (dtype), &e->dtype)) {
    g_set_error (error, NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_DTYPE,
                 "%s: tensor '%s': dtype '%s' is not supported (expected %s)",
                 st->path, name, json_node_get_string (dtype),
                 ST_DTYPES_ACCEPTED);
    goto fail;
  }
  if (!st_parse_shape (st, name, shape, e, error) ||
      !st_parse_offsets (st, name, offsets, e, error))
    goto fail;
  e->name = g_strdup (name);
  return e;

fail:
  g_free (e);
  return NULL;
}

static gint
st_entry_cmp (gconstpointer a, gconstpointer b)
{
  const StEntry *x = *(StEntry *const *) a, *y = *(StEntry *const *) b;
  if (x->begin != y->begin)
    return x->begin < y->begin ? -1 : 1;
  if (x->end != y->end)
    return x->end < y->end ? -1 : 1;
  return strcmp (x->name, y->name);
}

/* The reference implementation's rule: sorted by offset, each tensor
 * starts where the previous one ended and the last ends the file. */
static gboolean
st_check_layout (NnSafetensors *st, GError **error)
{
  g_ptr_array_sort (st->entries, st_entry_cmp);
  guint64 pos = 0;
  const StEntry *prev = NULL;
  for (guint i = 0; i < st->entries->len; i++) {
    const StEntry *e = st->entries->pdata[i];
    if (e->begin < pos) {
      g_set_error (error, NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_OFFSETS,
                   "%s: tensor '%s': data_offsets [%" G_GUINT64_FORMAT ", %"
                   G_GUINT64_FORMAT "] overlap tensor '%s' [%" G_GUINT64_FORMAT
                   ", %" G_GUINT64_FORMAT "]", st->path, e->name, e->begin,
                   e->end, prev->name, prev->begin, prev->end);
      return FALSE;
    }
    if (e->begin > pos) {
      g_set_error (error, NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_OFFSETS,
                   "%s: tensor '%s': data_offsets [%" G_GUINT64_FORMAT ", %"
                   G_GUINT64_FORMAT "] leave a hole: bytes [%" G_GUINT64_FORMAT
                   ", %" G_GUINT64_FORMAT ") of the data section belong to no "
                   "tensor (expected it to begin at %" G_GUINT64_FORMAT ")",
                   st->path, e->name, e->begin, e->end, pos, e->begin, pos);
      return FALSE;
    }
    pos = e->end;
    prev = e;
  }
  if (pos != st->data_len) {
    g_set_error (error, NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_OFFSETS,
                 "%s: the data section is %" G_GSIZE_FORMAT " bytes but the "
                 "tensors cover %" G_GUINT64_FORMAT " (bytes [%" G_GUINT64_FORMAT
                 ", %" G_GSIZE_FORMAT ") belong to no tensor)", st->path,
                 st->data_len, pos, pos, st->data_len);
    return FALSE;
  }
  return TRUE;
}

static gboolean
st_parse_header (NnSafetensors *st, const char *text, gsize len,
                 GError **error)
{
  /* The reference implementation requires UTF-8 (a NUL byte fails too). */
  if (len == 0 || !g_utf8_validate (text, (gssize) len, NULL)) {
    g_set_error (error, NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_HEADER,
                 "%s: the %" G_GSIZE_FORMAT "-byte header is not UTF-8 JSON "
                 "text", st->path, len);
    return FALSE;
  }
  g_autoptr (JsonParser) parser = json_parser_new_immutable ();
  g_autoptr (GError) jerr = NULL;
  if (!json_parser_load_from_data (parser, text, (gssize) len, &jerr)) {
    g_set_error (error, NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_HEADER,
                 "%s: the header is not valid JSON: %s", st->path,
                 jerr->message);
    return FALSE;
  }
  JsonNode *root = json_parser_get_root (parser);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root)) {
    g_set_error (error, NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_HEADER,
                 "%s: the header is %s, expected a JSON object of tensors",
                 st->path, root ? json_node_kind (root) : "empty");
    return FALSE;
  }
  JsonObject *obj = json_node_get_object (root);
  g_autoptr (GList) members = json_object_get_members (obj);
  for (GList *l = members; l; l = l->next) {
    const char *name = l->data;
    JsonNode *node = json_object_get_member (obj, name);
    if (strcmp (name, ST_METADATA_KEY) == 0) {
      if (!st_parse_metadata (st, node, error))
        return FALSE;
      continue;
    }
    StEntry *e = st_parse_entry (st, name, node, error);
    if (e == NULL)
      return FALSE;
    g_ptr_array_add (st->entries, e);
    g_hash_table_insert (st->by_name, e->name, e);
  }
  return st_check_layout (st, error);
}

static GMappedFile *
st_map (const char *path, GError **error)
{
  int fd = open (path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int e = errno;
    g_set_error (error, NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_IO,
                 "%s: cannot open: %s", path, g_strerror (e));
    return NULL;
  }
  struct stat sb;
  if (fstat (fd, &sb) != 0 || !S_ISREG (sb.st_mode)) {
    g_set_error (error, NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_IO,
                 "%s: not a regular file", path);
    close (fd);
    return NULL;
  }
  g_autoptr (GError) merr = NULL;
  /* A private writable mapping: tensors borrowed from it are flagged
   * read-only, but a stray write then costs a copied page, not a crash,
   * and never reaches the file. */
  GMappedFile *map = g_mapped_file_new_from_fd (fd, TRUE, &merr);
  close (fd); /* the mapping outlives the descriptor */
  if (map == NULL)
    g_set_error (error, NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_IO,
                 "%s: cannot map: %s", path, merr->message);
  return map;
}

NnSafetensors *
nn_safetensors_open (const char *path, GError **error)
{
  g_return_val_if_fail (path != NULL, NULL);
  g_autoptr (NnSafetensors) st = g_new0 (NnSafetensors, 1);
  st->path = g_strdup (path);
  st->entries = g_ptr_array_new_with_free_func (st_entry_free);
  st->by_name = g_hash_table_new (g_str_hash, g_str_equal);
  st->metadata = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  st->map = st_map (path, error);
  if (st->map == NULL)
    return NULL;

  const guint8 *bytes = (const guint8 *) g_mapped_file_get_contents (st->map);
  gsize size = g_mapped_file_get_length (st->map);
  if (size < 8) {
    g_set_error (error, NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_HEADER,
                 "%s: file is %" G_GSIZE_FORMAT " bytes, too short for the "
                 "8-byte header length (not a safetensors file?)", path, size);
    return NULL;
  }
  guint64 n;
  memcpy (&n, bytes, 8);
  n = GUINT64_FROM_LE (n);
  if (n > NN_SAFETENSORS_MAX_HEADER) {
    g_set_error (error, NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_HEADER,
                 "%s: header length %" G_GUINT64_FORMAT " exceeds the limit "
                 "of %u bytes (not a safetensors file?)", path, n,
                 NN_SAFETENSORS_MAX_HEADER);
    return NULL;
  }
  if (n > size - 8) {
    g_set_error (error, NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_HEADER,
                 "%s: header length %" G_GUINT64_FORMAT " runs past the end "
                 "of the file (%" G_GSIZE_FORMAT " bytes, expected at least %"
                 G_GUINT64_FORMAT ")", path, n, size, n + 8);
    return NULL;
  }
  st->data = bytes + 8 + n;
  st->data_len = size - 8 - (gsize) n;
  if (!st_parse_header (st, (const char *) bytes + 8, (gsize) n, error))
    return NULL;
  return g_steal_pointer (&st);
}

guint
nn_safetensors_n_tensors (NnSafetensors *st)
{
  g_return_val_if_fail (st != NULL, 0);
  return st->entries->len;
}

const char *
nn_safetensors_name_at (NnSafetensors *st, guint i)
{
  g_return_val_if_fail (st != NULL && i < st->entries->len, NULL);
  return ((StEntry *) st->entries->pdata[i])->name;
}

const char *
nn_safetensors_get_info (NnSafetensors *st, const char *name,
                         NnShape *shape_out)
{
  g_return_val_if_fail (st != NULL && name != NULL, NULL);
  StEntry *e = g_hash_table_lookup (st->by_name, name);
  if (e == NULL)
    return NULL;
  if (shape_out)
    *shape_out = e->shape;
  return st_dtypes[e->dtype].name;
}

const char *
nn_safetensors_get_metadata (NnSafetensors *st, const char *key)
{
  g_return_val_if_fail (st != NULL && key != NULL, NULL);
  return g_hash_table_lookup (st->metadata, key);
}

/* --- conversion ---------------------------------------------------------- */

/* Elements are read with memcpy: the data may be unaligned. */
static guint16
load_u16 (const guint8 *p)
{
  guint16 v;
  memcpy (&v, p, 2);
  return GUINT16_FROM_LE (v);
}

static guint32
load_u32 (const guint8 *p)
{
  guint32 v;
  memcpy (&v, p, 4);
  return GUINT32_FROM_LE (v);
}

static guint64
load_u64 (const guint8 *p)
{
  guint64 v;
  memcpy (&v, p, 8);
  return GUINT64_FROM_LE (v);
}

static float
bits_to_float (guint32 bits)
{
  float f;
  memcpy (&f, &bits, 4);
  return f;
}

/* IEEE half to single: every half value is exactly representable. */
static float
half_to_float (guint16 h)
{
  guint32 sign = (guint32) (h & 0x8000u) << 16;
  guint32 exp = (h >> 10) & 0x1fu;
  guint32 mant = h & 0x3ffu;
  if (exp == 0) {
    /* zero or subnormal: mant * 2^-24, exact in float */
    float v = ldexpf ((float) mant, -24);
    return sign ? -v : v;
  }
  if (exp == 31)
    return bits_to_float (sign | 0x7f800000u | (mant << 13));
  return bits_to_float (sign | ((exp + 112u) << 23) | (mant << 13));
}

static void
st_convert_f32 (const StEntry *e, const guint8 *src, float *dst, gsize n)
{
  switch (e->dtype) {
  case ST_F32:
    if (G_BYTE_ORDER == G_LITTLE_ENDIAN) {
      memcpy (dst, src, n * 4);
      break;
    }
    for (gsize i = 0; i < n; i++)
      dst[i] = bits_to_float (load_u32 (src + 4 * i));
    break;
  case ST_F16:
    for (gsize i = 0; i < n; i++)
      dst[i] = half_to_float (load_u16 (src + 2 * i));
    break;
  case ST_BF16:
    /* bfloat16 is the top half of a float32 */
    for (gsize i = 0; i < n; i++)
      dst[i] = bits_to_float ((guint32) load_u16 (src + 2 * i) << 16);
    break;
  case ST_F64:
    for (gsize i = 0; i < n; i++) {
      guint64 bits = load_u64 (src + 8 * i);
      double d;
      memcpy (&d, &bits, 8);
      dst[i] = (float) d;
    }
    break;
  case ST_I64:
    for (gsize i = 0; i < n; i++)
      dst[i] = (float) (gint64) load_u64 (src + 8 * i);
    break;
  }
}

static void
st_release_map (gpointer map)
{
  g_mapped_file_unref (map);
}

NnTensor *
nn_safetensors_get (NnSafetensors *st, const char *name, NnDType dtype,
                    GError **error)
{
  g_return_val_if_fail (st != NULL && name != NULL, NULL);
  g_return_val_if_fail (dtype == NN_DTYPE_F32 || dtype == NN_DTYPE_I64, NULL);
  StEntry *e = g_hash_table_lookup (st->by_name, name);
  if (e == NULL) {
    g_set_error (error, NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_NOT_FOUND,
                 "%s: no tensor '%s' in the file (it holds %u)", st->path,
                 name, st->entries->len);
    return NULL;
  }
  const guint8 *src = st->data + e->begin;
  gsize n = (gsize) nn_shape_numel (&e->shape);

  if (dtype == NN_DTYPE_I64) {
    if (e->dtype != ST_I64) {
      g_set_error (error, NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_DTYPE,
                   "%s: tensor '%s' is %s, but an I64 tensor is expected "
                   "(floating point values are not converted to integers)",
                   st->path, name, st_dtypes[e->dtype].name);
      return NULL;
    }
    NnTensor *t = nn_tensor_new (NN_DTYPE_I64, &e->shape);
    gint64 *dst = t->data;
    for (gsize i = 0; i < n; i++)
      dst[i] = (gint64) load_u64 (src + 8 * i);
    return t;
  }

  /* Zero-copy: the tensor borrows the mapping and keeps it alive. */
  if (G_BYTE_ORDER == G_LITTLE_ENDIAN && e->dtype == ST_F32 &&
      ((guintptr) src % G_ALIGNOF (float)) == 0 && n > 0)
    return nn_tensor_new_borrowed (NN_DTYPE_F32, &e->shape, (gpointer) src,
                                   TRUE, st_release_map,
                                   g_mapped_file_ref (st->map));

  NnTensor *t = nn_tensor_new (NN_DTYPE_F32, &e->shape);
  st_convert_f32 (e, src, t->data, n);
  return t;
}

/* --- writer -------------------------------------------------------------- */

static void
json_append_string (GString *out, const char *s)
{
  g_string_append_c (out, '"');
  for (const unsigned char *p = (const unsigned char *) s; *p; p++) {
    if (*p == '"' || *p == '\\')
      g_string_append_printf (out, "\\%c", *p);
    else if (*p < 0x20)
      g_string_append_printf (out, "\\u%04x", *p);
    else
      g_string_append_c (out, (char) *p);
  }
  g_string_append_c (out, '"');
}

static gboolean
st_check_inputs (const char *path, const char *const *names,
                 NnTensor *const *tensors, guint n, GHashTable *metadata,
                 GError **error)
{
  g_autoptr (GHashTable) seen = g_hash_table_new (g_str_hash, g_str_equal);
  for (guint i = 0; i < n; i++) {
    const char *name = names[i];
    if (name == NULL || tensors[i] == NULL || !g_utf8_validate (name, -1, NULL) ||
        strcmp (name, ST_METADATA_KEY) == 0) {
      g_set_error (error, NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_HEADER,
                   "%s: entry %u: tensor name '%s' is not usable (expected "
                   "UTF-8 other than '" ST_METADATA_KEY "', with a tensor)",
                   path, i, name ? name : "(null)");
      return FALSE;
    }
    if (!g_hash_table_add (seen, (gpointer) name)) {
      g_set_error (error, NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_HEADER,
                   "%s: tensor name '%s' is given twice", path, name);
      return FALSE;
    }
  }
  if (metadata) {
    GHashTableIter it;
    gpointer k, v;
    g_hash_table_iter_init (&it, metadata);
    while (g_hash_table_iter_next (&it, &k, &v)) {
      if (!g_utf8_validate (k, -1, NULL) || v == NULL ||
          !g_utf8_validate (v, -1, NULL)) {
        g_set_error (error, NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_HEADER,
                     "%s: metadata entry '%s' is not a UTF-8 string", path,
                     (const char *) k);
        return FALSE;
      }
    }
  }
  return TRUE;
}

static int
st_str_ptr_cmp (const void *a, const void *b)
{
  return strcmp (*(const char *const *) a, *(const char *const *) b);
}

/* The header as PyTorch's safetensors writes it: compact JSON,
 * __metadata__ first (keys sorted, so saves are reproducible), tensors in
 * the given order, padded with spaces to a multiple of 8 so that the data
 * section stays 8-byte aligned. */
static GString *
st_build_header (const char *const *names, NnTensor *const *tensors, guint n,
                 GHashTable *metadata)
{
  GString *h = g_string_new ("{");
  gboolean first = TRUE;
  if (metadata && g_hash_table_size (metadata) > 0) {
    g_autofree gpointer *keys = g_hash_table_get_keys_as_array (metadata, NULL);
    guint nk = g_hash_table_size (metadata);
    qsort (keys, nk, sizeof (gpointer), st_str_ptr_cmp);
    g_string_append (h, "\"" ST_METADATA_KEY "\":{");
    for (guint i = 0; i < nk; i++) {
      if (i)
        g_string_append_c (h, ',');
      json_append_string (h, keys[i]);
      g_string_append_c (h, ':');
      json_append_string (h, g_hash_table_lookup (metadata, keys[i]));
    }
    g_string_append_c (h, '}');
    first = FALSE;
  }
  guint64 offset = 0;
  for (guint i = 0; i < n; i++) {
    const NnTensor *t = tensors[i];
    if (!first)
      g_string_append_c (h, ',');
    first = FALSE;
    json_append_string (h, names[i]);
    g_string_append_printf (h, ":{\"dtype\":\"%s\",\"shape\":[",
                            nn_dtype_name (t->dtype));
    for (guint d = 0; d < t->shape.ndim; d++)
      g_string_append_printf (h, "%s%" G_GINT64_FORMAT, d ? "," : "",
                              t->shape.dims[d]);
    guint64 end = offset + nn_tensor_nbytes (t);
    g_string_append_printf (h, "],\"data_offsets\":[%" G_GUINT64_FORMAT ",%"
                            G_GUINT64_FORMAT "]}", offset, end);
    offset = end;
  }
  g_string_append_c (h, '}');
  while (h->len % 8 != 0)
    g_string_append_c (h, ' ');
  return h;
}

static gboolean
st_write_all (int fd, const void *buf, gsize len)
{
  const guint8 *p = buf;
  while (len > 0) {
    ssize_t w = write (fd, p, MIN (len, (gsize) G_MAXSSIZE));
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0) {
      if (w == 0)
        errno = EIO;
      return FALSE;
    }
    p += w;
    len -= (gsize) w;
  }
  return TRUE;
}

/* Tensor bytes in little-endian order, swapped in chunks on big-endian. */
static gboolean
st_write_tensor (int fd, const NnTensor *t)
{
  gsize nbytes = nn_tensor_nbytes (t);
  if (G_BYTE_ORDER == G_LITTLE_ENDIAN || nbytes == 0)
    return st_write_all (fd, t->data, nbytes);
  gsize esize = nn_dtype_size (t->dtype);
  guint8 chunk[4096];
  const guint8 *src = t->data;
  for (gsize off = 0; off < nbytes; off += sizeof chunk) {
    gsize len = MIN (sizeof chunk, nbytes - off);
    for (gsize i = 0; i < len; i += esize)
      for (gsize b = 0; b < esize; b++)
        chunk[i + b] = src[off + i + esize - 1 - b];
    if (!st_write_all (fd, chunk, len))
      return FALSE;
  }
  return TRUE;
}

/* --- pending files: written, flushed, not yet in place -------------------- */

struct _NnPendingFile {
  char *path;   /* destination */
  char *tmp;    /* temp file beside it; NULL once committed */
  GQuark domain;
  int code;
};

void
nn_pending_file_free (NnPendingFile *pf)
{
  if (pf == NULL)
    return;
  if (pf->tmp)
    unlink (pf->tmp);
  g_free (pf->tmp);
  g_free (pf->path);
  g_free (pf);
}

/* Creates the temp file; @fd_out receives its descriptor. */
static NnPendingFile *
pending_file_open (const char *path, GQuark domain, int code, int *fd_out,
                   GError **error)
{
  /* Beside the destination, so rename() stays on one file system and an
   * existing file is untouched until the very end. */
  char *tmp = g_strdup_printf ("%s.XXXXXX", path);
  int fd = g_mkstemp_full (tmp, O_WRONLY | O_CLOEXEC, 0644);
  if (fd < 0) {
    int e = errno;
    g_set_error (error, domain, code, "%s: cannot create a temporary file "
                 "beside it: %s", path, g_strerror (e));
    g_free (tmp);
    return NULL;
  }
  NnPendingFile *pf = g_new0 (NnPendingFile, 1);
  pf->path = g_strdup (path);
  pf->tmp = tmp;
  pf->domain = domain;
  pf->code = code;
  *fd_out = fd;
  return pf;
}

/* Flushes and closes @fd; @ok says whether writing it went well (errno
 * holds the cause if not).  On failure the temp file is removed. */
static NnPendingFile *
pending_file_finish (NnPendingFile *pf, int fd, gboolean ok, GError **error)
{
  const char *what = "write";
  int e = errno;
  if (ok) {
    what = "flush";
    ok = fsync (fd) == 0;
    e = errno;
  }
  if (close (fd) != 0 && ok) {
    e = errno;
    ok = FALSE;
  }
  if (!ok) {
    g_set_error (error, pf->domain, pf->code, "%s: cannot %s: %s", pf->path,
                 what, g_strerror (e));
    nn_pending_file_free (pf);
    return NULL;
  }
  return pf;
}

NnPendingFile *
nn_pending_file_new_data (const char *path, const void *data, gsize len,
                          GQuark domain, int code, GError **error)
{
  int fd;
  NnPendingFile *pf = pending_file_open (path, domain, code, &fd, error);
  if (pf == NULL)
    return NULL;
  return pending_file_finish (pf, fd, st_write_all (fd, data, len), error);
}

NnPendingFile *
nn_pending_file_new_safetensors (const char *path, const char *const *names,
                                 NnTensor *const *tensors, guint n,
                                 GHashTable *metadata, GError **error)
{
  if (!st_check_inputs (path, names, tensors, n, metadata, error))
    return NULL;
  g_autoptr (GString) header = st_build_header (names, tensors, n, metadata);
  guint64 hlen = GUINT64_TO_LE ((guint64) header->len);
  int fd;
  NnPendingFile *pf = pending_file_open (path, NN_WEIGHTS_ERROR,
                                         NN_WEIGHTS_ERROR_IO, &fd, error);
  if (pf == NULL)
    return NULL;
  gboolean ok = st_write_all (fd, &hlen, 8) &&
                st_write_all (fd, header->str, header->len);
  for (guint i = 0; ok && i < n; i++)
    ok = st_write_tensor (fd, tensors[i]);
  return pending_file_finish (pf, fd, ok, error);
}

gboolean
nn_pending_file_check (NnPendingFile *pf, GError **error)
{
  /* rename() cannot replace a directory; say so before anything moves. */
  if (g_file_test (pf->path, G_FILE_TEST_IS_DIR)) {
    g_set_error (error, pf->domain, pf->code, "%s: cannot replace: it is a "
                 "directory", pf->path);
    return FALSE;
  }
  return TRUE;
}

gboolean
nn_pending_file_commit (NnPendingFile *pf, GError **error)
{
  g_return_val_if_fail (pf->tmp != NULL, FALSE);
  if (rename (pf->tmp, pf->path) != 0) {
    int e = errno;
    g_set_error (error, pf->domain, pf->code, "%s: cannot rename into place: "
                 "%s", pf->path, g_strerror (e));
    return FALSE; /* the temp file goes with nn_pending_file_free() */
  }
  g_clear_pointer (&pf->tmp, g_free);
  /* Makes the rename itself durable; failure here loses nothing. */
  g_autofree char *dir = g_path_get_dirname (pf->path);
  int fd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    (void) fsync (fd);
    close (fd);
  }
  return TRUE;
}

gboolean
nn_safetensors_write (const char *path, const char *const *names,
                      NnTensor *const *tensors, guint n,
                      GHashTable *metadata, GError **error)
{
  g_return_val_if_fail (path != NULL, FALSE);
  g_return_val_if_fail (n == 0 || (names != NULL && tensors != NULL), FALSE);
  NnPendingFile *pf = nn_pending_file_new_safetensors (path, names, tensors, n,
                                                       metadata, error);
  if (pf == NULL)
    return FALSE;
  gboolean ok = nn_pending_file_commit (pf, error);
  nn_pending_file_free (pf);
  return ok;
}
