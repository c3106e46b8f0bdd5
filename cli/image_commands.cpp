#include "image_commands.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>

#include "client.h"
#include "images/image_store.h"
#include "output.h"
#include "paths.h"
#include "registry_commands.h"

namespace kiln::cli {

namespace {

namespace fs = std::filesystem;
using images::Image;
using images::ImageStore;

nlohmann::json describe(const Image& image) {
    return {{"name", image.name},
            {"tag", image.tag},
            {"reference", image.reference()},
            {"digest", image.digest},
            {"created_ns", image.created_ns},
            {"manifest", image.manifest}};
}

uint64_t image_size(const Image& image) {
    uint64_t size = image.manifest["kernel"]["size"].get<uint64_t>();
    if (image.manifest.contains("rootfs")) size += image.manifest["rootfs"]["size"].get<uint64_t>();
    return size;
}

std::string short_id(const std::string& digest) { return digest.substr(7, 12); }

struct BuildOptions {
    std::string dir = ".";
    std::string kraftfile;
    std::string dockerfile;
    std::string tag;
    std::vector<std::string> build_args;  // NAME=VALUE
};

std::string read_blob(const ImageStore& store, const std::string& digest) {
    std::ifstream in(store.blob_path(digest), std::ios::binary);
    std::ostringstream bytes;
    bytes << in.rdbuf();
    if (!in) throw std::runtime_error("blob " + digest + " cannot be read from the local store");
    return bytes.str();
}

}  // namespace

// Sends a locally built image to the remote kilnd in use: its manifest and its blobs.
void send_image(const ImageStore& store, const Image& image) {
    std::vector<Client::Part> parts{{"reference", "", image.reference()},
                                    {"manifest", "manifest.json", read_blob(store, image.digest)}};
    for (const char* blob : {"kernel", "rootfs"})
        if (image.manifest.contains(blob)) {
            const std::string digest = image.manifest[blob]["digest"];
            parts.push_back({"blob", digest, read_blob(store, digest)});
        }
    Client().post_parts("/v1/images", parts);
}

namespace {

// A Kraftfile for a Dockerfile (a directory's own, or `-f FILE`): the Dockerfile is its rootfs and
// says what runs; the image is named after the directory.
images::Kraftfile dockerfile_kraftfile(const std::string& dir, const std::string& dockerfile) {
    const fs::path path = fs::absolute(dockerfile.empty() ? fs::path(dir) / "Dockerfile" : fs::path(dockerfile));
    const std::string text = "spec: v0.6\nrootfs: " + nlohmann::json(path.lexically_normal().string()).dump() + "\n";
    return images::parse_kraftfile(text, (fs::absolute(dir) / "Kraftfile").lexically_normal().string());
}

void build(const BuildOptions& options) {
    std::map<std::string, std::string> build_args;
    for (const std::string& pair : options.build_args) {
        const size_t equals = pair.find('=');
        if (equals == 0 || equals == std::string::npos)
            throw std::runtime_error("--build-arg " + pair + ": expected NAME=VALUE");
        build_args[pair.substr(0, equals)] = pair.substr(equals + 1);
    }
    if (!options.dockerfile.empty() && !options.kraftfile.empty())
        throw std::runtime_error("-f and -K: give a Dockerfile or a Kraftfile");
    const images::Kraftfile kraftfile = !options.dockerfile.empty()
                                            ? dockerfile_kraftfile(options.dir, options.dockerfile)
                                        : !options.kraftfile.empty() ? images::read_kraftfile(options.kraftfile)
                                                                     : project_kraftfile(options.dir);
    const Image image = build_image(kraftfile, options.tag, build_args);
    std::printf("built %s %s (%s)%s\n", image.reference().c_str(), short_id(image.digest).c_str(),
                human_size(image_size(image)).c_str(), remote().host.empty() ? "" : (" on " + remote().host).c_str());
}

// The images of the kilnd in use: the local store, or a remote kilnd's.
std::vector<Image> all_images() {
    if (remote().host.empty()) return ImageStore(state_dir()).list();
    std::vector<Image> out;
    const auto listed = Client().get("/v1/images");
    for (const auto& i : listed["images"]) {
        const auto [name, tag] = images::parse_reference(i["name"].get<std::string>());
        out.push_back({name, tag, i["digest"], i["created_ns"], i["manifest"]});
    }
    return out;
}

void list(const std::string& output) {
    const Format format = parse_format(output);
    const auto all = all_images();
    if (format == Format::kJson) {
        nlohmann::json out = nlohmann::json::array();
        for (const auto& image : all) out.push_back(describe(image));
        std::cout << out.dump(2) << "\n";
        return;
    }
    std::vector<std::vector<std::string>> rows{{"NAME", "TAG", "IMAGE ID", "CREATED", "SIZE"}};
    for (const auto& image : all)
        rows.push_back({image.name, image.tag, short_id(image.digest), human_age(image.created_ns),
                        human_size(image_size(image))});
    print_table(rows);
}

void inspect(const std::vector<std::string>& references) {
    if (!remote().host.empty()) {
        Client client;
        nlohmann::json out = nlohmann::json::array();
        for (const auto& reference : references) out.push_back(client.get("/v1/images/" + reference));
        std::cout << out.dump(2) << "\n";
        return;
    }
    ImageStore store(state_dir());
    nlohmann::json out = nlohmann::json::array();
    for (const auto& reference : references) {
        const auto image = store.find(reference);
        if (!image) throw std::runtime_error("no image '" + reference + "'");
        nlohmann::json d = describe(*image);
        d["kernel_path"] = store.blob_path(image->manifest["kernel"]["digest"]);
        if (image->manifest.contains("rootfs")) d["rootfs_path"] = store.blob_path(image->manifest["rootfs"]["digest"]);
        out.push_back(d);
    }
    std::cout << out.dump(2) << "\n";
}

void remove(const std::vector<std::string>& references) {
    if (!remote().host.empty()) {
        Client client;
        for (const auto& reference : references) {
            const auto answer = client.del("/v1/images/" + reference);  // kept: see ps() on temporaries
            for (const auto& removed : answer["removed"])
                std::printf("untagged %s\n", removed.get<std::string>().c_str());
        }
        return;
    }
    ImageStore store(state_dir());
    for (const auto& reference : references)
        for (const auto& removed : store.remove(reference)) std::printf("untagged %s\n", removed.c_str());
}

}  // namespace

Image build_image(const images::Kraftfile& kraftfile, const std::string& tag,
                  const std::map<std::string, std::string>& build_args) {
    // Built in the local store either way; a remote kilnd then gets it pushed.
    ImageStore store(state_dir());
    use_registries(store);  // a Dockerfile's FROM of a registry's image pulls it
    const Image image = store.build(kraftfile, kernel_path(), tag, build_args);
    if (!remote().host.empty()) send_image(store, image);
    return image;
}

Image build_image(const std::string& kraftfile_path, const std::string& tag,
                  const std::map<std::string, std::string>& build_args) {
    return build_image(images::read_kraftfile(kraftfile_path), tag, build_args);
}

images::Kraftfile project_kraftfile(const std::string& dir) {
    std::error_code error;
    bool has_kraftfile = false;
    for (const char* name : {"Kraftfile", "kraft.yaml", "kraft.yml"})
        has_kraftfile = has_kraftfile || fs::exists(fs::path(dir) / name, error);
    if (!has_kraftfile && fs::is_regular_file(fs::path(dir) / "Dockerfile", error))
        return dockerfile_kraftfile(dir, {});
    return images::read_kraftfile(images::find_kraftfile(dir));  // find_kraftfile names what is missing
}

void add_image_commands(CLI::App& app) {
    auto options = std::make_shared<BuildOptions>();
    auto* build_command = app.add_subcommand(
        "build", "build an image from a directory's Kraftfile (or its Dockerfile, if it has no Kraftfile)");
    build_command->add_option("dir", options->dir,
                              "the directory with the Kraftfile, and the build context (default: .)");
    build_command->add_option("-K,--kraftfile", options->kraftfile, "the Kraftfile to read instead");
    build_command->add_option("-f,--file", options->dockerfile, "a Dockerfile to build instead (docs/dockerfile.md)");
    build_command->add_option("-t,--tag", options->tag,
                              "name[:tag] or HOST[:PORT]/REPO[:TAG] (default: the Kraftfile's name, tag latest)");
    build_command->add_option("--build-arg", options->build_args, "NAME=VALUE for a Dockerfile's ARG (repeatable)");
    add_registry_flags(*build_command);  // for a Dockerfile's FROM HOST[:PORT]/REPO:TAG
    build_command->callback([options] { build(*options); });

    auto output = std::make_shared<std::string>("table");
    auto* images_command = app.add_subcommand("images", "list images");
    images_command->add_option("-o,--output", *output, "table or json");
    images_command->callback([output] { list(*output); });

    auto references = std::make_shared<std::vector<std::string>>();
    auto* image_command = app.add_subcommand("image", "image commands");
    image_command->require_subcommand(1);
    auto* inspect_command = image_command->add_subcommand("inspect", "show images' manifests as JSON");
    inspect_command->add_option("image", *references, "name[:tag] or id")->required();
    inspect_command->callback([references] { inspect(*references); });

    auto removals = std::make_shared<std::vector<std::string>>();
    auto* rmi_command = app.add_subcommand("rmi", "remove images");
    rmi_command->add_option("image", *removals, "name[:tag] or id")->required();
    rmi_command->callback([removals] { remove(*removals); });
}

}  // namespace kiln::cli
