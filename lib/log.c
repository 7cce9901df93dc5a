/* One line per message on stderr, with a UTC timestamp; stdio's stream lock keeps
 * lines from different threads whole. */
#include "bd.h"

#include <stdio.h>
#include <time.h>

static enum bd_log_level min_level = BD_LOG_INFO;

void bd_log_set_level(enum bd_log_level lvl)
{
    min_level = lvl;
}

void bd_log(enum bd_log_level lvl, const char *fmt, ...)
{
    static const char *const names[] = {"debug", "info", "warn", "error"};
    if (lvl < min_level)
        return;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char line[2048];
    int off = (int)strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%S", &tm);
    off += snprintf(line + off, sizeof line - (size_t)off, ".%03ldZ %-5s ", ts.tv_nsec / 1000000,
                    names[lvl]);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line + off, sizeof line - (size_t)off, fmt, ap);
    va_end(ap);
    flockfile(stderr);
    fputs(line, stderr);
    fputc('\n', stderr);
    funlockfile(stderr);
}
