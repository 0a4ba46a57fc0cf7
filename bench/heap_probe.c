/*
 * An LD_PRELOAD shim for the load run (bench/load.py): reports the heap the
 * broker process has in use, every PERIOD_MS, in a file.
 *
 *   HEAP_PROBE_FILE  the file to write; without it the shim only counts
 *
 * Why: the load run checks that the broker's memory returns to its level
 * before the run. VmRSS cannot show that (glibc keeps freed memory for
 * reuse), and mosquitto's $SYS/broker/heap/current counts only what goes
 * through mosquitto's own allocator, not the plugin's malloc calls nor
 * cJSON's or OpenSSL's. glibc's mallinfo2() counts every byte handed out
 * and not yet freed, in every arena, whoever asked for it.
 *
 * That total moves in steps when a table or a queue grows to a new peak
 * (a uthash bucket array or the lastUsed queue doubles: one block of 32 KiB
 * or more, reallocated, never more blocks), which may happen in any cycle.
 * A leak is more blocks: so the shim also wraps malloc, calloc, realloc,
 * the aligned allocators and free, and counts by each block's usable size
 * (malloc_usable_size) the bytes in blocks under SMALL_BLOCK bytes and the
 * number of blocks of SMALL_BLOCK bytes or more. Each wrapper calls glibc's
 * own (__libc_malloc...), so nothing else changes.
 *
 * The file holds one line, "<sample> <bytes> <small bytes> <large blocks>":
 * sample counts up from 1 with each write, so a reader that wants a figure
 * measured after some moment waits until sample has gone up by two since
 * then (the first new one may have been measured just before). The two
 * counts are from the process's first allocation on (both may be
 * negative if blocks allocated before the shim was bound are freed
 * through it; the load run compares them, it does not read them as
 * totals). Each line is written to a temporary file that is then renamed
 * over the file, so a reader sees a whole line or the previous one,
 * never half of one.
 *
 * The thread calls no allocator (its buffers are on its stack or static),
 * so the probe does not move the figure it reports.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* mallinfo2 */
#endif
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PERIOD_MS 100
#define SMALL_BLOCK 4096

/* glibc's allocator itself, which the wrappers below call. */
extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t count, size_t size);
extern void *__libc_realloc(void *block, size_t size);
extern void *__libc_memalign(size_t alignment, size_t size);
extern void __libc_free(void *block);

static atomic_llong small_bytes;
static atomic_llong large_blocks;

static void count_block(void *block, int sign)
{
	if(block == NULL){
		return;
	}
	size_t usable = malloc_usable_size(block);
	if(usable < SMALL_BLOCK){
		atomic_fetch_add_explicit(&small_bytes, sign * (long long)usable, memory_order_relaxed);
	}else{
		atomic_fetch_add_explicit(&large_blocks, sign, memory_order_relaxed);
	}
}

void *malloc(size_t size)
{
	void *block = __libc_malloc(size);
	count_block(block, 1);
	return block;
}

void *calloc(size_t count, size_t size)
{
	void *block = __libc_calloc(count, size);
	count_block(block, 1);
	return block;
}

void *realloc(void *block, size_t size)
{
	if(block == NULL){
		return malloc(size);
	}
	size_t before = malloc_usable_size(block);
	void *moved = __libc_realloc(block, size);
	if(moved == NULL && size > 0){
		return NULL;   /* block is unchanged */
	}
	if(before < SMALL_BLOCK){
		atomic_fetch_sub_explicit(&small_bytes, (long long)before, memory_order_relaxed);
	}else{
		atomic_fetch_sub_explicit(&large_blocks, 1, memory_order_relaxed);
	}
	count_block(moved, 1);
	return moved;
}

void *memalign(size_t alignment, size_t size)
{
	void *block = __libc_memalign(alignment, size);
	count_block(block, 1);
	return block;
}

void *aligned_alloc(size_t alignment, size_t size)
{
	return memalign(alignment, size);
}

int posix_memalign(void **result, size_t alignment, size_t size)
{
	if(alignment < sizeof(void *) || (alignment & (alignment - 1)) != 0){
		return EINVAL;
	}
	void *block = memalign(alignment, size);
	if(block == NULL){
		return ENOMEM;
	}
	*result = block;
	return 0;
}

void free(void *block)
{
	count_block(block, -1);
	__libc_free(block);
}

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
	char line[128];
	int length = snprintf(line, sizeof(line), "%llu %zu %lld %lld\n", sample, heap_in_use(),
			atomic_load_explicit(&small_bytes, memory_order_relaxed),
			atomic_load_explicit(&large_blocks, memory_order_relaxed));
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
