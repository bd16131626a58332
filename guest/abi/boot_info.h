/*
 * Labyrinth guest ABI: how the VMM hands a freestanding test guest its machine.
 *
 * This header is the contract between vmm/ (which fills it in) and guest/ (which
 * reads it). It is plain C so both the host C++ code and the freestanding guest
 * runtime include it. Layout changes bump LABYRINTH_BOOT_INFO_VERSION.
 *
 * Entry: every vCPU starts at the ELF64 entry point in 64-bit long mode, CPL 0,
 * interrupts disabled, with
 *   RDI = vCPU index (0 = boot CPU; equals its initial LAPIC ID),
 *   RSI = guest-physical address of struct labyrinth_boot_info (LABYRINTH_BOOT_INFO_GPA),
 *   RSP = 0 (the guest runtime picks its own per-CPU stack from RDI),
 *   CR3 = VMM-built identity map (2 MiB pages) of [0, identity_map_end): RAM, the MMIO
 *         gap (cache-disabled) and the page-pool window, every entry user-accessible
 *         (U). The guest never edits it.
 *   GDT: 0x08 = 64-bit code, 0x10 = data, 0x18 = TSS (at LABYRINTH_TSS_GPA, 16-byte
 *        descriptor), 0x28 = 64-bit code DPL 3 (selector 0x2B), 0x30 = data DPL 3
 *        (selector 0x33). Flat segments. The TSS's RSP0 (LABYRINTH_TSS_RSP0_GPA) is 0:
 *        a guest that drops to CPL 3 writes its interrupt stack there first.
 *
 * Performance note (nested "PVM" KVM hosts like the project's CI machine): guest code
 * at CPL 0 is emulated instruction by instruction (~1-8 us each), CPL 3 code runs
 * natively. Guests run setup at CPL 0 and their hot loops at CPL 3 (IOPL 3 keeps
 * IN/OUT, CLI and STI available there; HLT needs CPL 0).
 * Low memory below 1 MiB belongs to the VMM (boot info, command line, GDT, page
 * tables); the guest image is linked at and above LABYRINTH_GUEST_LOAD_MIN.
 */
#ifndef LABYRINTH_GUEST_ABI_BOOT_INFO_H
#define LABYRINTH_GUEST_ABI_BOOT_INFO_H

#ifndef __ASSEMBLER__ /* the runtime's .S files take the selectors from here */
#include <stdint.h>
#endif

#define LABYRINTH_BOOT_INFO_MAGIC 0x31544F4F4248424CULL /* "LBHBOOT1" */
/* 2: the device table (num_devices, devices[]) is gone: lnics are PCI functions that a
 * guest finds on the PCI bus (guest/abi/lnic.h), as every other device. */
#define LABYRINTH_BOOT_INFO_VERSION 2u

/* Fixed guest-physical layout of low memory (VMM-owned). */
#define LABYRINTH_BOOT_INFO_GPA 0x1000ULL /* struct labyrinth_boot_info, 4 KiB */
#define LABYRINTH_CMDLINE_GPA 0x2000ULL   /* NUL-terminated, < 4 KiB */
#define LABYRINTH_GDT_GPA 0x3000ULL       /* GDT + TSS */
#define LABYRINTH_TSS_GPA 0x3080ULL       /* 64-bit TSS (0x68 bytes) */
#define LABYRINTH_TSS_RSP0_GPA (LABYRINTH_TSS_GPA + 4)
#define LABYRINTH_SEL_KERNEL_CODE 0x08
#define LABYRINTH_SEL_KERNEL_DATA 0x10
#define LABYRINTH_SEL_TSS 0x18
#define LABYRINTH_SEL_USER_CODE 0x2B
#define LABYRINTH_SEL_USER_DATA 0x33
#define LABYRINTH_PAGE_TABLE_GPA 0x10000ULL /* PML4, then PDPT, then PDs */
#define LABYRINTH_GUEST_LOAD_MIN 0x100000ULL

/* Guest-physical memory map (x86_64, Firecracker-like). */
#define LABYRINTH_MMIO_GAP_START 0xC0000000ULL /* RAM stops here, resumes at 4 GiB */
#define LABYRINTH_MMIO_GAP_END 0x100000000ULL
#define LABYRINTH_DEVICE_MMIO_BASE 0xD0000000ULL /* PCI BARs the VMM places (lnic, virtio) */
#define LABYRINTH_IOAPIC_GPA 0xFEC00000ULL
#define LABYRINTH_LAPIC_GPA 0xFEE00000ULL

#define LABYRINTH_MAX_VCPUS 32u
#define LABYRINTH_MAX_MEM_REGIONS 16u
#define LABYRINTH_MAX_DEVICES 16u /* lnics a machine has at most (PCI slots 16..31) */

#ifndef __ASSEMBLER__
enum labyrinth_mem_type {
  LABYRINTH_MEM_RAM = 1,      /* usable RAM */
  LABYRINTH_MEM_RESERVED = 2, /* VMM-owned low memory, MMIO */
  LABYRINTH_MEM_POOL = 3,     /* page-pool window: reserved, pages handed out by devices */
};

struct labyrinth_mem_region {
  uint64_t base;
  uint64_t size;
  uint32_t type; /* enum labyrinth_mem_type */
  uint32_t reserved;
};

struct labyrinth_boot_info {
  uint64_t magic;   /* LABYRINTH_BOOT_INFO_MAGIC */
  uint32_t version; /* LABYRINTH_BOOT_INFO_VERSION */
  uint32_t num_cpus;
  uint64_t tsc_khz;          /* guest TSC frequency (the VMM's calibration) */
  uint64_t ram_bytes;        /* total RAM, both sides of the MMIO gap */
  uint64_t identity_map_end; /* everything below is identity-mapped */
  uint64_t pool_window_gpa;  /* page-pool window (0 if none) */
  uint64_t pool_window_size;
  uint64_t cmdline_gpa; /* LABYRINTH_CMDLINE_GPA */
  uint32_t cmdline_len; /* without the NUL */
  uint32_t num_mem_regions;
  struct labyrinth_mem_region mem[LABYRINTH_MAX_MEM_REGIONS];
};

#endif /* __ASSEMBLER__ */

#endif /* LABYRINTH_GUEST_ABI_BOOT_INFO_H */
