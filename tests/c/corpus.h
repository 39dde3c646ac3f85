/* Shared by the differential C corpus: the same source builds for BPF (clang -target bpf)
 * and natively (gcc), so both must compute the same answers for the same inputs. */
#ifndef CORPUS_H
#define CORPUS_H
#ifdef __bpf__
#include "iotbpf.h"
#define CPU __BPF_CPU_VERSION__
#define ENTRY SEC("prog")
#else
#include <stdint.h>
typedef uint8_t __u8;
typedef int8_t __s8;
typedef uint16_t __u16;
typedef int16_t __s16;
typedef uint32_t __u32;
typedef int32_t __s32;
typedef uint64_t __u64;
typedef int64_t __s64;
#define SEC(name)
#define __noinline __attribute__((noinline))
#define ENTRY
#endif
struct input { __u64 a, b, c, d; };
#endif
