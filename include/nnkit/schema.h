/* nnkit: layer-type config schemas.
 *
 * Each layer type declares its config keys once.  The core validates a
 * descriptor's config against the schema before the type's create function
 * runs, fills in defaults, and nnctl prints the schema for `plugins TYPE`.
 * Schemas are static, immutable data: safe to read from any thread.
 */
#ifndef NNKIT_SCHEMA_H
#define NNKIT_SCHEMA_H

#include <glib.h>
#include <nnkit/export.h>

G_BEGIN_DECLS

typedef enum {
  NN_KIND_INT,       /* JSON integer */
  NN_KIND_FLOAT,     /* JSON number */
  NN_KIND_BOOL,      /* JSON true/false */
  NN_KIND_STRING,    /* JSON string */
  NN_KIND_ENUM,      /* JSON string, one of enum_values */
  NN_KIND_INT_TUPLE, /* JSON integer or array of tuple_len integers */
  NN_KIND_JSON,      /* any JSON value; the type checks it in create */
} NnKind;

typedef enum {
  NN_KEY_OPTIONAL = 1 << 0, /* may be absent; default_json applies */
  NN_KEY_NULLABLE = 1 << 1, /* JSON null is accepted (Python None) */
  /* INT_TUPLE only: an int is stored expanded to tuple_len copies, as
   * PyTorch's _pair() does for Conv2d.  Without it the value is kept as
   * given, because pooling layers print it as given. */
  NN_KEY_EXPAND = 1 << 2,
  /* INT_TUPLE only: the value may also be one of enum_values (a string),
   * as Conv2d's padding accepts 'same' and 'valid'. */
  NN_KEY_OR_ENUM = 1 << 3,
  NN_KEY_HAS_MIN = 1 << 4, /* min applies (to each element of a tuple) */
  NN_KEY_HAS_MAX = 1 << 5, /* max applies */
} NnKeyFlags;

typedef struct {
  const char *name;          /* config key, e.g. "kernel_size" */
  NnKind kind;
  guint tuple_len;           /* INT_TUPLE: number of elements */
  guint flags;               /* NnKeyFlags */
  const char *default_json;  /* JSON text of the default; NULL if required */
  double min, max;           /* inclusive range, see NN_KEY_HAS_MIN/MAX */
  const char *const *enum_values; /* NULL-terminated; ENUM and OR_ENUM */
  const char *doc;           /* one line */
} NnSchemaKey;

/* Returns: (transfer none) "int", "float", "bool", "string", "enum",
 * "int tuple" or "json". */
NN_API const char *nn_kind_name (NnKind kind);

G_END_DECLS

#endif
