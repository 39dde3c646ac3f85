/* Several globals of different sizes in .data, .bss and .rodata (the loader's views must use
 * each variable's own offset). The program returns the one selected by in->a, so a test can
 * compare what the program reads with what the Python view reads and writes. */
#include "iotbpf.h"

struct input { __u64 a, b, c, d; };
struct point { __u32 x; __u16 y; __u8 z; };

__u8 tiny = 7;                                   /* .data */
__u32 scale = 10;
__u32 table[4] = {1, 2, 3, 4};
__u64 big = 0x1122334455667788ULL;
__u16 half = 0xBEEF;
__u64 total;                                     /* .bss */
__u16 counters[3];
struct point where;
__u8 flag_bss;
const __u32 limits[2] = {100, 200};              /* .rodata */
const __u8 level = 3;
const __u64 magic = 0xCAFEF00DULL;

SEC("prog") __u64 read_global(struct input *in)
{
	total += 1;
	switch (in->a) {
	case 0: return tiny;
	case 1: return scale;
	case 2: return table[0] | table[1] << 8 | table[2] << 16 | (__u64)table[3] << 24;
	case 3: return big;
	case 4: return half;
	case 5: return total;
	case 6: return counters[0] | counters[1] << 16 | (__u64)counters[2] << 32;
	case 7: return where.x | (__u64)where.y << 32 | (__u64)where.z << 48;
	case 8: return flag_bss;
	case 9: return limits[0] | (__u64)limits[1] << 32;
	case 10: return level;
	case 11: return magic;
	}
	return ~0ULL;
}
