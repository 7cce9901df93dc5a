/* bootctl image pull | list | import | gc: the Talos image cache, worked on directly
 * (bootd need not run); a running bootd is told afterwards so that its boot scripts
 * follow the cache. */
#include "cli.h"

#include "../images/images.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct image_cmd {
    struct cli *cli;
    const char *url, *token_file; /* bootctl's global flags, to find bootd */
    struct lab *lab;
    char *cache_dir;
    int cache_fd;
    bool dry_run;
};

static void usage(FILE *f)
{
    fputs("usage: bootctl image pull   [--lab PATH] [--state-dir DIR | --assets DIR]\n"
          "       bootctl image list   [--lab PATH] [--state-dir DIR | --assets DIR]\n"
          "       bootctl image import [--lab PATH] [--state-dir DIR | --assets DIR] FILE...\n"
          "       bootctl image gc     [--lab PATH] [--state-dir DIR | --assets DIR] [--dry-run]\n"
          "\n"
          "The cache is DIR/images under bootd's state dir (default /var/lib/bootd), or\n"
          "--assets as given to bootd. lab.yaml defaults to ./lab.yaml.\n",
          f);
}

static double mib(uint64_t bytes)
{
    return (double)bytes / (1024.0 * 1024.0);
}

/* ---- progress bar ---- */

struct bar {
    bool tty;
    char file[IMAGES_NAME_MAX];
    int64_t start_ms;
    uint64_t start_done;
    bool finished; /* the file's bar reached 100% and ended its line */
};

static void on_progress(void *ud, const struct images_progress *p)
{
    struct bar *b = ud;
    if (!b->tty)
        return;
    if (strcmp(b->file, p->file)) {
        snprintf(b->file, sizeof b->file, "%s", p->file);
        b->start_ms = bd_now_ms();
        b->start_done = p->done;
        b->finished = false;
    }
    if (b->finished)
        return;
    double secs = (double)(bd_now_ms() - b->start_ms) / 1000.0;
    double rate = secs > 0 ? mib(p->done - b->start_done) / secs : 0;
    enum { WIDTH = 30 };
    char fill[WIDTH + 1];
    int pct = p->total ? (int)(p->done * 100 / p->total) : 0;
    int cells = p->total ? (int)(p->done * WIDTH / p->total) : 0;
    for (int i = 0; i < WIDTH; i++)
        fill[i] = i < cells ? '#' : '-';
    fill[WIDTH] = 0;
    if (p->total)
        fprintf(stderr, "\r  %-22s [%s] %3d%% %8.1f/%.1f MiB %7.1f MiB/s", p->file, fill, pct,
                mib(p->done), mib(p->total), rate);
    else
        fprintf(stderr, "\r  %-22s %8.1f MiB %7.1f MiB/s", p->file, mib(p->done), rate);
    b->finished = p->total && p->done >= p->total;
    if (b->finished)
        fputs("\n", stderr);
    fflush(stderr);
}

static void on_waiting(void *ud)
{
    (void)ud;
    fputs("  another download of this image is running; waiting for it\n", stderr);
}

/* ---- shared ---- */

static void print_file(const struct images_stage_file *f, const char *what)
{
    printf("  %-22s %-10s %9.1f MiB  sha256 %.16s…%s\n", f->name, what, mib(f->size), f->sha256,
           f->recorded ? "  (recorded in the lock file)" : "");
}

static cJSON *file_json(const struct images_stage_file *f, bool downloaded)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", f->name);
    cJSON_AddNumberToObject(o, "size", (double)f->size);
    cJSON_AddStringToObject(o, "sha256", f->sha256);
    cJSON_AddBoolToObject(o, "downloaded", downloaded);
    cJSON_AddBoolToObject(o, "recorded", f->recorded);
    return o;
}

static cJSON *ref_json(const struct images_ref *r)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "schematic", r->schematic);
    cJSON_AddStringToObject(o, "version", r->version);
    cJSON_AddStringToObject(o, "arch", r->arch);
    return o;
}

/* bootd renders boot scripts from the cache once per lab snapshot: ask for a new one. */
static void tell_bootd(struct image_cmd *ic)
{
    struct bd_err err;
    long status = 0;
    cJSON *j = NULL;
    if (cli_resolve(ic->cli, ic->url, ic->token_file, &err) == 0)
        j = cli_api(ic->cli, "POST", "/images/refresh", NULL, &status, &err);
    if (j && status == 200)
        fprintf(stderr, "bootctl: bootd at %s now serves the changed cache\n", ic->cli->url);
    else
        fprintf(stderr, "bootctl: note: bootd not told about the change (%s)\n",
                j ? "its answer was not 200" : err.msg);
    cJSON_Delete(j);
}

/* ---- subcommands ---- */

static int image_pull(struct image_cmd *ic)
{
    struct images_ref *refs;
    size_t n;
    char id[65], *canonical = NULL;
    struct bd_err err;
    if (images_lab_refs(ic->lab, &refs, &n, &err) < 0 ||
        images_schematic_load(ic->lab->images.schematic_file, id, &canonical, &err) < 0) {
        fprintf(stderr, "bootctl: %s\n", err.msg);
        return 1;
    }
    struct bar bar = {.tty = isatty(STDERR_FILENO) && !ic->cli->json};
    struct images_pull_opts o = {
        .cache_fd = ic->cache_fd,
        .factory = ic->lab->images.factory,
        .lock_file = ic->lab->images.lock_file,
        .schematic_yaml = canonical,
        .timeout_s = ic->lab->images.timeout_s,
        .progress = on_progress,
        .waiting = on_waiting,
        .ud = &bar,
    };
    cJSON *all = cJSON_CreateArray();
    int rc = 0;
    bool changed = false;
    for (size_t i = 0; i < n && rc == 0; i++) {
        const struct images_ref *r = &refs[i];
        if (!ic->cli->json)
            printf("Talos %s %s (schematic %s) from %s:\n", r->version, r->arch, r->schematic,
                   o.factory);
        fflush(stdout);
        struct images_pull_report rep;
        if (images_pull(&o, r, &rep, &err) < 0) {
            if (bar.tty)
                fputs("\n", stderr);
            fprintf(stderr, "bootctl: %s\n", err.msg);
            rc = 1;
            break;
        }
        cJSON *img = ref_json(r);
        cJSON *files = cJSON_AddArrayToObject(img, "files");
        for (int f = 0; f < IMAGES_NFILES; f++) {
            changed |= rep.downloaded[f];
            cJSON_AddItemToArray(files, file_json(&rep.files[f], rep.downloaded[f]));
            if (!ic->cli->json)
                print_file(&rep.files[f], rep.downloaded[f] ? "downloaded" : "verified");
        }
        cJSON_AddItemToArray(all, img);
    }
    if (ic->cli->json && rc == 0)
        cli_print_json(all);
    cJSON_Delete(all);
    free(canonical);
    free(refs);
    if (changed)
        tell_bootd(ic);
    return rc;
}

static int image_import(struct image_cmd *ic, char **paths, size_t npaths)
{
    char id[65];
    struct bd_err err;
    struct images_stage_file files[2 * IMAGES_NFILES];
    memset(files, 0, sizeof files);
    if (images_schematic_id(ic->lab, id, &err) < 0 ||
        images_import(ic->cache_fd, ic->lab->images.lock_file, id,
                      ic->lab->cluster.talos_version, paths, npaths, files, &err) < 0) {
        fprintf(stderr, "bootctl: %s\n", err.msg);
        return 1;
    }
    cJSON *a = cJSON_CreateArray();
    if (!ic->cli->json)
        printf("Talos %s (schematic %s):\n", ic->lab->cluster.talos_version, id);
    for (size_t i = 0; i < npaths; i++) {
        if (ic->cli->json)
            cJSON_AddItemToArray(a, file_json(&files[i], false));
        else
            print_file(&files[i], "imported");
    }
    if (ic->cli->json)
        cli_print_json(a);
    cJSON_Delete(a);
    tell_bootd(ic);
    return 0;
}

static bool lab_uses(const struct images_ref *refs, size_t n, const struct images_ref *r)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(refs[i].schematic, r->schematic) && !strcmp(refs[i].version, r->version) &&
            !strcmp(refs[i].arch, r->arch))
            return true;
    return false;
}

/* How many of the image's files images.lock pins. */
static int pinned(const struct images_lock *lock, const struct images_ref *r)
{
    char names[IMAGES_NFILES][IMAGES_NAME_MAX];
    images_file_names(r->arch, names);
    int n = 0;
    for (int i = 0; i < IMAGES_NFILES; i++) {
        char path[256];
        snprintf(path, sizeof path, "%s/%s/%s", r->schematic, r->version, names[i]);
        n += images_lock_find(lock, path) != NULL;
    }
    return n;
}

static int image_list(struct image_cmd *ic)
{
    struct images_ref *refs = NULL;
    struct images_entry *e = NULL;
    size_t nrefs = 0, n = 0;
    struct images_lock lock;
    struct bd_err err;
    if (images_lab_refs(ic->lab, &refs, &nrefs, &err) < 0 ||
        images_list(ic->cache_fd, &e, &n, &err) < 0 ||
        images_lock_read(ic->lab->images.lock_file, &lock, &err) < 0) {
        fprintf(stderr, "bootctl: %s\n", err.msg);
        free(refs);
        free(e);
        return 1;
    }
    /* what the lab needs and the cache lacks is listed too */
    for (size_t i = 0; i < nrefs; i++) {
        bool have = false;
        for (size_t k = 0; k < n && !have; k++)
            have = lab_uses(&refs[i], 1, &e[k].ref);
        if (!have) {
            e = bd_xrealloc(e, (n + 1) * sizeof *e);
            e[n++] = (struct images_entry){.ref = refs[i]};
        }
    }
    static const char *const hdr[] = {"SCHEMATIC", "VERSION", "ARCH", "FILES", "SIZE",
                                      "PINNED", "USED BY LAB"};
    struct table *t = ic->cli->json ? NULL : cli_table_new(7, hdr);
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++) {
        bool used = lab_uses(refs, nrefs, &e[i].ref);
        int pins = pinned(&lock, &e[i].ref);
        if (t) {
            char files[48], size[32], pin[16], schematic[16];
            snprintf(schematic, sizeof schematic, "%.12s", e[i].ref.schematic);
            snprintf(files, sizeof files, "%d/%d%s", e[i].nfiles, IMAGES_NFILES,
                     e[i].partial ? " (+partial)" : "");
            snprintf(size, sizeof size, "%.1f MiB", mib(e[i].bytes));
            snprintf(pin, sizeof pin, "%d/%d", pins, IMAGES_NFILES);
            const char *row[] = {schematic, e[i].ref.version, e[i].ref.arch, files, size, pin,
                                 used ? "yes" : "no"};
            cli_table_add(t, row);
        }
        cJSON *o = ref_json(&e[i].ref);
        cJSON_AddNumberToObject(o, "files", e[i].nfiles);
        cJSON_AddNumberToObject(o, "bytes", (double)e[i].bytes);
        cJSON_AddNumberToObject(o, "partial_bytes", (double)e[i].partial);
        cJSON_AddNumberToObject(o, "pinned", pins);
        cJSON_AddBoolToObject(o, "used", used);
        cJSON_AddItemToArray(a, o);
    }
    if (t)
        cli_table_print(t, stdout);
    else
        cli_print_json(a);
    cJSON_Delete(a);
    images_lock_free(&lock);
    free(e);
    free(refs);
    return 0;
}

struct gc_tally {
    bool dry_run, json;
    uint64_t bytes;
    size_t n;
    cJSON *removed;
};

static void on_removed(void *ud, const char *path, uint64_t bytes)
{
    struct gc_tally *g = ud;
    g->bytes += bytes;
    g->n++;
    if (g->json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "path", path);
        cJSON_AddNumberToObject(o, "bytes", (double)bytes);
        cJSON_AddItemToArray(g->removed, o);
    } else {
        printf("%s %s (%.1f MiB)\n", g->dry_run ? "would remove" : "removed", path, mib(bytes));
    }
}

static int image_gc(struct image_cmd *ic)
{
    struct images_ref *refs;
    size_t n;
    struct bd_err err;
    if (images_lab_refs(ic->lab, &refs, &n, &err) < 0) {
        fprintf(stderr, "bootctl: %s\n", err.msg);
        return 1;
    }
    struct gc_tally g = {.dry_run = ic->dry_run, .json = ic->cli->json,
                         .removed = cJSON_CreateArray()};
    int rc = images_gc(ic->cache_fd, refs, n, ic->dry_run, on_removed, &g, &err);
    free(refs);
    if (rc < 0)
        fprintf(stderr, "bootctl: %s\n", err.msg);
    if (g.json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddItemToObject(o, "removed", g.removed);
        cJSON_AddNumberToObject(o, "bytes", (double)g.bytes);
        cJSON_AddBoolToObject(o, "dry_run", g.dry_run);
        cli_print_json(o);
        cJSON_Delete(o);
    } else {
        cJSON_Delete(g.removed);
        printf("%s %zu entries, %.1f MiB\n", g.dry_run ? "would free" : "freed", g.n, mib(g.bytes));
    }
    if (g.n && !g.dry_run)
        tell_bootd(ic);
    return rc < 0 ? 1 : 0;
}

int cli_cmd_image(struct cli *c, const char *url, const char *token_file, int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *sub = argv[1];
    const char *lab_path = "lab.yaml", *state_dir = "/var/lib/bootd", *assets = NULL;
    struct image_cmd ic = {.cli = c, .url = url, .token_file = token_file, .cache_fd = -1};
    static const struct option opts[] = {
        {"lab", required_argument, NULL, 'l'},
        {"state-dir", required_argument, NULL, 's'},
        {"assets", required_argument, NULL, 'a'},
        {"dry-run", no_argument, NULL, 'n'},
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    /* parse after the subcommand; optind 0 makes GNU getopt start over */
    argc--, argv++;
    optind = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (ch) {
        case 'l': lab_path = optarg; break;
        case 's': state_dir = optarg; break;
        case 'a': assets = optarg; break;
        case 'n': ic.dry_run = true; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    bool import = !strcmp(sub, "import");
    if ((!import && optind != argc) || (import && optind == argc) ||
        (ic.dry_run && strcmp(sub, "gc"))) {
        usage(stderr);
        return 2;
    }
    int (*run)(struct image_cmd *) = !strcmp(sub, "pull")   ? image_pull
                                     : !strcmp(sub, "list") ? image_list
                                     : !strcmp(sub, "gc")   ? image_gc
                                                            : NULL;
    if (!run && !import) {
        fprintf(stderr, "bootctl: unknown image command \"%s\"\n\n", sub);
        usage(stderr);
        return 2;
    }
    struct bd_err err;
    if (lab_load(lab_path, NULL, NULL, &ic.lab, &err) < 0) {
        fprintf(stderr, "bootctl: %s\n", err.msg);
        return 1;
    }
    ic.cache_dir = assets ? bd_xstrdup(assets) : bd_path_join(state_dir, "images");
    int rc = 1;
    if (bd_mkdir_p(ic.cache_dir, 0755, &err) < 0)
        fprintf(stderr, "bootctl: image cache: %s\n", err.msg);
    else if ((ic.cache_fd = open(ic.cache_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
        fprintf(stderr, "bootctl: image cache %s: %s\n", ic.cache_dir, strerror(errno));
    else
        rc = import ? image_import(&ic, argv + optind, (size_t)(argc - optind)) : run(&ic);
    if (ic.cache_fd >= 0)
        close(ic.cache_fd);
    free(ic.cache_dir);
    lab_free(ic.lab);
    return rc;
}
