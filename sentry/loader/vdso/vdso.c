/*
 * The kvmsandbox vDSO: clock_gettime, gettimeofday, time, getcpu, clock_getres.
 *
 * Time comes from the vvar page the Sentry maps read-only just below this
 * image: a seqlock-protected (TSC base, nanoseconds base, mult, shift)
 * sample per clock. While the page is not valid (seq odd or valid == 0)
 * every function falls back to the real system call, which the Sentry
 * serves, so results are always correct; a valid page only saves the exit.
 */
#include <stdint.h>

struct timespec64 { int64_t tv_sec; int64_t tv_nsec; };
struct timeval64 { int64_t tv_sec; int64_t tv_usec; };

struct vvar {
	volatile uint32_t seq;
	volatile uint32_t valid;
	volatile uint64_t tsc_base;
	volatile int64_t mono_base_ns;
	volatile int64_t real_base_ns;
	volatile uint32_t mult;
	volatile uint32_t shift;
};

extern const struct vvar vvar_page __attribute__((visibility("hidden")));

#define NR_gettimeofday 96
#define NR_time 201
#define NR_clock_gettime 228
#define NR_clock_getres 229
#define NR_getcpu 309

static inline long sys2(long nr, long a, long b)
{
	long ret;
	__asm__ volatile("syscall" : "=a"(ret) : "a"(nr), "D"(a), "S"(b) : "rcx", "r11", "memory");
	return ret;
}

static inline long sys3(long nr, long a, long b, long c)
{
	long ret;
	__asm__ volatile("syscall" : "=a"(ret) : "a"(nr), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
	return ret;
}

static inline uint64_t rdtsc(void)
{
	uint32_t lo, hi;
	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return ((uint64_t)hi << 32) | lo;
}

/* Nanoseconds on CLOCK_MONOTONIC (realtime != 0: CLOCK_REALTIME); 0 with *ok = 0 if the page is unusable. */
static int64_t vvar_ns(int realtime, int *ok)
{
	const struct vvar *v = &vvar_page;
	uint32_t seq;
	int64_t ns;
	do {
		seq = v->seq;
		__asm__ volatile("" ::: "memory");
		if ((seq & 1) || !v->valid) {
			*ok = 0;
			return 0;
		}
		uint64_t tsc = rdtsc();
		uint64_t base = v->tsc_base;
		if (tsc < base) {
			*ok = 0;
			return 0;
		}
		uint64_t delta = (uint64_t)(((unsigned __int128)(tsc - base) * v->mult) >> v->shift);
		ns = (realtime ? v->real_base_ns : v->mono_base_ns) + (int64_t)delta;
		__asm__ volatile("" ::: "memory");
	} while (seq != v->seq);
	*ok = 1;
	return ns;
}

int __vdso_clock_gettime(int clock, struct timespec64 *ts)
{
	if (clock == 0 || clock == 1 || clock == 4 || clock == 5 || clock == 6 || clock == 7) {
		int ok;
		int64_t ns = vvar_ns(clock == 0 || clock == 5, &ok);
		if (ok) {
			ts->tv_sec = ns / 1000000000;
			ts->tv_nsec = ns % 1000000000;
			return 0;
		}
	}
	return (int)sys2(NR_clock_gettime, clock, (long)ts);
}

int __vdso_gettimeofday(struct timeval64 *tv, void *tz)
{
	if (tv && !tz) {
		int ok;
		int64_t ns = vvar_ns(1, &ok);
		if (ok) {
			tv->tv_sec = ns / 1000000000;
			tv->tv_usec = ns % 1000000000 / 1000;
			return 0;
		}
	}
	return (int)sys2(NR_gettimeofday, (long)tv, (long)tz);
}

int64_t __vdso_time(int64_t *t)
{
	int ok;
	int64_t ns = vvar_ns(1, &ok);
	if (!ok)
		return sys2(NR_time, (long)t, 0);
	int64_t sec = ns / 1000000000;
	if (t)
		*t = sec;
	return sec;
}

int __vdso_getcpu(unsigned *cpu, unsigned *node, void *unused)
{
	/* The sandbox has one CPU (node) as far as apps can tell. */
	(void)unused;
	if (cpu)
		*cpu = 0;
	if (node)
		*node = 0;
	return 0;
}

int __vdso_clock_getres(int clock, struct timespec64 *res)
{
	return (int)sys3(NR_clock_getres, clock, (long)res, 0);
}

int clock_gettime(int, struct timespec64 *) __attribute__((weak, alias("__vdso_clock_gettime")));
int gettimeofday(struct timeval64 *, void *) __attribute__((weak, alias("__vdso_gettimeofday")));
int64_t time(int64_t *) __attribute__((weak, alias("__vdso_time")));
int getcpu(unsigned *, unsigned *, void *) __attribute__((weak, alias("__vdso_getcpu")));
int clock_getres(int, struct timespec64 *) __attribute__((weak, alias("__vdso_clock_getres")));
