/* nnctl finetune MODEL: fine-tunes a classifier on a safetensors data
 * file ("input" [N, ...] float32, "labels" [N] int64) with cross entropy
 * (label smoothing), SGD, Adam or AdamW, an epoch-wise StepLR or
 * CosineAnnealingLR schedule, gradient-norm clipping, frozen globs, a
 * checkpoint written atomically after each epoch and --resume, which
 * continues the optimiser and the schedule (docs/TRAINING.md).  Everything
 * is checked before the first step; a failing step writes nothing. */
#include "nnctl.h"

#include <math.h>
#include <string.h>
#include <unistd.h>

typedef struct {
  NnTensor *input;  /* [N, ...] F32 */
  NnTensor *labels; /* [N] I64 */
  gint64 n;
} Dataset;

static void
dataset_clear (Dataset *d)
{
  g_clear_pointer (&d->input, nn_tensor_unref);
  g_clear_pointer (&d->labels, nn_tensor_unref);
}

static gboolean
dataset_load (const char *path, Dataset *d, GError **error)
{
  NnSafetensors *st = nn_safetensors_open (path, error);
  if (!st)
    return FALSE;
  gboolean ok = FALSE;
  NnShape xs, ys;
  if (!nn_safetensors_get_info (st, "input", &xs)
      || !nn_safetensors_get_info (st, "labels", &ys)) {
    g_set_error (error, NN_WEIGHTS_ERROR, NN_WEIGHTS_ERROR_NOT_FOUND,
                 "%s: expected tensors 'input' and 'labels'", path);
    goto out;
  }
  if (xs.ndim < 1 || ys.ndim != 1 || xs.dims[0] != ys.dims[0]) {
    g_autofree char *a = nn_shape_to_string (&xs);
    g_autofree char *b = nn_shape_to_string (&ys);
    g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH,
                 "%s: labels %s do not match input %s (expected labels [N] "
                 "for input [N, ...])", path, b, a);
    goto out;
  }
  if (xs.dims[0] == 0) {
    g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH,
                 "%s: the dataset is empty", path);
    goto out;
  }
  d->input = nn_safetensors_get (st, "input", NN_DTYPE_F32, error);
  d->labels = d->input ? nn_safetensors_get (st, "labels", NN_DTYPE_I64, error)
                       : NULL;
  d->n = xs.dims[0];
  ok = d->input && d->labels;
out:
  nn_safetensors_free (st);
  if (!ok)
    dataset_clear (d);
  return ok;
}

/* Rows @idx[0..n) of @t, copied into a new tensor. */
static NnTensor *
gather (NnTensor *t, const gint64 *idx, gint64 n)
{
  NnShape s = t->shape;
  gsize row = nn_tensor_nbytes (t) / (gsize) s.dims[0];
  s.dims[0] = n;
  NnTensor *out = nn_tensor_new (t->dtype, &s);
  for (gint64 i = 0; i < n; i++)
    memcpy ((char *) out->data + (gsize) i * row,
            (const char *) t->data + (gsize) idx[i] * row, row);
  return out;
}

static gint64
count_correct (NnTensor *logits, NnTensor *labels)
{
  gint64 n = logits->shape.dims[0], c = logits->shape.dims[1], ok = 0;
  const float *x = nn_tensor_f32 (logits);
  const gint64 *y = nn_tensor_i64 (labels);
  for (gint64 i = 0; i < n; i++) {
    gint64 best = 0;
    for (gint64 j = 1; j < c; j++)
      if (x[i * c + j] > x[i * c + best])
        best = j;
    ok += best == y[i];
  }
  return ok;
}

static gboolean
check_logits (NnTensor *t, GError **error)
{
  if (t && t->shape.ndim == 2)
    return TRUE;
  g_autofree char *s = t ? nn_shape_to_string (&t->shape) : g_strdup ("no tensor");
  g_set_error (error, NN_SHAPE_ERROR, NN_SHAPE_ERROR_MISMATCH,
               "the model must return logits [N, classes], found %s", s);
  return FALSE;
}

/* Loss and accuracy of @m (eval mode) on @d. */
static gboolean
evaluate (NnModule *m, NnModule *loss, Dataset *d, gint64 bs, double *loss_out,
          double *acc_out, GError **error)
{
  nn_module_train (m, FALSE);
  double total = 0.0;
  gint64 correct = 0;
  g_autofree gint64 *idx = g_new (gint64, bs);
  for (gint64 s = 0; s < d->n; s += bs) {
    gint64 n = MIN (bs, d->n - s);
    for (gint64 i = 0; i < n; i++)
      idx[i] = s + i;
    g_autoptr (NnTensor) x = gather (d->input, idx, n);
    g_autoptr (NnTensor) y = gather (d->labels, idx, n);
    g_autoptr (NnTensor) logits = nn_module_forward (m, x, error);
    if (!logits || !check_logits (logits, error))
      return FALSE;
    g_autoptr (NnValue) la = nn_value_new_tuple ();
    nn_value_append (la, nn_value_new_tensor (logits));
    nn_value_append (la, nn_value_new_tensor (y));
    g_autoptr (NnValue) l = nn_module_call (loss, la, NULL, error);
    if (!l)
      return FALSE;
    total += nn_tensor_f32 (nn_value_get_tensor (l))[0] * (double) n;
    correct += count_correct (logits, y);
  }
  *loss_out = total / (double) d->n;
  *acc_out = (double) correct / (double) d->n;
  return TRUE;
}

typedef struct {
  gint64 epochs, batch_size, seed;
  double lr, momentum, weight_decay;
  const char *optimizer;
  gboolean no_shuffle;
  double clip; /* > 0: clip_grad_norm_ before each step */
} Settings;

/* The learning-rate schedule, stepped once per epoch as PyTorch's
 * scheduler.step() after each epoch: epoch e (from 0) trains at
 * lr(e).  Saved beside the checkpoint so --resume continues it. */
typedef struct {
  char *kind;       /* "none", "step" or "cosine" */
  double base_lr;
  gint64 step_size; /* step */
  double gamma;     /* step */
  gint64 t_max;     /* cosine (eta_min 0) */
} Schedule;

static double
schedule_lr (const Schedule *sc, gint64 epoch)
{
  if (g_strcmp0 (sc->kind, "step") == 0)
    return nn_lr_step (sc->base_lr, epoch, sc->step_size, sc->gamma);
  if (g_strcmp0 (sc->kind, "cosine") == 0)
    return nn_lr_cosine (sc->base_lr, epoch, sc->t_max, 0.0);
  return sc->base_lr;
}

/* "out.json" -> "out.sched.json": the schedule and the epochs done. */
static char *
sched_path_for (const char *model_path)
{
  const char *dot = strrchr (model_path, '.');
  const char *slash = strrchr (model_path, '/');
  gsize stem = dot && (!slash || dot > slash) ? (gsize) (dot - model_path)
                                              : strlen (model_path);
  return g_strdup_printf ("%.*s.sched.json", (int) stem, model_path);
}

/* Writes @sc and @epochs_done to @path atomically. */
static gboolean
schedule_save (const Schedule *sc, gint64 epochs_done, const char *path,
               GError **error)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "scheduler");
  json_builder_add_string_value (b, sc->kind);
  json_builder_set_member_name (b, "base_lr");
  json_builder_add_double_value (b, sc->base_lr);
  json_builder_set_member_name (b, "step_size");
  json_builder_add_int_value (b, sc->step_size);
  json_builder_set_member_name (b, "gamma");
  json_builder_add_double_value (b, sc->gamma);
  json_builder_set_member_name (b, "t_max");
  json_builder_add_int_value (b, sc->t_max);
  json_builder_set_member_name (b, "last_epoch");
  json_builder_add_int_value (b, epochs_done);
  json_builder_end_object (b);
  g_autoptr (JsonNode) root = json_builder_get_root (b);
  g_autofree char *text = nnctl_json_node_text (root, TRUE);
  return g_file_set_contents (path, text, -1, error);
}

/* Reads a schedule written by schedule_save; @epochs_done (nullable). */
static gboolean
schedule_load (Schedule *sc, gint64 *epochs_done, const char *path,
               GError **error)
{
  g_autoptr (JsonParser) p = json_parser_new ();
  if (!json_parser_load_from_file (p, path, error))
    return FALSE;
  JsonNode *root = json_parser_get_root (p);
  JsonObject *o = root && JSON_NODE_HOLDS_OBJECT (root) ? json_node_get_object (root) : NULL;
  const char *kind = o ? json_object_get_string_member_with_default (o, "scheduler", NULL)
                       : NULL;
  if (!kind || (strcmp (kind, "none") && strcmp (kind, "step") && strcmp (kind, "cosine"))
      || !json_object_has_member (o, "base_lr")) {
    g_set_error (error, NN_DESCRIPTOR_ERROR, NN_DESCRIPTOR_ERROR_WRONG_KIND,
                 "%s: expected an object with 'scheduler' (none, step or "
                 "cosine) and 'base_lr'", path);
    return FALSE;
  }
  g_free (sc->kind);
  sc->kind = g_strdup (kind);
  sc->base_lr = json_object_get_double_member (o, "base_lr");
  sc->step_size = json_object_get_int_member_with_default (o, "step_size", 0);
  sc->gamma = json_object_get_double_member_with_default (o, "gamma", 0.1);
  sc->t_max = json_object_get_int_member_with_default (o, "t_max", 0);
  if (epochs_done)
    *epochs_done = json_object_get_int_member_with_default (o, "last_epoch", 0);
  return TRUE;
}

/* One epoch of training; @epoch seeds the shuffle and the tapes. */
static gboolean
train_epoch (NnModule *m, NnModule *loss, NnOptimizer *opt, Dataset *d,
             const Settings *s, gint64 epoch, gboolean tty, double *loss_out,
             double *acc_out, GError **error)
{
  g_autofree gint64 *perm = g_new (gint64, d->n);
  for (gint64 i = 0; i < d->n; i++)
    perm[i] = i;
  if (!s->no_shuffle) {
    GRand *r = g_rand_new_with_seed ((guint32) (s->seed * 1000003 + epoch));
    for (gint64 i = d->n - 1; i > 0; i--) {
      gint64 j = g_rand_int_range (r, 0, (gint32) (i + 1));
      gint64 t = perm[i];
      perm[i] = perm[j];
      perm[j] = t;
    }
    g_rand_free (r);
  }
  gint64 n_batches = (d->n + s->batch_size - 1) / s->batch_size;
  double total = 0.0;
  gint64 correct = 0;
  for (gint64 b = 0; b < n_batches; b++) {
    gint64 start = b * s->batch_size, n = MIN (s->batch_size, d->n - start);
    g_autoptr (NnTensor) x = gather (d->input, perm + start, n);
    g_autoptr (NnTensor) y = gather (d->labels, perm + start, n);
    nn_module_zero_grad (m);
    nn_module_train (m, TRUE);
    NnTape *tape = nn_tape_new ((guint32) (s->seed + epoch * n_batches + b));
    g_autoptr (NnValue) xa = nn_value_new_tuple ();
    nn_value_append (xa, nn_value_new_tensor (x));
    g_autoptr (NnValue) out = nn_tape_call (tape, m, xa, NULL, error);
    NnTensor *logits = out ? nn_value_get_tensor (out) : NULL;
    gboolean ok = out && check_logits (logits, error);
    g_autoptr (NnValue) l = NULL;
    if (ok) {
      g_autoptr (NnValue) la = nn_value_new_tuple ();
      nn_value_append (la, nn_value_new_tensor (logits));
      nn_value_append (la, nn_value_new_tensor (y));
      l = nn_tape_call (tape, loss, la, NULL, error);
      ok = l && nn_backward (tape, nn_value_get_tensor (l), NULL, error);
      if (ok && s->clip > 0.0)
        nn_clip_grad_norm (m, s->clip);
      ok = ok && nn_optimizer_step (opt, error);
    }
    nn_tape_free (tape);
    if (!ok)
      return FALSE;
    total += nn_tensor_f32 (nn_value_get_tensor (l))[0] * (double) n;
    correct += count_correct (logits, y);
    if (tty) {
      int width = 30, done = (int) (width * (b + 1) / n_batches);
      fprintf (stderr, "\r  [%.*s%*s] %" G_GINT64_FORMAT "/%" G_GINT64_FORMAT
               " loss %.4f", done, "##############################",
               width - done, "", b + 1, n_batches,
               nn_tensor_f32 (nn_value_get_tensor (l))[0]);
      fflush (stderr);
    }
  }
  if (tty)
    fprintf (stderr, "\r%*s\r", 70, "");
  *loss_out = total / (double) d->n;
  *acc_out = (double) correct / (double) d->n;
  return TRUE;
}

/* "out.json" -> "out.optim.safetensors", beside the checkpoint. */
static char *
optim_path_for (const char *model_path)
{
  const char *dot = strrchr (model_path, '.');
  const char *slash = strrchr (model_path, '/');
  gsize stem = dot && (!slash || dot > slash) ? (gsize) (dot - model_path)
                                              : strlen (model_path);
  return g_strdup_printf ("%.*s.optim.safetensors", (int) stem, model_path);
}

int
nnctl_cmd_finetune (NnctlGlobal *g, const NnctlCommand *cmd, int argc,
                    char **argv)
{
  char *data = NULL, *val = NULL, *out = NULL, *resume = NULL;
  char *optimizer = NULL, *scheduler = NULL;
  char **freeze = NULL;
  Settings s = { 1, 32, 0, 0.01, 0.0, 0.0, "sgd", FALSE, 0.0 };
  gint epochs = 1, batch = 32, seed = 0, step_size = 0, t_max = 0;
  /* NAN: not given (GOption leaves an absent double untouched). */
  double gamma = NAN, label_smoothing = 0.0, clip = NAN;
  gboolean gamma_given;
  Schedule sched = { NULL, 0.0, 0, 0.1, 0 };
  char *spath = NULL;
  const GOptionEntry entries[] = {
    { "data", 0, 0, G_OPTION_ARG_FILENAME, &data,
      "Training data: 'input' [N, ...] float32 and 'labels' [N] int64", "TRAIN.safetensors" },
    { "val", 0, 0, G_OPTION_ARG_FILENAME, &val,
      "Validation data, same layout", "VAL.safetensors" },
    { "freeze", 0, 0, G_OPTION_ARG_STRING_ARRAY, &freeze,
      "Freeze the parameters matching GLOB (repeatable): 'features.*'", "GLOB" },
    { "epochs", 0, 0, G_OPTION_ARG_INT, &epochs, "Epochs (default 1)", "N" },
    { "batch-size", 0, 0, G_OPTION_ARG_INT, &batch, "Batch size (default 32)", "B" },
    { "lr", 0, 0, G_OPTION_ARG_DOUBLE, &s.lr, "Learning rate (default 0.01)", "LR" },
    { "optimizer", 0, 0, G_OPTION_ARG_STRING, &optimizer,
      "sgd (default), adam or adamw", "NAME" },
    { "momentum", 0, 0, G_OPTION_ARG_DOUBLE, &s.momentum, "SGD momentum (default 0)", "M" },
    { "weight-decay", 0, 0, G_OPTION_ARG_DOUBLE, &s.weight_decay,
      "Weight decay (default 0)", "W" },
    { "scheduler", 0, 0, G_OPTION_ARG_STRING, &scheduler,
      "Learning-rate schedule stepped once per epoch: step (StepLR) or "
      "cosine (CosineAnnealingLR, eta_min 0); default none", "NAME" },
    { "step-size", 0, 0, G_OPTION_ARG_INT, &step_size,
      "StepLR: epochs between decays (required with --scheduler step)", "N" },
    { "gamma", 0, 0, G_OPTION_ARG_DOUBLE, &gamma,
      "StepLR: decay factor (default 0.1)", "G" },
    { "t-max", 0, 0, G_OPTION_ARG_INT, &t_max,
      "CosineAnnealingLR: epochs of the half period (default --epochs)", "N" },
    { "clip-grad-norm", 0, 0, G_OPTION_ARG_DOUBLE, &clip,
      "Scale the gradients to a global 2-norm of at most MAX before each step", "MAX" },
    { "label-smoothing", 0, 0, G_OPTION_ARG_DOUBLE, &label_smoothing,
      "Cross-entropy label smoothing in [0, 1) (default 0)", "S" },
    { "seed", 0, 0, G_OPTION_ARG_INT, &seed, "Seed of the shuffle and dropout (default 0)", "S" },
    { "no-shuffle", 0, 0, G_OPTION_ARG_NONE, &s.no_shuffle,
      "Batches in file order", NULL },
    { "resume", 0, 0, G_OPTION_ARG_FILENAME, &resume,
      "Continue from a checkpoint written by -o (and its .optim.safetensors)", "CKPT" },
    { "output", 'o', 0, G_OPTION_ARG_FILENAME, &out,
      "Checkpoint written after each epoch (required)", "OUT" },
    { NULL }
  };
  int rc = nnctl_parse (g, cmd, entries, NNCTL_TAKES_MODEL, &argc, &argv, 1, 1);
  g_autoptr (NnModule) m = NULL;
  g_autoptr (NnModule) loss = NULL;
  NnOptimizer *opt = NULL;
  Dataset train = { 0 }, valid = { 0 };
  GError *error = NULL;
  char *opath = NULL;
  if (rc != NNCTL_CONTINUE)
    goto done;
  rc = NNCTL_EXIT_USAGE;
  if (!data) {
    nnctl_usage ("finetune", "--data TRAIN.safetensors is required");
    goto done;
  }
  if (!out) {
    nnctl_usage ("finetune", "-o OUT is required");
    goto done;
  }
  if (epochs < 1 || batch < 1 || !(s.lr > 0.0) || s.momentum < 0.0
      || s.weight_decay < 0.0) {
    nnctl_usage ("finetune", "--epochs and --batch-size must be >= 1, --lr > 0, "
                 "--momentum and --weight-decay >= 0");
    goto done;
  }
  gamma_given = !isnan (gamma);
  if (!gamma_given)
    gamma = 0.1;
  if (scheduler && strcmp (scheduler, "step") && strcmp (scheduler, "cosine")) {
    nnctl_usage ("finetune", "unknown --scheduler '%s' (expected step or cosine)",
                 scheduler);
    goto done;
  }
  if (scheduler && strcmp (scheduler, "step") == 0 && step_size < 1) {
    nnctl_usage ("finetune", "--scheduler step needs --step-size N >= 1");
    goto done;
  }
  if (step_size < 0 || t_max < 0 || !(gamma > 0.0) || !isfinite (gamma)) {
    nnctl_usage ("finetune", "--step-size and --t-max must be >= 1 and --gamma > 0");
    goto done;
  }
  if ((step_size || gamma_given) && g_strcmp0 (scheduler, "step") != 0) {
    nnctl_usage ("finetune", "--step-size and --gamma need --scheduler step");
    goto done;
  }
  if (t_max && g_strcmp0 (scheduler, "cosine") != 0) {
    nnctl_usage ("finetune", "--t-max needs --scheduler cosine");
    goto done;
  }
  if (!isnan (clip) && !(clip > 0.0 && isfinite (clip))) {
    nnctl_usage ("finetune", "--clip-grad-norm must be > 0, found %g", clip);
    goto done;
  }
  if (!(label_smoothing >= 0.0 && label_smoothing < 1.0)) {
    nnctl_usage ("finetune", "--label-smoothing must be in [0, 1), found %g",
                 label_smoothing);
    goto done;
  }
  s.clip = isnan (clip) ? 0.0 : clip;
  sched.kind = g_strdup (scheduler ? scheduler : "none");
  sched.base_lr = s.lr;
  sched.step_size = step_size;
  sched.gamma = gamma;
  sched.t_max = t_max ? t_max : epochs;
  s.epochs = epochs;
  s.batch_size = batch;
  s.seed = seed;
  if (optimizer)
    s.optimizer = optimizer;
  NnOptimConfig cfg;
  if (strcmp (s.optimizer, "sgd") == 0)
    nn_optim_config_init (&cfg, NN_OPTIM_SGD);
  else if (strcmp (s.optimizer, "adamw") == 0)
    nn_optim_config_init (&cfg, NN_OPTIM_ADAMW);
  else if (strcmp (s.optimizer, "adam") == 0)
    nn_optim_config_init (&cfg, NN_OPTIM_ADAM);
  else {
    nnctl_usage ("finetune", "unknown --optimizer '%s' (expected sgd, adam or adamw)",
                 s.optimizer);
    goto done;
  }
  cfg.lr = s.lr;
  cfg.momentum = s.momentum;
  cfg.weight_decay = s.weight_decay;

  /* Everything is loaded and checked before the first step. */
  rc = NNCTL_EXIT_ERROR;
  m = nnctl_load_model (g, resume ? resume : argv[1], &error);
  if (!m) {
    nnctl_fail (resume ? resume : argv[1], error);
    goto done;
  }
  for (guint i = 0; freeze && freeze[i]; i++)
    if (!nn_module_set_requires_grad (m, freeze[i], FALSE, NULL, &error)) {
      nnctl_fail ("--freeze", error);
      goto done;
    }
  if (!dataset_load (data, &train, &error)) {
    nnctl_fail ("--data", error);
    goto done;
  }
  if (val && !dataset_load (val, &valid, &error)) {
    nnctl_fail ("--val", error);
    goto done;
  }
  NnRegistry *reg = nnctl_registry (g, &error);
  if (reg) {
    g_autoptr (JsonObject) lcfg = json_object_new ();
    json_object_set_double_member (lcfg, "label_smoothing", label_smoothing);
    loss = nn_module_new_from_type (reg, "CrossEntropyLoss", lcfg, "loss", &error);
  }
  if (!loss) {
    nnctl_fail ("finetune", error);
    goto done;
  }
  cfg.nesterov = FALSE;
  opt = nn_optimizer_new (m, &cfg);
  gint64 first_epoch = 0;
  gint64 per_epoch = (train.n + s.batch_size - 1) / s.batch_size;
  if (resume) {
    g_autofree char *op = optim_path_for (resume);
    if (!nn_optimizer_load (opt, op, &error)) {
      nnctl_fail ("--resume", error);
      goto done;
    }
    first_epoch = nn_optimizer_get_step (opt) / per_epoch;
    /* The saved schedule continues unless --scheduler names a new one;
     * a checkpoint from before schedules (no file) had none. */
    g_autofree char *sp = sched_path_for (resume);
    if (!scheduler && g_file_test (sp, G_FILE_TEST_EXISTS)) {
      gint64 done_epochs = 0;
      if (!schedule_load (&sched, &done_epochs, sp, &error)) {
        nnctl_fail ("--resume", error);
        goto done;
      }
      if (done_epochs != first_epoch) {
        nnctl_error ("--resume", "%s says %" G_GINT64_FORMAT " epochs were "
                     "done but the optimiser state says %" G_GINT64_FORMAT
                     " (steps / steps per epoch): a different --batch-size "
                     "or data?", sp, done_epochs, first_epoch);
        goto done;
      }
    }
  }
  nn_optimizer_set_lr (opt, schedule_lr (&sched, first_epoch));
  gint64 trainable = 0, frozen = 0;
  nn_module_count_trainable (m, &trainable, &frozen);
  nnctl_info (g, "training %" G_GINT64_FORMAT " parameters (%" G_GINT64_FORMAT
              " frozen) on %" G_GINT64_FORMAT " samples, %" G_GINT64_FORMAT
              " steps per epoch\n", trainable, frozen, train.n, per_epoch);
  gboolean tty = isatty (fileno (stderr)) && !g->quiet;
  opath = optim_path_for (out);
  spath = sched_path_for (out);
  for (gint64 e = first_epoch; e < first_epoch + s.epochs; e++) {
    double tl, ta, vl = 0, va = 0;
    double lr = schedule_lr (&sched, e);
    nn_optimizer_set_lr (opt, lr);
    if (!train_epoch (m, loss, opt, &train, &s, e, tty, &tl, &ta, &error)
        || (val && !evaluate (m, loss, &valid, s.batch_size, &vl, &va, &error))) {
      nnctl_fail ("finetune", error);
      goto done;
    }
    nn_module_train (m, FALSE);
    if (!nn_model_save (m, out, &error) || !nn_optimizer_save (opt, opath, &error)
        || !schedule_save (&sched, e + 1, spath, &error)) {
      nnctl_fail (out, error);
      goto done;
    }
    if (val)
      printf ("epoch %" G_GINT64_FORMAT ": train loss %.4f acc %.4f, val loss %.4f "
              "acc %.4f, lr %.9g\n", e + 1, tl, ta, vl, va, lr);
    else
      printf ("epoch %" G_GINT64_FORMAT ": train loss %.4f acc %.4f, lr %.9g\n",
              e + 1, tl, ta, lr);
    fflush (stdout);
  }
  rc = NNCTL_EXIT_OK;
done:
  g_free (opath);
  g_free (spath);
  g_free (sched.kind);
  g_free (scheduler);
  nn_optimizer_free (opt);
  dataset_clear (&train);
  dataset_clear (&valid);
  g_free (data);
  g_free (val);
  g_free (out);
  g_free (resume);
  g_free (optimizer);
  g_strfreev (freeze);
  return rc;
}
