/* libFuzzer target: shapes as nnctl takes them ("1,3,224,224",
 * "[1, 3, 224, 224]"); a parsed shape must print and count safely. */
#include <nnkit/nnkit.h>

#include <stdlib.h>

int
LLVMFuzzerTestOneInput (const unsigned char *data, size_t size)
{
  char *text = g_strndup ((const char *) data, size);
  NnShape s;
  GError *error = NULL;
  if (nn_shape_parse (text, &s, &error)) {
    if (s.ndim == 0 || s.ndim > NN_MAX_DIMS || nn_shape_numel (&s) < 1)
      abort ();
    g_free (nn_shape_to_string (&s));
  }
  g_clear_error (&error);
  g_free (text);
  return 0;
}
