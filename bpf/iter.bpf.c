// SPDX-License-Identifier: GPL-2.0
/* Sample tick: one record per thread of every tracked process, from the
 * counters the kernel keeps anyway (no per-event cost between ticks). User
 * space sums threads per process; exited threads come from `acc` and signal. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "include/maps.h"

char LICENSE[] SEC("license") = "GPL";

SEC("iter/task")
int sample_tasks(struct bpf_iter__task *ctx)
{
	struct task_struct *t = ctx->task;
	if (!t)
		return 0;
	__u32 tgid = t->tgid;
	struct track_val *tv = bpf_map_lookup_elem(&tracked, &tgid);
	if (!tv || tv->state != OSRE_TRACKED)
		return 0;
	struct task_struct *leader = t->group_leader;
	__u64 start = BPF_CORE_READ(leader, start_boottime);
	if (tv->start_ns && tv->start_ns != start)
		return 0;
	if (t->flags & OSRE_PF_EXITING) /* its counters are being folded into acc */
		return 0;

	struct osre_task_sample s = {};
	s.pid = tgid;
	s.tid = t->pid;
	s.start_ns = start;
	s.sum_exec_ns = t->se.sum_exec_runtime;
	s.run_delay_ns = t->sched_info.run_delay;
	s.rchar = t->ioac.rchar;
	s.wchar = t->ioac.wchar;
	s.read_bytes = t->ioac.read_bytes;
	s.write_bytes = t->ioac.write_bytes;
	/* a D sleep in progress counts up to now, so a thread blocked across
	 * several ticks shows up in each of them */
	struct tstate *ts = tstate_get(t, 0);
	__u64 now = bpf_ktime_get_ns();
	s.blocked_ns = ts ? tstate_blocked_now(ts, now) : 0;
	s.sleep_ns = thread_sleep(t, now, s.sum_exec_ns, s.run_delay_ns, s.blocked_ns);
	if (s.tid == s.pid) {
		s.dead_exec_ns = BPF_CORE_READ(t, signal, sum_sched_runtime);
		struct mm_struct *mm = t->mm;
		if (mm)
			s.rss_pages = mm_rss_pages(mm);
		struct acc_val *a = bpf_map_lookup_elem(&acc, &tgid);
		if (a && a->start_ns == start) {
			s.acc_rchar = a->rchar;
			s.acc_wchar = a->wchar;
			s.acc_read_bytes = a->read_bytes;
			s.acc_write_bytes = a->write_bytes;
			s.acc_run_delay_ns = a->run_delay;
			s.acc_blocked_ns = a->blocked;
			s.acc_sleep_ns = a->sleep;
			s.net_tx_bytes = a->net_tx;
			s.net_rx_bytes = a->net_rx;
		}
	}
	bpf_seq_write(ctx->meta->seq, &s, sizeof(s));
	return 0;
}
