/* Linking as libbpf does it: several programs in one object that share none, some or all of
 * their subprograms (static and global functions in .text, calls nested three deep, one
 * function no program calls). Each program must get exactly the functions it reaches.
 * Native builds pick the entry with -Drun=<program>. */
#include "corpus.h"

__u64 seen = 3;                         /* .data, used from a subprogram */
const __u64 mix[4] = {0x9E3779B97F4A7C15ULL, 3, 5, 0xFF51AFD7ED558CCDULL};  /* .rodata */

static __noinline __u64 square(__u64 x)
{
	return x * x;
}

static __noinline __u64 twist(__u64 x)
{
	return (x << 7 | x >> 57) ^ mix[x & 3];
}

__noinline __u64 global_add(__u64 x, __u64 y)     /* a global function in .text */
{
	return square(x) + y;
}

static __noinline __u64 deep(__u64 x)          /* deep -> twist -> (nothing) */
{
	seen += 1;
	return twist(x + seen) * 3;
}

static __noinline __u64 nobody_calls_me(__u64 x)
{
	return x / 7;
}

__noinline __u64 global_unused(__u64 x)
{
	return nobody_calls_me(x) + 1;
}

ENTRY __u64 p_none(struct input *in)           /* no subprogram */
{
	return in->a * 31 + in->b;
}

ENTRY __u64 p_square(struct input *in)         /* global_add -> square */
{
	return global_add(in->a, in->b);
}

ENTRY __u64 p_deep(struct input *in)           /* deep -> twist, none shared with p_square */
{
	return deep(in->c) ^ in->d;
}

ENTRY __u64 p_all(struct input *in)            /* every called function, some twice */
{
	__u64 r = global_add(in->a, 1) + deep(in->b) + square(in->c) + twist(in->d);
	return r ^ global_add(r, in->d);
}
