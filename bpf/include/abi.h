/* SPDX-License-Identifier: Apache-2.0
 * THE event ABI between the kernel programs and Python (src/opensre/abi/events.py).
 * Every record starts with struct osre_hdr; Python checks its mirror against the
 * BTF of the compiled object (tests/unit/test_abi_btf.py), so drift fails a test.
 * Only fixed-width types: the same layout on every arch.
 */
#ifndef OPENSRE_ABI_H
#define OPENSRE_ABI_H

#define OSRE_ABI_VERSION 2
#define OSRE_COMM_LEN 16
#define OSRE_FILENAME_MAX 256
#define OSRE_ARGV_MAX 8192 /* power of two: the verifier bounds reads with a mask */
#define OSRE_CWD_MAX 512   /* power of two */
#define OSRE_CWD_DEPTH 24  /* path components (mount crossings count too) */

enum osre_event_type {
	/* 1 was a per-fork record: a process is now announced by its first exec or
	 * its exit record, which carry the parent link (a third fewer records) */
	OSRE_EV_EXEC = 2,
	OSRE_EV_EXIT = 3,
	OSRE_EV_OOM = 4,
	OSRE_EV_CONN = 5,
};

/* values of the `tracked` map; a process inherits its parent's state at fork */
enum osre_track_state {
	OSRE_TRACKED = 1,
	OSRE_DENIED = 2, /* host-wide mode: matched the denylist; children re-evaluated at exec */
};

/* track_val.flags */
enum osre_track_flags {
	OSRE_TV_MAXRSS_BASE = 1, /* exec_maxrss is known (seen forked or exec'd) */
};

enum osre_exec_flags {
	OSRE_ARGV_TRUNCATED = 1,
	OSRE_FILENAME_TRUNCATED = 2,
	OSRE_EXEC_DENIED = 4, /* host-wide: the new image is denylisted; forget this process */
	OSRE_CWD_TRUNCATED = 8,
};

enum osre_exit_flags {
	OSRE_EXIT_NO_ACC = 1, /* per-thread I/O accumulator missing (map full): io is inclusive */
	OSRE_EXIT_OOM_KILLED = 2, /* chosen as the OOM killer's victim */
	OSRE_EXIT_HWM_SAMPLED = 4, /* no mm at exit and no exact peak (compat.h): use the series */
	OSRE_EXIT_NO_MM = 8,       /* the mm was gone at exit: rss_exit_pages unknown */
};

enum osre_conn_flags {
	OSRE_CONN_ACTIVE = 1, /* we connected (SYN_SENT -> ESTABLISHED); else accepted */
	OSRE_CONN_OPEN = 2,   /* still open when collection ended */
};

/* indices of the per-CPU `stats` array: in-kernel counters of work and loss */
enum osre_stat {
	OSRE_STAT_EVENTS = 0,
	OSRE_STAT_RESERVED = 1,
	OSRE_STAT_DROP_EXEC = 2,   /* ring buffer full */
	OSRE_STAT_DROP_EXIT = 3,
	OSRE_STAT_TRACK_FULL = 4,  /* `tracked` map full: a process went unobserved */
	OSRE_STAT_ACC_FULL = 5,    /* `acc` map full */
	OSRE_STAT_DROP_OOM = 6,
	OSRE_STAT_DROP_CONN = 7,
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
	__u32 ppid; /* the parent that created it (not a later reaper), 0 if unknown */
	__u64 start_ns; /* task->start_boottime, CLOCK_BOOTTIME */
	__u64 parent_start_ns; /* the parent's start_ns, 0 if unknown */
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

struct osre_exec_event {
	struct osre_hdr hdr;
	struct osre_ident id;
	struct osre_ctx ctx;
	__u32 flags;         /* osre_exec_flags */
	__u32 argv_len;      /* bytes copied into argv[] (NUL-separated) */
	__u64 argv_total;    /* bytes the process really had, before our bound */
	__u32 cwd_len;       /* bytes in cwd[]: NUL-terminated names, leaf first */
	__u32 _pad;
	char filename[OSRE_FILENAME_MAX];
	char cwd[OSRE_CWD_MAX];
	char argv[OSRE_ARGV_MAX]; /* last: the record ends after argv_len bytes of it */
};

/* the kernel's own accounting for a whole thread group, taken when the group
 * leader is freed (after the parent reaped it): the same figures wait4() gives. */
struct osre_exit_event {
	struct osre_hdr hdr;
	struct osre_ident id;
	struct osre_ctx ctx;   /* as of the group's death (cgroups, namespaces) */
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
	__u64 net_tx_bytes;  /* inet socket payload bytes sent/received (sock_*_length) */
	__u64 net_rx_bytes;
	__u64 runq_wait_ns;  /* runnable, waiting for a CPU (sched_info.run_delay) */
	__u64 blocked_io_ns; /* off CPU in uninterruptible sleep (D state) */
	__u64 sleep_ns;      /* off CPU in interruptible sleep */
	__u64 rss_exit_pages; /* resident at exit (last sample of the RSS series) */
};

/* an OOM kill, attributed to the victim (not to whichever task triggered it) */
struct osre_oom_event {
	struct osre_hdr hdr;
	struct osre_ident id;       /* the victim */
	__u64 rss_pages;            /* victim's resident pages when chosen */
	__u64 memcg_limit_pages;    /* tightest memory.max on the victim's memcg path; 0 = none */
	__u64 memcg_usage_pages;    /* usage of that memcg */
	__u64 memcg_id;             /* cgroup (kernfs) id of the victim's memory cgroup */
};

/* a TCP connection of a tracked process: addresses and sizes, never payload */
struct osre_conn_event {
	struct osre_hdr hdr;
	__u32 pid;
	__u32 flags;                /* osre_conn_flags */
	__u64 start_ns;             /* owner's start (process identity) */
	__u64 open_ns;              /* ESTABLISHED, CLOCK_BOOTTIME */
	__u64 close_ns;             /* CLOSE, 0 while open */
	__u64 bytes_sent;           /* tcp_sock.bytes_acked: payload the peer acknowledged */
	__u64 bytes_received;       /* tcp_sock.bytes_received */
	__u16 family;               /* AF_INET / AF_INET6 */
	__u16 sport;                /* host byte order */
	__u16 dport;
	__u16 _pad;
	__u8 saddr[16];             /* IPv4 in the first 4 bytes */
	__u8 daddr[16];
};

/* one thread of a tracked process, written by the task iterator each sample tick */
struct osre_task_sample {
	__u32 pid;                  /* tgid */
	__u32 tid;
	__u64 start_ns;             /* group leader's start */
	__u64 sum_exec_ns;          /* this thread, live */
	__u64 run_delay_ns;
	__u64 blocked_ns;
	__u64 sleep_ns;
	__u64 rchar, wchar, read_bytes, write_bytes;
	/* leader only (tid == pid): what exited threads left and group-wide gauges */
	__u64 dead_exec_ns;         /* signal->sum_sched_runtime */
	__u64 rss_pages;
	__u64 acc_rchar, acc_wchar, acc_read_bytes, acc_write_bytes;
	__u64 acc_run_delay_ns, acc_blocked_ns, acc_sleep_ns;
	__u64 net_tx_bytes, net_rx_bytes;
};

/* Map values that user space reads too (so they are ABI as well). */

/* the `tracked` map: one per tracked thread group */
struct track_val {
	__u64 start_ns;
	__u32 state; /* osre_track_state */
	__u32 ppid;  /* creating parent, 0 for roots seeded by user space */
	__u64 parent_start_ns;
	__u32 nthreads; /* threads the group ever had; 0 = unknown (seen after it started) */
	__u32 flags;    /* osre_track_flags */
	__u64 exec_maxrss; /* signal->maxrss at the last exec (earlier images' peaks), pages */
};

/* net.bpf.c's `conns` map: a TCP socket's owner and addresses while it is open
 * (the collector reads the ones still open when collection ends) */
struct conn_val {
	__u32 pid; /* owner tgid, 0 until known */
	__u32 flags; /* osre_conn_flags */
	__u64 start_ns; /* owner's start */
	__u64 open_ns;
	__u16 family, sport, dport, _pad;
	__u8 saddr[16];
	__u8 daddr[16];
};

#endif /* OPENSRE_ABI_H */
