/* placement_regexp.c - the regexp constraint operator: RE2 patterns
 * vetted, translated and matched with glibc's POSIX ERE. */
#include <ctype.h>
#include <errno.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/job/internal.h"

/* A regexp whose compiled form would exceed this many nodes (counting the
 * copies glibc makes for `+` and `{n,m}`) is refused: regcomp's time and
 * memory grow with it. RE2, which Nomad uses, has similar limits. */
#define REGEXP_MAX_NODES 20000
#define REGEXP_MAX_DEPTH 100   /* glibc's parser recurses per group */
/* glibc's matcher costs up to (value length x pattern size) and more on
 * state-explosive patterns; attribute values are short, so longer ones
 * are refused rather than searched. With the limits above one match
 * stays under ~0.1 s on the worst patterns measured. */
#define REGEXP_MAX_SUBJECT 2048
#define REGEXP_MAX_REPEAT 1000 /* RE2's "invalid repeat count" bound */
/* Loops over a sub-expression that can match "" (`(a*)*`, `(a|b?)+`):
 * with an anchor in the pattern glibc's regcomp time doubles with every
 * few of them (measured: 20 take ~1 s, 24 take ~26 s; 10 take ~2 ms). */
#define REGEXP_MAX_EMPTY_LOOPS 10

/* ---- regexp ----------------------------------------------------------------
 * Nomad compiles RE2 syntax with Go's regexp package and searches
 * (unanchored). Here glibc's POSIX ERE does the matching, after a pass that
 *   - refuses what would make regcomp slow or deep (back-references,
 *     which RE2 rejects too; huge or nested repeat counts; deep nesting);
 *   - translates the RE2 spellings most used in constraints: \d, \D,
 *     (?:...) groups, and a leading (?i);
 *   - wraps the result as ^.*(...): the same yes/no answer (an inner ^
 *     still only matches at 0), but glibc then scans the value once
 *     instead of restarting at every offset, which is quadratic. */

/* What the vetting pass knows about the group being read. Node counts
 * follow glibc's parse tree: `x+` is x x*, `x{n,m}` is m copies of x. */
struct re_frame {
    size_t size;         /* nodes so far, saturating */
    size_t loops;        /* loops over an expression that can match "" */
    bool branch_empty;   /* the current | branch can match "" so far */
    bool any_empty;      /* an earlier | branch can match "" */
    /* the last atom, which a repeat applies to */
    size_t last;         /* its nodes */
    size_t last_loops;   /* its nullable loops */
    bool last_empty;     /* it can match "" */
    bool before_empty;   /* the branch could match "" before it */
};

static size_t sat_add(size_t a, size_t b)
{
    return a + b > REGEXP_MAX_NODES ? REGEXP_MAX_NODES + 1 : a + b;
}

static size_t sat_mul(size_t a, size_t b)
{
    if (a == 0 || b == 0)
        return 0;
    return a > (REGEXP_MAX_NODES + 1) / b ? REGEXP_MAX_NODES + 1 : a * b;
}

static void re_frame_init(struct re_frame *f)
{
    *f = (struct re_frame){.branch_empty = true};
}

/* An atom: a character, a class, an anchor (which matches ""), a group. */
static void re_atom(struct re_frame *f, size_t nodes, bool empty,
                    size_t loops)
{
    f->size = sat_add(f->size, nodes);
    f->loops = sat_add(f->loops, loops);
    f->last = nodes;
    f->last_loops = loops;
    f->last_empty = empty;
    f->before_empty = f->branch_empty;
    f->branch_empty = f->branch_empty && empty;
}

/* Applies a repeat to the last atom: `copies` copies of it in all, the
 * last one looping when `loop`, all of them optional when `optional`. */
static void re_repeat(struct re_frame *f, size_t copies, bool loop,
                      bool optional)
{
    if (copies > 1) {
        f->size = sat_add(f->size, sat_mul(f->last, copies - 1));
        f->loops = sat_add(f->loops, sat_mul(f->last_loops, copies - 1));
        f->last = sat_mul(f->last, copies);
        f->last_loops = sat_mul(f->last_loops, copies);
    }
    f->size = sat_add(f->size, 1); /* the star or option node */
    f->last = sat_add(f->last, 1);
    if (loop && f->last_empty) {
        /* a loop over something that matches "": glibc's epsilon
         * closures grow exponentially with these when an anchor is
         * near, and the pattern is always anchored here */
        f->loops = sat_add(f->loops, 1);
        f->last_loops = sat_add(f->last_loops, 1);
    }
    if (optional)
        f->last_empty = true;
    f->branch_empty = f->before_empty && f->last_empty;
}

/* Parses "{n}", "{n,}" or "{n,m}" at p; returns its length or 0. */
static size_t re_interval(const char *p, long *lo, long *hi, bool *open)
{
    const char *q = p + 1;
    char *end;
    if (!isdigit((unsigned char)*q))
        return 0;
    *lo = strtol(q, &end, 10);
    *hi = *lo;
    *open = false;
    q = end;
    if (*q == ',') {
        q++;
        if (isdigit((unsigned char)*q)) {
            *hi = strtol(q, &end, 10);
            q = end;
        } else {
            *open = true;
        }
    }
    if (*q != '}')
        return 0;
    return (size_t)(q - p) + 1;
}

/* Copies a bracket expression starting at p[0] == '['; returns its length
 * (to the end of the string when unclosed: regcomp then reports it). */
static size_t re_bracket(const char *p)
{
    size_t i = 1;
    if (p[i] == '^')
        i++;
    if (p[i] == ']')
        i++;
    while (p[i] && p[i] != ']') {
        if (p[i] == '[' &&
            (p[i + 1] == ':' || p[i + 1] == '.' || p[i + 1] == '=')) {
            char kind = p[i + 1];
            const char *close = p + i + 2;
            while (*close && !(close[0] == kind && close[1] == ']'))
                close++;
            if (!*close)
                return strlen(p);
            i = (size_t)(close - p) + 2;
            continue;
        }
        i++;
    }
    return p[i] ? i + 1 : i;
}

static bool re_too_big(const struct re_frame *f, char **err)
{
    if (f->size > REGEXP_MAX_NODES) {
        *err = xasprintf("expression too large (over %d nodes after "
                         "expanding repeats)",
                         REGEXP_MAX_NODES);
        return true;
    }
    if (f->loops > REGEXP_MAX_EMPTY_LOOPS) {
        *err = xasprintf("expression too complex (more than %d repeats of "
                         "a part that can match nothing, like (a*)*)",
                         REGEXP_MAX_EMPTY_LOOPS);
        return true;
    }
    return false;
}

static int regexp_compile(const char *pattern, regex_t *re, char **err)
{
    int cflags = REG_EXTENDED | REG_NOSUB;
    const char *p = pattern;
    if (strncmp(p, "(?i)", 4) == 0) {
        cflags |= REG_ICASE;
        p += 4;
    }
    struct re_frame stack[REGEXP_MAX_DEPTH + 1];
    size_t depth = 0;
    re_frame_init(&stack[0]);
    struct nc_buf out = {0};
    nc_buf_puts(&out, "^.*(");
    while (*p) {
        struct re_frame *f = &stack[depth];
        char c = *p;
        if (c == '\\') {
            char e = p[1];
            if (e == '\0') {
                *err = xstrdup("trailing backslash at end of expression");
                goto fail;
            }
            if (e >= '1' && e <= '9') {
                *err = xasprintf("invalid escape sequence: `\\%c` "
                                 "(back-references are not supported)",
                                 e);
                goto fail;
            }
            if (e == 'd')
                nc_buf_puts(&out, "[0-9]");
            else if (e == 'D')
                nc_buf_puts(&out, "[^0-9]");
            else
                nc_buf_append(&out, p, 2);
            /* GNU's zero-width escapes: word boundaries, buffer ends */
            re_atom(f, 1, strchr("bB<>`'", e) != NULL, 0);
            p += 2;
        } else if (c == '[') {
            size_t n = re_bracket(p);
            nc_buf_append(&out, p, n);
            re_atom(f, 1, false, 0);
            p += n;
        } else if (c == '(') {
            if (depth == REGEXP_MAX_DEPTH) {
                *err = xasprintf("expression nests too deeply (more than "
                                 "%d groups)",
                                 REGEXP_MAX_DEPTH);
                goto fail;
            }
            nc_buf_putc(&out, '(');
            p += strncmp(p, "(?:", 3) == 0 ? 3 : 1;
            re_frame_init(&stack[++depth]);
        } else if (c == ')' && depth == 0) {
            /* RE2 refuses it too; letting it through would close the
             * group this function wraps the pattern in. */
            *err = xstrdup("unexpected )");
            goto fail;
        } else if (c == ')') {
            const struct re_frame *in = &stack[depth];
            depth--;
            re_atom(&stack[depth], sat_add(in->size, 1),
                    in->branch_empty || in->any_empty, in->loops);
            nc_buf_putc(&out, ')');
            p++;
        } else if (c == '{') {
            long lo, hi;
            bool open;
            size_t n = re_interval(p, &lo, &hi, &open);
            if (n && (lo > REGEXP_MAX_REPEAT || hi > REGEXP_MAX_REPEAT)) {
                *err = xasprintf("invalid repeat count: `%.*s`", (int)n, p);
                goto fail;
            }
            if (n)
                re_repeat(f, open ? (size_t)lo + 1 : (size_t)hi, open,
                          lo == 0);
            else
                re_atom(f, 1, false, 0);
            if (!n)
                n = 1;
            nc_buf_append(&out, p, n);
            p += n;
        } else if (c == '+' || c == '*' || c == '?') {
            re_repeat(f, c == '+' ? 2 : 1, c != '?', c != '+');
            nc_buf_putc(&out, c);
            p++;
        } else if (c == '|') {
            f->any_empty = f->any_empty || f->branch_empty;
            f->branch_empty = true;
            f->size = sat_add(f->size, 1);
            f->last = 0;
            f->last_loops = 0;
            f->last_empty = false;
            nc_buf_putc(&out, c);
            p++;
        } else {
            re_atom(f, 1, c == '^' || c == '$', 0);
            nc_buf_putc(&out, c);
            p++;
        }
        if (re_too_big(&stack[depth], err))
            goto fail;
    }
    /* Unclosed groups (regcomp will refuse them) still count. */
    while (depth > 0) {
        const struct re_frame *in = &stack[depth];
        depth--;
        re_atom(&stack[depth], in->size, true, in->loops);
    }
    if (re_too_big(&stack[0], err))
        goto fail;
    nc_buf_putc(&out, ')');
    int rc = regcomp(re, out.data, cflags);
    nc_buf_free(&out);
    if (rc != 0) {
        /* After a failed regcomp only regerror may use `re`; glibc has
         * already freed what it allocated. */
        char msg[256];
        regerror(rc, re, msg, sizeof(msg));
        *err = xstrdup(msg);
        return -EINVAL;
    }
    return 0;
fail:
    nc_buf_free(&out);
    return -EINVAL;
}

bool pl_regexp_check(const char *value, bool found, const char *pattern,
                     char **why)
{
    regex_t re;
    char *err = NULL;
    if (regexp_compile(pattern, &re, &err) < 0) {
        if (why)
            *why = xasprintf("Regular expression failed to compile: %s", err);
        free(err);
        return false;
    }
    size_t llen = strlen(value);
    if (found && llen > REGEXP_MAX_SUBJECT) {
        regfree(&re);
        if (why)
            *why = xasprintf("the value is %zu bytes long; regexp "
                             "constraints match at most %d",
                             llen, REGEXP_MAX_SUBJECT);
        return false;
    }
    bool ok = found && regexec(&re, value, 0, NULL, 0) == 0;
    regfree(&re);
    return ok;
}
