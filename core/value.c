/* nnkit core: values, the arguments and results of module calls.  A value
 * is a small tagged, reference-counted node; containers hold their items
 * in a GPtrArray (dicts also keep their keys, insertion order). */
#include "nn-private.h"

#include <math.h>
#include <string.h>

struct _NnValue {
  gint ref_count;
  NnValueKind kind;
  union {
    NnTensor *tensor;
    gint64 i;
    double f;
    gboolean b;
    char *s;
  } u;
  GPtrArray *items;  /* NnValue*, TUPLE/LIST/DICT/SLICE */
  GPtrArray *keys;   /* char*, DICT */
};

static NnValue *
value_new (NnValueKind kind)
{
  NnValue *v = g_new0 (NnValue, 1);
  v->ref_count = 1;
  v->kind = kind;
  if (kind == NN_VALUE_TUPLE || kind == NN_VALUE_LIST || kind == NN_VALUE_DICT
      || kind == NN_VALUE_SLICE)
    v->items = g_ptr_array_new_with_free_func ((GDestroyNotify) nn_value_unref);
  if (kind == NN_VALUE_DICT)
    v->keys = g_ptr_array_new_with_free_func (g_free);
  return v;
}

NnValue *
nn_value_new_none (void)
{
  return value_new (NN_VALUE_NONE);
}

NnValue *
nn_value_new_tensor (NnTensor *t)
{
  g_return_val_if_fail (t != NULL, NULL);
  return nn_value_take_tensor (nn_tensor_ref (t));
}

NnValue *
nn_value_take_tensor (NnTensor *t)
{
  g_return_val_if_fail (t != NULL, NULL);
  NnValue *v = value_new (NN_VALUE_TENSOR);
  v->u.tensor = t;
  return v;
}

NnValue *
nn_value_new_int (gint64 i)
{
  NnValue *v = value_new (NN_VALUE_INT);
  v->u.i = i;
  return v;
}

NnValue *
nn_value_new_float (double f)
{
  NnValue *v = value_new (NN_VALUE_FLOAT);
  v->u.f = f;
  return v;
}

NnValue *
nn_value_new_bool (gboolean b)
{
  NnValue *v = value_new (NN_VALUE_BOOL);
  v->u.b = b != FALSE;
  return v;
}

NnValue *
nn_value_new_string (const char *s)
{
  g_return_val_if_fail (s != NULL, NULL);
  NnValue *v = value_new (NN_VALUE_STRING);
  v->u.s = g_strdup (s);
  return v;
}

NnValue *
nn_value_new_slice (NnValue *start, NnValue *stop, NnValue *step)
{
  NnValue *v = value_new (NN_VALUE_SLICE);
  g_ptr_array_add (v->items, start ? start : nn_value_new_none ());
  g_ptr_array_add (v->items, stop ? stop : nn_value_new_none ());
  g_ptr_array_add (v->items, step ? step : nn_value_new_none ());
  return v;
}

NnValue *
nn_value_new_ellipsis (void)
{
  return value_new (NN_VALUE_ELLIPSIS);
}

NnValue *
nn_value_new_tuple (void)
{
  return value_new (NN_VALUE_TUPLE);
}

NnValue *
nn_value_new_list (void)
{
  return value_new (NN_VALUE_LIST);
}

NnValue *
nn_value_new_dict (void)
{
  return value_new (NN_VALUE_DICT);
}

void
nn_value_append (NnValue *seq, NnValue *item)
{
  g_return_if_fail (seq != NULL && item != NULL);
  g_return_if_fail (seq->kind == NN_VALUE_TUPLE || seq->kind == NN_VALUE_LIST);
  g_ptr_array_add (seq->items, item);
}

void
nn_value_dict_set (NnValue *dict, const char *key, NnValue *item)
{
  g_return_if_fail (dict != NULL && key != NULL && item != NULL);
  g_return_if_fail (dict->kind == NN_VALUE_DICT);
  for (guint i = 0; i < dict->keys->len; i++)
    if (strcmp (dict->keys->pdata[i], key) == 0) {
      nn_value_unref (dict->items->pdata[i]);
      dict->items->pdata[i] = item;
      return;
    }
  g_ptr_array_add (dict->keys, g_strdup (key));
  g_ptr_array_add (dict->items, item);
}

NnValue *
nn_value_ref (NnValue *v)
{
  g_return_val_if_fail (v != NULL, NULL);
  g_atomic_int_inc (&v->ref_count);
  return v;
}

gint
nn_value_get_ref_count (const NnValue *v)
{
  return g_atomic_int_get (&v->ref_count);
}

void
nn_value_unref (NnValue *v)
{
  if (!v || !g_atomic_int_dec_and_test (&v->ref_count))
    return;
  if (v->kind == NN_VALUE_TENSOR)
    nn_tensor_unref (v->u.tensor);
  else if (v->kind == NN_VALUE_STRING)
    g_free (v->u.s);
  if (v->items)
    g_ptr_array_unref (v->items);
  if (v->keys)
    g_ptr_array_unref (v->keys);
  g_free (v);
}

NnValueKind
nn_value_kind (const NnValue *v)
{
  g_return_val_if_fail (v != NULL, NN_VALUE_NONE);
  return v->kind;
}

const char *
nn_value_kind_name (NnValueKind kind)
{
  static const char *const names[] = {
    [NN_VALUE_NONE] = "None",    [NN_VALUE_TENSOR] = "Tensor",
    [NN_VALUE_INT] = "int",      [NN_VALUE_FLOAT] = "float",
    [NN_VALUE_BOOL] = "bool",    [NN_VALUE_STRING] = "str",
    [NN_VALUE_TUPLE] = "tuple",  [NN_VALUE_LIST] = "list",
    [NN_VALUE_DICT] = "dict",    [NN_VALUE_SLICE] = "slice",
    [NN_VALUE_ELLIPSIS] = "ellipsis",
  };
  if ((guint) kind >= G_N_ELEMENTS (names))
    return "?";
  return names[kind];
}

gboolean
nn_value_is_none (const NnValue *v)
{
  return v == NULL || v->kind == NN_VALUE_NONE;
}

NnTensor *
nn_value_get_tensor (const NnValue *v)
{
  return v && v->kind == NN_VALUE_TENSOR ? v->u.tensor : NULL;
}

gint64
nn_value_get_int (const NnValue *v)
{
  if (!v)
    return 0;
  if (v->kind == NN_VALUE_INT)
    return v->u.i;
  if (v->kind == NN_VALUE_BOOL)
    return v->u.b ? 1 : 0;
  return 0;
}

double
nn_value_get_float (const NnValue *v)
{
  if (!v)
    return 0.0;
  if (v->kind == NN_VALUE_FLOAT)
    return v->u.f;
  if (v->kind == NN_VALUE_INT)
    return (double) v->u.i;
  if (v->kind == NN_VALUE_BOOL)
    return v->u.b ? 1.0 : 0.0;
  return 0.0;
}

gboolean
nn_value_get_bool (const NnValue *v)
{
  if (!v)
    return FALSE;
  if (v->kind == NN_VALUE_BOOL)
    return v->u.b;
  if (v->kind == NN_VALUE_INT)
    return v->u.i != 0;
  return FALSE;
}

const char *
nn_value_get_string (const NnValue *v)
{
  return v && v->kind == NN_VALUE_STRING ? v->u.s : NULL;
}

guint
nn_value_n_items (const NnValue *v)
{
  return v && v->items ? v->items->len : 0;
}

NnValue *
nn_value_item (const NnValue *v, guint i)
{
  if (!v || !v->items || i >= v->items->len)
    return NULL;
  return v->items->pdata[i];
}

const char *
nn_value_dict_key (const NnValue *v, guint i)
{
  if (!v || !v->keys || i >= v->keys->len)
    return NULL;
  return v->keys->pdata[i];
}

NnValue *
nn_value_dict_lookup (const NnValue *v, const char *key)
{
  if (!v || !v->keys)
    return NULL;
  for (guint i = 0; i < v->keys->len; i++)
    if (strcmp (v->keys->pdata[i], key) == 0)
      return v->items->pdata[i];
  return NULL;
}

/* Python's repr() of a str: single quotes unless the text holds one. */
static void
append_py_string (GString *out, const char *s)
{
  char q = strchr (s, '\'') && !strchr (s, '"') ? '"' : '\'';
  g_string_append_c (out, q);
  for (const char *p = s; *p; p++) {
    if (*p == q || *p == '\\')
      g_string_append_c (out, '\\');
    if (*p == '\n')
      g_string_append (out, "\\n");
    else
      g_string_append_c (out, *p);
  }
  g_string_append_c (out, q);
}

static void
append_value (GString *out, const NnValue *v)
{
  switch (v->kind) {
  case NN_VALUE_NONE:
    g_string_append (out, "None");
    break;
  case NN_VALUE_TENSOR: {
    char *s = nn_shape_to_string (&v->u.tensor->shape);
    g_string_append_printf (out, "Tensor%s %s%s", s,
                            nn_dtype_name (v->u.tensor->dtype),
                            nn_tensor_is_meta (v->u.tensor) ? " meta" : "");
    g_free (s);
    break;
  }
  case NN_VALUE_INT:
    g_string_append_printf (out, "%" G_GINT64_FORMAT, v->u.i);
    break;
  case NN_VALUE_FLOAT: {
    if (isnan (v->u.f))
      g_string_append (out, "nan");
    else if (isinf (v->u.f))
      g_string_append (out, v->u.f > 0 ? "inf" : "-inf");
    else {
      char *s = nn_format_py_float (v->u.f);
      g_string_append (out, s);
      g_free (s);
    }
    break;
  }
  case NN_VALUE_BOOL:
    g_string_append (out, v->u.b ? "True" : "False");
    break;
  case NN_VALUE_STRING:
    append_py_string (out, v->u.s);
    break;
  case NN_VALUE_TUPLE:
  case NN_VALUE_LIST: {
    gboolean tuple = v->kind == NN_VALUE_TUPLE;
    g_string_append_c (out, tuple ? '(' : '[');
    for (guint i = 0; i < v->items->len; i++) {
      if (i)
        g_string_append (out, ", ");
      append_value (out, v->items->pdata[i]);
    }
    /* Python writes a 1-tuple as (x,). */
    if (tuple && v->items->len == 1)
      g_string_append_c (out, ',');
    g_string_append_c (out, tuple ? ')' : ']');
    break;
  }
  case NN_VALUE_DICT:
    g_string_append_c (out, '{');
    for (guint i = 0; i < v->items->len; i++) {
      if (i)
        g_string_append (out, ", ");
      append_py_string (out, v->keys->pdata[i]);
      g_string_append (out, ": ");
      append_value (out, v->items->pdata[i]);
    }
    g_string_append_c (out, '}');
    break;
  case NN_VALUE_SLICE:
    g_string_append (out, "slice(");
    for (guint i = 0; i < 3; i++) {
      if (i)
        g_string_append (out, ", ");
      append_value (out, v->items->pdata[i]);
    }
    g_string_append_c (out, ')');
    break;
  case NN_VALUE_ELLIPSIS:
    g_string_append (out, "Ellipsis");
    break;
  }
}

char *
nn_value_to_string (const NnValue *v)
{
  if (!v)
    return g_strdup ("None");
  GString *out = g_string_new (NULL);
  append_value (out, v);
  return g_string_free (out, FALSE);
}

static void
foreach_tensor (const NnValue *v, GString *name, NnValueLeafFunc func,
                gpointer user_data)
{
  if (v->kind == NN_VALUE_TENSOR) {
    func (name->str, v->u.tensor, user_data);
    return;
  }
  if (v->kind != NN_VALUE_TUPLE && v->kind != NN_VALUE_LIST
      && v->kind != NN_VALUE_DICT)
    return;
  gsize saved = name->len;
  for (guint i = 0; i < v->items->len; i++) {
    if (name->len)
      g_string_append_c (name, '.');
    if (v->kind == NN_VALUE_DICT)
      g_string_append (name, v->keys->pdata[i]);
    else
      g_string_append_printf (name, "%u", i);
    foreach_tensor (v->items->pdata[i], name, func, user_data);
    g_string_truncate (name, saved);
  }
}

void
nn_value_foreach_tensor (const NnValue *v, const char *prefix,
                         NnValueLeafFunc func, gpointer user_data)
{
  g_return_if_fail (v != NULL && func != NULL);
  GString *name = g_string_new (prefix ? prefix : "");
  foreach_tensor (v, name, func, user_data);
  g_string_free (name, TRUE);
}

static void
count_leaf (const char *name, NnTensor *t, gpointer user_data)
{
  (*(guint *) user_data)++;
}

guint
nn_value_count_tensors (const NnValue *v)
{
  guint n = 0;
  if (v)
    nn_value_foreach_tensor (v, "", count_leaf, &n);
  return n;
}

static void
first_leaf (const char *name, NnTensor *t, gpointer user_data)
{
  NnTensor **first = user_data;
  if (!*first)
    *first = t;
}

NnTensor *
nn_value_first_tensor (const NnValue *v)
{
  NnTensor *first = NULL;
  if (v)
    nn_value_foreach_tensor (v, "", first_leaf, &first);
  return first;
}

NnValue *
nn_value_map_tensors (const NnValue *v, NnValueMapFunc map,
                      gpointer user_data, GError **error)
{
  g_return_val_if_fail (v != NULL && map != NULL, NULL);
  switch (v->kind) {
  case NN_VALUE_TENSOR: {
    NnTensor *t = map (v->u.tensor, user_data, error);
    return t ? nn_value_take_tensor (t) : NULL;
  }
  case NN_VALUE_TUPLE:
  case NN_VALUE_LIST:
  case NN_VALUE_DICT: {
    NnValue *out = value_new (v->kind);
    for (guint i = 0; i < v->items->len; i++) {
      NnValue *item = nn_value_map_tensors (v->items->pdata[i], map,
                                            user_data, error);
      if (!item) {
        nn_value_unref (out);
        return NULL;
      }
      if (v->kind == NN_VALUE_DICT)
        nn_value_dict_set (out, v->keys->pdata[i], item);
      else
        g_ptr_array_add (out->items, item);
    }
    return out;
  }
  default:
    /* Scalars, strings, slices: immutable, shared as they are. */
    return nn_value_ref ((NnValue *) v);
  }
}
