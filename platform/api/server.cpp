#include "api/server.h"

#include <httplib.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <map>
#include <set>
#include <thread>

#include "api/request.h"
#include "api/volume_routes.h"
#include "images/registry.h"
#include "images/registry_reference.h"
#include "instances/metrics.h"
#include "instances/vmm_control.h"
#include "services/metrics.h"
#include "store/sqlite.h"

namespace kiln::api {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

void reply(httplib::Response& response, Clock::time_point started, int status, const std::string& message,
           const json& data) {
    json body = {{"status", status < 400 ? "success" : "error"},
                 {"message", message},
                 {"data", data},
                 {"errors", status < 400 ? json::array() : json::array({{{"status", status}, {"message", message}}})},
                 {"op_time_us", std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - started).count()}};
    response.status = status;
    // Console output need not be UTF-8: replace what is not rather than fail.
    response.set_content(body.dump(-1, ' ', false, json::error_handler_t::replace) + "\n", "application/json");
}

namespace {

// An instance's image: here, or a registry's pulled on demand (HOST[:PORT]/REPO:TAG or @sha256:...,
// as `kiln run REF` does), with kiln login's credentials and the environment's CA and insecure
// registries. The state lock is held: one pull at a time, and no request sees half an image.
images::Image find_or_pull(State& state, const std::string& reference) {
    if (auto image = state.images.find(reference)) return *image;
    if (!images::is_registry_reference(reference) || state.state_dir.empty())
        throw ApiError{404, "no image '" + reference + "'"};
    const images::RegistryReference parsed = images::parse_registry_reference(reference);
    if (auto image = state.images.find(parsed.str())) return *image;
    images::RegistryOptions options = images::registry_options_from_environment(state.state_dir, parsed.host);
    try {
        options.kernel_path = images::default_kernel_path();  // what a pulled container image runs on
    } catch (const std::exception&) {
        options.kernel_path.clear();  // pull_image says so if it needs one
    }
    try {
        return images::pull_image(state.images, parsed, options).image;
    } catch (const std::exception& e) {
        throw ApiError{502, "pulling '" + reference + "': " + e.what()};
    }
}

int64_t now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

// The platform an instance runs on: the one asked for, else the host's default. Either must be on
// this host and among those the image was built for (its Kraftfile's targets; both when it
// names none).
std::string choose_platform(const instances::HostPlatforms& host, const std::optional<std::string>& asked,
                            const images::Image& image) {
    std::vector<std::string> built_for = {instances::kPlatformKvm, instances::kPlatformProc};
    if (image.manifest.contains("platforms")) built_for = image.manifest["platforms"].get<std::vector<std::string>>();
    const auto allows = [&](const std::string& p) {
        return std::find(built_for.begin(), built_for.end(), p) != built_for.end();
    };
    std::string names;
    for (const auto& p : built_for) names += (names.empty() ? "" : " and ") + p;
    if (asked) {
        if (!allows(*asked))
            throw ApiError{400, "platform " + *asked + ": image '" + image.reference() + "' is built for " + names +
                                    " (its Kraftfile's targets)"};
        const auto& support = host.of(*asked);
        if (!support.available) throw ApiError{400, "platform " + *asked + ": not on this host: " + support.missing};
        return *asked;
    }
    if (!host.default_platform.empty() && allows(host.default_platform)) return host.default_platform;
    for (const auto& p : built_for)
        if (host.of(p).available) return p;
    // A host with no platform at all (kilnd said so at its start) still keeps instances: each
    // fails to start with its tender's reason, as on a host that loses /dev/kvm.
    if (host.default_platform.empty()) return built_for.front();
    throw ApiError{400, "image '" + image.reference() + "' is built for " + names + ", which this host does not have"};
}

}  // namespace

Server::Server(State& state, std::string token)
    : state_(state), token_(std::move(token)), http_(std::make_unique<httplib::Server>()) {
    configure();
}

Server::Server(State& state, std::string token, const std::string& tls_cert, const std::string& tls_key)
    : state_(state), token_(std::move(token)) {
    auto tls = std::make_unique<httplib::SSLServer>(tls_cert.c_str(), tls_key.c_str());
    if (!tls->is_valid())
        throw std::runtime_error("--tls-cert " + tls_cert + " / --tls-key " + tls_key +
                                 ": not a usable PEM certificate and matching private key");
    http_ = std::move(tls);
    configure();
}

void Server::configure() {
    if (!token_.empty()) {
        http_->set_pre_routing_handler([this](const httplib::Request& request, httplib::Response& response) {
            const std::string given = request.get_header_value("Authorization");
            const std::string expected = "Bearer " + token_;
            // Compared in full whatever differs first: the time says nothing about the token.
            const bool same = given.size() == expected.size();
            unsigned char difference = 0;
            for (size_t i = 0; i < std::min(given.size(), expected.size()); ++i)
                difference |= static_cast<unsigned char>(given[i] ^ expected[i]);
            if (same && difference == 0) return httplib::Server::HandlerResponse::Unhandled;
            reply(response, Clock::now(), 401, "a bearer token is required (Authorization: Bearer TOKEN)");
            return httplib::Server::HandlerResponse::Handled;
        });
    }
    // JSON bodies are held to kMaxBody by parse_body; only an image upload may be larger.
    http_->set_payload_max_length(kMaxImageUpload);
    // Followers of logs hold a thread each for as long as they follow.
    http_->new_task_queue = [] { return new httplib::ThreadPool(64); };
    // httplib's own refusals (no route, a body over the limit, a bad request line) in the envelope too.
    http_->set_error_handler([](const httplib::Request& request, httplib::Response& response) {
        if (!response.body.empty()) return;
        const std::string message = response.status == 404 ? "no such endpoint: " + request.method + " " + request.path
                                    : response.status == 413
                                        ? std::string("the request body is larger than 1 MiB")
                                        : "bad request (HTTP " + std::to_string(response.status) + ")";
        reply(response, Clock::now(), response.status, message);
    });
    routes();
}

Server::~Server() = default;

bool Server::listen_unix(const std::string& path) {
    ::unlink(path.c_str());
    http_->set_address_family(AF_UNIX);
    if (!http_->bind_to_port(path.c_str(), 80)) return false;
    ::chmod(path.c_str(), 0600);  // the socket's permissions are its access control
    return http_->listen_after_bind();
}

bool Server::listen_tcp(const std::string& host, int port) { return http_->listen(host.c_str(), port); }

void Server::stop() { http_->stop(); }

Server::Handler Server::handler(Action action) {
    return [this, action = std::move(action)](const httplib::Request& request, httplib::Response& response) {
        const auto started = Clock::now();
        try {
            std::lock_guard lock(state_.mutex);
            action(request, response, started);
        } catch (const ApiError& e) {
            reply(response, started, e.status, e.message);
        } catch (const std::exception& e) {
            reply(response, started, 500, e.what());
        }
    };
}

void Server::routes() {
    // The same, for an action that must let go of the lock while it waits (it gets the lock).
    auto handle_unlocking = [this](auto action) {
        return [this, action](const httplib::Request& request, httplib::Response& response) {
            const auto started = Clock::now();
            try {
                std::unique_lock lock(state_.mutex);
                action(request, response, started, lock);
            } catch (const ApiError& e) {
                reply(response, started, e.status, e.message);
            } catch (const std::exception& e) {
                reply(response, started, 500, e.what());
            }
        };
    };
    auto find = [this](const std::string& id) {
        auto instance = state_.instances.find(id);
        if (!instance) throw ApiError{404, "no instance '" + id + "'"};
        return *instance;
    };

    http_->Get("/v1/healthz", handler([](const auto&, auto& response, auto started) {
                   reply(response, started, 200, "kilnd is running", {{"pid", ::getpid()}});
               }));

    // The host: which platforms instances can run on here (and why not), and the default.
    http_->Get("/v1/info", handler([this](const auto&, auto& response, auto started) {
                   nlohmann::json info = state_.platforms.to_json();
                   info["network"] = state_.controller != nullptr;
                   if (!state_.no_network_reason.empty()) info["network_missing"] = state_.no_network_reason;
                   reply(response, started, 200, "host", info);
               }));

    // Metrics: the instance list under the lock, each kiln-vmm's stats outside it (a slow one must
    // not hold up the API). Registered before /v1/instances/{id}, which would match "metrics".
    auto metrics = [this](const httplib::Request& request, httplib::Response& response, const std::string& id) {
        const auto started = Clock::now();
        std::vector<instances::Instance> chosen;
        try {
            std::lock_guard lock(state_.mutex);
            if (id.empty()) {
                chosen = state_.instances.list();
            } else if (auto one = state_.instances.find(id)) {
                chosen.push_back(*one);
            } else {
                throw ApiError{404, "no instance '" + id + "'"};
            }
        } catch (const ApiError& e) {
            return reply(response, started, e.status, e.message);
        }
        const int64_t now =
            std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
                .count();
        std::vector<json> all;
        std::map<std::string, balancer::ServiceStats> balanced;  // per service, asked once
        for (const auto& instance : chosen) {
            json stats;
            if (instance.state == instances::kRunning)
                if (auto answer = instances::control_request(
                        state_.supervisor.instance_dir(instance.uuid) + "/control.sock", {{"op", "stats"}}))
                    stats = (*answer)["stats"];
            json m = instances::instance_metrics(instance, stats, now);
            if (!instance.service.empty() && state_.controller) {
                if (!balanced.count(instance.service))
                    balanced[instance.service] = state_.controller->stats(instance.service);
                const auto& backends = balanced[instance.service].backends;
                if (auto b = backends.find(instance.uuid); b != backends.end()) {
                    m["nconns"] = b->second.connections;
                    m["nreqs"] = b->second.total;
                    const auto& h = b->second.wake_latencies;
                    m["wakeup_latency"] = {
                        {"buckets", std::vector<int64_t>(std::begin(h.buckets), std::end(h.buckets))},
                        {"sum_s", h.sum},
                        {"count", h.count}};
                }
            }
            all.push_back(std::move(m));
        }
        if (request.get_header_value("Accept").find("application/json") != std::string::npos)
            return reply(response, started, 200, "", {{"instances", all}});
        response.set_content(instances::prometheus_text(all), "text/plain; version=0.0.4");
    };
    http_->Get("/v1/instances/metrics", [metrics](const httplib::Request& request, httplib::Response& response) {
        metrics(request, response, "");
    });
    http_->Get(R"(/v1/instances/([^/]+)/metrics)",
               [metrics](const httplib::Request& request, httplib::Response& response) {
                   metrics(request, response, request.matches[1]);
               });

    // An image built by a remote kiln: multipart fields `reference` and `manifest`, and one
    // `blob` part per blob, its filename the digest. The store checks every digest.
    http_->Post("/v1/images", handler([this](const auto& request, auto& response, auto started) {
                    if (!request.is_multipart_form_data())
                        throw ApiError{400, "an image upload is multipart/form-data (reference, manifest, blob...)"};
                    if (!request.has_file("reference") || !request.has_file("manifest"))
                        throw ApiError{400, "an image upload needs the parts 'reference' and 'manifest'"};
                    std::map<std::string, std::string> blobs;
                    for (const auto& [name, part] : request.files)
                        if (name == "blob") blobs[part.filename] = part.content;
                    try {
                        const auto image = state_.images.import(request.get_file_value("reference").content,
                                                                request.get_file_value("manifest").content, blobs);
                        reply(response, started, 201, "imported",
                              {{"name", image.reference()}, {"digest", image.digest}, {"manifest", image.manifest}});
                    } catch (const images::StoreError& e) {
                        throw ApiError{400, e.what()};
                    }
                }));
    http_->Get(R"(/v1/images/(.+))", handler([this](const auto& request, auto& response, auto started) {
                   const auto image = state_.images.find(request.matches[1]);
                   if (!image) throw ApiError{404, "no image '" + std::string(request.matches[1]) + "'"};
                   reply(response, started, 200, "",
                         {{"name", image->reference()},
                          {"digest", image->digest},
                          {"created_ns", image->created_ns},
                          {"manifest", image->manifest}});
               }));
    http_->Delete(R"(/v1/images/(.+))", handler([this](const auto& request, auto& response, auto started) {
                      const std::string reference = request.matches[1];
                      const auto image = state_.images.find(reference);
                      if (!image) throw ApiError{404, "no image '" + reference + "'"};
                      for (const auto& instance : state_.instances.list())
                          if (instance.image_digest == image->digest)
                              throw ApiError{409, "image '" + reference + "' is instance '" + instance.name +
                                                      "'s: remove the instance first"};
                      reply(response, started, 200, "removed", {{"removed", state_.images.remove(reference)}});
                  }));
    http_->Get("/v1/images", handler([this](const auto&, auto& response, auto started) {
                   json images = json::array();
                   for (const auto& image : state_.images.list())
                       images.push_back({{"name", image.reference()},
                                         {"digest", image.digest},
                                         {"created_ns", image.created_ns},
                                         {"manifest", image.manifest}});
                   reply(response, started, 200, "", {{"images", images}});
               }));

    // A service from a request, opened on the balancer and recorded; its ports are bound first,
    // so a port in use is refused before anything is stored.
    auto create_service = [this](const ServiceRequest& request, const std::string& fallback_name) {
        if (!state_.controller)
            throw ApiError{503, "services need kilnd's private network: " + state_.no_network_reason};
        services::Service service;
        service.uuid = instances::new_uuid();
        service.name = request.name.value_or(fallback_name);
        if (state_.services.find(service.name)) throw ApiError{409, "a service named '" + service.name + "' exists"};
        for (const auto& p : request.ports)
            service.ports.push_back({static_cast<int>(p.port), static_cast<int>(p.destination_port), p.handlers});
        for (const auto& mine : service.ports)
            if (const auto owner = state_.services.port_owner(mine.port))
                throw ApiError{409, "port " + std::to_string(mine.port) + " is service '" + *owner + "'s"};
        service.soft_limit = request.soft_limit;
        service.hard_limit = request.hard_limit;
        service.autoscale_min = request.autoscale_min;
        service.autoscale_max = request.autoscale_max;
        service.autoscale_cooldown_ms = request.autoscale_cooldown_ms;
        service.created_ns = now_ns();
        try {
            state_.controller->open(service);
        } catch (const std::runtime_error& e) {
            throw ApiError{409, std::string("cannot listen: ") + e.what()};
        }
        try {
            state_.services.insert(service);
        } catch (...) {
            state_.controller->close(service.uuid);
            throw;
        }
        return service;
    };

    http_->Post("/v1/instances",
                handle_unlocking([this, create_service](const auto& request, auto& response, auto started, auto& lock) {
                    const CreateRequest create = parse_create(request.body);
                    instances::Instance instance;
                    const std::optional<images::Image> image = find_or_pull(state_, create.image);
                    instance.image = image->reference();
                    instance.image_digest = image->digest;
                    instance.uuid = instances::new_uuid();
                    instance.name = create.name.value_or(image->name + "-" + instance.uuid.substr(0, 6));
                    if (state_.instances.find(instance.name))
                        throw ApiError{409, "an instance named '" + instance.name + "' exists"};
                    instance.args = create.args;
                    instance.env = create.env;
                    instance.memory_mb = create.memory_mb.value_or(image->manifest["memory_mb"].get<int64_t>());
                    instance.platform = choose_platform(state_.platforms, create.platform, *image);
                    instance.limits = create.limits;
                    instance.restart_policy = create.restart_policy;
                    instance.scale_to_zero.policy = create.scale_to_zero.policy;
                    instance.scale_to_zero.stateful = create.scale_to_zero.stateful;
                    instance.scale_to_zero.cooldown_ms = create.scale_to_zero.cooldown_ms;
                    if (create.service) {
                        const auto service = state_.services.find(*create.service);
                        if (!service) throw ApiError{404, "no service '" + *create.service + "'"};
                        instance.service = service->uuid;
                    }
                    const bool autostart = create.autostart;
                    instance.created_ns = now_ns();
                    // Its volumes checked before anything is made; recorded with the instance.
                    const auto attachments = plan_attachments(state_, instance.uuid, create.volumes);
                    if (create.new_service) instance.service = create_service(*create.new_service, instance.name).uuid;
                    if (attachments.empty()) {
                        state_.instances.insert(instance);
                    } else {
                        store::Transaction transaction(state_.volumes->db());
                        state_.instances.insert(instance);
                        for (const auto& a : attachments) state_.volumes->attach(a);
                        transaction.commit();
                    }
                    if (autostart) state_.supervisor.start(instance);
                    if (autostart && create.timeout_s > 0) {
                        // Wait, without the lock, for the app to listen (its `ready` event), for
                        // kiln-vmm to end, or for the time to run out; then say where it is.
                        const int64_t pid = instance.pid, start = instance.pid_start;
                        lock.unlock();
                        instances::wait_ready(state_.supervisor.control_socket(instance.uuid),
                                              std::chrono::seconds(create.timeout_s),
                                              [pid, start] { return instances::process_running(pid, start); });
                        lock.lock();
                        if (auto now = state_.instances.find(instance.uuid)) instance = *now;
                    }
                    json created = instance.to_json();
                    created["volumes"] = instance_volumes(state_, instance.uuid);
                    reply(response, started, 201, "created", created);
                }));

    http_->Post("/v1/services", handler([create_service](const auto& request, auto& response, auto started) {
                    const ServiceRequest r = parse_service(request.body);
                    reply(response, started, 201, "created",
                          create_service(r, "service-" + instances::new_uuid().substr(0, 6)).to_json());
                }));
    auto find_service = [this](const std::string& id) {
        auto service = state_.services.find(id);
        if (!service) throw ApiError{404, "no service '" + id + "'"};
        return *service;
    };
    auto service_json = [this](const services::Service& service) {
        json j = service.to_json();
        json members = json::array();
        for (const auto& instance : state_.instances.list())
            if (instance.service == service.uuid)
                members.push_back({{"uuid", instance.uuid}, {"name", instance.name}, {"state", instance.state}});
        j["instances"] = members;
        if (state_.controller)
            if (auto wake = state_.controller->last_wake(service.uuid)) j["last_wake"] = std::move(*wake);
        return j;
    };
    http_->Get("/v1/services/metrics", handler([this](const auto& request, auto& response, auto started) {
                   std::vector<services::ServiceFigures> all;
                   for (const auto& service : state_.services.list()) {
                       services::ServiceFigures figures{service, {}, {}};
                       if (state_.controller) {
                           figures.stats = state_.controller->stats(service.uuid);
                           figures.wake_steps = state_.controller->wake_steps(service.uuid);
                       }
                       all.push_back(std::move(figures));
                   }
                   if (request.get_header_value("Accept").find("application/json") != std::string::npos) {
                       json out = json::array();
                       for (const auto& [service, stats, steps] : all) {
                           json wake_steps = json::object();
                           for (const auto& [step, h] : steps)
                               wake_steps[step] = {{"count", h.count}, {"sum_s", h.sum}};
                           out.push_back({{"uuid", service.uuid},
                                          {"name", service.name},
                                          {"connections", stats.accepted},
                                          {"failed_connections", stats.failed},
                                          {"queued_connections", stats.queued},
                                          {"wakeups", stats.wake_latencies.count},
                                          {"wakeup_latency_s", stats.wake_latencies.sum},
                                          {"wake_steps", wake_steps}});
                       }
                       return reply(response, started, 200, "", {{"services", out}});
                   }
                   response.set_content(services::prometheus_text(all), "text/plain; version=0.0.4");
               }));
    http_->Get("/v1/services", handler([this, service_json](const auto&, auto& response, auto started) {
                   json all = json::array();
                   for (const auto& service : state_.services.list()) all.push_back(service_json(service));
                   reply(response, started, 200, "", {{"services", all}});
               }));
    http_->Get(R"(/v1/services/([^/]+))",
               handler([find_service, service_json](const auto& request, auto& response, auto started) {
                   reply(response, started, 200, "", service_json(find_service(request.matches[1])));
               }));
    http_->Delete(R"(/v1/services/([^/]+))",
                  handler([this, find_service](const auto& request, auto& response, auto started) {
                      const auto service = find_service(request.matches[1]);
                      for (const auto& instance : state_.instances.list())
                          if (instance.service == service.uuid)
                              throw ApiError{409, "service '" + service.name + "' still has instance '" +
                                                      instance.name + "': delete it first"};
                      if (state_.controller) state_.controller->close(service.uuid);
                      state_.services.remove(service.uuid);
                      reply(response, started, 200, "deleted",
                            {{"uuid", service.uuid}, {"name", service.name}, {"state", "deleted"}});
                  }));

    http_->Get("/v1/instances", handler([this](const auto&, auto& response, auto started) {
                   json all = json::array();
                   for (const auto& instance : state_.instances.list()) all.push_back(instance.to_json());
                   reply(response, started, 200, "", {{"instances", all}});
               }));

    http_->Get(R"(/v1/instances/([^/]+))", handler([this, find](const auto& request, auto& response, auto started) {
                   const auto instance = find(request.matches[1]);
                   json j = instance.to_json();
                   j["volumes"] = instance_volumes(state_, instance.uuid);
                   reply(response, started, 200, "", j);
               }));

    // Start, stop and delete, one instance each; the single and the batch forms share them.
    auto start_one = [this, find](const std::string& id, const json& body) {
        Fields(body, {});
        auto instance = find(id);
        if (instance.state != instances::kStopped && instance.state != instances::kStandby)
            throw ApiError{409, "instance '" + instance.name + "' is " + instance.state};
        const std::string snapshot = state_.supervisor.snapshot_dir(instance.uuid);
        const bool restore = instance.state == instances::kStandby && std::filesystem::exists(snapshot + "/state");
        state_.supervisor.start(instance, restore ? snapshot : std::string());
        return instance.to_json();
    };
    auto stop_one = [this, find](const std::string& id, const json& body) {
        const StopRequest stop = parse_stop_fields(body);
        auto instance = find(id);
        state_.supervisor.stop(instance, std::chrono::milliseconds(stop.drain_timeout_ms), stop.force);
        return instance.to_json();
    };
    auto delete_one = [this, find](const std::string& id, const json& body) {
        Fields(body, {});
        auto instance = find(id);
        state_.supervisor.forget(instance);
        if (state_.volumes) {  // its volumes are detached with it
            store::Transaction transaction(state_.volumes->db());
            state_.volumes->detach_instance(instance.uuid);
            state_.instances.remove(instance.uuid);
            transaction.commit();
        } else {
            state_.instances.remove(instance.uuid);
        }
        // How it ended, as its last GET would say: `kiln run --rm` needs no GET before the delete.
        json deleted{{"uuid", instance.uuid}, {"name", instance.name}, {"state", "deleted"}};
        if (instance.exit_code) deleted["exit_code"] = *instance.exit_code;
        if (instance.vmm_status) deleted["vmm_status"] = *instance.vmm_status;
        return deleted;
    };
    // A batch answers for every item: 200 if all went well, else 207 with each failure in errors.
    auto batch = [this](auto action, const char* done) {
        return handler([action, done](const auto& request, auto& response, auto started) {
            json results = json::array(), errors = json::array();
            for (const auto& item : parse_batch(request.body)) {
                try {
                    json result = action(item.id, item.fields);
                    result["status"] = "success";
                    results.push_back(result);
                } catch (const ApiError& e) {
                    results.push_back({{"id", item.id}, {"status", "error"}, {"message", e.message}});
                    errors.push_back({{"status", e.status}, {"message", item.id + ": " + e.message}});
                }
            }
            reply(response, started, errors.empty() ? 200 : 207, errors.empty() ? done : "some failed",
                  {{"instances", results}});
            if (!errors.empty()) {
                json body = json::parse(response.body);
                body["errors"] = errors;
                body["status"] = "error";
                response.set_content(body.dump(-1, ' ', false, json::error_handler_t::replace) + "\n",
                                     "application/json");
            }
        });
    };
    http_->Put("/v1/instances/start", batch(start_one, "started"));
    http_->Put("/v1/instances/stop", batch(stop_one, "stopped"));
    http_->Delete("/v1/instances", batch(delete_one, "deleted"));
    auto single = [this](auto action, const char* done) {
        return handler([action, done](const auto& request, auto& response, auto started) {
            reply(response, started, 200, done, action(request.matches[1], parse_body(request.body)));
        });
    };
    http_->Put(R"(/v1/instances/([^/]+)/start)", single(start_one, "started"));
    http_->Put(R"(/v1/instances/([^/]+)/stop)", single(stop_one, "stopped"));
    http_->Delete(R"(/v1/instances/([^/]+))", single(delete_one, "deleted"));

    http_->Get(R"(/v1/instances/([^/]+)/logs)",
               handler([this, find](const auto& request, auto& response, auto started) {
                   const auto instance = find(request.matches[1]);
                   if (request.get_param_value("follow") == "true") return follow_logs(request, response, instance);
                   auto number = [&](const char* key, int64_t fallback) -> int64_t {
                       if (!request.has_param(key)) return fallback;
                       try {
                           return std::stoll(request.get_param_value(key));
                       } catch (const std::exception&) {
                           throw ApiError{400, std::string("parameter '") + key + "' must be an integer"};
                       }
                   };
                   // Only the asked range is read: a long-lived instance's log may be large.
                   std::ifstream log(state_.supervisor.instance_dir(instance.uuid) + "/console.log", std::ios::binary);
                   log.seekg(0, std::ios::end);
                   const int64_t size = log ? static_cast<int64_t>(log.tellg()) : 0;
                   const int64_t offset = std::clamp<int64_t>(number("offset", 0), 0, size);
                   const int64_t limit = std::clamp<int64_t>(number("limit", 1 << 20), 0, 1 << 20);
                   const int64_t end = std::min(size, offset + limit);
                   std::string text(static_cast<size_t>(end - offset), '\0');
                   log.seekg(offset);
                   log.read(text.data(), static_cast<std::streamsize>(text.size()));
                   text.resize(static_cast<size_t>(std::max<std::streamsize>(log.gcount(), 0)));
                   reply(response, started, 200, "",
                         {{"output", text},
                          {"range", {{"start", offset}, {"end", offset + static_cast<int64_t>(text.size())}}},
                          {"available", {{"start", 0}, {"end", size}}},
                          {"state", instance.state}});
               }));

    volume_routes();
}

void State::changed() {
    {
        std::lock_guard guard(change_mutex);
        ++changes;
    }
    change.notify_all();
}

void State::wait_for_change(std::chrono::milliseconds limit) {
    std::unique_lock lock(change_mutex);
    const uint64_t seen = changes;
    change.wait_for(lock, limit, [&] { return changes != seen; });
}

// The console from `offset` as it comes, in one chunked text/plain answer that ends once the
// instance is no longer running and everything it wrote has been sent. One server thread per
// follower (the pool is sized for it); the state is looked at under the lock every 20 ms, and at
// once when the reconciler saw a tender end.
void Server::follow_logs(const httplib::Request& request, httplib::Response& response,
                         const instances::Instance& instance) {
    int64_t offset = 0;
    try {
        offset = std::max<int64_t>(
            std::stoll(request.get_param_value("offset").empty() ? "0" : request.get_param_value("offset")), 0);
    } catch (const std::exception&) {
        throw ApiError{400, "parameter 'offset' must be an integer"};
    }
    const std::string path = state_.supervisor.instance_dir(instance.uuid) + "/console.log";
    const std::string uuid = instance.uuid;
    auto position = std::make_shared<int64_t>(offset);
    response.set_chunked_content_provider("text/plain", [this, path, uuid, position](size_t, httplib::DataSink& sink) {
        for (;;) {
            bool ended;
            {
                std::lock_guard lock(state_.mutex);
                const auto now = state_.instances.find(uuid);
                ended = !now || (now->state != instances::kRunning && now->state != instances::kStarting &&
                                 now->state != instances::kStopping);
            }
            std::ifstream log(path, std::ios::binary);
            log.seekg(*position);
            char buffer[65536];
            log.read(buffer, sizeof(buffer));
            const std::streamsize n = log.gcount();  // a short read at the end sets failbit; still counted
            if (n > 0) {
                *position += n;
                return sink.write(buffer, static_cast<size_t>(n));
            }
            if (ended) {  // read after the state: nothing it wrote before it ended is lost
                sink.done();
                return true;
            }
            if (!sink.is_writable()) return false;  // the client left
            state_.wait_for_change(std::chrono::milliseconds(20));
        }
    });
}

}  // namespace kiln::api
