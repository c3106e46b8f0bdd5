// Prints argv and selected environment variables, one per line, for the kernel's command-line
// and initial-stack handling.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>

int main(int argc, char** argv) {
    for (int i = 0; i < argc; ++i) printf("argv[%d]=%s\n", i, argv[i]);
    const char* names[] = {"GREETING", "PORT", "PATH", "HOME"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); ++i) {
        const char* v = getenv(names[i]);
        printf("env %s=%s\n", names[i], v ? v : "(unset)");
    }
    printf("pagesz=%lu random=%s execfn=%s\n", getauxval(AT_PAGESZ), getauxval(AT_RANDOM) ? "yes" : "no",
           (const char*)getauxval(AT_EXECFN));
    return 0;
}
