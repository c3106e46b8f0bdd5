// Output shared by kiln's commands: aligned tables, sizes and ages the way docker prints them.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace kiln::cli {

enum class Format { kTable, kJson };

// "table" or "json"; throws std::invalid_argument naming the flag's value otherwise.
Format parse_format(const std::string& text);

// Columns padded to their widest cell, three spaces apart; the first row is the header.
void print_table(const std::vector<std::vector<std::string>>& rows);

std::string human_size(uint64_t bytes);  // "1.5MB"
std::string human_age(int64_t unix_ns);  // "3 seconds ago"

}  // namespace kiln::cli
