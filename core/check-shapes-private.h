/* nnkit core: a forward's result against its type's infer (check_shapes.c).
 * Never installed. */
#pragma once

#include "nn-private.h"

G_BEGIN_DECLS

/* For a type with an infer slot (and not NN_LAYER_ROUTES_ONLY), runs infer
 * on meta copies of @args/@kwargs (transfer none) and compares @out's
 * structure, shapes and dtypes with it.  FALSE with @error set, naming the
 * type's plugin, on a mismatch or when infer fails where forward did not.
 * Per call: thread-safe. */
gboolean nn_check_shapes (NnCall *call, NnModule *m, const NnValue *args,
                          const NnValue *kwargs, const NnValue *out,
                          GError **error);

/* The name of @m's plugin (transfer none), for "a bug in plugin '%s'". */
const char *nn_check_plugin_name (NnModule *m);
/* "add: " for an op, which runs under its caller's path, else "";
 * (transfer full). */
char *nn_check_op_prefix (NnModule *m);

G_END_DECLS
