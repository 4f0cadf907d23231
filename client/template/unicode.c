/* unicode.c - UTF-8 as Go's unicode/utf8 reads it, and the character
 * classes and case mappings of Go's unicode package (tables generated from
 * Go 1.19 by tests/template/genunicode). */
#include <string.h>

#include "client/template/internal.h"

struct uni_case {
    uint32_t lo, hi;
    int32_t d[3]; /* upper, lower, title */
};

#include "client/template/unicode_tables.inc"

uint32_t tp_utf8_decode(const char *str, size_t n, size_t *width)
{
    const unsigned char *s = (const unsigned char *)str;
    unsigned c = s[0];
    *width = 1;
    if (c < 0x80)
        return c;
    unsigned need, lo = 0x80, hi = 0xBF;
    uint32_t r;
    if (c >= 0xC2 && c <= 0xDF) {
        need = 1;
        r = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        need = 2;
        r = c & 0x0F;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 3;
        r = c & 0x07;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else {
        return RUNE_ERROR;
    }
    if (n < need + 1)
        return RUNE_ERROR;
    for (unsigned i = 1; i <= need; i++) {
        unsigned b = s[i];
        if (b < lo || b > hi)
            return RUNE_ERROR;
        lo = 0x80;
        hi = 0xBF;
        r = (r << 6) | (b & 0x3F);
    }
    *width = need + 1;
    return r;
}

uint32_t tp_utf8_decode_last(const char *s, size_t n, size_t *width)
{
    size_t start = n - 1;
    if ((unsigned char)s[start] < 0x80) {
        *width = 1;
        return (unsigned char)s[start];
    }
    size_t lim = n >= 4 ? n - 4 : 0;
    while (start > lim && ((unsigned char)s[start] & 0xC0) == 0x80)
        start--;
    size_t w;
    uint32_t r = tp_utf8_decode(s + start, n - start, &w);
    if (start + w != n) {
        *width = 1;
        return RUNE_ERROR;
    }
    *width = w;
    return r;
}

size_t tp_utf8_encode(char out[4], uint32_t r)
{
    if (r > RUNE_MAX || (r >= 0xD800 && r <= 0xDFFF))
        r = RUNE_ERROR;
    if (r < 0x80) {
        out[0] = (char)r;
        return 1;
    }
    if (r < 0x800) {
        out[0] = (char)(0xC0 | (r >> 6));
        out[1] = (char)(0x80 | (r & 0x3F));
        return 2;
    }
    if (r < 0x10000) {
        out[0] = (char)(0xE0 | (r >> 12));
        out[1] = (char)(0x80 | ((r >> 6) & 0x3F));
        out[2] = (char)(0x80 | (r & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (r >> 18));
    out[1] = (char)(0x80 | ((r >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((r >> 6) & 0x3F));
    out[3] = (char)(0x80 | (r & 0x3F));
    return 4;
}

size_t tp_utf8_count(const char *s, size_t n)
{
    size_t count = 0;
    for (size_t i = 0; i < n; count++) {
        if ((unsigned char)s[i] < 0x80) {
            i++;
            continue;
        }
        size_t w;
        tp_utf8_decode(s + i, n - i, &w);
        i += w;
    }
    return count;
}

bool tp_utf8_valid(const char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        if ((unsigned char)s[i] < 0x80) {
            i++;
            continue;
        }
        size_t w;
        if (tp_utf8_decode(s + i, n - i, &w) == RUNE_ERROR && w == 1)
            return false;
        i += w;
    }
    return true;
}

static bool in_ranges(const uint32_t (*t)[2], size_t n, uint32_t r)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (r < t[mid][0])
            hi = mid;
        else if (r > t[mid][1])
            lo = mid + 1;
        else
            return true;
    }
    return false;
}

bool tp_uni_is_print(uint32_t r)
{
    if (r < 0x80)
        return r >= 0x20 && r < 0x7F;
    return in_ranges(uni_print, NC_ARRAY_LEN(uni_print), r);
}

bool tp_uni_is_letter(uint32_t r)
{
    if (r < 0x80)
        return (r | 0x20) >= 'a' && (r | 0x20) <= 'z';
    return in_ranges(uni_letter, NC_ARRAY_LEN(uni_letter), r);
}

bool tp_uni_is_digit(uint32_t r)
{
    if (r < 0x80)
        return r >= '0' && r <= '9';
    return in_ranges(uni_digit, NC_ARRAY_LEN(uni_digit), r);
}

bool tp_uni_is_space(uint32_t r)
{
    switch (r) {
    case '\t':
    case '\n':
    case '\v':
    case '\f':
    case '\r':
    case ' ':
    case 0x85:
    case 0xA0:
    case 0x1680:
    case 0x2028:
    case 0x2029:
    case 0x202F:
    case 0x205F:
    case 0x3000:
        return true;
    }
    return r >= 0x2000 && r <= 0x200A;
}

/* unicode.To: the mapping for case 0 (upper), 1 (lower), 2 (title). */
static uint32_t to_case(int which, uint32_t r)
{
    size_t lo = 0, hi = NC_ARRAY_LEN(uni_case_ranges);
    while (lo < hi) {
        size_t m = lo + (hi - lo) / 2;
        const struct uni_case *c = &uni_case_ranges[m];
        if (c->lo <= r && r <= c->hi) {
            int32_t d = c->d[which];
            if (d == UNI_UPPER_LOWER)
                return c->lo + (((r - c->lo) & ~1u) | (uint32_t)(which & 1));
            return (uint32_t)((int32_t)r + d);
        }
        if (r < c->lo)
            hi = m;
        else
            lo = m + 1;
    }
    return r;
}

uint32_t tp_uni_to_upper(uint32_t r)
{
    if (r < 0x80)
        return r >= 'a' && r <= 'z' ? r - 32 : r;
    return to_case(0, r);
}

uint32_t tp_uni_to_lower(uint32_t r)
{
    if (r < 0x80)
        return r >= 'A' && r <= 'Z' ? r + 32 : r;
    return to_case(1, r);
}

uint32_t tp_uni_to_title(uint32_t r)
{
    if (r < 0x80)
        return r >= 'a' && r <= 'z' ? r - 32 : r;
    return to_case(2, r);
}

/* unicode.SimpleFold: the next rune of r's case-folding orbit. */
uint32_t tp_uni_simple_fold(uint32_t r)
{
    if (r > RUNE_MAX)
        return r;
    size_t lo = 0, hi = NC_ARRAY_LEN(uni_fold_orbit);
    while (lo < hi) {
        size_t m = lo + (hi - lo) / 2;
        if (uni_fold_orbit[m][0] < r)
            lo = m + 1;
        else
            hi = m;
    }
    if (lo < NC_ARRAY_LEN(uni_fold_orbit) && uni_fold_orbit[lo][0] == r)
        return uni_fold_orbit[lo][1];
    uint32_t l = tp_uni_to_lower(r);
    if (l != r)
        return l;
    return tp_uni_to_upper(r);
}
