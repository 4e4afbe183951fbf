/*
 * The native / runsc side of bench/platform_roundtrip.py: the same operations
 * the Python platforms are timed on, done by a static C program.
 *
 *   loop getppid N          N raw getppid system calls
 *   loop fault N            touch N fresh pages of an anonymous mapping (one fault each)
 *   loop mapunmap N PAGES   N x (mmap PAGES populated pages, munmap them)
 *
 * Prints one line: "<op> n=<N> median_ns=<per-op median over chunks> mean_ns=<per-op mean>".
 * Operations are timed in chunks of CHUNK with CLOCK_MONOTONIC, so the timer's
 * own cost (about 30 ns, vDSO) is amortised; the median of chunk means is
 * robust to a preempted chunk on a busy 2-core host.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define CHUNK 100
#define PAGE 4096L

static long now_ns(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000L + ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static void report(const char *op, long n, double *chunks, long nchunks, long total_ns) {
	qsort(chunks, nchunks, sizeof(double), cmp_double);
	printf("%s n=%ld median_ns=%.1f mean_ns=%.1f\n", op, n, chunks[nchunks / 2], (double)total_ns / n);
}

static void do_getppid(long chunk) {
	for (long i = 0; i < chunk; i++)
		syscall(SYS_getppid);
}

static char *fault_area;
static void do_fault(long chunk) {
	for (long i = 0; i < chunk; i++) {
		fault_area[0] = 1;
		fault_area += PAGE;
	}
}

static long map_pages;
static void do_mapunmap(long chunk) {
	for (long i = 0; i < chunk; i++) {
		void *p = mmap(NULL, map_pages * PAGE, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
		if (p == MAP_FAILED) {
			perror("mmap");
			exit(1);
		}
		munmap(p, map_pages * PAGE);
	}
}

int main(int argc, char **argv) {
	if (argc < 3) {
		fprintf(stderr, "usage: %s getppid|fault|mapunmap N [PAGES]\n", argv[0]);
		return 2;
	}
	const char *op = argv[1];
	long n = atol(argv[2]);
	void (*body)(long) = NULL;
	if (!strcmp(op, "getppid")) {
		body = do_getppid;
	} else if (!strcmp(op, "fault")) {
		fault_area = mmap(NULL, n * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (fault_area == MAP_FAILED) {
			perror("mmap");
			return 1;
		}
		madvise(fault_area, n * PAGE, MADV_NOHUGEPAGE);
		body = do_fault;
	} else if (!strcmp(op, "mapunmap") && argc == 4) {
		map_pages = atol(argv[3]);
		body = do_mapunmap;
	} else {
		fprintf(stderr, "unknown operation %s\n", op);
		return 2;
	}
	long nchunks = (n + CHUNK - 1) / CHUNK;
	double *chunks = calloc(nchunks, sizeof(double));
	long total = 0;
	for (long c = 0; c < nchunks; c++) {
		long len = (c + 1) * CHUNK <= n ? CHUNK : n - c * CHUNK;
		long t0 = now_ns();
		body(len);
		long dt = now_ns() - t0;
		chunks[c] = (double)dt / len;
		total += dt;
	}
	report(op, n, chunks, nchunks, total);
	return 0;
}
