#include "helpers.h"

#include <criterion/criterion.h>
#include <string.h>

Test(net, mac_forms)
{
    struct bd_mac m;
    char out[18];
    const char *good[] = {"52:54:00:12:34:56", "52-54-00-12-34-56", "525400123456",
                          "52:54:00:12:34:56", "52:54:00:12:34:56"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        cr_assert_eq(bd_mac_parse(good[i], &m), 0, "%s", good[i]);
        bd_mac_format(&m, out);
        cr_assert_str_eq(out, "52:54:00:12:34:56");
    }
    cr_assert_eq(bd_mac_parse("BC:24:11:E6:BA:07", &m), 0);
    bd_mac_format(&m, out);
    cr_assert_str_eq(out, "bc:24:11:e6:ba:07");
    const char *bad[] = {"",  "52:54:00:12:34",    "52:54:00:12:34:5g", "52:54-00:12:34:56",
                         "52.54.00.12.34.56", "52:54:00:12:34:56:78", "5254001234567"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_eq(bd_mac_parse(bad[i], &m), -1, "%s", bad[i]);
}

Test(net, ipv4_and_cidr)
{
    uint32_t a;
    int p;
    cr_assert_eq(bd_ipv4_parse("192.0.2.10", &a), 0);
    cr_assert_eq(a, 0xc000020a);
    cr_assert_eq(bd_ipv4_parse("192.0.2", &a), -1);
    cr_assert_eq(bd_ipv4_parse("192.0.2.256", &a), -1);
    cr_assert_eq(bd_cidr_parse("192.0.2.0/24", &a, &p), 0);
    cr_assert_eq(p, 24);
    cr_assert_eq(bd_cidr_parse("192.0.2.0/33", &a, &p), -1);
    cr_assert_eq(bd_cidr_parse("192.0.2.0", &a, &p), -1);
    cr_assert_eq(bd_cidr_parse("192.0.2.0/", &a, &p), -1);
    cr_assert(bd_ipv4_in(0xc000020a, 0xc0000200, 24));
    cr_assert_not(bd_ipv4_in(0xc000030a, 0xc0000200, 24));
    cr_assert(bd_ipv4_in(0x01020304, 0, 0));
}

Test(net, durations)
{
    int64_t s;
    cr_assert_eq(bd_duration_parse("30", &s), 0);
    cr_assert_eq(s, 30);
    cr_assert_eq(bd_duration_parse("5m", &s), 0);
    cr_assert_eq(s, 300);
    cr_assert_eq(bd_duration_parse("2h", &s), 0);
    cr_assert_eq(s, 7200);
    cr_assert_eq(bd_duration_parse("1d", &s), 0);
    cr_assert_eq(s, 86400);
    cr_assert_eq(bd_duration_parse("5 m", &s), -1);
    cr_assert_eq(bd_duration_parse("-5m", &s), -1);
    cr_assert_eq(bd_duration_parse("m", &s), -1);
    cr_assert_eq(bd_duration_parse("5w", &s), -1);
}

Test(net, urls)
{
    struct bd_err err;
    cr_assert_eq(bd_url_check("https://factory.talos.dev", "http,https", &err), 0);
    cr_assert_eq(bd_url_check("file:///srv/git/lab", "file,https", &err), 0);
    cr_assert_eq(bd_url_check("ftp://example.org/x", "http,https", &err), -1);
    cr_assert(strstr(err.msg, "scheme ftp"), "%s", err.msg);
    cr_assert_eq(bd_url_check("not a url", "http,https", &err), -1);
    cr_assert_eq(bd_url_check("https://", "https", &err), -1);
}

Test(net, dns_names)
{
    cr_assert(bd_dns_label_ok("ctrl-00"));
    cr_assert_not(bd_dns_label_ok("-ctrl"));
    cr_assert_not(bd_dns_label_ok("Ctrl"));
    cr_assert_not(bd_dns_label_ok("ctrl_00"));
    cr_assert(bd_dns_name_ok("api.kube.example.org"));
    cr_assert_not(bd_dns_name_ok("api..example.org"));
    cr_assert_not(bd_dns_name_ok("example.org."));
}

Test(net, secrets_compare)
{
    cr_assert(bd_secret_equal("abc", "abc"));
    cr_assert_not(bd_secret_equal("abc", "abd"));
    cr_assert_not(bd_secret_equal("abc", "abcd"));
    cr_assert_not(bd_secret_equal("", "abc"));
}
