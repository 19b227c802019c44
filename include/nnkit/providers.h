/* nnkit: several plugins providing one layer type.
 *
 * Each registration carries a rank (NnLayerType.rank: NN_RANK_PRIMARY for
 * the reference implementation, higher for faster ones) and an optional
 * supports() check.  When a module is created, the providers of its type
 * are tried in order (selected first, then by rank, then load order); the
 * first whose schema accepts the config and whose supports() accepts it
 * on this CPU wins, for the module's lifetime.  Two providers of one type
 * at the same rank are refused as duplicates: the choice would be a coin
 * toss.
 *
 * Rules select or exclude providers, from the API or the NN_PROVIDERS
 * environment variable (read when a registry first chooses):
 *   "Conv2d=dnnl"   try plugin dnnl first for Conv2d
 *   "Conv2d=-dnnl"  never use plugin dnnl for Conv2d
 *   "-dnnl"         never use plugin dnnl
 *   "dnnl"          try plugin dnnl first for every type it provides
 * separated by commas.  A provider of rank NN_RANK_NONE is only used when
 * selected.  All functions are MT safe.
 */
#ifndef NNKIT_PROVIDERS_H
#define NNKIT_PROVIDERS_H

#include <glib.h>
#include <nnkit/export.h>
#include <nnkit/registry.h>

G_BEGIN_DECLS

typedef struct {
  char *plugin;       /* plugin name */
  char *path;         /* file it was loaded from */
  int rank;           /* effective rank: 0 in the vtable reads as PRIMARY */
  gboolean selected;  /* a rule puts it first */
  gboolean excluded;  /* a rule (or rank NONE) keeps it from being chosen */
} NnProviderInfo;

/* Returns: (transfer full) (element-type NnProviderInfo) the providers of
 * @type_name (an alias resolves to its type) in the order they are
 * tried, excluded ones last; NULL with NN_PLUGIN_ERROR_UNKNOWN_TYPE when
 * nothing provides it. */
NN_API GPtrArray *nn_registry_list_providers (NnRegistry *reg,
                                              const char *type_name,
                                              GError **error);
/* Replaces @reg's rules with @rules (syntax above; NULL or "" for none,
 * which also stops NN_PROVIDERS from being read).  Affects modules
 * created afterwards.  A malformed rule fails with NN_PLUGIN_ERROR_INVALID
 * naming it, and leaves the old rules in place. */
NN_API gboolean nn_registry_set_providers (NnRegistry *reg, const char *rules,
                                           GError **error);
/* Returns: (transfer full) (nullable) @reg's rules as text, NULL for none. */
NN_API char *nn_registry_get_providers (NnRegistry *reg);

G_END_DECLS

#endif
