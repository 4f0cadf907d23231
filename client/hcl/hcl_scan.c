/* hcl_scan.c - the lexical side of the parser in hcl.c: blanks and
 * comments, identifiers, quoted strings (escapes, unicode, templates kept
 * verbatim) and heredocs, all read at the cursor of internal.h. */
#include "client/hcl/internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int hcl_fail_at(struct hcl_parser *p, struct hcl_pos pos, const char *fmt, ...)
{
    if (p->failed)
        return -EINVAL;
    p->failed = true;
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    nc_error_set(p->err, -EINVAL, "%s:%d:%d: %s", p->filename, pos.line,
                 pos.col, msg);
    return -EINVAL;
}

/* Describes the character at the cursor for messages. */
const char *hcl_describe(const struct hcl_parser *p, char *buf, size_t len)
{
    int c = hcl_peek(p);
    if (c < 0)
        return "end of file";
    if (c == '\n')
        return "newline";
    if (c >= 0x20 && c < 0x7f)
        snprintf(buf, len, "\"%c\"", c);
    else
        snprintf(buf, len, "byte 0x%02x", c);
    return buf;
}

/* Skips blanks and comments; newlines too when `newlines`. */
int hcl_skip_space(struct hcl_parser *p, bool newlines)
{
    for (;;) {
        int c = hcl_peek(p);
        if (c == ' ' || c == '\t' || c == '\r' || (newlines && c == '\n')) {
            hcl_advance(p);
        } else if (c == '#' || (c == '/' && hcl_peek_at(p, 1) == '/')) {
            while (hcl_peek(p) >= 0 && hcl_peek(p) != '\n')
                hcl_advance(p);
        } else if (c == '/' && hcl_peek_at(p, 1) == '*') {
            struct hcl_pos start = hcl_here(p);
            hcl_advance(p);
            hcl_advance(p);
            while (hcl_peek(p) >= 0 &&
                   !(hcl_peek(p) == '*' && hcl_peek_at(p, 1) == '/'))
                hcl_advance(p);
            if (hcl_peek(p) < 0)
                return hcl_fail_at(p, start, "unterminated comment");
            hcl_advance(p);
            hcl_advance(p);
        } else {
            return 0;
        }
    }
}

char *hcl_scan_ident(struct hcl_parser *p)
{
    size_t start = p->i;
    while (hcl_is_ident_char(hcl_peek(p)))
        hcl_advance(p);
    return xstrndup(p->src + start, p->i - start);
}

static void put_utf8(struct nc_buf *b, unsigned long cp)
{
    char out[4];
    size_t n;
    if (cp < 0x80) {
        out[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        out[0] = (char)(0xc0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3f));
        n = 2;
    } else if (cp < 0x10000) {
        out[0] = (char)(0xe0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        out[2] = (char)(0x80 | (cp & 0x3f));
        n = 3;
    } else {
        out[0] = (char)(0xf0 | (cp >> 18));
        out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
        out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
        out[3] = (char)(0x80 | (cp & 0x3f));
        n = 4;
    }
    nc_buf_append(b, out, n);
}

/* Copies a template sequence "${...}" / "%{...}" verbatim, matching braces
 * and skipping over quoted strings inside it. */
static int copy_template(struct hcl_parser *p, struct nc_buf *b)
{
    struct hcl_pos start = hcl_here(p);
    int depth = 0;
    bool in_str = false;
    do {
        int c = hcl_peek(p);
        if (c < 0 || (c == '\n' && in_str))
            return hcl_fail_at(p, start, "unterminated template sequence");
        if (in_str) {
            if (c == '\\' && hcl_peek_at(p, 1) >= 0) {
                nc_buf_putc(b, (char)c);
                hcl_advance(p);
                c = hcl_peek(p);
            } else if (c == '"') {
                in_str = false;
            }
        } else if (c == '"') {
            in_str = true;
        } else if (c == '{') {
            depth++;
        } else if (c == '}') {
            depth--;
        }
        nc_buf_putc(b, (char)c);
        hcl_advance(p);
    } while (depth > 0);
    return 0;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* A quoted string at the cursor (on the opening quote). */
char *hcl_scan_quoted(struct hcl_parser *p)
{
    struct hcl_pos start = hcl_here(p);
    hcl_advance(p);
    struct nc_buf b = {0};
    nc_buf_puts(&b, "");
    for (;;) {
        int c = hcl_peek(p);
        if (c < 0 || c == '\n') {
            hcl_fail_at(p, start, "unterminated string");
            goto fail;
        }
        if (c == '"') {
            hcl_advance(p);
            return nc_buf_take(&b);
        }
        if ((c == '$' || c == '%') && hcl_peek_at(p, 1) == '{') {
            if (copy_template(p, &b) < 0)
                goto fail;
            continue;
        }
        if ((c == '$' || c == '%') && hcl_peek_at(p, 1) == c &&
            hcl_peek_at(p, 2) == '{') {
            /* $${ and %%{ are literal ${ and %{ */
            nc_buf_putc(&b, (char)c);
            nc_buf_putc(&b, '{');
            hcl_advance(p);
            hcl_advance(p);
            hcl_advance(p);
            continue;
        }
        if (c == '\\') {
            struct hcl_pos esc = hcl_here(p);
            hcl_advance(p);
            int e = hcl_peek(p);
            hcl_advance(p);
            switch (e) {
            case 'n': nc_buf_putc(&b, '\n'); break;
            case 't': nc_buf_putc(&b, '\t'); break;
            case 'r': nc_buf_putc(&b, '\r'); break;
            case '"': nc_buf_putc(&b, '"'); break;
            case '\\': nc_buf_putc(&b, '\\'); break;
            case 'u':
            case 'U': {
                int digits = e == 'u' ? 4 : 8;
                unsigned long cp = 0;
                for (int k = 0; k < digits; k++) {
                    int h = hexval(hcl_peek(p));
                    if (h < 0) {
                        hcl_fail_at(p, esc,
                                    "invalid unicode escape: expected %d "
                                    "hex digits",
                                    digits);
                        goto fail;
                    }
                    cp = cp * 16 + (unsigned long)h;
                    hcl_advance(p);
                }
                if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) ||
                    cp == 0) {
                    hcl_fail_at(p, esc, "invalid unicode code point U+%04lX",
                                cp);
                    goto fail;
                }
                put_utf8(&b, cp);
                break;
            }
            default:
                if (e >= 0x20 && e < 0x7f)
                    hcl_fail_at(p, esc, "invalid escape \"\\%c\"", e);
                else
                    hcl_fail_at(p, esc, "invalid escape sequence");
                goto fail;
            }
            continue;
        }
        nc_buf_putc(&b, (char)c);
        hcl_advance(p);
    }
fail:
    nc_buf_free(&b);
    return NULL;
}

/* <<EOF / <<-EOF at the cursor. */
char *hcl_scan_heredoc(struct hcl_parser *p)
{
    struct hcl_pos start = hcl_here(p);
    hcl_advance(p);
    hcl_advance(p);
    bool strip = false;
    if (hcl_peek(p) == '-') {
        strip = true;
        hcl_advance(p);
    }
    if (!hcl_is_ident_start(hcl_peek(p))) {
        hcl_fail(p, "heredoc marker must be an identifier, as in <<EOF");
        return NULL;
    }
    char *tag = hcl_scan_ident(p);
    hcl_skip_space(p, false);
    if (hcl_peek(p) != '\n') {
        hcl_fail(p, "expected a newline after heredoc marker \"%s\"", tag);
        free(tag);
        return NULL;
    }
    hcl_advance(p);
    size_t taglen = strlen(tag);
    /* collect lines until one that is only the tag (maybe indented) */
    struct { size_t off, len; } *lines = NULL;
    size_t nlines = 0, cap = 0;
    bool closed = false;
    while (p->i < p->len) {
        size_t ls = p->i;
        while (hcl_peek(p) >= 0 && hcl_peek(p) != '\n')
            hcl_advance(p);
        size_t le = p->i;
        size_t t = ls;
        while (t < le && (p->src[t] == ' ' || p->src[t] == '\t'))
            t++;
        size_t te = le;
        if (te > t && p->src[te - 1] == '\r')
            te--;
        if (te - t == taglen && memcmp(p->src + t, tag, taglen) == 0) {
            closed = true;
            break;
        }
        nc_grow((void **)&lines, &cap, nlines + 1, sizeof(*lines));
        lines[nlines].off = ls;
        lines[nlines].len = le - ls;
        nlines++;
        hcl_advance(p); /* the newline */
    }
    if (!closed) {
        hcl_fail_at(p, start, "unterminated heredoc; expected \"%s\"", tag);
        free(tag);
        free(lines);
        return NULL;
    }
    free(tag);
    size_t indent = SIZE_MAX;
    if (strip) {
        for (size_t i = 0; i < nlines; i++) {
            size_t k = 0;
            const char *l = p->src + lines[i].off;
            while (k < lines[i].len && (l[k] == ' ' || l[k] == '\t'))
                k++;
            if (k == lines[i].len)
                continue; /* blank lines do not count */
            if (k < indent)
                indent = k;
        }
    }
    if (indent == SIZE_MAX)
        indent = 0;
    struct nc_buf b = {0};
    nc_buf_puts(&b, "");
    for (size_t i = 0; i < nlines; i++) {
        size_t skip = indent < lines[i].len ? indent : lines[i].len;
        if (!strip)
            skip = 0;
        nc_buf_append(&b, p->src + lines[i].off + skip, lines[i].len - skip);
        nc_buf_putc(&b, '\n');
    }
    free(lines);
    return nc_buf_take(&b);
}
