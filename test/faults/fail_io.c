/*
 * An LD_PRELOAD shim for the fault-injection tests: makes write, fsync,
 * fdatasync, ftruncate, rename and unlink fail, but only on files in one folder and only
 * while the test asks for it, so that the broker starts and serves
 * normally and its sockets and log never see a fault.
 *
 *   FAIL_IO_FOLDER   the folder whose files fail (the plugin's state folder,
 *                    the folder itself included: its fsync after a rename)
 *   FAIL_IO_CONTROL  a file; while it exists, it holds the faults to inject
 *                    as words: the calls to fail ("write", "fsync" (which
 *                    also means fdatasync), "ftruncate", "rename",
 *                    "unlink") and one errno name
 *                    ("EIO", "ENOSPC", "EROFS", "EDQUOT"; EIO by default),
 *                    for example "write ENOSPC"; with the word
 *                    "partial", a write of more than one byte writes half
 *                    and succeeds, and only a one-byte write fails, as on
 *                    a disk that fills up in the middle of a line
 *                    "child": only in a process forked from the one the
 *                    shim was loaded in (the plugin's background fold),
 *                    so that the broker's own appends go through
 *                    "parent": only in the process the shim was loaded in
 *                    "stall": the call does not fail; it waits while the
 *                    control file still stalls it, then goes on,
 *                    so that a test holds a fold in the middle
 *                    (a held call creates <FAIL_IO_CONTROL>.stalled, so
 *                    that the test knows it is held)
 *                    "orphan": with "stall", the waiting process first
 *                    clears its death signal (PR_SET_PDEATHSIG), as a
 *                    child would that outlives a killed broker (one stuck
 *                    in the kernel, say)
 *
 * Why a control file: the test, another process, switches faults on and
 * off while the broker runs, and a file it writes and deletes needs no
 * signal (mosquitto owns its signal handlers) and no shared state to keep
 * in step. Each call checks for the file only while the environment names
 * a folder, and looks at the call's path only once a fault is on, so the
 * cost with faults off is one access() per call.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#define CONTROL_SIZE 256

static const struct {
	const char *name;
	int value;
} error_names[] = {
	{"EIO", EIO},
	{"ENOSPC", ENOSPC},
	{"EROFS", EROFS},
	{"EDQUOT", EDQUOT},
};

/* Reads the control file; false when there is none (no faults). */
static bool read_control(char *words, size_t size)
{
	const char *control = getenv("FAIL_IO_CONTROL");
	if(control == NULL || getenv("FAIL_IO_FOLDER") == NULL || access(control, F_OK) != 0){
		return false;
	}
	int fd = open(control, O_RDONLY | O_CLOEXEC);
	if(fd < 0){
		return false;
	}
	ssize_t length = read(fd, words, size - 1);
	close(fd);
	words[length > 0 ? length : 0] = '\0';
	return true;
}

static bool has_word(const char *words, const char *word)
{
	size_t length = strlen(word);
	for(const char *at = strstr(words, word); at; at = strstr(at + 1, word)){
		bool starts = at == words || strchr(" \t\n,", at[-1]);
		bool ends = at[length] == '\0' || strchr(" \t\n,", at[length]);
		if(starts && ends){
			return true;
		}
	}
	return false;
}

static int chosen_error(const char *words)
{
	for(size_t i = 0; i < sizeof(error_names) / sizeof(error_names[0]); i++){
		if(has_word(words, error_names[i].name)){
			return error_names[i].value;
		}
	}
	return EIO;
}

/* True when path (already resolved) is the folder or inside it. */
static bool in_folder(const char *path)
{
	char folder[PATH_MAX];
	if(realpath(getenv("FAIL_IO_FOLDER"), folder) == NULL){
		return false;
	}
	size_t length = strlen(folder);
	return strncmp(path, folder, length) == 0 && (path[length] == '\0' || path[length] == '/');
}

static bool fd_in_folder(int fd)
{
	char link[64], path[PATH_MAX];
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	ssize_t length = readlink(link, path, sizeof(path) - 1);
	if(length <= 0){
		return false;
	}
	path[length] = '\0';
	return in_folder(path);
}

static bool path_in_folder(const char *path)
{
	char resolved[PATH_MAX];
	return realpath(path, resolved) != NULL && in_folder(resolved);
}

static pid_t loaded_in;   /* the broker's pid; "child" faults spare it */

/* Whether the faults in words apply to this process. */
static bool applies_here(const char *words)
{
	bool child = getpid() != loaded_in;
	return !(has_word(words, "child") && !child) && !(has_word(words, "parent") && child);
}

/* "stall": waits until the control file no longer says so; the call then
 * goes on normally. */
static bool stalled(const char *words, const char *call)
{
	if(!has_word(words, "stall")){
		return false;
	}
	if(has_word(words, "orphan")){
		prctl(PR_SET_PDEATHSIG, 0);
	}
	/* <control>.stalled tells the test that a call is held now. */
	char marker[PATH_MAX];
	snprintf(marker, sizeof(marker), "%s.stalled", getenv("FAIL_IO_CONTROL"));
	int fd = open(marker, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	if(fd >= 0) close(fd);
	char now[CONTROL_SIZE];
	const struct timespec pause = {0, 10 * 1000 * 1000};
	while(read_control(now, sizeof(now)) && has_word(now, "stall") && has_word(now, call) && applies_here(now)){
		nanosleep(&pause, NULL);
	}
	return true;
}

/* Sets errno and returns true when this call is to fail (after a stall,
 * it goes on instead). */
static bool fault_on_fd(const char *call, int fd)
{
	char words[CONTROL_SIZE];
	if(!read_control(words, sizeof(words)) || !has_word(words, call) || !applies_here(words) || !fd_in_folder(fd)){
		return false;
	}
	if(stalled(words, call)){
		return false;
	}
	errno = chosen_error(words);
	return true;
}

static void *next_symbol(const char *name)
{
	void *symbol = dlsym(RTLD_NEXT, name);
	if(symbol == NULL){
		fprintf(stderr, "fail_io: no %s after the shim\n", name);
		abort();
	}
	return symbol;
}

static ssize_t (*real_write)(int, const void *, size_t);
static int (*real_fsync)(int);
static int (*real_fdatasync)(int);
static int (*real_ftruncate)(int, off_t);
static int (*real_rename)(const char *, const char *);
static int (*real_unlink)(const char *);

/* Resolved before main, while the broker has one thread. */
__attribute__((constructor)) static void find_real_calls(void)
{
	loaded_in = getpid();
	real_write = (ssize_t (*)(int, const void *, size_t))next_symbol("write");
	real_fsync = (int (*)(int))next_symbol("fsync");
	real_fdatasync = (int (*)(int))next_symbol("fdatasync");
	real_ftruncate = (int (*)(int, off_t))next_symbol("ftruncate");
	real_rename = (int (*)(const char *, const char *))next_symbol("rename");
	real_unlink = (int (*)(const char *))next_symbol("unlink");
}

ssize_t write(int fd, const void *buffer, size_t count)
{
	/* Keeps errno as the caller left it on the pass-through path. */
	int saved = errno;
	char words[CONTROL_SIZE];
	if(read_control(words, sizeof(words)) && has_word(words, "write") && applies_here(words) && fd_in_folder(fd)){
		if(stalled(words, "write")){
			errno = saved;
			return real_write(fd, buffer, count);
		}
		if(has_word(words, "partial") && count > 1){
			errno = saved;
			return real_write(fd, buffer, count / 2);
		}
		errno = chosen_error(words);
		return -1;
	}
	errno = saved;
	return real_write(fd, buffer, count);
}

int fsync(int fd)
{
	int saved = errno;
	if(fault_on_fd("fsync", fd)){
		return -1;
	}
	errno = saved;
	return real_fsync(fd);
}

int fdatasync(int fd)
{
	int saved = errno;
	if(fault_on_fd("fsync", fd)){
		return -1;
	}
	errno = saved;
	return real_fdatasync(fd);
}

int ftruncate(int fd, off_t length)
{
	int saved = errno;
	if(fault_on_fd("ftruncate", fd)){
		return -1;
	}
	errno = saved;
	return real_ftruncate(fd, length);
}

/* Sets errno and returns true when this call is to fail. */
static bool fault_on_path(const char *call, const char *path)
{
	char words[CONTROL_SIZE];
	if(!read_control(words, sizeof(words)) || !has_word(words, call) || !applies_here(words) || !path_in_folder(path)){
		return false;
	}
	if(stalled(words, call)){
		return false;
	}
	errno = chosen_error(words);
	return true;
}

int rename(const char *from, const char *to)
{
	int saved = errno;
	if(fault_on_path("rename", from)){
		return -1;
	}
	errno = saved;
	return real_rename(from, to);
}

int unlink(const char *path)
{
	int saved = errno;
	if(fault_on_path("unlink", path)){
		return -1;
	}
	errno = saved;
	return real_unlink(path);
}
