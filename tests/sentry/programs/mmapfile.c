/* MAP_SHARED file mappings: stores reach the file on munmap and msync; a forked child's exit does not undo them. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define CHECK(c) do { if (!(c)) { printf("FAIL %s line %d\n", #c, __LINE__); return 1; } } while (0)

int main(void)
{
	int fd = open("/tmp/mapped", O_RDWR | O_CREAT | O_TRUNC, 0600);
	CHECK(fd >= 0);
	char buf[10000];
	memset(buf, 'a', sizeof buf);
	CHECK(write(fd, buf, sizeof buf) == sizeof buf);
	char *p = mmap(NULL, sizeof buf, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	CHECK(p != MAP_FAILED && p[9999] == 'a');
	p[0] = 'X';
	p[8000] = 'Y';
	CHECK(msync(p, sizeof buf, MS_SYNC) == 0);
	char c;
	CHECK(pread(fd, &c, 1, 8000) == 1 && c == 'Y');
	pid_t pid = fork();
	if (pid == 0)
		_exit(0);
	int status;
	CHECK(waitpid(pid, &status, 0) == pid);
	p[1] = 'Z';
	CHECK(munmap(p, sizeof buf) == 0);
	CHECK(pread(fd, buf, sizeof buf, 0) == sizeof buf);
	CHECK(buf[0] == 'X' && buf[1] == 'Z' && buf[2] == 'a' && buf[8000] == 'Y' && buf[9999] == 'a');
	struct stat st;
	CHECK(fstat(fd, &st) == 0 && st.st_size == sizeof buf);
	printf("mmapfile ok\n");
	return 0;
}
