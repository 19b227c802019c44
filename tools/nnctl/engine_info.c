/* nnctl: what the engine decided, for `nnctl plugins`: the CPU, the
 * thread count, the OpenBLAS kernel and the providers of a type in the
 * order they are tried. */
#include "nnctl.h"

#include <nnkit/blas.h>
#include <nnkit/cpu.h>
#include <nnkit/providers.h>

void
nnctl_engine_text (NnRegistry *reg)
{
  const NnCpuInfo *cpu = nn_cpu_info_get ();
  g_autofree char *features = nn_cpu_describe_features (cpu);
  g_autofree char *blas = nn_blas_describe ();
  g_autofree char *rules = nn_registry_get_providers (reg);

  printf ("\nEngine\n  cpu:       %s (%s family %u model %u)\n"
          "  features:  %s\n  threads:   %d\n  %s\n  providers: %s\n",
          nn_cpu_get_model_name (cpu), nn_cpu_get_vendor (cpu),
          nn_cpu_get_family (cpu), nn_cpu_get_model (cpu),
          *features ? features : "(none)", nn_get_num_threads (), blas,
          rules ? rules : "by rank (no NN_PROVIDERS rules)");
}

void
nnctl_engine_json (JsonBuilder *b, NnRegistry *reg)
{
  const NnCpuInfo *cpu = nn_cpu_info_get ();
  g_autofree char *features = nn_cpu_describe_features (cpu);
  g_autofree char *blas = nn_blas_describe ();
  g_autofree char *kernel = nn_blas_get_kernel ();
  g_autofree char *rules = nn_registry_get_providers (reg);

  json_builder_set_member_name (b, "engine");
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "cpu");
  json_builder_add_string_value (b, nn_cpu_get_model_name (cpu));
  json_builder_set_member_name (b, "cpu_features");
  json_builder_add_string_value (b, features);
  json_builder_set_member_name (b, "threads");
  json_builder_add_int_value (b, nn_get_num_threads ());
  json_builder_set_member_name (b, "blas_kernel");
  json_builder_add_string_value (b, kernel);
  json_builder_set_member_name (b, "blas");
  json_builder_add_string_value (b, blas);
  json_builder_set_member_name (b, "provider_rules");
  json_builder_add_string_value (b, rules);
  json_builder_end_object (b);
}

void
nnctl_providers_text (NnRegistry *reg, const char *type)
{
  g_autoptr (GPtrArray) list = nn_registry_list_providers (reg, type, NULL);

  if (!list)
    return;
  printf ("Providers (in the order tried):\n");
  for (guint i = 0; i < list->len; i++) {
    NnProviderInfo *p = list->pdata[i];
    printf ("  %-12s rank %-4d%s%s  %s\n", p->plugin, p->rank,
            p->selected ? " (selected)" : "",
            p->excluded ? " (excluded)" : "", p->path);
  }
  printf ("\n");
}

void
nnctl_providers_json (JsonBuilder *b, NnRegistry *reg, const char *type)
{
  g_autoptr (GPtrArray) list = nn_registry_list_providers (reg, type, NULL);

  json_builder_set_member_name (b, "providers");
  json_builder_begin_array (b);
  for (guint i = 0; list && i < list->len; i++) {
    NnProviderInfo *p = list->pdata[i];
    json_builder_begin_object (b);
    json_builder_set_member_name (b, "plugin");
    json_builder_add_string_value (b, p->plugin);
    json_builder_set_member_name (b, "rank");
    json_builder_add_int_value (b, p->rank);
    json_builder_set_member_name (b, "selected");
    json_builder_add_boolean_value (b, p->selected);
    json_builder_set_member_name (b, "excluded");
    json_builder_add_boolean_value (b, p->excluded);
    json_builder_set_member_name (b, "file");
    json_builder_add_string_value (b, p->path);
    json_builder_end_object (b);
  }
  json_builder_end_array (b);
}
