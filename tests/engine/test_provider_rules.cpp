// Tests for core/provider_rules.c: NN_PROVIDERS syntax and the order in
// which providers of one type are tried.
#include "engine-test.h"

extern "C" {
#include "nn-engine-private.h"
}

namespace {

struct Rules {
  NnProviderRules *r = nullptr;
  std::string why;
  explicit Rules (const char *text) {
    char *w = nullptr;
    r = nn_provider_rules_parse (text, &w);
    why = w ? w : "";
    g_free (w);
  }
  ~Rules () { nn_provider_rules_free (r); }
};

struct P { const char *plugin; int rank; };

// The plugins in trial order, "!" marking excluded ones, "*" selected.
std::string
order (const char *rules_text, const char *type, std::vector<P> ps)
{
  Rules rules (rules_text);
  EXPECT_NE (nullptr, rules.r) << rules.why;
  std::vector<NnProviderCand> c (ps.size ());
  for (size_t i = 0; i < ps.size (); i++) {
    c[i].plugin = ps[i].plugin;
    c[i].rank = nn_provider_effective_rank (ps[i].rank);
    c[i].load_order = (guint) i;
  }
  nn_provider_rules_order (rules.r, type, c.data (), (guint) c.size ());
  std::string s;
  for (auto &x : c)
    s += std::string (s.empty () ? "" : " ") + x.plugin + (x.excluded ? "!" : "")
         + (x.selected ? "*" : "");
  return s;
}

} // namespace

TEST (ProviderRules, ParsesAndNormalises)
{
  Rules r (" Conv2d = dnnl , -mkl,,Linear=-dnnl, dnnl ");
  ASSERT_NE (nullptr, r.r) << r.why;
  EXPECT_STREQ ("Conv2d=dnnl,-mkl,Linear=-dnnl,dnnl", r.r->text);
  ASSERT_EQ (4u, r.r->rules->len);
  auto *first = (NnProviderRule *) g_ptr_array_index (r.r->rules, 0);
  EXPECT_STREQ ("Conv2d", first->type);
  EXPECT_STREQ ("dnnl", first->plugin);
  EXPECT_FALSE (first->exclude);
  auto *second = (NnProviderRule *) g_ptr_array_index (r.r->rules, 1);
  EXPECT_EQ (nullptr, second->type);
  EXPECT_TRUE (second->exclude);
  Rules empty ("");
  ASSERT_NE (nullptr, empty.r);
  EXPECT_EQ (0u, empty.r->rules->len);
  Rules null (nullptr);
  ASSERT_NE (nullptr, null.r);
}

TEST (ProviderRules, RejectsMalformedRulesByName)
{
  for (const char *bad : { "Conv2d=", "=dnnl", "-", "Conv2d=-", "a b", "Conv2d=dn/nl", "x=y=z" }) {
    Rules r ((std::string ("Linear=conv,") + bad).c_str ());
    EXPECT_EQ (nullptr, r.r) << bad;
    EXPECT_NE (std::string::npos, r.why.find ("bad provider rule")) << r.why;
    EXPECT_NE (std::string::npos, r.why.find ("[TYPE=][-]PLUGIN")) << r.why;
  }
  Rules r ("Conv2d=ok,Conv2d=dn/nl");
  EXPECT_NE (std::string::npos, r.why.find ("'Conv2d=dn/nl'")) << r.why;
}

TEST (ProviderRules, RankThenLoadOrder)
{
  // 0 reads as PRIMARY (256): above SECONDARY, below a faster provider.
  EXPECT_EQ ("dnnl conv slow", order ("", "Conv2d", { { "conv", 0 }, { "slow", NN_RANK_SECONDARY },
                                                      { "dnnl", NN_RANK_PRIMARY + 64 } }));
  EXPECT_EQ ("a b", order ("", "X", { { "a", NN_RANK_MARGINAL }, { "b", NN_RANK_MARGINAL } }));
  EXPECT_EQ (NN_RANK_PRIMARY, nn_provider_effective_rank (0));
  EXPECT_EQ (NN_RANK_MARGINAL, nn_provider_effective_rank (NN_RANK_MARGINAL));
}

TEST (ProviderRules, SelectionComesFirstInRuleOrder)
{
  std::vector<P> ps = { { "conv", 0 }, { "dnnl", 320 }, { "mine", 64 } };
  EXPECT_EQ ("conv* dnnl mine", order ("Conv2d=conv", "Conv2d", ps));
  EXPECT_EQ ("mine* conv* dnnl", order ("Conv2d=mine,conv", "Conv2d", ps));
  // A rule for another type changes nothing here.
  EXPECT_EQ ("dnnl conv mine", order ("Linear=conv", "Conv2d", ps));
}

TEST (ProviderRules, ExclusionsGoLastAndBeatSelections)
{
  std::vector<P> ps = { { "conv", 0 }, { "dnnl", 320 } };
  EXPECT_EQ ("conv dnnl!", order ("-dnnl", "Conv2d", ps));
  EXPECT_EQ ("conv dnnl!", order ("Conv2d=-dnnl", "Conv2d", ps));
  EXPECT_EQ ("dnnl conv", order ("Linear=-dnnl", "Conv2d", ps));
  EXPECT_EQ ("conv dnnl!", order ("dnnl,-dnnl", "Conv2d", ps));
  EXPECT_EQ ("dnnl! conv!", order ("-dnnl,-conv", "Conv2d", ps));
}

TEST (ProviderRules, RankNoneOnlyWhenSelected)
{
  std::vector<P> ps = { { "conv", 0 }, { "exp", NN_RANK_NONE } };
  EXPECT_EQ ("conv exp!", order ("", "Conv2d", ps));
  EXPECT_EQ ("exp* conv", order ("Conv2d=exp", "Conv2d", ps));
  EXPECT_EQ ("exp* conv", order ("exp", "Conv2d", ps));
}
