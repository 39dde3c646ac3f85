/* Byte swaps and endianness: network-order fields, 16/32/64-bit swaps. */
#include "corpus.h"

ENTRY __u64 run(struct input *in)
{
	__u16 h = __builtin_bswap16((__u16)in->a);
	__u32 w = __builtin_bswap32((__u32)in->b);
	__u64 q = __builtin_bswap64(in->c);
	const __u8 *p = (const __u8 *)&in->d;
	__u32 net = ((__u32)p[0] << 24) | ((__u32)p[1] << 16) | ((__u32)p[2] << 8) | p[3];
	return q ^ ((__u64)w << 16) ^ h ^ ((__u64)net << 7);
}
