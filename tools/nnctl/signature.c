/* nnctl: a layer type's forward signature (NnArgSpec list) as text and
 * JSON, read from the vtable alone, for `nnctl plugins`. */
#include "nnctl.h"

#include <string.h>

/* The ABI 1 default when a type declares no signature. */
static const NnArgSpec default_args[] = {
  { "input", NN_ARG_TENSOR, NN_DTYPE_BIT (NN_DTYPE_F32), 0, NULL,
    "the input tensor" },
};

/* Python spellings of the kind bits, in bit order. */
static const char *const kind_names[] = {
  "Tensor", "int", "float", "bool", "str", "sequence", "dict", "None",
};

const NnArgSpec *
nnctl_type_args (const NnLayerType *t, guint *n_out)
{
  if (!t->args || t->n_args == 0) {
    *n_out = G_N_ELEMENTS (default_args);
    return default_args;
  }
  *n_out = t->n_args;
  return t->args;
}

/* Tensor dtypes accepted: the mask, with 0 meaning F32 as the ABI says. */
static guint32
arg_dtypes (const NnArgSpec *a)
{
  return a->dtypes ? a->dtypes : NN_DTYPE_BIT (NN_DTYPE_F32);
}

char *
nnctl_arg_kinds_text (const NnArgSpec *a)
{
  GString *s = g_string_new (NULL);
  if ((a->kinds & NN_ARG_ANY) == NN_ARG_ANY) {
    g_string_append (s, "Any");
    return g_string_free (s, FALSE);
  }
  for (guint bit = 0; bit < G_N_ELEMENTS (kind_names); bit++) {
    if (!(a->kinds & (1u << bit)))
      continue;
    if (s->len)
      g_string_append (s, " | ");
    g_string_append (s, kind_names[bit]);
    /* Tensor[F32, I64]; a plain Tensor takes every dtype. */
    if (bit == 0 && (arg_dtypes (a) & NN_DTYPES_ALL) != NN_DTYPES_ALL) {
      g_autofree char *d = nn_dtype_mask_to_string (arg_dtypes (a));
      g_string_append_printf (s, "[%s]", d);
    }
  }
  return g_string_free (s, FALSE);
}

/* A JSON default as Python writes it: null -> None, true -> True. */
static char *
default_text (const char *json)
{
  if (!json)
    return g_strdup ("None");
  if (strcmp (json, "null") == 0)
    return g_strdup ("None");
  if (strcmp (json, "true") == 0)
    return g_strdup ("True");
  if (strcmp (json, "false") == 0)
    return g_strdup ("False");
  return g_strdup (json);
}

char *
nnctl_signature_text (const NnLayerType *t)
{
  guint n;
  const NnArgSpec *args = nnctl_type_args (t, &n);
  GString *s = g_string_new ("(");
  gboolean star = FALSE;

  for (guint i = 0; i < n; i++) {
    const NnArgSpec *a = &args[i];
    g_autofree char *kinds = nnctl_arg_kinds_text (a);
    if (i)
      g_string_append (s, ", ");
    /* A bare * separates keyword-only parameters unless *args did. */
    if ((a->flags & NN_ARG_KW_ONLY) && !star
        && !(a->flags & NN_ARG_VAR_KEYWORD)) {
      g_string_append (s, "*, ");
      star = TRUE;
    }
    if (a->flags & NN_ARG_VARIADIC) {
      g_string_append (s, "*");
      star = TRUE;
    }
    if (a->flags & NN_ARG_VAR_KEYWORD)
      g_string_append (s, "**");
    g_string_append_printf (s, "%s: %s", a->name, kinds);
    if (a->flags & NN_ARG_OPTIONAL) {
      g_autofree char *d = default_text (a->default_json);
      g_string_append_printf (s, " = %s", d);
    }
  }
  g_string_append (s, ")");
  return g_string_free (s, FALSE);
}

void
nnctl_json_add_signature (JsonBuilder *b, const NnLayerType *t)
{
  guint n;
  const NnArgSpec *args = nnctl_type_args (t, &n);

  json_builder_begin_array (b);
  for (guint i = 0; i < n; i++) {
    const NnArgSpec *a = &args[i];
    json_builder_begin_object (b);
    json_builder_set_member_name (b, "name");
    json_builder_add_string_value (b, a->name);
    json_builder_set_member_name (b, "kinds");
    json_builder_begin_array (b);
    for (guint bit = 0; bit < G_N_ELEMENTS (kind_names); bit++)
      if (a->kinds & (1u << bit))
        json_builder_add_string_value (b, kind_names[bit]);
    json_builder_end_array (b);
    if (a->kinds & NN_ARG_TENSOR) {
      json_builder_set_member_name (b, "dtypes");
      json_builder_begin_array (b);
      for (int d = 0; d < NN_DTYPE_COUNT_; d++)
        if (arg_dtypes (a) & NN_DTYPE_BIT (d))
          json_builder_add_string_value (b, nn_dtype_name ((NnDType) d));
      json_builder_end_array (b);
    }
    json_builder_set_member_name (b, "required");
    json_builder_add_boolean_value (b, !(a->flags & (NN_ARG_OPTIONAL
                                                     | NN_ARG_VARIADIC
                                                     | NN_ARG_VAR_KEYWORD)));
    if (a->flags & NN_ARG_OPTIONAL) {
      g_autoptr (JsonNode) def = json_from_string (a->default_json
                                                     ? a->default_json : "null",
                                                   NULL);
      json_builder_set_member_name (b, "default");
      if (def)
        json_builder_add_value (b, json_node_ref (def));
      else
        json_builder_add_string_value (b, a->default_json);
    }
    json_builder_set_member_name (b, "variadic");
    json_builder_add_boolean_value (b, (a->flags & NN_ARG_VARIADIC) != 0);
    json_builder_set_member_name (b, "var_keyword");
    json_builder_add_boolean_value (b, (a->flags & NN_ARG_VAR_KEYWORD) != 0);
    json_builder_set_member_name (b, "keyword_only");
    json_builder_add_boolean_value (b, (a->flags & NN_ARG_KW_ONLY) != 0);
    json_builder_set_member_name (b, "doc");
    json_builder_add_string_value (b, a->doc);
    json_builder_end_object (b);
  }
  json_builder_end_array (b);
}

void
nnctl_json_add_aliases (JsonBuilder *b, NnRegistry *reg, const char *type_name)
{
  g_auto (GStrv) aliases = nn_registry_get_aliases (reg, type_name);

  json_builder_begin_array (b);
  for (guint i = 0; aliases[i]; i++)
    json_builder_add_string_value (b, aliases[i]);
  json_builder_end_array (b);
}

/* The forward's parameter names: the recorded input spec's, else the root
 * type's declared signature.  Returns (transfer full) (nullable). */
char **
nnctl_forward_params (NnModule *model)
{
  NnValue *spec = nn_module_get_input_spec (model);
  GPtrArray *names = g_ptr_array_new ();
  if (spec) {
    for (guint i = 0; i < nn_value_n_items (spec); i++)
      g_ptr_array_add (names, g_strdup (nn_value_dict_key (spec, i)));
  } else {
    guint n;
    const NnArgSpec *args = nnctl_type_args (nn_module_get_type (model), &n);
    for (guint i = 0; i < n; i++)
      g_ptr_array_add (names, g_strdup (args[i].name));
  }
  g_ptr_array_add (names, NULL);
  return (char **) g_ptr_array_free (names, FALSE);
}
