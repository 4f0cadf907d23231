/* hcl/internal.h - what the parser (hcl.c) and its scanner (hcl_scan.c)
 * share; not a public API (that is hcl.h).
 *
 * There is no token stream: the parser walks the source bytes with the
 * cursor below and asks the scanner for the pieces that are lexical only
 * (blanks and comments, identifiers, quoted strings, heredocs). */
#ifndef NOMCLIENT_HCL_INTERNAL_H
#define NOMCLIENT_HCL_INTERNAL_H

#include <ctype.h>

#include "client/hcl/hcl.h"

/* Deepest nesting of blocks, values and brackets accepted. */
#define HCL_MAX_DEPTH 64

/* The cursor over the source and the first error. */
struct hcl_parser {
    const char *src;
    size_t len, i;
    int line, col;
    const char *filename;
    struct nc_error *err;
    bool failed;
    int depth;
};

/* The position of the cursor. */
static inline struct hcl_pos hcl_here(const struct hcl_parser *p)
{
    return (struct hcl_pos){p->line, p->col};
}

/* The byte off bytes past the cursor, -1 past the end. */
static inline int hcl_peek_at(const struct hcl_parser *p, size_t off)
{
    return p->i + off < p->len ? (unsigned char)p->src[p->i + off] : -1;
}

/* The byte at the cursor, -1 at the end. */
static inline int hcl_peek(const struct hcl_parser *p)
{
    return hcl_peek_at(p, 0);
}

/* Moves one byte on, counting lines and columns. */
static inline void hcl_advance(struct hcl_parser *p)
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

/* Sets "file:line:col: message" unless an error is already set; -EINVAL. */
int hcl_fail_at(struct hcl_parser *p, struct hcl_pos pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* hcl_fail_at at the cursor. */
#define hcl_fail(p, ...) hcl_fail_at(p, hcl_here(p), __VA_ARGS__)

/* Describes the character at the cursor for messages (in buf or static). */
const char *hcl_describe(const struct hcl_parser *p, char *buf, size_t len);
/* Skips blanks and comments; newlines too when `newlines`. */
int hcl_skip_space(struct hcl_parser *p, bool newlines);

/* Whether c may start, or continue, an identifier. */
static inline bool hcl_is_ident_start(int c)
{
    return c >= 0 && (isalpha(c) || c == '_');
}
static inline bool hcl_is_ident_char(int c)
{
    return c >= 0 && (isalnum(c) || c == '_' || c == '-');
}

/* The identifier at the cursor; caller frees. */
char *hcl_scan_ident(struct hcl_parser *p);
/* The quoted string at the cursor (on the opening quote), escapes decoded
 * and templates kept verbatim; caller frees; NULL after an error. */
char *hcl_scan_quoted(struct hcl_parser *p);
/* The heredoc (<<EOF or <<-EOF) at the cursor; caller frees; NULL after an
 * error. */
char *hcl_scan_heredoc(struct hcl_parser *p);

#endif
