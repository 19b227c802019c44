/* nnctl doctor: what this installation runs with, for bug reports and
 * "why is it slow / why is my type missing": version and ABI, the plugin
 * search path and where each plugin came from, plugin failures, CPU
 * features, the BLAS library in use and the plugin providing each type. */
#include "nnctl.h"

#include <dlfcn.h>
#include <string.h>
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

typedef struct {
  const char *name;
  gboolean present;
} CpuFeature;

#if defined(__x86_64__) || defined(__i386__)
static guint64
xgetbv0 (void)
{
  guint32 lo, hi;
  __asm__ volatile ("xgetbv" : "=a" (lo), "=d" (hi) : "c" (0));
  return ((guint64) hi << 32) | lo;
}
#endif

/* Each feature counts only if the OS also saves its registers (XCR0), as
 * a kernel may not use AVX-512 or AMX state otherwise. */
static GArray *
cpu_features (void)
{
  GArray *f = g_array_new (FALSE, TRUE, sizeof (CpuFeature));
#if defined(__x86_64__) || defined(__i386__)
  guint32 a = 0, b = 0, c = 0, d = 0, b7 = 0, c7 = 0, d7 = 0;
  guint64 xcr0 = 0;
  __get_cpuid (1, &a, &b, &c, &d);
  if (c & (1u << 27)) /* OSXSAVE */
    xcr0 = xgetbv0 ();
  gboolean avx_os = (xcr0 & 0x6) == 0x6;
  gboolean avx512_os = avx_os && (xcr0 & 0xe0) == 0xe0;
  gboolean amx_os = (xcr0 & 0x60000) == 0x60000;
  guint32 c1 = c;
  if (__get_cpuid_max (0, NULL) >= 7)
    __cpuid_count (7, 0, a, b7, c7, d7);
  const CpuFeature all[] = {
    { "SSE4.2", (c1 >> 20) & 1 },
    { "AVX", avx_os && ((c1 >> 28) & 1) },
    { "AVX2", avx_os && ((b7 >> 5) & 1) },
    { "FMA", avx_os && ((c1 >> 12) & 1) },
    { "AVX-512F", avx512_os && ((b7 >> 16) & 1) },
    { "AVX-512BW", avx512_os && ((b7 >> 30) & 1) },
    { "AVX-512VNNI", avx512_os && ((c7 >> 11) & 1) },
    { "AMX-TILE", amx_os && ((d7 >> 24) & 1) },
    { "AMX-BF16", amx_os && ((d7 >> 22) & 1) },
    { "AMX-INT8", amx_os && ((d7 >> 25) & 1) },
  };
  g_array_append_vals (f, all, G_N_ELEMENTS (all));
#endif
  return f;
}

typedef struct {
  char *library;  /* (nullable) where the symbols came from */
  char *corename; /* (nullable) */
  char *config;   /* (nullable) */
} BlasInfo;

/* OpenBLAS as already loaded by a plugin, else by dlopen: nnctl never
 * links it, so this works whichever component brings BLAS in. */
static void
blas_info (BlasInfo *bi)
{
  static const char *const sonames[] = { "libopenblas.so.0",
                                         "libopenblas.so" };
  void *h = NULL;
  void *core = dlsym (RTLD_DEFAULT, "openblas_get_corename");
  for (guint i = 0; core == NULL && i < G_N_ELEMENTS (sonames); i++) {
    h = dlopen (sonames[i], RTLD_NOW | RTLD_LOCAL);
    core = h ? dlsym (h, "openblas_get_corename") : NULL;
  }
  void *config = h ? dlsym (h, "openblas_get_config")
                   : dlsym (RTLD_DEFAULT, "openblas_get_config");
  Dl_info info;
  if (core && dladdr (core, &info) && info.dli_fname)
    bi->library = g_strdup (info.dli_fname);
  if (core)
    bi->corename = g_strdup (((char *(*) (void)) core) ());
  if (config)
    bi->config = g_strstrip (g_strdup (((char *(*) (void)) config) ()));
  /* The library stays loaded: its strings were copied, and unloading
   * OpenBLAS's threads at exit is not worth the risk. */
}

static const char *
plugin_name_for (GPtrArray *infos, const char *path)
{
  for (guint i = 0; i < infos->len; i++) {
    NnPluginInfo *p = infos->pdata[i];
    if (g_strcmp0 (p->path, path) == 0)
      return p->name;
  }
  return "?";
}

static void
print_text (NnRegistry *reg, GPtrArray *infos, GPtrArray *fails,
            GArray *cpu, const BlasInfo *bi)
{
  printf ("nnctl %s, plugin ABI %d.%d\n", NNCTL_VERSION, NN_ABI_MAJOR,
          NN_ABI_MINOR);
  printf ("installed plugin dir: %s\n\nplugin search path (in order):\n",
          nn_registry_installed_dir ());
  g_autofree gboolean *missing = NULL;
  g_auto (GStrv) dirs = nn_registry_get_search_path (reg, &missing);
  for (guint i = 0; dirs[i]; i++)
    printf ("  %s%s\n", dirs[i], missing[i] ? "  (missing)" : "");
  printf ("\nplugins (%u loaded, %u failed):\n", infos->len, fails->len);
  for (guint i = 0; i < infos->len; i++) {
    NnPluginInfo *p = infos->pdata[i];
    printf ("  %-14s %-8s %s\n", p->name, p->version, p->path);
  }
  for (guint i = 0; i < fails->len; i++) {
    NnPluginFailure *f = fails->pdata[i];
    printf ("  FAILED %s: %s\n", f->path, f->message);
  }
  printf ("\nCPU features:");
  for (guint i = 0; i < cpu->len; i++) {
    CpuFeature *f = &g_array_index (cpu, CpuFeature, i);
    printf (" %s%s", f->present ? "+" : "-", f->name);
  }
  printf ("\n\nBLAS: ");
  if (bi->corename)
    printf ("OpenBLAS, kernel %s (%s)\n      %s\n", bi->corename,
            bi->config ? bi->config : "no config", bi->library);
  else
    printf ("OpenBLAS not found (libopenblas.so.0 could not be loaded)\n");
  printf ("\ntype providers:\n");
  g_auto (GStrv) types = nn_registry_list_types (reg);
  for (guint i = 0; types[i]; i++) {
    NnPlugin *pl = NULL;
    if (!nn_registry_resolve_type (reg, types[i], &pl, NULL) || !pl)
      continue;
    printf ("  %-24s %s\n", types[i],
            plugin_name_for (infos, nn_plugin_get_path (pl)));
  }
}

static void
print_json (NnRegistry *reg, GPtrArray *infos, GPtrArray *fails,
            GArray *cpu, const BlasInfo *bi)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "version");
  json_builder_add_string_value (b, NNCTL_VERSION);
  json_builder_set_member_name (b, "abi");
  g_autofree char *abi = g_strdup_printf ("%d.%d", NN_ABI_MAJOR,
                                          NN_ABI_MINOR);
  json_builder_add_string_value (b, abi);
  json_builder_set_member_name (b, "installed_plugin_dir");
  json_builder_add_string_value (b, nn_registry_installed_dir ());
  json_builder_set_member_name (b, "search_path");
  json_builder_begin_array (b);
  g_autofree gboolean *missing = NULL;
  g_auto (GStrv) dirs = nn_registry_get_search_path (reg, &missing);
  for (guint i = 0; dirs[i]; i++) {
    json_builder_begin_object (b);
    json_builder_set_member_name (b, "dir");
    json_builder_add_string_value (b, dirs[i]);
    json_builder_set_member_name (b, "missing");
    json_builder_add_boolean_value (b, missing[i]);
    json_builder_end_object (b);
  }
  json_builder_end_array (b);
  json_builder_set_member_name (b, "plugins");
  json_builder_begin_array (b);
  for (guint i = 0; i < infos->len; i++) {
    NnPluginInfo *p = infos->pdata[i];
    json_builder_begin_object (b);
    json_builder_set_member_name (b, "name");
    json_builder_add_string_value (b, p->name);
    json_builder_set_member_name (b, "version");
    json_builder_add_string_value (b, p->version);
    json_builder_set_member_name (b, "path");
    json_builder_add_string_value (b, p->path);
    json_builder_end_object (b);
  }
  json_builder_end_array (b);
  json_builder_set_member_name (b, "failures");
  json_builder_begin_array (b);
  for (guint i = 0; i < fails->len; i++) {
    NnPluginFailure *f = fails->pdata[i];
    json_builder_begin_object (b);
    json_builder_set_member_name (b, "path");
    json_builder_add_string_value (b, f->path);
    json_builder_set_member_name (b, "message");
    json_builder_add_string_value (b, f->message);
    json_builder_end_object (b);
  }
  json_builder_end_array (b);
  json_builder_set_member_name (b, "cpu_features");
  json_builder_begin_object (b);
  for (guint i = 0; i < cpu->len; i++) {
    CpuFeature *f = &g_array_index (cpu, CpuFeature, i);
    json_builder_set_member_name (b, f->name);
    json_builder_add_boolean_value (b, f->present);
  }
  json_builder_end_object (b);
  json_builder_set_member_name (b, "blas");
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "library");
  if (bi->library)
    json_builder_add_string_value (b, bi->library);
  else
    json_builder_add_null_value (b);
  json_builder_set_member_name (b, "corename");
  if (bi->corename)
    json_builder_add_string_value (b, bi->corename);
  else
    json_builder_add_null_value (b);
  json_builder_set_member_name (b, "config");
  if (bi->config)
    json_builder_add_string_value (b, bi->config);
  else
    json_builder_add_null_value (b);
  json_builder_end_object (b);
  json_builder_set_member_name (b, "providers");
  json_builder_begin_object (b);
  g_auto (GStrv) types = nn_registry_list_types (reg);
  for (guint i = 0; types[i]; i++) {
    NnPlugin *pl = NULL;
    if (!nn_registry_resolve_type (reg, types[i], &pl, NULL) || !pl)
      continue;
    json_builder_set_member_name (b, types[i]);
    json_builder_add_string_value (b, plugin_name_for (infos,
                                                       nn_plugin_get_path (pl)));
  }
  json_builder_end_object (b);
  json_builder_end_object (b);
  nnctl_json_print (b);
}

int
nnctl_cmd_doctor (NnctlGlobal *g, const NnctlCommand *cmd, int argc,
                  char **argv)
{
  gboolean json = FALSE;
  GError *err = NULL;
  const GOptionEntry entries[] = {
    { "json", 0, 0, G_OPTION_ARG_NONE, &json, "Machine-readable output",
      NULL },
    { NULL }
  };
  int rc = nnctl_parse (g, cmd, entries, 0, &argc, &argv, 0, 0);
  if (rc != NNCTL_CONTINUE)
    return rc;
  NnRegistry *reg = nnctl_registry (g, &err);
  if (!reg)
    return nnctl_fail ("doctor", err);
  g_autoptr (GPtrArray) infos = nn_registry_list_plugins (reg);
  g_autoptr (GPtrArray) fails = nn_registry_get_failures (reg);
  g_autoptr (GArray) cpu = cpu_features ();
  BlasInfo bi = { 0 };
  blas_info (&bi);
  if (json)
    print_json (reg, infos, fails, cpu, &bi);
  else
    print_text (reg, infos, fails, cpu, &bi);
  g_free (bi.library);
  g_free (bi.corename);
  g_free (bi.config);
  return NNCTL_EXIT_OK;
}
