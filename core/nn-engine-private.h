/* nnkit core: the execution engine's private declarations (CPU, threads,
 * BLAS setup, providers), shared by the core files.  Never installed. */
#ifndef NN_ENGINE_PRIVATE_H
#define NN_ENGINE_PRIVATE_H

#include <nnkit/plugin.h>
#include <nnkit/cpu.h>

G_BEGIN_DECLS

/* cpu.c */
/* Parses a comma- or space-separated list of feature names (Linux's
 * spellings, '-' for '_', case ignored) into NnCpuFeature bits.
 * @unknown: (out) (optional) (transfer full) the first unknown name. */
guint64 nn_cpu_parse_feature_list (const char *list, char **unknown);

G_END_DECLS

#endif
