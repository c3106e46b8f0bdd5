// Kraftfile parsing: what Kiln reads, and errors that name the file, the line and the key.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "images/kraftfile.h"

namespace kiln::images {
namespace {
namespace fs = std::filesystem;

class KraftfileTest : public ::testing::Test {
  protected:
    void SetUp() override {
        dir_ = fs::temp_directory_path() / ("kiln-kraftfile-" + std::to_string(::getpid()));
        fs::create_directories(dir_ / "app" / "rootfs");
    }
    void TearDown() override { fs::remove_all(dir_); }

    std::string path() const { return (dir_ / "app" / "Kraftfile").string(); }
    Kraftfile parse(const std::string& text) const { return parse_kraftfile(text, path()); }
    // The error parsing `text` gives, without the file name's prefix.
    std::string error(const std::string& text) const {
        try {
            parse(text);
        } catch (const KraftfileError& e) {
            const std::string message = e.what();
            EXPECT_EQ(message.rfind(path() + ":", 0), 0u) << "the error does not start with the file: " << message;
            return message.substr(path().size() + 1);
        }
        ADD_FAILURE() << "no error for:\n" << text;
        return "";
    }

    fs::path dir_;
};

TEST_F(KraftfileTest, ReadsEveryKeyKilnSupports) {
    const Kraftfile k = parse(R"(spec: v0.6
name: web
cmd: ["/bin/server", "8080", "/www"]
env:
  - GREETING=hi there
  - EMPTY=
rootfs: ./rootfs
runtime: kiln
targets:
  - kiln/x86_64
labels:
  cloud.unikraft.v1.instances/scale_to_zero.policy: "on"
)");
    EXPECT_EQ(k.spec, "v0.6");
    EXPECT_EQ(k.name, "web");
    EXPECT_EQ(k.cmd, (std::vector<std::string>{"/bin/server", "8080", "/www"}));
    ASSERT_EQ(k.env.size(), 2u);
    EXPECT_EQ(k.env[0], (std::pair<std::string, std::string>{"GREETING", "hi there"}));
    EXPECT_EQ(k.env[1].second, "");
    EXPECT_EQ(k.rootfs, (dir_ / "app" / "rootfs").string());
    EXPECT_EQ(k.labels.at("cloud.unikraft.v1.instances/scale_to_zero.policy"), "on");
}

TEST_F(KraftfileTest, TargetsNameThePlatformsTheImageRunsOn) {
    using List = std::vector<std::string>;
    EXPECT_EQ(parse("spec: v0.6\n").platforms, List{});  // none named: either
    EXPECT_EQ(parse("spec: v0.6\ntargets: [kiln/x86_64]\n").platforms, (List{"kvm", "proc"}));
    EXPECT_EQ(parse("spec: v0.6\ntargets: [fc/x86_64, qemu/x86_64]\n").platforms, List{"kvm"});
    EXPECT_EQ(parse("spec: v0.6\ntargets:\n  - plat: linuxu\n    arch: x86_64\n").platforms, List{"proc"});
    EXPECT_EQ(parse("spec: v0.6\ntargets: [linuxu/x86_64, qemu/x86_64]\n").platforms, (List{"proc", "kvm"}));
}

TEST_F(KraftfileTest, CommandStringsSplitLikeAShell) {
    EXPECT_EQ(parse("spec: v0.6\ncmd: /bin/app \"a b\" 'c d' e\\ f\n").cmd,
              (std::vector<std::string>{"/bin/app", "a b", "c d", "e f"}));
    EXPECT_EQ(parse("spec: v0.6\nenv: {A: 1, B: two}\n").env.size(), 2u);
    EXPECT_EQ(error("spec: v0.6\ncmd: /bin/app \"open\n"), "2: cmd: unterminated \" quote");
}

TEST_F(KraftfileTest, TheNameDefaultsToTheDirectory) { EXPECT_EQ(parse("spec: v0.6\n").name, "app"); }

TEST_F(KraftfileTest, UnikraftRuntimesThatLoadElfFilesAreKilnsKernel) {
    for (const char* runtime : {"kiln", "unikraft.org/base:latest", "base-compat:latest", "unikraft.org/base"})
        EXPECT_NO_THROW(parse(std::string("spec: v0.6\nruntime: ") + runtime + "\n")) << runtime;
}

TEST_F(KraftfileTest, ErrorsNameTheLineAndTheKey) {
    EXPECT_EQ(error("spec: v0.6\nname: web\ncmd: {a: b}\n"), "3: cmd: expected a string or a list of strings");
    EXPECT_EQ(error("spec: v0.6\n\n\nenv:\n  - GOOD=1\n  - BAD\n"), "6: env: 'BAD': expected NAME=VALUE");
    EXPECT_EQ(error("spec: v0.6\nenv:\n  - 1X=2\n"), "3: env: '1X' is not a variable name");
    EXPECT_EQ(error("spec: v0.5\n"), "1: spec: version 'v0.5' is not supported; Kiln reads v0.6");
    EXPECT_EQ(error("name: web\n"), "1: spec: missing; a Kraftfile starts with 'spec: v0.6'");
    EXPECT_EQ(error("spec: v0.6\nname: Web Server\n"),
              "2: name: 'Web Server' is not a valid name (lower-case letters, digits, '.', '_', '-'; at most 63)");
    EXPECT_EQ(error("spec: v0.6\nname: a\nname: b\n"), "3: name: appears twice");
    EXPECT_NE(error("spec: v0.6\nflavour: mint\n").find("2: flavour: unknown key; Kiln reads spec, name"),
              std::string::npos);
    EXPECT_EQ(error("- a\n- b\n"), "1: a Kraftfile is a mapping of keys (spec, name, cmd, ...)");
    EXPECT_EQ(error("spec: v0.6\ncmd: [unclosed\n").substr(0, 19), "3: not valid YAML: ");
}

TEST_F(KraftfileTest, WhatKilnCannotHonourIsRefusedNotIgnored) {
    EXPECT_NE(error("spec: v0.6\nunikraft: stable\n").find("2: unikraft: Kiln does not build Unikraft"),
              std::string::npos);
    EXPECT_NE(error("spec: v0.6\nruntime: unikraft.org/nginx:1.15\n").find("2: runtime: 'unikraft.org/nginx:1.15'"),
              std::string::npos);
    EXPECT_EQ(error("spec: v0.6\ntargets:\n  - kiln/x86_64\n  - xen/x86_64\n"),
              "4: targets: 'xen/x86_64' is not a Kiln target: kiln/x86_64 (either platform), fc/x86_64 or qemu/x86_64 "
              "(a microVM on KVM), linuxu/x86_64 (a Linux process)");
    EXPECT_NE(error("spec: v0.6\ntargets:\n  - plat: fc\n    arch: arm64\n").find("3: targets: 'fc/arm64'"),
              std::string::npos);
    EXPECT_EQ(error("spec: v0.6\nkconfig:\n  - CONFIG_LIBPOSIX_SOCKET=y\n"),
              "3: kconfig: 'CONFIG_LIBPOSIX_SOCKET' is not an option of the Kiln kernel (it has none: every "
              "micro-library is built in)");
    EXPECT_NE(
        error("spec: v0.6\ntargets:\n  - plat: kiln\n    kconfig: {CONFIG_X: y}\n").find("4: kconfig: 'CONFIG_X'"),
        std::string::npos);
    EXPECT_NE(error("spec: v0.6\nvolumes: [./a:/b]\n").find("2: volumes: "), std::string::npos);
}

TEST_F(KraftfileTest, RootfsMustExistAndMayBeADockerfile) {
    EXPECT_EQ(error("spec: v0.6\nrootfs: ./missing\n"),
              "2: rootfs: " + (dir_ / "app" / "missing").string() + " does not exist");
    std::ofstream(dir_ / "app" / "Dockerfile") << "FROM scratch\n";
    EXPECT_EQ(parse("spec: v0.6\nrootfs: ./Dockerfile\n").rootfs, (dir_ / "app" / "Dockerfile").string());
    EXPECT_EQ(parse("spec: v0.6\nrootfs: {source: ./rootfs, format: cpio}\n").rootfs,
              (dir_ / "app" / "rootfs").string());
}

TEST_F(KraftfileTest, ATemplateIsABaseTheFileOverrides) {
    fs::create_directories(dir_ / "base" / "files");
    std::ofstream(dir_ / "base" / "Kraftfile") << "spec: v0.6\nname: base\ncmd: /bin/base\nrootfs: ./files\n"
                                                  "env: [FROM_BASE=1]\n";
    const Kraftfile k = parse("spec: v0.6\ntemplate: ../base\ncmd: /bin/mine\n");
    EXPECT_EQ(k.cmd, std::vector<std::string>{"/bin/mine"});
    EXPECT_EQ(k.name, "base");
    EXPECT_EQ(k.rootfs, (dir_ / "base" / "files").string());  // relative to the template's own file
    EXPECT_EQ(k.env.at(0).first, "FROM_BASE");

    std::ofstream(dir_ / "base" / "Kraftfile") << "spec: v0.6\ncmd: 42: x\n";
    try {
        parse("spec: v0.6\ntemplate: ../base\n");
        FAIL();
    } catch (const KraftfileError& e) {  // the template's own file and line
        EXPECT_EQ(std::string(e.what()).rfind((dir_ / "base" / "Kraftfile").string() + ":2:", 0), 0u) << e.what();
    }
    EXPECT_NE(error("spec: v0.6\ntemplate: app/elfloader:stable\n").find("2: template: "), std::string::npos);
}

TEST(KraftfileNames, ImageNames) {
    EXPECT_TRUE(valid_name("hello"));
    EXPECT_TRUE(valid_name("my-app.v2_x"));
    EXPECT_FALSE(valid_name(""));
    EXPECT_FALSE(valid_name("Hello"));
    EXPECT_FALSE(valid_name("-x"));
    EXPECT_FALSE(valid_name(std::string(64, 'a')));
}

}  // namespace
}  // namespace kiln::images
