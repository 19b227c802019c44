/* Unfold and Fold, as torch.nn.Unfold / F.unfold (im2col: each sliding
 * block of a [N, C, H, W] input becomes a column of [N, C*kh*kw, L]) and
 * torch.nn.Fold / F.fold (col2im: the columns summed back into
 * [N, C, oH, oW], overlaps added).  Overlapping patch models and
 * overlap-add averaging use them in pairs.  The functional forms take the
 * window as the node's config, as the pools do. */
#include "conv.h"
#include "../common/nn-layer-util.h"

#define WINDOW_KEYS                                                            \
  { "kernel_size", NN_KIND_INT_TUPLE, 2, NN_KEY_HAS_MIN, NULL, 1, 0, NULL,     \
    "size of the sliding blocks" },                                            \
  { "dilation", NN_KIND_INT_TUPLE, 2, NN_KEY_OPTIONAL | NN_KEY_HAS_MIN, "1",   \
    1, 0, NULL, "spacing of the elements of a block" },                        \
  { "padding", NN_KIND_INT_TUPLE, 2, NN_KEY_OPTIONAL | NN_KEY_HAS_MIN, "0", 0, \
    0, NULL, "implicit zeros on both sides" },                                 \
  { "stride", NN_KIND_INT_TUPLE, 2, NN_KEY_OPTIONAL | NN_KEY_HAS_MIN, "1", 1,  \
    0, NULL, "step of the blocks" }

static const NnSchemaKey unfold_schema[] = { WINDOW_KEYS };
static const NnSchemaKey fold_schema[] = {
  { "output_size", NN_KIND_INT_TUPLE, 2, NN_KEY_HAS_MIN, NULL, 1, 0, NULL,
    "spatial size (oH, oW) of the folded output" },
  WINDOW_KEYS,
};

static const NnArgSpec fold_args[] = {
  { "input", NN_ARG_TENSOR, 0, 0, NULL, "float32; Unfold [N, C, H, W] or [C, H, W], "
    "Fold [N, C*kh*kw, L] or [C*kh*kw, L]" },
};

typedef struct {
  gint64 k[2], d[2], p[2], s[2];
  gint64 out[2]; /* Fold's output_size */
} Window;

static Window *
window_new (NnModule *self)
{
  Window *w = g_new0 (Window, 1);
  nn_module_config_ints (self, "kernel_size", w->k, 2);
  nn_module_config_ints (self, "dilation", w->d, 2);
  nn_module_config_ints (self, "padding", w->p, 2);
  nn_module_config_ints (self, "stride", w->s, 2);
  nn_module_set_private (self, w);
  return w;
}

static gboolean
unfold_create (NnModule *self, GError **error)
{
  window_new (self);
  return TRUE;
}

static gboolean
fold_create (NnModule *self, GError **error)
{
  nn_module_config_ints (self, "output_size", window_new (self)->out, 2);
  return TRUE;
}

static void
fold_destroy (NnModule *self)
{
  g_free (nn_module_get_private (self));
}

/* The number of blocks along H and W over a (h, w) plane, or an error in
 * PyTorch's words when one is below 1. */
static gboolean
blocks (const Window *w, gint64 h, gint64 wd, gint64 n[2], GError **error)
{
  gint64 in[2] = { h, wd };
  for (int i = 0; i < 2; i++)
    n[i] = (in[i] + 2 * w->p[i] - w->d[i] * (w->k[i] - 1) - 1) / w->s[i] + 1;
  if (n[0] >= 1 && n[1] >= 1
      && in[0] + 2 * w->p[0] - w->d[0] * (w->k[0] - 1) - 1 >= 0
      && in[1] + 2 * w->p[1] - w->d[1] * (w->k[1] - 1) - 1 >= 0)
    return TRUE;
  return nn_lu_shape_fail (error, "Given input with spatial size (%" G_GINT64_FORMAT ", %"
                           G_GINT64_FORMAT "), kernel_size=(%" G_GINT64_FORMAT ", %"
                           G_GINT64_FORMAT "), dilation=(%" G_GINT64_FORMAT ", %"
                           G_GINT64_FORMAT "), padding=(%" G_GINT64_FORMAT ", %"
                           G_GINT64_FORMAT "), calculated shape of the array of sliding "
                           "blocks as (%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT "), but its "
                           "components must be at least one.", h, wd, w->k[0], w->k[1],
                           w->d[0], w->d[1], w->p[0], w->p[1], n[0] < 1 ? -1 : n[0],
                           n[1] < 1 ? -1 : n[1]);
}

/* Walks every (channel, ki, kj, block) pair of a [C, H, W] plane set and
 * its [C*kh*kw, L] columns: @fold adds column values into the image,
 * otherwise the image is read into the columns (zeros in the padding). */
static void
im2col (const Window *w, gint64 c, gint64 h, gint64 wd, const gint64 n[2],
        float *img, float *col, gboolean fold)
{
  gint64 l = n[0] * n[1];
  for (gint64 ch = 0; ch < c; ch++)
    for (gint64 ki = 0; ki < w->k[0]; ki++)
      for (gint64 kj = 0; kj < w->k[1]; kj++) {
        float *row = col + ((ch * w->k[0] + ki) * w->k[1] + kj) * l;
        for (gint64 bi = 0; bi < n[0]; bi++) {
          gint64 y = bi * w->s[0] - w->p[0] + ki * w->d[0];
          for (gint64 bj = 0; bj < n[1]; bj++) {
            gint64 x = bj * w->s[1] - w->p[1] + kj * w->d[1];
            gboolean in = y >= 0 && y < h && x >= 0 && x < wd;
            float *v = row + bi * n[1] + bj;
            if (fold) {
              if (in)
                img[(ch * h + y) * wd + x] += *v;
            } else {
              *v = in ? img[(ch * h + y) * wd + x] : 0.0f;
            }
          }
        }
      }
}

/* PyTorch's rank check: @lo-d (unbatched) or @lo + 1-d input. */
static gboolean
check_rank (const NnShape *s, guint lo, GError **error)
{
  if (s->ndim == lo || s->ndim == lo + 1)
    return TRUE;
  g_autofree char *f = nn_shape_to_string (s);
  return nn_lu_shape_fail (error, "Expected %uD or %uD (batch mode) tensor for input with "
                           "possibly 0 batch size and non-zero dimensions for input, but "
                           "got: %s", lo, lo + 1, f);
}

static NnValue *
unfold_forward (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  const Window *w = nn_module_get_private (self);
  NnTensor *input = nn_args_tensor (args, 0);
  const NnShape *s = &input->shape;
  if (!check_rank (s, 3, error))
    return NULL;
  guint b = s->ndim - 3;
  gint64 c = s->dims[b], h = s->dims[b + 1], wd = s->dims[b + 2], n[2];
  if (!blocks (w, h, wd, n, error))
    return NULL;
  NnShape os = { 0 };
  if (b)
    os.dims[os.ndim++] = s->dims[0];
  os.dims[os.ndim++] = c * w->k[0] * w->k[1];
  os.dims[os.ndim++] = n[0] * n[1];
  gboolean meta = nn_tensor_is_meta (input);
  NnTensor *out = nn_lu_new_f32 (&os, meta);
  if (!out || meta)
    return nn_lu_result (out, error);
  gint64 batch = b ? s->dims[0] : 1;
  for (gint64 i = 0; i < batch; i++)
    im2col (w, c, h, wd, n, nn_tensor_f32 (input) + i * c * h * wd,
            nn_tensor_f32 (out) + i * os.dims[b] * os.dims[b + 1], FALSE);
  return nn_value_take_tensor (out);
}

static NnValue *
fold_forward (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  const Window *w = nn_module_get_private (self);
  NnTensor *input = nn_args_tensor (args, 0);
  const NnShape *s = &input->shape;
  if (!check_rank (s, 2, error))
    return NULL;
  guint b = s->ndim - 2;
  gint64 rows = s->dims[b], l = s->dims[b + 1], kk = w->k[0] * w->k[1], n[2];
  if (rows % kk) {
    nn_lu_shape_fail (error, "Expected size of input's dimension %u to be divisible by the "
                      "product of kernel_size, but got input.size(%u)=%" G_GINT64_FORMAT
                      " and kernel_size=(%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT ").",
                      b, b, rows, w->k[0], w->k[1]);
    return NULL;
  }
  if (!blocks (w, w->out[0], w->out[1], n, error))
    return NULL;
  if (n[0] * n[1] != l) {
    nn_lu_shape_fail (error, "Given output_size=(%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT
                      "), kernel_size=(%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT
                      "), dilation=(%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT "), padding=(%"
                      G_GINT64_FORMAT ", %" G_GINT64_FORMAT "), stride=(%" G_GINT64_FORMAT
                      ", %" G_GINT64_FORMAT "), expected size of input's dimension %u to "
                      "match the calculated number of sliding blocks %" G_GINT64_FORMAT
                      " * %" G_GINT64_FORMAT " = %" G_GINT64_FORMAT ", but got input.size(%u)=%"
                      G_GINT64_FORMAT ".", w->out[0], w->out[1], w->k[0], w->k[1], w->d[0],
                      w->d[1], w->p[0], w->p[1], w->s[0], w->s[1], b + 1, n[0], n[1],
                      n[0] * n[1], b + 1, l);
    return NULL;
  }
  gint64 c = rows / kk;
  NnShape os = { 0 };
  if (b)
    os.dims[os.ndim++] = s->dims[0];
  os.dims[os.ndim++] = c;
  os.dims[os.ndim++] = w->out[0];
  os.dims[os.ndim++] = w->out[1];
  gboolean meta = nn_tensor_is_meta (input);
  NnTensor *out = nn_lu_new_f32 (&os, meta);
  if (!out || meta)
    return nn_lu_result (out, error);
  gint64 batch = b ? s->dims[0] : 1, plane = c * w->out[0] * w->out[1];
  for (gint64 i = 0; i < batch; i++)
    im2col (w, c, w->out[0], w->out[1], n, nn_tensor_f32 (out) + i * plane,
            nn_tensor_f32 (input) + i * rows * l, TRUE);
  return nn_value_take_tensor (out);
}

static char *
window_repr (NnModule *self)
{
  g_autofree char *k = nn_module_config_repr (self, "kernel_size");
  g_autofree char *d = nn_module_config_repr (self, "dilation");
  g_autofree char *p = nn_module_config_repr (self, "padding");
  g_autofree char *s = nn_module_config_repr (self, "stride");
  return g_strdup_printf ("kernel_size=%s, dilation=%s, padding=%s, stride=%s", k, d, p, s);
}

static char *
fold_extra_repr (NnModule *self)
{
  g_autofree char *o = nn_module_config_repr (self, "output_size");
  g_autofree char *rest = window_repr (self);
  return g_strdup_printf ("output_size=%s, %s", o, rest);
}

static const char *const unfold_aliases[] = { "torch.nn.functional.unfold", NULL };
static const char *const fold_aliases[] = { "fold", "torch.nn.functional.fold", NULL };

const NnLayerType nn_unfold_type = {
  .struct_size = sizeof (NnLayerType),
  .name = "Unfold",
  .doc = "sliding blocks of [N, C, H, W] as the columns of [N, C*kh*kw, L] (im2col)",
  .schema = unfold_schema,
  .n_schema = G_N_ELEMENTS (unfold_schema),
  .args = fold_args,
  .n_args = G_N_ELEMENTS (fold_args),
  .aliases = unfold_aliases,
  .create = unfold_create,
  .destroy = fold_destroy,
  .forward = unfold_forward,
  .infer = unfold_forward,
  .extra_repr = window_repr,
};

const NnLayerType nn_fold_type = {
  .struct_size = sizeof (NnLayerType),
  .name = "Fold",
  .doc = "columns [N, C*kh*kw, L] summed back into [N, C, oH, oW] (col2im)",
  .schema = fold_schema,
  .n_schema = G_N_ELEMENTS (fold_schema),
  .args = fold_args,
  .n_args = G_N_ELEMENTS (fold_args),
  .aliases = fold_aliases,
  .create = fold_create,
  .destroy = fold_destroy,
  .forward = fold_forward,
  .infer = fold_forward,
  .extra_repr = fold_extra_repr,
};
