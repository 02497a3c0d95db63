// SPDX-License-Identifier: GPL-2.0
/* Process lifecycle: fork, exec, exit and final accounting, on BTF tracepoints.
 *
 * One record per process, when its last thread has passed sched_process_exit.
 * Each thread adds its own final counters (CPU, I/O, faults, switches, waits)
 * to the group's accumulator (`acc`) there, and the thread that brings the
 * count to the number of threads the group ever had (kept in `tracked`) emits
 * the record. We cannot wait for the reaping: the kernel frees tasks through
 * call_rcu(), which lazy RCU (enable_rcu_lazy) may hold back for ~10 s. And the
 * kernel's own totals cannot be used earlier: signal_struct only receives a
 * thread's figures when it is released, after sibling threads may have looked.
 * Per-thread sums also keep I/O the process's own: signal->ioac collects the
 * I/O of reaped children (wait_task_zombie).
 * When the thread count is unknown (processes already running when collection
 * began), sched_process_free emits from signal_struct instead.
 *
 * Scope is decided here, not in user space: `tracked` holds the thread groups
 * we observe; a child inherits its parent's state at fork.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "include/maps.h"

char LICENSE[] SEC("license") = "GPL";

/* host-wide denylist, keyed by comm */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, char[OSRE_COMM_LEN]);
	__type(value, __u8);
} deny_comm SEC(".maps");

/* exec records are built here and sent trimmed to their argv (most command
 * lines are far shorter than the bound): ring space and copies shrink 3x */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct osre_exec_event);
} exec_scratch SEC(".maps");

/* keep the ABI structs in the object's BTF so Python can check its mirror */
const struct osre_exec_event *_abi_exec __attribute__((unused));
const struct osre_exit_event *_abi_exit __attribute__((unused));
const struct osre_oom_event *_abi_oom __attribute__((unused));
const struct osre_conn_event *_abi_conn __attribute__((unused));
const struct osre_task_sample *_abi_sample __attribute__((unused));


static __always_inline void fill_ctx(struct osre_ctx *c, struct task_struct *t)
{
	struct css_set *cs = t->cgroups;
	struct cgroup *dfl = cs->dfl_cgrp;

	c->cgroup_id = dfl->kn->id;
	/* hybrid/v1 hosts put every task in the v2 root; the memory controller's
	 * v1 cgroup is what containers and batch systems actually set. (On a pure
	 * v2 host the memory css lives on the default hierarchy: no v1 id.) */
	int memcg = bpf_core_enum_value(enum cgroup_subsys_id, memory_cgrp_id);
	struct cgroup_subsys_state *css = 0;
	bpf_core_read(&css, sizeof(css), &cs->subsys[memcg & 15]);
	struct cgroup *cg = BPF_CORE_READ(css, cgroup);
	c->memcg_v1_id = (cg && BPF_CORE_READ(cg, root) != dfl->root) ? BPF_CORE_READ(cg, kn, id) : 0;
	/* the task's own pid namespace is the one at its pid's deepest level */
	struct pid *p = t->thread_pid;
	unsigned int level = p->level;
	c->pidns = BPF_CORE_READ(p, numbers[level & 31].ns, ns.inum);
	c->mntns = t->nsproxy->mnt_ns->ns.inum;
	c->netns = t->nsproxy->net_ns->ns.inum;
}

/* cwd, leaf first: NUL-separated names from the working directory up to the
 * root, crossing mount points (user space reverses them). Bounded depth. */
static __always_inline void read_cwd(struct osre_exec_event *e, struct task_struct *t)
{
	struct path pwd = t->fs->pwd;
	struct dentry *d = pwd.dentry;
	struct vfsmount *vm = pwd.mnt;
	struct mount *mnt = container_of(vm, struct mount, mnt);
	__u32 off = 0;

	e->cwd_len = 0;
	for (int i = 0; i < OSRE_CWD_DEPTH; i++) {
		if (d == BPF_CORE_READ(mnt, mnt.mnt_root)) {
			struct mount *parent = BPF_CORE_READ(mnt, mnt_parent);
			if (parent == mnt)
				break; /* the root of the root mount */
			d = BPF_CORE_READ(mnt, mnt_mountpoint);
			mnt = parent;
			continue;
		}
		struct dentry *up = BPF_CORE_READ(d, d_parent);
		if (up == d)
			break;
		if (off >= OSRE_CWD_MAX / 2) {
			e->flags |= OSRE_CWD_TRUNCATED;
			break;
		}
		long n = bpf_probe_read_kernel_str(&e->cwd[off & (OSRE_CWD_MAX / 2 - 1)], OSRE_CWD_MAX / 2,
						   BPF_CORE_READ(d, d_name.name));
		if (n <= 0)
			break;
		off += n;
		d = up;
	}
	e->cwd_len = off;
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(on_fork, struct task_struct *parent, struct task_struct *child)
{
	__u32 ctgid = child->tgid;

	if (child->pid != ctgid) {
		/* a new thread: give it scheduler state if its group is tracked */
		struct track_val *ttv = lookup_tracked(child, ctgid);
		if (ttv && ttv->state == OSRE_TRACKED && ttv->nthreads)
			__sync_fetch_and_add(&ttv->nthreads, 1);
		return 0;
	}
	/* the real parent, which differs from the forking task under CLONE_PARENT */
	struct task_struct *rp = child->real_parent;
	__u32 ptgid = rp->tgid;
	struct track_val *ptv = lookup_tracked(rp, ptgid);
	struct track_val tv = {};
	if (ptv)
		tv.state = ptv->state;
	else if (host_wide)
		tv.state = OSRE_TRACKED;
	else
		return 0;
	tv.start_ns = child->start_boottime;
	tv.ppid = ptgid;
	tv.parent_start_ns = rp->group_leader->start_boottime;
	tv.nthreads = 1;
	tv.flags = OSRE_TV_MAXRSS_BASE; /* a new signal_struct: maxrss starts at 0 */
	if (bpf_map_update_elem(&tracked, &ctgid, &tv, BPF_ANY)) {
		stat_inc(OSRE_STAT_TRACK_FULL);
		return 0;
	}
	/* no record now: the first exec or the exit record announces the process,
	 * with this parent link (kept in `tracked`) */
	return 0;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(on_exec, struct task_struct *task, pid_t old_pid, struct linux_binprm *bprm)
{
	__u32 tgid = BPF_CORE_READ(task, tgid);
	struct track_val *tv = lookup_tracked(task, tgid);

	__u32 denied = 0;

	if (!tv && !host_wide)
		return 0;
	if (host_wide) {
		char comm[OSRE_COMM_LEN] = {};
		struct track_val ntv = {};
		bpf_get_current_comm(&comm, sizeof(comm));
		denied = bpf_map_lookup_elem(&deny_comm, &comm) != 0;
		ntv.state = denied ? OSRE_DENIED : OSRE_TRACKED;
		ntv.start_ns = task->group_leader->start_boottime;
		if (tv) {
			ntv.ppid = tv->ppid;
			ntv.parent_start_ns = tv->parent_start_ns;
			ntv.nthreads = tv->nthreads;
		}
		if (!tv || tv->state != ntv.state) {
			if (bpf_map_update_elem(&tracked, &tgid, &ntv, BPF_ANY)) {
				stat_inc(OSRE_STAT_TRACK_FULL);
				return 0;
			}
		}
		/* a process we announced at fork turns denied: tell user space to drop it */
		if (ntv.state != OSRE_TRACKED && !(tv && tv->state == OSRE_TRACKED))
			return 0;
	} else if (tv->state != OSRE_TRACKED) {
		return 0;
	}

	__u32 zero = 0;
	struct osre_exec_event *e = bpf_map_lookup_elem(&exec_scratch, &zero);
	if (!e)
		return 0;
	fill_hdr(&e->hdr, OSRE_EV_EXEC, sizeof(*e));
	struct track_val *cur = lookup_tracked(task, tgid);
	if (cur) {
		/* exec_mmap() has folded the old image's peak into maxrss (compat.h) */
		cur->exec_maxrss = task->signal->maxrss;
		cur->flags |= OSRE_TV_MAXRSS_BASE;
	}
	fill_ident(&e->id, task, 1, cur);
	fill_ctx(&e->ctx, task);
	e->flags = 0;
	e->argv_len = 0;
	e->argv_total = 0;
	if (denied) {
		e->flags = OSRE_EXEC_DENIED;
		e->filename[0] = 0;
		e->cwd_len = 0;
		e->hdr.size = offsetof(struct osre_exec_event, argv);
		if (bpf_ringbuf_output(&events, e, offsetof(struct osre_exec_event, argv), submit_flags()))
			stat_inc(OSRE_STAT_DROP_EXEC);
		else
			stat_inc(OSRE_STAT_EVENTS);
		return 0;
	}

	long n = bpf_probe_read_kernel_str(e->filename, sizeof(e->filename), bprm->filename);
	if (n == sizeof(e->filename))
		e->flags |= OSRE_FILENAME_TRUNCATED;
	read_cwd(e, task);

	/* argv only: [arg_start, arg_end) of the new image, never the environment
	 * that follows it. Freshly copied by exec, so the pages are resident. */
	struct mm_struct *mm = task->mm;
	unsigned long as = mm->arg_start;
	unsigned long ae = mm->arg_end;
	__u64 total = ae > as ? ae - as : 0;
	__u32 len = total > OSRE_ARGV_MAX ? OSRE_ARGV_MAX : total;
	e->argv_total = total;
	if (total > OSRE_ARGV_MAX)
		e->flags |= OSRE_ARGV_TRUNCATED;
	if (len >= OSRE_ARGV_MAX)
		len = OSRE_ARGV_MAX;
	if (bpf_probe_read_user(e->argv, len & (2 * OSRE_ARGV_MAX - 1), (void *)as))
		len = 0;
	e->argv_len = len;
	__u64 size = offsetof(struct osre_exec_event, argv) + (len & (2 * OSRE_ARGV_MAX - 1));
	if (size > sizeof(*e))
		size = sizeof(*e);
	e->hdr.size = size;
	if (bpf_ringbuf_output(&events, e, size, submit_flags()))
		stat_inc(OSRE_STAT_DROP_EXEC);
	else
		stat_inc(OSRE_STAT_EVENTS);
	return 0;
}

/* the wait(2) status word, as wait_task_zombie() builds it */
static __always_inline int exit_status(struct task_struct *t)
{
	struct signal_struct *sig = t->signal;
	if (sig->flags & OSRE_SIGNAL_GROUP_EXIT)
		return sig->group_exit_code;
	return t->group_leader->exit_code;
}

static __always_inline void copy_acc(struct osre_exit_event *e, struct acc_val *a)
{
	e->end_ns = a->end_ns;
	e->hiwater_pages = a->hiwater_pages;
	e->rchar = a->rchar;
	e->wchar = a->wchar;
	e->syscr = a->syscr;
	e->syscw = a->syscw;
	e->read_bytes = a->read_bytes;
	e->write_bytes = a->write_bytes;
	e->cancelled_write_bytes = a->cancelled_write_bytes;
	e->threads = a->threads;
	e->flags |= a->flags;
	e->net_tx_bytes = a->net_tx;
	e->net_rx_bytes = a->net_rx;
	e->runq_wait_ns = a->run_delay;
	e->blocked_io_ns = a->blocked;
	e->sleep_ns = a->sleep;
	e->rss_exit_pages = a->rss_exit_pages;
	e->ctx = a->ctx;
}

static __always_inline void take_mm_peak(struct acc_val *a, struct mm_struct *mm)
{
	__u64 hw = mm->hiwater_rss;
	__u64 rss = mm_rss_pages(mm);
	a->hiwater_pages = hw > rss ? hw : rss;
	a->rss_exit_pages = rss;
}

/* Kernels whose sched_process_exit fires after exit_mm() (compat.h): the
 * group-dead thread's mm, just before exit_mm(). taskstats_exit() has been
 * called there, with group_dead, since 2.6.19. */
SEC("fentry/taskstats_exit")
int BPF_PROG(on_taskstats_exit, struct task_struct *tsk, int group_dead)
{
	struct mm_struct *mm = tsk->mm;
	if (!group_dead || !mm)
		return 0;
	struct acc_val *a = acc_of(tsk, tsk->tgid, 1);
	if (a)
		take_mm_peak(a, mm);
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(on_exit, struct task_struct *task)
{
	__u32 tgid = task->tgid;
	struct acc_val *a = acc_of(task, tgid, 1);
	if (!a)
		return 0;
	/* signal->live was decremented before this tracepoint: 0 means the group is
	 * dead (works on kernels whose tracepoint lacks the group_dead argument).
	 * The group-dead thread still has the mm and the namespaces: take them now. */
	if (task->signal->live.counter == 0) {
		fill_ctx(&a->ctx, task);
		struct mm_struct *mm = task->mm;
		if (mm) {
			take_mm_peak(a, mm);
		} else if (!a->hiwater_pages) {
			/* exit_mm() ran first (6.1 and older, compat.h): the peak from maxrss */
			struct track_val *etv = lookup_tracked(task, tgid);
			a->flags |= OSRE_EXIT_NO_MM;
			__u64 maxrss = task->signal->maxrss;
			if (etv && (etv->flags & OSRE_TV_MAXRSS_BASE) && maxrss > etv->exec_maxrss)
				a->hiwater_pages = maxrss;
			else
				a->flags |= OSRE_EXIT_HWM_SAMPLED;
		}
	}
	/* I/O and faults are final here: what follows (freeing the mm, closing
	 * files) moves no data. CPU is not: see on_dead. */
	struct task_io_accounting *io = &task->ioac;
	__sync_fetch_and_add(&a->rchar, io->rchar);
	__sync_fetch_and_add(&a->wchar, io->wchar);
	__sync_fetch_and_add(&a->syscr, io->syscr);
	__sync_fetch_and_add(&a->syscw, io->syscw);
	__sync_fetch_and_add(&a->read_bytes, io->read_bytes);
	__sync_fetch_and_add(&a->write_bytes, io->write_bytes);
	__sync_fetch_and_add(&a->cancelled_write_bytes, io->cancelled_write_bytes);
	__sync_fetch_and_add(&a->min_flt, task->min_flt);
	__sync_fetch_and_add(&a->maj_flt, task->maj_flt);
	__sync_fetch_and_add(&a->threads, 1);
	return 0;
}

/* A thread's last switch-out (do_task_dead: prev_state TASK_DEAD). Only here is
 * its CPU time final: the scheduler folds the time since the thread last
 * switched in (or last tick) into se.sum_exec_runtime at this switch, and a
 * short process that never met a tick had almost all of it pending at
 * sched_process_exit (/bin/true: ~0.1 of ~0.9 ms). Its teardown (exit_mm,
 * exit_files) is counted too, as wait4() counts it. The thread that completes
 * the group's count emits the record. */
static __always_inline void on_dead(struct task_struct *task, unsigned int prev_state)
{
	if (!(prev_state & OSRE_TASK_DEAD))
		return;
	__u32 tgid = task->tgid;
	struct acc_val *a = acc_of(task, tgid, 0);
	if (!a)
		return; /* not tracked (it got an accumulator at sched_process_exit) */
	__u64 rd = task->sched_info.run_delay;
	__u64 se = task->se.sum_exec_runtime;
	__sync_fetch_and_add(&a->run_delay, rd);
	__sync_fetch_and_add(&a->sum_exec, se);
	__sync_fetch_and_add(&a->utime, task->utime);
	__sync_fetch_and_add(&a->stime, task->stime);
	__sync_fetch_and_add(&a->nvcsw, task->nvcsw);
	__sync_fetch_and_add(&a->nivcsw, task->nivcsw);
	/* a dying thread is running: no D sleep is in progress. A thread that
	 * never blocked in D has no state: it was never blocked. */
	struct tstate *ts = tstate_get(task, 0);
	__u64 blocked = ts ? ts->blocked_ns : 0;
	tstate_forget(task);
	__sync_fetch_and_add(&a->blocked, blocked);
	__sync_fetch_and_add(&a->sleep, thread_sleep(task, bpf_ktime_get_ns(), se, rd, blocked));
	__u32 done = __sync_fetch_and_add(&a->dead, 1) + 1;

	struct track_val *tv = lookup_tracked(task, tgid);
	if (!tv || !tv->nthreads || done != tv->nthreads)
		return; /* threads still to come, or unknown count: on_free decides */

	struct osre_exit_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		stat_inc(OSRE_STAT_DROP_EXIT);
	} else {
		fill_hdr(&e->hdr, OSRE_EV_EXIT, sizeof(*e));
		fill_ident(&e->id, task->group_leader, 0, tv);
		e->flags = 0;
		a->end_ns = bpf_ktime_get_boot_ns();
		copy_acc(e, a);
		e->status = exit_status(task);
		e->sum_exec_ns = a->sum_exec;
		e->utime_ns = a->utime;
		e->stime_ns = a->stime;
		e->nvcsw = a->nvcsw;
		e->nivcsw = a->nivcsw;
		e->min_flt = a->min_flt;
		e->maj_flt = a->maj_flt;
		/* set by the group-dead thread in do_exit */
		e->maxrss_pages = task->signal->maxrss;
		stat_inc(OSRE_STAT_EVENTS);
		bpf_ringbuf_submit(e, submit_flags());
	}
	/* done with this group: nothing is left for on_free, and the pid is free
	 * for reuse as soon as the parent reaps it */
	bpf_map_delete_elem(&tracked, &tgid);
	bpf_map_delete_elem(&acc, &tgid);
}

/* 5.18+: the tracepoint passes prev_state (compat.h) */
SEC("tp_btf/sched_switch")
int BPF_PROG(on_dead_switch, bool preempt, struct task_struct *prev, struct task_struct *next,
	     unsigned int prev_state)
{
	on_dead(prev, prev_state);
	return 0;
}

/* before 5.18: the state from the task (the loader keeps one of the two) */
SEC("tp_btf/sched_switch")
int BPF_PROG(on_dead_switch_state, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	on_dead(prev, task_state(prev));
	return 0;
}

SEC("tp_btf/sched_process_free")
int BPF_PROG(on_free, struct task_struct *p)
{
	__u32 tgid = p->tgid;
	if (p->pid != tgid)
		return 0; /* a thread, or an old leader replaced by exec */

	__u64 start = p->start_boottime;
	struct track_val *tv = bpf_map_lookup_elem(&tracked, &tgid);
	if (!tv || (tv->start_ns != start && tv->start_ns != 0))
		return 0; /* not ours, or already recorded at its last exit */
	struct track_val tvc = *tv;
	bpf_map_delete_elem(&tracked, &tgid);
	if (tvc.state != OSRE_TRACKED)
		return 0;

	struct osre_exit_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		stat_inc(OSRE_STAT_DROP_EXIT);
		bpf_map_delete_elem(&acc, &tgid);
		return 0;
	}
	fill_hdr(&e->hdr, OSRE_EV_EXIT, sizeof(*e));
	fill_ident(&e->id, p, 0, &tvc);
	e->flags = 0;

	/* The fallback for groups whose thread count we never knew: when the leader
	 * is freed, __exit_signal() has folded every thread into signal, the leader
	 * included: the figures wait4() reports. */
	struct signal_struct *sig = p->signal;
	e->status = exit_status(p);
	e->sum_exec_ns = sig->sum_sched_runtime;
	e->utime_ns = sig->utime;
	e->stime_ns = sig->stime;
	e->nvcsw = sig->nvcsw;
	e->nivcsw = sig->nivcsw;
	e->min_flt = sig->min_flt;
	e->maj_flt = sig->maj_flt;
	e->maxrss_pages = sig->maxrss;

	struct acc_val *a = bpf_map_lookup_elem(&acc, &tgid);
	if (a && a->start_ns == start) {
		copy_acc(e, a);
		if (!e->end_ns)
			e->end_ns = bpf_ktime_get_boot_ns();
		bpf_map_delete_elem(&acc, &tgid);
	} else {
		/* no per-thread sums: fall back to the kernel's inclusive counters */
		e->flags |= OSRE_EXIT_NO_ACC;
		e->end_ns = bpf_ktime_get_boot_ns();
		e->hiwater_pages = 0;
		struct task_io_accounting *io = &sig->ioac;
		e->rchar = io->rchar;
		e->wchar = io->wchar;
		e->syscr = io->syscr;
		e->syscw = io->syscw;
		e->read_bytes = io->read_bytes;
		e->write_bytes = io->write_bytes;
		e->cancelled_write_bytes = io->cancelled_write_bytes;
		e->threads = 0;
		e->net_tx_bytes = e->net_rx_bytes = e->runq_wait_ns = 0;
		e->blocked_io_ns = e->sleep_ns = e->rss_exit_pages = 0;
		__builtin_memset(&e->ctx, 0, sizeof(e->ctx));
	}
	stat_inc(OSRE_STAT_EVENTS);
	bpf_ringbuf_submit(e, submit_flags());
	return 0;
}
