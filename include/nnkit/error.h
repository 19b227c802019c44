/* nnkit: error domains and codes.
 *
 * Every runtime failure is reported through a GError in one of these
 * domains.  Messages name the file, module path or key involved and say
 * what was expected versus what was found.
 */
#ifndef NNKIT_ERROR_H
#define NNKIT_ERROR_H

#include <glib.h>
#include <nnkit/export.h>

G_BEGIN_DECLS

/* NN_PLUGIN_ERROR: loading plugins and resolving layer types. */
#define NN_PLUGIN_ERROR (nn_plugin_error_quark ())
typedef enum {
  NN_PLUGIN_ERROR_NOT_A_PLUGIN,   /* file is not a loadable shared object */
  NN_PLUGIN_ERROR_DLOPEN,         /* dlopen() failed, e.g. undefined symbol */
  NN_PLUGIN_ERROR_NO_ENTRY,       /* entry symbol nn_plugin_get_desc missing */
  NN_PLUGIN_ERROR_BAD_MAGIC,      /* descriptor magic number is wrong */
  NN_PLUGIN_ERROR_ABI,            /* ABI major differs or minor is newer */
  NN_PLUGIN_ERROR_INVALID,        /* descriptor or layer type is malformed */
  NN_PLUGIN_ERROR_INIT_FAILED,    /* the plugin's init function failed */
  NN_PLUGIN_ERROR_DUPLICATE_TYPE, /* type already registered by another plugin */
  NN_PLUGIN_ERROR_DUPLICATE_PLUGIN, /* plugin name already loaded from another file */
  NN_PLUGIN_ERROR_UNKNOWN_TYPE,   /* no loaded plugin provides the type */
  NN_PLUGIN_ERROR_IO,             /* a plugin directory could not be read */
  NN_PLUGIN_ERROR_NO_PROVIDER,    /* every provider of the type refused the config */
  NN_PLUGIN_ERROR_CRASHED,        /* crashed, exited or hung when probed in a helper */
} NnPluginError;

/* NN_DESCRIPTOR_ERROR: JSON descriptors and layer configs. */
#define NN_DESCRIPTOR_ERROR (nn_descriptor_error_quark ())
typedef enum {
  NN_DESCRIPTOR_ERROR_IO,          /* file cannot be read or written */
  NN_DESCRIPTOR_ERROR_PARSE,       /* malformed JSON, or not JSON text at all
                                    * (a checkpoint, a binary: named) */
  NN_DESCRIPTOR_ERROR_INVALID,     /* valid JSON of the wrong structure */
  NN_DESCRIPTOR_ERROR_UNKNOWN_KEY, /* config key not in the type's schema */
  NN_DESCRIPTOR_ERROR_WRONG_KIND,  /* config value of the wrong kind */
  NN_DESCRIPTOR_ERROR_OUT_OF_RANGE,/* config value outside its range */
  NN_DESCRIPTOR_ERROR_MISSING_KEY, /* required config key absent */
  NN_DESCRIPTOR_ERROR_BAD_NAME,    /* child name empty or contains '.' */
  NN_DESCRIPTOR_ERROR_DUPLICATE_NAME, /* child name used twice in a parent */
} NnDescriptorError;

/* NN_MODULE_ERROR: lookups, calls and edits on a module tree. */
#define NN_MODULE_ERROR (nn_module_error_quark ())
typedef enum {
  NN_MODULE_ERROR_NOT_FOUND,     /* path, name, index or tensor absent */
  NN_MODULE_ERROR_BAD_REFERENCE, /* malformed path, index or glob */
  NN_MODULE_ERROR_NO_FORWARD,    /* module type has no forward (ModuleList) */
  NN_MODULE_ERROR_NOT_CONTAINER, /* edit needs Sequential/ModuleList/ModuleDict */
  NN_MODULE_ERROR_FAILED,        /* a layer's forward failed */
  NN_MODULE_ERROR_BAD_ARGUMENTS, /* a call's arguments do not fit the
                                  * signature (Python's TypeError) */
} NnModuleError;

/* NN_WEIGHTS_ERROR: safetensors files and state_dict loading. */
#define NN_WEIGHTS_ERROR (nn_weights_error_quark ())
typedef enum {
  NN_WEIGHTS_ERROR_IO,            /* open, map, write or rename failed */
  NN_WEIGHTS_ERROR_HEADER,        /* header length or JSON is bad */
  NN_WEIGHTS_ERROR_DTYPE,         /* unknown or unsupported dtype */
  NN_WEIGHTS_ERROR_OFFSETS,       /* data offsets out of bounds or overlapping */
  NN_WEIGHTS_ERROR_SHAPE,         /* shape invalid or its product overflows */
  NN_WEIGHTS_ERROR_NOT_FOUND,     /* named tensor is not in the file */
  NN_WEIGHTS_ERROR_LOAD,          /* load_state_dict found problems (strict) */
  NN_WEIGHTS_ERROR_MISMATCH,      /* weights not the ones saved with the descriptor */
} NnWeightsError;

/* NN_SHAPE_ERROR: shape inference and shape-checked surgery. */
#define NN_SHAPE_ERROR (nn_shape_error_quark ())
typedef enum {
  NN_SHAPE_ERROR_MISMATCH,  /* an input shape does not fit a module */
  NN_SHAPE_ERROR_INVALID,   /* a shape string or value is malformed */
  NN_SHAPE_ERROR_NO_SHAPE,  /* no input shape given nor recorded */
} NnShapeError;

NN_API GQuark nn_plugin_error_quark (void);
NN_API GQuark nn_descriptor_error_quark (void);
NN_API GQuark nn_module_error_quark (void);
NN_API GQuark nn_weights_error_quark (void);
NN_API GQuark nn_shape_error_quark (void);

G_END_DECLS

#endif
