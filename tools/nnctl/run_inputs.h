/* nnctl run: building the forward's arguments from --input and --random
 * (run_inputs.c). */
#ifndef NNCTL_RUN_INPUTS_H
#define NNCTL_RUN_INPUTS_H

#include "nnctl.h"

G_BEGIN_DECLS

/* The call being built: every tensor with the name it was given on the
 * command line (file key or --random NAME), in order, and whether it is
 * positional; nnctl_inputs_finish() turns them into positional @args (a
 * tuple) and keyword @kwargs (a dict). */
typedef struct {
  NnValue *args;       /* (nullable) until finished */
  NnValue *kwargs;     /* (nullable) until finished */
  GPtrArray *names;    /* (element-type utf8) */
  GPtrArray *tensors;  /* (element-type NnTensor) */
  GArray *positional;  /* (element-type gboolean) */
  /* --random specs give meta tensors (shape and dtype only), for shape
   * inference: nnctl summary --input-spec. */
  gboolean meta;
  /* The option named in errors about specs; NULL: "--random". */
  const char *option;
} NnctlInputs;

void nnctl_inputs_init (NnctlInputs *in);
void nnctl_inputs_clear (NnctlInputs *in);
/* Adds @t (transfer full) under @name, positional or by name; a name given
 * twice is an error (G_OPTION_ERROR_BAD_VALUE). */
gboolean nnctl_inputs_add (NnctlInputs *in, const char *name,
                           gboolean positional, NnTensor *t, GError **error);
/* Builds args and kwargs: each of the forward's parameters @params
 * (nullable, in order) takes the tensor named after it, else the next
 * positional one, up to the first it cannot fill; leftover positional
 * tensors follow in the order given; every other named tensor is a
 * keyword argument.  The names and tensors are reordered to the call's. */
void nnctl_inputs_finish (NnctlInputs *in, char **params);

/* Adds the tensors of every --input @files spec, then every --random
 * @randoms spec (both nullable), drawing from one generator seeded with
 * @seed.  @recorded (nullable) is the model's input spec (name -> meta
 * tensor), which a bare --random SHAPE follows for a single-input model.
 * @params (nullable) are the forward's parameter names: a tensor named
 * after one is passed by keyword, others positionally.  Errors name the
 * option, file and tensor. */
gboolean nnctl_inputs_from_options (NnctlInputs *in, const NnValue *recorded,
                                    char **params, char **files,
                                    char **randoms, guint32 seed,
                                    GError **error);

/* A random tensor of @dtype and @shape: floats standard normal, or uniform
 * in [@lo, @hi) when @has_range; integers uniform in [@lo, @hi) ([0, 10)
 * by default, [0, 2) for bool).  Returns (transfer full) (nullable). */
NnTensor *nnctl_random_tensor (NnDType dtype, const NnShape *shape,
                               gboolean has_range, double lo, double hi,
                               GRand *rng, GError **error);

G_END_DECLS

#endif
