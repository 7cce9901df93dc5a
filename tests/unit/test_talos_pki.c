#include "talos_fixture.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* Writes text to dir/name and returns the path (caller frees). */
static char *put(const char *dir, const char *name, const char *text)
{
    return write_file(dir, name, text);
}

/* Every certificate in a PEM file: openssl's asn1parse of each must show no NULL
 * parameter after ecdsa-with-SHA256 (RFC 5758 3.2); returns how many ECDSA
 * AlgorithmIdentifiers it saw. */
static int assert_no_null_after_ecdsa(const char *path)
{
    char *cmd = bd_xasprintf("openssl asn1parse -in %s 2>&1", path);
    char *out = run(cmd);
    int seen = 0;
    for (char *at = out; (at = strstr(at, ":ecdsa-with-SHA256")); at++) {
        seen++;
        char *next = strchr(at, '\n');
        cr_assert_not_null(next);
        char *eol = strchr(next + 1, '\n');
        char *line = bd_xstrndup(next + 1, eol ? (size_t)(eol - next - 1) : strlen(next + 1));
        cr_assert_null(strstr(line, "NULL"), "a NULL follows ecdsa-with-SHA256:\n%s", out);
        free(line);
    }
    free(out);
    free(cmd);
    return seen;
}

Test(pki, ed25519_os_ca_signs_talosconfig_and_server_certs)
{
    char *dir = fixture_lab(NULL, NULL);
    struct lab *lab;
    struct talos_cluster *tc = fixture_cluster(dir, &lab);
    char *cfg = fixture_render(tc, lab, "cp-1");
    assert_has(cfg, "key: LS0tLS1CRUdJTiBFRDI1NTE5IFBSSVZBVEUgS0VZLS0tLS0K"); /* carried as is */
    const struct talos_secrets *s = talos_cluster_secrets(tc, NULL);
    cr_assert(s->os_ed25519);
    struct bd_buf b;
    bd_buf_init(&b);
    struct bd_err err;
    cr_assert_eq(talos_talosconfig(lab, s, &b, &err), 0, "%s", err.msg);
    assert_has(b.data, "context: base\n");
    const char *sans[] = {"127.0.0.1"};
    char *crt, *key;
    cr_assert_eq(talos_server_cert(s, false, "apid", sans, 1, &crt, &key, &err), 0, "%s", err.msg);
    assert_has(key, "-----BEGIN ED25519 PRIVATE KEY-----\n"); /* a leaf of the CA's kind */
    size_t n;
    char *ca = (char *)talos_pki_unb64(s->os.crt, &n);
    char *ca_path = put(dir, "os.crt", ca), *crt_path = put(dir, "apid.crt", crt);
    char *cmd = bd_xasprintf("openssl verify -CAfile %s %s 2>&1", ca_path, crt_path);
    char *out = run(cmd);
    assert_has(out, ": OK");
    free(out);
    free(cmd);
    cmd = bd_xasprintf("openssl x509 -in %s -noout -text 2>&1", crt_path);
    out = run(cmd);
    assert_has(out, "Signature Algorithm: ED25519");
    assert_has(out, "IP Address:127.0.0.1");
    free(out);
    free(cmd);
    free(ca_path);
    free(crt_path);
    free(ca);
    free(crt);
    free(key);
    bd_buf_free(&b);
    free(cfg);
    fixture_done(tc, lab, dir);
}

/* The bundle made with the openssl command alone (tests/fixtures/talos/
 * make-openssl-bundles.sh): talosctl's layout, an Ed25519 os CA under the
 * "ED25519 PRIVATE KEY" block type. bootd signs an os:admin certificate with it that
 * openssl verifies, with apid's requirements (O=os:admin, clientAuth only). */
Test(pki, openssl_made_ed25519_bundle_signs_os_admin)
{
    char *text = read_text(FIXTURES "secrets-openssl-ed25519.yaml");
    struct talos_secrets *s;
    struct bd_err err;
    cr_assert_eq(talos_secrets_parse(text, strlen(text), "o.yaml", &s, &err), 0, "%s", err.msg);
    cr_assert(s->os_ed25519);
    char *dir = fixture_lab(NULL, NULL);
    struct lab *lab;
    struct talos_cluster *tc = fixture_cluster(dir, &lab);
    struct talos_creds cr;
    cr_assert_eq(talos_api_creds(lab, s, &cr, &err), 0, "%s", err.msg);
    char *ca_path = put(dir, "ca.crt", cr.ca_pem), *crt_path = put(dir, "admin.crt", cr.crt_pem);
    char *cmd = bd_xasprintf("openssl verify -CAfile %s %s 2>&1 && openssl x509 -in %s -noout "
                             "-subject -ext extendedKeyUsage,keyUsage 2>&1",
                             ca_path, crt_path, crt_path);
    char *out = run(cmd);
    assert_has(out, ": OK");
    assert_has(out, "subject=O = os:admin");
    assert_has(out, "TLS Web Client Authentication");
    cr_assert_null(strstr(out, "Server Authentication"), "%s", out);
    assert_has(out, "Digital Signature");
    free(out);
    free(cmd);
    free(ca_path);
    free(crt_path);
    talos_creds_free(&cr);
    talos_secrets_free(s);
    free(text);
    fixture_done(tc, lab, dir);
}

/* A bundle bootd makes: Ed25519 os CA; every ECDSA signature (the self-signed CAs and
 * what they sign) encodes ecdsa-with-SHA256 without a NULL parameter; openssl verifies
 * every chain. */
Test(pki, generated_certificates_verify_and_carry_no_null_after_ecdsa, .timeout = 120)
{
    struct talos_secrets *s;
    struct bd_err err;
    cr_assert_eq(talos_secrets_generate(&s, &err), 0, "%s", err.msg);
    char *dir = tmpdir_new();
    const struct secrets_ca *cas[] = {&s->etcd, &s->k8s, &s->k8s_aggregator};
    int ecdsa = 0;
    for (size_t i = 0; i < 3; i++) {
        size_t n;
        char *pem = (char *)talos_pki_unb64(cas[i]->crt, &n);
        char *path = put(dir, "ca.crt", pem);
        ecdsa += assert_no_null_after_ecdsa(path);
        free(path);
        free(pem);
    }
    cr_assert_eq(ecdsa, 6, "three self-signed ECDSA CAs, two AlgorithmIdentifiers each");
    const char *sans[] = {"127.0.0.1", "kube.test"};
    char *crt, *key;
    cr_assert_eq(talos_server_cert(s, true, "kube-apiserver", sans, 2, &crt, &key, &err), 0, "%s",
                 err.msg);
    size_t n;
    char *ca = (char *)talos_pki_unb64(s->k8s.crt, &n);
    char *ca_path = put(dir, "k8s.crt", ca), *crt_path = put(dir, "server.crt", crt);
    cr_assert_eq(assert_no_null_after_ecdsa(crt_path), 2);
    char *cmd = bd_xasprintf("openssl verify -CAfile %s %s 2>&1", ca_path, crt_path);
    char *out = run(cmd);
    assert_has(out, ": OK");
    free(out);
    free(cmd);
    /* the os CA: Ed25519, self-signed, verifies */
    char *os = (char *)talos_pki_unb64(s->os.crt, &n);
    char *os_path = put(dir, "os.crt", os);
    cmd = bd_xasprintf("openssl verify -CAfile %s %s 2>&1 && openssl x509 -in %s -noout -text",
                       os_path, os_path, os_path);
    out = run(cmd);
    assert_has(out, ": OK");
    assert_has(out, "Public Key Algorithm: ED25519");
    assert_has(out, "CA:TRUE");
    free(out);
    free(cmd);
    free(os);
    free(os_path);
    free(ca);
    free(ca_path);
    free(crt_path);
    free(crt);
    free(key);
    tmpdir_remove(dir);
    free(dir);
    talos_secrets_free(s);
}

/* The DER itself: the AlgorithmIdentifier bytes (RFC 5758 3.2 says the parameters
 * field MUST be absent for ecdsa-with-SHA256). */
Test(pki, ecdsa_algorithm_identifier_der)
{
    struct bd_err err;
    EVP_PKEY *key = talos_pki_key_generate(PKI_KEY_EC_P256, &err);
    cr_assert_not_null(key);
    struct pki_cert_spec spec = {.subject = "O=x", .ca = true,
                                 .key_usage = PKI_KU_CERT_SIGN, .not_before = 0,
                                 .not_after = 4102444800};
    char *pem;
    cr_assert_eq(talos_pki_cert_issue(&spec, key, NULL, NULL, &pem, &err), 0, "%s", err.msg);
    X509 *x = talos_pki_cert_parse(pem, "x", &err);
    unsigned char *der = NULL;
    int len = i2d_X509(x, &der);
    static const unsigned char with_null[] = {0x30, 0x0c, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce,
                                              0x3d, 0x04, 0x03, 0x02, 0x05, 0x00};
    static const unsigned char without[] = {0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86,
                                            0x48, 0xce, 0x3d, 0x04, 0x03, 0x02};
    cr_assert_null(memmem(der, (size_t)len, with_null, sizeof with_null));
    cr_assert_not_null(memmem(der, (size_t)len, without, sizeof without));
    OPENSSL_free(der);
    X509_free(x);
    free(pem);
    EVP_PKEY_free(key);
}
