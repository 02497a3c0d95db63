// SPDX-License-Identifier: GPL-2.0
/* OOM kills, attributed to the victim passed by the tracepoint (the current
 * task is whoever triggered reclaim, often an innocent bystander). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "include/maps.h"

char LICENSE[] SEC("license") = "GPL";

SEC("tp_btf/mark_victim")
int BPF_PROG(on_oom_victim, struct task_struct *victim)
{
	__u32 tgid = victim->tgid;
	struct acc_val *a = acc_of(victim, tgid, 1);
	if (!a)
		return 0;
	a->flags |= OSRE_EXIT_OOM_KILLED;

	struct osre_oom_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		stat_inc(OSRE_STAT_DROP_OOM);
		return 0;
	}
	fill_hdr(&e->hdr, OSRE_EV_OOM, sizeof(*e));
	fill_ident(&e->id, victim, 0, 0);
	struct mm_struct *mm = victim->mm;
	e->rss_pages = mm ? mm_rss_pages(mm) : 0;

	/* the memory cgroup (v1 memory controller or v2 default hierarchy: the
	 * memory css is the same either way); css is the first member of mem_cgroup */
	int memcg_idx = bpf_core_enum_value(enum cgroup_subsys_id, memory_cgrp_id);
	struct cgroup_subsys_state *css;
	bpf_core_read(&css, sizeof(css), &victim->cgroups->subsys[memcg_idx & 15]);
	struct mem_cgroup *memcg = (struct mem_cgroup *)css;
	e->memcg_id = BPF_CORE_READ(css, cgroup, kn, id);
	e->memcg_limit_pages = 0;
	e->memcg_usage_pages = 0;
	/* the limit that bites is the tightest one on the path to the root */
	struct page_counter *pc = memcg ? &memcg->memory : 0;
	/* PAGE_COUNTER_MAX: LONG_MAX in pages of the running kernel */
	__u64 unlimited = 0x7fffffffffffffffULL / (page_size ? page_size : 4096);
	for (int i = 0; i < 8 && pc; i++) {
		__u64 max = BPF_CORE_READ(pc, max);
		if (max && max < unlimited &&
		    (!e->memcg_limit_pages || max < e->memcg_limit_pages)) {
			e->memcg_limit_pages = max;
			e->memcg_usage_pages = BPF_CORE_READ(pc, usage.counter);
		}
		pc = BPF_CORE_READ(pc, parent);
	}
	stat_inc(OSRE_STAT_EVENTS);
	bpf_ringbuf_submit(e, submit_flags());
	return 0;
}
