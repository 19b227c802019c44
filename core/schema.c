/* nnkit core: validating a module's config against its type's schema.
 * Runs before the type's create function, so a type only ever sees keys
 * it declared, of the declared kind, within range, defaults filled. */
#include "nn-private.h"
#include "json_guard.h"

#include <math.h>
#include <string.h>

const char *
nn_kind_name (NnKind kind)
{
  static const char *const names[] = {
    "int", "float", "bool", "string", "enum", "int tuple", "json",
  };
  return (guint) kind < G_N_ELEMENTS (names) ? names[kind] : "?";
}

static char *
where (const NnLayerType *type, const char *path)
{
  return path && *path ? g_strdup_printf ("%s: %s", path, type->name)
                       : g_strdup (type->name);
}

static const NnSchemaKey *
find_key (const NnLayerType *type, const char *name)
{
  for (guint i = 0; i < type->n_schema; i++)
    if (strcmp (type->schema[i].name, name) == 0)
      return &type->schema[i];
  return NULL;
}

static const char *
closest_key (const NnLayerType *type, const char *name)
{
  const char *best = NULL;
  guint best_d = G_MAXUINT;
  for (guint i = 0; i < type->n_schema; i++) {
    guint d = nn_edit_distance (name, type->schema[i].name);
    if (d < best_d) {
      best_d = d;
      best = type->schema[i].name;
    }
  }
  /* Suggest only plausible typos, not any key at all. */
  return best && best_d <= MAX (2u, (guint) strlen (name) / 3) ? best : NULL;
}

static char *
describe_node (JsonNode *n)
{
  switch (json_node_get_node_type (n)) {
  case JSON_NODE_NULL: return g_strdup ("null");
  case JSON_NODE_OBJECT: return g_strdup ("an object");
  case JSON_NODE_ARRAY:
    return g_strdup_printf ("an array of %u", json_array_get_length (json_node_get_array (n)));
  case JSON_NODE_VALUE:
    break;
  }
  GType t = json_node_get_value_type (n);
  if (t == G_TYPE_INT64)
    return g_strdup_printf ("int %" G_GINT64_FORMAT, json_node_get_int (n));
  if (t == G_TYPE_DOUBLE)
    return g_strdup_printf ("float %g", json_node_get_double (n));
  if (t == G_TYPE_BOOLEAN)
    return g_strdup_printf ("bool %s", json_node_get_boolean (n) ? "true" : "false");
  if (t == G_TYPE_STRING)
    return g_strdup_printf ("string '%s'", json_node_get_string (n));
  return g_strdup ("an unknown value");
}

static char *
expected_text (const NnSchemaKey *k)
{
  GString *s = g_string_new (NULL);
  switch (k->kind) {
  case NN_KIND_INT_TUPLE:
    g_string_append_printf (s, "an int or a tuple of %u ints", k->tuple_len);
    break;
  case NN_KIND_ENUM:
    g_string_append (s, "one of");
    break;
  case NN_KIND_INT: g_string_append (s, "an int"); break;
  case NN_KIND_FLOAT: g_string_append (s, "a number"); break;
  case NN_KIND_BOOL: g_string_append (s, "a bool"); break;
  case NN_KIND_STRING: g_string_append (s, "a string"); break;
  case NN_KIND_JSON: g_string_append (s, "a JSON value"); break;
  }
  if (k->enum_values && (k->kind == NN_KIND_ENUM || (k->flags & NN_KEY_OR_ENUM))) {
    if (k->kind != NN_KIND_ENUM)
      g_string_append (s, " or one of");
    for (guint i = 0; k->enum_values[i]; i++)
      g_string_append_printf (s, "%s '%s'", i ? "," : "", k->enum_values[i]);
  }
  if (k->flags & NN_KEY_NULLABLE)
    g_string_append (s, " or null");
  return g_string_free (s, FALSE);
}

static gboolean
in_enum (const NnSchemaKey *k, const char *v)
{
  for (guint i = 0; k->enum_values && k->enum_values[i]; i++)
    if (strcmp (k->enum_values[i], v) == 0)
      return TRUE;
  return FALSE;
}

static gboolean
is_int (JsonNode *n)
{
  return JSON_NODE_HOLDS_VALUE (n) && json_node_get_value_type (n) == G_TYPE_INT64;
}

static gboolean
is_number (JsonNode *n)
{
  return JSON_NODE_HOLDS_VALUE (n) &&
         (json_node_get_value_type (n) == G_TYPE_INT64 ||
          json_node_get_value_type (n) == G_TYPE_DOUBLE);
}

/* Ints print as ints, floats as Python prints them. */
static char *
number_text (const NnSchemaKey *k, double v)
{
  if (k->kind == NN_KIND_FLOAT)
    return nn_format_py_float (v);
  return g_strdup_printf ("%.0f", v);
}

static gboolean
check_range (const NnSchemaKey *k, double v, const char *loc, GError **error)
{
  gboolean lo = (k->flags & NN_KEY_HAS_MIN) && v < k->min;
  gboolean hi = (k->flags & NN_KEY_HAS_MAX) && v > k->max;
  if (!lo && !hi && !isnan (v))
    return TRUE;
  g_autofree char *mn = number_text (k, k->min);
  g_autofree char *mx = number_text (k, k->max);
  g_autofree char *got = number_text (k, v);
  g_autofree char *range = NULL;
  if ((k->flags & NN_KEY_HAS_MIN) && (k->flags & NN_KEY_HAS_MAX))
    range = g_strdup_printf ("between %s and %s", mn, mx);
  else if (k->flags & NN_KEY_HAS_MIN)
    range = g_strdup_printf (">= %s", mn);
  else
    range = g_strdup_printf ("<= %s", mx);
  g_set_error (error, NN_DESCRIPTOR_ERROR, NN_DESCRIPTOR_ERROR_OUT_OF_RANGE,
               "%s: key '%s' must be %s, found %s", loc, k->name, range, got);
  return FALSE;
}

/* Checks @value against @k; returns (transfer full) the value to store. */
static JsonNode *
check_value (const NnSchemaKey *k, JsonNode *value, const char *loc,
             GError **error)
{
  if (JSON_NODE_HOLDS_NULL (value)) {
    if (k->flags & NN_KEY_NULLABLE || k->kind == NN_KIND_JSON)
      return json_node_copy (value);
    goto wrong_kind;
  }
  switch (k->kind) {
  case NN_KIND_JSON:
    return json_node_copy (value);
  case NN_KIND_INT:
    if (!is_int (value))
      goto wrong_kind;
    if (!check_range (k, (double) json_node_get_int (value), loc, error))
      return NULL;
    return json_node_copy (value);
  case NN_KIND_FLOAT: {
    if (!is_number (value))
      goto wrong_kind;
    double v = json_node_get_double (value);
    if (!check_range (k, v, loc, error))
      return NULL;
    /* Stored as a double so it prints as Python prints a float: 1.0. */
    JsonNode *n = json_node_new (JSON_NODE_VALUE);
    json_node_set_double (n, v);
    return n;
  }
  case NN_KIND_BOOL:
    if (!JSON_NODE_HOLDS_VALUE (value) || json_node_get_value_type (value) != G_TYPE_BOOLEAN)
      goto wrong_kind;
    return json_node_copy (value);
  case NN_KIND_STRING:
  case NN_KIND_ENUM:
    if (!JSON_NODE_HOLDS_VALUE (value) || json_node_get_value_type (value) != G_TYPE_STRING)
      goto wrong_kind;
    if (k->kind == NN_KIND_ENUM && !in_enum (k, json_node_get_string (value)))
      goto wrong_kind;
    return json_node_copy (value);
  case NN_KIND_INT_TUPLE:
    if (JSON_NODE_HOLDS_VALUE (value) && json_node_get_value_type (value) == G_TYPE_STRING) {
      if ((k->flags & NN_KEY_OR_ENUM) && in_enum (k, json_node_get_string (value)))
        return json_node_copy (value);
      goto wrong_kind;
    }
    if (is_int (value)) {
      gint64 v = json_node_get_int (value);
      if (!check_range (k, (double) v, loc, error))
        return NULL;
      if (!(k->flags & NN_KEY_EXPAND))
        return json_node_copy (value);
      JsonArray *a = json_array_sized_new (k->tuple_len);
      for (guint i = 0; i < k->tuple_len; i++)
        json_array_add_int_element (a, v);
      JsonNode *n = json_node_new (JSON_NODE_ARRAY);
      json_node_take_array (n, a);
      return n;
    }
    if (JSON_NODE_HOLDS_ARRAY (value)) {
      JsonArray *a = json_node_get_array (value);
      if (json_array_get_length (a) != k->tuple_len)
        goto wrong_kind;
      for (guint i = 0; i < k->tuple_len; i++) {
        JsonNode *e = json_array_get_element (a, i);
        if (!is_int (e))
          goto wrong_kind;
        if (!check_range (k, (double) json_node_get_int (e), loc, error))
          return NULL;
      }
      return json_node_copy (value);
    }
    goto wrong_kind;
  }
wrong_kind:;
  g_autofree char *exp = expected_text (k);
  g_autofree char *got = describe_node (value);
  g_set_error (error, NN_DESCRIPTOR_ERROR, NN_DESCRIPTOR_ERROR_WRONG_KIND,
               "%s: key '%s' expects %s, found %s", loc, k->name, exp, got);
  return NULL;
}

JsonObject *
nn_schema_validate (const NnLayerType *type, JsonObject *config,
                    const char *path, GError **error)
{
  g_autofree char *loc = where (type, path);
  if (config) {
    g_autoptr (GList) members = json_object_get_members (config);
    for (GList *l = members; l; l = l->next) {
      const char *name = l->data;
      if (find_key (type, name))
        continue;
      const char *guess = closest_key (type, name);
      if (guess)
        g_set_error (error, NN_DESCRIPTOR_ERROR, NN_DESCRIPTOR_ERROR_UNKNOWN_KEY,
                     "%s: unknown key '%s' (did you mean '%s'?)", loc, name, guess);
      else if (type->n_schema == 0)
        g_set_error (error, NN_DESCRIPTOR_ERROR, NN_DESCRIPTOR_ERROR_UNKNOWN_KEY,
                     "%s: unknown key '%s' (%s takes no config keys)", loc, name,
                     type->name);
      else {
        g_autoptr (GString) known = g_string_new (NULL);
        for (guint i = 0; i < type->n_schema; i++)
          g_string_append_printf (known, "%s%s", i ? ", " : "", type->schema[i].name);
        g_set_error (error, NN_DESCRIPTOR_ERROR, NN_DESCRIPTOR_ERROR_UNKNOWN_KEY,
                     "%s: unknown key '%s' (known keys: %s)", loc, name, known->str);
      }
      return NULL;
    }
  }

  /* Output in schema order, so saved descriptors are deterministic. */
  g_autoptr (JsonObject) out = json_object_new ();
  for (guint i = 0; i < type->n_schema; i++) {
    const NnSchemaKey *k = &type->schema[i];
    JsonNode *given = config ? json_object_get_member (config, k->name) : NULL;
    g_autoptr (JsonNode) dflt = NULL;
    if (!given) {
      if (!(k->flags & NN_KEY_OPTIONAL) || !k->default_json) {
        g_set_error (error, NN_DESCRIPTOR_ERROR, NN_DESCRIPTOR_ERROR_MISSING_KEY,
                     "%s: missing required key '%s' (%s)", loc, k->name,
                     k->doc ? k->doc : nn_kind_name (k->kind));
        return NULL;
      }
      GError *perr = NULL;
      if (strcmp (k->default_json, "null") == 0)
        dflt = json_node_new (JSON_NODE_NULL);
      else
        dflt = json_from_string (k->default_json, &perr);
      if (!dflt) {
        /* A broken default is the plugin's bug; report it, never guess. */
        g_set_error (error, NN_DESCRIPTOR_ERROR, NN_DESCRIPTOR_ERROR_INVALID,
                     "%s: the type's default for '%s' is not valid JSON: %s",
                     loc, k->name, perr ? perr->message : "empty");
        g_clear_error (&perr);
        return NULL;
      }
      given = dflt;
    }
    JsonNode *v = check_value (k, given, loc, error);
    if (!v)
      return NULL;
    json_object_set_member (out, k->name, v);
  }
  /* JSON has no NaN or infinity: such a config could never be saved. */
  g_autoptr (JsonNode) wrapped = json_node_init_object (json_node_alloc (), out);
  if (!nn_json_guard_finite (wrapped, loc, NN_DESCRIPTOR_ERROR,
                             NN_DESCRIPTOR_ERROR_INVALID, error))
    return NULL;
  return g_steal_pointer (&out);
}
