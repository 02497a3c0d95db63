/* Benchmark workloads for bench/overhead.py and bench/collector_cost.py.
 *
 * Compiled at run time into a temp dir: gcc -O2 -o wl wl.c
 * Every mode prints one line "elapsed_s=<wall seconds> <extra>" on stdout; the wall
 * clock is CLOCK_MONOTONIC around the work itself (process start-up excluded).
 *
 *   wl forkexec N P      P workers, each fork+execve("/bin/true")+waitpid N/P times
 *   wl sysio N FILE      N iterations of: 4-byte write() to FILE, 4-byte pread() of FILE,
 *                        4-byte write() to /dev/null, 4-byte read() of /dev/null (4N syscalls)
 *   wl cpu N             an integer loop of N iterations (no syscalls)
 *   wl pingpong N CPU    1-byte ping-pong over two pipes, N round trips, both processes
 *                        pinned to CPU (so every hop is a context switch); CPU<0: no pinning
 *   wl pace RATE SECS    fork+execve("/bin/true") RATE times per second for SECS seconds,
 *                        on absolute deadlines; prints launched=<n> ok=<n>
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
	perror(what);
	exit(2);
}

static int spawn_true(void)
{
	char *argv[] = {"true", NULL};
	pid_t pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		execve("/bin/true", argv, environ);
		_exit(127);
	}
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			die("waitpid");
	return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

static int forkexec(long n, int p)
{
	double t0 = now();
	long per = n / p;
	for (int w = 0; w < p; w++) {
		pid_t pid = fork();
		if (pid < 0)
			die("fork");
		if (pid == 0) {
			long ok = 0;
			for (long i = 0; i < per; i++)
				ok += spawn_true();
			_exit(ok == per ? 0 : 1);
		}
	}
	int bad = 0, st;
	for (int w = 0; w < p; w++) {
		if (wait(&st) < 0)
			die("wait");
		bad += !(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	printf("elapsed_s=%.6f execs=%ld failed_workers=%d\n", now() - t0, per * p, bad);
	return bad ? 1 : 0;
}

static int sysio(long n, const char *path)
{
	int f = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	int dn = open("/dev/null", O_RDWR);
	if (f < 0 || dn < 0)
		die("open");
	char buf[4] = {'a', 'b', 'c', 'd'};
	double t0 = now();
	for (long i = 0; i < n; i++) {
		if ((i & 1023) == 0 && lseek(f, 0, SEEK_SET) < 0) /* keep the file at 4 KiB */
			die("lseek");
		if (write(f, buf, 4) != 4)
			die("write");
		if (pread(f, buf, 4, 0) != 4)
			die("pread");
		if (write(dn, buf, 4) != 4)
			die("write /dev/null");
		if (read(dn, buf, 4) != 0)
			die("read /dev/null");
	}
	printf("elapsed_s=%.6f syscalls=%ld\n", now() - t0, 4 * n + n / 1024);
	close(f);
	close(dn);
	unlink(path);
	return 0;
}

static int cpu(long n)
{
	volatile uint64_t x = 1;
	double t0 = now();
	for (long i = 0; i < n; i++)
		x = x * 6364136223846793005ULL + 1442695040888963407ULL;
	printf("elapsed_s=%.6f x=%llu\n", now() - t0, (unsigned long long)x);
	return 0;
}

static void pin(int c)
{
	if (c < 0)
		return;
	cpu_set_t s;
	CPU_ZERO(&s);
	CPU_SET(c, &s);
	if (sched_setaffinity(0, sizeof(s), &s))
		die("sched_setaffinity");
}

static int pingpong(long n, int c)
{
	int a[2], b[2];
	char x = 'x';
	if (pipe(a) || pipe(b))
		die("pipe");
	pin(c);
	pid_t pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		for (long i = 0; i < n; i++) {
			if (read(a[0], &x, 1) != 1 || write(b[1], &x, 1) != 1)
				_exit(1);
		}
		_exit(0);
	}
	double t0 = now();
	for (long i = 0; i < n; i++) {
		if (write(a[1], &x, 1) != 1 || read(b[0], &x, 1) != 1)
			die("pingpong");
	}
	double el = now() - t0;
	int st;
	waitpid(pid, &st, 0);
	printf("elapsed_s=%.6f round_trips=%ld\n", el, n);
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : 1;
}

static int pace(double rate, double secs)
{
	struct timespec next;
	clock_gettime(CLOCK_MONOTONIC, &next);
	long total = (long)(rate * secs + 0.5), ok = 0;
	long step_ns = (long)(1e9 / rate);
	double t0 = now();
	for (long i = 0; i < total; i++) {
		ok += spawn_true();
		next.tv_nsec += step_ns;
		while (next.tv_nsec >= 1000000000L) {
			next.tv_nsec -= 1000000000L;
			next.tv_sec++;
		}
		while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL) == EINTR)
			;
	}
	printf("elapsed_s=%.6f launched=%ld ok=%ld\n", now() - t0, total, ok);
	return ok == total ? 0 : 1;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc >= 4 && !strcmp(argv[1], "forkexec"))
		return forkexec(atol(argv[2]), atoi(argv[3]) > 0 ? atoi(argv[3]) : 1);
	if (argc >= 4 && !strcmp(argv[1], "sysio"))
		return sysio(atol(argv[2]), argv[3]);
	if (argc >= 3 && !strcmp(argv[1], "cpu"))
		return cpu(atol(argv[2]));
	if (argc >= 4 && !strcmp(argv[1], "pingpong"))
		return pingpong(atol(argv[2]), atoi(argv[3]));
	if (argc >= 4 && !strcmp(argv[1], "pace"))
		return pace(atof(argv[2]), atof(argv[3]));
	fprintf(stderr, "usage: wl forkexec N P | sysio N FILE | cpu N | pingpong N CPU | pace RATE SECS\n");
	return 2;
}
