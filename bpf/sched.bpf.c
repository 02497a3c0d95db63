// SPDX-License-Identifier: GPL-2.0
/* Off-CPU time of tracked threads, split by why they were off CPU.
 *
 * One hook, sched_switch, and only for the thread switching out. When a tracked
 * thread goes to sleep we note the time, its state, and its on-CPU and run-queue
 * totals (se.sum_exec_runtime, sched_info.run_delay, both kept by the kernel).
 * At its next switch-out, whatever the reason, the time elapsed minus what it ran
 * minus what it waited runnable is what it slept: blocked (D, I/O and similar) or
 * voluntary (S). Every switch-out settles, so exactly one run-queue wait — the one
 * that ended the sleep — falls in between.
 * No switch-in or wakeup hook: those are as frequent as switches and would double
 * the cost. Tracked threads carry task-local storage, so an untracked task costs
 * one storage lookup per switch and no hash lookup.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "include/maps.h"

char LICENSE[] SEC("license") = "GPL";

#define TASK_INTERRUPTIBLE 0x1
#define PF_KTHREAD 0x00200000 /* include/linux/sched.h */

SEC("tp_btf/sched_switch")
int BPF_PROG(on_switch, bool preempt, struct task_struct *prev, struct task_struct *next,
	     unsigned int prev_state)
{
	/* kernel threads (the idle task half of all switches on a quiet CPU) are
	 * never tracked: one load instead of a storage lookup */
	if (prev->flags & PF_KTHREAD)
		return 0;
	struct tstate *s = bpf_task_storage_get(&tstore, prev, 0, 0);
	if (!s)
		return 0;
	int asleep = prev_state & (TASK_INTERRUPTIBLE | TASK_UNINTERRUPTIBLE);
	if (!s->off_ts && !asleep)
		return 0; /* preempted with nothing to settle: the common case under load */
	__u64 now = bpf_ktime_get_ns();
	/* put_prev_task() already brought both counters up to date for prev */
	__u64 se = prev->se.sum_exec_runtime;
	__u64 rd = prev->sched_info.run_delay;
	tstate_settle(s, now, se, rd);
	if (asleep) {
		s->off_ts = now;
		s->se0 = se;
		s->rd0 = rd;
		s->off_state = prev_state;
	}
	return 0;
}
