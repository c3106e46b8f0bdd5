#include "lib/string_view.h"

namespace kiln {

bool parse_u64(StringView text, uint64_t& out) {
    uint64_t base = 10;
    if (text.starts_with("0x") || text.starts_with("0X")) {
        base = 16;
        text = text.substr(2);
    }
    if (text.empty()) return false;
    uint64_t value = 0;
    for (char c : text) {
        uint64_t digit;
        if (c >= '0' && c <= '9')
            digit = static_cast<uint64_t>(c - '0');
        else if (base == 16 && c >= 'a' && c <= 'f')
            digit = static_cast<uint64_t>(c - 'a' + 10);
        else if (base == 16 && c >= 'A' && c <= 'F')
            digit = static_cast<uint64_t>(c - 'A' + 10);
        else
            return false;
        if (value > (UINT64_MAX - digit) / base) return false;
        value = value * base + digit;
    }
    out = value;
    return true;
}

}  // namespace kiln
