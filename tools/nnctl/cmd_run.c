/* nnctl run MODEL: one forward pass on given, random or bundled inputs
 * (run_inputs.c builds the arguments); prints every tensor leaf of the
 * result, top-k, captured activations and timing. */
#include "nnctl.h"
#include "run_inputs.h"

#include <math.h>
#include <string.h>

typedef struct {
  char **inputs;     /* --input FILE[:NAME], repeatable */
  char **randoms;    /* --random SPEC, repeatable */
  gboolean random_inputs; /* --random-inputs */
  char *seed;        /* --seed N */
  char *output;      /* --output FILE */
  gint topk;         /* --topk K */
  char **hooks;      /* --hook REF|GLOB, repeatable */
  char *save_acts;   /* --save-activations FILE */
  gint repeat;       /* --repeat N */
  gboolean no_fuse;  /* --no-fuse */
  gboolean no_layout; /* --no-layout */
  gboolean fusions;  /* --fusions */
  gboolean json;
} RunArgs;

static void
run_args_clear (RunArgs *a)
{
  g_strfreev (a->inputs);
  g_strfreev (a->randoms);
  g_free (a->seed);
  g_free (a->output);
  g_strfreev (a->hooks);
  g_free (a->save_acts);
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
time_runs (NnModule *model, const NnctlInputs *in, guint n, double *median,
           GError **error)
{
  g_autofree double *ms = g_new (double, n);
  for (guint i = 0; i < n; i++) {
    gint64 t0 = g_get_monotonic_time ();
    NnValue *y = nn_module_call (model, in->args, in->kwargs, error);
    if (!y)
      return FALSE;
    ms[i] = (g_get_monotonic_time () - t0) / 1000.0;
    nn_value_unref (y);
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
check_args (RunArgs *a, gint64 *seed)
{
  GError *err = NULL;

  if (a->seed && !a->randoms && !a->random_inputs)
    return nnctl_usage ("run", "--seed goes with --random or --random-inputs");
  if (a->random_inputs && (a->randoms || a->inputs))
    return nnctl_usage ("run", "--random-inputs draws every recorded input: "
                        "it does not combine with --input or --random");
  if (a->save_acts && !a->hooks)
    return nnctl_usage ("run", "--save-activations needs at least one "
                        "--hook REF|GLOB");
  if (a->topk < 0 || a->repeat < 0)
    return nnctl_usage ("run", "--topk and --repeat take N >= 1");
  if (a->seed && !nnctl_parse_int (a->seed, "--seed", 0, G_MAXUINT32, seed,
                                   &err)) {
    int rc = nnctl_usage ("run", "%s", err->message);
    g_error_free (err);
    return rc;
  }
  return NNCTL_CONTINUE;
}

/* --random-inputs: one random tensor per recorded input, shaped and typed
 * as recorded, passed by name. */
static gboolean
random_from_spec (NnModule *model, const char *model_path, NnctlInputs *in,
                  guint32 seed, GError **error)
{
  NnValue *spec = nn_module_get_input_spec (model);
  g_autoptr (GRand) rng = g_rand_new_with_seed (seed);
  if (!spec) {
    g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_NO_SHAPE,
                 "%s records no inputs: give them as --random "
                 "NAME:DTYPE:SHAPE[:LO..HI] or --random SHAPE", model_path);
    return FALSE;
  }
  for (guint i = 0; i < nn_value_n_items (spec); i++) {
    NnTensor *m = nn_value_get_tensor (nn_value_item (spec, i));
    NnTensor *t = m ? nnctl_random_tensor (m->dtype, &m->shape, FALSE, 0, 0,
                                           rng, error)
                    : NULL;
    if (!t)
      return FALSE;
    if (!nnctl_inputs_add (in, nn_value_dict_key (spec, i), FALSE, t, error))
      return FALSE;
  }
  return TRUE;
}

/* Every tensor leaf of the result, named as nn_value_foreach_tensor names
 * them under "output": "output", "output.0", "output.logits". */
typedef struct {
  GPtrArray *names;   /* (element-type utf8) */
  GPtrArray *tensors; /* (element-type NnTensor) (transfer none) */
} Leaves;

static void
collect_leaf (const char *name, NnTensor *t, gpointer data)
{
  Leaves *l = data;
  g_ptr_array_add (l->names, g_strdup (name));
  g_ptr_array_add (l->tensors, t);
}

static void
leaves_clear (Leaves *l)
{
  g_clear_pointer (&l->names, g_ptr_array_unref);
  g_clear_pointer (&l->tensors, g_ptr_array_unref);
}

static void
json_add_tensor_list (JsonBuilder *b, GPtrArray *names, GPtrArray *tensors)
{
  json_builder_begin_array (b);
  for (guint i = 0; i < tensors->len; i++) {
    NnTensor *t = tensors->pdata[i];
    json_builder_begin_object (b);
    json_builder_set_member_name (b, "name");
    json_builder_add_string_value (b, names->pdata[i]);
    json_builder_set_member_name (b, "shape");
    nnctl_json_add_shape (b, &t->shape);
    json_builder_set_member_name (b, "dtype");
    json_builder_add_string_value (b, nn_dtype_name (t->dtype));
    json_builder_end_object (b);
  }
  json_builder_end_array (b);
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
    { "input", 'i', 0, G_OPTION_ARG_FILENAME_ARRAY, &a.inputs,
      "Inputs from a safetensors file: one tensor per forward argument, by "
      "name, or tensor NAME (repeatable)", "FILE[:NAME]" },
    { "random", 'r', 0, G_OPTION_ARG_STRING_ARRAY, &a.randoms,
      "Random input NAME (floats standard normal or uniform in [LO, HI), "
      "integers uniform in [LO, HI)), or of SHAPE for a single-input model "
      "(repeatable)", "NAME:DTYPE:SHAPE[:LO..HI]|SHAPE" },
    { "random-inputs", 0, 0, G_OPTION_ARG_NONE, &a.random_inputs,
      "Random tensors for every input recorded in MODEL, as recorded", NULL },
    { "seed", 0, 0, G_OPTION_ARG_STRING, &a.seed,
      "Seed for --random (default 0)", "N" },
    { "output", 'o', 0, G_OPTION_ARG_FILENAME, &a.output,
      "Write every output tensor to a safetensors file ('output', "
      "'output.0', 'output.KEY')", "FILE" },
    { "topk", 'k', 0, G_OPTION_ARG_INT, &a.topk,
      "Print the K largest values of each batch row of the first output "
      "tensor", "K" },
    { "hook", 0, 0, G_OPTION_ARG_STRING_ARRAY, &a.hooks,
      "Capture the output of modules at REF or matching GLOB (repeatable)",
      "REF|GLOB" },
    { "save-activations", 0, 0, G_OPTION_ARG_FILENAME, &a.save_acts,
      "Save the captured outputs under their paths to a safetensors file",
      "FILE" },
    { "repeat", 'n', 0, G_OPTION_ARG_INT, &a.repeat,
      "Run N more times and print the median time", "N" },
    { "no-fuse", 0, 0, G_OPTION_ARG_NONE, &a.no_fuse,
      "Run every module on its own (no fused plan steps; as NN_FUSE=off)",
      NULL },
    { "no-layout", 0, 0, G_OPTION_ARG_NONE, &a.no_layout,
      "Make every result plain where it is made (no oneDNN blocked layouts "
      "kept between steps; as NN_DNNL_LAYOUT=off)", NULL },
    { "fusions", 0, 0, G_OPTION_ARG_NONE, &a.fusions,
      "Print the module groups the planned forward ran fused", NULL },
    { "json", 0, 0, G_OPTION_ARG_NONE, &a.json, "Machine-readable output",
      NULL },
    { NULL }
  };
  int rc = nnctl_parse (g, cmd, entries, NNCTL_TAKES_MODEL, &argc, &argv,
                        1, 1);
  g_auto (GStrv) fused = NULL;
  GError *err = NULL;
  gint64 seed = 0;
  double median = 0;
  NnctlInputs in = { 0 };
  Leaves leaves = { 0 };
  g_autoptr (NnModule) model = NULL;
  g_autoptr (NnTensor) labels = NULL;
  g_autoptr (NnValue) out = NULL;
  g_autoptr (NnCapture) cap = NULL;
  g_autoptr (JsonBuilder) b = NULL;
  g_autofree char *samples = NULL;
  g_auto (GStrv) params = NULL;
  NnTensor *first = NULL;

  nnctl_inputs_init (&in);
  if (rc != NNCTL_CONTINUE || (rc = check_args (&a, &seed)) != NNCTL_CONTINUE)
    goto done;
  if (a.no_fuse)
    nn_engine_set_fusion (FALSE);
  if (a.no_layout)
    nn_engine_set_layouts (FALSE);
  model = nnctl_load_model (g, argv[1], &err);
  if (!model) {
    rc = nnctl_fail ("run", err);
    goto done;
  }
  params = nnctl_forward_params (model);
  if (a.random_inputs) {
    if (!random_from_spec (model, argv[1], &in, (guint32) seed, &err)) {
      rc = nnctl_fail ("run", err);
      goto done;
    }
  } else if (a.inputs || a.randoms) {
    if (!nnctl_inputs_from_options (&in, nn_module_get_input_spec (model),
                                    params, a.inputs, a.randoms,
                                    (guint32) seed, &err)) {
      /* A malformed --random is a usage error, a bad file a runtime one. */
      if (g_error_matches (err, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE)) {
        rc = nnctl_usage ("run", "%s", err->message);
        g_clear_error (&err);
      } else {
        rc = nnctl_fail ("run", err);
      }
      goto done;
    }
  } else {
    NnTensor *x = bundled_samples (argv[1], &labels, &samples, &err);
    if (!x && !err) {
      rc = nnctl_usage ("run", "no input: pass --input FILE.safetensors"
                        "[:NAME] or --random SHAPE (%s has no "
                        "samples.safetensors beside it)", argv[1]);
      goto done;
    }
    if (!x) {
      rc = nnctl_fail ("run", err);
      goto done;
    }
    nnctl_inputs_add (&in, "input", TRUE, x, NULL);
  }
  nnctl_inputs_finish (&in, params);

  if (a.hooks) {
    cap = nn_capture_new (model, (const char *const *) a.hooks,
                          g_strv_length (a.hooks), &err);
    out = cap ? nn_capture_run (cap, in.args, in.kwargs, &err) : NULL;
  } else {
    out = nn_module_call (model, in.args, in.kwargs, &err);
  }
  if (!out) {
    rc = nnctl_fail ("run", err);
    goto done;
  }
  if (a.repeat > 0 && !time_runs (model, &in, a.repeat, &median, &err)) {
    rc = nnctl_fail ("run", err);
    goto done;
  }
  if (a.fusions)
    fused = nn_module_get_plan_fusions (model);
  /* A plan the first forward recorded itself (a type without infer: not
   * planned ahead, ENGINE.md) fuses from the second. */
  if (a.fusions && a.repeat == 0 && (!fused || !*fused)) {
    g_clear_pointer (&fused, g_strfreev);
    g_autoptr (NnValue) again = nn_module_call (model, in.args, in.kwargs, &err);
    if (!again) {
      rc = nnctl_fail ("run", err);
      goto done;
    }
    fused = nn_module_get_plan_fusions (model);
  }
  leaves.names = g_ptr_array_new_with_free_func (g_free);
  leaves.tensors = g_ptr_array_new ();
  nn_value_foreach_tensor (out, "output", collect_leaf, &leaves);
  first = leaves.tensors->len ? leaves.tensors->pdata[0] : NULL;
  if (a.output) {
    if (!first) {
      g_autofree char *repr = nn_value_to_string (out);
      rc = nnctl_error ("run", "--output %s: the result %s holds no tensor "
                        "to write", a.output, repr);
      goto done;
    }
    if (!nn_safetensors_write (a.output, (const char *const *) leaves.names->pdata,
                               (NnTensor *const *) leaves.tensors->pdata,
                               leaves.tensors->len, NULL, &err)) {
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
    /* The one-tensor keys of ABI 1 stay for single inputs and outputs. */
    if (in.tensors->len == 1) {
      json_builder_set_member_name (b, "input_shape");
      nnctl_json_add_shape (b, &((NnTensor *) in.tensors->pdata[0])->shape);
    }
    json_builder_set_member_name (b, "inputs");
    json_add_tensor_list (b, in.names, in.tensors);
    if (nn_value_kind (out) == NN_VALUE_TENSOR) {
      json_builder_set_member_name (b, "output_shape");
      nnctl_json_add_shape (b, &first->shape);
    }
    json_builder_set_member_name (b, "outputs");
    json_add_tensor_list (b, leaves.names, leaves.tensors);
    if (!first) {
      g_autofree char *repr = nn_value_to_string (out);
      json_builder_set_member_name (b, "output_value");
      json_builder_add_string_value (b, repr);
    }
    if (a.topk > 0 && first) {
      json_builder_set_member_name (b, "topk");
      add_topk_json (b, first, a.topk);
    }
    if (samples && first)
      print_predictions (first, labels, TRUE, b);
    if (cap)
      activations_report (cap, TRUE, b);
    if (fused) {
      json_builder_set_member_name (b, "fused");
      json_builder_begin_array (b);
      for (guint i = 0; fused[i]; i++)
        json_builder_add_string_value (b, fused[i]);
      json_builder_end_array (b);
    }
    if (a.repeat > 0) {
      json_builder_set_member_name (b, "runs");
      json_builder_add_int_value (b, a.repeat);
      json_builder_set_member_name (b, "median_ms");
      json_builder_add_double_value (b, median);
    }
    json_builder_end_object (b);
    nnctl_json_print (b);
  } else {
    if (samples) {
      g_autofree char *ins = nnctl_shape_str (&((NnTensor *) in.tensors->pdata[0])->shape);
      nnctl_info (g, "input: %s from %s\n", ins, samples);
    }
    if (!first) {
      g_autofree char *repr = nn_value_to_string (out);
      printf ("output: %s\n", repr);
    }
    for (guint i = 0; i < leaves.tensors->len; i++) {
      NnTensor *t = leaves.tensors->pdata[i];
      g_autofree char *shape = nnctl_shape_str (&t->shape);
      /* F32 is the common case: the dtype is shown only when it is not. */
      printf ("%s: %s%s%s\n", (char *) leaves.names->pdata[i], shape,
              t->dtype == NN_DTYPE_F32 ? "" : " ",
              t->dtype == NN_DTYPE_F32 ? "" : nn_dtype_name (t->dtype));
    }
    if (a.topk > 0 && first)
      print_topk (first, a.topk);
    if (samples && first)
      print_predictions (first, labels, FALSE, NULL);
    if (cap)
      activations_report (cap, FALSE, NULL);
    for (guint i = 0; fused && fused[i]; i++)
      printf ("fused: %s\n", fused[i]);
    if (fused && !fused[0])
      printf ("fused: nothing\n");
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
  leaves_clear (&leaves);
  nnctl_inputs_clear (&in);
  run_args_clear (&a);
  return rc;
}
