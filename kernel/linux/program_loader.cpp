#include "linux/program_loader.h"

#include "arch/x86_64/cpu.h"
#include "arch/x86_64/fpu.h"
#include "core/errno.h"
#include "fs/devices.h"
#include "fs/vfs.h"
#include "lib/utility.h"
#include "linux/user_memory.h"
#include "linux/vdso.h"
#include "mm/address_space.h"

namespace kiln::linux {
namespace {

constexpr uint64_t kPieBase = 0x0000555555554000;
constexpr uint64_t kBreakRoom = 8ull << 30;  // address space only: pages come when touched

// Auxiliary vector keys (linux/auxvec.h).
enum : uint64_t {
    AT_NULL = 0,
    AT_PHDR = 3,
    AT_PHENT = 4,
    AT_PHNUM = 5,
    AT_PAGESZ = 6,
    AT_BASE = 7,
    AT_FLAGS = 8,
    AT_ENTRY = 9,
    AT_UID = 11,
    AT_EUID = 12,
    AT_GID = 13,
    AT_EGID = 14,
    AT_PLATFORM = 15,
    AT_HWCAP = 16,
    AT_CLKTCK = 17,
    AT_SECURE = 23,
    AT_RANDOM = 25,
    AT_HWCAP2 = 26,
    AT_EXECFN = 31,
    AT_SYSINFO_EHDR = 33,
    AT_MINSIGSTKSZ = 51,
};

// `file` is the executable's bytes. If they outlive the process (`lasting`: the initrd), a
// segment's pages are filled from them on first touch, so only the pages the application uses
// are ever copied; a page shared with the neighbouring segment is copied now, whole.
constexpr uint64_t kSmallWritableSegment = 16 * 4096;

bool load_segments(const AppImage& image, const uint8_t* file, bool lasting, uint64_t base, uint64_t& break_start) {
    auto& space = mm::address_space();
    break_start = 0;
    auto page_range = [&](const ElfSegment& s, uint64_t& start, uint64_t& end) {
        start = align_down(base + s.vaddr, 4096);
        end = align_up(base + s.vaddr + s.mem_size, 4096);
    };
    auto shares_page = [&](size_t i, uint64_t page) {
        for (size_t j = 0; j < image.segment_count; ++j) {
            uint64_t start, end;
            page_range(image.segments[j], start, end);
            if (j != i && start <= page && page < end) return true;
        }
        return false;
    };
    for (size_t i = 0; i < image.segment_count; ++i) {
        const ElfSegment& s = image.segments[i];
        uint64_t start, end;
        page_range(s, start, end);
        // Writable while the bytes go in; the segment's own protection afterwards.
        if (space.map(start, end - start, mm::kProtRead | mm::kProtWrite, true) < 0) return false;
        break_start = max(break_start, end);
    }
    for (size_t i = 0; i < image.segment_count; ++i) {
        const ElfSegment& s = image.segments[i];
        uint64_t start, end;
        page_range(s, start, end);
        const uint64_t bytes_start = base + s.vaddr, bytes_end = bytes_start + s.file_size;
        auto copy = [&](uint64_t from, uint64_t to) {
            if (to <= from) return true;
            space.populate(align_down(from, 4096), align_up(to, 4096));  // written right away
            return copy_to_user(from, file + s.file_offset + (from - bytes_start), to - from) == 0;
        };
        if (!lasting || s.file_size == 0) {
            if (!copy(bytes_start, bytes_end)) return false;
            continue;
        }
        // The pages in between are filled when touched; a page shared with the neighbouring
        // segment is copied now, since it can have only one source.
        if (space.attach_source(start, end, {file + s.file_offset, bytes_start, s.file_size}) < 0) return false;
        const uint64_t last = align_down(bytes_end - 1, 4096);
        const bool first_shared = shares_page(i, start), last_shared = shares_page(i, last);
        if (first_shared && !copy(bytes_start, min(bytes_end, start + 4096))) return false;
        if (last_shared && (last != start || !first_shared) && !copy(max(bytes_start, last), bytes_end)) return false;
        // A small writable segment (a static libc's data and bss) is written nearly whole as the
        // program starts: filled now in one go rather than a fault at a time.
        if ((s.prot & mm::kProtWrite) && end - start <= kSmallWritableSegment) space.populate(start, end);
    }
    for (size_t i = 0; i < image.segment_count; ++i) {
        const ElfSegment& s = image.segments[i];
        const uint64_t start = align_down(base + s.vaddr, 4096);
        const uint64_t end = align_up(base + s.vaddr + s.mem_size, 4096);
        uint32_t prot = s.prot;
        // A page shared with a neighbouring segment gets both protections.
        for (size_t j = 0; j < image.segment_count; ++j) {
            if (j == i) continue;
            const ElfSegment& o = image.segments[j];
            const uint64_t o_start = align_down(base + o.vaddr, 4096),
                           o_end = align_up(base + o.vaddr + o.mem_size, 4096);
            if (o_start < end && start < o_end) prot |= o.prot;
        }
        if (space.protect(start, end - start, prot) < 0) return false;
    }
    return true;
}

// The initial stack of a Linux process: argc, argv, envp, auxv, and the strings they point to.
class StackBuilder {
  public:
    explicit StackBuilder(uint64_t top) : sp_(top) {}
    uint64_t push_bytes(const void* data, size_t size) {
        sp_ -= size;
        ok_ = ok_ && copy_to_user(sp_, data, size) == 0;
        return sp_;
    }
    uint64_t push_string(StringView s) {
        sp_ -= 1;
        const char nul = 0;
        ok_ = ok_ && copy_to_user(sp_, &nul, 1) == 0;
        return push_bytes(s.data(), s.size());
    }
    void align(uint64_t a) { sp_ &= ~(a - 1); }
    void push_word(uint64_t v) { push_bytes(&v, 8); }
    uint64_t sp() const { return sp_; }
    bool ok() const { return ok_; }

  private:
    uint64_t sp_;
    bool ok_ = true;
};

// Where the program and its dynamic linker are, once loaded.
struct Loaded {
    const AppImage* image;  // the program's
    uint64_t base;          // added to the program's addresses (0 unless position-independent)
    uint64_t interp_base;   // the dynamic linker's load address (AT_BASE); 0 if static
    uint64_t entry;         // where the first instruction runs: the linker's entry, or the program's
};

// argv and envp go in as given; the auxiliary vector says where the program and its linker are.
uint64_t build_stack(uint64_t top, const ProgramArgs& args, const Loaded& loaded, StringView exe_path) {
    const AppImage& image = *loaded.image;
    const uint64_t base = loaded.base;
    StackBuilder stack(top);
    const uint64_t execfn = stack.push_string(exe_path);
    const uint64_t platform = stack.push_string("x86_64");
    uint8_t random[16];
    fs::random_bytes(random, sizeof(random));
    const uint64_t random_at = stack.push_bytes(random, sizeof(random));

    Vector<uint64_t> argv, envp;
    if (!argv.reserve(args.argv.size()) || !envp.reserve(args.envp.size())) return 0;
    for (const String& arg : args.argv) (void)argv.push_back(stack.push_string(arg.view()));
    for (const String& var : args.envp) (void)envp.push_back(stack.push_string(var.view()));
    const size_t argc = argv.size(), envc = envp.size();

    const uint64_t hwcap2_fsgsbase = (cpu::cpuid(0).eax >= 7 && (cpu::cpuid(7).ebx & 1)) ? 2 : 0;
    const uint64_t auxv[][2] = {
        {AT_PHDR, base + image.phdr_vaddr},
        {AT_PHENT, 56},
        {AT_PHNUM, image.phnum},
        {AT_PAGESZ, 4096},
        {AT_BASE, loaded.interp_base},
        {AT_FLAGS, 0},
        {AT_ENTRY, base + image.entry},
        {AT_UID, 0},
        {AT_EUID, 0},
        {AT_GID, 0},
        {AT_EGID, 0},
        {AT_PLATFORM, platform},
        {AT_HWCAP, cpu::cpuid(1).edx},
        {AT_CLKTCK, 100},
        {AT_SECURE, 0},
        {AT_RANDOM, random_at},
        {AT_HWCAP2, hwcap2_fsgsbase},
        {AT_EXECFN, execfn},
        {AT_MINSIGSTKSZ, fpu::state_size() + 1024},
        {vdso_base() != 0 ? AT_SYSINFO_EHDR : AT_NULL, vdso_base()},  // no vDSO: the vector ends here
        {AT_NULL, 0},
    };
    // Align so that RSP is 16-byte aligned at argc, as the ABI requires at _start.
    const size_t words = 1 + (argc + 1) + (envc + 1) + sizeof(auxv) / 8;
    stack.align(16);
    if (words % 2) stack.push_word(0);
    stack.push_bytes(auxv, sizeof(auxv));
    stack.push_word(0);
    for (size_t i = envc; i-- > 0;) stack.push_word(envp[i]);
    stack.push_word(0);
    for (size_t i = argc; i-- > 0;) stack.push_word(argv[i]);
    stack.push_word(argc);
    return stack.ok() ? stack.sp() : 0;
}

StringView interpreter_of(const AppImage& image, const uint8_t* program_bytes) {
    return {reinterpret_cast<const char*>(program_bytes + image.interp_offset), image.interp_size};
}

// A dynamic program's linker (PT_INTERP, as ld-linux-x86-64.so.2) from the root file system:
// there, a regular file, a self-contained shared object.
bool find_interpreter(StringView program, StringView interp, fs::RamFile*& file, AppImage& linker, LoadError& error) {
    RefPtr<fs::Node> node;
    if (fs::resolve(interp, fs::root(), true, node) != 0)
        return error.set(-ENOENT, "cannot run {}: its dynamic linker {} is not in the root file system", program,
                         interp);
    if (node->type() != fs::Type::kRegular)
        return error.set(-EACCES, "cannot run {}: its dynamic linker {} is not a regular file", program, interp);
    file = static_cast<fs::RamFile*>(node.get());
    if (ElfError e = parse_app_elf(file->data(), file->size(), linker); e != ElfError::kNone)
        return error.set(-ENOEXEC, "cannot run {}: its dynamic linker {}: {}", program, interp, describe(e));
    if (!linker.position_independent || linker.dynamic())
        return error.set(-ENOEXEC, "cannot run {}: its dynamic linker {} is not a self-contained shared object",
                         program, interp);
    return true;
}

// The linker is loaded where mmap would put it: it then loads the program's libraries itself,
// through open, read and mmap, as under Linux.
bool load_interpreter(StringView program, const AppImage& image, const uint8_t* program_bytes, Loaded& loaded,
                      LoadError& error) {
    const StringView interp = interpreter_of(image, program_bytes);
    fs::RamFile* file = nullptr;
    AppImage linker;
    if (!find_interpreter(program, interp, file, linker, error)) return false;
    // A place for its whole span, reserved as mmap would choose it, then filled segment by segment.
    auto& space = mm::address_space();
    const uint64_t span = linker.highest_page_end() - linker.lowest_page();
    const int64_t at = space.map(0, span, mm::kProtNone, false);
    uint64_t linker_break = 0;
    if (at < 0 || !load_segments(linker, file->data(), file->borrowed(),
                                 static_cast<uint64_t>(at) - linker.lowest_page(), linker_break))
        return error.set(-ENOMEM, "cannot run {}: out of memory loading its dynamic linker {}", program, interp);
    loaded.interp_base = static_cast<uint64_t>(at) - linker.lowest_page();
    loaded.entry = loaded.interp_base + linker.entry;
    return true;
}

constexpr int kMaxInterpreterDepth = 4;  // #! scripts naming #! scripts, as Linux allows

// "#!interpreter [one argument]" on the first line: the interpreter runs with the script's path
// after its own name and the argument, then the script's arguments but the first.
bool interpreter_line(const fs::RamFile& file, String& interpreter, String& argument) {
    if (file.size() < 3 || file.data()[0] != '#' || file.data()[1] != '!') return false;
    const auto* text = reinterpret_cast<const char*>(file.data());
    size_t end = 2;
    while (end < file.size() && end < 256 && text[end] != '\n') ++end;
    StringView line(text + 2, end - 2);
    // Linux's blanks here: a DOS line end's \r is part of the name ("bad interpreter: ...^M").
    auto is_blank = [](char c) { return c == ' ' || c == '\t'; };
    size_t i = 0;
    while (i < line.size() && is_blank(line[i])) ++i;
    size_t j = i;
    while (j < line.size() && !is_blank(line[j])) ++j;
    interpreter = String(line.substr(i, j - i));
    while (j < line.size() && is_blank(line[j])) ++j;
    size_t k = line.size();
    while (k > j && is_blank(line[k - 1])) --k;
    argument = String(line.substr(j, k - j));
    return interpreter.size() > 0;
}

}  // namespace

// Finds the program: a path, or a bare name looked up in the usual bin directories.
RefPtr<fs::Node> find_program(StringView name, const RefPtr<fs::Node>& cwd, StringView cwd_path, String& path) {
    RefPtr<fs::Node> node;
    if (name.find('/') != StringView::npos) {
        if (fs::resolve(name, cwd, true, node) != 0) return {};
        if (name[0] == '/') {
            path = String(name);
        } else {  // "./server" in WORKDIR /srv: the program's path is /srv/./server
            char full[512];
            const size_t length =
                format_buffer(full, sizeof(full), "{}{}{}", cwd_path, cwd_path == "/" ? "" : "/", name);
            if (length >= sizeof(full) - 1) return {};
            path = String(StringView(full, length));
        }
        return node;
    }
    static const StringView kSearchPath[] = {"/bin/", "/usr/bin/", "/sbin/", "/usr/sbin/"};
    for (StringView dir : kSearchPath) {
        char candidate[512];
        if (dir.size() + name.size() >= sizeof(candidate)) return {};
        memcpy(candidate, dir.data(), dir.size());
        memcpy(candidate + dir.size(), name.data(), name.size());
        StringView full(candidate, dir.size() + name.size());
        if (fs::resolve(full, fs::root(), true, node) == 0) {
            path = String(full);
            return node;
        }
    }
    return {};
}

bool check_program(StringView path, fs::Node& node, mm::Owner leaving, AppImage& image, LoadError& error) {
    if (node.type() != fs::Type::kRegular) return error.set(-EACCES, "cannot run {}: not a regular file", path);
    auto& file = static_cast<fs::RamFile&>(node);
    if (ElfError e = parse_app_elf(file.data(), file.size(), image); e != ElfError::kNone)
        return error.set(-ENOEXEC, "cannot run {}: {}", path, describe(e));
    if (image.dynamic()) {
        fs::RamFile* linker_file = nullptr;
        AppImage linker;
        if (!find_interpreter(path, interpreter_of(image, file.data()), linker_file, linker, error)) return false;
    }
    // A program linked at fixed addresses needs those very addresses: in one address space,
    // another image (a parent waiting for its vfork child) may hold them.
    if (!image.position_independent &&
        !mm::address_space().free_or_owned(image.lowest_page(), image.highest_page_end(), leaving))
        return error.set(-ENOMEM,
                         "cannot run {}: it is linked at fixed addresses another program holds in Kiln's single "
                         "address space (a position-independent build runs anywhere)",
                         path);
    return true;
}

bool load_program(StringView path, fs::RamFile& file, const AppImage& image, const ProgramArgs& args, bool first,
                  Memory& memory, uint64_t& entry, uint64_t& stack_pointer, LoadError& error) {
    auto& space = mm::address_space();
    uint64_t base = 0;
    if (image.position_independent) {
        // Later programs go where mmap would put them, with room above for their break to grow
        // (the first has all of it above its usual base).
        const uint64_t span = image.highest_page_end() - image.lowest_page();
        const int64_t at = first ? static_cast<int64_t>(kPieBase) : space.find_free_range(span + kBreakRoom);
        if (at < 0) return error.set(-ENOMEM, "cannot run {}: no room for it", path);
        base = static_cast<uint64_t>(at) - image.lowest_page();
    }
    uint64_t break_start = 0;
    if (!load_segments(image, file.data(), file.borrowed(), base, break_start))
        return error.set(-ENOMEM, "cannot run {}: out of memory loading it", path);
    mm::AddressSpace::init_break(memory.brk, break_start);
    Loaded loaded{&image, base, 0, base + image.entry};
    if (image.dynamic() && !load_interpreter(path, image, file.data(), loaded, error)) return false;
    const int64_t stack = space.map(first ? mm::kStackTop - mm::kStackSize : 0, mm::kStackSize,
                                    static_cast<uint32_t>(image.stack_prot), first);
    if (stack < 0) return error.set(-ENOMEM, "cannot run {}: no room for its stack", path);
    const uint64_t top = static_cast<uint64_t>(stack) + mm::kStackSize;
    space.populate(top - 4 * 4096, top);  // the arguments go there next
    stack_pointer = build_stack(top, args, loaded, path);
    if (stack_pointer == 0) return error.set(-E2BIG, "cannot run {}: its arguments do not fit on the stack", path);
    entry = loaded.entry;
    return true;
}

int64_t resolve_program(String path, const RefPtr<fs::Node>& cwd, ProgramArgs& args, RefPtr<fs::Node>& node,
                        AppImage& image, mm::Owner leaving, String& program, LoadError& error) {
    for (int depth = 0;; ++depth) {
        // A `node` given on entry is the file itself (execveat of a descriptor).
        if (depth > 0 || !node) {
            if (int64_t r = fs::resolve(path.view(), cwd, true, node); r < 0) {
                error.set(r, "cannot run {}: no such file in the root file system", path.view());
                return r;
            }
        }
        if (node->type() != fs::Type::kRegular) {
            error.set(-EACCES, "cannot run {}: not a regular file", path.view());
            return -EACCES;
        }
        String interpreter, argument;
        if (!interpreter_line(static_cast<fs::RamFile&>(*node), interpreter, argument)) break;
        if (depth == kMaxInterpreterDepth) {
            error.set(-ELOOP, "cannot run {}: #! interpreters nest too deep", path.view());
            return -ELOOP;
        }
        // argv becomes: interpreter [argument] path argv[1..]
        Vector<String> argv;
        bool ok = argv.push_back(String(interpreter.view()));
        if (argument.size() > 0) ok = ok && argv.push_back(String(argument.view()));
        ok = ok && argv.push_back(String(path.view()));
        for (size_t i = 1; i < args.argv.size(); ++i) ok = ok && argv.push_back(String(args.argv[i].view()));
        if (!ok) {
            error.set(-ENOMEM, "cannot run {}: out of memory", path.view());
            return -ENOMEM;
        }
        args.argv = move(argv);
        path = move(interpreter);
    }
    if (!check_program(path.view(), *node, leaving, image, error)) return error.error;
    program = move(path);
    return 0;
}

}  // namespace kiln::linux
