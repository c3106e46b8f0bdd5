#include "boot/cmdline.h"

#include <arpa/inet.h>

#include <algorithm>
#include <string_view>

#include "util/error.h"

namespace kiln::vmm {
namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n'; }

// The offset of the first bare `--` word (not inside quotes), or npos.
size_t find_separator(const std::string& text) {
    size_t i = 0;
    while (i < text.size()) {
        while (i < text.size() && is_space(text[i])) ++i;
        const size_t start = i;
        bool in_quotes = false;
        bool quoted = false;
        while (i < text.size() && (in_quotes || !is_space(text[i]))) {
            if (text[i] == '\\' && in_quotes && i + 1 < text.size()) {
                i += 2;
                continue;
            }
            if (text[i] == '"') {
                in_quotes = !in_quotes;
                quoted = true;
            }
            ++i;
        }
        if (in_quotes) throw VmmError("--cmdline: unterminated double quote");
        if (!quoted && i - start == 2 && text.compare(start, 2, "--") == 0) return start;
    }
    return std::string::npos;
}

}  // namespace

uint32_t guest_ipv4(const std::string& user) {
    const std::string params = user.substr(0, std::min(find_separator(user), user.size()));
    constexpr std::string_view kKey = "kiln.ip=";
    size_t at = 0;
    while ((at = params.find(kKey, at)) != std::string::npos) {
        const bool word_start = at == 0 || is_space(params[at - 1]);
        at += kKey.size();
        if (!word_start) continue;
        size_t end = at;
        while (end < params.size() && !is_space(params[end]) && params[end] != '/') ++end;
        in_addr address{};
        if (::inet_pton(AF_INET, params.substr(at, end - at).c_str(), &address) == 1) return address.s_addr;
        return 0;
    }
    return 0;
}

std::string compose_cmdline(const std::string& user, const std::vector<std::string>& vmm_params) {
    std::string params;
    for (const auto& p : vmm_params) {
        if (!params.empty()) params += ' ';
        params += p;
    }
    const size_t separator = find_separator(user);
    if (separator == std::string::npos) {
        if (user.empty()) return params;
        return params.empty() ? user : user + ' ' + params;
    }
    std::string before = user.substr(0, separator);
    while (!before.empty() && is_space(before.back())) before.pop_back();
    std::string result = before;
    if (!params.empty()) result += (result.empty() ? "" : " ") + params;
    return result + (result.empty() ? "" : " ") + user.substr(separator);
}

}  // namespace kiln::vmm
