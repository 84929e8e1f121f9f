/* log.h: logging to stderr with syslog-level prefixes that journald understands. */
#pragma once
#include <stdio.h>

extern int hv_log_level;
void hv_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define log_error(...) hv_log(3, __VA_ARGS__)
#define log_warning(...) hv_log(4, __VA_ARGS__)
#define log_info(...) hv_log(6, __VA_ARGS__)
#define log_debug(...) hv_log(7, __VA_ARGS__)
