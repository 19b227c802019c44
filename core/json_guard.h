/* nnkit core: checks on untrusted JSON text before and after json-glib
 * parses it.  Never installed. */
#ifndef NN_JSON_GUARD_H
#define NN_JSON_GUARD_H

#include <glib.h>
#include <json-glib/json-glib.h>

G_BEGIN_DECLS

/* Nesting limits (docs/DESCRIPTORS.md, docs/WEIGHTS.md).  json-glib parses
 * recursively, so deeper text would overflow the stack. */
#define NN_DESCRIPTOR_MAX_JSON_DEPTH 2100
#define NN_ST_HEADER_MAX_JSON_DEPTH 1000

typedef enum {
  /* Refuse an object that names a key twice (json-glib keeps the last). */
  NN_JSON_GUARD_NO_DUPLICATE_KEYS = 1 << 0,
} NnJsonGuardFlags;

/* Scans @len bytes of JSON @text without recursion and refuses, naming
 * @origin and the key path: nesting deeper than @max_depth, integers
 * outside gint64 (json-glib would clamp them), numbers that overflow a
 * double, lone UTF-16 surrogate escapes (json-glib would keep them as
 * bytes that are not UTF-8), and with NN_JSON_GUARD_NO_DUPLICATE_KEYS
 * repeated keys.  Syntax errors are left to the parser.  Errors use
 * @domain / @code.  MT safe. */
gboolean nn_json_guard_scan (const char *text, gsize len, guint max_depth,
                             guint flags, const char *origin, GQuark domain,
                             int code, GError **error);

/* Refuses NaN and infinite numbers anywhere in @node (transfer none), which
 * JSON cannot represent, naming @where and the key path. */
gboolean nn_json_guard_finite (JsonNode *node, const char *where,
                               GQuark domain, int code, GError **error);

G_END_DECLS

#endif
