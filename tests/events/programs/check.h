/* Shared by the test programs: CHECK prints the failing line and errno, then exits 1. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Set when a test runs the program on the host, to check its expectations against Linux itself. */
#define NATIVE (getenv("KVMSANDBOX_TEST_NATIVE") != NULL)

#define CHECK(cond)                                                                    \
	do {                                                                           \
		if (!(cond)) {                                                         \
			printf("FAIL %s:%d: %s (errno %d %s)\n", __FILE__, __LINE__, #cond, \
			       errno, strerror(errno));                                \
			fflush(stdout);                                                \
			exit(1);                                                       \
		}                                                                      \
	} while (0)
