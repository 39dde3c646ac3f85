/* A second linking shape: programs in two sections, all sharing one static function that calls
 * a global one, plus a program with a same-section local loop and no calls. */
#include "corpus.h"

__u32 counts[4];                               /* .bss */

__noinline __u64 fold(__u64 x)
{
	counts[x & 3] += 1;
	return (x ^ (x >> 29)) + counts[x & 3];
}

static __noinline __u64 shared(__u64 x, __u64 y)
{
	return fold(x) * 5 + fold(y);
}

#ifdef __bpf__
#define ENTRY2 SEC("prog2")
#else
#define ENTRY2
#endif

ENTRY __u64 q_one(struct input *in)
{
	return shared(in->a, in->b);
}

ENTRY2 __u64 q_two(struct input *in)
{
	return shared(in->c, in->d) - fold(in->a);
}

ENTRY2 __u64 q_plain(struct input *in)
{
	__u64 acc = in->a;
	for (int i = 0; i < 8; i++)
		acc = acc * 6364136223846793005ULL + in->b;
	return acc;
}
