/* strconv.c - Go's strconv as templates see it: quoting, unquoting, number
 * parsing with Go's syntax (base prefixes, underscores) and float
 * formatting with Go's shortest and fixed forms. Digits come from glibc's
 * correctly rounded printf/strtod; the layout rules are Go's. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/template/internal.h"

static const char lowerhex[] = "0123456789abcdef";
static const char upperhex[] = "0123456789ABCDEF";

/* ---- quoting ------------------------------------------------------------- */

static void escaped_rune(struct nc_buf *b, uint32_t r, char quote,
                         bool ascii_only)
{
    char enc[4];
    if (r == (uint32_t)quote || r == '\\') {
        nc_buf_putc(b, '\\');
        nc_buf_putc(b, (char)r);
        return;
    }
    if (ascii_only) {
        if (r < 0x80 && tp_uni_is_print(r)) {
            nc_buf_putc(b, (char)r);
            return;
        }
    } else if (tp_uni_is_print(r)) {
        nc_buf_append(b, enc, tp_utf8_encode(enc, r));
        return;
    }
    switch (r) {
    case '\a':
        nc_buf_puts(b, "\\a");
        return;
    case '\b':
        nc_buf_puts(b, "\\b");
        return;
    case '\f':
        nc_buf_puts(b, "\\f");
        return;
    case '\n':
        nc_buf_puts(b, "\\n");
        return;
    case '\r':
        nc_buf_puts(b, "\\r");
        return;
    case '\t':
        nc_buf_puts(b, "\\t");
        return;
    case '\v':
        nc_buf_puts(b, "\\v");
        return;
    }
    if (r < ' ' || r == 0x7F) {
        nc_buf_puts(b, "\\x");
        nc_buf_putc(b, lowerhex[(r >> 4) & 0xF]);
        nc_buf_putc(b, lowerhex[r & 0xF]);
        return;
    }
    if (r > RUNE_MAX || (r >= 0xD800 && r <= 0xDFFF))
        r = RUNE_ERROR;
    if (r < 0x10000) {
        nc_buf_puts(b, "\\u");
        for (int s = 12; s >= 0; s -= 4)
            nc_buf_putc(b, lowerhex[(r >> s) & 0xF]);
    } else {
        nc_buf_puts(b, "\\U");
        for (int s = 28; s >= 0; s -= 4)
            nc_buf_putc(b, lowerhex[(r >> s) & 0xF]);
    }
}

void tp_go_quote(struct nc_buf *b, const char *s, size_t n, bool ascii_only)
{
    nc_buf_putc(b, '"');
    for (size_t i = 0; i < n;) {
        size_t w = 1;
        uint32_t r = (unsigned char)s[i];
        if (r >= 0x80)
            r = tp_utf8_decode(s + i, n - i, &w);
        if (w == 1 && r == RUNE_ERROR) {
            nc_buf_puts(b, "\\x");
            nc_buf_putc(b, lowerhex[(unsigned char)s[i] >> 4]);
            nc_buf_putc(b, lowerhex[(unsigned char)s[i] & 0xF]);
        } else {
            escaped_rune(b, r, '"', ascii_only);
        }
        i += w;
    }
    nc_buf_putc(b, '"');
}

void tp_go_quote_rune(struct nc_buf *b, uint32_t r, bool ascii_only)
{
    if (r > RUNE_MAX || (r >= 0xD800 && r <= 0xDFFF))
        r = RUNE_ERROR;
    nc_buf_putc(b, '\'');
    escaped_rune(b, r, '\'', ascii_only);
    nc_buf_putc(b, '\'');
}

bool tp_go_can_backquote(const char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        size_t w;
        uint32_t r = tp_utf8_decode(s + i, n - i, &w);
        i += w;
        if (w > 1) {
            if (r == 0xFEFF)
                return false;
            continue;
        }
        if (r == RUNE_ERROR)
            return false;
        if ((r < ' ' && r != '\t') || r == '`' || r == 0x7F)
            return false;
    }
    return true;
}

static int unhex(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

size_t tp_go_unquote_char(const char *s, size_t n, char quote, uint32_t *r,
                          bool *multibyte)
{
    *multibyte = false;
    if (n == 0)
        return 0;
    unsigned char c = (unsigned char)s[0];
    if (c == (unsigned char)quote && (quote == '\'' || quote == '"'))
        return 0;
    if (c >= 0x80) {
        size_t w;
        *r = tp_utf8_decode(s, n, &w);
        *multibyte = true;
        return w;
    }
    if (c != '\\') {
        *r = c;
        return 1;
    }
    if (n <= 1)
        return 0;
    c = (unsigned char)s[1];
    size_t used = 2;
    switch (c) {
    case 'a':
        *r = '\a';
        break;
    case 'b':
        *r = '\b';
        break;
    case 'f':
        *r = '\f';
        break;
    case 'n':
        *r = '\n';
        break;
    case 'r':
        *r = '\r';
        break;
    case 't':
        *r = '\t';
        break;
    case 'v':
        *r = '\v';
        break;
    case 'x':
    case 'u':
    case 'U': {
        size_t digits = c == 'x' ? 2 : c == 'u' ? 4 : 8;
        if (n - 2 < digits)
            return 0;
        uint32_t v = 0;
        for (size_t j = 0; j < digits; j++) {
            int x = unhex(s[2 + j]);
            if (x < 0)
                return 0;
            v = v << 4 | (uint32_t)x;
        }
        used += digits;
        if (c == 'x') {
            *r = v;
            break;
        }
        if (v > RUNE_MAX || (v >= 0xD800 && v <= 0xDFFF))
            return 0;
        *r = v;
        *multibyte = true;
        break;
    }
    case '0':
    case '1':
    case '2':
    case '3':
    case '4':
    case '5':
    case '6':
    case '7': {
        uint32_t v = c - '0';
        if (n - 2 < 2)
            return 0;
        for (int j = 0; j < 2; j++) {
            int x = s[2 + j] - '0';
            if (x < 0 || x > 7)
                return 0;
            v = (v << 3) | (uint32_t)x;
        }
        used += 2;
        if (v > 255)
            return 0;
        *r = v;
        break;
    }
    case '\\':
        *r = '\\';
        break;
    case '\'':
    case '"':
        if (c != (unsigned char)quote)
            return 0;
        *r = c;
        break;
    default:
        return 0;
    }
    return used;
}

int tp_go_unquote(const char *s, size_t n, struct nc_buf *out)
{
    if (n < 2)
        return -EINVAL;
    char quote = s[0];
    const char *endq = memchr(s + 1, quote, n - 1);
    if (!endq)
        return -EINVAL;
    size_t end = (size_t)(endq - s) + 1;
    if (quote == '`') {
        if (end != n)
            return -EINVAL;
        for (size_t i = 1; i < end - 1; i++)
            if (s[i] != '\r')
                nc_buf_putc(out, s[i]);
        if (!out->data)
            nc_buf_append(out, "", 0);
        return 0;
    }
    if (quote != '"' && quote != '\'')
        return -EINVAL;
    if (!memchr(s, '\\', end) && !memchr(s, '\n', end)) {
        bool valid;
        if (quote == '"') {
            valid = tp_utf8_valid(s + 1, end - 2);
        } else {
            size_t w = 0;
            uint32_t r = end > 2 ? tp_utf8_decode(s + 1, end - 2, &w) : 0;
            valid = end > 2 && 1 + w + 1 == end && (r != RUNE_ERROR || w != 1);
        }
        if (valid) {
            if (end != n)
                return -EINVAL;
            nc_buf_append(out, s + 1, end - 2);
            return 0;
        }
    }
    size_t i = 1;
    while (i < n && s[i] != quote) {
        uint32_t r;
        bool mb;
        size_t used = tp_go_unquote_char(s + i, n - i, quote, &r, &mb);
        if (s[i] == '\n' || used == 0)
            return -EINVAL;
        i += used;
        if (r < 0x80 || !mb) {
            nc_buf_putc(out, (char)r);
        } else {
            char enc[4];
            nc_buf_append(out, enc, tp_utf8_encode(enc, r));
        }
        if (quote == '\'')
            break;
    }
    if (!(i < n && s[i] == quote))
        return -EINVAL;
    if (i + 1 != n)
        return -EINVAL;
    if (!out->data)
        nc_buf_append(out, "", 0);
    return 0;
}

/* ---- integers --------------------------------------------------------------
 */

static char lower(char c)
{
    return (char)(c | 0x20);
}

static bool underscore_ok(const char *s, size_t n)
{
    char saw = '^';
    size_t i = 0;
    if (n >= 1 && (s[0] == '-' || s[0] == '+')) {
        s++;
        n--;
    }
    bool hex = false;
    if (n >= 2 && s[0] == '0' &&
        (lower(s[1]) == 'b' || lower(s[1]) == 'o' || lower(s[1]) == 'x')) {
        i = 2;
        saw = '0';
        hex = lower(s[1]) == 'x';
    }
    for (; i < n; i++) {
        if ((s[i] >= '0' && s[i] <= '9') ||
            (hex && lower(s[i]) >= 'a' && lower(s[i]) <= 'f')) {
            saw = '0';
            continue;
        }
        if (s[i] == '_') {
            if (saw != '0')
                return false;
            saw = '_';
            continue;
        }
        if (saw == '_')
            return false;
        saw = '!';
    }
    return saw != '_';
}

int tp_go_parse_uint(const char *s0, size_t n0, int base, uint64_t *out)
{
    const char *s = s0;
    size_t n = n0;
    *out = 0;
    if (n == 0)
        return -EINVAL;
    bool base0 = base == 0;
    if (base == 0) {
        base = 10;
        if (s[0] == '0') {
            if (n >= 3 && lower(s[1]) == 'b') {
                base = 2;
                s += 2;
                n -= 2;
            } else if (n >= 3 && lower(s[1]) == 'o') {
                base = 8;
                s += 2;
                n -= 2;
            } else if (n >= 3 && lower(s[1]) == 'x') {
                base = 16;
                s += 2;
                n -= 2;
            } else {
                base = 8;
                s += 1;
                n -= 1;
            }
        }
    } else if (base < 2 || base > 36) {
        return -EINVAL;
    }
    uint64_t cutoff = UINT64_MAX / (uint64_t)base + 1;
    bool underscores = false;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        unsigned d;
        if (c == '_' && base0) {
            underscores = true;
            continue;
        } else if (c >= '0' && c <= '9') {
            d = (unsigned)(c - '0');
        } else if (lower(c) >= 'a' && lower(c) <= 'z') {
            d = (unsigned)(lower(c) - 'a' + 10);
        } else {
            return -EINVAL;
        }
        if (d >= (unsigned)base)
            return -EINVAL;
        if (v >= cutoff) {
            *out = UINT64_MAX;
            return -ERANGE;
        }
        v *= (uint64_t)base;
        uint64_t v1 = v + d;
        if (v1 < v) {
            *out = UINT64_MAX;
            return -ERANGE;
        }
        v = v1;
    }
    if (underscores && !underscore_ok(s0, n0))
        return -EINVAL;
    *out = v;
    return 0;
}

int tp_go_parse_int(const char *s, size_t n, int base, int64_t *out)
{
    *out = 0;
    if (n == 0)
        return -EINVAL;
    bool neg = false;
    if (s[0] == '+') {
        s++;
        n--;
    } else if (s[0] == '-') {
        neg = true;
        s++;
        n--;
    }
    uint64_t u;
    int rc = tp_go_parse_uint(s, n, base, &u);
    if (rc == -EINVAL)
        return rc;
    uint64_t cutoff = (uint64_t)1 << 63;
    if (rc == -ERANGE || (!neg && u >= cutoff) || (neg && u > cutoff)) {
        *out = neg ? INT64_MIN : INT64_MAX;
        return -ERANGE;
    }
    *out = neg ? (int64_t)(0 - u) : (int64_t)u;
    return 0;
}

int tp_go_parse_bool(const char *s, size_t n, bool *out)
{
    static const char *const t[] = {"1", "t", "T", "TRUE", "true", "True"};
    static const char *const f[] = {"0", "f", "F", "FALSE", "false", "False"};
    for (size_t i = 0; i < 6; i++) {
        if (strlen(t[i]) == n && memcmp(t[i], s, n) == 0) {
            *out = true;
            return 0;
        }
        if (strlen(f[i]) == n && memcmp(f[i], s, n) == 0) {
            *out = false;
            return 0;
        }
    }
    return -EINVAL;
}

/* ---- floats
 * ------------------------------------------------------------------ */

static size_t prefix_icase(const char *s, size_t n, const char *word)
{
    size_t i = 0;
    while (i < n && word[i] && lower(s[i]) == word[i])
        i++;
    return i;
}

/* strconv's special(): inf, infinity, nan (signs for the infinities). */
static bool float_special(const char *s, size_t n, double *out, size_t *used)
{
    if (n == 0)
        return false;
    double sign = 1;
    size_t nsign = 0;
    switch (s[0]) {
    case '+':
    case '-':
        if (s[0] == '-')
            sign = -1;
        nsign = 1;
        s++;
        n--;
        /* fall through */
    case 'i':
    case 'I': {
        size_t k = prefix_icase(s, n, "infinity");
        if (k > 3 && k < 8)
            k = 3;
        if (k == 3 || k == 8) {
            *out = sign * INFINITY;
            *used = nsign + k;
            return true;
        }
        break;
    }
    case 'n':
    case 'N':
        if (prefix_icase(s, n, "nan") == 3) {
            *out = NAN;
            *used = 3;
            return true;
        }
        break;
    }
    return false;
}

int tp_go_parse_float(const char *s, size_t n, double *out)
{
    *out = 0;
    size_t used;
    if (float_special(s, n, out, &used)) {
        if (used != n) {
            *out = 0;
            return -EINVAL;
        }
        return 0;
    }
    /* strconv's readFloat, for the syntax only. */
    size_t i = 0;
    bool underscores = false;
    if (i >= n)
        return -EINVAL;
    if (s[i] == '+' || s[i] == '-')
        i++;
    bool hex = false;
    char exp_char = 'e';
    if (i + 2 < n && s[i] == '0' && lower(s[i + 1]) == 'x') {
        i += 2;
        hex = true;
        exp_char = 'p';
    }
    bool sawdot = false, sawdigits = false;
    for (; i < n; i++) {
        char c = s[i];
        if (c == '_') {
            underscores = true;
            continue;
        }
        if (c == '.') {
            if (sawdot)
                break;
            sawdot = true;
            continue;
        }
        if ((c >= '0' && c <= '9') ||
            (hex && lower(c) >= 'a' && lower(c) <= 'f')) {
            sawdigits = true;
            continue;
        }
        break;
    }
    if (!sawdigits)
        return -EINVAL;
    if (i < n && lower(s[i]) == exp_char) {
        i++;
        if (i >= n)
            return -EINVAL;
        if (s[i] == '+' || s[i] == '-')
            i++;
        if (i >= n || s[i] < '0' || s[i] > '9')
            return -EINVAL;
        for (; i < n && ((s[i] >= '0' && s[i] <= '9') || s[i] == '_'); i++)
            if (s[i] == '_')
                underscores = true;
    } else if (hex) {
        return -EINVAL;
    }
    if (underscores && !underscore_ok(s, i))
        return -EINVAL;
    if (i != n)
        return -EINVAL;
    char stack[128];
    char *clean = n < sizeof stack ? stack : xmalloc(n + 1);
    size_t k = 0;
    for (size_t j = 0; j < n; j++)
        if (s[j] != '_')
            clean[k++] = s[j];
    clean[k] = 0;
    errno = 0;
    double v = strtod(clean, NULL);
    int rc = 0;
    if (errno == ERANGE && isinf(v))
        rc = -ERANGE;
    if (clean != stack)
        free(clean);
    *out = v;
    return rc;
}

/* The decimal digits of a float: d[0..nd) with the point after dp digits,
 * trailing zeros trimmed (strconv's decimalSlice). */
struct digits {
    char *d;
    int nd, dp;
    char stack[40];
};

static void digits_free(struct digits *g)
{
    if (g->d != g->stack)
        free(g->d);
}

/* Parses printf's %.Ne output ("d.ddde+XX") into digits. */
static void digits_from_e(struct digits *g, const char *e)
{
    const char *p = e;
    int nd = 0;
    const char *x = strchr(p, 'e');
    size_t room = (size_t)(x - p) + 1;
    g->d = room <= sizeof g->stack ? g->stack : xmalloc(room);
    for (; p < x; p++)
        if (*p >= '0' && *p <= '9')
            g->d[nd++] = *p;
    int exp = atoi(x + 1);
    g->dp = exp + 1;
    while (nd > 0 && g->d[nd - 1] == '0')
        nd--;
    if (nd == 0)
        g->dp = 0;
    g->nd = nd;
}

static char *printf_alloc(const char *fmt, int prec, double f)
{
    char small[64];
    int len = snprintf(small, sizeof small, fmt, prec, f);
    char *out = xmalloc((size_t)len + 1);
    if ((size_t)len < sizeof small)
        memcpy(out, small, (size_t)len + 1);
    else
        snprintf(out, (size_t)len + 1, fmt, prec, f);
    return out;
}

/* nd significant digits, correctly rounded. */
static void digits_sig(struct digits *g, double f, int nd)
{
    char *e = printf_alloc("%.*e", nd - 1, f);
    digits_from_e(g, e);
    free(e);
}

/* The shortest digits that read back as f, the nearest of them. */
static void digits_shortest(struct digits *g, double f)
{
    if (f == 0) {
        g->d = g->stack;
        g->nd = g->dp = 0;
        return;
    }
    char buf[64];
    for (int nd = 1; nd <= 17; nd++) {
        snprintf(buf, sizeof buf, "%.*e", nd - 1, f);
        if (strtod(buf, NULL) == f) {
            digits_from_e(g, buf);
            return;
        }
        /* At a power of two the interval of values reading back as f is
         * lopsided: a neighbour of the nearest may fit where it does not. */
        char *x = strchr(buf, 'e');
        for (int dir = -1; dir <= 1; dir += 2) {
            char alt[64];
            memcpy(alt, buf, sizeof alt);
            char *q = alt + (x - buf) - 1;
            bool carry = true;
            while (carry && q >= alt) {
                if (*q == '.' || *q == '-') {
                    q--;
                    continue;
                }
                if (dir > 0) {
                    if (*q == '9') {
                        *q = '0';
                        q--;
                    } else {
                        (*q)++;
                        carry = false;
                    }
                } else {
                    if (*q == '0') {
                        *q = '9';
                        q--;
                    } else {
                        (*q)--;
                        carry = false;
                    }
                }
            }
            if (carry)
                continue;
            const char *first = alt[0] == '-' ? alt + 1 : alt;
            if (*first == '0')
                continue;
            if (strtod(alt, NULL) == f) {
                digits_from_e(g, alt);
                return;
            }
        }
    }
    snprintf(buf, sizeof buf, "%.16e", f);
    digits_from_e(g, buf);
}

/* Digits rounded to prec places after the point (%f). */
static void digits_fixed(struct digits *g, double f, int prec)
{
    char *s = printf_alloc("%.*f", prec, f);
    size_t len = strlen(s);
    g->d = len + 1 <= sizeof g->stack ? g->stack : xmalloc(len + 1);
    int nd = 0, dp = 0;
    bool point = false, lead = true;
    for (const char *p = s; *p; p++) {
        if (*p == '.') {
            point = true;
            continue;
        }
        if (*p < '0' || *p > '9')
            continue;
        if (lead && *p == '0') {
            if (point)
                dp--;
            continue;
        }
        lead = false;
        g->d[nd++] = *p;
        if (!point)
            dp++;
    }
    free(s);
    while (nd > 0 && g->d[nd - 1] == '0')
        nd--;
    if (nd == 0)
        dp = 0;
    g->nd = nd;
    g->dp = dp;
}

static void fmt_e(struct nc_buf *b, bool neg, const struct digits *g, int prec,
                  char fmt)
{
    if (neg)
        nc_buf_putc(b, '-');
    nc_buf_putc(b, g->nd ? g->d[0] : '0');
    if (prec > 0) {
        nc_buf_putc(b, '.');
        int i = 1;
        int m = g->nd < prec + 1 ? g->nd : prec + 1;
        if (i < m) {
            nc_buf_append(b, g->d + i, (size_t)(m - i));
            i = m;
        }
        for (; i <= prec; i++)
            nc_buf_putc(b, '0');
    }
    nc_buf_putc(b, fmt);
    int exp = g->nd == 0 ? 0 : g->dp - 1;
    nc_buf_putc(b, exp < 0 ? '-' : '+');
    if (exp < 0)
        exp = -exp;
    if (exp < 10) {
        nc_buf_putc(b, '0');
        nc_buf_putc(b, (char)('0' + exp));
    } else if (exp < 100) {
        nc_buf_putc(b, (char)('0' + exp / 10));
        nc_buf_putc(b, (char)('0' + exp % 10));
    } else {
        nc_buf_putc(b, (char)('0' + exp / 100));
        nc_buf_putc(b, (char)('0' + exp / 10 % 10));
        nc_buf_putc(b, (char)('0' + exp % 10));
    }
}

static void fmt_f(struct nc_buf *b, bool neg, const struct digits *g, int prec)
{
    if (neg)
        nc_buf_putc(b, '-');
    if (g->dp > 0) {
        int m = g->nd < g->dp ? g->nd : g->dp;
        nc_buf_append(b, g->d, (size_t)m);
        for (; m < g->dp; m++)
            nc_buf_putc(b, '0');
    } else {
        nc_buf_putc(b, '0');
    }
    if (prec > 0) {
        nc_buf_putc(b, '.');
        for (int i = 1; i <= prec; i++) {
            int j = g->dp + i - 1;
            nc_buf_putc(b, j >= 0 && j < g->nd ? g->d[j] : '0');
        }
    }
}

static void fmt_b(struct nc_buf *b, bool neg, uint64_t mant, int exp)
{
    if (neg)
        nc_buf_putc(b, '-');
    nc_buf_printf(b, "%llu", (unsigned long long)mant);
    exp -= 52;
    nc_buf_printf(b, "p%s%d", exp >= 0 ? "+" : "", exp);
}

static void fmt_x(struct nc_buf *b, int prec, char fmt, bool neg, uint64_t mant,
                  int exp)
{
    if (mant == 0)
        exp = 0;
    mant <<= 60 - 52;
    while (mant != 0 && (mant & ((uint64_t)1 << 60)) == 0) {
        mant <<= 1;
        exp--;
    }
    if (prec >= 0 && prec < 15) {
        unsigned shift = (unsigned)prec * 4;
        uint64_t extra = (mant << shift) & (((uint64_t)1 << 60) - 1);
        mant >>= 60 - shift;
        if ((extra | (mant & 1)) > ((uint64_t)1 << 59))
            mant++;
        mant <<= 60 - shift;
        if (mant & ((uint64_t)1 << 61)) {
            mant >>= 1;
            exp++;
        }
    }
    const char *hex = fmt == 'X' ? upperhex : lowerhex;
    if (neg)
        nc_buf_putc(b, '-');
    nc_buf_putc(b, '0');
    nc_buf_putc(b, fmt);
    nc_buf_putc(b, (char)('0' + ((mant >> 60) & 1)));
    mant <<= 4;
    if (prec < 0 && mant != 0) {
        nc_buf_putc(b, '.');
        while (mant != 0) {
            nc_buf_putc(b, hex[(mant >> 60) & 15]);
            mant <<= 4;
        }
    } else if (prec > 0) {
        nc_buf_putc(b, '.');
        for (int i = 0; i < prec; i++) {
            nc_buf_putc(b, hex[(mant >> 60) & 15]);
            mant <<= 4;
        }
    }
    nc_buf_putc(b, fmt == 'X' ? 'P' : 'p');
    nc_buf_putc(b, exp < 0 ? '-' : '+');
    if (exp < 0)
        exp = -exp;
    if (exp < 100)
        nc_buf_printf(b, "%02d", exp);
    else
        nc_buf_printf(b, "%d", exp);
}

void tp_go_format_float(struct nc_buf *b, double f, char fmt, int prec)
{
    if (isnan(f)) {
        nc_buf_puts(b, "NaN");
        return;
    }
    if (isinf(f)) {
        nc_buf_puts(b, f > 0 ? "+Inf" : "-Inf");
        return;
    }
    bool neg = signbit(f) != 0;
    if (fmt == 'b' || fmt == 'x' || fmt == 'X') {
        uint64_t bits;
        memcpy(&bits, &f, sizeof bits);
        int exp = (int)((bits >> 52) & 0x7FF);
        uint64_t mant = bits & (((uint64_t)1 << 52) - 1);
        if (exp == 0)
            exp++;
        else
            mant |= (uint64_t)1 << 52;
        exp += -1023;
        if (fmt == 'b')
            fmt_b(b, neg, mant, exp);
        else
            fmt_x(b, prec, fmt, neg, mant, exp);
        return;
    }
    double a = fabs(f);
    struct digits g;
    bool shortest = prec < 0;
    if (shortest) {
        digits_shortest(&g, a);
        switch (fmt) {
        case 'e':
        case 'E':
            prec = g.nd > 1 ? g.nd - 1 : 0;
            break;
        case 'f':
            prec = g.nd - g.dp > 0 ? g.nd - g.dp : 0;
            break;
        default:
            prec = g.nd;
            break;
        }
    } else if (fmt == 'f') {
        digits_fixed(&g, a, prec);
    } else {
        int nd = prec;
        if (fmt == 'e' || fmt == 'E') {
            nd = prec + 1;
        } else {
            if (prec == 0)
                prec = 1;
            nd = prec;
        }
        digits_sig(&g, a, nd);
    }
    switch (fmt) {
    case 'e':
    case 'E':
        fmt_e(b, neg, &g, prec, fmt);
        break;
    case 'f':
        fmt_f(b, neg, &g, prec);
        break;
    default: { /* g G */
        int eprec = prec;
        if (eprec > g.nd && g.nd >= g.dp)
            eprec = g.nd;
        if (shortest)
            eprec = 6;
        int exp = g.dp - 1;
        if (exp < -4 || exp >= eprec) {
            if (prec > g.nd)
                prec = g.nd;
            fmt_e(b, neg, &g, prec - 1, (char)(fmt + 'e' - 'g'));
        } else {
            if (prec > g.dp)
                prec = g.nd;
            fmt_f(b, neg, &g, prec - g.dp > 0 ? prec - g.dp : 0);
        }
        break;
    }
    }
    digits_free(&g);
}
