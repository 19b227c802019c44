/* nnctl: helpers shared by the commands: option parsing, one-line errors,
 * lazy registry, model loading, references, shapes, tables and JSON. */
#include "nnctl.h"

#include <stdarg.h>
#include <string.h>
#include <errno.h>

/* --- errors --------------------------------------------------------------- */

/* Folds a multi-line message (a load report) into one line, so that every
 * error stays the single "nnctl: what: why" line scripts can rely on. */
static char *
one_line (const char *msg)
{
  GString *s = g_string_new (NULL);
  g_auto (GStrv) lines = g_strsplit (msg ? msg : "unknown error", "\n", -1);
  for (guint i = 0; lines[i]; i++) {
    const char *l = g_strstrip (lines[i]);
    if (!*l)
      continue;
    if (s->len)
      g_string_append (s, s->str[s->len - 1] == ':' ? " " : "; ");
    g_string_append (s, l);
  }
  for (gsize i = 0; i < s->len; i++)
    if (s->str[i] == '\t' || s->str[i] == '\r')
      s->str[i] = ' ';
  return g_string_free (s, FALSE);
}

int
nnctl_fail (const char *what, GError *error)
{
  g_autofree char *msg = one_line (error ? error->message : NULL);
  fflush (stdout);
  fprintf (stderr, "nnctl: %s: %s\n", what, msg);
  if (error)
    g_error_free (error);
  return NNCTL_EXIT_ERROR;
}

static void
vreport (const char *what, const char *fmt, va_list ap)
{
  g_autofree char *raw = g_strdup_vprintf (fmt, ap);
  g_autofree char *msg = one_line (raw);
  fflush (stdout);
  fprintf (stderr, "nnctl: %s: %s\n", what, msg);
}

int
nnctl_usage (const char *what, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  vreport (what, fmt, ap);
  va_end (ap);
  return NNCTL_EXIT_USAGE;
}

int
nnctl_error (const char *what, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  vreport (what, fmt, ap);
  va_end (ap);
  return NNCTL_EXIT_ERROR;
}

void
nnctl_info (NnctlGlobal *g, const char *fmt, ...)
{
  va_list ap;
  if (g->quiet)
    return;
  va_start (ap, fmt);
  vprintf (fmt, ap);
  va_end (ap);
}

/* --- option parsing ------------------------------------------------------- */

static GOptionContext *
command_context (NnctlGlobal *g, const NnctlCommand *cmd,
                 const GOptionEntry *entries, guint flags, gboolean *help,
                 char **init_seed_str)
{
  const GOptionEntry help_entries[] = {
    { "help", 'h', 0, G_OPTION_ARG_NONE, help, "Show this help", NULL },
    { NULL }
  };
  const GOptionEntry model_entries[] = {
    { "weights", 0, 0, G_OPTION_ARG_FILENAME, &g->weights,
      "Weights of a descriptor MODEL (default: MODEL's stem + .safetensors)",
      "FILE" },
    { "weights-key", 0, 0, G_OPTION_ARG_STRING, &g->weights_key,
      "Entry of a .pth checkpoint dict holding the state_dict "
      "(default: the only one)", "NAME" },
    { "keep-dtype", 0, 0, G_OPTION_ARG_NONE, &g->keep_dtype,
      "Keep F16/BF16 weights as stored (mmapped, converted per use) in "
      "Linear, Conv2d and BatchNorm2d (default: convert to F32 at load)",
      NULL },
    { "init-seed", 0, 0, G_OPTION_ARG_STRING, init_seed_str,
      "MODEL has no weights file: initialise the weights as PyTorch does, "
      "from seed N", "N" },
    { NULL }
  };
  g_autofree char *prg = g_strdup_printf ("nnctl %s", cmd->name);
  GOptionContext *ctx = g_option_context_new (cmd->args);

  /* The usage line reads "nnctl show [OPTION…] MODEL". */
  g_set_prgname (prg);
  g_option_context_set_help_enabled (ctx, FALSE);
  g_option_context_set_summary (ctx, cmd->summary);
  if (cmd->description)
    g_option_context_set_description (ctx, cmd->description);
  if (entries)
    g_option_context_add_main_entries (ctx, entries, NULL);
  if (flags & NNCTL_TAKES_MODEL)
    g_option_context_add_main_entries (ctx, model_entries, NULL);
  g_option_context_add_main_entries (ctx, help_entries, NULL);
  return ctx;
}

int
nnctl_parse (NnctlGlobal *g, const NnctlCommand *cmd,
             const GOptionEntry *entries, guint flags, int *argc,
             char ***argv, int min_args, int max_args)
{
  gboolean help = FALSE;
  g_autofree char *seed_str = NULL;
  GError *err = NULL;
  g_autoptr (GOptionContext) ctx = command_context (g, cmd, entries, flags,
                                                    &help, &seed_str);

  if (!g_option_context_parse (ctx, argc, argv, &err)) {
    int rc = nnctl_usage (cmd->name, "%s (see 'nnctl %s --help')",
                          err->message, cmd->name);
    g_error_free (err);
    return rc;
  }
  if (help) {
    g_autofree char *text = g_option_context_get_help (ctx, TRUE, NULL);
    fputs (text, stdout);
    return NNCTL_EXIT_OK;
  }
  if (seed_str) {
    if (!nnctl_parse_int (seed_str, "--init-seed", 0, G_MAXUINT32,
                          &g->init_seed, &err)) {
      int rc = nnctl_usage (cmd->name, "%s", err->message);
      g_error_free (err);
      return rc;
    }
    g->has_init_seed = TRUE;
  }
  /* A lone "--" is left in argv by GLib when it ends the options. */
  for (int i = 1; i < *argc; i++)
    if (strcmp ((*argv)[i], "--") == 0) {
      memmove (&(*argv)[i], &(*argv)[i + 1], (*argc - i) * sizeof (char *));
      (*argc)--;
      break;
    }
  int n = *argc - 1;
  if (n < min_args)
    return nnctl_usage (cmd->name, "missing argument: expected %s "
                        "(see 'nnctl %s --help')", cmd->args, cmd->name);
  if (max_args >= 0 && n > max_args)
    return nnctl_usage (cmd->name, "unexpected argument '%s' "
                        "(see 'nnctl %s --help')", (*argv)[1 + max_args],
                        cmd->name);
  return NNCTL_CONTINUE;
}

gboolean
nnctl_parse_int (const char *text, const char *what, gint64 min, gint64 max,
                 gint64 *out, GError **error)
{
  char *end = NULL;
  gint64 v;

  errno = 0;
  v = g_ascii_strtoll (text, &end, 10);
  if (!*text || *end || errno == ERANGE || v < min || v > max) {
    g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                 "%s: expected an integer in [%" G_GINT64_FORMAT ", %"
                 G_GINT64_FORMAT "], found '%s'", what, min, max, text);
    return FALSE;
  }
  *out = v;
  return TRUE;
}

gboolean
nnctl_parse_shape (const char *text, NnShape *out, GError **error)
{
  return nn_shape_parse (text, out, error);
}

/* --- registry and models -------------------------------------------------- */

NnRegistry *
nnctl_registry (NnctlGlobal *g, GError **error)
{
  if (g->reg)
    return g->reg;

  NnRegistry *reg = nn_registry_new ();
  for (guint i = 0; g->plugin_paths && g->plugin_paths[i]; i++) {
    const char *dir = g->plugin_paths[i];
    if (!g_file_test (dir, G_FILE_TEST_IS_DIR)) {
      g_set_error (error, NN_PLUGIN_ERROR, NN_PLUGIN_ERROR_IO,
                   "--plugin-path %s: not a directory", dir);
      nn_registry_unref (reg);
      return NULL;
    }
    nn_registry_add_path (reg, dir);
  }
  if (!nn_registry_load_default (reg, error)) {
    nn_registry_unref (reg);
    return NULL;
  }
  g->reg = reg;
  return reg;
}

gboolean
nnctl_has_suffix (const char *path, const char *suffix)
{
  gsize n = strlen (path), k = strlen (suffix);
  return n >= k && strcmp (path + n - k, suffix) == 0;
}

NnModule *
nnctl_load_model (NnctlGlobal *g, const char *path, GError **error)
{
  NnRegistry *reg;
  gboolean init = FALSE;
  NnModule *m;

  if (!g_file_test (path, G_FILE_TEST_EXISTS)) {
    g_set_error (error, NN_DESCRIPTOR_ERROR, NN_DESCRIPTOR_ERROR_IO,
                 "%s: no such file", path);
    return NULL;
  }
  if (g_file_test (path, G_FILE_TEST_IS_DIR)) {
    g_set_error (error, NN_DESCRIPTOR_ERROR, NN_DESCRIPTOR_ERROR_IO,
                 "%s: is a directory, expected a model file", path);
    return NULL;
  }
  /* A descriptor without weights is fine only when the user asked for
   * initialised weights; otherwise say what is missing and how to go on. */
  if (!g->weights && !nnctl_has_suffix (path, ".safetensors")) {
    g_autofree char *wpath = nn_model_weights_path_for (path);
    if (!g_file_test (wpath, G_FILE_TEST_EXISTS)) {
      if (!g->has_init_seed) {
        g_set_error (error, NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_IO,
                     "%s: no weights file %s beside it (pass --weights FILE,"
                     " or --init-seed N to initialise the weights)",
                     path, wpath);
        return NULL;
      }
      init = TRUE;
    }
  }
  reg = nnctl_registry (g, error);
  if (!reg)
    return NULL;
  NnWeightsOpenOptions wopts = { sizeof wopts,
                                  g->keep_dtype ? NN_WEIGHTS_KEEP_DTYPE : 0,
                                  g->weights_key, NULL, NULL };
  m = nn_model_load_with_options (reg, path, g->weights, &wopts, init,
                                  error);
  if (m && init)
    nn_module_reset_parameters (m, (guint32) g->init_seed);
  return m;
}

NnModule *
nnctl_load_structure (NnctlGlobal *g, const char *path, GError **error)
{
  NnRegistry *reg;

  if (!g_file_test (path, G_FILE_TEST_IS_REGULAR)) {
    g_set_error (error, NN_DESCRIPTOR_ERROR, NN_DESCRIPTOR_ERROR_IO,
                 g_file_test (path, G_FILE_TEST_EXISTS)
                 ? "%s: not a regular file, expected a model file"
                 : "%s: no such file", path);
    return NULL;
  }
  reg = nnctl_registry (g, error);
  if (!reg)
    return NULL;
  if (!nnctl_has_suffix (path, ".safetensors"))
    return nn_descriptor_load_file (reg, path, error);

  /* A single-file model: only the header is read; the tensors stay on
   * disk. */
  g_autoptr (NnSafetensors) st = nn_safetensors_open (path, error);
  const char *desc;
  if (!st)
    return NULL;
  desc = nn_safetensors_get_metadata (st, NNCTL_DESCRIPTOR_KEY);
  if (!desc) {
    g_set_error (error, NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_NOT_FOUND,
                 "%s: no '%s' entry in __metadata__: weights only, not a "
                 "single-file nnkit model (pass the descriptor .json and "
                 "--weights %s)", path, NNCTL_DESCRIPTOR_KEY, path);
    return NULL;
  }
  return nn_descriptor_load_data (reg, desc, -1, path, error);
}

NnModule *
nnctl_lookup (NnModule *root, const char *ref, char **path_out,
              GError **error)
{
  char *path = NULL;
  NnModule *m = nn_module_lookup_ref (root, ref, &path, error);

  if (!m)
    return NULL;
  if (!path)
    path = g_strdup (ref[0] == '#' ? "" : ref);
  if (path_out)
    *path_out = path;
  else
    g_free (path);
  return m;
}

NnModule *
nnctl_load_new_module (NnctlGlobal *g, const char *spec, GError **error)
{
  NnRegistry *reg = nnctl_registry (g, error);
  g_autofree char *data = NULL;
  gsize len = 0;
  GError *err = NULL;

  if (!reg)
    return NULL;
  if (spec[0] == '@') {
    if (!g_file_get_contents (spec + 1, &data, &len, &err)) {
      g_set_error (error, NN_DESCRIPTOR_ERROR, NN_DESCRIPTOR_ERROR_IO,
                   "%s: %s", spec + 1, err->message);
      g_error_free (err);
      return NULL;
    }
    return nn_descriptor_load_module_data (reg, data, len, spec + 1, error);
  }
  return nn_descriptor_load_module_data (reg, spec, -1, "inline JSON", error);
}

/* --- output helpers ------------------------------------------------------- */

char *
nnctl_shape_str (const NnShape *s)
{
  return nn_shape_to_string (s);
}

char *
nnctl_count_str (gint64 n)
{
  g_autofree char *digits = g_strdup_printf ("%" G_GINT64_FORMAT,
                                             n < 0 ? -n : n);
  GString *s = g_string_new (n < 0 ? "-" : "");
  gsize len = strlen (digits);

  for (gsize i = 0; i < len; i++) {
    if (i > 0 && (len - i) % 3 == 0)
      g_string_append_c (s, ',');
    g_string_append_c (s, digits[i]);
  }
  return g_string_free (s, FALSE);
}

const char *
nnctl_path_display (const char *path)
{
  return path && *path ? path : "(root)";
}

void
nnctl_json_add_shape (JsonBuilder *b, const NnShape *s)
{
  json_builder_begin_array (b);
  for (guint i = 0; i < s->ndim; i++)
    json_builder_add_int_value (b, s->dims[i]);
  json_builder_end_array (b);
}

/* json-glib writes a double whose shortest form has no '.' with ".0"
 * appended, also after an exponent: 1e-08 becomes "1e-08.0", which no
 * JSON reader accepts (an eps of 1e-08 in a schema or a config).  Drops
 * such a ".0" outside strings, in place. */
static char *
json_fix_numbers (char *text)
{
  gboolean in_string = FALSE, exponent = FALSE;
  char *w = text;
  for (const char *r = text; *r; r++) {
    char c = *r;
    if (in_string) {
      if (c == '\\' && r[1]) {
        *w++ = c;
        c = *++r;
      } else if (c == '"') {
        in_string = FALSE;
      }
    } else if (c == '"') {
      in_string = TRUE;
      exponent = FALSE;
    } else if (c == 'e' || c == 'E') {
      exponent = g_ascii_isdigit (r[1]) || r[1] == '-' || r[1] == '+';
    } else if (exponent && c == '.' && r[1] == '0' && !g_ascii_isdigit (r[2])) {
      r++;
      exponent = FALSE;
      continue;
    } else if (!g_ascii_isdigit (c) && c != '-' && c != '+') {
      exponent = FALSE;
    }
    *w++ = c;
  }
  *w = '\0';
  return text;
}

char *
nnctl_json_node_text (JsonNode *node, gboolean pretty)
{
  g_autoptr (JsonGenerator) gen = json_generator_new ();
  json_generator_set_pretty (gen, pretty);
  if (pretty)
    json_generator_set_indent (gen, 2);
  json_generator_set_root (gen, node);
  return json_fix_numbers (json_generator_to_data (gen, NULL));
}

void
nnctl_json_print (JsonBuilder *b)
{
  g_autoptr (JsonNode) root = json_builder_get_root (b);
  g_autofree char *text = nnctl_json_node_text (root, TRUE);
  printf ("%s\n", text);
}

gint64
nnctl_own_param_count (NnModule *m)
{
  gint64 n = 0;
  for (guint i = 0; i < nn_module_n_parameters (m); i++)
    n += nn_tensor_numel (nn_module_parameter_at (m, i, NULL));
  return n;
}

guint64
nnctl_count_macs (NnModule *m, const NnValue *args, const NnValue *kwargs,
                  const NnValue *out)
{
  const NnLayerType *t = nn_module_get_type (m);
  guint n;

  if (!t || !t->count_macs || !out)
    return 0;
  /* The slot takes the call's arguments bound to the type's signature, as
   * the core bound them for infer(); binding them again here is cheap and
   * cannot fail for a call inference has just accepted. */
  const NnArgSpec *specs = nnctl_type_args (t, &n);
  NnArgs *bound = nn_args_bind_signature (specs, n, NULL, args, kwargs, NULL);
  if (!bound)
    return 0;
  guint64 macs = t->count_macs (m, bound, out);
  nn_args_free (bound);
  return macs;
}

/* --- text tables ---------------------------------------------------------- */

struct _NnctlTable {
  guint n_cols;
  GPtrArray *rows; /* (element-type GStrv) header first */
};

NnctlTable *
nnctl_table_new (guint n_cols, const char *const *headers)
{
  NnctlTable *t = g_new0 (NnctlTable, 1);
  t->n_cols = n_cols;
  t->rows = g_ptr_array_new_with_free_func ((GDestroyNotify) g_strfreev);
  char **row = g_new0 (char *, n_cols + 1);
  for (guint i = 0; i < n_cols; i++)
    row[i] = g_strdup (headers[i]);
  g_ptr_array_add (t->rows, row);
  return t;
}

void
nnctl_table_add (NnctlTable *t, ...)
{
  va_list ap;
  char **row = g_new0 (char *, t->n_cols + 1);

  va_start (ap, t);
  for (guint i = 0; i < t->n_cols; i++) {
    const char *cell = va_arg (ap, const char *);
    row[i] = g_strdup (cell ? cell : "");
  }
  va_end (ap);
  g_ptr_array_add (t->rows, row);
}

void
nnctl_table_print (NnctlTable *t, FILE *out, guint right_align)
{
  g_autofree gsize *width = g_new0 (gsize, t->n_cols);

  for (guint r = 0; r < t->rows->len; r++) {
    char **row = t->rows->pdata[r];
    for (guint c = 0; c < t->n_cols; c++)
      width[c] = MAX (width[c], (gsize) g_utf8_strlen (row[c], -1));
  }
  for (guint r = 0; r < t->rows->len; r++) {
    char **row = t->rows->pdata[r];
    GString *line = g_string_new (NULL);
    for (guint c = 0; c < t->n_cols; c++) {
      gsize pad = width[c] - g_utf8_strlen (row[c], -1);
      gboolean right = (right_align >> c) & 1;
      if (c > 0)
        g_string_append (line, "  ");
      if (right)
        for (gsize k = 0; k < pad; k++)
          g_string_append_c (line, ' ');
      g_string_append (line, row[c]);
      if (!right && c + 1 < t->n_cols)
        for (gsize k = 0; k < pad; k++)
          g_string_append_c (line, ' ');
    }
    while (line->len && line->str[line->len - 1] == ' ')
      g_string_truncate (line, line->len - 1);
    fprintf (out, "%s\n", line->str);
    g_string_free (line, TRUE);
  }
}

void
nnctl_table_free (NnctlTable *t)
{
  if (!t)
    return;
  g_ptr_array_unref (t->rows);
  g_free (t);
}
