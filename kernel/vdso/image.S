// The vDSO's bytes in the kernel image (built from vdso.cpp by kernel/CMakeLists.txt), mapped
// into the application's half at start-up (linux/vdso.cpp).
    .section .rodata
    .balign 4096
    .globl vdso_image_start, vdso_image_end
vdso_image_start:
    .incbin KILN_VDSO_IMAGE
vdso_image_end:
    .section .note.GNU-stack, "", @progbits
