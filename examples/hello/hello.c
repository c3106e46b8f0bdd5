// The smallest Kiln application: an unmodified static Linux program.
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char** argv) {
    const char* who = getenv("WHO");
    printf("Hello from Kiln, %s!\n", who ? who : "world");
    for (int i = 1; i < argc; ++i) printf("argument %d: %s\n", i, argv[i]);
    return 0;
}
