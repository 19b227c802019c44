// Tests for core/value.c: constructors and accessors, Python's repr of
// values, dict order, tensor-leaf naming (the capture and nnctl names)
// and mapping over tensor leaves.
#include "nn-test.h"

#include <cmath>

using namespace nntest;

namespace {

ValueRef
t (std::initializer_list<gint64> dims, NnDType dtype = NN_DTYPE_F32)
{
  NnShape s = shape (dims);
  return ValueRef (nn_value_take_tensor (nn_tensor_new (dtype, &s)));
}

void
collect (const char *name, NnTensor *tensor, gpointer user_data)
{
  auto *v = (std::vector<std::string> *) user_data;
  v->push_back (std::string (name) + "=" + shape_text (tensor->shape));
}

}  // namespace

TEST (Value, ScalarsFollowPythonsNumericTower)
{
  ValueRef i (nn_value_new_int (-3)), f (nn_value_new_float (2.5)), b (nn_value_new_bool (TRUE));
  ValueRef n (nn_value_new_none ()), s (nn_value_new_string ("it's"));
  EXPECT_EQ (nn_value_kind (i.get ()), NN_VALUE_INT);
  EXPECT_EQ (nn_value_get_int (i.get ()), -3);
  EXPECT_EQ (nn_value_get_float (i.get ()), -3.0);
  EXPECT_EQ (nn_value_get_int (b.get ()), 1) << "bool is an int";
  EXPECT_EQ (nn_value_get_float (b.get ()), 1.0);
  EXPECT_EQ (nn_value_get_float (f.get ()), 2.5);
  EXPECT_TRUE (nn_value_is_none (n.get ()));
  EXPECT_FALSE (nn_value_is_none (i.get ()));
  EXPECT_STREQ (nn_value_get_string (s.get ()), "it's");
  EXPECT_EQ (nn_value_get_tensor (i.get ()), nullptr);
  EXPECT_EQ (nn_value_get_string (i.get ()), nullptr);
  EXPECT_STREQ (nn_value_kind_name (NN_VALUE_DICT), "dict");
  EXPECT_STREQ (nn_value_kind_name (NN_VALUE_NONE), "None");
  EXPECT_STREQ (nn_value_kind_name (NN_VALUE_TENSOR), "Tensor");
}

TEST (Value, ReprIsPythons)
{
  ValueRef tup (nn_value_new_tuple ());
  nn_value_append (tup.get (), nn_value_new_int (1));
  ValueRef one (nn_value_new_tuple ());
  nn_value_append (one.get (), nn_value_new_float (0.1));
  nn_value_append (tup.get (), nn_value_ref (one.get ()));
  ValueRef list (nn_value_new_list ());
  nn_value_append (list.get (), nn_value_new_bool (FALSE));
  nn_value_append (list.get (), nn_value_new_none ());
  nn_value_append (list.get (), nn_value_new_string ("it's"));
  nn_value_append (tup.get (), nn_value_ref (list.get ()));
  ValueRef d (nn_value_new_dict ());
  nn_value_dict_set (d.get (), "z", nn_value_new_float (1.0));
  nn_value_dict_set (d.get (), "a", t ({ 2, 3 }).release ());
  nn_value_dict_set (d.get (), "z", nn_value_new_float (1e-5)); // keeps its place
  nn_value_append (tup.get (), nn_value_ref (d.get ()));
  nn_value_append (tup.get (), nn_value_new_slice (nullptr, nn_value_new_int (-1), nullptr));
  nn_value_append (tup.get (), nn_value_new_ellipsis ());
  nn_value_append (tup.get (), nn_value_new_float (-INFINITY));
  nn_value_append (tup.get (), nn_value_new_tuple ());
  EXPECT_EQ (take (nn_value_to_string (tup.get ())),
             "(1, (0.1,), [False, None, \"it's\"], {'z': 1e-05, 'a': Tensor[2, 3] F32}, "
             "slice(None, -1, None), Ellipsis, -inf, ())");
  EXPECT_EQ (nn_value_n_items (d.get ()), 2u);
  EXPECT_STREQ (nn_value_dict_key (d.get (), 0), "z");
  EXPECT_EQ (nn_value_dict_lookup (d.get (), "missing"), nullptr);
  EXPECT_EQ (nn_value_item (tup.get (), 99), nullptr);
  NnShape s = shape ({ 4 });
  ValueRef meta (nn_value_take_tensor (nn_tensor_new_meta (NN_DTYPE_I64, &s)));
  EXPECT_EQ (take (nn_value_to_string (meta.get ())), "Tensor[4] I64 meta");
}

TEST (Value, TensorLeavesAreNamedByPositionAndKey)
{
  // LSTM's (out, (h_n, c_n)) and a dict, as captured: "lstm", "lstm.0", ...
  ValueRef inner (nn_value_new_tuple ());
  nn_value_append (inner.get (), t ({ 1, 2 }).release ());
  nn_value_append (inner.get (), t ({ 1, 3 }).release ());
  ValueRef lstm (nn_value_new_tuple ());
  nn_value_append (lstm.get (), t ({ 5 }).release ());
  nn_value_append (lstm.get (), nn_value_ref (inner.get ()));
  nn_value_append (lstm.get (), nn_value_new_int (7)); // skipped: not a tensor
  std::vector<std::string> names;
  nn_value_foreach_tensor (lstm.get (), "lstm", collect, &names);
  EXPECT_EQ (names, (std::vector<std::string>{ "lstm.0=[5]", "lstm.1.0=[1, 2]", "lstm.1.1=[1, 3]" }));
  EXPECT_EQ (nn_value_count_tensors (lstm.get ()), 3u);
  // The first leaf is the out tensor, found through the nested tuple order.
  ASSERT_NE (nn_value_first_tensor (lstm.get ()), nullptr);
  EXPECT_EQ (nn_value_first_tensor (lstm.get ())->shape.dims[0], 5);
  EXPECT_EQ (nn_value_first_tensor (inner.get ())->shape.dims[1], 2);
  ValueRef no_tensor (nn_value_new_tuple ());
  nn_value_append (no_tensor.get (), nn_value_new_int (7));
  EXPECT_EQ (nn_value_first_tensor (no_tensor.get ()), nullptr);
  EXPECT_EQ (nn_value_first_tensor (nullptr), nullptr);

  names.clear ();
  ValueRef one = t ({ 2 });
  nn_value_foreach_tensor (one.get (), "lstm", collect, &names);
  EXPECT_EQ (names, (std::vector<std::string>{ "lstm=[2]" }));

  names.clear ();
  ValueRef d (nn_value_new_dict ());
  nn_value_dict_set (d.get (), "logits", t ({ 3 }).release ());
  nn_value_dict_set (d.get (), "aux", nn_value_ref (lstm.get ()));
  nn_value_foreach_tensor (d.get (), "", collect, &names);
  EXPECT_EQ (names, (std::vector<std::string>{ "logits=[3]", "aux.0=[5]", "aux.1.0=[1, 2]",
                                               "aux.1.1=[1, 3]" }));
}

static NnTensor *
to_meta (NnTensor *tensor, gpointer user_data, GError **error)
{
  if (tensor->dtype == NN_DTYPE_I64) {
    g_set_error (error, NN_MODULE_ERROR, NN_MODULE_ERROR_FAILED, "no I64 here");
    return nullptr;
  }
  ++*(int *) user_data;
  return nn_tensor_new_meta (tensor->dtype, &tensor->shape);
}

TEST (Value, MapTensorsKeepsStructureAndPassesErrorsOn)
{
  ValueRef d (nn_value_new_dict ());
  nn_value_dict_set (d.get (), "x", t ({ 2 }).release ());
  ValueRef l (nn_value_new_list ());
  nn_value_append (l.get (), t ({ 3 }).release ());
  nn_value_append (l.get (), nn_value_new_string ("s"));
  nn_value_dict_set (d.get (), "l", nn_value_ref (l.get ()));
  int calls = 0;
  Error e;
  ValueRef m (nn_value_map_tensors (d.get (), to_meta, &calls, e.out ()));
  ASSERT_TRUE (m) << e.message ();
  EXPECT_EQ (calls, 2);
  EXPECT_EQ (take (nn_value_to_string (m.get ())), "{'x': Tensor[2] F32 meta, 'l': [Tensor[3] F32 meta, 's']}");
  EXPECT_EQ (nn_value_kind (nn_value_dict_lookup (m.get (), "l")), NN_VALUE_LIST);
  nn_value_append (l.get (), t ({ 1 }, NN_DTYPE_I64).release ());
  EXPECT_FALSE (ValueRef (nn_value_map_tensors (d.get (), to_meta, &calls, e.out ())));
  EXPECT_EQ (e.message (), "no I64 here");
}

TEST (Value, ReferencesAndTensorOwnership)
{
  NnShape s = shape ({ 2 });
  NnTensor *x = nn_tensor_new (NN_DTYPE_F32, &s);
  NnValue *a = nn_value_new_tensor (x);   // takes its own reference
  NnValue *b = nn_value_take_tensor (x);  // takes the caller's
  EXPECT_EQ (nn_value_get_tensor (a), nn_value_get_tensor (b));
  nn_value_ref (a);
  nn_value_unref (a);
  nn_value_unref (a);
  EXPECT_EQ (nn_tensor_f32 (nn_value_get_tensor (b))[0], 0.0f) << "still alive through b";
  nn_value_unref (b);
}
