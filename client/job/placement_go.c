/* placement_go.c - Go's %q and strconv, as Nomad's messages and meaning
 * depend on them (see internal.h). */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "client/job/internal.h"

/* ---- Go's %q, for names and constraints in messages ---------------------
 * Nomad prints them with %q; doing the same keeps the text identical and
 * neutralises control characters and bidi overrides in hostile strings. */

/* Decodes one strict UTF-8 sequence; returns its length, 0 if invalid. */
static size_t utf8_decode(const unsigned char *p, uint32_t *cp)
{
    uint32_t c;
    size_t n;
    if (p[0] >= 0xc2 && p[0] <= 0xdf) {
        c = p[0] & 0x1f;
        n = 2;
    } else if (p[0] >= 0xe0 && p[0] <= 0xef) {
        c = p[0] & 0x0f;
        n = 3;
    } else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
        c = p[0] & 0x07;
        n = 4;
    } else {
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80) /* also stops at the NUL */
            return 0;
        c = (c << 6) | (p[i] & 0x3f);
    }
    if ((n == 3 && c < 0x800) || (n == 4 && c < 0x10000) || c > 0x10ffff ||
        (c >= 0xd800 && c <= 0xdfff))
        return 0;
    *cp = c;
    return n;
}

/* The invisible and direction-changing code points Go's strconv.IsPrint
 * rejects that matter in a terminal; the rest of Unicode passes through. */
static bool rune_printable(uint32_t c)
{
    return !((c >= 0x80 && c <= 0xa0) || c == 0xad || c == 0x61c ||
             (c >= 0x2000 && c <= 0x200f && c != 0x2010) ||
             (c >= 0x2028 && c <= 0x202f) || (c >= 0x205f && c <= 0x206f) ||
             c == 0x3000 || c == 0xfeff || (c >= 0xfff9 && c <= 0xfffb));
}

void pl_go_quote(struct nc_buf *b, const char *s)
{
    const unsigned char *p = (const unsigned char *)pl_or_empty(s);
    nc_buf_putc(b, '"');
    while (*p) {
        unsigned char c = *p;
        if (c < 0x80) {
            switch (c) {
            case '"': nc_buf_puts(b, "\\\""); break;
            case '\\': nc_buf_puts(b, "\\\\"); break;
            case '\a': nc_buf_puts(b, "\\a"); break;
            case '\b': nc_buf_puts(b, "\\b"); break;
            case '\f': nc_buf_puts(b, "\\f"); break;
            case '\n': nc_buf_puts(b, "\\n"); break;
            case '\r': nc_buf_puts(b, "\\r"); break;
            case '\t': nc_buf_puts(b, "\\t"); break;
            case '\v': nc_buf_puts(b, "\\v"); break;
            default:
                if (c < 0x20 || c == 0x7f)
                    nc_buf_printf(b, "\\x%02x", c);
                else
                    nc_buf_putc(b, (char)c);
            }
            p++;
            continue;
        }
        uint32_t cp;
        size_t n = utf8_decode(p, &cp);
        if (n == 0) {
            nc_buf_printf(b, "\\x%02x", c);
            p++;
        } else if (!rune_printable(cp)) {
            nc_buf_printf(b, cp < 0x10000 ? "\\u%04x" : "\\U%08x", cp);
            p += n;
        } else {
            nc_buf_append(b, (const char *)p, n);
            p += n;
        }
    }
    nc_buf_putc(b, '"');
}


/* ---- Go's strconv, where Nomad's meaning depends on it ------------------- */

/* strconv.ParseUint(s, 10, 64): 0, or 1 for bad syntax, 2 for overflow. */
int pl_parse_uint64(const char *s, uint64_t *out)
{
    if (!*s)
        return 1;
    uint64_t v = 0;
    bool overflow = false;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return 1;
        unsigned d = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - d) / 10)
            overflow = true;
        else
            v = v * 10 + d;
    }
    if (overflow)
        return 2;
    *out = v;
    return 0;
}

/* strconv.ParseInt(s[0:n], 10, 64). */
bool pl_parse_int64_n(const char *s, size_t n, int64_t *out)
{
    bool neg = false;
    if (n > 0 && (s[0] == '+' || s[0] == '-')) {
        neg = s[0] == '-';
        s++;
        n--;
    }
    if (n == 0)
        return false;
    uint64_t v = 0, limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (limit - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return true;
}

/* strconv.ParseFloat(s, 64) acceptance: decimal or hexadecimal (with a
 * `p` exponent) literals, `_` between digits, inf/infinity/nan in any
 * case; out of range is an error. strtod does the arithmetic. */
bool pl_parse_float(const char *s, double *out)
{
    const char *p = s;
    bool sign = false;
    if (*p == '+' || *p == '-') {
        p++;
        sign = true;
    }
    if (strcasecmp(p, "inf") == 0 || strcasecmp(p, "infinity") == 0) {
        *out = s[0] == '-' ? -INFINITY : INFINITY;
        return true;
    }
    if (!sign && strcasecmp(p, "nan") == 0) {
        *out = NAN;
        return true;
    }
    bool hex = p[0] == '0' && (p[1] == 'x' || p[1] == 'X');
    if (hex)
        p += 2;
    struct nc_buf clean = {0};
    nc_buf_append(&clean, s, (size_t)(p - s));
    bool digits = false, dot = false, ok = true;
    char prev = hex ? '0' : '^'; /* a base prefix counts as a digit for `_` */
    for (; *p; p++) {
        char c = *p;
        bool is_digit =
            hex ? isxdigit((unsigned char)c) != 0 : (c >= '0' && c <= '9');
        if (is_digit) {
            digits = true;
        } else if (c == '_') {
            if (!(isxdigit((unsigned char)prev) || prev == '0') ||
                !(hex ? isxdigit((unsigned char)p[1])
                      : (p[1] >= '0' && p[1] <= '9'))) {
                ok = false;
                break;
            }
            prev = c;
            continue;
        } else if (c == '.' && !dot) {
            dot = true;
        } else {
            break;
        }
        prev = c;
        nc_buf_putc(&clean, c);
    }
    if (ok && digits &&
        ((!hex && (*p == 'e' || *p == 'E')) ||
         (hex && (*p == 'p' || *p == 'P')))) {
        nc_buf_putc(&clean, *p++);
        if (*p == '+' || *p == '-')
            nc_buf_putc(&clean, *p++);
        bool exp_digits = false;
        for (; *p; p++) {
            if (*p >= '0' && *p <= '9') {
                exp_digits = true;
                nc_buf_putc(&clean, *p);
            } else if (*p == '_' && exp_digits && p[1] >= '0' && p[1] <= '9') {
                continue;
            } else {
                break;
            }
        }
        ok = exp_digits;
    } else if (hex) {
        ok = false; /* Go requires the p exponent on hex floats */
    }
    ok = ok && digits && *p == '\0';
    double v = 0;
    if (ok) {
        char *end;
        errno = 0;
        v = strtod(clean.data, &end);
        ok = *end == '\0' && !(errno == ERANGE && isinf(v));
    }
    nc_buf_free(&clean);
    if (ok)
        *out = v;
    return ok;
}
