/* Day 2 (bootctl plan): what a config shows once redacted, the diff between two, and
 * how Talos's answers read. */
#include "talos_fixture.h"

#include "../../cluster/cluster.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

static const uint8_t KEY[32] = {1, 2, 3};

static char *redact(const char *text, const uint8_t *key)
{
    char *out;
    struct bd_err err;
    cr_assert_eq(talos_config_redact(text, strlen(text), key, &out, &err), 0, "%s", err.msg);
    return out;
}

/* Every secret of the fixture bundle: no line of a redacted config holds one. */
Test(day2, a_generated_config_keeps_no_secret)
{
    char *dir = fixture_lab(NULL, NULL);
    struct lab *lab;
    struct talos_cluster *tc = fixture_cluster(dir, &lab);
    const struct talos_secrets *s = talos_cluster_secrets(tc, NULL);
    uint8_t key[32];
    talos_redact_key_of(tc, lab->cluster.name, key);
    for (int i = 0; i < 2; i++) {
        char *cfg = fixture_render(tc, lab, i ? "w-1" : "cp-1"), *red = redact(cfg, key);
        const char *secrets[] = {s->cluster_secret, s->bootstrap_token, s->trustd_token,
                                 s->secretbox_secret, s->os.key, s->etcd.key, s->k8s.key,
                                 s->k8s_aggregator.key, s->service_account_key};
        for (size_t j = 0; j < sizeof secrets / sizeof *secrets; j++)
            if (secrets[j] && *secrets[j]) {
                if (!i) /* a control plane's config holds every one */
                    cr_assert(strstr(cfg, secrets[j]), "the config holds secret %zu", j);
                cr_assert_null(strstr(red, secrets[j]), "secret %zu left in:\n%s", j, red);
            }
        assert_has(red, "token: <redacted:");
        assert_has(red, "    id: "); /* cluster.id is no secret */
        if (!i) {
            assert_has(red, "secretboxEncryptionSecret: <redacted:");
            assert_has(red, "key: <redacted:");
            assert_has(red, "crt: "); /* certificates stay: they are public */
        }
        free(cfg);
        free(red);
    }
    fixture_done(tc, lab, dir);
}

Test(day2, markers_tell_changes_without_telling_values)
{
    char *a = redact("machine:\n  token: abc\n  ca:\n    crt: Zm9v\n    key: c2VjcmV0\n", KEY);
    char *b = redact("machine:\n  token: abc\n  ca:\n    crt: Zm9v\n    key: b3RoZXI=\n", KEY);
    char *c = redact("machine:\n  token: abc\n", (const uint8_t[32]){9});
    const char *ta = strstr(a, "token: <redacted:"), *tb = strstr(b, "token: <redacted:");
    cr_assert(ta && tb);
    cr_assert_eq(strncmp(ta, tb, 26), 0, "the same secret, the same marker:\n%s\n%s", a, b);
    const char *ka = strstr(a, "key: <redacted:"), *kb = strstr(b, "key: <redacted:");
    cr_assert(ka && kb);
    cr_assert_neq(strncmp(ka, kb, 24), 0, "another secret, another marker");
    cr_assert_neq(strncmp(strstr(c, "<redacted:"), ta + 7, 19), 0,
                  "another cluster's key, other markers");
    assert_has(a, "crt: Zm9v");
    cr_assert_null(strstr(a, "c2VjcmV0"));
    cr_assert_null(strstr(a, "abc"));
    free(a);
    free(b);
    free(c);
}

Test(day2, credentials_and_secret_manifests_are_redacted)
{
    char *r = redact("machine:\n"
                     "  registries:\n"
                     "    config:\n"
                     "      reg.lan:\n"
                     "        auth: {username: me, password: hunter2, identityToken: tok9}\n"
                     "cluster:\n"
                     "  inlineManifests:\n"
                     "    - name: creds\n"
                     "      contents: |\n"
                     "        kind: Secret\n"
                     "        data: {x: czNjcjN0}\n"
                     "    - name: cm\n"
                     "      contents: |\n"
                     "        kind: ConfigMap\n"
                     "---\n"
                     "apiVersion: v1alpha1\n"
                     "kind: WireguardConfig\n"
                     "privateKey: wgkey=\n",
                     KEY);
    cr_assert_null(strstr(r, "hunter2"), "%s", r);
    cr_assert_null(strstr(r, "tok9"), "%s", r);
    cr_assert_null(strstr(r, "czNjcjN0"), "%s", r);
    cr_assert_null(strstr(r, "wgkey"), "%s", r);
    assert_has(r, "username: me");
    assert_has(r, "kind: ConfigMap");
    assert_has(r, "kind: WireguardConfig");
    free(r);
}

Test(day2, diff_is_unified_and_empty_when_same)
{
    char *d;
    struct bd_err err;
    cr_assert_eq(talos_text_diff("a\nb\nc\n", "a\nb\nc\n", "cp-1", &d, &err), 0, "%s", err.msg);
    cr_assert_str_eq(d, "");
    free(d);
    cr_assert_eq(talos_text_diff("a\nb\nc\n", "a\nB\nc\n", "cp-1", &d, &err), 0, "%s", err.msg);
    assert_has(d, "--- a/cp-1\n+++ b/cp-1\n");
    assert_has(d, "\n-b\n+B\n");
    assert_has(d, " a\n");
    free(d);
}

Test(day2, talos_answers_read_as_verdicts)
{
    cr_assert_str_eq(cluster_verdict(0, TALOS_OK, TALOS_APPLY_NO_REBOOT), "live");
    cr_assert_str_eq(cluster_verdict(0, TALOS_OK, TALOS_APPLY_REBOOT), "reboot");
    cr_assert_str_eq(cluster_verdict(-1, TALOS_INVALID_ARGUMENT, TALOS_APPLY_REBOOT), "refused");
    cr_assert_str_eq(cluster_verdict(-1, TALOS_CALL_FAILED, TALOS_APPLY_REBOOT), "unknown");
    cr_assert_str_eq(cluster_verdict(-1, TALOS_UNAVAILABLE, TALOS_APPLY_NO_REBOOT), "unknown");
}

Test(day2, apply_modes_by_name)
{
    const char *names[] = {"reboot", "auto", "no-reboot", "staged", "try"};
    for (int i = 0; i < 5; i++) {
        enum talos_apply_mode m;
        cr_assert_eq(talos_apply_mode_parse(names[i], &m), 0);
        cr_assert_eq((int)m, i, "%s is mode %d in machine.proto", names[i], i);
        cr_assert_str_eq(talos_apply_mode_name(m), names[i]);
    }
    enum talos_apply_mode m;
    cr_assert_eq(talos_apply_mode_parse("REBOOT", &m), -1);
}
