/* nnkit core: private structures shared between core files.  Never
 * installed; plugins see NnModule, NnPlugin and NnCall as opaque. */
#ifndef NN_PRIVATE_H
#define NN_PRIVATE_H

#include <nnkit/nnkit.h>
#include <nnkit/plugin.h>

G_BEGIN_DECLS

/* core/tensor.c: while at least one training tape is live (nn_tape_new
 * to nn_tape_free), nn_tensor_new pools blocks of 256 KiB and more, and
 * the pool may keep up to the most it held in training (docs/
 * ENGINE.md, "Backward (training)").  MT safe; calls nest. */
void nn_tensor_pool_training_begin (void);
void nn_tensor_pool_training_end (void);
/* A root forward begins and ends, for the pool: blocks under 32 MiB are
 * kept only when freed within one, and the end frees the blocks idle
 * since the forward before last (none while a tape is live).  MT safe. */
void nn_tensor_pool_forward_begin (void);
void nn_tensor_pool_forward_end (void);

/* An own tensor of a module: a parameter or a buffer. */
typedef struct {
  char *name;
  NnTensor *tensor;
  gboolean persistent; /* buffers only: listed in the state_dict */
  gboolean declared;   /* from the descriptor ("parameters"/"buffers") */
} NnSlot;

typedef struct {
  char *name;
  NnModule *module;    /* holds a reference */
} NnChild;

typedef struct _NnHookList NnHookList;

struct _NnModule {
  gint ref_count;
  const NnLayerType *type;
  NnPlugin *plugin;       /* holds a reference: keeps the .so loaded */
  char *class_name;       /* (nullable) display name, e.g. "BasicBlock" */
  char *alloc_failure;    /* (nullable) the first tensor a type's create
                           * registered that could not be allocated */
  char *extra_repr;       /* (nullable) recorded extra_repr text, for types
                           * without an extra_repr of their own (Graph) */
  char **repr_lists;      /* (nullable) config keys printed as Python lists */
  JsonObject *config;     /* validated, defaults filled */
  GArray *children;       /* NnChild, in registration order */
  GArray *params;         /* NnSlot */
  GArray *buffers;        /* NnSlot */
  gpointer priv;          /* the type's instance data */
  NnHookList *hooks;      /* (nullable) created on first registration */
  NnValue *input_spec;    /* (nullable) dict: input name -> meta tensor */
  gboolean input_spec_legacy; /* came from (and saves as) "input_shape" */
  /* Flattened-index cache, valid while index_gen == nn_tree_generation. */
  guint64 index_gen;
  GPtrArray *index_paths;   /* NnNamedItem, named_modules() order */
  GHashTable *index_of;     /* NnModule* -> position + 1 */
  /* Training (core/train.c): mode, frozen own parameter names (nullable
   * set), gradients by own parameter name (nullable: name -> NnTensor). */
  gboolean training;
  GHashTable *frozen;
  GHashTable *grads;
  /* Execution plan (core/plan.c).  stamp: unique across the process,
   * renewed by every edit of this module's children or own tensors, so a
   * plan step resolved through it knows whether it still holds.  plan:
   * (nullable) this module's plan as a root, under plan.c's lock. */
  guint64 stamp;
  struct _NnPlan *plan;
  guint64 plan_builds;
};

/* Bumped by every structural mutation anywhere, so caches of every root
 * (a module may have several parents) notice. */
guint64 nn_tree_generation_get (void);
void nn_tree_generation_bump (void);

/* One top-level run (forward or inference) in progress.  Single-threaded:
 * a tree run from several threads has one NnCall per thread. */
struct _NnCall {
  GString *path;        /* dotted path of the module being run */
  guint depth;          /* of that module below the root */
  gboolean meta;        /* shape inference: tensors are meta tensors */
  gboolean located;     /* the error already carries its module path */
  GArray *events;       /* (nullable) NnCallEvent, entry order */
  GPtrArray *keep;      /* values kept alive until the run ends */
  struct _NnTape *tape; /* (nullable) recording for backward (tape.c) */
  guint tape_inside;    /* > 0 inside a recorded leaf: nested calls are
                         * its own business, not recorded */
  GRand *rng;           /* (nullable) made on first nn_call_get_rng() */
  /* Execution plan (core/plan.c): the root's plan being followed
   * (nullable), the next step expected, and the trace being recorded
   * (nullable: following the plan without a miss so far). */
  struct _NnPlan *plan;
  guint cursor;
  GPtrArray *trace;
  gboolean plan_on;     /* set by nn_plan_begin(); off in meta runs, with
                         * NN_PLAN=off and in NnCalls made elsewhere (a
                         * backward's): those resolve each call afresh */
  gboolean plan_ahead;  /* a shape-only run recording the root's plan
                         * before its first forward (runtime.c): plan_on
                         * although meta, and its meta tensors recorded */
  gboolean args_given;  /* the call being entered took its arguments
                         * (nn_call_*_take): they may die in place */
  /* Fusion (core/fuse.c).  step_fresh: the step just resolved was
   * recorded by this run.  n_invokes counts every type call, so a chain
   * (one step's result read only by the next) has nothing in between.
   * epilogue: for the next invoke of epilogue_for.  absorb_*: the next
   * absorb_left steps from absorb_next pass absorb_tensor on. */
  gboolean step_fresh;
  guint64 n_invokes;
  NnTensor *last_result;      /* compared by address only */
  guint last_result_next;
  guint64 last_result_invokes;
  const NnEpilogue *epilogue;
  NnModule *epilogue_for;
  /* The plan step of the next invoke of check_for, whose agreement with
   * infer it remembers (check_shapes.c). */
  const struct _NnPlanStep *check_step;
  NnModule *check_for;
  guint absorb_left, absorb_next;
  NnTensor *absorb_tensor;    /* compared by address only */
  /* Residual adds (fuse.c).  current: the module whose forward runs, the
   * caller of a functional op.  step_out[i]: step i's tensor result in
   * this run (NULL: none), by address, to find a residual's source when
   * recording.  held[i]: (nullable) a reference on step i's result while
   * a later group may read it as its residual (plan->res_last[i] > 0).
   * absorb_residual: what the running group added, compared by address
   * with the absorbed add's operand (step absorb_add - 1). */
  NnModule *current;
  GArray *step_out;           /* gpointer */
  NnTensor **held;
  guint n_held;
  NnTensor *absorb_residual;
  guint absorb_add;           /* 1 + the absorbed add's step, 0: none */
  struct _NnTape *walking; /* (nullable) in a backward: the tape walked, for
                            * nn_call_input_needs_grad() */
  NnModule *running;       /* (nullable) the module whose forward runs now:
                            * the caller of nn_call_module (layout.c) */
};

/* tape.c: called by invoke() around a type's forward in a recorded run.
 * nn_tape_wants() says whether the call must be recorded; nn_tape_record
 * takes @bound (transfer full) and refs @out. */
gboolean nn_tape_wants (NnCall *call, NnModule *m, const NnArgs *bound);
void nn_tape_record (NnCall *call, NnModule *m, NnArgs *bound,
                     const NnValue *out);
GRand *nn_tape_rng (struct _NnTape *tape);
/* train.c: frees the training fields of @m. */
void nn_module_clear_training (NnModule *m);

typedef struct {
  NnModule *module;
  char *path;
  guint depth;
  NnValue *args;
  NnValue *kwargs;      /* (nullable) */
  NnValue *out;         /* (nullable) until the call returns */
} NnCallEvent;

/* args.c */
/* The type's signature, or the ABI 1 default (one F32 tensor "input"). */
void nn_type_signature (const NnLayerType *type, const NnArgSpec **specs,
                        guint *n);
/* Binds positional @args (a tuple) and keyword @kwargs (nullable dict) to
 * @type's signature.  Errors (NN_MODULE_ERROR_BAD_ARGUMENTS) carry no
 * module path.  Returns: (transfer full) (nullable). */
NnArgs *nn_args_bind (const NnLayerType *type, const NnValue *args,
                      const NnValue *kwargs, GError **error);
/* Returns: (transfer full) JSON as a value: null None, arrays tuples,
 * objects dicts. */
NnValue *nn_value_from_json (JsonNode *node);

/* module.c: gives @m a new stamp after an edit of its children or own
 * tensors; plan steps resolved through it rebuild. */
void nn_module_touch (NnModule *m);

/* plan.c (see docs/ENGINE.md, "The execution plan") */
typedef struct _NnPlanStep NnPlanStep;
struct _NnPlanStep {
  gint ref_count;
  NnModule *caller;     /* compared by address only */
  char *path;           /* as the caller spelt it */
  char *canon;          /* canonical dotted path below the caller */
  guint depth_add;      /* segments in canon */
  guint n_chain;        /* caller, intermediate modules, target */
  NnModule **chain;
  guint64 *stamps;      /* each chain module's stamp when resolved */
  /* Observed when recorded (fuse.c): the call's one positional argument
   * was the previous step's float32 result, read by nothing else; the
   * ndims of its first tensor argument and of its tensor result. */
  gboolean chained;
  guint in_ndim, out_ndim;
  /* Appended for functional-op steps (nn_call_functional): fn is the op
   * (owned by the caller, path "#" + its type name); chain holds only the
   * caller.  in_shape: the first tensor argument's shape when recorded.
   * A two-operand step chained through one operand records the other, its
   * residual: res_src - 1 the step whose result it was (0: none), its
   * position and shape (that of the chained operand too). */
  NnModule *fn;
  NnShape in_shape;
  guint res_src, res_pos;
  NnShape res_shape;
  /* Appended for the forward-versus-infer check (check_shapes.c): the
   * signature of the last call whose result agreed with infer, 0 for
   * none.  Read and written atomically: the plan is shared by threads. */
  guint64 shapes_ok;
};

typedef struct _NnFoldCache NnFoldCache;
typedef struct _NnPlan NnPlan;
struct _NnPlan {
  gint ref_count;
  GPtrArray *steps;     /* NnPlanStep *, entry order */
  /* Fusion, per step (fuse.c): how many following steps it may absorb
   * (fixed at publication), its folded-weight cache (made on first use),
   * and what its last run fused (for nn_module_get_plan_fusions). */
  guint8 *fuse_len;
  NnFoldCache **folds;
  char **fused_names;
  guint8 *fused_n;      /* steps absorbed under fused_names[i] */
  GMutex fuse_lock;     /* guards folds[] and fused_names[] */
  /* Per step: 1 + the last step reading its result as a residual (0:
   * none), and how many steps have one (runs then keep call->held). */
  guint *res_last;
  guint n_res;
};
/* Starts a run of @root: follows its plan, or records a trace. */
void nn_plan_begin (NnCall *call, NnModule *root);
/* Whether a forward of @root should first record its plan from a shape-
 * only run (runtime.c): planning and fusion on, no plan yet, and a tree
 * whose shape inference computes nothing. */
gboolean nn_plan_wants_ahead (NnModule *root);
/* Whether @root has a plan now (the next forward will not build one).
 * MT safe. */
gboolean nn_plan_is_built (NnModule *root);
/* Ends it: publishes the recorded trace as @root's plan when @ok.
 * Returns whether it published one. */
gboolean nn_plan_end (NnCall *call, NnModule *root, gboolean ok);
/* Resolves descendant @path of @self for this call (plan_on): the plan's
 * step when it matches and still holds, else a fresh lookup (recorded).
 * Returns: (transfer none) (nullable) valid until the run ends. */
const NnPlanStep *nn_plan_resolve (NnCall *call, NnModule *self,
                                   const char *path, GError **error);
/* As nn_plan_resolve for a call of functional op @fn by @self. */
const NnPlanStep *nn_plan_resolve_functional (NnCall *call, NnModule *self,
                                              NnModule *fn, GError **error);
/* Frees @m's plan (nn_module_unref). */
void nn_plan_clear (NnModule *m);
/* plan.c: (transfer full) (nullable) @root's current plan, and its
 * release (NULL ignored). */
NnPlan *nn_plan_ref_of (NnModule *root);
void nn_plan_release (NnPlan *plan);

/* fuse.c: fusion in the plan (docs/ENGINE.md, "Fusion"). */
gboolean nn_fuse_enabled (void);
/* Marks which steps of a new plan may absorb the ones after them. */
void nn_fuse_annotate (NnPlan *plan);
void nn_fuse_plan_free (NnPlan *plan);
/* Around nn_call_module's or nn_call_functional's run of step @st
 * (number @idx; @fresh: recorded by this run) of @target: _absorbed
 * returns (transfer full) the input passed on when a fused producer
 * already did this call's work (NULL otherwise; NULL with @error when a
 * fused residual add gets other operands than recorded); _begin records what a fresh step saw, or sets an epilogue
 * in @ep for a producer; _end notes the result and releases @ep. */
NnValue *nn_fuse_absorbed (NnCall *call, const NnPlanStep *st,
                           const NnValue *args, const NnValue *kwargs,
                           GError **error);
void nn_fuse_begin (NnCall *call, const NnPlanStep *st, guint idx,
                    gboolean fresh, NnModule *target, const NnValue *args,
                    const NnValue *kwargs, NnEpilogue *ep);
void nn_fuse_end (NnCall *call, const NnPlanStep *st, guint idx,
                  gboolean fresh, const NnValue *out, NnEpilogue *ep);

/* hooks.c */
/* Fires the global then the module's pre-hooks; they may replace *@args
 * (always a tuple afterwards) and *@kwargs (a dict). */
gboolean nn_hooks_fire_pre (NnModule *m, NnCall *call, NnValue **args,
                            NnValue **kwargs, GError **error);
gboolean nn_hooks_fire_forward (NnModule *m, NnCall *call,
                                const NnValue *args, const NnValue *kwargs,
                                NnValue **out, GError **error);
gboolean nn_hooks_any (NnModule *m);
void nn_hook_list_detach (NnHookList *list);
gboolean nn_hooks_module_has_any (NnModule *m);
/* Moves @from's hooks to @to (surgery's MOVE_HOOKS); @to must have none. */
void nn_hooks_move (NnModule *from, NnModule *to);

/* schema.c */
/* Validates @config against @type's schema and returns (transfer full) a
 * new object with defaults filled and tuples expanded.  @path names the
 * module in errors. */
JsonObject *nn_schema_validate (const NnLayerType *type, JsonObject *config,
                                const char *path, GError **error);

/* module.c */
void nn_named_item_free (gpointer item);
GPtrArray *nn_named_list_new (void);
void nn_named_list_add (GPtrArray *list, const char *name, NnModule *m,
                        NnTensor *t, guint depth);
gboolean nn_module_remove_child_at (NnModule *m, guint i);
gboolean nn_module_insert_child (NnModule *m, guint pos, const char *name,
                                 NnModule *child, GError **error);
void nn_module_set_child_at (NnModule *m, guint i, NnModule *child);
/* Adds a descriptor-declared parameter or buffer (zeros); errors name the
 * tensor and why it cannot be added. */
gboolean nn_module_declare_tensor (NnModule *m, const char *name,
                                   gboolean parameter, NnDType dtype,
                                   const NnShape *shape, gboolean persistent,
                                   GError **error);
/* Runs every type's check() in the subtree. */
gboolean nn_module_check_tree (NnModule *m, const char *path, GError **error);
/* Prefixes "path: Name: ", or "Name: " for the root (path ""). */
void nn_error_prefix (GError **error, const char *path, const char *name);

/* descriptor.c */
/* The version of the descriptor being loaded in this thread, 2 when none
 * is: what nn_module_descriptor_version() reports during create(). */
guint nn_descriptor_loading_version (void);
/* nn_module_set_tensor that also lets an F16/BF16 tensor take an F32 slot
 * (and back) in a type with NN_LAYER_HALF_WEIGHTS (load's keep-dtype). */
gboolean nn_module_set_tensor_half (NnModule *m, const char *name,
                                    NnTensor *t, GError **error);

/* dtype.c */
float nn_half_to_float (guint16 h);
guint16 nn_float_to_half (float f);
guint16 nn_float_to_bf16 (float f);
/* Converts @n elements, PyTorch's .to() rules; @src and @dst may be
 * unaligned (native byte order). */
void nn_dtype_convert (NnDType from, const void *src, NnDType to, void *dst,
                       gsize n);

/* json_write.c */
/* Returns: (transfer full) pretty JSON text ending in a newline, floats in
 * Python's shortest form. */
char *nn_json_to_text (JsonNode *node, gsize *len_out);

/* tensor.c: FALSE, naming @what and @shape, if its element count or byte
 * size (8-byte elements) overflows 64 bits. */
gboolean nn_shape_check_size (const NnShape *shape, const char *what,
                              GError **error);

/* tensor.c: TRUE when @t's storage is its own (not borrowed, mapped,
 * read-only or a view), so nobody else can see a write into it. */
gboolean nn_tensor_owns_storage (const NnTensor *t);
/* tensor.c: storage as nn_tensor_new() allocates it (zero-filled; pooled
 * when large), with the release function that gives it back. */
gpointer nn_tensor_storage_alloc (gsize nbytes, GDestroyNotify *release);
/* layout.c: frees @t's laid values and layout data (from unref). */
void nn_tensor_layout_clear (NnTensor *t);
/* layout.c: makes every tensor leaf of @v (nullable) plain; FALSE with
 * @error when one cannot be (memory). */
gboolean nn_value_make_plain (const NnValue *v, GError **error);
/* layout.c: as nn_value_make_plain, and the laid copies are forgotten
 * (freed when nothing else holds the tensor): for values handed to hooks
 * and to the caller, who may write them in place. */
gboolean nn_value_detach_layouts (const NnValue *v, GError **error);
/* layout.c: whether @v holds a tensor leaf that is not plain. */
gboolean nn_value_has_layout (const NnValue *v);
/* layout.c: whether a type reads laid-out arguments itself. */
gboolean nn_type_takes_layouts (const NnLayerType *t);

/* value.c: references held on @v now, for the in-place check. */
gint nn_value_get_ref_count (const NnValue *v);

/* util.c */
/* Writes @len bytes to @path through a temp file in the same directory,
 * fsync, rename.  @domain/@code for errors; the message names @path. */
gboolean nn_write_file_atomic (const char *path, const void *data, gsize len,
                               GQuark domain, int code, GError **error);
/* Levenshtein distance, for "did you mean". */
guint nn_edit_distance (const char *a, const char *b);

G_END_DECLS

#endif
