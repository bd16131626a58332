#!/usr/bin/env python3
"""Writes the hand-built seeds of virtio_fuzz into tests/fuzz/corpus/virtio_fuzz/.

The input format is virtio_fuzz.cc's: actions read front to back, each an opcode byte
(mod 15) and its fields, little-endian. Run from anywhere: python3 tests/fuzz/virtio_seeds.py
"""
import pathlib
import struct

OUT = pathlib.Path(__file__).resolve().parent / "corpus" / "virtio_fuzz"

BRING_UP, BAR_WRITE, BAR_READ, PCI_WRITE, PCI_READ, DESC, OFFER, AVAIL_IDX, AVAIL_FLAGS, \
    STORE, FRAMES, KICK, TX_CHAIN, RX_CHAIN, STATUS = range(15)
RX, TX = 0, 1
NEXT, WRITE, INDIRECT = 1, 2, 4
KICK_FLAG, RAW_HEAD = 0x4000, 0x8000


def bring_up(size_log=4):
    return struct.pack("<BB", BRING_UP, size_log)


def tx_chain(head, lens, off=0):
    return struct.pack("<BBBB", TX_CHAIN, head, len(lens) - 1, off) + b"".join(
        struct.pack("<H", n) for n in lens)


def rx_chain(head, lens, off=0):
    return struct.pack("<BBBB", RX_CHAIN, head, len(lens) - 1, off) + b"".join(
        struct.pack("<H", n) for n in lens)


def desc(q, i, aoff, length, flags, nxt, asel=0):
    # asel 0: the buffer area at kBuf + aoff; bit 7 set: the length is taken whole.
    return struct.pack("<BBBBHIBH", DESC, q, i, asel, aoff, length, flags, nxt)


def offer(q, head, kick=True):
    return struct.pack("<BBH", OFFER, q, head | (KICK_FLAG if kick else 0))


def frames(n, size):
    return struct.pack("<BBH", FRAMES, n - 1, size)


def status(s):
    return struct.pack("<BB", STATUS, s)


SEEDS = {
    # A well-formed TX frame: header + 60 bytes in one descriptor, then in three.
    "tx-chain": bring_up() + tx_chain(0, [72]) + tx_chain(4, [12, 30, 30]),
    # A frame arrives, then an RX chain (header, then the rest) is posted and kicked.
    "rx-post": bring_up() + frames(1, 60) + rx_chain(1, [12, 1514]),
    # RX buffers posted first, frames after (the device reads the TAP at once).
    "rx-first": bring_up() + rx_chain(0, [1526]) + rx_chain(1, [1526]) + frames(2, 1000),
    # A TX descriptor whose next is itself, and a two-descriptor cycle.
    "loop": bring_up() + desc(TX, 0, 0x100, 100, NEXT, 0) + offer(TX, 0)
            + desc(TX, 1, 0x200, 100, NEXT, 2) + desc(TX, 2, 0x300, 100, NEXT, 1)
            + offer(TX, 1),
    # Heads and next indices out of range, on both queues.
    "out-of-range": bring_up() + offer(TX, RAW_HEAD | 0x123) + desc(TX, 5, 0x100, 100, NEXT, 200)
                    + offer(TX, 5) + offer(RX, RAW_HEAD | 0x3FFF) + frames(1, 64),
    # Buffers in the hole, straddling RAM's end, wrapping, zero and huge lengths, INDIRECT.
    "bad-buffers": bring_up() + desc(TX, 0, 0x10, 64, 0, 0, asel=2) + offer(TX, 0)
                   + desc(TX, 1, 0x20, 64, 0, 0, asel=3) + offer(TX, 1)
                   + desc(TX, 2, 0x30, 64, 0, 0, asel=4) + offer(TX, 2)
                   + desc(TX, 3, 0x40, 0, 0, 0) + offer(TX, 3)
                   + desc(TX, 4, 0x40, 0xFFFFFFFF, 0, 0, asel=0x80) + offer(TX, 4)
                   + desc(TX, 5, 0x40, 64, INDIRECT, 0) + offer(TX, 5),
    # An RX buffer too small for the frame: dropped, the buffer given back -- with an
    # interrupt (finding 6, docs/hardening.md).
    "regression-rx-empty-return-irq": bring_up() + rx_chain(2, [20]) + frames(1, 100),
    # avail.idx jumps a whole ring ahead.
    "avail-jump": bring_up() + struct.pack("<BBH", AVAIL_IDX, TX, 1000) + struct.pack("<BB", KICK, TX),
    # ... which stops the device (DEVICE_NEEDS_RESET): a sane index again, a TX chain, RX
    # buffers and a frame change nothing until the reset; then it works again. And the
    # same from the RX side, where the device finds the jump reading a frame.
    "avail-jump-stops": bring_up() + struct.pack("<BBH", AVAIL_IDX, TX, 1000)
                        + struct.pack("<BB", KICK, TX) + struct.pack("<BBH", AVAIL_IDX, TX, 0)
                        + tx_chain(0, [72]) + rx_chain(1, [1526]) + frames(1, 60)
                        + bring_up() + tx_chain(0, [72])
                        + struct.pack("<BBH", AVAIL_IDX, RX, 300) + frames(2, 60)
                        + struct.pack("<BBH", AVAIL_IDX, RX, 0) + rx_chain(0, [1526])
                        + bring_up() + rx_chain(0, [1526]) + frames(1, 60),
    # DRIVER_OK cleared and set again without a reset, after a frame went out: ignored
    # (finding 7, docs/hardening.md).
    "regression-reactivate-without-reset": bring_up() + tx_chain(0, [72]) + status(0x0B) + status(0x0F) + tx_chain(2, [72]),
    # A queue of 256 and one of 1, with a frame each way.
    "sizes": bring_up(8) + tx_chain(7, [100]) + rx_chain(9, [1526]) + frames(1, 1514)
             + bring_up(0) + tx_chain(0, [100]) + rx_chain(0, [1526]) + frames(1, 1514),
}

# All of the above in one input: a long seed lets libFuzzer's length limit start high
# enough for deep sequences (it starts at the longest seed).
SEEDS["all-in-one"] = b"".join(SEEDS.values())

if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    for name, data in SEEDS.items():
        (OUT / name).write_bytes(data)
    print(f"{len(SEEDS)} seeds in {OUT}")
