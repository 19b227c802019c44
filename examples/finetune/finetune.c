/* A PyTorch-style training loop in C with nnkit (docs/TRAINING.md):
 *
 *   finetune MODEL DATA.safetensors FREEZE_GLOB OUT
 *
 * freezes FREEZE_GLOB, trains the rest for 5 epochs of SGD (lr 0.1,
 * momentum 0.9, batches of 32 in file order) with cross entropy on the
 * file's "input" and "labels", prints the loss per epoch and the final
 * training accuracy, and saves the model to OUT. */
#include <nnkit/nnkit.h>
#include <stdio.h>
#include <string.h>

static int
fail (GError *error)
{
  fprintf (stderr, "finetune: %s\n", error->message);
  g_error_free (error);
  return 1;
}

/* Rows [start, start + n) of @t as a new tensor. */
static NnTensor *
rows (NnTensor *t, gint64 start, gint64 n)
{
  NnShape s = t->shape;
  gsize row = nn_tensor_nbytes (t) / (gsize) s.dims[0];
  s.dims[0] = n;
  NnTensor *out = nn_tensor_new (t->dtype, &s);
  memcpy (out->data, (char *) t->data + (gsize) start * row, (gsize) n * row);
  return out;
}

int
main (int argc, char **argv)
{
  GError *error = NULL;
  if (argc != 5) {
    fprintf (stderr, "usage: finetune MODEL DATA.safetensors FREEZE_GLOB OUT\n");
    return 2;
  }
  g_autoptr (NnRegistry) reg = nn_registry_new ();
  if (!nn_registry_load_default (reg, &error))
    return fail (error);
  g_autoptr (NnModule) model = nn_model_load (reg, argv[1], NULL, FALSE, &error);
  if (!model)
    return fail (error);
  NnSafetensors *st = nn_safetensors_open (argv[2], &error);
  if (!st)
    return fail (error);
  g_autoptr (NnTensor) x = nn_safetensors_get (st, "input", NN_DTYPE_F32, &error);
  g_autoptr (NnTensor) y = x ? nn_safetensors_get (st, "labels", NN_DTYPE_I64, &error) : NULL;
  nn_safetensors_free (st);
  if (!y)
    return fail (error);

  /* for p in model.features.parameters(): p.requires_grad = False */
  if (!nn_module_set_requires_grad (model, argv[3], FALSE, NULL, &error))
    return fail (error);
  g_autoptr (NnModule) loss_fn = nn_module_new_from_type (reg, "CrossEntropyLoss", NULL,
                                                          "loss", &error);
  if (!loss_fn)
    return fail (error);
  NnOptimConfig cfg;
  nn_optim_config_init (&cfg, NN_OPTIM_SGD);
  cfg.lr = 0.1;
  cfg.momentum = 0.9;
  NnOptimizer *opt = nn_optimizer_new (model, &cfg);

  gint64 n = x->shape.dims[0], batch = 32, correct = 0;
  for (int epoch = 0; epoch < 5; epoch++) {
    double total = 0.0;
    correct = 0;
    nn_module_train (model, TRUE);                      /* model.train() */
    for (gint64 s = 0; s < n; s += batch) {
      gint64 b = MIN (batch, n - s);
      g_autoptr (NnTensor) xb = rows (x, s, b);
      g_autoptr (NnTensor) yb = rows (y, s, b);
      nn_module_zero_grad (model);                      /* opt.zero_grad() */
      NnTape *tape = nn_tape_new ((guint32) (epoch * 1000 + s));
      g_autoptr (NnValue) args = nn_value_new_tuple ();
      nn_value_append (args, nn_value_new_tensor (xb));
      g_autoptr (NnValue) logits = nn_tape_call (tape, model, args, NULL, &error);
      g_autoptr (NnValue) largs = nn_value_new_tuple ();
      g_autoptr (NnValue) loss = NULL;
      if (logits) {
        nn_value_append (largs, nn_value_ref (logits));
        nn_value_append (largs, nn_value_new_tensor (yb));
        loss = nn_tape_call (tape, loss_fn, largs, NULL, &error); /* loss_fn(logits, y) */
      }
      gboolean ok = loss && nn_backward (tape, nn_value_get_tensor (loss), NULL, &error)
                    && nn_optimizer_step (opt, &error);  /* loss.backward(); opt.step() */
      nn_tape_free (tape);
      if (!ok) {
        nn_optimizer_free (opt);
        return fail (error);
      }
      total += nn_tensor_f32 (nn_value_get_tensor (loss))[0] * (double) b;
      NnTensor *lt = nn_value_get_tensor (logits);
      gint64 c = lt->shape.dims[1];
      for (gint64 i = 0; i < b; i++) {
        gint64 best = 0;
        for (gint64 j = 1; j < c; j++)
          if (nn_tensor_f32 (lt)[i * c + j] > nn_tensor_f32 (lt)[i * c + best])
            best = j;
        correct += best == nn_tensor_i64 (yb)[i];
      }
    }
    printf ("epoch %d: loss %.4f\n", epoch + 1, total / (double) n);
  }
  printf ("train accuracy in the last epoch: %.3f\n", (double) correct / (double) n);
  /* A gradient, by parameter name. */
  g_autoptr (GPtrArray) ps = nn_module_named_parameters (model);
  NnNamedItem *last = ps->pdata[ps->len - 1];
  NnTensor *g = nn_module_lookup_grad (model, last->name, NULL);
  printf ("gradient of %s: %s\n", last->name, g ? "present" : "none");
  nn_optimizer_free (opt);
  nn_module_train (model, FALSE);
  if (!nn_model_save (model, argv[4], &error))
    return fail (error);
  return 0;
}
