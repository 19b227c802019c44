/* RNN, LSTM and GRU, as torch.nn defines them in eval mode: num_layers,
 * bidirectional, batch_first, bias, LSTM's proj_size, initial states,
 * unbatched input, and PyTorch's results (output, h_n) and (output, (h_n,
 * c_n)).  Parameters weight_ih_l{k}[_reverse], ... in PyTorch's order;
 * dropout between layers is training-only. */
#include "recurrent.h"
#include "nn-blas.h"
#include "../common/nn-layer-util.h"

static const char *const nonlinearities[] = { "tanh", "relu", NULL };

#define RNN_COMMON_KEYS                                                       \
  { "input_size", NN_KIND_INT, 0, NN_KEY_HAS_MIN, NULL, 1, 0, NULL,           \
    "features of each input step" },                                          \
  { "hidden_size", NN_KIND_INT, 0, NN_KEY_HAS_MIN, NULL, 1, 0, NULL,          \
    "features of the hidden state" },                                         \
  { "num_layers", NN_KIND_INT, 0, NN_KEY_OPTIONAL | NN_KEY_HAS_MIN, "1", 1,   \
    0, NULL, "stacked layers" }

#define RNN_TAIL_KEYS                                                         \
  { "bias", NN_KIND_BOOL, 0, NN_KEY_OPTIONAL, "true", 0, 0, NULL,             \
    "bias_ih and bias_hh" },                                                  \
  { "batch_first", NN_KIND_BOOL, 0, NN_KEY_OPTIONAL, "false", 0, 0, NULL,     \
    "input and output are [N, L, *] instead of [L, N, *]" },                  \
  { "dropout", NN_KIND_FLOAT, 0, NN_KEY_OPTIONAL | NN_KEY_HAS_MIN             \
    | NN_KEY_HAS_MAX, "0.0", 0, 1, NULL,                                      \
    "dropout between layers (training only)" },                               \
  { "bidirectional", NN_KIND_BOOL, 0, NN_KEY_OPTIONAL, "false", 0, 0, NULL,   \
    "also run each layer backwards" }

static const NnSchemaKey rnn_schema[] = {
  RNN_COMMON_KEYS,
  { "nonlinearity", NN_KIND_ENUM, 0, NN_KEY_OPTIONAL, "\"tanh\"", 0, 0,
    nonlinearities, "tanh or relu" },
  RNN_TAIL_KEYS,
};
static const NnSchemaKey gru_schema[] = { RNN_COMMON_KEYS, RNN_TAIL_KEYS };
static const NnSchemaKey lstm_schema[] = {
  RNN_COMMON_KEYS,
  RNN_TAIL_KEYS,
  { "proj_size", NN_KIND_INT, 0, NN_KEY_OPTIONAL | NN_KEY_HAS_MIN, "0", 0, 0,
    NULL, "project h to this size (0: none); less than hidden_size" },
};

static const NnArgSpec rnn_args[] = {
  { "input", NN_ARG_TENSOR, 0, 0, NULL, "[L, N, input_size], [N, L, *] "
    "batch_first, or unbatched [L, input_size]" },
  { "hx", NN_ARG_TENSOR | NN_ARG_NONE, 0, NN_ARG_OPTIONAL, "null",
    "initial h [D * num_layers, N, hidden]; None: zeros" },
};
static const NnArgSpec lstm_args[] = {
  { "input", NN_ARG_TENSOR, 0, 0, NULL, "[L, N, input_size], [N, L, *] "
    "batch_first, or unbatched [L, input_size]" },
  { "hx", NN_ARG_SEQ | NN_ARG_NONE, 0, NN_ARG_OPTIONAL | NN_ARG_CHECK_ITEMS,
    "null", "(h_0, c_0); None: zeros" },
};

typedef struct {
  NnRnnMode mode;
  gint64 in, hidden, out, layers, dirs;
  gboolean batch_first;
} Rnn;

static gboolean
rnn_setup (NnModule *self, NnRnnMode mode, GError **error)
{
  Rnn *r = g_new0 (Rnn, 1);
  nn_module_set_private (self, r);
  r->mode = mode;
  if (mode != NN_RNN_LSTM && mode != NN_RNN_GRU
      && !nn_rnn_read_nonlinearity (self, &r->mode, error))
    return FALSE;
  r->in = nn_module_config_int (self, "input_size");
  r->hidden = nn_module_config_int (self, "hidden_size");
  r->layers = nn_module_config_int (self, "num_layers");
  r->dirs = nn_module_config_bool (self, "bidirectional") ? 2 : 1;
  r->batch_first = nn_module_config_bool (self, "batch_first");
  gint64 proj = mode == NN_RNN_LSTM ? nn_module_config_int (self, "proj_size") : 0;
  if (proj >= r->hidden) {
    g_set_error (error, NN_DESCRIPTOR_ERROR, NN_DESCRIPTOR_ERROR_OUT_OF_RANGE,
                 "proj_size has to be smaller than hidden_size (found "
                 "proj_size=%" G_GINT64_FORMAT ", hidden_size=%" G_GINT64_FORMAT
                 ")", proj, r->hidden);
    return FALSE;
  }
  r->out = proj > 0 ? proj : r->hidden;
  gint64 gate = nn_rnn_gates (r->mode) * r->hidden;
  gboolean bias = nn_module_config_bool (self, "bias");
  for (gint64 k = 0; k < r->layers; k++)
    for (gint64 d = 0; d < r->dirs; d++) {
      const char *sfx = d ? "_reverse" : "";
      gint64 lin = k == 0 ? r->in : r->out * r->dirs;
      NnShape wih = { 2, { gate, lin } }, whh = { 2, { gate, r->out } };
      NnShape b = { 1, { gate } }, whr = { 2, { proj, r->hidden } };
      g_autofree char *n1 = g_strdup_printf ("weight_ih_l%" G_GINT64_FORMAT "%s", k, sfx);
      g_autofree char *n2 = g_strdup_printf ("weight_hh_l%" G_GINT64_FORMAT "%s", k, sfx);
      g_autofree char *n3 = g_strdup_printf ("bias_ih_l%" G_GINT64_FORMAT "%s", k, sfx);
      g_autofree char *n4 = g_strdup_printf ("bias_hh_l%" G_GINT64_FORMAT "%s", k, sfx);
      g_autofree char *n5 = g_strdup_printf ("weight_hr_l%" G_GINT64_FORMAT "%s", k, sfx);
      nn_module_add_parameter (self, n1, NN_DTYPE_F32, &wih);
      nn_module_add_parameter (self, n2, NN_DTYPE_F32, &whh);
      if (bias) {
        nn_module_add_parameter (self, n3, NN_DTYPE_F32, &b);
        nn_module_add_parameter (self, n4, NN_DTYPE_F32, &b);
      }
      if (proj > 0)
        nn_module_add_parameter (self, n5, NN_DTYPE_F32, &whr);
    }
  return TRUE;
}

static gboolean rnn_create (NnModule *self, GError **error) { return rnn_setup (self, NN_RNN_TANH, error); }
static gboolean lstm_create (NnModule *self, GError **error) { return rnn_setup (self, NN_RNN_LSTM, error); }
static gboolean gru_create (NnModule *self, GError **error) { return rnn_setup (self, NN_RNN_GRU, error); }

static void
rnn_destroy (NnModule *self)
{
  g_free (nn_module_get_private (self));
}

static const float *
param (NnModule *self, const char *fmt, gint64 k, gint64 d)
{
  g_autofree char *name = g_strdup_printf (fmt, k, d ? "_reverse" : "");
  NnTensor *t = nn_module_get_parameter (self, name);
  return t ? nn_tensor_f32 (t) : NULL;
}

/* Checks initial state @t against [D * layers, (N,) size]; @which names
 * it in PyTorch's words ("hidden", "hidden[0]"). */
static gboolean
check_state (NnTensor *t, gboolean batched, gint64 rows, gint64 n, gint64 size,
             const char *which, GError **error)
{
  NnShape want = { 0 };
  want.dims[want.ndim++] = rows;
  if (batched)
    want.dims[want.ndim++] = n;
  want.dims[want.ndim++] = size;
  if (nn_shape_equal (&t->shape, &want))
    return TRUE;
  g_autofree char *found = nn_shape_to_string (&t->shape);
  GString *w = g_string_new ("(");
  for (guint i = 0; i < want.ndim; i++)
    g_string_append_printf (w, "%s%" G_GINT64_FORMAT, i ? ", " : "", want.dims[i]);
  g_string_append_c (w, ')');
  g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH,
               "Expected %s size %s, got %s", which, w->str, found);
  g_string_free (w, TRUE);
  return FALSE;
}

/* Reads hx into @h0 and (LSTM) @c0 (transfer none, nullable: zeros). */
static gboolean
read_hx (const Rnn *r, const NnArgs *args, gboolean batched, gint64 n,
         NnTensor **h0, NnTensor **c0, GError **error)
{
  NnValue *hx = nn_args_get (args, 1);
  *h0 = *c0 = NULL;
  if (nn_value_is_none (hx))
    return TRUE;
  guint want = batched ? 3 : 2;
  gint64 rows = r->dirs * r->layers;
  if (r->mode != NN_RNN_LSTM) {
    *h0 = nn_value_get_tensor (hx);
    if ((*h0)->shape.ndim != want) {
      g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH,
                   "For %s %u-D input, hx should also be %u-D but got %u-D "
                   "tensor", batched ? "batched" : "unbatched", want,
                   want, (*h0)->shape.ndim);
      return FALSE;
    }
    return check_state (*h0, batched, rows, n, r->out, "hidden", error);
  }
  if (nn_value_n_items (hx) != 2
      || nn_value_kind (nn_value_item (hx, 0)) != NN_VALUE_TENSOR
      || nn_value_kind (nn_value_item (hx, 1)) != NN_VALUE_TENSOR) {
    g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH,
                 "LSTM: expected hx to be a tuple (h_0, c_0) of two tensors");
    return FALSE;
  }
  *h0 = nn_value_get_tensor (nn_value_item (hx, 0));
  *c0 = nn_value_get_tensor (nn_value_item (hx, 1));
  if ((*h0)->shape.ndim != want || (*c0)->shape.ndim != want) {
    g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH,
                 "For %s %u-D input, hx and cx should also be %u-D but got "
                 "(%u-D, %u-D) tensors", batched ? "batched" : "unbatched",
                 want, want, (*h0)->shape.ndim, (*c0)->shape.ndim);
    return FALSE;
  }
  return check_state (*h0, batched, rows, n, r->out, "hidden[0]", error)
         && check_state (*c0, batched, rows, n, r->hidden, "hidden[1]", error);
}

static NnValue *
rnn_forward (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  const Rnn *r = nn_module_get_private (self);
  NnTensor *input = nn_args_tensor (args, 0);
  const NnShape *s = &input->shape;
  if (s->ndim != 2 && s->ndim != 3) {
    g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH,
                 "%s: Expected input to be 2-D or 3-D but received %u-D tensor",
                 nn_module_get_type_name (self), s->ndim);
    return NULL;
  }
  if (s->dims[s->ndim - 1] != r->in) {
    g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH,
                 "input.size(-1) must be equal to input_size. Expected %"
                 G_GINT64_FORMAT ", got %" G_GINT64_FORMAT, r->in,
                 s->dims[s->ndim - 1]);
    return NULL;
  }
  gboolean batched = s->ndim == 3;
  gint64 len = batched && r->batch_first ? s->dims[1] : s->dims[0];
  gint64 n = batched ? (r->batch_first ? s->dims[0] : s->dims[1]) : 1;
  NnTensor *h0, *c0;
  if (!read_hx (r, args, batched, n, &h0, &c0, error))
    return NULL;
  gint64 rows = r->dirs * r->layers, width = r->dirs * r->out;
  NnShape os = *s, hs = { 0 }, cs;
  os.dims[s->ndim - 1] = width;
  hs.dims[hs.ndim++] = rows;
  if (batched)
    hs.dims[hs.ndim++] = n;
  hs.dims[hs.ndim++] = r->out;
  cs = hs;
  cs.dims[cs.ndim - 1] = r->hidden;
  gboolean meta = nn_tensor_is_meta (input);
  if (!meta && !nn_blas_ready (error))
    return NULL;
  NnTensor *out = nn_lu_new_f32 (&os, meta), *hn = nn_lu_new_f32 (&hs, meta);
  NnTensor *cn = r->mode == NN_RNN_LSTM ? nn_lu_new_f32 (&cs, meta) : NULL;
  if (!out || !hn || (r->mode == NN_RNN_LSTM && !cn)) {
    g_clear_pointer (&out, nn_tensor_unref);
    g_clear_pointer (&hn, nn_tensor_unref);
    g_clear_pointer (&cn, nn_tensor_unref);
    return nn_lu_result (NULL, error);
  }
  if (!meta) {
    /* Time-major working copies: x [L, N, in], each layer's y [L, N, D * out]. */
    gint64 lin = r->in;
    float *x = g_new (float, MAX (len * n * r->in, 1));
    const float *src = nn_tensor_f32 (input);
    for (gint64 t = 0; t < len; t++)
      for (gint64 b = 0; b < n; b++)
        memcpy (x + (t * n + b) * r->in,
                src + (batched && r->batch_first ? b * len + t : t * n + b) * r->in,
                sizeof (float) * r->in);
    float *h = g_new (float, MAX (n * r->out, 1));
    float *c = g_new0 (float, MAX (n * r->hidden, 1));
    float *hn_d = nn_tensor_f32 (hn), *cn_d = cn ? nn_tensor_f32 (cn) : NULL;
    for (gint64 k = 0; k < r->layers; k++) {
      float *y = g_new (float, MAX (len * n * width, 1));
      for (gint64 d = 0; d < r->dirs; d++) {
        gint64 row = k * r->dirs + d;
        if (h0)
          memcpy (h, nn_tensor_f32 (h0) + row * n * r->out, sizeof (float) * n * r->out);
        else
          memset (h, 0, sizeof (float) * n * r->out);
        if (c0)
          memcpy (c, nn_tensor_f32 (c0) + row * n * r->hidden, sizeof (float) * n * r->hidden);
        else
          memset (c, 0, sizeof (float) * n * r->hidden);
        NnRnnWeights w = {
          param (self, "weight_ih_l%" G_GINT64_FORMAT "%s", k, d),
          param (self, "weight_hh_l%" G_GINT64_FORMAT "%s", k, d),
          param (self, "bias_ih_l%" G_GINT64_FORMAT "%s", k, d),
          param (self, "bias_hh_l%" G_GINT64_FORMAT "%s", k, d),
          param (self, "weight_hr_l%" G_GINT64_FORMAT "%s", k, d),
        };
        nn_rnn_run_direction (r->mode, &w, x, len, n, lin, r->hidden, r->out,
                              h, c, y + d * r->out, n * width, width, d == 1);
        memcpy (hn_d + row * n * r->out, h, sizeof (float) * n * r->out);
        if (cn_d)
          memcpy (cn_d + row * n * r->hidden, c, sizeof (float) * n * r->hidden);
      }
      g_free (x);
      x = y;
      lin = width;
    }
    float *dst = nn_tensor_f32 (out);
    for (gint64 t = 0; t < len; t++)
      for (gint64 b = 0; b < n; b++)
        memcpy (dst + (batched && r->batch_first ? b * len + t : t * n + b) * width,
                x + (t * n + b) * width, sizeof (float) * width);
    g_free (x);
    g_free (h);
    g_free (c);
  }
  NnValue *res = nn_value_new_tuple ();
  nn_value_append (res, nn_value_take_tensor (out));
  if (r->mode == NN_RNN_LSTM) {
    NnValue *state = nn_value_new_tuple ();
    nn_value_append (state, nn_value_take_tensor (hn));
    nn_value_append (state, nn_value_take_tensor (cn));
    nn_value_append (res, state);
  } else {
    nn_value_append (res, nn_value_take_tensor (hn));
  }
  return res;
}

static char *
rnn_extra_repr (NnModule *self)
{
  const Rnn *r = nn_module_get_private (self);
  GString *s = g_string_new (NULL);
  g_string_append_printf (s, "%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT, r->in,
                          r->hidden);
  if (r->out != r->hidden)
    g_string_append_printf (s, ", proj_size=%" G_GINT64_FORMAT, r->out);
  if (r->layers != 1)
    g_string_append_printf (s, ", num_layers=%" G_GINT64_FORMAT, r->layers);
  if (!nn_module_config_bool (self, "bias"))
    g_string_append (s, ", bias=False");
  if (r->batch_first)
    g_string_append (s, ", batch_first=True");
  if (nn_module_config_float (self, "dropout") != 0.0) {
    g_autofree char *p = nn_module_config_repr (self, "dropout");
    g_string_append_printf (s, ", dropout=%s", p);
  }
  if (r->dirs == 2)
    g_string_append (s, ", bidirectional=True");
  return g_string_free (s, FALSE);
}

#define RNN_TYPE(var_, name_, doc_, schema_, args_, create_)               \
  const NnLayerType var_ = {                                              \
    .struct_size = sizeof (NnLayerType), .name = name_, .doc = doc_,      \
    .schema = schema_, .n_schema = G_N_ELEMENTS (schema_),                \
    .args = args_, .n_args = G_N_ELEMENTS (args_),                        \
    .create = create_, .destroy = rnn_destroy, .forward = rnn_forward,    \
    .infer = rnn_forward, .extra_repr = rnn_extra_repr,                   \
    .reset_parameters = nn_rnn_reset_parameters,                          \
    .count_macs = nn_rnn_count_macs,                                      \
  }

RNN_TYPE (nn_rnn_type, "RNN", "Elman RNN (tanh or relu); returns (output, h_n)",
          rnn_schema, rnn_args, rnn_create);
RNN_TYPE (nn_lstm_type, "LSTM", "LSTM; returns (output, (h_n, c_n))",
          lstm_schema, lstm_args, lstm_create);
RNN_TYPE (nn_gru_type, "GRU", "GRU; returns (output, h_n)", gru_schema,
          rnn_args, gru_create);
