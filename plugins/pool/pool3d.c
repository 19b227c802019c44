/* The 3-d pools: MaxPool3d, AvgPool3d, AdaptiveAvgPool3d and
 * AdaptiveMaxPool3d on [N, C, D, H, W] or [C, D, H, W] float32 (video,
 * volumes), as torch.nn defines them; the max pools may return PyTorch's
 * (output, indices) tuple, indices into each D * H * W volume. */
#include "pool.h"
#include "../common/nn-layer-util.h"

#include <math.h>
#include <string.h>

#define WINDOW_KEY(name_, flags_, dflt_, min_, doc_)                          \
  { name_, NN_KIND_INT_TUPLE, 3, NN_KEY_HAS_MIN | (flags_), dflt_, min_, 0, \
    NULL, doc_ }

static const NnSchemaKey max_pool3d_schema[] = {
  WINDOW_KEY ("kernel_size", 0, NULL, 1, "window extent (d, h, w) or one int"),
  WINDOW_KEY ("stride", NN_KEY_OPTIONAL | NN_KEY_NULLABLE, "null", 1,
              "window step; None: kernel_size"),
  WINDOW_KEY ("padding", NN_KEY_OPTIONAL, "0", 0,
              "implicit -inf padding on both sides, at most kernel_size / 2"),
  WINDOW_KEY ("dilation", NN_KEY_OPTIONAL, "1", 1, "spacing between window taps"),
  { "return_indices", NN_KIND_BOOL, 0, NN_KEY_OPTIONAL, "false", 0, 0, NULL,
    "also return the argmax positions" },
  { "ceil_mode", NN_KIND_BOOL, 0, NN_KEY_OPTIONAL, "false", 0, 0, NULL,
    "round the output size up" },
};

static const NnSchemaKey avg_pool3d_schema[] = {
  WINDOW_KEY ("kernel_size", 0, NULL, 1, "window extent (d, h, w) or one int"),
  WINDOW_KEY ("stride", NN_KEY_OPTIONAL | NN_KEY_NULLABLE, "null", 1,
              "window step; None: kernel_size"),
  WINDOW_KEY ("padding", NN_KEY_OPTIONAL, "0", 0,
              "implicit zero padding on both sides, at most kernel_size / 2"),
  { "ceil_mode", NN_KIND_BOOL, 0, NN_KEY_OPTIONAL, "false", 0, 0, NULL,
    "round the output size up" },
  { "count_include_pad", NN_KIND_BOOL, 0, NN_KEY_OPTIONAL, "true", 0, 0, NULL,
    "average over the padding too" },
  { "divisor_override", NN_KIND_INT, 0,
    NN_KEY_OPTIONAL | NN_KEY_NULLABLE | NN_KEY_HAS_MIN, "null", 1, 0, NULL,
    "divide every window's sum by this instead" },
};

/* output_size: ints, or None for a dim kept as the input's. */
static const NnSchemaKey adaptive_avg_pool3d_schema[] = {
  { "output_size", NN_KIND_JSON, 0, 0, NULL, 0, 0, NULL,
    "output (d, h, w), one int for all, None keeps that input dim" },
};

static const NnSchemaKey adaptive_max_pool3d_schema[] = {
  { "output_size", NN_KIND_JSON, 0, 0, NULL, 0, 0, NULL,
    "output (d, h, w), one int for all, None keeps that input dim" },
  { "return_indices", NN_KIND_BOOL, 0, NN_KEY_OPTIONAL, "false", 0, 0, NULL,
    "also return the argmax positions" },
};

typedef enum { P_MAX, P_AVG, P_ADAPTIVE_AVG, P_ADAPTIVE_MAX } Kind;

typedef struct {
  gint64 k[3], s[3], p[3], d[3];
  gboolean ceil, include_pad, indices;
  gint64 divisor;  /* 0: none */
} Win;

/* Reads the sliding window of @self.  PyTorch checks its padding rule
 * when called, so does this (@check). */
static gboolean
read_window (NnModule *self, Kind kind, Win *w, gboolean check, GError **error)
{
  memset (w, 0, sizeof *w);
  for (guint i = 0; i < 3; i++)
    w->d[i] = 1;
  nn_module_config_ints (self, "kernel_size", w->k, 3);
  if (nn_module_config_is_null (self, "stride"))
    memcpy (w->s, w->k, sizeof w->k);
  else
    nn_module_config_ints (self, "stride", w->s, 3);
  nn_module_config_ints (self, "padding", w->p, 3);
  w->ceil = nn_module_config_bool (self, "ceil_mode");
  if (kind == P_MAX) {
    nn_module_config_ints (self, "dilation", w->d, 3);
    w->indices = nn_module_config_bool (self, "return_indices");
  } else {
    w->include_pad = nn_module_config_bool (self, "count_include_pad");
    if (!nn_module_config_is_null (self, "divisor_override"))
      w->divisor = nn_module_config_int (self, "divisor_override");
  }
  for (guint i = 0; check && i < 3; i++)
    if (w->p[i] > w->k[i] / 2) {
      g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH,
                   "pad should be at most half of kernel size, but got pad=%"
                   G_GINT64_FORMAT " and kernel_size=%" G_GINT64_FORMAT, w->p[i], w->k[i]);
      return FALSE;
    }
  return TRUE;
}

/* output_size as three extents, -1 for None; FALSE if it is not ints/None. */
static gboolean
read_output_size (NnModule *self, gint64 out[3], GError **error)
{
  JsonNode *n = nn_module_config_node (self, "output_size");
  gboolean ok = n != NULL;
  if (ok && JSON_NODE_HOLDS_VALUE (n) && json_node_get_value_type (n) == G_TYPE_INT64) {
    out[0] = out[1] = out[2] = json_node_get_int (n);
  } else if (ok && JSON_NODE_HOLDS_ARRAY (n) &&
             json_array_get_length (json_node_get_array (n)) == 3) {
    JsonArray *a = json_node_get_array (n);
    for (guint i = 0; ok && i < 3; i++) {
      JsonNode *e = json_array_get_element (a, i);
      if (JSON_NODE_HOLDS_NULL (e))
        out[i] = -1;
      else if (JSON_NODE_HOLDS_VALUE (e) && json_node_get_value_type (e) == G_TYPE_INT64)
        out[i] = json_node_get_int (e);
      else
        ok = FALSE;
    }
  } else {
    ok = FALSE;
  }
  for (guint i = 0; ok && i < 3; i++)
    ok = out[i] == -1 || out[i] >= 0;
  if (!ok)
    g_set_error (error, NN_DESCRIPTOR_ERROR, NN_DESCRIPTOR_ERROR_WRONG_KIND,
                 "key 'output_size' expects an int or a list of 3 ints or nulls");
  return ok;
}

static gboolean
pool3d_create (NnModule *self, GError **error)
{
  const char *type = nn_module_get_type_name (self);
  if (g_str_has_prefix (type, "Adaptive")) {
    gint64 o[3];
    return read_output_size (self, o, error);
  }
  Win w;
  return read_window (self, g_str_has_prefix (type, "Max") ? P_MAX : P_AVG, &w, FALSE,
                      error);
}

/* The window [a, b) of output position @o along a dim of extent @len. */
static void
window (Kind kind, const Win *w, guint i, gint64 o, gint64 len, gint64 olen,
        gint64 *a, gint64 *b)
{
  if (kind == P_ADAPTIVE_AVG || kind == P_ADAPTIVE_MAX) {
    *a = o * len / olen;
    *b = ((o + 1) * len + olen - 1) / olen;
  } else {
    *a = o * w->s[i] - w->p[i];
    *b = *a + (kind == P_MAX ? w->d[i] * (w->k[i] - 1) + 1 : w->k[i]);
  }
}

static NnValue *
pool3d_run (NnModule *self, const NnArgs *args, Kind kind, GError **error)
{
  NnTensor *input = nn_args_tensor (args, 0);
  const NnShape *s = &input->shape;
  gboolean adaptive = kind == P_ADAPTIVE_AVG || kind == P_ADAPTIVE_MAX;
  gboolean empty = FALSE;
  for (guint i = 0; i < s->ndim; i++)
    empty = empty || s->dims[i] == 0;
  if ((s->ndim != 4 && s->ndim != 5) || empty) {
    g_autofree char *found = nn_shape_to_string (s);
    /* PyTorch's wording, per function. */
    if (adaptive)
      g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH,
                   "adaptive_%s_pool3d(): Expected 4D or 5D tensor, but got%s %s",
                   kind == P_ADAPTIVE_AVG ? "avg" : "max",
                   kind == P_ADAPTIVE_AVG ? "" : ":", found);
    else
      g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH,
                   "non-empty 4D or 5D (batch mode) tensor expected for input, found %s",
                   found);
    return NULL;
  }
  guint nd = s->ndim;
  gint64 ext[3] = { s->dims[nd - 3], s->dims[nd - 2], s->dims[nd - 1] }, out[3];
  Win w = { 0 };
  gboolean indices;
  if (adaptive) {
    if (!read_output_size (self, out, error))
      return NULL;
    for (guint i = 0; i < 3; i++)
      if (out[i] == -1)
        out[i] = ext[i];
    indices = kind == P_ADAPTIVE_MAX && nn_module_config_bool (self, "return_indices");
  } else {
    if (!read_window (self, kind, &w, TRUE, error))
      return NULL;
    for (guint i = 0; i < 3; i++)
      out[i] = nn_pool_out_size (ext[i], w.k[i], w.p[i], w.s[i], w.d[i], w.ceil);
    if (out[0] <= 0 || out[1] <= 0 || out[2] <= 0) {
      if (kind == P_AVG)
        g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH,
                     "input image (T: %" G_GINT64_FORMAT " H: %" G_GINT64_FORMAT " W: %"
                     G_GINT64_FORMAT ") smaller than kernel size (kT: %" G_GINT64_FORMAT
                     " kH: %" G_GINT64_FORMAT " kW: %" G_GINT64_FORMAT ")", ext[0], ext[1],
                     ext[2], w.k[0], w.k[1], w.k[2]);
      else
        g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH,
                     "Given input size: (%" G_GINT64_FORMAT "x%" G_GINT64_FORMAT "x%"
                     G_GINT64_FORMAT "x%" G_GINT64_FORMAT "). Calculated output size: (%"
                     G_GINT64_FORMAT "x%" G_GINT64_FORMAT "x%" G_GINT64_FORMAT "x%"
                     G_GINT64_FORMAT "). Output size is too small", s->dims[nd - 4],
                     ext[0], ext[1], ext[2], s->dims[nd - 4], out[0], out[1], out[2]);
      return NULL;
    }
    indices = w.indices;
  }
  NnShape os = *s;
  for (guint i = 0; i < 3; i++)
    os.dims[nd - 3 + i] = out[i];
  gboolean meta = nn_tensor_is_meta (input);
  NnTensor *y = nn_lu_new_f32 (&os, meta);
  NnTensor *idx = !indices ? NULL : meta ? nn_tensor_new_meta (NN_DTYPE_I64, &os)
                                          : nn_tensor_new (NN_DTYPE_I64, &os);
  if (!y || (indices && !idx)) {
    if (y)
      nn_tensor_unref (y);
    return nn_lu_result (NULL, error);
  }
  if (!meta) {
    const float *x = nn_tensor_f32 (input);
    float *yd = nn_tensor_f32 (y);
    gint64 *yi = idx ? nn_tensor_i64 (idx) : NULL;
    gint64 vol = ext[0] * ext[1] * ext[2], ovol = out[0] * out[1] * out[2];
    gint64 planes = nn_lu_prod (s, 0, nd - 3);
    gboolean is_max = kind == P_MAX || kind == P_ADAPTIVE_MAX;
    for (gint64 pl = 0; pl < planes; pl++) {
      const float *xv = x + pl * vol;
      for (gint64 o = 0; o < ovol; o++) {
        gint64 oc[3] = { o / (out[1] * out[2]), (o / out[2]) % out[1], o % out[2] };
        gint64 a[3], b[3];
        for (guint i = 0; i < 3; i++)
          window (kind, &w, i, oc[i], ext[i], out[i], &a[i], &b[i]);
        if (is_max) {
          float best = -INFINITY;
          gint64 arg = -1;
          gint64 step[3] = { 1, 1, 1 };
          if (kind == P_MAX)
            memcpy (step, w.d, sizeof step);
          for (gint64 i0 = a[0]; i0 < b[0]; i0 += step[0])
            for (gint64 i1 = a[1]; i1 < b[1]; i1 += step[1])
              for (gint64 i2 = a[2]; i2 < b[2]; i2 += step[2]) {
                if (i0 < 0 || i0 >= ext[0] || i1 < 0 || i1 >= ext[1] || i2 < 0 ||
                    i2 >= ext[2])
                  continue;
                gint64 at = (i0 * ext[1] + i1) * ext[2] + i2;
                /* NaN wins, as in PyTorch's max pooling. */
                if (arg < 0 || xv[at] > best || isnan (xv[at])) {
                  best = xv[at];
                  arg = at;
                }
              }
          yd[pl * ovol + o] = best;
          if (yi)
            yi[pl * ovol + o] = arg;
          continue;
        }
        /* Average: the window clipped to the padded input sets the
         * count_include_pad divisor, clipped to the input the sum. */
        gint64 padded = 1, inside = 1, lo[3], hi[3];
        for (guint i = 0; i < 3; i++) {
          gint64 end = adaptive ? b[i] : MIN (b[i], ext[i] + w.p[i]);
          padded *= end - a[i];
          lo[i] = MAX (a[i], 0);
          hi[i] = MIN (b[i], ext[i]);
          inside *= MAX (hi[i] - lo[i], 0);
        }
        double sum = 0.0;
        for (gint64 i0 = lo[0]; i0 < hi[0]; i0++)
          for (gint64 i1 = lo[1]; i1 < hi[1]; i1++)
            for (gint64 i2 = lo[2]; i2 < hi[2]; i2++)
              sum += xv[(i0 * ext[1] + i1) * ext[2] + i2];
        gint64 div = w.divisor ? w.divisor
                               : (!adaptive && w.include_pad) ? padded : inside;
        yd[pl * ovol + o] = (float) (div > 0 ? sum / (double) div : 0.0);
      }
    }
  }
  if (!indices)
    return nn_value_take_tensor (y);
  NnValue *t = nn_value_new_tuple ();
  nn_value_append (t, nn_value_take_tensor (y));
  nn_value_append (t, nn_value_take_tensor (idx));
  return t;
}

#define POOL3D_FORWARD(fn_, kind_)                                        \
  static NnValue *fn_ (NnModule *self, NnCall *call, const NnArgs *args,  \
                       GError **error)                                    \
  {                                                                       \
    return pool3d_run (self, args, kind_, error);                         \
  }

POOL3D_FORWARD (max_pool3d_forward, P_MAX)
POOL3D_FORWARD (avg_pool3d_forward, P_AVG)
POOL3D_FORWARD (adaptive_avg_pool3d_forward, P_ADAPTIVE_AVG)
POOL3D_FORWARD (adaptive_max_pool3d_forward, P_ADAPTIVE_MAX)

/* The keys print as given (an int or a tuple); a None stride as the
 * kernel, as PyTorch stores it. */
static char *
window_text (NnModule *self, const char *key)
{
  if (strcmp (key, "stride") == 0 && nn_module_config_is_null (self, "stride"))
    return nn_module_config_repr (self, "kernel_size");
  return nn_module_config_repr (self, key);
}

static char *
max_pool3d_extra_repr (NnModule *self)
{
  g_autofree char *k = window_text (self, "kernel_size");
  g_autofree char *s = window_text (self, "stride");
  g_autofree char *p = window_text (self, "padding");
  g_autofree char *d = window_text (self, "dilation");
  return g_strdup_printf ("kernel_size=%s, stride=%s, padding=%s, dilation=%s, "
                          "ceil_mode=%s", k, s, p, d,
                          nn_lu_py_bool (nn_module_config_bool (self, "ceil_mode")));
}

static char *
avg_pool3d_extra_repr (NnModule *self)
{
  g_autofree char *k = window_text (self, "kernel_size");
  g_autofree char *s = window_text (self, "stride");
  g_autofree char *p = window_text (self, "padding");
  return g_strdup_printf ("kernel_size=%s, stride=%s, padding=%s", k, s, p);
}

/* output_size as given: 2, or (2, None, 3). */
static char *
adaptive_extra_repr (NnModule *self)
{
  JsonNode *n = nn_module_config_node (self, "output_size");
  if (!JSON_NODE_HOLDS_ARRAY (n))
    return g_strdup_printf ("output_size=%" G_GINT64_FORMAT, json_node_get_int (n));
  JsonArray *a = json_node_get_array (n);
  GString *s = g_string_new ("output_size=(");
  for (guint i = 0; i < 3; i++) {
    JsonNode *e = json_array_get_element (a, i);
    if (JSON_NODE_HOLDS_NULL (e))
      g_string_append_printf (s, "%sNone", i ? ", " : "");
    else
      g_string_append_printf (s, "%s%" G_GINT64_FORMAT, i ? ", " : "",
                              json_node_get_int (e));
  }
  g_string_append_c (s, ')');
  return g_string_free (s, FALSE);
}

static const NnArgSpec pool3d_args[] = {
  { "input", NN_ARG_TENSOR, 0, 0, NULL, "float32 [N, C, D, H, W] or [C, D, H, W]" },
};

#define POOL3D_TYPE(var_, name_, doc_, schema_, forward_, repr_)          \
  const NnLayerType var_ = {                                              \
    .struct_size = sizeof (NnLayerType), .name = name_, .doc = doc_,      \
    .schema = schema_, .n_schema = G_N_ELEMENTS (schema_),                \
    .args = pool3d_args, .n_args = G_N_ELEMENTS (pool3d_args),            \
    .create = pool3d_create, .forward = forward_, .infer = forward_,      \
    .extra_repr = repr_,                                                  \
  }

POOL3D_TYPE (nn_max_pool3d_type, "MaxPool3d", "max over sliding windows of [N, C, D, H, W]",
             max_pool3d_schema, max_pool3d_forward, max_pool3d_extra_repr);
POOL3D_TYPE (nn_avg_pool3d_type, "AvgPool3d", "mean over sliding windows of [N, C, D, H, W]",
             avg_pool3d_schema, avg_pool3d_forward, avg_pool3d_extra_repr);
POOL3D_TYPE (nn_adaptive_avg_pool3d_type, "AdaptiveAvgPool3d",
             "mean over output_size adaptive windows of [N, C, D, H, W]",
             adaptive_avg_pool3d_schema, adaptive_avg_pool3d_forward, adaptive_extra_repr);
POOL3D_TYPE (nn_adaptive_max_pool3d_type, "AdaptiveMaxPool3d",
             "max over output_size adaptive windows of [N, C, D, H, W]",
             adaptive_max_pool3d_schema, adaptive_max_pool3d_forward, adaptive_extra_repr);
