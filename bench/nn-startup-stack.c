/* nn-startup-stack: nn-startup-floor plus what the project's stack makes
 * every nnkit process pay, still with no nnkit code run: it links GLib and
 * json-glib (so GIO and their libraries load), dlopen()s the plugin shared
 * objects a model needs as the core does (RTLD_NOW | RTLD_LOCAL, which
 * loads libnnkit and the libraries they link; their entry functions are
 * not called), parses the model's JSON descriptor, creates oneDNN's CPU
 * engine, and maps the given weight files, reading every page; with
 * --checksum it hashes each file whole with XXH3-128, as the oneDNN
 * weights cache checks an entry before use.  bench/startup_floor.py times
 * it as a whole process (docs/ENGINE.md, "Start-up").
 *
 *   nn-startup-stack [--checksum] [--plugin SO]... [--descriptor JSON] [FILE]...
 *
 * Exit status 0, or 1 with one line on stderr naming what failed. */
#include <dlfcn.h>
#include <glib.h>
#include <json-glib/json-glib.h>
#include <oneapi/dnnl/dnnl.h>
#include <stdio.h>
#include <sys/mman.h>
#include <xxhash.h>

#include "bench-map.h"

/* Maps @path as the weights cache maps an entry and reads it: whole
 * through XXH3 with @checksum, else one byte a page.  Folds what it read
 * into @acc so the compiler keeps the reads. */
static gboolean
read_file (const char *path, gboolean checksum, guint64 *acc)
{
  size_t size;
  const unsigned char *p = nn_bench_map_file ("nn-startup-stack", path, &size);
  if (!p)
    return FALSE;
  if (checksum)
    *acc ^= XXH3_128bits (p, size).low64;
  else
    *acc += nn_bench_touch_pages (p, size);
  munmap ((void *) p, size);
  return TRUE;
}

int
main (int argc, char **argv)
{
  gboolean checksum = FALSE;
  char **plugins = NULL, *descriptor = NULL, **files = NULL;
  GOptionEntry entries[] = {
    { "checksum", 0, 0, G_OPTION_ARG_NONE, &checksum, "hash each file whole with XXH3-128", NULL },
    { "plugin", 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &plugins, "a plugin to dlopen()", "SO" },
    { "descriptor", 0, 0, G_OPTION_ARG_FILENAME, &descriptor, "a JSON descriptor to parse", "JSON" },
    { G_OPTION_REMAINING, 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &files, NULL, "FILE..." },
    { NULL, 0, 0, 0, NULL, NULL, NULL }
  };
  GError *e = NULL;
  GOptionContext *ctx = g_option_context_new ("[FILE]...");
  g_option_context_add_main_entries (ctx, entries, NULL);
  gboolean parsed = g_option_context_parse (ctx, &argc, &argv, &e);
  g_option_context_free (ctx);
  if (!parsed)
    {
      fprintf (stderr, "nn-startup-stack: %s\n", e->message);
      g_error_free (e);
      return 2;
    }

  int rc = 0;
  guint64 acc = 0;
  for (char **p = plugins; p && *p && rc == 0; p++)
    if (!dlopen (*p, RTLD_NOW | RTLD_LOCAL))
      {
        fprintf (stderr, "nn-startup-stack: %s\n", dlerror ());
        rc = 1;
      }
  if (rc == 0 && descriptor)
    {
      JsonParser *jp = json_parser_new ();
      if (!json_parser_load_from_file (jp, descriptor, &e))
        {
          fprintf (stderr, "nn-startup-stack: %s: %s\n", descriptor, e->message);
          g_clear_error (&e);
          rc = 1;
        }
      g_object_unref (jp);
    }
  dnnl_engine_t engine = NULL;
  if (rc == 0 && dnnl_engine_create (&engine, dnnl_cpu, 0) != dnnl_success)
    {
      fprintf (stderr, "nn-startup-stack: oneDNN has no CPU engine\n");
      rc = 1;
    }
  for (char **f = files; f && *f && rc == 0; f++)
    if (!read_file (*f, checksum, &acc))
      rc = 1;
  if (engine)
    dnnl_engine_destroy (engine);
  g_strfreev (plugins);
  g_strfreev (files);
  g_free (descriptor);
  /* acc is only ever compared, so the reads above stay. */
  return rc == 0 && acc == 1 ? 3 : rc;
}
