/* How bootctl finds bootd and proves it is the admin. */
#include "cli.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define DEFAULT_URL "http://127.0.0.1:8080"
#define DEFAULT_TOKEN_FILE "/var/lib/bootd/admin.token"

static char *config_path(void)
{
    const char *p = getenv("BOOTCTL_CONFIG");
    if (p)
        return bd_xstrdup(p);
    const char *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
    if (xdg && *xdg)
        return bd_xasprintf("%s/bootctl/config.yaml", xdg);
    if (home && *home)
        return bd_xasprintf("%s/.config/bootctl/config.yaml", home);
    return NULL;
}

/* The config file: url, token_file (or token). Absent is fine; broken is an error. */
static int read_config(char **url, char **token_file, char **token, char **path_out,
                       struct bd_err *err)
{
    char *path = config_path();
    *path_out = path;
    if (!path || access(path, F_OK) < 0)
        return 0;
    struct bd_yaml_doc doc;
    if (bd_yaml_parse_file(path, &doc, err) < 0)
        return -1;
    int rc = 0;
    const struct bd_node *root = doc.ndocs ? doc.docs[0] : NULL;
    if (root && root->kind == BD_NODE_MAP) {
        for (size_t i = 0; i < root->n && rc == 0; i++) {
            const struct bd_node *k = root->kids[2 * i], *v = root->kids[2 * i + 1];
            char **dst = !strcmp(k->str, "url")          ? url
                         : !strcmp(k->str, "token_file") ? token_file
                         : !strcmp(k->str, "token")      ? token
                                                         : NULL;
            if (!dst)
                rc = bd_err_set(err, "%s:%d: unknown key \"%s\" (known: url, token_file, token)",
                                path, k->line, k->str);
            else if (v->kind != BD_NODE_SCALAR)
                rc = bd_err_set(err, "%s:%d: %s: expected a string", path, v->line, k->str);
            else
                *dst = bd_xstrdup(v->str);
        }
    } else if (root && !bd_node_is_null(root)) {
        rc = bd_err_set(err, "%s: expected a mapping with url and token_file", path);
    }
    bd_yaml_doc_free(&doc);
    return rc;
}

static int read_token_file(struct cli *c, const char *path, const char *from, struct bd_err *err)
{
    char *text;
    if (bd_file_read(path, &text, NULL, err) < 0)
        return bd_err_prefix(err, "admin token (%s)", from);
    text[strcspn(text, "\r\n")] = 0;
    c->token = text;
    c->token_from = bd_xasprintf("%s %s", from, path);
    /* bootd keeps its certificate's pin beside its token, and so can a user */
    char *dir = bd_xstrdup(path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = 0;
    free(c->pin_from);
    c->pin_from = bd_path_join(slash ? dir : ".", "admin.pin");
    free(dir);
    char *pin;
    struct bd_err ignored;
    if (bd_file_read(c->pin_from, &pin, NULL, &ignored) == 0) {
        pin[strcspn(pin, "\r\n")] = 0;
        c->pin = pin;
    }
    return 0;
}

static void set_url(struct cli *c, const char *url, const char *from)
{
    c->url = bd_xstrdup(url);
    c->url_from = bd_xstrdup(from);
}

int cli_resolve(struct cli *c, const char *flag_url, const char *flag_token_file,
                struct bd_err *err)
{
    char *cfg_url = NULL, *cfg_token_file = NULL, *cfg_token = NULL, *cfg_path = NULL;
    int rc = read_config(&cfg_url, &cfg_token_file, &cfg_token, &cfg_path, err);
    const char *env_url = getenv("BOOTD_URL");
    if (flag_url)
        set_url(c, flag_url, "--url");
    else if (env_url && *env_url)
        set_url(c, env_url, "BOOTD_URL");
    else if (cfg_url)
        set_url(c, cfg_url, cfg_path);
    else
        set_url(c, DEFAULT_URL, "the default");
    const char *env_token = getenv("BOOTD_TOKEN"), *env_token_file = getenv("BOOTD_TOKEN_FILE");
    if (rc == 0 && flag_token_file)
        rc = read_token_file(c, flag_token_file, "--token-file", err);
    else if (rc == 0 && env_token && *env_token) {
        c->token = bd_xstrdup(env_token);
        c->token_from = bd_xstrdup("BOOTD_TOKEN");
    } else if (rc == 0 && env_token_file && *env_token_file)
        rc = read_token_file(c, env_token_file, "BOOTD_TOKEN_FILE", err);
    else if (rc == 0 && cfg_token) {
        c->token = bd_xstrdup(cfg_token);
        c->token_from = bd_xstrdup(cfg_path);
    } else if (rc == 0 && cfg_token_file)
        rc = read_token_file(c, cfg_token_file, cfg_path, err);
    else if (rc == 0 && access(DEFAULT_TOKEN_FILE, R_OK) == 0)
        rc = read_token_file(c, DEFAULT_TOKEN_FILE, "the default", err);
    const char *env_pin = getenv("BOOTD_PIN");
    if (env_pin && *env_pin) {
        free(c->pin);
        free(c->pin_from);
        c->pin = bd_xstrdup(env_pin);
        c->pin_from = bd_xstrdup("BOOTD_PIN");
    }
    free(cfg_url);
    free(cfg_token_file);
    free(cfg_token);
    free(cfg_path);
    return rc;
}

void cli_free(struct cli *c)
{
    free(c->url);
    free(c->url_from);
    free(c->token);
    free(c->token_from);
    free(c->pin);
    free(c->pin_from);
}

/* Is url's host this machine (loopback, or one of its own addresses)? Only then may the
 * token go in clear text: elsewhere it would cross the LAN. */
static bool url_is_this_host(const char *url)
{
    if (strncasecmp(url, "http://", 7))
        return false;
    const char *h = url + 7;
    char host[256];
    size_t n = *h == '[' ? strcspn(h + 1, "]") : strcspn(h, ":/?#");
    snprintf(host, sizeof host, "%.*s", (int)n, *h == '[' ? h + 1 : h);
    if (!strcasecmp(host, "localhost"))
        return true;
    struct in_addr a4;
    struct in6_addr a6;
    bool v4 = inet_pton(AF_INET, host, &a4) == 1, v6 = !v4 && inet_pton(AF_INET6, host, &a6) == 1;
    if (v4 && ntohl(a4.s_addr) >> 24 == 127)
        return true;
    if (v6 && IN6_IS_ADDR_LOOPBACK(&a6))
        return true;
    struct ifaddrs *ifs, *i;
    bool mine = false;
    if ((v4 || v6) && getifaddrs(&ifs) == 0) {
        for (i = ifs; i && !mine; i = i->ifa_next) {
            if (!i->ifa_addr)
                continue;
            if (v4 && i->ifa_addr->sa_family == AF_INET)
                mine = ((struct sockaddr_in *)i->ifa_addr)->sin_addr.s_addr == a4.s_addr;
            else if (v6 && i->ifa_addr->sa_family == AF_INET6)
                mine = !memcmp(&((struct sockaddr_in6 *)i->ifa_addr)->sin6_addr, &a6, sizeof a6);
        }
        freeifaddrs(ifs);
    }
    return mine;
}

/* One call to the admin API: fails (-1) when there is no token, no answer or the token
 * is refused; any other status is left in resp for the caller. */
static int request(struct cli *c, struct bd_http_req *req, const char *path,
                   struct bd_http_resp *resp, struct bd_err *err)
{
    if (!c->token)
        return bd_err_set(err,
                          "no admin token: pass --token-file, set BOOTD_TOKEN_FILE, or put "
                          "token_file in ~/.config/bootctl/config.yaml (bootd keeps it in "
                          "STATE_DIR/admin.token)");
    bool tls = !strncmp(c->url, "https://", 8);
    if (tls && !c->pin)
        return bd_err_set(err,
                          "bootd at %s: no pin for its certificate: copy STATE_DIR/admin.pin"
                          " from bootd's host to %s (bootd also logs it at start), or set"
                          " BOOTD_PIN",
                          c->url, c->pin_from ? c->pin_from : "admin.pin beside the token");
    const char *plain_ok = getenv("BOOTD_INSECURE_PLAIN");
    if (!tls && !url_is_this_host(c->url) && !(plain_ok && !strcmp(plain_ok, "1")))
        return bd_err_set(err,
                          "bootd at %s (from %s) is another host over plain http: the admin token"
                          " would cross the LAN in clear text. Use https://HOST:PORT (bootd's"
                          " --admin-port) with its pin, or an SSH tunnel to http://127.0.0.1;"
                          " BOOTD_INSECURE_PLAIN=1 sends it in clear anyway",
                          c->url, c->url_from);
    char *url = bd_xasprintf("%s/api/v1%s", c->url, path);
    req->url = url;
    req->bearer = c->token;
    req->pinned_key = tls ? c->pin : NULL;
    struct bd_err herr;
    int rc = bd_http(req, resp, &herr);
    free(url);
    if (rc < 0 && tls && strstr(herr.msg, "not the pinned one"))
        return bd_err_set(err,
                          "bootd at %s presented a certificate that is not the one pinned in %s;"
                          " refusing to send the token. If bootd made a new certificate (its"
                          " state dir was replaced), check the pin it logs at start"
                          " (\"certificate pin sha256//...\") and put it in %s",
                          c->url, c->pin_from, c->pin_from);
    if (rc < 0) {
        const char *why = strstr(herr.msg, ": ") ? strstr(herr.msg, ": ") + 2 : herr.msg;
        return bd_err_set(err, "cannot reach bootd at %s (from %s): %s. Is bootd running there?",
                          c->url, c->url_from, why);
    }
    if (resp->status == 401) {
        bd_http_resp_free(resp);
        return bd_err_set(err,
                          "bootd at %s refused the admin token from %s; use the file named by "
                          "bootd's --admin-token-file (default STATE_DIR/admin.token)",
                          c->url, c->token_from);
    }
    return 0;
}

struct cJSON *cli_api(struct cli *c, const char *method, const char *path, const char *body,
                      long *status, struct bd_err *err)
{
    struct bd_http_resp resp;
    struct bd_http_req req = {
        .method = method,
        .content_type = body ? "application/json" : NULL,
        .body = body,
        .body_len = body ? strlen(body) : 0,
        .timeout_s = 60,
    };
    if (request(c, &req, path, &resp, err) < 0)
        return NULL;
    *status = resp.status;
    cJSON *j = cJSON_ParseWithLength(resp.body.data ? resp.body.data : "", resp.body.len);
    if (!j)
        bd_err_set(err, "%s answered %ld with something that is not JSON; is it bootd?", c->url,
                   resp.status);
    bd_http_resp_free(&resp);
    return j;
}

int cli_download(struct cli *c, const char *path, int (*sink)(const void *, size_t, void *),
                 void *ud, struct bd_err *err)
{
    struct bd_http_resp resp;
    struct bd_http_req req = {.timeout_s = -1, .sink = sink, .sink_ud = ud};
    if (request(c, &req, path, &resp, err) < 0)
        return -1;
    int rc = 0;
    if (resp.status / 100 != 2) {
        cJSON *j = cJSON_ParseWithLength(resp.body.data ? resp.body.data : "", resp.body.len);
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
        rc = bd_err_set(err, "%s (HTTP %ld)", cJSON_IsString(e) ? e->valuestring : "request failed",
                        resp.status);
        cJSON_Delete(j);
    }
    bd_http_resp_free(&resp);
    return rc;
}

cJSON *cli_view(struct cli *c, const char *method, const char *path, const char *body, int *code)
{
    cJSON *j = cli_call(c, method, path, body, code);
    if (j && c->json) {
        cli_print_json(j);
        cJSON_Delete(j);
        return NULL;
    }
    return j;
}

int cli_api_error(const struct cJSON *j, long status)
{
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
    fprintf(stderr, "bootctl: %s (HTTP %ld)\n", cJSON_IsString(e) ? e->valuestring : "request failed",
            status);
    return 1;
}

/* Runs one API call and handles the failure paths; NULL means "exit with *code". */
cJSON *cli_call(struct cli *c, const char *method, const char *path, const char *body, int *code)
{
    long status = 0;
    struct bd_err err;
    cJSON *j = cli_api(c, method, path, body, &status, &err);
    if (!j) {
        fprintf(stderr, "bootctl: %s\n", err.msg);
        *code = 1;
        return NULL;
    }
    if (status >= 300) {
        *code = cli_api_error(j, status);
        cJSON_Delete(j);
        return NULL;
    }
    *code = 0;
    return j;
}

char *cli_machine_path(const char *fmt, const char *id)
{
    char *esc = bd_xstrdup(id);
    for (char *p = esc; *p; p++)
        if (*p == '/' || *p == '?' || *p == '#' || *p == ' ')
            *p = '_';
    char *path = bd_xasprintf(fmt, esc);
    free(esc);
    return path;
}
