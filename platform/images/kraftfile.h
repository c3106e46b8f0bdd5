// A Kraftfile (KraftKit's spec v0.6, the keys Kiln supports: docs/kraftfile.md), read and checked.
// Every error names the file, the line where the offending entry starts, and the key:
//
//   examples/hello/Kraftfile:4: cmd: expected a string or a list of strings
//
// Keys Kiln cannot honour (a Unikraft source tree, another platform's target, a kconfig option
// the Kiln kernel does not have) are errors, never silently ignored.
#pragma once

#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace kiln::images {

class KraftfileError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

struct Kraftfile {
    std::string path;  // the file read, as given
    std::string dir;   // its directory: relative paths in it are relative to this
    std::string spec;  // "v0.6"
    std::string name;  // the image name; the directory's name when the file has none
    // The program and its arguments (after the kernel's `--`); empty if the file has none.
    std::vector<std::string> cmd;
    std::vector<std::pair<std::string, std::string>> env;  // in the file's order
    // The root file system's source, absolute: a directory, a cpio archive, a tarball, or a
    // Dockerfile (images/dockerfile.h) built with its directory as the context.
    std::optional<std::string> rootfs;
    std::map<std::string, std::string> labels;
    std::map<std::string, std::string> kconfig;  // CONFIG_NAME -> value, from every place it may be
    // The instance platforms its `targets` name (kvm, proc), in the file's order; empty when it
    // has no targets (then it runs on either).
    std::vector<std::string> platforms;
};

// The instance platforms a target names: kiln/x86_64 runs on both; Unikraft's names map to one
// (fc/x86_64 and qemu/x86_64: kvm, a microVM; linuxu/x86_64: proc, a Linux process). Empty for a
// target Kiln cannot run.
std::vector<std::string> platforms_of_target(const std::string& platform, const std::string& arch);

// The kernel build options a Kraftfile's `kconfig` may set. The Kiln kernel has none yet: its
// micro-libraries are all built in, so every option is refused by name.
const std::vector<std::string>& kernel_options();

// Reads `path` (a Kraftfile, kraft.yaml or kraft.yml). Throws KraftfileError.
Kraftfile read_kraftfile(const std::string& path);

// The Kraftfile in `dir` (Kraftfile, kraft.yaml, kraft.yml, in that order). Throws KraftfileError
// if there is none.
std::string find_kraftfile(const std::string& dir);

// Parses Kraftfile text; `path` names it in errors and anchors relative paths. Throws
// KraftfileError. Does not look at the file system except to resolve `template` and `rootfs`.
Kraftfile parse_kraftfile(const std::string& text, const std::string& path);

// Splits a command line written as one string: whitespace separates, double or single quotes
// group, a backslash escapes the next character. Throws std::invalid_argument on an open quote.
std::vector<std::string> split_command(const std::string& text);

// Image and tag names: lower-case letters, digits, '.', '_', '-'; 1..63 characters, starting
// with a letter or digit.
bool valid_name(const std::string& name);

}  // namespace kiln::images
