// SPDX-License-Identifier: GPL-2.0
/* Time tracked threads spend blocked in uninterruptible sleep (D: disk I/O and
 * similar waits), from one hook, sched_switch.
 *
 * Switch-out in D: note the time. Switch-in after it: the time since then, less
 * the run-queue wait that followed the wakeup, was spent blocked. That wait is
 * measured on the runqueue's own clock (rq->clock, updated at the start of this
 * schedule, minus the enqueue stamp sched_info.last_queued), as the kernel adds it
 * to run_delay just after this tracepoint.
 * A thread gets its state at its first D sleep (one hash lookup of `tracked`).
 * Both sides are filtered before any map access: the switch-out by prev_state,
 * the switch-in by sched_contributes_to_load, which the scheduler sets when a
 * task blocks in D and clears when it blocks otherwise. A thread sleeping in S
 * (a pipe, a socket, a child) costs two loads per switch; voluntary sleep is
 * derived from its life at exit (maps.h: thread_sleep).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "include/maps.h"

char LICENSE[] SEC("license") = "GPL";

static __always_inline void on_switch_common(struct task_struct *prev, struct task_struct *next,
					     unsigned int prev_state)
{
	if ((prev_state & OSRE_TASK_UNINTERRUPTIBLE) && !(prev_state & OSRE_TASK_NOLOAD)) {
		/* per-thread state is created at a tracked thread's first D sleep, not
		 * at every fork: most processes never block in D */
		struct tstate *s = tstate_get(prev, 0);
		if (!s) {
			struct track_val *tv = lookup_tracked(prev, prev->tgid);
			if (tv && tv->state == OSRE_TRACKED)
				s = tstate_get(prev, 1);
		}
		if (s)
			s->off_ts = bpf_ktime_get_ns();
	}
	if (!BPF_CORE_READ_BITFIELD(next, sched_contributes_to_load))
		return;
	struct tstate *s = tstate_get(next, 0);
	if (!s || !s->off_ts)
		return;
	__u64 el = bpf_ktime_get_ns() - s->off_ts;
	__u64 rq_wait = 0;
	__u64 queued = next->sched_info.last_queued;
	/* the runqueue it was enqueued on, and is now switched in on (its cfs_rq's
	 * rq: no per-CPU symbol needed, which /proc/kallsyms may not list) */
	__u64 clock = BPF_CORE_READ(next, se.cfs_rq, rq, clock);
	if (queued && clock > queued)
		rq_wait = clock - queued;
	s->blocked_ns += el > rq_wait ? el - rq_wait : 0;
	s->off_ts = 0;
}

/* 5.18+: the tracepoint passes the state the task switched out in */
SEC("tp_btf/sched_switch")
int BPF_PROG(on_switch, bool preempt, struct task_struct *prev, struct task_struct *next,
	     unsigned int prev_state)
{
	on_switch_common(prev, next, prev_state);
	return 0;
}

/* before 5.18 (compat.h): three arguments; the state is read from the task,
 * as the tracepoint itself did then. The loader keeps one of the two. */
SEC("tp_btf/sched_switch")
int BPF_PROG(on_switch_state, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	on_switch_common(prev, next, task_state(prev));
	return 0;
}
