// OCI image manifests: a Kiln image's (stable bytes, its media types), and the parser of what a
// registry sends (a container image's, an index, and malformed ones named).
#include <gtest/gtest.h>

#include <string>

#include "images/oci_manifest.h"

namespace kiln::images {
namespace {

const std::string kA = "sha256:" + std::string(64, 'a'), kB = "sha256:" + std::string(64, 'b'),
                  kC = "sha256:" + std::string(64, 'c');

std::string error_of(const std::string& text) {
    try {
        parse_oci_manifest(text);
    } catch (const RegistryError& e) {
        return e.what();
    }
    return "";
}

TEST(OciManifest, AKilnImageIsItsManifestAsConfigAndItsBlobsAsLayers) {
    Image image{
        "web", "v1", kA, 0, {{"kernel", {{"digest", kB}, {"size", 10}}}, {"rootfs", {{"digest", kC}, {"size", 20}}}}};
    const std::string text = oci_manifest_for(image, "{\"kernel\":1}");
    EXPECT_EQ(text, oci_manifest_for(image, "{\"kernel\":1}"));
    const OciManifest m = parse_oci_manifest(text);
    EXPECT_EQ(m.media_type, kOciManifestType);
    EXPECT_EQ(m.config.media_type, kKilnConfigType);
    EXPECT_EQ(m.config.digest, kA);
    EXPECT_EQ(m.config.size, 12u);
    ASSERT_EQ(m.layers.size(), 2u);
    EXPECT_EQ(m.layers[0].media_type, kKilnKernelType);
    EXPECT_EQ(m.layers[0].title, "kernel");
    EXPECT_EQ(m.layers[1].media_type, kKilnRootfsType);
    EXPECT_EQ((m.layers[1].digest + " " + std::to_string(m.layers[1].size)), kC + " 20");
}

TEST(OciManifest, ADockerManifestAndAnIndex) {
    const OciManifest docker = parse_oci_manifest(
        R"({"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json",)"
        R"("config":{"mediaType":"application/vnd.docker.container.image.v1+json","digest":")" +
        kA + R"(","size":5},"layers":[{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","digest":")" +
        kB + R"(","size":7}]})");
    EXPECT_EQ(docker.config.media_type, kDockerConfigType);
    ASSERT_EQ(docker.layers.size(), 1u);
    const std::string index = R"({"schemaVersion":2,"manifests":[)"
                              R"({"digest":")" +
                              kA +
                              R"(","platform":{"os":"linux","architecture":"arm64"}},)"
                              R"({"digest":")" +
                              kB + R"(","platform":{"os":"linux","architecture":"amd64"}}]})";
    EXPECT_EQ(parse_oci_manifest(index).media_type, kOciIndexType);
    EXPECT_EQ(platform_manifest(index, "h.io/app:v1"), kB);
    EXPECT_THROW(platform_manifest(R"({"manifests":[{"digest":7,"platform":{"os":1}}]})", "h.io/app:v1"),
                 RegistryError);
}

TEST(OciManifest, MalformedManifestsAreNamed) {
    EXPECT_EQ(error_of("not json"), "manifest: not a JSON object");
    EXPECT_EQ(error_of(R"({"schemaVersion":1})"), "manifest: schemaVersion is not 2");
    EXPECT_EQ(error_of(R"({"schemaVersion":2,"mediaType":"text/plain"})"), "manifest: unknown mediaType text/plain");
    EXPECT_EQ(error_of(R"({"schemaVersion":2})"), "manifest: no config");
    EXPECT_EQ(error_of(R"({"schemaVersion":2,"config":{"mediaType":"x","digest":"sha256:12","size":1}})"),
              "manifest: config has no sha256 digest");
    EXPECT_EQ(error_of(R"({"schemaVersion":2,"config":{"mediaType":"x","digest":")" + kA + R"(","size":-1}})"),
              "manifest: config has no size");
    EXPECT_EQ(error_of(R"({"schemaVersion":2,"config":{"mediaType":"x","digest":")" + kA + R"(","size":1}})"),
              "manifest: no layers array");
    EXPECT_EQ(error_of(R"({"schemaVersion":2,"config":{"mediaType":"x","digest":")" + kA +
                       R"(","size":1},"layers":[{"digest":")" + kA + R"(","size":1}]})"),
              "manifest: layers[0] has no mediaType");
}

}  // namespace
}  // namespace kiln::images
