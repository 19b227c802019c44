/* Graph: a dataflow of nodes over the module's children and functional ops
 * (format: docs/DESCRIPTORS.md, section Graph).  Private to the plugin. */
#ifndef NN_GRAPH_H
#define NN_GRAPH_H

#include <nnkit/plugin.h>

typedef struct _NnGraphNode NnGraphNode;

/* A built-in functional op: data, not code paths keyed by name. */
typedef struct {
  const char *name;            /* PyTorch's spelling: "add", "cat" */
  guint min_args;
  guint max_args;              /* 0: no upper bound */
  const char *const *kwargs;   /* (nullable) accepted kwargs, NULL-terminated */
  /* (optional) Reads the op's kwargs into @node; all accepted kwargs are
   * optional.  NULL: the op takes none. */
  gboolean (*parse) (NnGraphNode *node, JsonObject *kwargs, GError **error);
  /* Returns (transfer full) the result for @args (transfer none). */
  NnTensor *(*apply) (const NnGraphNode *node, NnTensor *const *args,
                      guint n_args, GError **error);
  /* The result's shape, mirroring apply's checks. */
  gboolean (*shape) (const NnGraphNode *node, const NnShape *const *args,
                     guint n_args, NnShape *out, GError **error);
} NnGraphOp;

/* How one keyword of a PyTorch function maps onto a layer type's config. */
typedef struct {
  const char *kwarg;         /* the function's keyword: "start_dim" */
  const char *config_key;    /* the layer type's key */
  const char *default_json;  /* (nullable) the function's default */
  gboolean required;         /* no default: the node must give it */
} NnGraphAliasArg;

/* A functional spelling run by a layer type: flatten -> Flatten. */
typedef struct {
  const char *name;          /* "flatten" */
  const char *type_name;     /* "Flatten" */
  const NnGraphAliasArg *args;
  guint n_args;
} NnGraphAlias;

typedef enum {
  NN_GRAPH_NODE_MODULE,      /* calls a child through the core */
  NN_GRAPH_NODE_BUILTIN,     /* an NnGraphOp */
  NN_GRAPH_NODE_FUNCTIONAL,  /* a layer type instance that is not a child */
} NnGraphNodeKind;

struct _NnGraphNode {
  char *name;
  NnGraphNodeKind kind;
  char *target;         /* child name (MODULE) or op name */
  const NnGraphOp *op;  /* BUILTIN */
  NnModule *fn;         /* FUNCTIONAL: owned reference */
  guint n_args;
  guint *args;          /* value indices: 0 the input, i + 1 node i */
  gint64 dim;           /* cat's dim */
  guint n_release;
  guint *release;       /* values whose last reader is this node */
};

/* The parsed config of one Graph module; immutable after create, so
 * several threads may run it at once. */
typedef struct {
  char *input;          /* the graph input's name: value 0 */
  guint n_nodes;
  NnGraphNode *nodes;   /* node i produces value i + 1 */
  guint output;         /* value index returned */
  guint max_args;       /* largest n_args, for scratch arrays */
} NnGraph;

/* Parses and validates @self's config (graph_parse.c).  Returns (transfer
 * full) (nullable); errors name the node, and the core prefixes the
 * module path. */
NnGraph *nn_graph_parse (NnModule *self, GError **error);
void nn_graph_free (NnGraph *g);

/* Built-in ops and aliases (graph_ops.c). */
const NnGraphOp *nn_graph_op_lookup (const char *name);
const NnGraphAlias *nn_graph_alias_lookup (const char *name);
/* Returns (transfer full) "add, mul, ..., flatten, relu, ...". */
char *nn_graph_known_ops (void);
/* Checks @kwargs (nullable) against @op's accepted names and parses them
 * into @node.  Errors name the node. */
gboolean nn_graph_op_parse (const NnGraphOp *op, NnGraphNode *node,
                            JsonObject *kwargs, GError **error);
/* Returns (transfer full) the layer-type config for an alias node: the
 * function's kwargs renamed, its defaults filled in. */
JsonObject *nn_graph_alias_config (const NnGraphAlias *alias,
                                   const NnGraphNode *node,
                                   JsonObject *kwargs, GError **error);

#endif
