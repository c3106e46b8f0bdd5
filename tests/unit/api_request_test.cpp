// kilnd's request parsing: what a good body gives, and refusals that name the field.
#include <gtest/gtest.h>

#include "api/request.h"

namespace kiln::api {
namespace {

// The refusal parsing `body` as a create request gives: "status: message".
std::string refusal(const std::string& body) {
    try {
        parse_create(body);
    } catch (const ApiError& e) {
        return std::to_string(e.status) + ": " + e.message;
    }
    return "accepted";
}

TEST(ApiRequest, ACreateRequestWithEveryField) {
    const CreateRequest r = parse_create(R"({"image": "hello:v2", "name": "web-1", "args": ["/bin/hello", "7"],
        "env": {"A": "1"}, "memory_mb": 128, "restart_policy": "on-failure", "autostart": false, "timeout_s": 5,
        "cpu_shares": 512, "pids_limit": 16})");
    EXPECT_EQ(r.image, "hello:v2");
    EXPECT_EQ(r.name, "web-1");
    EXPECT_EQ(r.args, (std::vector<std::string>{"/bin/hello", "7"}));
    EXPECT_EQ(r.env, std::vector<std::string>{"A=1"});
    EXPECT_EQ(r.memory_mb, 128);
    EXPECT_EQ(r.restart_policy, "on-failure");
    EXPECT_FALSE(r.autostart);
    EXPECT_EQ(r.limits.cpu_shares, 512);
    EXPECT_EQ(r.limits.pids_limit, 16);
    const CreateRequest minimal = parse_create(R"({"image": "hello", "env": ["B=two words", "C="]})");
    EXPECT_FALSE(minimal.name.has_value());
    EXPECT_FALSE(minimal.memory_mb.has_value());
    EXPECT_EQ(minimal.env, (std::vector<std::string>{"B=two words", "C="}));
    EXPECT_TRUE(minimal.autostart);
    EXPECT_EQ(minimal.limits.cpu_shares, 1024);
    EXPECT_EQ(minimal.limits.pids_limit, 64);
}

TEST(ApiRequest, RefusalsNameTheField) {
    EXPECT_EQ(refusal("{"), "400: the request body is not valid JSON");
    EXPECT_EQ(refusal("[1]"), "400: the request body must be a JSON object");
    EXPECT_EQ(refusal("{}"), "400: field 'image' is required");
    EXPECT_EQ(refusal(R"({"image": "a", "colour": "red"})"), "400: unknown field 'colour'");
    EXPECT_EQ(refusal(R"({"image": 7})"), "400: field 'image' must be a string");
    EXPECT_EQ(refusal(R"({"image": "a", "args": "x"})"), "400: field 'args' must be a list of strings");
    EXPECT_EQ(refusal(R"({"image": "a", "args": [1]})"), "400: field 'args' must be a list of strings");
    EXPECT_EQ(refusal(R"({"image": "a", "env": ["NOVALUE"]})"), "400: field 'env': 'NOVALUE' is not NAME=VALUE");
    EXPECT_EQ(refusal(R"({"image": "a", "env": {"1X": "y"}})"), "400: field 'env': '1X' is not a variable name");
    EXPECT_EQ(refusal(R"({"image": "a", "memory_mb": "64"})"), "400: field 'memory_mb' must be an integer");
    EXPECT_EQ(refusal(R"({"image": "a", "memory_mb": 1.5})"), "400: field 'memory_mb' must be an integer");
    EXPECT_EQ(refusal(R"({"image": "a", "memory_mb": 4})"), "400: field 'memory_mb' must be between 16 and 3072");
    EXPECT_EQ(refusal(R"({"image": "a", "cpu_shares": 1})"), "400: field 'cpu_shares' must be between 2 and 262144");
    EXPECT_EQ(refusal(R"({"image": "a", "pids_limit": 7})"), "400: field 'pids_limit' must be between 8 and 4194304");
    EXPECT_EQ(refusal(R"({"image": "a", "memory_mb": 18446744073709551615})"),
              "400: field 'memory_mb' must be between 16 and 3072");
    EXPECT_EQ(refusal(R"({"image": "a", "restart_policy": "sometimes"})"),
              "400: field 'restart_policy' must be never, always or on-failure");
    EXPECT_EQ(refusal(R"({"image": "a", "autostart": "yes"})"), "400: field 'autostart' must be true or false");
    EXPECT_EQ(refusal(R"({"image": "a", "name": "Bad Name"})").substr(0, 30), "400: field 'name': 'Bad Name' ");
    EXPECT_EQ(refusal(std::string(kMaxBody + 1, ' ')), "413: the request body is larger than 1 MiB");
}

TEST(ApiRequest, Stop) {
    EXPECT_EQ(parse_stop("").drain_timeout_ms, 5000);
    EXPECT_TRUE(parse_stop(R"({"force": true})").force);
    try {
        parse_stop(R"({"drain": 1})");
        FAIL();
    } catch (const ApiError& e) {
        EXPECT_EQ(e.message, "unknown field 'drain'");
    }
}

TEST(ApiRequest, Batches) {
    const auto items = parse_batch(R"([{"uuid": "7f40a398"}, {"name": "web", "force": true}])");
    ASSERT_EQ(items.size(), 2u);
    EXPECT_EQ(items[0].id, "7f40a398");
    EXPECT_EQ(items[1].id, "web");
    EXPECT_EQ(items[1].fields, (nlohmann::json{{"force", true}}));
    auto refusal_of = [](const std::string& body) {
        try {
            parse_batch(body);
        } catch (const ApiError& e) {
            return e.message;
        }
        return std::string("accepted");
    };
    EXPECT_EQ(refusal_of("{}"), R"(a batch request is a list of {"uuid": ...} or {"name": ...} objects)");
    EXPECT_EQ(refusal_of("[]"), R"(a batch request is a list of {"uuid": ...} or {"name": ...} objects)");
    EXPECT_EQ(refusal_of("[1]"), "item 0 must be an object");
    EXPECT_EQ(refusal_of(R"([{"name": "a"}, {"uuid": "b", "name": "c"}])"),
              "item 1 must have exactly one of 'uuid' and 'name'");
    EXPECT_EQ(refusal_of(R"([{"name": 5}])"), "item 0: 'name' must be a string");
}

// The refusal parsing `body` as a service request gives.
std::string service_refusal(const std::string& body) {
    try {
        parse_service(body);
    } catch (const ApiError& e) {
        return std::to_string(e.status) + ": " + e.message;
    }
    return "accepted";
}

TEST(ApiRequest, AServiceRequestWithEveryField) {
    const ServiceRequest r = parse_service(R"({"name": "web", "services": [{"port": 443, "destination_port": 8080,
        "handlers": ["http"]}, {"port": 22}], "soft_limit": 2, "hard_limit": 8,
        "autoscale": {"min": 1, "max": 4, "cooldown_time_ms": 500}})");
    EXPECT_EQ(r.name, "web");
    ASSERT_EQ(r.ports.size(), 2u);
    EXPECT_EQ(r.ports[0].port, 443);
    EXPECT_EQ(r.ports[0].destination_port, 8080);
    EXPECT_EQ(r.ports[0].handlers, std::vector<std::string>{"http"});
    EXPECT_EQ(r.ports[1].destination_port, 22);  // the same port when not given
    EXPECT_EQ(
        (std::vector<int64_t>{r.soft_limit, r.hard_limit, r.autoscale_min, r.autoscale_max, r.autoscale_cooldown_ms}),
        (std::vector<int64_t>{2, 8, 1, 4, 500}));
}

TEST(ApiRequest, ServiceRefusalsNameTheField) {
    EXPECT_EQ(service_refusal("{}"), "400: field 'services' is required");
    EXPECT_EQ(service_refusal(R"({"services": []})"),
              "400: field 'services' must be a non-empty list of {port, destination_port, handlers}");
    EXPECT_EQ(service_refusal(R"({"services": [{"port": 70000}]})"),
              "400: services[0]: field 'port' must be between 1 and 65535");
    EXPECT_EQ(service_refusal(R"({"services": [{"port": 80, "handlers": ["tls"]}]})"),
              "400: services[0]: field 'handlers': 'tls' is not supported (http, or none for plain TCP)");
    EXPECT_EQ(service_refusal(R"({"services": [{"port": 80}, {"port": 80}]})"),
              "400: services[1]: field 'port': 80 twice");
    EXPECT_EQ(service_refusal(R"({"services": [{"port": 80}], "soft_limit": 5, "hard_limit": 2})"),
              "400: field 'soft_limit' must not be above 'hard_limit'");
    EXPECT_EQ(service_refusal(R"({"services": [{"port": 80}], "autoscale": {"max": 2}})"),
              "400: field 'autoscale' needs a 'soft_limit' to scale on");
    EXPECT_EQ(service_refusal(R"({"services": [{"port": 80}], "soft_limit": 1, "autoscale": {"min": 3, "max": 2}})"),
              "400: autoscale: field 'min' must not be above 'max'");
}

TEST(ApiRequest, AnInstanceJoinsOrMakesAServiceAndScalesToZeroOnlyBehindOne) {
    const CreateRequest join = parse_create(R"({"image": "a", "service_group": {"name": "web"},
        "scale_to_zero": {"policy": "on", "stateful": true, "cooldown_time_ms": 250}})");
    EXPECT_EQ(join.service, "web");
    EXPECT_EQ(join.scale_to_zero.policy, "on");
    EXPECT_TRUE(join.scale_to_zero.stateful);
    EXPECT_EQ(join.scale_to_zero.cooldown_ms, 250);
    const CreateRequest make = parse_create(R"({"image": "a", "service_group": {"services": [{"port": 8080}]}})");
    ASSERT_TRUE(make.new_service.has_value());
    EXPECT_EQ(make.new_service->ports.at(0).port, 8080);
    EXPECT_EQ(refusal(R"({"image": "a", "scale_to_zero": {"policy": "on"}})"),
              "400: field 'scale_to_zero': an instance scales to zero behind a service: give a service_group");
    EXPECT_EQ(refusal(R"({"image": "a", "service_group": {"name": "w"}, "scale_to_zero": {"policy": "sometimes"}})"),
              "400: scale_to_zero: field 'policy' must be off, on or idle");
    EXPECT_EQ(refusal(R"({"image": "a", "service_group": {"name": "w", "uuid": "u"}})"),
              "400: field 'service_group' takes one of 'name', 'uuid' or 'services'");
    EXPECT_EQ(refusal(R"({"image": "a", "service_group": {"services": [{"port": 1}], "colour": 1}})"),
              "400: service_group: unknown field 'colour'");
}

}  // namespace
}  // namespace kiln::api
