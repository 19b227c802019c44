/* nnkit core: the checked mode (NN_CHECK=1) and the forward-versus-infer
 * check, run by core/runtime.c around every forward.  Never installed. */
#pragma once

#include "nn-private.h"

G_BEGIN_DECLS

typedef struct _NnCheck NnCheck;

/* Whether NN_CHECK is set to a non-empty value other than "0" (the checked
 * mode); read once.  NN_CHECK=0 also turns off the forward-versus-infer
 * comparison, which is on by default. */
gboolean nn_check_enabled (void);

/* Starts checking one forward of @m with @bound (transfer none) about to
 * run: in checked mode snapshots every input tensor leaf (a copy of its
 * bytes and a reference).  Returns (transfer full) (nullable) NULL when
 * there is nothing to check.  Per call: thread-safe. */
NnCheck *nn_check_begin (NnModule *m, const NnArgs *bound);

/* Ends the check begun for @m and frees @check (nullable).  When the
 * forward succeeded (*@out set, *@error unset), compares the inputs with
 * their snapshots, looks for results sharing an input's storage, and runs
 * the type's infer on meta copies of @args/@kwargs (transfer none) to
 * compare the result's structure, shapes and dtypes (unless NN_CHECK=0).
 * @step (nullable, transfer none) is the plan step of this call: the
 * comparison is skipped when it already agreed for the same signature
 * (nn_check_shapes()).  On a mismatch sets @error naming the type and
 * plugin, clears *@out and returns FALSE. */
gboolean nn_check_end (NnCheck *check, NnCall *call, NnModule *m,
                       const NnValue *args, const NnValue *kwargs,
                       NnValue **out, const NnPlanStep *step, GError **error);

G_END_DECLS
