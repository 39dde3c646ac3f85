/* Loops: bit counting, a table-driven CRC over the input bytes, sorting on the stack. */
#include "corpus.h"

static const __u32 crc_table[16] = {
	0x00000000, 0x1db71064, 0x3b6e20c8, 0x26d930ac, 0x76dc4190, 0x6b6b51f4, 0x4db26158,
	0x5005713c, 0xedb88320, 0xf00f9344, 0xd6d6a3e8, 0xcb61b38c, 0x9b64c2b0, 0x86d3d2d4,
	0xa00ae278, 0xbdbdf21c,
};

ENTRY __u64 run(struct input *in)
{
	const __u8 *p = (const __u8 *)in;
	__u32 crc = 0xffffffff;
	for (int i = 0; i < 32; i++) {
		crc = crc_table[(crc ^ p[i]) & 15] ^ (crc >> 4);
		crc = crc_table[(crc ^ (p[i] >> 4)) & 15] ^ (crc >> 4);
	}
	__u64 bits = 0, x = in->a;
	while (x) {
		x &= x - 1;
		bits++;
	}
	__u8 v[8];
	for (int i = 0; i < 8; i++)
		v[i] = p[8 + i];
	for (int i = 0; i < 8; i++)
		for (int j = 0; j + 1 < 8 - i; j++)
			if (v[j] > v[j + 1]) {
				__u8 t = v[j];
				v[j] = v[j + 1];
				v[j + 1] = t;
			}
	__u64 sorted = 0;
	for (int i = 0; i < 8; i++)
		sorted = (sorted << 8) | v[i];
	return ((__u64)~crc << 32) ^ (bits << 56) ^ sorted;
}
