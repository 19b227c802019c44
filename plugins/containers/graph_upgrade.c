/* Graph: rewriting a version 1 config (one input, one-arg module nodes,
 * op nodes with constant kwargs) in version 2 form.  Op names resolve
 * through the registry like any type name or alias; the Graph knows none.
 * A v1 op node's kwargs stay the call's kwargs for a functional op
 * (NN_LAYER_OP) and become the config of a layer type used as a function
 * (v1's "flatten" with start_dim, now Flatten's config). */
#include "graph.h"

#include <string.h>

/* v1 kwargs were constants; in v2 a bare string names a value, so string
 * constants become {"str": s}. */
static JsonNode *
constant_to_v2 (JsonNode *n)
{
  if (JSON_NODE_HOLDS_VALUE (n)
      && json_node_get_value_type (n) == G_TYPE_STRING)
    {
      JsonObject *o = json_object_new ();
      json_object_set_string_member (o, "str", json_node_get_string (n));
      JsonNode *r = json_node_new (JSON_NODE_OBJECT);
      json_node_take_object (r, o);
      return r;
    }
  if (JSON_NODE_HOLDS_ARRAY (n))
    {
      JsonArray *in = json_node_get_array (n);
      JsonArray *out = json_array_new ();
      for (guint i = 0; i < json_array_get_length (in); i++)
        json_array_add_element (out,
                                constant_to_v2 (json_array_get_element (in, i)));
      JsonNode *r = json_node_new (JSON_NODE_ARRAY);
      json_node_take_array (r, out);
      return r;
    }
  return json_node_copy (n);
}

static JsonObject *
copy_object (JsonObject *o, gboolean as_constants)
{
  JsonObject *out = json_object_new ();
  GList *members = json_object_get_members (o);
  for (GList *l = members; l; l = l->next)
    {
      JsonNode *v = json_object_get_member (o, l->data);
      json_object_set_member (out, l->data,
                              as_constants ? constant_to_v2 (v)
                                           : json_node_copy (v));
    }
  g_list_free (members);
  return out;
}

static gboolean
upgrade_node (NnRegistry *reg, JsonObject *in, JsonObject *out, guint idx,
              GError **error)
{
  JsonNode *kw = json_object_get_member (in, "kwargs");
  JsonObject *kwargs = kw && JSON_NODE_HOLDS_OBJECT (kw)
                       ? json_node_get_object (kw) : NULL;
  gboolean has_kwargs = kwargs && json_object_get_size (kwargs) > 0;
  const char *name = json_object_has_member (in, "name")
                     && JSON_NODE_HOLDS_VALUE (json_object_get_member (in, "name"))
                     ? json_object_get_string_member (in, "name") : NULL;
  GList *members = json_object_get_members (in);

  for (GList *l = members; l; l = l->next)
    if (strcmp (l->data, "kwargs") != 0)
      json_object_set_member (out, l->data,
                              json_node_copy (json_object_get_member (in, l->data)));
  g_list_free (members);
  if (kw && !kwargs && !JSON_NODE_HOLDS_NULL (kw))
    {
      /* Left for the v2 parser, whose message names the problem. */
      json_object_set_member (out, "kwargs", json_node_copy (kw));
      return TRUE;
    }
  if (!has_kwargs)
    return TRUE;

  JsonNode *op = json_object_get_member (in, "op");
  if (json_object_has_member (in, "module") || op == NULL
      || !JSON_NODE_HOLDS_VALUE (op)
      || json_node_get_value_type (op) != G_TYPE_STRING)
    {
      g_set_error (error, NN_DESCRIPTOR_ERROR, NN_DESCRIPTOR_ERROR_INVALID,
                   "node '%s' (nodes[%u]): a version 1 module node takes no "
                   "kwargs (the child's config holds its settings)",
                   name ? name : "?", idx);
      return FALSE;
    }
  GError *e = NULL;
  const NnLayerType *type = reg
    ? nn_registry_lookup_type (reg, json_node_get_string (op), &e) : NULL;
  if (type == NULL)
    {
      g_set_error (error, NN_PLUGIN_ERROR, NN_PLUGIN_ERROR_UNKNOWN_TYPE,
                   "node '%s': unknown op '%s': %s", name ? name : "?",
                   json_node_get_string (op),
                   e ? e->message : "the registry is gone");
      g_clear_error (&e);
      return FALSE;
    }
  gboolean functional = (type->flags & NN_LAYER_OP) != 0;
  JsonObject *moved = copy_object (kwargs, functional);
  json_object_set_object_member (out, functional ? "kwargs" : "config",
                                 moved);
  return TRUE;
}

static JsonNode *
upgrade_nodes (NnRegistry *reg, JsonNode *nodes, GError **error)
{
  /* Not an array: kept for the v2 parser, whose message names it. */
  if (!JSON_NODE_HOLDS_ARRAY (nodes))
    return json_node_copy (nodes);
  JsonArray *in = json_node_get_array (nodes);
  JsonArray *arr = json_array_new ();
  for (guint i = 0; i < json_array_get_length (in); i++)
    {
      JsonNode *n = json_array_get_element (in, i);
      if (!JSON_NODE_HOLDS_OBJECT (n))
        {
          json_array_add_element (arr, json_node_copy (n));
          continue;
        }
      JsonObject *node = json_object_new ();
      if (!upgrade_node (reg, json_node_get_object (n), node, i, error))
        {
          json_object_unref (node);
          json_array_unref (arr);
          return NULL;
        }
      json_array_add_object_element (arr, node);
    }
  JsonNode *r = json_node_new (JSON_NODE_ARRAY);
  json_node_take_array (r, arr);
  return r;
}

JsonObject *
nn_graph_upgrade_v1 (NnRegistry *reg, JsonObject *config, GError **error)
{
  JsonObject *out = json_object_new ();
  GList *members = json_object_get_members (config);

  /* Same keys in the same order, "nodes" rewritten. */
  for (GList *l = members; l; l = l->next)
    {
      JsonNode *v = json_object_get_member (config, l->data);
      JsonNode *nv = strcmp (l->data, "nodes") == 0
                     ? upgrade_nodes (reg, v, error) : json_node_copy (v);
      if (nv == NULL)
        {
          g_list_free (members);
          json_object_unref (out);
          return NULL;
        }
      json_object_set_member (out, l->data, nv);
    }
  g_list_free (members);
  return out;
}
