/* SPDX-License-Identifier: GPL-2.0
 * Every kernel difference the programs handle, in one place. Each entry says
 * which kernel changed what and which variant handles it. Variants are chosen
 * from the running kernel's BTF (CO-RE existence checks resolved by libbpf at
 * load, or programs the loader switches off: src/opensre/bpf/families.py),
 * never from version numbers. Support floor: Linux 5.8 with BTF (ring buffer).
 *
 * Kernel differences that need no code (noted so nobody re-checks them):
 * - task_struct.start_boottime: named so since 5.5 (real_start_time before).
 * - iter/task programs: 5.8. BPF_MAP_TYPE_RINGBUF: 5.8.
 * - inet_sock_set_state, sched_process_*, mark_victim tracepoints: before 5.8.
 *
 * Kernel differences handled in user space (families.py), recorded per run:
 * - sched_switch gained its prev_state argument in 5.18 (fa2c3254d7cf):
 *   on_switch uses it; on_switch_state reads the task's state field instead.
 * - sock_send_length / sock_recv_length tracepoints exist from 6.3: before
 *   that, per-process bytes come from fexit on inet{,6}_{send,recv}msg (the
 *   proto ops sock_sendmsg_nosec()/sock_recvmsg_nosec() call, so the same
 *   bytes), where the kernel allows BPF trampolines (x86-64 5.5+, arm64 6.0+).
 *   Without either, connections are still recorded with their TCP totals.
 * - BPF_MAP_TYPE_TASK_STORAGE: 5.11. Before, per-thread state lives in a hash
 *   by tid (maps.h tstate_get; the loader retypes the map, rodata below).
 *   Until 6.4 task storage allocated new elements with kmalloc, and the state is
 *   created in sched_switch, under the runqueue lock: an allocation that wakes
 *   kswapd (or a memcg event worker) would take a runqueue lock again and could
 *   deadlock. So those kernels use the hash too, preallocated (no allocation at
 *   update). 6.4 allocates from BPF's per-CPU caches (bpf_local_storage_map.bpf_ma,
 *   the BTF member the loader checks).
 * - bpf_get_current_task_btf(): 5.11 (current_start() below).
 */
#ifndef OPENSRE_COMPAT_H
#define OPENSRE_COMPAT_H

/* Flags and values that are #defines, so not in BTF and not CO-RE-readable.
 * Each has kept its value since 2.6/4.x; listed with where it is defined. */
#define OSRE_PF_EXITING 0x00000004         /* include/linux/sched.h */
#define OSRE_SIGNAL_GROUP_EXIT 0x00000004  /* include/linux/sched/signal.h */
#define OSRE_TASK_UNINTERRUPTIBLE 0x0002   /* include/linux/sched.h */
#define OSRE_TASK_NOLOAD 0x0400            /* TASK_IDLE: kernel threads idling in D */
#define OSRE_TASK_DEAD 0x0080              /* since 4.14 (TASK_PARKED moved below it) */
#define OSRE_AF_INET 2
#define OSRE_AF_INET6 10
#define OSRE_IPPROTO_TCP 6
/* mm counter indices (an anonymous enum, include/linux/mm_types_task.h, since 4.5) */
#define OSRE_MM_FILEPAGES 0
#define OSRE_MM_ANONPAGES 1
#define OSRE_MM_SHMEMPAGES 3

/* The page size is the running kernel's, set by the loader (rodata). */
const volatile __u64 page_size = 4096;
/* 1 where per-thread state is in a hash (before 6.4, above): maps.h tstate_get() */
const volatile __u32 tstate_in_hash = 0;

/* --- the current task --------------------------------------------------------
 * bpf_get_current_task_btf() (a BTF pointer, direct loads) arrived in 5.11;
 * before, bpf_get_current_task() and probe reads. The check is a CO-RE
 * relocation against the kernel's helper enum: the other branch is dropped. */
static __always_inline __u64 current_start(void)
{
	if (bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_get_current_task_btf))
		return bpf_get_current_task_btf()->group_leader->start_boottime;
	struct task_struct *t = (struct task_struct *)bpf_get_current_task();
	return BPF_CORE_READ(t, group_leader, start_boottime);
}

/* --- mm RSS counters -------------------------------------------------------
 * 6.2 (f1a7941243c1, "mm: convert mm's rss stats into percpu_counter") made
 * mm->rss_stat an array of struct percpu_counter; before, it was
 * struct mm_rss_stat { atomic_long_t count[NR_MM_COUNTERS]; }. In both, the
 * central count is what /proc/PID/status shows as VmRSS (6.1's per-thread
 * SPLIT_RSS_COUNTING caches are folded in every 64 faults, as /proc sees). */
struct mm_rss_stat___pre62 {
	atomic_long_t count[4];
} __attribute__((preserve_access_index));

struct mm_struct___pre62 {
	struct mm_rss_stat___pre62 rss_stat;
} __attribute__((preserve_access_index));

/* resident pages, the arithmetic of VmRSS (swap entries are not resident) */
static __always_inline __u64 mm_rss_pages(struct mm_struct *mm)
{
	__s64 f, a, s;
	if (bpf_core_type_exists(struct mm_rss_stat___pre62)) {
		/* one read of the array: 6.1's verifier cannot walk a direct load
		 * through the atomic_long_t typedef ("is not a struct") */
		struct mm_rss_stat___pre62 st = {};
		bpf_core_read(&st, sizeof(st), &((struct mm_struct___pre62 *)mm)->rss_stat);
		f = st.count[OSRE_MM_FILEPAGES].counter;
		a = st.count[OSRE_MM_ANONPAGES].counter;
		s = st.count[OSRE_MM_SHMEMPAGES].counter;
	} else {
		f = mm->rss_stat[OSRE_MM_FILEPAGES].count;
		a = mm->rss_stat[OSRE_MM_ANONPAGES].count;
		s = mm->rss_stat[OSRE_MM_SHMEMPAGES].count;
	}
	return (f > 0 ? f : 0) + (a > 0 ? a : 0) + (s > 0 ? s : 0);
}

/* --- the task's state word -------------------------------------------------
 * 5.14 (2f064a59a11f) renamed task_struct.state (long) to __state (unsigned
 * int). Only the pre-5.18 sched_switch variant needs it. */
struct task_struct___pre514 {
	long state;
} __attribute__((preserve_access_index));

static __always_inline unsigned int task_state(struct task_struct *t)
{
	if (bpf_core_field_exists(t->__state))
		return BPF_CORE_READ(t, __state);
	return BPF_CORE_READ((struct task_struct___pre514 *)t, state);
}

/* --- the mm at sched_process_exit -------------------------------------------
 * On 6.1 and older, do_exit() calls exit_mm() before trace_sched_process_exit,
 * so task->mm is NULL there; newer kernels (the 6.18 we build on) fire it with
 * the mm still attached. Checked at run time (mm == NULL), not by version.
 * The lifecycle family then adds fentry/taskstats_exit, called just before
 * exit_mm() with the mm (newer kernels' tracepoint also gained a group_dead
 * argument: that is how families.py tells them apart). Where trampolines are
 * not allowed, the final image's VmHWM comes from signal->maxrss: do_exit()
 * folds the dying group's max(hiwater_rss, rss) into it before exit_mm(). It is
 * that image's peak exactly when it exceeds what maxrss held at the last exec
 * (earlier images' peaks, kept in track_val.exec_maxrss); otherwise the image's
 * peak is unknown and user space falls back to the sampled series (flagged). */

#endif /* OPENSRE_COMPAT_H */
