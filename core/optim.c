/* nnkit core: optimisers over a tree's trainable parameters, as
 * torch.optim.SGD, Adam and AdamW compute them (single-tensor path), plus
 * gradient-norm clipping, the closed-form LR schedules and the state file.
 * They act on parameters and gradients, never on layer types. */
#include "nn-private.h"

#include <nnkit/train.h>
#include <nnkit/weights.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  char *name;      /* full parameter name */
  NnModule *owner; /* (transfer none: the root holds it) */
  char *own;       /* own name in @owner */
  NnTensor *buf1;  /* (nullable) SGD momentum_buffer / Adam exp_avg */
  NnTensor *buf2;  /* (nullable) Adam exp_avg_sq */
} OptParam;

struct _NnOptimizer {
  NnModule *root;
  NnOptimConfig cfg;
  gint64 step;
  GArray *params; /* OptParam */
};

static void
opt_param_clear (gpointer p)
{
  OptParam *o = p;
  g_free (o->name);
  g_free (o->own);
  g_clear_pointer (&o->buf1, nn_tensor_unref);
  g_clear_pointer (&o->buf2, nn_tensor_unref);
}

void
nn_optim_config_init (NnOptimConfig *cfg, NnOptimKind kind)
{
  g_return_if_fail (cfg != NULL);
  memset (cfg, 0, sizeof *cfg);
  cfg->kind = kind;
  cfg->beta1 = 0.9;
  cfg->beta2 = 0.999;
  cfg->eps = 1e-8;
  if (kind == NN_OPTIM_SGD) {
    cfg->lr = 0.01;
  } else {
    cfg->lr = 1e-3;
    cfg->weight_decay = kind == NN_OPTIM_ADAMW ? 1e-2 : 0.0;
  }
}

static const char *
own_of (const char *full)
{
  const char *dot = strrchr (full, '.');
  return dot ? dot + 1 : full;
}

NnOptimizer *
nn_optimizer_new (NnModule *root, const NnOptimConfig *cfg)
{
  g_return_val_if_fail (root != NULL && cfg != NULL, NULL);
  NnOptimizer *o = g_new0 (NnOptimizer, 1);
  o->root = nn_module_ref (root);
  o->cfg = *cfg;
  o->params = g_array_new (FALSE, TRUE, sizeof (OptParam));
  g_array_set_clear_func (o->params, opt_param_clear);
  g_autoptr (GPtrArray) ps = nn_module_named_parameters (root);
  for (guint i = 0; i < ps->len; i++) {
    NnNamedItem *it = ps->pdata[i];
    const char *own = own_of (it->name);
    if (!nn_module_param_requires_grad (it->module, own)
        || it->tensor->dtype != NN_DTYPE_F32)
      continue;
    OptParam p = { g_strdup (it->name), it->module, g_strdup (own), NULL,
                   NULL };
    g_array_append_val (o->params, p);
  }
  return o;
}

void
nn_optimizer_free (NnOptimizer *opt)
{
  if (!opt)
    return;
  g_array_unref (opt->params);
  nn_module_unref (opt->root);
  g_free (opt);
}

void
nn_optimizer_set_lr (NnOptimizer *opt, double lr)
{
  opt->cfg.lr = lr;
}

double
nn_optimizer_get_lr (NnOptimizer *opt)
{
  return opt->cfg.lr;
}

gint64
nn_optimizer_get_step (NnOptimizer *opt)
{
  return opt->step;
}

/* The parameter's storage, made writable first: weights loaded zero-copy
 * from a file are read-only mappings. */
static float *
writable_param (OptParam *p, GError **error)
{
  NnTensor *t = nn_module_get_parameter (p->owner, p->own);
  if (!t) {
    g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_BAD_REFERENCE,
                 "optimizer: parameter '%s' no longer exists (surgery after "
                 "the optimizer was made?)", p->name);
    return NULL;
  }
  if (nn_tensor_is_read_only (t)) {
    g_autoptr (NnTensor) copy = nn_tensor_copy (t);
    if (!copy || !nn_module_set_tensor (p->owner, p->own, copy, error))
      return NULL;
    t = nn_module_get_parameter (p->owner, p->own);
  }
  return nn_tensor_f32 (t);
}

static NnTensor *
zeros_like (NnTensor *t)
{
  return nn_tensor_new (NN_DTYPE_F32, &t->shape);
}

/* One parameter's update, split over the thread pool by element ranges;
 * the constants are hoisted so that the loops vectorise, with the same
 * float operations per element as before (results are unchanged). */
typedef struct {
  const NnOptimConfig *c;
  float *w, *buf1, *buf2;
  const float *g;
  gboolean first;
  double step_size, bc2_sqrt;
} UpdateJob;

static void
sgd_range (gsize begin, gsize end, gpointer data)
{
  const UpdateJob *j = data;
  const NnOptimConfig *c = j->c;
  float *restrict w = j->w;
  float *restrict buf = j->buf1;
  const float *restrict g = j->g;
  const float wd = (float) c->weight_decay, lr = (float) c->lr;
  const float mom = (float) c->momentum, damp = (float) (1.0 - c->dampening);
  const gboolean decay = c->weight_decay != 0.0;
  if (!buf && !decay) {
    for (gsize i = begin; i < end; i++)
      w[i] -= lr * g[i];
    return;
  }
  for (gsize i = begin; i < end; i++) {
    float d = g[i];
    if (decay)
      d += wd * w[i];
    if (buf) {
      /* torch: the first step clones the gradient into the buffer. */
      buf[i] = j->first ? d : mom * buf[i] + damp * d;
      d = c->nesterov ? d + mom * buf[i] : buf[i];
    }
    w[i] -= lr * d;
  }
}

static void
adam_range (gsize begin, gsize end, gpointer data)
{
  const UpdateJob *j = data;
  const NnOptimConfig *c = j->c;
  float *restrict w = j->w;
  float *restrict m = j->buf1;
  float *restrict v = j->buf2;
  const float *restrict g = j->g;
  const gboolean adamw = c->kind == NN_OPTIM_ADAMW, decay = c->weight_decay != 0.0;
  const float shrink = (float) (1.0 - c->lr * c->weight_decay), wd = (float) c->weight_decay;
  const float b1 = (float) c->beta1, nb1 = (float) (1.0 - c->beta1);
  const float b2 = (float) c->beta2, nb2 = (float) (1.0 - c->beta2);
  const double step_size = j->step_size, bc2_sqrt = j->bc2_sqrt, eps = c->eps;
  for (gsize i = begin; i < end; i++) {
    float d = g[i];
    if (adamw)
      w[i] *= shrink;
    else if (decay)
      d += wd * w[i];
    m[i] = b1 * m[i] + nb1 * d;
    v[i] = b2 * v[i] + nb2 * d * d;
    double denom = sqrt ((double) v[i]) / bc2_sqrt + eps;
    w[i] -= (float) (step_size * (double) m[i] / denom);
  }
}

static void
sgd_update (const NnOptimConfig *c, OptParam *p, float *w, const float *g,
            gint64 n, gboolean first)
{
  UpdateJob j = { c, w, p->buf1 ? nn_tensor_f32 (p->buf1) : NULL, NULL, g, first };
  if (n > 0)
    nn_thread_pool_parallel_for_work (nn_thread_pool_get_default (), (gsize) n, 3 * n,
                                      sgd_range, &j);
}

static void
adam_update (const NnOptimConfig *c, OptParam *p, float *w, const float *g,
             gint64 n, gint64 step)
{
  const double bc1 = 1.0 - pow (c->beta1, (double) step);
  const double bc2 = 1.0 - pow (c->beta2, (double) step);
  UpdateJob j = { c, w, nn_tensor_f32 (p->buf1), nn_tensor_f32 (p->buf2), g, FALSE,
                  c->lr / bc1, sqrt (bc2) };
  if (n > 0)
    nn_thread_pool_parallel_for_work (nn_thread_pool_get_default (), (gsize) n, 8 * n,
                                      adam_range, &j);
}

gboolean
nn_optimizer_step (NnOptimizer *opt, GError **error)
{
  g_return_val_if_fail (opt != NULL, FALSE);
  const NnOptimConfig *c = &opt->cfg;
  opt->step++;
  for (guint i = 0; i < opt->params->len; i++) {
    OptParam *p = &g_array_index (opt->params, OptParam, i);
    NnTensor *gt = p->owner->grads ? g_hash_table_lookup (p->owner->grads,
                                                          p->own)
                                   : NULL;
    if (!gt)
      continue; /* PyTorch skips parameters whose grad is None */
    float *w = writable_param (p, error);
    if (!w)
      return FALSE;
    gint64 n = nn_tensor_numel (gt);
    NnTensor *pt = nn_module_get_parameter (p->owner, p->own);
    if (nn_tensor_numel (pt) != n) {
      g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_FAILED,
                   "optimizer: gradient of '%s' has %" G_GINT64_FORMAT
                   " elements, the parameter %" G_GINT64_FORMAT, p->name, n,
                   nn_tensor_numel (pt));
      return FALSE;
    }
    if (c->kind == NN_OPTIM_SGD) {
      gboolean first = FALSE;
      if (c->momentum != 0.0 && !p->buf1) {
        p->buf1 = zeros_like (pt);
        first = TRUE;
      }
      sgd_update (c, p, w, nn_tensor_f32 (gt), n, first);
    } else {
      if (!p->buf1)
        p->buf1 = zeros_like (pt);
      if (!p->buf2)
        p->buf2 = zeros_like (pt);
      adam_update (c, p, w, nn_tensor_f32 (gt), n, opt->step);
    }
    /* In place: caches built from the old values must see it. */
    nn_tensor_mark_written (nn_module_get_parameter (p->owner, p->own));
  }
  return TRUE;
}

double
nn_clip_grad_norm (NnModule *root, double max_norm)
{
  g_autoptr (GPtrArray) ps = nn_module_named_parameters (root);
  GPtrArray *gs = g_ptr_array_new ();
  double sq = 0.0;
  for (guint i = 0; i < ps->len; i++) {
    NnNamedItem *it = ps->pdata[i];
    NnTensor *g = it->module->grads
                      ? g_hash_table_lookup (it->module->grads,
                                             own_of (it->name))
                      : NULL;
    if (!g)
      continue;
    g_ptr_array_add (gs, g);
    const float *d = nn_tensor_f32 (g);
    for (gint64 j = 0, n = nn_tensor_numel (g); j < n; j++)
      sq += (double) d[j] * d[j];
  }
  double norm = sqrt (sq);
  /* torch: clip_coef = max_norm / (total_norm + 1e-6), clamped to 1. */
  double coef = max_norm / (norm + 1e-6);
  if (coef < 1.0)
    for (guint i = 0; i < gs->len; i++) {
      float *d = nn_tensor_f32 (gs->pdata[i]);
      for (gint64 j = 0, n = nn_tensor_numel (gs->pdata[i]); j < n; j++)
        d[j] = (float) (d[j] * coef);
    }
  g_ptr_array_unref (gs);
  return norm;
}

double
nn_lr_step (double base_lr, gint64 epoch, gint64 step_size, double gamma)
{
  if (step_size <= 0)
    return base_lr;
  return base_lr * pow (gamma, (double) (epoch / step_size));
}

double
nn_lr_cosine (double base_lr, gint64 epoch, gint64 t_max, double eta_min)
{
  if (t_max <= 0)
    return base_lr;
  return eta_min + (base_lr - eta_min) * (1.0 + cos (G_PI * (double) epoch
                                                     / (double) t_max)) / 2.0;
}

/* --- state file ------------------------------------------------------ */

static const char *const buf_names[] = { "buf1", "buf2" };

gboolean
nn_optimizer_save (NnOptimizer *opt, const char *path, GError **error)
{
  g_autoptr (GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  GPtrArray *tensors = g_ptr_array_new ();
  for (guint i = 0; i < opt->params->len; i++) {
    OptParam *p = &g_array_index (opt->params, OptParam, i);
    NnTensor *bufs[2] = { p->buf1, p->buf2 };
    for (guint b = 0; b < 2; b++)
      if (bufs[b]) {
        g_ptr_array_add (names, g_strdup_printf ("%s.%s", p->name,
                                                 buf_names[b]));
        g_ptr_array_add (tensors, bufs[b]);
      }
  }
  GHashTable *meta = g_hash_table_new_full (g_str_hash, g_str_equal, NULL,
                                            g_free);
  g_hash_table_insert (meta, "nnkit.optim.step",
                       g_strdup_printf ("%" G_GINT64_FORMAT, opt->step));
  g_hash_table_insert (meta, "nnkit.optim.lr", g_strdup_printf ("%.17g",
                                                                opt->cfg.lr));
  g_hash_table_insert (meta, "nnkit.optim.kind",
                       g_strdup_printf ("%d", (int) opt->cfg.kind));
  gboolean ok = nn_safetensors_write (path, (const char *const *) names->pdata,
                                      (NnTensor *const *) tensors->pdata,
                                      names->len, meta, error);
  g_hash_table_unref (meta);
  g_ptr_array_unref (tensors);
  return ok;
}

gboolean
nn_optimizer_load (NnOptimizer *opt, const char *path, GError **error)
{
  NnSafetensors *st = nn_safetensors_open (path, error);
  if (!st)
    return FALSE;
  gboolean ok = FALSE;
  guint n = opt->params->len;
  NnTensor **loaded = g_new0 (NnTensor *, 2 * n + 1);
  const char *step = nn_safetensors_get_metadata (st, "nnkit.optim.step");
  const char *lr = nn_safetensors_get_metadata (st, "nnkit.optim.lr");
  const char *kind = nn_safetensors_get_metadata (st, "nnkit.optim.kind");
  guint64 sv = 0;
  if (!step || !lr || !kind
      || !g_ascii_string_to_unsigned (step, 10, 0, G_MAXINT64, &sv, NULL)) {
    g_set_error (error, NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_HEADER,
                 "%s: not an optimizer state (metadata nnkit.optim.step, "
                 ".lr and .kind expected)", path);
    goto out;
  }
  if (atoi (kind) != (int) opt->cfg.kind) {
    g_set_error (error, NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_HEADER,
                 "%s: optimizer kind %s saved, this optimizer is kind %d",
                 path, kind, (int) opt->cfg.kind);
    goto out;
  }
  /* Read everything first, so a bad file changes nothing. */
  for (guint i = 0; i < n; i++) {
    OptParam *p = &g_array_index (opt->params, OptParam, i);
    NnTensor *pt = nn_module_get_parameter (p->owner, p->own);
    for (guint b = 0; b < 2; b++) {
      g_autofree char *key = g_strdup_printf ("%s.%s", p->name, buf_names[b]);
      NnShape shape;
      if (!nn_safetensors_get_info (st, key, &shape))
        continue;
      if (!pt || !nn_shape_equal (&shape, &pt->shape)) {
        g_autofree char *want = pt ? nn_shape_to_string (&pt->shape)
                                   : g_strdup ("(no parameter)");
        g_autofree char *got = nn_shape_to_string (&shape);
        g_set_error (error, NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_SHAPE,
                     "%s: '%s' has shape %s, the parameter %s", path, key,
                     got, want);
        goto fail;
      }
      loaded[2 * i + b] = nn_safetensors_get (st, key, NN_DTYPE_F32, error);
      if (!loaded[2 * i + b])
        goto fail;
      /* Owned, writable copies: the mapping is read-only. */
      NnTensor *c = nn_tensor_copy (loaded[2 * i + b]);
      nn_tensor_unref (loaded[2 * i + b]);
      loaded[2 * i + b] = c;
    }
  }
  for (guint i = 0; i < n; i++) {
    OptParam *p = &g_array_index (opt->params, OptParam, i);
    g_clear_pointer (&p->buf1, nn_tensor_unref);
    g_clear_pointer (&p->buf2, nn_tensor_unref);
    p->buf1 = loaded[2 * i];
    p->buf2 = loaded[2 * i + 1];
  }
  opt->step = (gint64) sv;
  opt->cfg.lr = g_ascii_strtod (lr, NULL);
  ok = TRUE;
  goto out;
fail:
  for (guint i = 0; i < 2 * n; i++)
    if (loaded[i])
      nn_tensor_unref (loaded[i]);
out:
  g_free (loaded);
  nn_safetensors_free (st);
  return ok;
}
