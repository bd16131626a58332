// devices/lnic/hostile.h — the lnic's test-only hostile mode (LnicConfig::test_hostile):
// what it writes, by kind, and the kinds' names as the config gives them.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace labyrinth::devices::lnic {

// Test only (docs/lnic.md "The hostile device"): RX ring contents a correct device never
// writes, to check that a guest driver validates them. Host-side ownership is never
// bent: no page is given out twice and every page written into a completion is either
// a real delivery (books as usual) or no page at all.
enum class HostileKind : uint8_t {
  bad_address,          // three completions naming no pool page: below the window, not
                        // page aligned inside it, just past its end (no page behind them)
  bad_length,           // two real deliveries with len 0 and LNIC_FRAME_MAX + 1
  page_twice,           // a copy of the completion just written, published with it: the
                        // page the guest now holds, named again (one delivery, one owner)
  rx_prod_beyond_ring,  // RX prod published a ring and one ahead of what was produced;
                        // then every frame is dropped until the guest resets the device
};
std::string_view to_string(HostileKind k);
std::optional<HostileKind> hostile_kind_from(std::string_view name);

}  // namespace labyrinth::devices::lnic
