/* Workloads for the in-kernel monitor test, compiled natively under three names:
 *   NAME burn MS       spin on the CPU for MS milliseconds of its own CPU time, print the CPU ns used
 *   NAME net BYTES     send BYTES to itself over TCP on 127.0.0.1 and receive them, print the count
 *   NAME switch N [US] two processes ping-pong one byte over pipes N times (2N context switches),
 *                      the first sleeping US microseconds between round trips (paced load)
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static long long cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(int argc, char **argv)
{
	if (argc != 3 && argc != 4)
		return 2;
	long long amount = atoll(argv[2]);
	if (strcmp(argv[1], "burn") == 0) {
		volatile unsigned long x = 0;
		while (cpu_ns() < amount * 1000000LL)
			for (int i = 0; i < 10000; i++)
				x += i;
		printf("%lld\n", cpu_ns());
		return 0;
	}
	if (strcmp(argv[1], "switch") == 0) {
		int ab[2], ba[2];
		char c = 0;
		if (pipe(ab) || pipe(ba))
			return 1;
		long pace = argc == 4 ? atol(argv[3]) : 0;
		if (fork() == 0) { /* ends when the parent's write end closes (it exits or is killed) */
			close(ab[1]);
			close(ba[0]);
			while (read(ab[0], &c, 1) == 1 && write(ba[1], &c, 1) == 1)
				;
			return 0;
		}
		close(ab[0]);
		close(ba[1]);
		for (long long i = 0; i < amount; i++) {
			if (write(ab[1], &c, 1) != 1 || read(ba[0], &c, 1) != 1)
				return 1;
			if (pace)
				usleep(pace);
		}
		printf("%lld\n", amount);
		return 0;
	}
	int srv = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(addr);
	if (bind(srv, (struct sockaddr *)&addr, sizeof(addr)) || listen(srv, 1) ||
	    getsockname(srv, (struct sockaddr *)&addr, &len))
		return 1;
	int cli = socket(AF_INET, SOCK_STREAM, 0);
	if (connect(cli, (struct sockaddr *)&addr, sizeof(addr)))
		return 1;
	int conn = accept(srv, NULL, NULL);
	static char buf[65536];
	long long sent = 0, got = 0;
	while (got < amount) {
		if (sent < amount) {
			long long n = amount - sent < 16384 ? amount - sent : 16384;
			ssize_t w = send(cli, buf, n, 0);
			if (w < 0)
				return 1;
			sent += w;
		}
		ssize_t r = recv(conn, buf, sizeof(buf), 0);
		if (r <= 0)
			return 1;
		got += r;
	}
	printf("%lld %lld\n", sent, got);
	return 0;
}
