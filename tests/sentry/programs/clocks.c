/* The vDSO clocks (through glibc) agree with the clock_gettime system call and never go backwards. */
#include <stdio.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static long long ns(struct timespec t) { return t.tv_sec * 1000000000LL + t.tv_nsec; }

int main(void)
{
	for (int clock = 0; clock <= 1; clock++) {
		struct timespec v, s, v2;
		long long prev = 0;
		for (int i = 0; i < 20000; i++) {
			clock_gettime(clock, &v);
			if (ns(v) < prev) {
				printf("clock %d went backwards\n", clock);
				return 1;
			}
			prev = ns(v);
		}
		clock_gettime(clock, &v);
		syscall(SYS_clock_gettime, clock, &s);
		clock_gettime(clock, &v2);
		long long d1 = ns(s) - ns(v), d2 = ns(v2) - ns(s);
		if (d1 < -2000000 || d2 < -2000000) {
			printf("clock %d: vdso and syscall disagree: %lld %lld\n", clock, d1, d2);
			return 1;
		}
	}
	struct timeval tv;
	gettimeofday(&tv, NULL);
	time_t t = time(NULL);
	if (t < tv.tv_sec - 1 || t > tv.tv_sec + 1)
		return 2;
	printf("clocks ok\n");
	return 0;
}
