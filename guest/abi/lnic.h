/*
 * guest/abi/lnic.h — the Labyrinth NIC (lnic): register file and rings.
 *
 * One header shared by the device model (devices/lnic/) and the guest driver
 * (guest/drivers/lnic/). Plain C, fixed-width fields, layouts pinned by
 * static_asserts on both sides.
 *
 * The lnic's receive buffers belong to the DEVICE, not the guest: when a frame
 * arrives, the device takes a 4 KiB page from the VM's page pool (its GFP_ATOMIC
 * exclusive allocator), copies the frame in, hands the page to the guest through
 * an RX completion and raises its interrupt. The guest consumes the frame and gives
 * the page back through the RETURN ring; the device frees it. No free page: the frame
 * is dropped and counted. Pages live in the pool window (LNIC_REG_POOL_*;
 * LABYRINTH_MEM_POOL); rings live in guest RAM, allocated by the driver.
 *
 * Discovery (ABI v3): every lnic is a PCI function on bus 0 (configuration
 * mechanism 1, ports 0xCF8/0xCFC): vendor LNIC_PCI_VENDOR, device LNIC_PCI_DEVICE,
 * class 0x020000 (Ethernet). BAR0, a 32-bit non-prefetchable memory BAR placed by the
 * VMM (it answers the size probe and does not move), holds:
 *   BAR0 + 0x0000  the register file below (LNIC_MMIO_SIZE bytes)
 *   BAR0 + 0x1000  MSI-X table (LNIC_MSIX_VECTORS entries of 16 bytes)
 *   BAR0 + 0x1800  MSI-X PBA
 * Vendor 0x1234 is the de-facto "no vendor" id of emulated devices; no in-tree Linux
 * driver binds 0x1234:0x4C4E nor any driver binds by class 0x0200 alone, so the lnic
 * stays unclaimed until its own driver loads (docs/lnic.md).
 * The pool window (where every RX page lives) is read from LNIC_REG_POOL_*; the MAC
 * from LNIC_REG_MAC_*. There is no INTx (interrupt pin 0): the driver enables MSI-X.
 * MSI-X vectors: LNIC_VEC_RX (completions, floors, warm-up probes) and LNIC_VEC_TX
 * (TX descriptors consumed). An entry's message is taken when the entry is unmasked
 * (KVM's route is rewritten then), so a driver masks an entry while it rewrites it.
 *
 * Bring-up (driver):
 *   1. read LNIC_REG_MAGIC / LNIC_REG_VERSION; the pool window from LNIC_REG_POOL_*;
 *   2. write the three rings' GPA (LO, HI) and SIZE (entries, power of two,
 *      LNIC_RING_MIN..LNIC_RING_MAX), each ring = struct lnic_ring_header followed
 *      by SIZE entries, 4 KiB aligned, entirely inside guest RAM, zero-initialised;
 *   3. program and unmask the MSI-X entries it wants, set MSI-X enable in config space;
 *   4. write LNIC_CTRL_ENABLE to LNIC_REG_CONTROL, then read LNIC_REG_STATUS:
 *      LNIC_STATUS_RUNNING, or LNIC_STATUS_CONFIG_ERROR if the device rejected a
 *      value (LNIC_REG_CONFIG_ERROR says which register).
 *
 * Stop, drain and reset (the driver's unload path):
 *   1. write LNIC_CTRL_RX_STOP; poll STATUS until LNIC_STATUS_RX_STOPPED: from then on
 *      no completion is written; RETURN and TX are still served;
 *   2. consume the RX ring up to prod and give every page back through RETURN (pages
 *      an upper layer still holds go back when it lets them go); poll
 *      LNIC_REG_PAGES_HELD until 0;
 *   3. write LNIC_CTRL_RESET; poll STATUS until LNIC_STATUS_STOPPING clears: only then
 *      has the device stopped touching the rings, and the driver may free them.
 * RESET alone is allowed at any time (the pages the guest holds stay its own and can
 * be returned through the rings of a later ENABLE); ENABLE while STOPPING is ignored.
 *
 * Rings. Every ring has one producer and one consumer; indices are free-running
 * uint32 counters (entry = index & (size - 1)); used = prod - cons, never > size.
 *   RX completion ring  producer: device   consumer: guest
 *   RETURN ring         producer: guest    consumer: device
 *   TX ring             producer: guest    consumer: device
 * A producer writes entries, then stores prod with release semantics; a consumer
 * loads prod with acquire, reads the entries, then stores cons with release.
 * After producing RETURN or TX entries the guest writes any value to the matching
 * doorbell register (LNIC_REG_RET_DOORBELL / LNIC_REG_TX_DOORBELL; the device
 * backs them with ioeventfd, so a doorbell costs one exit and carries no data).
 *
 * RETURN doorbell suppression (LNIC_F_RET_EVENT, when the driver writes it to
 * LNIC_REG_DRIVER_FEATURES before ENABLE; virtio's event index, for one ring):
 *   - the device also takes RETURN entries without a doorbell, after each batch of RX
 *     completions it posts (at most LNIC_RET_PASS_MAX per batch), during RX_STOP, and
 *     when its pool runs dry;
 *   - after each look at the RETURN ring it stores ret_event in the RETURN ring header:
 *     "ring when you publish the entry at this index". Comfortable, that is a quarter
 *     of the ring past its cons; while it wants every page back at once (an RX
 *     allocation failed, RX is stopped), it is the prod the device last saw;
 *   - the driver publishes prod (release), then a full barrier, then loads ret_event,
 *     and rings when the entries it just published (old prod .. new prod) include
 *     ret_event: (uint32_t)(new - ret_event - 1) < (uint32_t)(new - old). It rings
 *     anyway when half of the ring or more is still unconsumed, when it could not take
 *     every completion for want of RETURN slots, and when it drains (RX stop): the event
 *     is a hint, never the only way back for a page. Still one doorbell per batch.
 * A driver that does not write LNIC_F_RET_EVENT rings for every batch as before; the
 * device then never writes ret_event and reads RETURN only on a doorbell or when dry.
 *
 * The device treats everything the guest writes as untrusted: ring addresses and
 * sizes are validated at ENABLE; indices whose distance exceeds the ring size, page
 * addresses outside the pool window, pages the guest does not own, and pages returned
 * twice are rejected and counted, never acted on.
 *
 * Interrupts. After posting completions the device signals LNIC_VEC_RX unless the
 * guest set LNIC_RING_F_NO_IRQ in the RX ring header's flags (polling guests do). After
 * consuming TX descriptors (every one published before a TX doorbell is consumed while
 * that doorbell is handled) it signals LNIC_VEC_TX unless the TX ring header has
 * LNIC_RING_F_NO_IRQ. A driver that polls TX instead reclaims slots up to TX cons on
 * its next transmit and whenever it services the NIC; it must not wait for a TX slot
 * without re-reading TX cons. A guest that clears a NO_IRQ flag must re-check the ring
 * afterwards (an entry may have been consumed or posted while the flag was set).
 *
 * Timestamps are host TSC values; the guest TSC equals the host TSC plus the VM's
 * TSC offset (the VMM accounts for it). For latency measurement the guest returns,
 * with each page, the guest TSC it read at the entry of the interrupt handler that
 * saw the page's completion (0 when polled).
 */
#ifndef LABYRINTH_GUEST_ABI_LNIC_H
#define LABYRINTH_GUEST_ABI_LNIC_H

#ifdef __KERNEL__
#include <linux/types.h> /* the Linux driver (guest/linux/lnic/): the kernel's uint*_t */
#else
#include <stdint.h>
#endif

#define LNIC_MAGIC 0x43494E4Cu /* "LNIC" little-endian */
#define LNIC_VERSION 3u        /* 3: a PCI function with MSI-X; pool registers; reset and drain */
#define LNIC_MMIO_SIZE 0x1000u /* the register file, at BAR0 + 0 */
#define LNIC_BAR_SIZE 0x2000u  /* BAR0: registers, MSI-X table, PBA */
#define LNIC_MSIX_TABLE_OFF 0x1000u
#define LNIC_MSIX_PBA_OFF 0x1800u
#define LNIC_MSIX_VECTORS 2u
#define LNIC_VEC_RX 0u /* RX completions, floor and warm-up signals */
#define LNIC_VEC_TX 1u /* TX descriptors consumed */
#define LNIC_PCI_VENDOR 0x1234u
#define LNIC_PCI_DEVICE 0x4C4Eu  /* "NL" */
#define LNIC_PCI_CLASS 0x020000u /* network controller, Ethernet */
#define LNIC_PCI_CAP_MSIX 0x40u  /* the MSI-X capability's config-space offset */
#define LNIC_RING_MIN 8u
#define LNIC_RING_MAX 4096u
#define LNIC_PAGE_SIZE 4096u /* every RX buffer is one pool page (the allocator's kPageSize) */
#define LNIC_FRAME_MAX LNIC_PAGE_SIZE /* a frame fits in one page */

/* Registers: 32-bit accesses at 4-byte aligned offsets. Reads of undefined offsets
 * return 0xFFFFFFFF; writes to read-only or undefined offsets are ignored (counted). */
enum lnic_reg {
  LNIC_REG_MAGIC = 0x000,        /* RO  LNIC_MAGIC */
  LNIC_REG_VERSION = 0x004,      /* RO  LNIC_VERSION */
  LNIC_REG_FEATURES = 0x008,     /* RO  LNIC_F_* */
  LNIC_REG_STATUS = 0x00C,       /* RO  LNIC_STATUS_* */
  LNIC_REG_CONTROL = 0x010,      /* WO  LNIC_CTRL_* */
  LNIC_REG_CONFIG_ERROR = 0x014, /* RO  offset of the register that failed validation */
  LNIC_REG_MAC_LO = 0x018,       /* RO  MAC bytes 0..3 */
  LNIC_REG_MAC_HI = 0x01C,       /* RO  MAC bytes 4..5 */
  LNIC_REG_RX_RING_LO = 0x020,   /* RX completion ring GPA */
  LNIC_REG_RX_RING_HI = 0x024,
  LNIC_REG_RX_RING_SIZE = 0x028,
  LNIC_REG_RET_RING_LO = 0x030, /* RETURN ring GPA */
  LNIC_REG_RET_RING_HI = 0x034,
  LNIC_REG_RET_RING_SIZE = 0x038,
  LNIC_REG_TX_RING_LO = 0x040, /* TX ring GPA */
  LNIC_REG_TX_RING_HI = 0x044,
  LNIC_REG_TX_RING_SIZE = 0x048,
  LNIC_REG_POOL_BASE_LO = 0x050, /* RO  the page-pool window: every RX page is inside */
  LNIC_REG_POOL_BASE_HI = 0x054,
  LNIC_REG_POOL_SIZE_LO = 0x058, /* RO  its size in bytes */
  LNIC_REG_POOL_SIZE_HI = 0x05C,
  /* RO  guest protocol violations the device counted and refused to act on (bad
   * returned addresses, returns of pages the guest does not hold, stale or double
   * returns, ring indices beyond a ring's size, bad TX descriptors): low 32 bits.
   * Lets a driver (or a test guest) see that the device noticed. LNIC_F_VIOLATIONS. */
  LNIC_REG_VIOLATIONS = 0x060,
  /* RO  pages this NIC has delivered to the guest and not got back (LNIC_F_DRAIN). */
  LNIC_REG_PAGES_HELD = 0x064,
  /* RW  the LNIC_F_* the driver uses (LNIC_F_RET_EVENT is the one that changes what
   * the device does). Written before ENABLE; a bit the device does not offer makes
   * ENABLE fail with CONFIG_ERROR naming this register. RESET clears it. */
  LNIC_REG_DRIVER_FEATURES = 0x068,
  LNIC_REG_RET_DOORBELL = 0x080, /* WO  any value: RETURN ring has new entries */
  LNIC_REG_TX_DOORBELL = 0x084,  /* WO  any value: TX ring has new entries */
  /* Latency floor (no device work in the path): writing LNIC_REG_FLOOR_ARM makes the
   * device signal the interrupt once with t_sent stamped in the RX ring header's
   * floor fields; the guest's handler stores its entry TSC in floor_guest_tsc. */
  LNIC_REG_FLOOR_ARM = 0x088, /* WO */
};

#define LNIC_F_TIMESTAMPS 0x1u /* completions carry t_ready / t_posted */
#define LNIC_F_VIOLATIONS 0x2u /* LNIC_REG_VIOLATIONS is implemented */
#define LNIC_F_DRAIN 0x4u      /* LNIC_CTRL_RX_STOP and LNIC_REG_PAGES_HELD */
#define LNIC_F_TX_IRQ 0x8u     /* LNIC_VEC_TX signals consumed TX descriptors */
#define LNIC_F_RET_EVENT 0x10u /* RETURN doorbell suppression: ret_event (above) */

/* With LNIC_F_RET_EVENT: RETURN entries the device takes without a doorbell after one
 * RX batch, at most. */
#define LNIC_RET_PASS_MAX 64u

#define LNIC_STATUS_RUNNING 0x1u
#define LNIC_STATUS_CONFIG_ERROR 0x2u
#define LNIC_STATUS_STOPPING 0x4u   /* RESET taken, the device may still write the rings */
#define LNIC_STATUS_RX_STOPPED 0x8u /* RX_STOP done: no completion will be written */

#define LNIC_CTRL_ENABLE 0x1u
#define LNIC_CTRL_RESET 0x2u   /* stop; STOPPING until stopped; held pages stay the guest's */
#define LNIC_CTRL_RX_STOP 0x4u /* stop receiving, keep serving RETURN and TX */

#define LNIC_RING_F_NO_IRQ 0x1u /* in lnic_ring_header.flags of the RX and TX rings */

/* At the start of every ring; entries follow at offset sizeof(struct lnic_ring_header).
 * prod and cons sit on their own cache lines (producer and consumer are different CPUs). */
struct lnic_ring_header {
  uint32_t prod;            /* written by the producer only */
  uint32_t flags;           /* written by the guest: LNIC_RING_F_* (RX ring) */
  uint64_t floor_t_sent;    /* RX ring: host TSC when the floor interrupt was signalled */
  uint64_t floor_guest_tsc; /* RX ring: guest TSC at the floor interrupt's handler entry */
  uint8_t pad0[40];
  uint32_t cons; /* written by the consumer only */
  /* RETURN ring with LNIC_F_RET_EVENT: written by the device only (never read back by
   * it): ring the doorbell when the entry at this index is published. 0 otherwise. */
  uint32_t ret_event;
  uint8_t pad1[56];
};

/* RX completion: device -> guest. The page at page_gpa is now owned by the guest. */
struct lnic_rx_completion {
  uint64_t page_gpa; /* 4 KiB pool page; the frame starts at offset 0 */
  uint32_t len;      /* frame length in bytes, 1..LNIC_FRAME_MAX */
  uint32_t flags;    /* reserved, 0 */
  uint64_t seq;      /* per-NIC receive sequence number, from 0 */
  uint64_t t_ready;  /* host TSC: frame ready (for generated traffic: its scheduled arrival) */
  uint64_t t_posted; /* host TSC: completion written, just before the interrupt */
  uint64_t reserved[3];
};

/* RETURN entry: guest -> device. Gives the page back: the guest must hold it through
 * the completion whose seq it names. An address alone cannot tell a valid return from
 * a stale one (a page returned, reallocated and delivered again has the same address),
 * so a return naming any other delivery of the page is rejected (counted as stale) and
 * the page stays the guest's. */
struct lnic_return {
  uint64_t page_gpa;
  uint64_t t_guest_irq; /* guest TSC when its handler saw the completion; 0 if polled */
  uint64_t seq;         /* the seq of the completion that delivered this page */
  uint64_t reserved;    /* 0 */
};

/* TX descriptor: guest -> device. The buffer is in guest RAM or a pool page the guest
 * owns; it stays the guest's. The device copies the frame out before advancing cons. */
struct lnic_tx_desc {
  uint64_t buf_gpa;
  uint32_t len; /* 1..LNIC_FRAME_MAX, must not cross into another page of the pool */
  uint32_t flags;
};

/* Generated-traffic payload (pktgen backend): frames start with this header, the rest
 * of the frame is `pattern` repeated (byte i of the payload = (uint8_t)(pattern + i)). */
struct lnic_pktgen_header {
  uint8_t dst_mac[6];
  uint8_t src_mac[6];
  uint16_t ethertype; /* 0x88B5 (IEEE local experimental) in network byte order, as on
                         the wire: bytes 0x88, 0xB5 (reads as 0xB588 on x86) */
  uint16_t magic;     /* LNIC_PKTGEN_MAGIC in host (little-endian) order */
  uint64_t seq;       /* per-generator sequence number, from 0 */
  uint64_t t_sched;   /* host TSC of the frame's scheduled arrival */
  uint8_t pattern;
  uint8_t pad[7];
};
#define LNIC_PKTGEN_ETHERTYPE 0x88B5u
#define LNIC_PKTGEN_MAGIC 0x4C42u

#ifdef __cplusplus
static_assert(sizeof(struct lnic_ring_header) == 128, "lnic_ring_header layout");
static_assert(sizeof(struct lnic_rx_completion) == 64, "lnic_rx_completion layout");
static_assert(sizeof(struct lnic_return) == 32, "lnic_return layout");
static_assert(sizeof(struct lnic_tx_desc) == 16, "lnic_tx_desc layout");
static_assert(sizeof(struct lnic_pktgen_header) == 40, "lnic_pktgen_header layout");
#endif

#endif /* LABYRINTH_GUEST_ABI_LNIC_H */
