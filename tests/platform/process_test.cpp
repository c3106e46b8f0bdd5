// kilnd's question "is this instance's process still the one it started?", asked of real
// processes: a running one, a zombie, one under a start time that is not its own, none at all.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>
#include <chrono>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include "instances/supervisor.h"

namespace {
using kiln::instances::group_running;
using kiln::instances::process_running;
using kiln::instances::process_start_time;

// Field 22 of /proc/PID/stat read the slow, obvious way, to check the parser against.
int64_t start_time_by_stream(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string text;
    std::getline(in, text);
    std::istringstream fields(text.substr(text.rfind(')') + 2));
    std::string field;
    for (int i = 3; i <= 22; ++i) fields >> field;
    return std::stoll(field);
}

bool is_zombie(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string text;
    std::getline(in, text);
    return text.substr(text.rfind(')') + 2, 1) == "Z";
}
}  // namespace

TEST(ProcessRunning, KnowsThisProcessByItsStartTime) {
    const int64_t start = process_start_time(::getpid());
    EXPECT_GT(start, 0);
    EXPECT_EQ(start, start_time_by_stream(::getpid()));
    EXPECT_TRUE(process_running(::getpid(), start));
    EXPECT_FALSE(process_running(::getpid(), start + 1)) << "another process under a reused pid";
    EXPECT_FALSE(process_running(::getpid(), 0));
}

TEST(ProcessRunning, ANameWithSpacesAndParenthesesDoesNotMisleadIt) {
    int named[2];
    ASSERT_EQ(::pipe(named), 0);
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        ::prctl(PR_SET_NAME, "a) b (c) d");
        ::close(named[1]);  // the parent's read returns: the name is set
        ::pause();
        ::_exit(0);
    }
    ::close(named[1]);
    char byte;
    ASSERT_EQ(::read(named[0], &byte, 1), 0);
    ::close(named[0]);
    std::ifstream comm("/proc/" + std::to_string(child) + "/comm");
    std::string name;
    std::getline(comm, name);
    ASSERT_EQ(name, "a) b (c) d");
    const int64_t start = process_start_time(child);
    EXPECT_EQ(start, start_time_by_stream(child));
    EXPECT_TRUE(process_running(child, start));
    ::kill(child, SIGKILL);
    ::waitpid(child, nullptr, 0);
}

TEST(ProcessRunning, AZombieOrAReapedProcessIsNotRunning) {
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) ::_exit(0);
    const int64_t start = process_start_time(child);
    for (int i = 0; i < 200 && !is_zombie(child); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    ASSERT_TRUE(is_zombie(child));
    EXPECT_EQ(process_start_time(child), start) << "a zombie still has its start time";
    EXPECT_FALSE(process_running(child, start));
    ::waitpid(child, nullptr, 0);
    EXPECT_EQ(process_start_time(child), 0);
    EXPECT_FALSE(process_running(child, start));
    EXPECT_FALSE(process_running(-1, start));
}

// A tender's group: the tender (its leader, after setsid) and the instance process it forked. A
// group whose processes are all zombies runs no more, though kill() still finds it: PID 1 may
// reap an adopted tender's orphans late, and kilnd waited on them (up to 2 s each) at its start.
TEST(ProcessRunning, AGroupOfZombiesIsNotRunning) {
    ASSERT_EQ(::prctl(PR_SET_CHILD_SUBREAPER, 1), 0);  // the orphan's zombie waits for this test
    int ready[2];
    ASSERT_EQ(::pipe(ready), 0);
    const pid_t leader = ::fork();
    ASSERT_GE(leader, 0);
    if (leader == 0) {
        ::setsid();
        if (::fork() == 0) {
            ::close(ready[1]);  // its parent's read returns: the member is there
            ::pause();
            ::_exit(0);
        }
        char byte;
        ::close(ready[1]);
        (void)!::read(ready[0], &byte, 1);
        ::_exit(0);  // the member lives on, an orphan of this test (the subreaper)
    }
    ::close(ready[1]);
    char byte;
    ASSERT_EQ(::read(ready[0], &byte, 1), 0);
    ::close(ready[0]);
    ::waitpid(leader, nullptr, 0);
    EXPECT_TRUE(group_running(leader)) << "its member runs";
    ::kill(-leader, SIGKILL);
    for (int i = 0; i < 200 && ::kill(-leader, 0) == 0 && group_running(leader); ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    EXPECT_EQ(::kill(-leader, 0), 0) << "the zombie is still there to be found";
    EXPECT_FALSE(group_running(leader)) << "a group of zombies";
    while (::waitpid(-leader, nullptr, 0) > 0) {
    }
    EXPECT_FALSE(group_running(leader));
    ::prctl(PR_SET_CHILD_SUBREAPER, 0);
}
