// The smallest application: one line, then a chosen exit status (argv[1], default 0).
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char** argv) {
    puts("hello from a static Linux binary");
    return argc > 1 ? atoi(argv[1]) : 0;
}
