/* argv reaches main; the exit code comes back. */
#include <stdio.h>

int main(int argc, char **argv)
{
	printf("%d %s %s\n", argc, argv[1], argv[2]);
	return 42;
}
