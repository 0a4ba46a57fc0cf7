/*
 * The forked child of a background fold: starting it, what it closes and
 * resets before it works, and reaping it from the broker's tick. See
 * plugin/fold_child.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fold_child.h"

/* The broker's own handlers (mosquitto sets these): in the child they would
 * only set the broker's flags, so that an operator's kill would not stop
 * it. SIGPIPE stays ignored: a report to a parent that is gone fails with
 * EPIPE instead. */
static const int broker_signals[] = {SIGINT, SIGTERM, SIGHUP, SIGUSR1, SIGUSR2};

static void close_range_of(unsigned first, unsigned last)
{
	if(first > last){
		return;
	}
	if(close_range(first, last, 0) == 0){
		return;
	}
	/* A kernel without close_range: one by one, up to the limit. */
	struct rlimit limit;
	unsigned highest = getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY
		? (unsigned)limit.rlim_cur : 65536;
	for(unsigned fd = first; fd <= last && fd < highest; fd++){
		close((int)fd);
	}
}

/* Every descriptor but the two it needs; the standard ones to /dev/null. */
static void close_all_but(int keep_a, int keep_b)
{
	unsigned low = (unsigned)(keep_a < keep_b ? keep_a : keep_b);
	unsigned high = (unsigned)(keep_a < keep_b ? keep_b : keep_a);
	close_range_of(3, low - 1);
	close_range_of(low + 1, high - 1);
	close_range_of(high + 1, ~0U);
	int null = open("/dev/null", O_RDWR);
	for(int fd = 0; fd <= 2 && null >= 0; fd++){
		if(fd != null) dup2(null, fd);
	}
	if(null > 2) close(null);
}

static void report_and_exit(int report_fd, const struct fold_report *report)
{
	/* One write below PIPE_BUF: the parent reads all of it or nothing. */
	ssize_t written = write(report_fd, report, sizeof(*report));
	_exit(written == (ssize_t)sizeof(*report) && report->ok ? 0 : 1);
}

static void run_child(pid_t parent, int fd, int report_fd, fold_work_fn work, void *context)
{
	/* First, so that a lock or a port is held as briefly as possible by a
	 * process that is not the broker. The state folder's lock is a flock,
	 * shared with the parent through the inherited open file: closing our
	 * copy leaves the parent's lock held (never LOCK_UN here: that would
	 * release it for both). */
	if(fd < 3 || report_fd < 3){
		_exit(1);
	}
	close_all_but(fd, report_fd);
	if(prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent){
		_exit(1);   /* the parent died before the death signal was set */
	}
	for(size_t i = 0; i < sizeof(broker_signals) / sizeof(broker_signals[0]); i++){
		signal(broker_signals[i], SIG_DFL);
	}
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	struct fold_report report = {0};
	work(context, fd, &report);
	report_and_exit(report_fd, &report);
}

bool fold_child_start(struct fold_child *child, int fd, fold_work_fn work, void *context,
		char *error, size_t error_len)
{
	int ends[2];
	if(pipe2(ends, O_CLOEXEC) != 0){
		snprintf(error, error_len, "cannot start a background fold: pipe failed: %s", strerror(errno));
		return false;
	}
	pid_t parent = getpid();
	pid_t pid = fork();
	if(pid == 0){
		close(ends[0]);
		run_child(parent, fd, ends[1], work, context);
	}
	int saved = errno;
	close(ends[1]);
	if(pid < 0){
		close(ends[0]);
		snprintf(error, error_len, "cannot start a background fold: fork failed: %s", strerror(saved));
		return false;
	}
	fcntl(ends[0], F_SETFL, fcntl(ends[0], F_GETFL) | O_NONBLOCK);
	child->pid = pid;
	child->report_fd = ends[0];
	return true;
}

bool fold_child_running(const struct fold_child *child)
{
	return child->pid > 0;
}

static void forget(struct fold_child *child)
{
	close(child->report_fd);
	child->report_fd = -1;
	child->pid = 0;
}

/* Why a child that exited is counted as failed when it did not say. */
static void explain_exit(int status, struct fold_report *report)
{
	report->ok = false;
	if(WIFSIGNALED(status)){
		snprintf(report->error, sizeof(report->error), "the background fold was killed by signal %d (%s)",
				WTERMSIG(status), strsignal(WTERMSIG(status)));
	}else{
		snprintf(report->error, sizeof(report->error), "the background fold exited with status %d "
				"without a report", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	}
}

/* With SIGCHLD ignored (by another plugin, say) the kernel reaps the
 * child itself and waitpid fails with ECHILD: then the pipe alone says
 * when it is done (end of file once the child has exited). */
static enum fold_child_state poll_pipe_only(struct fold_child *child, struct fold_report *report)
{
	struct fold_report said;
	ssize_t got = read(child->report_fd, &said, sizeof(said));
	if(got < 0 && (errno == EAGAIN || errno == EINTR)){
		return FOLD_CHILD_RUNNING;
	}
	forget(child);
	if(got == (ssize_t)sizeof(said)){
		said.error[sizeof(said.error) - 1] = '\0';
		*report = said;
	}else{
		*report = (struct fold_report){0};
		snprintf(report->error, sizeof(report->error), "the background fold exited without a report");
	}
	return report->ok ? FOLD_CHILD_SUCCEEDED : FOLD_CHILD_FAILED;
}

enum fold_child_state fold_child_poll(struct fold_child *child, struct fold_report *report)
{
	if(child->pid <= 0){
		return FOLD_CHILD_NONE;
	}
	int status;
	pid_t reaped = waitpid(child->pid, &status, WNOHANG);
	if(reaped == 0 || (reaped < 0 && errno == EINTR)){
		return FOLD_CHILD_RUNNING;
	}
	if(reaped < 0){
		return poll_pipe_only(child, report);
	}
	struct fold_report said;
	/* The child has exited: what it wrote, if anything, is in the pipe. */
	bool reported = read(child->report_fd, &said, sizeof(said)) == (ssize_t)sizeof(said);
	forget(child);
	if(reported && (!said.ok || (WIFEXITED(status) && WEXITSTATUS(status) == 0))){
		said.error[sizeof(said.error) - 1] = '\0';
		*report = said;
	}else{
		explain_exit(status, report);
	}
	return report->ok ? FOLD_CHILD_SUCCEEDED : FOLD_CHILD_FAILED;
}

void fold_child_kill(struct fold_child *child)
{
	if(child->pid <= 0){
		return;
	}
	kill(child->pid, SIGKILL);
	while(waitpid(child->pid, NULL, 0) < 0 && errno == EINTR){
		continue;
	}
	forget(child);
}

_Static_assert(sizeof(struct fold_report) <= PIPE_BUF, "a report is written in one atomic write");
