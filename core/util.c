/* nnkit core: small utilities shared by core files: atomic file writes,
 * edit distance for "did you mean", Python-style float text. */
#include "nn-private.h"
#include "nn-weights-private.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

gboolean
nn_write_file_atomic (const char *path, const void *data, gsize len,
                      GQuark domain, int code, GError **error)
{
  /* The save protocol of save_protocol.c: temp file, flush, rename. */
  NnPendingFile *pf = nn_pending_file_new_data (path, data, len, domain, code,
                                                error);
  if (pf == NULL)
    return FALSE;
  gboolean ok = nn_pending_file_commit (pf, error);
  nn_pending_file_free (pf);
  return ok;
}

guint
nn_edit_distance (const char *a, const char *b)
{
  gsize la = strlen (a), lb = strlen (b);
  g_autofree guint *row = g_new (guint, lb + 1);
  for (gsize j = 0; j <= lb; j++)
    row[j] = (guint) j;
  for (gsize i = 1; i <= la; i++) {
    guint diag = row[0];
    row[0] = (guint) i;
    for (gsize j = 1; j <= lb; j++) {
      guint up = row[j];
      guint cost = a[i - 1] == b[j - 1] ? 0 : 1;
      guint best = MIN (row[j] + 1, row[j - 1] + 1);
      row[j] = MIN (best, diag + cost);
      diag = up;
    }
  }
  return row[lb];
}

char *
nn_format_py_float (double v)
{
  if (isnan (v))
    return g_strdup ("nan");
  if (isinf (v))
    return g_strdup (v > 0 ? "inf" : "-inf");
  /* Python's repr: the shortest text that reads back as the same double,
   * in scientific form when the exponent is < -4 or >= 16. */
  char buf[64];
  for (int prec = 1; prec <= 17; prec++) {
    char fmt[16];
    snprintf (fmt, sizeof fmt, "%%.%de", prec - 1);
    g_ascii_formatd (buf, sizeof buf, fmt, v); /* locale-independent */
    if (g_ascii_strtod (buf, NULL) == v)
      break;
  }
  /* buf is d.ddde±XX; split mantissa digits and exponent. */
  char *e = strchr (buf, 'e');
  int exp10 = atoi (e + 1);
  *e = '\0';
  gboolean neg = buf[0] == '-';
  GString *digits = g_string_new (NULL);
  for (const char *c = buf + (neg ? 1 : 0); *c; c++)
    if (*c != '.')
      g_string_append_c (digits, *c);
  while (digits->len > 1 && digits->str[digits->len - 1] == '0')
    g_string_truncate (digits, digits->len - 1);

  GString *out = g_string_new (neg ? "-" : "");
  int nd = (int) digits->len;
  if (exp10 < -4 || exp10 >= 16) {
    g_string_append_c (out, digits->str[0]);
    if (nd > 1) {
      g_string_append_c (out, '.');
      g_string_append (out, digits->str + 1);
    }
    g_string_append_printf (out, "e%c%02d", exp10 < 0 ? '-' : '+', ABS (exp10));
  } else if (exp10 < 0) {
    g_string_append (out, "0.");
    for (int i = 0; i < -exp10 - 1; i++)
      g_string_append_c (out, '0');
    g_string_append (out, digits->str);
  } else {
    for (int i = 0; i <= exp10; i++)
      g_string_append_c (out, i < nd ? digits->str[i] : '0');
    g_string_append_c (out, '.');
    if (nd > exp10 + 1)
      g_string_append (out, digits->str + exp10 + 1);
    else
      g_string_append_c (out, '0');
  }
  g_string_free (digits, TRUE);
  return g_string_free (out, FALSE);
}
