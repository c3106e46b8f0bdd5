#include "boot/cmdline.h"

#include <gtest/gtest.h>

#include "util/error.h"

namespace kiln::vmm {
namespace {

const std::vector<std::string> kParams = {"kiln.vmm=kiln-vmm", "kiln.tsc_khz=2000000"};

TEST(ComposeCmdline, AppendsWhenThereIsNoSeparator) {
    EXPECT_EQ(compose_cmdline("", kParams), "kiln.vmm=kiln-vmm kiln.tsc_khz=2000000");
    EXPECT_EQ(compose_cmdline("kiln.selftest=1", kParams), "kiln.selftest=1 kiln.vmm=kiln-vmm kiln.tsc_khz=2000000");
}

TEST(ComposeCmdline, InsertsBeforeTheSeparatorNeverAfter) {
    EXPECT_EQ(compose_cmdline("a=1 -- /bin/app --flag -- x", kParams),
              "a=1 kiln.vmm=kiln-vmm kiln.tsc_khz=2000000 -- /bin/app --flag -- x");
    EXPECT_EQ(compose_cmdline("-- /bin/app", kParams), "kiln.vmm=kiln-vmm kiln.tsc_khz=2000000 -- /bin/app");
    EXPECT_EQ(compose_cmdline("  a=1   --   /bin/app", kParams),
              "  a=1 kiln.vmm=kiln-vmm kiln.tsc_khz=2000000 --   /bin/app");
}

TEST(ComposeCmdline, IgnoresSeparatorsInsideQuotesOrWords) {
    EXPECT_EQ(compose_cmdline("env.X=\"a -- b\" --x -- app", kParams),
              "env.X=\"a -- b\" --x kiln.vmm=kiln-vmm kiln.tsc_khz=2000000 -- app");
    EXPECT_EQ(compose_cmdline("\"--\"", kParams), "\"--\" kiln.vmm=kiln-vmm kiln.tsc_khz=2000000");
    EXPECT_EQ(compose_cmdline("env.X=\"say \\\"hi\\\" -- \" -- app", kParams),
              "env.X=\"say \\\"hi\\\" -- \" kiln.vmm=kiln-vmm kiln.tsc_khz=2000000 -- app");
}

TEST(ComposeCmdline, RefusesAnUnterminatedQuote) { EXPECT_THROW(compose_cmdline("env.X=\"open", kParams), VmmError); }

}  // namespace
}  // namespace kiln::vmm
