/*
 * Labyrinth guest ABI: the legacy I/O ports every Labyrinth VM has.
 *
 *   0x3F8-0x3FF  COM1, 16550 UART (IRQ 4). Guest output goes to the VMM's console.
 *   0x60, 0x64   i8042: writing 0xFE to 0x64 resets the machine (VMM shuts down, status 0).
 *   0xF4-0xF7    isa-debug-exit (QEMU's, for kvm-unit-tests): an OUT of V ends the VM with
 *                status ((V << 1) | 1) & 0xFF. Not for Labyrinth guests: they use 0x501.
 *   0x501        exit device: a 32-bit OUT ends the VM; the VMM exits with (value & 0xFF).
 *   0x510-0x511  fw_cfg (QEMU's firmware configuration: selector, data); kvm-unit-tests
 *                read the CPU count and RAM size there. 0x512-0x51B stay free (QEMU's DMA
 *                interface sits at 0x514).
 *   0x520        irq test device: a 32-bit OUT of N asks the VMM to raise N interrupts on
 *                LABYRINTH_IRQ_TEST_GSI through irqfd (edge), from its event loop; a read
 *                returns how many were raised so far.
 *   0x524        irq test ack: the guest's handler writes any value once it has counted an
 *                interrupt; the device raises the next one >= 1 ms after the previous and
 *                only once it was acked (or 1 s passed), so edges never merge even when the
 *                host is too busy to run the vCPU for a while.
 */
#ifndef LABYRINTH_GUEST_ABI_PORTS_H
#define LABYRINTH_GUEST_ABI_PORTS_H

#define LABYRINTH_PORT_COM1 0x3F8
#define LABYRINTH_COM1_GSI 4
#define LABYRINTH_PORT_I8042_DATA 0x60
#define LABYRINTH_PORT_I8042_CMD 0x64
#define LABYRINTH_I8042_RESET 0xFE
#define LABYRINTH_I8042_KBD_GSI 1 /* the keyboard's IRQ 1 (SendCtrlAltDel) */
#define LABYRINTH_PORT_DEBUG_EXIT 0xF4
#define LABYRINTH_PORT_EXIT 0x501
#define LABYRINTH_PORT_FW_CFG 0x510
#define LABYRINTH_PORT_IRQ_TEST 0x520
#define LABYRINTH_PORT_IRQ_TEST_ACK 0x524
#define LABYRINTH_IRQ_TEST_GSI 5

#endif /* LABYRINTH_GUEST_ABI_PORTS_H */
