// kilnd's REST API (shaped after Unikraft Cloud's v1, docs/api.md) over HTTP on a unix socket.
// Every answer is the envelope {status, message, data, errors, op_time_us}; a request with an
// unknown or ill-typed field is refused with a 400 that names the field.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "images/image_store.h"
#include "instances/instance_store.h"
#include "instances/platforms.h"
#include "instances/supervisor.h"
#include "services/controller.h"
#include "services/service_store.h"
#include "volumes/volume_store.h"

namespace httplib {
class Server;
struct Request;
struct Response;
}  // namespace httplib

namespace kiln::api {

struct State {
    std::mutex mutex;  // one request or reconcile at a time touches the store and processes
    images::ImageStore& images;
    instances::InstanceStore& instances;
    instances::Supervisor& supervisor;
    services::ServiceStore& services;
    // Services at run time; null when kilnd has no private network (then services are refused).
    services::Controller* controller = nullptr;
    std::string no_network_reason;
    instances::HostPlatforms platforms;       // what instances can run on here, and the default
    volumes::VolumeStore* volumes = nullptr;  // volumes (/v1/volumes); none: refused
    // kilnd's state directory: where `kiln login` keeps registry credentials for the pulls of
    // POST /v1/instances (none: a registry's image that is not here is a 404).
    std::string state_dir;

    // Instances may have changed state (the reconciler saw a tender end): log followers look
    // again at once instead of at their next poll.
    void changed();
    // Until changed() or `limit`, whichever comes first.
    void wait_for_change(std::chrono::milliseconds limit);
    std::mutex change_mutex;  // guards changes
    std::condition_variable change;
    uint64_t changes = 0;
};

// Answers in the envelope: {status, message, data, errors, op_time_us}.
void reply(httplib::Response& response, std::chrono::steady_clock::time_point started, int status,
           const std::string& message, const nlohmann::json& data = nullptr);

class Server {
  public:
    // With a `token`, every request must carry `Authorization: Bearer <token>` (TCP); without,
    // none is asked for (the unix socket, guarded by its file permissions).
    explicit Server(State& state, std::string token = {});
    // The same over TLS (OpenSSL): the certificate chain and private key are PEM files. Throws
    // std::runtime_error naming them if they cannot be used.
    Server(State& state, std::string token, const std::string& tls_cert, const std::string& tls_key);
    ~Server();
    // Serve until stop(); false if they cannot listen.
    bool listen_unix(const std::string& path);  // the socket is created 0600
    bool listen_tcp(const std::string& host, int port);
    void stop();

  private:
    using Clock = std::chrono::steady_clock;
    using Handler = std::function<void(const httplib::Request&, httplib::Response&)>;
    using Action = std::function<void(const httplib::Request&, httplib::Response&, Clock::time_point started)>;
    // A route's handler: `action` runs under the state lock; what it throws is answered in the
    // envelope (an ApiError with its status and message, anything else as a 500).
    Handler handler(Action action);
    void configure();
    void routes();
    void volume_routes();  // /v1/volumes (volume_routes.cpp)
    void follow_logs(const httplib::Request& request, httplib::Response& response, const instances::Instance& instance);
    State& state_;
    std::string token_;
    std::unique_ptr<httplib::Server> http_;
};

}  // namespace kiln::api
