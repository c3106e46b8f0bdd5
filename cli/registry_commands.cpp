#include "registry_commands.h"

#include <termios.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <sstream>

#include "client.h"
#include "image_commands.h"
#include "images/image_store.h"
#include "images/registry.h"
#include "output.h"
#include "paths.h"

namespace kiln::cli {

namespace {

using images::ImageStore;
using images::RegistryReference;
using nlohmann::json;

// The flags' values, over the environment's (images::registry_options_from_environment).
struct RegistryFlags {
    std::string ca;
    std::vector<std::string> insecure;
};
RegistryFlags& flags() {
    static RegistryFlags flags;
    return flags;
}

images::RegistryOptions options_for(const std::string& host) {
    images::RegistryOptions options = images::registry_options_from_environment(state_dir(), host);
    if (!flags().ca.empty()) options.ca_file = flags().ca;  // the flag over the environment
    options.insecure.insert(options.insecure.begin(), flags().insecure.begin(), flags().insecure.end());
    options.progress = [](const std::string& line) { std::fprintf(stderr, "%s\n", line.c_str()); };
    try {
        options.kernel_path = kernel_path();  // what a pulled container image runs on
    } catch (const std::exception&) {
        options.kernel_path.clear();  // pull_image says so if it needs one
    }
    return options;
}

// This machine's store: a registry's image is pushed from it and pulled into it, whatever kilnd
// is in use (ensure_image sends a pulled image on to a remote one).
void local_only(const char* command) {
    if (!remote().host.empty())
        throw std::runtime_error(std::string("kiln ") + command +
                                 " works with this machine's image store; not with --host");
}

std::string read_line(const char* prompt, bool echo) {
    std::fprintf(stderr, "%s", prompt);
    std::fflush(stderr);
    termios saved{};
    const bool terminal = ::isatty(STDIN_FILENO) && ::tcgetattr(STDIN_FILENO, &saved) == 0;
    if (terminal && !echo) {
        termios quiet = saved;
        quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
        ::tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
    }
    std::string line;
    std::getline(std::cin, line);
    if (terminal && !echo) {
        ::tcsetattr(STDIN_FILENO, TCSANOW, &saved);
        std::fprintf(stderr, "\n");
    }
    return line;
}

struct LoginOptions {
    std::string host, username;
    bool password_stdin = false;
};

void login(const LoginOptions& options) {
    images::Credentials credentials{options.username, {}};
    if (credentials.username.empty()) credentials.username = read_line("Username: ", true);
    if (options.password_stdin) {
        credentials.password.assign(std::istreambuf_iterator<char>(std::cin), {});
        while (!credentials.password.empty() &&
               (credentials.password.back() == '\n' || credentials.password.back() == '\r'))
            credentials.password.pop_back();
    } else {
        credentials.password = read_line("Password: ", false);
    }
    if (credentials.username.empty()) throw std::invalid_argument("kiln login " + options.host + ": no user name");
    images::RegistryOptions registry = options_for(options.host);
    registry.credentials = credentials;
    images::check_login(options.host, registry);
    images::save_credentials(state_dir(), options.host, credentials);
    std::printf("logged in to %s as %s\n", options.host.c_str(), credentials.username.c_str());
}

void logout(const std::string& host) {
    if (images::remove_credentials(state_dir(), host))
        std::printf("removed the credentials for %s\n", host.c_str());
    else
        std::printf("not logged in to %s\n", host.c_str());
}

void tag(const std::string& source, const std::string& target) {
    local_only("tag");
    ImageStore store(state_dir());
    const auto image = store.find(source);
    if (!image) throw std::runtime_error("no image '" + source + "'");
    images::parse_reference(target);  // names a bad target before anything else
    std::ifstream in(store.blob_path(image->digest), std::ios::binary);
    const std::string manifest{std::istreambuf_iterator<char>(in), {}};
    store.import(target, manifest, {});  // the same manifest, whose blobs are here: a new name
}

void push(const std::string& text, const std::string& output) {
    local_only("push");
    const Format format = parse_format(output);
    const RegistryReference reference = images::parse_registry_reference(text);
    ImageStore store(state_dir());
    const auto image = store.find(reference.str());
    if (!image) throw std::runtime_error("no image '" + reference.str() + "' here (kiln tag IMAGE " + text + ")");
    const std::string digest = images::push_image(store, *image, reference, options_for(reference.host));
    if (format == Format::kJson)
        std::cout << json{{"reference", reference.str()}, {"digest", digest}, {"image", image->digest}}.dump(2) << "\n";
    else
        std::printf("pushed %s %s\n", reference.str().c_str(), digest.c_str());
}

images::PullResult pull_into(ImageStore& store, const RegistryReference& reference) {
    return images::pull_image(store, reference, options_for(reference.host));
}

void pull(const std::string& text, const std::string& output) {
    local_only("pull");
    const Format format = parse_format(output);
    const RegistryReference reference = images::parse_registry_reference(text);
    ImageStore store(state_dir());
    const images::PullResult pulled = pull_into(store, reference);
    if (format == Format::kJson) {
        std::cout << json{{"reference", reference.str()},
                          {"digest", pulled.manifest_digest},
                          {"image", pulled.image.digest},
                          {"downloaded", pulled.downloaded}}
                         .dump(2)
                  << "\n";
        return;
    }
    std::printf("pulled %s %s (image %s, %s downloaded)\n", reference.str().c_str(), pulled.manifest_digest.c_str(),
                pulled.image.digest.substr(7, 12).c_str(), human_size(pulled.downloaded).c_str());
}

}  // namespace

void add_registry_flags(CLI::App& command) {
    command.add_option(
        "--registry-ca", flags().ca,
        "a CA certificate (PEM) trusted for registries besides the system's (default: KILN_REGISTRY_CA)");
    command.add_option("--insecure-registry", flags().insecure,
                       "HOST:PORT of a registry reached over plain HTTP (repeatable; also KILN_INSECURE_REGISTRIES)");
}

void use_registries(ImageStore& store) {
    store.set_puller([](ImageStore& into, const std::string& reference) {
        pull_into(into, images::parse_registry_reference(reference));
    });
}

std::string ensure_image(const std::string& reference) {
    if (!images::is_registry_reference(reference)) return reference;
    const RegistryReference parsed = images::parse_registry_reference(reference);
    ImageStore store(state_dir());
    auto image = store.find(parsed.str());
    if (!image) image = pull_into(store, parsed).image;
    if (!remote().host.empty()) send_image(store, *image);
    return parsed.str();
}

void add_registry_commands(CLI::App& app) {
    auto login_options = std::make_shared<LoginOptions>();
    auto* login_command = app.add_subcommand("login", "keep credentials for a registry (STATE/registries.json)");
    login_command->add_option("host", login_options->host, "HOST[:PORT]")->required();
    login_command->add_option("-u,--username", login_options->username, "the user name (default: asked)");
    login_command->add_flag("--password-stdin", login_options->password_stdin, "read the password from stdin");
    add_registry_flags(*login_command);
    login_command->callback([login_options] { login(*login_options); });

    auto logout_host = std::make_shared<std::string>();
    auto* logout_command = app.add_subcommand("logout", "forget the credentials kept for a registry");
    logout_command->add_option("host", *logout_host, "HOST[:PORT]")->required();
    logout_command->callback([logout_host] { logout(*logout_host); });

    auto names = std::make_shared<std::pair<std::string, std::string>>();
    auto* tag_command = app.add_subcommand("tag", "give an image another name, such as a registry's HOST/REPO:TAG");
    tag_command->add_option("image", names->first, "name[:tag] or id")->required();
    tag_command->add_option("reference", names->second, "the new name[:tag]")->required();
    tag_command->callback([names] { tag(names->first, names->second); });

    auto reference = std::make_shared<std::string>();
    auto output = std::make_shared<std::string>("table");
    for (const char* name : {"push", "pull"}) {
        const bool pushing = std::string(name) == "push";
        auto* command =
            app.add_subcommand(name, pushing ? "push an image to a registry" : "pull an image from a registry");
        command->add_option("reference", *reference, "HOST[:PORT]/REPO[:TAG] or HOST[:PORT]/REPO@sha256:...")
            ->required();
        command->add_option("-o,--output", *output, "table or json");
        add_registry_flags(*command);
        command->callback(
            [reference, output, pushing] { pushing ? push(*reference, *output) : pull(*reference, *output); });
    }
}

}  // namespace kiln::cli
