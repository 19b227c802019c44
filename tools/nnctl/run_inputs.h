/* nnctl run: building the forward's arguments from --input and --random
 * (run_inputs.c). */
#ifndef NNCTL_RUN_INPUTS_H
#define NNCTL_RUN_INPUTS_H

#include "nnctl.h"

G_BEGIN_DECLS

/* The call being built: positional @args (a tuple) and keyword @kwargs (a
 * dict), plus every tensor with the name it was given on the command line
 * (file key or --random NAME), in order, for reports. */
typedef struct {
  NnValue *args;
  NnValue *kwargs;
  GPtrArray *names;    /* (element-type utf8) */
  GPtrArray *tensors;  /* (element-type NnTensor) */
  /* --random specs give meta tensors (shape and dtype only), for shape
   * inference: nnctl summary --input-spec. */
  gboolean meta;
  /* The option named in errors about specs; NULL: "--random". */
  const char *option;
} NnctlInputs;

void nnctl_inputs_init (NnctlInputs *in);
void nnctl_inputs_clear (NnctlInputs *in);

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
