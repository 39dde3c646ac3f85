"""Write an event handler in C, compile it with clang-19, verify it and run it on the eBPF VM.

The handler classifies temperature readings (centi-degrees, little-endian int32) into bands,
counts each band in a map and returns the band; Python feeds it a day of readings and reads
the counts back through the typed map view (decoded through the BTF types clang recorded).

    python examples/01_handler_in_c.py            # 1440 readings (one per minute for a day)
    python examples/01_handler_in_c.py --quick    # 60 readings (one every 24 minutes)
Needs clang-19 (apt install clang-19).
"""

import argparse
import math
import struct
import sys

import iotbpf

HANDLER_C = r"""
#include "iotbpf.h"

#define BANDS 4   /* cold < 15 C <= mild < 25 C <= warm < 35 C <= hot */

struct band_stats {
	__u64 readings;
	__s64 min_centi;
	__s64 max_centi;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, BANDS);
	__type(key, __u32);
	__type(value, struct band_stats);
} bands SEC(".maps");

/* A standalone run gets the input in r1 and its length in r2. */
SEC("classify")
int classify_reading(__u8 *data, __u64 len)
{
	if (len != 4)
		return -1;
	__s32 centi = *(__s32 *)data;
	__u32 band = centi < 1500 ? 0 : centi < 2500 ? 1 : centi < 3500 ? 2 : 3;
	struct band_stats *s = bpf_map_lookup_elem(&bands, &band);
	if (!s)
		return -1;
	if (s->readings == 0 || centi < s->min_centi)
		s->min_centi = centi;
	if (s->readings == 0 || centi > s->max_centi)
		s->max_centi = centi;
	s->readings += 1;
	return band;
}

char LICENSE[] SEC("license") = "GPL";
"""

BAND_NAMES = ("cold", "mild", "warm", "hot")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="60 readings instead of 1440")
    parser.add_argument("--engine", default="compiled", choices=("interp", "compiled"))
    args = parser.parse_args(argv)

    prog = iotbpf.Program.from_c(HANDLER_C, section="classify")
    listing = prog.disasm().splitlines()
    print("compiled %d instructions; the first ones:" % len(prog))
    print("\n".join("  " + line for line in listing[:6]) + "\n  ...")
    result = prog.verify(mem_size=4)
    print("verifier: %s" % result)

    n = 60 if args.quick else 1440
    returned = []
    for minute in range(0, 1440, 1440 // n):
        # a day's temperature: 10 C at night, 38 C in the afternoon
        centi = int(2400 - 1400 * math.cos(2 * math.pi * (minute % 1440 - 180) / 1440))
        returned.append(prog.run(mem=struct.pack("<i", centi), engine=args.engine))

    print("%d readings classified" % n)
    for band, stats in prog.maps["bands"].items():
        if stats["readings"]:
            print("  %-5s %5d readings, %6.2f .. %6.2f C" % (
                BAND_NAMES[band], stats["readings"], stats["min_centi"] / 100, stats["max_centi"] / 100))
    counts = dict((b, s["readings"]) for b, s in prog.maps["bands"].items())
    assert sum(counts.values()) == n
    assert all(counts[b] == returned.count(b) for b in counts), "map and return values disagree"
    return 0


if __name__ == "__main__":
    sys.exit(main())
