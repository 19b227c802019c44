/* nnctl get MODEL REF: one module's index, path, type, config, own tensors
 * and text; --param NAME -o FILE writes one tensor to safetensors. */
#include "nnctl.h"

#include <string.h>

static char *
config_text (NnModule *m)
{
  g_autoptr (JsonNode) node = json_node_new (JSON_NODE_OBJECT);

  json_node_set_object (node, nn_module_get_config (m));
  return nnctl_json_node_text (node, FALSE);
}

/* NAME is one of the module's own tensors ("weight") or a full name
 * ("layer1.0.conv1.weight").  Returns (transfer none); *full_out is the
 * full name (transfer full). */
static NnTensor *
find_tensor (NnModule *root, NnModule *m, const char *path, const char *name,
             char **full_out, GError **error)
{
  NnTensor *t = nn_module_get_parameter (m, name);
  if (!t)
    t = nn_module_get_buffer (m, name);
  if (t) {
    *full_out = *path ? g_strconcat (path, ".", name, NULL) : g_strdup (name);
    return t;
  }
  t = nn_module_lookup_tensor (root, name, NULL);
  if (t) {
    *full_out = g_strdup (name);
    return t;
  }
  GString *own = g_string_new (NULL);
  for (guint i = 0; i < nn_module_n_parameters (m); i++) {
    const char *n;
    nn_module_parameter_at (m, i, &n);
    g_string_append_printf (own, "%s%s", own->len ? ", " : "", n);
  }
  for (guint i = 0; i < nn_module_n_buffers (m); i++) {
    const char *n;
    nn_module_buffer_at (m, i, &n, NULL);
    g_string_append_printf (own, "%s%s", own->len ? ", " : "", n);
  }
  g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_NOT_FOUND,
               "%s: no tensor '%s' (it has: %s)", nnctl_path_display (path),
               name, own->len ? own->str : "none");
  g_string_free (own, TRUE);
  return NULL;
}

static int
write_param (NnModule *root, NnModule *m, const char *path, const char *name,
             const char *out, NnctlGlobal *g)
{
  GError *err = NULL;
  g_autofree char *full = NULL;
  NnTensor *t = find_tensor (root, m, path, name, &full, &err);
  const char *names[1];
  NnTensor *tensors[1];

  if (!t)
    return nnctl_fail ("get", err);
  names[0] = full;
  tensors[0] = t;
  if (!nn_safetensors_write (out, names, tensors, 1, NULL, &err))
    return nnctl_fail ("get", err);
  g_autofree char *shape = nnctl_shape_str (&t->shape);
  nnctl_info (g, "wrote %s %s %s to %s\n", full, shape,
              nn_dtype_name (t->dtype), out);
  return NNCTL_EXIT_OK;
}

static void
tensors_json (JsonBuilder *b, NnModule *m, const char *path)
{
  json_builder_begin_array (b);
  for (guint k = 0; k < 2; k++) {
    guint n = k == 0 ? nn_module_n_parameters (m) : nn_module_n_buffers (m);
    for (guint i = 0; i < n; i++) {
      const char *name;
      NnTensor *t = k == 0 ? nn_module_parameter_at (m, i, &name)
                           : nn_module_buffer_at (m, i, &name, NULL);
      g_autofree char *full = *path ? g_strconcat (path, ".", name, NULL)
                                    : g_strdup (name);
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "name");
      json_builder_add_string_value (b, full);
      json_builder_set_member_name (b, "kind");
      json_builder_add_string_value (b, k == 0 ? "param" : "buffer");
      json_builder_set_member_name (b, "shape");
      nnctl_json_add_shape (b, &t->shape);
      json_builder_set_member_name (b, "dtype");
      json_builder_add_string_value (b, nn_dtype_name (t->dtype));
      json_builder_set_member_name (b, "numel");
      json_builder_add_int_value (b, nn_tensor_numel (t));
      json_builder_end_object (b);
    }
  }
  json_builder_end_array (b);
}

static void
print_json (NnModule *root, NnModule *m, const char *path, const char *text)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  g_autoptr (JsonNode) config = json_node_new (JSON_NODE_OBJECT);
  g_autoptr (GPtrArray) children = nn_module_named_children (m);

  json_node_set_object (config, nn_module_get_config (m));
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "index");
  json_builder_add_int_value (b, nn_module_index_of (root, m));
  json_builder_set_member_name (b, "path");
  json_builder_add_string_value (b, path);
  json_builder_set_member_name (b, "class");
  json_builder_add_string_value (b, nn_module_get_class_name (m));
  json_builder_set_member_name (b, "type");
  json_builder_add_string_value (b, nn_module_get_type_name (m));
  json_builder_set_member_name (b, "plugin");
  json_builder_add_string_value (b, nn_plugin_get_name (nn_module_get_plugin (m)));
  json_builder_set_member_name (b, "config");
  json_builder_add_value (b, json_node_ref (config));
  json_builder_set_member_name (b, "children");
  json_builder_begin_array (b);
  for (guint i = 0; i < children->len; i++)
    json_builder_add_string_value (b, ((NnNamedItem *) children->pdata[i])->name);
  json_builder_end_array (b);
  json_builder_set_member_name (b, "tensors");
  tensors_json (b, m, path);
  json_builder_set_member_name (b, "params");
  json_builder_add_int_value (b, nn_module_count_parameters (m));
  json_builder_set_member_name (b, "text");
  json_builder_add_string_value (b, text);
  json_builder_end_object (b);
  nnctl_json_print (b);
}

static void
print_text (NnModule *root, NnModule *m, const char *path, const char *text)
{
  g_autofree char *config = config_text (m);
  g_autofree char *total = nnctl_count_str (nn_module_count_parameters (m));
  guint n = nn_module_n_children (m);

  printf ("path:     %s\n", nnctl_path_display (path));
  printf ("index:    #%" G_GINT64_FORMAT "\n", nn_module_index_of (root, m));
  printf ("class:    %s\n", nn_module_get_class_name (m));
  printf ("type:     %s (plugin %s)\n", nn_module_get_type_name (m),
          nn_plugin_get_name (nn_module_get_plugin (m)));
  printf ("config:   %s\n", config);
  printf ("children: %u", n);
  for (guint i = 0; i < n; i++) {
    const char *name;
    nn_module_child_at (m, i, &name);
    printf ("%s%s", i ? ", " : " (", name);
  }
  printf ("%s\n", n ? ")" : "");
  printf ("params:   %s in the subtree\n", total);
  printf ("tensors:\n");
  if (nn_module_n_parameters (m) + nn_module_n_buffers (m) == 0)
    printf ("  (none of its own)\n");
  for (guint k = 0; k < 2; k++) {
    guint cnt = k == 0 ? nn_module_n_parameters (m) : nn_module_n_buffers (m);
    for (guint i = 0; i < cnt; i++) {
      const char *name;
      NnTensor *t = k == 0 ? nn_module_parameter_at (m, i, &name)
                           : nn_module_buffer_at (m, i, &name, NULL);
      g_autofree char *shape = nnctl_shape_str (&t->shape);
      g_autofree char *full = *path ? g_strconcat (path, ".", name, NULL)
                                    : g_strdup (name);
      printf ("  %-6s %-32s %-20s %s\n", k == 0 ? "param" : "buffer", full,
              shape, nn_dtype_name (t->dtype));
    }
  }
  printf ("text:\n%s\n", text);
}

int
nnctl_cmd_get (NnctlGlobal *g, const NnctlCommand *cmd, int argc,
               char **argv)
{
  gboolean json = FALSE;
  char *param = NULL, *out = NULL;
  gint depth = -1;
  GError *err = NULL;
  const GOptionEntry entries[] = {
    { "param", 'p', 0, G_OPTION_ARG_STRING, &param,
      "Write tensor NAME (own name like 'weight', or a full name) to -o",
      "NAME" },
    { "output", 'o', 0, G_OPTION_ARG_FILENAME, &out,
      "The .safetensors file for --param", "FILE" },
    { "depth", 'd', 0, G_OPTION_ARG_INT, &depth,
      "Depth of the module's text (as show --depth)", "N" },
    { "json", 0, 0, G_OPTION_ARG_NONE, &json, "Machine-readable output",
      NULL },
    { NULL }
  };
  int rc = nnctl_parse (g, cmd, entries, NNCTL_TAKES_MODEL, &argc, &argv,
                        2, 2);
  g_autoptr (NnModule) model = NULL;
  g_autofree char *path = NULL;
  g_autofree char *text = NULL;
  NnModule *m;

  if (rc != NNCTL_CONTINUE)
    goto done;
  if (!param != !out) {
    rc = nnctl_usage ("get", "--param and -o go together");
    goto done;
  }
  model = nnctl_load_model (g, argv[1], &err);
  if (!model) {
    rc = nnctl_fail ("get", err);
    goto done;
  }
  m = nnctl_lookup (model, argv[2], &path, &err);
  if (!m) {
    rc = nnctl_fail ("get", err);
    goto done;
  }
  if (param) {
    rc = write_param (model, m, path, param, out, g);
    goto done;
  }
  text = depth >= 0 ? nn_module_to_string_depth (m, depth)
                    : nn_module_to_string (m);
  if (json)
    print_json (model, m, path, text);
  else
    print_text (model, m, path, text);
  rc = NNCTL_EXIT_OK;
done:
  g_free (param);
  g_free (out);
  return rc;
}
