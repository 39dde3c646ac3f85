/* Recursion within the 8-frame limit, mutual calls, a loop over results. */
#include "corpus.h"

static __noinline __u64 fib(__u32 n)
{
	if (n < 2)
		return n;
	return fib(n - 1) + fib(n - 2);
}

static __noinline __u64 gcd(__u64 a, __u64 b)
{
	if (b == 0)
		return a;
	return gcd(b, a % b);
}

static __noinline __u64 depth(__u32 n, __u64 acc)
{
	if (n == 0)
		return acc;
	return depth(n - 1, acc * 3 + n) + 1;
}

ENTRY __u64 run(struct input *in)
{
	__u64 a = (in->a & 0xff) + 1, b = (in->b & 0xff) + 1;
	__u64 g = 0;
	/* gcd of bytes needs at most 6 steps below 256, so <= 7 frames plus run */
	if (a < 200 && b < 200)
		g = gcd(a, b);
	return fib(in->c % 7) * 1000003 + g * 17 + depth(in->d % 7, in->a);
}
