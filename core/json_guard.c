/* nnkit core: a non-recursive pre-scan of untrusted JSON text (nesting
 * depth, duplicate keys, number ranges) and a finiteness check of parsed
 * trees.  json-glib recurses per nesting level, clamps big integers and
 * keeps the last of duplicate keys; these checks run first. */
#include "json_guard.h"

#include <errno.h>
#include <math.h>
#include <string.h>

typedef struct {
  gboolean is_object;
  gboolean expect_key;  /* objects: the next string is a key */
  char *key;            /* objects: the current key, unescaped */
  guint index;          /* arrays: the current element */
  GHashTable *keys;     /* objects, duplicate check only: keys seen */
} Frame;

typedef struct {
  const char *text;
  gsize len;
  gsize pos;
  GArray *stack;        /* Frame */
  guint flags;
} Scan;

static void
frame_clear (gpointer p)
{
  Frame *f = p;
  g_free (f->key);
  if (f->keys)
    g_hash_table_unref (f->keys);
}

/* The key path of the current position: "model.children[2].config". */
static char *
scan_path (Scan *s)
{
  GString *p = g_string_new (NULL);
  for (guint i = 0; i < s->stack->len; i++) {
    Frame *f = &g_array_index (s->stack, Frame, i);
    if (!f->is_object)
      g_string_append_printf (p, "[%u]", f->index);
    else if (f->key && !f->expect_key)
      g_string_append_printf (p, "%s%s", p->len ? "." : "", f->key);
  }
  if (p->len == 0)
    g_string_append (p, "the top level");
  if (p->len > 240) {
    /* Keep both ends of a very deep path readable. */
    g_string_erase (p, 100, p->len - 200);
    g_string_insert (p, 100, "...");
  }
  return g_string_free (p, FALSE);
}

static void
append_utf8 (GString *out, gunichar c)
{
  if (g_unichar_validate (c))
    g_string_append_unichar (out, c);
  else
    g_string_append (out, "\xEF\xBF\xBD"); /* U+FFFD for lone surrogates */
}

static int
hex4 (const char *p, const char *end)
{
  if (end - p < 4)
    return -1;
  int v = 0;
  for (int i = 0; i < 4; i++) {
    int d = g_ascii_xdigit_value (p[i]);
    if (d < 0)
      return -1;
    v = v * 16 + d;
  }
  return v;
}

/* Reads the string starting at s->pos (a quote).  Returns its unescaped
 * text (transfer full), or NULL when unterminated: the parser reports it.
 * Sets @bad (transfer full) to what is wrong with its first escape that
 * JSON does not allow, else NULL: json-glib accepts some of them (a lone
 * surrogate, "\uDAGG") as bytes that are not UTF-8, which could not be
 * written out and read again. */
static char *
scan_string (Scan *s, char **bad)
{
  const char *p = s->text + s->pos + 1, *end = s->text + s->len;
  GString *out = g_string_new (NULL);
  *bad = NULL;
  while (p < end && *p != '"') {
    if (*p != '\\') {
      g_string_append_c (out, *p++);
      continue;
    }
    if (++p >= end)
      break;
    char e = *p++;
    switch (e) {
    case 'b': g_string_append_c (out, '\b'); break;
    case 'f': g_string_append_c (out, '\f'); break;
    case 'n': g_string_append_c (out, '\n'); break;
    case 'r': g_string_append_c (out, '\r'); break;
    case 't': g_string_append_c (out, '\t'); break;
    case 'u': {
      int hi = hex4 (p, end);
      if (hi < 0) {
        if (!*bad) {
          char seen[5] = "";   /* printable ASCII only, for the message */
          for (int i = 0; i < 4 && p + i < end; i++)
            seen[i] = g_ascii_isprint (p[i]) ? p[i] : '?';
          *bad = g_strdup_printf ("an invalid escape \\u%s (expected \\u "
                                  "and 4 hex digits)", seen);
        }
        break;
      }
      p += 4;
      gunichar c = (gunichar) hi;
      if (hi >= 0xD800 && hi < 0xDC00 && end - p >= 6 && p[0] == '\\' &&
          p[1] == 'u') {
        int lo = hex4 (p + 2, end);
        if (lo >= 0xDC00 && lo < 0xE000) {
          c = 0x10000 + (((gunichar) hi - 0xD800) << 10) + ((gunichar) lo - 0xDC00);
          p += 6;
        }
      }
      if (c >= 0xD800 && c < 0xE000 && !*bad)
        *bad = g_strdup_printf ("a lone UTF-16 surrogate escape \\u%04X "
                                "(expected a \\uD800-\\uDBFF escape "
                                "followed by a \\uDC00-\\uDFFF one)",
                                (unsigned) c);
      append_utf8 (out, c);
      break;
    }
    case '"': case '\\': case '/': g_string_append_c (out, e); break;
    default:
      if (!*bad)
        *bad = g_strdup_printf ("an invalid escape \\%c (JSON allows "
                                "\\\" \\\\ \\/ \\b \\f \\n \\r "
                                "\\t \\uXXXX)", g_ascii_isprint (e) ? e : '?');
      g_string_append_c (out, e);
      break;
    }
  }
  if (p >= end) {
    g_string_free (out, TRUE);
    return NULL;
  }
  s->pos = (gsize) (p - s->text) + 1;
  return g_string_free (out, FALSE);
}

static gboolean
fail (Scan *s, const char *origin, GQuark domain, int code, GError **error,
      const char *fmt, ...) G_GNUC_PRINTF (6, 7);

static gboolean
fail (Scan *s, const char *origin, GQuark domain, int code, GError **error,
      const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  g_autofree char *msg = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  g_autofree char *path = scan_path (s);
  g_set_error (error, domain, code, "%s: %s: %s", origin, path, msg);
  return FALSE;
}

/* A number token at s->pos: integers must fit gint64 and other numbers a
 * finite double, as json-glib would otherwise clamp them silently. */
static gboolean
scan_number (Scan *s, const char *origin, GQuark domain, int code,
             GError **error)
{
  gsize start = s->pos;
  gboolean integral = TRUE;
  while (s->pos < s->len && strchr ("+-.eE0123456789", s->text[s->pos])) {
    if (strchr (".eE", s->text[s->pos]))
      integral = FALSE;
    s->pos++;
  }
  gsize n = s->pos - start;
  /* Longer tokens are not numbers json-glib would accept as small ones
   * either; a bounded copy keeps the check cheap. */
  g_autofree char *tok = g_strndup (s->text + start, MIN (n, 400));
  errno = 0;
  if (integral) {
    (void) g_ascii_strtoll (tok, NULL, 10);
    if (errno == ERANGE || n > 400)
      return fail (s, origin, domain, code, error, "integer %s%s is out of "
                   "range (expected %" G_GINT64_FORMAT " to %" G_GINT64_FORMAT
                   ")", tok, n > 400 ? "..." : "", G_MININT64, G_MAXINT64);
    return TRUE;
  }
  double v = g_ascii_strtod (tok, NULL);
  if (isinf (v) || isnan (v) || n > 400)
    return fail (s, origin, domain, code, error, "number %s%s is out of range "
                 "(expected a finite double)", tok, n > 400 ? "..." : "");
  return TRUE;
}

static gboolean
scan_key (Scan *s, Frame *f, char *key, const char *origin, GQuark domain,
          int code, GError **error)
{
  g_free (f->key);
  f->key = key;
  f->expect_key = FALSE;
  if (!(s->flags & NN_JSON_GUARD_NO_DUPLICATE_KEYS))
    return TRUE;
  if (!f->keys)
    f->keys = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  if (g_hash_table_add (f->keys, g_strdup (key)))
    return TRUE;
  /* Name the object holding the key, not the key itself. */
  f->expect_key = TRUE;
  return fail (s, origin, domain, code, error, "duplicate key '%s'", key);
}

gboolean
nn_json_guard_scan (const char *text, gsize len, guint max_depth, guint flags,
                    const char *origin, GQuark domain, int code,
                    GError **error)
{
  g_return_val_if_fail (text != NULL || len == 0, FALSE);
  Scan s = { text, len, 0, g_array_new (FALSE, TRUE, sizeof (Frame)), flags };
  g_array_set_clear_func (s.stack, frame_clear);
  gboolean ok = TRUE;
  while (ok && s.pos < len) {
    char c = text[s.pos];
    Frame *top = s.stack->len
                 ? &g_array_index (s.stack, Frame, s.stack->len - 1) : NULL;
    if (c == '{' || c == '[') {
      if (s.stack->len >= max_depth) {
        /* The path would be as long as the nesting: give the offset. */
        g_set_error (error, domain, code, "%s: JSON nested deeper than %u "
                     "levels (at byte %" G_GSIZE_FORMAT "; the limit for "
                     "this kind of file)", origin, max_depth, s.pos);
        ok = FALSE;
        break;
      }
      Frame f = { .is_object = c == '{', .expect_key = c == '{' };
      g_array_append_val (s.stack, f);
      s.pos++;
    } else if (c == '}' || c == ']') {
      if (s.stack->len)
        g_array_set_size (s.stack, s.stack->len - 1);
      s.pos++;
    } else if (c == ',') {
      if (top && top->is_object)
        top->expect_key = TRUE;
      else if (top)
        top->index++;
      s.pos++;
    } else if (c == '"') {
      g_autofree char *bad = NULL;
      char *str = scan_string (&s, &bad);
      if (!str)
        break; /* unterminated: the parser says so */
      if (bad) {
        gboolean is_key = top && top->is_object && top->expect_key;
        g_free (str);
        ok = fail (&s, origin, domain, code, error, "%s has %s",
                   is_key ? "a key" : "a string", bad);
      } else if (top && top->is_object && top->expect_key)
        ok = scan_key (&s, top, str, origin, domain, code, error);
      else
        g_free (str);
    } else if (c == '-' || g_ascii_isdigit (c)) {
      ok = scan_number (&s, origin, domain, code, error);
    } else {
      s.pos++;
    }
  }
  g_array_unref (s.stack);
  return ok;
}

/* --- parsed trees ----------------------------------------------------- */

static gboolean
finite_walk (JsonNode *n, GString *path, const char *where, GQuark domain,
             int code, GError **error)
{
  if (JSON_NODE_HOLDS_VALUE (n)) {
    if (json_node_get_value_type (n) != G_TYPE_DOUBLE ||
        isfinite (json_node_get_double (n)))
      return TRUE;
    g_set_error (error, domain, code, "%s: %s: %g is not a finite number "
                 "(JSON has no NaN or infinity)", where,
                 path->len ? path->str : "the top level",
                 json_node_get_double (n));
    return FALSE;
  }
  gsize mark = path->len;
  if (JSON_NODE_HOLDS_ARRAY (n)) {
    JsonArray *a = json_node_get_array (n);
    for (guint i = 0; i < json_array_get_length (a); i++) {
      g_string_append_printf (path, "[%u]", i);
      if (!finite_walk (json_array_get_element (a, i), path, where, domain,
                        code, error))
        return FALSE;
      g_string_truncate (path, mark);
    }
  } else if (JSON_NODE_HOLDS_OBJECT (n)) {
    JsonObject *o = json_node_get_object (n);
    JsonObjectIter it;
    const char *k;
    JsonNode *v;
    json_object_iter_init (&it, o);
    while (json_object_iter_next (&it, &k, &v)) {
      g_string_append_printf (path, "%s%s", mark ? "." : "", k);
      if (!finite_walk (v, path, where, domain, code, error))
        return FALSE;
      g_string_truncate (path, mark);
    }
  }
  return TRUE;
}

gboolean
nn_json_guard_finite (JsonNode *node, const char *where, GQuark domain,
                      int code, GError **error)
{
  if (node == NULL)
    return TRUE;
  g_autoptr (GString) path = g_string_new (NULL);
  return finite_walk (node, path, where, domain, code, error);
}
