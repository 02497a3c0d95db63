// SPDX-License-Identifier: GPL-2.0
/* Off-CPU time of tracked threads, split by why they were off CPU.
 *
 * One hook, sched_switch. When a tracked thread switches out asleep we note the
 * time, its state and its run-queue total (sched_info.run_delay); when it
 * switches back in, the time off CPU is known. Part of it was spent runnable,
 * waiting for a CPU after the wakeup: the kernel adds that part to run_delay just
 * after this tracepoint, so it is subtracted at the thread's next switch-out
 * (or exit). No sched_wakeup hook: wakeups are as frequent as switches and a
 * second program per wakeup cost more than the split itself.
 * Tracked threads carry task-local storage, so an untracked task costs two
 * storage lookups per switch and no hash lookup.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "include/maps.h"

char LICENSE[] SEC("license") = "GPL";

#define TASK_INTERRUPTIBLE 0x1

SEC("tp_btf/sched_switch")
int BPF_PROG(on_switch, bool preempt, struct task_struct *prev, struct task_struct *next,
	     unsigned int prev_state)
{
	__u64 now = 0;
	struct tstate *s = bpf_task_storage_get(&tstore, prev, 0, 0);
	if (s) {
		__u64 rd = prev->sched_info.run_delay;
		tstate_settle(s, rd);
		if (prev_state & (TASK_INTERRUPTIBLE | TASK_UNINTERRUPTIBLE)) {
			now = bpf_ktime_get_ns();
			s->off_ts = now;
			s->off_state = prev_state;
			s->rd0 = rd;
		}
	}
	s = bpf_task_storage_get(&tstore, next, 0, 0);
	if (s && s->off_ts) {
		if (!now)
			now = bpf_ktime_get_ns();
		s->pending = now - s->off_ts;
		s->pending_state = s->off_state;
		s->off_ts = 0;
	}
	return 0;
}
