#include "devices/legacy/fw_cfg.h"

#include <cstring>

namespace labyrinth::devices {

namespace {

template <class T>
std::vector<uint8_t> le(T v) {
  std::vector<uint8_t> out(sizeof(T));
  std::memcpy(out.data(), &v, sizeof(T));  // x86 hosts: little endian, as the guest reads
  return out;
}

}  // namespace

FwCfg::Items FwCfg::standard(const Machine& m) {
  Items items;
  items[kSignature] = {'Q', 'E', 'M', 'U'};
  items[kId] = le<uint32_t>(1);
  items[kUuid] = std::vector<uint8_t>(16, 0);
  items[kRamSize] = le<uint64_t>(m.ram_bytes);
  items[kNbCpus] = le<uint16_t>(m.cpus);
  items[kMaxCpus] = le<uint16_t>(m.max_cpus != 0 ? m.max_cpus : m.cpus);
  items[kFileDir] = {0, 0, 0, 0};
  return items;
}

void FwCfg::write(uint64_t offset, std::span<const uint8_t> data) {
  // Only a 16-bit write to the selector selects; the data port takes no writes.
  if (offset != 0 || data.size() != 2) return;
  uint16_t key = 0;
  std::memcpy(&key, data.data(), 2);
  key &= static_cast<uint16_t>(~kWriteChannel);
  std::lock_guard lock(mu_);
  const auto it = items_.find(key);
  selected_ = it == items_.end() ? nullptr : &it->second;
  pos_ = 0;
}

void FwCfg::read(uint64_t offset, std::span<uint8_t> data) {
  if (offset != 1 || data.size() != 1) return;  // reads as 0 (data arrives zero-filled)
  std::lock_guard lock(mu_);
  if (selected_ == nullptr || pos_ >= selected_->size()) return;
  data[0] = (*selected_)[pos_++];
}

}  // namespace labyrinth::devices
