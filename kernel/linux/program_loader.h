// Program images: an ELF program (static, static-pie, or dynamic with its linker from the root
// file system) placed in the single address space with its initial stack, as Linux's execve
// leaves a process.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "fs/node.h"
#include "fs/ramfs.h"
#include "lib/format.h"
#include "lib/string_class.h"
#include "lib/vector.h"
#include "linux/elf.h"
#include "linux/process.h"

namespace kiln::linux {

struct ProgramArgs {
    Vector<String> argv;
    Vector<String> envp;
};

// Why a program cannot run, for a person (the console) and for the caller (an errno).
struct LoadError {
    int64_t error = 0;  // negative errno
    char text[256] = {};
    template <typename... Args>
    bool set(int64_t e, StringView fmt, const Args&... args) {
        error = e;
        text[min(format_buffer(text, sizeof(text) - 1, fmt, args...), sizeof(text) - 1)] = 0;
        return false;
    }
};

// The program a name means: a path (a relative one from the working directory `cwd`, whose path
// is `cwd_path`), or a bare name looked up in the usual bin directories.
RefPtr<fs::Node> find_program(StringView name, const RefPtr<fs::Node>& cwd, StringView cwd_path, String& path);

// Checks that `node` is a program Kiln can run: a regular file, an x86-64 ELF executable, its
// dynamic linker (if any) in the root file system, and, if it must sit at fixed addresses, those
// addresses free or owned by `leaving` (the image it replaces). Fills `image`.
bool check_program(StringView path, fs::Node& node, mm::Owner leaving, AppImage& image, LoadError& error);

// The program that running `path` means: the file, or the interpreter its #! line names (argv
// rewritten as Linux does: interpreter, its argument, the script's path, the other arguments),
// checked as check_program does. Fills `node` (unless given: the file itself), `image` and
// `program` (the file that runs).
// Returns 0 or a negative errno (`error` says it for a person).
int64_t resolve_program(String path, const RefPtr<fs::Node>& cwd, ProgramArgs& args, RefPtr<fs::Node>& node,
                        AppImage& image, mm::Owner leaving, String& program, LoadError& error);

// Loads a checked program into `memory`, the address space's current owner: its segments, its
// linker, a stack (`first`: the top of the user half; else wherever there is room) holding argv,
// envp and the auxiliary vector. Sets the entry point and stack pointer to start it with.
bool load_program(StringView path, fs::RamFile& file, const AppImage& image, const ProgramArgs& args, bool first,
                  Memory& memory, uint64_t& entry, uint64_t& stack_pointer, LoadError& error);

}  // namespace kiln::linux
