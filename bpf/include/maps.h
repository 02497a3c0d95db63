/* SPDX-License-Identifier: GPL-2.0
 * Maps and helpers shared by every program family (proc, sched, net, oom, iter).
 * Each object defines them; the loader makes all objects share proc.bpf.o's
 * instances (bpf_map__reuse_fd), so there is one tracked set and one ring.
 */
#ifndef OPENSRE_MAPS_H
#define OPENSRE_MAPS_H

#include "include/abi.h"
#include "include/compat.h"

/* set by the loader before load (rodata) */
const volatile __u32 host_wide = 0;        /* 1: track every new process unless denied */
const volatile __u64 wakeup_bytes = 65536; /* wake user space once this much is queued */

/* per thread group: what exited threads leave behind, plus group-level counters
 * the kernel does not keep (network bytes); consumed at the leader's free */
struct acc_val {
	__u64 start_ns;
	__u64 end_ns;
	__u64 hiwater_pages;
	__u64 rss_exit_pages;
	__u64 rchar, wchar, syscr, syscw, read_bytes, write_bytes, cancelled_write_bytes;
	__u64 net_tx, net_rx;
	__u64 run_delay, blocked, sleep;
	__u64 sum_exec, utime, stime, nvcsw, nivcsw, min_flt, maj_flt; /* exited threads' own */
	__u32 threads; /* threads that passed sched_process_exit */
	__u32 flags;   /* osre_exit_flags */
	__u32 dead;    /* threads that switched out for the last time (TASK_DEAD) */
	__u32 _pad;
	struct osre_ctx ctx; /* taken when the group dies */
};

/* per thread, for tracked thread groups only: its presence is the "tracked"
 * test on the scheduler's hot path (no hash lookup per context switch) */
struct tstate {
	__u64 off_ts;     /* switched out blocked (D) at (ktime ns); 0 otherwise */
	__u64 blocked_ns; /* settled D-state time */
	__u64 start_ns;   /* the thread's start_boottime: identity in the hash fallback */
};

/* blocked time including a D sleep still in progress at `now` (for samples) */
static __always_inline __u64 tstate_blocked_now(struct tstate *s, __u64 now)
{
	__u64 b = s->blocked_ns;
	if (s->off_ts && now > s->off_ts)
		b += now - s->off_ts;
	return b;
}

/* Voluntary sleep is the rest of a thread's life: neither on CPU, nor waiting
 * for one, nor blocked. Derived, so sleeping in S costs no probe work. */
static __always_inline __u64 thread_sleep(struct task_struct *t, __u64 now, __u64 se, __u64 rd, __u64 blocked)
{
	__u64 life = now - t->start_time; /* both CLOCK_MONOTONIC */
	__u64 busy = se + rd + blocked;
	return life > busy ? life - busy : 0;
}

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, struct track_val);
} tracked SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, struct acc_val);
} acc SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct tstate);
} tstore SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, OSRE_STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 << 20); /* resized by the loader */
} events SEC(".maps");

static __always_inline void stat_inc(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&stats, &idx);
	if (v)
		(*v)++;
}

/* Batch wakeups: waking the consumer for each record costs it an irq_work and an
 * epoll round trip, several times the cost of the record itself. User space drains
 * on a timer; we only force a wakeup when the ring fills up. */
static __always_inline __u64 submit_flags(void)
{
	if (bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= wakeup_bytes)
		return BPF_RB_FORCE_WAKEUP;
	return BPF_RB_NO_WAKEUP;
}

static __always_inline void fill_hdr(struct osre_hdr *h, __u16 type, __u32 size)
{
	h->type = type;
	h->version = OSRE_ABI_VERSION;
	h->size = size;
	h->ts_ns = bpf_ktime_get_boot_ns();
}

/* Direct loads through BTF pointers (tp_btf arguments and what they point to)
 * compile to plain loads guarded by the JIT's exception table: several times
 * cheaper than a bpf_probe_read_kernel() helper call per field (BPF_CORE_READ).
 * CO-RE still relocates every field offset (vmlinux.h has preserve_access_index). */
static __always_inline void fill_ident(struct osre_ident *id, struct task_struct *t, int is_current,
				       struct track_val *tv)
{
	id->pid = t->tgid;
	id->start_ns = t->group_leader->start_boottime;
	id->ppid = tv ? tv->ppid : 0;
	id->parent_start_ns = tv ? tv->parent_start_ns : 0;
	id->uid = t->real_cred->uid.val;
	id->gid = t->real_cred->gid.val;
	if (is_current)
		bpf_get_current_comm(&id->comm, sizeof(id->comm));
	else
		bpf_probe_read_kernel_str(&id->comm, sizeof(id->comm), t->comm);
}

/* `start`: the group leader's start_boottime (the process identity) */
static __always_inline struct track_val *lookup_tracked_at(__u32 tgid, __u64 start)
{
	struct track_val *tv = bpf_map_lookup_elem(&tracked, &tgid);
	if (!tv)
		return 0;
	/* pids are reused (pid_max can be 32768): a stale entry is not ours.
	 * User space seeds roots with start_ns 0 (it cannot see the exact start):
	 * the first event from that pid pins it. */
	if (tv->start_ns == 0)
		tv->start_ns = start;
	else if (tv->start_ns != start)
		return 0;
	return tv;
}

static __always_inline struct track_val *lookup_tracked(struct task_struct *t, __u32 tgid)
{
	return lookup_tracked_at(tgid, t->group_leader->start_boottime);
}

/* the group's accumulator, created on first use; 0 if the group is not tracked */
static __always_inline struct acc_val *acc_of_at(__u32 tgid, __u64 start, int create)
{
	struct acc_val *a = bpf_map_lookup_elem(&acc, &tgid);
	if (a && a->start_ns == start)
		return a;
	if (!create)
		return 0;
	struct track_val *tv = lookup_tracked_at(tgid, start);
	if (!tv || tv->state != OSRE_TRACKED)
		return 0;
	struct acc_val zero = {.start_ns = start};
	if (bpf_map_update_elem(&acc, &tgid, &zero, BPF_ANY)) {
		stat_inc(OSRE_STAT_ACC_FULL);
		return 0;
	}
	return bpf_map_lookup_elem(&acc, &tgid);
}

static __always_inline struct acc_val *acc_of(struct task_struct *t, __u32 tgid, int create)
{
	return acc_of_at(tgid, t->group_leader->start_boottime, create);
}

/* Per-thread state (compat.h): task storage where the kernel has it (5.11+),
 * else a hash by tid, checked against the thread's start (tids are reused) and
 * deleted when the thread exits. The loader retypes `tstore` and sets
 * tstate_in_hash before load; the verifier drops the branch not taken. */
static __always_inline struct tstate *tstate_get(struct task_struct *t, int create)
{
	if (tstate_in_hash) {
		__u32 tid = t->pid;
		__u64 start = t->start_boottime;
		struct tstate *s = bpf_map_lookup_elem(&tstore, &tid);
		if (s && s->start_ns == start)
			return s;
		if (!create)
			return 0;
		struct tstate z = {.start_ns = start};
		if (bpf_map_update_elem(&tstore, &tid, &z, BPF_ANY))
			return 0;
		return bpf_map_lookup_elem(&tstore, &tid);
	}
	return bpf_task_storage_get(&tstore, t, 0, create ? BPF_LOCAL_STORAGE_GET_F_CREATE : 0);
}

static __always_inline void tstate_forget(struct task_struct *t)
{
	if (tstate_in_hash) {
		__u32 tid = t->pid;
		bpf_map_delete_elem(&tstore, &tid);
	}
}

#endif /* OPENSRE_MAPS_H */
