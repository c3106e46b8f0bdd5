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
