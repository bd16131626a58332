// The well-formed frame guest/programs/virtio_hostile.cc sends on virtio-net TX, after a
// virtio-net header of zeros. The host test (tests/devices/virtio/virtio_vm_test.cc)
// reads every copy back off the TAP, so it is a frame nothing else in the test's network
// namespace sends: broadcast, a locally administered source address, the IEEE 802 local
// experimental EtherType 0x88B5 and a payload naming its sender; 60 bytes, the shortest
// Ethernet frame without its FCS (the rest of the payload is zero).
#pragma once

#include <stdint.h>

namespace virtio_hostile {

inline constexpr uint32_t kTxFrameLen = 60;
inline constexpr uint8_t kTxFrame[kTxFrameLen] = {
    0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,  // destination: broadcast
    0x02, 0x00, 0x4C, 0x41, 0x42, 0x59,  // source: locally administered
    0x88, 0xB5,                          // EtherType: local experimental 1
    'v',  'i',  'r',  't',  'i',  'o',  '_', 'h', 'o', 's', 't', 'i', 'l', 'e', ' ', 't', 'x',
};

}  // namespace virtio_hostile
