/* Read /proc/self/maps and find the [stack] line that contains a local variable's address. */
#include <stdio.h>
#include <string.h>

int main(void)
{
	int local = 0;
	unsigned long addr = (unsigned long)&local;
	FILE *f = fopen("/proc/self/maps", "r");
	if (!f)
		return 2;
	char line[512];
	while (fgets(line, sizeof line, f)) {
		unsigned long lo, hi;
		if (sscanf(line, "%lx-%lx", &lo, &hi) == 2 && strstr(line, "[stack]") && lo <= addr && addr < hi) {
			printf("found stack %lx-%lx\n", lo, hi);
			return 0;
		}
	}
	return 1;
}
