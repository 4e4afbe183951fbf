/* rdtsc for the Sentry's timekeeper (loaded with ctypes): it anchors the vDSO's time page to the TSC. */
#include <stdint.h>

uint64_t kvmsandbox_rdtsc(void)
{
	uint32_t lo, hi;
	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return ((uint64_t)hi << 32) | lo;
}
