/* What a machine (or anyone on the LAN) sends to the kernel-log sink: a byte stream cut
 * into lines as the sink cuts it, in reads of the sizes the first bytes say (as the TCP
 * stream may arrive), each line's text taken out of Talos' JSON. */
#include "fuzz.h"
#include "../../server/server.h"

#define LINE_CAP 1024 /* logsink.c's LINE_MAX_LEN */

static void on_line(void *ud, char *line)
{
    size_t *lines = ud;
    if (strlen(line) > LINE_CAP)
        abort(); /* a line never outgrows the sink's buffer */
    char *text = server_log_message(line);
    free(text);
    ++*lines;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    size_t step = (size_t)data[0] * 8 + data[1] + 1; /* 1 .. 2304 bytes per read */
    data += 2;
    size -= 2;
    char buf[LINE_CAP + 1];
    size_t len = 0, lines = 0;
    for (size_t at = 0; at < size;) {
        size_t n = size - at;
        if (n > step)
            n = step;
        if (n > LINE_CAP - len)
            n = LINE_CAP - len;
        memcpy(buf + len, data + at, n);
        at += n;
        len = server_log_split(buf, len + n, LINE_CAP, on_line, &lines);
        if (len >= LINE_CAP)
            abort();
    }
    buf[len] = 0;
    on_line(&lines, buf); /* a last line without its newline */
    return 0;
}
