/* regexp.c - Go's regexp (RE2 syntax) for regexMatch and regexReplaceAll:
 * the parser of regexp/syntax with its error texts, the compiler's
 * program shape, and the Pike VM of regexp/exec.go (leftmost-first, in time
 * linear in the input). POSIX regex.h would answer differently (leftmost-
 * longest, no \d \w \b (?i) (?P<n>), different classes), hence our own.
 *
 * Not supported (an error at compile): Unicode classes other than \pL /
 * \p{L} and \p{Nd} / \pN-less forms, and programs over 10000 instructions.
 * Case folding (?i) follows unicode.SimpleFold orbits. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/template/internal.h"

#define RE_MAX_INSTS 10000
#define RE_MAX_DEPTH 1000

enum {
    F_FOLD = 1,
    F_DOTNL = 2,
    F_ONELINE = 4,
    F_NONGREEDY = 8,
};

enum re_op {
    R_NOMATCH,
    R_EMPTY,
    R_CLASS, /* also literals: a class of one rune (or its fold orbit) */
    R_ANY,
    R_ANYNL,
    R_BOL,
    R_EOL,
    R_BOT,
    R_EOT,
    R_WORDB,
    R_NWORDB,
    R_CAT,
    R_ALT,
    R_STAR,
    R_PLUS,
    R_QUEST,
    R_REPEAT,
    R_CAPTURE,
    R_PSEUDO, /* below: stack markers */
    R_LPAREN,
    R_VBAR,
};

struct rnode {
    int op;
    int flags;
    uint32_t *ranges; /* lo, hi pairs, sorted, merged */
    size_t nranges;
    struct rnode **subs;
    size_t nsubs;
    int min, max;
    int cap;
    char *name;
};

struct rparser {
    const char *whole;
    size_t wlen;
    int flags;
    struct rnode **stack;
    size_t nstack, capstack;
    struct rnode **all; /* every node, for freeing */
    size_t nall, capall;
    int ncap;
    char **names; /* names[i] of capture i (NULL: unnamed) */
    size_t capnames;
    char *why;
    size_t whylen;
    int depth;
};

static struct rnode *new_node(struct rparser *p, int op)
{
    struct rnode *n = xcalloc(1, sizeof *n);
    n->op = op;
    n->flags = p->flags;
    nc_grow((void **)&p->all, &p->capall, p->nall + 1, sizeof *p->all);
    p->all[p->nall++] = n;
    return n;
}

static void push(struct rparser *p, struct rnode *n)
{
    nc_grow((void **)&p->stack, &p->capstack, p->nstack + 1, sizeof *p->stack);
    p->stack[p->nstack++] = n;
}

static int rerr(struct rparser *p, const char *code, const char *expr, size_t n)
{
    snprintf(p->why, p->whylen, "error parsing regexp: %s: `%.*s`", code,
             (int)(n > 400 ? 400 : n), expr);
    return -1;
}

/* ---- classes
 * ----------------------------------------------------------------- */

static void add_range(struct rnode *n, size_t *cap, uint32_t lo, uint32_t hi)
{
    if (n->nranges >= 2) {
        /* coalesce with the last range when adjacent or overlapping */
        uint32_t *last = &n->ranges[n->nranges - 2];
        if (lo <= last[1] + 1 && lo >= last[0]) {
            if (hi > last[1])
                last[1] = hi;
            return;
        }
    }
    nc_grow((void **)&n->ranges, cap, n->nranges + 2, sizeof *n->ranges);
    n->ranges[n->nranges++] = lo;
    n->ranges[n->nranges++] = hi;
}

static void add_folded_range(struct rnode *n, size_t *cap, uint32_t lo,
                             uint32_t hi)
{
    const uint32_t min_fold = 0x41, max_fold = 0x1e943;
    if (lo <= min_fold && hi >= max_fold) {
        add_range(n, cap, lo, hi);
        return;
    }
    if (hi < min_fold || lo > max_fold) {
        add_range(n, cap, lo, hi);
        return;
    }
    if (lo < min_fold) {
        add_range(n, cap, lo, min_fold - 1);
        lo = min_fold;
    }
    if (hi > max_fold) {
        add_range(n, cap, max_fold + 1, hi);
        hi = max_fold;
    }
    for (uint32_t c = lo; c <= hi; c++) {
        add_range(n, cap, c, c);
        for (uint32_t f = tp_uni_simple_fold(c); f != c;
             f = tp_uni_simple_fold(f))
            add_range(n, cap, f, f);
    }
}

static int range_cmp(const void *a, const void *b)
{
    const uint32_t *x = a, *y = b;
    if (x[0] != y[0])
        return x[0] < y[0] ? -1 : 1;
    return x[1] > y[1] ? -1 : x[1] < y[1];
}

static void clean_class(struct rnode *n)
{
    if (n->nranges < 4)
        return;
    qsort(n->ranges, n->nranges / 2, 2 * sizeof(uint32_t), range_cmp);
    size_t w = 2;
    for (size_t i = 2; i < n->nranges; i += 2) {
        uint32_t lo = n->ranges[i], hi = n->ranges[i + 1];
        if (lo <= n->ranges[w - 1] + 1) {
            if (hi > n->ranges[w - 1])
                n->ranges[w - 1] = hi;
            continue;
        }
        n->ranges[w++] = lo;
        n->ranges[w++] = hi;
    }
    n->nranges = w;
}

static void negate_class(struct rnode *n, size_t *cap)
{
    uint32_t *old = n->ranges;
    size_t nold = n->nranges;
    n->ranges = NULL;
    n->nranges = 0;
    *cap = 0;
    uint32_t next = 0;
    for (size_t i = 0; i < nold; i += 2) {
        if (old[i] > next)
            add_range(n, cap, next, old[i] - 1);
        next = old[i + 1] + 1;
    }
    if (next <= RUNE_MAX)
        add_range(n, cap, next, RUNE_MAX);
    free(old);
}

struct group {
    const char *name;
    const uint32_t *r;
    size_t n;
};

static const uint32_t g_digit[] = {0x30, 0x39};
static const uint32_t g_space[] = {0x9, 0xa, 0xc, 0xd, 0x20, 0x20};
static const uint32_t g_word[] = {0x30, 0x39, 0x41, 0x5a,
                                  0x5f, 0x5f, 0x61, 0x7a};
static const uint32_t g_alnum[] = {0x30, 0x39, 0x41, 0x5a, 0x61, 0x7a};
static const uint32_t g_alpha[] = {0x41, 0x5a, 0x61, 0x7a};
static const uint32_t g_ascii[] = {0x0, 0x7f};
static const uint32_t g_blank[] = {0x9, 0x9, 0x20, 0x20};
static const uint32_t g_cntrl[] = {0x0, 0x1f, 0x7f, 0x7f};
static const uint32_t g_graph[] = {0x21, 0x7e};
static const uint32_t g_lower[] = {0x61, 0x7a};
static const uint32_t g_print[] = {0x20, 0x7e};
static const uint32_t g_punct[] = {0x21, 0x2f, 0x3a, 0x40,
                                   0x5b, 0x60, 0x7b, 0x7e};
static const uint32_t g_pspace[] = {0x9, 0xd, 0x20, 0x20};
static const uint32_t g_upper[] = {0x41, 0x5a};
static const uint32_t g_xdigit[] = {0x30, 0x39, 0x41, 0x46, 0x61, 0x66};

#define G(n, t)                                                                \
    {                                                                          \
        n, t, NC_ARRAY_LEN(t)                                                  \
    }
static const struct group posix_groups[] = {
    G("alnum", g_alnum), G("alpha", g_alpha),   G("ascii", g_ascii),
    G("blank", g_blank), G("cntrl", g_cntrl),   G("digit", g_digit),
    G("graph", g_graph), G("lower", g_lower),   G("print", g_print),
    G("punct", g_punct), G("space", g_pspace),  G("upper", g_upper),
    G("word", g_word),   G("xdigit", g_xdigit),
};

/* Appends a group (negated when sign < 0), folded under (?i). */
static void append_group(struct rparser *p, struct rnode *cls, size_t *cap,
                         const uint32_t *r, size_t n, int sign)
{
    struct rnode tmp = {0};
    size_t tcap = 0;
    for (size_t i = 0; i < n; i += 2) {
        if (p->flags & F_FOLD)
            add_folded_range(&tmp, &tcap, r[i], r[i + 1]);
        else
            add_range(&tmp, &tcap, r[i], r[i + 1]);
    }
    clean_class(&tmp);
    if (sign < 0)
        negate_class(&tmp, &tcap);
    for (size_t i = 0; i < tmp.nranges; i += 2)
        add_range(cls, cap, tmp.ranges[i], tmp.ranges[i + 1]);
    free(tmp.ranges);
}

/* Unicode classes from the tables we have: L (letters) and Nd (digits). */
static bool unicode_group(struct rparser *p, struct rnode *cls, size_t *cap,
                          const char *name, size_t n, int sign)
{
    bool letter = n == 1 && name[0] == 'L';
    bool digit = n == 2 && name[0] == 'N' && name[1] == 'd';
    bool any = n == 3 && memcmp(name, "Any", 3) == 0;
    if (!letter && !digit && !any)
        return false;
    struct rnode tmp = {0};
    size_t tcap = 0;
    if (any) {
        add_range(&tmp, &tcap, 0, RUNE_MAX);
    } else {
        uint32_t lo = 0;
        bool in = false;
        for (uint32_t r = 0; r <= RUNE_MAX + 1; r++) {
            bool m = r <= RUNE_MAX &&
                     (letter ? tp_uni_is_letter(r) : tp_uni_is_digit(r));
            if (m && !in) {
                lo = r;
                in = true;
            } else if (!m && in) {
                add_range(&tmp, &tcap, lo, r - 1);
                in = false;
            }
            /* past the last letters and digits of the tables */
            if (!in && r > 0x323af)
                break;
        }
    }
    if (sign < 0)
        negate_class(&tmp, &tcap);
    for (size_t i = 0; i < tmp.nranges; i += 2)
        add_range(cls, cap, tmp.ranges[i], tmp.ranges[i + 1]);
    free(tmp.ranges);
    (void)p;
    return true;
}

/* ---- the parser (regexp/syntax/parse.go) ----------------------------------
 */

/* nextRune: a rune of the pattern; invalid UTF-8 is an error. */
static int next_rune(struct rparser *p, const char **t, const char *end,
                     uint32_t *r)
{
    size_t w;
    *r = tp_utf8_decode(*t, (size_t)(end - *t), &w);
    if (*r == RUNE_ERROR && w == 1)
        return rerr(p, "invalid UTF-8", *t, (size_t)(end - *t));
    *t += w;
    return 0;
}

static bool is_alnum_ascii(uint32_t c)
{
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') ||
           (c >= 'a' && c <= 'z');
}

static int unhex(uint32_t c)
{
    if (c >= '0' && c <= '9')
        return (int)(c - '0');
    if (c >= 'a' && c <= 'f')
        return (int)(c - 'a' + 10);
    if (c >= 'A' && c <= 'F')
        return (int)(c - 'A' + 10);
    return -1;
}

/* parseEscape: s at the backslash. */
static int parse_escape(struct rparser *p, const char *s, const char *end,
                        uint32_t *r, const char **rest)
{
    const char *t = s + 1;
    if (t >= end)
        return rerr(p, "trailing backslash at end of expression", "", 0);
    uint32_t c;
    if (next_rune(p, &t, end, &c) < 0)
        return -1;
    switch (c) {
    default:
        if (c < 0x80 && !is_alnum_ascii(c)) {
            *r = c;
            *rest = t;
            return 0;
        }
        break;
    case '1':
    case '2':
    case '3':
    case '4':
    case '5':
    case '6':
    case '7':
        if (t >= end || *t < '0' || *t > '7')
            break;
        /* fall through */
    case '0': {
        uint32_t v = c - '0';
        for (int i = 1; i < 3; i++) {
            if (t >= end || *t < '0' || *t > '7')
                break;
            v = v * 8 + (uint32_t)(*t - '0');
            t++;
        }
        *r = v;
        *rest = t;
        return 0;
    }
    case 'x': {
        if (t >= end)
            break;
        if (next_rune(p, &t, end, &c) < 0)
            return -1;
        if (c == '{') {
            int nhex = 0;
            uint32_t v = 0;
            bool bad = false;
            for (;;) {
                if (t >= end) {
                    bad = true;
                    break;
                }
                if (next_rune(p, &t, end, &c) < 0)
                    return -1;
                if (c == '}')
                    break;
                int h = unhex(c);
                if (h < 0) {
                    bad = true;
                    break;
                }
                v = v * 16 + (uint32_t)h;
                if (v > RUNE_MAX) {
                    bad = true;
                    break;
                }
                nhex++;
            }
            if (bad || nhex == 0)
                break;
            *r = v;
            *rest = t;
            return 0;
        }
        int x = unhex(c);
        uint32_t c2 = RUNE_ERROR;
        if (t < end && next_rune(p, &t, end, &c2) < 0)
            return -1;
        int y = unhex(c2);
        if (x < 0 || y < 0)
            break;
        *r = (uint32_t)(x * 16 + y);
        *rest = t;
        return 0;
    }
    case 'a':
        *r = '\a';
        *rest = t;
        return 0;
    case 'f':
        *r = '\f';
        *rest = t;
        return 0;
    case 'n':
        *r = '\n';
        *rest = t;
        return 0;
    case 'r':
        *r = '\r';
        *rest = t;
        return 0;
    case 't':
        *r = '\t';
        *rest = t;
        return 0;
    case 'v':
        *r = '\v';
        *rest = t;
        return 0;
    }
    return rerr(p, "invalid escape sequence", s, (size_t)(t - s));
}

static const uint32_t *perl_group(char c, int *sign, size_t *n)
{
    *sign = c >= 'a' ? 1 : -1;
    switch (c | 0x20) {
    case 'd':
        *n = NC_ARRAY_LEN(g_digit);
        return g_digit;
    case 's':
        *n = NC_ARRAY_LEN(g_space);
        return g_space;
    case 'w':
        *n = NC_ARRAY_LEN(g_word);
        return g_word;
    }
    return NULL;
}

/* \pL, \p{Name}: 1 parsed, 0 not a unicode class, -1 error. */
static int parse_unicode_class(struct rparser *p, struct rnode *cls,
                               size_t *cap, const char *s, const char *end,
                               const char **rest)
{
    if (end - s < 2 || s[0] != '\\' || (s[1] != 'p' && s[1] != 'P'))
        return 0;
    int sign = s[1] == 'P' ? -1 : 1;
    const char *t = s + 2;
    uint32_t c;
    if (t >= end) {
        c = RUNE_ERROR;
    } else if (next_rune(p, &t, end, &c) < 0) {
        return -1;
    }
    const char *name, *seq_end;
    size_t nlen;
    if (c != '{') {
        name = s + 2;
        nlen = (size_t)(t - name);
        seq_end = t;
    } else {
        const char *close = memchr(s, '}', (size_t)(end - s));
        if (!close)
            return rerr(p, "invalid character class range", s,
                        (size_t)(end - s));
        name = s + 3;
        nlen = (size_t)(close - name);
        seq_end = close + 1;
        t = seq_end;
    }
    if (nlen > 0 && name[0] == '^') {
        sign = -sign;
        name++;
        nlen--;
    }
    if (!unicode_group(p, cls, cap, name, nlen, sign))
        return rerr(p, "invalid character class range", s,
                    (size_t)(seq_end - s));
    *rest = t;
    return 1;
}

static int parse_class_char(struct rparser *p, const char *s, const char *end,
                            const char *whole, uint32_t *r, const char **rest)
{
    if (s >= end)
        return rerr(p, "missing closing ]", whole, (size_t)(end - whole));
    if (*s == '\\')
        return parse_escape(p, s, end, r, rest);
    *rest = s;
    return next_rune(p, rest, end, r);
}

static int parse_class(struct rparser *p, const char *s, const char *end,
                       const char **rest)
{
    const char *t = s + 1;
    struct rnode *re = new_node(p, R_CLASS);
    size_t cap = 0;
    int sign = 1;
    if (t < end && *t == '^') {
        sign = -1;
        t++;
    }
    bool first = true;
    while (t >= end || *t != ']' || first) {
        first = false;
        if (end - t > 2 && t[0] == '[' && t[1] == ':') {
            const char *close = NULL;
            for (const char *q = t + 2; q + 1 < end; q++)
                if (q[0] == ':' && q[1] == ']') {
                    close = q;
                    break;
                }
            if (close) {
                const char *nm = t + 2;
                size_t nlen = (size_t)(close - nm);
                int gsign = 1;
                if (nlen > 0 && nm[0] == '^') {
                    gsign = -1;
                    nm++;
                    nlen--;
                }
                const struct group *g = NULL;
                for (size_t i = 0; i < NC_ARRAY_LEN(posix_groups); i++)
                    if (strlen(posix_groups[i].name) == nlen &&
                        memcmp(posix_groups[i].name, nm, nlen) == 0)
                        g = &posix_groups[i];
                if (!g)
                    return rerr(p, "invalid character class range", t,
                                (size_t)(close + 2 - t));
                append_group(p, re, &cap, g->r, g->n, gsign);
                t = close + 2;
                continue;
            }
        }
        int u = parse_unicode_class(p, re, &cap, t, end, &t);
        if (u < 0)
            return -1;
        if (u > 0)
            continue;
        if (end - t >= 2 && t[0] == '\\') {
            int gsign;
            size_t gn;
            const uint32_t *g = perl_group(t[1], &gsign, &gn);
            if (g) {
                append_group(p, re, &cap, g, gn, gsign);
                t += 2;
                continue;
            }
        }
        const char *rng = t;
        uint32_t lo, hi;
        if (parse_class_char(p, t, end, s, &lo, &t) < 0)
            return -1;
        hi = lo;
        if (end - t >= 2 && t[0] == '-' && t[1] != ']') {
            t++;
            if (parse_class_char(p, t, end, s, &hi, &t) < 0)
                return -1;
            if (hi < lo)
                return rerr(p, "invalid character class range", rng,
                            (size_t)(t - rng));
        }
        if (p->flags & F_FOLD)
            add_folded_range(re, &cap, lo, hi);
        else
            add_range(re, &cap, lo, hi);
    }
    t++; /* ] */
    clean_class(re);
    if (sign < 0)
        negate_class(re, &cap);
    push(p, re);
    *rest = t;
    return 0;
}

static void literal(struct rparser *p, uint32_t r)
{
    struct rnode *re = new_node(p, R_CLASS);
    size_t cap = 0;
    if (p->flags & F_FOLD) {
        add_folded_range(re, &cap, r, r);
        clean_class(re);
    } else {
        add_range(re, &cap, r, r);
    }
    push(p, re);
}

static struct rnode *collapse(struct rparser *p, struct rnode **subs, size_t n,
                              int op)
{
    if (n == 1)
        return subs[0];
    struct rnode *re = new_node(p, op);
    re->subs = xmalloc(n * sizeof *re->subs);
    re->nsubs = n;
    memcpy(re->subs, subs, n * sizeof *subs);
    return re;
}

static void concat(struct rparser *p)
{
    size_t i = p->nstack;
    while (i > 0 && p->stack[i - 1]->op < R_PSEUDO)
        i--;
    size_t n = p->nstack - i;
    struct rnode *re =
        n == 0 ? new_node(p, R_EMPTY) : collapse(p, p->stack + i, n, R_CAT);
    p->nstack = i;
    push(p, re);
}

static void alternate(struct rparser *p)
{
    size_t i = p->nstack;
    while (i > 0 && p->stack[i - 1]->op != R_LPAREN)
        i--;
    struct rnode **subs = xmalloc((p->nstack - i + 1) * sizeof *subs);
    size_t n = 0;
    for (size_t k = i; k < p->nstack; k++)
        if (p->stack[k]->op != R_VBAR)
            subs[n++] = p->stack[k];
    p->nstack = i;
    push(p, n == 0 ? new_node(p, R_NOMATCH) : collapse(p, subs, n, R_ALT));
    free(subs);
}

static bool repeat_is_valid(const struct rnode *re, int n)
{
    if (re->op == R_REPEAT) {
        int m = re->max;
        if (m == 0)
            return true;
        if (m < 0)
            m = re->min;
        if (m > n)
            return false;
        if (m > 0)
            n /= m;
    }
    for (size_t i = 0; i < re->nsubs; i++)
        if (!repeat_is_valid(re->subs[i], n))
            return false;
    return true;
}

static int repeat(struct rparser *p, int op, int min, int max,
                  const char *before, const char **after, const char *end,
                  const char *last_repeat)
{
    int flags = p->flags;
    if (*after < end && **after == '?') {
        (*after)++;
        flags ^= F_NONGREEDY;
    }
    if (last_repeat)
        return rerr(p, "invalid nested repetition operator", last_repeat,
                    (size_t)(*after - last_repeat));
    if (p->nstack == 0 || p->stack[p->nstack - 1]->op >= R_PSEUDO)
        return rerr(p, "missing argument to repetition operator", before,
                    (size_t)(*after - before));
    struct rnode *sub = p->stack[p->nstack - 1];
    struct rnode *re = new_node(p, op);
    re->flags = flags;
    re->min = min;
    re->max = max;
    re->subs = xmalloc(sizeof *re->subs);
    re->subs[0] = sub;
    re->nsubs = 1;
    p->stack[p->nstack - 1] = re;
    if (op == R_REPEAT && (min >= 2 || max >= 2) && !repeat_is_valid(re, 1000))
        return rerr(p, "invalid repeat count", before,
                    (size_t)(*after - before));
    return 0;
}

/* {n}, {n,}, {n,m}: true with *rest past it; min -1 when too big. */
static bool parse_int(const char **s, const char *end, int *n)
{
    const char *t = *s;
    if (t >= end || *t < '0' || *t > '9')
        return false;
    if (end - t >= 2 && t[0] == '0' && t[1] >= '0' && t[1] <= '9')
        return false;
    int v = 0;
    for (; t < end && *t >= '0' && *t <= '9'; t++) {
        if (v >= 100000000)
            v = -1;
        if (v >= 0)
            v = v * 10 + (*t - '0');
    }
    *n = v;
    *s = t;
    return true;
}

static bool parse_repeat(const char *s, const char *end, int *min, int *max,
                         const char **rest)
{
    if (s >= end || *s != '{')
        return false;
    s++;
    if (!parse_int(&s, end, min))
        return false;
    if (s >= end)
        return false;
    if (*s != ',') {
        *max = *min;
    } else {
        s++;
        if (s >= end)
            return false;
        if (*s == '}') {
            *max = -1;
        } else {
            if (!parse_int(&s, end, max))
                return false;
            if (*max < 0)
                *min = -1;
        }
    }
    if (s >= end || *s != '}')
        return false;
    *rest = s + 1;
    return true;
}

static void set_name(struct rparser *p, int cap, const char *name, size_t n)
{
    nc_grow((void **)&p->names, &p->capnames, (size_t)cap + 1,
            sizeof *p->names);
    for (size_t i = 0; i <= (size_t)cap; i++)
        if (i >= (size_t)p->ncap)
            p->names[i] = NULL;
    p->names[cap] = name ? xstrndup(name, n) : NULL;
}

static struct rnode *open_paren(struct rparser *p, int cap, const char *name,
                                size_t nlen)
{
    if (++p->depth > RE_MAX_DEPTH)
        return NULL;
    struct rnode *re = new_node(p, R_LPAREN);
    re->cap = cap;
    if (cap) {
        set_name(p, cap, name, nlen);
        if (name)
            re->name = xstrndup(name, nlen);
    }
    push(p, re);
    return re;
}

static int parse_perl_flags(struct rparser *p, const char *s, const char *end,
                            const char **rest)
{
    const char *t = s;
    if (end - t > 4 && t[2] == 'P' && t[3] == '<') {
        const char *close = memchr(t, '>', (size_t)(end - t));
        if (!close) {
            if (!tp_utf8_valid(t, (size_t)(end - t)))
                return rerr(p, "invalid UTF-8", t, (size_t)(end - t));
            return rerr(p, "invalid named capture", s, (size_t)(end - s));
        }
        const char *name = t + 4;
        size_t nlen = (size_t)(close - name);
        if (!tp_utf8_valid(name, nlen))
            return rerr(p, "invalid UTF-8", name, nlen);
        bool ok = nlen > 0;
        for (size_t i = 0; i < nlen; i++)
            if (name[i] != '_' && !is_alnum_ascii((unsigned char)name[i]))
                ok = false;
        if (!ok)
            return rerr(p, "invalid named capture", t, (size_t)(close + 1 - t));
        p->ncap++;
        if (!open_paren(p, p->ncap, name, nlen))
            return rerr(p, "expression nests too deeply", p->whole, p->wlen);
        *rest = close + 1;
        return 0;
    }
    t += 2;
    int flags = p->flags;
    int sign = 1;
    bool saw = false;
    while (t < end) {
        uint32_t c;
        if (next_rune(p, &t, end, &c) < 0)
            return -1;
        switch (c) {
        case 'i':
            flags |= F_FOLD;
            saw = true;
            continue;
        case 'm':
            flags &= ~F_ONELINE;
            saw = true;
            continue;
        case 's':
            flags |= F_DOTNL;
            saw = true;
            continue;
        case 'U':
            flags |= F_NONGREEDY;
            saw = true;
            continue;
        case '-':
            if (sign < 0)
                break;
            sign = -1;
            flags = ~flags;
            saw = false;
            continue;
        case ':':
        case ')':
            if (sign < 0) {
                if (!saw)
                    break;
                flags = ~flags;
            }
            if (c == ':' && !open_paren(p, 0, NULL, 0))
                return rerr(p, "expression nests too deeply", p->whole,
                            p->wlen);
            p->flags = flags;
            *rest = t;
            return 0;
        }
        break;
    }
    return rerr(p, "invalid or unsupported Perl syntax", s, (size_t)(t - s));
}

static int parse_right_paren(struct rparser *p)
{
    concat(p);
    alternate(p);
    if (p->nstack < 2)
        return rerr(p, "unexpected )", p->whole, p->wlen);
    struct rnode *re1 = p->stack[p->nstack - 1];
    struct rnode *re2 = p->stack[p->nstack - 2];
    p->nstack -= 2;
    if (re2->op != R_LPAREN)
        return rerr(p, "unexpected )", p->whole, p->wlen);
    p->depth--;
    p->flags = re2->flags;
    if (re2->cap == 0) {
        push(p, re1);
    } else {
        re2->op = R_CAPTURE;
        re2->subs = xmalloc(sizeof *re2->subs);
        re2->subs[0] = re1;
        re2->nsubs = 1;
        push(p, re2);
    }
    return 0;
}

static struct rnode *parse(struct rparser *p, const char *s, size_t n)
{
    const char *t = s, *end = s + n;
    const char *last_repeat = NULL;
    p->flags = F_ONELINE;
    p->whole = s;
    p->wlen = n;
    while (t < end) {
        const char *rep = NULL;
        switch (*t) {
        default: {
            uint32_t c;
            if (next_rune(p, &t, end, &c) < 0)
                return NULL;
            literal(p, c);
            break;
        }
        case '(':
            if (end - t >= 2 && t[1] == '?') {
                if (parse_perl_flags(p, t, end, &t) < 0)
                    return NULL;
                break;
            }
            p->ncap++;
            if (!open_paren(p, p->ncap, NULL, 0)) {
                rerr(p, "expression nests too deeply", p->whole, p->wlen);
                return NULL;
            }
            t++;
            break;
        case '|':
            concat(p);
            push(p, new_node(p, R_VBAR));
            t++;
            break;
        case ')':
            if (parse_right_paren(p) < 0)
                return NULL;
            t++;
            break;
        case '^':
            push(p, new_node(p, p->flags & F_ONELINE ? R_BOT : R_BOL));
            t++;
            break;
        case '$':
            push(p, new_node(p, p->flags & F_ONELINE ? R_EOT : R_EOL));
            t++;
            break;
        case '.':
            push(p, new_node(p, p->flags & F_DOTNL ? R_ANY : R_ANYNL));
            t++;
            break;
        case '[':
            if (parse_class(p, t, end, &t) < 0)
                return NULL;
            break;
        case '*':
        case '+':
        case '?': {
            const char *before = t;
            int op = *t == '*' ? R_STAR : *t == '+' ? R_PLUS : R_QUEST;
            const char *after = t + 1;
            if (repeat(p, op, 0, 0, before, &after, end, last_repeat) < 0)
                return NULL;
            rep = before;
            t = after;
            break;
        }
        case '{': {
            const char *before = t, *after;
            int min, max;
            if (!parse_repeat(t, end, &min, &max, &after)) {
                literal(p, '{');
                t++;
                break;
            }
            if (min < 0 || min > 1000 || max > 1000 ||
                (max >= 0 && min > max)) {
                rerr(p, "invalid repeat count", before,
                     (size_t)(after - before));
                return NULL;
            }
            if (repeat(p, R_REPEAT, min, max, before, &after, end,
                       last_repeat) < 0)
                return NULL;
            rep = before;
            t = after;
            break;
        }
        case '\\': {
            if (end - t >= 2) {
                switch (t[1]) {
                case 'A':
                    push(p, new_node(p, R_BOT));
                    t += 2;
                    goto next;
                case 'b':
                    push(p, new_node(p, R_WORDB));
                    t += 2;
                    goto next;
                case 'B':
                    push(p, new_node(p, R_NWORDB));
                    t += 2;
                    goto next;
                case 'C':
                    rerr(p, "invalid escape sequence", t, 2);
                    return NULL;
                case 'Q': {
                    const char *lit = t + 2;
                    const char *e = NULL;
                    for (const char *q = lit; q + 1 < end; q++)
                        if (q[0] == '\\' && q[1] == 'E') {
                            e = q;
                            break;
                        }
                    const char *lend = e ? e : end;
                    while (lit < lend) {
                        uint32_t c;
                        if (next_rune(p, &lit, lend, &c) < 0)
                            return NULL;
                        literal(p, c);
                    }
                    t = e ? e + 2 : end;
                    goto next;
                }
                case 'z':
                    push(p, new_node(p, R_EOT));
                    t += 2;
                    goto next;
                }
            }
            struct rnode *cls = new_node(p, R_CLASS);
            size_t cap = 0;
            int u = parse_unicode_class(p, cls, &cap, t, end, &t);
            if (u < 0)
                return NULL;
            if (u > 0) {
                push(p, cls);
                goto next;
            }
            if (end - t >= 2) {
                int gsign;
                size_t gn;
                const uint32_t *g = perl_group(t[1], &gsign, &gn);
                if (g) {
                    append_group(p, cls, &cap, g, gn, gsign);
                    push(p, cls);
                    t += 2;
                    goto next;
                }
            }
            uint32_t c;
            if (parse_escape(p, t, end, &c, &t) < 0)
                return NULL;
            literal(p, c);
            break;
        }
        }
    next:
        last_repeat = rep;
    }
    concat(p);
    alternate(p);
    if (p->nstack != 1) {
        rerr(p, "missing closing )", s, n);
        return NULL;
    }
    return p->stack[0];
}

/* ---- the program (regexp/syntax/compile.go) --------------------------------
 */

enum {
    I_FAIL,
    I_MATCH,
    I_CLASS,
    I_ANY,
    I_ANYNL,
    I_ALT,
    I_NOP,
    I_SAVE,
    I_EMPTY,
};

enum {
    E_BOL = 1,
    E_EOL = 2,
    E_BOT = 4,
    E_EOT = 8,
    E_WORDB = 16,
    E_NWORDB = 32,
};

struct inst {
    uint8_t op;
    uint32_t out, arg; /* ALT: out preferred, arg second; SAVE/EMPTY: arg */
    const uint32_t *ranges;
    uint32_t nranges;
};

struct regex {
    struct inst *prog;
    size_t n, cap;
    uint32_t start;
    int ncap; /* capture groups, not counting the whole match */
    char **names;
    uint32_t **classes; /* owned range arrays */
    size_t nclasses, capclasses;
    bool too_big;
};

/* A fragment: its entry and the list of holes to patch (inst<<1 | which). */
struct frag {
    uint32_t i;
    uint32_t *holes;
    size_t nholes, capholes;
    bool nullable;
};

static uint32_t emit(struct regex *re, int op)
{
    if (re->n >= RE_MAX_INSTS) {
        re->too_big = true;
        return 0;
    }
    nc_grow((void **)&re->prog, &re->cap, re->n + 1, sizeof *re->prog);
    re->prog[re->n] = (struct inst){.op = (uint8_t)op};
    return (uint32_t)re->n++;
}

static void hole(struct frag *f, uint32_t h)
{
    nc_grow((void **)&f->holes, &f->capholes, f->nholes + 1, sizeof *f->holes);
    f->holes[f->nholes++] = h;
}

static void join_holes(struct frag *f, struct frag *g)
{
    for (size_t i = 0; i < g->nholes; i++)
        hole(f, g->holes[i]);
    free(g->holes);
    g->holes = NULL;
    g->nholes = g->capholes = 0;
}

static void patch(struct regex *re, struct frag *f, uint32_t to)
{
    for (size_t i = 0; i < f->nholes; i++) {
        uint32_t h = f->holes[i];
        if (h >> 1 >= re->n)
            continue;
        struct inst *in = &re->prog[h >> 1];
        if (h & 1)
            in->arg = to;
        else
            in->out = to;
    }
    free(f->holes);
    f->holes = NULL;
    f->nholes = f->capholes = 0;
}

static struct frag frag_inst(struct regex *re, int op)
{
    struct frag f = {.i = emit(re, op)};
    hole(&f, f.i << 1);
    return f;
}

static struct frag frag_nop(struct regex *re)
{
    struct frag f = frag_inst(re, I_NOP);
    f.nullable = true;
    return f;
}

static struct frag frag_fail(void);

static struct frag frag_cat(struct regex *re, struct frag a, struct frag b)
{
    if (a.i == 0 || b.i == 0) {
        free(a.holes);
        free(b.holes);
        return frag_fail();
    }
    patch(re, &a, b.i);
    b.i = a.i;
    b.nullable = a.nullable && b.nullable;
    return b;
}

static struct frag frag_alt(struct regex *re, struct frag a, struct frag b)
{
    if (a.i == 0) {
        free(a.holes);
        return b;
    }
    if (b.i == 0) {
        free(b.holes);
        return a;
    }
    struct frag f = {.i = emit(re, I_ALT)};
    if (!re->too_big) {
        re->prog[f.i].out = a.i;
        re->prog[f.i].arg = b.i;
    }
    join_holes(&f, &a);
    join_holes(&f, &b);
    f.nullable = a.nullable || b.nullable;
    return f;
}

static struct frag frag_quest(struct regex *re, struct frag a, bool nongreedy)
{
    struct frag f = {.i = emit(re, I_ALT)};
    if (!re->too_big) {
        if (nongreedy) {
            re->prog[f.i].arg = a.i;
            hole(&f, f.i << 1);
        } else {
            re->prog[f.i].out = a.i;
            hole(&f, f.i << 1 | 1);
        }
    }
    join_holes(&f, &a);
    f.nullable = true;
    return f;
}

static struct frag frag_loop(struct regex *re, struct frag a, bool nongreedy)
{
    struct frag f = {.i = emit(re, I_ALT)};
    if (!re->too_big) {
        if (nongreedy) {
            re->prog[f.i].arg = a.i;
            hole(&f, f.i << 1);
        } else {
            re->prog[f.i].out = a.i;
            hole(&f, f.i << 1 | 1);
        }
    }
    patch(re, &a, f.i);
    return f;
}

static struct frag frag_plus(struct regex *re, struct frag a, bool nongreedy)
{
    uint32_t entry = a.i;
    bool nullable = a.nullable;
    struct frag f = frag_loop(re, a, nongreedy);
    f.i = entry;
    f.nullable = nullable;
    return f;
}

static struct frag frag_star(struct regex *re, struct frag a, bool nongreedy)
{
    if (a.nullable)
        return frag_quest(re, frag_plus(re, a, nongreedy), nongreedy);
    struct frag f = frag_loop(re, a, nongreedy);
    f.nullable = true;
    return f;
}

static struct frag frag_empty(struct regex *re, uint32_t op)
{
    struct frag f = frag_inst(re, I_EMPTY);
    if (!re->too_big)
        re->prog[f.i].arg = op;
    f.nullable = true;
    return f;
}

static struct frag frag_fail(void)
{
    return (struct frag){.i = 0};
}

static struct frag compile_node(struct regex *re, const struct rnode *n);

static struct frag compile_repeat(struct regex *re, const struct rnode *n)
{
    const struct rnode *sub = n->subs[0];
    bool ng = n->flags & F_NONGREEDY;
    if (n->min == 0 && n->max == 0)
        return frag_nop(re);
    if (n->max == -1) {
        if (n->min == 0)
            return frag_star(re, compile_node(re, sub), ng);
        /* x{n,} is n-1 copies of x, then x+ */
        struct frag f = {0};
        bool have = false;
        for (int i = 0; i < n->min - 1 && !re->too_big; i++) {
            struct frag s = compile_node(re, sub);
            f = have ? frag_cat(re, f, s) : s;
            have = true;
        }
        struct frag plus = frag_plus(re, compile_node(re, sub), ng);
        return have ? frag_cat(re, f, plus) : plus;
    }
    if (n->min == 1 && n->max == 1)
        return compile_node(re, sub);
    struct frag prefix = {0};
    bool have = false;
    for (int i = 0; i < n->min && !re->too_big; i++) {
        struct frag s = compile_node(re, sub);
        prefix = have ? frag_cat(re, prefix, s) : s;
        have = true;
    }
    if (n->max > n->min) {
        /* (x(x(x)?)?)? built inside out: compile from the innermost */
        int k = n->max - n->min;
        struct frag *parts = xmalloc((size_t)k * sizeof *parts);
        for (int i = 0; i < k && !re->too_big; i++)
            parts[i] = compile_node(re, sub);
        if (re->too_big) {
            free(parts);
            return frag_fail();
        }
        struct frag suffix = frag_quest(re, parts[k - 1], ng);
        for (int i = k - 2; i >= 0; i--)
            suffix = frag_quest(re, frag_cat(re, parts[i], suffix), ng);
        free(parts);
        return have ? frag_cat(re, prefix, suffix) : suffix;
    }
    if (have)
        return prefix;
    return frag_fail();
}

static struct frag compile_node(struct regex *re, const struct rnode *n)
{
    if (re->too_big)
        return frag_fail();
    switch (n->op) {
    case R_NOMATCH:
        return frag_fail();
    case R_EMPTY:
        return frag_nop(re);
    case R_CLASS: {
        struct frag f = frag_inst(re, I_CLASS);
        if (!re->too_big) {
            re->prog[f.i].ranges = n->ranges;
            re->prog[f.i].nranges = (uint32_t)n->nranges;
        }
        return f;
    }
    case R_ANY:
        return frag_inst(re, I_ANY);
    case R_ANYNL:
        return frag_inst(re, I_ANYNL);
    case R_BOL:
        return frag_empty(re, E_BOL);
    case R_EOL:
        return frag_empty(re, E_EOL);
    case R_BOT:
        return frag_empty(re, E_BOT);
    case R_EOT:
        return frag_empty(re, E_EOT);
    case R_WORDB:
        return frag_empty(re, E_WORDB);
    case R_NWORDB:
        return frag_empty(re, E_NWORDB);
    case R_CAPTURE: {
        struct frag a = frag_inst(re, I_SAVE);
        if (!re->too_big)
            re->prog[a.i].arg = (uint32_t)(2 * n->cap);
        struct frag sub = compile_node(re, n->subs[0]);
        struct frag b = frag_inst(re, I_SAVE);
        if (!re->too_big)
            re->prog[b.i].arg = (uint32_t)(2 * n->cap + 1);
        return frag_cat(re, frag_cat(re, a, sub), b);
    }
    case R_STAR:
        return frag_star(re, compile_node(re, n->subs[0]),
                         n->flags & F_NONGREEDY);
    case R_PLUS:
        return frag_plus(re, compile_node(re, n->subs[0]),
                         n->flags & F_NONGREEDY);
    case R_QUEST:
        return frag_quest(re, compile_node(re, n->subs[0]),
                          n->flags & F_NONGREEDY);
    case R_REPEAT:
        return compile_repeat(re, n);
    case R_CAT: {
        struct frag f = compile_node(re, n->subs[0]);
        for (size_t i = 1; i < n->nsubs; i++)
            f = frag_cat(re, f, compile_node(re, n->subs[i]));
        return f;
    }
    case R_ALT: {
        struct frag f = compile_node(re, n->subs[n->nsubs - 1]);
        for (size_t i = n->nsubs - 1; i > 0; i--)
            f = frag_alt(re, compile_node(re, n->subs[i - 1]), f);
        return f;
    }
    }
    return frag_fail();
}

static void free_parser(struct rparser *p)
{
    for (size_t i = 0; i < p->nall; i++) {
        free(p->all[i]->subs);
        free(p->all[i]->name);
        /* ranges are kept by the program when compiled */
        free(p->all[i]);
    }
    free(p->all);
    free(p->stack);
}

struct regex *tp_regex_compile(const char *pattern, size_t n, char *why,
                               size_t whylen)
{
    struct rparser p = {.why = why, .whylen = whylen};
    struct rnode *root = parse(&p, pattern, n);
    struct regex *re = xcalloc(1, sizeof *re);
    re->ncap = p.ncap;
    re->names = xcalloc((size_t)p.ncap + 1, sizeof *re->names);
    for (int i = 1; i <= p.ncap && (size_t)i < p.capnames; i++)
        re->names[i] = p.names[i];
    free(p.names);
    /* the program points into the nodes' ranges: keep them all */
    for (size_t i = 0; i < p.nall; i++) {
        if (p.all[i]->ranges) {
            nc_grow((void **)&re->classes, &re->capclasses, re->nclasses + 1,
                    sizeof *re->classes);
            re->classes[re->nclasses++] = p.all[i]->ranges;
        }
    }
    if (!root) {
        free_parser(&p);
        tp_regex_free(re);
        return NULL;
    }
    emit(re, I_FAIL); /* pc 0 fails, as in Go */
    struct frag f = compile_node(re, root);
    struct frag m = frag_inst(re, I_MATCH);
    free(m.holes);
    patch(re, &f, m.i);
    re->start = f.i;
    free_parser(&p);
    if (re->too_big || re->n * 2 * ((size_t)re->ncap + 1) > ((size_t)4 << 20)) {
        snprintf(why, whylen,
                 "error parsing regexp: expression too large: `%.*s`",
                 (int)(n > 400 ? 400 : n), pattern);
        tp_regex_free(re);
        return NULL;
    }
    return re;
}

void tp_regex_free(struct regex *re)
{
    if (!re)
        return;
    for (size_t i = 0; i < re->nclasses; i++)
        free(re->classes[i]);
    free(re->classes);
    if (re->names)
        for (int i = 0; i <= re->ncap; i++)
            free(re->names[i]);
    free(re->names);
    free(re->prog);
    free(re);
}

/* ---- the machine (regexp/exec.go's NFA)
 * --------------------------------------- */

struct thread {
    uint32_t pc;
    ptrdiff_t *cap;
};

struct queue {
    uint32_t *sparse;
    struct thread *dense;
    size_t n;
};

struct machine {
    const struct regex *re;
    const char *s;
    size_t len;
    size_t ncap; /* slots: 2 * (groups + 1) */
    struct queue q0, q1;
    ptrdiff_t *pool; /* ncap slots per dense entry, both queues */
    ptrdiff_t *matchcap;
    bool matched;
};

static bool is_word(int32_t r)
{
    return r >= 0 && r < 0x80 && (is_alnum_ascii((uint32_t)r) || r == '_');
}

static uint32_t empty_context(int32_t r1, int32_t r2)
{
    uint32_t op = 0;
    bool b1 = is_word(r1), b2 = is_word(r2);
    if (r1 == '\n')
        op |= E_BOL;
    if (r1 < 0)
        op |= E_BOT | E_BOL;
    if (r2 == '\n')
        op |= E_EOL;
    if (r2 < 0)
        op |= E_EOT | E_EOL;
    op |= b1 != b2 ? E_WORDB : E_NWORDB;
    return op;
}

static int32_t rune_at(const struct machine *m, size_t pos, size_t *w)
{
    if (pos >= m->len) {
        *w = 0;
        return -1;
    }
    return (int32_t)tp_utf8_decode(m->s + pos, m->len - pos, w);
}

static int32_t rune_before(const struct machine *m, size_t pos)
{
    if (pos == 0)
        return -1;
    size_t w;
    return (int32_t)tp_utf8_decode_last(m->s, pos, &w);
}

static bool class_match(const struct inst *in, uint32_t r)
{
    size_t lo = 0, hi = in->nranges / 2;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (r < in->ranges[2 * mid])
            hi = mid;
        else if (r > in->ranges[2 * mid + 1])
            lo = mid + 1;
        else
            return true;
    }
    return false;
}

static ptrdiff_t *slot_caps(struct machine *m, struct queue *q, size_t j)
{
    size_t base = q == &m->q0 ? 0 : m->re->n;
    return m->pool + (base + j) * m->ncap;
}

static void add(struct machine *m, struct queue *q, uint32_t pc, size_t pos,
                ptrdiff_t *cap, uint32_t cond)
{
again:
    if (pc == 0)
        return;
    {
        uint32_t j = q->sparse[pc];
        if (j < q->n && q->dense[j].pc == pc)
            return;
    }
    size_t j = q->n++;
    q->dense[j].pc = pc;
    q->dense[j].cap = NULL;
    q->sparse[pc] = (uint32_t)j;
    const struct inst *in = &m->re->prog[pc];
    switch (in->op) {
    case I_FAIL:
        break;
    case I_ALT:
        add(m, q, in->out, pos, cap, cond);
        pc = in->arg;
        goto again;
    case I_EMPTY:
        if ((in->arg & ~cond) == 0) {
            pc = in->out;
            goto again;
        }
        break;
    case I_NOP:
        pc = in->out;
        goto again;
    case I_SAVE:
        if (in->arg < m->ncap) {
            ptrdiff_t old = cap[in->arg];
            cap[in->arg] = (ptrdiff_t)pos;
            add(m, q, in->out, pos, cap, cond);
            cap[in->arg] = old;
        } else {
            pc = in->out;
            goto again;
        }
        break;
    default: { /* MATCH and the rune instructions hold a thread */
        ptrdiff_t *tc = slot_caps(m, q, j);
        memcpy(tc, cap, m->ncap * sizeof *tc);
        q->dense[j].cap = tc;
        break;
    }
    }
}

static void step(struct machine *m, struct queue *runq, struct queue *nextq,
                 size_t pos, size_t next_pos, int32_t c, uint32_t next_cond)
{
    for (size_t j = 0; j < runq->n; j++) {
        struct thread *t = &runq->dense[j];
        if (!t->cap)
            continue;
        const struct inst *in = &m->re->prog[t->pc];
        bool ok = false;
        switch (in->op) {
        case I_MATCH:
            t->cap[1] = (ptrdiff_t)pos;
            memcpy(m->matchcap, t->cap, m->ncap * sizeof *m->matchcap);
            /* first-match mode: drop the lower-priority threads */
            runq->n = j + 1;
            m->matched = true;
            break;
        case I_CLASS:
            ok = c >= 0 && class_match(in, (uint32_t)c);
            break;
        case I_ANY:
            ok = c >= 0;
            break;
        case I_ANYNL:
            ok = c >= 0 && c != '\n';
            break;
        }
        if (ok)
            add(m, nextq, in->out, next_pos, t->cap, next_cond);
    }
    runq->n = 0;
}

/* Searches s[pos..] (with s[..pos] as context); fills caps. */
static bool machine_match(struct machine *m, size_t pos)
{
    m->matched = false;
    for (size_t i = 0; i < m->ncap; i++)
        m->matchcap[i] = -1;
    struct queue *runq = &m->q0, *nextq = &m->q1;
    runq->n = nextq->n = 0;
    size_t width, width1 = 0;
    int32_t r = rune_at(m, pos, &width), r1 = -1;
    if (r >= 0)
        r1 = rune_at(m, pos + width, &width1);
    uint32_t flag =
        pos == 0 ? empty_context(-1, r) : empty_context(rune_before(m, pos), r);
    ptrdiff_t *start_caps = xmalloc(m->ncap * sizeof *start_caps);
    for (;;) {
        if (runq->n == 0 && m->matched)
            break;
        if (!m->matched) {
            for (size_t i = 0; i < m->ncap; i++)
                start_caps[i] = -1;
            start_caps[0] = (ptrdiff_t)pos;
            add(m, runq, m->re->start, pos, start_caps, flag);
        }
        flag = empty_context(r, r1);
        step(m, runq, nextq, pos, pos + width, r, flag);
        if (width == 0)
            break;
        pos += width;
        r = r1;
        width = width1;
        if (r >= 0)
            r1 = rune_at(m, pos + width, &width1);
        else
            r1 = -1;
        struct queue *tmp = runq;
        runq = nextq;
        nextq = tmp;
    }
    free(start_caps);
    return m->matched;
}

static void machine_init(struct machine *m, const struct regex *re,
                         const char *s, size_t len)
{
    memset(m, 0, sizeof *m);
    m->re = re;
    m->s = s;
    m->len = len;
    m->ncap = 2 * ((size_t)re->ncap + 1);
    m->q0.sparse = xcalloc(re->n, sizeof(uint32_t));
    m->q1.sparse = xcalloc(re->n, sizeof(uint32_t));
    m->q0.dense = xcalloc(re->n, sizeof(struct thread));
    m->q1.dense = xcalloc(re->n, sizeof(struct thread));
    m->pool = xcalloc(2 * re->n * m->ncap, sizeof(ptrdiff_t));
    m->matchcap = xcalloc(m->ncap, sizeof(ptrdiff_t));
}

static void machine_free(struct machine *m)
{
    free(m->q0.sparse);
    free(m->q1.sparse);
    free(m->q0.dense);
    free(m->q1.dense);
    free(m->pool);
    free(m->matchcap);
}

size_t tp_regex_size(const struct regex *re)
{
    return re->n;
}

bool tp_regex_match(const struct regex *re, const char *s, size_t n)
{
    struct machine m;
    machine_init(&m, re, s, n);
    bool ok = machine_match(&m, 0);
    machine_free(&m);
    return ok;
}

/* Go's Regexp.expand for one match. */
static void expand(const struct regex *re, struct nc_buf *dst, const char *tpl,
                   size_t tn, const char *src, const ptrdiff_t *match,
                   size_t nmatch)
{
    while (tn > 0) {
        const char *dollar = memchr(tpl, '$', tn);
        if (!dollar)
            break;
        nc_buf_append(dst, tpl, (size_t)(dollar - tpl));
        tn -= (size_t)(dollar - tpl) + 1;
        tpl = dollar + 1;
        if (tn > 0 && *tpl == '$') {
            nc_buf_putc(dst, '$');
            tpl++;
            tn--;
            continue;
        }
        /* extract: name or {name} */
        const char *str = tpl;
        size_t sn = tn;
        bool brace = false;
        if (sn > 0 && *str == '{') {
            brace = true;
            str++;
            sn--;
        }
        size_t i = 0;
        while (i < sn) {
            size_t w;
            uint32_t r = tp_utf8_decode(str + i, sn - i, &w);
            if (!tp_uni_is_letter(r) && !tp_uni_is_digit(r) && r != '_')
                break;
            i += w;
        }
        bool ok = i > 0;
        const char *name = str;
        size_t nlen = i;
        if (ok && brace) {
            if (i >= sn || str[i] != '}')
                ok = false;
            else
                i++;
        }
        if (!ok) {
            nc_buf_putc(dst, '$');
            continue;
        }
        long num = 0;
        for (size_t k = 0; k < nlen; k++) {
            if (name[k] < '0' || name[k] > '9' || num >= 100000000) {
                num = -1;
                break;
            }
            num = num * 10 + (name[k] - '0');
        }
        if (name[0] == '0' && nlen > 1)
            num = -1;
        tpl = str + i;
        tn = sn - i;
        if (num >= 0) {
            if ((size_t)(2 * num + 1) < nmatch && match[2 * num] >= 0)
                nc_buf_append(dst, src + match[2 * num],
                              (size_t)(match[2 * num + 1] - match[2 * num]));
        } else {
            for (int g = 1; g <= re->ncap; g++) {
                const char *gn = re->names[g];
                if (gn && strlen(gn) == nlen && memcmp(gn, name, nlen) == 0 &&
                    (size_t)(2 * g + 1) < nmatch && match[2 * g] >= 0) {
                    nc_buf_append(dst, src + match[2 * g],
                                  (size_t)(match[2 * g + 1] - match[2 * g]));
                    break;
                }
            }
        }
    }
    nc_buf_append(dst, tpl, tn);
}

int tp_regex_replace_all(const struct regex *re, const char *src, size_t n,
                         const char *repl, size_t rn, struct nc_buf *out,
                         size_t limit)
{
    struct machine m;
    machine_init(&m, re, src, n);
    size_t start = out->len;
    size_t last_end = 0, search = 0;
    int rc = 0;
    if (!out->data)
        nc_buf_append(out, "", 0);
    while (search <= n) {
        if (!machine_match(&m, search))
            break;
        size_t a0 = (size_t)m.matchcap[0], a1 = (size_t)m.matchcap[1];
        nc_buf_append(out, src + last_end, a0 - last_end);
        if (a1 > last_end || a0 == 0)
            expand(re, out, repl, rn, src, m.matchcap, m.ncap);
        if (out->len - start > limit) {
            rc = -1;
            break;
        }
        last_end = a1;
        size_t width = 0;
        if (search < n)
            tp_utf8_decode(src + search, n - search, &width);
        if (search + width > a1)
            search += width;
        else if (search + 1 > a1)
            search++;
        else
            search = a1;
    }
    if (rc == 0)
        nc_buf_append(out, src + last_end, n - last_end);
    machine_free(&m);
    return rc;
}
