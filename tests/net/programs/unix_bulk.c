/* Backpressure: 8 MiB through a stream socket (writer blocks on a full buffer), datagram queue limits,
 * and four threads writing records into one seqpacket socket concurrently. */
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

#define TOTAL (8 << 20)

static uint32_t pattern(uint32_t i)
{
	return i * 2654435761u;
}

static void stream_bulk(void)
{
	int sv[2];
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	pid_t child = fork();
	if (child == 0) {
		close(sv[0]);
		static uint32_t buf[16384];
		uint32_t n = 0;
		for (size_t sent = 0; sent < TOTAL;) {
			for (size_t i = 0; i < sizeof(buf) / 4; i++)
				buf[i] = pattern(n + i);
			ssize_t w = write(sv[1], buf, sizeof(buf));
			CHECK(w == sizeof(buf)); /* blocking writes complete */
			sent += w;
			n += sizeof(buf) / 4;
		}
		_exit(0);
	}
	close(sv[1]);
	static uint32_t in[5000];
	size_t got = 0;
	uint32_t n = 0;
	ssize_t r;
	/* Odd read sizes cross the writer's chunks. */
	while ((r = read(sv[0], (char *)in + (got % 4), sizeof(in) - (got % 4) - 4)) > 0) {
		size_t have = (got % 4) + r;
		for (size_t i = 0; i + 4 <= have; i += 4, n++) {
			uint32_t v;
			memcpy(&v, (char *)in + i, 4);
			CHECK(v == pattern(n));
		}
		memmove(in, (char *)in + (have / 4) * 4, have % 4);
		got += r;
	}
	CHECK(r == 0 && got == TOTAL);
	int status;
	CHECK(waitpid(child, &status, 0) == child && WIFEXITED(status) && WEXITSTATUS(status) == 0);
	close(sv[0]);
}

static void dgram_backpressure(void)
{
	int sv[2];
	CHECK(socketpair(AF_UNIX, SOCK_DGRAM, 0, sv) == 0);
	CHECK(fcntl(sv[0], F_SETFL, O_NONBLOCK) == 0);
	char msg[1024] = {0};
	int queued = 0;
	while (send(sv[0], msg, sizeof(msg), 0) == sizeof(msg))
		queued++;
	CHECK(errno == EAGAIN && queued > 10);
	/* A blocking sender waits until the reader makes room. */
	CHECK(fcntl(sv[0], F_SETFL, 0) == 0);
	pid_t child = fork();
	if (child == 0) {
		usleep(50000);
		for (int i = 0; i <= queued; i++)
			CHECK(recv(sv[1], msg, sizeof(msg), 0) == sizeof(msg));
		_exit(0);
	}
	CHECK(send(sv[0], msg, sizeof(msg), 0) == sizeof(msg));
	int status;
	CHECK(waitpid(child, &status, 0) == child && WIFEXITED(status) && WEXITSTATUS(status) == 0);
	close(sv[0]);
	close(sv[1]);
}

static int seq[2];

static void *writer(void *arg)
{
	long id = (long)arg;
	char rec[100];
	for (int i = 0; i < 500; i++) {
		memset(rec, 'a' + id, sizeof(rec));
		CHECK(write(seq[0], rec, 10 + id * 20) == 10 + id * 20);
	}
	return NULL;
}

static void seqpacket_threads(void)
{
	CHECK(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, seq) == 0);
	pthread_t t[4];
	for (long i = 0; i < 4; i++)
		CHECK(pthread_create(&t[i], NULL, writer, (void *)i) == 0);
	int counts[4] = {0};
	char rec[200];
	for (int i = 0; i < 2000; i++) {
		ssize_t n = read(seq[1], rec, sizeof(rec));
		CHECK(n >= 10 && (n - 10) % 20 == 0);
		int id = (n - 10) / 20;
		CHECK(id < 4 && rec[0] == 'a' + id && rec[n - 1] == 'a' + id);
		counts[id]++;
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		CHECK(counts[i] == 500);
	}
}

int main(void)
{
	stream_bulk();
	dgram_backpressure();
	seqpacket_threads();
	printf("unix_bulk ok\n");
	return 0;
}
