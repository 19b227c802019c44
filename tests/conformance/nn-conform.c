/* nn-conform: the nnkit side of the PyTorch conformance tests and of the
 * forward benchmark.  It loads a model through the public API only and
 * writes what the Python driver compares against PyTorch: the text of the
 * model, the named_modules / state_dict listing, forward outputs, and the
 * state_dict as nnkit saves it.
 *
 *   nn-conform MODEL [--repr F] [--listing F] [--input IN --output OUT]
 *                    [--inputs CASES --output OUT]
 *                    [--save-state-dict F] [--threads N]
 *                    [--repeat N [--warmup N] [--profile]] [--print-rss]
 *
 * Errors are one line on stderr, "nn-conform: ...", exit status 1.
 */
#include <nnkit/nnkit.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
  char *repr_path;
  char *listing_path;
  char *input_path;
  char *cases_path;
  char *output_path;
  char *state_dict_path;
  int threads;
  int repeat;
  int warmup;
  gboolean print_rss;
  gboolean profile;
} Options;

/* --profile: time spent in leaf modules, summed per class name.  Global
 * hooks see every module call; a stack pairs each pre-hook with its
 * forward hook, since calls nest. */
typedef struct {
  GArray *starts;     /* gint64 start times of the calls in progress */
  GHashTable *totals; /* class name -> gint64 microseconds, leaves only */
  GHashTable *calls;  /* class name -> number of calls */
} Profile;

static gboolean
profile_pre (NnModule *m, const char *path, NnValue **args,
             NnValue **kwargs, gpointer user_data, GError **error)
{
  Profile *p = user_data;
  gint64 now = g_get_monotonic_time ();
  g_array_append_val (p->starts, now);
  return TRUE;
}

static gboolean
profile_post (NnModule *m, const char *path, const NnValue *args,
              const NnValue *kwargs, NnValue **output, gpointer user_data,
              GError **error)
{
  Profile *p = user_data;
  gint64 now = g_get_monotonic_time ();
  g_return_val_if_fail (p->starts->len > 0, TRUE);
  gint64 start = g_array_index (p->starts, gint64, p->starts->len - 1);
  g_array_set_size (p->starts, p->starts->len - 1);
  if (nn_module_n_children (m) > 0)
    return TRUE;
  const char *cls = nn_module_get_class_name (m);
  gint64 total = GPOINTER_TO_SIZE (g_hash_table_lookup (p->totals, cls));
  g_hash_table_insert (p->totals, (gpointer) cls,
                       GSIZE_TO_POINTER ((gsize) (total + now - start)));
  guint calls = GPOINTER_TO_UINT (g_hash_table_lookup (p->calls, cls));
  g_hash_table_insert (p->calls, (gpointer) cls, GUINT_TO_POINTER (calls + 1));
  return TRUE;
}

/* Prints "profile CLASS MS_PER_FORWARD CALLS_PER_FORWARD" per leaf class. */
static void
profile_print (Profile *p, int n_forwards)
{
  GHashTableIter it;
  gpointer key, value;
  g_hash_table_iter_init (&it, p->totals);
  while (g_hash_table_iter_next (&it, &key, &value))
    printf ("profile %s %.3f %u\n", (const char *) key,
            (double) GPOINTER_TO_SIZE (value) / 1000.0 / n_forwards,
            GPOINTER_TO_UINT (g_hash_table_lookup (p->calls, key)) / n_forwards);
}

static gboolean
write_text (const char *path, const char *text, GError **error)
{
  return g_file_set_contents (path, text, -1, error);
}

static void
append_shape (GString *s, const NnShape *shape)
{
  g_string_append_c (s, '[');
  for (guint i = 0; i < shape->ndim; i++)
    g_string_append_printf (s, "%s%" G_GINT64_FORMAT, i ? ", " : "",
                            shape->dims[i]);
  g_string_append_c (s, ']');
}

/* One line per module ("module\tPATH\tCLASS") in named_modules order, then
 * one per state_dict entry ("tensor\tKEY\tDTYPE\t[SHAPE]"). */
static gboolean
write_listing (NnModule *model, const char *path, GError **error)
{
  g_autoptr (GString) s = g_string_new (NULL);
  g_autoptr (GPtrArray) mods = nn_module_named_modules (model);
  for (guint i = 0; i < mods->len; i++) {
    NnNamedItem *it = g_ptr_array_index (mods, i);
    g_string_append_printf (s, "module\t%s\t%s\n", it->name,
                            nn_module_get_class_name (it->module));
  }
  g_autoptr (GPtrArray) sd = nn_module_state_dict (model);
  for (guint i = 0; i < sd->len; i++) {
    NnNamedItem *it = g_ptr_array_index (sd, i);
    g_string_append_printf (s, "tensor\t%s\t%s\t", it->name,
                            nn_dtype_name (it->tensor->dtype));
    append_shape (s, &it->tensor->shape);
    g_string_append_c (s, '\n');
  }
  return write_text (path, s->str, error);
}

static int
compare_doubles (const void *a, const void *b)
{
  double x = *(const double *) a, y = *(const double *) b;
  return (x > y) - (x < y);
}

static double
cpu_time_ms (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double) ts.tv_sec * 1000.0 + (double) ts.tv_nsec / 1e6;
}

/* Prints "LABEL v1 v2 ..." and "median_LABEL X"; sorts @v. */
static void
print_series (const char *label, double *v, int n)
{
  printf ("%s", label);
  for (int i = 0; i < n; i++)
    printf (" %.3f", v[i]);
  printf ("\n");
  qsort (v, n, sizeof *v, compare_doubles);
  printf ("median_%s %.3f\n", label,
          n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2.0);
}

/* Times @repeat forwards of @input after @warmup untimed ones.  Prints
 * wall-clock times ("times_ms", "median_times_ms") and the process CPU
 * time of each forward ("cpu_ms", "median_cpu_ms": all threads summed, and
 * not inflated by waiting for a busy machine's CPUs). */
static gboolean
time_forward (NnModule *model, NnTensor *input, int warmup, int repeat,
              GError **error)
{
  g_autofree double *ms = g_new0 (double, repeat);
  g_autofree double *cpu = g_new0 (double, repeat);
  for (int i = 0; i < warmup + repeat; i++) {
    double c0 = cpu_time_ms ();
    gint64 t0 = g_get_monotonic_time ();
    NnTensor *out = nn_module_forward (model, input, error);
    gint64 t1 = g_get_monotonic_time ();
    double c1 = cpu_time_ms ();
    if (!out)
      return FALSE;
    nn_tensor_unref (out);
    if (i >= warmup) {
      ms[i - warmup] = (double) (t1 - t0) / 1000.0;
      cpu[i - warmup] = c1 - c0;
    }
  }
  print_series ("times_ms", ms, repeat);
  print_series ("cpu_ms", cpu, repeat);
  return TRUE;
}

/* Runs the model on every tensor of @in_path (converted to F32) and saves
 * each output under the input's name; or times the first one. */
static gboolean
run_inputs (NnModule *model, const Options *o, GError **error)
{
  g_autoptr (NnSafetensors) st = nn_safetensors_open (o->input_path, error);
  if (!st)
    return FALSE;
  guint n = nn_safetensors_n_tensors (st);
  if (n == 0) {
    g_set_error (error, NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_NOT_FOUND,
                 "%s: holds no input tensor", o->input_path);
    return FALSE;
  }
  if (o->repeat > 0) {
    g_autoptr (NnTensor) x = nn_safetensors_get (st, nn_safetensors_name_at (st, 0),
                                                 NN_DTYPE_F32, error);
    if (!x)
      return FALSE;
    if (!o->profile)
      return time_forward (model, x, o->warmup, o->repeat, error);
    Profile p = { g_array_new (FALSE, FALSE, sizeof (gint64)),
                  g_hash_table_new (g_str_hash, g_str_equal),
                  g_hash_table_new (g_str_hash, g_str_equal) };
    NnHookHandle *pre = nn_add_global_pre_hook (profile_pre, &p, NULL, "profile", 0);
    NnHookHandle *post = nn_add_global_forward_hook (profile_post, &p, NULL, "profile", 0);
    gboolean ok = time_forward (model, x, o->warmup, o->repeat, error);
    nn_hook_handle_remove (pre);
    nn_hook_handle_remove (post);
    nn_hook_handle_free (pre);
    nn_hook_handle_free (post);
    if (ok)
      profile_print (&p, o->warmup + o->repeat);
    g_array_unref (p.starts);
    g_hash_table_unref (p.totals);
    g_hash_table_unref (p.calls);
    return ok;
  }
  g_autoptr (GPtrArray) outs = g_ptr_array_new_with_free_func ((GDestroyNotify) nn_tensor_unref);
  g_autoptr (GPtrArray) names = g_ptr_array_new ();
  for (guint i = 0; i < n; i++) {
    const char *name = nn_safetensors_name_at (st, i);
    g_autoptr (NnTensor) x = nn_safetensors_get (st, name, NN_DTYPE_F32, error);
    if (!x)
      return FALSE;
    NnTensor *y = nn_module_forward (model, x, error);
    if (!y) {
      g_prefix_error (error, "input '%s': ", name);
      return FALSE;
    }
    g_ptr_array_add (outs, y);
    g_ptr_array_add (names, (gpointer) name);
  }
  if (!o->output_path)
    return TRUE;
  return nn_safetensors_write (o->output_path, (const char *const *) names->pdata,
                               (NnTensor *const *) outs->pdata, outs->len,
                               NULL, error);
}

/* --inputs: tensors named CASE.ARG, one case per forward call, ARG the
 * forward's positional arguments in order, each in its file's dtype.  The
 * output leaves of case CASE are saved as nn_value_foreach_tensor() names
 * them with prefix CASE: "CASE" for a tensor, "CASE.0", "CASE.key", ... */
typedef struct {
  GPtrArray *names;   /* char *, owned */
  GPtrArray *tensors; /* NnTensor *, owned */
} Leaves;

static void
collect_leaf (const char *name, NnTensor *t, gpointer user_data)
{
  Leaves *l = user_data;
  g_ptr_array_add (l->names, g_strdup (name));
  g_ptr_array_add (l->tensors, nn_tensor_ref (t));
}

static gboolean
run_case (NnModule *model, const char *case_name, NnValue *args, Leaves *out,
          GError **error)
{
  g_autoptr (NnValue) y = nn_module_call (model, args, NULL, error);
  if (!y) {
    g_prefix_error (error, "case '%s': ", case_name);
    return FALSE;
  }
  nn_value_foreach_tensor (y, case_name, collect_leaf, out);
  return TRUE;
}

static gboolean
run_cases (NnModule *model, const Options *o, GError **error)
{
  g_autoptr (NnSafetensors) st = nn_safetensors_open (o->cases_path, error);
  if (!st)
    return FALSE;
  Leaves out = { g_ptr_array_new_with_free_func (g_free),
                 g_ptr_array_new_with_free_func ((GDestroyNotify) nn_tensor_unref) };
  g_autofree char *current = NULL;
  g_autoptr (NnValue) args = NULL;
  gboolean ok = TRUE;
  guint n = nn_safetensors_n_tensors (st);
  for (guint i = 0; ok && i < n; i++) {
    const char *name = nn_safetensors_name_at (st, i);
    const char *dot = strchr (name, '.');
    if (!dot || dot == name) {
      g_set_error (error, NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_NOT_FOUND,
                   "%s: tensor '%s' is not named CASE.ARG", o->cases_path, name);
      ok = FALSE;
      break;
    }
    g_autofree char *case_name = g_strndup (name, dot - name);
    if (current && strcmp (current, case_name) != 0) {
      ok = run_case (model, current, args, &out, error);
      g_clear_pointer (&args, nn_value_unref);
    }
    if (!args) {
      g_free (current);
      current = g_strdup (case_name);
      args = nn_value_new_tuple ();
    }
    NnShape shape;
    NnDType dtype = NN_DTYPE_F32;
    const char *file_dtype = nn_safetensors_get_info (st, name, &shape);
    if (file_dtype && !nn_dtype_parse (file_dtype, &dtype))
      dtype = NN_DTYPE_F32;
    NnTensor *x = ok ? nn_safetensors_get (st, name, dtype, error) : NULL;
    if (!x)
      ok = FALSE;
    else
      nn_value_append (args, nn_value_take_tensor (x));
  }
  if (ok && args)
    ok = run_case (model, current, args, &out, error);
  if (ok && o->output_path)
    ok = nn_safetensors_write (o->output_path, (const char *const *) out.names->pdata,
                               (NnTensor *const *) out.tensors->pdata, out.tensors->len,
                               NULL, error);
  g_ptr_array_unref (out.names);
  g_ptr_array_unref (out.tensors);
  return ok;
}

/* Prints "peak_rss_kib N", the high-water mark of this process image.
 * Read from /proc rather than getrusage(): ru_maxrss also counts the
 * parent's pages before exec, e.g. a Python benchmark driver's. */
static void
print_peak_rss (void)
{
  g_autofree char *status = NULL;
  if (!g_file_get_contents ("/proc/self/status", &status, NULL, NULL))
    return;
  const char *line = strstr (status, "VmHWM:");
  if (line)
    printf ("peak_rss_kib %" G_GINT64_FORMAT "\n",
            g_ascii_strtoll (line + strlen ("VmHWM:"), NULL, 10));
}

static gboolean
run (const char *model_path, const Options *o, GError **error)
{
  if (o->threads > 0)
    nn_set_num_threads (o->threads);
  g_autoptr (NnRegistry) reg = nn_registry_new ();
  if (!nn_registry_load_default (reg, error))
    return FALSE;
  g_autoptr (GPtrArray) failures = nn_registry_get_failures (reg);
  for (guint i = 0; i < failures->len; i++) {
    NnPluginFailure *f = g_ptr_array_index (failures, i);
    fprintf (stderr, "nn-conform: warning: %s\n", f->message);
  }
  g_autoptr (NnModule) model = nn_model_load (reg, model_path, NULL, FALSE, error);
  if (!model)
    return FALSE;
  if (o->repr_path) {
    g_autofree char *text = nn_module_to_string (model);
    if (!write_text (o->repr_path, text, error))
      return FALSE;
  }
  if (o->listing_path && !write_listing (model, o->listing_path, error))
    return FALSE;
  if (o->cases_path && !run_cases (model, o, error))
    return FALSE;
  if (o->input_path && !run_inputs (model, o, error))
    return FALSE;
  if (o->state_dict_path
      && !nn_module_save_state_dict (model, o->state_dict_path, NULL, error))
    return FALSE;
  if (o->print_rss)
    print_peak_rss ();
  return TRUE;
}

int
main (int argc, char **argv)
{
  Options o = { .warmup = 2 };
  GOptionEntry entries[] = {
    { "repr", 0, 0, G_OPTION_ARG_FILENAME, &o.repr_path,
      "Write nn_module_to_string() to FILE", "FILE" },
    { "listing", 0, 0, G_OPTION_ARG_FILENAME, &o.listing_path,
      "Write the named_modules and state_dict listing to FILE", "FILE" },
    { "input", 0, 0, G_OPTION_ARG_FILENAME, &o.input_path,
      "Run the model on every tensor of this safetensors FILE", "FILE" },
    { "inputs", 0, 0, G_OPTION_ARG_FILENAME, &o.cases_path,
      "Run the cases of F (tensors CASE.ARG); --output gets CASE", "F" },
    { "output", 0, 0, G_OPTION_ARG_FILENAME, &o.output_path,
      "Save the outputs, under the inputs' names, to FILE", "FILE" },
    { "save-state-dict", 0, 0, G_OPTION_ARG_FILENAME, &o.state_dict_path,
      "Save the model's state_dict to FILE", "FILE" },
    { "threads", 0, 0, G_OPTION_ARG_INT, &o.threads,
      "Threads for the forward (nn_set_num_threads)", "N" },
    { "repeat", 0, 0, G_OPTION_ARG_INT, &o.repeat,
      "Time N forwards of the first input; print the median", "N" },
    { "warmup", 0, 0, G_OPTION_ARG_INT, &o.warmup,
      "Untimed forwards before --repeat (default 2)", "N" },
    { "profile", 0, 0, G_OPTION_ARG_NONE, &o.profile,
      "With --repeat: print the time per leaf class per forward", NULL },
    { "print-rss", 0, 0, G_OPTION_ARG_NONE, &o.print_rss,
      "Print the peak resident set size (VmHWM) at the end", NULL },
    { NULL }
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new ("MODEL");
  g_option_context_set_summary (ctx, "Load an nnkit model and dump what the "
                                "PyTorch conformance tests compare.");
  g_option_context_add_main_entries (ctx, entries, NULL);
  g_autoptr (GError) error = NULL;
  int status = 0;
  if (!g_option_context_parse (ctx, &argc, &argv, &error)) {
    fprintf (stderr, "nn-conform: %s\n", error->message);
    status = 2;
  } else if (argc != 2 || o.repeat < 0 || o.warmup < 0
             || (o.repeat > 0 && !o.input_path)) {
    fprintf (stderr, "nn-conform: usage: nn-conform MODEL [OPTION...] "
             "(--repeat needs --input)\n");
    status = 2;
  } else if (!run (argv[1], &o, &error)) {
    fprintf (stderr, "nn-conform: %s\n", error->message);
    status = 1;
  }
  g_free (o.repr_path);
  g_free (o.listing_path);
  g_free (o.input_path);
  g_free (o.cases_path);
  g_free (o.output_path);
  g_free (o.state_dict_path);
  return status;
}
