#include "boot/cmdline.h"

#include <arpa/inet.h>
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

TEST(GuestIpv4, TheAddressBeforeTheSeparatorInNetworkOrder) {
    const uint32_t expected = htonl(0x0a4d0005);  // 10.77.0.5
    EXPECT_EQ(guest_ipv4("kiln.ip=10.77.0.5/16 kiln.gw=10.77.0.1 -- /bin/app"), expected);
    EXPECT_EQ(guest_ipv4("env.A=1 kiln.ip=10.77.0.5"), expected);
    EXPECT_EQ(guest_ipv4(""), 0u);
    EXPECT_EQ(guest_ipv4("-- /bin/app kiln.ip=10.77.0.5"), 0u);       // the app's argument
    EXPECT_EQ(guest_ipv4("xkiln.ip=10.77.0.5 -- /bin/app"), 0u);      // another parameter
    EXPECT_EQ(guest_ipv4("kiln.ip=10.77.0.500/24 -- /bin/app"), 0u);  // not an address
}

}  // namespace
}  // namespace kiln::vmm
