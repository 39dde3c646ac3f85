/* Signed arithmetic: comparisons, arithmetic shifts, sign extension, signed division (v4). */
#include "corpus.h"

static __noinline __s64 clamp(__s64 x, __s64 lo, __s64 hi)
{
	return x < lo ? lo : x > hi ? hi : x;
}

ENTRY __u64 run(struct input *in)
{
	__s64 a = (__s64)in->a, b = (__s64)in->b;
	__s32 c = (__s32)in->c;
	__s8 s8 = (__s8)in->d;
	__s16 s16 = (__s16)(in->d >> 8);
	__s64 r = (a >> (in->c & 63)) + (__s64)s8 * 3 + s16 - (c >> 5);
	r ^= clamp(b, -1000, 1000) * 7;
	if ((__s32)in->d < -5)
		r += 11;
	if (a < b)
		r -= 13;
#if CPU >= 4
	__s64 d = (__s64)(__s32)in->d;
	if (d != 0 && !(a == (-0x7fffffffffffffffLL - 1) && d == -1))
		r += a / d + a % d;
	__s32 e = (__s32)in->b;
	if (c != 0 && !(e == (-0x7fffffff - 1) && c == -1))
		r += e / c - e % c;
#endif
	return (__u64)r;
}
