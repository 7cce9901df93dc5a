#include "talos_fixture.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Parses text as a bundle named s.yaml, expecting failure; returns the message. */
static const char *bundle_error(const char *text, struct bd_err *err)
{
    struct talos_secrets *s = NULL;
    cr_assert_eq(talos_secrets_parse(text, strlen(text), "s.yaml", &s, err), -1,
                 "expected an error for:\n%s", text);
    cr_assert_null(s);
    return err->msg;
}

/* The fixture bundle with one line replaced (the first containing from). */
static char *bundle_with(const char *from, const char *to)
{
    char *text = read_text(FIXTURES "secrets-reference.yaml");
    char *at = strstr(text, from);
    cr_assert_not_null(at, "%s", from);
    char *eol = strchr(at, '\n');
    char *out = bd_xasprintf("%.*s%s%s", (int)(at - text), text, to, eol);
    free(text);
    return out;
}

Test(secrets, talosctl_bundle_imports_and_writes_back_unchanged)
{
    char *text = read_text(FIXTURES "secrets-reference.yaml");
    struct talos_secrets *s;
    struct bd_err err;
    cr_assert_eq(talos_secrets_parse(text, strlen(text), "ref.yaml", &s, &err), 0, "%s", err.msg);
    cr_assert(s->os_ed25519, "talosctl's os CA is Ed25519, carried as it is");
    struct bd_buf b;
    bd_buf_init(&b);
    talos_secrets_emit(s, &b);
    cr_assert_str_eq(b.data, text);
    bd_buf_free(&b);
    talos_secrets_free(s);
    free(text);
}

static bool token_shape(const char *t)
{
    if (strlen(t) != 23 || t[6] != '.')
        return false;
    for (int i = 0; i < 23; i++)
        if (i != 6 && !strchr("0123456789abcdefghijklmnopqrstuvwxyz", t[i]))
            return false;
    return true;
}

static void assert_key(const char *b64, int type, int bits, const char *block)
{
    size_t len;
    char *pem = (char *)talos_pki_unb64(b64, &len);
    cr_assert_not_null(pem);
    assert_has(pem, block);
    struct bd_err err;
    EVP_PKEY *pk = talos_pki_key_parse(pem, "key", &err);
    cr_assert_not_null(pk, "%s", err.msg);
    cr_assert_eq(EVP_PKEY_get_base_id(pk), type);
    cr_assert_eq(EVP_PKEY_get_bits(pk), bits);
    EVP_PKEY_free(pk);
    free(pem);
}

Test(secrets, generated_bundle_has_talos_shapes_and_round_trips, .timeout = 120)
{
    struct talos_secrets *s;
    struct bd_err err;
    cr_assert_eq(talos_secrets_generate(&s, &err), 0, "%s", err.msg);
    cr_assert(token_shape(s->bootstrap_token), "%s", s->bootstrap_token);
    cr_assert(token_shape(s->trustd_token), "%s", s->trustd_token);
    cr_assert_neq(strcmp(s->bootstrap_token, s->trustd_token), 0);
    cr_assert_null(strpbrk(s->cluster_id, "+/"), "v1.13 cluster ids are URL-safe base64");
    cr_assert_eq(strlen(s->cluster_id), 44);
    cr_assert_eq(strlen(s->cluster_secret), 44);
    cr_assert_eq(strlen(s->secretbox_secret), 44);
    cr_assert(s->os_ed25519, "an Ed25519 os CA, as talosctl makes it");
    assert_key(s->os.key, EVP_PKEY_ED25519, 256, "-----BEGIN ED25519 PRIVATE KEY-----\n");
    assert_key(s->etcd.key, EVP_PKEY_EC, 256, "BEGIN EC PRIVATE KEY");
    assert_key(s->service_account_key, EVP_PKEY_RSA, 4096, "BEGIN RSA PRIVATE KEY");

    struct bd_buf b, again;
    bd_buf_init(&b);
    bd_buf_init(&again);
    talos_secrets_emit(s, &b);
    struct talos_secrets *read;
    cr_assert_eq(talos_secrets_parse(b.data, b.len, "gen.yaml", &read, &err), 0, "%s", err.msg);
    talos_secrets_emit(read, &again);
    cr_assert_str_eq(again.data, b.data);
    assert_has(b.data, "cluster:\n    id: ");
    assert_has(b.data, "\ncerts:\n    etcd:\n        crt: ");
    bd_buf_free(&b);
    bd_buf_free(&again);
    talos_secrets_free(read);
    talos_secrets_free(s);
}

Test(secrets, world_readable_file_is_refused_with_the_chmod)
{
    char *dir = tmpdir_new();
    char *text = read_text(FIXTURES "secrets-reference.yaml");
    char *path = write_file(dir, "secrets.yaml", text);
    cr_assert_eq(chmod(path, 0644), 0);
    struct talos_secrets *s;
    struct bd_err err;
    cr_assert_eq(talos_secrets_load(path, &s, &err), -1);
    char *want = bd_xasprintf("run: chmod 600 %s", path);
    assert_has(err.msg, want);
    cr_assert_eq(chmod(path, 0600), 0);
    cr_assert_eq(talos_secrets_load(path, &s, &err), 0, "%s", err.msg);
    talos_secrets_free(s);
    tmpdir_remove(dir);
    free(want);
    free(path);
    free(text);
    free(dir);
}

Test(secrets, errors_name_the_file_line_and_key)
{
    struct bd_err err;
    char *t = bundle_with("trustdinfo:", "trustdinfos:");
    assert_has(bundle_error(t, &err), "s.yaml:7:1: trustdinfos: unknown key in a Talos secrets bundle");
    free(t);
    t = bundle_with("    bootstraptoken:", "    bootstraptoken: not-a-token");
    assert_has(bundle_error(t, &err), "s.yaml:5:21: secrets.bootstraptoken: \"not-a-token\" is not a token");
    free(t);
    t = bundle_with("    secret:", "    secret: c2hvcnQ=");
    assert_has(bundle_error(t, &err), "cluster.secret: must be base64 of 32 bytes");
    free(t);
    t = bundle_with("    token:", "    token: \"\"");
    assert_has(bundle_error(t, &err), "trustdinfo.token: missing");
    free(t);
    t = bundle_with("    secretboxencryptionsecret:", "    x: 1");
    assert_has(bundle_error(t, &err), "secrets.x: unknown key");
    free(t);
}

Test(secrets, certificates_and_keys_are_checked)
{
    struct bd_err err;
    char *text = read_text(FIXTURES "secrets-reference.yaml");
    struct talos_secrets *s;
    cr_assert_eq(talos_secrets_parse(text, strlen(text), "ref.yaml", &s, &err), 0, "%s", err.msg);

    /* the etcd CA with the Kubernetes CA's key */
    char *line = bd_xasprintf("        key: %s", s->k8s.key);
    char *t = bundle_with("        key:", line);
    assert_has(bundle_error(t, &err), "certs.etcd.key: does not belong to certs.etcd.crt");
    free(t);
    free(line);
    /* the os CA's Ed25519 key where an ECDSA one belongs */
    line = bd_xasprintf("        key: %s", s->os.key);
    t = bundle_with("        key:", line);
    assert_has(bundle_error(t, &err), "certs.etcd.key: an Ed25519 key; Talos makes this CA ECDSA P-256");
    free(t);
    free(line);
    t = bundle_with("        crt:", "        crt: '%%%'");
    assert_has(bundle_error(t, &err), "certs.etcd.crt: not base64");
    free(t);
    t = bundle_with("        crt:", "        crt: aGVsbG8=");
    assert_has(bundle_error(t, &err), "certs.etcd.crt: does not hold a PEM CERTIFICATE");
    free(t);
    talos_secrets_free(s);
    free(text);
}

Test(secrets, bundles_from_before_secretbox_are_read)
{
    char *t = bundle_with("    secretboxencryptionsecret:",
                          "    aescbcencryptionsecret: 45yd2Ke+sytiICojDf8aibTfgt99nzJmO53cjDqrCto=");
    struct talos_secrets *s;
    struct bd_err err;
    cr_assert_eq(talos_secrets_parse(t, strlen(t), "old.yaml", &s, &err), 0, "%s", err.msg);
    cr_assert_null(s->secretbox_secret);
    cr_assert_not_null(s->aescbc_secret);
    talos_secrets_free(s);
    free(t);
    char *both = bundle_with("    bootstraptoken:",
                             "    bootstraptoken: inn7ol.u4ehnti8qyls9ymo\n"
                             "    aescbcencryptionsecret: 45yd2Ke+sytiICojDf8aibTfgt99nzJmO53cjDqrCto=");
    struct bd_err e2;
    assert_has(bundle_error(both, &e2), "secrets: needs exactly one of");
    free(both);
}

/* The Terraform provider's talos_machine_secrets, yamlencoded: the same values under
 * other keys (bootstrap_token, k8s_aggregator, cert...), null for what is unset. It
 * reads as the talosctl bundle with the same values and is written back in talosctl's
 * layout, key for key. */
Test(secrets, terraform_machine_secrets_import_unchanged)
{
    char *tf = read_text(FIXTURES "secrets-terraform.yaml");
    char *talosctl = read_text(FIXTURES "secrets-openssl-ed25519.yaml");
    struct talos_secrets *s;
    struct bd_err err;
    cr_assert_eq(talos_secrets_parse(tf, strlen(tf), "tf.yaml", &s, &err), 0, "%s", err.msg);
    cr_assert(s->os_ed25519);
    cr_assert_null(s->aescbc_secret);
    struct bd_buf b;
    bd_buf_init(&b);
    talos_secrets_emit(s, &b);
    cr_assert_str_eq(b.data, talosctl);
    bd_buf_free(&b);
    talos_secrets_free(s);

    /* errors name the keys as the Terraform file spells them */
    char *at = strstr(tf, "\"bootstrap_token\": \"");
    cr_assert_not_null(at);
    memcpy(at + strlen("\"bootstrap_token\": \""), "NOT", 3);
    assert_has(bundle_error(tf, &err), "s.yaml:21:");
    assert_has(err.msg, ": secrets.bootstrap_token: \"NOT");
    at = strstr(tf, "\"k8s_aggregator\":");
    memcpy(at, "\"k8s_aggregatoX\"", 16);
    assert_has(bundle_error(tf, &err), "certs.k8s_aggregatoX: unknown key");
    free(tf);
    free(talosctl);
}

/* Bundles made before bootd's os CA became Ed25519 have an ECDSA one: still read and
 * signed with. */
Test(secrets, ecdsa_os_ca_bundles_stay_readable, .timeout = 120)
{
    struct talos_secrets *s;
    struct bd_err err;
    cr_assert_eq(talos_secrets_generate_os(&s, TALOS_OS_CA_ECDSA, &err), 0, "%s", err.msg);
    cr_assert_not(s->os_ed25519);
    assert_key(s->os.key, EVP_PKEY_EC, 256, "BEGIN EC PRIVATE KEY");
    struct bd_buf b;
    bd_buf_init(&b);
    talos_secrets_emit(s, &b);
    struct talos_secrets *read;
    cr_assert_eq(talos_secrets_parse(b.data, b.len, "old.yaml", &read, &err), 0, "%s", err.msg);
    cr_assert_not(read->os_ed25519);
    const char *sans[] = {"127.0.0.1"};
    char *crt, *key;
    cr_assert_eq(talos_server_cert(read, false, "apid", sans, 1, &crt, &key, &err), 0, "%s", err.msg);
    assert_has(key, "BEGIN EC PRIVATE KEY");
    free(crt);
    free(key);
    bd_buf_free(&b);
    talos_secrets_free(read);
    talos_secrets_free(s);
}

/* Found by fuzzing (fuzz_secrets): one byte changed in the etcd CA's EC point leaves a
 * certificate OpenSSL parses but whose public key it cannot decode; bootd used to hand
 * that NULL key to OpenSSL and crash. Now it is an error naming the certificate. */
Test(secrets, certificate_with_an_unreadable_public_key)
{
    char *text = read_text("tests/fuzz/corpus/secrets/regress-etcd-crt-point-off-curve.yaml");
    struct bd_err err;
    const char *msg = bundle_error(text, &err);
    cr_assert(strstr(msg, "certs.etcd.crt"), "%s", msg);
    cr_assert(strstr(msg, "public key cannot be read"), "%s", msg);
    free(text);
}
