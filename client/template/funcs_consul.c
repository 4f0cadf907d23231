/* funcs_consul.c - consul-template's functions that need no network
 * (template/funcs.go), with its argument order (`{{ 2 | add 1 }}` is
 * add(1, 2) = 2 + 1) and its error texts; env and envOrDefault ask the
 * render's environment; plugin and writeToFile fail as Nomad disables them
 * (its function_denylist: "function is disabled"). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/template/internal.h"

static int out_buf(struct tmpl_call *c, struct nc_buf *b,
                   struct tmpl_value *out)
{
    if (tmpl_call_reserve(c, b->len) < 0) {
        nc_buf_free(b);
        return -1;
    }
    *out = tp_arena_take_buf(tmpl_call_arena(c), b);
    nc_buf_free(b);
    return 0;
}

static struct tmpl_value str_ref(const char *s, size_t n)
{
    return tmpl_string_ref(s, n);
}

/* ---- base64 (encoding/base64, padded, newlines ignored) ----------------- */

static const char b64_std[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char b64_url[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static void b64_encode(struct nc_buf *b, bool url, const unsigned char *s,
                       size_t n)
{
    char *e = nc_base64_encode(s, n, url);
    nc_buf_append(b, e, strlen(e));
    free(e);
}

/* Go's decodeQuantum loop: -1, or the offset of the bad byte. */
static long b64_decode(struct nc_buf *b, const char *alpha,
                       const unsigned char *src, size_t n)
{
    signed char map[256];
    memset(map, -1, sizeof map);
    for (int i = 0; i < 64; i++)
        map[(unsigned char)alpha[i]] = (signed char)i;
    nc_buf_append(b, "", 0);
    size_t si = 0;
    while (si < n) {
        unsigned char dbuf[4] = {0};
        int dlen = 4;
        size_t j;
        for (j = 0; j < 4; j++) {
            if (si == n) {
                if (j == 0)
                    return -1;
                return (long)(si - j); /* missing padding */
            }
            unsigned char in = src[si++];
            if (map[in] >= 0) {
                dbuf[j] = (unsigned char)map[in];
                continue;
            }
            if (in == '\n' || in == '\r') {
                j--;
                continue;
            }
            if (in != '=')
                return (long)(si - 1);
            /* padding */
            switch (j) {
            case 0:
            case 1:
                return (long)(si - 1);
            case 2:
                while (si < n && (src[si] == '\n' || src[si] == '\r'))
                    si++;
                if (si == n)
                    return (long)n;
                if (src[si] != '=')
                    return (long)(si - 1);
                si++;
            }
            while (si < n && (src[si] == '\n' || src[si] == '\r'))
                si++;
            long trailing = si < n ? (long)si : -1;
            dlen = (int)j;
            unsigned v = (unsigned)dbuf[0] << 18 | (unsigned)dbuf[1] << 12 |
                         (unsigned)dbuf[2] << 6 | dbuf[3];
            char o[3] = {(char)(v >> 16), (char)(v >> 8), (char)v};
            nc_buf_append(b, o, (size_t)dlen - 1);
            return trailing;
        }
        unsigned v = (unsigned)dbuf[0] << 18 | (unsigned)dbuf[1] << 12 |
                     (unsigned)dbuf[2] << 6 | dbuf[3];
        char o[3] = {(char)(v >> 16), (char)(v >> 8), (char)v};
        nc_buf_append(b, o, (size_t)dlen - 1);
    }
    return -1;
}

static int do_b64_decode(struct tmpl_call *c, const struct tmpl_value *a,
                         struct tmpl_value *out, const char *alpha,
                         const char *name)
{
    struct nc_buf b = {0};
    long bad = b64_decode(&b, alpha, (const unsigned char *)a[0].s, a[0].len);
    if (bad >= 0) {
        nc_buf_free(&b);
        return tmpl_call_fail(c, "%s: illegal base64 data at input byte %ld",
                              name, bad);
    }
    return out_buf(c, &b, out);
}

static int fn_base64_decode(struct tmpl_call *c, const struct tmpl_value *a,
                            size_t n, struct tmpl_value *out)
{
    (void)n;
    return do_b64_decode(c, a, out, b64_std, "base64Decode");
}

static int fn_base64_url_decode(struct tmpl_call *c, const struct tmpl_value *a,
                                size_t n, struct tmpl_value *out)
{
    (void)n;
    return do_b64_decode(c, a, out, b64_url, "base64URLDecode");
}

static int fn_base64_encode(struct tmpl_call *c, const struct tmpl_value *a,
                            size_t n, struct tmpl_value *out)
{
    (void)n;
    if (tmpl_call_reserve(c, a[0].len / 3 * 4 + 8) < 0)
        return -1;
    struct nc_buf b = {0};
    b64_encode(&b, false, (const unsigned char *)a[0].s, a[0].len);
    return out_buf(c, &b, out);
}

static int fn_base64_url_encode(struct tmpl_call *c, const struct tmpl_value *a,
                                size_t n, struct tmpl_value *out)
{
    (void)n;
    if (tmpl_call_reserve(c, a[0].len / 3 * 4 + 8) < 0)
        return -1;
    struct nc_buf b = {0};
    b64_encode(&b, true, (const unsigned char *)a[0].s, a[0].len);
    return out_buf(c, &b, out);
}

/* ---- in, contains, containsAll/Any/None/NotAll ------------------------- */

static bool is_int_kind(const struct tmpl_value *v)
{
    return v->kind == TMPL_INT;
}

/* consul-template's in(l, v): 1, 0, or -1 (Go's reflect panic). */
static int in_values(struct tmpl_call *c, const struct tmpl_value *l,
                     const struct tmpl_value *v)
{
    if (l->kind == TMPL_LIST) {
        for (size_t i = 0; i < l->len; i++) {
            const struct tmpl_value *e = &l->items[i];
            if (is_int_kind(e)) {
                if (is_int_kind(v) && v->i == e->i)
                    return 1;
            } else if (e->kind == TMPL_FLOAT) {
                if (v->kind == TMPL_FLOAT && v->f == e->f)
                    return 1;
            } else if (e->kind == TMPL_STRING) {
                if (v->kind == TMPL_NIL || v->kind == TMPL_INVALID)
                    return tmpl_call_fail(
                        c, "reflect: call of reflect.Value.Type on zero Value");
                if (v->kind == TMPL_STRING && v->len == e->len &&
                    (v->len == 0 || memcmp(v->s, e->s, v->len) == 0))
                    return 1;
            }
        }
        return 0;
    }
    if (l->kind == TMPL_STRING) {
        if (v->kind == TMPL_NIL || v->kind == TMPL_INVALID)
            return tmpl_call_fail(
                c, "reflect: call of reflect.Value.Type on zero Value");
        if (v->kind == TMPL_STRING &&
            (v->len == 0 || memmem(l->s, l->len, v->s, v->len)))
            return 1;
    }
    return 0;
}

static int fn_in(struct tmpl_call *c, const struct tmpl_value *a, size_t n,
                 struct tmpl_value *out)
{
    (void)n;
    int r = in_values(c, &a[0], &a[1]);
    if (r < 0)
        return -1;
    *out = tmpl_bool(r);
    return 0;
}

static int fn_contains(struct tmpl_call *c, const struct tmpl_value *a,
                       size_t n, struct tmpl_value *out)
{
    (void)n;
    int r = in_values(c, &a[1], &a[0]);
    if (r < 0)
        return -1;
    *out = tmpl_bool(r);
    return 0;
}

static int contains_some(struct tmpl_call *c, const struct tmpl_value *a,
                         struct tmpl_value *out, bool ret_true, bool invert)
{
    for (size_t i = 0; i < a[0].len; i++) {
        int r = in_values(c, &a[1], &a[0].items[i]);
        if (r < 0)
            return -1;
        if ((r == 1) != invert) {
            *out = tmpl_bool(!ret_true);
            return 0;
        }
    }
    *out = tmpl_bool(ret_true);
    return 0;
}

static int fn_contains_all(struct tmpl_call *c, const struct tmpl_value *a,
                           size_t n, struct tmpl_value *out)
{
    (void)n;
    return contains_some(c, a, out, true, true);
}

static int fn_contains_any(struct tmpl_call *c, const struct tmpl_value *a,
                           size_t n, struct tmpl_value *out)
{
    (void)n;
    return contains_some(c, a, out, false, false);
}

static int fn_contains_none(struct tmpl_call *c, const struct tmpl_value *a,
                            size_t n, struct tmpl_value *out)
{
    (void)n;
    return contains_some(c, a, out, true, false);
}

static int fn_contains_not_all(struct tmpl_call *c, const struct tmpl_value *a,
                               size_t n, struct tmpl_value *out)
{
    (void)n;
    return contains_some(c, a, out, false, true);
}

/* ---- env
 * ------------------------------------------------------------------------ */

static int env_lookup(struct tmpl_call *c, const struct tmpl_value *name,
                      struct tmpl_value *out)
{
    const char *args[1] = {tp_call_cstr(c, name)};
    int rc = tmpl_call_dep(c, "env", args, 1, out);
    if (rc < 0)
        return -1;
    if (rc == 0 && out->kind != TMPL_STRING)
        return tmpl_call_fail(c, "env %s: the environment answered a %s",
                              args[0], tmpl_type_name(out));
    return rc;
}

static int fn_env(struct tmpl_call *c, const struct tmpl_value *a, size_t n,
                  struct tmpl_value *out)
{
    (void)n;
    int rc = env_lookup(c, &a[0], out);
    if (rc < 0)
        return -1;
    if (rc != 0)
        *out = str_ref("", 0);
    return 0;
}

static int fn_env_or_default(struct tmpl_call *c, const struct tmpl_value *a,
                             size_t n, struct tmpl_value *out)
{
    (void)n;
    int rc = env_lookup(c, &a[0], out);
    if (rc < 0)
        return -1;
    if (rc == TMPL_ABSENT)
        *out = a[1];
    else if (rc == TMPL_MISSING)
        *out = str_ref("", 0);
    return 0;
}

/* ---- strings
 * ---------------------------------------------------------------------- */

static int fn_join(struct tmpl_call *c, const struct tmpl_value *a, size_t n,
                   struct tmpl_value *out)
{
    (void)n;
    size_t total = 0;
    for (size_t i = 0; i < a[1].len; i++)
        total += a[1].items[i].len + a[0].len;
    if (tmpl_call_reserve(c, total) < 0)
        return -1;
    struct nc_buf b = {0};
    nc_buf_append(&b, "", 0);
    for (size_t i = 0; i < a[1].len; i++) {
        if (i > 0)
            nc_buf_append(&b, a[0].s, a[0].len);
        nc_buf_append(&b, a[1].items[i].s, a[1].items[i].len);
    }
    return out_buf(c, &b, out);
}

static bool cutset_has(const struct tmpl_value *cut, uint32_t r)
{
    for (size_t i = 0; i < cut->len;) {
        size_t w;
        uint32_t x = tp_utf8_decode(cut->s + i, cut->len - i, &w);
        if (x == r)
            return true;
        i += w;
    }
    return false;
}

static int fn_trim(struct tmpl_call *c, const struct tmpl_value *a, size_t n,
                   struct tmpl_value *out)
{
    (void)c;
    (void)n;
    const struct tmpl_value *cut = &a[0];
    const char *s = a[1].s;
    size_t len = a[1].len;
    if (len == 0 || cut->len == 0) {
        *out = a[1];
        return 0;
    }
    while (len > 0) {
        size_t w;
        uint32_t r = tp_utf8_decode(s, len, &w);
        if (!cutset_has(cut, r))
            break;
        s += w;
        len -= w;
    }
    while (len > 0) {
        size_t w;
        uint32_t r = tp_utf8_decode_last(s, len, &w);
        if (!cutset_has(cut, r))
            break;
        len -= w;
    }
    *out = str_ref(s, len);
    return 0;
}

static int fn_trim_prefix(struct tmpl_call *c, const struct tmpl_value *a,
                          size_t n, struct tmpl_value *out)
{
    (void)c;
    (void)n;
    *out = a[1];
    if (a[1].len >= a[0].len &&
        (a[0].len == 0 || memcmp(a[1].s, a[0].s, a[0].len) == 0)) {
        out->s += a[0].len;
        out->len -= a[0].len;
    }
    return 0;
}

static int fn_trim_suffix(struct tmpl_call *c, const struct tmpl_value *a,
                          size_t n, struct tmpl_value *out)
{
    (void)c;
    (void)n;
    *out = a[1];
    if (a[1].len >= a[0].len &&
        (a[0].len == 0 ||
         memcmp(a[1].s + a[1].len - a[0].len, a[0].s, a[0].len) == 0))
        out->len -= a[0].len;
    return 0;
}

static struct tmpl_value trim_space(struct tmpl_value v)
{
    while (v.len > 0) {
        size_t w;
        uint32_t r = tp_utf8_decode(v.s, v.len, &w);
        if (!tp_uni_is_space(r) || (r == RUNE_ERROR && w == 1))
            break;
        v.s += w;
        v.len -= w;
    }
    while (v.len > 0) {
        size_t w;
        uint32_t r = tp_utf8_decode_last(v.s, v.len, &w);
        if (!tp_uni_is_space(r))
            break;
        v.len -= w;
    }
    return v;
}

static int fn_trim_space(struct tmpl_call *c, const struct tmpl_value *a,
                         size_t n, struct tmpl_value *out)
{
    (void)c;
    (void)n;
    *out = trim_space(a[0]);
    return 0;
}

static int fn_replace_all(struct tmpl_call *c, const struct tmpl_value *a,
                          size_t n, struct tmpl_value *out)
{
    (void)n;
    const struct tmpl_value *f = &a[0], *t = &a[1], *s = &a[2];
    struct nc_buf b = {0};
    nc_buf_append(&b, "", 0);
    size_t room = tp_call_room(c);
    if (f->len == 0) {
        /* t before every rune and at the end */
        size_t runes = tp_utf8_count(s->s, s->len);
        if ((runes + 1) * t->len + s->len > room) {
            nc_buf_free(&b);
            return tmpl_call_reserve(c, (size_t)-1);
        }
        for (size_t i = 0; i < s->len;) {
            size_t w = 1;
            if ((unsigned char)s->s[i] >= 0x80)
                tp_utf8_decode(s->s + i, s->len - i, &w);
            nc_buf_append(&b, t->s, t->len);
            nc_buf_append(&b, s->s + i, w);
            i += w;
        }
        nc_buf_append(&b, t->s, t->len);
        return out_buf(c, &b, out);
    }
    size_t i = 0;
    while (i < s->len) {
        const char *hit = s->len - i >= f->len
                              ? memmem(s->s + i, s->len - i, f->s, f->len)
                              : NULL;
        if (!hit) {
            nc_buf_append(&b, s->s + i, s->len - i);
            break;
        }
        nc_buf_append(&b, s->s + i, (size_t)(hit - (s->s + i)));
        nc_buf_append(&b, t->s, t->len);
        i = (size_t)(hit - s->s) + f->len;
        if (b.len > room) {
            nc_buf_free(&b);
            return tmpl_call_reserve(c, (size_t)-1);
        }
    }
    return out_buf(c, &b, out);
}

static int fn_split(struct tmpl_call *c, const struct tmpl_value *a, size_t n,
                    struct tmpl_value *out)
{
    (void)n;
    struct tmpl_arena *ar = tmpl_call_arena(c);
    struct tmpl_value sep = a[0], s = trim_space(a[1]);
    if (s.len == 0) {
        *out = tmpl_list(ar, 0, TMPL_ELEM_STRING);
        return 0;
    }
    size_t count = 0;
    if (sep.len == 0) {
        count = tp_utf8_count(s.s, s.len);
    } else {
        count = 1;
        for (const char *p = s.s, *e = s.s + s.len;
             (p = (size_t)(e - p) >= sep.len
                      ? memmem(p, (size_t)(e - p), sep.s, sep.len)
                      : NULL);
             p += sep.len)
            count++;
    }
    if (tmpl_call_reserve(c, count * sizeof(struct tmpl_value)) < 0)
        return -1;
    *out = tmpl_list(ar, count, TMPL_ELEM_STRING);
    struct tmpl_value *items = tmpl_list_items(out);
    if (sep.len == 0) {
        size_t k = 0;
        for (size_t i = 0; i < s.len; k++) {
            size_t w = 1;
            if ((unsigned char)s.s[i] >= 0x80)
                tp_utf8_decode(s.s + i, s.len - i, &w);
            items[k] = str_ref(s.s + i, w);
            i += w;
        }
        return 0;
    }
    const char *p = s.s, *e = s.s + s.len;
    for (size_t k = 0; k < count; k++) {
        const char *hit =
            k + 1 < count ? memmem(p, (size_t)(e - p), sep.s, sep.len) : e;
        items[k] = str_ref(p, (size_t)(hit - p));
        p = hit + sep.len;
    }
    return 0;
}

static int fn_split_to_map(struct tmpl_call *c, const struct tmpl_value *a,
                           size_t n, struct tmpl_value *out)
{
    (void)n;
    struct tmpl_arena *ar = tmpl_call_arena(c);
    struct tmpl_value s = trim_space(a[2]);
    *out = tmpl_map_new(ar, 4, TMPL_ELEM_STRING);
    if (s.len == 0)
        return 0;
    struct tmpl_value parts;
    struct tmpl_value args[2] = {a[0], s};
    /* split without the trim it already had */
    if (fn_split(c, args, 2, &parts) < 0)
        return -1;
    for (size_t i = 0; i < parts.len; i++) {
        struct tmpl_value p = parts.items[i];
        const char *cut = a[1].len == 0 ? p.s
                          : p.len >= a[1].len
                              ? memmem(p.s, p.len, a[1].s, a[1].len)
                              : NULL;
        if (!cut)
            continue;
        size_t klen = (size_t)(cut - p.s);
        tmpl_map_put(ar, out, p.s, klen,
                     str_ref(cut + a[1].len, p.len - klen - a[1].len));
    }
    tmpl_map_seal(out);
    return 0;
}

/* strings.Map with a case function: invalid UTF-8 becomes U+FFFD. */
static int map_case(struct tmpl_call *c, const struct tmpl_value *s,
                    uint32_t (*f)(uint32_t), struct tmpl_value *out)
{
    if (tmpl_call_reserve(c, s->len * 3 + 1) < 0)
        return -1;
    struct nc_buf b = {0};
    nc_buf_append(&b, "", 0);
    for (size_t i = 0; i < s->len;) {
        unsigned char ch = (unsigned char)s->s[i];
        if (ch < 0x80) {
            nc_buf_putc(&b, (char)f(ch));
            i++;
            continue;
        }
        size_t w;
        uint32_t r = tp_utf8_decode(s->s + i, s->len - i, &w);
        char enc[4];
        nc_buf_append(&b, enc, tp_utf8_encode(enc, f(r)));
        i += w;
    }
    return out_buf(c, &b, out);
}

static int fn_to_lower(struct tmpl_call *c, const struct tmpl_value *a,
                       size_t n, struct tmpl_value *out)
{
    (void)n;
    return map_case(c, &a[0], tp_uni_to_lower, out);
}

static int fn_to_upper(struct tmpl_call *c, const struct tmpl_value *a,
                       size_t n, struct tmpl_value *out)
{
    (void)n;
    return map_case(c, &a[0], tp_uni_to_upper, out);
}

/* cases.Title(language.Und, cases.NoLower): the first letter of each word
 * title-cased, the rest kept. Words are approximated as runs of letters,
 * digits, marks and the in-word punctuation of Unicode word breaking
 * (' . : _ between letters). */
static int fn_to_title(struct tmpl_call *c, const struct tmpl_value *a,
                       size_t n, struct tmpl_value *out)
{
    (void)n;
    const struct tmpl_value *s = &a[0];
    if (tmpl_call_reserve(c, s->len * 3 + 1) < 0)
        return -1;
    struct nc_buf b = {0};
    nc_buf_append(&b, "", 0);
    bool in_word = false;
    for (size_t i = 0; i < s->len;) {
        size_t w;
        uint32_t r = tp_utf8_decode(s->s + i, s->len - i, &w);
        bool word = tp_uni_is_letter(r) || tp_uni_is_digit(r) || r == '_';
        bool mid = r == '\'' || r == '.' || r == ':' || r == 0x2019;
        uint32_t o = r;
        if (word) {
            if (!in_word && tp_uni_is_letter(r))
                o = tp_uni_to_title(r);
            in_word = true;
        } else if (!(mid && in_word)) {
            in_word = false;
        }
        if (r == RUNE_ERROR && w == 1) {
            nc_buf_puts(&b, "\xEF\xBF\xBD");
        } else {
            char enc[4];
            nc_buf_append(&b, enc, tp_utf8_encode(enc, o));
        }
        i += w;
    }
    return out_buf(c, &b, out);
}

static int fn_indent(struct tmpl_call *c, const struct tmpl_value *a, size_t n,
                     struct tmpl_value *out)
{
    (void)n;
    int64_t spaces = a[0].i;
    if (spaces < 0)
        return tmpl_call_fail(c, "indent value must be a positive integer");
    size_t lines = 1;
    for (size_t i = 0; i < a[1].len; i++)
        lines += a[1].s[i] == '\n';
    if ((uint64_t)spaces > tp_call_room(c) ||
        tmpl_call_reserve(c, lines * (size_t)spaces + a[1].len) < 0)
        return tmpl_call_reserve(c, (size_t)-1);
    struct nc_buf b = {0};
    nc_buf_append(&b, "", 0);
    bool sp = true;
    for (size_t i = 0; i < a[1].len; i++) {
        char ch = a[1].s[i];
        if (sp && ch != '\n')
            for (int64_t k = 0; k < spaces; k++)
                nc_buf_putc(&b, ' ');
        nc_buf_putc(&b, ch);
        sp = ch == '\n';
    }
    return out_buf(c, &b, out);
}

/* ---- parse*
 * -------------------------------------------------------------------- */

static int num_error(struct tmpl_call *c, const char *wrap, const char *fn,
                     const struct tmpl_value *s, int rc)
{
    struct nc_buf q = {0};
    tp_go_quote(&q, s->s, s->len, false);
    tmpl_call_fail(c, "%s: strconv.%s: parsing %s: %s", wrap, fn, q.data,
                   rc == -ERANGE ? "value out of range" : "invalid syntax");
    nc_buf_free(&q);
    return -1;
}

static int fn_parse_bool(struct tmpl_call *c, const struct tmpl_value *a,
                         size_t n, struct tmpl_value *out)
{
    (void)n;
    bool b = false;
    if (a[0].len > 0 && tp_go_parse_bool(a[0].s, a[0].len, &b) < 0)
        return num_error(c, "parseBool", "ParseBool", &a[0], -EINVAL);
    *out = tmpl_bool(b);
    return 0;
}

static int fn_parse_float(struct tmpl_call *c, const struct tmpl_value *a,
                          size_t n, struct tmpl_value *out)
{
    (void)n;
    double f = 0;
    if (a[0].len > 0) {
        int rc = tp_go_parse_float(a[0].s, a[0].len, &f);
        if (rc < 0)
            return num_error(c, "parseFloat", "ParseFloat", &a[0], rc);
    }
    *out = tmpl_float(f);
    return 0;
}

static int fn_parse_int(struct tmpl_call *c, const struct tmpl_value *a,
                        size_t n, struct tmpl_value *out)
{
    (void)n;
    int64_t v = 0;
    if (a[0].len > 0) {
        int rc = tp_go_parse_int(a[0].s, a[0].len, 10, &v);
        if (rc < 0)
            return num_error(c, "parseInt", "ParseInt", &a[0], rc);
    }
    *out = tmpl_int64(v);
    return 0;
}

static int fn_parse_uint(struct tmpl_call *c, const struct tmpl_value *a,
                         size_t n, struct tmpl_value *out)
{
    (void)n;
    uint64_t v = 0;
    if (a[0].len > 0) {
        int rc = tp_go_parse_uint(a[0].s, a[0].len, 10, &v);
        if (rc < 0)
            return num_error(c, "parseUint", "ParseUint", &a[0], rc);
    }
    *out = tmpl_uint64(v);
    return 0;
}

static int fn_parse_json(struct tmpl_call *c, const struct tmpl_value *a,
                         size_t n, struct tmpl_value *out)
{
    (void)n;
    struct tmpl_arena *ar = tmpl_call_arena(c);
    if (a[0].len == 0) {
        *out = tmpl_map_new(ar, 1, TMPL_ELEM_ANY);
        return 0;
    }
    if (tmpl_call_reserve(c, a[0].len * 4) < 0)
        return -1;
    struct nc_error err = {0};
    if (tmpl_value_from_json(ar, a[0].s, a[0].len, TMPL_JSON_GO_NUMBERS, out,
                             &err) < 0)
        return tmpl_call_fail(c, "%s", err.msg);
    return 0;
}

static int fn_to_json(struct tmpl_call *c, const struct tmpl_value *a, size_t n,
                      struct tmpl_value *out)
{
    (void)n;
    struct nc_buf b = {0};
    char why[300];
    if (tp_json_encode(&b, tmpl_call_arena(c), &a[0], NULL, tp_call_room(c),
                       why, sizeof why) < 0) {
        nc_buf_free(&b);
        return tmpl_call_fail(c, "toJSON: %s", why);
    }
    return out_buf(c, &b, out);
}

static int fn_to_json_pretty(struct tmpl_call *c, const struct tmpl_value *a,
                             size_t n, struct tmpl_value *out)
{
    (void)n;
    struct nc_buf b = {0};
    char why[300];
    if (tp_json_encode(&b, tmpl_call_arena(c), &a[0], "  ", tp_call_room(c),
                       why, sizeof why) < 0) {
        nc_buf_free(&b);
        return tmpl_call_fail(c, "toJSONPretty: %s", why);
    }
    return out_buf(c, &b, out);
}

/* ---- regexps
 * ----------------------------------------------------------------------- */

#define REGEX_MAX_WORK ((size_t)50 << 20)

static struct regex *compile(struct tmpl_call *c, const struct tmpl_value *p,
                             const struct tmpl_value *subject)
{
    char why[512];
    struct regex *re = tp_regex_compile(p->s, p->len, why, sizeof why);
    if (!re) {
        tmpl_call_fail(c, "%s", why);
        return NULL;
    }
    if ((subject->len + 1) * tp_regex_size(re) > REGEX_MAX_WORK) {
        tp_regex_free(re);
        tmpl_call_fail(c, "the input (%zu bytes) is too large for this pattern",
                       subject->len);
        return NULL;
    }
    return re;
}

static int fn_regex_match(struct tmpl_call *c, const struct tmpl_value *a,
                          size_t n, struct tmpl_value *out)
{
    (void)n;
    struct regex *re = compile(c, &a[0], &a[1]);
    if (!re)
        return -1;
    *out = tmpl_bool(tp_regex_match(re, a[1].s, a[1].len));
    tp_regex_free(re);
    return 0;
}

static int fn_regex_replace_all(struct tmpl_call *c, const struct tmpl_value *a,
                                size_t n, struct tmpl_value *out)
{
    (void)n;
    struct regex *re = compile(c, &a[0], &a[2]);
    if (!re)
        return -1;
    struct nc_buf b = {0};
    int rc = tp_regex_replace_all(re, a[2].s, a[2].len, a[1].s, a[1].len, &b,
                                  tp_call_room(c));
    tp_regex_free(re);
    if (rc < 0) {
        nc_buf_free(&b);
        return tmpl_call_reserve(c, (size_t)-1);
    }
    return out_buf(c, &b, out);
}

/* ---- hashes
 * ---------------------------------------------------------------------------
 */

static int fn_sha256_hex(struct tmpl_call *c, const struct tmpl_value *a,
                         size_t n, struct tmpl_value *out)
{
    (void)n;
    struct nc_sha256 h;
    char hex[65];
    nc_sha256_init(&h);
    nc_sha256_add(&h, a[0].s, a[0].len);
    nc_sha256_hex(&h, hex);
    *out = tmpl_string(tmpl_call_arena(c), hex, 64);
    return 0;
}

static int fn_md5sum(struct tmpl_call *c, const struct tmpl_value *a, size_t n,
                     struct tmpl_value *out)
{
    (void)n;
    char hex[33];
    tp_md5_hex(a[0].s, a[0].len, hex);
    *out = tmpl_string(tmpl_call_arena(c), hex, 32);
    return 0;
}

/* RFC 1321, for md5sum. */
void tp_md5_hex(const void *data, size_t len, char out[33])
{
    static const uint32_t k[64] = {
        0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a,
        0xa8304613, 0xfd469501, 0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be,
        0x6b901122, 0xfd987193, 0xa679438e, 0x49b40821, 0xf61e2562, 0xc040b340,
        0x265e5a51, 0xe9b6c7aa, 0xd62f105d, 0x02441453, 0xd8a1e681, 0xe7d3fbc8,
        0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed, 0xa9e3e905, 0xfcefa3f8,
        0x676f02d9, 0x8d2a4c8a, 0xfffa3942, 0x8771f681, 0x6d9d6122, 0xfde5380c,
        0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70, 0x289b7ec6, 0xeaa127fa,
        0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665,
        0xf4292244, 0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92,
        0xffeff47d, 0x85845dd1, 0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1,
        0xf7537e82, 0xbd3af235, 0x2ad7d2bb, 0xeb86d391};
    static const unsigned r[64] = {
        7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22,
        5, 9,  14, 20, 5, 9,  14, 20, 5, 9,  14, 20, 5, 9,  14, 20,
        4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23,
        6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21};
    uint32_t h[4] = {0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476};
    const unsigned char *p = data;
    size_t full = len / 64, rest = len % 64;
    unsigned char tail[128] = {0};
    memcpy(tail, p + full * 64, rest);
    tail[rest] = 0x80;
    size_t tail_blocks = rest < 56 ? 1 : 2;
    uint64_t bits = (uint64_t)len * 8;
    for (int i = 0; i < 8; i++)
        tail[tail_blocks * 64 - 8 + (size_t)i] =
            (unsigned char)(bits >> (8 * i));
    for (size_t blk = 0; blk < full + tail_blocks; blk++) {
        const unsigned char *block =
            blk < full ? p + blk * 64 : tail + (blk - full) * 64;
        uint32_t m[16];
        for (int i = 0; i < 16; i++)
            m[i] = (uint32_t)block[4 * i] | (uint32_t)block[4 * i + 1] << 8 |
                   (uint32_t)block[4 * i + 2] << 16 |
                   (uint32_t)block[4 * i + 3] << 24;
        uint32_t a = h[0], b = h[1], cc = h[2], d = h[3];
        for (int i = 0; i < 64; i++) {
            uint32_t f;
            int g;
            if (i < 16) {
                f = (b & cc) | (~b & d);
                g = i;
            } else if (i < 32) {
                f = (d & b) | (~d & cc);
                g = (5 * i + 1) % 16;
            } else if (i < 48) {
                f = b ^ cc ^ d;
                g = (3 * i + 5) % 16;
            } else {
                f = cc ^ (b | ~d);
                g = (7 * i) % 16;
            }
            uint32_t tmp = d;
            d = cc;
            cc = b;
            uint32_t x = a + f + k[i] + m[g];
            b = b + (x << r[i] | x >> (32 - r[i]));
            a = tmp;
        }
        h[0] += a;
        h[1] += b;
        h[2] += cc;
        h[3] += d;
    }
    static const char hexd[] = "0123456789abcdef";
    for (int i = 0; i < 16; i++) {
        unsigned char byte = (unsigned char)(h[i / 4] >> (8 * (i % 4)));
        out[2 * i] = hexd[byte >> 4];
        out[2 * i + 1] = hexd[byte & 15];
    }
    out[32] = 0;
}

/* ---- timestamp, loop
 * ------------------------------------------------------------------ */

static int fn_timestamp(struct tmpl_call *c, const struct tmpl_value *a,
                        size_t n, struct tmpl_value *out)
{
    int64_t now = tmpl_call_now(c);
    struct nc_buf b = {0};
    if (n == 0) {
        tp_go_time_format(&b, now, "2006-01-02T15:04:05Z07:00", 25);
    } else if (n == 1) {
        if (a[0].len == 4 && memcmp(a[0].s, "unix", 4) == 0) {
            long long s = now / 1000000000;
            if (now < 0 && now % 1000000000)
                s--;
            nc_buf_printf(&b, "%lld", s);
        } else {
            if (tmpl_call_reserve(c, a[0].len * 10) < 0)
                return -1;
            tp_go_time_format(&b, now, a[0].s, a[0].len);
        }
    } else {
        return tmpl_call_fail(c,
                              "timestamp: wrong number of arguments, expected "
                              "0 or 1, but got %zu",
                              n);
    }
    return out_buf(c, &b, out);
}

static int to64(struct tmpl_call *c, const struct tmpl_value *v, int64_t *out)
{
    switch (v->kind) {
    case TMPL_INT:
        *out = v->i;
        return 0;
    case TMPL_UINT:
        *out = (int64_t)v->u;
        return 0;
    case TMPL_STRING: {
        if (v->len == 0) {
            *out = 0;
            return 0;
        }
        int rc = tp_go_parse_int(v->s, v->len, 10, out);
        if (rc < 0)
            return num_error(c, "parseInt", "ParseInt", v, rc);
        return 0;
    }
    }
    const char *t = v->kind == TMPL_NIL || v->kind == TMPL_INVALID
                        ? "<nil>"
                        : tmpl_type_name(v);
    return tmpl_call_fail(c, "loop: bad argument type: %s", t);
}

static int fn_loop(struct tmpl_call *c, const struct tmpl_value *a, size_t n,
                   struct tmpl_value *out)
{
    int64_t start = 0, stop;
    if (n == 1) {
        if (to64(c, &a[0], &stop) < 0)
            return -1;
    } else if (n == 2) {
        if (to64(c, &a[0], &start) < 0 || to64(c, &a[1], &stop) < 0)
            return -1;
    } else {
        return tmpl_call_fail(c,
                              "loop: wrong number of arguments, expected 1 "
                              "or 2, but got %zu",
                              n);
    }
    *out = (struct tmpl_value){.kind = TMPL_STREAM, .i = start};
    if (stop > start)
        out->len = (size_t)((uint64_t)stop - (uint64_t)start);
    return 0;
}

/* ---- math
 * ---------------------------------------------------------------------------------
 */

enum { OP_ADD, OP_SUB, OP_MUL, OP_DIV, OP_MOD, OP_MIN, OP_MAX };
static const char *const op_names[] = {
    "add", "subtract", "multiply", "divide", "modulo", "minimum", "maximum"};

static int unknown_type(struct tmpl_call *c, int op, const struct tmpl_value *v)
{
    struct tmpl_value x = *v;
    if (x.kind == TMPL_NIL)
        x = tmpl_invalid();
    struct nc_buf q = {0};
    tp_gofmt_value(&q, &x, 'q', 512);
    const char *t = x.kind == TMPL_INVALID ? "<nil>" : tmpl_type_name(&x);
    tmpl_call_fail(c, "%s: unknown type for %s (%s)", op_names[op], q.data, t);
    nc_buf_free(&q);
    return -1;
}

static int int_op(struct tmpl_call *c, int op, int64_t a, int64_t b,
                  struct tmpl_value *out)
{
    uint64_t ua = (uint64_t)a, ub = (uint64_t)b;
    switch (op) {
    case OP_ADD:
        *out = tmpl_int64((int64_t)(ua + ub));
        return 0;
    case OP_SUB:
        *out = tmpl_int64((int64_t)(ua - ub));
        return 0;
    case OP_MUL:
        *out = tmpl_int64((int64_t)(ua * ub));
        return 0;
    case OP_DIV:
    case OP_MOD:
        if (b == 0)
            return tmpl_call_fail(c, "runtime error: integer divide by zero");
        if (a == INT64_MIN && b == -1)
            *out = tmpl_int64(op == OP_DIV ? INT64_MIN : 0);
        else
            *out = tmpl_int64(op == OP_DIV ? a / b : a % b);
        return 0;
    }
    return 0;
}

static int uint_op(struct tmpl_call *c, int op, uint64_t a, uint64_t b,
                   struct tmpl_value *out)
{
    switch (op) {
    case OP_ADD:
        *out = tmpl_uint64(a + b);
        return 0;
    case OP_SUB:
        *out = tmpl_uint64(a - b);
        return 0;
    case OP_MUL:
        *out = tmpl_uint64(a * b);
        return 0;
    case OP_DIV:
    case OP_MOD:
        if (b == 0)
            return tmpl_call_fail(c, "runtime error: integer divide by zero");
        *out = tmpl_uint64(op == OP_DIV ? a / b : a % b);
        return 0;
    }
    return 0;
}

static double as_float(const struct tmpl_value *v)
{
    return v->kind == TMPL_INT    ? (double)v->i
           : v->kind == TMPL_UINT ? (double)v->u
                                  : v->f;
}

static int arith(struct tmpl_call *c, int op, const struct tmpl_value *args,
                 struct tmpl_value *out)
{
    /* consul-template's order: f(b, a) computes a OP b */
    const struct tmpl_value *bv = &args[0], *av = &args[1];
    int ka = av->kind, kb = bv->kind;
    bool anum =
        ka == TMPL_INT || ka == TMPL_UINT || (ka == TMPL_FLOAT && op != OP_MOD);
    if (!anum)
        return unknown_type(c, op, av);
    bool bnum =
        kb == TMPL_INT || kb == TMPL_UINT || (kb == TMPL_FLOAT && op != OP_MOD);
    if (!bnum)
        return unknown_type(c, op, bv);
    if (op == OP_MIN || op == OP_MAX) {
        bool pick_a;
        if (ka == TMPL_INT && kb == TMPL_INT)
            pick_a = op == OP_MIN ? av->i < bv->i : av->i > bv->i;
        else if (ka == TMPL_INT && kb == TMPL_UINT)
            pick_a =
                op == OP_MIN ? av->i < (int64_t)bv->u : av->i > (int64_t)bv->u;
        else if (ka == TMPL_UINT && kb == TMPL_INT)
            pick_a =
                op == OP_MIN ? (int64_t)av->u < bv->i : (int64_t)av->u > bv->i;
        else if (ka == TMPL_UINT && kb == TMPL_UINT)
            pick_a = op == OP_MIN ? av->u < bv->u : av->u > bv->u;
        else
            pick_a = op == OP_MIN ? as_float(av) < as_float(bv)
                                  : as_float(av) > as_float(bv);
        const struct tmpl_value *p = pick_a ? av : bv;
        if (p->kind == TMPL_INT)
            *out = tmpl_int64(p->i);
        else if (p->kind == TMPL_UINT)
            *out = tmpl_uint64(p->u);
        else
            *out = tmpl_float(p->f);
        return 0;
    }
    if (ka == TMPL_FLOAT || kb == TMPL_FLOAT) {
        double x = as_float(av), y = as_float(bv);
        switch (op) {
        case OP_ADD:
            *out = tmpl_float(x + y);
            break;
        case OP_SUB:
            *out = tmpl_float(x - y);
            break;
        case OP_MUL:
            *out = tmpl_float(x * y);
            break;
        case OP_DIV:
            *out = tmpl_float(x / y);
            break;
        }
        return 0;
    }
    if (ka == TMPL_UINT && kb == TMPL_UINT)
        return uint_op(c, op, av->u, bv->u, out);
    int64_t x = ka == TMPL_INT ? av->i : (int64_t)av->u;
    int64_t y = kb == TMPL_INT ? bv->i : (int64_t)bv->u;
    return int_op(c, op, x, y, out);
}

#define ARITH(fname, op)                                                       \
    static int fname(struct tmpl_call *c, const struct tmpl_value *a,          \
                     size_t n, struct tmpl_value *out)                         \
    {                                                                          \
        (void)n;                                                               \
        return arith(c, op, a, out);                                           \
    }
ARITH(fn_add, OP_ADD)
ARITH(fn_subtract, OP_SUB)
ARITH(fn_multiply, OP_MUL)
ARITH(fn_divide, OP_DIV)
ARITH(fn_modulo, OP_MOD)
ARITH(fn_minimum, OP_MIN)
ARITH(fn_maximum, OP_MAX)

static int fn_denied(struct tmpl_call *c, const struct tmpl_value *a, size_t n,
                     struct tmpl_value *out)
{
    (void)a;
    (void)n;
    (void)out;
    return tmpl_call_fail(c, "function is disabled");
}

/* ---- the table
 * ---------------------------------------------------------------------------
 */

#define S TMPL_P_STRING
#define A TMPL_P_ANY
#define L TMPL_P_LIST
#define SS TMPL_P_STRINGS
#define I TMPL_P_INT

static const struct tmpl_func consul_funcs[] = {
    {"add", fn_add, 2, false, {A, A}, 0},
    {"base64Decode", fn_base64_decode, 1, false, {S}, 0},
    {"base64Encode", fn_base64_encode, 1, false, {S}, 0},
    {"base64URLDecode", fn_base64_url_decode, 1, false, {S}, 0},
    {"base64URLEncode", fn_base64_url_encode, 1, false, {S}, 0},
    {"contains", fn_contains, 2, false, {A, A}, 0},
    {"containsAll", fn_contains_all, 2, false, {L, A}, 0},
    {"containsAny", fn_contains_any, 2, false, {L, A}, 0},
    {"containsNone", fn_contains_none, 2, false, {L, A}, 0},
    {"containsNotAll", fn_contains_not_all, 2, false, {L, A}, 0},
    {"divide", fn_divide, 2, false, {A, A}, 0},
    {"env", fn_env, 1, false, {S}, 0},
    {"envOrDefault", fn_env_or_default, 2, false, {S, S}, 0},
    {"in", fn_in, 2, false, {A, A}, 0},
    {"indent", fn_indent, 2, false, {I, S}, 0},
    {"join", fn_join, 2, false, {S, SS}, 0},
    {"loop", fn_loop, 1, true, {A}, 0},
    {"maximum", fn_maximum, 2, false, {A, A}, 0},
    {"md5sum", fn_md5sum, 1, false, {S}, 0},
    {"minimum", fn_minimum, 2, false, {A, A}, 0},
    {"modulo", fn_modulo, 2, false, {A, A}, 0},
    {"multiply", fn_multiply, 2, false, {A, A}, 0},
    {"parseBool", fn_parse_bool, 1, false, {S}, 0},
    {"parseFloat", fn_parse_float, 1, false, {S}, 0},
    {"parseInt", fn_parse_int, 1, false, {S}, 0},
    {"parseJSON", fn_parse_json, 1, false, {S}, 0},
    {"parseUint", fn_parse_uint, 1, false, {S}, 0},
    {"plugin", fn_denied, 1, true, {S}, 0},
    {"regexMatch", fn_regex_match, 2, false, {S, S}, 0},
    {"regexReplaceAll", fn_regex_replace_all, 3, false, {S, S, S}, 0},
    {"replaceAll", fn_replace_all, 3, false, {S, S, S}, 0},
    {"sha256Hex", fn_sha256_hex, 1, false, {S}, 0},
    {"split", fn_split, 2, false, {S, S}, 0},
    {"splitToMap", fn_split_to_map, 3, false, {S, S, S}, 0},
    {"subtract", fn_subtract, 2, false, {A, A}, 0},
    {"timestamp", fn_timestamp, 1, true, {S}, 0},
    {"toJSON", fn_to_json, 1, false, {A}, 0},
    {"toJSONPretty", fn_to_json_pretty, 1, false, {A}, 0},
    {"toLower", fn_to_lower, 1, false, {S}, 0},
    {"toTitle", fn_to_title, 1, false, {S}, 0},
    {"toUpper", fn_to_upper, 1, false, {S}, 0},
    {"trim", fn_trim, 2, false, {S, S}, 0},
    {"trimPrefix", fn_trim_prefix, 2, false, {S, S}, 0},
    {"trimSpace", fn_trim_space, 1, false, {S}, 0},
    {"trimSuffix", fn_trim_suffix, 2, false, {S, S}, 0},
    {"writeToFile", fn_denied, 1, true, {S}, 0},
};

void tmpl_funcs_add_consul(struct tmpl_funcs *r)
{
    tmpl_funcs_add(r, consul_funcs, NC_ARRAY_LEN(consul_funcs));
}
