/* blast: replay a classic pcap onto an interface as fast as asked, for bench/sensor_rate.py.
 *
 *   blast IFACE FILE.pcap PPS      (PPS 0 = as fast as it can)
 *
 * Why not only tcpreplay: the distribution's tcpreplay is a debug build that sends one packet per
 * send() through the qdisc; on this 2-core machine it tops out near 100 k packets/s, far below what
 * the sensor takes.  blast reads the file into memory, then sends batches of BATCH packets with one
 * sendmmsg() on an AF_PACKET socket that bypasses the qdisc (PACKET_QDISC_BYPASS), paced per batch
 * against the wall clock.  A packet the kernel refuses (ENOBUFS) is sent again, never skipped, so
 * "sent" is exactly the file's packets.  Prints: packets sent, seconds, packets/s, and the CPU seconds
 * blast used while sending (user + system: the kernel's work into the veth, and the receiving side's too
 * unless the receiving veth has its own NAPI thread, bench/xdp_pass.c; paced, it includes the spinning).
 * Bench tool only: it transmits, so it runs in the replay namespace, never in the sensor.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>

#define BATCH 64   /* packets per sendmmsg: the syscall cost is shared, pacing stays fine-grained */

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static double cpu_now(void) {   /* this process's user + system CPU seconds */
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: blast IFACE FILE.pcap PPS\n");
        return 2;
    }
    double pps = atof(argv[3]);
    FILE *f = fopen(argv[2], "rb");
    if (!f) { perror(argv[2]); return 2; }
    struct stat st;
    fstat(fileno(f), &st);
    unsigned char *d = malloc(st.st_size);
    if (!d || fread(d, 1, st.st_size, f) != (size_t)st.st_size) { perror("read"); return 2; }
    fclose(f);
    uint32_t magic;
    memcpy(&magic, d, 4);
    if (magic != 0xA1B2C3D4 && magic != 0xA1B23C4D) { fprintf(stderr, "not a little-endian pcap\n"); return 2; }
    size_t n = 0, cap = 1 << 20, pos = 24;
    struct iovec *iov = malloc(cap * sizeof *iov);
    while (pos + 16 <= (size_t)st.st_size) {
        uint32_t incl;
        memcpy(&incl, d + pos + 8, 4);
        if (pos + 16 + incl > (size_t)st.st_size) break;
        if (n == cap) { cap *= 2; iov = realloc(iov, cap * sizeof *iov); }
        iov[n].iov_base = d + pos + 16;
        iov[n].iov_len = incl;
        n++;
        pos += 16 + incl;
    }
    int s = socket(AF_PACKET, SOCK_RAW, 0);          /* protocol 0: this socket receives nothing */
    if (s < 0) { perror("socket"); return 2; }
    int one = 1;
    setsockopt(s, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof one);
    int sndbuf = 64 << 20;
    setsockopt(s, SOL_SOCKET, SO_SNDBUFFORCE, &sndbuf, sizeof sndbuf);
    struct sockaddr_ll ll = {0};
    ll.sll_family = AF_PACKET;
    ll.sll_ifindex = if_nametoindex(argv[1]);
    if (!ll.sll_ifindex) { perror(argv[1]); return 2; }
    if (bind(s, (struct sockaddr *)&ll, sizeof ll) < 0) { perror("bind"); return 2; }
    struct mmsghdr m[BATCH];
    size_t i = 0;
    unsigned long retries = 0;
    double cpu0 = cpu_now(), t0 = now();
    while (i < n) {
        int k = n - i < BATCH ? (int)(n - i) : BATCH;
        if (pps > 0) {
            double due = t0 + i / pps;
            while (now() < due) { }
        }
        memset(m, 0, sizeof m);
        for (int j = 0; j < k; j++) { m[j].msg_hdr.msg_iov = &iov[i + j]; m[j].msg_hdr.msg_iovlen = 1; }
        int r = sendmmsg(s, m, k, 0);
        if (r < 0) {
            if (errno == ENOBUFS || errno == EAGAIN || errno == EINTR) { retries++; continue; }
            perror("sendmmsg");
            return 1;
        }
        i += r;
    }
    double t = now() - t0;
    double cpu = cpu_now() - cpu0;
    printf("sent %zu packets in %.3f s: %.0f packets/s (%lu retries), cpu %.2f s\n", n, t, n / t, retries, cpu);
    return 0;
}
