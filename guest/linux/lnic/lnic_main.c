// SPDX-License-Identifier: GPL-2.0
/*
 * guest/linux/lnic/lnic_main.c — the Labyrinth NIC (lnic) driver for Linux: receive.
 *
 * The lnic's receive buffers belong to the device (guest/abi/lnic.h, docs/lnic.md): it
 * takes a page from the VM's pool in its interrupt path, copies a frame in, posts an RX
 * completion naming the page and signals MSI-X vector LNIC_VEC_RX. This driver
 *   - binds PCI 0x1234:0x4C4E, maps BAR0's register file, and maps the pool window the
 *     device reports (LNIC_REG_POOL_*) write-back with memremap(MEMREMAP_WB): an uncached
 *     mapping would make every received byte an uncached load on AMD hosts;
 *   - allocates the three rings with dma_alloc_coherent (zeroed, page aligned, in RAM;
 *     without an IOMMU the DMA address is the guest-physical address the device wants);
 *   - takes the RX vector's interrupt: the handler loads RX prod, then stamps the TSC
 *     (rdtsc_ordered: after that load, as the freestanding driver's handler does), sets
 *     the RX ring's NO_IRQ flag and schedules NAPI; a floor or warm-up signal of
 *     `labyrinth latency` (floor_t_sent set, no completion) it answers itself with that
 *     stamp in the RX ring header's floor_guest_tsc, without a poll;
 *   - in the NAPI poll validates every completion before it touches the page (aligned
 *     and inside the window, overflow-safe; 1 <= len <= LNIC_FRAME_MAX; seq continuity;
 *     a page the driver already holds is counted and never returned twice), COPIES the
 *     frame into a fresh skb and gives the page straight back through RETURN. Copying
 *     keeps every pool page in the driver's hands for microseconds, so the pool never
 *     depends on how long the stack holds an skb, and a page is never returned while
 *     an skb still points into it; attaching the page (zero copy) is the alternative,
 *     to be measured against this one. Returns go out in one batch per poll: one RETURN
 *     prod store and at most one doorbell, and a poll never takes more completions than
 *     the RETURN ring has free slots. With LNIC_F_RET_EVENT (acknowledged unless the
 *     module parameter ret_event=0) the doorbell rings only when the device's ret_event
 *     asks for it, when half the ring is unconsumed, when RETURN had no room, and at
 *     stop: the device takes returns after each RX batch without one (guest/abi/lnic.h);
 *   - on an impossible index (RX prod more than a ring ahead of cons, RETURN cons moving
 *     backwards or past prod) enters a "device broken" state: one rate-limited log line,
 *     no further ring access until the interface is taken down and up again (which
 *     resets the device). Nothing the device writes can make it crash;
 *   - on `ip link set down` and rmmod: RX_STOP, wait for RX_STOPPED, consume what is
 *     left, give every page back, wait until LNIC_REG_PAGES_HELD reads 0, RESET and wait
 *     for STOPPING to clear before the rings are freed.
 *   - transmits by COPY: ndo_start_xmit copies the frame into the TX slot's own buffer
 *     (coherent RAM, one LNIC_FRAME_MAX buffer per slot), frees the skb at once, publishes
 *     TX prod and rings the TX doorbell once per batch (xmit_more). The device signals
 *     LNIC_VEC_TX after consuming the descriptors of a doorbell; that interrupt schedules
 *     NAPI, whose poll takes TX cons (checked: never backwards, never past prod) and wakes
 *     the queue. The queue stops when the ring is full and is woken only by that poll, so
 *     no slot waits for a transmit that never comes; at stop the driver waits until the
 *     device has consumed every descriptor before it resets;
 *   - carrier follows the device: on once ENABLE answered RUNNING, off at stop and when
 *     the device is found broken; `ethtool -S` gives the kernel's counters, the driver's
 *     own (every refused completion by kind, every broken index by kind, queue stops,
 *     drops) and the device's PAGES_HELD and VIOLATIONS registers.
 */
#include <linux/bitmap.h>
#include <linux/delay.h>
#include <linux/etherdevice.h>
#include <linux/ethtool.h>
#include <linux/interrupt.h>
#include <linux/io.h>
#include <linux/iopoll.h>
#include <linux/module.h>
#include <linux/netdevice.h>
#include <linux/pci.h>
#include <linux/slab.h>
#include <asm/msr.h>

#include "guest/abi/lnic.h"

#define DRV_NAME "lnic"
#define LNIC_RX_ENTRIES 256u
#define LNIC_RET_ENTRIES 256u
#define LNIC_TX_ENTRIES 128u
#define LNIC_TX_WAKE (LNIC_TX_ENTRIES / 4) /* free slots before a stopped queue wakes */
/* The window this driver will map and track (one bit per page): 64 GiB, 2 MiB of bitmap. */
#define LNIC_POOL_MAX (64ull << 30)
#define LNIC_STOP_TIMEOUT_US 2000000u

/* RETURN doorbell suppression (LNIC_F_RET_EVENT) when the device offers it; ret_event=0
 * makes the driver ring for every poll's returns, as drivers before it did. */
static bool use_ret_event = true;
module_param_named(ret_event, use_ret_event, bool, 0444);
MODULE_PARM_DESC(ret_event, "ring the RETURN doorbell only when the device asks (default 1)");

/* rx_copy_cycles and poll_cycles cost two TSC reads around every copied frame and every
 * poll: on hardware about what copying a 64-byte frame costs. Off unless asked for
 * (tests/vmm/bench/nic_bench.sh --copy-timing passes lnic.rx_timing=1); when off both
 * counters stay 0 and nothing on the receive path reads the TSC. */
static bool rx_timing;
module_param(rx_timing, bool, 0444);
MODULE_PARM_DESC(rx_timing, "count the TSC cycles of the RX copy and of every poll (default 0)");

static inline u64 lnic_cycles(void)
{
	return unlikely(rx_timing) ? rdtsc() : 0;
}

/* The driver's own counters, in `ethtool -S` order (names as given). What went wrong
 * with a completion is counted by kind (rx_*): bad_addr misaligned or outside the pool
 * window (not a page, not returned); bad_len 0 or > LNIC_FRAME_MAX (the page goes back,
 * no frame); bad_flags reserved flags set (the frame is still delivered); page_twice a
 * page the driver already holds (skipped, never returned twice); seq_gaps / seq_backward
 * seq jumped forward / at or below one already seen; no_skb no memory for an skb (frame
 * dropped, page returned); drained completions consumed at stop (pages returned, frames
 * dropped). broken_* count the impossible indices that put the driver in the broken
 * state, by ring. tx_too_long / tx_broken_drops: frames dropped by xmit (longer than a
 * TX buffer; the device is broken). tx_busy: xmit called with the ring full (the queue
 * should have been stopped: 0 unless stop/wake is wrong). rx_floors: floor and warm-up
 * signals answered (`labyrinth latency`; lnic_answer_floor). ret_unrung: polls that
 * published returns without ringing (LNIC_F_RET_EVENT: the device takes them itself).
 * rx_copies / rx_copy_cycles: frames copied into an skb and the TSC cycles the copies
 * took (skb_put_data alone: what attaching the page instead would save at most);
 * poll_cycles: the TSC cycles of every NAPI poll, end to end (the stack's work for the
 * frames included: napi_gro_receive and the flush at napi_complete_done). The two cycle
 * counters count only with rx_timing=1 (module parameter; 0 otherwise). */
/* clang-format off */
#define LNIC_COUNTERS(X)						\
	X(rx_irqs) X(tx_irqs) X(polls) X(ret_doorbells) X(tx_doorbells)	\
	X(tx_queue_stops) X(tx_queue_wakes) X(tx_busy) X(tx_too_long)	\
	X(tx_broken_drops) X(rx_bad_addr) X(rx_bad_len) X(rx_bad_flags)	\
	X(rx_page_twice) X(rx_seq_gaps) X(rx_seq_backward) X(rx_no_skb)	\
	X(rx_drained) X(broken_rx_prod) X(broken_ret_cons)		\
	X(broken_tx_cons) X(rx_floors) X(ret_unrung) X(rx_copies)	\
	X(rx_copy_cycles) X(poll_cycles)
/* clang-format on */

struct lnic_counters {
#define LNIC_FIELD(name) u64 name;
	LNIC_COUNTERS(LNIC_FIELD)
#undef LNIC_FIELD
};

static const char *const lnic_counter_names[] = {
#define LNIC_NAME(name) #name,
	LNIC_COUNTERS(LNIC_NAME)
#undef LNIC_NAME
};

/* After the driver's counters, `ethtool -S` gives these (lnic_get_ethtool_stats). */
static const char *const lnic_extra_names[] = {
	"rx_packets", "rx_bytes", "rx_errors",	"rx_dropped",	"tx_packets",	  "tx_bytes",
	"tx_dropped", "broken",	  "pages_held", "tx_in_flight", "dev_pages_held", "dev_violations",
};

struct lnic {
	struct pci_dev *pdev;
	struct net_device *ndev;
	struct napi_struct napi;
	void __iomem *regs;
	void *pool_va; /* the pool window, write-back */
	u64 pool_base, pool_size;
	u32 features;
	bool ret_event; /* LNIC_F_RET_EVENT acknowledged at this open */

	/* Rings (guest RAM, zeroed; the device validates them at ENABLE). */
	struct lnic_ring_header *rx, *ret, *tx;
	dma_addr_t rx_dma, ret_dma, tx_dma;
	size_t rx_bytes, ret_bytes, tx_bytes;
	struct lnic_rx_completion *rx_ent;
	struct lnic_return *ret_ent;
	struct lnic_tx_desc *tx_ent;
	u8 *tx_buf; /* LNIC_TX_ENTRIES buffers of LNIC_FRAME_MAX bytes, one per TX slot */
	dma_addr_t tx_buf_dma;

	/* TX: prod is written by xmit only (under the queue's lock), tx_clean (the device's
	 * TX cons once checked) by the NAPI poll only, and at stop with the queue disabled. */
	u32 tx_prod;
	u32 tx_clean;

	u32 rx_cons;
	u32 ret_prod, ret_cons_seen;
	u64 ret_shadow[LNIC_RET_ENTRIES]; /* page of each RETURN slot, as the driver wrote it */
	unsigned long *held;		  /* one bit per pool page the guest holds */
	u64 held_count;
	u64 next_seq;
	bool seq_started;
	bool broken;
	bool running;
	/* The last poll left completions behind because RETURN was full: the device gives no
	 * interrupt when it consumes RETURN, so `retry` polls again a tick later instead of
	 * NAPI spinning on a ring the device has not drained yet. */
	bool ret_full;
	struct timer_list retry;

	/* The interrupt's stamp: RX prod loaded at handler entry, then the TSC. */
	u32 stamp_prod;
	u64 stamp_tsc;
	/* The floor_t_sent of the last floor signal answered (interrupt handler only). */
	u64 floor_last_t_sent;

	struct lnic_counters c;
};

static u32 lnic_read(struct lnic *nic, u32 reg)
{
	return readl(nic->regs + reg);
}

static void lnic_write(struct lnic *nic, u32 reg, u32 value)
{
	writel(value, nic->regs + reg);
}

static size_t lnic_ring_bytes(u32 entries, size_t entry_size)
{
	return PAGE_ALIGN(sizeof(struct lnic_ring_header) + (size_t)entries * entry_size);
}

/* Enters the broken state: one line per event (rate-limited), no more ring access, no
 * carrier (the stack stops handing frames over). `kind` is the counter of the ring. */
static void lnic_broken(struct lnic *nic, u64 *kind, const char *what, u32 a, u32 b)
{
	const bool was_broken = nic->broken;

	++*kind;
	WRITE_ONCE(nic->broken, true);
	if (!was_broken) {
		net_err_ratelimited(
			"%s: device broken: %s (%u, %u); take the interface down and up to reset it\n",
			netdev_name(nic->ndev), what, a, b);
		/* Pairs with lnic_open(): broken is stored before the carrier goes off, so an
		 * open that turned the carrier on either sees broken or is followed by this. */
		smp_mb();
		netif_carrier_off(nic->ndev);
	}
}

/* The index of a pool page, or false when gpa is no page of the window (written as a
 * difference: base + size overflowing cannot fool it). */
static bool lnic_page_index(struct lnic *nic, u64 gpa, u64 *index)
{
	if ((gpa & (LNIC_PAGE_SIZE - 1)) != 0 || gpa < nic->pool_base ||
	    gpa - nic->pool_base >= nic->pool_size ||
	    nic->pool_size - (gpa - nic->pool_base) < LNIC_PAGE_SIZE)
		return false;
	*index = (gpa - nic->pool_base) / LNIC_PAGE_SIZE;
	return true;
}

/* Pages in RETURN entries the device has consumed are the device's again. Its cons is
 * believed only if it moved forward and not past our prod. */
static bool lnic_refresh_ret_cons(struct lnic *nic)
{
	u32 cons = smp_load_acquire(&nic->ret->cons);
	u64 index;

	if (cons == nic->ret_cons_seen)
		return true;
	if (cons - nic->ret_cons_seen > nic->ret_prod - nic->ret_cons_seen) {
		lnic_broken(nic, &nic->c.broken_ret_cons,
			    "RETURN cons moved backwards or past prod", cons, nic->ret_prod);
		return false;
	}
	for (; nic->ret_cons_seen != cons; ++nic->ret_cons_seen) {
		u64 gpa = nic->ret_shadow[nic->ret_cons_seen & (LNIC_RET_ENTRIES - 1)];

		if (lnic_page_index(nic, gpa, &index) && test_and_clear_bit(index, nic->held))
			--nic->held_count;
	}
	return true;
}

static void lnic_post_return(struct lnic *nic, u64 gpa, u64 seq, u64 t_guest_irq)
{
	u32 slot = nic->ret_prod & (LNIC_RET_ENTRIES - 1);
	struct lnic_return *r = &nic->ret_ent[slot];

	WRITE_ONCE(r->page_gpa, gpa);
	WRITE_ONCE(r->t_guest_irq, t_guest_irq);
	WRITE_ONCE(r->seq, seq);
	WRITE_ONCE(r->reserved, 0);
	nic->ret_shadow[slot] = gpa;
	++nic->ret_prod;
}

/* Whether the returns just published (old_prod .. ret_prod) need the doorbell. Without
 * LNIC_F_RET_EVENT, always. With it: when the device's ret_event is among them (it
 * wants them now, or a quarter of the ring has piled up), and in any case when half the
 * ring is unconsumed, when this poll found RETURN too full to take every completion, or
 * when `force` (the drain at stop). The event is the device's word and is only ever
 * compared, never used as an index: a wrong one costs doorbells or delays returns, and
 * the half-ring rule keeps RETURN from filling without a doorbell. */
static bool lnic_ret_need_doorbell(struct lnic *nic, u32 old_prod, bool force)
{
	u32 event, new_prod = nic->ret_prod;

	if (!nic->ret_event || force || nic->ret_full ||
	    new_prod - nic->ret_cons_seen >= LNIC_RET_ENTRIES / 2)
		return true;
	/* prod (stored with release by the caller) before the event is read: either the
	 * device's next look at RETURN sees these entries, or this load sees the event it
	 * stored after that look (virtio's event index needs the same full barrier). */
	smp_mb();
	event = READ_ONCE(nic->ret->ret_event);
	return (u32)(new_prod - event - 1) < (u32)(new_prod - old_prod);
}

static void lnic_ret_doorbell(struct lnic *nic)
{
	lnic_write(nic, LNIC_REG_RET_DOORBELL, 1);
	++nic->c.ret_doorbells;
}

/* One completion. Every field is read once, then checked: what the driver acts on is
 * what it checked, even if the device rewrites the entry meanwhile. Returns 1 when a
 * frame went up the stack. */
static int lnic_rx_one(struct lnic *nic, u32 slot, u64 t_guest_irq, bool deliver)
{
	const struct lnic_rx_completion *c = &nic->rx_ent[slot];
	u64 gpa = READ_ONCE(c->page_gpa);
	u32 len = READ_ONCE(c->len);
	u32 flags = READ_ONCE(c->flags);
	u64 seq = READ_ONCE(c->seq);
	struct net_device *ndev = nic->ndev;
	struct sk_buff *skb;
	u64 index;

	if (!lnic_page_index(nic, gpa, &index)) {
		++nic->c.rx_bad_addr;
		ndev->stats.rx_errors++;
		net_warn_ratelimited(
			"%s: completion seq %llu names 0x%llx, not a page of the pool window 0x%llx+0x%llx\n",
			netdev_name(ndev), seq, gpa, nic->pool_base, nic->pool_size);
		return 0;
	}
	if (test_and_set_bit(index, nic->held)) {
		++nic->c.rx_page_twice;
		ndev->stats.rx_errors++;
		net_warn_ratelimited(
			"%s: completion seq %llu hands over page 0x%llx the driver already holds\n",
			netdev_name(ndev), seq, gpa);
		return 0;
	}
	++nic->held_count;
	if (nic->seq_started && seq != nic->next_seq) {
		if (seq > nic->next_seq)
			++nic->c.rx_seq_gaps;
		else
			++nic->c.rx_seq_backward;
	}
	if (!nic->seq_started || seq >= nic->next_seq)
		nic->next_seq = seq + 1;
	nic->seq_started = true;
	if (flags != 0)
		++nic->c.rx_bad_flags;

	if (len == 0 || len > LNIC_FRAME_MAX) {
		++nic->c.rx_bad_len;
		ndev->stats.rx_length_errors++;
		ndev->stats.rx_errors++;
	} else if (!deliver) {
		++nic->c.rx_drained;
		ndev->stats.rx_dropped++;
	} else if ((skb = napi_alloc_skb(&nic->napi, len)) == NULL) {
		++nic->c.rx_no_skb;
		ndev->stats.rx_dropped++;
	} else {
		/* The copy is done before the page goes back below. */
		u64 t0 = lnic_cycles();

		skb_put_data(skb, (u8 *)nic->pool_va + (gpa - nic->pool_base), len);
		nic->c.rx_copy_cycles += lnic_cycles() - t0;
		++nic->c.rx_copies;
		skb->protocol = eth_type_trans(skb, ndev);
		ndev->stats.rx_packets++;
		ndev->stats.rx_bytes += len;
		napi_gro_receive(&nic->napi, skb);
		lnic_post_return(nic, gpa, seq, t_guest_irq);
		return 1;
	}
	lnic_post_return(nic, gpa, seq, t_guest_irq);
	return 0;
}

/* Consumes up to `budget` completions (never more than RETURN has free slots), then
 * publishes RX cons and RETURN prod and rings the doorbell at most once (always when not
 * `deliver`: the drain at stop). Returns how many completions were consumed. */
static int lnic_rx(struct lnic *nic, int budget, bool deliver)
{
	u32 prod, avail, ret_free, i, first_prod = nic->ret_prod;
	int done = 0;

	nic->ret_full = false;
	if (nic->broken)
		return 0;
	/* RX prod first, then RETURN cons. The device publishes RETURN cons before it delivers
	 * any page that cons gives back again, so every completion up to this prod names a page
	 * whose return the cons read after it already shows. Read the other way round, a page
	 * returned, taken back and delivered again between the two loads looks held twice
	 * (rx_page_twice, and the page stranded with the guest: seen in CI once the device took
	 * returns after every RX batch, LNIC_F_RET_EVENT). */
	prod = smp_load_acquire(&nic->rx->prod);
	if (!lnic_refresh_ret_cons(nic))
		return 0;
	avail = prod - nic->rx_cons;
	if (avail > LNIC_RX_ENTRIES) {
		lnic_broken(nic, &nic->c.broken_rx_prod, "RX prod more than a ring ahead of cons",
			    prod, nic->rx_cons);
		return 0;
	}
	ret_free = LNIC_RET_ENTRIES - (nic->ret_prod - nic->ret_cons_seen);
	nic->ret_full = avail > ret_free && ret_free < (u32)budget;
	if (avail > ret_free)
		avail = ret_free;
	if (avail > (u32)budget)
		avail = budget;
	for (i = 0; i < avail; ++i) {
		/* Completions the handler saw at entry carry its stamp; later ones were polled. */
		bool stamped = (s32)(nic->stamp_prod - nic->rx_cons) > 0;

		lnic_rx_one(nic, nic->rx_cons & (LNIC_RX_ENTRIES - 1), stamped ? nic->stamp_tsc : 0,
			    deliver);
		++nic->rx_cons;
		++done;
	}
	if (done != 0)
		smp_store_release(&nic->rx->cons, nic->rx_cons);
	if (nic->ret_prod != first_prod) {
		smp_store_release(&nic->ret->prod, nic->ret_prod);
		if (lnic_ret_need_doorbell(nic, first_prod, !deliver))
			lnic_ret_doorbell(nic);
		else
			++nic->c.ret_unrung;
	}
	return done;
}

/* Free TX slots: prod is the driver's, tx_clean moves only after a check. */
static u32 lnic_tx_free(const struct lnic *nic)
{
	return LNIC_TX_ENTRIES - (READ_ONCE(nic->tx_prod) - smp_load_acquire(&nic->tx_clean));
}

/* Takes the device's TX cons: every slot before it was copied out by the device and is
 * the driver's again. Believed only if it moved forward and not past prod. Returns false
 * when the device is (or just became) broken. */
static bool lnic_tx_clean(struct lnic *nic)
{
	u32 cons, prod;

	if (nic->broken)
		return false;
	/* cons first: the device consumed only descriptors xmit had published, and xmit
	 * advanced tx_prod before it published them, so prod read after cons covers cons. */
	cons = smp_load_acquire(&nic->tx->cons);
	prod = READ_ONCE(nic->tx_prod);
	if (cons - nic->tx_clean > prod - nic->tx_clean) {
		lnic_broken(nic, &nic->c.broken_tx_cons, "TX cons moved backwards or past prod",
			    cons, prod);
		return false;
	}
	if (cons != nic->tx_clean)
		smp_store_release(&nic->tx_clean, cons);
	return true;
}

/* Reclaims TX slots and wakes a stopped queue (pairs with the smp_mb in xmit). */
static void lnic_tx_poll(struct lnic *nic)
{
	if (!lnic_tx_clean(nic))
		return;
	smp_mb();
	if (netif_queue_stopped(nic->ndev) && lnic_tx_free(nic) >= LNIC_TX_WAKE) {
		++nic->c.tx_queue_wakes;
		netif_wake_queue(nic->ndev);
	}
}

static int lnic_poll(struct napi_struct *napi, int budget)
{
	struct lnic *nic = container_of(napi, struct lnic, napi);
	u64 t0 = lnic_cycles();
	int done;

	lnic_tx_poll(nic); /* TX reclaim is not counted against the budget */
	done = lnic_rx(nic, budget, true);
	++nic->c.polls;
	if (done < budget && napi_complete_done(napi, done)) {
		if (nic->ret_full) {
			/* NO_IRQ stays set: the timer brings the next poll. */
			mod_timer(&nic->retry, jiffies + 1);
			nic->c.poll_cycles += lnic_cycles() - t0;
			return done;
		}
		/* Interrupts back on, then look again: a completion posted while NO_IRQ was
		 * set raised nothing (guest/abi/lnic.h). */
		WRITE_ONCE(nic->rx->flags, 0);
		smp_mb();
		if (!nic->broken && smp_load_acquire(&nic->rx->prod) != nic->rx_cons &&
		    napi_schedule_prep(napi)) {
			WRITE_ONCE(nic->rx->flags, LNIC_RING_F_NO_IRQ);
			__napi_schedule(napi);
		}
	}
	nic->c.poll_cycles += lnic_cycles() - t0;
	return done;
}

static void lnic_retry(struct timer_list *t)
{
	struct lnic *nic = from_timer(nic, t, retry);

	napi_schedule(&nic->napi);
}

/* A floor or warm-up signal (LNIC_REG_FLOOR_ARM in guest/abi/lnic.h; `labyrinth latency`
 * sends them itself): the device stored floor_t_sent in the RX ring header and signalled
 * LNIC_VEC_RX with no completion. The answer is the handler's entry TSC in
 * floor_guest_tsc, where the device reads it (release: pairs with its acquire load),
 * once per floor_t_sent value, as the freestanding driver answers (check_floor in
 * guest/drivers/lnic/lnic_datapath.cc): the device need not clear floor_guest_tsc between
 * signals, a new t_sent is what marks a new one. */
static bool lnic_answer_floor(struct lnic *nic, struct lnic_ring_header *rx, u64 entry_tsc)
{
	u64 t_sent = smp_load_acquire(&rx->floor_t_sent);

	if (t_sent == 0 || t_sent == nic->floor_last_t_sent)
		return false;
	smp_store_release(&rx->floor_guest_tsc, entry_tsc);
	nic->floor_last_t_sent = t_sent;
	++nic->c.rx_floors;
	return true;
}

static irqreturn_t lnic_rx_irq(int irq, void *data)
{
	struct lnic *nic = data;
	struct lnic_ring_header *rx = READ_ONCE(nic->rx);
	u64 entry_tsc;
	u32 prod;

	/* The guest-observed endpoint: prod first, then the TSC (ordered after the load), so
	 * no stamp is earlier than a completion it is returned with. This is the driver's
	 * first code to run, but not the kernel's: the x86 interrupt entry, irq_enter and the
	 * MSI's edge flow (which sends the local APIC's EOI) come before it (docs/lnic.md
	 * "Measurement"). */
	if (!rx)
		return IRQ_NONE;
	prod = smp_load_acquire(&rx->prod);
	entry_tsc = rdtsc_ordered();
	++nic->c.rx_irqs;
	/* A floor with nothing to receive is answered here alone: no NAPI poll, whose cost
	 * the floor (the interrupt path without device work) must not carry. A poll running
	 * elsewhere meanwhile re-checks prod before it ends (lnic_poll). */
	if (lnic_answer_floor(nic, rx, entry_tsc) && prod == READ_ONCE(nic->rx_cons))
		return IRQ_HANDLED;
	nic->stamp_tsc = entry_tsc;
	nic->stamp_prod = prod;
	if (napi_schedule_prep(&nic->napi)) {
		WRITE_ONCE(rx->flags, LNIC_RING_F_NO_IRQ);
		__napi_schedule(&nic->napi);
	}
	return IRQ_HANDLED;
}

/* The device consumed TX descriptors: the poll reclaims their slots. A poll already
 * running is told to run again (NAPI's MISSED state), so no wake-up is lost. */
static irqreturn_t lnic_tx_irq(int irq, void *data)
{
	struct lnic *nic = data;

	++nic->c.tx_irqs;
	if (!READ_ONCE(nic->rx))
		return IRQ_NONE;
	napi_schedule(&nic->napi);
	return IRQ_HANDLED;
}

/* The interrupt handler reads nic->rx: it is cleared, and a handler already running
 * finishes, before the memory goes. */
static void lnic_free_rings(struct lnic *nic)
{
	struct device *dev = &nic->pdev->dev;
	struct lnic_ring_header *rx = nic->rx, *ret = nic->ret, *tx = nic->tx;

	u8 *tx_buf = nic->tx_buf;

	WRITE_ONCE(nic->rx, NULL);
	nic->ret = nic->tx = NULL;
	nic->tx_buf = NULL;
	synchronize_irq(pci_irq_vector(nic->pdev, LNIC_VEC_RX));
	synchronize_irq(pci_irq_vector(nic->pdev, LNIC_VEC_TX));
	if (rx)
		dma_free_coherent(dev, nic->rx_bytes, rx, nic->rx_dma);
	if (ret)
		dma_free_coherent(dev, nic->ret_bytes, ret, nic->ret_dma);
	if (tx)
		dma_free_coherent(dev, nic->tx_bytes, tx, nic->tx_dma);
	if (tx_buf)
		dma_free_coherent(dev, (size_t)LNIC_TX_ENTRIES * LNIC_FRAME_MAX, tx_buf,
				  nic->tx_buf_dma);
}

static int lnic_alloc_rings(struct lnic *nic)
{
	struct device *dev = &nic->pdev->dev;

	nic->rx_bytes = lnic_ring_bytes(LNIC_RX_ENTRIES, sizeof(struct lnic_rx_completion));
	nic->ret_bytes = lnic_ring_bytes(LNIC_RET_ENTRIES, sizeof(struct lnic_return));
	nic->tx_bytes = lnic_ring_bytes(LNIC_TX_ENTRIES, sizeof(struct lnic_tx_desc));
	nic->rx = dma_alloc_coherent(dev, nic->rx_bytes, &nic->rx_dma, GFP_KERNEL);
	nic->ret = dma_alloc_coherent(dev, nic->ret_bytes, &nic->ret_dma, GFP_KERNEL);
	nic->tx = dma_alloc_coherent(dev, nic->tx_bytes, &nic->tx_dma, GFP_KERNEL);
	nic->tx_buf = dma_alloc_coherent(dev, (size_t)LNIC_TX_ENTRIES * LNIC_FRAME_MAX,
					 &nic->tx_buf_dma, GFP_KERNEL);
	if (!nic->rx || !nic->ret || !nic->tx || !nic->tx_buf) {
		lnic_free_rings(nic);
		return -ENOMEM;
	}
	nic->rx_ent = (struct lnic_rx_completion *)(nic->rx + 1);
	nic->ret_ent = (struct lnic_return *)(nic->ret + 1);
	nic->tx_ent = (struct lnic_tx_desc *)(nic->tx + 1);
	return 0;
}

static void lnic_write_ring(struct lnic *nic, u32 lo, dma_addr_t dma, u32 entries)
{
	lnic_write(nic, lo, lower_32_bits(dma));
	lnic_write(nic, lo + 4, upper_32_bits(dma));
	lnic_write(nic, lo + 8, entries);
}

/* RESET, then STOPPING must clear before the rings may be freed. */
static int lnic_reset(struct lnic *nic)
{
	u32 st;

	lnic_write(nic, LNIC_REG_CONTROL, LNIC_CTRL_RESET);
	return readl_poll_timeout(nic->regs + LNIC_REG_STATUS, st, !(st & LNIC_STATUS_STOPPING),
				  100, LNIC_STOP_TIMEOUT_US);
}

static void lnic_report(struct lnic *nic, const char *when)
{
	const struct lnic_counters *e = &nic->c;

	netdev_info(
		nic->ndev,
		"%s: rx_packets %lu tx_packets %lu rx_irqs %llu tx_irqs %llu polls %llu ret_doorbells %llu ret_unrung %llu tx_queue_stops %llu bad_addr %llu bad_len %llu bad_flags %llu page_twice %llu seq_gaps %llu seq_backward %llu no_skb %llu drained %llu held %llu tx_in_flight %u device_pages_held %u violations %u broken %d\n",
		when, nic->ndev->stats.rx_packets, nic->ndev->stats.tx_packets, e->rx_irqs,
		e->tx_irqs, e->polls, e->ret_doorbells, e->ret_unrung, e->tx_queue_stops,
		e->rx_bad_addr, e->rx_bad_len, e->rx_bad_flags, e->rx_page_twice, e->rx_seq_gaps,
		e->rx_seq_backward, e->rx_no_skb, e->rx_drained, nic->held_count,
		nic->tx_prod - nic->tx_clean, lnic_read(nic, LNIC_REG_PAGES_HELD),
		lnic_read(nic, LNIC_REG_VIOLATIONS), nic->broken);
}

static int lnic_open(struct net_device *ndev)
{
	struct lnic *nic = netdev_priv(ndev);
	u32 st;
	int err;

	/* A device left STOPPING by an earlier failed stop must finish before new rings. */
	if (lnic_reset(nic)) {
		netdev_err(ndev, "still STOPPING after RESET: not opening\n");
		return -EIO;
	}
	err = lnic_alloc_rings(nic);
	if (err)
		return err;
	nic->rx_cons = nic->ret_prod = nic->ret_cons_seen = 0;
	nic->seq_started = false;
	nic->broken = false;
	nic->stamp_prod = 0;
	nic->stamp_tsc = 0;
	nic->floor_last_t_sent = 0;
	nic->tx_prod = nic->tx_clean = 0;
	/* After the RESET above, which cleared what an earlier driver acknowledged. */
	nic->ret_event = use_ret_event && (nic->features & LNIC_F_RET_EVENT);
	if (nic->ret_event)
		lnic_write(nic, LNIC_REG_DRIVER_FEATURES, LNIC_F_RET_EVENT);
	/* Pages still held from an earlier run stay held: their returns were refused or lost
	 * with a broken device; the bitmap keeps them from being taken as new. */
	/* TX flags stay 0: the device signals LNIC_VEC_TX after each doorbell's descriptors. */
	lnic_write_ring(nic, LNIC_REG_RX_RING_LO, nic->rx_dma, LNIC_RX_ENTRIES);
	lnic_write_ring(nic, LNIC_REG_RET_RING_LO, nic->ret_dma, LNIC_RET_ENTRIES);
	lnic_write_ring(nic, LNIC_REG_TX_RING_LO, nic->tx_dma, LNIC_TX_ENTRIES);
	napi_enable(&nic->napi);
	lnic_write(nic, LNIC_REG_CONTROL, LNIC_CTRL_ENABLE);
	st = lnic_read(nic, LNIC_REG_STATUS);
	if (!(st & LNIC_STATUS_RUNNING)) {
		netdev_err(ndev, "STATUS 0x%x after ENABLE (config error at register 0x%03x)\n", st,
			   lnic_read(nic, LNIC_REG_CONFIG_ERROR));
		napi_disable(&nic->napi);
		if (lnic_reset(nic) == 0)
			lnic_free_rings(nic);
		return -EIO;
	}
	nic->running = true;
	/* The device runs from ENABLE on: its RX interrupt and our poll may already have
	 * found it broken (an impossible index), and the carrier must then stay off. Carrier
	 * on, then broken read, each side fenced (lnic_broken() pairs with this). */
	netif_carrier_on(ndev);
	smp_mb();
	if (READ_ONCE(nic->broken))
		netif_carrier_off(ndev);
	netif_start_queue(ndev);
	return 0;
}

/* Every RETURN entry consumed by the device and its PAGES_HELD (device_held) equal to
 * what the driver still holds (0: it copies every frame), or the device broke. */
static bool lnic_drained(struct lnic *nic, u32 device_held)
{
	if (!lnic_refresh_ret_cons(nic))
		return true;
	return nic->ret_cons_seen == nic->ret_prod && device_held == nic->held_count;
}

/* RX_STOP, drain, give every page back, RESET (guest/abi/lnic.h "Stop, drain and reset"). */
static int lnic_stop(struct net_device *ndev)
{
	struct lnic *nic = netdev_priv(ndev);
	u32 st;
	int err;

	if (!nic->running)
		return 0;
	netif_tx_disable(ndev); /* no xmit runs from here on */
	netif_carrier_off(ndev);
	lnic_write(nic, LNIC_REG_CONTROL, LNIC_CTRL_RX_STOP);
	err = readl_poll_timeout(nic->regs + LNIC_REG_STATUS, st, st & LNIC_STATUS_RX_STOPPED, 100,
				 LNIC_STOP_TIMEOUT_US);
	if (err)
		netdev_err(ndev, "RX_STOPPED not reported (STATUS 0x%x)\n", st);
	napi_disable(&nic->napi);
	del_timer_sync(&nic->retry); /* after napi_disable: a poll cannot re-arm it */
	/* What is left in the RX ring: pages back, frames counted as dropped. */
	while (!err && !nic->broken && lnic_rx(nic, LNIC_RX_ENTRIES, false) != 0)
		;
	/* Returns a poll published without a doorbell after the device's RX_STOP pass: the
	 * device reads RETURN only on a doorbell now. */
	if (!err && !nic->broken && lnic_refresh_ret_cons(nic) &&
	    nic->ret_prod != nic->ret_cons_seen)
		lnic_ret_doorbell(nic);
	/* Every TX descriptor consumed (the device still serves TX after RX_STOP): the
	 * buffers are freed with the rings below. */
	if (!nic->broken &&
	    read_poll_timeout(lnic_tx_clean, st, !st || nic->tx_clean == nic->tx_prod, 100,
			      LNIC_STOP_TIMEOUT_US, false, nic))
		netdev_err(ndev, "TX cons %u, prod %u: descriptors left unconsumed\n",
			   nic->tx_clean, nic->tx_prod);
	if (!err && !nic->broken) {
		err = read_poll_timeout(lnic_read, st, lnic_drained(nic, st), 100,
					LNIC_STOP_TIMEOUT_US, false, nic, LNIC_REG_PAGES_HELD);
		if (err || nic->broken)
			netdev_err(ndev,
				   "PAGES_HELD %u, the driver holds %llu, RETURN %u/%u consumed\n",
				   st, nic->held_count, nic->ret_cons_seen, nic->ret_prod);
	}
	lnic_report(nic, "stopped");
	nic->running = false;
	if (lnic_reset(nic)) {
		/* The device may still write the rings: better leak them than free them. */
		netdev_err(ndev, "still STOPPING after RESET: rings not freed\n");
		nic->rx = nic->ret = nic->tx = NULL;
		nic->tx_buf = NULL;
		return 0;
	}
	lnic_free_rings(nic);
	return 0;
}

/* Copies the frame into its slot's buffer and frees the skb at once: nothing of the
 * stack's waits on the device. Stops the queue when the ring is full; the TX interrupt's
 * poll wakes it. */
static netdev_tx_t lnic_start_xmit(struct sk_buff *skb, struct net_device *ndev)
{
	struct lnic *nic = netdev_priv(ndev);
	struct lnic_tx_desc *d;
	u32 slot, len = skb->len;

	if (unlikely(READ_ONCE(nic->broken))) {
		++nic->c.tx_broken_drops;
		goto drop;
	}
	if (unlikely(len == 0 || len > LNIC_FRAME_MAX)) {
		++nic->c.tx_too_long;
		goto drop;
	}
	if (unlikely(lnic_tx_free(nic) == 0)) {
		++nic->c.tx_busy;
		netif_stop_queue(ndev);
		return NETDEV_TX_BUSY;
	}
	slot = nic->tx_prod & (LNIC_TX_ENTRIES - 1);
	if (skb_copy_bits(skb, 0, nic->tx_buf + (size_t)slot * LNIC_FRAME_MAX, len)) {
		++nic->c.tx_too_long;
		goto drop;
	}
	d = &nic->tx_ent[slot];
	WRITE_ONCE(d->buf_gpa, nic->tx_buf_dma + (u64)slot * LNIC_FRAME_MAX);
	WRITE_ONCE(d->len, len);
	WRITE_ONCE(d->flags, 0);
	WRITE_ONCE(nic->tx_prod, nic->tx_prod + 1);
	smp_store_release(&nic->tx->prod, nic->tx_prod);
	ndev->stats.tx_packets++;
	ndev->stats.tx_bytes += len;
	dev_consume_skb_any(skb);

	if (lnic_tx_free(nic) == 0) {
		netif_stop_queue(ndev);
		++nic->c.tx_queue_stops;
		/* Pairs with lnic_tx_poll: either it sees the stop or this sees its clean. */
		smp_mb();
		if (lnic_tx_free(nic) >= LNIC_TX_WAKE)
			netif_start_queue(ndev);
	}
	if (!netdev_xmit_more() || netif_queue_stopped(ndev)) {
		lnic_write(nic, LNIC_REG_TX_DOORBELL, 1);
		++nic->c.tx_doorbells;
	}
	return NETDEV_TX_OK;

drop:
	ndev->stats.tx_dropped++;
	dev_kfree_skb_any(skb);
	return NETDEV_TX_OK;
}

static const struct net_device_ops lnic_netdev_ops = {
	.ndo_open = lnic_open,
	.ndo_stop = lnic_stop,
	.ndo_start_xmit = lnic_start_xmit,
	.ndo_validate_addr = eth_validate_addr,
};

/* ---- ethtool: driver info, link, and `ethtool -S` ---- */

static void lnic_get_drvinfo(struct net_device *ndev, struct ethtool_drvinfo *info)
{
	struct lnic *nic = netdev_priv(ndev);

	strscpy(info->driver, DRV_NAME, sizeof(info->driver));
	snprintf(info->fw_version, sizeof(info->fw_version), "abi %u", LNIC_VERSION);
	strscpy(info->bus_info, pci_name(nic->pdev), sizeof(info->bus_info));
}

static int lnic_get_sset_count(struct net_device *ndev, int sset)
{
	if (sset != ETH_SS_STATS)
		return -EOPNOTSUPP;
	return ARRAY_SIZE(lnic_counter_names) + ARRAY_SIZE(lnic_extra_names);
}

static void lnic_get_strings(struct net_device *ndev, u32 sset, u8 *data)
{
	size_t i;

	if (sset != ETH_SS_STATS)
		return;
	for (i = 0; i < ARRAY_SIZE(lnic_counter_names); ++i)
		ethtool_sprintf(&data, "%s", lnic_counter_names[i]);
	for (i = 0; i < ARRAY_SIZE(lnic_extra_names); ++i)
		ethtool_sprintf(&data, "%s", lnic_extra_names[i]);
}

/* Statistics are read without a lock: each is one aligned u64 written by one context. */
static void lnic_get_ethtool_stats(struct net_device *ndev, struct ethtool_stats *stats, u64 *data)
{
	struct lnic *nic = netdev_priv(ndev);
	const u64 *c = (const u64 *)&nic->c;
	size_t i;

	BUILD_BUG_ON(sizeof(nic->c) != ARRAY_SIZE(lnic_counter_names) * sizeof(u64));
	BUILD_BUG_ON(ARRAY_SIZE(lnic_extra_names) != 12);
	for (i = 0; i < ARRAY_SIZE(lnic_counter_names); ++i)
		*data++ = READ_ONCE(c[i]);
	*data++ = ndev->stats.rx_packets;
	*data++ = ndev->stats.rx_bytes;
	*data++ = ndev->stats.rx_errors;
	*data++ = ndev->stats.rx_dropped;
	*data++ = ndev->stats.tx_packets;
	*data++ = ndev->stats.tx_bytes;
	*data++ = ndev->stats.tx_dropped;
	*data++ = READ_ONCE(nic->broken);
	*data++ = READ_ONCE(nic->held_count);
	*data++ = READ_ONCE(nic->tx_prod) - READ_ONCE(nic->tx_clean);
	*data++ = lnic_read(nic, LNIC_REG_PAGES_HELD);
	*data++ = lnic_read(nic, LNIC_REG_VIOLATIONS);
}

static const struct ethtool_ops lnic_ethtool_ops = {
	.get_drvinfo = lnic_get_drvinfo,
	.get_link = ethtool_op_get_link,
	.get_sset_count = lnic_get_sset_count,
	.get_strings = lnic_get_strings,
	.get_ethtool_stats = lnic_get_ethtool_stats,
};

static int lnic_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	struct net_device *ndev;
	struct lnic *nic;
	u32 magic, version, mac_lo, mac_hi;
	u8 mac[ETH_ALEN];
	int err, i;

	err = pci_enable_device_mem(pdev);
	if (err)
		return err;
	err = pci_request_regions(pdev, DRV_NAME);
	if (err)
		goto err_disable;
	pci_set_master(pdev);
	err = dma_set_mask_and_coherent(&pdev->dev, DMA_BIT_MASK(64));
	if (err)
		goto err_regions;

	ndev = alloc_etherdev(sizeof(*nic));
	if (!ndev) {
		err = -ENOMEM;
		goto err_regions;
	}
	SET_NETDEV_DEV(ndev, &pdev->dev);
	nic = netdev_priv(ndev);
	nic->pdev = pdev;
	nic->ndev = ndev;
	pci_set_drvdata(pdev, nic);

	if (pci_resource_len(pdev, 0) < LNIC_BAR_SIZE) {
		dev_err(&pdev->dev, "BAR0 is %llu bytes, expected %u\n",
			(unsigned long long)pci_resource_len(pdev, 0), LNIC_BAR_SIZE);
		err = -ENODEV;
		goto err_free_netdev;
	}
	nic->regs = pci_iomap(pdev, 0, LNIC_MMIO_SIZE);
	if (!nic->regs) {
		err = -ENOMEM;
		goto err_free_netdev;
	}
	magic = lnic_read(nic, LNIC_REG_MAGIC);
	version = lnic_read(nic, LNIC_REG_VERSION);
	nic->features = lnic_read(nic, LNIC_REG_FEATURES);
	if (magic != LNIC_MAGIC || version != LNIC_VERSION || !(nic->features & LNIC_F_DRAIN)) {
		dev_err(&pdev->dev,
			"MAGIC 0x%08x VERSION %u FEATURES 0x%x: this driver speaks version %u with drain\n",
			magic, version, nic->features, LNIC_VERSION);
		err = -ENODEV;
		goto err_unmap;
	}

	/* The pool window, from the device: every RX page is inside it. */
	nic->pool_base = (u64)lnic_read(nic, LNIC_REG_POOL_BASE_HI) << 32 |
			 lnic_read(nic, LNIC_REG_POOL_BASE_LO);
	nic->pool_size = (u64)lnic_read(nic, LNIC_REG_POOL_SIZE_HI) << 32 |
			 lnic_read(nic, LNIC_REG_POOL_SIZE_LO);
	if (nic->pool_size < LNIC_PAGE_SIZE || nic->pool_size > LNIC_POOL_MAX ||
	    (nic->pool_base & (LNIC_PAGE_SIZE - 1)) || (nic->pool_size & (LNIC_PAGE_SIZE - 1)) ||
	    nic->pool_base + nic->pool_size < nic->pool_base) {
		dev_err(&pdev->dev, "pool window 0x%llx size 0x%llx unusable\n", nic->pool_base,
			nic->pool_size);
		err = -ENODEV;
		goto err_unmap;
	}
	nic->pool_va = memremap(nic->pool_base, nic->pool_size, MEMREMAP_WB);
	if (!nic->pool_va) {
		dev_err(&pdev->dev, "cannot map the pool window 0x%llx+0x%llx write-back\n",
			nic->pool_base, nic->pool_size);
		err = -ENOMEM;
		goto err_unmap;
	}
	nic->held = bitmap_zalloc(nic->pool_size / LNIC_PAGE_SIZE, GFP_KERNEL);
	if (!nic->held) {
		err = -ENOMEM;
		goto err_memunmap;
	}

	err = pci_alloc_irq_vectors(pdev, LNIC_MSIX_VECTORS, LNIC_MSIX_VECTORS, PCI_IRQ_MSIX);
	if (err < 0)
		goto err_bitmap;
	err = request_irq(pci_irq_vector(pdev, LNIC_VEC_RX), lnic_rx_irq, 0, "lnic-rx", nic);
	if (err)
		goto err_vectors;
	err = request_irq(pci_irq_vector(pdev, LNIC_VEC_TX), lnic_tx_irq, 0, "lnic-tx", nic);
	if (err)
		goto err_rx_irq;

	mac_lo = lnic_read(nic, LNIC_REG_MAC_LO);
	mac_hi = lnic_read(nic, LNIC_REG_MAC_HI);
	for (i = 0; i < 4; ++i)
		mac[i] = (u8)(mac_lo >> (8 * i));
	for (i = 0; i < 2; ++i)
		mac[4 + i] = (u8)(mac_hi >> (8 * i));
	if (is_valid_ether_addr(mac)) {
		eth_hw_addr_set(ndev, mac);
	} else {
		dev_warn(&pdev->dev,
			 "device MAC %pM is not a unicast address: using a random one\n", mac);
		eth_hw_addr_random(ndev);
	}
	ndev->netdev_ops = &lnic_netdev_ops;
	ndev->ethtool_ops = &lnic_ethtool_ops;
	ndev->min_mtu = ETH_MIN_MTU;
	ndev->max_mtu = LNIC_FRAME_MAX - ETH_HLEN;
	netif_napi_add(ndev, &nic->napi, lnic_poll);
	timer_setup(&nic->retry, lnic_retry, 0);
	netif_carrier_off(ndev);
	err = register_netdev(ndev);
	if (err)
		goto err_napi;
	netdev_info(ndev,
		    "lnic at %s: MAC %pM, pool window 0x%llx+0x%llx (write-back), features 0x%x\n",
		    pci_name(pdev), ndev->dev_addr, nic->pool_base, nic->pool_size, nic->features);
	return 0;

err_napi:
	netif_napi_del(&nic->napi);
	free_irq(pci_irq_vector(pdev, LNIC_VEC_TX), nic);
err_rx_irq:
	free_irq(pci_irq_vector(pdev, LNIC_VEC_RX), nic);
err_vectors:
	pci_free_irq_vectors(pdev);
err_bitmap:
	bitmap_free(nic->held);
err_memunmap:
	memunmap(nic->pool_va);
err_unmap:
	pci_iounmap(pdev, nic->regs);
err_free_netdev:
	free_netdev(ndev);
err_regions:
	pci_release_regions(pdev);
err_disable:
	pci_disable_device(pdev);
	return err;
}

static void lnic_remove(struct pci_dev *pdev)
{
	struct lnic *nic = pci_get_drvdata(pdev);
	struct net_device *ndev = nic->ndev;

	unregister_netdev(ndev); /* runs lnic_stop when the interface is up */
	netif_napi_del(&nic->napi);
	free_irq(pci_irq_vector(pdev, LNIC_VEC_TX), nic);
	free_irq(pci_irq_vector(pdev, LNIC_VEC_RX), nic);
	pci_free_irq_vectors(pdev);
	bitmap_free(nic->held);
	memunmap(nic->pool_va);
	pci_iounmap(pdev, nic->regs);
	free_netdev(ndev);
	pci_release_regions(pdev);
	pci_disable_device(pdev);
}

static const struct pci_device_id lnic_ids[] = { { PCI_DEVICE(LNIC_PCI_VENDOR, LNIC_PCI_DEVICE) },
						 {} };
MODULE_DEVICE_TABLE(pci, lnic_ids);

static struct pci_driver lnic_driver = {
	.name = DRV_NAME,
	.id_table = lnic_ids,
	.probe = lnic_probe,
	.remove = lnic_remove,
};
module_pci_driver(lnic_driver);

MODULE_DESCRIPTION("Labyrinth NIC (lnic): device-owned receive pages");
MODULE_LICENSE("GPL");
