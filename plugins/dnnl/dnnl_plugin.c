/* dnnl plugin: entry point.  Each provider is set up from its reference
 * type (compiled into this plugin) and registered at NN_DNNL_RANK. */
#include "dnnl-private.h"
#include "nn-blas.h"

typedef void (*SetupFunc) (NnLayerType *t);

static const SetupFunc setups[] = {
  nn_dnnl_conv2d_setup,
  nn_dnnl_linear_setup,
  nn_dnnl_max_pool2d_setup,
  nn_dnnl_avg_pool2d_setup,
  nn_dnnl_batch_norm2d_setup,
};

/* Filled once, at init: they copy the reference vtables, which are not
 * compile-time constants here. */
static NnLayerType types[G_N_ELEMENTS (setups)];

static gboolean
dnnl_init (NnPlugin *plugin, GError **error)
{
  /* The reference code compiled in falls back on OpenBLAS. */
  nn_blas_plugin_init ();
  if (!nn_dnnl_engine (error))
    return FALSE;
  for (gsize i = 0; i < G_N_ELEMENTS (setups); i++)
    {
      setups[i] (&types[i]);
      if (!nn_plugin_register_type (plugin, &types[i], error))
        return FALSE;
    }
  return TRUE;
}

NN_PLUGIN_DEFINE ("dnnl", "0.1.0", "MIT",
                  "oneDNN providers: Conv2d, Linear, MaxPool2d, AvgPool2d, "
                  "BatchNorm2d (rank above the OpenBLAS reference)",
                  dnnl_init)
