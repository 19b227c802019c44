/* nnctl summary MODEL: a torchinfo-style table built from shape inference
 * alone (nothing is computed), with Param # and each type's Mult-Adds.
 * Each row is one module call reported by nn_module_infer_observed(); its
 * shapes are those of the first tensor leaf of the call's arguments and
 * result, as torchinfo shows them. */
#include "nnctl.h"
#include "run_inputs.h"

#include <string.h>

/* One module call seen by the shape observer. */
typedef struct _Row Row;
struct _Row {
  NnModule *module;    /* (transfer none) the tree outlives the rows */
  char *path;
  guint depth;
  NnShape in, out;     /* first tensor leaves; 0-d when there is none */
  NnValue *args, *kwargs, *result; /* (nullable) the call, meta tensors */
  guint64 macs;        /* own count: the type's count_macs of this call */
  GPtrArray *children; /* (element-type Row) (transfer none) */
};

typedef struct {
  GPtrArray *all; /* (element-type Row) owns every row, in report order */
} Collect;

static void
row_free (gpointer p)
{
  Row *r = p;
  g_free (r->path);
  g_clear_pointer (&r->args, nn_value_unref);
  g_clear_pointer (&r->kwargs, nn_value_unref);
  g_clear_pointer (&r->result, nn_value_unref);
  g_ptr_array_unref (r->children);
  g_free (r);
}

/* The shape of @v's first tensor leaf, or a 0-d shape. */
static NnShape
first_shape (const NnValue *v)
{
  NnTensor *t = nn_value_first_tensor (v);
  NnShape none = { 0 };
  return t ? t->shape : none;
}

static void
observe (NnModule *m, const char *path, guint depth, const NnValue *args,
         const NnValue *kwargs, const NnValue *out, gpointer data)
{
  Collect *c = data;
  Row *r = g_new0 (Row, 1);

  r->module = m;
  r->path = g_strdup (path);
  r->depth = depth;
  /* A call with only keyword tensors shows its first keyword tensor. */
  r->in = first_shape (args);
  if (r->in.ndim == 0 && kwargs)
    r->in = first_shape (kwargs);
  r->out = first_shape (out);
  r->args = args ? nn_value_ref ((NnValue *) args) : NULL;
  r->kwargs = kwargs ? nn_value_ref ((NnValue *) kwargs) : NULL;
  r->result = out ? nn_value_ref ((NnValue *) out) : NULL;
  r->children = g_ptr_array_new ();
  g_ptr_array_add (c->all, r);
}

/* Rebuilds the call tree from the depths.  Calls are reported in entry
 * order (root first); completion order (root last) is accepted too, so the
 * table does not depend on which one the core uses.  Returns (transfer
 * none) the root row, or NULL if the depths do not form one tree. */
static Row *
build_tree (GPtrArray *all)
{
  g_autoptr (GPtrArray) stack = g_ptr_array_new ();
  gboolean entry_order;

  if (all->len == 0)
    return NULL;
  entry_order = ((Row *) all->pdata[0])->depth == 0;
  for (guint k = 0; k < all->len; k++) {
    Row *r = all->pdata[entry_order ? k : all->len - 1 - k];
    while (stack->len
           && ((Row *) stack->pdata[stack->len - 1])->depth >= r->depth)
      g_ptr_array_set_size (stack, stack->len - 1);
    if (stack->len) {
      Row *parent = stack->pdata[stack->len - 1];
      if (entry_order)
        g_ptr_array_add (parent->children, r);
      else
        g_ptr_array_insert (parent->children, 0, r);
    } else if (k > 0) {
      return NULL;
    }
    g_ptr_array_add (stack, r);
  }
  /* Every row counts its own work: a leaf's, and a composite's own
   * parameters' (MultiheadAttention's in-projection), its children
   * counting theirs on their rows (docs/NNCTL.md). */
  for (guint k = 0; k < all->len; k++) {
    Row *r = all->pdata[k];
    r->macs = nnctl_count_macs (r->module, r->args, r->kwargs, r->result);
  }
  return all->pdata[entry_order ? 0 : all->len - 1];
}

typedef struct {
  gint max_depth;
  guint idx[64];       /* running index per depth, as torchinfo numbers */
  guint64 leaf_out_bytes;
  guint64 total_macs;
  gboolean json;
  JsonBuilder *b;
  GString *text;
  guint name_width;
} Emit;

static guint64
subtree_macs (Row *r)
{
  guint64 n = r->macs;
  /* Saturates: G_MAXUINT64 means "too many to count", refused below. */
  for (guint i = 0; i < r->children->len; i++)
    if (__builtin_add_overflow (n, subtree_macs (r->children->pdata[i]), &n))
      return G_MAXUINT64;
  return n;
}

static void
totals_walk (Row *r, Emit *e)
{
  /* As torchinfo: activations count for layers holding parameters (they
   * are what the backward pass keeps), x2 for their gradients. */
  if (r->children->len == 0 && nnctl_own_param_count (r->module) > 0)
    e->leaf_out_bytes += (guint64) nn_shape_numel (&r->out) * 4;
  if (__builtin_add_overflow (e->total_macs, r->macs, &e->total_macs))
    e->total_macs = G_MAXUINT64;
  for (guint i = 0; i < r->children->len; i++)
    totals_walk (r->children->pdata[i], e);
}

static char *
row_name (Row *r, guint idx)
{
  GString *s;

  if (r->depth == 0)
    return g_strdup (nn_module_get_class_name (r->module));
  s = g_string_new (NULL);
  if (r->depth == 1) {
    g_string_append (s, "├─");
  } else {
    for (guint i = 1; i < r->depth; i++)
      g_string_append (s, "│    ");
    g_string_append (s, "└─");
  }
  g_string_append_printf (s, "%s: %u-%u", nn_module_get_class_name (r->module),
                          r->depth, idx);
  return g_string_free (s, FALSE);
}

static void
pad_to (GString *s, const char *cell, guint width)
{
  glong n = g_utf8_strlen (cell, -1);
  g_string_append (s, cell);
  for (glong i = n; i < (glong) width; i++)
    g_string_append_c (s, ' ');
}

static void
emit_row (Row *r, Emit *e)
{
  gboolean expanded = r->children->len > 0
                      && (e->max_depth < 0 || (gint) r->depth < e->max_depth);
  guint idx = r->depth < G_N_ELEMENTS (e->idx) ? ++e->idx[r->depth] : 0;
  gint64 params = expanded || r->children->len == 0
                  ? nnctl_own_param_count (r->module)
                  : nn_module_count_parameters (r->module);
  /* An expanded composite shows its own count (0, "--", for containers). */
  guint64 macs = expanded ? r->macs : subtree_macs (r);

  if (e->max_depth >= 0 && (gint) r->depth > e->max_depth)
    return;
  if (e->json) {
    JsonBuilder *b = e->b;
    json_builder_begin_object (b);
    json_builder_set_member_name (b, "path");
    json_builder_add_string_value (b, r->path);
    json_builder_set_member_name (b, "class");
    json_builder_add_string_value (b, nn_module_get_class_name (r->module));
    json_builder_set_member_name (b, "depth");
    json_builder_add_int_value (b, r->depth);
    json_builder_set_member_name (b, "idx");
    json_builder_add_int_value (b, r->depth ? idx : 0);
    json_builder_set_member_name (b, "input_shape");
    nnctl_json_add_shape (b, &r->in);
    json_builder_set_member_name (b, "output_shape");
    nnctl_json_add_shape (b, &r->out);
    json_builder_set_member_name (b, "params");
    json_builder_add_int_value (b, params);
    json_builder_set_member_name (b, "mult_adds");
    json_builder_add_int_value (b, macs);
    json_builder_end_object (b);
  } else {
    g_autofree char *name = row_name (r, idx);
    g_autofree char *shape = nnctl_shape_str (&r->out);
    g_autofree char *p = params ? nnctl_count_str (params) : g_strdup ("--");
    g_autofree char *m = macs ? nnctl_count_str (macs) : g_strdup ("--");
    pad_to (e->text, name, e->name_width);
    pad_to (e->text, shape, 25);
    pad_to (e->text, p, 25);
    g_string_append (e->text, m);
    g_string_append_c (e->text, '\n');
  }
  if (expanded)
    for (guint i = 0; i < r->children->len; i++)
      emit_row (r->children->pdata[i], e);
}

static void
name_width_walk (Row *r, Emit *e, guint *width)
{
  g_autofree char *name = row_name (r, 99);
  *width = MAX (*width, (guint) g_utf8_strlen (name, -1) + 1);
  if (e->max_depth < 0 || (gint) r->depth < e->max_depth)
    for (guint i = 0; i < r->children->len; i++)
      name_width_walk (r->children->pdata[i], e, width);
}

static char *
rule (guint width)
{
  char *s = g_malloc (width + 1);
  memset (s, '=', width);
  s[width] = '\0';
  return s;
}

static void
print_text (Row *root, Emit *e, guint64 in_bytes, gint64 total_params)
{
  guint width = 40;
  name_width_walk (root, e, &width);
  e->name_width = width;
  g_autofree char *line = rule (width + 25 * 3);
  double in_mb = in_bytes / 1e6;
  double fb_mb = e->leaf_out_bytes * 2 / 1e6;
  double p_mb = total_params * 4 / 1e6;
  g_autofree char *tp = nnctl_count_str (total_params);
  GString *h = g_string_new (NULL);
  /* torchinfo picks the unit by magnitude. */
  guint64 macs = e->total_macs;
  const char *unit = macs >= 1000000000000ull ? " (T)" : macs >= 1000000000ull
                     ? " (G)" : macs >= 1000000ull ? " (M)" : macs >= 1000ull
                     ? " (K)" : "";
  double div = macs >= 1000000000000ull ? 1e12 : macs >= 1000000000ull ? 1e9
               : macs >= 1000000ull ? 1e6 : macs >= 1000ull ? 1e3 : 1;

  e->text = g_string_new (NULL);
  emit_row (root, e);
  pad_to (h, "Layer (type:depth-idx)", width);
  pad_to (h, "Output Shape", 25);
  pad_to (h, "Param #", 25);
  g_string_append (h, "Mult-Adds");
  printf ("%s\n%s\n%s\n%s", line, h->str, line, e->text->str);
  printf ("%s\n", line);
  /* torchinfo splits by requires_grad (frozen parameters, TRAINING.md). */
  gint64 trainable = 0, frozen = 0;
  nn_module_count_trainable (root->module, &trainable, &frozen);
  g_autofree char *trs = nnctl_count_str (trainable);
  g_autofree char *frs = nnctl_count_str (frozen);
  printf ("Total params: %s\nTrainable params: %s\nNon-trainable params: %s\n",
          tp, trs, frs);
  if (*unit)
    printf ("Total mult-adds%s: %.2f\n", unit, macs / div);
  else
    printf ("Total mult-adds: %" G_GUINT64_FORMAT "\n", macs);
  printf ("%s\n", line);
  printf ("Input size (MB): %.2f\nForward/backward pass size (MB): %.2f\n"
          "Params size (MB): %.2f\nEstimated Total Size (MB): %.2f\n",
          in_mb, fb_mb, p_mb, in_mb + fb_mb + p_mb);
  printf ("%s\n", line);
  g_string_free (h, TRUE);
  g_string_free (e->text, TRUE);
}

static void
print_json (Row *root, Emit *e, GPtrArray *inputs, guint64 in_bytes,
            gint64 total_params)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();

  e->b = b;
  json_builder_begin_object (b);
  /* The one-input key of ABI 1, then every input. */
  if (inputs->len == 1) {
    json_builder_set_member_name (b, "input_shape");
    nnctl_json_add_shape (b, &((NnTensor *) inputs->pdata[0])->shape);
  }
  json_builder_set_member_name (b, "inputs");
  json_builder_begin_array (b);
  for (guint i = 0; i < inputs->len; i++) {
    NnTensor *t = inputs->pdata[i];
    json_builder_begin_object (b);
    json_builder_set_member_name (b, "shape");
    nnctl_json_add_shape (b, &t->shape);
    json_builder_set_member_name (b, "dtype");
    json_builder_add_string_value (b, nn_dtype_name (t->dtype));
    json_builder_end_object (b);
  }
  json_builder_end_array (b);
  json_builder_set_member_name (b, "rows");
  json_builder_begin_array (b);
  emit_row (root, e);
  json_builder_end_array (b);
  json_builder_set_member_name (b, "total_params");
  json_builder_add_int_value (b, total_params);
  gint64 trainable = 0, frozen = 0;
  nn_module_count_trainable (root->module, &trainable, &frozen);
  json_builder_set_member_name (b, "trainable_params");
  json_builder_add_int_value (b, trainable);
  json_builder_set_member_name (b, "non_trainable_params");
  json_builder_add_int_value (b, frozen);
  json_builder_set_member_name (b, "total_mult_adds");
  json_builder_add_int_value (b, e->total_macs);
  json_builder_set_member_name (b, "input_size_bytes");
  json_builder_add_int_value (b, in_bytes);
  json_builder_set_member_name (b, "forward_backward_bytes");
  json_builder_add_int_value (b, e->leaf_out_bytes * 2);
  json_builder_set_member_name (b, "params_bytes");
  json_builder_add_int_value (b, total_params * 4);
  json_builder_end_object (b);
  nnctl_json_print (b);
}

static void
collect_input (const char *name, NnTensor *t, gpointer data)
{
  g_ptr_array_add (data, t);
}

int
nnctl_cmd_summary (NnctlGlobal *g, const NnctlCommand *cmd, int argc,
                   char **argv)
{
  char *shape_text = NULL;
  char **specs = NULL;
  gint depth = 3;
  gboolean json = FALSE;
  GError *err = NULL;
  const GOptionEntry entries[] = {
    { "input-shape", 's', 0, G_OPTION_ARG_STRING, &shape_text,
      "Input shape of a single-input model, e.g. 1,3,224,224 (default: "
      "the inputs recorded in MODEL)", "SHAPE" },
    { "input-spec", 'I', 0, G_OPTION_ARG_STRING_ARRAY, &specs,
      "Input NAME of DTYPE and SHAPE, e.g. ids:int64:1,16 (repeatable; "
      "default: the inputs recorded in MODEL)", "NAME:DTYPE:SHAPE" },
    { "depth", 'd', 0, G_OPTION_ARG_INT, &depth,
      "Rows down to depth N (default 3, as torchinfo; -1: all)", "N" },
    { "json", 0, 0, G_OPTION_ARG_NONE, &json, "Machine-readable output",
      NULL },
    { NULL }
  };
  int rc = nnctl_parse (g, cmd, entries, 0, &argc, &argv,
                        1, 1);
  g_autoptr (NnModule) model = NULL;
  g_autoptr (NnValue) recorded = NULL;
  g_autoptr (NnValue) out = NULL;
  g_autoptr (GPtrArray) inputs = g_ptr_array_new ();
  g_auto (GStrv) params = NULL;
  NnctlInputs in = { 0 };
  const NnValue *call_args, *call_kwargs = NULL;
  guint64 in_bytes = 0;
  Collect c = { 0 };
  Emit e = { 0 };
  Row *root = NULL;

  nnctl_inputs_init (&in);
  in.meta = TRUE;
  if (rc != NNCTL_CONTINUE)
    goto done;
  if (shape_text && specs) {
    rc = nnctl_usage ("summary", "--input-shape and --input-spec exclude "
                      "each other");
    goto done;
  }
  model = nnctl_load_structure (g, argv[1], &err);
  if (!model) {
    rc = nnctl_fail ("summary", err);
    goto done;
  }
  if (shape_text || specs) {
    /* --input-shape is the bare SHAPE form of --input-spec. */
    char *one[] = { shape_text, NULL };
    in.option = shape_text ? "--input-shape" : "--input-spec";
    params = nnctl_forward_params (model);
    if (!nnctl_inputs_from_options (&in, nn_module_get_input_spec (model),
                                    params, NULL, shape_text ? one : specs,
                                    0, &err)) {
      if (g_error_matches (err, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE))
        rc = nnctl_usage ("summary", "%s", err->message);
      else
        rc = nnctl_error ("summary", "%s", err->message);
      g_clear_error (&err);
      goto done;
    }
    nnctl_inputs_finish (&in, params);
    call_args = in.args;
    call_kwargs = in.kwargs;
  } else {
    recorded = nn_module_input_spec_args (model);
    if (!recorded) {
      rc = nnctl_usage ("summary", "%s records no inputs: pass "
                        "--input-shape, e.g. 1,3,224,224, or --input-spec "
                        "NAME:DTYPE:SHAPE per input", argv[1]);
      goto done;
    }
    call_args = recorded;
  }
  nn_value_foreach_tensor (call_args, "", collect_input, inputs);
  if (call_kwargs)
    nn_value_foreach_tensor (call_kwargs, "", collect_input, inputs);
  for (guint i = 0; i < inputs->len; i++) {
    NnTensor *t = inputs->pdata[i];
    in_bytes += (guint64) nn_shape_numel (&t->shape) * nn_dtype_size (t->dtype);
  }
  c.all = g_ptr_array_new_with_free_func (row_free);
  out = nn_module_infer_observed (model, call_args, call_kwargs, observe, &c,
                                  &err);
  if (!out) {
    rc = nnctl_fail ("summary", err);
    goto done;
  }
  root = build_tree (c.all);
  if (!root) {
    rc = nnctl_error ("summary", "shape inference reported calls that do "
                      "not form one tree under the root");
    goto done;
  }
  e.max_depth = depth;
  e.json = json;
  totals_walk (root, &e);
  if (e.total_macs == G_MAXUINT64) {
    rc = nnctl_error ("summary", "%s: the mult-adds for these inputs "
                      "overflow 64 bits", argv[1]);
    goto done;
  }
  if (json)
    print_json (root, &e, inputs, in_bytes, nn_module_count_parameters (model));
  else
    print_text (root, &e, in_bytes, nn_module_count_parameters (model));
  rc = NNCTL_EXIT_OK;
done:
  if (c.all)
    g_ptr_array_unref (c.all);
  nnctl_inputs_clear (&in);
  g_strfreev (specs);
  g_free (shape_text);
  return rc;
}
