/* nnkit core: JSON descriptors <-> module trees (docs/DESCRIPTORS.md).
 * Loading builds the whole tree or nothing; saving is deterministic. */
#include "nn-private.h"
#include "json_guard.h"

#include <nnkit/train.h>

#include <string.h>

#define NN_FORMAT_NAME "nnkit"
#define NN_FORMAT_VERSION 2   /* written; 1 still loads */

/* The version being loaded by this thread, for types upgrading configs. */
static GPrivate loading_version;

guint
nn_descriptor_loading_version (void)
{
  guint v = GPOINTER_TO_UINT (g_private_get (&loading_version));
  return v ? v : NN_FORMAT_VERSION;
}

static gboolean
invalid (GError **error, const char *path, const char *fmt, ...) G_GNUC_PRINTF (3, 4);

static gboolean
invalid (GError **error, const char *path, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  g_autofree char *msg = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  g_set_error (error, NN_DESCRIPTOR_ERROR, NN_DESCRIPTOR_ERROR_INVALID, "%s%s%s",
               path && *path ? path : "", path && *path ? ": " : "", msg);
  return FALSE;
}

static const char *
node_kind (JsonNode *n)
{
  switch (json_node_get_node_type (n)) {
  case JSON_NODE_OBJECT: return "an object";
  case JSON_NODE_ARRAY: return "an array";
  case JSON_NODE_NULL: return "null";
  case JSON_NODE_VALUE: break;
  }
  GType t = json_node_get_value_type (n);
  return t == G_TYPE_STRING ? "a string" : t == G_TYPE_BOOLEAN ? "a bool" : "a number";
}

static gboolean
only_fields (JsonObject *o, const char *const *allowed, const char *path,
             const char *what, GError **error)
{
  g_autoptr (GList) members = json_object_get_members (o);
  for (GList *l = members; l; l = l->next) {
    if (g_strv_contains (allowed, l->data))
      continue;
    g_autofree char *list = g_strjoinv (", ", (char **) allowed);
    return invalid (error, path, "unknown field '%s' in %s (expected %s)",
                    (char *) l->data, what, list);
  }
  return TRUE;
}

static const char *
get_string_field (JsonObject *o, const char *field, const char *path,
                  gboolean required, GError **error)
{
  JsonNode *n = json_object_get_member (o, field);
  if (!n) {
    if (required)
      invalid (error, path, "missing field '%s'", field);
    return NULL;
  }
  if (!JSON_NODE_HOLDS_VALUE (n) || json_node_get_value_type (n) != G_TYPE_STRING) {
    invalid (error, path, "field '%s' must be a string, found %s", field, node_kind (n));
    return NULL;
  }
  return json_node_get_string (n);
}

/* The element count (times the widest element) must fit 64 bits; @what
 * names the shape in the error. */
static gboolean
shape_fits (const NnShape *s, const char *what, GError **error)
{
  gint64 n = 1, bytes;
  for (guint i = 0; i < s->ndim; i++)
    if (__builtin_mul_overflow (n, s->dims[i], &n)
        || __builtin_mul_overflow (n, (gint64) sizeof (double), &bytes)) {
      g_autofree char *text = nn_shape_to_string (s);
      g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_INVALID,
                   "%s %s has more elements than 64-bit sizes can count",
                   what, text);
      return FALSE;
    }
  return TRUE;
}

static gboolean
read_shape (JsonNode *n, NnShape *out, gboolean positive)
{
  if (!n || !JSON_NODE_HOLDS_ARRAY (n))
    return FALSE;
  JsonArray *a = json_node_get_array (n);
  guint len = json_array_get_length (a);
  if (len > NN_MAX_DIMS)
    return FALSE;
  NnShape s = { .ndim = len };
  for (guint i = 0; i < len; i++) {
    JsonNode *e = json_array_get_element (a, i);
    if (!JSON_NODE_HOLDS_VALUE (e) || json_node_get_value_type (e) != G_TYPE_INT64
        || json_node_get_int (e) < (positive ? 1 : 0))
      return FALSE;
    s.dims[i] = json_node_get_int (e);
  }
  *out = s;
  return TRUE;
}

/* "parameters"/"buffers": { NAME: { "shape": [...], "dtype": "F32",
 * "persistent": bool (buffers) } }, in order. */
static gboolean
declare_tensors (NnModule *m, JsonObject *o, const char *field,
                 const char *where, GError **error)
{
  JsonNode *n = json_object_get_member (o, field);
  if (!n)
    return TRUE;
  gboolean param = strcmp (field, "parameters") == 0;
  if (!(m->type->flags & NN_LAYER_DECLARED_TENSORS))
    return invalid (error, where, "type %s does not accept declared %s "
                    "(only types with NN_LAYER_DECLARED_TENSORS, such as a "
                    "Graph, do)", m->type->name, field);
  if (!JSON_NODE_HOLDS_OBJECT (n))
    return invalid (error, where, "field '%s' must be an object, found %s",
                    field, node_kind (n));
  JsonObject *decl = json_node_get_object (n);
  g_autoptr (GList) names = json_object_get_members (decl);
  for (GList *l = names; l; l = l->next) {
    const char *name = l->data;
    JsonNode *tn = json_object_get_member (decl, name);
    if (!JSON_NODE_HOLDS_OBJECT (tn))
      return invalid (error, where, "%s '%s' must be an object with shape "
                      "and dtype, found %s", field, name, node_kind (tn));
    JsonObject *to = json_node_get_object (tn);
    static const char *const pfields[] = { "shape", "dtype", NULL };
    static const char *const bfields[] = { "shape", "dtype", "persistent", NULL };
    g_autofree char *what = g_strdup_printf ("%s '%s'", field, name);
    if (!only_fields (to, param ? pfields : bfields, where, what, error))
      return FALSE;
    NnShape shape;
    if (!read_shape (json_object_get_member (to, "shape"), &shape, FALSE))
      return invalid (error, where, "%s: 'shape' must be an array of up to %d "
                      "non-negative ints", what, NN_MAX_DIMS);
    if (!shape_fits (&shape, what, error)) {
      g_prefix_error (error, "%s: ", where);
      return FALSE;
    }
    GError *tmp = NULL;
    const char *dt = get_string_field (to, "dtype", where, TRUE, &tmp);
    if (!dt) {
      g_propagate_error (error, tmp);
      return FALSE;
    }
    NnDType dtype;
    if (!nn_dtype_parse (dt, &dtype))
      return invalid (error, where, "%s: unknown dtype '%s' (expected F32, "
                      "I64, F16, BF16, F64, I32, I8, U8 or BOOL)", what, dt);
    gboolean persistent = TRUE;
    JsonNode *pn = json_object_get_member (to, "persistent");
    if (pn) {
      if (!JSON_NODE_HOLDS_VALUE (pn) || json_node_get_value_type (pn) != G_TYPE_BOOLEAN)
        return invalid (error, where, "%s: 'persistent' must be a bool", what);
      persistent = json_node_get_boolean (pn);
    }
    if (!nn_module_declare_tensor (m, name, param, dtype, &shape, persistent, error)) {
      g_prefix_error (error, "%s: ", where);
      return FALSE;
    }
  }
  return TRUE;
}

static NnModule *build_node (NnRegistry *reg, JsonNode *node, const char *path,
                             NnModule *root, GError **error);

/* "repr_lists": config keys PyTorch holds as lists (printed [1, 3, 3]). */
static gboolean
read_repr_lists (NnModule *m, JsonNode *n, const char *where, GError **error)
{
  if (!n)
    return TRUE;
  if (!JSON_NODE_HOLDS_ARRAY (n))
    return invalid (error, where, "field 'repr_lists' must be an array of "
                    "config keys, found %s", node_kind (n));
  JsonArray *a = json_node_get_array (n);
  guint len = json_array_get_length (a);
  g_autofree const char **keys = g_new0 (const char *, len + 1);
  for (guint i = 0; i < len; i++) {
    JsonNode *e = json_array_get_element (a, i);
    if (!JSON_NODE_HOLDS_VALUE (e) || json_node_get_value_type (e) != G_TYPE_STRING)
      return invalid (error, where, "repr_lists[%u] must be a config key (a "
                      "string), found %s", i, node_kind (e));
    keys[i] = json_node_get_string (e);
  }
  if (!nn_module_set_repr_lists (m, keys, error)) {
    g_prefix_error (error, "%s: ", where);
    return FALSE;
  }
  return TRUE;
}

static gboolean
build_children (NnRegistry *reg, NnModule *m, JsonArray *kids, const char *path,
                NnModule *root, GError **error)
{
  static const char *const child_fields[] = { "name", "type", "class", "extra_repr", "config", "repr_lists", "parameters",
                                              "buffers", "children", "ref", NULL };
  for (guint i = 0; i < json_array_get_length (kids); i++) {
    JsonNode *kn = json_array_get_element (kids, i);
    g_autofree char *where = g_strdup_printf ("%s%schildren[%u]", path, *path ? "." : "", i);
    if (!JSON_NODE_HOLDS_OBJECT (kn))
      return invalid (error, where, "expected an object, found %s", node_kind (kn));
    JsonObject *ko = json_node_get_object (kn);
    if (!only_fields (ko, child_fields, where, "a child", error))
      return FALSE;
    GError *tmp = NULL;
    const char *name = get_string_field (ko, "name", where, TRUE, &tmp);
    if (!name) {
      g_propagate_error (error, tmp);
      return FALSE;
    }
    if (!nn_module_name_is_valid (name, error)) {
      g_prefix_error (error, "%s: ", where);
      return FALSE;
    }
    if (nn_module_get_child (m, name)) {
      g_set_error (error, NN_DESCRIPTOR_ERROR, NN_DESCRIPTOR_ERROR_DUPLICATE_NAME,
                   "%s: duplicate child name '%s' in %s", where, name,
                   *path ? path : "the root");
      return FALSE;
    }
    g_autofree char *sub = *path ? g_strdup_printf ("%s.%s", path, name) : g_strdup (name);
    g_autoptr (NnModule) child = NULL;
    const char *ref = get_string_field (ko, "ref", sub, FALSE, &tmp);
    if (tmp) {
      g_propagate_error (error, tmp);
      return FALSE;
    }
    if (ref) {
      if (json_object_get_size (ko) != 2)
        return invalid (error, sub, "a 'ref' child has only 'name' and 'ref'");
      NnModule *target = nn_module_lookup_path (root, ref, error);
      if (!target) {
        g_prefix_error (error, "%s: ref '%s': ", sub, ref);
        return FALSE;
      }
      child = nn_module_ref (target);
    } else {
      child = build_node (reg, kn, sub, root, error);
      if (!child)
        return FALSE;
    }
    if (!nn_module_add_child (m, name, child, error)) {
      g_prefix_error (error, "%s: ", sub);
      return FALSE;
    }
  }
  return TRUE;
}

static NnModule *
build_node (NnRegistry *reg, JsonNode *node, const char *path, NnModule *root,
            GError **error)
{
  static const char *const fields[] = { "name", "type", "class", "extra_repr", "config", "repr_lists",
                                        "parameters", "buffers", "children", NULL };
  const char *where = *path ? path : "model";
  if (!JSON_NODE_HOLDS_OBJECT (node)) {
    invalid (error, where, "expected a module object, found %s", node_kind (node));
    return NULL;
  }
  JsonObject *o = json_node_get_object (node);
  if (!only_fields (o, fields, where, "a module", error))
    return NULL;
  GError *tmp = NULL;
  const char *type = get_string_field (o, "type", where, TRUE, &tmp);
  const char *klass = type ? get_string_field (o, "class", where, FALSE, &tmp) : NULL;
  const char *extra = !tmp ? get_string_field (o, "extra_repr", where, FALSE, &tmp) : NULL;
  if (tmp) {
    g_propagate_error (error, tmp);
    return NULL;
  }
  JsonObject *config = NULL;
  JsonNode *cn = json_object_get_member (o, "config");
  if (cn) {
    if (!JSON_NODE_HOLDS_OBJECT (cn)) {
      invalid (error, where, "field 'config' must be an object, found %s", node_kind (cn));
      return NULL;
    }
    config = json_node_get_object (cn);
  }
  JsonArray *kids = NULL;
  JsonNode *kn = json_object_get_member (o, "children");
  if (kn) {
    if (!JSON_NODE_HOLDS_ARRAY (kn)) {
      invalid (error, where, "field 'children' must be an array, found %s", node_kind (kn));
      return NULL;
    }
    kids = json_node_get_array (kn);
  }

  g_autoptr (NnModule) m = nn_module_new_from_type (reg, type, config, path, error);
  if (!m)
    return NULL;
  if (klass)
    nn_module_set_class_name (m, klass);
  nn_module_set_extra_repr (m, extra);
  if (!read_repr_lists (m, json_object_get_member (o, "repr_lists"), where, error))
    return NULL;
  if (!declare_tensors (m, o, "parameters", where, error)
      || !declare_tensors (m, o, "buffers", where, error))
    return NULL;
  if (kids && !build_children (reg, m, kids, path, root ? root : m, error))
    return NULL;
  return g_steal_pointer (&m);
}

NnModule *
nn_descriptor_load_module_node (NnRegistry *reg, JsonNode *node,
                                const char *path, GError **error)
{
  g_autoptr (NnModule) m = build_node (reg, node, path ? path : "", NULL, error);
  if (!m || !nn_module_check_tree (m, path ? path : "", error))
    return NULL;
  return g_steal_pointer (&m);
}

/* What a file that is not JSON text most likely is, by its first bytes,
 * and what to do with it: the files a PyTorch user has at hand besides a
 * descriptor.  NULL when nothing is recognised (the JSON parser's message
 * then stands). */
static const char *
binary_kind (const char *data, gsize len)
{
  const guchar *b = (const guchar *) data;
  if ((len >= 4 && memcmp (b, "PK\003\004", 4) == 0)
      || (len >= 2 && b[0] == 0x80 && b[1] >= 2 && b[1] <= 5))
    return "a PyTorch checkpoint (torch.save()): give it as --weights of "
           "the model's descriptor, which tools/torch2nn exports";
  if (len >= 4 && memcmp (b, "\177ELF", 4) == 0)
    return "an ELF binary (plugins are found on the plugin path)";
  if (!g_utf8_validate (data, (gssize) len, NULL))
    return "binary data";
  return NULL;
}

static JsonNode *
parse (const char *data, gssize len, const char *origin, GError **error)
{
  gsize n = len < 0 ? strlen (data) : (gsize) len;
  const char *kind = binary_kind (data, n);
  if (kind) {
    /* The parser would only say the data is not UTF-8. */
    g_set_error (error, NN_DESCRIPTOR_ERROR, NN_DESCRIPTOR_ERROR_PARSE,
                 "%s: not a model descriptor (JSON text) but %s", origin,
                 kind);
    return NULL;
  }
  if (!nn_json_guard_scan (data, len < 0 ? strlen (data) : (gsize) len,
                           NN_DESCRIPTOR_MAX_JSON_DEPTH,
                           NN_JSON_GUARD_NO_DUPLICATE_KEYS, origin,
                           NN_DESCRIPTOR_ERROR, NN_DESCRIPTOR_ERROR_PARSE, error))
    return NULL;
  g_autoptr (JsonParser) parser = json_parser_new_immutable ();
  GError *perr = NULL;
  if (!json_parser_load_from_data (parser, data, len, &perr)) {
    g_set_error (error, NN_DESCRIPTOR_ERROR, NN_DESCRIPTOR_ERROR_PARSE,
                 "%s: malformed JSON: %s", origin, perr->message);
    g_error_free (perr);
    return NULL;
  }
  JsonNode *root = json_parser_get_root (parser);
  if (!root) {
    g_set_error (error, NN_DESCRIPTOR_ERROR, NN_DESCRIPTOR_ERROR_PARSE,
                 "%s: empty document", origin);
    return NULL;
  }
  return json_node_copy (root);
}

static gboolean
read_input_shape (JsonNode *n, NnShape *out, GError **error)
{
  if (!read_shape (n, out, TRUE) || out->ndim == 0)
    return invalid (error, "input_shape", "expected an array of 1 to %d positive ints",
                    NN_MAX_DIMS);
  return shape_fits (out, "input_shape", error);
}

/* "inputs": [{"name": N, "shape": [...], "dtype": D}, ...] as a dict of
 * meta tensors. */
static NnValue *
read_inputs (JsonNode *n, GError **error)
{
  if (!JSON_NODE_HOLDS_ARRAY (n) || json_array_get_length (json_node_get_array (n)) == 0) {
    invalid (error, "inputs", "expected a non-empty array of {name, shape, dtype}");
    return NULL;
  }
  JsonArray *a = json_node_get_array (n);
  g_autoptr (NnValue) spec = nn_value_new_dict ();
  for (guint i = 0; i < json_array_get_length (a); i++) {
    JsonNode *e = json_array_get_element (a, i);
    g_autofree char *where = g_strdup_printf ("inputs[%u]", i);
    static const char *const fields[] = { "name", "shape", "dtype", NULL };
    if (!JSON_NODE_HOLDS_OBJECT (e)) {
      invalid (error, where, "expected an object, found %s", node_kind (e));
      return NULL;
    }
    JsonObject *o = json_node_get_object (e);
    if (!only_fields (o, fields, where, "an input", error))
      return NULL;
    const char *name = get_string_field (o, "name", where, TRUE, error);
    if (!name)
      return NULL;
    if (!*name || nn_value_dict_lookup (spec, name)) {
      invalid (error, where, "input name '%s' is empty or given twice", name);
      return NULL;
    }
    NnShape shape;
    if (!read_shape (json_object_get_member (o, "shape"), &shape, FALSE)) {
      invalid (error, where, "'shape' must be an array of up to %d non-negative ints",
               NN_MAX_DIMS);
      return NULL;
    }
    if (!shape_fits (&shape, where, error))
      return NULL;
    NnDType dtype = NN_DTYPE_F32;
    GError *tmp = NULL;
    const char *dt = get_string_field (o, "dtype", where, FALSE, &tmp);
    if (tmp) {
      g_propagate_error (error, tmp);
      return NULL;
    }
    if (dt && !nn_dtype_parse (dt, &dtype)) {
      invalid (error, where, "unknown dtype '%s' (expected F32, I64, F16, BF16, F64, "
               "I32, I8, U8 or BOOL)", dt);
      return NULL;
    }
    nn_value_dict_set (spec, name, nn_value_take_tensor (nn_tensor_new_meta (dtype, &shape)));
  }
  return g_steal_pointer (&spec);
}

static gboolean
apply_frozen (NnModule *m, JsonNode *fn, GError **error)
{
  if (!JSON_NODE_HOLDS_ARRAY (fn))
    return invalid (error, "frozen", "expected an array of parameter names or globs");
  JsonArray *a = json_node_get_array (fn);
  for (guint i = 0; i < json_array_get_length (a); i++) {
    JsonNode *e = json_array_get_element (a, i);
    if (!JSON_NODE_HOLDS_VALUE (e) || json_node_get_value_type (e) != G_TYPE_STRING)
      return invalid (error, "frozen", "entry %u is not a string", i);
    GError *tmp = NULL;
    if (!nn_module_set_requires_grad (m, json_node_get_string (e), FALSE, NULL, &tmp)) {
      invalid (error, "frozen", "%s", tmp->message);
      g_error_free (tmp);
      return FALSE;
    }
  }
  return TRUE;
}

/* The top-level "tied": {alias key: first key} object, applied in order
 * once the tree is built.  @n (nullable). */
static gboolean
apply_ties (NnModule *m, JsonNode *n, GError **error)
{
  if (n == NULL)
    return TRUE;
  if (!JSON_NODE_HOLDS_OBJECT (n))
    return invalid (error, NULL, "'tied' must be an object of alias key -> "
                    "first key, found %s", node_kind (n));
  JsonObject *o = json_node_get_object (n);
  g_autoptr (GList) members = json_object_get_members (o);
  for (GList *l = members; l; l = l->next) {
    const char *alias = l->data;
    JsonNode *v = json_object_get_member (o, alias);
    if (!JSON_NODE_HOLDS_VALUE (v) || json_node_get_value_type (v) != G_TYPE_STRING)
      return invalid (error, NULL, "tied.%s: expected the first key as a "
                      "string, found %s", alias, node_kind (v));
    GError *tmp = NULL;
    if (!nn_module_tie (m, alias, json_node_get_string (v), &tmp)) {
      invalid (error, NULL, "tied: %s", tmp->message);
      g_error_free (tmp);
      return FALSE;
    }
  }
  return TRUE;
}

NnModule *
nn_descriptor_load_data (NnRegistry *reg, const char *data, gssize len,
                         const char *origin, GError **error)
{
  g_return_val_if_fail (reg != NULL && data != NULL, NULL);
  origin = origin ? origin : "descriptor";
  g_autoptr (JsonNode) root = parse (data, len, origin, error);
  if (!root)
    return NULL;
  static const char *const fields[] = { "format", "version", "input_shape", "inputs", "model",
                                        "weights_id", "frozen", "tied", NULL };
  GError *tmp = NULL;
  g_autoptr (NnValue) spec = NULL;
  if (!JSON_NODE_HOLDS_OBJECT (root)) {
    invalid (&tmp, NULL, "expected a descriptor object, found %s", node_kind (root));
    goto fail;
  }
  JsonObject *o = json_node_get_object (root);
  if (!only_fields (o, fields, NULL, "the descriptor", &tmp))
    goto fail;
  const char *format = get_string_field (o, "format", "format", TRUE, &tmp);
  if (!format)
    goto fail;
  if (strcmp (format, NN_FORMAT_NAME) != 0) {
    invalid (&tmp, NULL, "format is '%s', expected '%s'", format, NN_FORMAT_NAME);
    goto fail;
  }
  JsonNode *vn = json_object_get_member (o, "version");
  if (!vn || !JSON_NODE_HOLDS_VALUE (vn) || json_node_get_value_type (vn) != G_TYPE_INT64 ||
      json_node_get_int (vn) < 1 || json_node_get_int (vn) > NN_FORMAT_VERSION) {
    invalid (&tmp, NULL, "version must be 1 or %d", NN_FORMAT_VERSION);
    goto fail;
  }
  guint version = (guint) json_node_get_int (vn);
  NnShape ishape;
  JsonNode *sn = json_object_get_member (o, "input_shape");
  if (sn && !read_input_shape (sn, &ishape, &tmp))
    goto fail;
  JsonNode *in = json_object_get_member (o, "inputs");
  if (in && sn) {
    invalid (&tmp, NULL, "give 'inputs' or 'input_shape', not both");
    goto fail;
  }
  spec = in ? read_inputs (in, &tmp) : NULL;
  if (in && !spec)
    goto fail;
  JsonNode *mn = json_object_get_member (o, "model");
  if (!mn) {
    invalid (&tmp, NULL, "missing field 'model'");
    goto fail;
  }
  gpointer saved = g_private_get (&loading_version);
  g_private_set (&loading_version, GUINT_TO_POINTER (version));
  NnModule *m = nn_descriptor_load_module_node (reg, mn, "", &tmp);
  g_private_set (&loading_version, saved);
  if (!m)
    goto fail;
  if (!apply_ties (m, json_object_get_member (o, "tied"), &tmp)) {
    nn_module_unref (m);
    goto fail;
  }
  if (sn)
    nn_module_set_input_shape (m, &ishape);
  if (spec)
    nn_module_set_input_spec (m, spec, NULL);
  /* "frozen": parameter names or globs with requires_grad False
   * (docs/TRAINING.md). */
  JsonNode *fn = json_object_get_member (o, "frozen");
  if (fn && !apply_frozen (m, fn, &tmp)) {
    nn_module_unref (m);
    goto fail;
  }
  return m;

fail:
  g_prefix_error (&tmp, "%s: ", origin);
  g_propagate_error (error, tmp);
  return NULL;
}

NnModule *
nn_descriptor_load_file (NnRegistry *reg, const char *path, GError **error)
{
  g_autofree char *data = NULL;
  gsize len = 0;
  GError *ioerr = NULL;
  if (!g_file_get_contents (path, &data, &len, &ioerr)) {
    g_set_error (error, NN_DESCRIPTOR_ERROR, NN_DESCRIPTOR_ERROR_IO, "%s", ioerr->message);
    g_error_free (ioerr);
    return NULL;
  }
  return nn_descriptor_load_data (reg, data, (gssize) len, path, error);
}

NnModule *
nn_descriptor_load_module_data (NnRegistry *reg, const char *data, gssize len,
                                const char *origin, GError **error)
{
  origin = origin ? origin : "module";
  g_autoptr (JsonNode) root = parse (data, len, origin, error);
  if (!root)
    return NULL;
  if (JSON_NODE_HOLDS_OBJECT (root) &&
      json_object_has_member (json_node_get_object (root), "format"))
    return nn_descriptor_load_data (reg, data, len, origin, error);
  GError *tmp = NULL;
  NnModule *m = nn_descriptor_load_module_node (reg, root, "", &tmp);
  if (!m) {
    g_prefix_error (&tmp, "%s: ", origin);
    g_propagate_error (error, tmp);
  }
  return m;
}

/* --- saving ------------------------------------------------------------ */

static void
add_declared (JsonBuilder *b, GArray *slots, const char *field, gboolean buffers)
{
  gboolean any = FALSE;
  for (guint i = 0; i < slots->len; i++) {
    NnSlot *s = &g_array_index (slots, NnSlot, i);
    if (!s->declared)
      continue;
    if (!any) {
      json_builder_set_member_name (b, field);
      json_builder_begin_object (b);
      any = TRUE;
    }
    json_builder_set_member_name (b, s->name);
    json_builder_begin_object (b);
    json_builder_set_member_name (b, "shape");
    json_builder_begin_array (b);
    for (guint d = 0; d < s->tensor->shape.ndim; d++)
      json_builder_add_int_value (b, s->tensor->shape.dims[d]);
    json_builder_end_array (b);
    json_builder_set_member_name (b, "dtype");
    json_builder_add_string_value (b, nn_dtype_name (s->tensor->dtype));
    if (buffers) {
      json_builder_set_member_name (b, "persistent");
      json_builder_add_boolean_value (b, s->persistent);
    }
    json_builder_end_object (b);
  }
  if (any)
    json_builder_end_object (b);
}

static JsonNode *
module_node (NnModule *m, const char *path, GHashTable *first_path)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "type");
  json_builder_add_string_value (b, m->type->name);
  if (m->class_name) {
    json_builder_set_member_name (b, "class");
    json_builder_add_string_value (b, m->class_name);
  }
  if (m->extra_repr) {
    json_builder_set_member_name (b, "extra_repr");
    json_builder_add_string_value (b, m->extra_repr);
  }
  if (json_object_get_size (m->config) > 0) {
    json_builder_set_member_name (b, "config");
    JsonNode *cfg = json_node_new (JSON_NODE_OBJECT);
    json_node_set_object (cfg, m->config);
    json_builder_add_value (b, cfg);
  }
  if (m->repr_lists) {
    json_builder_set_member_name (b, "repr_lists");
    json_builder_begin_array (b);
    for (guint i = 0; m->repr_lists[i]; i++)
      json_builder_add_string_value (b, m->repr_lists[i]);
    json_builder_end_array (b);
  }
  add_declared (b, m->params, "parameters", FALSE);
  add_declared (b, m->buffers, "buffers", TRUE);
  if (m->children->len > 0) {
    json_builder_set_member_name (b, "children");
    json_builder_begin_array (b);
    for (guint i = 0; i < m->children->len; i++) {
      NnChild *c = &g_array_index (m->children, NnChild, i);
      g_autofree char *sub = *path ? g_strdup_printf ("%s.%s", path, c->name) : g_strdup (c->name);
      const char *seen = g_hash_table_lookup (first_path, c->module);
      if (seen) {
        /* A module under two parents is written once, then referenced. */
        json_builder_begin_object (b);
        json_builder_set_member_name (b, "name");
        json_builder_add_string_value (b, c->name);
        json_builder_set_member_name (b, "ref");
        json_builder_add_string_value (b, seen);
        json_builder_end_object (b);
        continue;
      }
      g_hash_table_insert (first_path, c->module, g_strdup (sub));
      JsonNode *cn = module_node (c->module, sub, first_path);
      /* "name" first reads best; rebuild the object with it leading. */
      JsonObject *co = json_node_get_object (cn);
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "name");
      json_builder_add_string_value (b, c->name);
      g_autoptr (GList) members = json_object_get_members (co);
      for (GList *l = members; l; l = l->next) {
        json_builder_set_member_name (b, l->data);
        json_builder_add_value (b, json_node_copy (json_object_get_member (co, l->data)));
      }
      json_builder_end_object (b);
      json_node_unref (cn);
    }
    json_builder_end_array (b);
  }
  json_builder_end_object (b);
  return json_builder_get_root (b);
}

JsonNode *
nn_descriptor_module_to_node (NnModule *m)
{
  g_autoptr (GHashTable) first = g_hash_table_new_full (NULL, NULL, NULL, g_free);
  g_hash_table_insert (first, m, g_strdup (""));
  return module_node (m, "", first);
}

char *
nn_descriptor_to_data (NnModule *root, gsize *len_out)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "format");
  json_builder_add_string_value (b, NN_FORMAT_NAME);
  json_builder_set_member_name (b, "version");
  json_builder_add_int_value (b, NN_FORMAT_VERSION);
  NnShape s;
  if (root->input_spec_legacy && nn_module_get_input_shape (root, &s)) {
    json_builder_set_member_name (b, "input_shape");
    json_builder_begin_array (b);
    for (guint i = 0; i < s.ndim; i++)
      json_builder_add_int_value (b, s.dims[i]);
    json_builder_end_array (b);
  } else if (root->input_spec) {
    json_builder_set_member_name (b, "inputs");
    json_builder_begin_array (b);
    for (guint i = 0; i < nn_value_n_items (root->input_spec); i++) {
      NnTensor *t = nn_value_get_tensor (nn_value_item (root->input_spec, i));
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "name");
      json_builder_add_string_value (b, nn_value_dict_key (root->input_spec, i));
      json_builder_set_member_name (b, "shape");
      json_builder_begin_array (b);
      for (guint d = 0; d < t->shape.ndim; d++)
        json_builder_add_int_value (b, t->shape.dims[d]);
      json_builder_end_array (b);
      json_builder_set_member_name (b, "dtype");
      json_builder_add_string_value (b, nn_dtype_name (t->dtype));
      json_builder_end_object (b);
    }
    json_builder_end_array (b);
  }
  g_auto (GStrv) frozen = nn_module_frozen_names (root);
  if (frozen[0]) {
    json_builder_set_member_name (b, "frozen");
    json_builder_begin_array (b);
    for (guint i = 0; frozen[i]; i++)
      json_builder_add_string_value (b, frozen[i]);
    json_builder_end_array (b);
  }
  json_builder_set_member_name (b, "model");
  json_builder_add_value (b, nn_descriptor_module_to_node (root));
  g_autoptr (GPtrArray) ties = nn_module_tied_keys (root);
  if (ties->len) {
    json_builder_set_member_name (b, "tied");
    json_builder_begin_object (b);
    for (guint i = 0; i + 1 < ties->len; i += 2) {
      json_builder_set_member_name (b, ties->pdata[i]);
      json_builder_add_string_value (b, ties->pdata[i + 1]);
    }
    json_builder_end_object (b);
  }
  json_builder_end_object (b);
  g_autoptr (JsonNode) doc = json_builder_get_root (b);
  return nn_json_to_text (doc, len_out);
}

gboolean
nn_descriptor_save_file (NnModule *root, const char *path, GError **error)
{
  gsize len = 0;
  g_autofree char *data = nn_descriptor_to_data (root, &len);
  return nn_write_file_atomic (path, data, len, NN_DESCRIPTOR_ERROR,
                               NN_DESCRIPTOR_ERROR_IO, error);
}
