// The kernel's virtual address layout. Included by C++ and by assembly.
//
//   0x0000000000000000 .. 0x00007fffffffffff  low half: the application (identity map at boot only)
//   0xffff888000000000 .. +4 GiB               direct map of physical memory (PML4 slot 273)
//   0xffffffff80000000 .. +2 GiB               the kernel image and everything below 2 GiB physical
//
// PVM's native mode cannot use PML4 slot 256 (0xffff800000000000); neither region touches it.
#pragma once

#ifndef KILN_PLATFORM_PROC
#define KILN_KERNEL_BASE 0xffffffff80000000
#define KILN_DIRECT_MAP_BASE 0xffff888000000000
#else
// The `proc` build (kernel/platform/proc) runs in a Linux process, in the low half: kiln-proc
// maps the instance's memory at 16 TiB and the kernel image lies inside it, so one base serves
// as both the kernel's and the direct map's. Below it: the application (kernel/platform/proc).
#define KILN_KERNEL_BASE 0x100000000000
#define KILN_DIRECT_MAP_BASE 0x100000000000
#endif
#define KILN_DIRECT_MAP_SIZE 0x100000000
#define KILN_KERNEL_PHYS_LOAD 0x100000

// Segment selectors, in Linux's GDT layout (PVM's native mode was proven with it).
#define KILN_SEL_KERNEL32_CS 0x08
#define KILN_SEL_KERNEL_CS 0x10
#define KILN_SEL_KERNEL_DS 0x18
#define KILN_SEL_USER32_CS 0x23
#define KILN_SEL_USER_DS 0x2b
#define KILN_SEL_USER_CS 0x33
#define KILN_SEL_TSS 0x40

// PVM: MSR 0x4b564d11 reads a signature; a page-aligned guest-physical address written to
// 0x4b564d10 switches the vCPU into native mode (research/pvm.md, "Native mode follow-up").
#define KILN_PVM_MSR_SIGNATURE 0x4b564d11
#define KILN_PVM_MSR_VIF 0x4b564d10
#define KILN_PVM_SIGNATURE 0x4d5650

// Values boot.S hands to kiln_start() as the platform it found.
#define KILN_BOOT_PLATFORM_HW 0
#define KILN_BOOT_PLATFORM_PVM 1
#define KILN_BOOT_PLATFORM_PROC 2
