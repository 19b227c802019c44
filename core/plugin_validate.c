/* nnkit core: checks a layer type's vtable and config schema when a
 * plugin registers it, so that a broken type is refused by name. */
#include "registry-private.h"

#include <string.h>

#define NN_LAYER_KNOWN_FLAGS                                           \
  (NN_LAYER_INDEXABLE | NN_LAYER_CONTAINER | NN_LAYER_KEYED              \
   | NN_LAYER_ROUTES_ONLY | NN_LAYER_DECLARED_TENSORS | NN_LAYER_OP   \
   | NN_LAYER_HALF_WEIGHTS | NN_LAYER_ALIASES | NN_LAYER_SHAPE_FROM_DATA \
   | NN_LAYER_FIXED_DATAFLOW                                          \
   | NN_LAYER_LAYOUT_AWARE)
#define NN_ARG_KNOWN_FLAGS                                             \
  (NN_ARG_OPTIONAL | NN_ARG_VARIADIC | NN_ARG_KW_ONLY | NN_ARG_CHECK_ITEMS \
   | NN_ARG_VAR_KEYWORD)
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

/* Returns: (transfer full) (nullable) what is wrong with the forward
 * signature, NULL when it is sane. */
/* A fusion declaration (NnFuseInfo) the plan can rely on. */
static char *
fuse_problem (const NnFuseInfo *f)
{
  if (!f)
    return NULL;
  if (f->struct_size != sizeof (NnFuseInfo))
    return g_strdup_printf ("fuse info struct_size is %" G_GSIZE_FORMAT
                            ", expected %" G_GSIZE_FORMAT, f->struct_size,
                            sizeof (NnFuseInfo));
  const guint32 known = NN_FUSE_ACCEPT_AFFINE | NN_FUSE_ACCEPT_ADD;
  if (f->accepts & ~known)
    return g_strdup_printf ("fuse info accepts unknown bits 0x%x",
                            f->accepts & ~known);
  if (f->act_kinds & ~((NN_ACT_BIT (NN_ACT_N_KINDS) - 1) & ~1u))
    return g_strdup_printf ("fuse info has unknown activation bits 0x%x",
                            f->act_kinds);
  if ((f->accepts || f->act_kinds) && !f->forward_fused)
    return g_strdup ("fuse info accepts an epilogue but has no "
                     "forward_fused");
  if ((f->accepts & NN_FUSE_ACCEPT_AFFINE)
      && (!f->weight_name || f->affine_dim_from_end >= 0))
    return g_strdup ("fuse info accepts an affine but names no weight or "
                     "gives no negative affine_dim_from_end");
  return NULL;
}

static char *
args_problem (const NnLayerType *t)
{
  if (t->n_args > 0 && !t->args)
    return g_strdup_printf ("n_args is %u but args is NULL", t->n_args);
  gboolean seen_variadic = FALSE, seen_kw_only = FALSE;
  for (guint i = 0; i < t->n_args; i++)
    {
      const NnArgSpec *a = &t->args[i];
      if (!a->name || !*a->name)
        return g_strdup_printf ("argument #%u has no name", i);
      for (guint j = 0; j < i; j++)
        if (strcmp (t->args[j].name, a->name) == 0)
          return g_strdup_printf ("argument '%s' is declared twice", a->name);
      if (a->flags & ~NN_ARG_KNOWN_FLAGS)
        return g_strdup_printf ("argument '%s' has unknown flags 0x%x",
                                a->name, a->flags & ~NN_ARG_KNOWN_FLAGS);
      if (a->kinds == 0 || (a->kinds & ~(guint) NN_ARG_ANY))
        return g_strdup_printf ("argument '%s' has kinds 0x%x (expected a "
                                "non-empty NnArgKinds mask)", a->name,
                                a->kinds);
      if (a->dtypes & ~(guint32) NN_DTYPES_ALL)
        return g_strdup_printf ("argument '%s' has unknown dtype bits 0x%x",
                                a->name, a->dtypes & ~(guint32) NN_DTYPES_ALL);
      if (a->flags & NN_ARG_VAR_KEYWORD)
        {
          if (i + 1 != t->n_args || (a->flags & (NN_ARG_VARIADIC | NN_ARG_OPTIONAL)))
            return g_strdup_printf ("argument '%s' is VAR_KEYWORD but not "
                                    "the last parameter, or has other flags",
                                    a->name);
          continue;
        }
      gboolean kw = (a->flags & NN_ARG_KW_ONLY) != 0;
      if (a->flags & NN_ARG_VARIADIC)
        {
          if (kw || seen_variadic || seen_kw_only)
            return g_strdup_printf ("argument '%s' is VARIADIC but not the "
                                    "last positional parameter", a->name);
          if (a->flags & NN_ARG_OPTIONAL)
            return g_strdup_printf ("argument '%s' is VARIADIC and OPTIONAL; "
                                    "*args is always optional", a->name);
          seen_variadic = TRUE;
          continue;
        }
      if (seen_variadic && !kw)
        return g_strdup_printf ("argument '%s' follows the VARIADIC one "
                                "without being KW_ONLY", a->name);
      seen_kw_only |= kw;
      if (!kw && !(a->flags & NN_ARG_OPTIONAL))
        for (guint j = 0; j < i; j++)
          if ((t->args[j].flags & NN_ARG_OPTIONAL)
              && !(t->args[j].flags & NN_ARG_KW_ONLY))
            return g_strdup_printf ("required argument '%s' follows optional "
                                    "argument '%s'", a->name,
                                    t->args[j].name);
      if (a->default_json)
        {
          GError *e = NULL;
          JsonNode *n = json_from_string (a->default_json, &e);
          if (!n)
            {
              char *p = g_strdup_printf ("argument '%s' has a default that "
                                         "is not JSON: '%s'%s%s", a->name,
                                         a->default_json, e ? ": " : "",
                                         e ? e->message : "");
              g_clear_error (&e);
              return p;
            }
          json_node_unref (n);
        }
    }
  return NULL;
}

char *
nn_layer_type_problem (const NnLayerType *t)
{
  /* Only released sizes: a vtable of another size was built against a
   * header this core does not know, and reading it would be a guess. */
  if (t->struct_size != NN_TYPE_SIZE_2_0)
    return g_strdup_printf ("struct_size is %" G_GSIZE_FORMAT ", but this "
                            "core (ABI %d.%d) accepts only %" G_GSIZE_FORMAT
                            " (sizeof (NnLayerType) of ABI 2.0)",
                            t->struct_size, NN_ABI_MAJOR, NN_ABI_MINOR,
                            (gsize) NN_TYPE_SIZE_2_0);
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
  for (guint i = 0; t->aliases && t->aliases[i]; i++)
    {
      const char *a = t->aliases[i];
      if (!*a || strcmp (a, t->name) == 0)
        return g_strdup_printf ("alias #%u is empty or the type's own name",
                                i);
      for (const char *c = a; *c; c++)
        if (!g_ascii_isgraph (*c))
          return g_strdup_printf ("alias '%s' contains a space or a "
                                  "non-printable character", a);
      for (guint j = 0; j < i; j++)
        if (strcmp (t->aliases[j], a) == 0)
          return g_strdup_printf ("alias '%s' is listed twice", a);
    }
  char *fp = fuse_problem (t->fuse);
  if (fp)
    return fp;
  return args_problem (t);
}
