/* dnnl plugin: BatchNorm2d in training mode: the forward with batch
 * statistics (the running statistics and num_batches_tracked then move
 * exactly as in the reference, nn_norm_update_running) and the backward
 * (scale and shift gradients).  oneDNN 2.6 has only its generic "ncsp"
 * kernels for NCHW batch norm, measured 2.5-3x slower than these
 * vectorised loops, so this provider runs its own: per channel, split
 * over OpenMP's threads as the oneDNN primitives around it are.  The
 * batch mean and variance of the last training forward of each module
 * are kept for its backward, matched by the output and input tensors the
 * tape hands back; anything else (eval mode, a second call of one module,
 * a reference-only input) recomputes them or runs the reference
 * (plugins/norm/batch_norm2d.c). */
#include "dnnl-private.h"
#include "norm.h"

#include <nnkit/train.h>
#include <math.h>
#include <omp.h>
#include <string.h>

/* The chain: the forward and destroy the forward setup installed. */
static NnValue *(*eval_forward) (NnModule *, NnCall *, const NnArgs *, GError **);
static void (*base_destroy) (NnModule *);

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

/* The threads of a loop over @numel elements: the core's grain rule. */
static int
n_threads (gint64 numel)
{
  return nn_threads_for_work (numel, NN_WORK_GRAIN);
}

/* Per-channel mean and biased variance of @x [n, c, hw] (two passes: no
 * cancellation), then y = x * scale + shift.  Float partial sums per
 * image plane (vectorised), combined in double. */
static void
train_forward_loops (const float *x, float *y, gint64 n, gint64 c, gint64 hw, double eps,
                     const float *w, const float *b, double *mean, double *var)
{
  #pragma omp parallel for num_threads (n_threads (n * c * hw)) schedule (static)
  for (gint64 ch = 0; ch < c; ch++)
    {
      double s1 = 0.0, s2 = 0.0;
      for (gint64 i = 0; i < n; i++)
        {
          const float *p = x + (i * c + ch) * hw;
          float a = 0.0f;
          #pragma omp simd reduction (+:a)
          for (gint64 j = 0; j < hw; j++)
            a += p[j];
          s1 += a;
        }
      const double m = s1 / (double) (n * hw);
      const float mf = (float) m;
      for (gint64 i = 0; i < n; i++)
        {
          const float *p = x + (i * c + ch) * hw;
          float q = 0.0f;
          #pragma omp simd reduction (+:q)
          for (gint64 j = 0; j < hw; j++)
            q += (p[j] - mf) * (p[j] - mf);
          s2 += q;
        }
      const double v = s2 / (double) (n * hw);
      const double inv = 1.0 / sqrt (v + eps);
      const float sc = (float) (w ? w[ch] * inv : inv);
      const float sh = (float) ((b ? b[ch] : 0.0) - m * (w ? w[ch] * inv : inv));
      for (gint64 i = 0; i < n; i++)
        {
          const float *p = x + (i * c + ch) * hw;
          float *o = y + (i * c + ch) * hw;
          #pragma omp simd
          for (gint64 j = 0; j < hw; j++)
            o[j] = p[j] * sc + sh;
        }
      mean[ch] = mf;
      var[ch] = v;
    }
}

/* With batch statistics: dx = w invstd (g - sum g / M - (x - mean)
 * invstd^2 sum (g (x - mean)) / M), dweight = invstd sum (g (x - mean)),
 * dbias = sum g, per channel over M = n * hw values. */
static void
train_backward_loops (const float *x, const float *g, float *dx, gint64 n, gint64 c,
                      gint64 hw, double eps, const float *w, const float *mean,
                      const float *var, float *dscale, float *dshift)
{
  #pragma omp parallel for num_threads (n_threads (n * c * hw)) schedule (static)
  for (gint64 ch = 0; ch < c; ch++)
    {
      const float mf = mean[ch];
      const double inv = 1.0 / sqrt ((double) var[ch] + eps), M = (double) (n * hw);
      double sg = 0.0, sgx = 0.0;
      for (gint64 i = 0; i < n; i++)
        {
          const float *p = x + (i * c + ch) * hw, *q = g + (i * c + ch) * hw;
          float a = 0.0f, e = 0.0f;
          #pragma omp simd reduction (+:a, e)
          for (gint64 j = 0; j < hw; j++)
            {
              a += q[j];
              e += q[j] * (p[j] - mf);
            }
          sg += a;
          sgx += e;
        }
      dscale[ch] = (float) (sgx * inv);
      dshift[ch] = (float) sg;
      const float k1 = (float) (sg / M), k2 = (float) (sgx * inv * inv / M);
      const float sc = (float) ((w ? w[ch] : 1.0) * inv);
      for (gint64 i = 0; i < n; i++)
        {
          const float *p = x + (i * c + ch) * hw, *q = g + (i * c + ch) * hw;
          float *o = dx + (i * c + ch) * hw;
          #pragma omp simd
          for (gint64 j = 0; j < hw; j++)
            o[j] = sc * (q[j] - k1 - (p[j] - mf) * k2);
        }
    }
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

  const gint64 n = x->shape.dims[0], c = x->shape.dims[1];
  const gint64 hw = x->shape.dims[2] * x->shape.dims[3];
  /* Uninitialised: the loops write every element. */
  NnTensor *out = nn_tensor_new_uninitialized (NN_DTYPE_F32, &x->shape);
  Saved *s = g_new0 (Saved, 1);
  s->mean = g_try_new (float, c);
  s->var = g_try_new (float, c);
  g_autofree double *m = g_try_new (double, c);
  g_autofree double *v = g_try_new (double, c);
  if (!out || !s->mean || !s->var || !m || !v)
    {
      saved_free (s);
      if (out)
        nn_tensor_unref (out);
      g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_FAILED,
                   "cannot allocate the batch norm output");
      return NULL;
    }
  train_forward_loops (nn_tensor_f32 (x), nn_tensor_f32 (out), n, c, hw,
                       nn_module_config_float (self, "eps"),
                       affine ? nn_tensor_f32 (nn_module_get_parameter (self, "weight")) : NULL,
                       affine ? nn_tensor_f32 (nn_module_get_parameter (self, "bias")) : NULL,
                       m, v);
  for (gint64 i = 0; i < c; i++)
    {
      s->mean[i] = (float) m[i];
      s->var[i] = (float) v[i];
    }
  if (rm && !nn_norm_update_running (self, m, v, c, n * hw, error))
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

  const gint64 n = x->shape.dims[0], c = x->shape.dims[1];
  const gint64 hw = x->shape.dims[2] * x->shape.dims[3];
  g_autofree float *mean = g_new (float, c);
  g_autofree float *var = g_new (float, c);
  g_autofree float *dscale = g_new (float, c);
  g_autofree float *dshift = g_new (float, c);
  if (!saved_take (self, x, y, c, mean, var))
    batch_stats (nn_tensor_f32 (x), n, c, hw, mean, var);
  NnTensor *dx = nn_tensor_new_uninitialized (NN_DTYPE_F32, &x->shape);
  if (!dx)
    {
      g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_FAILED,
                   "cannot allocate the batch norm input gradient");
      return NULL;
    }
  train_backward_loops (nn_tensor_f32 (x), nn_tensor_f32 (gt), nn_tensor_f32 (dx), n, c, hw,
                        nn_module_config_float (self, "eps"),
                        affine ? nn_tensor_f32 (nn_module_get_parameter (self, "weight")) : NULL,
                        mean, var, dscale, dshift);
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
  t->doc = "BatchNorm2d on oneDNN (running statistics; vectorised batch statistics "
           "in training), as torch.nn.BatchNorm2d";
  t->forward = dnnl_batch_norm2d_forward;
  t->backward = dnnl_batch_norm2d_backward;
  t->destroy = dnnl_batch_norm2d_destroy;
}
