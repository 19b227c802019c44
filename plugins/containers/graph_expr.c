/* Graph argument expressions: the JSON forms of docs/DESCRIPTORS.md
 * (names, numbers, lists, {"tuple"}, {"dict"}, {"str"}, {"float"},
 * {"slice"}, {"ellipsis"}, {"dtype"}) parsed once into a tree, evaluated
 * per call. */
#include "graph.h"

#include <math.h>
#include <string.h>

static const char *
json_kind (JsonNode *n)
{
  if (n == NULL || JSON_NODE_HOLDS_NULL (n))
    return "null";
  if (JSON_NODE_HOLDS_OBJECT (n))
    return "an object";
  if (JSON_NODE_HOLDS_ARRAY (n))
    return "an array";
  GType t = json_node_get_value_type (n);
  if (t == G_TYPE_STRING)
    return "a string";
  if (t == G_TYPE_BOOLEAN)
    return "a boolean";
  return "a number";
}

static gboolean
expr_error (GError **error, const char *where, const char *fmt, ...)
  G_GNUC_PRINTF (3, 4);

static gboolean
expr_error (GError **error, const char *where, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  char *msg = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  g_set_error (error, NN_DESCRIPTOR_ERROR, NN_DESCRIPTOR_ERROR_INVALID,
               "%s: %s", where, msg);
  g_free (msg);
  return FALSE;
}

static void
set_const (NnGraphExpr *out, NnValue *v)
{
  out->kind = NN_GRAPH_EXPR_CONST;
  out->constant = v;
}

static gboolean
parse_items (NnGraphExpr *out, NnGraphExprKind kind, JsonArray *a,
             const NnGraphScope *scope, const char *where, GError **error)
{
  out->kind = kind;
  out->n_items = json_array_get_length (a);
  out->items = g_new0 (NnGraphExpr, MAX (out->n_items, 1));
  for (guint i = 0; i < out->n_items; i++) {
    char *sub = g_strdup_printf ("%s[%u]", where, i);
    gboolean ok = nn_graph_expr_parse (&out->items[i],
                                       json_array_get_element (a, i), scope,
                                       sub, error);
    g_free (sub);
    if (!ok)
      return FALSE;
  }
  return TRUE;
}

static gboolean
parse_ref (NnGraphExpr *out, const char *name, const NnGraphScope *scope,
           const char *where, GError **error)
{
  gpointer v;
  if (g_hash_table_lookup_extended (scope->index, name, NULL, &v)) {
    out->kind = NN_GRAPH_EXPR_REF;
    out->ref = GPOINTER_TO_UINT (v) - 1;
    return TRUE;
  }
  GString *known = g_string_new (NULL);
  for (guint i = 0; i < scope->names->len; i++)
    g_string_append_printf (known, "%s'%s'", i ? ", " : "",
                            (const char *) scope->names->pdata[i]);
  expr_error (error, where, "'%s' is neither a graph input nor an earlier "
              "node (defined so far: %s); a string constant is "
              "{\"str\": \"%s\"}", name, known->len ? known->str : "none",
              name);
  g_string_free (known, TRUE);
  return FALSE;
}

static gboolean
parse_float_word (NnGraphExpr *out, JsonNode *n, const char *where,
                  GError **error)
{
  const char *s = n && JSON_NODE_HOLDS_VALUE (n)
                  && json_node_get_value_type (n) == G_TYPE_STRING
                  ? json_node_get_string (n) : NULL;
  if (s && strcmp (s, "inf") == 0)
    set_const (out, nn_value_new_float (INFINITY));
  else if (s && strcmp (s, "-inf") == 0)
    set_const (out, nn_value_new_float (-INFINITY));
  else if (s && strcmp (s, "nan") == 0)
    set_const (out, nn_value_new_float (NAN));
  else
    return expr_error (error, where, "{\"float\": ...} takes \"inf\", "
                       "\"-inf\" or \"nan\", found %s", json_kind (n));
  return TRUE;
}

static gboolean
parse_object (NnGraphExpr *out, JsonObject *o, const NnGraphScope *scope,
              const char *where, GError **error)
{
  if (json_object_get_size (o) != 1)
    return expr_error (error, where, "an object expression has exactly one "
                       "key (tuple, dict, str, float, slice, ellipsis or "
                       "dtype), found %u keys", json_object_get_size (o));
  GList *members = json_object_get_members (o);
  const char *key = members->data;
  g_list_free (members);
  JsonNode *n = json_object_get_member (o, key);
  char *sub = g_strdup_printf ("%s.%s", where, key);
  gboolean ok = FALSE;

  if (strcmp (key, "tuple") == 0 && JSON_NODE_HOLDS_ARRAY (n)) {
    ok = parse_items (out, NN_GRAPH_EXPR_TUPLE, json_node_get_array (n),
                      scope, sub, error);
  } else if (strcmp (key, "dict") == 0 && JSON_NODE_HOLDS_OBJECT (n)) {
    JsonObject *d = json_node_get_object (n);
    GList *keys = json_object_get_members (d);
    out->kind = NN_GRAPH_EXPR_DICT;
    out->n_items = g_list_length (keys);
    out->items = g_new0 (NnGraphExpr, MAX (out->n_items, 1));
    out->keys = g_new0 (char *, out->n_items + 1);
    ok = TRUE;
    guint i = 0;
    for (GList *l = keys; ok && l; l = l->next, i++) {
      out->keys[i] = g_strdup (l->data);
      char *ksub = g_strdup_printf ("%s.%s", sub, (const char *) l->data);
      ok = nn_graph_expr_parse (&out->items[i],
                                json_object_get_member (d, l->data), scope,
                                ksub, error);
      g_free (ksub);
    }
    g_list_free (keys);
  } else if (strcmp (key, "str") == 0 && JSON_NODE_HOLDS_VALUE (n)
             && json_node_get_value_type (n) == G_TYPE_STRING) {
    set_const (out, nn_value_new_string (json_node_get_string (n)));
    ok = TRUE;
  } else if (strcmp (key, "float") == 0) {
    ok = parse_float_word (out, n, sub, error);
  } else if (strcmp (key, "slice") == 0 && JSON_NODE_HOLDS_ARRAY (n)
             && json_array_get_length (json_node_get_array (n)) == 3) {
    ok = parse_items (out, NN_GRAPH_EXPR_SLICE, json_node_get_array (n),
                      scope, sub, error);
  } else if (strcmp (key, "ellipsis") == 0 && JSON_NODE_HOLDS_VALUE (n)
             && json_node_get_value_type (n) == G_TYPE_BOOLEAN
             && json_node_get_boolean (n)) {
    set_const (out, nn_value_new_ellipsis ());
    ok = TRUE;
  } else if (strcmp (key, "dtype") == 0 && JSON_NODE_HOLDS_VALUE (n)
             && json_node_get_value_type (n) == G_TYPE_STRING) {
    NnDType d;
    if (!nn_dtype_parse (json_node_get_string (n), &d))
      expr_error (error, sub, "unknown dtype '%s'", json_node_get_string (n));
    else {
      /* Passed as torch's name, the way ops receive dtype arguments. */
      set_const (out, nn_value_new_string (nn_dtype_torch_name (d)));
      ok = TRUE;
    }
  } else {
    static const char *const forms[] = {
      "tuple", "{\"tuple\": [...]}", "dict", "{\"dict\": {...}}",
      "str", "{\"str\": \"text\"}", "float", "{\"float\": \"inf\"}",
      "slice", "{\"slice\": [start, stop, step]}",
      "ellipsis", "{\"ellipsis\": true}", "dtype", "{\"dtype\": \"int64\"}",
    };
    const char *form = NULL;
    for (guint i = 0; i < G_N_ELEMENTS (forms); i += 2)
      if (strcmp (forms[i], key) == 0)
        form = forms[i + 1];
    if (form)
      expr_error (error, where, "'%s' expects the form %s, found %s", key,
                  form, json_kind (n));
    else
      expr_error (error, where, "unknown expression form '%s' (expected "
                  "tuple, dict, str, float, slice, ellipsis or dtype)", key);
  }
  g_free (sub);
  return ok;
}

gboolean
nn_graph_expr_parse (NnGraphExpr *out, JsonNode *json,
                     const NnGraphScope *scope, const char *where,
                     GError **error)
{
  memset (out, 0, sizeof *out);
  if (json == NULL || JSON_NODE_HOLDS_NULL (json)) {
    set_const (out, nn_value_new_none ());
    return TRUE;
  }
  if (JSON_NODE_HOLDS_ARRAY (json))
    return parse_items (out, NN_GRAPH_EXPR_LIST, json_node_get_array (json),
                        scope, where, error);
  if (JSON_NODE_HOLDS_OBJECT (json))
    return parse_object (out, json_node_get_object (json), scope, where,
                         error);
  GType t = json_node_get_value_type (json);
  if (t == G_TYPE_STRING)
    return parse_ref (out, json_node_get_string (json), scope, where, error);
  if (t == G_TYPE_INT64)
    set_const (out, nn_value_new_int (json_node_get_int (json)));
  else if (t == G_TYPE_DOUBLE)
    set_const (out, nn_value_new_float (json_node_get_double (json)));
  else if (t == G_TYPE_BOOLEAN)
    set_const (out, nn_value_new_bool (json_node_get_boolean (json)));
  else
    return expr_error (error, where, "unsupported JSON value");
  return TRUE;
}

void
nn_graph_expr_clear (NnGraphExpr *e)
{
  if (e->constant)
    nn_value_unref (e->constant);
  for (guint i = 0; e->items && i < e->n_items; i++)
    nn_graph_expr_clear (&e->items[i]);
  g_free (e->items);
  g_strfreev (e->keys);
  memset (e, 0, sizeof *e);
}

NnValue *
nn_graph_expr_eval (const NnGraphExpr *e, NnValue *const *values)
{
  NnValue *v;
  switch (e->kind) {
  case NN_GRAPH_EXPR_REF:
    return nn_value_ref (values[e->ref]);
  case NN_GRAPH_EXPR_CONST:
    return nn_value_ref (e->constant);
  case NN_GRAPH_EXPR_LIST:
  case NN_GRAPH_EXPR_TUPLE:
    v = e->kind == NN_GRAPH_EXPR_LIST ? nn_value_new_list ()
                                      : nn_value_new_tuple ();
    for (guint i = 0; i < e->n_items; i++)
      nn_value_append (v, nn_graph_expr_eval (&e->items[i], values));
    return v;
  case NN_GRAPH_EXPR_DICT:
    v = nn_value_new_dict ();
    for (guint i = 0; i < e->n_items; i++)
      nn_value_dict_set (v, e->keys[i],
                         nn_graph_expr_eval (&e->items[i], values));
    return v;
  case NN_GRAPH_EXPR_SLICE:
  default:
    return nn_value_new_slice (nn_graph_expr_eval (&e->items[0], values),
                               nn_graph_expr_eval (&e->items[1], values),
                               nn_graph_expr_eval (&e->items[2], values));
  }
}

void
nn_graph_expr_refs (const NnGraphExpr *e,
                    void (*func) (guint ref, gpointer data), gpointer data)
{
  if (e->kind == NN_GRAPH_EXPR_REF)
    func (e->ref, data);
  for (guint i = 0; e->items && i < e->n_items; i++)
    nn_graph_expr_refs (&e->items[i], func, data);
}
