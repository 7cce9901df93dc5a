/* What bootctl plan shows of a machine config: the text with every secret replaced by a
 * marker, and the difference between two such texts.
 *
 * A marker is "<redacted:xxxxxxxx>": the first 8 hex digits of an HMAC-SHA256 of the
 * secret, keyed by a key derived from the cluster's own secrets. A rotated secret thus
 * shows as a changed marker, while the marker says nothing about the value to anyone
 * without the secrets bundle (a plain hash of a short password could be guessed). The
 * redacted text is what state.db keeps of an applied config. */
#include "internal.h"

#include <git2.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Keys whose scalar values are secrets wherever they appear: the CA and service-account
 * keys, trustd and bootstrap tokens, the cluster (discovery) secret, the encryption
 * secrets, registry credentials, WireGuard keys, disk-encryption passphrases. */
static const char *const secret_keys[] = {
    "key",        "token",         "secret",      "secretboxEncryptionSecret",
    "aescbcEncryptionSecret", "password", "auth", "identityToken",
    "privateKey", "presharedKey",  "passphrase",  "bootstrapToken",
};

static bool secret_key(const char *k)
{
    for (size_t i = 0; i < sizeof secret_keys / sizeof secret_keys[0]; i++)
        if (!strcmp(k, secret_keys[i]))
            return true;
    return false;
}

void talos_redact_key_of(const struct talos_cluster *tc, const char *cluster_name,
                         uint8_t key[32])
{
    const struct talos_secrets *s = tc ? talos_cluster_secrets(tc, NULL) : NULL;
    struct bd_buf b;
    bd_buf_init(&b);
    bd_buf_printf(&b, "bootd config redaction\n%s\n%s\n%s", cluster_name ? cluster_name : "",
                  s && s->cluster_id ? s->cluster_id : "",
                  s && s->cluster_secret ? s->cluster_secret : "");
    bd_sha256(b.data, b.len, key);
    bd_buf_free(&b);
}

static void mark(struct bd_node *v, const uint8_t key[32])
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    HMAC(EVP_sha256(), key, 32, (const unsigned char *)v->str, strlen(v->str), mac, &n);
    char marker[32];
    snprintf(marker, sizeof marker, "<redacted:%02x%02x%02x%02x>", mac[0], mac[1], mac[2], mac[3]);
    free(v->str);
    v->str = bd_xstrdup(marker);
    v->plain = false;
}

/* An inline manifest may carry a Secret of its own: then its contents go too. */
static bool secret_manifest(const char *k, const struct bd_node *v)
{
    return !strcmp(k, "contents") && v->kind == BD_NODE_SCALAR && v->str &&
           strstr(v->str, "kind: Secret");
}

static void redact(struct bd_node *n, const uint8_t key[32])
{
    if (n->kind == BD_NODE_SEQ) {
        for (size_t i = 0; i < n->n; i++)
            redact(n->kids[i], key);
        return;
    }
    if (n->kind != BD_NODE_MAP)
        return;
    for (size_t i = 0; i < n->n; i++) {
        const char *k = n->kids[2 * i]->str ? n->kids[2 * i]->str : "";
        struct bd_node *v = n->kids[2 * i + 1];
        if (v->kind == BD_NODE_SCALAR && v->str && v->str[0] && !bd_node_is_null(v) &&
            (secret_key(k) || secret_manifest(k, v)))
            mark(v, key);
        else
            redact(v, key);
    }
}

int talos_config_redact(const char *text, size_t len, const uint8_t key[32], char **out,
                        struct bd_err *err)
{
    struct bd_yaml_doc d;
    if (bd_yaml_parse(text, len, "machine config", &d, err) < 0)
        return -1;
    for (size_t i = 0; i < d.ndocs; i++)
        redact(d.docs[i], key);
    struct bd_buf b;
    bd_buf_init(&b);
    bd_yaml_emit_docs(&b, d.docs, d.ndocs);
    bd_yaml_doc_free(&d);
    *out = bd_buf_steal(&b);
    return 0;
}

int talos_text_diff(const char *old, const char *new_, const char *name, char **out,
                    struct bd_err *err)
{
    git_libgit2_init();
    git_patch *patch = NULL;
    git_buf buf = GIT_BUF_INIT;
    git_diff_options opts;
    git_diff_options_init(&opts, GIT_DIFF_OPTIONS_VERSION);
    opts.context_lines = 3;
    int rc = -1;
    if (git_patch_from_buffers(&patch, old, strlen(old), name, new_, strlen(new_), name,
                               &opts) < 0 ||
        (patch && git_patch_to_buf(&buf, patch) < 0)) {
        const git_error *e = git_error_last();
        bd_err_set(err, "diff of %s: %s", name, e && e->message ? e->message : "libgit2 failed");
    } else {
        /* from the "---" line on: git's own header names blobs, not configs */
        const char *p = buf.ptr ? buf.ptr : "";
        const char *from = !strncmp(p, "--- ", 4) ? p : strstr(p, "\n--- ");
        *out = bd_xstrdup(from ? from + (*from == '\n') : "");
        rc = 0;
    }
    git_buf_dispose(&buf);
    git_patch_free(patch);
    git_libgit2_shutdown();
    return rc;
}
