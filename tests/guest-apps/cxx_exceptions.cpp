// C++ runtime: iostream, exceptions across frames, RTTI, static initialisation, std::string.
#include <iostream>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

struct Registry {
    Registry() { values["init"] = 1; }
    std::map<std::string, int> values;
};
static Registry registry;

[[noreturn]] void deep(int n) {
    if (n == 0) throw std::runtime_error("thrown from the bottom");
    std::vector<std::unique_ptr<int>> keep;
    keep.push_back(std::make_unique<int>(n));
    deep(n - 1);
}

int main() {
    int caught = 0;
    try {
        deep(20);
    } catch (const std::exception& e) {
        std::cout << "caught: " << e.what() << '\n';
        ++caught;
    }
    try {
        std::vector<int> v(3);
        (void)v.at(10);
    } catch (const std::out_of_range&) {
        ++caught;
    }
    std::cout << "exceptions caught: " << caught << ", static init: " << registry.values["init"] << std::endl;
    return caught == 2 ? 0 : 1;
}
