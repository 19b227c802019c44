/* nnkit core: deterministic, readable JSON text for descriptors.  Floats
 * are written as Python's repr (1e-05, 0.1), which is valid JSON and reads
 * back as the same double; arrays of scalars stay on one line. */
#include "nn-private.h"

static void write_node (GString *s, JsonNode *n, guint indent);

static gboolean
is_flat_array (JsonArray *a)
{
  for (guint i = 0; i < json_array_get_length (a); i++) {
    JsonNode *e = json_array_get_element (a, i);
    if (JSON_NODE_HOLDS_OBJECT (e) || JSON_NODE_HOLDS_ARRAY (e))
      return FALSE;
  }
  return TRUE;
}

static void
newline (GString *s, guint indent)
{
  g_string_append_c (s, '\n');
  for (guint i = 0; i < indent; i++)
    g_string_append_c (s, ' ');
}

static void
write_string (GString *s, const char *str)
{
  g_autoptr (JsonNode) n = json_node_new (JSON_NODE_VALUE);
  json_node_set_string (n, str);
  g_autofree char *q = json_to_string (n, FALSE);
  g_string_append (s, q);
}

static void
write_value (GString *s, JsonNode *n)
{
  GType t = json_node_get_value_type (n);
  if (t == G_TYPE_INT64)
    g_string_append_printf (s, "%" G_GINT64_FORMAT, json_node_get_int (n));
  else if (t == G_TYPE_DOUBLE) {
    g_autofree char *f = nn_format_py_float (json_node_get_double (n));
    g_string_append (s, f);
  } else if (t == G_TYPE_BOOLEAN)
    g_string_append (s, json_node_get_boolean (n) ? "true" : "false");
  else
    write_string (s, json_node_get_string (n));
}

static void
write_node (GString *s, JsonNode *n, guint indent)
{
  switch (json_node_get_node_type (n)) {
  case JSON_NODE_NULL:
    g_string_append (s, "null");
    return;
  case JSON_NODE_VALUE:
    write_value (s, n);
    return;
  case JSON_NODE_ARRAY: {
    JsonArray *a = json_node_get_array (n);
    guint len = json_array_get_length (a);
    gboolean flat = is_flat_array (a);
    g_string_append_c (s, '[');
    for (guint i = 0; i < len; i++) {
      if (i)
        g_string_append_c (s, ',');
      if (flat)
        g_string_append (s, i ? " " : "");
      else
        newline (s, indent + 2);
      write_node (s, json_array_get_element (a, i), indent + 2);
    }
    if (!flat && len)
      newline (s, indent);
    g_string_append_c (s, ']');
    return;
  }
  case JSON_NODE_OBJECT: {
    JsonObject *o = json_node_get_object (n);
    g_autoptr (GList) members = json_object_get_members (o);
    g_string_append_c (s, '{');
    for (GList *l = members; l; l = l->next) {
      if (l != members)
        g_string_append_c (s, ',');
      newline (s, indent + 2);
      write_string (s, l->data);
      g_string_append (s, ": ");
      write_node (s, json_object_get_member (o, l->data), indent + 2);
    }
    if (members)
      newline (s, indent);
    g_string_append_c (s, '}');
    return;
  }
  }
}

char *
nn_json_to_text (JsonNode *node, gsize *len_out)
{
  GString *s = g_string_new (NULL);
  write_node (s, node, 0);
  g_string_append_c (s, '\n');
  if (len_out)
    *len_out = s->len;
  return g_string_free (s, FALSE);
}
