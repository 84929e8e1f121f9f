/* log.c: one line per message on stderr, "<N>" prefixed for journald. */
#include "log.h"

#include <pthread.h>
#include <stdarg.h>

int hv_log_level = 6;

void hv_log(int level, const char *fmt, ...) {
        if (level > hv_log_level)
                return;
        char line[2048];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(line, sizeof(line), fmt, ap);
        va_end(ap);
        flockfile(stderr);
        fprintf(stderr, "<%d>%s\n", level, line);
        fflush(stderr);
        funlockfile(stderr);
}
