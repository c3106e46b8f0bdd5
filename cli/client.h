// kiln's side of kilnd's API: HTTP over the unix socket STATE/kilnd.sock. With no kilnd serving
// that state directory, the first request starts one (a process named kilnd, next to kiln).
// With a remote host (--host URL or KILN_HOST, and --token or KILN_TOKEN), HTTP over TCP to the
// kilnd there instead, which is never started from here.
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "http_client.h"

namespace kiln::cli {

struct Remote {
    std::string host;     // "http://10.0.0.2:7070"; empty: the local kilnd
    std::string token;    // its bearer token
    std::string ca_cert;  // for https:// hosts: the CA (or self-signed certificate) to trust, PEM
};
// Set once by main from the command line and the environment.
void set_remote(Remote remote);
const Remote& remote();  // the kilnd in use; host empty: the local one

class Client {
  public:
    Client();
    // The envelope's `data` of a successful answer; throws std::runtime_error with kilnd's message
    // (one line) otherwise.
    nlohmann::json get(const std::string& path);
    nlohmann::json post(const std::string& path, const nlohmann::json& body);
    nlohmann::json put(const std::string& path, const nlohmann::json& body = nlohmann::json::object());
    nlohmann::json del(const std::string& path);
    // A multipart/form-data POST (an image upload): one part per entry.
    struct Part {
        std::string name, filename, content;
    };
    nlohmann::json post_parts(const std::string& path, const std::vector<Part>& parts);
    // A GET whose answer is a stream (logs?follow=true): each piece goes to `piece` as it comes;
    // returning false from it stops the stream. Throws like the others if kilnd refuses.
    void stream(const std::string& path, const std::function<bool(const char*, size_t)>& piece);

  private:
    nlohmann::json call(HttpRequest request);
    const Endpoint& endpoint();  // the kilnd in use (started if local and not running)
    HttpRequest request(const std::string& method, const std::string& path) const;
    void ensure_daemon();
    Endpoint endpoint_;
    bool checked_ = false;
};

}  // namespace kiln::cli
