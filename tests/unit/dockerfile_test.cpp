// Dockerfiles: read as Docker reads them, built from scratch out of a context directory, every
// unsupported instruction or form refused with its file and line, and an image built from one.
#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "fake_elf.h"
#include "images/dockerfile.h"
#include "images/image_store.h"
#include "store/sqlite.h"

namespace kiln::images {
namespace {
namespace fs = std::filesystem;

using kiln::testing::fake_elf;

class DockerfileTest : public ::testing::Test {
  protected:
    void SetUp() override {
        dir_ = fs::temp_directory_path() / ("kiln-dockerfile-" + std::to_string(::getpid()));
        fs::create_directories(dir_ / "ctx" / "www" / "css");
        write("ctx/server", fake_elf());
        ::chmod((dir_ / "ctx" / "server").c_str(), 0755);
        write("ctx/www/index.html", "hello\n");
        write("ctx/www/css/site.css", "body {}\n");
        write("ctx/a.conf", "a\n");
        write("ctx/b.conf", "b\n");
        write("outside", "secret\n");
        fs::create_symlink(dir_ / "outside", dir_ / "ctx" / "escape");
    }
    void TearDown() override { fs::remove_all(dir_); }

    void write(const std::string& relative, const std::string& bytes) {
        std::ofstream(dir_ / relative, std::ios::binary) << bytes;
    }
    DockerBuild build(const std::string& text, const std::map<std::string, std::string>& args = {}) {
        write("ctx/Dockerfile", text);
        return build_dockerfile((dir_ / "ctx" / "Dockerfile").string(), (dir_ / "ctx").string(), args);
    }
    // The error's text after "PATH:", or "" if it built.
    std::string error(const std::string& text) {
        try {
            build(text);
        } catch (const DockerfileError& e) {
            const std::string what = e.what();
            const std::string prefix = (dir_ / "ctx" / "Dockerfile").string() + ":";
            return what.rfind(prefix, 0) == 0 ? what.substr(prefix.size()) : what;
        }
        return "";
    }
    static const RootfsEntry* entry(const DockerBuild& b, const std::string& path) {
        for (const auto& e : b.entries)
            if (e.path == path) return &e;
        return nullptr;
    }
    fs::path dir_;
};

TEST(DockerfileParse, CommentsContinuationsDirectivesAndBothForms) {
    const auto list = parse_dockerfile(
        "# syntax=docker/dockerfile:1\n"
        "# escape=\\\n"
        "\n"
        "from scratch\n"
        "# a comment\n"
        "COPY --chmod=755 a \\\n"
        "  # a comment inside the instruction\n"
        "  b /c/\n"
        "CMD [\"/server\", \"8080\"]\n"
        "ENTRYPOINT /server --flag\n"
        "CMD [1, 2]\n",
        "Dockerfile");
    ASSERT_EQ(list.size(), 5u);
    EXPECT_EQ(list[0].keyword, "FROM");
    EXPECT_EQ(list[0].line, 4);
    EXPECT_EQ(list[1].keyword, "COPY");
    EXPECT_EQ(list[1].line, 6);
    ASSERT_EQ(list[1].flags.size(), 1u);
    EXPECT_EQ(list[1].flags[0], (std::pair<std::string, std::string>{"chmod", "755"}));
    EXPECT_EQ(list[1].text, "a  b /c/");
    EXPECT_TRUE(list[2].json_form);
    EXPECT_EQ(list[2].json, (std::vector<std::string>{"/server", "8080"}));
    EXPECT_FALSE(list[3].json_form);
    EXPECT_EQ(list[3].text, "/server --flag");
    EXPECT_FALSE(list[4].json_form);  // not strings: the shell form, as Docker takes it
}

TEST(DockerfileParse, RefusalsNameTheInstructionAndTheLine) {
    auto error = [](const std::string& text) {
        try {
            parse_dockerfile(text, "Dockerfile");
        } catch (const DockerfileError& e) {
            return std::string(e.what());
        }
        return std::string();
    };
    EXPECT_NE(error("FROM scratch\nONBUILD RUN make\n").find("Dockerfile:2: ONBUILD is not supported: "),
              std::string::npos);
    EXPECT_NE(error("FROM scratch\n\nHEALTHCHECK CMD true\n").find("Dockerfile:3: HEALTHCHECK is not supported"),
              std::string::npos);
    EXPECT_EQ(error("FROM scratch\nCOPYY a b\n"), "Dockerfile:2: 'COPYY' is not a Dockerfile instruction");
    EXPECT_EQ(error("# escape=`\nFROM scratch\n"),
              "Dockerfile:1: the escape directive: Kiln reads only the default escape character, \\");
    EXPECT_EQ(error("FROM scratch\nCOPY --chmod a b\n"), "Dockerfile:2: COPY --chmod: expected --name=value");
    EXPECT_EQ(error(std::string("FROM scratch\nCOPY a\0 b\n", 23)), "Dockerfile:2: a NUL byte: not a text file");
}

TEST_F(DockerfileTest, BuildsFromScratchWithCopyAddEnvArgWorkdirAndCommands) {
    const DockerBuild b = build(
        "ARG PORT=80\n"
        "FROM scratch\n"
        "ARG PORT\n"  // a global ARG inside a stage: declared again, as Docker wants
        "ARG ROOT=/www\n"
        "ENV GREETING=\"hello there\" LEVEL=${LOG:-info}\n"
        "ENV LEGACY a value with spaces\n"
        "COPY server /bin/\n"
        "COPY www $ROOT\n"
        "COPY --chmod=600 *.conf /etc/app/\n"
        "WORKDIR /srv\n"
        "WORKDIR data\n"
        "COPY [\"a.conf\", \"here.conf\"]\n"
        "LABEL org.example.name=web \"quoted key\"=\"v 1\"\n"
        "EXPOSE ${PORT} 53/udp\n"
        "USER root\n"
        "ENTRYPOINT [\"/bin/server\"]\n"
        "CMD [\"--port\", \"8080\"]\n",
        {{"PORT", "8080"}});
    ASSERT_NE(entry(b, "/bin/server"), nullptr);
    EXPECT_EQ(entry(b, "/bin/server")->mode, S_IFREG | 0755u);
    EXPECT_EQ(entry(b, "/bin/server")->data, fake_elf());
    ASSERT_NE(entry(b, "/www/index.html"), nullptr);  // a directory's contents, under the destination
    EXPECT_EQ(entry(b, "/www/css/site.css")->data, "body {}\n");
    EXPECT_EQ(entry(b, "/etc/app/a.conf")->mode, S_IFREG | 0600u);
    EXPECT_EQ(entry(b, "/etc/app/b.conf")->data, "b\n");
    EXPECT_EQ(entry(b, "/srv/data/here.conf")->data, "a\n");  // relative to WORKDIR
    EXPECT_EQ(entry(b, "/srv/data")->mode, S_IFDIR | 0755u);
    EXPECT_EQ(entry(b, "/"), nullptr);
    for (size_t i = 1; i < b.entries.size(); ++i) EXPECT_LT(b.entries[i - 1].path, b.entries[i].path);
    using Env = std::vector<std::pair<std::string, std::string>>;
    EXPECT_EQ(b.config.env, (Env{{"GREETING", "hello there"}, {"LEVEL", "info"}, {"LEGACY", "a value with spaces"}}));
    EXPECT_EQ(b.config.workdir, "/srv/data");
    EXPECT_EQ(b.config.labels.at("org.example.name"), "web");
    EXPECT_EQ(b.config.labels.at("quoted key"), "v 1");
    EXPECT_EQ(b.config.exposed, (std::vector<std::string>{"8080/tcp", "53/udp"}));  // the build arg's port
    EXPECT_EQ(b.config.argv(), (std::vector<std::string>{"/bin/server", "--port", "8080"}));
}

TEST_F(DockerfileTest, DotDotAboveTheRootIsTheRootButADotDotNameIsAName) {
    const DockerBuild b = build("FROM scratch\nCOPY a.conf /../../etc/\nWORKDIR /..hidden\nCOPY b.conf .\n");
    EXPECT_NE(entry(b, "/etc/a.conf"), nullptr);
    EXPECT_EQ(b.config.workdir, "/..hidden");
    EXPECT_NE(entry(b, "/..hidden/b.conf"), nullptr);
}

TEST_F(DockerfileTest, DockerignoreHidesFilesFromCopyAndFromTheBuildCache) {
    fs::create_directories(dir_ / "ctx" / ".git" / "objects");
    write("ctx/.git/objects/pack", "history\n");
    write("ctx/www/draft.html", "draft\n");
    write("ctx/.dockerignore", "# not for the image\n.git\n**/*.html\n!www/index.html\n*.conf\n");
    const ContextFilter filter((dir_ / "ctx").string());
    EXPECT_TRUE(filter.excluded(".git"));
    EXPECT_TRUE(filter.excluded(".git/objects/pack"));  // below an excluded directory
    EXPECT_TRUE(filter.excluded("www/draft.html"));     // ** across directories
    EXPECT_FALSE(filter.excluded("www/index.html"));    // brought back by !
    EXPECT_FALSE(filter.excluded("www/css/site.css"));
    EXPECT_TRUE(filter.has_exceptions());
    const DockerBuild b = build("FROM scratch\nCOPY . /app\n");
    EXPECT_NE(entry(b, "/app/www/index.html"), nullptr);
    EXPECT_NE(entry(b, "/app/www/css/site.css"), nullptr);
    EXPECT_EQ(entry(b, "/app/www/draft.html"), nullptr);
    EXPECT_EQ(entry(b, "/app/.git"), nullptr);
    EXPECT_EQ(entry(b, "/app/a.conf"), nullptr);
    EXPECT_NE(error("FROM scratch\nCOPY a.conf /\n").find("2: COPY a.conf: no such file"), std::string::npos);
    EXPECT_NE(error("FROM scratch\nCOPY *.conf /\n").find("2: COPY *.conf: matches nothing"), std::string::npos);
    EXPECT_FALSE(ContextFilter((dir_ / "nothing").string()).excluded("anything"));
}

TEST_F(DockerfileTest, AShellFormCommandRunsThroughTheShellAndEntrypointResetsCmd) {
    EXPECT_EQ(build("FROM scratch\nCMD /bin/server 80\n").config.argv(),
              (std::vector<std::string>{"/bin/sh", "-c", "/bin/server 80"}));
    EXPECT_EQ(build("FROM scratch\nCMD [\"x\"]\nENTRYPOINT [\"/bin/server\"]\n").config.argv(),
              (std::vector<std::string>{"/bin/server"}));
}

TEST_F(DockerfileTest, AddUnpacksALocalTarball) {
    const fs::path tarball = dir_ / "ctx" / "site.tar";
    archive* a = archive_write_new();
    archive_write_set_format_pax_restricted(a);
    ASSERT_EQ(archive_write_open_filename(a, tarball.c_str()), ARCHIVE_OK);
    archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, "page.html");
    archive_entry_set_mode(e, S_IFREG | 0644);
    archive_entry_set_uid(e, 33);
    archive_entry_set_gid(e, 34);
    archive_entry_set_size(e, 3);
    archive_write_header(a, e);
    archive_write_data(a, "hi\n", 3);
    archive_entry_free(e);
    archive_write_close(a);
    archive_write_free(a);
    const DockerBuild b = build("FROM scratch\nADD site.tar /srv/\nCOPY site.tar /copied/\n");
    ASSERT_NE(entry(b, "/srv/page.html"), nullptr);
    EXPECT_EQ(entry(b, "/srv/page.html")->data, "hi\n");
    EXPECT_EQ(entry(b, "/srv/page.html")->uid, 33u);  // the tarball's owner, as tar -x by root
    EXPECT_EQ(entry(b, "/srv/page.html")->gid, 34u);
    ASSERT_NE(entry(b, "/copied/site.tar"), nullptr);  // COPY does not unpack
    EXPECT_EQ(entry(b, "/copied/site.tar")->uid, 0u);
}

// --chown=USER[:GROUP] as Docker resolves it, in the stage's /etc/passwd and /etc/group; the
// context's files are root's otherwise, and an earlier stage's keep their owners.
TEST_F(DockerfileTest, ChownGivesCopiesToAUserOfTheImage) {
    write("ctx/passwd", "root:x:0:0:root:/root:/bin/sh\nweb:x:1000:1001:Web:/srv:/bin/sh\n");
    write("ctx/group", "root:x:0:\nweb:x:1001:\nstaff:x:50:\n");
    const DockerBuild b = build(
        "FROM scratch AS first\nCOPY passwd group /etc/\n"
        "COPY --chown=web:staff a.conf /srv/\nCOPY --chown=web www /web/\nCOPY --chown=4242:7 b.conf /\n"
        "COPY server /\n"
        "FROM scratch\nCOPY --from=first /srv /srv\nCOPY --from=first /b.conf /\n");
    auto owner = [&](const std::string& path) {
        const RootfsEntry* e = entry(b, path);
        return e ? std::make_pair(e->uid, e->gid) : std::make_pair(~0u, ~0u);
    };
    using Owner = std::pair<uint32_t, uint32_t>;
    EXPECT_EQ(owner("/srv/a.conf"), Owner(1000, 50));
    EXPECT_EQ(owner("/b.conf"), Owner(4242, 7));
    const DockerBuild first = build(
        "FROM scratch\nCOPY passwd group /etc/\nCOPY --chown=web www /web/\nCOPY server /\nCOPY --chown=0 a.conf /\n");
    for (const auto& e : first.entries) {
        if (e.path.rfind("/web/", 0) == 0)
            EXPECT_EQ(std::make_pair(e.uid, e.gid), Owner(1000, 1000)) << e.path;  // a user alone: its uid twice
        else
            EXPECT_EQ(std::make_pair(e.uid, e.gid), Owner(0, 0)) << e.path;  // /web itself is only implied
    }
    EXPECT_NE(error("FROM scratch\nCOPY --chown=web a.conf /\n").find("2: COPY --chown=web: USER web: no user 'web'"),
              std::string::npos);
}

TEST_F(DockerfileTest, WhatKilnDoesNotBuildIsRefusedWithTheLine) {
    EXPECT_NE(error("FROM debian:12\n").find("1: FROM debian:12: Kiln builds from scratch or an earlier stage only"),
              std::string::npos);
    EXPECT_EQ(error("COPY a.conf /\n"), "1: COPY before FROM: a Dockerfile starts with FROM (ARGs may come first)");
    EXPECT_EQ(error("# only a comment\n"), "1: no FROM: a Dockerfile starts with FROM");
    EXPECT_NE(error("FROM scratch\nUSER nobody\n").find("2: USER nobody: no user 'nobody' in the image's /etc/passwd"),
              std::string::npos);
    EXPECT_NE(error("FROM scratch\nCOPY --from=build /x /\n").find("2: COPY --from=build: no earlier stage"),
              std::string::npos);
    EXPECT_NE(error("FROM scratch\nADD --from=0 /x /\n").find("2: ADD --from is not supported"), std::string::npos);
    EXPECT_NE(error("FROM scratch\nCOPY --chown=www a.conf /\n").find("2: COPY --chown=www: "), std::string::npos);
    EXPECT_NE(error("FROM scratch\nADD https://example.com/x /\n").find("2: ADD https://example.com/x: "),
              std::string::npos);
    EXPECT_NE(error("FROM scratch\nCOPY missing /\n").find("2: COPY missing: no such file"), std::string::npos);
    EXPECT_NE(error("FROM scratch\nCOPY ../outside /\n").find("2: COPY ../outside: outside the build context"),
              std::string::npos);
    EXPECT_NE(error("FROM scratch\nCOPY escape /\n").find("2: COPY escape: leads outside the build context"),
              std::string::npos);
    EXPECT_NE(error("FROM scratch\nCOPY *.none /\n").find("2: COPY *.none: matches nothing"), std::string::npos);
    EXPECT_NE(error("FROM scratch\nEXPOSE 99999\n").find("2: EXPOSE 99999/tcp: not a port"), std::string::npos);
    EXPECT_NE(error("FROM scratch\nENV =x\n").find("2: ENV: '=x' is not NAME=VALUE"), std::string::npos);
    EXPECT_NE(error("FROM scratch\nENV A=\"unclosed\n").find("2: a quote is not closed"), std::string::npos);
    EXPECT_NE(error("FROM scratch\nCOPY a.conf /x\nCOPY b.conf /x/y\n").find("3: /x is a file in the image"),
              std::string::npos);
    EXPECT_NE(error("FROM scratch\nWORKDIR ${A:?unset}\n").find("2: '${A:?unset}': only"), std::string::npos);
}

// RUN in the build sandbox (bubblewrap, from scripts/install-deps): a static busybox copied in
// is the shell; what the commands leave is the image.
class DockerfileRunTest : public DockerfileTest {
  protected:
    void SetUp() override {
        DockerfileTest::SetUp();
        fs::copy_file("/bin/busybox", dir_ / "ctx" / "busybox");  // Debian's busybox-static
    }
};

TEST_F(DockerfileRunTest, RunChangesTheImageInASandboxWithItsEnvironmentAndNoNetwork) {
    const DockerBuild b = build(
        "FROM scratch\n"
        "COPY busybox /bin/busybox\n"
        "RUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n"
        "COPY a.conf b.conf /etc/app/\n"
        "ARG GREETING=hello\n"
        "ENV WHERE=/srv\n"
        "WORKDIR /srv\n"
        "RUN echo \"$GREETING from $(pwd) $WHERE\" > note && mkdir -p /var/empty && \\\n"
        "    rm /etc/app/a.conf && cat /proc/net/dev > /netdev\n"
        "CMD [\"/bin/sh\"]\n");
    ASSERT_NE(entry(b, "/srv/note"), nullptr);
    EXPECT_EQ(entry(b, "/srv/note")->data, "hello from /srv /srv\n");
    ASSERT_NE(entry(b, "/bin/sh"), nullptr);
    EXPECT_EQ(entry(b, "/bin/sh")->mode & S_IFMT, unsigned{S_IFLNK});
    EXPECT_EQ(entry(b, "/bin/busybox")->mode, S_IFREG | 0755u);
    EXPECT_EQ(entry(b, "/var/empty")->mode & S_IFMT, unsigned{S_IFDIR});
    EXPECT_EQ(entry(b, "/etc/app/a.conf"), nullptr);
    EXPECT_EQ(entry(b, "/etc/app/b.conf")->data, "b\n");
    // Its own network namespace: the loopback alone (two header lines, then lo).
    ASSERT_NE(entry(b, "/netdev"), nullptr);
    const std::string& netdev = entry(b, "/netdev")->data;
    EXPECT_EQ(std::count(netdev.begin(), netdev.end(), '\n'), 3) << netdev;
    EXPECT_NE(netdev.find("lo:"), std::string::npos);
    // The sandbox's mount points are not part of the image.
    EXPECT_EQ(entry(b, "/dev"), nullptr);
    EXPECT_EQ(entry(b, "/proc"), nullptr);
}

// USER by name or number, resolved in the image's own /etc/passwd and /etc/group: for the RUNs
// after it, and in the finished image's config (the kernel's kiln.user).
TEST_F(DockerfileRunTest, UserIsResolvedInTheImageAndRunsTheRunsAfterIt) {
    write("ctx/passwd", "root:x:0:0:root:/root:/bin/sh\nweb:x:1000:1001:Web:/srv:/bin/sh\n");
    write("ctx/group", "root:x:0:\nweb:x:1001:\nstaff:x:50:\n");
    const std::string base =
        "FROM scratch\nCOPY busybox /bin/busybox\nCOPY passwd group /etc/\n"
        "RUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n";
    DockerBuild b = build(base + "COPY --chown=web a.conf /srv/\nUSER web\nRUN id -u > /tmp-uid; id -g >> /tmp-uid\n");
    EXPECT_EQ(entry(b, "/tmp-uid")->data, "1000\n1001\n");
    // What a RUN made is its user's; what was there before keeps its owner.
    EXPECT_EQ(std::make_pair(entry(b, "/tmp-uid")->uid, entry(b, "/tmp-uid")->gid), std::make_pair(1000u, 1001u));
    EXPECT_EQ(std::make_pair(entry(b, "/srv/a.conf")->uid, entry(b, "/srv/a.conf")->gid), std::make_pair(1000u, 1000u));
    EXPECT_EQ(entry(b, "/etc/passwd")->uid, 0u);
    EXPECT_EQ(b.config.user, "1000:1001");
    EXPECT_EQ(build(base + "USER web:staff\n").config.user, "1000:50");
    EXPECT_EQ(build(base + "USER 1000\n").config.user, "1000:1001");  // the passwd line's group
    EXPECT_EQ(build(base + "USER 4242:7\n").config.user, "4242:7");   // numbers need no line
    EXPECT_EQ(build(base + "USER web\nUSER root\n").config.user, "");
    EXPECT_NE(
        error(base + "USER web:nogroup\n").find("5: USER web:nogroup: no group 'nogroup' in the image's /etc/group"),
        std::string::npos);
    EXPECT_NE(error(base + "USER 99999999999\n").find("5: USER 99999999999: no user"), std::string::npos);
}

TEST_F(DockerfileRunTest, AFailingRunNamesItsLineAndStatus) {
    EXPECT_NE(error("FROM scratch\nCOPY busybox /bin/busybox\nSHELL [\"/bin/busybox\", \"sh\", \"-c\"]\nRUN exit 3\n")
                  .find("4: RUN: '/bin/busybox sh -c exit 3' exited with status 3"),
              std::string::npos);
    EXPECT_NE(error("FROM scratch\nRUN true\n").find("2: RUN: /bin/sh is not in the image (the shell"),
              std::string::npos);
    EXPECT_NE(error("FROM scratch\nRUN --mount=type=cache,target=/x true\n").find("2: RUN --mount is not supported"),
              std::string::npos);
    write("ctx/Dockerfile", "FROM scratch\nCOPY busybox /bin/sh\nRUN true\n");
    try {
        build_dockerfile((dir_ / "ctx" / "Dockerfile").string(), (dir_ / "ctx").string(), {}, BuildSandbox::kNone);
        FAIL() << "RUN ran without a sandbox";
    } catch (const DockerfileError& e) {
        EXPECT_NE(std::string(e.what()).find(":3: RUN needs the build sandbox"), std::string::npos) << e.what();
    }
}

TEST_F(DockerfileRunTest, StagesBuildEachOtherAndOnlyTheLastIsTheImage) {
    const DockerBuild b = build(
        "ARG BASE=tools\n"
        "FROM scratch AS tools\n"
        "COPY busybox /bin/busybox\n"
        "ENV TOOL=busybox\n"
        "RUN [\"/bin/busybox\", \"sh\", \"-c\", \"echo built > /out.txt\"]\n"
        "FROM ${BASE} AS again\n"
        "ARG BASE\n"
        "RUN [\"/bin/busybox\", \"sh\", \"-c\", \"echo $TOOL $BASE > /again.txt\"]\n"
        "FROM scratch\n"
        "COPY --from=tools /out.txt /app/\n"
        "COPY --from=again /again.txt /app/again.txt\n"
        "COPY --from=0 /bin /tools\n"
        "ENV FINAL=1\n");
    ASSERT_NE(entry(b, "/app/out.txt"), nullptr);
    EXPECT_EQ(entry(b, "/app/out.txt")->data, "built\n");
    EXPECT_EQ(entry(b, "/app/again.txt")->data, "busybox tools\n");  // the base stage's ENV, the global ARG
    EXPECT_EQ(entry(b, "/tools/busybox")->mode, S_IFREG | 0755u);
    EXPECT_EQ(entry(b, "/bin"), nullptr);
    EXPECT_EQ(b.config.env, (std::vector<std::pair<std::string, std::string>>{{"FINAL", "1"}}));
    EXPECT_NE(error("FROM scratch AS a\nFROM scratch AS A\n").find("2: FROM ... AS A: not a new stage name"),
              std::string::npos);
    EXPECT_NE(error("FROM scratch\nCOPY --from=1 /x /\n").find("2: COPY --from=1: there is no earlier stage"),
              std::string::npos);
    EXPECT_NE(error("FROM scratch AS a\nFROM scratch\nCOPY --from=a /nothing /\n")
                  .find("3: COPY --from: /nothing: not in that stage"),
              std::string::npos);
}

// FROM an image of the store: its files, ENV, WORKDIR, ENTRYPOINT and CMD are the stage's start;
// the build cache knows the base by its digest, so a base built again builds the image again.
TEST_F(DockerfileRunTest, FromAnImageOfTheStore) {
    write("kernel.elf",
          "\x7f"
          "ELF kernel");
    const std::string kernel = (dir_ / "kernel.elf").string();
    ImageStore store((dir_ / "state").string());
    const auto build_base = [&](const std::string& value) {
        write("ctx/Dockerfile",
              "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n"
              "ENV BASE=" +
                  value + "\nWORKDIR /srv\nENTRYPOINT [\"/bin/sh\", \"-c\"]\nCMD [\"echo base\"]\n");
        store.build(
            parse_kraftfile("spec: v0.6\nname: base\nrootfs: ./Dockerfile\n", (dir_ / "ctx" / "Kraftfile").string()),
            kernel, "base:1");
    };
    build_base("one");
    fs::create_directories(dir_ / "app");
    std::ofstream(dir_ / "app" / "Dockerfile") << "ARG FROM_IMAGE=base:1\nFROM ${FROM_IMAGE}\nRUN echo $BASE > here\n"
                                                  "CMD [\"cat here\"]\n";
    const Kraftfile app =
        parse_kraftfile("spec: v0.6\nname: app\nrootfs: ./Dockerfile\n", (dir_ / "app" / "Kraftfile").string());
    const auto here = [&](const Image& image) {
        const auto entries = read_rootfs(store.blob_path(image.manifest["rootfs"]["digest"].get<std::string>()));
        const RootfsEntry* found = find_entry(entries, "/srv/here");
        return found ? found->data : std::string("(none)");
    };
    Image image = store.build(app, kernel, "app:1");
    EXPECT_EQ(here(image), "one\n");
    EXPECT_EQ(image.manifest["cmd"],
              nlohmann::json::array({"/bin/sh", "-c", "cat here"}));  // the base's ENTRYPOINT kept
    EXPECT_EQ(image.manifest["env"], nlohmann::json::array({"BASE=one"}));
    EXPECT_EQ(image.manifest["workdir"], "/srv");
    build_base("two");
    image = store.build(app, kernel, "app:1");
    EXPECT_EQ(here(image), "two\n");
    std::ofstream(dir_ / "app" / "Dockerfile", std::ios::trunc) << "FROM missing:1\n";
    try {
        store.build(app, kernel, "app:2");
        FAIL() << "built from an image that is not here";
    } catch (const DockerfileError& e) {
        EXPECT_NE(std::string(e.what()).find(":1: FROM missing:1: no image 'missing:1' here (a registry's is named"),
                  std::string::npos)
            << e.what();
    }
}

TEST_F(DockerfileTest, AKraftfileRootfsDockerfileMakesTheImage) {
    write("ctx/Dockerfile", "FROM scratch\nCOPY server /bin/server\nENV MODE=docker KEEP=1\nCMD [\"/bin/server\"]\n");
    write("kernel.elf",
          "\x7f"
          "ELF kernel");
    const Kraftfile k = parse_kraftfile("spec: v0.6\nname: web\nrootfs: ./Dockerfile\nenv:\n  MODE: kraftfile\n",
                                        (dir_ / "ctx" / "Kraftfile").string());
    ImageStore store((dir_ / "state").string());
    const Image image = store.build(k, (dir_ / "kernel.elf").string(), "web:1");
    EXPECT_EQ(image.manifest["cmd"], nlohmann::json::array({"/bin/server"}));               // the Dockerfile's CMD
    EXPECT_EQ(image.manifest["env"], nlohmann::json::array({"MODE=kraftfile", "KEEP=1"}));  // the Kraftfile's wins
    EXPECT_EQ(image.manifest["rootfs"]["files"], 2);                                        // /bin and /bin/server
}

// An unchanged rebuild reuses the archive (one remembered build); a file's new contents, a build
// argument or an archive removed since make a new build, never a stale one.
TEST_F(DockerfileTest, RebuildsAreRememberedByContent) {
    write("ctx/Dockerfile",
          "FROM scratch\nARG WHERE=/bin\nCOPY server ${WHERE}/server\nCOPY www /www\nCMD [\"/bin/server\"]\n");
    write("kernel.elf",
          "\x7f"
          "ELF kernel");
    const Kraftfile k =
        parse_kraftfile("spec: v0.6\nname: web\nrootfs: ./Dockerfile\n", (dir_ / "ctx" / "Kraftfile").string());
    ImageStore store((dir_ / "state").string());
    const std::string kernel = (dir_ / "kernel.elf").string();
    auto remembered = [&] {
        store::Database db((dir_ / "state" / "kiln.db").string());
        store::Statement count(db, "SELECT COUNT(*) FROM rootfs_builds");
        count.step();
        return count.integer(0);
    };
    const std::string first = store.build(k, kernel, "web:1").manifest["rootfs"]["digest"];
    ::utimensat(AT_FDCWD, (dir_ / "ctx" / "www" / "index.html").c_str(), nullptr, 0);  // a new time only
    EXPECT_EQ(store.build(k, kernel, "web:2").manifest["rootfs"]["digest"], first);
    EXPECT_EQ(remembered(), 1);
    write("ctx/www/index.html", "changed\n");
    const std::string changed = store.build(k, kernel, "web:3").manifest["rootfs"]["digest"];
    EXPECT_NE(changed, first);
    EXPECT_EQ(remembered(), 2);
    EXPECT_EQ(store.build(k, kernel, "web:4", {{"WHERE", "/bin"}}).manifest["rootfs"]["digest"], changed);
    EXPECT_EQ(remembered(), 3);  // another argument: another build (of the same files)
    write("ctx/.dockerignore", "notes.txt\n");
    EXPECT_EQ(store.build(k, kernel, "web:6").manifest["rootfs"]["digest"], changed);
    const int64_t before = remembered();
    write("ctx/notes.txt", "what the build does not see\n");  // ignored: the same build
    EXPECT_EQ(store.build(k, kernel, "web:7").manifest["rootfs"]["digest"], changed);
    EXPECT_EQ(remembered(), before);
    store.remove("web:6");
    store.remove("web:7");
    store.remove("web:3");
    store.remove("web:4");  // the changed archive is no image's now, and goes
    EXPECT_FALSE(fs::exists(store.blob_path(changed)));
    EXPECT_EQ(store.build(k, kernel, "web:5").manifest["rootfs"]["digest"], changed);
    EXPECT_TRUE(fs::exists(store.blob_path(changed)));
}

}  // namespace
}  // namespace kiln::images
