/* nnctl modules MODEL: flattened index, path, class, type and parameter
 * count of each module, in PyTorch's named_modules() order. */
#include "nnctl.h"

int
nnctl_cmd_modules (NnctlGlobal *g, const NnctlCommand *cmd, int argc,
                   char **argv)
{
  char *glob = NULL;
  gint depth = -1;
  gboolean json = FALSE;
  GError *err = NULL;
  const GOptionEntry entries[] = {
    { "glob", 'g', 0, G_OPTION_ARG_STRING, &glob,
      "Only modules whose path matches GLOB ('*' crosses dots)", "GLOB" },
    { "depth", 'd', 0, G_OPTION_ARG_INT, &depth,
      "Only modules at most N levels below the root", "N" },
    { "json", 0, 0, G_OPTION_ARG_NONE, &json, "Machine-readable output",
      NULL },
    { NULL }
  };
  int rc = nnctl_parse (g, cmd, entries, 0, &argc, &argv,
                        1, 1);
  g_autoptr (NnModule) model = NULL;
  g_autoptr (GPtrArray) items = NULL;
  g_autoptr (JsonBuilder) b = NULL;
  g_autoptr (NnctlTable) table = NULL;
  static const char *const headers[] = { "#", "PATH", "CLASS", "TYPE",
                                         "PARAMS" };

  if (rc != NNCTL_CONTINUE)
    goto out;
  model = nnctl_load_structure (g, argv[1], &err);
  if (!model) {
    rc = nnctl_fail ("modules", err);
    goto out;
  }
  items = glob ? nn_module_glob (model, glob, "modules", &err)
               : nn_module_named_modules (model);
  if (!items) {
    rc = nnctl_fail ("modules", err);
    goto out;
  }

  if (json) {
    b = json_builder_new ();
    json_builder_begin_array (b);
  } else {
    table = nnctl_table_new (5, headers);
  }
  for (guint i = 0; i < items->len; i++) {
    NnNamedItem *it = items->pdata[i];
    gint64 index = nn_module_index_of (model, it->module);
    gint64 params = nn_module_count_parameters (it->module);
    if (depth >= 0 && (gint) it->depth > depth)
      continue;
    if (json) {
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "index");
      json_builder_add_int_value (b, index);
      json_builder_set_member_name (b, "path");
      json_builder_add_string_value (b, it->name);
      json_builder_set_member_name (b, "depth");
      json_builder_add_int_value (b, it->depth);
      json_builder_set_member_name (b, "class");
      json_builder_add_string_value (b, nn_module_get_class_name (it->module));
      json_builder_set_member_name (b, "type");
      json_builder_add_string_value (b, nn_module_get_type_name (it->module));
      json_builder_set_member_name (b, "params");
      json_builder_add_int_value (b, params);
      json_builder_set_member_name (b, "own_params");
      json_builder_add_int_value (b, nnctl_own_param_count (it->module));
      json_builder_end_object (b);
    } else {
      g_autofree char *idx = g_strdup_printf ("#%" G_GINT64_FORMAT, index);
      g_autofree char *count = nnctl_count_str (params);
      nnctl_table_add (table, idx, nnctl_path_display (it->name),
                       nn_module_get_class_name (it->module),
                       nn_module_get_type_name (it->module), count);
    }
  }
  if (json) {
    json_builder_end_array (b);
    nnctl_json_print (b);
  } else {
    /* Right-align the index and the count. */
    nnctl_table_print (table, stdout, 1u | (1u << 4));
  }
  rc = NNCTL_EXIT_OK;
out:
  g_free (glob);
  return rc;
}
