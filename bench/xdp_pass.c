/* xdp_pass: attach a no-op XDP program (it returns XDP_PASS) to IFACE, for bench/sensor_rate.py.
 *
 *   xdp_pass IFACE      (run inside the namespace that holds IFACE)
 *
 * Why: a veth without XDP hands a packet to its peer with netif_rx() on the *sending* CPU, so
 * everything the receiving side does (the packet socket's copy into the sensor's ring included) is
 * charged to the sender's core.  With an XDP program attached the receiving veth gets its own NAPI
 * instance; with /sys/class/net/IFACE/threaded set to 1 that NAPI runs in a kernel thread
 * (napi/IFACE-ID) that can be pinned to any CPU -- like a NIC's receive interrupt.  The program
 * passes every packet unchanged, and GRO is turned off on IFACE (some kernels turn it on with XDP):
 * the sensor sees each packet as sent, where GRO would merge TCP segments.  The program is loaded with
 * the bpf() syscall (two instructions, no compiler or libbpf needed) and attached in native mode over
 * rtnetlink; it goes away with the interface.  Bench tool only.
 */
#include <linux/bpf.h>
#include <linux/ethtool.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <linux/sockios.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

static struct rtattr *put(struct rtattr *at, unsigned short type, const void *data, unsigned short len) {
    at->rta_type = type;
    at->rta_len = RTA_LENGTH(len);
    memcpy(RTA_DATA(at), data, len);
    return (struct rtattr *)((char *)at + RTA_ALIGN(at->rta_len));
}

static int gro(const char *iface, __u32 cmd, __u32 value) {   /* ETHTOOL_GGRO / ETHTOOL_SGRO; -1 on error */
    struct ethtool_value ev = { .cmd = cmd, .data = value };
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", iface);
    ifr.ifr_data = (void *)&ev;
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    int r = s < 0 ? -1 : ioctl(s, SIOCETHTOOL, &ifr);
    if (s >= 0) close(s);
    return r < 0 ? -1 : (int)ev.data;
}

int main(int argc, char **argv) {
    if (argc != 2) { fprintf(stderr, "usage: xdp_pass IFACE\n"); return 2; }
    int ifindex = if_nametoindex(argv[1]);
    if (!ifindex) { perror(argv[1]); return 2; }
    struct bpf_insn prog[] = {
        { .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = XDP_PASS },   /* r0 = XDP_PASS */
        { .code = BPF_JMP | BPF_EXIT },
    };
    union bpf_attr a;
    memset(&a, 0, sizeof a);
    a.prog_type = BPF_PROG_TYPE_XDP;
    a.insns = (unsigned long)prog;
    a.insn_cnt = 2;
    a.license = (unsigned long)"GPL";
    a.prog_flags = BPF_F_XDP_HAS_FRAGS;   /* takes multi-buffer frames: any MTU (the bench's veth has 9000) */
    int fd = syscall(SYS_bpf, BPF_PROG_LOAD, &a, sizeof a);
    if (fd < 0) { perror("bpf(BPF_PROG_LOAD)"); return 1; }
    struct { struct nlmsghdr nh; struct ifinfomsg ifi; char attrs[64]; } req;
    memset(&req, 0, sizeof req);
    req.nh.nlmsg_type = RTM_SETLINK;
    req.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
    req.ifi.ifi_family = AF_UNSPEC;
    req.ifi.ifi_index = ifindex;
    struct rtattr *xdp = (struct rtattr *)req.attrs;   /* IFLA_XDP { IFLA_XDP_FD, IFLA_XDP_FLAGS } */
    __u32 flags = XDP_FLAGS_DRV_MODE;
    struct rtattr *end = put(put((struct rtattr *)RTA_DATA(xdp), IFLA_XDP_FD, &fd, sizeof fd),
                             IFLA_XDP_FLAGS, &flags, sizeof flags);
    xdp->rta_type = IFLA_XDP | NLA_F_NESTED;
    xdp->rta_len = (char *)end - (char *)xdp;
    req.nh.nlmsg_len = NLMSG_LENGTH(sizeof req.ifi) + xdp->rta_len;
    int s = socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE);
    if (s < 0 || send(s, &req, req.nh.nlmsg_len, 0) < 0) { perror("rtnetlink"); return 1; }
    char buf[4096];
    struct nlmsghdr *h = (struct nlmsghdr *)buf;
    if (recv(s, buf, sizeof buf, 0) < (int)NLMSG_LENGTH(sizeof(struct nlmsgerr)) || h->nlmsg_type != NLMSG_ERROR) {
        fprintf(stderr, "rtnetlink: no answer\n");
        return 1;
    }
    int err = ((struct nlmsgerr *)NLMSG_DATA(h))->error;
    if (err) { fprintf(stderr, "attach XDP to %s: %s\n", argv[1], strerror(-err)); return 1; }
    if (gro(argv[1], ETHTOOL_SGRO, 0) < 0 || gro(argv[1], ETHTOOL_GGRO, 0) != 0) {
        perror("turn GRO off");
        return 1;
    }
    return 0;
}
