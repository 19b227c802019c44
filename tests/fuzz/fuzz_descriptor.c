/* libFuzzer target: the descriptor loader (JSON guard, parse, tree build
 * with every built-in type, config validation, cycle checks), and saving
 * what loaded, which must load again. */
#include <nnkit/nnkit.h>

#include <stdio.h>
#include <stdlib.h>

static NnRegistry *
registry (void)
{
  static NnRegistry *reg;
  if (!reg) {
    reg = nn_registry_new ();
    if (!nn_registry_load_default (reg, NULL))
      abort ();
  }
  return reg;
}

int
LLVMFuzzerTestOneInput (const unsigned char *data, size_t size)
{
  GError *error = NULL;
  NnModule *m = nn_descriptor_load_data (registry (), (const char *) data,
                                         (gssize) size, "fuzz", &error);
  g_clear_error (&error);
  if (!m)
    return 0;
  /* A descriptor nnkit wrote always reloads. */
  gsize len = 0;
  char *text = nn_descriptor_to_data (m, &len);
  NnModule *again = nn_descriptor_load_data (registry (), text, (gssize) len,
                                             "saved", &error);
  if (!again) {
    fprintf (stderr, "saved descriptor does not reload: %s\n%s\n",
             error->message, text);
    abort ();
  }
  char *repr = nn_module_to_string (m);
  g_free (repr);
  nn_module_unref (again);
  nn_module_unref (m);
  g_free (text);
  return 0;
}
