// SPDX-License-Identifier: GPL-2.0
/* Network: payload bytes per tracked process, and TCP connection metadata.
 *
 * sock_send_length/sock_recv_length fire in sock_sendmsg/sock_recvmsg, in the
 * context of the process doing the I/O, with the byte count: per-process bytes
 * without per-packet hooks (net_dev_xmit/netif_receive_skb run in softirq and
 * cannot be attributed). Only inet sockets count (unix sockets are local IPC).
 * Before 6.3 those tracepoints do not exist: the fexit programs on the inet
 * proto ops see the same calls and return values (compat.h); the loader keeps
 * one of the two pairs.
 * A connection's owner is recorded in process context only: connect() sets
 * SYN_SENT in the connecting process; every later transition (ESTABLISHED
 * included, when the SYN-ACK arrives) may run in softirq, where `current` is
 * whichever task the interrupt hit. An accepted socket's owner is whoever
 * first moves bytes through it (sendmsg/recvmsg run in the caller).
 * Addresses and sizes only: payloads are never read.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "include/maps.h"

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64); /* struct sock * */
	__type(value, struct conn_val);
} conns SEC(".maps");

static __always_inline int inet_family(struct sock *sk)
{
	__u16 f = sk->__sk_common.skc_family;
	return f == OSRE_AF_INET || f == OSRE_AF_INET6;
}

static __always_inline void count(struct sock *sk, int ret, int tx)
{
	if (ret <= 0 || !inet_family(sk))
		return;
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct acc_val *a = acc_of_at(tgid, current_start(), 1);
	if (!a)
		return;
	if (tx)
		__sync_fetch_and_add(&a->net_tx, ret);
	else
		__sync_fetch_and_add(&a->net_rx, ret);
	__u64 key = (__u64)sk;
	struct conn_val *c = bpf_map_lookup_elem(&conns, &key);
	if (c && !c->pid) {
		c->pid = tgid;
		c->start_ns = a->start_ns;
	}
}

SEC("tp_btf/sock_send_length")
int BPF_PROG(on_send, struct sock *sk, int ret, int flags)
{
	count(sk, ret, 1);
	return 0;
}

SEC("tp_btf/sock_recv_length")
int BPF_PROG(on_recv, struct sock *sk, int ret, int flags)
{
	count(sk, ret, 0);
	return 0;
}

/* before 6.3: what sock_sendmsg_nosec()/sock_recvmsg_nosec() called, and returned */
SEC("fexit/inet_sendmsg")
int BPF_PROG(on_inet_send, struct socket *sock, struct msghdr *msg, size_t size, int ret)
{
	count(sock->sk, ret, 1);
	return 0;
}

SEC("fexit/inet6_sendmsg")
int BPF_PROG(on_inet6_send, struct socket *sock, struct msghdr *msg, size_t size, int ret)
{
	count(sock->sk, ret, 1);
	return 0;
}

SEC("fexit/inet_recvmsg")
int BPF_PROG(on_inet_recv, struct socket *sock, struct msghdr *msg, size_t size, int flags, int ret)
{
	count(sock->sk, ret, 0);
	return 0;
}

SEC("fexit/inet6_recvmsg")
int BPF_PROG(on_inet6_recv, struct socket *sock, struct msghdr *msg, size_t size, int flags, int ret)
{
	count(sock->sk, ret, 0);
	return 0;
}

static __always_inline void fill_addrs(struct conn_val *c, const struct sock *sk)
{
	c->family = BPF_CORE_READ(sk, __sk_common.skc_family);
	c->sport = BPF_CORE_READ(sk, __sk_common.skc_num);
	c->dport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	if (c->family == OSRE_AF_INET) {
		__be32 s = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);
		__be32 d = BPF_CORE_READ(sk, __sk_common.skc_daddr);
		__builtin_memcpy(c->saddr, &s, 4);
		__builtin_memcpy(c->daddr, &d, 4);
	} else {
		BPF_CORE_READ_INTO(&c->saddr, sk, __sk_common.skc_v6_rcv_saddr);
		BPF_CORE_READ_INTO(&c->daddr, sk, __sk_common.skc_v6_daddr);
	}
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(on_state, const struct sock *sk, const int oldstate, const int newstate)
{
	if (BPF_CORE_READ(sk, sk_protocol) != OSRE_IPPROTO_TCP)
		return 0;
	__u64 key = (__u64)sk;

	if (newstate == TCP_SYN_SENT) {
		/* inside connect(): the connecting process is current (the source
		 * port is not chosen yet: addresses are read at ESTABLISHED) */
		__u32 tgid = bpf_get_current_pid_tgid() >> 32;
		struct track_val *tv = lookup_tracked_at(tgid, current_start());
		if (!tv || tv->state != OSRE_TRACKED)
			return 0;
		struct conn_val c = {.pid = tgid, .start_ns = tv->start_ns, .flags = OSRE_CONN_ACTIVE};
		bpf_map_update_elem(&conns, &key, &c, BPF_ANY);
		return 0;
	}
	if (newstate == TCP_ESTABLISHED) {
		/* possibly softirq: never look at current here */
		struct conn_val *c = bpf_map_lookup_elem(&conns, &key);
		if (c) {
			c->open_ns = bpf_ktime_get_boot_ns();
			fill_addrs(c, sk);
			return 0;
		}
		struct conn_val n = {.open_ns = bpf_ktime_get_boot_ns()};
		if (oldstate == TCP_SYN_SENT)
			n.flags = OSRE_CONN_ACTIVE; /* an untracked process's connect() */
		fill_addrs(&n, sk);
		bpf_map_update_elem(&conns, &key, &n, BPF_ANY);
		return 0;
	}
	if (newstate != TCP_CLOSE)
		return 0;
	struct conn_val *c = bpf_map_lookup_elem(&conns, &key);
	if (!c)
		return 0;
	if (c->pid && c->open_ns) { /* a connect() that never got through is no connection */
		struct osre_conn_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
		if (!e) {
			stat_inc(OSRE_STAT_DROP_CONN);
		} else {
			fill_hdr(&e->hdr, OSRE_EV_CONN, sizeof(*e));
			e->pid = c->pid;
			e->flags = c->flags;
			e->start_ns = c->start_ns;
			e->open_ns = c->open_ns;
			e->close_ns = bpf_ktime_get_boot_ns();
			const struct tcp_sock *tp = (const struct tcp_sock *)sk;
			e->bytes_sent = BPF_CORE_READ(tp, bytes_acked);
			e->bytes_received = BPF_CORE_READ(tp, bytes_received);
			e->family = c->family;
			e->sport = c->sport;
			e->dport = c->dport;
			e->_pad = 0;
			__builtin_memcpy(e->saddr, c->saddr, 16);
			__builtin_memcpy(e->daddr, c->daddr, 16);
			stat_inc(OSRE_STAT_EVENTS);
			bpf_ringbuf_submit(e, submit_flags());
		}
	}
	bpf_map_delete_elem(&conns, &key);
	return 0;
}
