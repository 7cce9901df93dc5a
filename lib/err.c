/* Error messages that travel up the call chain. */
#include "bd.h"

#include <openssl/err.h>

#include <stdio.h>
#include <string.h>

int bd_err_set(struct bd_err *e, const char *fmt, ...)
{
    if (!e)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    return -1;
}

int bd_err_prefix(struct bd_err *e, const char *fmt, ...)
{
    if (!e)
        return -1;
    char old[sizeof e->msg];
    memcpy(old, e->msg, sizeof old);
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    if (n >= 0 && (size_t)n + 2 < sizeof e->msg)
        snprintf(e->msg + n, sizeof e->msg - (size_t)n, ": %s", old);
    return -1;
}

int bd_err_openssl(struct bd_err *e, const char *what)
{
    unsigned long code = ERR_get_error();
    char detail[256] = "";
    if (code)
        ERR_error_string_n(code, detail, sizeof detail);
    ERR_clear_error();
    return bd_err_set(e, "%s%s%s", what, *detail ? ": " : "", detail);
}
