/* hcl.c - see hcl.h. A single-pass recursive-descent parser over the
 * source bytes; the only allocations are the tree itself and the decoded
 * strings. The lexical pieces (comments, identifiers, strings, heredocs)
 * are in hcl_scan.c; what is done with a value afterwards is in
 * hcl_value.c. */
#include "client/hcl/internal.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

static struct hcl_value *new_value(enum hcl_kind k, struct hcl_pos pos)
{
    struct hcl_value *v = xcalloc(1, sizeof(*v));
    v->kind = k;
    v->pos = pos;
    return v;
}

static struct hcl_value *parse_value(struct hcl_parser *p, bool in_collection);

/* Scans a bare expression to its end: a newline (or , ] } ) at bracket
 * depth 0, keeping the source text. */
static struct hcl_value *parse_expr(struct hcl_parser *p, bool in_collection)
{
    struct hcl_pos start = hcl_here(p);
    size_t s = p->i;
    int depth = 0;
    for (;;) {
        int c = hcl_peek(p);
        if (c < 0)
            break;
        if (depth == 0 && (c == '\n' || c == '#' ||
                           (c == '/' && (hcl_peek_at(p, 1) == '/' ||
                                         hcl_peek_at(p, 1) == '*'))))
            break;
        if (depth == 0 && in_collection && (c == ',' || c == ']' || c == '}'))
            break;
        if (depth == 0 && !in_collection && (c == ']' || c == '}' || c == ','))
            break;
        /* No expression holds a lone `=` outside brackets: `name =` starts
         * the next argument (`{ cpu = 500 memory = 256 }`), so the
         * expression ends before the name and the caller reports it. */
        if (depth == 0 && c == '=' && hcl_peek_at(p, 1) != '=' &&
            hcl_peek_at(p, 1) != '>' &&
            (p->i == s || !strchr("=!<>", p->src[p->i - 1]))) {
            size_t back = p->i;
            while (back > s &&
                   (p->src[back - 1] == ' ' || p->src[back - 1] == '\t'))
                back--;
            while (back > s &&
                   hcl_is_ident_char((unsigned char)p->src[back - 1]))
                back--;
            p->col -= (int)(p->i - back); /* same line: no newline at depth 0 */
            p->i = back;
            break;
        }
        if (c == '"') {
            char *tmp = hcl_scan_quoted(p);
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
            hcl_fail(p, "nesting too deep");
            return NULL;
        }
        if (depth > 0 && c == '\n') {
            hcl_advance(p);
            continue;
        }
        hcl_advance(p);
    }
    if (depth > 0) {
        hcl_fail_at(p, start,
                    "unterminated expression: missing closing bracket");
        return NULL;
    }
    size_t e = p->i;
    while (e > s && isspace((unsigned char)p->src[e - 1]))
        e--;
    if (e == s) {
        char buf[16];
        hcl_fail(p, "expected a value, found %s",
                 hcl_describe(p, buf, sizeof(buf)));
        return NULL;
    }
    struct hcl_value *v = new_value(HCL_EXPR, start);
    v->str = xstrndup(p->src + s, e - s);
    return v;
}

static struct hcl_value *parse_number(struct hcl_parser *p, bool in_collection)
{
    struct hcl_pos start = hcl_here(p);
    size_t s = p->i;
    bool integer = true;
    if (hcl_peek(p) == '-')
        hcl_advance(p);
    while (hcl_peek(p) >= 0 && isdigit(hcl_peek(p)))
        hcl_advance(p);
    if (hcl_peek(p) == '.' && hcl_peek_at(p, 1) >= 0 &&
        isdigit(hcl_peek_at(p, 1))) {
        integer = false;
        hcl_advance(p);
        while (hcl_peek(p) >= 0 && isdigit(hcl_peek(p)))
            hcl_advance(p);
    }
    if (hcl_peek(p) == 'e' || hcl_peek(p) == 'E') {
        integer = false;
        hcl_advance(p);
        if (hcl_peek(p) == '+' || hcl_peek(p) == '-')
            hcl_advance(p);
        if (hcl_peek(p) < 0 || !isdigit(hcl_peek(p))) {
            hcl_fail(p, "invalid number: exponent without digits");
            return NULL;
        }
        while (hcl_peek(p) >= 0 && isdigit(hcl_peek(p)))
            hcl_advance(p);
    }
    /* "1 + 2", "10 * var.x": an expression starting with a number */
    size_t save_i = p->i;
    int save_line = p->line, save_col = p->col;
    hcl_skip_space(p, false);
    int c = hcl_peek(p);
    bool ends =
        c < 0 || c == '\n' || c == ',' || c == ']' || c == '}' || c == '#' ||
        (c == '/' && (hcl_peek_at(p, 1) == '/' || hcl_peek_at(p, 1) == '*'));
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

static int expect_separator(struct hcl_parser *p, char close, bool *done)
{
    if (hcl_skip_space(p, true) < 0)
        return -EINVAL;
    if (hcl_peek(p) == ',') {
        hcl_advance(p);
        if (hcl_skip_space(p, true) < 0)
            return -EINVAL;
    }
    *done = hcl_peek(p) == close;
    return 0;
}

static struct hcl_value *parse_list(struct hcl_parser *p)
{
    struct hcl_value *v = new_value(HCL_LIST, hcl_here(p));
    struct hcl_pos open = hcl_here(p);
    size_t cap = 0;
    hcl_advance(p);
    if (hcl_skip_space(p, true) < 0)
        goto fail;
    while (hcl_peek(p) != ']') {
        if (hcl_peek(p) < 0) {
            hcl_fail_at(p, open, "missing closing \"]\" for list");
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
            hcl_fail(p, "expected \",\" or \"]\" in list, found %s",
                  hcl_describe(p, buf, sizeof(buf)));
            goto fail;
        }
    }
    hcl_advance(p);
    return v;
fail:
    hcl_value_free(v);
    return NULL;
}

static struct hcl_value *parse_object(struct hcl_parser *p)
{
    struct hcl_value *v = new_value(HCL_OBJECT, hcl_here(p));
    struct hcl_pos open = hcl_here(p);
    size_t cap = 0, kcap = 0, pcap = 0;
    hcl_advance(p);
    if (hcl_skip_space(p, true) < 0)
        goto fail;
    while (hcl_peek(p) != '}') {
        if (hcl_peek(p) < 0) {
            hcl_fail_at(p, open, "missing closing \"}\" for object");
            goto fail;
        }
        struct hcl_pos kpos = hcl_here(p);
        char *key;
        if (hcl_peek(p) == '"') {
            key = hcl_scan_quoted(p);
        } else if (hcl_is_ident_start(hcl_peek(p))) {
            key = hcl_scan_ident(p);
        } else {
            char buf[16];
            hcl_fail(p, "expected an object key, found %s",
                  hcl_describe(p, buf, sizeof(buf)));
            goto fail;
        }
        if (!key)
            goto fail;
        hcl_skip_space(p, false);
        if (hcl_peek(p) != '=' && hcl_peek(p) != ':') {
            char buf[16];
            hcl_fail(
                p, "expected \"=\" or \":\" after object key \"%s\", found %s",
                key, hcl_describe(p, buf, sizeof(buf)));
            free(key);
            goto fail;
        }
        hcl_advance(p);
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
            hcl_fail(p,
                     "expected \",\", a newline or \"}\" in object, found %s",
                     hcl_describe(p, buf, sizeof(buf)));
            goto fail;
        }
    }
    hcl_advance(p);
    return v;
fail:
    hcl_value_free(v);
    return NULL;
}

static struct hcl_value *parse_value(struct hcl_parser *p, bool in_collection)
{
    if (hcl_skip_space(p, false) < 0)
        return NULL;
    if (++p->depth > HCL_MAX_DEPTH) {
        hcl_fail(p, "nesting too deep");
        return NULL;
    }
    struct hcl_pos pos = hcl_here(p);
    int c = hcl_peek(p);
    struct hcl_value *v = NULL;
    if (c == '"') {
        char *s = hcl_scan_quoted(p);
        if (s) {
            v = new_value(HCL_STRING, pos);
            v->str = s;
        }
    } else if (c == '<' && hcl_peek_at(p, 1) == '<') {
        char *s = hcl_scan_heredoc(p);
        if (s) {
            v = new_value(HCL_STRING, pos);
            v->str = s;
        }
    } else if (c == '[') {
        v = parse_list(p);
    } else if (c == '{') {
        v = parse_object(p);
    } else if ((c >= 0 && isdigit(c)) || (c == '-' && hcl_peek_at(p, 1) >= 0 &&
                                          isdigit(hcl_peek_at(p, 1)))) {
        v = parse_number(p, in_collection);
    } else if (c < 0 || c == '\n') {
        hcl_fail(p, "expected a value, found %s",
                 c < 0 ? "end of file" : "newline");
    } else {
        /* true / false / null, or an expression */
        size_t s = p->i;
        int line = p->line, col = p->col;
        if (hcl_is_ident_start(c)) {
            char *word = hcl_scan_ident(p);
            size_t save = p->i;
            int sl = p->line, sc = p->col;
            hcl_skip_space(p, false);
            int n = hcl_peek(p);
            bool ends = n < 0 || n == '\n' || n == ',' || n == ']' ||
                        n == '}' || n == '#' ||
                        (n == '/' && (hcl_peek_at(p, 1) == '/' ||
                                      hcl_peek_at(p, 1) == '*'));
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
static void single_line_fail(struct hcl_parser *p, int c)
{
    const char *rule = "A single-line block definition must end with a "
                       "closing brace immediately after its single argument "
                       "definition.";
    if (c == ',') {
        rule = "Single-line block syntax can include only one argument "
               "definition. To define multiple arguments, use the "
               "multi-line block syntax with one argument definition per "
               "line.";
        struct hcl_pos comma = hcl_here(p);
        hcl_advance(p);
        if (hcl_skip_space(p, false) < 0)
            return;
        c = hcl_peek(p);
        if (c < 0 || c == '\n' || c == '}') {
            hcl_fail_at(p, comma,
                        "Invalid single-argument block definition; %s", rule);
            return;
        }
    }
    hcl_fail(p, "Invalid single-argument block definition; %s", rule);
}

/* A body: items until `}` (nested) or end of file (top level). */
static struct hcl_body *parse_body(struct hcl_parser *p, bool nested,
                                   struct hcl_pos open, const char *block)
{
    struct hcl_body *b = xcalloc(1, sizeof(*b));
    b->pos = open;
    size_t cap = 0;
    if (++p->depth > HCL_MAX_DEPTH) {
        hcl_fail(p, "nesting too deep");
        goto fail;
    }
    for (;;) {
        if (hcl_skip_space(p, true) < 0)
            goto fail;
        int c = hcl_peek(p);
        if (c < 0) {
            if (nested) {
                hcl_fail_at(p, open, "missing closing \"}\" for block \"%s\" "
                                  "opened here", block);
                goto fail;
            }
            break;
        }
        if (c == '}') {
            if (!nested) {
                hcl_fail(p, "unexpected \"}\"");
                goto fail;
            }
            hcl_advance(p);
            break;
        }
        struct hcl_item it = {0};
        it.pos = hcl_here(p);
        if (c == '"') {
            hcl_fail(p, "expected an attribute or block name, found a string");
            goto fail;
        }
        if (!hcl_is_ident_start(c)) {
            char buf[16];
            hcl_fail(p, "expected an attribute or block name, found %s",
                  hcl_describe(p, buf, sizeof(buf)));
            goto fail;
        }
        /* `name { arg = value }`: hcl/v2's single-line block, which holds
         * one argument and nothing else. */
        bool single_line = nested && b->n == 0 && it.pos.line == open.line;
        it.name = hcl_scan_ident(p);
        size_t lcap = 0;
        for (;;) {
            if (hcl_skip_space(p, false) < 0) {
                item_free(&it);
                goto fail;
            }
            c = hcl_peek(p);
            if (c == '"' ||
                (hcl_is_ident_start(c) && it.nlabels + 1 > 0 && c != '=')) {
                char *label = c == '"' ? hcl_scan_quoted(p) : hcl_scan_ident(p);
                if (!label) {
                    item_free(&it);
                    goto fail;
                }
                nc_grow((void **)&it.labels, &lcap, it.nlabels + 1,
                        sizeof(char *));
                it.labels[it.nlabels++] = label;
                continue;
            }
            break;
        }
        if (c == '=' && it.nlabels == 0) {
            hcl_advance(p);
            it.type = HCL_ATTRIBUTE;
            /* duplicates are reported by the decoders, which know the
             * path ("group \"g\": duplicate attribute ...") */
            it.value = parse_value(p, false);
            if (!it.value) {
                item_free(&it);
                goto fail;
            }
            if (hcl_skip_space(p, false) < 0) {
                item_free(&it);
                goto fail;
            }
            c = hcl_peek(p);
            if (c >= 0 && c != '\n' && !(c == '}' && nested)) {
                if (single_line)
                    single_line_fail(p, c);
                else {
                    char buf[16];
                    hcl_fail(p,
                          "expected a newline after attribute \"%s\", "
                          "found %s",
                          it.name, hcl_describe(p, buf, sizeof(buf)));
                }
                item_free(&it);
                goto fail;
            }
        } else if (c == '{') {
            struct hcl_pos bpos = hcl_here(p);
            hcl_advance(p);
            it.type = HCL_BLOCK;
            it.body = parse_body(p, true, bpos, it.name);
            if (!it.body) {
                item_free(&it);
                goto fail;
            }
        } else {
            char buf[16];
            if (it.nlabels)
                hcl_fail(p, "expected \"{\" to open block \"%s\", found %s",
                      it.name, hcl_describe(p, buf, sizeof(buf)));
            else
                hcl_fail(p, "expected \"=\" or \"{\" after \"%s\", found %s",
                      it.name, hcl_describe(p, buf, sizeof(buf)));
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
static int check_encoding(struct hcl_parser *p)
{
    int line = 1, col = 1;
    for (size_t i = 0; i < p->len;) {
        unsigned char c = (unsigned char)p->src[i];
        size_t n = 1;
        if (c == 0)
            return hcl_fail_at(p, (struct hcl_pos){line, col},
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
                if (i + k >= p->len ||
                    ((unsigned char)p->src[i + k] & 0xc0) != 0x80)
                    n = 0;
            if (!n)
                return hcl_fail_at(p, (struct hcl_pos){line, col},
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
    struct hcl_parser p = {.src = src, .len = len, .line = 1, .col = 1,
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
