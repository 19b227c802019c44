/* nn-scenario: the nnkit side of the surgery scenarios (issue 4) on a
 * model exported from PyTorch.  It edits and runs the model through the
 * public API only and writes what scenarios.py compares against PyTorch.
 *
 *   nn-scenario MODEL [--seed N] [--replace REF=JSON]... [--expect-refused]
 *               [--save OUT] [--text F] [--modules F]
 *               [--tensor NAME=F]... [--glob PATTERN]...
 *               [--input IN --output OUT [--hook REF]... [--activations F]
 *                [--capture REF]... [--capture-file F]]
 *
 * --replace builds the new module from JSON, initialises it with
 * nn_module_reset_parameters (seed N, N+1, ... per replacement) and runs
 * nn_surgery_replace (shape-checked against the recorded input shape).
 * It prints "replaced REF PATH OLDCLASS NEWCLASS" per success.  With
 * --expect-refused every replacement must fail: the driver prints
 * "refused REF: MESSAGE" and checks in-process that the descriptor, the
 * text, every state_dict byte, the flattened indices and the hooks of the
 * target are exactly as before.
 * --hook registers plain forward hooks that keep "INPUT:PATH" outputs;
 * --capture uses nn_capture (saved after the last input, under paths).
 * Errors are one line on stderr, "nn-scenario: ...", exit status 1.
 */
#include <nnkit/nnkit.h>

#include <stdio.h>
#include <string.h>

typedef struct {
  gint seed;
  char **replace;
  gboolean expect_refused;
  char *save;
  char *text;
  char *modules;
  char **tensors;
  char **globs;
  char *input;
  char *output;
  char **hooks;
  char *activations;
  char **captures;
  char *capture_file;
} Options;

static int
fail (GError *error, const char *what)
{
  fprintf (stderr, "nn-scenario: %s%s%s\n", what ? what : "", what ? ": " : "",
           error ? error->message : "failed");
  g_clear_error (&error);
  return 1;
}

static gboolean
write_text (const char *path, const char *text, GError **error)
{
  return g_file_set_contents (path, text, -1, error);
}

/* "INDEX\tPATH\tCLASS" per named_modules() entry, PyTorch's numbering. */
static char *
modules_listing (NnModule *root)
{
  GString *s = g_string_new (NULL);
  g_autoptr (GPtrArray) mods = nn_module_named_modules (root);
  for (guint i = 0; i < mods->len; i++) {
    NnNamedItem *it = mods->pdata[i];
    g_string_append_printf (s, "%" G_GINT64_FORMAT "\t%s\t%s\n",
                            nn_module_index_of (root, it->module), it->name,
                            nn_module_get_class_name (it->module));
  }
  return g_string_free (s, FALSE);
}

/* Everything a refused surgery must leave as it was. */
typedef struct {
  char *descriptor;
  char *text;
  char *listing;
  GByteArray *weights;
  GPtrArray *tensors; /* the tensor objects themselves */
} Snapshot;

static Snapshot *
snapshot_take (NnModule *root)
{
  Snapshot *s = g_new0 (Snapshot, 1);
  s->descriptor = nn_descriptor_to_data (root, NULL);
  s->text = nn_module_to_string (root);
  s->listing = modules_listing (root);
  s->weights = g_byte_array_new ();
  s->tensors = g_ptr_array_new ();
  g_autoptr (GPtrArray) sd = nn_module_state_dict (root);
  for (guint i = 0; i < sd->len; i++) {
    NnNamedItem *it = sd->pdata[i];
    g_byte_array_append (s->weights, (const guint8 *) it->name, strlen (it->name) + 1);
    g_byte_array_append (s->weights, it->tensor->data, nn_tensor_nbytes (it->tensor));
    g_ptr_array_add (s->tensors, it->tensor);
  }
  return s;
}

static void
snapshot_free (Snapshot *s)
{
  g_free (s->descriptor);
  g_free (s->text);
  g_free (s->listing);
  g_byte_array_unref (s->weights);
  g_ptr_array_unref (s->tensors);
  g_free (s);
}

/* NULL if @root is as in @a, else what differs. */
static const char *
snapshot_diff (Snapshot *a, NnModule *root)
{
  Snapshot *b = snapshot_take (root);
  const char *what = NULL;
  if (strcmp (a->descriptor, b->descriptor) != 0)
    what = "descriptor";
  else if (strcmp (a->text, b->text) != 0)
    what = "print text";
  else if (strcmp (a->listing, b->listing) != 0)
    what = "named_modules indices";
  else if (a->weights->len != b->weights->len ||
           memcmp (a->weights->data, b->weights->data, a->weights->len) != 0)
    what = "state_dict bytes";
  else if (a->tensors->len != b->tensors->len ||
           memcmp (a->tensors->pdata, b->tensors->pdata,
                   a->tensors->len * sizeof (gpointer)) != 0)
    what = "tensor objects";
  snapshot_free (b);
  return what;
}

static gboolean
count_hook (NnModule *m, const char *path, const NnValue *args,
            const NnValue *kwargs, NnValue **output, gpointer user_data,
            GError **error)
{
  return TRUE;
}

static char *
hook_ids (NnModule *m)
{
  GString *s = g_string_new (NULL);
  g_autoptr (GPtrArray) hs = nn_module_list_hooks (m);
  for (guint i = 0; i < hs->len; i++)
    g_string_append_printf (s, "%" G_GUINT64_FORMAT " ", ((NnHookInfo *) hs->pdata[i])->id);
  return g_string_free (s, FALSE);
}

/* One --replace.  Returns FALSE on a driver failure (not on an expected
 * refusal). */
static gboolean
do_replace (NnRegistry *reg, NnModule *root, const char *spec, guint32 seed,
            gboolean expect_refused, GError **error)
{
  const char *eq = strchr (spec, '=');
  if (!eq) {
    g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                 "--replace '%s': expected REF=JSON", spec);
    return FALSE;
  }
  g_autofree char *ref = g_strndup (spec, eq - spec);
  g_autofree char *path = NULL;
  NnModule *old = nn_module_lookup_ref (root, ref, &path, error);
  if (!old)
    return FALSE;
  g_autoptr (NnModule) fresh = nn_descriptor_load_module_data (reg, eq + 1, -1, "--replace", error);
  if (!fresh)
    return FALSE;
  nn_module_reset_parameters (fresh, seed);
  g_autoptr (NnModule) keep = nn_module_ref (old);
  g_autofree char *old_class = g_strdup (nn_module_get_class_name (old));

  if (!expect_refused) {
    if (!nn_surgery_replace (root, ref, fresh, NULL, error))
      return FALSE;
    printf ("replaced %s %s %s %s\n", ref, path, old_class, nn_module_get_class_name (fresh));
    return TRUE;
  }

  /* A hook on the target must still be there, on the same object. */
  NnHookHandle *h = nn_module_add_forward_hook (old, count_hook, NULL, NULL, "scenario", 0, error);
  if (!h)
    return FALSE;
  g_autofree char *ids = hook_ids (old);
  Snapshot *before = snapshot_take (root);
  GError *refusal = NULL;
  gboolean ok = FALSE;
  if (nn_surgery_replace (root, ref, fresh, NULL, &refusal)) {
    g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_FAILED,
                 "replace %s was expected to be refused, but succeeded", ref);
  } else {
    const char *diff = snapshot_diff (before, root);
    g_autofree char *ids_after = hook_ids (old);
    g_autofree char *fresh_ids = hook_ids (fresh);
    NnModule *now = nn_module_lookup_path (root, path, NULL);
    if (diff)
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_FAILED,
                   "refused replace %s changed the model: %s differs", ref, diff);
    else if (now != old || strcmp (ids, ids_after) != 0 || *fresh_ids)
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_FAILED,
                   "refused replace %s moved the module or its hooks", ref);
    else {
      printf ("refused %s: %s\n", ref, refusal->message);
      ok = TRUE;
    }
  }
  g_clear_error (&refusal);
  snapshot_free (before);
  nn_hook_handle_remove (h);
  nn_hook_handle_free (h);
  return ok;
}

/* --- forward with hooks -------------------------------------------------- */

typedef struct {
  GPtrArray *names;   /* char* */
  GPtrArray *tensors; /* NnTensor* */
  const char *input;  /* name of the input being run */
  const char *path;   /* canonical path the hook was registered for */
} HookStore;

static gboolean
keep_hook (NnModule *m, const char *path, const NnValue *args,
           const NnValue *kwargs, NnValue **output, gpointer user_data,
           GError **error)
{
  HookStore *st = user_data;
  /* The path the core reports must be the module's own. */
  if (strcmp (path, st->path) != 0) {
    g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_FAILED,
                 "hook registered on '%s' called with path '%s'", st->path, path);
    return FALSE;
  }
  g_ptr_array_add (st->names, g_strdup_printf ("%s:%s", st->input, path));
  NnTensor *t = nn_value_get_tensor (*output);
  if (!t) {
    g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_FAILED,
                 "hook on '%s': the output is not a tensor", path);
    return FALSE;
  }
  g_ptr_array_add (st->tensors, nn_tensor_ref (t));
  return TRUE;
}

static int
run_inputs (NnModule *root, Options *o)
{
  GError *error = NULL;
  g_autoptr (NnSafetensors) in = nn_safetensors_open (o->input, &error);
  if (!in)
    return fail (error, NULL);
  g_autoptr (GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GPtrArray) outs = g_ptr_array_new_with_free_func ((GDestroyNotify) nn_tensor_unref);
  g_autoptr (GPtrArray) hook_names = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GPtrArray) hook_outs = g_ptr_array_new_with_free_func ((GDestroyNotify) nn_tensor_unref);
  g_autoptr (GPtrArray) handles = g_ptr_array_new ();
  g_autoptr (GPtrArray) stores = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GPtrArray) paths = g_ptr_array_new_with_free_func (g_free);
  int status = 0;
  NnCapture *cap = NULL;

  for (guint i = 0; o->hooks && o->hooks[i]; i++) {
    char *path = NULL;
    NnModule *m = nn_module_lookup_ref (root, o->hooks[i], &path, &error);
    if (!m) {
      status = fail (error, "--hook");
      goto out;
    }
    g_ptr_array_add (paths, path);
    HookStore *st = g_new0 (HookStore, 1);
    st->names = hook_names;
    st->tensors = hook_outs;
    st->path = path;
    g_ptr_array_add (stores, st);
    NnHookHandle *h = nn_module_add_forward_hook (m, keep_hook, st, NULL, "scenario", 0, &error);
    if (!h) {
      status = fail (error, "--hook");
      goto out;
    }
    g_ptr_array_add (handles, h);
  }
  if (o->captures) {
    cap = nn_capture_new (root, (const char *const *) o->captures,
                          g_strv_length (o->captures), &error);
    if (!cap) {
      status = fail (error, "--capture");
      goto out;
    }
  }
  for (guint i = 0; i < nn_safetensors_n_tensors (in); i++) {
    const char *name = nn_safetensors_name_at (in, i);
    g_autoptr (NnTensor) x = nn_safetensors_get (in, name, NN_DTYPE_F32, &error);
    if (!x) {
      status = fail (error, o->input);
      goto out;
    }
    for (guint k = 0; k < stores->len; k++)
      ((HookStore *) stores->pdata[k])->input = name;
    NnTensor *y = NULL;
    if (cap) {
      g_autoptr (NnValue) args = nn_value_new_tuple ();
      nn_value_append (args, nn_value_new_tensor (x));
      g_autoptr (NnValue) out = nn_capture_run (cap, args, NULL, &error);
      if (out && !(y = nn_value_get_tensor (out)))
        g_set_error (&error, NN_MODULE_ERROR, NN_MODULE_ERROR_FAILED,
                     "the model returned a non-tensor");
      else if (y)
        nn_tensor_ref (y);
    } else {
      y = nn_module_forward (root, x, &error);
    }
    if (!y) {
      status = fail (error, name);
      goto out;
    }
    g_ptr_array_add (names, g_strdup (name));
    g_ptr_array_add (outs, y);
  }
  if (!nn_safetensors_write (o->output, (const char *const *) names->pdata,
                             (NnTensor *const *) outs->pdata, outs->len, NULL, &error)) {
    status = fail (error, NULL);
    goto out;
  }
  if (o->activations &&
      !nn_safetensors_write (o->activations, (const char *const *) hook_names->pdata,
                             (NnTensor *const *) hook_outs->pdata, hook_outs->len, NULL,
                             &error)) {
    status = fail (error, NULL);
    goto out;
  }
  if (cap && o->capture_file && !nn_capture_save (cap, o->capture_file, &error))
    status = fail (error, NULL);
out:
  for (guint i = 0; i < handles->len; i++) {
    nn_hook_handle_remove (handles->pdata[i]);
    nn_hook_handle_free (handles->pdata[i]);
  }
  nn_capture_free (cap);
  return status;
}

/* --- the rest of the outputs ---------------------------------------------- */

static int
write_tensor (NnModule *root, const char *spec)
{
  GError *error = NULL;
  const char *eq = strchr (spec, '=');
  if (!eq) {
    fprintf (stderr, "nn-scenario: --tensor '%s': expected NAME=FILE\n", spec);
    return 1;
  }
  g_autofree char *name = g_strndup (spec, eq - spec);
  NnTensor *t = nn_module_lookup_tensor (root, name, &error);
  if (!t)
    return fail (error, "--tensor");
  const char *names[] = { name };
  if (!nn_safetensors_write (eq + 1, names, &t, 1, NULL, &error))
    return fail (error, NULL);
  return 0;
}

static int
print_glob (NnModule *root, const char *pattern)
{
  GError *error = NULL;
  g_autoptr (GPtrArray) hits = nn_module_glob (root, pattern, "parameters", &error);
  if (!hits)
    return fail (error, "--glob");
  for (guint i = 0; i < hits->len; i++)
    printf ("glob %s %s\n", pattern, ((NnNamedItem *) hits->pdata[i])->name);
  return 0;
}

int
main (int argc, char **argv)
{
  Options o = { 0 };
  GOptionEntry entries[] = {
    { "seed", 0, 0, G_OPTION_ARG_INT, &o.seed, "Seed of the first new module", "N" },
    { "replace", 0, 0, G_OPTION_ARG_STRING_ARRAY, &o.replace, "Replace REF by JSON", "REF=JSON" },
    { "expect-refused", 0, 0, G_OPTION_ARG_NONE, &o.expect_refused, "Replacements must fail", NULL },
    { "save", 0, 0, G_OPTION_ARG_FILENAME, &o.save, "Save the model", "OUT" },
    { "text", 0, 0, G_OPTION_ARG_FILENAME, &o.text, "Write print(model)", "F" },
    { "modules", 0, 0, G_OPTION_ARG_FILENAME, &o.modules, "Write the index listing", "F" },
    { "tensor", 0, 0, G_OPTION_ARG_STRING_ARRAY, &o.tensors, "Write one tensor", "NAME=F" },
    { "glob", 0, 0, G_OPTION_ARG_STRING_ARRAY, &o.globs, "Print parameter names", "PATTERN" },
    { "input", 0, 0, G_OPTION_ARG_FILENAME, &o.input, "Inputs (safetensors)", "IN" },
    { "output", 0, 0, G_OPTION_ARG_FILENAME, &o.output, "Outputs (safetensors)", "OUT" },
    { "hook", 0, 0, G_OPTION_ARG_STRING_ARRAY, &o.hooks, "Forward hook on REF", "REF" },
    { "activations", 0, 0, G_OPTION_ARG_FILENAME, &o.activations, "Hook outputs", "F" },
    { "capture", 0, 0, G_OPTION_ARG_STRING_ARRAY, &o.captures, "Capture REF or glob", "REF" },
    { "capture-file", 0, 0, G_OPTION_ARG_FILENAME, &o.capture_file, "Save captures", "F" },
    { NULL },
  };
  GError *error = NULL;
  g_autoptr (GOptionContext) ctx = g_option_context_new ("MODEL");
  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!g_option_context_parse (ctx, &argc, &argv, &error))
    return fail (error, NULL);
  if (argc != 2 || (o.input && !o.output)) {
    fprintf (stderr, "nn-scenario: usage: nn-scenario MODEL [OPTIONS] (see --help)\n");
    return 1;
  }

  int status = 0;
  NnRegistry *reg = nn_registry_new ();
  NnModule *root = NULL;
  if (!nn_registry_load_default (reg, &error)) {
    status = fail (error, "plugins");
    goto out;
  }
  root = nn_model_load (reg, argv[1], NULL, FALSE, &error);
  if (!root) {
    status = fail (error, NULL);
    goto out;
  }
  for (guint i = 0; o.replace && o.replace[i]; i++)
    if (!do_replace (reg, root, o.replace[i], (guint32) o.seed + i, o.expect_refused, &error)) {
      status = fail (error, "--replace");
      goto out;
    }
  if (o.save && !nn_model_save (root, o.save, &error)) {
    status = fail (error, NULL);
    goto out;
  }
  if (o.text) {
    g_autofree char *t = nn_module_to_string (root);
    g_autofree char *tn = g_strconcat (t, "\n", NULL);
    if (!write_text (o.text, tn, &error)) {
      status = fail (error, NULL);
      goto out;
    }
  }
  if (o.modules) {
    g_autofree char *l = modules_listing (root);
    if (!write_text (o.modules, l, &error)) {
      status = fail (error, NULL);
      goto out;
    }
  }
  for (guint i = 0; o.tensors && o.tensors[i] && !status; i++)
    status = write_tensor (root, o.tensors[i]);
  for (guint i = 0; o.globs && o.globs[i] && !status; i++)
    status = print_glob (root, o.globs[i]);
  if (!status && o.input)
    status = run_inputs (root, &o);
out:
  if (root)
    nn_module_unref (root);
  nn_registry_unref (reg);
  g_strfreev (o.replace);
  g_strfreev (o.tensors);
  g_strfreev (o.globs);
  g_strfreev (o.hooks);
  g_strfreev (o.captures);
  g_free (o.save);
  g_free (o.text);
  g_free (o.modules);
  g_free (o.input);
  g_free (o.output);
  g_free (o.activations);
  g_free (o.capture_file);
  return status;
}
