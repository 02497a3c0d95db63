/* Fork storm for the completeness test: a tree of depth 3 whose leaves exec
 * this same binary as `storm leaf ID MS`, live MS milliseconds and exit ID%200.
 * usage: storm MIDS SUBS LEAVES SEED */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/wait.h>

static void sleep_ms(int ms) {
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static int waitall(void) {
	int st, bad = 0;
	while (wait(&st) > 0)
		bad |= !WIFEXITED(st);
	return bad;
}

int main(int argc, char **argv) {
	if (argc == 4 && strcmp(argv[1], "leaf") == 0) {
		sleep_ms(atoi(argv[3]));
		return atoi(argv[2]) % 200;
	}
	if (argc != 5) {
		fprintf(stderr, "usage: storm MIDS SUBS LEAVES SEED\n");
		return 2;
	}
	int mids = atoi(argv[1]), subs = atoi(argv[2]), leaves = atoi(argv[3]);
	srand(atoi(argv[4]));
	char self[4096];
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	if (n <= 0)
		return 2;
	self[n] = 0;
	int id = 0;
	for (int m = 0; m < mids; m++) {
		int base_m = id;
		id += subs * leaves;
		if (fork() == 0) { /* depth 1 */
			for (int s = 0; s < subs; s++) {
				int base_s = base_m + s * leaves;
				if (fork() == 0) { /* depth 2 */
					for (int l = 0; l < leaves; l++) {
						int lid = base_s + l;
						int ms = 1 + rand() % 20;
						if (fork() == 0) { /* depth 3 */
							char a[16], b[16];
							snprintf(a, sizeof a, "%d", lid);
							snprintf(b, sizeof b, "%d", ms);
							execl(self, "storm", "leaf", a, b, (char *)NULL);
							_exit(127);
						}
					}
					_exit(waitall());
				}
				waitall();
			}
			_exit(0);
		}
	}
	return waitall();
}
