/* Tables for people, JSON for scripts. */
#include "cli.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

struct table {
    size_t ncols, nrows;
    char **cells; /* row-major, header row first */
};

struct table *cli_table_new(size_t ncols, const char *const *headers)
{
    struct table *t = bd_xcalloc(1, sizeof *t);
    t->ncols = ncols;
    cli_table_add(t, headers);
    return t;
}

void cli_table_add(struct table *t, const char *const *cells)
{
    t->cells = bd_xrealloc(t->cells, (t->nrows + 1) * t->ncols * sizeof *t->cells);
    for (size_t i = 0; i < t->ncols; i++)
        t->cells[t->nrows * t->ncols + i] = bd_xstrdup(cells[i] ? cells[i] : "-");
    t->nrows++;
}

void cli_table_print(struct table *t, FILE *f)
{
    size_t *w = bd_xcalloc(t->ncols, sizeof *w);
    for (size_t r = 0; r < t->nrows; r++)
        for (size_t c = 0; c < t->ncols; c++) {
            size_t n = strlen(t->cells[r * t->ncols + c]);
            if (n > w[c])
                w[c] = n;
        }
    for (size_t r = 0; r < t->nrows; r++) {
        for (size_t c = 0; c < t->ncols; c++) {
            const char *cell = t->cells[r * t->ncols + c];
            if (c + 1 == t->ncols)
                fprintf(f, "%s\n", cell);
            else
                fprintf(f, "%-*s  ", (int)w[c], cell);
            free(t->cells[r * t->ncols + c]);
        }
    }
    free(w);
    free(t->cells);
    free(t);
}

void cli_print_json(const struct cJSON *j)
{
    char *s = cJSON_Print(j);
    if (s) {
        puts(s);
        free(s);
    }
}

const char *cli_str(const struct cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (cJSON_IsString(v))
        return v->valuestring;
    if (cJSON_IsBool(v))
        return cJSON_IsTrue(v) ? "yes" : "no";
    return NULL;
}

/* "2026-11-26T03:40:28.594Z" shown as "2026-11-26 03:40:28.594". */
const char *cli_time(const struct cJSON *o, const char *key, char buf[32])
{
    const char *s = cli_str(o, key);
    if (!s || strlen(s) < 23)
        return NULL;
    memcpy(buf, s, 23);
    buf[10] = ' ';
    buf[23] = 0;
    return buf;
}

int cli_put(const char *path, const char *text, size_t len, struct bd_err *err)
{
    if (!strcmp(path, "-"))
        return fwrite(text, 1, len, stdout) == len ? 0 : bd_err_set(err, "stdout: write failed");
    if (bd_file_write_atomic(path, text, len, 0600, err) < 0)
        return -1;
    fprintf(stderr, "wrote %s\n", path);
    return 0;
}
