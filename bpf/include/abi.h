/* SPDX-License-Identifier: Apache-2.0
 * THE event ABI between the kernel programs and Python (src/opensre/abi/events.py).
 * Every record starts with struct osre_hdr; Python checks its mirror against the
 * BTF of the compiled object (tests/unit/test_abi_btf.py), so drift fails a test.
 * Only fixed-width types: the same layout on every arch.
 */
#ifndef OPENSRE_ABI_H
#define OPENSRE_ABI_H

#define OSRE_ABI_VERSION 1
#define OSRE_COMM_LEN 16
#define OSRE_FILENAME_MAX 256
#define OSRE_ARGV_MAX 2048 /* power of two: the verifier bounds reads with a mask */

enum osre_event_type {
	OSRE_EV_FORK = 1,
	OSRE_EV_EXEC = 2,
	OSRE_EV_EXIT = 3,
};

/* values of the `tracked` map; a process inherits its parent's state at fork */
enum osre_track_state {
	OSRE_TRACKED = 1,
	OSRE_DENIED = 2, /* host-wide mode: matched the denylist; children re-evaluated at exec */
};

enum osre_exec_flags {
	OSRE_ARGV_TRUNCATED = 1,
	OSRE_FILENAME_TRUNCATED = 2,
	OSRE_EXEC_DENIED = 4, /* host-wide: the new image is denylisted; forget this process */
};

enum osre_exit_flags {
	OSRE_EXIT_NO_ACC = 1, /* per-thread I/O accumulator missing (map full): io is inclusive */
};

/* indices of the per-CPU `stats` array: in-kernel counters of work and loss */
enum osre_stat {
	OSRE_STAT_EVENTS = 0,
	OSRE_STAT_DROP_FORK = 1,   /* ring buffer full */
	OSRE_STAT_DROP_EXEC = 2,
	OSRE_STAT_DROP_EXIT = 3,
	OSRE_STAT_TRACK_FULL = 4,  /* `tracked` map full: a process went unobserved */
	OSRE_STAT_ACC_FULL = 5,    /* `acc` map full */
	OSRE_STAT_MAX = 8,
};

struct osre_hdr {
	__u16 type;
	__u16 version;
	__u32 size;
	__u64 ts_ns; /* CLOCK_BOOTTIME */
};

/* who a record is about: (pid, start_ns) identifies a process across pid reuse */
struct osre_ident {
	__u32 pid; /* tgid */
	__u32 ppid;
	__u64 start_ns; /* task->start_boottime, CLOCK_BOOTTIME */
	__u32 uid;
	__u32 gid;
	char comm[OSRE_COMM_LEN];
};

/* context that only live tasks have (nsproxy and cgroups are gone at free) */
struct osre_ctx {
	__u64 cgroup_id;    /* cgroup v2 (default hierarchy) id; 1 = root */
	__u64 memcg_v1_id;  /* cgroup v1 memory hierarchy id, 0 when absent */
	__u32 pidns;
	__u32 mntns;
	__u32 netns;
	__u32 _pad;
};

struct osre_fork_event {
	struct osre_hdr hdr;
	struct osre_ident id;
	struct osre_ctx ctx;
};

struct osre_exec_event {
	struct osre_hdr hdr;
	struct osre_ident id;
	struct osre_ctx ctx;
	__u32 flags;         /* osre_exec_flags */
	__u32 argv_len;      /* bytes copied into argv[] (NUL-separated) */
	__u64 argv_total;    /* bytes the process really had, before our bound */
	char filename[OSRE_FILENAME_MAX];
	char argv[OSRE_ARGV_MAX];
};

/* the kernel's own accounting for a whole thread group, taken when the group
 * leader is freed (after the parent reaped it): the same figures wait4() gives. */
struct osre_exit_event {
	struct osre_hdr hdr;
	struct osre_ident id;
	__u64 end_ns;        /* when the last thread exited, CLOCK_BOOTTIME */
	__s32 status;        /* wait(2) status word */
	__u32 flags;         /* osre_exit_flags */
	__u64 sum_exec_ns;   /* precise on-CPU time, all threads */
	__u64 utime_ns;      /* tick-sampled split, used only as a ratio */
	__u64 stime_ns;
	__u64 nvcsw;
	__u64 nivcsw;
	__u64 min_flt;
	__u64 maj_flt;
	__u64 maxrss_pages;  /* lifetime max over images, what getrusage reports */
	__u64 hiwater_pages; /* VmHWM of the final program image at exit */
	__u64 rchar;         /* I/O of this process's own threads, children excluded */
	__u64 wchar;
	__u64 syscr;
	__u64 syscw;
	__u64 read_bytes;
	__u64 write_bytes;
	__u64 cancelled_write_bytes;
	__u32 threads;       /* threads seen exiting */
	__u32 _pad;
};

#endif /* OPENSRE_ABI_H */
