#include "talos_fixture.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

Test(pki, extended_key_usage_der)
{
    unsigned char buf[64], *der;
    size_t len;
    cr_assert_eq(talos_pki_ext_eku(PKI_EKU_SERVER | PKI_EKU_CLIENT, buf, sizeof buf, &der, &len), 0);
    /* SEQUENCE { id-kp-serverAuth, id-kp-clientAuth } */
    static const unsigned char want[] = {0x30, 0x14, 0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07,
                                         0x03, 0x01, 0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07,
                                         0x03, 0x02};
    cr_assert_eq(len, sizeof want);
    cr_assert_arr_eq(der, want, sizeof want);
    cr_assert_eq(talos_pki_ext_eku(PKI_EKU_CLIENT, buf, sizeof buf, &der, &len), 0);
    cr_assert_eq(len, 12);
    cr_assert_eq(der[11], 0x02, "clientAuth only");
}

Test(pki, subject_alt_name_der)
{
    unsigned char buf[128], *der;
    size_t len;
    struct bd_err err;
    const char *sans[] = {"192.0.2.7", "a.example"};
    cr_assert_eq(talos_pki_ext_san(sans, 2, buf, sizeof buf, &der, &len, &err), 0, "%s", err.msg);
    /* SEQUENCE { [7] c0 00 02 07, [2] "a.example" } */
    static const unsigned char want[] = {0x30, 0x11, 0x87, 0x04, 0xc0, 0x00, 0x02, 0x07, 0x82, 0x09,
                                         'a',  '.',  'e',  'x',  'a',  'm',  'p',  'l',  'e'};
    cr_assert_eq(len, sizeof want);
    cr_assert_arr_eq(der, want, sizeof want);
    const char *bad[] = {"not a name"};
    cr_assert_eq(talos_pki_ext_san(bad, 1, buf, sizeof buf, &der, &len, &err), -1);
    assert_has(err.msg, "\"not a name\" is neither an IPv4 address nor a DNS name");
}

/* Runs a shell command and returns its standard output (caller frees). */
static char *run(const char *cmd)
{
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p, "%s", cmd);
    struct bd_buf b;
    bd_buf_init(&b);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, p)) > 0)
        bd_buf_append(&b, chunk, n);
    cr_assert_eq(pclose(p), 0, "%s failed:\n%s", cmd, b.data);
    return bd_buf_steal(&b);
}

/* A server certificate signed by the Kubernetes CA talosctl made (a Go-written CA),
 * read back by openssl: SANs, key usage, EKU, and the chain. */
Test(pki, server_certificate_as_openssl_reads_it)
{
    char *text = read_text(FIXTURES "secrets-reference.yaml");
    struct talos_secrets *s;
    struct bd_err err;
    cr_assert_eq(talos_secrets_parse(text, strlen(text), "ref.yaml", &s, &err), 0, "%s", err.msg);
    const char *sans[] = {"127.0.0.1", "kube.test"};
    char *crt, *key;
    cr_assert_eq(talos_server_cert(s, true, "kube-apiserver", sans, 2, &crt, &key, &err), 0, "%s",
                 err.msg);
    char *dir = tmpdir_new();
    char *crt_path = write_file(dir, "server.crt", crt);
    size_t ca_len;
    char *ca = (char *)talos_pki_unb64(s->k8s.crt, &ca_len);
    char *ca_path = write_file(dir, "ca.crt", ca);
    char *cmd = bd_xasprintf("openssl x509 -in %s -noout -subject -ext subjectAltName,keyUsage,"
                             "extendedKeyUsage,basicConstraints 2>&1",
                             crt_path);
    char *out = run(cmd);
    assert_has(out, "subject=CN = kube-apiserver");
    assert_has(out, "IP Address:127.0.0.1, DNS:kube.test");
    assert_has(out, "Digital Signature, Key Encipherment");
    assert_has(out, "TLS Web Server Authentication");
    cr_assert_null(strstr(out, "Client Authentication"));
    cr_assert_null(strstr(out, "CA:TRUE"));
    free(out);
    free(cmd);
    cmd = bd_xasprintf("openssl verify -CAfile %s %s 2>&1", ca_path, crt_path);
    out = run(cmd);
    assert_has(out, ": OK");
    free(out);
    free(cmd);
    cmd = bd_xasprintf("openssl x509 -in %s -noout -issuer -nameopt multiline,show_type", crt_path);
    out = run(cmd);
    assert_has(out, "PRINTABLESTRING:kubernetes"); /* the issuer as Go wrote it */
    free(out);
    free(cmd);
    tmpdir_remove(dir);
    free(dir);
    free(crt_path);
    free(ca_path);
    free(ca);
    free(crt);
    free(key);
    talos_secrets_free(s);
    free(text);
}

Test(pki, ed25519_os_ca_serves_configs_but_cannot_mint_talosconfig)
{
    char *dir = fixture_lab(NULL, NULL);
    struct lab *lab;
    struct talos_cluster *tc = fixture_cluster(dir, &lab);
    char *cfg = fixture_render(tc, lab, "cp-1");
    assert_has(cfg, "key: LS0tLS1CRUdJTiBFRDI1NTE5IFBSSVZBVEUgS0VZLS0tLS0K"); /* carried as is */
    char *text = read_text(FIXTURES "secrets-reference.yaml");
    struct talos_secrets *s;
    struct bd_err err;
    cr_assert_eq(talos_secrets_parse(text, strlen(text), "ref.yaml", &s, &err), 0, "%s", err.msg);
    struct bd_buf b;
    bd_buf_init(&b);
    cr_assert_eq(talos_talosconfig(lab, s, &b, &err), -1);
    assert_has(err.msg, "certs.os is an Ed25519 CA (talosctl's default) and mbedTLS 2.28 cannot sign");
    assert_has(err.msg, "talosctl gen config --with-secrets");
    cr_assert_eq(talos_kubeconfig(lab, s, &b, &err), 0, "%s", err.msg);
    assert_has(b.data, "current-context: admin@base\n");
    assert_has(b.data, "server: https://base:6443\n");
    const char *sans[] = {"127.0.0.1"};
    char *crt, *key;
    cr_assert_eq(talos_server_cert(s, false, "apid", sans, 1, &crt, &key, &err), -1);
    assert_has(err.msg, "the os CA key in the secrets bundle is an Ed25519 key");
    bd_buf_free(&b);
    talos_secrets_free(s);
    free(text);
    free(cfg);
    fixture_done(tc, lab, dir);
}
