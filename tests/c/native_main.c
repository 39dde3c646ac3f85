/* Native harness for the differential corpus: one line of 4 hex u64 per input on stdin,
 * prints run(&input) as hex per line, calling run() in order so global state evolves as in BPF. */
#include <stdio.h>
#include "corpus.h"

__u64 run(struct input *in);

int main(void)
{
	struct input in;
	unsigned long long a, b, c, d;
	while (scanf("%llx %llx %llx %llx", &a, &b, &c, &d) == 4) {
		in.a = a; in.b = b; in.c = c; in.d = d;
		printf("%llx\n", (unsigned long long)run(&in));
	}
	return 0;
}
