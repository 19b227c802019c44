/* nnctl export SOURCE -o OUT: runs tools/torch2nn with Debian's python3
 * and python3-torch, and says clearly when they are missing. */
#include "nnctl.h"

#include <string.h>

#ifndef NNCTL_PYTHON
#define NNCTL_PYTHON "/usr/bin/python3"
#endif

/* The source tree's copy wins in an uninstalled build; else the installed. */
static char *
find_torch2nn (void)
{
  const char *env = g_getenv ("NNKIT_TORCH2NN");
  if (env && *env)
    return g_strdup (env);
#ifdef NNCTL_TORCH2NN_SOURCE
  if (g_file_test (NNCTL_TORCH2NN_SOURCE, G_FILE_TEST_EXISTS))
    return g_strdup (NNCTL_TORCH2NN_SOURCE);
#endif
#ifdef NNCTL_TORCH2NN_INSTALLED
  if (g_file_test (NNCTL_TORCH2NN_INSTALLED, G_FILE_TEST_EXISTS))
    return g_strdup (NNCTL_TORCH2NN_INSTALLED);
#endif
  return NULL;
}

/* find_spec only looks torch up, so this check costs no torch import. */
static gboolean
has_torch (const char *python)
{
  const char *argv[] = { python, "-c",
                         "import importlib.util, sys; sys.exit(0 if "
                         "importlib.util.find_spec('torch') else 3)", NULL };
  int status = 0;
  if (!g_spawn_sync (NULL, (char **) argv, NULL,
                     G_SPAWN_STDOUT_TO_DEV_NULL | G_SPAWN_STDERR_TO_DEV_NULL,
                     NULL, NULL, NULL, NULL, &status, NULL))
    return FALSE;
  return g_spawn_check_wait_status (status, NULL);
}

static char *
last_line (const char *text)
{
  g_auto (GStrv) lines = g_strsplit (text ? text : "", "\n", -1);
  for (gint i = (gint) g_strv_length (lines) - 1; i >= 0; i--) {
    const char *l = g_strstrip (lines[i]);
    if (*l)
      return g_strdup (g_str_has_prefix (l, "torch2nn: ") ? l + 10 : l);
  }
  return g_strdup ("torch2nn failed without a message");
}

int
nnctl_cmd_export (NnctlGlobal *g, const NnctlCommand *cmd, int argc,
                  char **argv)
{
  char *out = NULL, *shape = NULL, *seed = NULL;
  gboolean randomize_bn = FALSE;
  const GOptionEntry entries[] = {
    { "output", 'o', 0, G_OPTION_ARG_FILENAME, &out,
      "OUT: model.json (weights beside it) or model.safetensors; required",
      "OUT" },
    { "input-shape", 's', 0, G_OPTION_ARG_STRING, &shape,
      "Input shape to trace with and record (default 1,3,224,224)",
      "SHAPE" },
    { "seed", 0, 0, G_OPTION_ARG_STRING, &seed,
      "Seed for the random init of torchvision models (default 0)", "N" },
    { "randomize-bn", 0, 0, G_OPTION_ARG_NONE, &randomize_bn,
      "Randomise BatchNorm running statistics (for tests)", NULL },
    { NULL }
  };
  int rc = nnctl_parse (g, cmd, entries, 0, &argc, &argv, 1, -1);
  const char *python = g_getenv ("NNKIT_PYTHON");
  g_autofree char *script = NULL;
  g_autoptr (GPtrArray) args = NULL;
  g_autofree char *child_out = NULL, *child_err = NULL;
  GError *err = NULL;
  int status = 0;

  if (rc != NNCTL_CONTINUE)
    goto done;
  if (!out) {
    rc = nnctl_usage ("export", "-o OUT is required (see 'nnctl export "
                      "--help')");
    goto done;
  }
  if (!python || !*python)
    python = NNCTL_PYTHON;
  if (!g_file_test (python, G_FILE_TEST_IS_EXECUTABLE)) {
    rc = nnctl_error ("export", "%s is not installed (apt-get install "
                      "python3 python3-torch python3-torchvision)", python);
    goto done;
  }
  if (!has_torch (python)) {
    rc = nnctl_error ("export", "python3-torch is not installed (apt-get "
                      "install python3-torch python3-torchvision)");
    goto done;
  }
  script = find_torch2nn ();
  if (!script) {
    rc = nnctl_error ("export", "tools/torch2nn/torch2nn.py not found in "
                      "the source tree nor the installed data directory");
    goto done;
  }

  args = g_ptr_array_new ();
  g_ptr_array_add (args, (char *) python);
  g_ptr_array_add (args, script);
  g_ptr_array_add (args, argv[1]);
  g_ptr_array_add (args, (char *) "-o");
  g_ptr_array_add (args, out);
  if (shape) {
    g_ptr_array_add (args, (char *) "--input-shape");
    g_ptr_array_add (args, shape);
  }
  if (seed) {
    g_ptr_array_add (args, (char *) "--seed");
    g_ptr_array_add (args, seed);
  }
  if (randomize_bn)
    g_ptr_array_add (args, (char *) "--randomize-bn");
  for (int i = 2; i < argc; i++)
    g_ptr_array_add (args, argv[i]);
  g_ptr_array_add (args, NULL);

  if (!g_spawn_sync (NULL, (char **) args->pdata, NULL, G_SPAWN_DEFAULT,
                     NULL, NULL, &child_out, &child_err, &status, &err)) {
    rc = nnctl_fail ("export", err);
    goto done;
  }
  if (!g_spawn_check_wait_status (status, NULL)) {
    g_autofree char *why = last_line (child_err);
    rc = nnctl_error ("export", "%s", why);
    goto done;
  }
  if (!g->quiet && child_out)
    fputs (child_out, stdout);
  nnctl_info (g, "exported %s to %s\n", argv[1], out);
  rc = NNCTL_EXIT_OK;
done:
  g_free (out);
  g_free (shape);
  g_free (seed);
  return rc;
}
