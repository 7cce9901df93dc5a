/* The repository, with libgit2: made and fetched on first use, fetched afterwards, then check out the
 * configured ref (a branch, a tag or a commit) with a detached HEAD. https takes a token
 * as the password, ssh a private key; file:// and plain paths serve tests and mirrors. */
#include "gitops.h"

#include <errno.h>
#include <git2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct creds {
    const struct gitops_git_opts *o;
    char *token;
    int tries;
    char why[256];
};

static int on_credentials(git_credential **out, const char *url, const char *user_from_url,
                          unsigned int allowed, void *payload)
{
    (void)url;
    struct creds *c = payload;
    const char *user = user_from_url && *user_from_url ? user_from_url : "git";
    if (c->tries++ > 0) {
        snprintf(c->why, sizeof c->why, "the server refused the credentials from %s",
                 c->o->token_file ? c->o->token_file
                                  : c->o->ssh_key_file ? c->o->ssh_key_file : "(none)");
        return GIT_EUSER;
    }
    if ((allowed & GIT_CREDENTIAL_SSH_KEY) && c->o->ssh_key_file)
        return git_credential_ssh_key_new(out, user, NULL, c->o->ssh_key_file, NULL);
    if ((allowed & GIT_CREDENTIAL_USERPASS_PLAINTEXT) && c->token)
        return git_credential_userpass_plaintext_new(out, user, c->token);
    snprintf(c->why, sizeof c->why, "the server asks for credentials; set gitops.%s",
             (allowed & GIT_CREDENTIAL_SSH_KEY) ? "ssh_key" : "token_file");
    return GIT_EUSER;
}

static int on_progress(const git_indexer_progress *stats, void *payload)
{
    (void)stats;
    const struct creds *c = payload;
    return c->o->cancel && atomic_load(c->o->cancel) ? -1 : 0;
}

static int git_fail(struct bd_err *err, const struct creds *c, const char *what)
{
    const git_error *e = git_error_last();
    if (c && c->why[0])
        return bd_err_set(err, "%s: %s", what, c->why);
    return bd_err_set(err, "%s: %s", what, e && e->message ? e->message : "unknown libgit2 error");
}

static void set_callbacks(git_remote_callbacks *cb, struct creds *c)
{
    cb->credentials = on_credentials;
    cb->transfer_progress = on_progress;
    cb->payload = c;
}

/* Fetches every branch into refs/remotes/origin/ and every tag. The remote is made in
 * memory for each fetch (so a changed URL needs nothing more) and skips url.insteadOf
 * rewriting: our repository has no such settings, and libgit2 1.5 leaks the regex match
 * data of that lookup. */
static int fetch(git_repository *repo, struct creds *c, struct bd_err *err)
{
    git_remote_create_options ro;
    git_remote_create_options_init(&ro, GIT_REMOTE_CREATE_OPTIONS_VERSION);
    ro.repository = repo;
    ro.flags = GIT_REMOTE_CREATE_SKIP_INSTEADOF | GIT_REMOTE_CREATE_SKIP_DEFAULT_FETCHSPEC;
    git_remote *remote = NULL;
    if (git_remote_create_with_opts(&remote, c->o->url, &ro) < 0)
        return git_fail(err, NULL, "remote");
    char *specs[] = {"+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*"};
    git_strarray refspecs = {.strings = specs, .count = 2};
    git_fetch_options fo;
    git_fetch_options_init(&fo, GIT_FETCH_OPTIONS_VERSION);
    set_callbacks(&fo.callbacks, c);
    fo.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_NONE; /* the refspec takes them */
    fo.prune = GIT_FETCH_PRUNE;
    char *what = bd_xasprintf("fetching %s", c->o->url);
    int rc = git_remote_fetch(remote, &refspecs, &fo, "bootd fetch") < 0 ? git_fail(err, c, what)
                                                                         : 0;
    free(what);
    git_remote_free(remote);
    return rc;
}

/* The commit ref names: a remote branch, a tag, or a commit id. */
static int resolve(git_repository *repo, const char *ref, git_object **commit, struct bd_err *err)
{
    char *names[] = {bd_xasprintf("refs/remotes/origin/%s", ref),
                     bd_xasprintf("refs/tags/%s", ref), bd_xstrdup(ref)};
    git_object *obj = NULL;
    for (size_t i = 0; i < 3 && !obj; i++)
        if (git_revparse_single(&obj, repo, names[i]) < 0)
            obj = NULL;
    for (size_t i = 0; i < 3; i++)
        free(names[i]);
    if (!obj)
        return bd_err_set(err, "ref \"%s\" is neither a branch, a tag nor a commit of the "
                               "repository",
                          ref);
    int rc = git_object_peel(commit, obj, GIT_OBJECT_COMMIT);
    git_object_free(obj);
    return rc < 0 ? bd_err_set(err, "ref \"%s\" does not name a commit", ref) : 0;
}

static int checkout(git_repository *repo, const git_object *commit, char out[41],
                    struct bd_err *err)
{
    git_checkout_options co;
    git_checkout_options_init(&co, GIT_CHECKOUT_OPTIONS_VERSION);
    co.checkout_strategy = GIT_CHECKOUT_FORCE | GIT_CHECKOUT_REMOVE_UNTRACKED;
    if (git_checkout_tree(repo, commit, &co) < 0 ||
        git_repository_set_head_detached(repo, git_object_id(commit)) < 0)
        return git_fail(err, NULL, "checkout");
    git_oid_tostr(out, 41, git_object_id(commit));
    return 0;
}

static int head_commit(git_repository *repo, char out[41])
{
    git_oid oid;
    if (git_reference_name_to_id(&oid, repo, "HEAD") < 0)
        return -1;
    git_oid_tostr(out, 41, &oid);
    return 0;
}

static bool dir_empty_or_missing(const char *dir)
{
    struct stat sb;
    if (stat(dir, &sb) < 0)
        return errno == ENOENT;
    return rmdir(dir) == 0; /* succeeds only when empty; clone makes it again */
}

int gitops_git_sync(const struct gitops_git_opts *o, char commit[41], bool *kept,
                    struct bd_err *err)
{
    commit[0] = 0;
    *kept = false;
    struct creds c = {.o = o};
    if (o->token_file) {
        if (bd_file_check_private(o->token_file, err) < 0 ||
            bd_file_read(o->token_file, &c.token, NULL, err) < 0)
            return bd_err_prefix(err, "gitops.token_file");
        c.token[strcspn(c.token, "\r\n")] = 0;
    }
    if (o->ssh_key_file && bd_file_check_private(o->ssh_key_file, err) < 0) {
        free(c.token);
        return bd_err_prefix(err, "gitops.ssh_key");
    }
    git_libgit2_init();
    git_repository *repo = NULL;
    int rc;
    if (git_repository_open(&repo, o->dir) == 0) {
        rc = fetch(repo, &c, err);
        if (rc < 0 && head_commit(repo, commit) == 0)
            *kept = true;
    } else if (dir_empty_or_missing(o->dir)) {
        /* a clone is an empty repository and a first fetch */
        rc = bd_mkdir_p(o->dir, 0700, err);
        if (rc == 0 && git_repository_init(&repo, o->dir, 0) < 0)
            rc = git_fail(err, NULL, o->dir);
        if (rc == 0)
            rc = fetch(repo, &c, err);
    } else {
        rc = bd_err_set(err, "%s exists and is not a git repository; move it away", o->dir);
    }
    git_object *target = NULL;
    if (rc == 0)
        rc = resolve(repo, o->ref, &target, err);
    if (rc == 0) {
        rc = checkout(repo, target, commit, err);
        git_object_free(target);
    }
    git_repository_free(repo);
    git_libgit2_shutdown();
    free(c.token);
    return rc;
}
