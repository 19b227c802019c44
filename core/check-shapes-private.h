/* nnkit core: a forward's result against its type's infer (check_shapes.c).
 * Never installed. */
#pragma once

#include "nn-private.h"

G_BEGIN_DECLS

/* For a type with an infer slot (and neither NN_LAYER_ROUTES_ONLY nor
 * NN_LAYER_SHAPE_FROM_DATA), runs infer
 * on meta copies of @args/@kwargs (transfer none) and compares @out's
 * structure, shapes and dtypes with it.  FALSE with @error set, naming the
 * type's plugin, on a mismatch; TRUE when infer refuses (data-dependent
 * shapes).  With @step (nullable, transfer none), the plan step of this
 * call, an agreement is remembered by the signature of the call (every
 * argument's structure, scalar values, tensor shapes and dtypes, and the
 * result's): infer is a function of the module and that signature, so a
 * later call with the same signature is not compared again.
 * Per call: thread-safe. */
gboolean nn_check_shapes (NnCall *call, NnModule *m, const NnValue *args,
                          const NnValue *kwargs, const NnValue *out,
                          const NnPlanStep *step, GError **error);

/* The name of @m's plugin (transfer none), for "a bug in plugin '%s'". */
const char *nn_check_plugin_name (NnModule *m);

G_END_DECLS
