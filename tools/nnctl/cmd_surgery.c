/* nnctl replace / insert / delete / wrap: shape-checked model surgery.
 *
 * Each command loads MODEL, applies one edit through surgery.h (atomic:
 * a failed edit leaves the tree as it was) and only then writes OUT with
 * nn_model_save (temp file, then rename).  So on any failure nothing is
 * written and the input is untouched. */
#include "nnctl.h"

#include <string.h>

typedef struct {
  char *out;          /* -o OUT */
  char *shape;        /* --input-shape */
  char *weights_from; /* --weights-from FILE */
  char *seed;         /* --seed N */
  gint64 seed_val;    /* parsed --seed, 0 by default */
  gboolean no_check;  /* --no-shape-check */
  /* insert */
  char *index;
  char *name;
  /* wrap */
  gboolean before;
} SurgeryArgs;

static void
surgery_args_clear (SurgeryArgs *a)
{
  g_free (a->out);
  g_free (a->shape);
  g_free (a->weights_from);
  g_free (a->seed);
  g_free (a->index);
  g_free (a->name);
}

#define COMMON_ENTRIES(a)                                                    \
  { "output", 'o', 0, G_OPTION_ARG_FILENAME, &(a).out,                       \
    "Write the changed model to OUT (.json: descriptor + weights beside it;" \
    " .safetensors: one file); required", "OUT" },                           \
  { "input-shape", 's', 0, G_OPTION_ARG_STRING, &(a).shape,                  \
    "Check shapes for this input (default: the shape recorded in MODEL)",    \
    "SHAPE" },                                                               \
  { "no-shape-check", 0, 0, G_OPTION_ARG_NONE, &(a).no_check,                \
    "Skip the shape check (not recommended)", NULL }

#define NEW_MODULE_ENTRIES(a)                                                \
  { "weights-from", 'w', 0, G_OPTION_ARG_FILENAME, &(a).weights_from,        \
    "Load the new module's weights (its own state_dict keys) from FILE",     \
    "FILE" },                                                                \
  { "seed", 0, 0, G_OPTION_ARG_STRING, &(a).seed,                            \
    "Initialise the new module as PyTorch does, from seed N (default 0)",    \
    "N" }

/* Common checks after option parsing; fills @opts and @shape. */
static int
prepare (const char *what, SurgeryArgs *a, NnSurgeryOptions *opts,
         NnShape *shape)
{
  GError *err = NULL;

  if (!a->out)
    return nnctl_usage (what, "-o OUT is required (see 'nnctl %s --help')",
                        what);
  if (a->weights_from && a->seed)
    return nnctl_usage (what, "--weights-from and --seed exclude each other");
  if (a->seed && !nnctl_parse_int (a->seed, "--seed", 0, G_MAXUINT32,
                                   &a->seed_val, &err)) {
    int rc = nnctl_usage (what, "%s", err->message);
    g_error_free (err);
    return rc;
  }
  memset (opts, 0, sizeof *opts);
  opts->struct_size = sizeof *opts;
  if (a->no_check)
    opts->flags |= NN_SURGERY_NO_SHAPE_CHECK;
  if (a->shape) {
    if (!nnctl_parse_shape (a->shape, shape, &err)) {
      int rc = nnctl_usage (what, "--input-shape: %s", err->message);
      g_error_free (err);
      return rc;
    }
    opts->input_shape = shape;
  }
  return NNCTL_CONTINUE;
}

static NnModule *
load_checked (NnctlGlobal *g, const char *what, const char *path,
              const SurgeryArgs *a, int *rc)
{
  GError *err = NULL;
  NnModule *m = nnctl_load_model (g, path, &err);

  if (!m) {
    *rc = nnctl_fail (what, err);
    return NULL;
  }
  /* Any recorded input spec will do, several inputs included: the core
   * checks the change by inferring the whole model on it. */
  if (!a->shape && !a->no_check && !nn_module_get_input_spec (m)) {
    *rc = nnctl_usage (what, "%s records no inputs to check the change "
                       "against: pass --input-shape SHAPE (or "
                       "--no-shape-check)", path);
    nn_module_unref (m);
    return NULL;
  }
  return m;
}

/* Builds NEW and gives it weights: from --weights-from, or initialised as
 * PyTorch initialises the type. */
static NnModule *
new_module (NnctlGlobal *g, const char *spec, const SurgeryArgs *a,
            GError **error)
{
  NnModule *m = nnctl_load_new_module (g, spec, error);
  if (!m)
    return NULL;
  if (a->weights_from) {
    g_autoptr (NnSafetensors) st = nn_safetensors_open (a->weights_from,
                                                        error);
    if (!st || !nn_module_load_state_dict (m, st, NULL, NULL, error)) {
      nn_module_unref (m);
      return NULL;
    }
  } else {
    nn_module_reset_parameters (m, (guint32) a->seed_val);
  }
  return m;
}

static int
finish (NnctlGlobal *g, const char *what, NnModule *model,
        const SurgeryArgs *a, const NnShape *shape, const char *done)
{
  GError *err = NULL;

  /* Record a given shape when the model had no inputs recorded, so later
   * edits and `summary` can use it. */
  if (a->shape && !nn_module_get_input_spec (model))
    nn_module_set_input_shape (model, shape);
  if (!nn_model_save (model, a->out, &err))
    return nnctl_fail (what, err);
  nnctl_info (g, "%s; wrote %s\n", done, a->out);
  return NNCTL_EXIT_OK;
}

int
nnctl_cmd_replace (NnctlGlobal *g, const NnctlCommand *cmd, int argc,
                   char **argv)
{
  SurgeryArgs a = { 0 };
  const GOptionEntry entries[] = {
    COMMON_ENTRIES (a), NEW_MODULE_ENTRIES (a), { NULL }
  };
  NnSurgeryOptions opts;
  NnShape shape;
  GError *err = NULL;
  g_autoptr (NnModule) model = NULL;
  g_autoptr (NnModule) repl = NULL;
  g_autofree char *path = NULL;
  g_autofree char *done = NULL;
  g_autofree char *old_class = NULL;
  int rc = nnctl_parse (g, cmd, entries, NNCTL_TAKES_MODEL, &argc, &argv,
                        3, 3);

  if (rc != NNCTL_CONTINUE || (rc = prepare ("replace", &a, &opts, &shape))
                              != NNCTL_CONTINUE)
    goto out;
  model = load_checked (g, "replace", argv[1], &a, &rc);
  if (!model)
    goto out;
  NnModule *old = nnctl_lookup (model, argv[2], &path, &err);
  if (!old) {
    rc = nnctl_fail ("replace", err);
    goto out;
  }
  old_class = g_strdup (nn_module_get_class_name (old));
  repl = new_module (g, argv[3], &a, &err);
  if (!repl || !nn_surgery_replace (model, argv[2], repl, &opts, &err)) {
    rc = nnctl_fail ("replace", err);
    goto out;
  }
  done = g_strdup_printf ("replaced %s (%s -> %s)",
                                           nnctl_path_display (path),
                                           old_class,
                                           nn_module_get_class_name (repl));
  rc = finish (g, "replace", model, &a, &shape, done);
out:
  surgery_args_clear (&a);
  return rc;
}

int
nnctl_cmd_insert (NnctlGlobal *g, const NnctlCommand *cmd, int argc,
                  char **argv)
{
  SurgeryArgs a = { 0 };
  const GOptionEntry entries[] = {
    COMMON_ENTRIES (a), NEW_MODULE_ENTRIES (a),
    { "index", 'i', 0, G_OPTION_ARG_STRING, &a.index,
      "Insert before position I (negative counts from the end; default: "
      "append)", "I" },
    { "name", 'n', 0, G_OPTION_ARG_STRING, &a.name,
      "Name of the new child (default: next integer key; ModuleDict needs "
      "one)", "NAME" },
    { NULL }
  };
  NnSurgeryOptions opts;
  NnShape shape;
  GError *err = NULL;
  gint64 index = 0;
  g_autoptr (NnModule) model = NULL;
  g_autoptr (NnModule) item = NULL;
  g_autofree char *path = NULL;
  g_autofree char *done = NULL;
  int rc = nnctl_parse (g, cmd, entries, NNCTL_TAKES_MODEL, &argc, &argv,
                        3, 3);

  if (rc != NNCTL_CONTINUE || (rc = prepare ("insert", &a, &opts, &shape))
                              != NNCTL_CONTINUE)
    goto out;
  if (a.index && !nnctl_parse_int (a.index, "--index", G_MININT32,
                                   G_MAXINT32, &index, &err)) {
    rc = nnctl_usage ("insert", "%s", err->message);
    g_clear_error (&err);
    goto out;
  }
  model = load_checked (g, "insert", argv[1], &a, &rc);
  if (!model)
    goto out;
  if (!nnctl_lookup (model, argv[2], &path, &err)) {
    rc = nnctl_fail ("insert", err);
    goto out;
  }
  item = new_module (g, argv[3], &a, &err);
  if (!item
      || !(a.index ? nn_surgery_insert (model, argv[2], index, a.name, item,
                                        &opts, &err)
                   : nn_surgery_append (model, argv[2], a.name, item, &opts,
                                        &err))) {
    rc = nnctl_fail ("insert", err);
    goto out;
  }
  done = g_strdup_printf ("inserted %s into %s",
                                           nn_module_get_class_name (item),
                                           nnctl_path_display (path));
  rc = finish (g, "insert", model, &a, &shape, done);
out:
  surgery_args_clear (&a);
  return rc;
}

int
nnctl_cmd_delete (NnctlGlobal *g, const NnctlCommand *cmd, int argc,
                  char **argv)
{
  SurgeryArgs a = { 0 };
  const GOptionEntry entries[] = { COMMON_ENTRIES (a), { NULL } };
  NnSurgeryOptions opts;
  NnShape shape;
  GError *err = NULL;
  g_autoptr (NnModule) model = NULL;
  g_autofree char *path = NULL;
  g_autofree char *done = NULL;
  g_autofree char *old_class = NULL;
  int rc = nnctl_parse (g, cmd, entries, NNCTL_TAKES_MODEL, &argc, &argv,
                        2, 2);

  if (rc != NNCTL_CONTINUE || (rc = prepare ("delete", &a, &opts, &shape))
                              != NNCTL_CONTINUE)
    goto out;
  model = load_checked (g, "delete", argv[1], &a, &rc);
  if (!model)
    goto out;
  NnModule *old = nnctl_lookup (model, argv[2], &path, &err);
  if (!old) {
    rc = nnctl_fail ("delete", err);
    goto out;
  }
  old_class = g_strdup (nn_module_get_class_name (old));
  if (!nn_surgery_delete (model, argv[2], &opts, &err)) {
    rc = nnctl_fail ("delete", err);
    goto out;
  }
  done = g_strdup_printf ("deleted %s (%s)",
                                           nnctl_path_display (path),
                                           old_class);
  rc = finish (g, "delete", model, &a, &shape, done);
out:
  surgery_args_clear (&a);
  return rc;
}

int
nnctl_cmd_wrap (NnctlGlobal *g, const NnctlCommand *cmd, int argc,
                char **argv)
{
  SurgeryArgs a = { 0 };
  const GOptionEntry entries[] = {
    COMMON_ENTRIES (a), NEW_MODULE_ENTRIES (a),
    { "before", 'b', 0, G_OPTION_ARG_NONE, &a.before,
      "Make it Sequential(NEW, X): NEW runs first", NULL },
    { NULL }
  };
  NnSurgeryOptions opts;
  NnShape shape;
  GError *err = NULL;
  g_autoptr (NnModule) model = NULL;
  g_autoptr (NnModule) other = NULL;
  g_autofree char *path = NULL;
  g_autofree char *done = NULL;
  int rc = nnctl_parse (g, cmd, entries, NNCTL_TAKES_MODEL, &argc, &argv,
                        3, 3);

  if (rc != NNCTL_CONTINUE || (rc = prepare ("wrap", &a, &opts, &shape))
                              != NNCTL_CONTINUE)
    goto out;
  model = load_checked (g, "wrap", argv[1], &a, &rc);
  if (!model)
    goto out;
  if (!nnctl_lookup (model, argv[2], &path, &err)) {
    rc = nnctl_fail ("wrap", err);
    goto out;
  }
  other = new_module (g, argv[3], &a, &err);
  if (!other || !nn_surgery_wrap (model, argv[2], other, a.before, &opts,
                                  &err)) {
    rc = nnctl_fail ("wrap", err);
    goto out;
  }
  done = g_strdup_printf ("wrapped %s as Sequential(%s)",
                                           nnctl_path_display (path),
                                           a.before ? "NEW, X" : "X, NEW");
  rc = finish (g, "wrap", model, &a, &shape, done);
out:
  surgery_args_clear (&a);
  return rc;
}
