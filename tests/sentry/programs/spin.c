/* Spin in user code without system calls (with N extra spinning threads): only an interrupt can stop it. */
#include <pthread.h>
#include <stdlib.h>

static void *spin(void *arg)
{
	for (volatile unsigned long i = 0;; i++)
		;
	return arg;
}

int main(int argc, char **argv)
{
	int threads = argc > 1 ? atoi(argv[1]) : 0;
	pthread_t t;
	for (int i = 0; i < threads; i++)
		pthread_create(&t, NULL, spin, NULL);
	spin(NULL);
	return 0;
}
