// A Dockerfile, the part of it Kiln builds a root file system from (docs/dockerfile.md): a
// Kraftfile's `rootfs: ./Dockerfile`, as in Unikraft's own examples.
//
// Read as Docker reads it (comment lines, `\` continuations, parser directives, the JSON and the
// shell forms, $VAR and ${VAR:-default} in the instructions Docker expands them in), then built:
// FROM scratch or an earlier stage (multi-stage builds, COPY --from), COPY and ADD from the build
// context (ADD unpacks a local tarball), RUN in a sandbox (build_sandbox.h), SHELL, ENV, ARG,
// WORKDIR, LABEL, EXPOSE, USER, CMD and ENTRYPOINT. Every other instruction, and every form
// of these Kiln does not build yet, is refused by name with the file and line.
#pragma once

#include <functional>
#include <map>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "images/rootfs.h"

namespace kiln::images {

class DockerfileError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

struct DockerInstruction {
    int line = 0;                                            // where it starts
    std::string keyword;                                     // upper case: FROM, COPY...
    std::vector<std::pair<std::string, std::string>> flags;  // COPY --chmod=755: {"chmod", "755"}
    std::string text;                                        // the arguments as written (continuations joined)
    bool json_form = false;                                  // text was a JSON array of strings
    std::vector<std::string> json;                           // its strings
};

// Parses a Dockerfile's text; `path` names it in errors. Throws DockerfileError "PATH:LINE: ...".
std::vector<DockerInstruction> parse_dockerfile(const std::string& text, const std::string& path);

// What a built Dockerfile says of running its image.
struct DockerImageConfig {
    std::vector<std::string> entrypoint, cmd;
    std::vector<std::pair<std::string, std::string>> env;  // in order of first definition
    std::string workdir = "/";
    std::string user;                  // "UID:GID" from USER, resolved in the image; "" for root
    std::vector<std::string> exposed;  // "8080/tcp"
    std::map<std::string, std::string> labels;
    // ENTRYPOINT then CMD, as the image's program and arguments.
    std::vector<std::string> argv() const;
};

struct DockerBuild {
    std::vector<RootfsEntry> entries;  // sorted by path, every parent present (as read_rootfs gives)
    DockerImageConfig config;
};

// Where RUN runs: in bubblewrap (build_sandbox.h), or nowhere (a fuzzer's builds: RUN refused).
enum class BuildSandbox { kBubblewrap, kNone };

// An image a FROM names (a local one, or a registry's pulled): its files and what running it
// means, which the stage starts from (its ENV, WORKDIR, USER, CMD, EXPOSE, LABELs).
struct BaseImage {
    std::vector<RootfsEntry> entries;
    DockerImageConfig config;
};
// Finds the image a FROM names; throws a std::exception naming why it cannot.
using BaseImageResolver = std::function<BaseImage(const std::string& reference)>;

// Builds the Dockerfile at `path` with `context` as its build context; `build_args` override ARG
// defaults. Throws DockerfileError (the file and line of the instruction at fault).
// FROM another image than scratch or a stage needs `resolve`; without it such a FROM is refused.
DockerBuild build_dockerfile(const std::string& path, const std::string& context,
                             const std::map<std::string, std::string>& build_args = {},
                             BuildSandbox sandbox = BuildSandbox::kBubblewrap, const BaseImageResolver& resolve = {});

// The images the FROMs of the Dockerfile at `path` name, other than scratch and its own stages,
// as the build will resolve them (for the build cache's key). Throws DockerfileError.
std::vector<std::string> dockerfile_base_images(const std::string& path,
                                                const std::map<std::string, std::string>& build_args = {});

// A build context's .dockerignore: which of its paths a build does not see. Docker's rules: one
// pattern a line (`#` comments), relative to the context, `*`, `?`, `[...]` within a name and `**`
// across any number of directories; a pattern excludes what it matches and everything below; a
// later `!pattern` brings back what it matches. Without the file nothing is excluded.
class ContextFilter {
  public:
    explicit ContextFilter(const std::string& context);
    // `relative`: a path inside the context ("www/index.html").
    bool excluded(const std::string& relative) const;
    // Whether a `!pattern` may bring back something below an excluded directory.
    bool has_exceptions() const;

  private:
    std::vector<std::pair<bool, std::vector<std::string>>> rules_;  // (excludes, the pattern's parts)
};

// True for a path Kiln takes as a Dockerfile: "Dockerfile", "Dockerfile.NAME" or "NAME.Dockerfile".
bool is_dockerfile_name(const std::string& path);

}  // namespace kiln::images
