/* bootctl rebuild: shows the plan bootd makes (machines to reinstall, restore from which
 * snapshot or a fresh bootstrap), asks before it changes anything (unless --yes), starts
 * it, and follows it: on a terminal a view redrawn in place (phases with ticks, one line
 * per machine with its state and the time since the start), otherwise one plain line
 * per change; a summary with each phase's time at the end. bootd does the work and
 * keeps where it stands in state.db: this command can be stopped and run again. */
#include "cli.h"

#include <cjson/cJSON.h>
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

static void usage(FILE *f)
{
    fputs("usage: bootctl rebuild [--etcd-snapshot FILE|latest] [--skip-hash-check] [--yes]\n"
          "                       [--force] [--until etcd|ready] [--timeout 30m]\n",
          f);
}

/* A string field, "" when absent or null. */
static const char *str(const cJSON *o, const char *key)
{
    const char *s = cli_str(o, key);
    return s ? s : "";
}

struct opts {
    const char *snapshot;
    bool skip_hash, yes, force, until_etcd;
    int64_t timeout_s;
};

static char *request_body(const struct opts *o, bool dry_run)
{
    cJSON *b = cJSON_CreateObject();
    if (o->snapshot)
        cJSON_AddStringToObject(b, "snapshot", o->snapshot);
    cJSON_AddBoolToObject(b, "skip_hash_check", o->skip_hash);
    cJSON_AddBoolToObject(b, "dry_run", dry_run);
    cJSON_AddBoolToObject(b, "force", o->force);
    char *s = cJSON_PrintUnformatted(b);
    cJSON_Delete(b);
    return s;
}

static void print_plan(const cJSON *p)
{
    printf("rebuild of cluster %s (%s)\n", str(p, "cluster"), str(p, "cluster_id"));
    printf("  etcd now     %s\n", str(p, "etcd"));
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(p, "snapshot");
    if (s)
        printf("  restore      %s (revision %.0f, %.0f bytes%s)\n", str(s, "path"),
               cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(s, "revision")),
               cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(s, "size")),
               cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(s, "skip_hash_check"))
                   ? ", raw db copy: no hash check"
                   : ", etcd's SHA-256 checked");
    else
        printf("  etcd         a fresh bootstrap: nothing restored, GitOps recreates what is in Git\n");
    const cJSON *m, *vms = cJSON_GetObjectItemCaseSensitive(p, "vms");
    if (cJSON_GetArraySize(vms)) {
        printf("  proxmox     ");
        cJSON_ArrayForEach(m, vms)
            printf(" %s %s (%.0f)", str(m, "action"), str(m, "machine"),
                   cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(m, "vmid")));
        printf("\n");
    }
    printf("  reinstall   ");
    cJSON_ArrayForEach(m, cJSON_GetObjectItemCaseSensitive(p, "reinstall"))
        printf(" %s (%s)", str(m, "name"), str(m, "role"));
    printf("\n");
}

static bool confirm(void)
{
    printf("This reinstalls every machine above. Type yes to go on: ");
    fflush(stdout);
    char line[16];
    return fgets(line, sizeof line, stdin) && !strcmp(line, "yes\n");
}

/* ---- following it ---- */

#define MAX_LINES 64

struct view {
    bool tty;
    int drawn; /* lines of the last redraw */
    time_t start;
    char phases[6][32];
    time_t phase_at[6];
    int nphases;
    char last[MAX_LINES][160]; /* plain mode: what each line said last */
};

static void phase_seen(struct view *v, const char *name)
{
    for (int i = 0; i < v->nphases; i++)
        if (!strcmp(v->phases[i], name))
            return;
    if (v->nphases < 6) {
        snprintf(v->phases[v->nphases], sizeof v->phases[0], "%s", name);
        v->phase_at[v->nphases++] = time(NULL);
    }
}

static bool reached(const struct view *v, const char *name)
{
    for (int j = 0; j < v->nphases; j++)
        if (!strcmp(v->phases[j], name))
            return true;
    return false;
}

/* The lines the view shows for one look at the status. */
static int lines_of(struct view *v, const cJSON *cs, char out[][160], bool *etcd_done,
                    bool *ready)
{
    int n = 0;
    const cJSON *rb = cJSON_GetObjectItemCaseSensitive(cs, "rebuild");
    const char *rphase = cJSON_IsObject(rb) ? str(rb, "phase") : "reinstall";
    const char *phase = str(cs, "phase");
    *etcd_done = !strcmp(rphase, "recovered");
    *ready = *etcd_done && !strcmp(phase, "ready");
    bool vms = !strcmp(rphase, "vms");
    if (vms)
        phase_seen(v, "vms");
    else
        phase_seen(v, "reinstall");
    if (!vms && strcmp(rphase, "reinstall"))
        phase_seen(v, "etcd");
    if (*etcd_done)
        phase_seen(v, "kubernetes");
    if (*ready)
        phase_seen(v, "ready");
    /* vms only when the lab has Proxmox VMs (and bootctl saw that phase) */
    const char *steps[] = {"vms", "reinstall", "etcd", "kubernetes", "ready"};
    for (int i = !reached(v, "vms"); i < 5; i++) {
        bool current = reached(v, steps[i]) && (i == 4 || !reached(v, steps[i + 1]));
        const char *mark = !reached(v, steps[i]) ? " " : current && !*ready ? ">" : "\u2713";
        snprintf(out[n++], 160, "%s %s", mark, steps[i]);
    }
    if (cJSON_IsObject(rb) && str(rb, "last_error")[0] && !*etcd_done)
        snprintf(out[n++], 160, "  last: %.150s", str(rb, "last_error"));
    snprintf(out[n++], 160, "  cluster: %s: %.120s", phase, str(cs, "message"));
    const cJSON *m;
    long el = (long)(time(NULL) - v->start);
    cJSON_ArrayForEach(m, cJSON_GetObjectItemCaseSensitive(cs, "machines"))
    {
        if (n >= MAX_LINES)
            break;
        snprintf(out[n++], 160, "  %-16s %-10s %-9s %3ld:%02ld", str(m, "name"),
                 str(m, "state"), cJSON_IsString(cJSON_GetObjectItemCaseSensitive(m, "node"))
                                          ? str(m, "node")
                                          : "-",
                 el / 60, el % 60);
    }
    return n;
}

static void draw(struct view *v, char lines[][160], int n)
{
    if (v->tty) {
        /* a line that wraps would throw the redraw's line count off */
        struct winsize ws;
        int cols = ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 1 ? ws.ws_col - 1
                                                                                : 159;
        if (v->drawn)
            printf("\033[%dA", v->drawn);
        for (int i = 0; i < n; i++)
            printf("\033[2K%.*s\n", cols, lines[i]);
        v->drawn = n;
    } else {
        for (int i = 0; i < n; i++) {
            /* the elapsed time alone changing is no news */
            size_t cmp = strlen(lines[i]) > 8 && lines[i][0] == ' ' ? strlen(lines[i]) - 7
                                                                    : strlen(lines[i]);
            if (strncmp(v->last[i], lines[i], cmp))
                printf("%s\n", lines[i][0] == ' ' ? lines[i] + 2 : lines[i]);
            snprintf(v->last[i], sizeof v->last[i], "%s", lines[i]);
        }
    }
    fflush(stdout);
}

static int follow(struct cli *c, const struct opts *o)
{
    struct view v = {.tty = isatty(STDOUT_FILENO), .start = time(NULL)};
    time_t deadline = v.start + o->timeout_s;
    int code = 1;
    for (;;) {
        int rc;
        cJSON *st = cli_call(c, "GET", "/status", NULL, &rc);
        if (!st)
            return rc;
        const cJSON *cs = cJSON_GetObjectItemCaseSensitive(st, "cluster_state");
        char lines[MAX_LINES][160];
        bool etcd_done, ready;
        int n = lines_of(&v, cs, lines, &etcd_done, &ready);
        draw(&v, lines, n);
        cJSON_Delete(st);
        if (ready || (etcd_done && o->until_etcd)) {
            code = 0;
            break;
        }
        if (time(NULL) > deadline) {
            fprintf(stderr, "bootctl: rebuild: not done after %llds; bootd carries on "
                            "(bootctl status, or run bootctl rebuild again to follow it)\n",
                    (long long)o->timeout_s);
            return 1;
        }
        sleep(1);
    }
    printf("\nrebuild done in %lds:\n", (long)(time(NULL) - v.start));
    for (int i = 0; i < v.nphases; i++) {
        time_t end = i + 1 < v.nphases ? v.phase_at[i + 1] : time(NULL);
        printf("  %-11s %lds\n", v.phases[i], (long)(end - v.phase_at[i]));
    }
    return code;
}

int cli_cmd_rebuild(struct cli *c, int argc, char **argv)
{
    static const struct option lopts[] = {
        {"etcd-snapshot", required_argument, NULL, 's'}, {"skip-hash-check", no_argument, NULL, 'k'},
        {"yes", no_argument, NULL, 'y'},                 {"force", no_argument, NULL, 'f'},
        {"until", required_argument, NULL, 'u'},         {"timeout", required_argument, NULL, 't'},
        {0}};
    struct opts o = {.timeout_s = 1800};
    char abs[PATH_MAX];
    optind = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, "", lopts, NULL)) != -1) {
        switch (ch) {
        case 's':
            o.snapshot = optarg;
            break;
        case 'k':
            o.skip_hash = true;
            break;
        case 'y':
            o.yes = true;
            break;
        case 'f':
            o.force = true;
            break;
        case 'u':
            if (strcmp(optarg, "etcd") && strcmp(optarg, "ready")) {
                usage(stderr);
                return 2;
            }
            o.until_etcd = !strcmp(optarg, "etcd");
            break;
        case 't':
            if (bd_duration_parse(optarg, &o.timeout_s) < 0) {
                fprintf(stderr, "bootctl: --timeout: \"%s\" is not a duration\n", optarg);
                return 2;
            }
            break;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return 2;
    }
    if (o.snapshot && strcmp(o.snapshot, "latest")) { /* bootd reads the file itself */
        if (!realpath(o.snapshot, abs)) {
            fprintf(stderr, "bootctl: --etcd-snapshot %s: cannot find it\n", o.snapshot);
            return 1;
        }
        o.snapshot = abs;
    }
    char *body = request_body(&o, true);
    int rc;
    cJSON *plan = cli_call(c, "POST", "/cluster/rebuild", body, &rc);
    free(body);
    if (!plan)
        return rc;
    print_plan(plan);
    const char *outcome = str(plan, "outcome");
    bool nothing = !strncmp(outcome, "nothing to do", 13);
    if (nothing)
        printf("\n%s\n", outcome);
    cJSON_Delete(plan);
    if (nothing)
        return 0;
    if (!o.yes) {
        if (!isatty(STDIN_FILENO)) {
            fprintf(stderr, "bootctl: rebuild: not on a terminal: add --yes to go ahead\n");
            return 1;
        }
        if (!confirm()) {
            printf("nothing changed\n");
            return 1;
        }
    }
    body = request_body(&o, false);
    plan = cli_call(c, "POST", "/cluster/rebuild", body, &rc);
    free(body);
    if (!plan)
        return rc;
    printf("\n%s\n\n", str(plan, "outcome"));
    cJSON_Delete(plan);
    return follow(c, &o);
}
