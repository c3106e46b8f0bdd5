// Instances' cgroups against the host's real ones: the limits written where the kernel reads
// them, the cap enforced (a task over it is refused), a spawned tender in its group before its
// first instruction, and the groups gone after.
#include "instances/cgroups.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <string>

#include "instances/tender_spawn.h"

namespace kiln::instances {
namespace {

std::string read_text(const std::string& path) {
    std::ifstream file(path);
    std::string text;
    std::getline(file, text);
    return text;
}

bool in_group(pid_t pid, const std::string& group) {
    std::ifstream file("/proc/" + std::to_string(pid) + "/cgroup");
    for (std::string line; std::getline(file, line);)
        if (line.size() >= group.size() && line.compare(line.size() - group.size(), group.size(), group) == 0)
            return true;
    return false;
}

class CgroupsTest : public ::testing::Test {
  protected:
    void SetUp() override {
        if (::geteuid() != 0) FAIL() << "needs root to make cgroups: run the tests as root";
        ASSERT_TRUE(cgroups_.available()) << cgroups_.why_not();
    }
    void TearDown() override {
        cgroups_.remove("one");
        cgroups_.remove("waiting-1");
        cgroups_.remove_parent();
    }
    const std::string parent_ = "kiln-cgroups-test-" + std::to_string(::getpid());
    Cgroups cgroups_{"/sys/fs/cgroup", parent_};
};

TEST(CgroupWeights, SharesConvertAsSystemdDoes) {
    EXPECT_EQ(cpu_weight_of_shares(Limits::kMinCpuShares), 1);
    EXPECT_EQ(cpu_weight_of_shares(Limits::kMaxCpuShares), 10000);
    EXPECT_EQ(cpu_weight_of_shares(Limits::kDefaultCpuShares), 39);
}

TEST_F(CgroupsTest, TheLimitsAreWhereTheKernelReadsThem) {
    const auto procs = cgroups_.prepare("one", {300, 20});
    const auto dirs = cgroups_.dirs("one");
    ASSERT_EQ(procs.size(), dirs.size());
    if (cgroups_.version() == 1) {
        EXPECT_EQ(read_text(dirs.front() + "/cpu.shares"), "300");
    } else {
        EXPECT_EQ(read_text(dirs.front() + "/cpu.weight"), std::to_string(cpu_weight_of_shares(300)));
    }
    EXPECT_EQ(read_text(dirs.back() + "/pids.max"), "20");
    cgroups_.prepare("one", {1024, 64});  // a restart with other limits updates them
    EXPECT_EQ(read_text(dirs.back() + "/pids.max"), "64");
}

// A process moved in may have the cap's number of tasks, itself included, and no more.
TEST_F(CgroupsTest, TheCapRefusesATaskOverIt) {
    const auto procs = cgroups_.prepare("one", {1024, Limits::kMinPidsLimit});
    int go[2], report[2];
    ASSERT_EQ(::pipe(go), 0);
    ASSERT_EQ(::pipe(report), 0);
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        char byte;
        if (::read(go[0], &byte, 1) != 1) _exit(2);
        int hold[2];
        if (::pipe(hold) != 0) _exit(2);
        int forked = 0, refused = 0;
        for (int i = 0; i < 20; ++i) {
            const pid_t grandchild = ::fork();
            if (grandchild == 0) {  // waits for the end of `hold`: its parent's exit or close
                ::close(hold[1]);
                while (::read(hold[0], &byte, 1) > 0) {
                }
                _exit(0);
            }
            if (grandchild > 0) ++forked;
            if (grandchild < 0 && errno == EAGAIN) ++refused;
        }
        ::close(hold[1]);
        while (::wait(nullptr) > 0) {
        }
        const int counts[2] = {forked, refused};
        _exit(::write(report[1], counts, sizeof(counts)) == sizeof(counts) ? 0 : 2);
    }
    Cgroups::move(procs, child);
    ASSERT_TRUE(in_group(child, "/" + parent_ + "/one"));
    ASSERT_EQ(::write(go[1], "x", 1), 1);
    int counts[2] = {};
    ASSERT_EQ(::read(report[0], counts, sizeof(counts)), static_cast<ssize_t>(sizeof(counts)));
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    EXPECT_EQ(status, 0);
    EXPECT_EQ(counts[0], Limits::kMinPidsLimit - 1);  // the child is one of the cap's tasks
    EXPECT_EQ(counts[1], 20 - counts[0]);
    for (int fd : {go[0], go[1], report[0], report[1]}) ::close(fd);
}

TEST_F(CgroupsTest, ASpawnedTenderStartsInItsGroup) {
    const auto procs = cgroups_.prepare("one", {1024, 16});
    std::vector<int> fds;
    for (const auto& fd : procs) fds.push_back(fd.get());
    char sleep_path[] = "/bin/sleep", seconds[] = "30";
    char* argv[] = {sleep_path, seconds, nullptr};
    const pid_t pid = spawn_tender(argv, {0, 1, 2, -1, -1, fds.data(), static_cast<int>(fds.size())});
    ASSERT_GT(pid, 0);
    EXPECT_TRUE(in_group(pid, "/" + parent_ + "/one"));
    ::kill(pid, SIGKILL);
    ASSERT_EQ(::waitpid(pid, nullptr, 0), pid);
    cgroups_.remove("one");
    for (const auto& dir : cgroups_.dirs("one")) EXPECT_NE(::access(dir.c_str(), F_OK), 0) << dir;
}

// A waiting kiln-proc has forked its instance process ahead: kilnd moves it with its tender.
TEST_F(CgroupsTest, AWaitingTenderMovesWithTheProcessItForkedAhead) {
    const auto procs = cgroups_.prepare("one", {1024, 16});
    int ready[2];
    ASSERT_EQ(::pipe(ready), 0);
    const pid_t tender = ::fork();
    ASSERT_GE(tender, 0);
    if (tender == 0) {
        const pid_t ahead = ::fork();
        if (ahead == 0) {
            ::pause();
            _exit(0);
        }
        if (::write(ready[1], &ahead, sizeof(ahead)) != sizeof(ahead)) _exit(1);
        _exit(::waitpid(ahead, nullptr, 0) == ahead ? 0 : 1);  // reaped here, so its group can go
    }
    pid_t ahead = 0;
    ASSERT_EQ(::read(ready[0], &ahead, sizeof(ahead)), static_cast<ssize_t>(sizeof(ahead)));
    Cgroups::move_with_children(procs, tender);
    EXPECT_TRUE(in_group(tender, "/" + parent_ + "/one"));
    EXPECT_TRUE(in_group(ahead, "/" + parent_ + "/one"));
    ::kill(ahead, SIGKILL);
    int status = 0;
    ASSERT_EQ(::waitpid(tender, &status, 0), tender);
    EXPECT_EQ(status, 0);
    for (int fd : ready) ::close(fd);
}

// A waiting tender's group becomes its instance's by a rename on v1, the process in it, and the
// instance's limits then apply to it; v2 cannot rename, and says so (kilnd moves the process).
TEST_F(CgroupsTest, AWaitingTendersGroupBecomesTheInstances) {
    const auto waiting = cgroups_.prepare("waiting-1", {});
    std::vector<int> fds;
    for (const auto& fd : waiting) fds.push_back(fd.get());
    char sleep_path[] = "/bin/sleep", seconds[] = "30";
    char* argv[] = {sleep_path, seconds, nullptr};
    const pid_t pid = spawn_tender(argv, {0, 1, 2, -1, -1, fds.data(), static_cast<int>(fds.size())});
    ASSERT_GT(pid, 0);
    ASSERT_TRUE(in_group(pid, "/" + parent_ + "/waiting-1"));
    const bool adopted = cgroups_.adopt("waiting-1", "one");
    EXPECT_EQ(adopted, cgroups_.version() == 1);
    if (adopted) {
        EXPECT_TRUE(in_group(pid, "/" + parent_ + "/one"));
        for (const auto& dir : cgroups_.dirs("waiting-1")) EXPECT_NE(::access(dir.c_str(), F_OK), 0) << dir;
        cgroups_.prepare("one", {300, 20});
        EXPECT_EQ(read_text(cgroups_.dirs("one").back() + "/pids.max"), "20");
    }
    ::kill(pid, SIGKILL);
    ASSERT_EQ(::waitpid(pid, nullptr, 0), pid);
}

}  // namespace
}  // namespace kiln::instances
