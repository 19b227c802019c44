/* MultiheadAttention, as torch.nn.MultiheadAttention in eval mode:
 * packed in_proj_weight or separate q/k/v_proj_weight (kdim, vdim),
 * in_proj_bias, add_bias_kv, add_zero_attn, bool and float attn_mask,
 * key_padding_mask, batch_first, unbatched input, need_weights and
 * average_attn_weights; returns (attn_output, attn_weights or None).
 *
 * Child: out_proj, a Linear(embed_dim, embed_dim) (class
 * NonDynamicallyQuantizableLinear in PyTorch), called through the core so
 * its hooks fire and a replacement is used. */
#include "attention.h"
#include "../common/nn-layer-util.h"

#include <cblas.h>
#include "nn-blas.h"

static const NnSchemaKey mha_schema[] = {
  { "embed_dim", NN_KIND_INT, 0, NN_KEY_HAS_MIN, NULL, 1, 0, NULL,
    "model dimension E" },
  { "num_heads", NN_KIND_INT, 0, NN_KEY_HAS_MIN, NULL, 1, 0, NULL,
    "parallel heads; divides embed_dim" },
  { "dropout", NN_KIND_FLOAT, 0, NN_KEY_OPTIONAL | NN_KEY_HAS_MIN
    | NN_KEY_HAS_MAX, "0.0", 0, 1, NULL, "attention dropout (training only)" },
  { "bias", NN_KIND_BOOL, 0, NN_KEY_OPTIONAL, "true", 0, 0, NULL,
    "in_proj_bias and out_proj.bias" },
  { "add_bias_kv", NN_KIND_BOOL, 0, NN_KEY_OPTIONAL, "false", 0, 0, NULL,
    "append learnt bias_k / bias_v to the keys and values" },
  { "add_zero_attn", NN_KIND_BOOL, 0, NN_KEY_OPTIONAL, "false", 0, 0, NULL,
    "append a zero key and value" },
  { "kdim", NN_KIND_INT, 0, NN_KEY_OPTIONAL | NN_KEY_NULLABLE | NN_KEY_HAS_MIN,
    "null", 1, 0, NULL, "key features (None: embed_dim)" },
  { "vdim", NN_KIND_INT, 0, NN_KEY_OPTIONAL | NN_KEY_NULLABLE | NN_KEY_HAS_MIN,
    "null", 1, 0, NULL, "value features (None: embed_dim)" },
  { "batch_first", NN_KIND_BOOL, 0, NN_KEY_OPTIONAL, "false", 0, 0, NULL,
    "inputs and output are [N, L, E] instead of [L, N, E]" },
};

static const NnArgSpec mha_args[] = {
  { "query", NN_ARG_TENSOR, 0, 0, NULL, "[L, N, E], [N, L, E] or [L, E]" },
  { "key", NN_ARG_TENSOR, 0, 0, NULL, "[S, N, kdim]" },
  { "value", NN_ARG_TENSOR, 0, 0, NULL, "[S, N, vdim]" },
  { "key_padding_mask", NN_ARG_TENSOR | NN_ARG_NONE, NN_ATT_MASK_DTYPES,
    NN_ARG_OPTIONAL, "null", "[N, S]: True (or -inf) keys are ignored" },
  { "need_weights", NN_ARG_BOOL, 0, NN_ARG_OPTIONAL, "true",
    "also return the attention weights" },
  { "attn_mask", NN_ARG_TENSOR | NN_ARG_NONE, NN_ATT_MASK_DTYPES,
    NN_ARG_OPTIONAL, "null", "[L, S] or [N * H, L, S]: bool True = not "
    "allowed, float added" },
  { "average_attn_weights", NN_ARG_BOOL, 0, NN_ARG_OPTIONAL, "true",
    "average the weights over heads" },
};

typedef struct {
  gint64 e, heads, kdim, vdim;
  gboolean packed, bias_kv, zero_attn, batch_first;
} Mha;

static gboolean
mha_create (NnModule *self, GError **error)
{
  Mha *m = g_new0 (Mha, 1);
  nn_module_set_private (self, m);
  m->e = nn_module_config_int (self, "embed_dim");
  m->heads = nn_module_config_int (self, "num_heads");
  m->kdim = nn_module_config_is_null (self, "kdim") ? m->e : nn_module_config_int (self, "kdim");
  m->vdim = nn_module_config_is_null (self, "vdim") ? m->e : nn_module_config_int (self, "vdim");
  m->packed = m->kdim == m->e && m->vdim == m->e;
  m->bias_kv = nn_module_config_bool (self, "add_bias_kv");
  m->zero_attn = nn_module_config_bool (self, "add_zero_attn");
  m->batch_first = nn_module_config_bool (self, "batch_first");
  if (m->e % m->heads) {
    g_set_error (error, NN_DESCRIPTOR_ERROR, NN_DESCRIPTOR_ERROR_OUT_OF_RANGE,
                 "embed_dim must be divisible by num_heads (found embed_dim=%"
                 G_GINT64_FORMAT ", num_heads=%" G_GINT64_FORMAT ")", m->e,
                 m->heads);
    return FALSE;
  }
  /* PyTorch's registration order: projections, in_proj_bias, bias_k/v;
   * out_proj.* follow as the child's. */
  if (m->packed) {
    NnShape w = { 2, { 3 * m->e, m->e } };
    nn_module_add_parameter (self, "in_proj_weight", NN_DTYPE_F32, &w);
  } else {
    NnShape q = { 2, { m->e, m->e } }, k = { 2, { m->e, m->kdim } };
    NnShape v = { 2, { m->e, m->vdim } };
    nn_module_add_parameter (self, "q_proj_weight", NN_DTYPE_F32, &q);
    nn_module_add_parameter (self, "k_proj_weight", NN_DTYPE_F32, &k);
    nn_module_add_parameter (self, "v_proj_weight", NN_DTYPE_F32, &v);
  }
  if (nn_module_config_bool (self, "bias")) {
    NnShape b = { 1, { 3 * m->e } };
    nn_module_add_parameter (self, "in_proj_bias", NN_DTYPE_F32, &b);
  }
  if (m->bias_kv) {
    NnShape b = { 3, { 1, 1, m->e } };
    nn_module_add_parameter (self, "bias_k", NN_DTYPE_F32, &b);
    nn_module_add_parameter (self, "bias_v", NN_DTYPE_F32, &b);
  }
  return TRUE;
}

static void
mha_destroy (NnModule *self)
{
  g_free (nn_module_get_private (self));
}

static gboolean
mha_check (NnModule *self, GError **error)
{
  return nn_att_require_child (self, "out_proj", "a Linear(embed_dim, embed_dim)", error);
}

/* xavier_uniform_ on the projections, zero biases, xavier_normal_ on
 * bias_k/v, as _reset_parameters (out_proj.bias is zeroed there too, but
 * it is the child's: Linear's own reset initialises it). */
static void
mha_reset_parameters (NnModule *self, GRand *rng)
{
  const Mha *m = nn_module_get_private (self);
  if (m->packed) {
    /* fan_in E, fan_out 3E: bound sqrt(6 / (E + 3E)). */
    nn_module_init_uniform (self, "in_proj_weight", sqrt (6.0 / (4.0 * m->e)), rng);
  } else {
    nn_module_init_uniform (self, "q_proj_weight", sqrt (6.0 / (2.0 * m->e)), rng);
    nn_module_init_uniform (self, "k_proj_weight", sqrt (6.0 / (double) (m->e + m->kdim)), rng);
    nn_module_init_uniform (self, "v_proj_weight", sqrt (6.0 / (double) (m->e + m->vdim)), rng);
  }
  nn_lu_fill (self, "in_proj_bias", 0.0f);
  /* bias_k [1, 1, E]: fan_in = 1 * E, fan_out = 1 * E. */
  double std = sqrt (2.0 / (2.0 * m->e));
  const char *names[] = { "bias_k", "bias_v" };
  for (guint i = 0; i < 2; i++) {
    NnTensor *t = nn_module_get_parameter (self, names[i]);
    if (t)
      for (gint64 j = 0; j < nn_tensor_numel (t); j++)
        nn_tensor_f32 (t)[j] = (float) (std * nn_lu_randn (rng));
  }
}

static const float *
param (NnModule *self, const char *name)
{
  NnTensor *t = nn_module_get_parameter (self, name);
  return t ? nn_tensor_f32 (t) : NULL;
}

/* [B, T, F] (batch first) or [T, B, F] to time-major [T, B, F]. */
static float *
time_major (const float *x, gint64 t, gint64 b, gint64 f, gboolean batch_first)
{
  float *y = g_new (float, MAX (t * b * f, 1));
  for (gint64 i = 0; i < t; i++)
    for (gint64 j = 0; j < b; j++)
      memcpy (y + (i * b + j) * f, x + (batch_first ? j * t + i : i * b + j) * f,
              sizeof (float) * f);
  return y;
}

static double
mask_at (NnTensor *mask, gint64 i)
{
  if (mask->dtype == NN_DTYPE_BOOL)
    return ((const guint8 *) mask->data)[i] ? -INFINITY : 0.0;
  return nn_tensor_f32 (mask)[i];
}

static gboolean
check_shapes (const Mha *m, NnTensor *q, NnTensor *k, NnTensor *v,
              NnTensor *kpm, NnTensor *am, GError **error)
{
  guint nd = q->shape.ndim;
  if (nd != 2 && nd != 3) {
    g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH,
                 "query should be unbatched 2D or batched 3D tensor but "
                 "received %u-D query tensor", nd);
    return FALSE;
  }
  const char *kind = nd == 3 ? "batched (3-D)" : "unbatched (2-D)";
  if (k->shape.ndim != nd || v->shape.ndim != nd) {
    g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH,
                 "For %s `query`, expected `key` and `value` to be %u-D but "
                 "found %u-D and %u-D tensors respectively", kind, nd,
                 k->shape.ndim, v->shape.ndim);
    return FALSE;
  }
  if (kpm && kpm->shape.ndim != nd - 1) {
    g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH,
                 "For %s `query`, expected `key_padding_mask` to be `None` or "
                 "%u-D but found %u-D tensor instead", kind, nd - 1,
                 kpm->shape.ndim);
    return FALSE;
  }
  if (am && am->shape.ndim != 2 && am->shape.ndim != 3) {
    g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH,
                 "For %s `query`, expected `attn_mask` to be `None`, 2-D or "
                 "3-D but found %u-D tensor instead", kind, am->shape.ndim);
    return FALSE;
  }
  gint64 e = q->shape.dims[nd - 1];
  if (e != m->e) {
    g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH,
                 "was expecting embedding dimension of %" G_GINT64_FORMAT
                 ", but got %" G_GINT64_FORMAT, m->e, e);
    return FALSE;
  }
  gboolean same = m->packed ? nn_shape_equal (&k->shape, &v->shape)
                            : k->shape.dims[0] == v->shape.dims[0]
                              && (nd == 2 || k->shape.dims[1] == v->shape.dims[1]);
  if (!same) {
    g_autofree char *ks = nn_shape_to_string (&k->shape);
    g_autofree char *vs = nn_shape_to_string (&v->shape);
    g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH,
                 m->packed ? "key shape %s does not match value shape %s"
                           : "key's sequence and batch dims of %s do not match "
                             "value's of %s", ks, vs);
    return FALSE;
  }
  if (k->shape.dims[nd - 1] != m->kdim || v->shape.dims[nd - 1] != m->vdim) {
    g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH,
                 "expected key features %" G_GINT64_FORMAT " and value "
                 "features %" G_GINT64_FORMAT ", found %" G_GINT64_FORMAT
                 " and %" G_GINT64_FORMAT, m->kdim, m->vdim,
                 k->shape.dims[nd - 1], v->shape.dims[nd - 1]);
    return FALSE;
  }
  return TRUE;
}

static NnValue *
mha_forward (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  const Mha *m = nn_module_get_private (self);
  NnTensor *qt = nn_args_tensor (args, 0), *kt = nn_args_tensor (args, 1);
  NnTensor *vt = nn_args_tensor (args, 2), *kpm = nn_args_tensor (args, 3);
  NnTensor *am = nn_args_tensor (args, 5);
  gboolean need_weights = nn_args_bool (args, 4), average = nn_args_bool (args, 6);
  if (!check_shapes (m, qt, kt, vt, kpm, am, error))
    return NULL;
  gboolean batched = qt->shape.ndim == 3, bf = batched && m->batch_first;
  gint64 e = m->e, h = m->heads, hd = e / h;
  gint64 l = bf ? qt->shape.dims[1] : qt->shape.dims[0];
  gint64 n = batched ? (bf ? qt->shape.dims[0] : qt->shape.dims[1]) : 1;
  gint64 s0 = bf ? kt->shape.dims[1] : kt->shape.dims[0];
  gint64 kn = batched ? (bf ? kt->shape.dims[0] : kt->shape.dims[1]) : 1;
  if (kn != n) {
    g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH,
                 "expected key and value with batch size %" G_GINT64_FORMAT
                 " like the query, found %" G_GINT64_FORMAT, n, kn);
    return NULL;
  }
  gint64 s = s0 + m->bias_kv + m->zero_attn;
  if (am) {
    gboolean two = am->shape.ndim == 2;
    NnShape want = two ? (NnShape) { 2, { l, s0 } }
                       : (NnShape) { 3, { (batched ? n : 1) * h, l, s0 } };
    if (!nn_shape_equal (&am->shape, &want)) {
      g_autofree char *f = nn_shape_to_string (&am->shape);
      g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH,
                   two ? "The shape of the 2D attn_mask is %s, but should be "
                         "(%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT ")."
                       : "The shape of the 3D attn_mask is %s, but should be "
                         "(%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT ", %"
                         G_GINT64_FORMAT ").",
                   f, two ? l : want.dims[0], two ? s0 : l, s0);
      return NULL;
    }
  }
  if (kpm) {
    NnShape want = batched ? (NnShape) { 2, { n, s0 } } : (NnShape) { 1, { s0 } };
    if (!nn_shape_equal (&kpm->shape, &want)) {
      g_autofree char *f = nn_shape_to_string (&kpm->shape);
      g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH,
                   "expecting key_padding_mask shape of (%" G_GINT64_FORMAT
                   ", %" G_GINT64_FORMAT "), but got %s", n, s0, f);
      return NULL;
    }
  }
  gboolean meta = nn_tensor_is_meta (qt) || nn_tensor_is_meta (kt)
                  || nn_tensor_is_meta (vt);
  if (!meta && !nn_blas_ready (error))
    return NULL;
  /* The attention before out_proj, time-major [L, N, E] as PyTorch's
   * [L * N, E] rows; laid out like the query for the child call. */
  NnShape as = qt->shape;
  NnTensor *attn = nn_lu_new_f32 (&as, meta);
  NnShape ws = { 0 };
  if (batched)
    ws.dims[ws.ndim++] = n;
  if (!average)
    ws.dims[ws.ndim++] = h;
  ws.dims[ws.ndim++] = l;
  ws.dims[ws.ndim++] = s;
  NnTensor *weights = need_weights ? nn_lu_new_f32 (&ws, meta) : NULL;
  if (!attn || (need_weights && !weights)) {
    g_clear_pointer (&attn, nn_tensor_unref);
    g_clear_pointer (&weights, nn_tensor_unref);
    return nn_lu_result (NULL, error);
  }
  if (!meta) {
    g_autofree float *xq = time_major (nn_tensor_f32 (qt), l, n, e, bf);
    g_autofree float *xk = time_major (nn_tensor_f32 (kt), s0, n, m->kdim, bf);
    g_autofree float *xv = time_major (nn_tensor_f32 (vt), s0, n, m->vdim, bf);
    const float *bias = param (self, "in_proj_bias");
    const float *wq = m->packed ? param (self, "in_proj_weight") : param (self, "q_proj_weight");
    const float *wk = m->packed ? wq + e * e : param (self, "k_proj_weight");
    const float *wv = m->packed ? wq + 2 * e * e : param (self, "v_proj_weight");
    g_autofree float *q = g_new (float, MAX (l * n * e, 1));
    g_autofree float *k = g_new0 (float, MAX (s * n * e, 1));
    g_autofree float *v = g_new0 (float, MAX (s * n * e, 1));
    nn_att_linear (xq, l * n, e, wq, bias, e, q);
    nn_att_linear (xk, s0 * n, m->kdim, wk, bias ? bias + e : NULL, e, k);
    nn_att_linear (xv, s0 * n, m->vdim, wv, bias ? bias + 2 * e : NULL, e, v);
    if (m->bias_kv)
      for (gint64 b = 0; b < n; b++) {
        memcpy (k + (s0 * n + b) * e, param (self, "bias_k"), sizeof (float) * e);
        memcpy (v + (s0 * n + b) * e, param (self, "bias_v"), sizeof (float) * e);
      }
    /* add_zero_attn's row stays zero (g_new0). */
    float *out = g_new0 (float, MAX (l * n * e, 1));
    float *wout = weights ? nn_tensor_f32 (weights) : NULL;
    const float scale = 1.0f / sqrtf ((float) hd);
    /* q / sqrt(hd) first, as PyTorch scales q before q kᵀ. */
    for (gint64 i = 0; i < l * n * e; i++)
      q[i] *= scale;
    /* Per batch and head, the rows are time-major [T, N, E]: head hh of
     * batch b is a [T, hd] matrix at b * e + hh * hd with row stride
     * n * e, so scores and weighted sums are two strided sgemm calls. */
    const gint64 ld = n * e;
    g_autofree float *p = g_new (float, MAX (l * s, 1));
    g_autofree double *row = g_new (double, MAX (s, 1));
    for (gint64 b = 0; b < n && l > 0 && s > 0 && hd > 0; b++)
      for (gint64 hh = 0; hh < h; hh++) {
        const gint64 at0 = b * e + hh * hd;
        cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasTrans, (int) l, (int) s,
                     (int) hd, 1.0f, q + at0, (int) ld, k + at0, (int) ld, 0.0f,
                     p, (int) s);
        for (gint64 i = 0; i < l; i++) {
          float *pi = p + i * s;
          double mx = -INFINITY, sum = 0.0;
          for (gint64 j = 0; j < s; j++) {
            double v0 = pi[j];
            if (j < s0 && am)
              v0 += mask_at (am, am->shape.ndim == 2 ? i * s0 + j
                                 : ((b * h + hh) * l + i) * s0 + j);
            if (j < s0 && kpm)
              v0 += mask_at (kpm, b * s0 + j);
            row[j] = v0;
            mx = fmax (mx, v0);
          }
          for (gint64 j = 0; j < s; j++)
            sum += (row[j] = exp (row[j] - mx));
          for (gint64 j = 0; j < s; j++) {
            double pj = row[j] / sum;
            pi[j] = (float) pj;
            if (wout) {
              gint64 at = average ? (b * l + i) * s + j
                                  : ((b * h + hh) * l + i) * s + j;
              wout[at] += (float) (average ? pj / (double) h : pj);
            }
          }
        }
        cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasNoTrans, (int) l, (int) hd,
                     (int) s, 1.0f, p, (int) s, v + at0, (int) ld, 0.0f,
                     out + at0, (int) ld);
      }
    /* Back to the query's layout for out_proj. */
    float *dst = nn_tensor_f32 (attn);
    for (gint64 i = 0; i < l; i++)
      for (gint64 b = 0; b < n; b++)
        memcpy (dst + (bf ? b * l + i : i * n + b) * e, out + (i * n + b) * e,
                sizeof (float) * e);
    g_free (out);
  }
  NnTensor *y = nn_call_child (call, self, "out_proj", attn, error);
  nn_tensor_unref (attn);
  if (!y) {
    g_clear_pointer (&weights, nn_tensor_unref);
    return NULL;
  }
  NnValue *res = nn_value_new_tuple ();
  nn_value_append (res, nn_value_take_tensor (y));
  nn_value_append (res, weights ? nn_value_take_tensor (weights) : nn_value_new_none ());
  return res;
}

/* Positions of @t: its elements over its last dimension (layout-free:
 * [L, N, F], [N, L, F] and unbatched [L, F] alike). */
static guint64
positions (NnTensor *t)
{
  if (!t || t->shape.ndim == 0 || t->shape.dims[t->shape.ndim - 1] == 0)
    return 0;
  return (guint64) nn_tensor_numel (t) / (guint64) t->shape.dims[t->shape.ndim - 1];
}

/* The input projections this module owns, one multiply-add per weight
 * element and position it is applied at: E x E per query position, E x
 * kdim per key position, E x vdim per value position, plus one add per
 * in_proj_bias element and position.  torchinfo counts nothing here (the
 * module is not a leaf, since it holds out_proj); out_proj counts on its
 * own row, the parameter-free score and weighted-sum products nowhere, as
 * torchinfo counts no parameter-free work; bias_k / bias_v are appended,
 * not multiplied (docs/NNCTL.md). */
static guint64
mha_count_macs (NnModule *self, const NnArgs *args, const NnValue *out)
{
  Mha *m = nn_module_get_private (self);
  guint64 pq = positions (nn_args_tensor (args, 0));
  guint64 pk = positions (nn_args_tensor (args, 1));
  guint64 pv = positions (nn_args_tensor (args, 2));
  guint64 e = (guint64) m->e, macs;

  macs = e * e * pq + e * (guint64) m->kdim * pk + e * (guint64) m->vdim * pv;
  if (nn_module_get_parameter (self, "in_proj_bias"))
    macs += e * (pq + pk + pv);
  return macs;
}

const NnLayerType nn_multihead_attention_type = {
  .struct_size = sizeof (NnLayerType),
  .name = "MultiheadAttention",
  .doc = "multi-head scaled dot-product attention; child out_proj (Linear); "
         "returns (attn_output, attn_weights or None)",
  .schema = mha_schema,
  .n_schema = G_N_ELEMENTS (mha_schema),
  .args = mha_args,
  .n_args = G_N_ELEMENTS (mha_args),
  .create = mha_create,
  .destroy = mha_destroy,
  .check = mha_check,
  .forward = mha_forward,
  .infer = mha_forward,
  .reset_parameters = mha_reset_parameters,
  .count_macs = mha_count_macs,
};
