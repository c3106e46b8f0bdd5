// std::thread, mutex and condition variable: a producer/consumer queue and a contended counter.
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

int main() {
    std::mutex m;
    std::condition_variable cv;
    std::deque<int> queue;
    bool done = false;
    long sum = 0;
    std::thread consumer([&] {
        std::unique_lock<std::mutex> lock(m);
        for (;;) {
            cv.wait(lock, [&] { return !queue.empty() || done; });
            while (!queue.empty()) {
                sum += queue.front();
                queue.pop_front();
            }
            if (done) return;
        }
    });
    for (int i = 1; i <= 10000; ++i) {
        {
            std::lock_guard<std::mutex> lock(m);
            queue.push_back(i);
        }
        cv.notify_one();
    }
    {
        std::lock_guard<std::mutex> lock(m);
        done = true;
    }
    cv.notify_one();
    consumer.join();

    long counter = 0;
    std::vector<std::thread> workers;
    for (int t = 0; t < 8; ++t)
        workers.emplace_back([&] {
            for (int i = 0; i < 20000; ++i) {
                std::lock_guard<std::mutex> lock(m);
                ++counter;
            }
        });
    for (auto& w : workers) w.join();
    std::printf("threads: sum=%ld counter=%ld\n", sum, counter);
    return sum == 50005000 && counter == 160000 ? 0 : 1;
}
