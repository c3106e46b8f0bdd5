#include "images/registry_reference.h"

#include <algorithm>

#include "images/kraftfile.h"

namespace kiln::images {

namespace {

bool all_of(const std::string& text, const char* allowed) {
    return !text.empty() && text.find_first_not_of(allowed) == std::string::npos;
}

// HOST or HOST:PORT, the port 1 to 65535.
bool valid_host(const std::string& host) {
    const auto colon = host.find(':');
    const std::string name = host.substr(0, colon);
    if (!all_of(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") || name.front() == '.' ||
        name.front() == '-')
        return false;
    if (colon == std::string::npos) return true;
    const std::string port = host.substr(colon + 1);
    return all_of(port, "0123456789") && port.size() <= 5 && std::stoi(port) >= 1 && std::stoi(port) <= 65535;
}

bool looks_like_host(const std::string& part) {
    return part.find('.') != std::string::npos || part.find(':') != std::string::npos || part == "localhost";
}

// REPO: '/'-separated components, each a valid image name (lower-case letters, digits, . _ -).
bool valid_repository(const std::string& repository) {
    size_t start = 0;
    while (true) {
        const auto slash = repository.find('/', start);
        if (!valid_name(repository.substr(start, slash - start))) return false;
        if (slash == std::string::npos) return true;
        start = slash + 1;
    }
}

}  // namespace

bool valid_digest(const std::string& digest) {
    return digest.size() == 71 && digest.rfind("sha256:", 0) == 0 && all_of(digest.substr(7), "0123456789abcdef");
}

bool is_registry_reference(const std::string& text) {
    const auto slash = text.find('/');
    return slash != std::string::npos && looks_like_host(text.substr(0, slash));
}

bool valid_registry_name(const std::string& name) {
    const auto slash = name.find('/');
    return slash != std::string::npos && looks_like_host(name.substr(0, slash)) && valid_host(name.substr(0, slash)) &&
           valid_repository(name.substr(slash + 1));
}

RegistryReference parse_registry_reference(const std::string& text) {
    const std::string expected = "expected HOST[:PORT]/REPO:TAG or HOST[:PORT]/REPO@sha256:<64 hex digits>";
    const auto slash = text.find('/');
    if (slash == std::string::npos || !looks_like_host(text.substr(0, slash)))
        throw RegistryError("'" + text + "' names no registry: " + expected);
    RegistryReference r;
    r.host = text.substr(0, slash);
    if (!valid_host(r.host)) throw RegistryError("'" + text + "': '" + r.host + "' is not a valid HOST[:PORT]");
    std::string rest = text.substr(slash + 1);
    if (const auto at = rest.find('@'); at != std::string::npos) {
        r.digest = rest.substr(at + 1);
        rest.resize(at);
        if (!valid_digest(r.digest))
            throw RegistryError("'" + text + "': '" + r.digest + "' is not a digest (sha256:<64 hex digits>)");
    } else if (const auto colon = rest.rfind(':'); colon != std::string::npos) {
        r.tag = rest.substr(colon + 1);
        rest.resize(colon);
        if (!valid_name(r.tag))
            throw RegistryError("'" + text + "': '" + r.tag +
                                "' is not a valid tag (lower-case letters, digits, '.', '_', '-'; at most 63)");
    } else {
        r.tag = "latest";
    }
    r.repository = rest;
    if (!valid_repository(r.repository))
        throw RegistryError("'" + text + "': '" + r.repository +
                            "' is not a valid repository ('/'-separated lower-case letters, digits, '.', '_', '-')");
    return r;
}

}  // namespace kiln::images
