/* Threads contend on a futex-based mutex (pthread_mutex_t in static glibc); the sum must be exact. */
#include <pthread.h>
#include <stdio.h>

#define THREADS 8
#define ITERS 2000

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static long counter;

static void *work(void *arg)
{
	for (int i = 0; i < ITERS; i++) {
		pthread_mutex_lock(&lock);
		long v = counter;
		if (i % 64 == 0)
			sched_yield();
		counter = v + 1;
		pthread_mutex_unlock(&lock);
	}
	return arg;
}

int main(void)
{
	pthread_t t[THREADS];
	for (int i = 0; i < THREADS; i++)
		if (pthread_create(&t[i], NULL, work, NULL) != 0)
			return 2;
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	printf("sum=%ld\n", counter);
	return counter == (long)THREADS * ITERS ? 0 : 1;
}
