/* nnctl show MODEL: the model's text exactly as PyTorch's print(model). */
#include "nnctl.h"

#include <string.h>

int
nnctl_cmd_show (NnctlGlobal *g, const NnctlCommand *cmd, int argc,
                char **argv)
{
  gint depth = -1;
  gboolean json = FALSE;
  GError *err = NULL;
  const GOptionEntry entries[] = {
    { "depth", 'd', 0, G_OPTION_ARG_INT, &depth,
      "Print children down to N levels; deeper ones as Name(...)", "N" },
    { "json", 0, 0, G_OPTION_ARG_NONE, &json,
      "Print the model's descriptor JSON instead", NULL },
    { NULL }
  };
  int rc = nnctl_parse (g, cmd, entries, 0, &argc, &argv,
                        1, 1);
  g_autoptr (NnModule) model = NULL;
  g_autofree char *text = NULL;
  gsize len;

  if (rc != NNCTL_CONTINUE)
    return rc;
  model = nnctl_load_structure (g, argv[1], &err);
  if (!model)
    return nnctl_fail ("show", err);
  if (json) {
    text = nn_descriptor_to_data (model, &len);
  } else {
    text = depth >= 0 ? nn_module_to_string_depth (model, depth)
                      : nn_module_to_string (model);
  }
  len = strlen (text);
  /* print() ends the text with exactly one newline. */
  while (len > 0 && text[len - 1] == '\n')
    text[--len] = '\0';
  printf ("%s\n", text);
  return NNCTL_EXIT_OK;
}
