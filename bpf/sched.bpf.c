// SPDX-License-Identifier: GPL-2.0
/* Time tracked threads spend blocked in uninterruptible sleep (D: disk I/O and
 * similar waits), from one hook, sched_switch, on the thread switching out.
 *
 * When a tracked thread switches out in D we note the time and its on-CPU and
 * run-queue totals (se.sum_exec_runtime, sched_info.run_delay, both kept by the
 * kernel). At its next switch-out, whatever the reason, the time elapsed minus
 * what it ran minus what it waited runnable is what it was blocked. Every
 * switch-out after a D sleep settles it, so exactly one run-queue wait — the one
 * that ended the sleep — falls in between.
 * Voluntary sleep (S) needs nothing here: it is the rest of the thread's life,
 * computed at exit and at each sample (maps.h: thread_sleep). So a thread that
 * sleeps in S — a pipe, a socket, a child — costs one storage lookup per switch.
 * No switch-in or wakeup hook: they are as frequent as switches.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "include/maps.h"

char LICENSE[] SEC("license") = "GPL";

#define PF_KTHREAD 0x00200000 /* include/linux/sched.h */

SEC("tp_btf/sched_switch")
int BPF_PROG(on_switch, bool preempt, struct task_struct *prev, struct task_struct *next,
	     unsigned int prev_state)
{
	/* kernel threads (the idle task half of all switches on a quiet CPU) are
	 * never tracked: one load instead of a storage lookup */
	if (prev->flags & PF_KTHREAD)
		return 0;
	int blocked = (prev_state & TASK_UNINTERRUPTIBLE) && !(prev_state & TASK_NOLOAD);
	struct tstate *s = bpf_task_storage_get(&tstore, prev, 0, 0);
	if (!s || (!s->off_ts && !blocked))
		return 0;
	/* put_prev_task() already brought both counters up to date for prev */
	__u64 now = bpf_ktime_get_ns();
	__u64 se = prev->se.sum_exec_runtime;
	__u64 rd = prev->sched_info.run_delay;
	tstate_settle(s, now, se, rd);
	if (blocked) {
		s->off_ts = now;
		s->se0 = se;
		s->rd0 = rd;
	}
	return 0;
}
