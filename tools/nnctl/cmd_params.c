/* nnctl params MODEL: parameters (and buffers) with shape, dtype and
 * element count, in PyTorch's named_parameters() order, with totals. */
#include "nnctl.h"

typedef struct {
  gint64 count, numel, bytes;
} Totals;

static void
add_rows (GPtrArray *items, const char *kind, NnctlTable *table,
          JsonBuilder *b, Totals *tot)
{
  for (guint i = 0; i < items->len; i++) {
    NnNamedItem *it = items->pdata[i];
    NnTensor *t = it->tensor;
    gint64 n = nn_tensor_numel (t);
    tot->count++;
    tot->numel += n;
    tot->bytes += nn_tensor_nbytes (t);
    if (b) {
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "name");
      json_builder_add_string_value (b, it->name);
      json_builder_set_member_name (b, "kind");
      json_builder_add_string_value (b, kind);
      json_builder_set_member_name (b, "shape");
      nnctl_json_add_shape (b, &t->shape);
      json_builder_set_member_name (b, "dtype");
      json_builder_add_string_value (b, nn_dtype_name (t->dtype));
      json_builder_set_member_name (b, "numel");
      json_builder_add_int_value (b, n);
      json_builder_end_object (b);
    } else {
      g_autofree char *shape = nnctl_shape_str (&t->shape);
      g_autofree char *count = nnctl_count_str (n);
      nnctl_table_add (table, it->name, kind, shape,
                       nn_dtype_name (t->dtype), count);
    }
  }
}

static GPtrArray *
select_tensors (NnModule *model, const char *glob, const char *what,
                GError **error)
{
  if (glob)
    return nn_module_glob (model, glob, what, error);
  return g_str_equal (what, "parameters") ? nn_module_named_parameters (model)
                                          : nn_module_named_buffers (model);
}

int
nnctl_cmd_params (NnctlGlobal *g, const NnctlCommand *cmd, int argc,
                  char **argv)
{
  char *glob = NULL, *key = NULL;
  gboolean buffers = FALSE, json = FALSE;
  GError *err = NULL;
  const GOptionEntry entries[] = {
    { "glob", 'g', 0, G_OPTION_ARG_STRING, &glob,
      "Only tensors whose full name matches GLOB (e.g. '*.bias')", "GLOB" },
    { "buffers", 'b', 0, G_OPTION_ARG_NONE, &buffers,
      "Also list buffers (running_mean, num_batches_tracked, ...)", NULL },
    { "json", 0, 0, G_OPTION_ARG_NONE, &json, "Machine-readable output",
      NULL },
    { "key", 0, 0, G_OPTION_ARG_STRING, &key,
      "A .pth checkpoint dict's entry holding the state_dict", "NAME" },
    { NULL }
  };
  static const char *const headers[] = { "NAME", "KIND", "SHAPE", "DTYPE",
                                         "NUMEL" };
  int rc = nnctl_parse (g, cmd, entries, 0, &argc, &argv,
                        1, 1);
  g_autoptr (NnModule) model = NULL;
  g_autoptr (GPtrArray) params = NULL;
  g_autoptr (GPtrArray) bufs = NULL;
  g_autoptr (JsonBuilder) b = NULL;
  g_autoptr (NnctlTable) table = NULL;
  Totals tot = { 0 };

  if (rc != NNCTL_CONTINUE)
    goto out;
  if (nnctl_is_weights_file (argv[1])) {
    rc = nnctl_params_weights (g, argv[1], key, glob, json);
    goto out;
  }
  model = nnctl_load_structure (g, argv[1], &err);
  if (!model) {
    rc = nnctl_fail ("params", err);
    goto out;
  }
  params = select_tensors (model, glob, "parameters", &err);
  if (params && buffers)
    bufs = select_tensors (model, glob, "buffers", &err);
  if (!params || (buffers && !bufs)) {
    rc = nnctl_fail ("params", err);
    goto out;
  }

  if (json) {
    b = json_builder_new ();
    json_builder_begin_object (b);
    json_builder_set_member_name (b, "tensors");
    json_builder_begin_array (b);
  } else {
    table = nnctl_table_new (5, headers);
  }
  add_rows (params, "param", table, b, &tot);
  if (bufs)
    add_rows (bufs, "buffer", table, b, &tot);

  if (json) {
    json_builder_end_array (b);
    json_builder_set_member_name (b, "count");
    json_builder_add_int_value (b, tot.count);
    json_builder_set_member_name (b, "numel");
    json_builder_add_int_value (b, tot.numel);
    json_builder_set_member_name (b, "bytes");
    json_builder_add_int_value (b, tot.bytes);
    json_builder_end_object (b);
    nnctl_json_print (b);
  } else {
    g_autofree char *numel = nnctl_count_str (tot.numel);
    nnctl_table_print (table, stdout, 1u << 4);
    printf ("\n%" G_GINT64_FORMAT " tensor%s, %s elements, %.2f MB\n",
            tot.count, tot.count == 1 ? "" : "s", numel,
            tot.bytes / 1e6);
  }
  rc = NNCTL_EXIT_OK;
out:
  g_free (glob);
  g_free (key);
  return rc;
}
