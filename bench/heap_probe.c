/*
 * An LD_PRELOAD shim for the load run (bench/load.py): reports the heap the
 * broker process has in use, every PERIOD_MS, in a file.
 *
 *   HEAP_PROBE_FILE  the file to write; without it the shim does nothing
 *
 * Why: the load run checks that the broker's memory returns to its level
 * before the run. VmRSS cannot show that (glibc keeps freed memory for
 * reuse), and mosquitto's $SYS/broker/heap/current counts only what goes
 * through mosquitto's own allocator, not the plugin's malloc calls nor
 * cJSON's or OpenSSL's. glibc's mallinfo2() counts every byte handed out
 * and not yet freed, in every arena, whoever asked for it.
 *
 * The file holds one line, "<sample> <bytes>": sample counts up from 1
 * with each write, so a reader that wants a figure measured after some
 * moment waits until sample has gone up by two since then (the first
 * new one may have been measured just before). Each line is written to
 * a temporary file that is then renamed over the file, so a reader sees
 * a whole line or the previous one, never half of one.
 *
 * The thread calls no allocator (its buffers are on its stack or static),
 * so the probe does not move the figure it reports.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* mallinfo2 */
#endif
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PERIOD_MS 100

static char report_path[PATH_MAX];
static char scratch_path[PATH_MAX];

static size_t heap_in_use(void)
{
	struct mallinfo2 info = mallinfo2();
	/* uordblks: bytes in chunks handed out from the arenas; hblkhd:
	 * bytes in chunks big enough to get their own mmap. */
	return info.uordblks + info.hblkhd;
}

static void write_report(unsigned long long sample)
{
	char line[64];
	int length = snprintf(line, sizeof(line), "%llu %zu\n", sample, heap_in_use());
	int fd = open(scratch_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if(fd < 0){
		return;
	}
	ssize_t written = write(fd, line, (size_t)length);
	close(fd);
	if(written == length){
		rename(scratch_path, report_path);
	}
}

static void *report_forever(void *unused)
{
	const struct timespec period = {0, PERIOD_MS * 1000000L};
	(void)unused;
	for(unsigned long long sample = 1;; sample++){
		write_report(sample);
		nanosleep(&period, NULL);
	}
	return NULL;
}

__attribute__((constructor)) static void start_probe(void)
{
	const char *path = getenv("HEAP_PROBE_FILE");
	pthread_t thread;
	if(path == NULL || *path == '\0'){
		return;
	}
	if(snprintf(report_path, sizeof(report_path), "%s", path) >= (int)sizeof(report_path)
			|| snprintf(scratch_path, sizeof(scratch_path), "%s.new", path) >= (int)sizeof(scratch_path)){
		return;
	}
	/* Detached: nothing joins it; it ends with the process. */
	if(pthread_create(&thread, NULL, report_forever, NULL) == 0){
		pthread_detach(thread);
	}
}
