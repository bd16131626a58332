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
 *     the RX ring's NO_IRQ flag and schedules NAPI;
 *   - in the NAPI poll validates every completion before it touches the page (aligned
 *     and inside the window, overflow-safe; 1 <= len <= LNIC_FRAME_MAX; seq continuity;
 *     a page the driver already holds is counted and never returned twice), COPIES the
 *     frame into a fresh skb and gives the page straight back through RETURN. Copying
 *     keeps every pool page in the driver's hands for microseconds, so the pool never
 *     depends on how long the stack holds an skb, and a page is never returned while
 *     an skb still points into it; attaching the page (zero copy) is the alternative,
 *     to be measured against this one. Returns go out in one batch per poll: one RETURN
 *     prod store and one doorbell, and a poll never takes more completions than the
 *     RETURN ring has free slots;
 *   - on an impossible index (RX prod more than a ring ahead of cons, RETURN cons moving
 *     backwards or past prod) enters a "device broken" state: one rate-limited log line,
 *     no further ring access until the interface is taken down and up again (which
 *     resets the device). Nothing the device writes can make it crash;
 *   - on `ip link set down` and rmmod: RX_STOP, wait for RX_STOPPED, consume what is
 *     left, give every page back, wait until LNIC_REG_PAGES_HELD reads 0, RESET and wait
 *     for STOPPING to clear before the rings are freed.
 * Transmit is not implemented yet: frames handed to the driver are dropped and counted
 * (tx_dropped). The TX vector is requested and counted; the TX ring carries NO_IRQ.
 */
#include <linux/bitmap.h>
#include <linux/delay.h>
#include <linux/etherdevice.h>
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
#define LNIC_TX_ENTRIES 64u
/* The window this driver will map and track (one bit per page): 64 GiB, 2 MiB of bitmap. */
#define LNIC_POOL_MAX (64ull << 30)
#define LNIC_STOP_TIMEOUT_US 2000000u

/* What went wrong with a completion, counted by kind (reported at ifdown and unload). */
struct lnic_rx_errors {
	u64 bad_addr;	  /* misaligned or outside the pool window: not a page, not returned */
	u64 bad_len;	  /* 0 or > LNIC_FRAME_MAX: the page goes back, no frame */
	u64 bad_flags;	  /* reserved flags set: the frame is still delivered */
	u64 page_twice;	  /* a page the driver already holds: skipped, never returned twice */
	u64 seq_gaps;	  /* seq jumped forward */
	u64 seq_backward; /* seq at or below one already seen */
	u64 no_skb;	  /* no memory for an skb: frame dropped, page returned */
	u64 drained;	  /* completions consumed at stop: pages returned, frames dropped */
};

struct lnic {
	struct pci_dev *pdev;
	struct net_device *ndev;
	struct napi_struct napi;
	void __iomem *regs;
	void *pool_va; /* the pool window, write-back */
	u64 pool_base, pool_size;
	u32 features;

	/* Rings (guest RAM, zeroed; the device validates them at ENABLE). */
	struct lnic_ring_header *rx, *ret, *tx;
	dma_addr_t rx_dma, ret_dma, tx_dma;
	size_t rx_bytes, ret_bytes, tx_bytes;
	struct lnic_rx_completion *rx_ent;
	struct lnic_return *ret_ent;

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

	struct lnic_rx_errors err;
	u64 rx_irqs, tx_irqs, polls, ret_doorbells;
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

/* Enters the broken state: one line per event (rate-limited), no more ring access. */
static void lnic_broken(struct lnic *nic, const char *what, u32 a, u32 b)
{
	if (!nic->broken)
		net_err_ratelimited(
			"%s: device broken: %s (%u, %u); take the interface down and up to reset it\n",
			netdev_name(nic->ndev), what, a, b);
	nic->broken = true;
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
		lnic_broken(nic, "RETURN cons moved backwards or past prod", cons, nic->ret_prod);
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
		++nic->err.bad_addr;
		ndev->stats.rx_errors++;
		net_warn_ratelimited(
			"%s: completion seq %llu names 0x%llx, not a page of the pool window 0x%llx+0x%llx\n",
			netdev_name(ndev), seq, gpa, nic->pool_base, nic->pool_size);
		return 0;
	}
	if (test_and_set_bit(index, nic->held)) {
		++nic->err.page_twice;
		ndev->stats.rx_errors++;
		net_warn_ratelimited(
			"%s: completion seq %llu hands over page 0x%llx the driver already holds\n",
			netdev_name(ndev), seq, gpa);
		return 0;
	}
	++nic->held_count;
	if (nic->seq_started && seq != nic->next_seq) {
		if (seq > nic->next_seq)
			++nic->err.seq_gaps;
		else
			++nic->err.seq_backward;
	}
	if (!nic->seq_started || seq >= nic->next_seq)
		nic->next_seq = seq + 1;
	nic->seq_started = true;
	if (flags != 0)
		++nic->err.bad_flags;

	if (len == 0 || len > LNIC_FRAME_MAX) {
		++nic->err.bad_len;
		ndev->stats.rx_length_errors++;
		ndev->stats.rx_errors++;
	} else if (!deliver) {
		++nic->err.drained;
		ndev->stats.rx_dropped++;
	} else if ((skb = napi_alloc_skb(&nic->napi, len)) == NULL) {
		++nic->err.no_skb;
		ndev->stats.rx_dropped++;
	} else {
		/* The copy is done before the page goes back below. */
		skb_put_data(skb, (u8 *)nic->pool_va + (gpa - nic->pool_base), len);
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
 * publishes RX cons and RETURN prod and rings the doorbell once. Returns how many
 * completions were consumed. */
static int lnic_rx(struct lnic *nic, int budget, bool deliver)
{
	u32 prod, avail, ret_free, i, first_prod = nic->ret_prod;
	int done = 0;

	nic->ret_full = false;
	if (nic->broken || !lnic_refresh_ret_cons(nic))
		return 0;
	prod = smp_load_acquire(&nic->rx->prod);
	avail = prod - nic->rx_cons;
	if (avail > LNIC_RX_ENTRIES) {
		lnic_broken(nic, "RX prod more than a ring ahead of cons", prod, nic->rx_cons);
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
		lnic_write(nic, LNIC_REG_RET_DOORBELL, 1);
		++nic->ret_doorbells;
	}
	return done;
}

static int lnic_poll(struct napi_struct *napi, int budget)
{
	struct lnic *nic = container_of(napi, struct lnic, napi);
	int done = lnic_rx(nic, budget, true);

	++nic->polls;
	if (done < budget && napi_complete_done(napi, done)) {
		if (nic->ret_full) {
			/* NO_IRQ stays set: the timer brings the next poll. */
			mod_timer(&nic->retry, jiffies + 1);
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
	return done;
}

static void lnic_retry(struct timer_list *t)
{
	struct lnic *nic = from_timer(nic, t, retry);

	napi_schedule(&nic->napi);
}

static irqreturn_t lnic_rx_irq(int irq, void *data)
{
	struct lnic *nic = data;
	struct lnic_ring_header *rx = READ_ONCE(nic->rx);
	u32 prod;

	/* The guest-observed endpoint: prod first, then the TSC (ordered after the load), so
	 * no stamp is earlier than a completion it is returned with. */
	if (!rx)
		return IRQ_NONE;
	prod = smp_load_acquire(&rx->prod);
	nic->stamp_tsc = rdtsc_ordered();
	nic->stamp_prod = prod;
	++nic->rx_irqs;
	if (napi_schedule_prep(&nic->napi)) {
		WRITE_ONCE(rx->flags, LNIC_RING_F_NO_IRQ);
		__napi_schedule(&nic->napi);
	}
	return IRQ_HANDLED;
}

static irqreturn_t lnic_tx_irq(int irq, void *data)
{
	struct lnic *nic = data;

	++nic->tx_irqs;
	return IRQ_HANDLED;
}

/* The interrupt handler reads nic->rx: it is cleared, and a handler already running
 * finishes, before the memory goes. */
static void lnic_free_rings(struct lnic *nic)
{
	struct device *dev = &nic->pdev->dev;
	struct lnic_ring_header *rx = nic->rx, *ret = nic->ret, *tx = nic->tx;

	WRITE_ONCE(nic->rx, NULL);
	nic->ret = nic->tx = NULL;
	synchronize_irq(pci_irq_vector(nic->pdev, LNIC_VEC_RX));
	if (rx)
		dma_free_coherent(dev, nic->rx_bytes, rx, nic->rx_dma);
	if (ret)
		dma_free_coherent(dev, nic->ret_bytes, ret, nic->ret_dma);
	if (tx)
		dma_free_coherent(dev, nic->tx_bytes, tx, nic->tx_dma);
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
	if (!nic->rx || !nic->ret || !nic->tx) {
		lnic_free_rings(nic);
		return -ENOMEM;
	}
	nic->rx_ent = (struct lnic_rx_completion *)(nic->rx + 1);
	nic->ret_ent = (struct lnic_return *)(nic->ret + 1);
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
	const struct lnic_rx_errors *e = &nic->err;

	netdev_info(
		nic->ndev,
		"%s: rx_packets %lu rx_irqs %llu tx_irqs %llu polls %llu ret_doorbells %llu bad_addr %llu bad_len %llu bad_flags %llu page_twice %llu seq_gaps %llu seq_backward %llu no_skb %llu drained %llu held %llu device_pages_held %u violations %u broken %d\n",
		when, nic->ndev->stats.rx_packets, nic->rx_irqs, nic->tx_irqs, nic->polls,
		nic->ret_doorbells, e->bad_addr, e->bad_len, e->bad_flags, e->page_twice,
		e->seq_gaps, e->seq_backward, e->no_skb, e->drained, nic->held_count,
		lnic_read(nic, LNIC_REG_PAGES_HELD), lnic_read(nic, LNIC_REG_VIOLATIONS),
		nic->broken);
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
	/* Pages still held from an earlier run stay held: their returns were refused or lost
	 * with a broken device; the bitmap keeps them from being taken as new. */
	WRITE_ONCE(nic->tx->flags, LNIC_RING_F_NO_IRQ);
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
	netif_carrier_on(ndev);
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
	netif_stop_queue(ndev);
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
		return 0;
	}
	lnic_free_rings(nic);
	return 0;
}

static netdev_tx_t lnic_start_xmit(struct sk_buff *skb, struct net_device *ndev)
{
	/* No transmit yet (see the top of the file). */
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
