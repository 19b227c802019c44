/* dnnl plugin: BatchNorm2d in training mode on oneDNN: the forward with
 * batch statistics (forward_training; the running statistics and
 * num_batches_tracked then move exactly as in the reference,
 * nn_norm_update_running) and the backward (backward with scale and
 * shift gradients).  The batch mean and variance of the last training
 * forward of each module are kept for its backward, matched by the
 * output and input tensors the tape hands back; anything else (eval mode,
 * a second call of one module, a reference-only input) recomputes or runs
 * the reference (plugins/norm/batch_norm2d.c). */
#include "dnnl-private.h"
#include "norm.h"

#include <nnkit/train.h>
#include <string.h>

/* The chain: the forward and destroy the forward setup installed. */
static NnValue *(*eval_forward) (NnModule *, NnCall *, const NnArgs *, GError **);
static void (*base_destroy) (NnModule *);

/* Hashed bytewise: no padding (gint64 fields only). */
typedef struct {
  gint64 backward;   /* 0: forward_training, 1: backward */
  gint64 n, c, h, w, affine;
  gint64 eps_bits;   /* the float epsilon's bits */
} BnKey;

static NnDnnlCache fwd_cache, bwd_cache;

/* One module's statistics of its last training forward. */
typedef struct {
  NnTensor *out, *x;   /* compared by address only: no references */
  gpointer out_data, x_data;
  guint64 x_version;
  gint64 c;
  float *mean, *var;
} Saved;

static GMutex saved_lock;
static GHashTable *saved;   /* NnModule * -> Saved * */

static void
saved_free (gpointer p)
{
  Saved *s = p;
  g_free (s->mean);
  g_free (s->var);
  g_free (s);
}

static void
saved_drop (NnModule *m)
{
  g_mutex_lock (&saved_lock);
  if (saved)
    g_hash_table_remove (saved, m);
  g_mutex_unlock (&saved_lock);
}

static gboolean
build (gconstpointer key, NnDnnlCached *e, GError **error)
{
  const BnKey *k = key;
  dnnl_dims_t dd = { k->n, k->c, k->h, k->w };
  dnnl_dims_t cd = { k->c };
  dnnl_memory_desc_t data, ch;
  dnnl_batch_normalization_desc_t fwd, bwd;
  unsigned flags = k->affine ? dnnl_use_scale | dnnl_use_shift : 0;
  float eps;

  memcpy (&eps, &k->eps_bits, sizeof eps);
  if (!nn_dnnl_ok (dnnl_memory_desc_init_by_tag (&data, 4, dd, dnnl_f32, dnnl_nchw), "data md", error)
      || !nn_dnnl_ok (dnnl_memory_desc_init_by_tag (&ch, 1, cd, dnnl_f32, dnnl_x), "channel md", error)
      || !nn_dnnl_ok (dnnl_batch_normalization_forward_desc_init (
                        &fwd, dnnl_forward_training, &data, eps, flags),
                      "describing the batch norm", error))
    return FALSE;
  /* src/diff_src, dst/diff_dst, mean, variance, scale/diff_scale,
   * shift/diff_shift, then diff_src, diff_shift and shift: all the plain
   * layouts. */
  e->md[0] = e->md[1] = data;
  e->md[2] = e->md[3] = e->md[4] = e->md[5] = ch;
  e->md[6] = data;
  e->md[7] = e->md[8] = ch;
  if (!k->backward)
    return nn_dnnl_cached_build (e, &fwd, error);

  /* The backward needs the forward's descriptor as its hint. */
  dnnl_engine_t eng = nn_dnnl_engine (error);
  dnnl_primitive_attr_t attr = eng ? nn_dnnl_attr_new (error) : NULL;
  dnnl_primitive_desc_t hint = NULL, pd = NULL;
  const char *impl = NULL;
  gboolean ok = attr
    && nn_dnnl_ok (dnnl_batch_normalization_backward_desc_init (
                     &bwd, k->affine ? dnnl_backward : dnnl_backward_data, &data,
                     &data, eps, flags), "describing the batch norm backward", error);
  dnnl_status_t st = ok ? dnnl_primitive_desc_create (&hint, &fwd, attr, eng, NULL)
                        : dnnl_runtime_error;
  if (ok && st != dnnl_unimplemented)
    {
      ok = nn_dnnl_ok (st, "choosing a batch norm", error);
      st = ok ? dnnl_primitive_desc_create (&pd, &bwd, attr, eng, hint) : st;
      if (ok && st != dnnl_unimplemented)
        ok = nn_dnnl_ok (st, "choosing a batch norm backward", error);
    }
  /* oneDNN's "ref:" kernels are scalar loops: declined (prim stays NULL). */
  if (ok && pd
      && !(dnnl_primitive_desc_query (pd, dnnl_query_impl_info_str, 0, &impl) == dnnl_success
           && impl && g_str_has_prefix (impl, "ref")))
    {
      e->scratch_md = *dnnl_primitive_desc_query_md (pd, dnnl_query_scratchpad_md, 0);
      ok = nn_dnnl_ok (dnnl_primitive_create (&e->prim, pd), "creating a batch norm backward",
                       error);
    }
  if (pd) dnnl_primitive_desc_destroy (pd);
  if (hint) dnnl_primitive_desc_destroy (hint);
  if (attr) dnnl_primitive_attr_destroy (attr);
  return ok;
}

static void
key_init (BnKey *k, gboolean backward, const NnShape *s, double eps, gboolean affine)
{
  float f = (float) eps;

  memset (k, 0, sizeof *k);
  k->backward = backward;
  k->n = s->dims[0];
  k->c = s->dims[1];
  k->h = s->dims[2];
  k->w = s->dims[3];
  k->affine = affine;
  memcpy (&k->eps_bits, &f, sizeof f);
}

static gboolean
channel_ok (NnTensor *t, gint64 c)
{
  NnShape want = { 1, { c } };
  return t && nn_tensor_f32 (t) && nn_shape_equal (&t->shape, &want);
}

/* Whether oneDNN can take @x for @self: float32 [N, C, H, W], float32
 * per-channel tensors. */
static gboolean
usable (NnModule *self, NnTensor *x, gboolean affine)
{
  const gint64 c = nn_module_config_int (self, "num_features");
  return x->shape.ndim == 4 && x->shape.dims[1] == c && nn_tensor_numel (x) > 0
         && nn_tensor_f32 (x)
         && (!affine || (channel_ok (nn_module_get_parameter (self, "weight"), c)
                         && channel_ok (nn_module_get_parameter (self, "bias"), c)));
}

static NnValue *
train_forward (NnModule *self, NnCall *call, const NnArgs *args, GError **error)
{
  const gboolean affine = nn_module_config_bool (self, "affine");
  NnTensor *x = nn_args_tensor (args, 0);
  NnTensor *rm = nn_module_get_buffer (self, "running_mean");
  NnTensor *rv = nn_module_get_buffer (self, "running_var");

  /* Every training call forgets the last one's statistics first, so a
   * reference run can never pair with them. */
  saved_drop (self);
  if (!usable (self, x, affine) || (rm && !rv) || (rv && !rm))
    return nn_batch_norm2d_type.forward (self, call, args, error);

  const gint64 c = x->shape.dims[1], count = x->shape.dims[0] * x->shape.dims[2] * x->shape.dims[3];
  BnKey k;
  key_init (&k, FALSE, &x->shape, nn_module_config_float (self, "eps"), affine);
  NnDnnlCached *e = nn_dnnl_cache_get (&fwd_cache, &k, sizeof k, build, error);
  if (!e)
    return NULL;
  if (!e->prim)
    {
      nn_dnnl_cached_unref (e);
      return nn_batch_norm2d_type.forward (self, call, args, error);
    }
  NnTensor *out = nn_tensor_new (NN_DTYPE_F32, &x->shape);
  Saved *s = g_new0 (Saved, 1);
  s->mean = g_try_new (float, c);
  s->var = g_try_new (float, c);
  if (!out || !s->mean || !s->var)
    {
      nn_dnnl_cached_unref (e);
      saved_free (s);
      if (out)
        nn_tensor_unref (out);
      g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_FAILED,
                   "cannot allocate the batch norm output");
      return NULL;
    }
  const int ids[] = { DNNL_ARG_SRC, DNNL_ARG_DST, DNNL_ARG_MEAN, DNNL_ARG_VARIANCE,
                      DNNL_ARG_SCALE, DNNL_ARG_SHIFT };
  const dnnl_memory_desc_t *mds[] = { &e->md[0], &e->md[1], &e->md[2], &e->md[3],
                                      &e->md[4], &e->md[5] };
  void *data[] = { nn_tensor_f32 (x), nn_tensor_f32 (out), s->mean, s->var,
                   affine ? nn_module_get_parameter (self, "weight")->data : NULL,
                   affine ? nn_module_get_parameter (self, "bias")->data : NULL };
  gboolean ok = nn_dnnl_cached_run (e, nn_tensor_numel (x), affine ? 6 : 4, ids, mds, data,
                                    error);
  nn_dnnl_cached_unref (e);
  if (ok && rm)
    {
      g_autofree double *m = g_new (double, c);
      g_autofree double *v = g_new (double, c);
      for (gint64 i = 0; i < c; i++)
        {
          m[i] = s->mean[i];
          v[i] = s->var[i];
        }
      ok = nn_norm_update_running (self, m, v, c, count, error);
    }
  if (!ok)
    {
      saved_free (s);
      nn_tensor_unref (out);
      return NULL;
    }
  s->out = out;
  s->out_data = out->data;
  s->x = x;
  s->x_data = x->data;
  s->x_version = nn_tensor_get_version (x);
  s->c = c;
  g_mutex_lock (&saved_lock);
  if (!saved)
    saved = g_hash_table_new_full (g_direct_hash, g_direct_equal, NULL, saved_free);
  g_hash_table_replace (saved, self, s);
  g_mutex_unlock (&saved_lock);
  return nn_value_take_tensor (out);
}

static NnValue *
dnnl_batch_norm2d_forward (NnModule *self, NnCall *call, const NnArgs *args,
                           GError **error)
{
  if (nn_module_is_training (self))
    return train_forward (self, call, args, error);
  return eval_forward (self, call, args, error);
}

/* The saved statistics of @self's forward that made @out from @x, copied
 * into @mean and @var; FALSE when another call came since. */
static gboolean
saved_take (NnModule *self, NnTensor *x, NnTensor *out, gint64 c, float *mean, float *var)
{
  gboolean hit = FALSE;

  g_mutex_lock (&saved_lock);
  Saved *s = saved ? g_hash_table_lookup (saved, self) : NULL;
  if (s && s->out == out && s->out_data == out->data && s->x == x && s->x_data == x->data
      && s->x_version == nn_tensor_get_version (x) && s->c == c)
    {
      memcpy (mean, s->mean, c * sizeof *mean);
      memcpy (var, s->var, c * sizeof *var);
      hit = TRUE;
    }
  g_mutex_unlock (&saved_lock);
  return hit;
}

/* The batch statistics of @x [n, c, hw] as the forward computes them
 * (biased variance), for a backward whose forward's are gone. */
static void
batch_stats (const float *x, gint64 n, gint64 c, gint64 hw, float *mean, float *var)
{
  for (gint64 ch = 0; ch < c; ch++)
    {
      double sum = 0.0, sq = 0.0;
      for (gint64 b = 0; b < n; b++)
        for (gint64 i = 0; i < hw; i++)
          sum += x[(b * c + ch) * hw + i];
      double m = sum / (double) (n * hw);
      for (gint64 b = 0; b < n; b++)
        for (gint64 i = 0; i < hw; i++)
          {
            double d = x[(b * c + ch) * hw + i] - m;
            sq += d * d;
          }
      mean[ch] = (float) m;
      var[ch] = (float) (sq / (double) (n * hw));
    }
}

static NnValue *
dnnl_batch_norm2d_backward (NnModule *self, NnCall *call, const NnArgs *args,
                            const NnValue *out, const NnValue *grad_out, GError **error)
{
  const gboolean affine = nn_module_config_bool (self, "affine");
  NnTensor *x = nn_args_tensor (args, 0);
  NnTensor *y = nn_value_get_tensor (out);
  NnTensor *gt = nn_value_get_tensor (grad_out);

  /* Eval mode (running statistics) stays with the reference. */
  if (!nn_module_is_training (self) || !usable (self, x, affine) || !y || !gt
      || !nn_tensor_f32 (gt) || !nn_shape_equal (&gt->shape, &x->shape))
    return nn_batch_norm2d_type.backward (self, call, args, out, grad_out, error);

  const gint64 c = x->shape.dims[1];
  BnKey k;
  key_init (&k, TRUE, &x->shape, nn_module_config_float (self, "eps"), affine);
  NnDnnlCached *e = nn_dnnl_cache_get (&bwd_cache, &k, sizeof k, build, error);
  if (!e)
    return NULL;
  if (!e->prim)
    {
      nn_dnnl_cached_unref (e);
      return nn_batch_norm2d_type.backward (self, call, args, out, grad_out, error);
    }
  g_autofree float *mean = g_new (float, c);
  g_autofree float *var = g_new (float, c);
  g_autofree float *dscale = g_new (float, c);
  g_autofree float *dshift = g_new (float, c);
  if (!saved_take (self, x, y, c, mean, var))
    batch_stats (nn_tensor_f32 (x), x->shape.dims[0], c, x->shape.dims[2] * x->shape.dims[3],
                 mean, var);
  NnTensor *dx = nn_tensor_new (NN_DTYPE_F32, &x->shape);
  if (!dx)
    {
      nn_dnnl_cached_unref (e);
      g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_FAILED,
                   "cannot allocate the batch norm input gradient");
      return NULL;
    }
  const int ids[] = { DNNL_ARG_SRC, DNNL_ARG_DIFF_DST, DNNL_ARG_MEAN, DNNL_ARG_VARIANCE,
                      DNNL_ARG_SCALE, DNNL_ARG_DIFF_SCALE, DNNL_ARG_DIFF_SRC,
                      DNNL_ARG_DIFF_SHIFT, DNNL_ARG_SHIFT };
  const dnnl_memory_desc_t *mds[] = { &e->md[0], &e->md[1], &e->md[2], &e->md[3],
                                      &e->md[4], &e->md[5], &e->md[6], &e->md[7],
                                      &e->md[8] };
  /* Affine: every argument (oneDNN 2.6 refuses the run without the shift,
   * which it does not read); else the first four and the input gradient. */
  int order_plain[] = { 0, 1, 2, 3, 6 };
  void *data[] = { nn_tensor_f32 (x), nn_tensor_f32 (gt), mean, var,
                   affine ? nn_module_get_parameter (self, "weight")->data : NULL,
                   dscale, nn_tensor_f32 (dx), dshift,
                   affine ? nn_module_get_parameter (self, "bias")->data : NULL };
  int sel_ids[9];
  const dnnl_memory_desc_t *sel_mds[9];
  void *sel_data[9];
  int n = 0;
  for (int i = 0; i < (affine ? 9 : 5); i++)
    {
      int j = affine ? i : order_plain[i];
      sel_ids[n] = ids[j];
      sel_mds[n] = mds[j];
      sel_data[n++] = data[j];
    }
  gboolean ok = nn_dnnl_cached_run (e, nn_tensor_numel (x), n, sel_ids, sel_mds, sel_data,
                                    error);
  nn_dnnl_cached_unref (e);
  if (!ok)
    {
      nn_tensor_unref (dx);
      return NULL;
    }
  float *gw = affine ? nn_module_grad_f32 (self, "weight") : NULL;
  float *gb = affine ? nn_module_grad_f32 (self, "bias") : NULL;
  for (gint64 i = 0; i < c; i++)
    {
      if (gw)
        gw[i] += dscale[i];
      if (gb)
        gb[i] += dshift[i];
    }
  NnValue *res = nn_value_new_tuple ();
  nn_value_append (res, nn_value_take_tensor (dx));
  return res;
}

static void
dnnl_batch_norm2d_destroy (NnModule *self)
{
  saved_drop (self);
  if (base_destroy)
    base_destroy (self);
}

void
nn_dnnl_batch_norm2d_backward_setup (NnLayerType *t)
{
  eval_forward = t->forward;
  base_destroy = t->destroy;
  t->doc = "BatchNorm2d on oneDNN (training and running statistics), as "
           "torch.nn.BatchNorm2d";
  t->forward = dnnl_batch_norm2d_forward;
  t->backward = dnnl_batch_norm2d_backward;
  t->destroy = dnnl_batch_norm2d_destroy;
}
