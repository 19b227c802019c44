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

/* provider_rules.c: NN_PROVIDERS rules and the order providers are
 * tried in (see include/nnkit/providers.h). */
typedef struct {
  char *type;         /* (nullable) NULL: every type */
  char *plugin;
  gboolean exclude;
} NnProviderRule;

typedef struct {
  GPtrArray *rules;   /* NnProviderRule *, text order */
  char *text;         /* normalised: "Conv2d=dnnl,-mkl" */
} NnProviderRules;

/* Returns: (transfer full) (nullable) the parsed @text, or NULL with @why
 * (transfer full) naming the malformed rule. */
NnProviderRules *nn_provider_rules_parse (const char *text, char **why);
void nn_provider_rules_free (NnProviderRules *rules);

/* One provider of a type, as nn_provider_rules_order() sorts them. */
typedef struct {
  const char *plugin;
  int rank;           /* effective: nn_provider_effective_rank() */
  guint load_order;   /* registration order, the last tie-break */
  gpointer data;      /* the caller's */
  gboolean selected;  /* out */
  gboolean excluded;  /* out */
} NnProviderCand;

/* 0 in a vtable means NN_RANK_PRIMARY (zero-initialised vtables). */
int nn_provider_effective_rank (int rank);
/* Marks and sorts @cands for @type: selected ones first in rule order,
 * then by rank (high first) and load order; excluded ones (by a rule, or
 * rank NN_RANK_NONE without a selection) last.  @rules may be NULL. */
void nn_provider_rules_order (const NnProviderRules *rules, const char *type,
                              NnProviderCand *cands, guint n);

/* omp_setup.c: sets a short GOMP_SPINCOUNT (unless the user set it or
 * OMP_WAIT_POLICY) before the first plugin loads libgomp.  Idempotent. */
void nn_omp_setup (void);

/* blas_cache.c: the OpenBLAS probe's remembered answer for the probe
 * @probe (transfer none), valid while the OpenBLAS file it loaded, the CPU
 * and the loader's environment are unchanged.  @default_kernel, @chosen:
 * (out) (transfer full); @chosen NULL when nnkit set no override. */
gboolean nn_blas_cache_lookup (const char *probe, char **default_kernel,
                               char **chosen);
/* Records the answer: @lib is the OpenBLAS file the probe loaded. */
void nn_blas_cache_store (const char *probe, const char *lib,
                          const char *default_kernel, const char *chosen);

/* cache_file.c */
/* The file for @key in nnkit's per-user cache folder @what:
 * $XDG_CACHE_HOME/nnkit/@what/<sha256 of @key>.  Transfer full. */
char *nn_cache_file (const char *what, const char *key);
/* Writes @text to the cache file @file whole (temp file, then rename:
 * racing processes each leave a whole entry; mode 0600, folder 0700).
 * A cache that cannot be written only costs work later: no error. */
void nn_cache_store (const char *file, const char *text);

G_END_DECLS

#endif
