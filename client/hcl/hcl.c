/* hcl.c - see hcl.h. A single-pass recursive-descent parser over the
 * source bytes; the only allocations are the tree itself and the decoded
 * strings. What is done with a value afterwards is in hcl_value.c. */
#include "client/hcl/hcl.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HCL_MAX_DEPTH 64

struct parser {
    const char *src;
    size_t len, i;
    int line, col;
    const char *filename;
    struct nc_error *err;
    bool failed;
    int depth;
};

static struct hcl_pos here(const struct parser *p)
{
    return (struct hcl_pos){p->line, p->col};
}

static int peek_at(const struct parser *p, size_t off)
{
    return p->i + off < p->len ? (unsigned char)p->src[p->i + off] : -1;
}

static int peek(const struct parser *p) { return peek_at(p, 0); }

static void advance(struct parser *p)
{
    if (p->i >= p->len)
        return;
    if (p->src[p->i] == '\n') {
        p->line++;
        p->col = 1;
    } else {
        p->col++;
    }
    p->i++;
}

static int failf_at(struct parser *p, struct hcl_pos pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int failf_at(struct parser *p, struct hcl_pos pos, const char *fmt, ...)
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

#define failf(p, ...) failf_at(p, here(p), __VA_ARGS__)

/* Describes the character at the cursor for messages. */
static const char *describe(const struct parser *p, char *buf, size_t len)
{
    int c = peek(p);
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
static int skip_space(struct parser *p, bool newlines)
{
    for (;;) {
        int c = peek(p);
        if (c == ' ' || c == '\t' || c == '\r' || (newlines && c == '\n')) {
            advance(p);
        } else if (c == '#' || (c == '/' && peek_at(p, 1) == '/')) {
            while (peek(p) >= 0 && peek(p) != '\n')
                advance(p);
        } else if (c == '/' && peek_at(p, 1) == '*') {
            struct hcl_pos start = here(p);
            advance(p);
            advance(p);
            while (peek(p) >= 0 && !(peek(p) == '*' && peek_at(p, 1) == '/'))
                advance(p);
            if (peek(p) < 0)
                return failf_at(p, start, "unterminated comment");
            advance(p);
            advance(p);
        } else {
            return 0;
        }
    }
}

static bool is_ident_start(int c) { return c >= 0 && (isalpha(c) || c == '_'); }
static bool is_ident_char(int c)
{
    return c >= 0 && (isalnum(c) || c == '_' || c == '-');
}

static char *parse_ident(struct parser *p)
{
    size_t start = p->i;
    while (is_ident_char(peek(p)))
        advance(p);
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
static int copy_template(struct parser *p, struct nc_buf *b)
{
    struct hcl_pos start = here(p);
    int depth = 0;
    bool in_str = false;
    do {
        int c = peek(p);
        if (c < 0 || (c == '\n' && in_str))
            return failf_at(p, start, "unterminated template sequence");
        if (in_str) {
            if (c == '\\' && peek_at(p, 1) >= 0) {
                nc_buf_putc(b, (char)c);
                advance(p);
                c = peek(p);
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
        advance(p);
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
static char *parse_quoted(struct parser *p)
{
    struct hcl_pos start = here(p);
    advance(p);
    struct nc_buf b = {0};
    nc_buf_puts(&b, "");
    for (;;) {
        int c = peek(p);
        if (c < 0 || c == '\n') {
            failf_at(p, start, "unterminated string");
            goto fail;
        }
        if (c == '"') {
            advance(p);
            return nc_buf_take(&b);
        }
        if ((c == '$' || c == '%') && peek_at(p, 1) == '{') {
            if (copy_template(p, &b) < 0)
                goto fail;
            continue;
        }
        if ((c == '$' || c == '%') && peek_at(p, 1) == c && peek_at(p, 2) == '{') {
            /* $${ and %%{ are literal ${ and %{ */
            nc_buf_putc(&b, (char)c);
            nc_buf_putc(&b, '{');
            advance(p);
            advance(p);
            advance(p);
            continue;
        }
        if (c == '\\') {
            struct hcl_pos esc = here(p);
            advance(p);
            int e = peek(p);
            advance(p);
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
                    int h = hexval(peek(p));
                    if (h < 0) {
                        failf_at(p, esc, "invalid unicode escape: expected %d "
                                         "hex digits", digits);
                        goto fail;
                    }
                    cp = cp * 16 + (unsigned long)h;
                    advance(p);
                }
                if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) || cp == 0) {
                    failf_at(p, esc, "invalid unicode code point U+%04lX", cp);
                    goto fail;
                }
                put_utf8(&b, cp);
                break;
            }
            default:
                if (e >= 0x20 && e < 0x7f)
                    failf_at(p, esc, "invalid escape \"\\%c\"", e);
                else
                    failf_at(p, esc, "invalid escape sequence");
                goto fail;
            }
            continue;
        }
        nc_buf_putc(&b, (char)c);
        advance(p);
    }
fail:
    nc_buf_free(&b);
    return NULL;
}

/* <<EOF / <<-EOF at the cursor. */
static char *parse_heredoc(struct parser *p)
{
    struct hcl_pos start = here(p);
    advance(p);
    advance(p);
    bool strip = false;
    if (peek(p) == '-') {
        strip = true;
        advance(p);
    }
    if (!is_ident_start(peek(p))) {
        failf(p, "heredoc marker must be an identifier, as in <<EOF");
        return NULL;
    }
    char *tag = parse_ident(p);
    skip_space(p, false);
    if (peek(p) != '\n') {
        failf(p, "expected a newline after heredoc marker \"%s\"", tag);
        free(tag);
        return NULL;
    }
    advance(p);
    size_t taglen = strlen(tag);
    /* collect lines until one that is only the tag (maybe indented) */
    struct { size_t off, len; } *lines = NULL;
    size_t nlines = 0, cap = 0;
    bool closed = false;
    while (p->i < p->len) {
        size_t ls = p->i;
        while (peek(p) >= 0 && peek(p) != '\n')
            advance(p);
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
        advance(p); /* the newline */
    }
    if (!closed) {
        failf_at(p, start, "unterminated heredoc; expected \"%s\"", tag);
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

static struct hcl_value *new_value(enum hcl_kind k, struct hcl_pos pos)
{
    struct hcl_value *v = xcalloc(1, sizeof(*v));
    v->kind = k;
    v->pos = pos;
    return v;
}

static struct hcl_value *parse_value(struct parser *p, bool in_collection);

/* Scans a bare expression to its end: a newline (or , ] } ) at bracket
 * depth 0, keeping the source text. */
static struct hcl_value *parse_expr(struct parser *p, bool in_collection)
{
    struct hcl_pos start = here(p);
    size_t s = p->i;
    int depth = 0;
    for (;;) {
        int c = peek(p);
        if (c < 0)
            break;
        if (depth == 0 && (c == '\n' || c == '#' ||
                           (c == '/' && (peek_at(p, 1) == '/' || peek_at(p, 1) == '*'))))
            break;
        if (depth == 0 && in_collection && (c == ',' || c == ']' || c == '}'))
            break;
        if (depth == 0 && !in_collection && (c == ']' || c == '}' || c == ','))
            break;
        /* No expression holds a lone `=` outside brackets: `name =` starts
         * the next argument (`{ cpu = 500 memory = 256 }`), so the
         * expression ends before the name and the caller reports it. */
        if (depth == 0 && c == '=' && peek_at(p, 1) != '=' &&
            peek_at(p, 1) != '>' &&
            (p->i == s || !strchr("=!<>", p->src[p->i - 1]))) {
            size_t back = p->i;
            while (back > s && (p->src[back - 1] == ' ' || p->src[back - 1] == '\t'))
                back--;
            while (back > s && is_ident_char((unsigned char)p->src[back - 1]))
                back--;
            p->col -= (int)(p->i - back); /* same line: no newline at depth 0 */
            p->i = back;
            break;
        }
        if (c == '"') {
            char *tmp = parse_quoted(p);
            if (!tmp)
                return NULL;
            free(tmp);
            continue;
        }
        if (c == '(' || c == '[' || c == '{')
            depth++;
        else if (c == ')' || c == ']' || c == '}')
            depth--;
        if (depth < 0)
            break;
        if (depth > HCL_MAX_DEPTH) {
            failf(p, "nesting too deep");
            return NULL;
        }
        if (depth > 0 && c == '\n') {
            advance(p);
            continue;
        }
        advance(p);
    }
    if (depth > 0) {
        failf_at(p, start, "unterminated expression: missing closing bracket");
        return NULL;
    }
    size_t e = p->i;
    while (e > s && isspace((unsigned char)p->src[e - 1]))
        e--;
    if (e == s) {
        char buf[16];
        failf(p, "expected a value, found %s", describe(p, buf, sizeof(buf)));
        return NULL;
    }
    struct hcl_value *v = new_value(HCL_EXPR, start);
    v->str = xstrndup(p->src + s, e - s);
    return v;
}

static struct hcl_value *parse_number(struct parser *p, bool in_collection)
{
    struct hcl_pos start = here(p);
    size_t s = p->i;
    bool integer = true;
    if (peek(p) == '-')
        advance(p);
    while (peek(p) >= 0 && isdigit(peek(p)))
        advance(p);
    if (peek(p) == '.' && peek_at(p, 1) >= 0 && isdigit(peek_at(p, 1))) {
        integer = false;
        advance(p);
        while (peek(p) >= 0 && isdigit(peek(p)))
            advance(p);
    }
    if (peek(p) == 'e' || peek(p) == 'E') {
        integer = false;
        advance(p);
        if (peek(p) == '+' || peek(p) == '-')
            advance(p);
        if (peek(p) < 0 || !isdigit(peek(p))) {
            failf(p, "invalid number: exponent without digits");
            return NULL;
        }
        while (peek(p) >= 0 && isdigit(peek(p)))
            advance(p);
    }
    /* "1 + 2", "10 * var.x": an expression starting with a number */
    size_t save_i = p->i;
    int save_line = p->line, save_col = p->col;
    skip_space(p, false);
    int c = peek(p);
    bool ends = c < 0 || c == '\n' || c == ',' || c == ']' || c == '}' ||
                c == '#' || (c == '/' && (peek_at(p, 1) == '/' || peek_at(p, 1) == '*'));
    p->i = save_i;
    p->line = save_line;
    p->col = save_col;
    if (!ends) {
        p->i = s;
        p->line = start.line;
        p->col = start.col;
        return parse_expr(p, in_collection);
    }
    struct hcl_value *v = new_value(HCL_NUMBER, start);
    v->str = xstrndup(p->src + s, p->i - s);
    v->number = strtod(v->str, NULL);
    if (integer) {
        errno = 0;
        long long n = strtoll(v->str, NULL, 10);
        if (errno == 0) {
            v->is_integer = true;
            v->integer = n;
        }
    }
    return v;
}

static int expect_separator(struct parser *p, char close, bool *done)
{
    if (skip_space(p, true) < 0)
        return -EINVAL;
    if (peek(p) == ',') {
        advance(p);
        if (skip_space(p, true) < 0)
            return -EINVAL;
    }
    *done = peek(p) == close;
    return 0;
}

static struct hcl_value *parse_list(struct parser *p)
{
    struct hcl_value *v = new_value(HCL_LIST, here(p));
    struct hcl_pos open = here(p);
    size_t cap = 0;
    advance(p);
    if (skip_space(p, true) < 0)
        goto fail;
    while (peek(p) != ']') {
        if (peek(p) < 0) {
            failf_at(p, open, "missing closing \"]\" for list");
            goto fail;
        }
        struct hcl_value *item = parse_value(p, true);
        if (!item)
            goto fail;
        nc_grow((void **)&v->items, &cap, v->n + 1, sizeof(*v->items));
        v->items[v->n++] = item;
        size_t before = p->i;
        bool done;
        if (expect_separator(p, ']', &done) < 0)
            goto fail;
        if (!done && p->i == before) {
            char buf[16];
            failf(p, "expected \",\" or \"]\" in list, found %s",
                  describe(p, buf, sizeof(buf)));
            goto fail;
        }
    }
    advance(p);
    return v;
fail:
    hcl_value_free(v);
    return NULL;
}

static struct hcl_value *parse_object(struct parser *p)
{
    struct hcl_value *v = new_value(HCL_OBJECT, here(p));
    struct hcl_pos open = here(p);
    size_t cap = 0, kcap = 0, pcap = 0;
    advance(p);
    if (skip_space(p, true) < 0)
        goto fail;
    while (peek(p) != '}') {
        if (peek(p) < 0) {
            failf_at(p, open, "missing closing \"}\" for object");
            goto fail;
        }
        struct hcl_pos kpos = here(p);
        char *key;
        if (peek(p) == '"') {
            key = parse_quoted(p);
        } else if (is_ident_start(peek(p))) {
            key = parse_ident(p);
        } else {
            char buf[16];
            failf(p, "expected an object key, found %s",
                  describe(p, buf, sizeof(buf)));
            goto fail;
        }
        if (!key)
            goto fail;
        skip_space(p, false);
        if (peek(p) != '=' && peek(p) != ':') {
            char buf[16];
            failf(p, "expected \"=\" or \":\" after object key \"%s\", found %s",
                  key, describe(p, buf, sizeof(buf)));
            free(key);
            goto fail;
        }
        advance(p);
        struct hcl_value *item = parse_value(p, true);
        if (!item) {
            free(key);
            goto fail;
        }
        nc_grow((void **)&v->items, &cap, v->n + 1, sizeof(*v->items));
        nc_grow((void **)&v->keys, &kcap, v->n + 1, sizeof(*v->keys));
        nc_grow((void **)&v->key_pos, &pcap, v->n + 1, sizeof(*v->key_pos));
        v->items[v->n] = item;
        v->keys[v->n] = key;
        v->key_pos[v->n] = kpos;
        v->n++;
        size_t before = p->i;
        bool done;
        if (expect_separator(p, '}', &done) < 0)
            goto fail;
        if (!done && p->i == before) {
            char buf[16];
            failf(p, "expected \",\", a newline or \"}\" in object, found %s",
                  describe(p, buf, sizeof(buf)));
            goto fail;
        }
    }
    advance(p);
    return v;
fail:
    hcl_value_free(v);
    return NULL;
}

static struct hcl_value *parse_value(struct parser *p, bool in_collection)
{
    if (skip_space(p, false) < 0)
        return NULL;
    if (++p->depth > HCL_MAX_DEPTH) {
        failf(p, "nesting too deep");
        return NULL;
    }
    struct hcl_pos pos = here(p);
    int c = peek(p);
    struct hcl_value *v = NULL;
    if (c == '"') {
        char *s = parse_quoted(p);
        if (s) {
            v = new_value(HCL_STRING, pos);
            v->str = s;
        }
    } else if (c == '<' && peek_at(p, 1) == '<') {
        char *s = parse_heredoc(p);
        if (s) {
            v = new_value(HCL_STRING, pos);
            v->str = s;
        }
    } else if (c == '[') {
        v = parse_list(p);
    } else if (c == '{') {
        v = parse_object(p);
    } else if ((c >= 0 && isdigit(c)) ||
               (c == '-' && peek_at(p, 1) >= 0 && isdigit(peek_at(p, 1)))) {
        v = parse_number(p, in_collection);
    } else if (c < 0 || c == '\n') {
        failf(p, "expected a value, found %s", c < 0 ? "end of file" : "newline");
    } else {
        /* true / false / null, or an expression */
        size_t s = p->i;
        int line = p->line, col = p->col;
        if (is_ident_start(c)) {
            char *word = parse_ident(p);
            size_t save = p->i;
            int sl = p->line, sc = p->col;
            skip_space(p, false);
            int n = peek(p);
            bool ends = n < 0 || n == '\n' || n == ',' || n == ']' || n == '}' ||
                        n == '#' || (n == '/' && (peek_at(p, 1) == '/' || peek_at(p, 1) == '*'));
            p->i = save;
            p->line = sl;
            p->col = sc;
            if (ends && strcmp(word, "true") == 0) {
                v = new_value(HCL_BOOL, pos);
                v->boolean = true;
            } else if (ends && strcmp(word, "false") == 0) {
                v = new_value(HCL_BOOL, pos);
            } else if (ends && strcmp(word, "null") == 0) {
                v = new_value(HCL_NULL, pos);
            }
            free(word);
        }
        if (!v && !p->failed) {
            p->i = s;
            p->line = line;
            p->col = col;
            v = parse_expr(p, in_collection);
        }
    }
    p->depth--;
    return v;
}

static void body_free(struct hcl_body *b);

static void item_free(struct hcl_item *it)
{
    free(it->name);
    for (size_t i = 0; i < it->nlabels; i++)
        free(it->labels[i]);
    free(it->labels);
    hcl_value_free(it->value);
    body_free(it->body);
}

static void body_free(struct hcl_body *b)
{
    if (!b)
        return;
    for (size_t i = 0; i < b->n; i++)
        item_free(&b->items[i]);
    free(b->items);
    free(b);
}

/* Something other than `}` after the argument of a single-line block, at
 * the cursor: hcl/v2's words for it, pointing at the second argument
 * (past a comma, which is how object syntax would separate them). */
static void single_line_fail(struct parser *p, int c)
{
    const char *rule = "A single-line block definition must end with a "
                       "closing brace immediately after its single argument "
                       "definition.";
    if (c == ',') {
        rule = "Single-line block syntax can include only one argument "
               "definition. To define multiple arguments, use the "
               "multi-line block syntax with one argument definition per "
               "line.";
        struct hcl_pos comma = here(p);
        advance(p);
        if (skip_space(p, false) < 0)
            return;
        c = peek(p);
        if (c < 0 || c == '\n' || c == '}') {
            failf_at(p, comma, "Invalid single-argument block definition; %s",
                     rule);
            return;
        }
    }
    failf(p, "Invalid single-argument block definition; %s", rule);
}

/* A body: items until `}` (nested) or end of file (top level). */
static struct hcl_body *parse_body(struct parser *p, bool nested,
                                   struct hcl_pos open, const char *block)
{
    struct hcl_body *b = xcalloc(1, sizeof(*b));
    b->pos = open;
    size_t cap = 0;
    if (++p->depth > HCL_MAX_DEPTH) {
        failf(p, "nesting too deep");
        goto fail;
    }
    for (;;) {
        if (skip_space(p, true) < 0)
            goto fail;
        int c = peek(p);
        if (c < 0) {
            if (nested) {
                failf_at(p, open, "missing closing \"}\" for block \"%s\" "
                                  "opened here", block);
                goto fail;
            }
            break;
        }
        if (c == '}') {
            if (!nested) {
                failf(p, "unexpected \"}\"");
                goto fail;
            }
            advance(p);
            break;
        }
        struct hcl_item it = {0};
        it.pos = here(p);
        if (c == '"') {
            failf(p, "expected an attribute or block name, found a string");
            goto fail;
        }
        if (!is_ident_start(c)) {
            char buf[16];
            failf(p, "expected an attribute or block name, found %s",
                  describe(p, buf, sizeof(buf)));
            goto fail;
        }
        /* `name { arg = value }`: hcl/v2's single-line block, which holds
         * one argument and nothing else. */
        bool single_line = nested && b->n == 0 && it.pos.line == open.line;
        it.name = parse_ident(p);
        size_t lcap = 0;
        for (;;) {
            if (skip_space(p, false) < 0) {
                item_free(&it);
                goto fail;
            }
            c = peek(p);
            if (c == '"' || (is_ident_start(c) && it.nlabels + 1 > 0 && c != '=')) {
                char *label = c == '"' ? parse_quoted(p) : parse_ident(p);
                if (!label) {
                    item_free(&it);
                    goto fail;
                }
                nc_grow((void **)&it.labels, &lcap, it.nlabels + 1, sizeof(char *));
                it.labels[it.nlabels++] = label;
                continue;
            }
            break;
        }
        if (c == '=' && it.nlabels == 0) {
            advance(p);
            it.type = HCL_ATTRIBUTE;
            /* duplicates are reported by the decoders, which know the
             * path ("group \"g\": duplicate attribute ...") */
            it.value = parse_value(p, false);
            if (!it.value) {
                item_free(&it);
                goto fail;
            }
            if (skip_space(p, false) < 0) {
                item_free(&it);
                goto fail;
            }
            c = peek(p);
            if (c >= 0 && c != '\n' && !(c == '}' && nested)) {
                if (single_line)
                    single_line_fail(p, c);
                else {
                    char buf[16];
                    failf(p,
                          "expected a newline after attribute \"%s\", "
                          "found %s",
                          it.name, describe(p, buf, sizeof(buf)));
                }
                item_free(&it);
                goto fail;
            }
        } else if (c == '{') {
            struct hcl_pos bpos = here(p);
            advance(p);
            it.type = HCL_BLOCK;
            it.body = parse_body(p, true, bpos, it.name);
            if (!it.body) {
                item_free(&it);
                goto fail;
            }
        } else {
            char buf[16];
            if (it.nlabels)
                failf(p, "expected \"{\" to open block \"%s\", found %s",
                      it.name, describe(p, buf, sizeof(buf)));
            else
                failf(p, "expected \"=\" or \"{\" after \"%s\", found %s",
                      it.name, describe(p, buf, sizeof(buf)));
            item_free(&it);
            goto fail;
        }
        nc_grow((void **)&b->items, &cap, b->n + 1, sizeof(*b->items));
        b->items[b->n++] = it;
    }
    p->depth--;
    return b;
fail:
    body_free(b);
    return NULL;
}

/* NUL bytes and invalid UTF-8 are refused up front, with their position. */
static int check_encoding(struct parser *p)
{
    int line = 1, col = 1;
    for (size_t i = 0; i < p->len;) {
        unsigned char c = (unsigned char)p->src[i];
        size_t n = 1;
        if (c == 0)
            return failf_at(p, (struct hcl_pos){line, col},
                            "NUL byte in file");
        if (c >= 0x80) {
            if ((c & 0xe0) == 0xc0 && c >= 0xc2)
                n = 2;
            else if ((c & 0xf0) == 0xe0)
                n = 3;
            else if ((c & 0xf8) == 0xf0 && c <= 0xf4)
                n = 4;
            else
                n = 0;
            for (size_t k = 1; n && k < n; k++)
                if (i + k >= p->len || ((unsigned char)p->src[i + k] & 0xc0) != 0x80)
                    n = 0;
            if (!n)
                return failf_at(p, (struct hcl_pos){line, col},
                                "invalid UTF-8");
        }
        if (c == '\n') {
            line++;
            col = 1;
        } else {
            col += (int)n;
        }
        i += n;
    }
    return 0;
}

int hcl_parse(const char *filename, const char *src, size_t len,
              struct hcl_file **out, struct nc_error *err)
{
    *out = NULL;
    struct parser p = {.src = src, .len = len, .line = 1, .col = 1,
                       .filename = filename ? filename : "<input>", .err = err};
    if (len >= 3 && memcmp(src, "\xef\xbb\xbf", 3) == 0)
        p.i = 3; /* BOM */
    if (check_encoding(&p) < 0)
        return -EINVAL;
    struct hcl_body *b = parse_body(&p, false, (struct hcl_pos){1, 1}, NULL);
    if (!b)
        return -EINVAL;
    struct hcl_file *f = xcalloc(1, sizeof(*f));
    f->filename = xstrdup(p.filename);
    f->body = b;
    *out = f;
    return 0;
}

int hcl_parse_file(const char *path, struct hcl_file **out,
                   struct nc_error *err)
{
    size_t len;
    char *src = nc_read_file(path, &len, 16u << 20);
    if (!src) {
        *out = NULL;
        return nc_error_set(err, -errno, "%s: %s", path, strerror(errno));
    }
    int r = hcl_parse(path, src, len, out, err);
    free(src);
    return r;
}

void hcl_file_free(struct hcl_file *f)
{
    if (!f)
        return;
    free(f->filename);
    body_free(f->body);
    free(f);
}
