// The kernel's own command-line parser, built for the host.
#include "lib/cmdline.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>

namespace kiln {
namespace {

std::unique_ptr<Cmdline> parse(const std::string& text) {
    auto c = std::make_unique<Cmdline>();
    c->parse({text.data(), text.size()});
    return c;
}

TEST(KernelCmdline, ParsesParametersAndFlags) {
    auto c = parse("kiln.vmm=kiln-vmm kiln.tsc_khz=2596000 kiln.selftest quiet=0");
    ASSERT_EQ(c->error(), Cmdline::Error::kNone);
    EXPECT_EQ(c->param_count(), 4u);
    uint64_t khz = 0;
    EXPECT_TRUE(c->number("kiln.tsc_khz", khz));
    EXPECT_EQ(khz, 2596000u);
    EXPECT_TRUE(c->flag("kiln.selftest"));
    EXPECT_FALSE(c->flag("quiet"));
    EXPECT_FALSE(c->flag("absent"));
    EXPECT_TRUE(c->has("kiln.vmm"));
    EXPECT_FALSE(c->has_app());
}

TEST(KernelCmdline, SplitsTheApplicationAfterTheSeparator) {
    auto c = parse("env.PORT=8080 -- /bin/server --port 8080 -- tail");
    ASSERT_TRUE(c->has_app());
    EXPECT_EQ(c->param_count(), 1u);
    ASSERT_EQ(c->app_argc(), 5u);
    EXPECT_STREQ(c->app_arg(0), "/bin/server");
    EXPECT_STREQ(c->app_arg(3), "--");
    EXPECT_STREQ(c->app_arg(4), "tail");
    EXPECT_FALSE(c->has("--port"));  // words after `--` are not parameters
}

TEST(KernelCmdline, UnquotesWordsWithSpacesAndEscapes) {
    auto c = parse("env.GREETING=\"hello there\" -- /bin/echo \"two words\" \"say \\\"hi\\\"\" \"--\"");
    StringView value;
    ASSERT_TRUE(c->find("env.GREETING", value));
    EXPECT_EQ(std::string(value.data(), value.size()), "hello there");
    ASSERT_EQ(c->app_argc(), 4u);
    EXPECT_STREQ(c->app_arg(1), "two words");
    EXPECT_STREQ(c->app_arg(2), "say \"hi\"");
    EXPECT_STREQ(c->app_arg(3), "--");
}

TEST(KernelCmdline, RefusesBadInputCleanly) {
    EXPECT_EQ(parse("a=\"open")->error(), Cmdline::Error::kUnterminatedQuote);
    EXPECT_EQ(parse(std::string(5000, 'x'))->error(), Cmdline::Error::kTooLong);
    std::string many;
    for (int i = 0; i < 300; ++i) many += "a ";
    EXPECT_EQ(parse(many)->error(), Cmdline::Error::kTooManyTokens);
    auto c = parse("a=\"open");
    EXPECT_EQ(c->param_count(), 0u);
    EXPECT_STRNE(Cmdline::describe(Cmdline::Error::kTooLong), "");
}

TEST(KernelCmdline, HandlesEmptyAndBlankLines) {
    EXPECT_EQ(parse("")->param_count(), 0u);
    EXPECT_EQ(parse("   \t ")->param_count(), 0u);
    auto c = parse("--");
    EXPECT_TRUE(c->has_app());
    EXPECT_EQ(c->app_argc(), 0u);
}

TEST(KernelCmdline, ParsesNumbers) {
    uint64_t v = 0;
    EXPECT_TRUE(parse_u64("0x10", v));
    EXPECT_EQ(v, 16u);
    EXPECT_TRUE(parse_u64("18446744073709551615", v));
    EXPECT_FALSE(parse_u64("18446744073709551616", v));
    EXPECT_FALSE(parse_u64("12a", v));
    EXPECT_FALSE(parse_u64("", v));
    EXPECT_FALSE(parse_u64("0x", v));
}

}  // namespace
}  // namespace kiln
