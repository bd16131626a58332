#include "vmm/boot/acpi.h"

#include <cstring>
#include <initializer_list>
#include <numeric>
#include <span>
#include <string_view>

#include "devices/legacy/acpi_pm.h"
#include "devices/pci/pci_bus.h"
#include "devices/pci/pci_ecam.h"
#include "guest/abi/boot_info.h"
#include "guest/abi/ports.h"

namespace labyrinth::vmm {

namespace {

using Bytes = std::vector<uint8_t>;

constexpr size_t kHeaderBytes = 36, kTableAlign = 64;  // 64: the FACS's own alignment
constexpr uint64_t kChecksumOff = 9;
// The last bus the ECAM window (and so the host bridge) covers: bus 0 only.
constexpr uint8_t kEcamLastBus = devices::PciEcam::kLen / devices::PciEcam::kBytesPerBus - 1;
static_assert(kEcamLastBus == 0);

uint8_t checksum(std::span<const uint8_t> b) {
  const unsigned sum = std::accumulate(b.begin(), b.end(), 0u);
  return static_cast<uint8_t>(0x100 - (sum & 0xFF));
}

template <class T>
void append(Bytes& b, T v) {
  const size_t at = b.size();
  b.resize(at + sizeof(T));
  std::memcpy(b.data() + at, &v, sizeof(T));
}
void text(Bytes& b, std::string_view s) {
  b.insert(b.end(), s.begin(), s.end());
}
void append(Bytes& b, const Bytes& more) {
  b.insert(b.end(), more.begin(), more.end());
}

// The common header of every table but the RSDP and FACS; length and checksum are
// filled in by finish().
Bytes header(std::string_view signature, uint8_t revision) {
  Bytes b;
  text(b, signature);
  append<uint32_t>(b, 0);  // length
  append<uint8_t>(b, revision);
  append<uint8_t>(b, 0);   // checksum
  text(b, "LABYRI");       // OEM ID (6)
  text(b, "LABYRNTH");     // OEM table ID (8)
  append<uint32_t>(b, 1);  // OEM revision
  text(b, "LBHV");         // creator ID
  append<uint32_t>(b, 1);  // creator revision
  return b;
}
Bytes finish(Bytes b) {
  const auto len = static_cast<uint32_t>(b.size());
  std::memcpy(b.data() + 4, &len, 4);
  b[kChecksumOff] = checksum(b);
  return b;
}

// A Generic Address Structure in system I/O space.
void gas_io(Bytes& b, uint16_t port, uint8_t bits) {
  append<uint8_t>(b, 1);  // SystemIO
  append<uint8_t>(b, bits);
  append<uint8_t>(b, 0);                                                   // bit offset
  append<uint8_t>(b, static_cast<uint8_t>(bits / 8 == 4 ? 3 : bits / 8));  // access size
  append<uint64_t>(b, port);
}

// ---- AML (ACPI 6.5, chapter 20), just the terms the DSDT needs. ----

// PkgLength counts itself: one byte up to 63, then 0x40|low nibble + more bytes.
Bytes pkg(std::initializer_list<uint8_t> opcode, const Bytes& body) {
  Bytes b(opcode);
  const size_t n = body.size();
  if (n + 1 < 0x40) {
    b.push_back(static_cast<uint8_t>(n + 1));
  } else if (n + 2 < 0x1000) {
    const size_t len = n + 2;
    b.push_back(static_cast<uint8_t>(0x40 | (len & 0xF)));
    b.push_back(static_cast<uint8_t>(len >> 4));
  } else {  // the DSDT stays far below 1 MiB
    const size_t len = n + 3;
    b.push_back(static_cast<uint8_t>(0x80 | (len & 0xF)));
    b.push_back(static_cast<uint8_t>((len >> 4) & 0xFF));
    b.push_back(static_cast<uint8_t>(len >> 12));
  }
  append(b, body);
  return b;
}
Bytes integer(uint64_t v) {
  Bytes b;
  if (v == 0) return {0x00};  // ZeroOp
  if (v == 1) return {0x01};  // OneOp
  if (v <= 0xFF) {
    b = {0x0A};
    append<uint8_t>(b, static_cast<uint8_t>(v));
  } else if (v <= 0xFFFF) {
    b = {0x0B};
    append<uint16_t>(b, static_cast<uint16_t>(v));
  } else if (v <= 0xFFFFFFFF) {
    b = {0x0C};
    append<uint32_t>(b, static_cast<uint32_t>(v));
  } else {
    b = {0x0E};
    append<uint64_t>(b, v);
  }
  return b;
}
// A compressed EISA ID ("PNP0A03" -> 0x030AD041) as a DWordConst.
Bytes eisa_id(std::string_view id) {
  const auto c = [&](size_t i) { return static_cast<uint32_t>(id[i] - 0x40) & 0x1F; };
  const auto hex = [&](size_t i) {
    const char ch = id[i];
    return static_cast<uint32_t>(ch <= '9' ? ch - '0' : ch - 'A' + 10);
  };
  const uint32_t vendor = (c(0) << 10) | (c(1) << 5) | c(2);
  const uint32_t product = (hex(3) << 12) | (hex(4) << 8) | (hex(5) << 4) | hex(6);
  // Stored big-endian: vendor high byte first, then product high byte first.
  const uint32_t v = ((vendor >> 8) & 0xFF) | ((vendor & 0xFF) << 8) |
                     (((product >> 8) & 0xFF) << 16) | ((product & 0xFF) << 24);
  Bytes b = {0x0C};
  append<uint32_t>(b, v);
  return b;
}
Bytes name(std::string_view seg, const Bytes& value) {  // NameOp NameSeg DataObject
  Bytes b = {0x08};
  text(b, seg);
  append(b, value);
  return b;
}
Bytes buffer(const Bytes& data) {  // BufferOp PkgLength BufferSize ByteList
  Bytes body = integer(data.size());
  append(body, data);
  return pkg({0x11}, body);
}
Bytes package(std::initializer_list<uint64_t> elements) {  // PackageOp PkgLength NumElements
  Bytes body = {static_cast<uint8_t>(elements.size())};
  for (uint64_t e : elements) append(body, integer(e));
  return pkg({0x12}, body);
}
Bytes device(std::string_view seg, const Bytes& terms) {  // DeviceOp PkgLength NameSeg
  Bytes body;
  text(body, seg);
  append(body, terms);
  return pkg({0x5B, 0x82}, body);
}
Bytes scope(std::string_view path, const Bytes& terms) {  // ScopeOp PkgLength NameString
  Bytes body;
  text(body, path);
  append(body, terms);
  return pkg({0x10}, body);
}

// ---- Resource descriptors (ACPI 6.5, 6.4) for _CRS buffers. ----

Bytes io_port(uint16_t base, uint8_t len) {  // I/O Port, 16-bit decode, fixed
  Bytes b = {0x47, 0x01};
  append<uint16_t>(b, base);
  append<uint16_t>(b, base);
  append<uint8_t>(b, 1);  // alignment
  append<uint8_t>(b, len);
  return b;
}
Bytes memory32_fixed(uint32_t base, uint32_t len) {  // Memory32Fixed, read-write
  Bytes b = {0x86};
  append<uint16_t>(b, 9);  // length after this field
  append<uint8_t>(b, 1);   // read-write
  append<uint32_t>(b, base);
  append<uint32_t>(b, len);
  return b;
}
Bytes irq(uint8_t line) {  // IRQ, no flags: edge, active high, exclusive
  Bytes b = {0x22};
  append<uint16_t>(b, static_cast<uint16_t>(1u << line));
  return b;
}
// Producer ranges of a bridge: minimum and maximum fixed, positive decode.
constexpr uint8_t kAddrFlags = 0x0C;
Bytes word_bus_numbers(uint16_t first, uint16_t last) {
  Bytes b = {0x88};
  append<uint16_t>(b, 13);  // length after this field
  append<uint8_t>(b, 2);    // bus number range
  append<uint8_t>(b, kAddrFlags);
  append<uint8_t>(b, 0);
  for (uint16_t v :
       {uint16_t{0}, first, last, uint16_t{0}, static_cast<uint16_t>(last - first + 1)}) {
    append<uint16_t>(b, v);  // granularity, min, max, translation, length
  }
  return b;
}
Bytes dword_memory(uint32_t first, uint32_t last) {
  Bytes b = {0x87};
  append<uint16_t>(b, 23);
  append<uint8_t>(b, 0);  // memory range
  append<uint8_t>(b, kAddrFlags);
  append<uint8_t>(b, 0x01);  // read-write, non-cacheable
  for (uint32_t v : {uint32_t{0}, first, last, uint32_t{0}, last - first + 1}) {
    append<uint32_t>(b, v);
  }
  return b;
}
Bytes resources(std::initializer_list<Bytes> items) {
  Bytes b;
  for (const auto& i : items) append(b, i);
  append<uint8_t>(b, 0x79);  // end tag; checksum 0: "treat as correct"
  append<uint8_t>(b, 0);
  return buffer(b);
}

Bytes dsdt(bool s3) {
  Bytes pci0;
  append(pci0, name("_HID", eisa_id("PNP0A03")));
  append(pci0, name("_UID", integer(0)));
  append(pci0, name("_SEG", integer(0)));
  append(pci0, name("_BBN", integer(0)));
  // Bus 0 only: the one bus there is, and all the MCFG's window covers (Linux notes an
  // ECAM that "only partially covers this bridge" otherwise).
  append(pci0,
         name("_CRS", resources({word_bus_numbers(0, kEcamLastBus),
                                 io_port(devices::PciBus::kBase, devices::PciBus::kLen),
                                 dword_memory(static_cast<uint32_t>(LABYRINTH_DEVICE_MMIO_BASE),
                                              static_cast<uint32_t>(LABYRINTH_IOAPIC_GPA - 1))})));
  Bytes com1;
  append(com1, name("_HID", eisa_id("PNP0501")));
  append(com1, name("_UID", integer(1)));
  append(com1, name("_CRS", resources({io_port(LABYRINTH_PORT_COM1, 8), irq(LABYRINTH_COM1_GSI)})));
  Bytes kbd;
  append(kbd, name("_HID", eisa_id("PNP0303")));
  append(kbd, name("_CRS", resources({io_port(LABYRINTH_PORT_I8042_DATA, 1),
                                      io_port(LABYRINTH_PORT_I8042_CMD, 1), irq(1)})));
  // The ECAM window as a motherboard resource, where PCI Firmware 3.3 (4.1.2) wants it and
  // Linux's check of MCFG areas looks (is_acpi_reserved in mmconfig-shared.c).
  Bytes mbrd;
  append(mbrd, name("_HID", eisa_id("PNP0C02")));
  append(mbrd, name("_UID", integer(0)));
  append(mbrd,
         name("_CRS", resources({memory32_fixed(static_cast<uint32_t>(kPciEcamGpa),
                                                static_cast<uint32_t>(devices::PciEcam::kLen))})));
  Bytes sb;
  append(sb, device("PCI0", pci0));
  append(sb, device("COM1", com1));
  append(sb, device("PS2K", kbd));
  append(sb, device("MBRD", mbrd));  // last: the PNP layer's 00:00 and 00:01 stay COM1 and PS2K

  Bytes t = header("DSDT", 2);  // revision 2: 64-bit integers
  if (s3) append(t, name("_S3_", package({devices::AcpiPm::kSlpTypS3, 0})));
  append(t, name("_S5_", package({devices::AcpiPm::kSlpTypS5, 0})));
  append(t, scope("\\_SB_", sb));
  return finish(std::move(t));
}

Bytes fadt(uint64_t facs_gpa, uint64_t dsdt_gpa, const AcpiOptions& o) {
  const bool pm_timer = o.pm_timer;
  Bytes t = header("FACP", 6);
  // FIRMWARE_CTRL, or X_FIRMWARE_CTRL below (one of the two, as ACPI asks).
  append<uint32_t>(t, o.facs_32bit ? static_cast<uint32_t>(facs_gpa) : 0);
  append<uint32_t>(t, 0);  // DSDT: X_DSDT below
  append<uint8_t>(t, 0);   // reserved
  append<uint8_t>(t, 0);   // preferred PM profile: unspecified
  append<uint16_t>(t, kAcpiSciIrq);
  append<uint32_t>(t, 0);  // SMI_CMD: none, the machine is always in ACPI mode
  append<uint32_t>(t, 0);  // ACPI_ENABLE, ACPI_DISABLE, S4BIOS_REQ, PSTATE_CNT
  append<uint32_t>(t, devices::AcpiPm::kEventBlock);                 // PM1a_EVT_BLK
  append<uint32_t>(t, 0);                                            // PM1b_EVT_BLK
  append<uint32_t>(t, devices::AcpiPm::kControlBlock);               // PM1a_CNT_BLK
  append<uint32_t>(t, 0);                                            // PM1b_CNT_BLK
  append<uint32_t>(t, 0);                                            // PM2_CNT_BLK
  append<uint32_t>(t, pm_timer ? devices::AcpiPm::kTimerBlock : 0);  // PM_TMR_BLK
  append<uint32_t>(t, 0);                                            // GPE0_BLK
  append<uint32_t>(t, 0);                                            // GPE1_BLK
  append<uint8_t>(t, devices::AcpiPm::kEventLen);
  append<uint8_t>(t, devices::AcpiPm::kControlLen);
  append<uint8_t>(t, 0);                                          // PM2_CNT_LEN
  append<uint8_t>(t, pm_timer ? devices::AcpiPm::kTimerLen : 0);  // PM_TMR_LEN
  for (int i = 0; i < 4; ++i) append<uint8_t>(t, 0);  // GPE0/1 lengths, GPE1_BASE, CST_CNT
  append<uint16_t>(t, 0xFFF);                         // P_LVL2_LAT > 100: C2 not supported
  append<uint16_t>(t, 0xFFFF);                        // P_LVL3_LAT > 1000: C3 not supported
  append<uint32_t>(t, 0);                             // FLUSH_SIZE, FLUSH_STRIDE
  append<uint8_t>(t, 0);  // DUTY_OFFSET, DUTY_WIDTH, DAY_ALRM, MON_ALRM, CENTURY
  append<uint32_t>(t, 0);
  // IAPC_BOOT_ARCH: LEGACY_DEVICES | 8042 | VGA Not Present.
  append<uint16_t>(t, (1u << 0) | (1u << 1) | (1u << 2));
  append<uint8_t>(t, 0);
  // Flags: WBINVD, PROC_C1, PWR_BUTTON and SLP_BUTTON (no fixed buttons).
  append<uint32_t>(t, (1u << 0) | (1u << 2) | (1u << 4) | (1u << 5));
  for (int i = 0; i < 12; ++i) append<uint8_t>(t, 0);  // RESET_REG: none
  append<uint8_t>(t, 0);                               // RESET_VALUE
  append<uint16_t>(t, 0);                              // ARM_BOOT_ARCH
  append<uint8_t>(t, 5);                               // FADT minor version: 6.5
  append<uint64_t>(t, o.facs_32bit ? 0 : facs_gpa);    // X_FIRMWARE_CTRL
  append<uint64_t>(t, dsdt_gpa);                       // X_DSDT
  // X_PM1a_EVT_BLK and X_PM1a_CNT_BLK, the same ports with their widths (ACPICA checks
  // that they agree with the 32-bit fields); the rest absent.
  gas_io(t, devices::AcpiPm::kEventBlock, devices::AcpiPm::kEventLen * 8);
  for (int i = 0; i < 12; ++i) append<uint8_t>(t, 0);  // X_PM1b_EVT_BLK
  gas_io(t, devices::AcpiPm::kControlBlock, devices::AcpiPm::kControlLen * 8);
  for (int i = 0; i < 12 * 2; ++i) append<uint8_t>(t, 0);  // X_PM1b_CNT, X_PM2_CNT
  if (pm_timer) {
    gas_io(t, devices::AcpiPm::kTimerBlock, devices::AcpiPm::kTimerLen * 8);  // X_PM_TMR_BLK
  } else {
    for (int i = 0; i < 12; ++i) append<uint8_t>(t, 0);
  }
  for (int i = 0; i < 12 * 2; ++i) append<uint8_t>(t, 0);  // X_GPE0, X_GPE1
  for (int i = 0; i < 12 * 2; ++i) append<uint8_t>(t, 0);  // SLEEP_CONTROL/STATUS: not reduced
  text(t, "LABYRNTH");                                     // hypervisor vendor identity
  return finish(std::move(t));
}

Bytes facs() {
  Bytes t;
  text(t, "FACS");
  append<uint32_t>(t, 64);
  t.resize(32, 0);        // hardware signature, waking vectors, global lock, flags: 0
  append<uint8_t>(t, 2);  // version
  t.resize(64, 0);
  return t;  // no checksum
}

Bytes madt(uint32_t num_cpus) {
  Bytes t = header("APIC", 5);
  append<uint32_t>(t, static_cast<uint32_t>(LABYRINTH_LAPIC_GPA));
  append<uint32_t>(t, 1);  // PCAT_COMPAT: the machine has 8259s
  for (uint32_t i = 0; i < num_cpus; ++i) {
    append<uint8_t>(t, 0);  // processor local APIC
    append<uint8_t>(t, 8);
    append<uint8_t>(t, static_cast<uint8_t>(i));  // ACPI processor UID
    append<uint8_t>(t, static_cast<uint8_t>(i));  // APIC ID = vCPU index (cpuid.cc)
    append<uint32_t>(t, 1);                       // enabled
  }
  append<uint8_t>(t, 1);  // I/O APIC
  append<uint8_t>(t, 12);
  append<uint8_t>(t, static_cast<uint8_t>(num_cpus + 1));  // the MP table's ID
  append<uint8_t>(t, 0);
  append<uint32_t>(t, static_cast<uint32_t>(LABYRINTH_IOAPIC_GPA));
  append<uint32_t>(t, 0);  // GSI base
  append<uint8_t>(t, 2);   // interrupt source override: the SCI
  append<uint8_t>(t, 10);
  append<uint8_t>(t, 0);  // ISA
  append<uint8_t>(t, kAcpiSciIrq);
  append<uint32_t>(t, kAcpiSciIrq);
  append<uint16_t>(t, 0x000D);  // active high (01), level (11 << 2)
  append<uint8_t>(t, 4);        // local APIC NMI
  append<uint8_t>(t, 6);
  append<uint8_t>(t, 0xFF);  // every processor
  append<uint16_t>(t, 0);    // bus-conforming polarity and trigger
  append<uint8_t>(t, 1);     // LINT1
  return finish(std::move(t));
}

// One allocation: segment 0, buses 0..kEcamLastBus at the ECAM window.
Bytes mcfg() {
  Bytes t = header("MCFG", 1);
  append<uint64_t>(t, 0);  // reserved
  append<uint64_t>(t, kPciEcamGpa);
  append<uint16_t>(t, 0);  // PCI segment group
  append<uint8_t>(t, 0);   // start bus
  append<uint8_t>(t, kEcamLastBus);
  append<uint32_t>(t, 0);  // reserved
  return finish(std::move(t));
}

Bytes xsdt(std::initializer_list<uint64_t> tables) {
  Bytes t = header("XSDT", 1);
  for (uint64_t gpa : tables) append<uint64_t>(t, gpa);
  return finish(std::move(t));
}

Bytes rsdp(uint64_t xsdt_gpa) {
  Bytes t;
  text(t, "RSD PTR ");
  append<uint8_t>(t, 0);  // checksum of the first 20 bytes
  text(t, "LABYRI");
  append<uint8_t>(t, 2);   // ACPI 2.0+: the XSDT
  append<uint32_t>(t, 0);  // no RSDT
  append<uint32_t>(t, 36);
  append<uint64_t>(t, xsdt_gpa);
  append<uint8_t>(t, 0);  // extended checksum, of all 36
  t.resize(36, 0);
  t[8] = checksum(std::span<const uint8_t>(t).first(20));
  t[32] = checksum(t);
  return t;
}

size_t next(size_t off, size_t len) {
  return (off + len + kTableAlign - 1) / kTableAlign * kTableAlign;
}

// The offsets of the tables before the MADT do not depend on the machine.
struct FixedOffsets {
  size_t xsdt = 0, fadt = 0, facs = 0;
};
FixedOffsets fixed_offsets() {
  const size_t xsdt_len = kHeaderBytes + size_t{3} * 8, fadt_len = fadt(0, 0, AcpiOptions{}).size();
  FixedOffsets o;
  o.xsdt = next(0, rsdp(0).size());
  o.fadt = next(o.xsdt, xsdt_len);
  o.facs = next(o.fadt, fadt_len);
  return o;
}

}  // namespace

uint64_t acpi_facs_gpa(uint64_t gpa) {
  return gpa + fixed_offsets().facs;
}

std::vector<std::byte> make_acpi_tables(uint64_t gpa, uint32_t num_cpus, AcpiOptions options) {
  // Offsets first (each table at a 64-byte boundary), then the bytes.
  const Bytes m = madt(num_cpus), d = dsdt(options.s3), f = facs(), c = mcfg();
  const FixedOffsets fixed = fixed_offsets();
  const size_t xsdt_off = fixed.xsdt, fadt_off = fixed.fadt, facs_off = fixed.facs,
               madt_off = next(facs_off, f.size()), mcfg_off = next(madt_off, m.size()),
               dsdt_off = next(mcfg_off, c.size()), end = dsdt_off + d.size();
  std::vector<std::byte> out(end, std::byte{0});
  const auto place = [&](size_t off, const Bytes& b) {
    std::memcpy(out.data() + off, b.data(), b.size());
  };
  place(0, rsdp(gpa + xsdt_off));
  place(xsdt_off, xsdt({gpa + fadt_off, gpa + madt_off, gpa + mcfg_off}));
  place(fadt_off, fadt(gpa + facs_off, gpa + dsdt_off, options));
  place(facs_off, f);
  place(madt_off, m);
  place(mcfg_off, c);
  place(dsdt_off, d);
  return out;
}

}  // namespace labyrinth::vmm
