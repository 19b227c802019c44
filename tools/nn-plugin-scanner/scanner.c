/* nn-plugin-scanner PLUGIN.so: loads one plugin file in a process of its
 * own, so that a plugin that crashes, aborts, exits or hangs while loading
 * takes down this helper instead of the host (core/plugin_probe.c).  It
 * prints "nnkit-probe-done" once loading returned, loaded or refused; the
 * host reads a missing line, a signal or a timeout as a broken plugin. */
#include <nnkit/nnkit.h>

#include <stdio.h>
#include <unistd.h>

int
main (int argc, char **argv)
{
  if (argc != 2) {
    fprintf (stderr, "usage: nn-plugin-scanner PLUGIN.so\n");
    return 2;
  }
  /* This process is the probe: no probe of its own. */
  g_setenv ("NN_PLUGIN_PROBE", "0", TRUE);
  NnRegistry *reg = nn_registry_new ();
  GError *error = NULL;
  gboolean ok = nn_registry_load_file (reg, argv[1], &error);
  /* A clean refusal is the host's to report, with the same message. */
  fprintf (stderr, "%s\n", ok ? "loaded" : error->message);
  g_clear_error (&error);
  printf ("nnkit-probe-done\n");
  fflush (stdout);
  /* No unloading: a destructor that crashes is not a load failure. */
  _exit (0);
}
