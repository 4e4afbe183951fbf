/* execve of a file that is not an executable (garbage with the x bit) must fail with ENOEXEC. */
#include <errno.h>
#include <stdio.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	char *args[] = {argv[1], NULL};
	execve(argv[1], args, NULL);
	printf("errno=%d\n", errno);
	return errno == ENOEXEC ? 0 : 1;
}
