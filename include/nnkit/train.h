/* nnkit: fine-tuning.
 *
 * Training mode (nn_module_train), frozen parameters (requires_grad),
 * a tape recorded during a forward (nn_tape_call) and walked backwards
 * (nn_backward), gradients stored beside the parameters, and the
 * optimisers (SGD, Adam, AdamW).  The loop reads like PyTorch's:
 *
 *   nn_module_zero_grad (model);
 *   NnTape *tape = nn_tape_new (seed);
 *   logits = nn_tape_call (tape, model, args, NULL, &error);
 *   loss = nn_tape_call (tape, loss_fn, (logits, labels), NULL, &error);
 *   nn_backward (tape, loss, NULL, &error);
 *   nn_optimizer_step (opt, &error);
 *   nn_tape_free (tape);
 *
 * See docs/TRAINING.md.  Threads: training mutates the tree (gradients,
 * running statistics, parameters); one thread at a time per tree.
 */
#ifndef NNKIT_TRAIN_H
#define NNKIT_TRAIN_H

#include <glib.h>
#include <nnkit/export.h>
#include <nnkit/tensor.h>
#include <nnkit/value.h>
#include <nnkit/module.h>
#include <nnkit/plugin.h>

G_BEGIN_DECLS

/* --- modes ------------------------------------------------------------- */

/* PyTorch's m.train(mode): sets the mode of @m and of every descendant.
 * Modules start in eval mode (nnkit's inference default). */
NN_API void nn_module_train (NnModule *m, gboolean mode);
/* The module's own mode flag. */
NN_API gboolean nn_module_is_training (NnModule *m);

/* --- frozen parameters ------------------------------------------------- */

/* Sets requires_grad on every parameter of @root whose full name matches
 * @pattern (nn_module_glob's syntax over parameter names; a module path
 * glob such as "features.*" selects the parameters below it).  A pattern
 * matching no parameter is an error naming it.  Returns the number of
 * parameters changed through @n_out (nullable). */
NN_API gboolean nn_module_set_requires_grad (NnModule *root,
                                             const char *pattern,
                                             gboolean requires_grad,
                                             guint *n_out, GError **error);
/* Whether own parameter @name of @m is trainable (default TRUE). */
NN_API gboolean nn_module_param_requires_grad (NnModule *m, const char *name);
/* Counts elements of trainable and frozen parameters below @m
 * (deduplicated, as torchinfo's "Trainable params"). */
NN_API void nn_module_count_trainable (NnModule *m, gint64 *trainable,
                                       gint64 *frozen);
/* Returns: (transfer full) the sorted full names of @root's frozen
 * parameters, NULL-terminated (g_strfreev). */
NN_API char **nn_module_frozen_names (NnModule *root);

/* --- gradients ----------------------------------------------------------- */

/* For a type's backward: the F32 gradient buffer of own parameter @name
 * of @self, created zero-filled on first use, to accumulate into.
 * Returns: (transfer none) (nullable) NULL when the parameter is frozen
 * or absent, so the backward skips that gradient. */
NN_API float *nn_module_grad_f32 (NnModule *self, const char *name);
/* The gradient of parameter @name ("fc.weight") of @root.
 * Returns: (transfer none) (nullable) NULL with an error when the name
 * is not a parameter; NULL without error when no gradient was computed
 * since the last zero_grad. */
NN_API NnTensor *nn_module_lookup_grad (NnModule *root, const char *name,
                                        GError **error);
/* PyTorch's zero_grad(set_to_none=True): drops every gradient below @m. */
NN_API void nn_module_zero_grad (NnModule *m);

/* --- the tape ------------------------------------------------------------ */

typedef struct _NnTape NnTape;

/* A new empty tape; @seed seeds the generator that training-mode layers
 * (Dropout) draw from through nn_call_get_rng().  (transfer full) */
NN_API NnTape *nn_tape_new (guint32 seed);
NN_API void nn_tape_free (NnTape *tape);
/* Number of entries recorded (leaf module and op calls). */
NN_API guint nn_tape_n_entries (NnTape *tape);

/* Like nn_module_call(), recording every leaf call on @tape whose inputs
 * need a gradient or whose module has a trainable parameter.  Several
 * calls (model then loss) may record on one tape. */
NN_API NnValue *nn_tape_call (NnTape *tape, NnModule *m, const NnValue *args,
                              const NnValue *kwargs, GError **error);

/* Walks @tape backwards from @output (a tensor some recorded call
 * returned), seeded with @grad (transfer none; NULL: ones, for a scalar
 * loss), accumulating parameter gradients.  A recorded type without
 * backward through which a gradient must flow is an error
 * (NN_MODULE_ERROR_FAILED) naming it and its module path.  The tape may
 * be walked once. */
NN_API gboolean nn_backward (NnTape *tape, NnTensor *output, NnTensor *grad,
                             GError **error);

/* Marks @t (a reference is taken) as needing a gradient, as
 * x.requires_grad_() does: calls reading it are recorded and, after
 * nn_backward, nn_tape_grad() returns its gradient. */
NN_API void nn_tape_watch (NnTape *tape, NnTensor *t);
/* After nn_backward: the gradient of watched (or any recorded) tensor @t.
 * Returns: (transfer none) (nullable) NULL when no gradient reached it. */
NN_API NnTensor *nn_tape_grad (NnTape *tape, NnTensor *t);

/* For a type's forward: the call's generator (transfer none), seeded by
 * the tape; outside a tape, a generator seeded from the system. */
NN_API GRand *nn_call_get_rng (NnCall *call);
/* For a type's backward: whether a gradient is wanted for positional
 * argument @i of @args (a tensor produced by a recorded call or watched),
 * as PyTorch's output_mask, so that a backward may skip computing it and
 * return None there (a network's first convolution).  TRUE outside a
 * backward walk, where nothing is known. */
NN_API gboolean nn_call_input_needs_grad (NnCall *call, const NnArgs *args,
                                          guint i);

/* --- optimisers ---------------------------------------------------------- */

typedef enum {
  NN_OPTIM_SGD,
  NN_OPTIM_ADAM,
  NN_OPTIM_ADAMW,
} NnOptimKind;

typedef struct {
  NnOptimKind kind;
  double lr;
  double momentum;      /* SGD */
  double dampening;     /* SGD */
  gboolean nesterov;    /* SGD */
  double weight_decay;  /* SGD/Adam: L2 added to the gradient; AdamW: decoupled */
  double beta1, beta2, eps; /* Adam/AdamW */
} NnOptimConfig;

/* PyTorch's defaults for @kind: SGD lr=0.01 (torch requires lr; 0.01 is
 * a placeholder), Adam lr=1e-3 betas (0.9, 0.999) eps 1e-8, AdamW the
 * same with weight_decay 0.01. */
NN_API void nn_optim_config_init (NnOptimConfig *cfg, NnOptimKind kind);

typedef struct _NnOptimizer NnOptimizer;

/* An optimiser over the trainable parameters of @root (a reference is
 * taken), as torch.optim.X(filter(requires_grad, root.parameters())).
 * Returns: (transfer full). */
NN_API NnOptimizer *nn_optimizer_new (NnModule *root,
                                      const NnOptimConfig *cfg);
NN_API void nn_optimizer_free (NnOptimizer *opt);
/* One step from the gradients present; a parameter without gradient is
 * skipped, as in PyTorch. */
NN_API gboolean nn_optimizer_step (NnOptimizer *opt, GError **error);
NN_API void nn_optimizer_set_lr (NnOptimizer *opt, double lr);
NN_API double nn_optimizer_get_lr (NnOptimizer *opt);
/* Steps taken so far. */
NN_API gint64 nn_optimizer_get_step (NnOptimizer *opt);
/* torch.nn.utils.clip_grad_norm_(params, max_norm): scales every
 * gradient so that their global 2-norm is at most @max_norm; returns the
 * norm before clipping. */
NN_API double nn_clip_grad_norm (NnModule *root, double max_norm);

/* Saves the optimiser's state (step, lr, per-parameter buffers under
 * "<param>.<buffer>") to @path atomically (temporary file then rename). */
NN_API gboolean nn_optimizer_save (NnOptimizer *opt, const char *path,
                                   GError **error);
/* Restores a state written by nn_optimizer_save; shapes and names must
 * match (errors name the key, expected versus found). */
NN_API gboolean nn_optimizer_load (NnOptimizer *opt, const char *path,
                                   GError **error);

/* Learning-rate schedules, evaluated at epoch @epoch from @base_lr:
 * StepLR(step_size, gamma) and CosineAnnealingLR(T_max, eta_min), as
 * PyTorch's closed forms. */
NN_API double nn_lr_step (double base_lr, gint64 epoch, gint64 step_size,
                          double gamma);
NN_API double nn_lr_cosine (double base_lr, gint64 epoch, gint64 t_max,
                            double eta_min);

/* --- appended (trainbwd) ---------------------------------------------- */
/* For a type's forward: whether a tape is recording this call (or the
 * recorded leaf it runs inside), so its backward is likely to follow; a
 * provider may keep state for it then, and only then.  MT safe. */
NN_API gboolean nn_call_is_recording (NnCall *call);

G_END_DECLS

#endif
