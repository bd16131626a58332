// SPDX-License-Identifier: GPL-2.0
/*
 * guest/linux/tools/labnet.c — the test initramfs's network helper (static, no libc
 * beyond what glibc links in statically; make_initramfs.sh builds it into /bin/labnet).
 * busybox has no ethtool, and its nc ends a connection as soon as either side's input
 * ends, which cannot move a known number of bytes both ways between two guests.
 *
 *   labnet stats IFACE              `ethtool -S IFACE` through the SIOCETHTOOL ioctl:
 *                                   one line "labnet-stat IFACE NAME VALUE" per counter
 *   labnet tcp-recv PORT BYTES      accept one connection on PORT, read to EOF, check
 *                                   every byte (byte i = i % 251), then close
 *   labnet tcp-send ADDR PORT BYTES connect, send BYTES of that pattern, shut down the
 *                                   write side and wait for the receiver's close
 *   labnet raw-send IFACE COUNT SIZE
 *                                   COUNT broadcast Ethernet frames of SIZE bytes
 *                                   (EtherType 0x88B5) through an AF_PACKET socket, as
 *                                   fast as the interface takes them: a send refused
 *                                   (EAGAIN: the socket's buffer is full of frames the
 *                                   qdisc holds for a stopped queue; ENOBUFS: the qdisc
 *                                   is full) is retried after 1 ms, so exactly
 *                                   COUNT frames reach the driver; 10 s without one
 *                                   accepted send (a queue that never wakes) fails
 *   labnet pktgen-recv COUNT        an AF_PACKET socket for the lnic pktgen's ethertype
 *                                   (every interface, so it can open before the driver
 *                                   is loaded): COUNT frames, each checked against
 *                                   guest/abi/lnic.h's lnic_pktgen_header (ethertype,
 *                                   magic, seq = the previous + 1 from 0, one pattern
 *                                   and length for all) and every payload byte (byte i
 *                                   = pattern + i); gives up after 120 s without a frame.
 *                                   Prints "labnet: pktgen-recv ready" once it listens
 *   labnet drain                    waits until the console has sent everything written
 *                                   to it (tcdrain: the tty's buffer empty and the
 *                                   UART's transmitter idle), so a line printed just
 *                                   before the VM ends through its exit port is not
 *                                   lost in the guest's serial buffer
 * Each TCP side prints one line "labnet: sent|received N bytes in S s (M Mbit/s)";
 * raw-send "labnet: sent N frames of S bytes in T s, R retries"; pktgen-recv "labnet:
 * pktgen-recv N frames (seq 0..N-1, LEN bytes, pattern P) as generated" or, on stderr,
 * the first frame that was not.
 * Exit status: 0 done and (tcp-recv, pktgen-recv) everything as expected; 1 a system call
 * failed or the data was wrong (one line on stderr says which); 2 usage.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/ethtool.h>
#include <linux/if_packet.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <sys/time.h>
#include <termios.h>
#include <unistd.h>

#include "../../abi/lnic.h"

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int fail(const char *what)
{
	fprintf(stderr, "labnet: %s: %s\n", what, strerror(errno));
	return 1;
}

static int ethtool(int fd, const char *iface, void *cmd)
{
	struct ifreq ifr;

	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", iface);
	ifr.ifr_data = cmd;
	return ioctl(fd, SIOCETHTOOL, &ifr);
}

static int stats(const char *iface)
{
	struct {
		struct ethtool_sset_info hdr;
		uint32_t count;
	} sset = { .hdr = { .cmd = ETHTOOL_GSSET_INFO, .sset_mask = 1ull << ETH_SS_STATS } };
	struct ethtool_gstrings *names;
	struct ethtool_stats *values;
	uint32_t n, i;
	int fd = socket(AF_INET, SOCK_DGRAM, 0);

	if (fd < 0)
		return fail("socket");
	if (ethtool(fd, iface, &sset) != 0)
		return fail("ETHTOOL_GSSET_INFO");
	n = sset.hdr.sset_mask ? sset.count : 0;
	if (n == 0) {
		fprintf(stderr, "labnet: %s has no ethtool statistics\n", iface);
		return 1;
	}
	names = calloc(1, sizeof(*names) + (size_t)n * ETH_GSTRING_LEN);
	values = calloc(1, sizeof(*values) + (size_t)n * sizeof(uint64_t));
	if (!names || !values)
		return fail("calloc");
	names->cmd = ETHTOOL_GSTRINGS;
	names->string_set = ETH_SS_STATS;
	names->len = n;
	values->cmd = ETHTOOL_GSTATS;
	values->n_stats = n;
	if (ethtool(fd, iface, names) != 0)
		return fail("ETHTOOL_GSTRINGS");
	if (ethtool(fd, iface, values) != 0)
		return fail("ETHTOOL_GSTATS");
	for (i = 0; i < n; ++i)
		printf("labnet-stat %s %.*s %llu\n", iface, ETH_GSTRING_LEN,
		       (const char *)names->data + (size_t)i * ETH_GSTRING_LEN,
		       (unsigned long long)values->data[i]);
	close(fd);
	return 0;
}

static void report(const char *verb, unsigned long long bytes, double t0)
{
	double s = now() - t0;

	printf("labnet: %s %llu bytes in %.3f s (%.2f Mbit/s)\n", verb, bytes, s,
	       s > 0 ? (double)bytes * 8 / s / 1e6 : 0.0);
}

static int tcp_recv(int port, unsigned long long want)
{
	struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons(port) };
	unsigned long long got = 0, bad = 0;
	static unsigned char buf[65536];
	int one = 1, ls, fd;
	double t0;
	ssize_t r;

	ls = socket(AF_INET, SOCK_STREAM, 0);
	if (ls < 0 || setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0)
		return fail("socket");
	if (bind(ls, (struct sockaddr *)&addr, sizeof(addr)) != 0 || listen(ls, 1) != 0)
		return fail("bind/listen");
	fd = accept(ls, NULL, NULL);
	if (fd < 0)
		return fail("accept");
	t0 = now();
	while ((r = read(fd, buf, sizeof(buf))) > 0) {
		for (ssize_t i = 0; i < r; ++i)
			bad += buf[i] != (unsigned char)((got + (unsigned long long)i) % 251);
		got += (unsigned long long)r;
	}
	if (r < 0)
		return fail("read");
	report("received", got, t0);
	close(fd);
	close(ls);
	if (got != want || bad != 0) {
		fprintf(stderr, "labnet: received %llu bytes of %llu, %llu not as sent\n", got,
			want, bad);
		return 1;
	}
	return 0;
}

static int tcp_send(const char *ip, int port, unsigned long long bytes)
{
	struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons(port) };
	static unsigned char buf[65536 + 251];
	unsigned long long sent = 0;
	double t0;
	int fd;

	if (inet_pton(AF_INET, ip, &addr.sin_addr) != 1) {
		fprintf(stderr, "labnet: %s is not an IPv4 address\n", ip);
		return 2;
	}
	for (size_t i = 0; i < sizeof(buf); ++i)
		buf[i] = (unsigned char)(i % 251);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		return fail("socket");
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0)
		return fail("connect");
	t0 = now();
	while (sent < bytes) {
		size_t n = bytes - sent < 65536 ? (size_t)(bytes - sent) : 65536;
		ssize_t w = write(fd, buf + sent % 251, n);

		if (w <= 0)
			return fail("write");
		sent += (unsigned long long)w;
	}
	/* The receiver closes once it has read everything: wait for that. */
	if (shutdown(fd, SHUT_WR) != 0)
		return fail("shutdown");
	while (read(fd, buf, sizeof(buf)) > 0)
		;
	report("sent", sent, t0);
	close(fd);
	return 0;
}

static int raw_send(const char *iface, unsigned long long count, int size)
{
	struct sockaddr_ll to;
	unsigned char frame[1514];
	unsigned long long sent = 0, retries = 0;
	double t0, progress;
	int fd, i;

	if (size < 60 || size > (int)sizeof(frame)) {
		fprintf(stderr, "labnet: raw-send: SIZE must be 60..1514\n");
		return 2;
	}
	fd = socket(AF_PACKET, SOCK_RAW, 0);
	if (fd < 0)
		return fail("AF_PACKET socket");
	memset(&to, 0, sizeof(to));
	to.sll_family = AF_PACKET;
	to.sll_ifindex = (int)if_nametoindex(iface);
	if (to.sll_ifindex == 0)
		return fail(iface);
	memset(frame, 0xff, 6); /* broadcast; the source stays 0: not a frame anyone answers */
	memset(frame + 6, 0, 6);
	frame[12] = 0x88;
	frame[13] = 0xB5;
	for (i = 14; i < size; ++i)
		frame[i] = (unsigned char)(i * 7 % 251);
	t0 = now();
	progress = t0;
	while (sent < count) {
		memcpy(frame + 14, &sent, sizeof(sent));
		if (sendto(fd, frame, (size_t)size, MSG_DONTWAIT, (struct sockaddr *)&to,
			   sizeof(to)) == size) {
			++sent;
			progress = now();
		} else if (errno == ENOBUFS || errno == EAGAIN) {
			struct timespec ms = { 0, 1000000 };

			if (now() - progress > 10) {
				fprintf(stderr,
					"labnet: raw-send: %s took no frame for 10 s after %llu of %llu "
					"(its queue stopped and never woke)\n",
					iface, sent, count);
				return 1;
			}
			++retries;
			nanosleep(&ms, NULL);
		} else if (errno != EINTR) {
			return fail("sendto");
		}
	}
	printf("labnet: sent %llu frames of %d bytes in %.3f s, %llu retries\n", sent, size,
	       now() - t0, retries);
	close(fd);
	return 0;
}

/* One frame of the lnic's pktgen: NULL if it is as generated (frame `index` of the run,
 * with the first frame's length and pattern), else what is wrong with it. */
static const char *pktgen_check(const unsigned char *f, size_t len, unsigned long long index,
				size_t want_len, unsigned pattern)
{
	struct lnic_pktgen_header h;

	if (len < sizeof(h))
		return "shorter than the pktgen header";
	memcpy(&h, f, sizeof(h));
	if (f[12] != (LNIC_PKTGEN_ETHERTYPE >> 8) || f[13] != (LNIC_PKTGEN_ETHERTYPE & 0xFF))
		return "not the pktgen ethertype";
	if (h.magic != LNIC_PKTGEN_MAGIC)
		return "bad magic";
	if (h.seq != index)
		return "seq out of order (a frame lost, repeated or reordered)";
	if (len != want_len || h.pattern != pattern)
		return "length or pattern differs from the first frame's";
	for (size_t i = sizeof(h); i < len; ++i) {
		if (f[i] != (unsigned char)(pattern + (i - sizeof(h))))
			return "payload byte not as generated";
	}
	return NULL;
}

static int pktgen_recv(unsigned long long count)
{
	static unsigned char buf[65536];
	struct timeval timeout = { .tv_sec = 120 };
	int rcvbuf = 8 << 20;
	size_t want_len = 0;
	unsigned pattern = 0;
	unsigned long long n;
	int fd;

	fd = socket(AF_PACKET, SOCK_RAW, htons(LNIC_PKTGEN_ETHERTYPE));
	if (fd < 0)
		return fail("socket(AF_PACKET)");
	/* Room for a burst the scheduler does not let this process read at once. */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf)) != 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout)) != 0)
		return fail("setsockopt");
	/* The caller starts the traffic once the socket is open. */
	printf("labnet: pktgen-recv ready\n");
	fflush(stdout);
	for (n = 0; n < count; ++n) {
		ssize_t r = recv(fd, buf, sizeof(buf), 0);
		const char *why;

		if (r < 0) {
			fprintf(stderr, "labnet: pktgen-recv: after %llu of %llu frames: ", n,
				count);
			return fail("recv");
		}
		if (n == 0 && r >= (ssize_t)sizeof(struct lnic_pktgen_header)) {
			want_len = (size_t)r;
			pattern = buf[offsetof(struct lnic_pktgen_header, pattern)];
		}
		why = pktgen_check(buf, (size_t)r, n, want_len, pattern);
		if (why != NULL) {
			struct tpacket_stats st;
			socklen_t sl = sizeof(st);
			uint64_t seq = 0;

			if (r >= (ssize_t)sizeof(struct lnic_pktgen_header))
				memcpy(&seq, buf + offsetof(struct lnic_pktgen_header, seq),
				       sizeof(seq));
			memset(&st, 0, sizeof(st));
			(void)getsockopt(fd, SOL_PACKET, PACKET_STATISTICS, &st, &sl);
			fprintf(stderr,
				"labnet: pktgen-recv: frame %llu (%zd bytes, seq %llu): %s (socket drops %u)\n",
				n, r, (unsigned long long)seq, why, st.tp_drops);
			return 1;
		}
	}
	printf("labnet: pktgen-recv %llu frames (seq 0..%llu, %zu bytes, pattern %u) as generated\n",
	       count, count - 1, want_len, pattern);
	close(fd);
	return 0;
}

static int drain(void)
{
	const int fd = open("/dev/console", O_WRONLY | O_NOCTTY);

	if (fd < 0 || tcdrain(fd) != 0) {
		perror("labnet: drain /dev/console");
		return 1;
	}
	close(fd);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[1], "drain") == 0)
		return drain();
	if (argc == 3 && strcmp(argv[1], "stats") == 0)
		return stats(argv[2]);
	if (argc == 4 && strcmp(argv[1], "tcp-recv") == 0)
		return tcp_recv(atoi(argv[2]), strtoull(argv[3], NULL, 10));
	if (argc == 5 && strcmp(argv[1], "tcp-send") == 0)
		return tcp_send(argv[2], atoi(argv[3]), strtoull(argv[4], NULL, 10));
	if (argc == 5 && strcmp(argv[1], "raw-send") == 0)
		return raw_send(argv[2], strtoull(argv[3], NULL, 10), atoi(argv[4]));
	if (argc == 3 && strcmp(argv[1], "pktgen-recv") == 0)
		return pktgen_recv(strtoull(argv[2], NULL, 10));
	fprintf(stderr, "usage: labnet stats IFACE | tcp-recv PORT BYTES | tcp-send ADDR PORT BYTES"
			" | raw-send IFACE COUNT SIZE | pktgen-recv COUNT | drain\n");
	return 2;
}
