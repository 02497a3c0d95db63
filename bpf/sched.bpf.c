// SPDX-License-Identifier: GPL-2.0
/* Off-CPU time of tracked threads, split by why they were off CPU.
 *
 * At switch-out we note the time and the state; at wakeup the time since then
 * was spent sleeping: uninterruptible (D: I/O and similar) or interruptible (S).
 * What follows the wakeup until the next switch-in is run-queue wait, which the
 * kernel already keeps per thread (sched_info.run_delay): no hook needed for it.
 * Tracked threads carry task-local storage, so an untracked task costs one
 * storage lookup per switch, no hash lookup.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "include/maps.h"

char LICENSE[] SEC("license") = "GPL";

/* include/linux/sched.h task states; stable ABI of the sched_switch tracepoint */
#define TASK_INTERRUPTIBLE 0x1
#define TASK_UNINTERRUPTIBLE 0x2
#define TASK_NOLOAD 0x400 /* TASK_IDLE: kernel threads idling in D, not waiting on I/O */

SEC("tp_btf/sched_switch")
int BPF_PROG(on_switch, bool preempt, struct task_struct *prev, struct task_struct *next,
	     unsigned int prev_state)
{
	struct tstate *s = bpf_task_storage_get(&tstore, prev, 0, 0);
	if (s && (prev_state & (TASK_INTERRUPTIBLE | TASK_UNINTERRUPTIBLE))) {
		s->off_ts = bpf_ktime_get_ns();
		s->off_state = prev_state;
	}
	return 0;
}

SEC("tp_btf/sched_wakeup")
int BPF_PROG(on_wakeup, struct task_struct *p)
{
	struct tstate *s = bpf_task_storage_get(&tstore, p, 0, 0);
	if (!s || !s->off_ts)
		return 0;
	__u64 d = bpf_ktime_get_ns() - s->off_ts;
	if ((s->off_state & TASK_UNINTERRUPTIBLE) && !(s->off_state & TASK_NOLOAD))
		s->blocked_ns += d;
	else
		s->sleep_ns += d;
	s->off_ts = 0;
	return 0;
}
