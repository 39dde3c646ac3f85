// SPDX-License-Identifier: GPL-2.0
/* linux_monitor: per-process usage counted inside the running Linux kernel.
 *
 * Not an iotbpf node app: this object is loaded into Linux itself by iotbpf/platforms/kernel
 * (libbpf, CO-RE) behind `iotbpf monitor --backend ebpf`. Each program is a BTF-enabled
 * tracepoint (tp_btf), so it reads the tracepoint's typed arguments and kernel structures
 * directly; the structures below declare only the fields used, with preserve_access_index, so
 * libbpf relocates their offsets against /sys/kernel/btf/vmlinux when it loads the object.
 *
 * Maps (read by Python every interval):
 *   procs     tgid -> struct proc_stat   runtime ns, context switches, net and disk bytes,
 *                                        execs, exited flag, uid, comm, exe (kept after exit until
 *                                        the reader has seen it twice: short-lived processes count)
 *   irqs      irq number -> handler entries
 *   idle_ns   idle state -> ns spent in it (all CPUs)      (power:cpu_idle)
 *   freq_ns   kHz -> ns spent at it (all CPUs)             (power:cpu_frequency, on change only)
 *
 * Built with: clang -O2 -g -target bpf -mcpu=v3 -c linux_monitor.bpf.c (no headers needed).
 */

typedef unsigned char __u8;
typedef unsigned short __u16;
typedef unsigned int __u32;
typedef unsigned long long __u64;
typedef int __s32;
typedef long long __s64;

#define SEC(name) __attribute__((section(name), used))
#define __uint(name, val) int (*name)[val]
#define __type(name, val) typeof(val) *name
#define __always_inline inline __attribute__((always_inline))
#define CORE __attribute__((preserve_access_index))

#define BPF_MAP_TYPE_HASH 1
#define BPF_MAP_TYPE_ARRAY 2
#define BPF_MAP_TYPE_TASK_STORAGE 29
#define BPF_F_NO_PREALLOC 1
#define BPF_LOCAL_STORAGE_GET_F_CREATE 1
#define BPF_NOEXIST 1
#define PF_EXITING 0x00000004
#define PF_KTHREAD 0x00200000
#define REQ_OP_MASK 0xff
#define REQ_OP_READ 0
#define REQ_OP_WRITE 1
#define PWR_EVENT_EXIT 0xffffffffu
#define MAX_CPUS 512

static void *(*bpf_map_lookup_elem)(void *map, const void *key) = (void *)1;
static long (*bpf_map_update_elem)(void *map, const void *key, const void *value, __u64 flags) = (void *)2;
static __u64 (*bpf_ktime_get_ns)(void) = (void *)5;
static __u64 (*bpf_get_current_pid_tgid)(void) = (void *)14;
static __u64 (*bpf_get_current_uid_gid)(void) = (void *)15;
static long (*bpf_probe_read_kernel)(void *dst, __u32 size, const void *unsafe_ptr) = (void *)113;
static long (*bpf_probe_read_kernel_str)(void *dst, __u32 size, const void *unsafe_ptr) = (void *)115;
static void *(*bpf_task_storage_get)(void *map, void *task, void *value, __u64 flags) = (void *)156;

struct sched_entity {
	__u64 sum_exec_runtime;
} CORE;

struct task_struct {
	unsigned int flags;
	struct sched_entity se;
	__u64 start_time;
	int pid;
	int tgid;
	struct task_struct *group_leader;
	char comm[16];
} CORE;

struct linux_binprm {
	const char *filename;
} CORE;

struct bvec_iter {
	unsigned int bi_size;
} CORE;

struct bio {
	unsigned int bi_opf;
	struct bvec_iter bi_iter;
} CORE;

struct proc_stat {
	__u64 cpu_ns;
	__u64 spare; /* was sched_wakeup's count: one program less on the hottest path (see below) */
	__u64 switches;
	__u64 net_tx;
	__u64 net_rx;
	__u64 disk_read;
	__u64 disk_write;
	__u64 execs;
	__u32 uid;
	__u32 flags;
	__u32 exited;
	__u32 pad;
	char comm[16];
	char exe[64];
};

struct cpu_mark {
	__u64 since;
	__u32 value;
	__u32 valid;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 32768);
	__type(key, __u32);
	__type(value, struct proc_stat);
} procs SEC(".maps");

/* per thread: its scheduler runtime when last switched out, and what it ran since its process's
 * entry was last updated (only the CPU switching the thread out touches it: no atomics needed) */
struct thread_mark {
	__u64 seen;
	__u64 pending_ns;
	__u32 pending_switches;
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct thread_mark);
} seen_runtime SEC(".maps");

#define FLUSH_NS 1000000ULL /* a thread's runtime reaches its process at least every 1 ms of it... */
#define FLUSH_SWITCHES 32   /* ...or 32 switches, and always when it exits */

/* [0]: CLOCK_MONOTONIC ns when the reader loaded us (threads started later count from birth) */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u64);
} irqs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_CPUS);
	__type(key, __u32);
	__type(value, struct cpu_mark);
} idle_mark SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u64);
} idle_ns SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_CPUS);
	__type(key, __u32);
	__type(value, struct cpu_mark);
} freq_mark SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, __u64);
} freq_ns SEC(".maps");

char LICENSE[] SEC("license") = "GPL";

/* The entry of process `tgid`, created (named after the group leader of `task`) when missing. */
static __always_inline struct proc_stat *entry(__u32 tgid, struct task_struct *task)
{
	struct proc_stat *e = bpf_map_lookup_elem(&procs, &tgid);
	if (e || !task)
		return e;
	struct proc_stat fresh = {};
	fresh.uid = (__u32)bpf_get_current_uid_gid();
	fresh.flags = task->flags;
	bpf_probe_read_kernel(fresh.comm, sizeof(fresh.comm), task->group_leader->comm);
	bpf_map_update_elem(&procs, &tgid, &fresh, BPF_NOEXIST);
	return bpf_map_lookup_elem(&procs, &tgid);
}

static __always_inline void add(__u64 *counter, __u64 amount)
{
	__sync_fetch_and_add(counter, amount);
}

static __always_inline void add_to(void *map, __u32 key, __u64 amount)
{
	__u64 *v = bpf_map_lookup_elem(map, &key);
	if (v) {
		add(v, amount);
		return;
	}
	bpf_map_update_elem(map, &key, &amount, BPF_NOEXIST);
}

/* sched_switch(bool preempt, struct task_struct *prev, struct task_struct *next, unsigned int prev_state):
 * the scheduler has just updated prev's runtime (se.sum_exec_runtime, what /proc and getrusage
 * report, without IRQ and steal time); what it ran since it was last switched out goes to its
 * process. Its switch count is the /proc monitor's "wakeups" (voluntary + involuntary context
 * switches); a sched_wakeup program would double the collector's cost on switch-heavy machines. */
SEC("tp_btf/sched_switch")
int on_switch(__u64 *ctx)
{
	struct task_struct *prev = (struct task_struct *)ctx[1];
	if (prev->pid == 0)
		return 0; /* the idle task */
	__u64 runtime = prev->se.sum_exec_runtime;
	struct thread_mark *mark = bpf_task_storage_get(&seen_runtime, prev, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!mark)
		return 0;
	__u64 before = mark->seen;
	mark->seen = runtime;
	if (before == 0) { /* first sight: a thread older than the collector starts its baseline here */
		__u32 zero = 0;
		__u64 *t0 = bpf_map_lookup_elem(&config, &zero);
		if (!t0 || prev->start_time < *t0)
			return 0;
	}
	__u64 pending = mark->pending_ns + (runtime - before);
	__u32 switches = mark->pending_switches + 1;
	int exiting = prev->flags & PF_EXITING;
	if (pending < FLUSH_NS && switches < FLUSH_SWITCHES && !exiting) {
		mark->pending_ns = pending; /* the common case: no map lookup, no atomic */
		mark->pending_switches = switches;
		return 0;
	}
	mark->pending_ns = 0;
	mark->pending_switches = 0;
	/* an exiting task's last slices go to an existing entry only: the reader deletes exited entries */
	struct proc_stat *e = entry(prev->tgid, exiting ? 0 : prev);
	if (!e)
		return 0;
	add(&e->cpu_ns, pending);
	add(&e->switches, switches);
	return 0;
}

/* sched_process_exec(struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm) */
SEC("tp_btf/sched_process_exec")
int on_exec(__u64 *ctx)
{
	struct task_struct *p = (struct task_struct *)ctx[0];
	struct linux_binprm *bprm = (struct linux_binprm *)ctx[2];
	struct proc_stat *e = entry(p->tgid, p);
	if (!e)
		return 0;
	add(&e->execs, 1);
	e->uid = (__u32)bpf_get_current_uid_gid();
	bpf_probe_read_kernel(e->comm, sizeof(e->comm), p->comm);
	bpf_probe_read_kernel_str(e->exe, sizeof(e->exe), bprm->filename);
	return 0;
}

/* sched_process_exit(struct task_struct *p, ...): the thread-group leader leaving ends the process */
SEC("tp_btf/sched_process_exit")
int on_exit(__u64 *ctx)
{
	struct task_struct *p = (struct task_struct *)ctx[0];
	if (p->pid != p->tgid)
		return 0;
	struct proc_stat *e = bpf_map_lookup_elem(&procs, &(__u32){p->tgid});
	if (e)
		e->exited = 1;
	return 0;
}

/* sock_send_length(struct sock *sk, int ret, int flags): bytes handed to a socket by current */
SEC("tp_btf/sock_send_length")
int on_send(__u64 *ctx)
{
	int ret = (int)ctx[1];
	if (ret <= 0)
		return 0;
	struct proc_stat *e = bpf_map_lookup_elem(&procs, &(__u32){bpf_get_current_pid_tgid() >> 32});
	if (e)
		add(&e->net_tx, ret);
	return 0;
}

/* sock_recv_length(struct sock *sk, int ret, int flags) */
SEC("tp_btf/sock_recv_length")
int on_recv(__u64 *ctx)
{
	int ret = (int)ctx[1];
	if (ret <= 0)
		return 0;
	struct proc_stat *e = bpf_map_lookup_elem(&procs, &(__u32){bpf_get_current_pid_tgid() >> 32});
	if (e)
		add(&e->net_rx, ret);
	return 0;
}

/* block_bio_queue(struct bio *bio): runs in the submitting task */
SEC("tp_btf/block_bio_queue")
int on_bio(__u64 *ctx)
{
	struct bio *bio = (struct bio *)ctx[0];
	__u32 op = bio->bi_opf & REQ_OP_MASK;
	__u32 bytes = bio->bi_iter.bi_size;
	struct proc_stat *e = bpf_map_lookup_elem(&procs, &(__u32){bpf_get_current_pid_tgid() >> 32});
	if (!e)
		return 0;
	if (op == REQ_OP_READ)
		add(&e->disk_read, bytes);
	else if (op == REQ_OP_WRITE)
		add(&e->disk_write, bytes);
	return 0;
}

/* irq_handler_entry(int irq, struct irqaction *action) */
SEC("tp_btf/irq_handler_entry")
int on_irq(__u64 *ctx)
{
	add_to(&irqs, (__u32)ctx[0], 1);
	return 0;
}

/* cpu_idle(unsigned int state, unsigned int cpu_id): state PWR_EVENT_EXIT leaves idle */
SEC("tp_btf/cpu_idle")
int on_idle(__u64 *ctx)
{
	__u32 state = (__u32)ctx[0];
	__u32 cpu = (__u32)ctx[1];
	struct cpu_mark *mark = bpf_map_lookup_elem(&idle_mark, &cpu);
	if (!mark)
		return 0;
	__u64 now = bpf_ktime_get_ns();
	if (mark->valid && mark->value != PWR_EVENT_EXIT)
		add_to(&idle_ns, mark->value, now - mark->since);
	mark->since = now;
	mark->value = state;
	mark->valid = 1;
	return 0;
}

/* cpu_frequency(unsigned int frequency, unsigned int cpu_id): kHz, on every change */
SEC("tp_btf/cpu_frequency")
int on_freq(__u64 *ctx)
{
	__u32 khz = (__u32)ctx[0];
	__u32 cpu = (__u32)ctx[1];
	struct cpu_mark *mark = bpf_map_lookup_elem(&freq_mark, &cpu);
	if (!mark)
		return 0;
	__u64 now = bpf_ktime_get_ns();
	if (mark->valid)
		add_to(&freq_ns, mark->value, now - mark->since);
	mark->since = now;
	mark->value = khz;
	mark->valid = 1;
	return 0;
}
