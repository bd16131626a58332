// devices/virtio/virtio_abi.h — the virtio 1.x constants and layouts Labyrinth uses.
//
// From the virtio 1.2 specification (OASIS): device status bits (2.1), feature bits
// (6), the split virtqueue layout (2.7), the PCI transport's capabilities (4.1.4) and
// virtio-net's header and config (5.1). Little-endian, as on x86: plain structs.
#pragma once

#include <cstdint>

namespace labyrinth::devices::virtio {

// Device status (2.1).
inline constexpr uint8_t kStatusAcknowledge = 1;
inline constexpr uint8_t kStatusDriver = 2;
inline constexpr uint8_t kStatusDriverOk = 4;
inline constexpr uint8_t kStatusFeaturesOk = 8;
inline constexpr uint8_t kStatusNeedsReset = 64;
inline constexpr uint8_t kStatusFailed = 128;

// Transport feature bits (6).
inline constexpr uint64_t kFVersion1 = uint64_t{1} << 32;

// Split virtqueue (2.7).
inline constexpr uint16_t kDescFNext = 1;
inline constexpr uint16_t kDescFWrite = 2;
inline constexpr uint16_t kDescFIndirect = 4;
inline constexpr uint16_t kAvailFNoInterrupt = 1;

struct VirtqDesc {
  uint64_t addr;
  uint32_t len;
  uint16_t flags;
  uint16_t next;
};
struct VirtqUsedElem {
  uint32_t id;
  uint32_t len;
};
static_assert(sizeof(VirtqDesc) == 16 && sizeof(VirtqUsedElem) == 8);
// avail: flags, idx, ring[size], used_event; used: flags, idx, ring[size], avail_event.
inline constexpr uint64_t avail_ring_bytes(uint16_t size) {
  return 6 + 2 * uint64_t{size};
}
inline constexpr uint64_t used_ring_bytes(uint16_t size) {
  return 6 + 8 * uint64_t{size};
}

// PCI transport (4.1).
inline constexpr uint16_t kPciVendor = 0x1AF4;
inline constexpr uint16_t kPciDeviceBase = 0x1040;  // + virtio device id (modern only)
inline constexpr uint8_t kPciCapVendor = 0x09;
inline constexpr uint8_t kPciCapMsix = 0x11;
inline constexpr uint8_t kPciCapCommonCfg = 1;
inline constexpr uint8_t kPciCapNotifyCfg = 2;
inline constexpr uint8_t kPciCapIsrCfg = 3;
inline constexpr uint8_t kPciCapDeviceCfg = 4;
inline constexpr uint16_t kMsixNoVector = 0xFFFF;
inline constexpr uint8_t kIsrQueue = 1;
inline constexpr uint8_t kIsrConfig = 2;

// struct virtio_pci_common_cfg offsets.
namespace common {
inline constexpr uint32_t kDeviceFeatureSelect = 0x00, kDeviceFeature = 0x04,
                          kDriverFeatureSelect = 0x08, kDriverFeature = 0x0C, kMsixConfig = 0x10,
                          kNumQueues = 0x12, kDeviceStatus = 0x14, kConfigGeneration = 0x15,
                          kQueueSelect = 0x16, kQueueSize = 0x18, kQueueMsixVector = 0x1A,
                          kQueueEnable = 0x1C, kQueueNotifyOff = 0x1E, kQueueDesc = 0x20,
                          kQueueDriver = 0x28, kQueueDevice = 0x30, kSize = 0x38;
}  // namespace common

// virtio-net (5.1).
inline constexpr uint32_t kNetDeviceId = 1;
inline constexpr uint64_t kNetFMac = uint64_t{1} << 5;
inline constexpr uint64_t kNetFStatus = uint64_t{1} << 16;
inline constexpr uint16_t kNetSLinkUp = 1;
struct VirtioNetHdr {  // with VIRTIO_F_VERSION_1 num_buffers is always there
  uint8_t flags;
  uint8_t gso_type;
  uint16_t hdr_len;
  uint16_t gso_size;
  uint16_t csum_start;
  uint16_t csum_offset;
  uint16_t num_buffers;
};
static_assert(sizeof(VirtioNetHdr) == 12);
struct VirtioNetConfig {  // the fields up to status (MAC, STATUS)
  uint8_t mac[6];
  uint16_t status;
};
static_assert(sizeof(VirtioNetConfig) == 8);

}  // namespace labyrinth::devices::virtio
