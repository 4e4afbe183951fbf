#include <signal.h>
#include <stdio.h>
#include <unistd.h>
static void h(int s, siginfo_t *si, void *u) { printf("sig %d code %#x addr %p\n", s, si->si_code, si->si_addr); fflush(stdout); _exit(0); }
int main(void) {
	struct sigaction sa = {0}; sa.sa_sigaction = h; sa.sa_flags = SA_SIGINFO; sigaction(SIGSEGV, &sa, NULL);
	__asm__ volatile("hlt");
	return 1;
}
