/* Kubernetes resource quantities compared by value. The API server stores a quantity in its
 * canonical form (`cpu: 1000m` comes back as "1", `memory: 1.5Gi` as "1536Mi", `cpu: 0.5`
 * as "500m"), so comparing the text of what Git says with what the cluster holds would see
 * drift on every sync. The grammar is the one of k8s.io/apimachinery's resource.Quantity:
 *   quantity = [+-] digits [. digits] suffix
 *   suffix   = Ki|Mi|Gi|Ti|Pi|Ei | n|u|m||k|M|G|T|P|E | (e|E) [+-] digits
 * Values are compared exactly: digits times a power of ten (binary suffixes are multiplied
 * out), never through floating point. */
#include "internal.h"

#include <ctype.h>
#include <stdbool.h>
#include <string.h>

#define QTY_DIGITS 160

struct qty {
    bool neg;
    int nd;             /* digits in d, most significant first, no leading zeros */
    char d[QTY_DIGITS]; /* 0..9 values, not characters */
    long e10;
};

static bool qty_mul(struct qty *q, int factor)
{
    int carry = 0;
    for (int i = q->nd - 1; i >= 0; i--) {
        int v = q->d[i] * factor + carry;
        q->d[i] = (char)(v % 10);
        carry = v / 10;
    }
    while (carry) {
        if (q->nd == QTY_DIGITS)
            return false;
        memmove(q->d + 1, q->d, (size_t)q->nd);
        q->d[0] = (char)(carry % 10);
        carry /= 10;
        q->nd++;
    }
    return true;
}

static void qty_normalise(struct qty *q)
{
    int lead = 0;
    while (lead < q->nd && q->d[lead] == 0)
        lead++;
    memmove(q->d, q->d + lead, (size_t)(q->nd - lead));
    q->nd -= lead;
    while (q->nd > 0 && q->d[q->nd - 1] == 0) {
        q->nd--;
        q->e10++;
    }
    if (q->nd == 0) { /* -0 and 0m are zero */
        q->neg = false;
        q->e10 = 0;
    }
}

static bool qty_suffix(const char *s, struct qty *q)
{
    static const char binary[] = "KMGTPE";
    if (s[0] && s[1] == 'i' && !s[2]) {
        const char *p = strchr(binary, s[0]);
        if (!p)
            return false;
        for (long k = 0; k <= p - binary; k++)
            if (!qty_mul(q, 1024))
                return false;
        return true;
    }
    if ((s[0] == 'e' || s[0] == 'E') && s[1]) {
        const char *p = s + 1;
        bool neg = *p == '-';
        if (*p == '+' || *p == '-')
            p++;
        if (!*p || strlen(p) > 6)
            return false;
        long e = 0;
        for (; *p; p++) {
            if (!isdigit((unsigned char)*p))
                return false;
            e = e * 10 + (*p - '0');
        }
        q->e10 += neg ? -e : e;
        return true;
    }
    static const struct {
        const char *suffix;
        int e10;
    } decimal[] = {{"n", -9}, {"u", -6}, {"m", -3}, {"", 0},   {"k", 3},
                   {"M", 6},  {"G", 9},  {"T", 12}, {"P", 15}, {"E", 18}};
    for (size_t i = 0; i < sizeof decimal / sizeof decimal[0]; i++)
        if (!strcmp(s, decimal[i].suffix)) {
            q->e10 += decimal[i].e10;
            return true;
        }
    return false;
}

static bool qty_parse(const char *s, struct qty *q)
{
    memset(q, 0, sizeof *q);
    if (strlen(s) > 64)
        return false;
    if (*s == '+' || *s == '-')
        q->neg = *s++ == '-';
    bool dot = false;
    int digits = 0;
    for (; isdigit((unsigned char)*s) || (*s == '.' && !dot); s++) {
        if (*s == '.') {
            dot = true;
            continue;
        }
        q->d[q->nd++] = (char)(*s - '0');
        digits++;
        if (dot)
            q->e10--;
    }
    if (!digits || !qty_suffix(s, q))
        return false;
    qty_normalise(q);
    return true;
}

bool gitops_quantity_equal(const char *a, const char *b)
{
    struct qty x, y;
    return qty_parse(a, &x) && qty_parse(b, &y) && x.neg == y.neg && x.nd == y.nd &&
           x.e10 == y.e10 && !memcmp(x.d, y.d, (size_t)x.nd);
}
