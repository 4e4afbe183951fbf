/* A NULL write: the process must die of SIGSEGV (exit status 139 through the shell/do). */
int main(void)
{
	*(volatile int *)0 = 1;
	return 0;
}
