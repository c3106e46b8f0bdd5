// The first instructions of the Kiln kernel: both entry points, the prebuilt page tables, the
// early PVM probe and the switch into PVM's native mode.
//
// Everything here runs from its physical address (section .boot, linked at its load address).
// On PVM these instructions are emulated at ~0.5 us each until the native switch, so the path to
// it is kept to a few dozen instructions and every table is prebuilt at assembly time.
#include "arch/x86_64/layout.h"

#define PTE_PRESENT 0x1
#define PTE_WRITE 0x2
#define PTE_USER 0x4     // PVM's native mode needs U/S=1 at every level the kernel touches
#define PTE_PWT 0x8
#define PTE_PCD 0x10
#define PTE_LARGE 0x80
#define TABLE_FLAGS (PTE_PRESENT | PTE_WRITE | PTE_USER)
#define LARGE_FLAGS (PTE_PRESENT | PTE_WRITE | PTE_USER | PTE_LARGE)
#define MMIO_FLAGS (LARGE_FLAGS | PTE_PWT | PTE_PCD)

#define CR0_PE 0x1
#define CR0_MP 0x2
#define CR0_ET 0x10
#define CR0_NE 0x20
#define CR0_WP 0x10000
#define CR0_AM 0x40000
#define CR0_PG 0x80000000
#define CR4_PAE 0x20
#define CR4_PGE 0x80
#define MSR_EFER 0xc0000080
#define EFER_SCE 0x1
#define EFER_LME 0x100
#define EFER_NXE 0x800

// ---------------------------------------------------------------------------------------------
// ELF notes: the PVH 32-bit entry (QEMU, kiln-vmm --boot pvh) and Kiln's 64-bit entry (kiln-vmm).
        .section .note.kiln, "a"
        .p2align 2
        .long 4, 4, 18                  // namesz, descsz, XEN_ELFNOTE_PHYS32_ENTRY
        .asciz "Xen"
        .long pvh_entry32
        .p2align 2
        .long 5, 8, 0x4b01              // namesz, descsz, KILN_ELFNOTE_ENTRY64
        .asciz "Kiln"
        .p2align 2
        .quad kiln_entry64

// ---------------------------------------------------------------------------------------------
        .section .boot.text, "ax"
        .code32
        .globl pvh_entry32
// PVH: 32-bit protected mode, paging off, EBX = start_info.
pvh_entry32:
        cli
        lgdt boot_gdt_desc
        mov $(CR4_PAE | CR4_PGE), %eax
        mov %eax, %cr4
        mov $boot_pml4, %eax
        mov %eax, %cr3
        mov $MSR_EFER, %ecx
        rdmsr
        or $(EFER_LME | EFER_NXE | EFER_SCE), %eax
        wrmsr
        mov $(CR0_PG | CR0_AM | CR0_WP | CR0_NE | CR0_ET | CR0_MP | CR0_PE), %eax
        mov %eax, %cr0
        ljmp $KILN_SEL_KERNEL_CS, $entry64_common

        .code64
        .globl kiln_entry64
// kiln-vmm's direct entry: long mode on kiln-vmm's identity map, EBX = start_info.
kiln_entry64:
        mov $boot_pml4, %eax
        mov %rax, %cr3
        lgdt boot_gdt_desc(%rip)
        pushq $KILN_SEL_KERNEL_CS
        lea entry64_common(%rip), %rax
        pushq %rax
        lretq

entry64_common:
        mov $KILN_SEL_KERNEL_DS, %eax
        mov %eax, %ds
        mov %eax, %es
        mov %eax, %ss
        xor %eax, %eax
        mov %eax, %fs
        mov %eax, %gs
        mov %ebx, %r12d                 // start_info, kept across cpuid
        xor %r13d, %r13d                // platform: hw until PVM is proven
        movabs $boot_stack_top, %rsp

        // An IDT with one gate, #GP, whose handler skips the faulting rdmsr: probing a PVM MSR
        // raises #GP on every other host.
        lea early_gp_fixup(%rip), %rax
        lea early_idt + 13 * 16(%rip), %rdi
        mov %ax, (%rdi)
        movw $KILN_SEL_KERNEL_CS, 2(%rdi)
        movw $0x8e00, 4(%rdi)
        shr $16, %rax
        mov %ax, 6(%rdi)
        shr $16, %rax
        mov %eax, 8(%rdi)
        lidt early_idt_desc(%rip)

        // PVM answers KVM's CPUID signature; only then is the MSR worth probing.
        mov $0x40000000, %eax
        cpuid
        cmp $0x4b4d564b, %ebx           // "KVMK"
        jne 1f
        cmp $0x564b4d56, %ecx           // "VMKV"
        jne 1f
        cmp $0x4d, %edx                 // "M"
        jne 1f
        mov $KILN_PVM_MSR_SIGNATURE, %ecx
        rdmsr                           // #GP outside PVM: early_gp_fixup returns eax = 0
        cmp $KILN_PVM_SIGNATURE, %eax
        jne 1f
        // Register the virtual-interrupt-flag page: the vCPU runs natively from the next
        // instruction. Its byte 0 stays 0 (interrupts off) until the kernel enables them.
        movabs $(pvm_vif_page - KILN_KERNEL_BASE), %rax
        xor %edx, %edx
        mov $KILN_PVM_MSR_VIF, %ecx
        wrmsr
        mov $KILN_BOOT_PLATFORM_PVM, %r13d
1:
        mov %r12d, %edi
        mov %r13d, %esi
        movabs $kiln_start, %rax
        call *%rax
2:      hlt
        jmp 2b

early_gp_fixup:
        add $8, %rsp                    // the error code
        addq $2, (%rsp)                 // skip the 2-byte rdmsr
        xor %eax, %eax
        xor %edx, %edx
        iretq

// ---------------------------------------------------------------------------------------------
        .section .boot.data, "aw"
        .p2align 3
boot_gdt:
        .quad 0
        .quad 0x00cf9a000000ffff        // 0x08 kernel 32-bit code
        .quad 0x00af9a000000ffff        // 0x10 kernel 64-bit code
        .quad 0x00cf92000000ffff        // 0x18 kernel data
boot_gdt_end:
boot_gdt_desc:
        .word boot_gdt_end - boot_gdt - 1
        .quad boot_gdt

        .p2align 3
early_idt_desc:
        .word 14 * 16 - 1
        .quad early_idt

        .p2align 4
early_idt:
        .fill 14 * 16, 1, 0

// The page tables the kernel runs on: identity map of the low 1 GiB (boot only), a direct map of
// physical 0..4 GiB at KILN_DIRECT_MAP_BASE, and physical 0..2 GiB at KILN_KERNEL_BASE, all with
// 2 MiB pages. Prebuilt here so that no loop runs emulated at boot.
        .p2align 12
        .globl boot_pml4
boot_pml4:
        .quad boot_pdpt_identity + TABLE_FLAGS
        .fill 272, 8, 0
        .quad boot_pdpt_direct + TABLE_FLAGS        // slot 273
        .fill 237, 8, 0
        .quad boot_pdpt_kernel + TABLE_FLAGS        // slot 511
boot_pdpt_identity:
        .quad boot_pd + TABLE_FLAGS
        .fill 511, 8, 0
boot_pdpt_direct:
        .quad boot_pd + TABLE_FLAGS
        .quad boot_pd + 0x1000 + TABLE_FLAGS
        .quad boot_pd + 0x2000 + TABLE_FLAGS
        .quad boot_pd + 0x3000 + TABLE_FLAGS
        .fill 508, 8, 0
boot_pdpt_kernel:
        .fill 510, 8, 0
        .quad boot_pd + TABLE_FLAGS
        .quad boot_pd + 0x1000 + TABLE_FLAGS
// Four page directories, 2048 entries of 2 MiB: cacheable up to 3.75 GiB (RAM, kiln-vmm's
// read-only initrd window at 3.5 GiB, emulated virtio registers), uncached above (I/O APIC,
// local APIC).
boot_pd:
        .set page, 0
        .rept 1920
        .quad (page << 21) + LARGE_FLAGS
        .set page, page + 1
        .endr
        .rept 128
        .quad (page << 21) + MMIO_FLAGS
        .set page, page + 1
        .endr

// ---------------------------------------------------------------------------------------------
        .section .bss.boot, "aw", @nobits
        .p2align 12
        .globl pvm_vif_page
pvm_vif_page:
        .skip 4096
        .p2align 4
        .globl boot_stack
boot_stack:
        .skip 16384
        .globl boot_stack_top
boot_stack_top:
