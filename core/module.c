/* nnkit core: module objects: creation through the registry, reference
 * counting, children, own tensors and config access. */
#include "nn-private.h"
#include "registry-private.h"

#include <stdatomic.h>
#include <string.h>

/* Monotonic; a module may sit under several roots, so every root's index
 * cache compares against this one counter. */
static atomic_uint_fast64_t tree_generation = 1;

guint64
nn_tree_generation_get (void)
{
  return atomic_load (&tree_generation);
}

void
nn_tree_generation_bump (void)
{
  atomic_fetch_add (&tree_generation, 1);
}

/* Stamps are unique, so a module freed and another allocated at its
 * address never look alike to a plan step. */
static atomic_uint_fast64_t next_stamp = 1;

void
nn_module_touch (NnModule *m)
{
  __atomic_store_n (&m->stamp, atomic_fetch_add (&next_stamp, 1),
                    __ATOMIC_RELEASE);
}

static void
slot_clear (gpointer p)
{
  NnSlot *s = p;
  g_free (s->name);
  nn_tensor_unref (s->tensor);
}

static void
child_clear (gpointer p)
{
  NnChild *c = p;
  g_free (c->name);
  nn_module_unref (c->module);
}

void
nn_error_prefix (GError **error, const char *path, const char *name)
{
  if (path && *path)
    g_prefix_error (error, "%s: %s: ", path, name);
  else
    g_prefix_error (error, "%s: ", name);
}

NnModule *
nn_module_new_from_type (NnRegistry *reg, const char *type_name,
                         JsonObject *config, const char *path, GError **error)
{
  g_return_val_if_fail (reg != NULL && type_name != NULL, NULL);
  NnPlugin *plugin = NULL;
  /* Several plugins may provide the type: the choice is per module. */
  const NnLayerType *type = nn_providers_choose (reg, type_name, config, path,
                                                 &plugin, error);
  if (!type) {
    if (path && *path)
      g_prefix_error (error, "%s: ", path);
    return NULL;
  }
  JsonObject *cfg = nn_schema_validate (type, config, path, error);
  if (!cfg)
    return NULL;

  NnModule *m = g_new0 (NnModule, 1);
  m->ref_count = 1;
  m->type = type;
  m->plugin = nn_plugin_ref (plugin);
  m->config = cfg;
  m->children = g_array_new (FALSE, TRUE, sizeof (NnChild));
  g_array_set_clear_func (m->children, child_clear);
  m->params = g_array_new (FALSE, TRUE, sizeof (NnSlot));
  g_array_set_clear_func (m->params, slot_clear);
  m->buffers = g_array_new (FALSE, TRUE, sizeof (NnSlot));
  g_array_set_clear_func (m->buffers, slot_clear);
  nn_module_touch (m);

  if (!type->create (m, error)) {
    if (error && !*error)
      g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_FAILED,
                   "create failed without a reason");
    nn_error_prefix (error, path, type->name);
    nn_module_unref (m);
    return NULL;
  }
  if (m->alloc_failure) {
    g_set_error_literal (error, NN_MODULE_ERROR, NN_MODULE_ERROR_FAILED,
                         m->alloc_failure);
    nn_error_prefix (error, path, type->name);
    nn_module_unref (m);
    return NULL;
  }
  return m;
}

NnModule *
nn_module_ref (NnModule *m)
{
  g_return_val_if_fail (m != NULL, NULL);
  g_atomic_int_inc (&m->ref_count);
  return m;
}

void
nn_module_unref (NnModule *m)
{
  if (m == NULL || !g_atomic_int_dec_and_test (&m->ref_count))
    return;
  /* The type's destroy runs while its plugin is still loaded. */
  if (m->type->destroy)
    m->type->destroy (m);
  if (m->hooks)
    nn_hook_list_detach (m->hooks);
  g_array_unref (m->children);
  g_array_unref (m->params);
  g_array_unref (m->buffers);
  json_object_unref (m->config);
  g_free (m->class_name);
  g_free (m->alloc_failure);
  g_free (m->extra_repr);
  g_strfreev (m->repr_lists);
  if (m->input_spec)
    nn_value_unref (m->input_spec);
  if (m->index_paths)
    g_ptr_array_unref (m->index_paths);
  if (m->index_of)
    g_hash_table_unref (m->index_of);
  nn_plan_clear (m);
  nn_module_clear_training (m);
  NnPlugin *plugin = m->plugin;
  g_free (m);
  nn_plugin_unref (plugin);
}

const char *
nn_module_get_type_name (NnModule *m)
{
  return m->type->name;
}

const NnLayerType *
nn_module_get_type (NnModule *m)
{
  return m->type;
}

const char *
nn_module_get_extra_repr (NnModule *m)
{
  g_return_val_if_fail (m != NULL, NULL);
  return m->extra_repr;
}

void
nn_module_set_extra_repr (NnModule *m, const char *text)
{
  g_return_if_fail (m != NULL);
  g_free (m->extra_repr);
  m->extra_repr = text && *text ? g_strdup (text) : NULL;
}

const char *
nn_module_get_class_name (NnModule *m)
{
  return m->class_name ? m->class_name : m->type->name;
}

void
nn_module_set_class_name (NnModule *m, const char *name)
{
  g_free (m->class_name);
  m->class_name = name && strcmp (name, m->type->name) != 0 ? g_strdup (name) : NULL;
}

JsonObject *
nn_module_get_config (NnModule *m)
{
  return m->config;
}

NnRegistry *
nn_module_get_registry (NnModule *self)
{
  return nn_plugin_get_registry (self->plugin);
}

NnPlugin *
nn_module_get_plugin (NnModule *self)
{
  return self->plugin;
}

/* --- children ------------------------------------------------------------ */

gboolean
nn_module_name_is_valid (const char *name, GError **error)
{
  if (name == NULL || *name == '\0') {
    g_set_error (error, NN_DESCRIPTOR_ERROR, NN_DESCRIPTOR_ERROR_BAD_NAME,
                 "module name can't be empty string \"\"");
    return FALSE;
  }
  if (strchr (name, '.')) {
    g_set_error (error, NN_DESCRIPTOR_ERROR, NN_DESCRIPTOR_ERROR_BAD_NAME,
                 "module name can't contain \".\", got: %s", name);
    return FALSE;
  }
  return TRUE;
}

static gint
child_index (NnModule *m, const char *name)
{
  for (guint i = 0; i < m->children->len; i++)
    if (strcmp (g_array_index (m->children, NnChild, i).name, name) == 0)
      return (gint) i;
  return -1;
}

/* Each module is visited once: shared modules (refs) would otherwise make
 * the walk exponential in the number of diamonds. */
static gboolean
reaches_unvisited (NnModule *from, NnModule *target, GHashTable *visited)
{
  if (from == target)
    return TRUE;
  if (from->children->len == 0 || !g_hash_table_add (visited, from))
    return FALSE;
  for (guint i = 0; i < from->children->len; i++)
    if (reaches_unvisited (g_array_index (from->children, NnChild, i).module,
                           target, visited))
      return TRUE;
  return FALSE;
}

static gboolean
reaches (NnModule *from, NnModule *target)
{
  if (from == target)
    return TRUE;
  if (from->children->len == 0)
    return FALSE;
  g_autoptr (GHashTable) visited = g_hash_table_new (NULL, NULL);
  return reaches_unvisited (from, target, visited);
}

gboolean
nn_module_insert_child (NnModule *m, guint pos, const char *name,
                        NnModule *child, GError **error)
{
  if (!nn_module_name_is_valid (name, error))
    return FALSE;
  if (child_index (m, name) >= 0) {
    g_set_error (error, NN_DESCRIPTOR_ERROR, NN_DESCRIPTOR_ERROR_DUPLICATE_NAME,
                 "%s already has a child named '%s'", nn_module_get_class_name (m), name);
    return FALSE;
  }
  /* A cycle would make every traversal endless. */
  if (reaches (child, m)) {
    g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_BAD_REFERENCE,
                 "cannot add '%s' (%s): it contains its new parent %s", name,
                 nn_module_get_class_name (child), nn_module_get_class_name (m));
    return FALSE;
  }
  NnChild c = { g_strdup (name), nn_module_ref (child) };
  g_array_insert_val (m->children, MIN (pos, m->children->len), c);
  nn_module_touch (m);
  nn_tree_generation_bump ();
  return TRUE;
}

gboolean
nn_module_add_child (NnModule *m, const char *name, NnModule *child,
                     GError **error)
{
  return nn_module_insert_child (m, m->children->len, name, child, error);
}

gboolean
nn_module_remove_child_at (NnModule *m, guint i)
{
  if (i >= m->children->len)
    return FALSE;
  g_array_remove_index (m->children, i);
  nn_module_touch (m);
  nn_tree_generation_bump ();
  return TRUE;
}

void
nn_module_set_child_at (NnModule *m, guint i, NnModule *child)
{
  NnChild *c = &g_array_index (m->children, NnChild, i);
  NnModule *old = c->module;
  c->module = nn_module_ref (child);
  nn_module_unref (old);
  nn_module_touch (m);
  nn_tree_generation_bump ();
}

guint
nn_module_n_children (NnModule *m)
{
  return m->children->len;
}

NnModule *
nn_module_get_child (NnModule *m, const char *name)
{
  gint i = child_index (m, name);
  return i < 0 ? NULL : g_array_index (m->children, NnChild, i).module;
}

NnModule *
nn_module_child_at (NnModule *m, guint i, const char **name_out)
{
  if (i >= m->children->len)
    return NULL;
  NnChild *c = &g_array_index (m->children, NnChild, i);
  if (name_out)
    *name_out = c->name;
  return c->module;
}

/* --- own tensors ------------------------------------------------------- */

static NnSlot *
find_slot (GArray *slots, const char *name)
{
  for (guint i = 0; i < slots->len; i++)
    if (strcmp (g_array_index (slots, NnSlot, i).name, name) == 0)
      return &g_array_index (slots, NnSlot, i);
  return NULL;
}

static NnTensor *
add_slot (NnModule *self, GArray *slots, const char *name, NnDType dtype,
          const NnShape *shape, gboolean persistent)
{
  g_return_val_if_fail (name && *name && !strchr (name, '.'), NULL);
  if (find_slot (self->params, name) || find_slot (self->buffers, name)) {
    g_critical ("%s: tensor '%s' registered twice", self->type->name, name);
    return NULL;
  }
  NnTensor *t = nn_tensor_new (dtype, shape);
  if (!t) {
    /* Plugins' create functions rarely check this result: remember it, so
     * module creation fails with the tensor named instead of leaving a
     * module without it. */
    if (!self->alloc_failure) {
      char *s = nn_shape_to_string (shape);
      self->alloc_failure = g_strdup_printf (
          "cannot allocate %s '%s': %s %s (out of memory or too large)",
          slots == self->params ? "parameter" : "buffer", name,
          nn_dtype_name (dtype), s);
      g_free (s);
    }
    return NULL;
  }
  NnSlot s = { g_strdup (name), t, persistent, FALSE };
  g_array_append_val (slots, s);
  return t;
}

gboolean
nn_module_declare_tensor (NnModule *m, const char *name, gboolean parameter,
                          NnDType dtype, const NnShape *shape,
                          gboolean persistent, GError **error)
{
  if (!name || !*name || strchr (name, '.')) {
    g_set_error (error, NN_DESCRIPTOR_ERROR, NN_DESCRIPTOR_ERROR_BAD_NAME,
                 "declared tensor name '%s' is empty or contains '.'",
                 name ? name : "");
    return FALSE;
  }
  if (find_slot (m->params, name) || find_slot (m->buffers, name)
      || nn_module_get_child (m, name)) {
    g_set_error (error, NN_DESCRIPTOR_ERROR, NN_DESCRIPTOR_ERROR_DUPLICATE_NAME,
                 "declared tensor '%s': %s already has a tensor or child of "
                 "that name", name, nn_module_get_class_name (m));
    return FALSE;
  }
  NnTensor *t = add_slot (m, parameter ? m->params : m->buffers, name, dtype,
                          shape, parameter || persistent);
  if (!t) {
    char *s = nn_shape_to_string (shape);
    g_set_error (error, NN_DESCRIPTOR_ERROR, NN_DESCRIPTOR_ERROR_INVALID,
                 "declared tensor '%s': cannot allocate %s %s", name,
                 nn_dtype_name (dtype), s);
    g_free (s);
    return FALSE;
  }
  GArray *slots = parameter ? m->params : m->buffers;
  g_array_index (slots, NnSlot, slots->len - 1).declared = TRUE;
  return TRUE;
}

NnTensor *
nn_module_add_parameter (NnModule *self, const char *name, NnDType dtype,
                         const NnShape *shape)
{
  return add_slot (self, self->params, name, dtype, shape, TRUE);
}

NnTensor *
nn_module_add_buffer (NnModule *self, const char *name, NnDType dtype,
                      const NnShape *shape, gboolean persistent)
{
  return add_slot (self, self->buffers, name, dtype, shape, persistent);
}

guint
nn_module_n_parameters (NnModule *m)
{
  return m->params->len;
}

NnTensor *
nn_module_parameter_at (NnModule *m, guint i, const char **name_out)
{
  if (i >= m->params->len)
    return NULL;
  NnSlot *s = &g_array_index (m->params, NnSlot, i);
  if (name_out)
    *name_out = s->name;
  return s->tensor;
}

NnTensor *
nn_module_get_parameter (NnModule *m, const char *name)
{
  NnSlot *s = find_slot (m->params, name);
  return s ? s->tensor : NULL;
}

guint
nn_module_n_buffers (NnModule *m)
{
  return m->buffers->len;
}

NnTensor *
nn_module_buffer_at (NnModule *m, guint i, const char **name_out,
                     gboolean *persistent_out)
{
  if (i >= m->buffers->len)
    return NULL;
  NnSlot *s = &g_array_index (m->buffers, NnSlot, i);
  if (name_out)
    *name_out = s->name;
  if (persistent_out)
    *persistent_out = s->persistent;
  return s->tensor;
}

NnTensor *
nn_module_get_buffer (NnModule *m, const char *name)
{
  NnSlot *s = find_slot (m->buffers, name);
  return s ? s->tensor : NULL;
}

/* F32 and its half forms interchange in types that convert per use. */
static gboolean
half_swap (NnModule *m, NnDType have, NnDType want)
{
  gboolean half_have = have == NN_DTYPE_F16 || have == NN_DTYPE_BF16;
  gboolean half_want = want == NN_DTYPE_F16 || want == NN_DTYPE_BF16;
  return (m->type->flags & NN_LAYER_HALF_WEIGHTS) &&
         ((half_have && (want == NN_DTYPE_F32 || half_want)) ||
          (have == NN_DTYPE_F32 && half_want));
}

gboolean
nn_module_set_tensor_half (NnModule *m, const char *name, NnTensor *t,
                           GError **error)
{
  NnSlot *s = find_slot (m->params, name);
  if (!s)
    s = find_slot (m->buffers, name);
  if (s && s->tensor->dtype != t->dtype &&
      nn_shape_equal (&s->tensor->shape, &t->shape) &&
      half_swap (m, s->tensor->dtype, t->dtype)) {
    NnTensor *old = s->tensor;
    s->tensor = nn_tensor_ref (t);
    nn_tensor_unref (old);
    nn_module_touch (m);
    return TRUE;
  }
  return nn_module_set_tensor (m, name, t, error);
}

gboolean
nn_module_set_tensor (NnModule *m, const char *name, NnTensor *t,
                      GError **error)
{
  NnSlot *s = find_slot (m->params, name);
  if (!s)
    s = find_slot (m->buffers, name);
  if (!s) {
    g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_NOT_FOUND,
                 "%s has no parameter or buffer '%s'", nn_module_get_class_name (m), name);
    return FALSE;
  }
  if (s->tensor->dtype != t->dtype || !nn_shape_equal (&s->tensor->shape, &t->shape)) {
    g_autofree char *want = nn_shape_to_string (&s->tensor->shape);
    g_autofree char *got = nn_shape_to_string (&t->shape);
    g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH,
                 "%s.%s: expected %s %s, found %s %s", nn_module_get_class_name (m),
                 name, nn_dtype_name (s->tensor->dtype), want, nn_dtype_name (t->dtype), got);
    return FALSE;
  }
  NnTensor *old = s->tensor;
  s->tensor = nn_tensor_ref (t);
  nn_tensor_unref (old);
  nn_module_touch (m); /* load_state_dict: plans and their caches rebuild */
  return TRUE;
}

guint
nn_module_descriptor_version (NnModule *self)
{
  return nn_descriptor_loading_version ();
}

void
nn_module_replace_config (NnModule *self, JsonObject *config)
{
  g_return_if_fail (self != NULL && config != NULL);
  json_object_ref (config);
  json_object_unref (self->config);
  self->config = config;
}

void
nn_module_set_private (NnModule *self, gpointer priv)
{
  self->priv = priv;
}

gpointer
nn_module_get_private (NnModule *self)
{
  return self->priv;
}

/* --- config access ------------------------------------------------------- */

static JsonNode *
config_member (NnModule *self, const char *key)
{
  JsonNode *n = json_object_get_member (self->config, key);
  if (!n)
    g_critical ("%s: config key '%s' is not in the type's schema", self->type->name, key);
  return n;
}

gint64
nn_module_config_int (NnModule *self, const char *key)
{
  JsonNode *n = config_member (self, key);
  return n && JSON_NODE_HOLDS_VALUE (n) ? json_node_get_int (n) : 0;
}

double
nn_module_config_float (NnModule *self, const char *key)
{
  JsonNode *n = config_member (self, key);
  return n && JSON_NODE_HOLDS_VALUE (n) ? json_node_get_double (n) : 0.0;
}

gboolean
nn_module_config_bool (NnModule *self, const char *key)
{
  JsonNode *n = config_member (self, key);
  return n && JSON_NODE_HOLDS_VALUE (n) ? json_node_get_boolean (n) : FALSE;
}

const char *
nn_module_config_string (NnModule *self, const char *key)
{
  JsonNode *n = config_member (self, key);
  if (!n || !JSON_NODE_HOLDS_VALUE (n) || json_node_get_value_type (n) != G_TYPE_STRING)
    return NULL;
  return json_node_get_string (n);
}

gboolean
nn_module_config_is_null (NnModule *self, const char *key)
{
  JsonNode *n = config_member (self, key);
  return n == NULL || JSON_NODE_HOLDS_NULL (n);
}

gboolean
nn_module_config_ints (NnModule *self, const char *key, gint64 *out, guint n)
{
  JsonNode *node = config_member (self, key);
  if (!node)
    return FALSE;
  if (JSON_NODE_HOLDS_VALUE (node) && json_node_get_value_type (node) == G_TYPE_INT64) {
    for (guint i = 0; i < n; i++)
      out[i] = json_node_get_int (node);
    return TRUE;
  }
  if (!JSON_NODE_HOLDS_ARRAY (node))
    return FALSE;
  JsonArray *a = json_node_get_array (node);
  if (json_array_get_length (a) != n)
    return FALSE;
  for (guint i = 0; i < n; i++)
    out[i] = json_array_get_int_element (a, i);
  return TRUE;
}

JsonNode *
nn_module_config_node (NnModule *self, const char *key)
{
  return config_member (self, key);
}

/* @list: an array prints as a Python list, not a tuple. */
static void
append_py_repr (GString *s, JsonNode *n, gboolean list)
{
  if (JSON_NODE_HOLDS_NULL (n)) {
    g_string_append (s, "None");
  } else if (JSON_NODE_HOLDS_ARRAY (n)) {
    JsonArray *a = json_node_get_array (n);
    guint len = json_array_get_length (a);
    g_string_append_c (s, list ? '[' : '(');
    for (guint i = 0; i < len; i++) {
      if (i)
        g_string_append (s, ", ");
      append_py_repr (s, json_array_get_element (a, i), FALSE);
    }
    g_string_append (s, list ? "]" : len == 1 ? ",)" : ")");
  } else if (JSON_NODE_HOLDS_OBJECT (n)) {
    g_autofree char *j = json_to_string (n, FALSE);
    g_string_append (s, j);
  } else {
    GType t = json_node_get_value_type (n);
    if (t == G_TYPE_INT64)
      g_string_append_printf (s, "%" G_GINT64_FORMAT, json_node_get_int (n));
    else if (t == G_TYPE_DOUBLE) {
      g_autofree char *f = nn_format_py_float (json_node_get_double (n));
      g_string_append (s, f);
    } else if (t == G_TYPE_BOOLEAN)
      g_string_append (s, json_node_get_boolean (n) ? "True" : "False");
    else
      g_string_append_printf (s, "'%s'", json_node_get_string (n));
  }
}

char *
nn_module_config_repr (NnModule *self, const char *key)
{
  JsonNode *n = config_member (self, key);
  GString *s = g_string_new (NULL);
  if (n)
    append_py_repr (s, n, self->repr_lists
                          && g_strv_contains ((const char *const *) self->repr_lists, key));
  return g_string_free (s, FALSE);
}

gboolean
nn_module_set_repr_lists (NnModule *m, const char *const *keys, GError **error)
{
  g_return_val_if_fail (m != NULL, FALSE);
  for (guint i = 0; keys && keys[i]; i++) {
    JsonNode *n = json_object_get_member (m->config, keys[i]);
    if (!n) {
      g_set_error (error, NN_DESCRIPTOR_ERROR, NN_DESCRIPTOR_ERROR_UNKNOWN_KEY,
                   "%s has no config key '%s' to print as a list",
                   m->type->name, keys[i]);
      return FALSE;
    }
    if (!JSON_NODE_HOLDS_ARRAY (n)) {
      g_autofree char *v = json_to_string (n, FALSE);
      g_set_error (error, NN_DESCRIPTOR_ERROR, NN_DESCRIPTOR_ERROR_WRONG_KIND,
                   "%s config '%s' prints as a list only when it holds one: "
                   "expected an array, found %s", m->type->name, keys[i], v);
      return FALSE;
    }
  }
  g_strfreev (m->repr_lists);
  m->repr_lists = keys && keys[0] ? g_strdupv ((char **) keys) : NULL;
  return TRUE;
}

const char *const *
nn_module_get_repr_lists (NnModule *m)
{
  g_return_val_if_fail (m != NULL, NULL);
  return (const char *const *) m->repr_lists;
}

/* --- model-level attributes ------------------------------------------ */

NnValue *
nn_module_get_input_spec (NnModule *m)
{
  return m->input_spec;
}

static NnTensor *
spec_meta (NnTensor *t, gpointer user_data, GError **error)
{
  return nn_tensor_new_meta (t->dtype, &t->shape);
}

gboolean
nn_module_set_input_spec (NnModule *m, const NnValue *spec, GError **error)
{
  if (spec) {
    gboolean ok = nn_value_kind (spec) == NN_VALUE_DICT
                  && nn_value_n_items (spec) > 0;
    for (guint i = 0; ok && i < nn_value_n_items (spec); i++)
      ok = nn_value_kind (nn_value_item (spec, i)) == NN_VALUE_TENSOR;
    if (!ok) {
      char *s = nn_value_to_string (spec);
      g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_INVALID,
                   "an input spec is a non-empty dict of input names to "
                   "tensors, found %s", s);
      g_free (s);
      return FALSE;
    }
  }
  NnValue *copy = spec ? nn_value_map_tensors (spec, spec_meta, NULL, NULL)
                       : NULL;
  if (m->input_spec)
    nn_value_unref (m->input_spec);
  m->input_spec = copy;
  m->input_spec_legacy = FALSE;
  return TRUE;
}

NnValue *
nn_module_input_spec_args (NnModule *m)
{
  if (!m->input_spec)
    return NULL;
  NnValue *args = nn_value_new_tuple ();
  for (guint i = 0; i < nn_value_n_items (m->input_spec); i++)
    nn_value_append (args, nn_value_ref (nn_value_item (m->input_spec, i)));
  return args;
}

gboolean
nn_module_get_input_shape (NnModule *m, NnShape *out)
{
  if (!m->input_spec || nn_value_n_items (m->input_spec) != 1)
    return FALSE;
  NnTensor *t = nn_value_get_tensor (nn_value_item (m->input_spec, 0));
  if (t->dtype != NN_DTYPE_F32)
    return FALSE;
  if (out)
    *out = t->shape;
  return TRUE;
}

void
nn_module_set_input_shape (NnModule *m, const NnShape *shape)
{
  if (m->input_spec)
    nn_value_unref (m->input_spec);
  m->input_spec = NULL;
  m->input_spec_legacy = FALSE;
  NnTensor *t = shape ? nn_tensor_new_meta (NN_DTYPE_F32, shape) : NULL;
  if (!t)
    return;
  m->input_spec = nn_value_new_dict ();
  nn_value_dict_set (m->input_spec, "input", nn_value_take_tensor (t));
  m->input_spec_legacy = TRUE;
}

void
nn_module_init_uniform (NnModule *self, const char *name, double bound,
                        GRand *rng)
{
  NnTensor *t = nn_module_get_parameter (self, name);
  if (!t)
    t = nn_module_get_buffer (self, name);
  if (!t)
    return; /* an optional tensor the config left out, e.g. bias=False */
  g_return_if_fail (nn_tensor_f32 (t) != NULL && !t->read_only);
  float *d = nn_tensor_f32 (t);
  for (gint64 j = 0, len = nn_tensor_numel (t); j < len; j++)
    d[j] = (float) g_rand_double_range (rng, -bound, bound);
}

/* Tensors borrowed read-only (a mapped weights file) get private copies,
 * so a type may always write its own tensors in reset_parameters(). */
static void
make_writable (GArray *slots)
{
  for (guint i = 0; i < slots->len; i++) {
    NnSlot *s = &g_array_index (slots, NnSlot, i);
    if (nn_tensor_is_read_only (s->tensor)) {
      NnTensor *copy = nn_tensor_copy (s->tensor);
      nn_tensor_unref (s->tensor);
      s->tensor = copy;
    }
  }
}

void
nn_module_reset_parameters (NnModule *m, guint32 seed)
{
  g_autoptr (GRand) rng = g_rand_new_with_seed (seed);
  g_autoptr (GPtrArray) mods = nn_module_named_modules (m);
  for (guint i = 0; i < mods->len; i++) {
    NnModule *mod = ((NnNamedItem *) mods->pdata[i])->module;
    if (!mod->type->reset_parameters)
      continue;
    make_writable (mod->params);
    make_writable (mod->buffers);
    mod->type->reset_parameters (mod, rng);
    for (guint k = 0; k < mod->params->len; k++)
      nn_tensor_mark_written (g_array_index (mod->params, NnSlot, k).tensor);
    for (guint k = 0; k < mod->buffers->len; k++)
      nn_tensor_mark_written (g_array_index (mod->buffers, NnSlot, k).tensor);
  }
}

/* Each module is checked once, under the first path that reaches it:
 * shared modules would otherwise cost one check per path. */
static gboolean
check_tree_unvisited (NnModule *m, GString *path, GHashTable *visited,
                      GError **error)
{
  if (!g_hash_table_add (visited, m))
    return TRUE;
  gsize mark = path->len;
  for (guint i = 0; i < m->children->len; i++) {
    NnChild *c = &g_array_index (m->children, NnChild, i);
    g_string_append_printf (path, "%s%s", mark ? "." : "", c->name);
    if (!check_tree_unvisited (c->module, path, visited, error))
      return FALSE;
    g_string_truncate (path, mark);
  }
  if (m->type->check && !m->type->check (m, error)) {
    nn_error_prefix (error, path->str, nn_module_get_class_name (m));
    return FALSE;
  }
  return TRUE;
}

gboolean
nn_module_check_tree (NnModule *m, const char *path, GError **error)
{
  g_autoptr (GString) p = g_string_new (path);
  g_autoptr (GHashTable) visited = g_hash_table_new (NULL, NULL);
  return check_tree_unvisited (m, p, visited, error);
}
