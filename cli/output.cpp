#include "output.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <stdexcept>

namespace kiln::cli {

Format parse_format(const std::string& text) {
    if (text == "table") return Format::kTable;
    if (text == "json") return Format::kJson;
    throw std::invalid_argument("-o " + text + ": the output format is table or json");
}

void print_table(const std::vector<std::vector<std::string>>& rows) {
    std::vector<size_t> widths;
    for (const auto& row : rows)
        for (size_t i = 0; i < row.size(); ++i) {
            if (widths.size() <= i) widths.push_back(0);
            widths[i] = std::max(widths[i], row[i].size());
        }
    for (const auto& row : rows) {
        std::string line;
        for (size_t i = 0; i < row.size(); ++i) {
            line += row[i];
            if (i + 1 < row.size()) line += std::string(widths[i] - row[i].size() + 3, ' ');
        }
        std::puts(line.c_str());
    }
}

std::string human_size(uint64_t bytes) {
    const char* units[] = {"B", "kB", "MB", "GB", "TB"};
    double value = static_cast<double>(bytes);
    size_t unit = 0;
    while (value >= 1000 && unit + 1 < std::size(units)) {
        value /= 1000;
        ++unit;
    }
    char text[32];
    std::snprintf(text, sizeof(text), unit == 0 ? "%.0f%s" : "%.3g%s", value, units[unit]);
    return text;
}

std::string human_age(int64_t unix_ns) {
    using namespace std::chrono;
    const int64_t now = duration_cast<nanoseconds>(system_clock::now().time_since_epoch()).count();
    const int64_t seconds = std::max<int64_t>(0, (now - unix_ns) / 1000000000);
    auto ago = [](int64_t n, const char* unit) {
        return std::to_string(n) + " " + unit + (n == 1 ? "" : "s") + " ago";
    };
    if (seconds < 60) return ago(seconds, "second");
    if (seconds < 3600) return ago(seconds / 60, "minute");
    if (seconds < 86400) return ago(seconds / 3600, "hour");
    return ago(seconds / 86400, "day");
}

}  // namespace kiln::cli
