/* nnctl plugins [TYPE]: the loaded plugins and the failures, or one layer
 * type's schema and forward signature in the manner of gst-inspect, driven
 * by the data the type declares (nothing here knows any type by name).
 * Functional ops (NN_LAYER_OP) are listed apart from layer types, and each
 * type's aliases (its other spellings, "torch.relu") next to it. */
#include "nnctl.h"

#include <string.h>

static void type_json_members (JsonBuilder *b, NnRegistry *reg,
                               const NnLayerType *t, NnPluginInfo *pi);

/* The vtable behind @name, or NULL if the registry no longer resolves it. */
static const NnLayerType *
lookup (NnRegistry *reg, const char *name)
{
  return nn_registry_lookup_type (reg, name, NULL);
}

static gboolean
is_op (const NnLayerType *t)
{
  return t && (t->flags & NN_LAYER_OP);
}

/* The plugin's type names split into layer types and ops. */
static void
split_types (NnRegistry *reg, NnPluginInfo *p, GPtrArray *layers,
             GPtrArray *ops)
{
  for (guint k = 0; p->type_names && p->type_names[k]; k++)
    g_ptr_array_add (is_op (lookup (reg, p->type_names[k])) ? ops : layers,
                     p->type_names[k]);
  g_ptr_array_add (layers, NULL);
  g_ptr_array_add (ops, NULL);
}

static void
list_text (NnRegistry *reg, GPtrArray *plugins, GPtrArray *failures)
{
  printf ("%u plugin%s loaded\n", plugins->len, plugins->len == 1 ? "" : "s");
  for (guint i = 0; i < plugins->len; i++) {
    NnPluginInfo *p = plugins->pdata[i];
    g_autoptr (GPtrArray) layers = g_ptr_array_new ();
    g_autoptr (GPtrArray) ops = g_ptr_array_new ();
    split_types (reg, p, layers, ops);
    g_autofree char *types = g_strjoinv (", ", (char **) layers->pdata);
    g_autofree char *op_names = g_strjoinv (", ", (char **) ops->pdata);
    printf ("\n%s %s (%s)\n  %s\n  file:  %s\n", p->name,
            p->version ? p->version : "?", p->license ? p->license : "?",
            p->description ? p->description : "", p->path);
    if (*types || !*op_names)
      printf ("  types: %s\n", *types ? types : "(none)");
    if (*op_names)
      printf ("  ops:   %s\n", op_names);
    gboolean header = FALSE;
    for (guint k = 0; p->type_names && p->type_names[k]; k++) {
      g_auto (GStrv) aliases = nn_registry_get_aliases (reg, p->type_names[k]);
      if (!aliases[0])
        continue;
      if (!header)
        printf ("  aliases:\n");
      header = TRUE;
      g_autofree char *al = g_strjoinv (", ", aliases);
      printf ("    %s: %s\n", p->type_names[k], al);
    }
  }
  if (failures->len) {
    printf ("\n%u plugin%s failed to load\n", failures->len,
            failures->len == 1 ? "" : "s");
    for (guint i = 0; i < failures->len; i++) {
      NnPluginFailure *f = failures->pdata[i];
      /* The message names the file already, as every nnkit error does. */
      if (strstr (f->message, f->path))
        printf ("  %s\n", f->message);
      else
        printf ("  %s: %s\n", f->path, f->message);
    }
  }
  nnctl_engine_text (reg);
}

static void
list_json (NnRegistry *reg, GPtrArray *plugins, GPtrArray *failures)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "plugins");
  json_builder_begin_array (b);
  for (guint i = 0; i < plugins->len; i++) {
    NnPluginInfo *p = plugins->pdata[i];
    json_builder_begin_object (b);
    json_builder_set_member_name (b, "name");
    json_builder_add_string_value (b, p->name);
    json_builder_set_member_name (b, "version");
    json_builder_add_string_value (b, p->version);
    json_builder_set_member_name (b, "license");
    json_builder_add_string_value (b, p->license);
    json_builder_set_member_name (b, "description");
    json_builder_add_string_value (b, p->description);
    json_builder_set_member_name (b, "file");
    json_builder_add_string_value (b, p->path);
    /* Every type in full, as `plugins TYPE --json` shows it minus the
     * tensors: what the exporter checks its configs and calls against. */
    json_builder_set_member_name (b, "types");
    json_builder_begin_array (b);
    for (guint k = 0; p->type_names && p->type_names[k]; k++) {
      const NnLayerType *t = lookup (reg, p->type_names[k]);
      if (!t)
        continue;
      json_builder_begin_object (b);
      type_json_members (b, reg, t, p);
      json_builder_end_object (b);
    }
    json_builder_end_array (b);
    json_builder_set_member_name (b, "ops");
    json_builder_begin_array (b);
    for (guint k = 0; p->type_names && p->type_names[k]; k++)
      if (is_op (lookup (reg, p->type_names[k])))
        json_builder_add_string_value (b, p->type_names[k]);
    json_builder_end_array (b);
    json_builder_end_object (b);
  }
  json_builder_end_array (b);
  /* alias -> type, for resolving a spelling without scanning types. */
  json_builder_set_member_name (b, "aliases");
  json_builder_begin_object (b);
  /* A type several plugins provide is listed once: no repeated keys. */
  g_autoptr (GHashTable) done = g_hash_table_new (g_str_hash, g_str_equal);
  for (guint i = 0; i < plugins->len; i++) {
    NnPluginInfo *p = plugins->pdata[i];
    for (guint k = 0; p->type_names && p->type_names[k]; k++) {
      if (!g_hash_table_add (done, p->type_names[k]))
        continue;
      g_auto (GStrv) aliases = nn_registry_get_aliases (reg, p->type_names[k]);
      for (guint a = 0; aliases[a]; a++) {
        json_builder_set_member_name (b, aliases[a]);
        json_builder_add_string_value (b, p->type_names[k]);
      }
    }
  }
  json_builder_end_object (b);
  json_builder_set_member_name (b, "failures");
  json_builder_begin_array (b);
  for (guint i = 0; i < failures->len; i++) {
    NnPluginFailure *f = failures->pdata[i];
    json_builder_begin_object (b);
    json_builder_set_member_name (b, "file");
    json_builder_add_string_value (b, f->path);
    json_builder_set_member_name (b, "error");
    json_builder_add_string_value (b, f->message);
    json_builder_end_object (b);
  }
  json_builder_end_array (b);
  nnctl_engine_json (b, reg);
  json_builder_end_object (b);
  nnctl_json_print (b);
}

/* --- one type ------------------------------------------------------------- */

static char *
key_kind_text (const NnSchemaKey *k)
{
  GString *s = g_string_new (nn_kind_name (k->kind));

  if (k->kind == NN_KIND_INT_TUPLE)
    g_string_append_printf (s, "[%u]", k->tuple_len);
  if (k->enum_values && (k->kind == NN_KIND_ENUM
                         || (k->flags & NN_KEY_OR_ENUM))) {
    g_autofree char *vals = g_strjoinv ("|", (char **) k->enum_values);
    g_string_append_printf (s, k->kind == NN_KIND_ENUM ? " {%s}"
                                                       : " or {%s}", vals);
  }
  if (k->flags & NN_KEY_NULLABLE)
    g_string_append (s, " or null");
  return g_string_free (s, FALSE);
}

static char *
key_range_text (const NnSchemaKey *k)
{
  g_autofree char *lo = NULL, *hi = NULL;

  if (!(k->flags & (NN_KEY_HAS_MIN | NN_KEY_HAS_MAX)))
    return NULL;
  lo = k->flags & NN_KEY_HAS_MIN ? nn_format_py_float (k->min)
                                 : g_strdup ("-inf");
  hi = k->flags & NN_KEY_HAS_MAX ? nn_format_py_float (k->max)
                                 : g_strdup ("inf");
  /* Integer keys read better without Python's ".0". */
  if (k->kind == NN_KIND_INT || k->kind == NN_KIND_INT_TUPLE) {
    if (k->flags & NN_KEY_HAS_MIN) {
      g_free (lo);
      lo = g_strdup_printf ("%" G_GINT64_FORMAT, (gint64) k->min);
    }
    if (k->flags & NN_KEY_HAS_MAX) {
      g_free (hi);
      hi = g_strdup_printf ("%" G_GINT64_FORMAT, (gint64) k->max);
    }
  }
  return g_strdup_printf ("[%s, %s]", lo, hi);
}

static gboolean
has_required_key (const NnLayerType *t)
{
  for (guint i = 0; i < t->n_schema; i++)
    if (!(t->schema[i].flags & NN_KEY_OPTIONAL) || !t->schema[i].default_json)
      return TRUE;
  return FALSE;
}

static char *
required_keys (const NnLayerType *t)
{
  GString *s = g_string_new (NULL);
  for (guint i = 0; i < t->n_schema; i++)
    if (!(t->schema[i].flags & NN_KEY_OPTIONAL) || !t->schema[i].default_json)
      g_string_append_printf (s, "%s%s", s->len ? ", " : "",
                              t->schema[i].name);
  return g_string_free (s, FALSE);
}

static NnPluginInfo *
find_plugin_info (GPtrArray *plugins, const char *name)
{
  for (guint i = 0; i < plugins->len; i++) {
    NnPluginInfo *p = plugins->pdata[i];
    if (strcmp (p->name, name) == 0)
      return p;
  }
  return NULL;
}

static void
tensors_text (NnModule *m)
{
  guint np = nn_module_n_parameters (m), nb = nn_module_n_buffers (m);

  if (np + nb == 0) {
    printf ("  (none)\n");
    return;
  }
  for (guint i = 0; i < np; i++) {
    const char *name;
    NnTensor *t = nn_module_parameter_at (m, i, &name);
    g_autofree char *shape = nnctl_shape_str (&t->shape);
    printf ("  parameter %-20s %-20s %s\n", name, shape,
            nn_dtype_name (t->dtype));
  }
  for (guint i = 0; i < nb; i++) {
    const char *name;
    gboolean persistent = TRUE;
    NnTensor *t = nn_module_buffer_at (m, i, &name, &persistent);
    g_autofree char *shape = nnctl_shape_str (&t->shape);
    printf ("  buffer    %-20s %-20s %s%s\n", name, shape,
            nn_dtype_name (t->dtype), persistent ? "" : " (not persistent)");
  }
}

static void
tensors_json (JsonBuilder *b, NnModule *m)
{
  json_builder_begin_array (b);
  for (guint i = 0; i < nn_module_n_parameters (m); i++) {
    const char *name;
    NnTensor *t = nn_module_parameter_at (m, i, &name);
    json_builder_begin_object (b);
    json_builder_set_member_name (b, "name");
    json_builder_add_string_value (b, name);
    json_builder_set_member_name (b, "kind");
    json_builder_add_string_value (b, "parameter");
    json_builder_set_member_name (b, "shape");
    nnctl_json_add_shape (b, &t->shape);
    json_builder_set_member_name (b, "dtype");
    json_builder_add_string_value (b, nn_dtype_name (t->dtype));
    json_builder_end_object (b);
  }
  for (guint i = 0; i < nn_module_n_buffers (m); i++) {
    const char *name;
    gboolean persistent = TRUE;
    NnTensor *t = nn_module_buffer_at (m, i, &name, &persistent);
    json_builder_begin_object (b);
    json_builder_set_member_name (b, "name");
    json_builder_add_string_value (b, name);
    json_builder_set_member_name (b, "kind");
    json_builder_add_string_value (b, "buffer");
    json_builder_set_member_name (b, "shape");
    nnctl_json_add_shape (b, &t->shape);
    json_builder_set_member_name (b, "dtype");
    json_builder_add_string_value (b, nn_dtype_name (t->dtype));
    json_builder_set_member_name (b, "persistent");
    json_builder_add_boolean_value (b, persistent);
    json_builder_end_object (b);
  }
  json_builder_end_array (b);
}

static void
type_text (NnRegistry *reg, const NnLayerType *t, NnPluginInfo *pi,
           NnModule *inst, const char *why_none)
{
  printf ("%s: %s\n\n", t->name, t->doc ? t->doc : "");
  if (pi) {
    printf ("Plugin:\n  name     %s\n  version  %s\n  license  %s\n"
            "  file     %s\n\n", pi->name, pi->version, pi->license,
            pi->path);
  }
  nnctl_providers_text (reg, t->name);
  if (inst)
    printf ("Provider for this config: %s\n\n",
            nn_plugin_get_name (nn_module_get_plugin (inst)));
  printf ("Capabilities:\n  kind       %s\n  forward    %s\n"
          "  container  %s%s%s\n\n",
          is_op (t) ? "functional op (never a child module)" : "layer type",
          t->forward ? "yes" : "no (calling it is an error; hooks on it "
          "never fire)",
          t->flags & NN_LAYER_CONTAINER ? "yes" : "no",
          t->flags & NN_LAYER_INDEXABLE ? ", indexable" : "",
          t->flags & NN_LAYER_KEYED ? ", keyed" : "");
  if (t->forward) {
    guint n;
    const NnArgSpec *args = nnctl_type_args (t, &n);
    g_autofree char *sig = nnctl_signature_text (t);
    printf ("Signature:\n  forward%s\n", sig);
    for (guint i = 0; i < n; i++) {
      printf ("  %-18s %s\n", args[i].name, args[i].doc ? args[i].doc : "");
    }
    printf ("\n");
  }
  g_auto (GStrv) aliases = nn_registry_get_aliases (reg, t->name);
  if (aliases[0]) {
    g_autofree char *al = g_strjoinv (", ", aliases);
    printf ("Aliases:\n  %s\n\n", al);
  }
  printf ("Config keys (%u):\n", t->n_schema);
  if (t->n_schema == 0)
    printf ("  (none)\n");
  for (guint i = 0; i < t->n_schema; i++) {
    const NnSchemaKey *k = &t->schema[i];
    g_autofree char *kind = key_kind_text (k);
    g_autofree char *range = key_range_text (k);
    gboolean req = !(k->flags & NN_KEY_OPTIONAL) || !k->default_json;
    printf ("  %s\n", k->name);
    printf ("      %s\n", k->doc ? k->doc : "");
    printf ("      kind: %s   %s", kind,
            req ? "required" : "optional");
    if (!req)
      printf ("   default: %s", k->default_json);
    if (range)
      printf ("   range: %s", range);
    printf ("\n");
  }
  printf ("\nParameters and buffers");
  if (inst) {
    printf (" (with the config shown):\n");
    tensors_text (inst);
  } else {
    printf (":\n  %s\n", why_none);
  }
}

/* The members describing @t, inside an object being built. */
static void
type_json_members (JsonBuilder *b, NnRegistry *reg, const NnLayerType *t,
                   NnPluginInfo *pi)
{
  /* "name" and "type" both: the listing's entries are named, the one-type
   * view always said "type". */
  json_builder_set_member_name (b, "name");
  json_builder_add_string_value (b, t->name);
  json_builder_set_member_name (b, "type");
  json_builder_add_string_value (b, t->name);
  json_builder_set_member_name (b, "doc");
  json_builder_add_string_value (b, t->doc);
  json_builder_set_member_name (b, "plugin");
  json_builder_add_string_value (b, pi ? pi->name : NULL);
  json_builder_set_member_name (b, "plugin_file");
  json_builder_add_string_value (b, pi ? pi->path : NULL);
  json_builder_set_member_name (b, "op");
  json_builder_add_boolean_value (b, is_op (t));
  json_builder_set_member_name (b, "aliases");
  nnctl_json_add_aliases (b, reg, t->name);
  json_builder_set_member_name (b, "forward");
  json_builder_add_boolean_value (b, t->forward != NULL);
  json_builder_set_member_name (b, "args");
  if (t->forward)
    nnctl_json_add_signature (b, t);
  else
    json_builder_add_null_value (b);
  json_builder_set_member_name (b, "container");
  json_builder_add_boolean_value (b, (t->flags & NN_LAYER_CONTAINER) != 0);
  json_builder_set_member_name (b, "indexable");
  json_builder_add_boolean_value (b, (t->flags & NN_LAYER_INDEXABLE) != 0);
  json_builder_set_member_name (b, "keyed");
  json_builder_add_boolean_value (b, (t->flags & NN_LAYER_KEYED) != 0);
  json_builder_set_member_name (b, "schema");
  json_builder_begin_array (b);
  for (guint i = 0; i < t->n_schema; i++)
    json_builder_add_string_value (b, t->schema[i].name);
  json_builder_end_array (b);
  json_builder_set_member_name (b, "keys");
  json_builder_begin_array (b);
  for (guint i = 0; i < t->n_schema; i++) {
    const NnSchemaKey *k = &t->schema[i];
    gboolean req = !(k->flags & NN_KEY_OPTIONAL) || !k->default_json;
    json_builder_begin_object (b);
    json_builder_set_member_name (b, "name");
    json_builder_add_string_value (b, k->name);
    json_builder_set_member_name (b, "kind");
    json_builder_add_string_value (b, nn_kind_name (k->kind));
    if (k->kind == NN_KIND_INT_TUPLE) {
      json_builder_set_member_name (b, "tuple_len");
      json_builder_add_int_value (b, k->tuple_len);
    }
    if (k->enum_values) {
      json_builder_set_member_name (b, "values");
      json_builder_begin_array (b);
      for (guint v = 0; k->enum_values[v]; v++)
        json_builder_add_string_value (b, k->enum_values[v]);
      json_builder_end_array (b);
    }
    json_builder_set_member_name (b, "required");
    json_builder_add_boolean_value (b, req);
    json_builder_set_member_name (b, "nullable");
    json_builder_add_boolean_value (b, (k->flags & NN_KEY_NULLABLE) != 0);
    if (!req) {
      g_autoptr (JsonNode) def = json_from_string (k->default_json, NULL);
      json_builder_set_member_name (b, "default");
      if (def)
        json_builder_add_value (b, json_node_ref (def));
      else
        json_builder_add_string_value (b, k->default_json);
    }
    if (k->flags & NN_KEY_HAS_MIN) {
      json_builder_set_member_name (b, "min");
      json_builder_add_double_value (b, k->min);
    }
    if (k->flags & NN_KEY_HAS_MAX) {
      json_builder_set_member_name (b, "max");
      json_builder_add_double_value (b, k->max);
    }
    json_builder_set_member_name (b, "doc");
    json_builder_add_string_value (b, k->doc);
    json_builder_end_object (b);
  }
  json_builder_end_array (b);
}

static void
type_json (NnRegistry *reg, const NnLayerType *t, NnPluginInfo *pi,
           NnModule *inst, const char *why_none)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();

  json_builder_begin_object (b);
  type_json_members (b, reg, t, pi);
  nnctl_providers_json (b, reg, t->name);
  json_builder_set_member_name (b, "provider_for_config");
  json_builder_add_string_value (b, inst ? nn_plugin_get_name (
                                   nn_module_get_plugin (inst)) : NULL);
  json_builder_set_member_name (b, "tensors");
  if (inst)
    tensors_json (b, inst);
  else
    json_builder_add_string_value (b, why_none);
  json_builder_end_object (b);
  nnctl_json_print (b);
}

static int
show_type (NnctlGlobal *g, NnRegistry *reg, const char *name,
           const char *config_text, gboolean json)
{
  NnPlugin *plugin = NULL;
  GError *err = NULL;
  const NnLayerType *t = nn_registry_resolve_type (reg, name, &plugin, &err);
  g_autoptr (GPtrArray) plugins = NULL;
  g_autoptr (NnModule) inst = NULL;
  g_autoptr (JsonNode) config = NULL;
  g_autofree char *why = NULL;

  if (!t)
    return nnctl_fail ("plugins", err);
  plugins = nn_registry_list_plugins (reg);

  /* The tensors depend on the config: show them for the given config, or
   * for the defaults when every key has one. */
  if (config_text) {
    config = json_from_string (config_text, &err);
    if (!config)
      return nnctl_fail ("plugins: --config", err);
    if (!JSON_NODE_HOLDS_OBJECT (config))
      return nnctl_error ("plugins", "--config: expected a JSON object, "
                          "found '%s'", config_text);
    inst = nn_module_new_from_type (reg, name, json_node_get_object (config),
                                    name, &err);
    if (!inst)
      return nnctl_fail ("plugins", err);
  } else if (!has_required_key (t)) {
    inst = nn_module_new_from_type (reg, name, NULL, name, &err);
    if (!inst) {
      why = g_strdup_printf ("cannot instantiate with defaults: %s",
                             err->message);
      g_clear_error (&err);
    }
  } else {
    g_autofree char *req = required_keys (t);
    why = g_strdup_printf ("depend on the config (required keys: %s); "
                           "pass --config '{...}' to see them", req);
  }
  if (!why && !inst)
    why = g_strdup ("none");

  NnPluginInfo *pi = plugin ? find_plugin_info (plugins,
                                                nn_plugin_get_name (plugin))
                            : NULL;
  if (json)
    type_json (reg, t, pi, inst, why);
  else
    type_text (reg, t, pi, inst, why);
  (void) g;
  return NNCTL_EXIT_OK;
}

int
nnctl_cmd_plugins (NnctlGlobal *g, const NnctlCommand *cmd, int argc,
                   char **argv)
{
  gboolean json = FALSE;
  char *config = NULL;
  GError *err = NULL;
  const GOptionEntry entries[] = {
    { "json", 0, 0, G_OPTION_ARG_NONE, &json, "Machine-readable output",
      NULL },
    { "config", 'c', 0, G_OPTION_ARG_STRING, &config,
      "With TYPE: show the tensors for this config (JSON object)", "JSON" },
    { NULL }
  };
  int rc = nnctl_parse (g, cmd, entries, 0, &argc, &argv, 0, 1);
  NnRegistry *reg;

  if (rc != NNCTL_CONTINUE)
    goto out;
  if (config && argc < 2) {
    rc = nnctl_usage ("plugins", "--config needs a TYPE");
    goto out;
  }
  reg = nnctl_registry (g, &err);
  if (!reg) {
    rc = nnctl_fail ("plugins", err);
    goto out;
  }
  if (argc == 2) {
    rc = show_type (g, reg, argv[1], config, json);
  } else {
    g_autoptr (GPtrArray) plugins = nn_registry_list_plugins (reg);
    g_autoptr (GPtrArray) failures = nn_registry_get_failures (reg);
    if (json)
      list_json (reg, plugins, failures);
    else
      list_text (reg, plugins, failures);
    rc = NNCTL_EXIT_OK;
  }
out:
  g_free (config);
  return rc;
}
