#include "control/control_socket.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <memory>
#include <thread>

#include "event_loop.h"

namespace kiln::vmm {
namespace {

namespace fs = std::filesystem;

// Connects to the unix socket at `path`; the errno of a failure, 0 on success.
int connect_error(const std::string& path) {
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::memcpy(address.sun_path, path.c_str(), path.size() + 1);
    const int result = ::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address));
    const int error = result == 0 ? 0 : errno;
    ::close(fd);
    return error;
}

class ControlSocketTest : public ::testing::Test {
  protected:
    ControlSocketTest() : dir_(fs::temp_directory_path() / ("kiln-control-" + std::to_string(::getpid()))) {
        fs::create_directories(dir_);
    }
    ~ControlSocketTest() override { fs::remove_all(dir_); }

    fs::path dir_;
    EventLoop loop_;
};

// kilnd connects the moment a tender's socket appears (a prepared restore's resume): the path
// must never name a socket that refuses. A watcher on the other core looks for the path from
// before each socket is made and connects the moment it sees it, 2,000 times.
TEST_F(ControlSocketTest, ASocketThatCanBeSeenTakesConnections) {
    const std::string path = (dir_ / "control.sock").string();
    constexpr int kRounds = 2000;
    std::atomic<int> round{-1}, answered{-1}, refused{0};
    std::atomic<bool> stop{false};
    std::thread watcher([&] {
        for (int r = 0; r < kRounds; ++r) {
            const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
            while (round < r && !stop && std::chrono::steady_clock::now() < deadline) {
            }
            while (::access(path.c_str(), F_OK) != 0 && !stop && std::chrono::steady_clock::now() < deadline) {
            }
            if (stop) return;
            if (connect_error(path) == ECONNREFUSED) ++refused;
            answered = r;
        }
    });
    for (int r = 0; r < kRounds; ++r) {
        round = r;  // the watcher looks from now on
        ControlSocket socket(path, loop_, [](const nlohmann::json&) { return nlohmann::json{}; });
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
        while (answered < r && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
        if (answered != r) {
            ADD_FAILURE() << "the watcher never saw socket " << r;
            break;
        }
    }
    stop = true;
    watcher.join();
    EXPECT_EQ(refused, 0) << "of " << kRounds << " sockets";
    EXPECT_FALSE(fs::exists(path + ".new"));
}

TEST_F(ControlSocketTest, AStaleSocketIsReplacedAndTheSocketGoesWithIt) {
    const std::string path = (dir_ / "control.sock").string();
    {
        ControlSocket first(path, loop_, [](const nlohmann::json&) { return nlohmann::json{}; });
    }
    ::close(::open(path.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600));  // a stale file at the path
    {
        ControlSocket second(path, loop_, [](const nlohmann::json&) { return nlohmann::json{}; });
        EXPECT_EQ(connect_error(path), 0);
    }
    EXPECT_FALSE(fs::exists(path));
}

TEST_F(ControlSocketTest, APathTooLongIsNamed) {
    const std::string path = (dir_ / std::string(200, 'c')).string();
    try {
        ControlSocket socket(path, loop_, [](const nlohmann::json&) { return nlohmann::json{}; });
        FAIL() << "a path of " << path.size() << " characters was taken";
    } catch (const std::exception& e) {
        EXPECT_NE(std::string(e.what()).find("too long"), std::string::npos) << e.what();
    }
}

}  // namespace
}  // namespace kiln::vmm
