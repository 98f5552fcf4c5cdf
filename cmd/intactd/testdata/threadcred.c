/*
 * threadcred: exec a program from a thread whose credentials differ from
 * its thread group leader's (TestE2EThreadCredentials).
 *
 *     threadcred PROGRAM LEADER_UID THREAD_UID
 *
 * The leader and a second thread each set their own uids with the raw
 * setresuid system call (glibc's setresuid() would change every thread),
 * -1 keeps them; then the second thread execs PROGRAM. Exit status: the
 * program's, 126 when execve fails with EPERM (denied), 3 when a uid
 * cannot be set, 4 for any other execve error.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static char *program;
static long thread_uid;
static int ready[2];

static int set_own_uid(long uid)
{
	if (uid < 0)
		return 0;
	return syscall(SYS_setresuid, uid, uid, uid);
}

static void *thread(void *arg)
{
	char c;
	char *argv[] = {program, NULL};

	(void)arg;
	if (read(ready[0], &c, 1) != 1) /* the leader has set its uid */
		_exit(3);
	if (set_own_uid(thread_uid) != 0) {
		perror("threadcred: setresuid (thread)");
		_exit(3);
	}
	execv(program, argv);
	fprintf(stderr, "threadcred: execv %s: %s\n", program, strerror(errno));
	_exit(errno == EPERM ? 126 : 4);
}

int main(int argc, char **argv)
{
	pthread_t t;

	if (argc != 4) {
		fprintf(stderr, "usage: threadcred PROGRAM LEADER_UID THREAD_UID\n");
		return 2;
	}
	program = argv[1];
	thread_uid = atol(argv[3]);
	if (pipe(ready) != 0 || pthread_create(&t, NULL, thread, NULL) != 0)
		return 2;
	/* The thread exists before the leader changes: it keeps its own uids. */
	if (set_own_uid(atol(argv[2])) != 0) {
		perror("threadcred: setresuid (leader)");
		return 3;
	}
	if (write(ready[1], "x", 1) != 1)
		return 2;
	pthread_join(t, NULL);
	return 5; /* not reached: the exec replaces the process */
}
