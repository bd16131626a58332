// I/O APIC at LABYRINTH_IOAPIC_GPA (0xFEC00000): routes device interrupt lines
// (GSIs = pins) to LAPIC vectors.
//
//   guest::ioapic_route(LABYRINTH_IRQ_TEST_GSI, 0x30);  // pin 5 -> vector 0x30
//
// ioapic_route programs a redirection entry as fixed delivery, physical
// destination LAPIC ID 0 by default, active high, edge triggered, unmasked.
// Edge-triggered entries need only a LAPIC EOI in the handler.
#pragma once

#include <stdint.h>

namespace guest {

uint32_t ioapic_num_pins();  // from the version register (max redirection entry + 1)
// Returns false if pin is beyond the IOAPIC's redirection table.
bool ioapic_route(uint32_t pin, uint8_t vector, uint8_t dest_apic_id = 0);

}  // namespace guest
