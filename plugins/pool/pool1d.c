/* The 1-d pools: MaxPool1d, AvgPool1d, AdaptiveAvgPool1d and
 * AdaptiveMaxPool1d on [N, C, L] or [C, L] float32, as torch.nn defines
 * them (return_indices gives PyTorch's (output, indices) tuple). */
#include "pool.h"
#include "../common/nn-layer-util.h"

static const NnSchemaKey max_pool1d_schema[] = {
  { "kernel_size", NN_KIND_INT_TUPLE, 1, NN_KEY_HAS_MIN, NULL, 1, 0, NULL,
    "window length" },
  { "stride", NN_KIND_INT_TUPLE, 1, NN_KEY_OPTIONAL | NN_KEY_NULLABLE
    | NN_KEY_HAS_MIN, "null", 1, 0, NULL, "window step; None: kernel_size" },
  { "padding", NN_KIND_INT_TUPLE, 1, NN_KEY_OPTIONAL | NN_KEY_HAS_MIN, "0",
    0, 0, NULL, "implicit -inf padding on both ends" },
  { "dilation", NN_KIND_INT_TUPLE, 1, NN_KEY_OPTIONAL | NN_KEY_HAS_MIN, "1",
    1, 0, NULL, "spacing between window taps" },
  { "return_indices", NN_KIND_BOOL, 0, NN_KEY_OPTIONAL, "false", 0, 0, NULL,
    "also return the argmax positions" },
  { "ceil_mode", NN_KIND_BOOL, 0, NN_KEY_OPTIONAL, "false", 0, 0, NULL,
    "round the output length up" },
};

static const NnSchemaKey avg_pool1d_schema[] = {
  { "kernel_size", NN_KIND_INT_TUPLE, 1, NN_KEY_EXPAND | NN_KEY_HAS_MIN, NULL,
    1, 0, NULL, "window length" },
  { "stride", NN_KIND_INT_TUPLE, 1, NN_KEY_OPTIONAL | NN_KEY_NULLABLE
    | NN_KEY_EXPAND | NN_KEY_HAS_MIN, "null", 1, 0, NULL,
    "window step; None: kernel_size" },
  { "padding", NN_KIND_INT_TUPLE, 1, NN_KEY_OPTIONAL | NN_KEY_EXPAND
    | NN_KEY_HAS_MIN, "[0]", 0, 0, NULL, "implicit zero padding" },
  { "ceil_mode", NN_KIND_BOOL, 0, NN_KEY_OPTIONAL, "false", 0, 0, NULL,
    "round the output length up" },
  { "count_include_pad", NN_KIND_BOOL, 0, NN_KEY_OPTIONAL, "true", 0, 0, NULL,
    "average over the padding too" },
};

static const NnSchemaKey adaptive_avg_pool1d_schema[] = {
  { "output_size", NN_KIND_INT_TUPLE, 1, NN_KEY_HAS_MIN, NULL, 1, 0, NULL,
    "output length" },
};

static const NnSchemaKey adaptive_max_pool1d_schema[] = {
  { "output_size", NN_KIND_INT_TUPLE, 1, NN_KEY_HAS_MIN, NULL, 1, 0, NULL,
    "output length" },
  { "return_indices", NN_KIND_BOOL, 0, NN_KEY_OPTIONAL, "false", 0, 0, NULL,
    "also return the argmax positions" },
};

typedef enum { P_MAX, P_AVG, P_ADAPTIVE_AVG, P_ADAPTIVE_MAX } Kind;

typedef struct {
  gint64 k, s, p, d;
  gboolean ceil, include_pad, indices;
} Win;

static gint64
one (NnModule *self, const char *key, gint64 dflt)
{
  gint64 v = dflt;
  if (!nn_module_config_is_null (self, key))
    nn_module_config_ints (self, key, &v, 1);
  return v;
}

static gboolean
read_win (NnModule *self, Kind kind, Win *w, GError **error)
{
  memset (w, 0, sizeof *w);
  w->k = one (self, "kernel_size", 1);
  w->s = one (self, "stride", w->k);
  w->p = one (self, "padding", 0);
  w->d = kind == P_MAX ? one (self, "dilation", 1) : 1;
  w->ceil = nn_module_config_bool (self, "ceil_mode");
  w->include_pad = kind == P_AVG && nn_module_config_bool (self, "count_include_pad");
  w->indices = kind == P_MAX && nn_module_config_bool (self, "return_indices");
  return TRUE;
}

static gboolean
check_input (const NnShape *s, const char *op, GError **error)
{
  if (s->ndim == 2 || s->ndim == 3)
    return TRUE;
  if (g_str_equal (op, "max_pool1d")) {
    g_autofree char *found = nn_shape_to_string (s);
    g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH,
                 "max_pool1d: Expected 2D or 3D (batch mode) tensor with "
                 "optional 0 dim batch size for input, but got:%s", found);
  } else {
    g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH,
                 "Expected 2 to 3 dimensions, but got %u-dimensional tensor "
                 "for argument #1 'self' (while checking arguments for %s)",
                 s->ndim, op);
  }
  return FALSE;
}

/* PyTorch's pooling_output_shape: floor division, and in ceil mode the
 * last window must start inside the input or the left padding. */
static gint64
out_len (gint64 l, const Win *w)
{
  gint64 num = l + 2 * w->p - w->d * (w->k - 1) - 1 + (w->ceil ? w->s - 1 : 0);
  gint64 o = (num >= 0 ? num / w->s : -((-num + w->s - 1) / w->s)) + 1;
  if (w->ceil && o > 0 && (o - 1) * w->s >= l + w->p)
    o--;
  return o;
}

static NnValue *
pool1d_run (NnModule *self, const NnArgs *args, Kind kind, GError **error)
{
  static const char *const ops[] = {
    "max_pool1d", "avg_pool1d", "adaptive_avg_pool1d", "adaptive_max_pool1d"
  };
  NnTensor *input = nn_args_tensor (args, 0);
  const NnShape *s = &input->shape;
  if (!check_input (s, ops[kind], error))
    return NULL;
  gint64 l = s->dims[s->ndim - 1], lo;
  Win w;
  gboolean adaptive = kind == P_ADAPTIVE_AVG || kind == P_ADAPTIVE_MAX;
  gboolean indices = FALSE;
  if (adaptive) {
    lo = one (self, "output_size", l);
    indices = kind == P_ADAPTIVE_MAX && nn_module_config_bool (self, "return_indices");
    for (guint i = 1; i < s->ndim; i++)
      if (s->dims[i] == 0) {
        g_autofree char *found = nn_shape_to_string (s);
        g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH,
                     "%s(): Expected input to have non-zero size for "
                     "non-batch dimensions, but input has sizes %s with "
                     "dimension %u being empty", ops[kind], found, i);
        return NULL;
      }
  } else {
    read_win (self, kind, &w, error);
    indices = w.indices;
    gint64 half = kind == P_MAX ? (w.d * (w.k - 1) + 1) / 2 : w.k / 2;
    if (w.p > half) {
      g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH,
                   kind == P_MAX
                   ? "max_pool1d() padding should be at most half of kernel "
                     "size, but got padding=%" G_GINT64_FORMAT " and "
                     "kernel_size=%" G_GINT64_FORMAT
                   : "pad should be at most half of kernel size, but got "
                     "pad=%" G_GINT64_FORMAT " and kernel_size=%" G_GINT64_FORMAT,
                   w.p, w.k);
      return NULL;
    }
    lo = out_len (l, &w);
    if (lo < (kind == P_MAX ? 0 : 1)) {
      g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH,
                   "Given input size: (%" G_GINT64_FORMAT "x1x%" G_GINT64_FORMAT
                   "). Calculated output size: (%" G_GINT64_FORMAT "x1x%"
                   G_GINT64_FORMAT "). Output size is too small",
                   s->dims[s->ndim - 2], l, s->dims[s->ndim - 2], lo);
      return NULL;
    }
  }
  NnShape os = *s;
  os.dims[s->ndim - 1] = lo;
  gboolean meta = nn_tensor_is_meta (input);
  NnTensor *out = nn_lu_new_f32 (&os, meta);
  NnTensor *idx = indices ? (meta ? nn_tensor_new_meta (NN_DTYPE_I64, &os)
                                  : nn_tensor_new (NN_DTYPE_I64, &os))
                          : NULL;
  if (!out || (indices && !idx)) {
    if (out)
      nn_tensor_unref (out);
    return nn_lu_result (NULL, error);
  }
  if (!meta) {
    const float *x = nn_tensor_f32 (input);
    float *y = nn_tensor_f32 (out);
    gint64 *yi = idx ? nn_tensor_i64 (idx) : NULL;
    gint64 rows = nn_lu_prod (s, 0, s->ndim - 1);
    for (gint64 r = 0; r < rows; r++)
      for (gint64 o = 0; o < lo; o++) {
        const float *row = x + r * l;
        gint64 a, b, step = 1, count;
        if (adaptive) {
          a = o * l / lo;
          b = ((o + 1) * l + lo - 1) / lo;
        } else {
          a = o * w.s - w.p;
          b = a + (kind == P_MAX ? w.d * (w.k - 1) + 1 : w.k);
          step = kind == P_MAX ? w.d : 1;
        }
        if (kind == P_MAX || kind == P_ADAPTIVE_MAX) {
          float best = -INFINITY;
          gint64 arg = -1;
          for (gint64 i = a; i < b; i += step) {
            if (i < 0 || i >= l)
              continue;
            /* NaN wins, as in PyTorch's max pooling. */
            if (arg < 0 || row[i] > best || isnan (row[i])) {
              best = row[i];
              arg = i;
              if (isnan (best))
                break;
            }
          }
          y[r * lo + o] = best;
          if (yi)
            yi[r * lo + o] = arg;
          continue;
        }
        double sum = 0.0;
        gint64 end_pad = MIN (b, l + (adaptive ? 0 : w.p));
        gint64 lo_i = MAX (a, 0), hi_i = MIN (b, l);
        for (gint64 i = lo_i; i < hi_i; i++)
          sum += row[i];
        count = (!adaptive && w.include_pad) ? end_pad - a : hi_i - lo_i;
        y[r * lo + o] = (float) (count > 0 ? sum / (double) count : 0.0);
      }
  }
  if (!indices)
    return nn_value_take_tensor (out);
  NnValue *t = nn_value_new_tuple ();
  nn_value_append (t, nn_value_take_tensor (out));
  nn_value_append (t, nn_value_take_tensor (idx));
  return t;
}

#define POOL1D_FORWARD(fn_, kind_)                                        \
  static NnValue *fn_ (NnModule *self, NnCall *call, const NnArgs *args,  \
                       GError **error)                                    \
  {                                                                       \
    return pool1d_run (self, args, kind_, error);                         \
  }

POOL1D_FORWARD (max_pool1d_forward, P_MAX)
POOL1D_FORWARD (avg_pool1d_forward, P_AVG)
POOL1D_FORWARD (adaptive_avg_pool1d_forward, P_ADAPTIVE_AVG)
POOL1D_FORWARD (adaptive_max_pool1d_forward, P_ADAPTIVE_MAX)

static gboolean
pool1d_create (NnModule *self, GError **error)
{
  return TRUE;
}

/* MaxPool1d prints its keys as given; a None stride is the kernel. */
static char *
max_pool1d_extra_repr (NnModule *self)
{
  g_autofree char *k = nn_module_config_repr (self, "kernel_size");
  g_autofree char *s = nn_module_config_is_null (self, "stride")
                           ? g_strdup (k) : nn_module_config_repr (self, "stride");
  g_autofree char *p = nn_module_config_repr (self, "padding");
  g_autofree char *d = nn_module_config_repr (self, "dilation");
  return g_strdup_printf ("kernel_size=%s, stride=%s, padding=%s, dilation=%s, "
                          "ceil_mode=%s", k, s, p, d,
                          nn_lu_py_bool (nn_module_config_bool (self, "ceil_mode")));
}

/* AvgPool1d stores _single() tuples: kernel_size=(3,). */
static char *
avg_pool1d_extra_repr (NnModule *self)
{
  gint64 k = one (self, "kernel_size", 1);
  return g_strdup_printf ("kernel_size=(%" G_GINT64_FORMAT ",), stride=(%"
                          G_GINT64_FORMAT ",), padding=(%" G_GINT64_FORMAT ",)",
                          k, one (self, "stride", k), one (self, "padding", 0));
}

static char *
adaptive_extra_repr (NnModule *self)
{
  g_autofree char *o = nn_module_config_repr (self, "output_size");
  return g_strdup_printf ("output_size=%s", o);
}

/* The functional spellings (F.max_pool1d(x, 2)): the exporter writes the
 * function's arguments as the config, as for the 2-d pools. */
static const char *const max_pool1d_aliases[] = {
  "max_pool1d", "torch.nn.functional.max_pool1d", "torch.max_pool1d", NULL };
static const char *const avg_pool1d_aliases[] = {
  "avg_pool1d", "torch.nn.functional.avg_pool1d", "torch.avg_pool1d", NULL };
static const char *const adaptive_avg_pool1d_aliases[] = {
  "adaptive_avg_pool1d", "torch.nn.functional.adaptive_avg_pool1d",
  "torch.adaptive_avg_pool1d", NULL };
static const char *const adaptive_max_pool1d_aliases[] = {
  "adaptive_max_pool1d", "torch.nn.functional.adaptive_max_pool1d", NULL };

#define POOL1D_TYPE(var_, name_, doc_, schema_, forward_, repr_, aliases_) \
  const NnLayerType var_ = {                                              \
    .struct_size = sizeof (NnLayerType), .name = name_, .doc = doc_,      \
    .schema = schema_, .n_schema = G_N_ELEMENTS (schema_),                \
    .create = pool1d_create, .forward = forward_, .infer = forward_,      \
    .extra_repr = repr_, .aliases = aliases_,                             \
  }

POOL1D_TYPE (nn_max_pool1d_type, "MaxPool1d", "max over sliding windows of [N, C, L]",
             max_pool1d_schema, max_pool1d_forward, max_pool1d_extra_repr,
             max_pool1d_aliases);
POOL1D_TYPE (nn_avg_pool1d_type, "AvgPool1d", "mean over sliding windows of [N, C, L]",
             avg_pool1d_schema, avg_pool1d_forward, avg_pool1d_extra_repr,
             avg_pool1d_aliases);
POOL1D_TYPE (nn_adaptive_avg_pool1d_type, "AdaptiveAvgPool1d",
             "mean over output_size adaptive windows", adaptive_avg_pool1d_schema,
             adaptive_avg_pool1d_forward, adaptive_extra_repr,
             adaptive_avg_pool1d_aliases);
POOL1D_TYPE (nn_adaptive_max_pool1d_type, "AdaptiveMaxPool1d",
             "max over output_size adaptive windows", adaptive_max_pool1d_schema,
             adaptive_max_pool1d_forward, adaptive_extra_repr,
             adaptive_max_pool1d_aliases);
