/* Graph: a dataflow of nodes over the module's descendants and functional
 * ops (format: docs/DESCRIPTORS.md, section Graph).  Private to the
 * plugin.  The Graph knows no op or type by name: op nodes resolve
 * through the registry like any type. */
#ifndef NN_GRAPH_H
#define NN_GRAPH_H

#include <nnkit/plugin.h>

typedef enum {
  NN_GRAPH_EXPR_REF,    /* a graph input or an earlier node's value */
  NN_GRAPH_EXPR_CONST,  /* a constant value */
  NN_GRAPH_EXPR_LIST,
  NN_GRAPH_EXPR_TUPLE,
  NN_GRAPH_EXPR_DICT,
  NN_GRAPH_EXPR_SLICE,  /* 3 items */
} NnGraphExprKind;

/* An argument expression, parsed once (graph_expr.c). */
typedef struct _NnGraphExpr NnGraphExpr;
struct _NnGraphExpr {
  NnGraphExprKind kind;
  guint ref;             /* REF: value index */
  NnValue *constant;     /* CONST: owned */
  guint n_items;
  NnGraphExpr *items;    /* LIST, TUPLE, DICT, SLICE */
  char **keys;           /* DICT: n_items keys */
};

typedef enum {
  NN_GRAPH_NODE_MODULE,  /* calls a descendant through the core */
  NN_GRAPH_NODE_OP,      /* a functional instance of a registry type */
  NN_GRAPH_NODE_ATTR,    /* reads a parameter or buffer */
} NnGraphNodeKind;

typedef struct {
  char *name;
  NnGraphNodeKind kind;
  char *target;          /* descendant path, op name or tensor name */
  NnModule *fn;          /* OP: owned, created once in create() */
  NnGraphExpr args;      /* a TUPLE expression */
  NnGraphExpr kwargs;    /* a DICT expression, maybe empty */
  guint n_release;
  guint *release;        /* values whose last reader is this node */
} NnGraphNode;

/* The parsed config of one Graph module; immutable after create, so
 * several threads may run it at once.  Values: the inputs first, then one
 * per node. */
typedef struct {
  guint n_inputs;
  NnArgSpec *inputs;     /* the forward's signature, names owned */
  NnValue **defaults;    /* per input, NULL when required */
  guint n_nodes;
  NnGraphNode *nodes;    /* node i produces value n_inputs + i */
  NnGraphExpr output;
  guint n_release_unread;
  guint *release_unread; /* inputs no node reads, released at once */
} NnGraph;

/* graph_parse.c: parses and validates @self's config.  Returns (transfer
 * full) (nullable); errors name the node, the core prefixes the path. */
NnGraph *nn_graph_parse (NnModule *self, JsonObject *config, GError **error);
void nn_graph_free (NnGraph *g);

/* graph_expr.c */
/* Names of the values defined so far, for errors. */
typedef struct {
  GHashTable *index;     /* name -> value index + 1 */
  GPtrArray *names;      /* in definition order */
} NnGraphScope;
/* Parses @json into @out; @where names it in errors ("node 'x' args[1]"). */
gboolean nn_graph_expr_parse (NnGraphExpr *out, JsonNode *json,
                              const NnGraphScope *scope, const char *where,
                              GError **error);
void nn_graph_expr_clear (NnGraphExpr *e);
/* Returns (transfer full) the value of @e over @values (transfer none). */
NnValue *nn_graph_expr_eval (const NnGraphExpr *e, NnValue *const *values);
/* Calls @func for every value index @e reads. */
void nn_graph_expr_refs (const NnGraphExpr *e, void (*func) (guint ref,
                                                              gpointer data),
                         gpointer data);

/* graph_upgrade.c: a version 1 Graph config rewritten in version 2 form
 * (transfer full), resolving op names through @reg. */
JsonObject *nn_graph_upgrade_v1 (NnRegistry *reg, JsonObject *config,
                                 GError **error);

#endif
