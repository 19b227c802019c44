/* nnkit: values, the arguments and results of a module call (ABI 2).
 *
 * A value is what a Python expression inside forward() can evaluate to:
 * None, a tensor, an int, a float, a bool, a string, or a tuple, list or
 * dict of values, nested.  Values are reference-counted and immutable once
 * built (a container's items are fixed after the last _append/_set before
 * it is handed on), so one value may be read from several threads.
 *
 * Dicts keep insertion order, as Python's do, and their keys are strings.
 */
#ifndef NNKIT_VALUE_H
#define NNKIT_VALUE_H

#include <glib.h>
#include <nnkit/export.h>
#include <nnkit/tensor.h>

G_BEGIN_DECLS

typedef enum {
  NN_VALUE_NONE = 0,
  NN_VALUE_TENSOR,
  NN_VALUE_INT,
  NN_VALUE_FLOAT,
  NN_VALUE_BOOL,
  NN_VALUE_STRING,
  NN_VALUE_TUPLE,
  NN_VALUE_LIST,
  NN_VALUE_DICT,
  NN_VALUE_SLICE,    /* Python's slice(start, stop, step): 3 items */
  NN_VALUE_ELLIPSIS, /* Python's ... in an index */
} NnValueKind;

typedef struct _NnValue NnValue;

/* Constructors.  Each returns (transfer full). */
NN_API NnValue *nn_value_new_none (void);
/* @t (transfer none): the value takes its own reference. */
NN_API NnValue *nn_value_new_tensor (NnTensor *t);
/* @t (transfer full): the value takes over the caller's reference. */
NN_API NnValue *nn_value_take_tensor (NnTensor *t);
NN_API NnValue *nn_value_new_int (gint64 v);
NN_API NnValue *nn_value_new_float (double v);
NN_API NnValue *nn_value_new_bool (gboolean v);
/* @s (transfer none, copied). */
NN_API NnValue *nn_value_new_string (const char *s);
/* slice(@start, @stop, @step): each (transfer full) an INT or NONE
 * value; they are items 0, 1 and 2. */
NN_API NnValue *nn_value_new_slice (NnValue *start, NnValue *stop,
                                    NnValue *step);
NN_API NnValue *nn_value_new_ellipsis (void);
/* An empty tuple or list; fill with nn_value_append() before handing on. */
NN_API NnValue *nn_value_new_tuple (void);
NN_API NnValue *nn_value_new_list (void);
/* An empty dict; fill with nn_value_dict_set(). */
NN_API NnValue *nn_value_new_dict (void);
/* Appends @item (transfer full) to a tuple or list under construction. */
NN_API void nn_value_append (NnValue *seq, NnValue *item);
/* Sets @key (copied) to @item (transfer full) in a dict under
 * construction; an existing key keeps its position, as in Python. */
NN_API void nn_value_dict_set (NnValue *dict, const char *key,
                               NnValue *item);

NN_API NnValue *nn_value_ref (NnValue *v);
NN_API void nn_value_unref (NnValue *v);

/* Accessors.  A wrong kind is a programming error for the _get_ forms:
 * they return 0/NULL.  Use nn_value_kind() or the nn_args_ helpers of
 * plugin.h, which produce messages, for values from outside. */
NN_API NnValueKind nn_value_kind (const NnValue *v);
/* Returns: (transfer none) "None", "Tensor", "int", "float", "bool",
 * "str", "tuple", "list", "dict", "slice" or "ellipsis": Python's type
 * names, for errors. */
NN_API const char *nn_value_kind_name (NnValueKind kind);
NN_API gboolean nn_value_is_none (const NnValue *v);
/* Returns: (transfer none) (nullable) the tensor of a TENSOR value. */
NN_API NnTensor *nn_value_get_tensor (const NnValue *v);
/* INT, or BOOL as 0/1 (Python's bool is an int). */
NN_API gint64 nn_value_get_int (const NnValue *v);
/* FLOAT, INT or BOOL, as Python promotes them. */
NN_API double nn_value_get_float (const NnValue *v);
NN_API gboolean nn_value_get_bool (const NnValue *v);
/* Returns: (transfer none) (nullable). */
NN_API const char *nn_value_get_string (const NnValue *v);
/* Items of a TUPLE, LIST, DICT (in insertion order) or SLICE. */
NN_API guint nn_value_n_items (const NnValue *v);
/* Returns: (transfer none) item @i. */
NN_API NnValue *nn_value_item (const NnValue *v, guint i);
/* Returns: (transfer none) key @i of a dict. */
NN_API const char *nn_value_dict_key (const NnValue *v, guint i);
/* Returns: (transfer none) (nullable) the item under @key of a dict. */
NN_API NnValue *nn_value_dict_lookup (const NnValue *v, const char *key);

/* Python's repr of the value with tensors shown as "Tensor[1, 3] F32":
 * for error messages and nnctl.  Returns (transfer full). */
NN_API char *nn_value_to_string (const NnValue *v);

/* Calls @func for every tensor leaf, depth first, in item order, with its
 * name: @prefix for a tensor value itself, "@prefix.i" for item i of a
 * tuple or list, "@prefix.key" for a dict item, nested keys joined by dots
 * ("lstm.1.0" is h_n of LSTM's (out, (h_n, c_n))).  @prefix "" gives
 * names without a leading dot.  Non-tensor leaves are skipped. */
typedef void (*NnValueLeafFunc) (const char *name, NnTensor *t,
                                 gpointer user_data);
NN_API void nn_value_foreach_tensor (const NnValue *v, const char *prefix,
                                     NnValueLeafFunc func, gpointer user_data);
/* The number of tensor leaves. */
NN_API guint nn_value_count_tensors (const NnValue *v);
/* Returns: (transfer none) (nullable) the first tensor leaf in
 * nn_value_foreach_tensor()'s order, NULL for a NULL value or one with no
 * tensor (summary rows and shape observers report this leaf's shape). */
NN_API NnTensor *nn_value_first_tensor (const NnValue *v);

/* Returns: (transfer full) a value of the same structure whose tensor
 * leaves are replaced by @map's results (transfer full of each result);
 * NULL if @map returns NULL (its @error is passed on). */
typedef NnTensor *(*NnValueMapFunc) (NnTensor *t, gpointer user_data,
                                     GError **error);
NN_API NnValue *nn_value_map_tensors (const NnValue *v, NnValueMapFunc map,
                                      gpointer user_data, GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (NnValue, nn_value_unref)

G_END_DECLS

#endif
