/* nnkit core: parses a safetensors header and checks every field (dtype,
 * shape, data offsets, layout) before any tensor data is touched. */
#include "safetensors-private.h"
#include "json_guard.h"

#include <string.h>

#define ST_DTYPES_ACCEPTED "F32, I64, F16, BF16, F64, I32, I8, U8 or BOOL"

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
                 "%s: '" NN_ST_METADATA_KEY "' is a JSON %s, expected an "
                 "object of strings", st->path, json_node_kind (node));
    return FALSE;
  }
  JsonObject *obj = json_node_get_object (node);
  g_autoptr (GList) members = json_object_get_members (obj);
  for (GList *l = members; l; l = l->next) {
    const char *key = l->data;
    JsonNode *v = json_object_get_member (obj, key);
    if (!JSON_NODE_HOLDS_VALUE (v) || json_node_get_value_type (v) != G_TYPE_STRING) {
      g_set_error (error, NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_HEADER,
                   "%s: '" NN_ST_METADATA_KEY "' entry '%s' is a JSON %s, "
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
                NnStEntry *e, GError **error)
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
  guint64 nbytes = nn_dtype_size (e->dtype);
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
                 nn_dtype_name (e->dtype));
    return FALSE;
  }
  return TRUE;
}

static gboolean
st_parse_offsets (NnSafetensors *st, const char *name, JsonNode *node,
                  NnStEntry *e, GError **error)
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
  guint64 want = (guint64) nn_shape_numel (&e->shape) * nn_dtype_size (e->dtype);
  if (e->end - e->begin != want) {
    g_autofree char *shape = nn_shape_to_string (&e->shape);
    g_set_error (error, NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_OFFSETS,
                 "%s: tensor '%s': data_offsets [%" G_GUINT64_FORMAT ", %"
                 G_GUINT64_FORMAT "] hold %" G_GUINT64_FORMAT " bytes, but "
                 "shape %s of %s needs %" G_GUINT64_FORMAT, st->path, name,
                 e->begin, e->end, e->end - e->begin, shape,
                 nn_dtype_name (e->dtype), want);
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

static NnStEntry *
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

  NnStEntry *e = g_new0 (NnStEntry, 1);
  if (!JSON_NODE_HOLDS_VALUE (dtype) || json_node_get_value_type (dtype) != G_TYPE_STRING) {
    g_set_error (error, NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_DTYPE,
                 "%s: tensor '%s': dtype is a JSON %s, expected a string (%s)",
                 st->path, name, json_node_kind (dtype), ST_DTYPES_ACCEPTED);
    goto fail;
  }
  if (!nn_st_dtype_lookup (json_node_get_string (dtype), &e->dtype)) {
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
  const NnStEntry *x = *(NnStEntry *const *) a, *y = *(NnStEntry *const *) b;
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
  const NnStEntry *prev = NULL;
  for (guint i = 0; i < st->entries->len; i++) {
    const NnStEntry *e = st->entries->pdata[i];
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

gboolean
nn_st_parse_header (NnSafetensors *st, const char *text, gsize len,
                    GError **error)
{
  /* The reference implementation requires UTF-8 (a NUL byte fails too). */
  if (len == 0 || !g_utf8_validate (text, (gssize) len, NULL)) {
    g_set_error (error, NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_HEADER,
                 "%s: the %" G_GSIZE_FORMAT "-byte header is not UTF-8 JSON "
                 "text", st->path, len);
    return FALSE;
  }
  /* The reference implementation refuses duplicate keys; json-glib would
   * keep the last, and recurse without bound. */
  if (!nn_json_guard_scan (text, len, NN_ST_HEADER_MAX_JSON_DEPTH,
                           NN_JSON_GUARD_NO_DUPLICATE_KEYS, st->path,
                           NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_HEADER, error))
    return FALSE;
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
    if (strcmp (name, NN_ST_METADATA_KEY) == 0) {
      if (!st_parse_metadata (st, node, error))
        return FALSE;
      continue;
    }
    NnStEntry *e = st_parse_entry (st, name, node, error);
    if (e == NULL)
      return FALSE;
    g_ptr_array_add (st->entries, e);
    g_hash_table_insert (st->by_name, e->name, e);
  }
  return st_check_layout (st, error);
}
