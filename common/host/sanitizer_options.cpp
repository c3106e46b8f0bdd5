// Compiled into every host program of the sanitized build only (KILN_SANITIZE; see the top
// CMakeLists.txt): AddressSanitizer's defaults for them.
//
// intercept_tls_get_addr=0: the sanitizer runtime of clang 14 (Debian 12) records each dynamic TLS
// block it sees in __tls_get_addr, and decides a block carries glibc 2.19's header when its start
// lies sizeof(that header) past a page boundary; glibc has had no such header since 2.25, so a
// block that lands there by chance (libcurl's TLS libraries, loaded for a pull) is recorded with a
// garbage range, and LeakSanitizer's exit-time scan of it crashes ("Tracer caught signal 11") after
// the program's work is done. Without the interception leaks are still checked; only the
// runtime's own record of dynamic TLS blocks is gone (ld.so allocates them with malloc, so they
// stay reachable through each thread's static TLS, which is scanned).
// (google/sanitizers issues 1322 and 1342; fixed in LLVM 17's runtime.)
extern "C" const char* __asan_default_options();
extern "C" const char* __asan_default_options() { return "intercept_tls_get_addr=0"; }
