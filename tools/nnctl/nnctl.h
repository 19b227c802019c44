/* nnctl: shared declarations of the command-line tool.
 *
 * Each command lives in its own cmd_*.c file and is reached through the
 * dispatch table in main.c.  The helpers here (common.c) load models,
 * resolve references, print errors in the one-line form and build JSON.
 */
#ifndef NNCTL_H
#define NNCTL_H

#include <stdio.h>
#include <glib.h>
#include <json-glib/json-glib.h>
#include <nnkit/nnkit.h>
#include <nnkit/plugin.h>

G_BEGIN_DECLS

/* Documented exit codes (docs/NNCTL.md). */
#define NNCTL_EXIT_OK 0
#define NNCTL_EXIT_ERROR 1
#define NNCTL_EXIT_USAGE 2
/* Returned by nnctl_parse() when the command should go on. */
#define NNCTL_CONTINUE (-1)

/* State shared by every command: the global options, and the registry,
 * created on first use so that commands without models stay instant. */
typedef struct {
  char **plugin_paths;   /* --plugin-path, repeatable */
  gint threads;          /* --threads; -1: library default */
  gboolean quiet;        /* --quiet: no informational lines */
  NnRegistry *reg;       /* (nullable) loaded lazily */
  /* Model options, filled by commands taking a MODEL argument. */
  char *weights;         /* --weights FILE */
  char *weights_key;     /* --weights-key NAME: checkpoint dict entry */
  gboolean keep_dtype;   /* --keep-dtype: F16/BF16 weights stay as stored */
  gint64 init_seed;      /* --init-seed N, valid if has_init_seed */
  gboolean has_init_seed;
} NnctlGlobal;

typedef struct _NnctlCommand NnctlCommand;
struct _NnctlCommand {
  const char *name;        /* "show" */
  const char *args;        /* "MODEL", shown in usage lines */
  const char *summary;     /* one line, for `nnctl --help` */
  const char *description; /* (nullable) details and examples for --help */
  /* @argv[0] is the command name.  Returns an exit code. */
  int (*run) (NnctlGlobal *g, const NnctlCommand *cmd, int argc, char **argv);
};

/* Commands (one file each, or a small group). */
int nnctl_cmd_plugins (NnctlGlobal *g, const NnctlCommand *cmd, int argc, char **argv);
/* engine_info.c: the engine's section of `nnctl plugins`. */
void nnctl_engine_text (NnRegistry *reg);
void nnctl_engine_json (JsonBuilder *b, NnRegistry *reg);
void nnctl_providers_text (NnRegistry *reg, const char *type);
void nnctl_providers_json (JsonBuilder *b, NnRegistry *reg, const char *type);
int nnctl_cmd_show (NnctlGlobal *g, const NnctlCommand *cmd, int argc, char **argv);
int nnctl_cmd_modules (NnctlGlobal *g, const NnctlCommand *cmd, int argc, char **argv);
int nnctl_cmd_params (NnctlGlobal *g, const NnctlCommand *cmd, int argc, char **argv);
int nnctl_cmd_get (NnctlGlobal *g, const NnctlCommand *cmd, int argc, char **argv);
int nnctl_cmd_summary (NnctlGlobal *g, const NnctlCommand *cmd, int argc, char **argv);
int nnctl_cmd_replace (NnctlGlobal *g, const NnctlCommand *cmd, int argc, char **argv);
int nnctl_cmd_insert (NnctlGlobal *g, const NnctlCommand *cmd, int argc, char **argv);
int nnctl_cmd_delete (NnctlGlobal *g, const NnctlCommand *cmd, int argc, char **argv);
int nnctl_cmd_wrap (NnctlGlobal *g, const NnctlCommand *cmd, int argc, char **argv);
int nnctl_cmd_run (NnctlGlobal *g, const NnctlCommand *cmd, int argc, char **argv);
int nnctl_cmd_diff (NnctlGlobal *g, const NnctlCommand *cmd, int argc, char **argv);
int nnctl_cmd_dot (NnctlGlobal *g, const NnctlCommand *cmd, int argc, char **argv);
int nnctl_cmd_export (NnctlGlobal *g, const NnctlCommand *cmd, int argc, char **argv);
int nnctl_cmd_convert (NnctlGlobal *g, const NnctlCommand *cmd, int argc, char **argv);
int nnctl_cmd_doctor (NnctlGlobal *g, const NnctlCommand *cmd, int argc, char **argv);
int nnctl_cmd_finetune (NnctlGlobal *g, const NnctlCommand *cmd, int argc, char **argv);

/* --- weights files (cmd_weights.c) ------------------------------------------ */

/* TRUE if @path is weights only (a .pth, a sharded index, or safetensors
 * without a descriptor), not a model: params and diff then list or
 * compare its tensors. */
gboolean nnctl_is_weights_file (const char *path);
/* Opens @path with nn_weights_open(); notes on stdout what was chosen
 * for the user (checkpoint entry, stripped prefix) unless --quiet or
 * @json.  Returns: (transfer full) (nullable). */
NnSafetensors *nnctl_open_weights (NnctlGlobal *g, const char *path,
                                   const NnWeightsOpenOptions *opts,
                                   gboolean json, GError **error);
/* `params FILE` for a weights file: name, shape, dtype, numel. */
int nnctl_params_weights (NnctlGlobal *g, const char *path, const char *key,
                          const char *glob, gboolean json);
/* `diff A B` for two weights files: added, removed, reshaped, changed. */
int nnctl_diff_weights (NnctlGlobal *g, const char *a, const char *b,
                        gboolean all, double atol, gboolean json);

/* --- option parsing (common.c) ------------------------------------------ */

typedef enum {
  NNCTL_TAKES_MODEL = 1 << 0, /* add --weights and --init-seed */
} NnctlParseFlags;

/* Parses the command's options from @argc/@argv in place (@entries may be
 * NULL) and checks that between @min_args and @max_args (-1: any)
 * positional arguments remain after argv[0].  Handles --help.  Returns
 * NNCTL_CONTINUE, or the exit code to leave with. */
int nnctl_parse (NnctlGlobal *g, const NnctlCommand *cmd,
                 const GOptionEntry *entries, guint flags, int *argc,
                 char ***argv, int min_args, int max_args);

/* --- errors --------------------------------------------------------------- */

/* Prints "nnctl: @what: @error->message" as one line on stderr, frees
 * @error (transfer full, nullable) and returns NNCTL_EXIT_ERROR. */
int nnctl_fail (const char *what, GError *error);
/* Prints "nnctl: @what: <message>" and returns NNCTL_EXIT_USAGE. */
int nnctl_usage (const char *what, const char *fmt, ...) G_GNUC_PRINTF (2, 3);
/* Like nnctl_fail with a formatted message; returns NNCTL_EXIT_ERROR. */
int nnctl_error (const char *what, const char *fmt, ...) G_GNUC_PRINTF (2, 3);
/* Informational output, suppressed by --quiet. */
void nnctl_info (NnctlGlobal *g, const char *fmt, ...) G_GNUC_PRINTF (2, 3);

/* --- registry and models -------------------------------------------------- */

/* Returns: (transfer none) the registry, loading the plugins on first use:
 * each --plugin-path first, then the default discovery order. */
NnRegistry *nnctl_registry (NnctlGlobal *g, GError **error);
/* Loads MODEL with the global model options (--weights, --init-seed).
 * Returns: (transfer full) (nullable). */
NnModule *nnctl_load_model (NnctlGlobal *g, const char *path, GError **error);
/* Loads only MODEL's structure (descriptor; tensors registered but not
 * read), for commands that need no weight values: show, modules, params,
 * summary, dot.  Returns: (transfer full) (nullable). */
NnModule *nnctl_load_structure (NnctlGlobal *g, const char *path,
                                GError **error);
/* The __metadata__ key of a single-file model (docs/DESCRIPTORS.md). */
#define NNCTL_DESCRIPTOR_KEY "nnkit.descriptor"
/* Looks @ref up ("#N" or a dotted path).  @path_out (transfer full).
 * Returns: (transfer none) (nullable). */
NnModule *nnctl_lookup (NnModule *root, const char *ref, char **path_out,
                        GError **error);
/* Builds a new module from inline JSON or "@file.json".
 * Returns: (transfer full) (nullable). */
NnModule *nnctl_load_new_module (NnctlGlobal *g, const char *spec,
                                 GError **error);
/* Parses "1,3,224,224" (or a JSON array). */
gboolean nnctl_parse_shape (const char *text, NnShape *out, GError **error);
/* Parses a decimal integer with bounds; the error names @what. */
gboolean nnctl_parse_int (const char *text, const char *what, gint64 min,
                          gint64 max, gint64 *out, GError **error);

/* --- output helpers ------------------------------------------------------- */

/* "[1, 3, 224, 224]" (transfer full). */
char *nnctl_shape_str (const NnShape *s);
/* "11,689,512" (transfer full). */
char *nnctl_count_str (gint64 n);
/* The path as shown in text listings: "" becomes "(root)". */
const char *nnctl_path_display (const char *path);
/* Adds a shape as a JSON array of integers to @b (inside a member or array). */
void nnctl_json_add_shape (JsonBuilder *b, const NnShape *s);
/* Prints @b's root pretty-printed to stdout, with a final newline. */
void nnctl_json_print (JsonBuilder *b);
/* @node as JSON text (transfer full), 2-space indented when @pretty; valid
 * JSON for every double (json-glib alone writes 1e-08 as "1e-08.0"). */
char *nnctl_json_node_text (JsonNode *node, gboolean pretty);
/* Own parameter count of @m (not its children). */
gint64 nnctl_own_param_count (NnModule *m);
/* Multiply-accumulates of one observed call of @m (meta tensors), from
 * its type's count_macs slot; 0 when it has none. */
guint64 nnctl_count_macs (NnModule *m, const NnValue *args,
                          const NnValue *kwargs, const NnValue *out);
/* --- forward signatures (signature.c) ------------------------------------ */

/* Returns: (transfer none) @t's signature, or the ABI 1 default (one F32
 * "input") when it declares none; @n_out its length. */
const NnArgSpec *nnctl_type_args (const NnLayerType *t, guint *n_out);
/* "Tensor[F32] | None" (transfer full). */
char *nnctl_arg_kinds_text (const NnArgSpec *a);
/* "(input: Tensor[F32], inplace: bool | None = None)" (transfer full). */
char *nnctl_signature_text (const NnLayerType *t);
/* Adds the signature as a JSON array of argument objects to @b. */
void nnctl_json_add_signature (JsonBuilder *b, const NnLayerType *t);
/* The forward parameter names of @model's root: the recorded input spec's,
 * else the root type's declared signature.  Returns (transfer full). */
char **nnctl_forward_params (NnModule *model);
/* Adds the type's aliases as a JSON array of strings to @b. */
void nnctl_json_add_aliases (JsonBuilder *b, NnRegistry *reg,
                             const char *type_name);

/* TRUE if @path ends with @suffix (case-sensitive, as the core). */
gboolean nnctl_has_suffix (const char *path, const char *suffix);

/* A left-aligned text table; columns are sized to their widest cell. */
typedef struct _NnctlTable NnctlTable;
NnctlTable *nnctl_table_new (guint n_cols, const char *const *headers);
/* Adds a row of n_cols cells, copied; NULL cells print empty. */
void nnctl_table_add (NnctlTable *t, ...);
/* @right_align: bitmask of columns to right-align (numbers). */
void nnctl_table_print (NnctlTable *t, FILE *out, guint right_align);
void nnctl_table_free (NnctlTable *t);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (NnctlTable, nnctl_table_free)

G_END_DECLS

#endif
