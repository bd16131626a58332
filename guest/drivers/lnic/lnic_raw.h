// guest/drivers/lnic/lnic_raw.h — test-only back door into a guest::Lnic.
//
// lnic_hostile (and the driver's host tests) must write what no driver should: bogus
// ring registers, RETURN entries for pages the guest does not own, indices past the
// ring. LnicRaw reaches the driver's registers, rings and private indices for that,
// bypassing every check and all bookkeeping. A normal guest includes lnic.h only;
// nothing here is part of the driver's API.
//
//   guest::LnicRaw raw(nic);
//   raw.ret_post(page + 8, seq, 0);   // a misaligned RETURN entry, published
//   raw.ring_ret_doorbell();
#pragma once

#include <stdint.h>

#include "guest/drivers/lnic/lnic.h"

namespace guest {

class LnicRaw {
 public:
  explicit constexpr LnicRaw(Lnic& nic) : nic_(nic) {}

  uint32_t reg_read(uint32_t offset) const { return nic_.reg_read(offset); }
  void reg_write(uint32_t offset, uint32_t value) { nic_.reg_write(offset, value); }
  void ring_ret_doorbell() { nic_.ring_ret_doorbell(); }
  void ring_tx_doorbell() { nic_.ring_tx_doorbell(); }

  lnic_ring_header* rx_header() const { return nic_.rx_; }
  lnic_ring_header* ret_header() const { return nic_.ret_; }
  lnic_ring_header* tx_header() const { return nic_.tx_; }
  uint64_t rx_ring_gpa() const { return reinterpret_cast<uint64_t>(nic_.rx_); }
  uint64_t ret_ring_gpa() const { return reinterpret_cast<uint64_t>(nic_.ret_); }
  uint64_t tx_ring_gpa() const { return reinterpret_cast<uint64_t>(nic_.tx_); }
  uint32_t rx_entries() const { return nic_.rx_size_; }
  uint32_t ret_entries() const { return nic_.ret_size_; }
  uint32_t tx_entries() const { return nic_.tx_size_; }
  // The driver's own indices (what it would publish), not the ring headers'.
  uint32_t rx_cons() const { return nic_.rx_cons_; }
  uint32_t ret_prod() const { return nic_.ret_prod_; }
  uint32_t tx_prod() const { return nic_.tx_prod_; }

  // Writes a RETURN entry at the driver's prod, advances and publishes prod; no
  // ownership check, no doorbell. The page (if the guest owned it) is marked given
  // back. keep_in_books: leave the page ours in the driver's books (a return the
  // device must refuse), so a device that acted on it is caught delivering it twice.
  void ret_post(uint64_t page_gpa, uint64_t seq, uint64_t t_guest_irq, bool keep_in_books = false) {
    // Only an exact, owned page address gives the page back in our books.
    if (!keep_in_books && (page_gpa & (lnic::kPageSize - 1)) == 0 && nic_.owns(page_gpa)) {
      nic_.owned_.give(page_gpa);
    }
    nic_.write_return(page_gpa, seq, t_guest_irq);
    ++nic_.ret_unrung_;
    nic_.publish_ret();
  }

 private:
  Lnic& nic_;
};

}  // namespace guest
