/* fmt.c - Go's fmt (print.go, format.go) on template values: Sprint,
 * Sprintln, Sprintf with Go's verbs, flags, widths, argument indexes and
 * its %!verb(type=value) complaints. */
#include <stdlib.h>
#include <string.h>

#include "client/template/internal.h"

#define FMT_MAX_DEPTH 10100

static const char ldigits[] = "0123456789abcdefx";
static const char udigits[] = "0123456789ABCDEFX";

struct pp {
    struct nc_buf *buf;
    size_t start, limit;
    bool over;
    /* fmtFlags */
    bool wid_present, prec_present, minus, plus, sharp, space, zero;
    bool plus_v, sharp_v;
    int wid, prec;
    /* what badVerb prints: the interface argument or the value */
    const struct tmpl_value *arg;
    const struct tmpl_value *value;
    bool erroring;
    bool reordered, good_arg_num;
};

static bool pp_full(struct pp *p)
{
    if (p->buf->len - p->start > p->limit)
        p->over = true;
    return p->over;
}

static void pp_write(struct pp *p, const char *s, size_t n)
{
    if (p->over)
        return;
    nc_buf_append(p->buf, s, n);
    pp_full(p);
}

static void pp_puts(struct pp *p, const char *s)
{
    pp_write(p, s, strlen(s));
}

static void pp_putc(struct pp *p, char c)
{
    pp_write(p, &c, 1);
}

static void clear_flags(struct pp *p)
{
    p->wid_present = p->prec_present = p->minus = p->plus = p->sharp =
        p->space = p->zero = p->plus_v = p->sharp_v = false;
    p->wid = p->prec = 0;
}

static void write_padding(struct pp *p, int n)
{
    if (n <= 0 || p->over)
        return;
    if ((size_t)n > p->limit) {
        p->over = true;
        return;
    }
    char pad = p->zero ? '0' : ' ';
    char chunk[64];
    memset(chunk, pad, sizeof chunk);
    while (n > 0) {
        int k = n < (int)sizeof chunk ? n : (int)sizeof chunk;
        pp_write(p, chunk, (size_t)k);
        n -= k;
    }
}

static void pad(struct pp *p, const char *s, size_t n)
{
    if (!p->wid_present || p->wid == 0) {
        pp_write(p, s, n);
        return;
    }
    int width = p->wid - (int)tp_utf8_count(s, n);
    if (!p->minus) {
        write_padding(p, width);
        pp_write(p, s, n);
    } else {
        pp_write(p, s, n);
        write_padding(p, width);
    }
}

static void fmt_boolean(struct pp *p, bool v)
{
    if (v)
        pad(p, "true", 4);
    else
        pad(p, "false", 5);
}

static void fmt_unicode(struct pp *p, uint64_t u)
{
    int prec = 4;
    if (p->prec_present && p->prec > 4)
        prec = p->prec;
    size_t size = (size_t)(2 + prec + 2 + 4 + 1) + 68;
    char *buf = xmalloc(size);
    size_t i = size;
    if (p->sharp && u <= RUNE_MAX && tp_uni_is_print((uint32_t)u)) {
        char enc[4];
        size_t w = tp_utf8_encode(enc, (uint32_t)u);
        buf[--i] = '\'';
        i -= w;
        memcpy(buf + i, enc, w);
        buf[--i] = '\'';
        buf[--i] = ' ';
    }
    while (u >= 16) {
        buf[--i] = udigits[u & 0xF];
        prec--;
        u >>= 4;
    }
    buf[--i] = udigits[u];
    prec--;
    while (prec > 0) {
        buf[--i] = '0';
        prec--;
    }
    buf[--i] = '+';
    buf[--i] = 'U';
    bool old_zero = p->zero;
    p->zero = false;
    pad(p, buf + i, size - i);
    p->zero = old_zero;
    free(buf);
}

static void fmt_integer(struct pp *p, uint64_t u, int base, bool is_signed,
                        int verb, const char *digits)
{
    bool negative = is_signed && (int64_t)u < 0;
    if (negative)
        u = 0 - u;
    size_t size = 68;
    if (p->wid_present || p->prec_present) {
        size_t width = 3 + (size_t)p->wid + (size_t)p->prec;
        if (width > size)
            size = width;
    }
    char small[68];
    char *buf = size <= sizeof small ? small : xmalloc(size);
    int prec = 0;
    if (p->prec_present) {
        prec = p->prec;
        if (prec == 0 && u == 0) {
            bool old_zero = p->zero;
            p->zero = false;
            write_padding(p, p->wid);
            p->zero = old_zero;
            if (buf != small)
                free(buf);
            return;
        }
    } else if (p->zero && p->wid_present) {
        prec = p->wid;
        if (negative || p->plus || p->space)
            prec--;
    }
    size_t i = size;
    switch (base) {
    case 10:
        while (u >= 10) {
            uint64_t next = u / 10;
            buf[--i] = (char)('0' + u - next * 10);
            u = next;
        }
        break;
    case 16:
        while (u >= 16) {
            buf[--i] = digits[u & 0xF];
            u >>= 4;
        }
        break;
    case 8:
        while (u >= 8) {
            buf[--i] = (char)('0' + (u & 7));
            u >>= 3;
        }
        break;
    case 2:
        while (u >= 2) {
            buf[--i] = (char)('0' + (u & 1));
            u >>= 1;
        }
        break;
    }
    buf[--i] = digits[u];
    while (i > 0 && prec > (int)(size - i))
        buf[--i] = '0';
    if (p->sharp) {
        switch (base) {
        case 2:
            buf[--i] = 'b';
            buf[--i] = '0';
            break;
        case 8:
            if (buf[i] != '0')
                buf[--i] = '0';
            break;
        case 16:
            buf[--i] = digits[16];
            buf[--i] = '0';
            break;
        }
    }
    if (verb == 'O') {
        buf[--i] = 'o';
        buf[--i] = '0';
    }
    if (negative)
        buf[--i] = '-';
    else if (p->plus)
        buf[--i] = '+';
    else if (p->space)
        buf[--i] = ' ';
    bool old_zero = p->zero;
    p->zero = false;
    pad(p, buf + i, size - i);
    p->zero = old_zero;
    if (buf != small)
        free(buf);
}

/* The prefix of s that precision allows (in runes). */
static size_t truncate_len(struct pp *p, const char *s, size_t n)
{
    if (!p->prec_present)
        return n;
    int left = p->prec;
    for (size_t i = 0; i < n;) {
        if (--left < 0)
            return i;
        size_t w = 1;
        if ((unsigned char)s[i] >= 0x80)
            tp_utf8_decode(s + i, n - i, &w);
        i += w;
    }
    return n;
}

static void fmt_s(struct pp *p, const char *s, size_t n)
{
    pad(p, s, truncate_len(p, s, n));
}

static void fmt_sx(struct pp *p, const char *s, size_t n, const char *digits)
{
    size_t length = n;
    if (p->prec_present && (size_t)p->prec < length)
        length = (size_t)p->prec;
    size_t width = 2 * length;
    if (width > 0) {
        if (p->space) {
            if (p->sharp)
                width *= 2;
            width += length - 1;
        } else if (p->sharp) {
            width += 2;
        }
    } else {
        if (p->wid_present)
            write_padding(p, p->wid);
        return;
    }
    if (p->wid_present && (size_t)p->wid > width && !p->minus)
        write_padding(p, p->wid - (int)width);
    if (p->sharp) {
        pp_putc(p, '0');
        pp_putc(p, digits[16]);
    }
    for (size_t i = 0; i < length && !p->over; i++) {
        if (p->space && i > 0) {
            pp_putc(p, ' ');
            if (p->sharp) {
                pp_putc(p, '0');
                pp_putc(p, digits[16]);
            }
        }
        unsigned char c = (unsigned char)s[i];
        char two[2] = {digits[c >> 4], digits[c & 0xF]};
        pp_write(p, two, 2);
    }
    if (p->wid_present && (size_t)p->wid > width && p->minus)
        write_padding(p, p->wid - (int)width);
}

static void fmt_q(struct pp *p, const char *s, size_t n)
{
    n = truncate_len(p, s, n);
    struct nc_buf q = {0};
    if (p->sharp && tp_go_can_backquote(s, n)) {
        nc_buf_putc(&q, '`');
        nc_buf_append(&q, s, n);
        nc_buf_putc(&q, '`');
    } else {
        tp_go_quote(&q, s, n, p->plus);
    }
    pad(p, q.data, q.len);
    nc_buf_free(&q);
}

static void fmt_c(struct pp *p, uint64_t c)
{
    uint32_t r = c > RUNE_MAX ? RUNE_ERROR : (uint32_t)c;
    char enc[4];
    pad(p, enc, tp_utf8_encode(enc, r));
}

static void fmt_qc(struct pp *p, uint64_t c)
{
    uint32_t r = c > RUNE_MAX ? RUNE_ERROR : (uint32_t)c;
    struct nc_buf q = {0};
    tp_go_quote_rune(&q, r, p->plus);
    pad(p, q.data, q.len);
    nc_buf_free(&q);
}

static void fmt_float_raw(struct pp *p, double v, char verb, int prec)
{
    if (p->prec_present)
        prec = p->prec;
    struct nc_buf nb = {0};
    nc_buf_putc(&nb, '+');
    tp_go_format_float(&nb, v, verb, prec);
    char *num = nb.data;
    size_t len = nb.len;
    if (num[1] == '-' || num[1] == '+') {
        num++;
        len--;
    } else {
        num[0] = '+';
    }
    if (p->space && num[0] == '+' && !p->plus)
        num[0] = ' ';
    if (num[1] == 'I' || num[1] == 'N') {
        bool old_zero = p->zero;
        p->zero = false;
        if (num[1] == 'N' && !p->space && !p->plus) {
            num++;
            len--;
        }
        pad(p, num, len);
        p->zero = old_zero;
        nc_buf_free(&nb);
        return;
    }
    struct nc_buf withtail = {0};
    if (p->sharp && verb != 'b') {
        int digits = 0;
        switch (verb) {
        case 'v':
        case 'g':
        case 'G':
        case 'x':
            digits = prec;
            if (digits == -1)
                digits = 6;
        }
        char tail[16];
        size_t tlen = 0;
        bool has_point = false, saw_nonzero = false;
        for (size_t i = 1; i < len; i++) {
            switch (num[i]) {
            case '.':
                has_point = true;
                continue;
            case 'p':
            case 'P':
                tlen = len - i < sizeof tail ? len - i : sizeof tail;
                memcpy(tail, num + i, tlen);
                len = i;
                break;
            case 'e':
            case 'E':
                if (verb != 'x' && verb != 'X') {
                    tlen = len - i < sizeof tail ? len - i : sizeof tail;
                    memcpy(tail, num + i, tlen);
                    len = i;
                    break;
                }
                /* fall through */
            default:
                if (num[i] != '0')
                    saw_nonzero = true;
                if (saw_nonzero)
                    digits--;
                continue;
            }
            break;
        }
        nc_buf_append(&withtail, num, len);
        if (!has_point) {
            if (len == 2 && num[1] == '0')
                digits--;
            nc_buf_putc(&withtail, '.');
        }
        for (; digits > 0; digits--)
            nc_buf_putc(&withtail, '0');
        nc_buf_append(&withtail, tail, tlen);
        num = withtail.data;
        len = withtail.len;
    }
    if (p->plus || num[0] != '+') {
        if (p->zero && p->wid_present && p->wid > (int)len) {
            pp_putc(p, num[0]);
            write_padding(p, p->wid - (int)len);
            pp_write(p, num + 1, len - 1);
        } else {
            pad(p, num, len);
        }
    } else {
        pad(p, num + 1, len - 1);
    }
    nc_buf_free(&withtail);
    nc_buf_free(&nb);
}

/* ---- print.go -------------------------------------------------------------
 */

static void print_arg(struct pp *p, const struct tmpl_value *arg, int verb);
static void print_value(struct pp *p, const struct tmpl_value *v, int verb,
                        int depth);

static void bad_verb(struct pp *p, int verb)
{
    p->erroring = true;
    char enc[4];
    pp_puts(p, "%!");
    pp_write(p, enc, tp_utf8_encode(enc, (uint32_t)verb));
    pp_putc(p, '(');
    if (p->arg) {
        const struct tmpl_value *a = p->arg;
        pp_puts(p, tmpl_type_name(a));
        pp_putc(p, '=');
        print_arg(p, a, 'v');
    } else if (p->value && p->value->kind != TMPL_INVALID) {
        const struct tmpl_value *v = p->value;
        pp_puts(p, tmpl_type_name(v));
        pp_putc(p, '=');
        print_value(p, v, 'v', 0);
    } else {
        pp_puts(p, "<nil>");
    }
    pp_putc(p, ')');
    p->erroring = false;
}

static void fmt_bool(struct pp *p, bool v, int verb)
{
    if (verb == 't' || verb == 'v')
        fmt_boolean(p, v);
    else
        bad_verb(p, verb);
}

static void fmt_0x64(struct pp *p, uint64_t v, bool leading0x)
{
    bool sharp = p->sharp;
    p->sharp = leading0x;
    fmt_integer(p, v, 16, false, 'v', ldigits);
    p->sharp = sharp;
}

static void fmt_int(struct pp *p, uint64_t v, bool is_signed, int verb)
{
    switch (verb) {
    case 'v':
        if (p->sharp_v && !is_signed)
            fmt_0x64(p, v, true);
        else
            fmt_integer(p, v, 10, is_signed, verb, ldigits);
        break;
    case 'd':
        fmt_integer(p, v, 10, is_signed, verb, ldigits);
        break;
    case 'b':
        fmt_integer(p, v, 2, is_signed, verb, ldigits);
        break;
    case 'o':
    case 'O':
        fmt_integer(p, v, 8, is_signed, verb, ldigits);
        break;
    case 'x':
        fmt_integer(p, v, 16, is_signed, verb, ldigits);
        break;
    case 'X':
        fmt_integer(p, v, 16, is_signed, verb, udigits);
        break;
    case 'c':
        fmt_c(p, v);
        break;
    case 'q':
        fmt_qc(p, v);
        break;
    case 'U':
        fmt_unicode(p, v);
        break;
    default:
        bad_verb(p, verb);
    }
}

static void fmt_float(struct pp *p, double v, int verb)
{
    switch (verb) {
    case 'v':
        fmt_float_raw(p, v, 'g', -1);
        break;
    case 'b':
    case 'g':
    case 'G':
    case 'x':
    case 'X':
        fmt_float_raw(p, v, (char)verb, -1);
        break;
    case 'f':
    case 'e':
    case 'E':
        fmt_float_raw(p, v, (char)verb, 6);
        break;
    case 'F':
        fmt_float_raw(p, v, 'f', 6);
        break;
    default:
        bad_verb(p, verb);
    }
}

static void fmt_string(struct pp *p, const char *s, size_t n, int verb)
{
    switch (verb) {
    case 'v':
        if (p->sharp_v)
            fmt_q(p, s, n);
        else
            fmt_s(p, s, n);
        break;
    case 's':
        fmt_s(p, s, n);
        break;
    case 'x':
        fmt_sx(p, s, n, ldigits);
        break;
    case 'X':
        fmt_sx(p, s, n, udigits);
        break;
    case 'q':
        fmt_q(p, s, n);
        break;
    default:
        bad_verb(p, verb);
    }
}

/* Go prints chans (and here lists or maps for %p) as their address. */
static void fmt_pointer(struct pp *p, const struct tmpl_value *v, int verb)
{
    uint64_t u = (uint64_t)(uintptr_t)(v->kind == TMPL_STREAM ? (const void *)v
                                                              : v->items);
    switch (verb) {
    case 'v':
        if (p->sharp_v) {
            pp_putc(p, '(');
            pp_puts(p, tmpl_type_name(v));
            pp_puts(p, ")(");
            fmt_0x64(p, u, true);
            pp_putc(p, ')');
        } else {
            fmt_0x64(p, u, !p->sharp);
        }
        break;
    case 'p':
        fmt_0x64(p, u, !p->sharp);
        break;
    case 'b':
    case 'o':
    case 'd':
    case 'x':
    case 'X':
        fmt_int(p, u, false, verb);
        break;
    default:
        bad_verb(p, verb);
    }
}

static void print_value(struct pp *p, const struct tmpl_value *v, int verb,
                        int depth)
{
    if (p->over)
        return;
    /* JSON gives at most 10000 levels; deeper is a value that contains
     * itself (built through the API): stop instead of recursing away */
    if (depth > FMT_MAX_DEPTH) {
        p->over = true;
        return;
    }
    p->arg = NULL;
    p->value = v;
    switch (v->kind) {
    case TMPL_INVALID:
        if (depth == 0)
            pp_puts(p, "<invalid reflect.Value>");
        else if (verb == 'v')
            pp_puts(p, "<nil>");
        else
            bad_verb(p, verb);
        break;
    case TMPL_NIL: /* an interface holding nil */
        if (p->sharp_v)
            pp_puts(p, "interface {}(nil)");
        else
            pp_puts(p, "<nil>");
        break;
    case TMPL_BOOL:
        fmt_bool(p, v->b, verb);
        break;
    case TMPL_INT:
        fmt_int(p, (uint64_t)v->i, true, verb);
        break;
    case TMPL_UINT:
        fmt_int(p, v->u, false, verb);
        break;
    case TMPL_FLOAT:
        fmt_float(p, v->f, verb);
        break;
    case TMPL_STRING:
        fmt_string(p, v->s, v->len, verb);
        break;
    case TMPL_MAP:
        if (p->sharp_v) {
            pp_puts(p, tmpl_type_name(v));
            pp_putc(p, '{');
        } else {
            pp_puts(p, "map[");
        }
        for (size_t i = 0; i < v->len && !p->over; i++) {
            if (i > 0) {
                if (p->sharp_v)
                    pp_puts(p, ", ");
                else
                    pp_putc(p, ' ');
            }
            struct tmpl_value key =
                tmpl_string_ref(v->entries[i].key, v->entries[i].klen);
            print_value(p, &key, verb, depth + 1);
            pp_putc(p, ':');
            print_value(p, &v->entries[i].value, verb, depth + 1);
        }
        pp_putc(p, p->sharp_v ? '}' : ']');
        break;
    case TMPL_LIST:
        if (p->sharp_v) {
            pp_puts(p, tmpl_type_name(v));
            pp_putc(p, '{');
            for (size_t i = 0; i < v->len && !p->over; i++) {
                if (i > 0)
                    pp_puts(p, ", ");
                print_value(p, &v->items[i], verb, depth + 1);
            }
            pp_putc(p, '}');
        } else {
            pp_putc(p, '[');
            for (size_t i = 0; i < v->len && !p->over; i++) {
                if (i > 0)
                    pp_putc(p, ' ');
                print_value(p, &v->items[i], verb, depth + 1);
            }
            pp_putc(p, ']');
        }
        break;
    case TMPL_OBJECT:
        if (v->obj->type->format) {
            struct nc_buf ob = {0};
            v->obj->type->format(v->obj->data, &ob);
            pp_write(p, ob.data ? ob.data : "", ob.len);
            nc_buf_free(&ob);
        } else {
            pp_puts(p, "&{}");
        }
        break;
    case TMPL_STREAM:
        fmt_pointer(p, v, verb);
        break;
    }
}

static bool is_nil_arg(const struct tmpl_value *a)
{
    return a->kind == TMPL_INVALID || a->kind == TMPL_NIL;
}

static void print_arg(struct pp *p, const struct tmpl_value *arg, int verb)
{
    p->arg = arg;
    p->value = NULL;
    if (is_nil_arg(arg)) {
        p->arg = NULL;
        if (verb == 'T' || verb == 'v')
            pad(p, "<nil>", 5);
        else
            bad_verb(p, verb);
        return;
    }
    if (verb == 'T') {
        const char *t = tmpl_type_name(arg);
        fmt_s(p, t, strlen(t));
        return;
    }
    if (verb == 'p') {
        if (arg->kind == TMPL_LIST || arg->kind == TMPL_MAP ||
            arg->kind == TMPL_STREAM)
            fmt_pointer(p, arg, 'p');
        else
            bad_verb(p, 'p');
        return;
    }
    switch (arg->kind) {
    case TMPL_BOOL:
        fmt_bool(p, arg->b, verb);
        break;
    case TMPL_FLOAT:
        fmt_float(p, arg->f, verb);
        break;
    case TMPL_INT:
        fmt_int(p, (uint64_t)arg->i, true, verb);
        break;
    case TMPL_UINT:
        fmt_int(p, arg->u, false, verb);
        break;
    case TMPL_STRING:
        fmt_string(p, arg->s, arg->len, verb);
        break;
    default:
        print_value(p, arg, verb, 0);
    }
}

static bool too_large(int x)
{
    return x > 1000000 || x < -1000000;
}

/* parsenum: the number at s[start..end), isnum, and where it stopped. */
static int parse_num(const char *s, size_t start, size_t end, bool *isnum,
                     size_t *newi)
{
    int num = 0;
    *isnum = false;
    if (start >= end) {
        *newi = end;
        return 0;
    }
    size_t i;
    for (i = start; i < end && s[i] >= '0' && s[i] <= '9'; i++) {
        if (too_large(num)) {
            *isnum = false;
            *newi = end;
            return 0;
        }
        num = num * 10 + (s[i] - '0');
        *isnum = true;
    }
    *newi = i;
    return num;
}

static int int_from_arg(const struct tmpl_value *a, size_t n, size_t *argnum,
                        bool *is_int)
{
    int num = 0;
    *is_int = false;
    if (*argnum < n) {
        const struct tmpl_value *v = &a[*argnum];
        if (v->kind == TMPL_INT) {
            *is_int = true;
            num = v->i > 1000001    ? 1000001
                  : v->i < -1000001 ? -1000001
                                    : (int)v->i;
        } else if (v->kind == TMPL_UINT && v->u <= INT64_MAX) {
            *is_int = true;
            num = v->u > 1000001 ? 1000001 : (int)v->u;
        }
        (*argnum)++;
        if (too_large(num)) {
            num = 0;
            *is_int = false;
        }
    }
    return num;
}

static bool parse_arg_number(const char *f, size_t flen, int *index,
                             size_t *wid)
{
    if (flen < 3) {
        *index = 0;
        *wid = 1;
        return false;
    }
    for (size_t i = 1; i < flen; i++) {
        if (f[i] == ']') {
            bool ok;
            size_t newi;
            int width = parse_num(f, 1, i, &ok, &newi);
            if (!ok || newi != i) {
                *index = 0;
                *wid = i + 1;
                return false;
            }
            *index = width - 1;
            *wid = i + 1;
            return true;
        }
    }
    *index = 0;
    *wid = 1;
    return false;
}

static size_t arg_number(struct pp *p, size_t argnum, const char *f,
                         size_t flen, size_t *i, size_t nargs, bool *found)
{
    *found = false;
    if (flen <= *i || f[*i] != '[')
        return argnum;
    p->reordered = true;
    int index;
    size_t wid;
    bool ok = parse_arg_number(f + *i, flen - *i, &index, &wid);
    if (ok && index >= 0 && (size_t)index < nargs) {
        *i += wid;
        *found = true;
        return (size_t)index;
    }
    p->good_arg_num = false;
    *i += wid;
    *found = ok;
    return argnum;
}

static void pp_init(struct pp *p, struct nc_buf *out, size_t limit)
{
    memset(p, 0, sizeof *p);
    p->buf = out;
    p->start = out->len;
    p->limit = limit;
    if (!out->data)
        nc_buf_append(out, "", 0);
}

int tp_gofmt_sprintf(struct nc_buf *out, const char *f, size_t end,
                     const struct tmpl_value *a, size_t nargs, size_t limit)
{
    struct pp pp, *p = &pp;
    pp_init(p, out, limit);
    size_t argnum = 0;
    bool after_index = false;
    p->reordered = false;
    for (size_t i = 0; i < end && !p->over;) {
        p->good_arg_num = true;
        size_t lasti = i;
        while (i < end && f[i] != '%')
            i++;
        if (i > lasti)
            pp_write(p, f + lasti, i - lasti);
        if (i >= end)
            break;
        i++;
        clear_flags(p);
        bool simple_done = false;
        for (; i < end; i++) {
            char c = f[i];
            if (c == '#') {
                p->sharp = true;
            } else if (c == '0') {
                p->zero = !p->minus;
            } else if (c == '+') {
                p->plus = true;
            } else if (c == '-') {
                p->minus = true;
                p->zero = false;
            } else if (c == ' ') {
                p->space = true;
            } else {
                if (c >= 'a' && c <= 'z' && argnum < nargs) {
                    if (c == 'v') {
                        p->sharp_v = p->sharp;
                        p->sharp = false;
                        p->plus_v = p->plus;
                        p->plus = false;
                    }
                    print_arg(p, &a[argnum], c);
                    argnum++;
                    i++;
                    simple_done = true;
                }
                break;
            }
        }
        if (simple_done)
            continue;

        argnum = arg_number(p, argnum, f, end, &i, nargs, &after_index);
        if (i < end && f[i] == '*') {
            i++;
            bool ok;
            p->wid = int_from_arg(a, nargs, &argnum, &ok);
            p->wid_present = ok;
            if (!ok)
                pp_puts(p, "%!(BADWIDTH)");
            if (p->wid < 0) {
                p->wid = -p->wid;
                p->minus = true;
                p->zero = false;
            }
            after_index = false;
        } else {
            bool ok;
            p->wid = parse_num(f, i, end, &ok, &i);
            p->wid_present = ok;
            if (after_index && p->wid_present)
                p->good_arg_num = false;
        }
        if (i + 1 < end && f[i] == '.') {
            i++;
            if (after_index)
                p->good_arg_num = false;
            argnum = arg_number(p, argnum, f, end, &i, nargs, &after_index);
            if (i < end && f[i] == '*') {
                i++;
                bool ok;
                p->prec = int_from_arg(a, nargs, &argnum, &ok);
                p->prec_present = ok;
                if (p->prec < 0) {
                    p->prec = 0;
                    p->prec_present = false;
                }
                if (!p->prec_present)
                    pp_puts(p, "%!(BADPREC)");
                after_index = false;
            } else {
                bool ok;
                p->prec = parse_num(f, i, end, &ok, &i);
                p->prec_present = ok;
                if (!p->prec_present) {
                    p->prec = 0;
                    p->prec_present = true;
                }
            }
        }
        if (!after_index)
            argnum = arg_number(p, argnum, f, end, &i, nargs, &after_index);
        if (i >= end) {
            pp_puts(p, "%!(NOVERB)");
            break;
        }
        size_t size = 1;
        uint32_t verb = (unsigned char)f[i];
        if (verb >= 0x80)
            verb = tp_utf8_decode(f + i, end - i, &size);
        i += size;
        if (verb == '%') {
            pp_putc(p, '%');
        } else if (!p->good_arg_num) {
            char enc[4];
            pp_puts(p, "%!");
            pp_write(p, enc, tp_utf8_encode(enc, verb));
            pp_puts(p, "(BADINDEX)");
        } else if (argnum >= nargs) {
            char enc[4];
            pp_puts(p, "%!");
            pp_write(p, enc, tp_utf8_encode(enc, verb));
            pp_puts(p, "(MISSING)");
        } else {
            if (verb == 'v') {
                p->sharp_v = p->sharp;
                p->sharp = false;
                p->plus_v = p->plus;
                p->plus = false;
            }
            print_arg(p, &a[argnum], (int)verb);
            argnum++;
        }
    }
    if (!p->reordered && argnum < nargs && !p->over) {
        clear_flags(p);
        pp_puts(p, "%!(EXTRA ");
        for (size_t k = argnum; k < nargs; k++) {
            if (k > argnum)
                pp_puts(p, ", ");
            if (is_nil_arg(&a[k])) {
                pp_puts(p, "<nil>");
            } else {
                pp_puts(p, tmpl_type_name(&a[k]));
                pp_putc(p, '=');
                print_arg(p, &a[k], 'v');
            }
        }
        pp_putc(p, ')');
    }
    return p->over ? -1 : 0;
}

int tp_gofmt_sprint(struct nc_buf *out, const struct tmpl_value *a, size_t n,
                    size_t limit)
{
    struct pp pp, *p = &pp;
    pp_init(p, out, limit);
    bool prev_string = false;
    for (size_t i = 0; i < n && !p->over; i++) {
        bool is_string = a[i].kind == TMPL_STRING;
        if (i > 0 && !is_string && !prev_string)
            pp_putc(p, ' ');
        clear_flags(p);
        print_arg(p, &a[i], 'v');
        prev_string = is_string;
    }
    return p->over ? -1 : 0;
}

int tp_gofmt_sprintln(struct nc_buf *out, const struct tmpl_value *a, size_t n,
                      size_t limit)
{
    struct pp pp, *p = &pp;
    pp_init(p, out, limit);
    for (size_t i = 0; i < n && !p->over; i++) {
        if (i > 0)
            pp_putc(p, ' ');
        clear_flags(p);
        print_arg(p, &a[i], 'v');
    }
    pp_putc(p, '\n');
    return p->over ? -1 : 0;
}

int tp_gofmt_value(struct nc_buf *out, const struct tmpl_value *v, int verb,
                   size_t limit)
{
    struct pp pp, *p = &pp;
    pp_init(p, out, limit);
    if (v->kind == TMPL_INVALID)
        print_value(p, v, verb, 0);
    else
        print_arg(p, v, verb);
    return p->over ? -1 : 0;
}
