#include "linux/process.h"

#include "arch/x86_64/cpu.h"
#include "arch/x86_64/fpu.h"
#include "arch/x86_64/layout.h"
#include "console/console.h"
#include "core/errno.h"
#include "core/panic.h"
#include "fs/devices.h"
#include "fs/ramfs.h"
#include "fs/vfs.h"
#include "lib/utility.h"
#include "linux/elf.h"
#include "linux/syscall.h"
#include "linux/user_memory.h"
#include "mm/address_space.h"
#include "sched/thread.h"

namespace kiln::linux {
namespace {

constinit Process* the_process = nullptr;

constexpr uint64_t kPieBase = 0x0000555555554000;
constexpr size_t kMaxArgs = 256;

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
    AT_MINSIGSTKSZ = 51,
};

// Finds the program: a path, or a bare name looked up in the usual bin directories.
RefPtr<fs::Node> find_program(StringView name, String& path) {
    RefPtr<fs::Node> node;
    if (name.find('/') != StringView::npos) {
        if (fs::resolve(name, fs::root(), true, node) == 0) path = String(name);
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

// `file` is the executable's bytes. If they outlive the process (`lasting`: the initrd), a
// segment's pages are filled from them on first touch, so only the pages the application uses
// are ever copied; a page shared with the neighbouring segment is copied now, whole.
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

uint64_t build_stack(const Cmdline& cmdline, const Loaded& loaded, StringView exe_path) {
    const AppImage& image = *loaded.image;
    const uint64_t base = loaded.base;
    StackBuilder stack(mm::kStackTop);
    const uint64_t execfn = stack.push_string(exe_path);
    const uint64_t platform = stack.push_string("x86_64");
    uint8_t random[16];
    fs::random_bytes(random, sizeof(random));
    const uint64_t random_at = stack.push_bytes(random, sizeof(random));

    uint64_t argv[kMaxArgs];
    const size_t argc = min(cmdline.app_argc(), kMaxArgs - 1);
    for (size_t i = argc; i-- > 0;) argv[i] = stack.push_string(cmdline.app_arg(i));

    // The environment: every env.NAME=VALUE parameter, and a PATH and HOME unless given.
    uint64_t envp[kMaxArgs];
    size_t envc = 0;
    bool have_path = false, have_home = false;
    for (size_t i = 0; i < cmdline.param_count() && envc < kMaxArgs - 3; ++i) {
        Cmdline::Param p = cmdline.param(i);
        if (!p.key.starts_with("env.")) continue;
        char entry[Cmdline::kMaxLength];
        StringView name = p.key.substr(4);
        memcpy(entry, name.data(), name.size());
        entry[name.size()] = '=';
        memcpy(entry + name.size() + 1, p.value.data(), p.value.size());
        envp[envc++] = stack.push_string({entry, name.size() + 1 + p.value.size()});
        have_path |= name == "PATH";
        have_home |= name == "HOME";
    }
    if (!have_path) envp[envc++] = stack.push_string("PATH=/bin:/usr/bin:/sbin:/usr/sbin");
    if (!have_home) envp[envc++] = stack.push_string("HOME=/");

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

// A dynamic program's linker (PT_INTERP, as ld-linux-x86-64.so.2) from the root file system,
// loaded where mmap would put it: it then loads the program's libraries itself, through open,
// read and mmap, as under Linux. Errors are printed, naming the program and the linker.
bool load_interpreter(StringView program, const AppImage& image, const uint8_t* program_bytes, Loaded& loaded) {
    const StringView interp(reinterpret_cast<const char*>(program_bytes + image.interp_offset), image.interp_size);
    RefPtr<fs::Node> node;
    if (fs::resolve(interp, fs::root(), true, node) != 0) {
        console::print("kiln: cannot run {}: its dynamic linker {} is not in the root file system\n", program, interp);
        return false;
    }
    if (node->type() != fs::Type::kRegular) {
        console::print("kiln: cannot run {}: its dynamic linker {} is not a regular file\n", program, interp);
        return false;
    }
    auto* file = static_cast<fs::RamFile*>(node.get());
    AppImage linker;
    if (ElfError e = parse_app_elf(file->data(), file->size(), linker); e != ElfError::kNone) {
        console::print("kiln: cannot run {}: its dynamic linker {}: {}\n", program, interp, describe(e));
        return false;
    }
    if (!linker.position_independent || linker.dynamic()) {
        console::print("kiln: cannot run {}: its dynamic linker {} is not a self-contained shared object\n", program,
                       interp);
        return false;
    }
    // A place for its whole span, reserved as mmap would choose it, then filled segment by segment.
    auto& space = mm::address_space();
    const uint64_t span = linker.highest_page_end() - linker.lowest_page();
    const int64_t at = space.map(0, span, mm::kProtNone, false);
    uint64_t linker_break = 0;
    if (at < 0 || !load_segments(linker, file->data(), file->borrowed(),
                                 static_cast<uint64_t>(at) - linker.lowest_page(), linker_break)) {
        console::print("kiln: cannot run {}: out of memory loading its dynamic linker {}\n", program, interp);
        return false;
    }
    loaded.interp_base = static_cast<uint64_t>(at) - linker.lowest_page();
    loaded.entry = loaded.interp_base + linker.entry;
    return true;
}

}  // namespace

Process& process() { return *the_process; }

ThreadInfo* current_info() { return sched::current().linux; }

void release_thread_info(ThreadInfo* info) {
    if (info == nullptr) return;
    auto& threads = the_process->threads;
    for (size_t i = 0; i < threads.size(); ++i) {
        if (threads[i] == info) {
            threads.erase(i);
            break;
        }
    }
    delete info;
}

bool start_application(const Cmdline& cmdline) {
    the_process = new Process;
    Process& proc = *the_process;
    proc.strace = cmdline.flag("kiln.strace");
    proc.cwd = fs::root();
    proc.cwd_path = String("/");
    if (cmdline.app_argc() == 0) {
        console::print("kiln: nothing to run: no program after --\n");
        return false;
    }
    const StringView name = cmdline.app_arg(0);
    String path;
    RefPtr<fs::Node> node = find_program(name, path);
    if (!node) {
        console::print("kiln: cannot run {}: no such file in the root file system\n", name);
        return false;
    }
    if (node->type() != fs::Type::kRegular) {
        console::print("kiln: cannot run {}: not a regular file\n", name);
        return false;
    }
    auto* file = static_cast<fs::RamFile*>(node.get());
    AppImage image;
    if (ElfError e = parse_app_elf(file->data(), file->size(), image); e != ElfError::kNone) {
        console::print("kiln: cannot run {}: {}\n", path.view(), describe(e));
        return false;
    }
    const uint64_t base = image.position_independent ? kPieBase : 0;
    uint64_t break_start = 0;
    auto& space = mm::address_space();
    if (!load_segments(image, file->data(), file->borrowed(), base, break_start)) {
        console::print("kiln: cannot run {}: out of memory loading it\n", path.view());
        return false;
    }
    space.init_break(break_start);
    Loaded loaded{&image, base, 0, base + image.entry};
    if (image.dynamic() && !load_interpreter(path.view(), image, file->data(), loaded)) return false;
    if (space.map(mm::kStackTop - mm::kStackSize, mm::kStackSize, static_cast<uint32_t>(image.stack_prot), true) < 0) {
        console::print("kiln: cannot run {}: no room for its stack\n", path.view());
        return false;
    }
    space.populate(mm::kStackTop - 4 * 4096, mm::kStackTop);  // the arguments go there next
    const uint64_t sp = build_stack(cmdline, loaded, path.view());
    if (sp == 0) {
        console::print("kiln: cannot run {}: its arguments do not fit on the stack\n", path.view());
        return false;
    }
    proc.exe_path = path;
    fs::set_exe_path(path.view());

    RefPtr<fs::Node> console_node;
    if (fs::resolve("/dev/console", fs::root(), true, console_node) == 0) {
        for (int fd = 0; fd < 3; ++fd)
            (void)proc.fds.install(fd, make_ref<fs::NodeFile>(console_node, fs::kOpenReadWrite), false);
    }

    arch::InterruptFrame frame{};
    frame.vector = kSyscallVector;
    frame.rip = loaded.entry;
    frame.cs = KILN_SEL_USER_CS;
    frame.rflags = 0x202;
    frame.rsp = sp;
    frame.ss = KILN_SEL_USER_DS;
    auto* info = new ThreadInfo;
    if (!proc.threads.push_back(info)) return false;
    info->thread = sched::spawn_user(frame, info, 0);
    return info->thread != nullptr;
}

void exit_application(int status) {
    if (the_process && the_process->strace) console::print("kiln: application exited with status {}\n", status);
    power_off(status);
}

}  // namespace kiln::linux
