/* json.c - JSON in and out as Go's encoding/json does it for interface{}
 * values: the decoder's syntax errors word for word ("invalid character 'x'
 * looking for beginning of value"), the encoder's escaping (HTML-safe),
 * float forms, sorted keys and MarshalIndent layout. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "client/template/internal.h"

#define JSON_MAX_DEPTH 10000

/* ---- decoding
 * ---------------------------------------------------------------- */

struct jdec {
    const char *s;
    size_t n, i;
    struct tmpl_arena *a;
    int flags;
    int depth;
    char msg[256];
    bool failed;
    struct nc_buf sb;
};

static void quote_char(char out[16], unsigned char c)
{
    if (c == '\'') {
        strcpy(out, "'\\''");
        return;
    }
    if (c == '"') {
        strcpy(out, "'\"'");
        return;
    }
    struct nc_buf b = {0};
    tp_go_quote_rune(&b, c, false); /* string(c) of a byte is the rune U+00XX */
    snprintf(out, 16, "%s", b.data);
    nc_buf_free(&b);
}

static bool jfail(struct jdec *d, const char *context)
{
    if (d->failed)
        return false;
    d->failed = true;
    if (d->i >= d->n && !context[0]) {
        snprintf(d->msg, sizeof d->msg, "unexpected end of JSON input");
    } else if (d->i >= d->n) {
        /* at the end Go's scanner is fed a space, which a token in the
         * middle refuses */
        snprintf(d->msg, sizeof d->msg, "invalid character ' ' %s", context);
    } else {
        char q[16];
        quote_char(q, (unsigned char)d->s[d->i]);
        snprintf(d->msg, sizeof d->msg, "invalid character %s %s", q, context);
    }
    return false;
}

static bool is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static void skip_ws(struct jdec *d)
{
    while (d->i < d->n && is_ws(d->s[d->i]))
        d->i++;
}

static bool expect_lit(struct jdec *d, const char *word, const char *name)
{
    /* the first letter is already matched */
    for (size_t k = 1; word[k]; k++) {
        d->i++;
        if (d->i >= d->n || d->s[d->i] != word[k]) {
            char ctx[64];
            snprintf(ctx, sizeof ctx, "in literal %s (expecting '%c')", name,
                     word[k]);
            return jfail(d, ctx);
        }
    }
    d->i++;
    return true;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
        return (c | 0x20) - 'a' + 10;
    return -1;
}

static bool read_u4(struct jdec *d, uint32_t *out)
{
    uint32_t v = 0;
    for (int k = 0; k < 4; k++) {
        if (d->i >= d->n)
            return jfail(d, "in \\u hexadecimal character escape");
        int h = hexval(d->s[d->i]);
        if (h < 0)
            return jfail(d, "in \\u hexadecimal character escape");
        v = v << 4 | (uint32_t)h;
        d->i++;
    }
    *out = v;
    return true;
}

/* A string (the opening quote consumed) into d->sb. */
static bool read_string(struct jdec *d)
{
    struct nc_buf *b = &d->sb;
    b->len = 0;
    nc_buf_append(b, "", 0);
    for (;;) {
        if (d->i >= d->n)
            return jfail(d, "");
        unsigned char c = (unsigned char)d->s[d->i];
        if (c == '"') {
            d->i++;
            return true;
        }
        if (c < 0x20)
            return jfail(d, "in string literal");
        if (c == '\\') {
            d->i++;
            if (d->i >= d->n)
                return jfail(d, "in string escape code");
            char e = d->s[d->i];
            switch (e) {
            case '"':
            case '\\':
            case '/':
                nc_buf_putc(b, e);
                d->i++;
                continue;
            case 'b':
                nc_buf_putc(b, '\b');
                d->i++;
                continue;
            case 'f':
                nc_buf_putc(b, '\f');
                d->i++;
                continue;
            case 'n':
                nc_buf_putc(b, '\n');
                d->i++;
                continue;
            case 'r':
                nc_buf_putc(b, '\r');
                d->i++;
                continue;
            case 't':
                nc_buf_putc(b, '\t');
                d->i++;
                continue;
            case 'u': {
                d->i++;
                uint32_t r;
                if (!read_u4(d, &r))
                    return false;
                if (r >= 0xD800 && r < 0xDC00) {
                    /* a high surrogate: a low one may follow */
                    if (d->i + 1 < d->n && d->s[d->i] == '\\' &&
                        d->s[d->i + 1] == 'u') {
                        size_t save = d->i;
                        d->i += 2;
                        uint32_t r2;
                        if (!read_u4(d, &r2))
                            return false;
                        if (r2 >= 0xDC00 && r2 < 0xE000) {
                            r = 0x10000 + ((r - 0xD800) << 10) + (r2 - 0xDC00);
                        } else {
                            r = RUNE_ERROR;
                            d->i = save; /* the second escape stands alone */
                        }
                    } else {
                        r = RUNE_ERROR;
                    }
                } else if (r >= 0xDC00 && r < 0xE000) {
                    r = RUNE_ERROR;
                }
                char enc[4];
                nc_buf_append(b, enc, tp_utf8_encode(enc, r));
                continue;
            }
            default:
                return jfail(d, "in string escape code");
            }
        }
        if (c < 0x80) {
            nc_buf_putc(b, (char)c);
            d->i++;
            continue;
        }
        size_t w;
        uint32_t r = tp_utf8_decode(d->s + d->i, d->n - d->i, &w);
        if (r == RUNE_ERROR && w == 1)
            nc_buf_puts(b, "\xEF\xBF\xBD");
        else
            nc_buf_append(b, d->s + d->i, w);
        d->i += w;
    }
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool read_number(struct jdec *d, struct tmpl_value *out)
{
    size_t start = d->i;
    bool integral = true;
    if (d->s[d->i] == '-') {
        d->i++;
        if (d->i >= d->n)
            return jfail(d, "in numeric literal");
        if (!is_digit(d->s[d->i]))
            return jfail(d, "in numeric literal");
    }
    if (d->s[d->i] == '0') {
        d->i++;
    } else {
        while (d->i < d->n && is_digit(d->s[d->i]))
            d->i++;
    }
    if (d->i < d->n && d->s[d->i] == '.') {
        integral = false;
        d->i++;
        if (d->i >= d->n)
            return jfail(d, "after decimal point in numeric literal");
        if (!is_digit(d->s[d->i]))
            return jfail(d, "after decimal point in numeric literal");
        while (d->i < d->n && is_digit(d->s[d->i]))
            d->i++;
    }
    if (d->i < d->n && (d->s[d->i] == 'e' || d->s[d->i] == 'E')) {
        integral = false;
        d->i++;
        if (d->i < d->n && (d->s[d->i] == '+' || d->s[d->i] == '-'))
            d->i++;
        if (d->i >= d->n)
            return jfail(d, "in exponent of numeric literal");
        if (!is_digit(d->s[d->i]))
            return jfail(d, "in exponent of numeric literal");
        while (d->i < d->n && is_digit(d->s[d->i]))
            d->i++;
    }
    const char *num = d->s + start;
    size_t len = d->i - start;
    if (integral && !(d->flags & TMPL_JSON_GO_NUMBERS)) {
        int64_t v;
        if (tp_go_parse_int(num, len, 10, &v) == 0) {
            *out = tmpl_int(v);
            return true;
        }
    }
    double f;
    if (tp_go_parse_float(num, len, &f) < 0) {
        if (!d->failed) {
            d->failed = true;
            snprintf(d->msg, sizeof d->msg,
                     "json: cannot unmarshal number %.*s into Go value of type "
                     "float64",
                     (int)(len > 100 ? 100 : len), num);
        }
        return false;
    }
    *out = tmpl_float(f);
    return true;
}

static bool read_value(struct jdec *d, struct tmpl_value *out);

static bool push_depth(struct jdec *d)
{
    if (++d->depth > JSON_MAX_DEPTH)
        return jfail(d, "exceeded max depth");
    return true;
}

static bool read_array(struct jdec *d, struct tmpl_value *out)
{
    if (!push_depth(d))
        return false;
    d->i++; /* [ */
    struct tmpl_value *items = NULL;
    size_t n = 0, cap = 0;
    skip_ws(d);
    if (d->i < d->n && d->s[d->i] == ']') {
        d->i++;
    } else {
        for (;;) {
            struct tmpl_value v;
            if (!read_value(d, &v))
                return false;
            tp_arena_grow(d->a, (void **)&items, &cap, n + 1, sizeof *items);
            items[n++] = v.kind == TMPL_INVALID ? tmpl_nil() : v;
            skip_ws(d);
            if (d->i >= d->n)
                return jfail(d, "");
            if (d->s[d->i] == ',') {
                d->i++;
                continue;
            }
            if (d->s[d->i] == ']') {
                d->i++;
                break;
            }
            return jfail(d, "after array element");
        }
    }
    d->depth--;
    *out = (struct tmpl_value){
        .kind = TMPL_LIST, .sub = TMPL_ELEM_ANY, .len = n, .items = items};
    return true;
}

static bool read_object(struct jdec *d, struct tmpl_value *out)
{
    if (!push_depth(d))
        return false;
    d->i++; /* { */
    struct tmpl_value map = tmpl_map_new(d->a, 4, TMPL_ELEM_ANY);
    skip_ws(d);
    if (d->i < d->n && d->s[d->i] == '}') {
        d->i++;
    } else {
        for (;;) {
            skip_ws(d);
            if (d->i >= d->n)
                return jfail(d, "");
            if (d->s[d->i] != '"')
                return jfail(d, "looking for beginning of object key string");
            d->i++;
            if (!read_string(d))
                return false;
            char *key = tp_arena_strdup(d->a, d->sb.data, d->sb.len);
            size_t klen = d->sb.len;
            skip_ws(d);
            if (d->i >= d->n)
                return jfail(d, "");
            if (d->s[d->i] != ':')
                return jfail(d, "after object key");
            d->i++;
            struct tmpl_value v;
            if (!read_value(d, &v))
                return false;
            tmpl_map_put(d->a, &map, key, klen,
                         v.kind == TMPL_INVALID ? tmpl_nil() : v);
            skip_ws(d);
            if (d->i >= d->n)
                return jfail(d, "");
            if (d->s[d->i] == ',') {
                d->i++;
                continue;
            }
            if (d->s[d->i] == '}') {
                d->i++;
                break;
            }
            return jfail(d, "after object key:value pair");
        }
    }
    tmpl_map_seal(&map);
    d->depth--;
    *out = map;
    return true;
}

/* A value; null is TMPL_INVALID here (TMPL_NIL once inside a container). */
static bool read_value(struct jdec *d, struct tmpl_value *out)
{
    skip_ws(d);
    if (d->i >= d->n)
        return jfail(d, "");
    char c = d->s[d->i];
    switch (c) {
    case '{':
        return read_object(d, out);
    case '[':
        return read_array(d, out);
    case '"':
        d->i++;
        if (!read_string(d))
            return false;
        *out = tmpl_string(d->a, d->sb.data, d->sb.len);
        return true;
    case 't':
        *out = tmpl_bool(true);
        return expect_lit(d, "true", "true");
    case 'f':
        *out = tmpl_bool(false);
        return expect_lit(d, "false", "false");
    case 'n':
        *out = tmpl_invalid();
        return expect_lit(d, "null", "null");
    }
    if (c == '-' || is_digit(c))
        return read_number(d, out);
    return jfail(d, "looking for beginning of value");
}

int tmpl_value_from_json(struct tmpl_arena *a, const char *text, size_t len,
                         int flags, struct tmpl_value *out,
                         struct nc_error *err)
{
    struct jdec d = {.s = text, .n = len, .a = a, .flags = flags};
    *out = tmpl_invalid();
    bool ok = read_value(&d, out);
    if (ok) {
        skip_ws(&d);
        if (d.i < d.n)
            ok = jfail(&d, "after top-level value");
    }
    nc_buf_free(&d.sb);
    if (!ok) {
        *out = tmpl_invalid();
        return nc_error_set(err, -EINVAL, "%s", d.msg);
    }
    return 0;
}

/* ---- encoding
 * ---------------------------------------------------------------- */

struct jenc {
    struct nc_buf *out;
    struct tmpl_arena *a;
    const char *indent;
    size_t limit, start;
    char *why;
    size_t whylen;
    int depth;
};

static const char jhex[] = "0123456789abcdef";

static void enc_string(struct nc_buf *b, const char *s, size_t n)
{
    nc_buf_putc(b, '"');
    size_t start = 0, i = 0;
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x80) {
            if (c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' &&
                c != '&') {
                i++;
                continue;
            }
            nc_buf_append(b, s + start, i - start);
            nc_buf_putc(b, '\\');
            switch (c) {
            case '\\':
            case '"':
                nc_buf_putc(b, (char)c);
                break;
            case '\n':
                nc_buf_putc(b, 'n');
                break;
            case '\r':
                nc_buf_putc(b, 'r');
                break;
            case '\t':
                nc_buf_putc(b, 't');
                break;
            default:
                nc_buf_puts(b, "u00");
                nc_buf_putc(b, jhex[c >> 4]);
                nc_buf_putc(b, jhex[c & 0xF]);
            }
            i++;
            start = i;
            continue;
        }
        size_t w;
        uint32_t r = tp_utf8_decode(s + i, n - i, &w);
        if (r == RUNE_ERROR && w == 1) {
            nc_buf_append(b, s + start, i - start);
            nc_buf_puts(b, "\\ufffd");
            i += w;
            start = i;
            continue;
        }
        if (r == 0x2028 || r == 0x2029) {
            nc_buf_append(b, s + start, i - start);
            nc_buf_puts(b, "\\u202");
            nc_buf_putc(b, jhex[r & 0xF]);
            i += w;
            start = i;
            continue;
        }
        i += w;
    }
    nc_buf_append(b, s + start, n - start);
    nc_buf_putc(b, '"');
}

static void newline(struct jenc *e)
{
    nc_buf_putc(e->out, '\n');
    for (int k = 0; k < e->depth; k++)
        nc_buf_puts(e->out, e->indent);
}

static int enc_fail(struct jenc *e, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int enc_fail(struct jenc *e, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->why, e->whylen, fmt, ap);
    va_end(ap);
    return -1;
}

static int enc_value(struct jenc *e, const struct tmpl_value *v)
{
    struct nc_buf *b = e->out;
    if (e->depth > JSON_MAX_DEPTH + 100)
        return enc_fail(e, "json: value nested too deeply");
    if (b->len - e->start > e->limit)
        return enc_fail(e, "the result is larger than %zu bytes", e->limit);
    switch (v->kind) {
    case TMPL_INVALID:
    case TMPL_NIL:
        nc_buf_puts(b, "null");
        return 0;
    case TMPL_BOOL:
        nc_buf_puts(b, v->b ? "true" : "false");
        return 0;
    case TMPL_INT:
        nc_buf_printf(b, "%lld", (long long)v->i);
        return 0;
    case TMPL_UINT:
        nc_buf_printf(b, "%llu", (unsigned long long)v->u);
        return 0;
    case TMPL_FLOAT: {
        double f = v->f;
        if (isnan(f) || isinf(f)) {
            struct nc_buf s = {0};
            tp_go_format_float(&s, f, 'g', -1);
            int rc = enc_fail(e, "json: unsupported value: %s", s.data);
            nc_buf_free(&s);
            return rc;
        }
        double abs = fabs(f);
        char fmt = 'f';
        if (abs != 0 && (abs < 1e-6 || abs >= 1e21))
            fmt = 'e';
        size_t at = b->len;
        tp_go_format_float(b, f, fmt, -1);
        if (fmt == 'e') {
            size_t n = b->len - at;
            char *p = b->data + at;
            if (n >= 4 && p[n - 4] == 'e' && p[n - 3] == '-' &&
                p[n - 2] == '0') {
                p[n - 2] = p[n - 1];
                b->len--;
                b->data[b->len] = 0;
            }
        }
        return 0;
    }
    case TMPL_STRING:
        enc_string(b, v->s, v->len);
        return 0;
    case TMPL_LIST:
        nc_buf_putc(b, '[');
        if (v->len == 0) {
            nc_buf_putc(b, ']');
            return 0;
        }
        e->depth++;
        for (size_t i = 0; i < v->len; i++) {
            if (i > 0)
                nc_buf_putc(b, ',');
            if (e->indent)
                newline(e);
            if (enc_value(e, &v->items[i]) < 0)
                return -1;
        }
        e->depth--;
        if (e->indent)
            newline(e);
        nc_buf_putc(b, ']');
        return 0;
    case TMPL_MAP:
        nc_buf_putc(b, '{');
        if (v->len == 0) {
            nc_buf_putc(b, '}');
            return 0;
        }
        e->depth++;
        for (size_t i = 0; i < v->len; i++) {
            if (i > 0)
                nc_buf_putc(b, ',');
            if (e->indent)
                newline(e);
            enc_string(b, v->entries[i].key, v->entries[i].klen);
            nc_buf_putc(b, ':');
            if (e->indent)
                nc_buf_putc(b, ' ');
            if (enc_value(e, &v->entries[i].value) < 0)
                return -1;
        }
        e->depth--;
        if (e->indent)
            newline(e);
        nc_buf_putc(b, '}');
        return 0;
    case TMPL_OBJECT:
        if (v->obj->type->to_json) {
            struct tmpl_value as;
            if (v->obj->type->to_json(v->obj->data, e->a, &as) == 0)
                return enc_value(e, &as);
        }
        return enc_fail(e, "json: unsupported type: %s", tmpl_type_name(v));
    case TMPL_STREAM:
        return enc_fail(e, "json: unsupported type: %s", tmpl_type_name(v));
    }
    return enc_fail(e, "json: unsupported value");
}

int tp_json_encode(struct nc_buf *out, struct tmpl_arena *a,
                   const struct tmpl_value *v, const char *indent, size_t limit,
                   char *why, size_t whylen)
{
    struct jenc e = {.out = out,
                     .a = a,
                     .indent = indent,
                     .limit = limit,
                     .start = out->len,
                     .why = why,
                     .whylen = whylen};
    if (!out->data)
        nc_buf_append(out, "", 0);
    return enc_value(&e, v);
}
