// The ACPI tables' bytes, followed from the RSDP as Linux's ACPICA does.
#include "vmm/boot/acpi.h"

#include <gtest/gtest.h>

#include <cstring>
#include <numeric>
#include <span>
#include <string>

#include "devices/legacy/acpi_pm.h"
#include "guest/abi/boot_info.h"
#include "vmm/boot/byte_fields.h"
#include "vmm/boot/linux_loader.h"
#include "vmm/boot/mptable.h"

namespace labyrinth::vmm {
namespace {

using Span = std::span<const std::byte>;

unsigned byte_sum(Span b) {
  return std::accumulate(b.begin(), b.end(), 0u,
                         [](unsigned a, std::byte x) { return a + std::to_integer<unsigned>(x); }) &
         0xFF;
}
std::string sig(Span b, size_t n = 4) {
  return {reinterpret_cast<const char*>(b.data()), n};
}

// The tables of a machine whose RSDP sits at kAcpiTablesGpa, each checked for its
// signature, its length staying inside the bytes and a zero byte sum.
class AcpiTables : public ::testing::Test {
 protected:
  void build(uint32_t cpus, AcpiOptions options = {}) {
    bytes_ = make_acpi_tables(kAcpiTablesGpa, cpus, options);
    ASSERT_LE(bytes_.size(), kAcpiTablesMax);
  }
  Span table(uint64_t gpa, const std::string& signature) {
    EXPECT_GE(gpa, kAcpiTablesGpa);
    EXPECT_LE(gpa + 36, kAcpiTablesGpa + bytes_.size()) << signature;
    if (gpa < kAcpiTablesGpa || gpa + 36 > kAcpiTablesGpa + bytes_.size()) return {};
    const Span all(bytes_);
    const uint32_t len = get<uint32_t>(all, gpa - kAcpiTablesGpa + 4);
    EXPECT_LE(gpa - kAcpiTablesGpa + len, bytes_.size()) << signature;
    const Span t = all.subspan(gpa - kAcpiTablesGpa, len);
    EXPECT_EQ(sig(t), signature);
    if (signature != "FACS") {
      EXPECT_EQ(byte_sum(t), 0u) << signature << " checksum";
    }
    return t;
  }
  // RSDP -> XSDT -> the table with this signature.
  Span find(const std::string& signature) {
    const Span rsdp = Span(bytes_).first(36);
    const Span xsdt = table(get<uint64_t>(rsdp, 24), "XSDT");
    for (size_t off = 36; off + 8 <= xsdt.size(); off += 8) {
      const uint64_t gpa = get<uint64_t>(xsdt, off);
      if (gpa >= kAcpiTablesGpa && gpa + 4 <= kAcpiTablesGpa + bytes_.size() &&
          sig(Span(bytes_).subspan(gpa - kAcpiTablesGpa)) == signature) {
        return table(gpa, signature);
      }
    }
    ADD_FAILURE() << signature << " is not in the XSDT";
    return {};
  }

  std::vector<std::byte> bytes_;
};

TEST_F(AcpiTables, RsdpIsAVersion2PointerToTheXsdt) {
  build(1);
  const Span rsdp = Span(bytes_).first(36);
  EXPECT_EQ(sig(rsdp, 8), "RSD PTR ");
  EXPECT_EQ(byte_sum(rsdp.first(20)), 0u) << "ACPI 1.0 checksum";
  EXPECT_EQ(byte_sum(rsdp), 0u) << "extended checksum";
  EXPECT_EQ(get<uint8_t>(rsdp, 15), 2) << "revision 2: XSDT";
  EXPECT_EQ(get<uint32_t>(rsdp, 20), 36u);
  // Where Linux's scan looks: 16-byte aligned in 0xE0000-0xFFFFF, e820-reserved.
  EXPECT_EQ(kAcpiTablesGpa % 16, 0u);
  EXPECT_GE(kAcpiTablesGpa, 0xE0000u);
  const auto e820 = linux_e820(MemoryLayout::compute(256 * kMiB, 0).value());
  EXPECT_EQ(e820[1].type, kE820Reserved);
  EXPECT_LE(e820[1].addr, kAcpiTablesGpa);
  EXPECT_GE(e820[1].addr + e820[1].size, kAcpiTablesGpa + bytes_.size());
  // Apart from the MP table below it.
  EXPECT_LE(kLinuxEbdaGpa + make_mptable(kLinuxEbdaGpa, LABYRINTH_MAX_VCPUS).size(),
            kAcpiTablesGpa);
  const Span xsdt = table(get<uint64_t>(rsdp, 24), "XSDT");
  EXPECT_EQ(xsdt.size(), 36u + 3 * 8) << "FADT, MADT and MCFG";
}

TEST_F(AcpiTables, FadtIsAFullOneWithPm1BlocksFacsAndDsdt) {
  build(2);
  const Span fadt = find("FACP");
  ASSERT_EQ(fadt.size(), 276u) << "ACPI 6.x FADT";
  EXPECT_EQ(get<uint8_t>(fadt, 8), 6);              // revision
  EXPECT_EQ(get<uint16_t>(fadt, 46), kAcpiSciIrq);  // SCI_INT
  EXPECT_EQ(get<uint32_t>(fadt, 48), 0u);           // SMI_CMD: always ACPI mode
  EXPECT_EQ(get<uint32_t>(fadt, 56), devices::AcpiPm::kEventBlock);
  EXPECT_EQ(get<uint32_t>(fadt, 64), devices::AcpiPm::kControlBlock);
  EXPECT_EQ(get<uint8_t>(fadt, 88), 4);  // PM1_EVT_LEN
  EXPECT_EQ(get<uint8_t>(fadt, 89), 2);  // PM1_CNT_LEN
  EXPECT_EQ(get<uint8_t>(fadt, 91), 0);  // no PM timer
  const uint16_t boot_arch = get<uint16_t>(fadt, 109);
  EXPECT_EQ(boot_arch & 0x2, 0x2) << "an 8042";
  EXPECT_EQ(boot_arch & 0x8, 0) << "MSI allowed (the PCI functions use MSI-X)";
  const uint32_t flags = get<uint32_t>(fadt, 112);
  EXPECT_EQ(flags & (1u << 20), 0u) << "not hardware-reduced";
  // The 64-bit PM1a blocks agree with the 32-bit ones (SystemIO, widths 32 and 16).
  EXPECT_EQ(get<uint8_t>(fadt, 148), 1);
  EXPECT_EQ(get<uint8_t>(fadt, 149), 32);
  EXPECT_EQ(get<uint64_t>(fadt, 152), devices::AcpiPm::kEventBlock);
  EXPECT_EQ(get<uint8_t>(fadt, 173), 16);
  EXPECT_EQ(get<uint64_t>(fadt, 176), devices::AcpiPm::kControlBlock);
  const uint64_t facs = get<uint64_t>(fadt, 132);
  EXPECT_EQ(facs % 64, 0u) << "the FACS is 64-byte aligned";
  EXPECT_EQ(table(facs, "FACS").size(), 64u);
  const Span dsdt = table(get<uint64_t>(fadt, 140), "DSDT");
  EXPECT_GT(dsdt.size(), 36u);
}

TEST_F(AcpiTables, MadtListsEveryCpuTheIoapicTheSciOverrideAndLint1Nmi) {
  for (uint32_t cpus : {1u, 3u, LABYRINTH_MAX_VCPUS}) {
    build(cpus);
    const Span madt = find("APIC");
    EXPECT_EQ(get<uint32_t>(madt, 36), LABYRINTH_LAPIC_GPA);
    uint32_t lapics = 0, ioapics = 0, overrides = 0, nmis = 0;
    size_t off = 44;
    while (off + 2 <= madt.size()) {
      const uint8_t type = get<uint8_t>(madt, off), len = get<uint8_t>(madt, off + 1);
      ASSERT_GE(len, 2) << "entry at " << off;
      ASSERT_LE(off + len, madt.size());
      switch (type) {
        case 0:  // local APIC: UID = APIC ID = vCPU index, enabled
          EXPECT_EQ(get<uint8_t>(madt, off + 2), lapics);
          EXPECT_EQ(get<uint8_t>(madt, off + 3), lapics);
          EXPECT_EQ(get<uint32_t>(madt, off + 4), 1u);
          ++lapics;
          break;
        case 1:  // the MP table's IOAPIC ID and address, GSI base 0
          EXPECT_EQ(get<uint8_t>(madt, off + 2), cpus + 1);
          EXPECT_EQ(get<uint32_t>(madt, off + 4), LABYRINTH_IOAPIC_GPA);
          EXPECT_EQ(get<uint32_t>(madt, off + 8), 0u);
          ++ioapics;
          break;
        case 2:  // only the SCI: IRQ 9 -> GSI 9, level, active high
          EXPECT_EQ(get<uint8_t>(madt, off + 3), kAcpiSciIrq);
          EXPECT_EQ(get<uint32_t>(madt, off + 4), kAcpiSciIrq);
          EXPECT_EQ(get<uint16_t>(madt, off + 8), 0x000D);
          ++overrides;
          break;
        case 4:  // NMI on LINT1 of every processor
          EXPECT_EQ(get<uint8_t>(madt, off + 2), 0xFF);
          EXPECT_EQ(get<uint8_t>(madt, off + 5), 1);
          ++nmis;
          break;
        default:
          ADD_FAILURE() << "unexpected MADT entry type " << int{type};
      }
      off += len;
    }
    EXPECT_EQ(off, madt.size());
    EXPECT_EQ(lapics, cpus);
    EXPECT_EQ(ioapics, 1u);
    EXPECT_EQ(overrides, 1u);
    EXPECT_EQ(nmis, 1u);
  }
}

// MCFG (PCI Firmware 3.3, 4.1.2): one allocation, segment 0, bus 0, at the ECAM window,
// which lies in the MMIO gap, e820-reserved, apart from RAM, the BAR window, the IOAPIC,
// the LAPIC and the page-pool window.
TEST_F(AcpiTables, McfgPlacesBus0EcamInAReservedHoleOfTheMap) {
  build(1);
  const Span mcfg = find("MCFG");
  ASSERT_EQ(mcfg.size(), 36u + 8 + 16) << "header, reserved, one allocation";
  EXPECT_EQ(get<uint8_t>(mcfg, 8), 1) << "revision";
  EXPECT_EQ(get<uint64_t>(mcfg, 36), 0u) << "reserved";
  EXPECT_EQ(get<uint64_t>(mcfg, 44), 0xC0000000u) << "base address";
  EXPECT_EQ(get<uint16_t>(mcfg, 52), 0u) << "segment";
  EXPECT_EQ(get<uint8_t>(mcfg, 54), 0u) << "start bus";
  EXPECT_EQ(get<uint8_t>(mcfg, 55), 0u) << "end bus";
  EXPECT_EQ(get<uint32_t>(mcfg, 56), 0u) << "reserved";
  const uint64_t base = 0xC0000000, end = base + (1u << 20);  // bus 0: 1 MiB
  EXPECT_EQ(kPciEcamGpa, base) << "where machine.cc maps the window";
  EXPECT_EQ(base % (1u << 20), 0u);
  EXPECT_GE(base, LABYRINTH_MMIO_GAP_START);
  EXPECT_LE(end, LABYRINTH_DEVICE_MMIO_BASE) << "below the BAR window in PCI0's _CRS";
  EXPECT_LT(end, LABYRINTH_IOAPIC_GPA);
  EXPECT_LT(end, LABYRINTH_LAPIC_GPA);
  for (const uint64_t ram : {256 * kMiB, 3 * kGiB, 6 * kGiB}) {
    const auto layout = MemoryLayout::compute(ram, kGiB).value();
    for (const auto& r : layout.ram) EXPECT_TRUE(r.end() <= base || r.gpa >= end) << ram;
    EXPECT_TRUE(layout.pool.end() <= base || layout.pool.gpa >= end) << ram;
    // Linux 6.1 takes the MCFG area early if one e820 reserved entry covers it.
    bool reserved = false;
    for (const auto& e : linux_e820(layout)) {
      EXPECT_TRUE(e.type != kE820Ram || e.addr + e.size <= base || e.addr >= end) << e.addr;
      reserved = reserved || (e.type == kE820Reserved && e.addr <= base && e.addr + e.size >= end);
    }
    EXPECT_TRUE(reserved) << ram;
  }
}

// What Multiboot kernels get (kvm-unit-tests, as under QEMU's firmware): the PM timer
// named in the FADT, \_S3 in the DSDT and the FACS in the 32-bit FIRMWARE_CTRL; Linux
// guests get none of it (their tables are as before). The FACS is where acpi_facs_gpa
// says, for any vCPU count.
TEST_F(AcpiTables, MultibootOptionsNameThePmTimerAndOfferS3) {
  for (const bool multiboot : {false, true}) {
    build(multiboot ? 3 : 1, {.pm_timer = multiboot, .s3 = multiboot, .facs_32bit = multiboot});
    const Span fadt = find("FACP");
    EXPECT_EQ(get<uint32_t>(fadt, 76), multiboot ? devices::AcpiPm::kTimerBlock : 0u);
    EXPECT_EQ(get<uint8_t>(fadt, 91), multiboot ? 4 : 0);  // PM_TMR_LEN
    // X_PM_TMR_BLK (offset 208): SystemIO, 32 bits, the same port.
    EXPECT_EQ(get<uint8_t>(fadt, 208), multiboot ? 1 : 0);
    EXPECT_EQ(get<uint8_t>(fadt, 209), multiboot ? 32 : 0);
    EXPECT_EQ(get<uint64_t>(fadt, 212), multiboot ? devices::AcpiPm::kTimerBlock : 0u);
    const uint64_t facs = acpi_facs_gpa(kAcpiTablesGpa);
    EXPECT_EQ(get<uint32_t>(fadt, 36), multiboot ? facs : 0) << "FIRMWARE_CTRL";
    EXPECT_EQ(get<uint64_t>(fadt, 132), multiboot ? 0 : facs) << "X_FIRMWARE_CTRL";
    EXPECT_EQ(table(facs, "FACS").size(), 64u);
    const Span dsdt = table(get<uint64_t>(fadt, 140), "DSDT");
    const std::string aml(reinterpret_cast<const char*>(dsdt.data()) + 36, dsdt.size() - 36);
    // Name (_S3, Package (0x02) {One, Zero}): SLP_TYP 1, AcpiPm's suspend to RAM.
    const std::string s3 = {0x08, '_', 'S', '3', '_', 0x12, 0x04, 0x02, 0x01, 0x00};
    EXPECT_EQ(aml.find(s3) != std::string::npos, multiboot);
  }
}

// The DSDT's AML, searched for the byte sequences iasl emits for the same ASL.
TEST_F(AcpiTables, DsdtDescribesTheHostBridgeComPortKeyboardAndS5) {
  build(1);
  const Span fadt = find("FACP");
  const Span dsdt = table(get<uint64_t>(fadt, 140), "DSDT");
  const std::string aml(reinterpret_cast<const char*>(dsdt.data()) + 36, dsdt.size() - 36);
  const auto has = [&](std::initializer_list<uint8_t> seq) {
    return aml.find(std::string(seq.begin(), seq.end())) != std::string::npos;
  };
  // Name (_S5, Package (0x02) {0x05, Zero}): SLP_TYP 5, what AcpiPm takes for S5.
  EXPECT_TRUE(has({0x08, '_', 'S', '5', '_', 0x12, 0x05, 0x02, 0x0A, 0x05, 0x00}));
  // Scope (\_SB) holding Device (PCI0) with Name (_HID, EisaId ("PNP0A03")).
  EXPECT_TRUE(has({0x10}) && aml.find("\\_SB_") != std::string::npos);
  EXPECT_TRUE(has({'P', 'C', 'I', '0', 0x08, '_', 'H', 'I', 'D', 0x0C, 0x41, 0xD0, 0x0A, 0x03}));
  EXPECT_TRUE(has({'C', 'O', 'M', '1', 0x08, '_', 'H', 'I', 'D', 0x0C, 0x41, 0xD0, 0x05, 0x01}));
  EXPECT_TRUE(has({'P', 'S', '2', 'K', 0x08, '_', 'H', 'I', 'D', 0x0C, 0x41, 0xD0, 0x03, 0x03}));
  // The host bridge's windows: bus 0 (what the MCFG covers), ports 0xCF8-0xCFF, and the
  // BAR window.
  EXPECT_TRUE(
      has({0x88, 0x0D, 0x00, 0x02, 0x0C, 0x00, 0, 0, 0x00, 0x00, 0x00, 0x00, 0, 0, 0x01, 0x00}));
  EXPECT_TRUE(has({0x47, 0x01, 0xF8, 0x0C, 0xF8, 0x0C, 0x01, 0x08}));
  EXPECT_TRUE(has({0x87, 0x17, 0x00, 0x00, 0x0C, 0x01, 0, 0, 0, 0, 0x00, 0x00, 0x00, 0xD0, 0xFF,
                   0xFF, 0xBF, 0xFE}));
  // Device (MBRD) { Name (_HID, EisaId ("PNP0C02")) ... Memory32Fixed (ReadWrite,
  // 0xC0000000, 0x00100000) }: the ECAM window as a motherboard resource.
  EXPECT_TRUE(has({'M', 'B', 'R', 'D', 0x08, '_', 'H', 'I', 'D', 0x0C, 0x41, 0xD0, 0x0C, 0x02}));
  EXPECT_TRUE(has({0x86, 0x09, 0x00, 0x01, 0x00, 0x00, 0x00, 0xC0, 0x00, 0x00, 0x10, 0x00}));
  // COM1 on IRQ 4, the keyboard on IRQ 1.
  EXPECT_TRUE(has({0x47, 0x01, 0xF8, 0x03, 0xF8, 0x03, 0x01, 0x08, 0x22, 0x10, 0x00}));
  EXPECT_TRUE(has({0x47, 0x01, 0x64, 0x00, 0x64, 0x00, 0x01, 0x01, 0x22, 0x02, 0x00}));
  // Every PkgLength ends where its enclosing object does: the scope's covers the rest.
  const size_t scope = aml.find('\x10');
  ASSERT_NE(scope, std::string::npos);
  const auto lead = static_cast<uint8_t>(aml[scope + 1]);
  size_t len = lead & 0x3F;
  const size_t extra = lead >> 6;
  if (extra > 0) {
    len = lead & 0x0F;
    for (size_t i = 0; i < extra; ++i)
      len |= static_cast<size_t>(static_cast<uint8_t>(aml[scope + 2 + i])) << (4 + 8 * i);
  }
  EXPECT_EQ(scope + 1 + len, aml.size()) << "the \\_SB scope is the DSDT's last object";
}

}  // namespace
}  // namespace labyrinth::vmm
