// The ops plugin beyond PyTorch's numbers: registration (every op flagged
// NN_LAYER_OP, the aliases version 1 graphs need), in-place spellings
// computed out of place, Python ints staying ints, shape inference on meta
// tensors (and its refusal for bool masks), and the error paths whose
// wording is nnkit's own (argument binding, dtypes, masks).
#include "nn-test.h"

#include <cstring>
#include <functional>
#include <string>

using namespace nntest;

namespace {

Module op (NnRegistry *reg, const char *name)
{
  Error err;
  Module m (nn_module_new_from_type (reg, name, nullptr, "op", err.out ()));
  EXPECT_TRUE (m) << name << ": " << err.message ();
  return m;
}

Tensor iota (NnDType dt, std::initializer_list<gint64> dims)
{
  NnShape s = shape (dims);
  Tensor f (nn_tensor_new (NN_DTYPE_F32, &s));
  for (gint64 i = 0; i < nn_tensor_numel (f.get ()); i++)
    nn_tensor_f32 (f.get ())[i] = (float) i - 3;
  return Tensor (nn_tensor_to_dtype (f.get (), dt));
}

// A tuple of tensors (referenced) and Python numbers.
struct Args {
  ValueRef v { nn_value_new_tuple () };
  Args &t (NnTensor *x) { nn_value_append (v.get (), nn_value_new_tensor (x)); return *this; }
  Args &i (gint64 x) { nn_value_append (v.get (), nn_value_new_int (x)); return *this; }
  Args &f (double x) { nn_value_append (v.get (), nn_value_new_float (x)); return *this; }
  Args &s (const char *x) { nn_value_append (v.get (), nn_value_new_string (x)); return *this; }
  Args &val (NnValue *x) { nn_value_append (v.get (), x); return *this; }
};

ValueRef call (NnModule *m, Args &a, Error &err, NnValue *kwargs = nullptr)
{
  return ValueRef (nn_module_call (m, a.v.get (), kwargs, err.out ()));
}

}  // namespace

TEST (OpsRegistry, EveryOpIsFlaggedAndDeclaresItsSignature)
{
  Registry reg = default_registry ();
  Array plugins (nn_registry_list_plugins (reg.get ()));
  const NnPluginInfo *ops = nullptr;
  for (guint i = 0; i < plugins->len; i++) {
    auto *info = (const NnPluginInfo *) plugins->pdata[i];
    if (!strcmp (info->name, "ops"))
      ops = info;
  }
  ASSERT_NE (ops, nullptr) << "the ops plugin is not loaded";
  int n = 0;
  for (char **t = ops->type_names; *t; t++, n++) {
    Error err;
    const NnLayerType *type = nn_registry_lookup_type (reg.get (), *t, err.out ());
    ASSERT_TRUE (type) << *t << ": " << err.message ();
    EXPECT_TRUE (type->flags & NN_LAYER_OP) << *t;
    EXPECT_GT (type->n_args, 0u) << *t;
    EXPECT_NE (type->infer, nullptr) << *t;
  }
  EXPECT_GT (n, 100);
}

TEST (OpsRegistry, AliasesResolveToTheirOp)
{
  Registry reg = default_registry ();
  struct { const char *alias, *type; } cases[] = {
    // Version 1 graphs are upgraded to these names.
    { "add", "add" }, { "mul", "mul" }, { "sub", "sub" }, { "div", "div" }, { "cat", "cat" },
    { "torch.add", "add" }, { "operator.add", "add" }, { "operator.iadd", "add" },
    { "Tensor.add_", "add" }, { "Tensor.__radd__", "add" }, { "operator.truediv", "div" },
    { "operator.floordiv", "floor_divide" }, { "operator.getitem", "getitem" },
    { "Tensor.view", "view" }, { "torch.nn.functional.softmax", "softmax" },
    { "torch.nn.functional.pad", "pad" }, { "torch.nn.functional.linear", "linear" },
    { "torch.nn.functional.layer_norm", "layer_norm" }, { "operator.matmul", "matmul" },
    { "operator.invert", "bitwise_not" }, { "torch.clip", "clamp" },
  };
  for (auto &c : cases) {
    Error err;
    const NnLayerType *t = nn_registry_lookup_type (reg.get (), c.alias, err.out ());
    ASSERT_TRUE (t) << c.alias << ": " << err.message ();
    EXPECT_STREQ (t->name, c.type) << c.alias;
  }
}

TEST (Ops, InPlaceSpellingsLeaveTheirInputAlone)
{
  Registry reg = default_registry ();
  Module m = op (reg.get (), "Tensor.add_");
  Tensor x = iota (NN_DTYPE_F32, { 2, 3 });
  Tensor before (nn_tensor_copy (x.get ()));
  Error err;
  Args a;
  a.t (x.get ()).f (1.0);
  ValueRef out = call (m.get (), a, err);
  ASSERT_TRUE (out) << err.message ();
  EXPECT_EQ (0, memcmp (x->data, before->data, nn_tensor_nbytes (x.get ())));
  NnTensor *y = nn_value_get_tensor (out.get ());
  EXPECT_FLOAT_EQ (nn_tensor_f32 (y)[0], nn_tensor_f32 (x.get ())[0] + 1);
}

TEST (Ops, IntegerArithmeticOnSizesStaysInt)
{
  Registry reg = default_registry ();
  Tensor x = iota (NN_DTYPE_F32, { 2, 12, 5 });
  Error err;
  Args sa;
  sa.t (x.get ()).i (1);
  ValueRef c = call (op (reg.get (), "Tensor.size").get (), sa, err);
  ASSERT_TRUE (c) << err.message ();
  ASSERT_EQ (nn_value_kind (c.get ()), NN_VALUE_INT);
  Args da;
  da.val (nn_value_ref (c.get ())).i (4);
  ValueRef q = call (op (reg.get (), "operator.floordiv").get (), da, err);
  ASSERT_TRUE (q) << err.message ();
  ASSERT_EQ (nn_value_kind (q.get ()), NN_VALUE_INT);
  EXPECT_EQ (nn_value_get_int (q.get ()), 3);
  // view(x, 2, C // 4, -1) with the int computed above.
  Args va;
  va.t (x.get ()).i (2).val (nn_value_ref (q.get ())).i (-1);
  ValueRef v = call (op (reg.get (), "Tensor.view").get (), va, err);
  ASSERT_TRUE (v) << err.message ();
  NnShape want = shape ({ 2, 3, 20 });
  EXPECT_TRUE (nn_shape_equal (&nn_value_get_tensor (v.get ())->shape, &want));
  Args za;
  za.i (7).i (0);
  ValueRef z = call (op (reg.get (), "operator.floordiv").get (), za, err);
  EXPECT_FALSE (z);
  EXPECT_TRUE (contains (err.message (), "division or modulo by zero")) << err.message ();
}

TEST (Ops, InferenceGivesMetaTensorsWithoutComputing)
{
  Registry reg = default_registry ();
  NnShape s = shape ({ 4, 8 });
  Tensor meta (nn_tensor_new_meta (NN_DTYPE_F32, &s));
  Error err;
  Module m = op (reg.get (), "matmul");
  NnShape ws = shape ({ 8, 3 });
  Tensor w (nn_tensor_new_meta (NN_DTYPE_F32, &ws));
  Args a;
  a.t (meta.get ()).t (w.get ());
  ValueRef out (nn_module_infer (m.get (), a.v.get (), nullptr, err.out ()));
  ASSERT_TRUE (out) << err.message ();
  NnTensor *t = nn_value_get_tensor (out.get ());
  EXPECT_TRUE (nn_tensor_is_meta (t));
  NnShape want = shape ({ 4, 3 });
  EXPECT_TRUE (nn_shape_equal (&t->shape, &want));

  // arange with a size computed in the graph: meta too.
  Module ar = op (reg.get (), "torch.arange");
  Args aa;
  aa.i (6);
  ValueRef r (nn_module_infer (ar.get (), aa.v.get (), nullptr, err.out ()));
  ASSERT_TRUE (r) << err.message ();
  EXPECT_TRUE (nn_tensor_is_meta (nn_value_get_tensor (r.get ())));
  EXPECT_EQ (nn_value_get_tensor (r.get ())->dtype, NN_DTYPE_I64);
}

TEST (Ops, BoolMaskIndexingRefusesInference)
{
  Registry reg = default_registry ();
  Module m = op (reg.get (), "operator.getitem");
  Tensor x = iota (NN_DTYPE_F32, { 6 });
  Tensor mask = iota (NN_DTYPE_BOOL, { 6 });
  Args a;
  a.t (x.get ()).t (mask.get ());
  Error err;
  ValueRef real = call (m.get (), a, err);
  ASSERT_TRUE (real) << err.message ();
  EXPECT_EQ (nn_value_get_tensor (real.get ())->shape.dims[0], 5);  // iota - 3 != 0 five times
  ValueRef meta (nn_module_infer (m.get (), a.v.get (), nullptr, err.out ()));
  EXPECT_FALSE (meta);
  EXPECT_TRUE (contains (err.message (), "bool mask")) << err.message ();
  EXPECT_TRUE (contains (err.message (), "depends on the mask's values")) << err.message ();
}

TEST (OpsErrors, BindingNamesTheArgumentAndTheDtypes)
{
  Registry reg = default_registry ();
  Error err;
  Tensor i = iota (NN_DTYPE_I64, { 2, 2 });
  Args a;
  a.t (i.get ()).t (i.get ());
  ValueRef out = call (op (reg.get (), "matmul").get (), a, err);
  EXPECT_FALSE (out);
  EXPECT_TRUE (contains (err.message (), "argument 'input'")) << err.message ();
  EXPECT_TRUE (contains (err.message (), "I64")) << err.message ();

  Args s;
  s.s ("two").i (1);
  out = call (op (reg.get (), "add").get (), s, err);
  EXPECT_FALSE (out);
  EXPECT_TRUE (contains (err.message (), "argument 'input'")) << err.message ();
  EXPECT_TRUE (contains (err.message (), "str")) << err.message ();

  Tensor f = iota (NN_DTYPE_F32, { 2, 2 });
  Tensor d = iota (NN_DTYPE_F64, { 2, 2 });
  Args md;
  md.t (f.get ()).t (d.get ());
  out = call (op (reg.get (), "mm").get (), md, err);
  EXPECT_FALSE (out);
  EXPECT_TRUE (contains (err.message (), "expected m1 and m2 to have the same dtype, but got: "
                         "torch.float32 != torch.float64")) << err.message ();
}

TEST (OpsErrors, MasksAndIndices)
{
  Registry reg = default_registry ();
  Error err;
  Tensor x = iota (NN_DTYPE_F32, { 2, 3 });
  Args a;
  a.t (x.get ()).t (x.get ()).f (1.0);
  ValueRef out = call (op (reg.get (), "masked_fill").get (), a, err);
  EXPECT_FALSE (out);
  EXPECT_TRUE (contains (err.message (), "only supports boolean masks")) << err.message ();

  Tensor idx = iota (NN_DTYPE_F32, { 2 });
  Args g;
  g.t (x.get ()).t (idx.get ());
  out = call (op (reg.get (), "getitem").get (), g, err);
  EXPECT_FALSE (out);
  EXPECT_TRUE (contains (err.message (), "tensors used as indices must be long")) << err.message ();

  Args sl;
  sl.t (x.get ()).val (nn_value_new_slice (nn_value_new_none (), nn_value_new_none (),
                                           nn_value_new_int (0)));
  out = call (op (reg.get (), "getitem").get (), sl, err);
  EXPECT_FALSE (out);
  EXPECT_TRUE (contains (err.message (), "step must be greater than zero")) << err.message ();

  // Tensor indices apart move the result's dims to the front in PyTorch:
  // refused, as are masks next to integer tensors.
  Tensor x3 = iota (NN_DTYPE_F32, { 2, 3, 4 });
  Tensor rows = iota (NN_DTYPE_I64, { 2 });
  Tensor mask = iota (NN_DTYPE_BOOL, { 3 });
  for (int apart = 0; apart < 2; apart++) {
    NnValue *ix = nn_value_new_tuple ();
    nn_value_append (ix, nn_value_new_tensor (rows.get ()));
    if (apart)
      nn_value_append (ix, nn_value_new_slice (nn_value_new_none (), nn_value_new_none (),
                                               nn_value_new_none ()));
    nn_value_append (ix, nn_value_new_tensor (apart ? rows.get () : mask.get ()));
    Args two;
    two.t (x3.get ()).val (ix);
    out = call (op (reg.get (), "getitem").get (), two, err);
    EXPECT_FALSE (out);
    EXPECT_TRUE (contains (err.message (), "integer tensors next to each other")) << err.message ();
  }

  Args d;
  d.t (x.get ()).i (0).i (2);
  out = call (op (reg.get (), "transpose").get (), d, err);
  EXPECT_FALSE (out);
  EXPECT_TRUE (contains (err.message (),
                         "Dimension out of range (expected to be in range of [-2, 1], but got 2)"))
      << err.message ();

  Args dt;
  dt.t (x.get ());
  ValueRef kw (nn_value_new_dict ());
  nn_value_dict_set (kw.get (), "dtype", nn_value_new_string ("torch.complex64"));
  out = call (op (reg.get (), "sum").get (), dt, err, kw.get ());
  EXPECT_FALSE (out);
  EXPECT_TRUE (contains (err.message (), "torch.complex64")) << err.message ();
}

TEST (Ops, MatrixProductsCountTheirMultiplyAdds)
{
  Registry reg = default_registry ();
  struct { const char *op; std::initializer_list<gint64> a, b; guint64 macs; } cases[] = {
    { "matmul", { 2, 3, 4 }, { 4, 5 }, 2 * 3 * 5 * 4 },
    { "matmul", { 4 }, { 4 }, 4 },
    { "mm", { 3, 4 }, { 4, 6 }, 3 * 6 * 4 },
    { "bmm", { 2, 3, 4 }, { 2, 4, 5 }, 2 * 3 * 5 * 4 },
    { "linear", { 7, 4 }, { 5, 4 }, 7 * 5 * 4 },
  };
  for (auto &c : cases) {
    Module m = op (reg.get (), c.op);
    const NnLayerType *t = nn_module_get_type (m.get ());
    ASSERT_NE (t->count_macs, nullptr) << c.op;
    NnShape sa = shape (c.a), sb = shape (c.b);
    Tensor a (nn_tensor_new_meta (NN_DTYPE_F32, &sa)), b (nn_tensor_new_meta (NN_DTYPE_F32, &sb));
    Args args;
    args.t (a.get ()).t (b.get ());
    Error err;
    ValueRef out (nn_module_infer (m.get (), args.v.get (), nullptr, err.out ()));
    ASSERT_TRUE (out) << c.op << ": " << err.message ();
    NnArgs *bound = nn_args_bind_signature (t->args, t->n_args, nullptr, args.v.get (), nullptr,
                                            err.out ());
    ASSERT_TRUE (bound) << err.message ();
    EXPECT_EQ (t->count_macs (m.get (), bound, out.get ()), c.macs) << c.op;
    nn_args_free (bound);
  }
}

TEST (OpsErrors, BadInputsAreErrorsNotCrashes)
{
  Registry reg = default_registry ();
  Tensor x = iota (NN_DTYPE_F32, { 2, 3 });
  Tensor e = iota (NN_DTYPE_F32, { 0, 3 });
  Tensor row = iota (NN_DTYPE_F32, { 1, 3 });
  struct Case {
    const char *op;
    std::function<void (Args &)> fill;
    const char *want;
  };
  Case cases[] = {
    { "expand", [&] (Args &a) { a.t (x.get ()).i (-2).i (3); }, "must match the existing size (2)" },
    { "expand", [&] (Args &a) { a.t (row.get ()).i (-2).i (3); }, "negative dimension -2" },
    { "expand", [&] (Args &a) { a.t (x.get ()).i (2).i (-5); }, "must match the existing size" },
    { "getitem", [&] (Args &a) { a.t (x.get ()).val (nn_value_new_bool (TRUE)); }, "Python bool" },
    { "einsum", [&] (Args &a) { a.s ("ij->iiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiii").t (x.get ()); },
      "too many subscripts" },
    { "einsum", [&] (Args &a) { a.s ("ij,jk->ik").t (x.get ()); }, "fewer operands" },
    { "einsum", [&] (Args &a) { a.s ("i.j").t (x.get ()); }, "not part of any ellipsis" },
    { "torch.arange", [&] (Args &a) { a.f (0).f (1e300).f (1e-300); }, "too many" },
    { "zeros", [&] (Args &a) { for (int i = 0; i < 9; i++) a.i (1); }, "at most 8 dims" },
    { "zeros", [&] (Args &a) { a.i (1 << 30).i (1 << 30).i (1 << 30); }, "cannot allocate" },
    { "view", [&] (Args &a) { a.t (x.get ()).i (-3); }, "invalid shape dimension -3" },
    { "roll", [&] (Args &a) { a.t (e.get ()).i (2); }, "" },
    { "chunk", [&] (Args &a) { a.t (x.get ()).i (0); }, "greater than 0" },
    { "narrow", [&] (Args &a) { a.t (x.get ()).i (1).i (1).i (-1); }, "exceeds dimension size" },
    { "pad", [&] (Args &a) { a.t (x.get ()).val (nn_value_new_list ()).s ("wrap"); }, "Unrecognised padding mode" },
    { "setitem", [&] (Args &a) { a.i (3).i (0).i (1); }, "argument 'obj'" },
    { "len", [&] (Args &a) { a.i (3); }, "has no len()" },
    { "tensor", [&] (Args &a) {
        NnValue *l = nn_value_new_list ();
        nn_value_append (l, nn_value_new_int (1));
        NnValue *inner = nn_value_new_list ();
        nn_value_append (inner, nn_value_new_int (2));
        nn_value_append (l, inner);
        a.val (l); }, "ragged" },
  };
  for (auto &c : cases) {
    Module m = op (reg.get (), c.op);
    Args a;
    c.fill (a);
    Error err;
    ValueRef out = call (m.get (), a, err);
    if (!*c.want) {
      // An empty tensor rolls to an empty tensor.
      EXPECT_TRUE (out) << c.op << ": " << err.message ();
      continue;
    }
    EXPECT_FALSE (out) << c.op;
    EXPECT_TRUE (contains (err.message (), c.want)) << c.op << ": " << err.message ();
  }
}

// The ops hand-written models needed (unfold, repeat_interleave, one_hot,
// F.conv1d/F.conv2d): nnkit's own refusals, where PyTorch computes a size
// from the values that shape inference cannot see, and the dtypes bound.
TEST (OpsErrors, ValueDependentSizesAreRefusedInInference)
{
  Registry reg = default_registry ();
  Error err;
  Tensor x = iota (NN_DTYPE_F32, { 2, 3 });
  Tensor per = iota (NN_DTYPE_I64, { 2 });  // [-3, -2]: one repeat per row
  Args a;
  a.t (x.get ()).t (per.get ()).i (0);
  ValueRef out = call (op (reg.get (), "torch.repeat_interleave").get (), a, err);
  EXPECT_FALSE (out);
  EXPECT_TRUE (contains (err.message (), "tensor of repeats per element")) << err.message ();

  // one_hot without num_classes runs (the largest value + 1) but does not infer.
  Tensor cls = iota (NN_DTYPE_I64, { 5 });  // [-3 .. 1]
  NnShape s5 = shape ({ 5 });
  Tensor pos (nn_tensor_new (NN_DTYPE_I64, &s5));
  for (gint64 i = 0; i < 5; i++)
    nn_tensor_i64 (pos.get ())[i] = (i * 3) % 5;
  Module oh = op (reg.get (), "torch.nn.functional.one_hot");
  Args b;
  b.t (pos.get ());
  out = call (oh.get (), b, err);
  ASSERT_TRUE (out) << err.message ();
  NnTensor *y = nn_value_get_tensor (out.get ());
  ASSERT_EQ (y->shape.ndim, 2u);
  EXPECT_EQ (y->shape.dims[1], 5);
  EXPECT_EQ (y->dtype, NN_DTYPE_I64);
  EXPECT_EQ (nn_tensor_i64 (y)[1 * 5 + 3], 1);
  EXPECT_EQ (nn_tensor_i64 (y)[1 * 5 + 2], 0);
  Tensor meta (nn_tensor_new_meta (NN_DTYPE_I64, &s5));
  Args bm;
  bm.t (meta.get ());
  ValueRef inferred (nn_module_infer (oh.get (), bm.v.get (), nullptr, err.out ()));
  EXPECT_FALSE (inferred);
  EXPECT_TRUE (contains (err.message (), "depends on the values")) << err.message ();
  Args bn;
  bn.t (meta.get ()).i (4);
  inferred = ValueRef (nn_module_infer (oh.get (), bn.v.get (), nullptr, err.out ()));
  ASSERT_TRUE (inferred) << err.message ();
  NnShape want = shape ({ 5, 4 });
  EXPECT_TRUE (nn_shape_equal (&nn_value_get_tensor (inferred.get ())->shape, &want));
  Args neg;
  neg.t (cls.get ()).i (4);
  out = call (oh.get (), neg, err);
  EXPECT_FALSE (out);
  EXPECT_TRUE (contains (err.message (), "Class values must be non-negative")) << err.message ();
  Args f;
  f.t (x.get ()).i (4);
  out = call (oh.get (), f, err);
  EXPECT_FALSE (out);
  EXPECT_TRUE (contains (err.message (), "argument 'tensor'")) << err.message ();
  Args bad;
  bad.t (pos.get ()).i (-2);
  out = call (oh.get (), bad, err);
  EXPECT_FALSE (out);
  EXPECT_TRUE (contains (err.message (), "num_classes should be -1 or non-negative"))
      << err.message ();
}

TEST (OpsErrors, UnfoldAndFunctionalConvolutions)
{
  Registry reg = default_registry ();
  Error err;
  NnShape s = shape ({ 2, 3, 8 });
  Tensor meta (nn_tensor_new_meta (NN_DTYPE_F32, &s));
  Args u;
  u.t (meta.get ()).i (2).i (4).i (2);
  Module unfold = op (reg.get (), "Tensor.unfold");
  ValueRef out (nn_module_infer (unfold.get (), u.v.get (), nullptr, err.out ()));
  ASSERT_TRUE (out) << err.message ();
  NnShape want = shape ({ 2, 3, 3, 4 });
  EXPECT_TRUE (nn_shape_equal (&nn_value_get_tensor (out.get ())->shape, &want));
  Args bad_dim;
  bad_dim.t (meta.get ()).i (3).i (2).i (2);
  out = ValueRef (nn_module_infer (unfold.get (), bad_dim.v.get (), nullptr, err.out ()));
  EXPECT_FALSE (out);
  EXPECT_TRUE (contains (err.message (), "Dimension out of range")) << err.message ();

  // F.conv2d: float32 only, a weight of the right rank, a padding string
  // PyTorch knows.
  Tensor x = iota (NN_DTYPE_F32, { 1, 2, 5, 5 });
  Tensor w = iota (NN_DTYPE_F32, { 3, 2, 3, 3 });
  Tensor xd = iota (NN_DTYPE_F64, { 1, 2, 5, 5 });
  Module conv = op (reg.get (), "torch.nn.functional.conv2d");
  Args d;
  d.t (xd.get ()).t (w.get ());
  out = call (conv.get (), d, err);
  EXPECT_FALSE (out);
  EXPECT_TRUE (contains (err.message (), "argument 'input'")) << err.message ();
  EXPECT_TRUE (contains (err.message (), "F64")) << err.message ();
  Tensor w1 = iota (NN_DTYPE_F32, { 3, 2, 3 });
  Args r;
  r.t (x.get ()).t (w1.get ());
  out = call (conv.get (), r, err);
  EXPECT_FALSE (out);
  EXPECT_TRUE (contains (err.message (), "Expected 4-dimensional weight")) << err.message ();
  Args p;
  p.t (x.get ()).t (w.get ()).val (nn_value_new_none ()).i (1).s ("full");
  out = call (conv.get (), p, err);
  EXPECT_FALSE (out);
  EXPECT_TRUE (contains (err.message (), "Invalid padding string 'full'")) << err.message ();
  Args g;
  g.t (x.get ()).t (w.get ()).val (nn_value_new_none ()).i (1).i (0).i (1).i (2);
  out = call (conv.get (), g, err);
  EXPECT_FALSE (out);
  EXPECT_TRUE (contains (err.message (), "expected weight to be divisible by 2")) << err.message ();
  Args k;
  k.t (x.get ()).t (w.get ()).val (nn_value_new_none ()).i (1).i (0).i (3);
  out = call (conv.get (), k, err);
  EXPECT_FALSE (out);
  EXPECT_TRUE (contains (err.message (), "Kernel size can't be greater than actual input size"))
      << err.message ();
  Args st;
  st.t (x.get ()).t (w.get ()).val (nn_value_new_none ()).i (0);
  out = call (conv.get (), st, err);
  EXPECT_FALSE (out);
  EXPECT_TRUE (contains (err.message (), "stride must be positive")) << err.message ();
}

// F.conv3d and tensor_split: dtypes the binding refuses, sizes inferred
// on meta tensors, and nnkit's own messages where PyTorch's differ.
TEST (OpsErrors, Conv3dAndTensorSplit)
{
  Registry reg = default_registry ();
  Error err;
  Module conv = op (reg.get (), "torch.nn.functional.conv3d");
  NnShape xs = shape ({ 2, 4, 5, 6, 7 });
  Tensor xm (nn_tensor_new_meta (NN_DTYPE_F32, &xs));
  Tensor w = iota (NN_DTYPE_F32, { 6, 2, 3, 1, 3 });
  Args m;
  m.t (xm.get ()).t (w.get ()).val (nn_value_new_none ()).i (2).i (1).i (1).i (2);
  ValueRef out (nn_module_infer (conv.get (), m.v.get (), nullptr, err.out ()));
  ASSERT_TRUE (out) << err.message ();
  NnShape want = shape ({ 2, 6, 3, 4, 4 });
  EXPECT_TRUE (nn_shape_equal (&nn_value_get_tensor (out.get ())->shape, &want));
  Tensor xd = iota (NN_DTYPE_F64, { 1, 4, 5, 5, 5 });
  Args d;
  d.t (xd.get ()).t (w.get ());
  out = call (conv.get (), d, err);
  EXPECT_FALSE (out);
  EXPECT_TRUE (contains (err.message (), "argument 'input'")) << err.message ();
  EXPECT_TRUE (contains (err.message (), "F64")) << err.message ();
  Tensor x = iota (NN_DTYPE_F32, { 1, 4, 5, 5, 5 });
  Args p;
  p.t (x.get ()).t (w.get ()).val (nn_value_new_none ()).i (1).s ("full");
  out = call (conv.get (), p, err);
  EXPECT_FALSE (out);
  EXPECT_TRUE (contains (err.message (), "Invalid padding string 'full'")) << err.message ();
  NnValue *two = nn_value_new_list ();
  nn_value_append (two, nn_value_new_int (1));
  nn_value_append (two, nn_value_new_int (1));
  Args c;
  c.t (x.get ()).t (w.get ()).val (nn_value_new_none ()).val (two);
  out = call (conv.get (), c, err);
  EXPECT_FALSE (out);
  EXPECT_TRUE (contains (err.message (), "argument 'stride': expected 3 ints, found 2"))
      << err.message ();
  Args st;
  st.t (x.get ()).t (w.get ()).val (nn_value_new_none ()).i (1).i (0).i (0);
  out = call (conv.get (), st, err);
  EXPECT_FALSE (out);
  EXPECT_TRUE (contains (err.message (), "dilation must be positive")) << err.message ();

  Module split = op (reg.get (), "torch.tensor_split");
  NnShape ss = shape ({ 3, 7 });
  Tensor sm (nn_tensor_new_meta (NN_DTYPE_I64, &ss));
  Args sec;
  sec.t (sm.get ()).i (3).i (-1);
  out = ValueRef (nn_module_infer (split.get (), sec.v.get (), nullptr, err.out ()));
  ASSERT_TRUE (out) << err.message ();
  ASSERT_EQ (nn_value_n_items (out.get ()), 3u);
  const gint64 widths[] = { 3, 2, 2 };
  for (guint i = 0; i < 3; i++) {
    NnShape piece = shape ({ 3, widths[i] });
    EXPECT_TRUE (nn_shape_equal (&nn_value_get_tensor (nn_value_item (out.get (), i))->shape,
                                 &piece)) << i;
  }
  NnValue *names = nn_value_new_list ();
  nn_value_append (names, nn_value_new_string ("a"));
  Tensor sv = iota (NN_DTYPE_I64, { 3, 7 });
  Args bad;
  bad.t (sv.get ()).val (names);
  out = call (split.get (), bad, err);
  EXPECT_FALSE (out);
  EXPECT_TRUE (contains (err.message (), "indices")) << err.message ();
}

// scatter's reduce= and a number given to scatter_add are nnkit's own
// refusals (PyTorch's reduce modes are not implemented here).
TEST (OpsErrors, ScatterRefusesReduceAndNumbersToAdd)
{
  Registry reg = default_registry ();
  Error err;
  Tensor x = iota (NN_DTYPE_F32, { 2, 3 });
  NnShape is = shape ({ 1, 3 });
  Tensor idx (nn_tensor_new (NN_DTYPE_I64, &is));
  Args a;
  a.t (x.get ()).i (0).t (idx.get ()).t (x.get ());
  ValueRef kw (nn_value_new_dict ());
  nn_value_dict_set (kw.get (), "reduce", nn_value_new_string ("add"));
  ValueRef out = call (op (reg.get (), "Tensor.scatter").get (), a, err, kw.get ());
  EXPECT_FALSE (out);
  EXPECT_TRUE (contains (err.message (), "the reduce argument is not supported")) << err.message ();
  Args n;
  n.t (x.get ()).i (0).t (idx.get ()).f (1.0);
  out = call (op (reg.get (), "scatter_add").get (), n, err);
  EXPECT_FALSE (out);
  EXPECT_TRUE (contains (err.message (), "argument 'src'")) << err.message ();
}
