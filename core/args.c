/* nnkit core: binding a call's positional and keyword values to a layer
 * type's forward signature, as Python binds arguments to parameters, with
 * Python's TypeError wording, then checking kinds and tensor dtypes. */
#include "nn-private.h"

#include <string.h>

struct _NnArgs {
  const NnArgSpec *specs;
  guint n;
  NnValue *const *defaults; /* (nullable) during binding only */
  NnValue **values;  /* one per spec, each a reference; never NULL */
};

/* The ABI 1 signature: forward(self, input) with an F32 tensor. */
static const NnArgSpec default_spec = {
  .name = "input", .kinds = NN_ARG_TENSOR, .dtypes = 0, .flags = 0,
  .default_json = NULL, .doc = "the input tensor",
};

void
nn_type_signature (const NnLayerType *type, const NnArgSpec **specs,
                   guint *n)
{
  if (type->args && type->n_args) {
    *specs = type->args;
    *n = type->n_args;
  } else {
    *specs = &default_spec;
    *n = 1;
  }
}

static gboolean
bind_error (GError **error, const char *fmt, ...) G_GNUC_PRINTF (2, 3);

static gboolean
bind_error (GError **error, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  char *msg = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  g_set_error_literal (error, NN_MODULE_ERROR, NN_MODULE_ERROR_BAD_ARGUMENTS,
                       msg);
  g_free (msg);
  return FALSE;
}

/* Python's list of names: 'a', 'a' and 'b', 'a', 'b', and 'c'. */
static char *
python_name_list (GPtrArray *names)
{
  GString *s = g_string_new (NULL);
  for (guint i = 0; i < names->len; i++) {
    if (i && names->len == 2)
      g_string_append (s, " and ");
    else if (i && i + 1 == names->len)
      g_string_append (s, ", and ");
    else if (i)
      g_string_append (s, ", ");
    g_string_append_printf (s, "'%s'", (const char *) names->pdata[i]);
  }
  return g_string_free (s, FALSE);
}

NnValue *
nn_value_from_json (JsonNode *n)
{
  if (!n || JSON_NODE_HOLDS_NULL (n))
    return nn_value_new_none ();
  if (JSON_NODE_HOLDS_ARRAY (n)) {
    /* Signature defaults like (1, 1) are tuples in Python. */
    NnValue *t = nn_value_new_tuple ();
    JsonArray *a = json_node_get_array (n);
    for (guint i = 0; i < json_array_get_length (a); i++)
      nn_value_append (t, nn_value_from_json (json_array_get_element (a, i)));
    return t;
  }
  if (JSON_NODE_HOLDS_OBJECT (n)) {
    NnValue *d = nn_value_new_dict ();
    JsonObject *o = json_node_get_object (n);
    GList *members = json_object_get_members (o);
    for (GList *l = members; l; l = l->next)
      nn_value_dict_set (d, l->data,
                         nn_value_from_json (json_object_get_member (o, l->data)));
    g_list_free (members);
    return d;
  }
  GType t = json_node_get_value_type (n);
  if (t == G_TYPE_INT64)
    return nn_value_new_int (json_node_get_int (n));
  if (t == G_TYPE_DOUBLE)
    return nn_value_new_float (json_node_get_double (n));
  if (t == G_TYPE_BOOLEAN)
    return nn_value_new_bool (json_node_get_boolean (n));
  return nn_value_new_string (json_node_get_string (n));
}

/* Parsed defaults, keyed by their JSON text (not by pointer: a plugin's
 * strings may go away with it and another may reuse the address).  Values
 * are immutable, so one parsed default serves every call and thread. */
static GMutex defaults_lock;
static GHashTable *defaults_cache;

static NnValue *
default_value (const NnArgSpec *spec)
{
  if (!spec->default_json)
    return nn_value_new_none ();
  g_mutex_lock (&defaults_lock);
  if (!defaults_cache)
    defaults_cache = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                            (GDestroyNotify) nn_value_unref);
  NnValue *v = g_hash_table_lookup (defaults_cache, spec->default_json);
  if (!v) {
    /* Validated at registration, so it parses. */
    JsonNode *n = json_from_string (spec->default_json, NULL);
    v = nn_value_from_json (n);
    if (n)
      json_node_unref (n);
    g_hash_table_insert (defaults_cache, g_strdup (spec->default_json), v);
  }
  nn_value_ref (v);
  g_mutex_unlock (&defaults_lock);
  return v;
}

static gboolean
kind_ok (guint kinds, const NnValue *v)
{
  switch (nn_value_kind (v)) {
  case NN_VALUE_NONE: return (kinds & NN_ARG_NONE) != 0;
  case NN_VALUE_TENSOR: return (kinds & NN_ARG_TENSOR) != 0;
  /* Python's numeric tower: bool is an int, an int is accepted as float. */
  case NN_VALUE_BOOL: return (kinds & NN_ARG_SCALAR) != 0;
  case NN_VALUE_INT: return (kinds & (NN_ARG_INT | NN_ARG_FLOAT)) != 0;
  case NN_VALUE_FLOAT: return (kinds & NN_ARG_FLOAT) != 0;
  case NN_VALUE_STRING: return (kinds & NN_ARG_STRING) != 0;
  case NN_VALUE_TUPLE:
  case NN_VALUE_LIST: return (kinds & NN_ARG_SEQ) != 0;
  case NN_VALUE_DICT: return (kinds & NN_ARG_DICT) != 0;
  default: return kinds == NN_ARG_ANY;
  }
}

static char *
kinds_to_string (guint kinds)
{
  static const struct { guint bit; const char *name; } names[] = {
    { NN_ARG_TENSOR, "Tensor" }, { NN_ARG_INT, "int" },
    { NN_ARG_FLOAT, "float" }, { NN_ARG_BOOL, "bool" },
    { NN_ARG_STRING, "str" }, { NN_ARG_SEQ, "tuple or list" },
    { NN_ARG_DICT, "dict" }, { NN_ARG_NONE, "None" },
  };
  GString *s = g_string_new (NULL);
  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    if (kinds & names[i].bit)
      g_string_append_printf (s, "%s%s", s->len ? ", " : "", names[i].name);
  return g_string_free (s, FALSE);
}

typedef struct {
  guint32 mask;
  const char *bad_name;  /* first offending leaf */
  NnDType bad_dtype;
  gboolean bad;
} DTypeCheck;

static void
check_leaf (const char *name, NnTensor *t, gpointer user_data)
{
  DTypeCheck *c = user_data;
  if (c->bad || (c->mask & NN_DTYPE_BIT (t->dtype)))
    return;
  c->bad = TRUE;
  c->bad_dtype = t->dtype;
  c->bad_name = NULL;
}

/* Checks one value against @spec; @key (nullable) and @item (-1: none)
 * name it in errors: "argument 'x'", "argument 'xs' item 2", "argument
 * 'k'" for a **kwargs entry.  The text is built only on failure. */
static gboolean
check_value (const NnArgSpec *spec, const NnValue *v, const char *key,
             gint item, GError **error)
{
  g_autofree char *what = NULL;
  if (!kind_ok (spec->kinds, v)) {
    what = item >= 0 ? g_strdup_printf ("argument '%s' item %d", spec->name, item)
                     : g_strdup_printf ("argument '%s'", key ? key : spec->name);
    char *want = kinds_to_string (spec->kinds);
    bind_error (error, "%s: expected %s, found %s", what, want,
                nn_value_kind_name (nn_value_kind (v)));
    g_free (want);
    return FALSE;
  }
  NnValueKind k = nn_value_kind (v);
  gboolean items = (spec->flags & NN_ARG_CHECK_ITEMS)
                   && (k == NN_VALUE_TUPLE || k == NN_VALUE_LIST);
  if (k != NN_VALUE_TENSOR && !items)
    return TRUE;
  DTypeCheck c = { spec->dtypes ? spec->dtypes : NN_DTYPE_BIT (NN_DTYPE_F32) };
  if (k == NN_VALUE_TENSOR)
    check_leaf ("", nn_value_get_tensor (v), &c);
  else
    nn_value_foreach_tensor (v, "", check_leaf, &c);
  if (!c.bad)
    return TRUE;
  what = item >= 0 ? g_strdup_printf ("argument '%s' item %d", spec->name, item)
                   : g_strdup_printf ("argument '%s'", key ? key : spec->name);
  char *want = nn_dtype_mask_to_string (c.mask);
  bind_error (error, "%s: expected dtype %s, found %s", what, want,
              nn_dtype_name (c.bad_dtype));
  g_free (want);
  return FALSE;
}

void
nn_args_free (NnArgs *a)
{
  if (!a)
    return;
  for (guint i = 0; i < a->n; i++)
    nn_value_unref (a->values[i]);
  g_free (a->values);
  g_free (a);
}

static gboolean
bind_positional (NnArgs *a, const NnValue *args, guint *n_pos_params,
                 GError **error)
{
  guint n_given = nn_value_n_items (args);
  guint n_pos = 0, n_required = 0;
  gint variadic = -1;
  for (guint i = 0; i < a->n; i++) {
    const NnArgSpec *s = &a->specs[i];
    if (s->flags & (NN_ARG_KW_ONLY | NN_ARG_VAR_KEYWORD))
      continue;
    if (s->flags & NN_ARG_VARIADIC) {
      variadic = (gint) i;
      break;
    }
    n_pos++;
    if (!(s->flags & NN_ARG_OPTIONAL))
      n_required++;
  }
  *n_pos_params = n_pos;
  if (variadic < 0 && n_given > n_pos) {
    /* Python counts self in these numbers. */
    if (n_required == n_pos)
      return bind_error (error, "forward() takes %u positional argument%s "
                         "but %u %s given", n_pos + 1, n_pos ? "s" : "",
                         n_given + 1, n_given ? "were" : "was");
    return bind_error (error, "forward() takes from %u to %u positional "
                       "arguments but %u were given", n_required + 1,
                       n_pos + 1, n_given + 1);
  }
  guint pi = 0;
  for (guint i = 0; i < a->n && pi < n_given; i++) {
    const NnArgSpec *s = &a->specs[i];
    if (s->flags & (NN_ARG_KW_ONLY | NN_ARG_VAR_KEYWORD))
      continue;
    if ((gint) i == variadic) {
      NnValue *rest = nn_value_new_tuple ();
      for (; pi < n_given; pi++)
        nn_value_append (rest, nn_value_ref (nn_value_item (args, pi)));
      a->values[i] = rest;
      break;
    }
    a->values[i] = nn_value_ref (nn_value_item (args, pi++));
  }
  return TRUE;
}

static gboolean
bind_keywords (NnArgs *a, const NnValue *kwargs, GError **error)
{
  gint varkw = -1;
  for (guint i = 0; i < a->n; i++)
    if (a->specs[i].flags & NN_ARG_VAR_KEYWORD)
      varkw = (gint) i;
  for (guint k = 0; k < nn_value_n_items (kwargs); k++) {
    const char *key = nn_value_dict_key (kwargs, k);
    gint hit = -1;
    for (guint i = 0; i < a->n; i++)
      if (strcmp (a->specs[i].name, key) == 0
          && !(a->specs[i].flags & (NN_ARG_VARIADIC | NN_ARG_VAR_KEYWORD)))
        hit = (gint) i;
    if (hit < 0 && varkw >= 0) {
      if (!a->values[varkw])
        a->values[varkw] = nn_value_new_dict ();
      nn_value_dict_set (a->values[varkw], key,
                         nn_value_ref (nn_value_item (kwargs, k)));
      continue;
    }
    if (hit < 0)
      return bind_error (error, "forward() got an unexpected keyword "
                         "argument '%s'", key);
    if (a->values[hit])
      return bind_error (error, "forward() got multiple values for "
                         "argument '%s'", key);
    a->values[hit] = nn_value_ref (nn_value_item (kwargs, k));
  }
  return TRUE;
}

static gboolean
fill_defaults (NnArgs *a, GError **error)
{
  gboolean missing = FALSE;
  for (guint i = 0; i < a->n; i++) {
    const NnArgSpec *s = &a->specs[i];
    if (a->values[i])
      continue;
    if (s->flags & NN_ARG_VARIADIC)
      a->values[i] = nn_value_new_tuple ();
    else if (s->flags & NN_ARG_VAR_KEYWORD)
      a->values[i] = nn_value_new_dict ();
    else if (a->defaults && a->defaults[i])
      a->values[i] = nn_value_ref (a->defaults[i]);
    else if (s->flags & NN_ARG_OPTIONAL)
      a->values[i] = default_value (s);
    else
      missing = TRUE;
  }
  if (!missing)
    return TRUE;
  /* Python names the missing positionals first, else the keyword-only. */
  g_autoptr (GPtrArray) pos = g_ptr_array_new ();
  g_autoptr (GPtrArray) kw = g_ptr_array_new ();
  for (guint i = 0; i < a->n; i++)
    if (!a->values[i])
      g_ptr_array_add (a->specs[i].flags & NN_ARG_KW_ONLY ? kw : pos,
                       (gpointer) a->specs[i].name);
  GPtrArray *names = pos->len ? pos : kw;
  char *list = python_name_list (names);
  bind_error (error, "forward() missing %u required %s argument%s: %s",
              names->len, names == pos ? "positional" : "keyword-only",
              names->len == 1 ? "" : "s", list);
  g_free (list);
  return FALSE;
}

static gboolean
check_all (NnArgs *a, GError **error)
{
  for (guint i = 0; i < a->n; i++) {
    const NnArgSpec *s = &a->specs[i];
    NnValue *v = a->values[i];
    /* A default is the author's choice, not the caller's: not checked. */
    if (s->flags & (NN_ARG_VARIADIC | NN_ARG_VAR_KEYWORD)) {
      gboolean var = (s->flags & NN_ARG_VARIADIC) != 0;
      for (guint k = 0; k < nn_value_n_items (v); k++)
        if (!check_value (s, nn_value_item (v, k),
                          var ? NULL : nn_value_dict_key (v, k),
                          var ? (gint) k : -1, error))
          return FALSE;
      continue;
    }
    if (!check_value (s, v, NULL, -1, error))
      return FALSE;
  }
  return TRUE;
}

NnArgs *
nn_args_bind (const NnLayerType *type, const NnValue *args,
              const NnValue *kwargs, GError **error)
{
  const NnArgSpec *specs;
  guint n;
  nn_type_signature (type, &specs, &n);
  return nn_args_bind_signature (specs, n, NULL, args, kwargs, error);
}

NnArgs *
nn_args_bind_signature (const NnArgSpec *specs, guint n,
                        NnValue *const *defaults, const NnValue *args,
                        const NnValue *kwargs, GError **error)
{
  g_return_val_if_fail (specs != NULL || n == 0, NULL);
  NnArgs *a = g_new0 (NnArgs, 1);
  a->specs = specs;
  a->n = n;
  a->defaults = defaults;
  a->values = g_new0 (NnValue *, MAX (n, 1));
  if (!args || nn_value_kind (args) != NN_VALUE_TUPLE) {
    nn_args_free (a);
    bind_error (error, "positional arguments must be a tuple");
    return NULL;
  }
  guint n_pos;
  if (!bind_positional (a, args, &n_pos, error)
      || (kwargs && !bind_keywords (a, kwargs, error))
      || !fill_defaults (a, error) || !check_all (a, error)) {
    nn_args_free (a);
    return NULL;
  }
  a->defaults = NULL;
  return a;
}

NnValue *
nn_args_get (const NnArgs *args, guint i)
{
  g_return_val_if_fail (args != NULL && i < args->n, NULL);
  return args->values[i];
}

guint
nn_args_n (const NnArgs *args)
{
  return args ? args->n : 0;
}

NnTensor *
nn_args_tensor (const NnArgs *args, guint i)
{
  return nn_value_get_tensor (nn_args_get (args, i));
}

gint64
nn_args_int (const NnArgs *args, guint i)
{
  return nn_value_get_int (nn_args_get (args, i));
}

double
nn_args_float (const NnArgs *args, guint i)
{
  return nn_value_get_float (nn_args_get (args, i));
}

gboolean
nn_args_bool (const NnArgs *args, guint i)
{
  return nn_value_get_bool (nn_args_get (args, i));
}

static gboolean
is_int_value (const NnValue *v)
{
  NnValueKind k = nn_value_kind (v);
  return k == NN_VALUE_INT || k == NN_VALUE_BOOL;
}

gint64 *
nn_args_ints (const NnArgs *args, guint i, guint n, guint *n_out,
              GError **error)
{
  g_return_val_if_fail (args != NULL && i < args->n, NULL);
  const char *name = args->specs[i].name;
  NnValue *v = args->values[i];
  if (is_int_value (v)) {
    guint count = n ? n : 1;
    gint64 *out = g_new (gint64, count);
    for (guint k = 0; k < count; k++)
      out[k] = nn_value_get_int (v);
    if (n_out)
      *n_out = count;
    return out;
  }
  NnValueKind k = nn_value_kind (v);
  if (k != NN_VALUE_TUPLE && k != NN_VALUE_LIST) {
    bind_error (error, "argument '%s': expected an int or a tuple of ints, "
                "found %s", name, nn_value_kind_name (k));
    return NULL;
  }
  guint len = nn_value_n_items (v);
  if (n && len != n) {
    bind_error (error, "argument '%s': expected %u ints, found %u", name, n,
                len);
    return NULL;
  }
  gint64 *out = g_new (gint64, MAX (len, 1));
  for (guint j = 0; j < len; j++) {
    NnValue *item = nn_value_item (v, j);
    if (!is_int_value (item)) {
      bind_error (error, "argument '%s': item %u is %s, expected int", name,
                  j, nn_value_kind_name (nn_value_kind (item)));
      g_free (out);
      return NULL;
    }
    out[j] = nn_value_get_int (item);
  }
  if (n_out)
    *n_out = len;
  return out;
}
