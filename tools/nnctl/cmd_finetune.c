/* nnctl finetune MODEL: fine-tunes a classifier on a safetensors data
 * file ("input" [N, ...] float32, "labels" [N] int64) with cross entropy,
 * SGD or AdamW, frozen globs, a checkpoint written atomically after each
 * epoch and --resume (docs/TRAINING.md).  Everything is checked before the
 * first step; a failing step writes nothing. */
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
} Settings;

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
      ok = l && nn_backward (tape, nn_value_get_tensor (l), NULL, error)
           && nn_optimizer_step (opt, error);
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
  char *optimizer = NULL;
  char **freeze = NULL;
  Settings s = { 1, 32, 0, 0.01, 0.0, 0.0, "sgd", FALSE };
  gint epochs = 1, batch = 32, seed = 0;
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
  if (reg)
    loss = nn_module_new_from_type (reg, "CrossEntropyLoss", NULL, "loss", &error);
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
    nn_optimizer_set_lr (opt, s.lr);
  }
  gint64 trainable = 0, frozen = 0;
  nn_module_count_trainable (m, &trainable, &frozen);
  nnctl_info (g, "training %" G_GINT64_FORMAT " parameters (%" G_GINT64_FORMAT
              " frozen) on %" G_GINT64_FORMAT " samples, %" G_GINT64_FORMAT
              " steps per epoch\n", trainable, frozen, train.n, per_epoch);
  gboolean tty = isatty (fileno (stderr)) && !g->quiet;
  opath = optim_path_for (out);
  for (gint64 e = first_epoch; e < first_epoch + s.epochs; e++) {
    double tl, ta, vl = 0, va = 0;
    if (!train_epoch (m, loss, opt, &train, &s, e, tty, &tl, &ta, &error)
        || (val && !evaluate (m, loss, &valid, s.batch_size, &vl, &va, &error))) {
      nnctl_fail ("finetune", error);
      goto done;
    }
    nn_module_train (m, FALSE);
    if (!nn_model_save (m, out, &error) || !nn_optimizer_save (opt, opath, &error)) {
      nnctl_fail (out, error);
      goto done;
    }
    if (val)
      printf ("epoch %" G_GINT64_FORMAT ": train loss %.4f acc %.4f, val loss %.4f "
              "acc %.4f\n", e + 1, tl, ta, vl, va);
    else
      printf ("epoch %" G_GINT64_FORMAT ": train loss %.4f acc %.4f\n", e + 1, tl, ta);
    fflush (stdout);
  }
  rc = NNCTL_EXIT_OK;
done:
  g_free (opath);
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
