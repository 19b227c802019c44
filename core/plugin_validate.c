/* nnkit core: checks a layer type's vtable and config schema when a
 * plugin registers it, so that a broken type is refused by name. */
#include "registry-private.h"

#include <string.h>

#define NN_LAYER_KNOWN_FLAGS \
  (NN_LAYER_INDEXABLE | NN_LAYER_CONTAINER | NN_LAYER_KEYED)
#define NN_KEY_KNOWN_FLAGS                                              \
  (NN_KEY_OPTIONAL | NN_KEY_NULLABLE | NN_KEY_EXPAND | NN_KEY_OR_ENUM | \
   NN_KEY_HAS_MIN | NN_KEY_HAS_MAX)

static gboolean
json_is_int (JsonNode *n)
{
  return JSON_NODE_HOLDS_VALUE (n) && json_node_get_value_type (n) == G_TYPE_INT64;
}

static gboolean
json_is_number (JsonNode *n)
{
  GType t;

  if (!JSON_NODE_HOLDS_VALUE (n))
    return FALSE;
  t = json_node_get_value_type (n);
  return t == G_TYPE_INT64 || t == G_TYPE_DOUBLE;
}

static gboolean
json_is_string (JsonNode *n)
{
  return JSON_NODE_HOLDS_VALUE (n) && json_node_get_value_type (n) == G_TYPE_STRING;
}

static gboolean
enum_contains (const char *const *values, const char *s)
{
  for (guint i = 0; values && values[i]; i++)
    if (strcmp (values[i], s) == 0)
      return TRUE;
  return FALSE;
}

static gboolean
default_fits_kind (const NnSchemaKey *k, JsonNode *n)
{
  if (JSON_NODE_HOLDS_NULL (n))
    return (k->flags & NN_KEY_NULLABLE) != 0;
  switch (k->kind)
    {
    case NN_KIND_INT:
      return json_is_int (n);
    case NN_KIND_FLOAT:
      return json_is_number (n);
    case NN_KIND_BOOL:
      return JSON_NODE_HOLDS_VALUE (n)
             && json_node_get_value_type (n) == G_TYPE_BOOLEAN;
    case NN_KIND_STRING:
      return json_is_string (n);
    case NN_KIND_ENUM:
      return json_is_string (n)
             && enum_contains (k->enum_values, json_node_get_string (n));
    case NN_KIND_INT_TUPLE:
      if (json_is_int (n))
        return TRUE;
      if (json_is_string (n))
        return (k->flags & NN_KEY_OR_ENUM)
               && enum_contains (k->enum_values, json_node_get_string (n));
      if (JSON_NODE_HOLDS_ARRAY (n))
        {
          JsonArray *a = json_node_get_array (n);
          if (json_array_get_length (a) != k->tuple_len)
            return FALSE;
          for (guint i = 0; i < json_array_get_length (a); i++)
            if (!json_is_int (json_array_get_element (a, i)))
              return FALSE;
          return TRUE;
        }
      return FALSE;
    case NN_KIND_JSON:
      return TRUE;
    }
  return FALSE;
}

/* Returns: (transfer full) (nullable) what is wrong with schema key @i,
 * NULL when it is sane.  Catching a bad schema here names the plugin once
 * instead of failing every module created from it. */
static char *
schema_key_problem (const NnSchemaKey *keys, guint i)
{
  const NnSchemaKey *k = &keys[i];
  gboolean tuple = k->kind == NN_KIND_INT_TUPLE;
  gboolean enums = k->kind == NN_KIND_ENUM || (k->flags & NN_KEY_OR_ENUM);
  JsonNode *def;
  GError *e = NULL;
  char *problem = NULL;

  if (!k->name || !*k->name)
    return g_strdup_printf ("schema key #%u has no name", i);
  for (guint j = 0; j < i; j++)
    if (keys[j].name && strcmp (keys[j].name, k->name) == 0)
      return g_strdup_printf ("schema key '%s' is declared twice", k->name);
  if ((guint) k->kind > NN_KIND_JSON)
    return g_strdup_printf ("schema key '%s' has unknown kind %d", k->name,
                            (int) k->kind);
  if (k->flags & ~NN_KEY_KNOWN_FLAGS)
    return g_strdup_printf ("schema key '%s' has unknown flags 0x%x", k->name,
                            k->flags & ~NN_KEY_KNOWN_FLAGS);
  if (tuple && k->tuple_len == 0)
    return g_strdup_printf ("schema key '%s' is an int tuple of length 0",
                            k->name);
  if (!tuple && (k->flags & (NN_KEY_EXPAND | NN_KEY_OR_ENUM)))
    return g_strdup_printf ("schema key '%s' is a %s but has a flag for int "
                            "tuples (EXPAND or OR_ENUM)", k->name,
                            nn_kind_name (k->kind));
  if (enums && (!k->enum_values || !k->enum_values[0]))
    return g_strdup_printf ("schema key '%s' has no enum values", k->name);
  if ((k->flags & NN_KEY_HAS_MIN) && (k->flags & NN_KEY_HAS_MAX)
      && k->min > k->max)
    return g_strdup_printf ("schema key '%s' has an empty range [%g, %g]",
                            k->name, k->min, k->max);
  if (!k->default_json)
    return NULL;

  def = json_from_string (k->default_json, &e);
  if (!def)
    problem = g_strdup_printf ("schema key '%s' has a default that is not "
                               "JSON: '%s'%s%s", k->name, k->default_json,
                               e ? ": " : "", e ? e->message : "");
  else if (!default_fits_kind (k, def))
    problem = g_strdup_printf ("schema key '%s' has default %s, which is not "
                               "a valid %s", k->name, k->default_json,
                               nn_kind_name (k->kind));
  g_clear_error (&e);
  if (def)
    json_node_unref (def);
  return problem;
}

char *
nn_layer_type_problem (const NnLayerType *t)
{
  if (t->struct_size < NN_TYPE_MIN_SIZE)
    return g_strdup_printf ("struct_size %" G_GSIZE_FORMAT " is smaller than "
                            "the minimum %" G_GSIZE_FORMAT " (up to create)",
                            t->struct_size, (gsize) NN_TYPE_MIN_SIZE);
  if (!t->name || !*t->name)
    return g_strdup ("it has no name");
  for (const char *c = t->name; *c; c++)
    if (!g_ascii_isgraph (*c))
      return g_strdup ("its name contains a space or a non-printable "
                       "character");
  if (!t->create)
    return g_strdup ("create is NULL");
  if (t->flags & ~NN_LAYER_KNOWN_FLAGS)
    return g_strdup_printf ("unknown flags 0x%x",
                            t->flags & ~NN_LAYER_KNOWN_FLAGS);
  if (t->n_schema > 0 && !t->schema)
    return g_strdup_printf ("n_schema is %u but schema is NULL", t->n_schema);
  for (guint i = 0; i < t->n_schema; i++)
    {
      char *p = schema_key_problem (t->schema, i);
      if (p)
        return p;
    }
  return NULL;
}
