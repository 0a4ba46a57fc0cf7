/*
 * A forked child that does one piece of work on a copy-on-write view of
 * the whole process (the background fold of plugin/persist.c: writing a
 * snapshot while the broker goes on), and reports on a pipe.
 *
 * What the child is allowed: it keeps only the descriptor it writes to and
 * its end of the pipe (every other one, the broker's listening sockets,
 * its clients' connections and the state folder's lock among them, is
 * closed first thing, so that a broker started after this one dies can
 * bind its port and take the lock, and no client sees a half-open
 * connection), standard input and outputs go to /dev/null, the broker's
 * signal handlers are reset, it dies with its parent (PR_SET_PDEATHSIG,
 * then a check that the parent is still the one that forked it), and it
 * leaves with _exit (no atexit handler, no stdio flush of the broker's
 * buffers). The work may allocate (glibc's fork makes malloc usable in the
 * child of a threaded process) but must not log through the broker or
 * touch a lock another thread could have held.
 *
 * The parent never waits: fold_child_poll reaps with WNOHANG and reads
 * the report without blocking. Nothing here installs a signal handler.
 */
#ifndef FOLD_CHILD_H
#define FOLD_CHILD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define FOLD_REPORT_TEXT 4000   /* the report stays below PIPE_BUF: one atomic write */

/* What the child sends back: whether the work succeeded, a number it
 * returns, and on failure a sentence. */
struct fold_report {
	bool ok;
	uint64_t value;
	char error[FOLD_REPORT_TEXT];
};

/* The work, run in the child with the descriptor it may write to. */
typedef void (*fold_work_fn)(void *context, int fd, struct fold_report *report);

struct fold_child {
	pid_t pid;        /* 0: none running */
	int report_fd;    /* the parent's end of the pipe */
};

enum fold_child_state { FOLD_CHILD_NONE, FOLD_CHILD_RUNNING, FOLD_CHILD_SUCCEEDED, FOLD_CHILD_FAILED };

/* Forks a child that runs work(context, fd, ...) and exits. False with a
 * sentence in error (nothing started) when the pipe or fork fails. */
bool fold_child_start(struct fold_child *child, int fd, fold_work_fn work, void *context,
		char *error, size_t error_len);
bool fold_child_running(const struct fold_child *child);
/* Without blocking: RUNNING while it works; SUCCEEDED or FAILED once, when
 * it has exited and is reaped (then report holds what it said, or why it
 * is counted as failed: killed by a signal, exited without a report). */
enum fold_child_state fold_child_poll(struct fold_child *child, struct fold_report *report);
/* Kills a running child and reaps it (SIGKILL: it holds nothing that must
 * be released, and never renames a file). */
void fold_child_kill(struct fold_child *child);

#endif
