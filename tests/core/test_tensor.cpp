// Tests for core/tensor.c: shapes and reference-counted tensors.
#include "nn-test.h"

using namespace nntest;

TEST (Shape, ParsesCommaListAndBrackets)
{
  NnShape s;
  Error e;
  ASSERT_TRUE (nn_shape_parse ("1,3,224,224", &s, e.out ()));
  EXPECT_EQ (take (nn_shape_to_string (&s)), "[1, 3, 224, 224]");
  ASSERT_TRUE (nn_shape_parse (" [2, 5] ", &s, e.out ()));
  EXPECT_EQ (s.ndim, 2u);
  EXPECT_EQ (nn_shape_numel (&s), 10);
}

TEST (Shape, RejectsBadText)
{
  NnShape s;
  Error e;
  EXPECT_FALSE (nn_shape_parse ("1,x,3", &s, e.out ()));
  EXPECT_TRUE (e.matches (NN_SHAPE_ERROR, NN_SHAPE_ERROR_INVALID));
  EXPECT_NE (e.message ().find ("'x'"), std::string::npos) << e.message ();
  EXPECT_FALSE (nn_shape_parse ("1,0", &s, e.out ()));
  EXPECT_NE (e.message ().find ("'0'"), std::string::npos);
  EXPECT_FALSE (nn_shape_parse ("1,2,3,4,5,6,7,8,9", &s, e.out ()));
  EXPECT_NE (e.message ().find ("more than 8"), std::string::npos);
  EXPECT_FALSE (nn_shape_parse ("", &s, e.out ()));
}

TEST (Tensor, NewIsZeroedAndRefcounted)
{
  NnShape s = shape ({2, 3});
  NnTensor *t = nn_tensor_new (NN_DTYPE_F32, &s);
  ASSERT_NE (t, nullptr);
  EXPECT_EQ (nn_tensor_numel (t), 6);
  EXPECT_EQ (nn_tensor_nbytes (t), 24u);
  for (int i = 0; i < 6; i++)
    EXPECT_EQ (nn_tensor_f32 (t)[i], 0.0f);
  nn_tensor_ref (t);
  nn_tensor_unref (t);
  nn_tensor_unref (t);
  NnShape big = shape ({G_MAXINT64 / 2, 4});
  EXPECT_EQ (nn_tensor_new (NN_DTYPE_F32, &big), nullptr);
}

TEST (Tensor, ReshapeSharesStorageAndCopyDoesNot)
{
  NnShape s = shape ({2, 3});
  Tensor t (nn_tensor_new (NN_DTYPE_F32, &s));
  nn_tensor_f32 (t.get ())[4] = 7.0f;
  NnShape flat = shape ({6});
  Tensor r (nn_tensor_reshape (t.get (), &flat));
  ASSERT_TRUE (r);
  EXPECT_EQ (r->data, t->data);
  NnShape wrong = shape ({5});
  EXPECT_EQ (nn_tensor_reshape (t.get (), &wrong), nullptr);
  Tensor c (nn_tensor_copy (t.get ()));
  EXPECT_NE (c->data, t->data);
  EXPECT_EQ (nn_tensor_f32 (c.get ())[4], 7.0f);
  Tensor i64 (nn_tensor_new (NN_DTYPE_I64, &s));
  EXPECT_EQ (nn_tensor_f32 (i64.get ()), nullptr);
  EXPECT_EQ (nn_tensor_nbytes (i64.get ()), 48u);
}

static int released;
static void release_counter (gpointer p) { released += GPOINTER_TO_INT (p); }

TEST (Tensor, BorrowedReleasesOwnerOnce)
{
  float data[4] = { 1, 2, 3, 4 };
  NnShape s = shape ({4});
  released = 0;
  NnTensor *t = nn_tensor_new_borrowed (NN_DTYPE_F32, &s, data, TRUE, release_counter,
                                        GINT_TO_POINTER (1));
  EXPECT_TRUE (nn_tensor_is_read_only (t));
  EXPECT_EQ (nn_tensor_f32 (t)[2], 3.0f);
  nn_tensor_unref (t);
  EXPECT_EQ (released, 1);
}
