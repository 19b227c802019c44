/* nnctl run MODEL: one forward pass on a given, random or bundled input;
 * prints the output shape, top-k, captured activations and timing. */
#include "nnctl.h"

#include <math.h>
#include <string.h>

typedef struct {
  char *input;       /* --input FILE[:NAME] */
  char *random;      /* --random SHAPE */
  char *seed;        /* --seed N */
  char *output;      /* --output FILE */
  gint topk;         /* --topk K */
  char **hooks;      /* --hook REF|GLOB, repeatable */
  char *save_acts;   /* --save-activations FILE */
  gint repeat;       /* --repeat N */
  gboolean json;
} RunArgs;

static void
run_args_clear (RunArgs *a)
{
  g_free (a->input);
  g_free (a->random);
  g_free (a->seed);
  g_free (a->output);
  g_strfreev (a->hooks);
  g_free (a->save_acts);
}

static char *
list_names (NnSafetensors *st)
{
  GString *s = g_string_new (NULL);
  for (guint i = 0; i < nn_safetensors_n_tensors (st); i++)
    g_string_append_printf (s, "%s%s", i ? ", " : "",
                            nn_safetensors_name_at (st, i));
  return g_string_free (s, FALSE);
}

/* FILE or FILE:NAME.  A NAME is needed only when the file holds several
 * tensors and none is called "input". */
static NnTensor *
read_input (const char *spec, GError **error)
{
  g_autofree char *file = g_strdup (spec);
  const char *name = NULL;
  g_autoptr (NnSafetensors) st = NULL;

  if (!g_file_test (file, G_FILE_TEST_EXISTS)) {
    char *colon = strrchr (file, ':');
    if (colon) {
      *colon = '\0';
      name = colon + 1;
    }
  }
  st = nn_safetensors_open (file, error);
  if (!st)
    return NULL;
  if (!name) {
    if (nn_safetensors_n_tensors (st) == 1)
      name = nn_safetensors_name_at (st, 0);
    else if (nn_safetensors_get_info (st, "input", NULL))
      name = "input";
    else {
      g_autofree char *names = list_names (st);
      g_set_error (error, NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_NOT_FOUND,
                   "%s: holds %u tensors (%s): say which with %s:NAME", file,
                   nn_safetensors_n_tensors (st), names, file);
      return NULL;
    }
  }
  if (!nn_safetensors_get_info (st, name, NULL)) {
    g_autofree char *names = list_names (st);
    g_set_error (error, NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_NOT_FOUND,
                 "%s: no tensor '%s' (it has: %s)", file, name, names);
    return NULL;
  }
  return nn_safetensors_get (st, name, NN_DTYPE_F32, error);
}

/* Standard normal values, as torch.randn, from a seeded generator. */
static NnTensor *
random_input (const NnShape *shape, guint32 seed, GError **error)
{
  g_autoptr (GRand) rng = g_rand_new_with_seed (seed);
  g_autofree char *text = nnctl_shape_str (shape);
  gint64 n = 1;
  float *x;

  /* A shape typed by the user may be huge: fail cleanly, not abort. */
  for (guint i = 0; i < shape->ndim; i++)
    if (shape->dims[i] > G_MAXINT64 / 4 / n) {
      n = -1;
      break;
    } else {
      n *= shape->dims[i];
    }
  x = n < 0 || (guint64) n > G_MAXSIZE / 4 ? NULL
                                          : g_try_malloc ((gsize) n * 4);
  if (!x) {
    g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_INVALID,
                 "--random %s: cannot allocate the input tensor", text);
    return NULL;
  }
  NnTensor *t = nn_tensor_new_borrowed (NN_DTYPE_F32, shape, x, FALSE,
                                        g_free, x);
  for (gint64 i = 0; i < n; i += 2) {
    double u1 = g_rand_double (rng), u2 = g_rand_double (rng);
    double r = sqrt (-2.0 * log (1.0 - u1));
    x[i] = (float) (r * cos (2 * G_PI * u2));
    if (i + 1 < n)
      x[i + 1] = (float) (r * sin (2 * G_PI * u2));
  }
  return t;
}

/* Row @row of the output viewed as [rows, cols]: indices of the @k largest. */
static void
top_k (const float *v, gint64 cols, guint k, gint64 *idx)
{
  for (guint j = 0; j < k; j++) {
    gint64 best = -1;
    for (gint64 c = 0; c < cols; c++) {
      gboolean used = FALSE;
      for (guint q = 0; q < j; q++)
        used |= idx[q] == c;
      if (!used && (best < 0 || v[c] > v[best]))
        best = c;
    }
    idx[j] = best;
  }
}

static void
out_rows (const NnTensor *t, gint64 *rows, gint64 *cols)
{
  gint64 n = nn_tensor_numel (t);
  *rows = t->shape.ndim >= 2 ? t->shape.dims[0] : 1;
  *cols = *rows > 0 ? n / *rows : 0;
}

static void
add_topk_json (JsonBuilder *b, NnTensor *out, guint k)
{
  gint64 rows, cols;
  const float *v = nn_tensor_f32 (out);
  g_autofree gint64 *idx = NULL;

  if (!v) {
    json_builder_add_null_value (b); /* not F32: nothing to rank */
    return;
  }
  out_rows (out, &rows, &cols);
  k = MIN ((gint64) k, cols);
  idx = g_new0 (gint64, MAX (k, 1));
  json_builder_begin_array (b);
  for (gint64 r = 0; r < rows; r++) {
    top_k (v + r * cols, cols, k, idx);
    json_builder_begin_array (b);
    for (guint j = 0; j < k; j++) {
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "index");
      json_builder_add_int_value (b, idx[j]);
      json_builder_set_member_name (b, "value");
      json_builder_add_double_value (b, v[r * cols + idx[j]]);
      json_builder_end_object (b);
    }
    json_builder_end_array (b);
  }
  json_builder_end_array (b);
}

static void
print_topk (NnTensor *out, guint k)
{
  gint64 rows, cols;
  const float *v = nn_tensor_f32 (out);
  g_autofree gint64 *idx = NULL;

  if (!v)
    return; /* not F32: nothing to rank */
  out_rows (out, &rows, &cols);
  k = MIN ((gint64) k, cols);
  idx = g_new0 (gint64, MAX (k, 1));
  for (gint64 r = 0; r < rows; r++) {
    top_k (v + r * cols, cols, k, idx);
    printf ("top-%u [%" G_GINT64_FORMAT "]:", k, r);
    for (guint j = 0; j < k; j++)
      printf (" %" G_GINT64_FORMAT " (%.4g)", idx[j], v[r * cols + idx[j]]);
    printf ("\n");
  }
}

static int
compare_double (gconstpointer a, gconstpointer b)
{
  double x = *(const double *) a, y = *(const double *) b;
  return x < y ? -1 : x > y;
}

/* Median wall time of @n forwards, in milliseconds. */
static gboolean
time_runs (NnModule *model, NnTensor *input, guint n, double *median,
           GError **error)
{
  g_autofree double *ms = g_new (double, n);
  for (guint i = 0; i < n; i++) {
    gint64 t0 = g_get_monotonic_time ();
    NnTensor *y = nn_module_forward (model, input, error);
    if (!y)
      return FALSE;
    ms[i] = (g_get_monotonic_time () - t0) / 1000.0;
    nn_tensor_unref (y);
  }
  qsort (ms, n, sizeof (double), compare_double);
  *median = n % 2 ? ms[n / 2] : (ms[n / 2 - 1] + ms[n / 2]) / 2;
  return TRUE;
}

/* The bundled samples beside the model: "input" and optional "labels". */
static NnTensor *
bundled_samples (const char *model_path, NnTensor **labels, char **file_out,
                 GError **error)
{
  g_autofree char *dir = g_path_get_dirname (model_path);
  g_autofree char *file = g_build_filename (dir, "samples.safetensors", NULL);
  g_autoptr (NnSafetensors) st = NULL;
  NnTensor *x;

  if (!g_file_test (file, G_FILE_TEST_EXISTS))
    return NULL;
  st = nn_safetensors_open (file, error);
  if (!st)
    return NULL;
  x = nn_safetensors_get (st, "input", NN_DTYPE_F32, error);
  if (x && nn_safetensors_get_info (st, "labels", NULL))
    *labels = nn_safetensors_get (st, "labels", NN_DTYPE_I64, NULL);
  *file_out = g_steal_pointer (&file);
  return x;
}

static guint
print_predictions (NnTensor *out, NnTensor *labels, gboolean json,
                   JsonBuilder *b)
{
  gint64 rows, cols, idx;
  const float *v = nn_tensor_f32 (out);
  const gint64 *lab = labels ? labels->data : NULL;
  guint correct = 0;

  if (!v)
    return 0;
  out_rows (out, &rows, &cols);
  if (labels && nn_tensor_numel (labels) != rows)
    lab = NULL;
  if (json) {
    json_builder_set_member_name (b, "predictions");
    json_builder_begin_array (b);
  }
  for (gint64 r = 0; r < rows; r++) {
    top_k (v + r * cols, cols, 1, &idx);
    if (lab && lab[r] == idx)
      correct++;
    if (json)
      json_builder_add_int_value (b, idx);
    else if (lab)
      printf ("sample %2" G_GINT64_FORMAT ": predicted %" G_GINT64_FORMAT
              ", label %" G_GINT64_FORMAT "%s\n", r, idx, lab[r],
              lab[r] == idx ? "" : "  (wrong)");
    else
      printf ("sample %2" G_GINT64_FORMAT ": predicted %" G_GINT64_FORMAT
              "\n", r, idx);
  }
  if (json)
    json_builder_end_array (b);
  if (lab) {
    if (json) {
      json_builder_set_member_name (b, "accuracy");
      json_builder_add_double_value (b, rows ? (double) correct / rows : 0);
    } else {
      printf ("accuracy: %u/%" G_GINT64_FORMAT " = %.1f%%\n", correct, rows,
              rows ? 100.0 * correct / rows : 0.0);
    }
  }
  return correct;
}

static int
check_args (RunArgs *a, NnShape *shape, gint64 *seed)
{
  GError *err = NULL;

  if (a->input && a->random)
    return nnctl_usage ("run", "--input and --random exclude each other");
  if (a->seed && !a->random)
    return nnctl_usage ("run", "--seed goes with --random SHAPE");
  if (a->save_acts && !a->hooks)
    return nnctl_usage ("run", "--save-activations needs at least one "
                        "--hook REF|GLOB");
  if (a->topk < 0 || a->repeat < 0)
    return nnctl_usage ("run", "--topk and --repeat take N >= 1");
  if (a->random && !nnctl_parse_shape (a->random, shape, &err)) {
    int rc = nnctl_usage ("run", "--random: %s", err->message);
    g_error_free (err);
    return rc;
  }
  if (a->seed && !nnctl_parse_int (a->seed, "--seed", 0, G_MAXUINT32, seed,
                                   &err)) {
    int rc = nnctl_usage ("run", "%s", err->message);
    g_error_free (err);
    return rc;
  }
  return NNCTL_CONTINUE;
}

static void
activations_report (NnCapture *cap, gboolean json, JsonBuilder *b)
{
  GPtrArray *outs = nn_capture_get_outputs (cap);

  if (json) {
    json_builder_set_member_name (b, "activations");
    json_builder_begin_array (b);
  }
  for (guint i = 0; i < outs->len; i++) {
    NnNamedItem *it = outs->pdata[i];
    if (json) {
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "name");
      json_builder_add_string_value (b, it->name);
      json_builder_set_member_name (b, "shape");
      nnctl_json_add_shape (b, &it->tensor->shape);
      json_builder_end_object (b);
    } else {
      g_autofree char *s = nnctl_shape_str (&it->tensor->shape);
      printf ("activation %s: %s\n", nnctl_path_display (it->name), s);
    }
  }
  if (json)
    json_builder_end_array (b);
}

int
nnctl_cmd_run (NnctlGlobal *g, const NnctlCommand *cmd, int argc,
               char **argv)
{
  RunArgs a = { 0 };
  const GOptionEntry entries[] = {
    { "input", 'i', 0, G_OPTION_ARG_FILENAME, &a.input,
      "Input tensor from a safetensors file (NAME needed if it holds "
      "several, unless one is 'input')", "FILE[:NAME]" },
    { "random", 'r', 0, G_OPTION_ARG_STRING, &a.random,
      "Standard normal input of this shape, e.g. 1,3,224,224", "SHAPE" },
    { "seed", 0, 0, G_OPTION_ARG_STRING, &a.seed,
      "Seed for --random (default 0)", "N" },
    { "output", 'o', 0, G_OPTION_ARG_FILENAME, &a.output,
      "Write the output tensor as 'output' to a safetensors file", "FILE" },
    { "topk", 'k', 0, G_OPTION_ARG_INT, &a.topk,
      "Print the K largest outputs of each batch row", "K" },
    { "hook", 0, 0, G_OPTION_ARG_STRING_ARRAY, &a.hooks,
      "Capture the output of modules at REF or matching GLOB (repeatable)",
      "REF|GLOB" },
    { "save-activations", 0, 0, G_OPTION_ARG_FILENAME, &a.save_acts,
      "Save the captured outputs under their paths to a safetensors file",
      "FILE" },
    { "repeat", 'n', 0, G_OPTION_ARG_INT, &a.repeat,
      "Run N more times and print the median time", "N" },
    { "json", 0, 0, G_OPTION_ARG_NONE, &a.json, "Machine-readable output",
      NULL },
    { NULL }
  };
  int rc = nnctl_parse (g, cmd, entries, NNCTL_TAKES_MODEL, &argc, &argv,
                        1, 1);
  GError *err = NULL;
  NnShape shape;
  gint64 seed = 0;
  double median = 0;
  g_autoptr (NnModule) model = NULL;
  g_autoptr (NnTensor) input = NULL;
  g_autoptr (NnTensor) labels = NULL;
  g_autoptr (NnTensor) out = NULL;
  g_autoptr (NnCapture) cap = NULL;
  g_autoptr (JsonBuilder) b = NULL;
  g_autofree char *samples = NULL;

  if (rc != NNCTL_CONTINUE || (rc = check_args (&a, &shape, &seed))
                              != NNCTL_CONTINUE)
    goto done;
  model = nnctl_load_model (g, argv[1], &err);
  if (!model) {
    rc = nnctl_fail ("run", err);
    goto done;
  }
  if (a.input)
    input = read_input (a.input, &err);
  else if (a.random)
    input = random_input (&shape, (guint32) seed, &err);
  else {
    input = bundled_samples (argv[1], &labels, &samples, &err);
    if (!input && !err) {
      rc = nnctl_usage ("run", "no input: pass --input FILE.safetensors"
                        "[:NAME] or --random SHAPE (%s has no "
                        "samples.safetensors beside it)", argv[1]);
      goto done;
    }
  }
  if (!input) {
    rc = nnctl_fail ("run", err);
    goto done;
  }

  if (a.hooks) {
    cap = nn_capture_new (model, (const char *const *) a.hooks,
                          g_strv_length (a.hooks), &err);
    out = cap ? nn_capture_run (cap, input, &err) : NULL;
  } else {
    out = nn_module_forward (model, input, &err);
  }
  if (!out) {
    rc = nnctl_fail ("run", err);
    goto done;
  }
  if (a.repeat > 0 && !time_runs (model, input, a.repeat, &median, &err)) {
    rc = nnctl_fail ("run", err);
    goto done;
  }
  if (a.output) {
    const char *names[] = { "output" };
    NnTensor *ts[] = { out };
    if (!nn_safetensors_write (a.output, names, ts, 1, NULL, &err)) {
      rc = nnctl_fail ("run", err);
      goto done;
    }
  }
  if (a.save_acts && !nn_capture_save (cap, a.save_acts, &err)) {
    rc = nnctl_fail ("run", err);
    goto done;
  }

  if (a.json) {
    b = json_builder_new ();
    json_builder_begin_object (b);
    json_builder_set_member_name (b, "input_shape");
    nnctl_json_add_shape (b, &input->shape);
    json_builder_set_member_name (b, "output_shape");
    nnctl_json_add_shape (b, &out->shape);
    if (a.topk > 0) {
      json_builder_set_member_name (b, "topk");
      add_topk_json (b, out, a.topk);
    }
    if (samples)
      print_predictions (out, labels, TRUE, b);
    if (cap)
      activations_report (cap, TRUE, b);
    if (a.repeat > 0) {
      json_builder_set_member_name (b, "runs");
      json_builder_add_int_value (b, a.repeat);
      json_builder_set_member_name (b, "median_ms");
      json_builder_add_double_value (b, median);
    }
    json_builder_end_object (b);
    nnctl_json_print (b);
  } else {
    g_autofree char *ins = nnctl_shape_str (&input->shape);
    g_autofree char *outs = nnctl_shape_str (&out->shape);
    if (samples)
      nnctl_info (g, "input: %s from %s\n", ins, samples);
    printf ("output: %s\n", outs);
    if (a.topk > 0)
      print_topk (out, a.topk);
    if (samples)
      print_predictions (out, labels, FALSE, NULL);
    if (cap)
      activations_report (cap, FALSE, NULL);
    if (a.repeat > 0)
      printf ("median time: %.3f ms over %d runs (%d threads)\n", median,
              a.repeat, nn_get_num_threads ());
    if (a.output)
      nnctl_info (g, "wrote output to %s\n", a.output);
    if (a.save_acts)
      nnctl_info (g, "wrote activations to %s\n", a.save_acts);
  }
  rc = NNCTL_EXIT_OK;
done:
  run_args_clear (&a);
  return rc;
}
