/* Streams cut where the network cuts them: gRPC messages split across reads, kernel-log
 * lines split across reads, and what each refuses (the fuzz targets of the same names
 * look for crashes; these say what the answers must be). */
#include "helpers.h"

#include "../../server/server.h"
#include "../../talos/internal.h"

#include <criterion/criterion.h>
#include <string.h>

struct seen {
    size_t n;
    char msgs[4][16];
};

static int keep(const uint8_t *p, size_t n, void *ud, struct bd_err *err)
{
    (void)err;
    struct seen *s = ud;
    cr_assert_lt(s->n, 4);
    snprintf(s->msgs[s->n++], sizeof s->msgs[0], "%.*s", (int)n, (const char *)p);
    return 0;
}

Test(wire, grpc_messages_across_reads)
{
    static const uint8_t stream[] = {0, 0, 0, 0, 3, 'a', 'b', 'c', 0, 0, 0, 0, 0,
                                     0, 0, 0, 0, 2, 'x', 'y'};
    for (size_t step = 1; step <= sizeof stream; step++) {
        struct talos_grpc_answer a;
        talos_grpc_answer_init(&a);
        struct seen s = {0};
        struct bd_err err;
        for (size_t at = 0; at < sizeof stream; at += step) {
            size_t n = sizeof stream - at < step ? sizeof stream - at : step;
            cr_assert_eq(talos_grpc_data(&a, stream + at, n, keep, &s, &err), 0);
        }
        cr_assert_eq(s.n, 3, "step %zu", step);
        cr_assert_str_eq(s.msgs[0], "abc");
        cr_assert_str_eq(s.msgs[1], "");
        cr_assert_str_eq(s.msgs[2], "xy");
        cr_assert_eq(a.pending.len, 0);
        bd_buf_free(&a.pending);
    }
}

Test(wire, grpc_refusals_and_trailers)
{
    struct talos_grpc_answer a;
    talos_grpc_answer_init(&a);
    struct seen s = {0};
    struct bd_err err;
    static const uint8_t compressed[] = {1, 0, 0, 0, 1, 'z'};
    cr_assert_eq(talos_grpc_data(&a, compressed, sizeof compressed, keep, &s, &err), -1);
    cr_assert(strstr(err.msg, "compressed"), "%s", err.msg);
    bd_buf_free(&a.pending);
    talos_grpc_answer_init(&a);
    static const uint8_t huge[] = {0, 0xff, 0xff, 0xff, 0xff};
    cr_assert_eq(talos_grpc_data(&a, huge, sizeof huge, keep, &s, &err), -1);
    cr_assert(strstr(err.msg, "over bootd's limit"), "%s", err.msg);
    cr_assert_eq(s.n, 0);
    bd_buf_free(&a.pending);

    talos_grpc_answer_init(&a);
    const char *lines[] = {"HTTP/2 200\r\n", "Content-Type: application/grpc\r\n",
                           "grpc-status: 7\r\n", "grpc-message: not%20allowed%zz%4\r\n"};
    for (size_t i = 0; i < 4; i++)
        talos_grpc_header(&a, lines[i], strlen(lines[i]));
    cr_assert_eq(a.grpc_status, 7);
    cr_assert_str_eq(a.grpc_message, "not allowed%zz%4");
    cr_assert_str_eq(a.content_type, "application/grpc");
    const char *bad = "grpc-status: 12345678901234567890\r\n";
    talos_grpc_header(&a, bad, strlen(bad));
    cr_assert_eq(a.grpc_status, 2, "an unreadable status is Unknown");
}

struct lines {
    size_t n;
    char v[4][32];
};

static void on_line(void *ud, char *line)
{
    struct lines *l = ud;
    cr_assert_lt(l->n, 4);
    snprintf(l->v[l->n++], sizeof l->v[0], "%s", line);
}

Test(wire, log_lines_across_reads_and_overlong)
{
    char buf[9];
    struct lines l = {0};
    memcpy(buf, "ab\ncd", 5);
    size_t len = server_log_split(buf, 5, 8, on_line, &l);
    cr_assert_eq(l.n, 1);
    cr_assert_str_eq(l.v[0], "ab");
    cr_assert_eq(len, 2);
    memcpy(buf + len, "e\n", 2);
    len = server_log_split(buf, len + 2, 8, on_line, &l);
    cr_assert_eq(l.n, 2);
    cr_assert_str_eq(l.v[1], "cde");
    cr_assert_eq(len, 0);
    /* a line as long as the buffer is handed on cut, not kept growing */
    memcpy(buf, "12345678", 8);
    len = server_log_split(buf, 8, 8, on_line, &l);
    cr_assert_eq(len, 0);
    cr_assert_str_eq(l.v[2], "12345678");

    char *t = server_log_message("{\"msg\": \"[talos] hello\", \"talos-level\": \"info\"}");
    cr_assert_str_eq(t, "[talos] hello");
    free(t);
    t = server_log_message("{\"msg\": 42}");
    cr_assert_str_eq(t, "{\"msg\": 42}", "not a string: the line as it came");
    free(t);
}
