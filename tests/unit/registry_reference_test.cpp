// References to images in registries (HOST[:PORT]/REPO:TAG, @sha256:), and the local store's
// names for them: what parses, into what, and how a bad reference is named.
#include <gtest/gtest.h>

#include <string>

#include "images/image_store.h"
#include "images/registry_reference.h"

namespace kiln::images {
namespace {

const std::string kDigest = "sha256:" + std::string(64, 'a');

std::string error_of(const std::string& text) {
    try {
        parse_registry_reference(text);
    } catch (const RegistryError& e) {
        return e.what();
    }
    return "";
}

TEST(RegistryReference, HostPortRepositoryAndTag) {
    const auto r = parse_registry_reference("127.0.0.1:5000/team/app:v1.2");
    EXPECT_EQ(r.host, "127.0.0.1:5000");
    EXPECT_EQ(r.repository, "team/app");
    EXPECT_EQ(r.tag, "v1.2");
    EXPECT_EQ(r.digest, "");
    EXPECT_EQ(r.target(), "v1.2");
    EXPECT_EQ(r.name(), "127.0.0.1:5000/team/app");
    EXPECT_EQ(r.str(), "127.0.0.1:5000/team/app:v1.2");
}

TEST(RegistryReference, TheTagDefaultsToLatest) {
    const auto r = parse_registry_reference("registry.example.com/app");
    EXPECT_EQ(r.host, "registry.example.com");
    EXPECT_EQ(r.tag, "latest");
    EXPECT_EQ(r.str(), "registry.example.com/app:latest");
    EXPECT_EQ(parse_registry_reference("localhost/app").host, "localhost");
}

TEST(RegistryReference, ByDigest) {
    const auto r = parse_registry_reference("localhost:5000/app@" + kDigest);
    EXPECT_EQ(r.digest, kDigest);
    EXPECT_EQ(r.tag, "");
    EXPECT_EQ(r.target(), kDigest);
    EXPECT_EQ(r.local_tag(), "@" + kDigest);
    EXPECT_EQ(r.str(), "localhost:5000/app@" + kDigest);
}

TEST(RegistryReference, WhatIsARegistryReference) {
    EXPECT_TRUE(is_registry_reference("example.com/app"));
    EXPECT_TRUE(is_registry_reference("host:5000/app"));
    EXPECT_TRUE(is_registry_reference("localhost/app"));
    EXPECT_FALSE(is_registry_reference("app:v1"));
    EXPECT_FALSE(is_registry_reference("team/app"));  // docker's Hub; not a registry Kiln knows
}

TEST(RegistryReference, BadReferencesAreNamed) {
    EXPECT_NE(error_of("app:v1").find("'app:v1' names no registry: expected HOST[:PORT]/REPO:TAG"), std::string::npos);
    EXPECT_NE(error_of("team/app").find("names no registry"), std::string::npos);
    EXPECT_NE(error_of("host:99999/app").find("'host:99999' is not a valid HOST[:PORT]"), std::string::npos);
    EXPECT_NE(error_of("host:/app").find("is not a valid HOST[:PORT]"), std::string::npos);
    EXPECT_NE(error_of("host.io/App:v1").find("'App' is not a valid repository"), std::string::npos);
    EXPECT_NE(error_of("host.io/app/:v1").find("'app/' is not a valid repository"), std::string::npos);
    EXPECT_NE(error_of("host.io/:v1").find("'' is not a valid repository"), std::string::npos);
    EXPECT_NE(error_of("host.io/app:V!").find("'V!' is not a valid tag"), std::string::npos);
    EXPECT_NE(error_of("host.io/app:").find("'' is not a valid tag"), std::string::npos);
    EXPECT_NE(error_of("host.io/app@sha256:abc").find("'sha256:abc' is not a digest"), std::string::npos);
    EXPECT_NE(error_of("host.io/app@md5:" + std::string(64, 'a')).find("is not a digest"), std::string::npos);
    EXPECT_NE(error_of("host.io/app@" + std::string("sha256:") + std::string(64, 'A')).find("is not a digest"),
              std::string::npos);
}

TEST(RegistryReference, TheLocalStoreNamesRegistryImages) {
    EXPECT_EQ(parse_reference("127.0.0.1:5000/team/app:v1"),
              std::make_pair(std::string("127.0.0.1:5000/team/app"), std::string("v1")));
    EXPECT_EQ(parse_reference("127.0.0.1:5000/team/app"),
              std::make_pair(std::string("127.0.0.1:5000/team/app"), std::string("latest")));
    EXPECT_EQ(parse_reference("host.io/app@" + kDigest), std::make_pair(std::string("host.io/app"), "@" + kDigest));
    EXPECT_EQ((Image{"host.io/app", "@" + kDigest}.reference()), "host.io/app@" + kDigest);
    EXPECT_EQ((Image{"host.io/app", "v1"}.reference()), "host.io/app:v1");
    EXPECT_EQ(parse_reference("web"), std::make_pair(std::string("web"), std::string("latest")));
    EXPECT_THROW(parse_reference("team/app:v1"), StoreError);  // a '/' only after a registry's host
    EXPECT_THROW(parse_reference("host.io/app@sha256:12"), StoreError);
}

}  // namespace
}  // namespace kiln::images
