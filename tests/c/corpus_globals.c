/* Globals (.data, .bss), read-only tables (.rodata), strings (.rodata.str), subprogram calls. */
#include "corpus.h"

__u64 calls = 7;                       /* .data */
__u32 histogram[8];                    /* .bss */
const __u32 primes[8] = {2, 3, 5, 7, 11, 13, 17, 19};  /* .rodata */
static const char digits[] = "0123456789abcdef";

static __noinline __u64 weigh(__u64 x, __u32 i)
{
	return x * primes[i & 7] + digits[(x >> 4) & 15];
}

static __noinline __u32 name_hash(const char *s)
{
	__u32 h = 5381;
	for (int i = 0; i < 16 && s[i]; i++)
		h = h * 33 + (__u8)s[i];
	return h;
}

ENTRY __u64 run(struct input *in)
{
	calls += 1;
	histogram[in->a & 7] += 1;
	__u64 acc = weigh(in->b, (__u32)in->a) ^ name_hash("iotbpf-node");
	acc += histogram[in->c & 7] * 1000 + calls;
	return acc + digits[in->d & 15];
}
