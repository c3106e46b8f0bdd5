// libFuzzer: the Dockerfile parser, then the builder, on arbitrary text, with a small build
// context of a file, a directory and a symbolic link out of it. Any outcome but a DockerfileError
// or a build is a bug.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

#include "images/dockerfile.h"

namespace {

namespace fs = std::filesystem;

const fs::path& context() {
    static const fs::path dir = [] {
        const fs::path d = fs::temp_directory_path() / ("kiln-fuzz-dockerfile-" + std::to_string(::getpid()));
        fs::create_directories(d / "ctx" / "dir");
        std::ofstream(d / "ctx" / "file") << "bytes\n";
        std::ofstream(d / "ctx" / "dir" / "inner") << "inner\n";
        std::ofstream(d / "outside") << "outside\n";
        std::error_code error;
        fs::create_symlink(d / "outside", d / "ctx" / "link", error);
        return d / "ctx";
    }();
    return dir;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string text(reinterpret_cast<const char*>(data), size);
    try {
        kiln::images::parse_dockerfile(text, "Dockerfile");
    } catch (const kiln::images::DockerfileError&) {
        return 0;
    }
    const fs::path dockerfile = context() / "Dockerfile";
    std::ofstream(dockerfile, std::ios::binary | std::ios::trunc) << text;
    try {
        // No sandbox: a RUN is refused, never run.
        kiln::images::build_dockerfile(dockerfile.string(), context().string(), {{"ARG1", "value"}},
                                       kiln::images::BuildSandbox::kNone);
    } catch (const kiln::images::DockerfileError&) {
    }
    return 0;
}
