/*
 * Text a client chose (its client id), made safe for one log line: log
 * watchers such as fail2ban split a line into fields, and a client id
 * holding a newline, a space or a right-to-left override would forge
 * lines or fields. Printable ASCII other than the backslash stays as it
 * is; every other byte becomes \xNN. Long values are cut (with "...") so
 * that a 64 KiB client id cannot flood the log.
 */
#ifndef LOG_TEXT_H
#define LOG_TEXT_H

#include <stddef.h>

/* Bytes of the original kept at most. */
#define LOG_TEXT_MAX_INPUT 128
/* Room for the escaped form of LOG_TEXT_MAX_INPUT bytes, "..." and NUL. */
#define LOG_TEXT_SIZE (4 * LOG_TEXT_MAX_INPUT + 4)

/* Writes the escaped text into out (LOG_TEXT_SIZE bytes); NULL becomes
 * "(none)". Returns out. */
const char *log_text_escape(const char *text, char out[LOG_TEXT_SIZE]);

#endif
