/* CosineSimilarity and PairwiseDistance (torch.nn.modules.distance) and
 * their functions F.cosine_similarity, F.pairwise_distance, on float32
 * inputs broadcast against each other (siamese and retrieval models). */
#include "misc.h"
#include "../common/nn-layer-util.h"

#include <math.h>

/* The broadcast shape of @a and @b, and each one's strides over it (0
 * along a broadcast dim); PyTorch's error when they do not fit. */
static gboolean
broadcast (const NnShape *a, const NnShape *b, NnShape *out, gint64 *sa, gint64 *sb,
           GError **error)
{
  guint nd = MAX (a->ndim, b->ndim);
  out->ndim = nd;
  gint64 stride_a = 1, stride_b = 1;
  for (guint k = 0; k < nd; k++) {
    guint d = nd - 1 - k;
    gint64 ea = k < a->ndim ? a->dims[a->ndim - 1 - k] : 1;
    gint64 eb = k < b->ndim ? b->dims[b->ndim - 1 - k] : 1;
    if (ea != eb && ea != 1 && eb != 1) {
      g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH,
                   "The size of tensor a (%" G_GINT64_FORMAT ") must match the size of "
                   "tensor b (%" G_GINT64_FORMAT ") at non-singleton dimension %u",
                   ea, eb, d);
      return FALSE;
    }
    out->dims[d] = MAX (ea, eb);
    if (ea == 0 || eb == 0)
      out->dims[d] = 0;
    sa[d] = ea == 1 ? 0 : stride_a;
    sb[d] = eb == 1 ? 0 : stride_b;
    stride_a *= ea;
    stride_b *= eb;
  }
  return TRUE;
}

typedef enum { COSINE, PAIRWISE } Kind;

/* @dim: the reduced dim of the broadcast shape (negative from the end);
 * COSINE: sum(x1 x2) / (max(|x1|, eps) max(|x2|, eps)); PAIRWISE:
 * |x1 - x2 + eps|_p along the last dim. */
static NnValue *
distance (NnTensor *x1, NnTensor *x2, Kind kind, gint64 dim, double p, double eps,
          gboolean keepdim, GError **error)
{
  NnShape full;
  gint64 sa[NN_MAX_DIMS], sb[NN_MAX_DIMS];
  if (!broadcast (&x1->shape, &x2->shape, &full, sa, sb, error))
    return NULL;
  guint nd = full.ndim;
  gint64 n = MAX (nd, 1);
  if (dim < -n || dim >= n) {
    g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH,
                 "Dimension out of range (expected to be in range of [%" G_GINT64_FORMAT
                 ", %" G_GINT64_FORMAT "], but got %" G_GINT64_FORMAT ")", -n, n - 1, dim);
    return NULL;
  }
  guint d = (guint) (dim < 0 ? dim + n : dim);
  NnShape os = { 0 };
  for (guint i = 0; i < nd; i++)
    if (i != d || keepdim)
      os.dims[os.ndim++] = i == d ? 1 : full.dims[i];
  gboolean meta = nn_tensor_is_meta (x1) || nn_tensor_is_meta (x2);
  NnTensor *y = nn_lu_new_f32 (&os, meta);
  if (!y || meta)
    return nn_lu_result (y, error);
  const float *a = nn_tensor_f32 (x1), *b = nn_tensor_f32 (x2);
  float *yd = nn_tensor_f32 (y);
  gint64 len = nd ? full.dims[d] : 1, outer = 1;
  for (guint i = 0; i < nd; i++)
    if (i != d)
      outer *= full.dims[i];
  for (gint64 o = 0; o < outer; o++) {
    /* The start of row @o: its index over the dims but @d. */
    gint64 off_a = 0, off_b = 0, rest = o;
    for (guint k = nd; k-- > 0;) {
      if (k == d)
        continue;
      gint64 idx = rest % full.dims[k];
      rest /= full.dims[k];
      off_a += idx * sa[k];
      off_b += idx * sb[k];
    }
    gint64 ja = nd ? sa[d] : 0, jb = nd ? sb[d] : 0;
    double r;
    if (kind == COSINE) {
      double w12 = 0, w1 = 0, w2 = 0;
      for (gint64 i = 0; i < len; i++) {
        double u = a[off_a + i * ja], v = b[off_b + i * jb];
        w12 += u * v, w1 += u * u, w2 += v * v;
      }
      r = w12 / (MAX (sqrt (w1), eps) * MAX (sqrt (w2), eps));
    } else {
      double acc = 0, mx = 0;
      for (gint64 i = 0; i < len; i++) {
        double t = fabs ((double) a[off_a + i * ja] - b[off_b + i * jb] + eps);
        if (isinf (p))
          mx = MAX (mx, t);
        else if (p == 0)
          acc += t != 0;
        else
          acc += pow (t, p);
      }
      r = isinf (p) ? mx : p == 0 ? acc : pow (acc, 1.0 / p);
    }
    yd[o] = (float) r;
  }
  return nn_value_take_tensor (y);
}

static const NnSchemaKey cosine_schema[] = {
  { "dim", NN_KIND_INT, 0, NN_KEY_OPTIONAL, "1", 0, 0, NULL, "dim the similarity is over" },
  { "eps", NN_KIND_FLOAT, 0, NN_KEY_OPTIONAL | NN_KEY_HAS_MIN, "1e-08", 0, 0, NULL,
    "lower bound of each norm" },
};

static const NnSchemaKey pairwise_schema[] = {
  { "p", NN_KIND_FLOAT, 0, NN_KEY_OPTIONAL, "2.0", 0, 0, NULL, "the norm's degree" },
  { "eps", NN_KIND_FLOAT, 0, NN_KEY_OPTIONAL, "1e-06", 0, 0, NULL,
    "added to the difference, against division by zero" },
  { "keepdim", NN_KIND_BOOL, 0, NN_KEY_OPTIONAL, "false", 0, 0, NULL,
    "keep the reduced last dim with size 1" },
};

static const NnArgSpec two_args[] = {
  { "x1", NN_ARG_TENSOR, 0, 0, NULL, "float32, broadcast with x2" },
  { "x2", NN_ARG_TENSOR, 0, 0, NULL, "float32, broadcast with x1" },
};

static NnValue *
cosine_forward (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  return distance (nn_args_tensor (args, 0), nn_args_tensor (args, 1), COSINE,
                   nn_module_config_int (self, "dim"), 2.0,
                   nn_module_config_float (self, "eps"), FALSE, error);
}

static NnValue *
pairwise_forward (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  return distance (nn_args_tensor (args, 0), nn_args_tensor (args, 1), PAIRWISE, -1,
                   nn_module_config_float (self, "p"),
                   nn_module_config_float (self, "eps"),
                   nn_module_config_bool (self, "keepdim"), error);
}

const NnLayerType nn_cosine_similarity_type = {
  .struct_size = sizeof (NnLayerType),
  .name = "CosineSimilarity",
  .doc = "cosine similarity of x1 and x2 along dim",
  .schema = cosine_schema,
  .n_schema = G_N_ELEMENTS (cosine_schema),
  .args = two_args,
  .n_args = G_N_ELEMENTS (two_args),
  .create = nn_misc_create_nothing,
  .forward = cosine_forward,
  .infer = cosine_forward,
};

const NnLayerType nn_pairwise_distance_type = {
  .struct_size = sizeof (NnLayerType),
  .name = "PairwiseDistance",
  .doc = "p-norm of x1 - x2 + eps along the last dim",
  .schema = pairwise_schema,
  .n_schema = G_N_ELEMENTS (pairwise_schema),
  .args = two_args,
  .n_args = G_N_ELEMENTS (two_args),
  .create = nn_misc_create_nothing,
  .forward = pairwise_forward,
  .infer = pairwise_forward,
};

/* F.cosine_similarity(x1, x2, dim=1, eps=1e-8),
 * F.pairwise_distance(x1, x2, p=2.0, eps=1e-6, keepdim=False). */
static const NnArgSpec cosine_fn_args[] = {
  { "x1", NN_ARG_TENSOR, 0, 0, NULL, "float32, broadcast with x2" },
  { "x2", NN_ARG_TENSOR, 0, 0, NULL, "float32, broadcast with x1" },
  { "dim", NN_ARG_INT, 0, NN_ARG_OPTIONAL, "1", "dim the similarity is over" },
  { "eps", NN_ARG_FLOAT, 0, NN_ARG_OPTIONAL, "1e-08", "lower bound of each norm" },
};
static const NnArgSpec pairwise_fn_args[] = {
  { "x1", NN_ARG_TENSOR, 0, 0, NULL, "float32, broadcast with x2" },
  { "x2", NN_ARG_TENSOR, 0, 0, NULL, "float32, broadcast with x1" },
  { "p", NN_ARG_FLOAT, 0, NN_ARG_OPTIONAL, "2.0", "the norm's degree" },
  { "eps", NN_ARG_FLOAT, 0, NN_ARG_OPTIONAL, "1e-06", "added to the difference" },
  { "keepdim", NN_ARG_BOOL, 0, NN_ARG_OPTIONAL, "false", "keep the last dim" },
};

static NnValue *
cosine_fn_forward (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  return distance (nn_args_tensor (args, 0), nn_args_tensor (args, 1), COSINE,
                   nn_args_int (args, 2), 2.0, nn_args_float (args, 3), FALSE, error);
}

static NnValue *
pairwise_fn_forward (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  return distance (nn_args_tensor (args, 0), nn_args_tensor (args, 1), PAIRWISE, -1,
                   nn_args_float (args, 2), nn_args_float (args, 3), nn_args_bool (args, 4),
                   error);
}

static const char *const cosine_fn_aliases[] = {
  "torch.nn.functional.cosine_similarity", "torch.cosine_similarity", NULL };
static const char *const pairwise_fn_aliases[] = {
  "torch.nn.functional.pairwise_distance", "torch.pairwise_distance", NULL };

const NnLayerType nn_cosine_similarity_fn_type = {
  .struct_size = sizeof (NnLayerType),
  .name = "cosine_similarity",
  .doc = "F.cosine_similarity",
  .flags = NN_LAYER_OP,
  .args = cosine_fn_args,
  .n_args = G_N_ELEMENTS (cosine_fn_args),
  .aliases = cosine_fn_aliases,
  .create = nn_misc_create_nothing,
  .forward = cosine_fn_forward,
  .infer = cosine_fn_forward,
};

const NnLayerType nn_pairwise_distance_fn_type = {
  .struct_size = sizeof (NnLayerType),
  .name = "pairwise_distance",
  .doc = "F.pairwise_distance",
  .flags = NN_LAYER_OP,
  .args = pairwise_fn_args,
  .n_args = G_N_ELEMENTS (pairwise_fn_args),
  .aliases = pairwise_fn_aliases,
  .create = nn_misc_create_nothing,
  .forward = pairwise_fn_forward,
  .infer = pairwise_fn_forward,
};
