// SPDX-License-Identifier: GPL-2.0
/* linux_monitor: per-process usage counted inside the running Linux kernel.
 *
 * Not an iotbpf node app: this object is loaded into Linux itself by iotbpf/platforms/kernel
 * (libbpf, CO-RE) behind `iotbpf monitor --backend ebpf`. The structures below declare only the
 * fields used, with preserve_access_index, so libbpf relocates their offsets against
 * /sys/kernel/btf/vmlinux when it loads the object.
 *
 * Nothing runs on a context switch. The scheduler already accounts every task's on-CPU time
 * (se.sum_exec_runtime, ns, updated at each switch and tick) and its context switches, and the
 * process keeps those of its dead threads (signal_struct): a task iterator (`dump_tasks`, run by
 * the reader once per sample with one read()) copies them out for every task. Events are used only
 * for what a sample cannot see:
 *   on_free     tp_btf/sched_process_free: a reaped process leaves its final totals in `procs`
 *               (short-lived processes count); the reader deletes the entry once it has read it
 *   on_exec     tp_btf/sched_process_exec: the file a process exec'd (named after it when gone)
 *   on_send/on_recv  tp_btf/sock_send_length/sock_recv_length: socket bytes per process (per-CPU
 *               map: no atomics)
 *   on_irq      tp_btf/irq_handler_entry: handler entries per line (per-CPU array)
 *   on_idle     tp_btf/cpu_idle: idle-state residency, loaded only where sysfs has no cpuidle
 *               statistics of the kernel's own (it fires at every idle entry and exit)
 *   on_freq     tp_btf/cpu_frequency: frequency residency (fires on changes only)
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
#define BPF_MAP_TYPE_PERCPU_HASH 5
#define BPF_MAP_TYPE_PERCPU_ARRAY 6
#define BPF_NOEXIST 1
#define PWR_EVENT_EXIT 0xffffffffu
#define MAX_IRQ 1024
#define MAX_CPUS 512

static void *(*bpf_map_lookup_elem)(void *map, const void *key) = (void *)1;
static long (*bpf_map_update_elem)(void *map, const void *key, const void *value, __u64 flags) = (void *)2;
static __u64 (*bpf_ktime_get_ns)(void) = (void *)5;
static __u64 (*bpf_get_current_pid_tgid)(void) = (void *)14;
static long (*bpf_probe_read_kernel)(void *dst, __u32 size, const void *unsafe_ptr) = (void *)113;
static long (*bpf_probe_read_kernel_str)(void *dst, __u32 size, const void *unsafe_ptr) = (void *)115;
static long (*bpf_seq_write)(void *m, const void *data, __u32 len) = (void *)127;

struct sched_entity {
	__u64 sum_exec_runtime;
} CORE;

struct task_io_accounting {
	__u64 read_bytes;
	__u64 write_bytes;
} CORE;

struct signal_struct {
	unsigned long nvcsw;
	unsigned long nivcsw;
	struct task_io_accounting ioac;
	__u64 sum_sched_runtime;
} CORE;

typedef struct {
	__u32 val;
} kuid_t;

struct cred {
	kuid_t uid;
} CORE;

struct task_struct {
	unsigned int flags;
	struct sched_entity se;
	unsigned long nvcsw;
	unsigned long nivcsw;
	__u64 start_boottime;
	int pid;
	int tgid;
	struct task_struct *group_leader;
	const struct cred *real_cred;
	struct signal_struct *signal;
	struct task_io_accounting ioac;
	char comm[16];
} CORE;

struct linux_binprm {
	const char *filename;
} CORE;

struct seq_file;

struct bpf_iter_meta {
	struct seq_file *seq;
} CORE;

struct bpf_iter__task {
	struct bpf_iter_meta *meta;
	struct task_struct *task;
} CORE;

/* One task as the iterator writes it (and one reaped process in `procs`, below): its counters since
 * it started. A thread-group leader's record also carries its process's dead threads (signal_struct),
 * so the records of one tgid sum to the process, as /proc/PID/stat and /proc/PID/io count it. */
struct task_rec {
	__u32 tgid;
	__u32 pid;
	__u32 flags;
	__u32 uid;
	__u64 cpu_ns;
	__u64 switches;
	__u64 read_bytes;
	__u64 write_bytes;
	__u64 start_ns; /* the process's start, ns since boot (CLOCK_BOOTTIME) */
	char comm[16];
};

struct proc_info {
	struct task_rec last; /* valid when exited: the process's final totals */
	__u64 execs;
	__u32 exited;
	__u32 pad;
	char exe[64];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 32768);
	__type(key, __u32);
	__type(value, struct proc_info);
} procs SEC(".maps");

struct net_bytes {
	__u64 tx;
	__u64 rx;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, struct net_bytes);
} net SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MAX_IRQ);
	__type(key, __u32);
	__type(value, __u64);
} irqs SEC(".maps");

struct cpu_mark {
	__u64 since;
	__u32 value;
	__u32 valid;
};

/* idle: this CPU's state since when (cpu_idle comes from the CPU it describes) */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct cpu_mark);
} idle_mark SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u64);
} idle_ns SEC(".maps");

/* frequency: by cpu_id (a policy's change is reported for each of its CPUs by whichever CPU made it;
 * rare, so plain maps and atomics) */
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

static __always_inline void fill(struct task_rec *r, struct task_struct *t)
{
	r->tgid = t->tgid;
	r->pid = t->pid;
	r->flags = t->flags;
	r->uid = t->real_cred->uid.val;
	r->cpu_ns = t->se.sum_exec_runtime;
	r->switches = t->nvcsw + t->nivcsw;
	r->read_bytes = t->ioac.read_bytes;
	r->write_bytes = t->ioac.write_bytes;
	r->start_ns = t->group_leader->start_boottime;
	if (t->pid == t->tgid) { /* the leader carries the process's dead threads */
		struct signal_struct *sig = t->signal;
		r->cpu_ns += sig->sum_sched_runtime;
		r->switches += sig->nvcsw + sig->nivcsw;
		r->read_bytes += sig->ioac.read_bytes;
		r->write_bytes += sig->ioac.write_bytes;
		bpf_probe_read_kernel(r->comm, sizeof(r->comm), t->comm);
	}
}

/* Every task, once per sample: the reader read()s the iterator's file. */
SEC("iter/task")
int dump_tasks(struct bpf_iter__task *ctx)
{
	struct task_struct *t = ctx->task;
	if (!t)
		return 0;
	struct task_rec r = {};
	fill(&r, t);
	bpf_seq_write(ctx->meta->seq, &r, sizeof(r));
	return 0;
}

static __always_inline struct proc_info *entry(__u32 tgid)
{
	struct proc_info *e = bpf_map_lookup_elem(&procs, &tgid);
	if (e)
		return e;
	struct proc_info fresh = {};
	bpf_map_update_elem(&procs, &tgid, &fresh, BPF_NOEXIST);
	return bpf_map_lookup_elem(&procs, &tgid);
}

/* sched_process_free(struct task_struct *p): p's last reference is going (an RCU callback after it was
 * reaped). For the thread-group leader, reaped last, signal_struct now holds every thread of the
 * process, the leader included (release_task folded them in): the process's final totals. */
SEC("tp_btf/sched_process_free")
int on_free(__u64 *ctx)
{
	struct task_struct *p = (struct task_struct *)ctx[0];
	if (p->pid != p->tgid)
		return 0;
	struct proc_info *e = entry(p->tgid);
	if (!e)
		return 0;
	struct signal_struct *sig = p->signal;
	struct task_rec *r = &e->last;
	r->tgid = p->tgid;
	r->pid = p->pid;
	r->flags = p->flags;
	r->uid = p->real_cred->uid.val;
	r->cpu_ns = sig->sum_sched_runtime;
	r->switches = sig->nvcsw + sig->nivcsw;
	r->read_bytes = sig->ioac.read_bytes;
	r->write_bytes = sig->ioac.write_bytes;
	r->start_ns = p->start_boottime;
	bpf_probe_read_kernel(r->comm, sizeof(r->comm), p->comm);
	e->exited = 1;
	return 0;
}

/* sched_process_exec(struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm) */
SEC("tp_btf/sched_process_exec")
int on_exec(__u64 *ctx)
{
	struct task_struct *p = (struct task_struct *)ctx[0];
	struct linux_binprm *bprm = (struct linux_binprm *)ctx[2];
	struct proc_info *e = entry(p->tgid);
	if (!e)
		return 0;
	e->execs += 1; /* exec runs in the process itself: no other writer */
	bpf_probe_read_kernel_str(e->exe, sizeof(e->exe), bprm->filename);
	return 0;
}

static __always_inline struct net_bytes *net_entry(void)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct net_bytes *n = bpf_map_lookup_elem(&net, &tgid);
	if (n)
		return n;
	struct net_bytes zero = {};
	bpf_map_update_elem(&net, &tgid, &zero, BPF_NOEXIST);
	return bpf_map_lookup_elem(&net, &tgid);
}

/* sock_send_length(struct sock *sk, int ret, int flags): bytes handed to a socket by current */
SEC("tp_btf/sock_send_length")
int on_send(__u64 *ctx)
{
	int ret = (int)ctx[1];
	if (ret <= 0)
		return 0;
	struct net_bytes *n = net_entry();
	if (n)
		n->tx += ret; /* this CPU's copy: no atomic */
	return 0;
}

/* sock_recv_length(struct sock *sk, int ret, int flags) */
SEC("tp_btf/sock_recv_length")
int on_recv(__u64 *ctx)
{
	int ret = (int)ctx[1];
	if (ret <= 0)
		return 0;
	struct net_bytes *n = net_entry();
	if (n)
		n->rx += ret;
	return 0;
}

/* irq_handler_entry(int irq, struct irqaction *action) */
SEC("tp_btf/irq_handler_entry")
int on_irq(__u64 *ctx)
{
	__u32 irq = (__u32)ctx[0];
	__u64 *v = bpf_map_lookup_elem(&irqs, &irq); /* NULL past MAX_IRQ */
	if (v)
		*v += 1;
	return 0;
}

/* cpu_idle(unsigned int state, unsigned int cpu_id): state PWR_EVENT_EXIT leaves idle */
SEC("tp_btf/cpu_idle")
int on_idle(__u64 *ctx)
{
	__u32 state = (__u32)ctx[0];
	struct cpu_mark *mark = bpf_map_lookup_elem(&idle_mark, &(__u32){0});
	if (!mark)
		return 0;
	__u64 now = bpf_ktime_get_ns();
	if (mark->valid && mark->value != PWR_EVENT_EXIT) {
		__u32 key = mark->value;
		__u64 d = now - mark->since;
		__u64 *v = bpf_map_lookup_elem(&idle_ns, &key);
		if (v)
			*v += d; /* this CPU's copy: no atomic */
		else
			bpf_map_update_elem(&idle_ns, &key, &d, BPF_NOEXIST);
	}
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
	if (mark->valid) {
		__u32 key = mark->value;
		__u64 d = now - mark->since;
		__u64 *v = bpf_map_lookup_elem(&freq_ns, &key);
		if (v)
			__sync_fetch_and_add(v, d);
		else
			bpf_map_update_elem(&freq_ns, &key, &d, BPF_NOEXIST);
	}
	mark->since = now;
	mark->value = khz;
	mark->valid = 1;
	return 0;
}
