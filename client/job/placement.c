/* placement.c - see placement.h.
 *
 * Semantics follow Nomad's scheduler (scheduler/feasible/feasible.go,
 * propertyset.go, rank.go, nomad/structs) and hashicorp/go-version, so a
 * job that Nomad would place on a node like this one is placed here, and
 * one it would refuse is refused with the same words. Two deliberate
 * differences, both because there is exactly one node:
 *   - Nomad stops at the first failing feasibility check of a node; here
 *     every node-level check runs, so the user sees all reasons at once
 *     (a wrong meta value *and* a missing driver).
 *   - Counts are computed, not simulated allocation by allocation, so a
 *     hostile `count = 2000000000` costs the same as `count = 1`.
 *
 * Every input (job strings, node attributes) may be hostile: parsing is
 * linear, regexps are vetted before regcomp, and nothing here recurses on
 * input. */
#include "client/job/job.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Nomad's defaults: structs/network.go. */
#define PORT_LIMIT 65536 /* MaxValidPort: host ports are 1..65535 */
#define DYN_PORT_MIN 20000
#define DYN_PORT_MAX 32000

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

static const char *str_or_empty(const char *s)
{
    return s ? s : "";
}

/* ---- Go's %q, for names and constraints in messages ---------------------
 * Nomad prints them with %q; doing the same keeps the text identical and
 * neutralises control characters and bidi overrides in hostile strings. */

/* Decodes one strict UTF-8 sequence; returns its length, 0 if invalid. */
static size_t utf8_decode(const unsigned char *p, uint32_t *cp)
{
    uint32_t c;
    size_t n;
    if (p[0] >= 0xc2 && p[0] <= 0xdf) {
        c = p[0] & 0x1f;
        n = 2;
    } else if (p[0] >= 0xe0 && p[0] <= 0xef) {
        c = p[0] & 0x0f;
        n = 3;
    } else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
        c = p[0] & 0x07;
        n = 4;
    } else {
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80) /* also stops at the NUL */
            return 0;
        c = (c << 6) | (p[i] & 0x3f);
    }
    if ((n == 3 && c < 0x800) || (n == 4 && c < 0x10000) || c > 0x10ffff ||
        (c >= 0xd800 && c <= 0xdfff))
        return 0;
    *cp = c;
    return n;
}

/* The invisible and direction-changing code points Go's strconv.IsPrint
 * rejects that matter in a terminal; the rest of Unicode passes through. */
static bool rune_printable(uint32_t c)
{
    return !((c >= 0x80 && c <= 0xa0) || c == 0xad || c == 0x61c ||
             (c >= 0x2000 && c <= 0x200f && c != 0x2010) ||
             (c >= 0x2028 && c <= 0x202f) || (c >= 0x205f && c <= 0x206f) ||
             c == 0x3000 || c == 0xfeff || (c >= 0xfff9 && c <= 0xfffb));
}

static void go_quote(struct nc_buf *b, const char *s)
{
    const unsigned char *p = (const unsigned char *)str_or_empty(s);
    nc_buf_putc(b, '"');
    while (*p) {
        unsigned char c = *p;
        if (c < 0x80) {
            switch (c) {
            case '"': nc_buf_puts(b, "\\\""); break;
            case '\\': nc_buf_puts(b, "\\\\"); break;
            case '\a': nc_buf_puts(b, "\\a"); break;
            case '\b': nc_buf_puts(b, "\\b"); break;
            case '\f': nc_buf_puts(b, "\\f"); break;
            case '\n': nc_buf_puts(b, "\\n"); break;
            case '\r': nc_buf_puts(b, "\\r"); break;
            case '\t': nc_buf_puts(b, "\\t"); break;
            case '\v': nc_buf_puts(b, "\\v"); break;
            default:
                if (c < 0x20 || c == 0x7f)
                    nc_buf_printf(b, "\\x%02x", c);
                else
                    nc_buf_putc(b, (char)c);
            }
            p++;
            continue;
        }
        uint32_t cp;
        size_t n = utf8_decode(p, &cp);
        if (n == 0) {
            nc_buf_printf(b, "\\x%02x", c);
            p++;
        } else if (!rune_printable(cp)) {
            nc_buf_printf(b, cp < 0x10000 ? "\\u%04x" : "\\U%08x", cp);
            p += n;
        } else {
            nc_buf_append(b, (const char *)p, n);
            p += n;
        }
    }
    nc_buf_putc(b, '"');
}

/* Adds a reason line unless it is already there (the same constraint at
 * two levels is one line, as in Nomad's per-constraint map). */
static void reason_add(struct strlist *l, char *line)
{
    if (!strlist_contains(l, line))
        strlist_add(l, line);
    free(line);
}

/* `prefix "quoted" suffix` as a new string. */
static char *quoted_line(const char *prefix, const char *s, const char *suffix)
{
    struct nc_buf b = {0};
    nc_buf_puts(&b, prefix);
    go_quote(&b, s);
    nc_buf_puts(&b, suffix);
    return nc_buf_take(&b);
}

/* ---- targets ------------------------------------------------------------- */

static const char *kv_get_n(const struct kvlist *l, const char *key, size_t n)
{
    for (size_t i = 0; i < l->n; i++)
        if (strlen(l->items[i].key) == n &&
            memcmp(l->items[i].key, key, n) == 0)
            return str_or_empty(l->items[i].value);
    return NULL;
}

/* A node's pool as Nomad canonicalises it. */
static const char *node_pool_of(const struct node *node)
{
    return node->node_pool && *node->node_pool ? node->node_pool : "default";
}

/* Nomad's resolveTarget: the value (never NULL; "" when missing) and
 * whether it was found. Borrowed from the node or the target. */
static const char *resolve_target(const struct node *node, const char *target,
                                  bool *found)
{
    target = str_or_empty(target);
    *found = true;
    if (strncmp(target, "${", 2) != 0)
        return target;
    if (strcmp(target, "${node.unique.id}") == 0)
        return str_or_empty(node->id);
    if (strcmp(target, "${node.datacenter}") == 0)
        return str_or_empty(node->datacenter);
    if (strcmp(target, "${node.unique.name}") == 0)
        return str_or_empty(node->name);
    if (strcmp(target, "${node.class}") == 0)
        return str_or_empty(node->node_class);
    if (strcmp(target, "${node.pool}") == 0)
        return node_pool_of(node);
    /* Not in Nomad's list (its nodes have no region field), but asked for
     * and unambiguous. */
    if (strcmp(target, "${node.region}") == 0)
        return str_or_empty(node->region);

    const struct kvlist *list = NULL;
    size_t skip = 0;
    if (strncmp(target, "${attr.", 7) == 0) {
        list = &node->attributes;
        skip = 7;
    } else if (strncmp(target, "${meta.", 7) == 0) {
        list = &node->meta;
        skip = 7;
    }
    if (list) {
        /* strings.TrimSuffix(.., "}"): one brace, and none is fine too. */
        const char *key = target + skip;
        size_t n = strlen(key);
        if (n > 0 && key[n - 1] == '}')
            n--;
        const char *v = kv_get_n(list, key, n);
        if (v)
            return v;
    }
    *found = false;
    return "";
}

bool placement_resolve(const struct node *node, const char *target, char **out)
{
    bool found = false;
    const char *v = node ? resolve_target(node, target, &found) : "";
    *out = found ? xstrdup(v) : NULL;
    return found;
}

/* ---- Go's strconv, where Nomad's meaning depends on it ------------------- */

/* strconv.ParseUint(s, 10, 64): 0, or 1 for bad syntax, 2 for overflow. */
static int go_parse_uint64(const char *s, uint64_t *out)
{
    if (!*s)
        return 1;
    uint64_t v = 0;
    bool overflow = false;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return 1;
        unsigned d = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - d) / 10)
            overflow = true;
        else
            v = v * 10 + d;
    }
    if (overflow)
        return 2;
    *out = v;
    return 0;
}

/* strconv.ParseInt(s[0:n], 10, 64). */
static bool go_parse_int64_n(const char *s, size_t n, int64_t *out)
{
    bool neg = false;
    if (n > 0 && (s[0] == '+' || s[0] == '-')) {
        neg = s[0] == '-';
        s++;
        n--;
    }
    if (n == 0)
        return false;
    uint64_t v = 0, limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (limit - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return true;
}

/* strconv.ParseFloat(s, 64) acceptance: decimal or hexadecimal (with a
 * `p` exponent) literals, `_` between digits, inf/infinity/nan in any
 * case; out of range is an error. strtod does the arithmetic. */
static bool go_parse_float(const char *s, double *out)
{
    const char *p = s;
    bool sign = false;
    if (*p == '+' || *p == '-') {
        p++;
        sign = true;
    }
    if (strcasecmp(p, "inf") == 0 || strcasecmp(p, "infinity") == 0) {
        *out = s[0] == '-' ? -INFINITY : INFINITY;
        return true;
    }
    if (!sign && strcasecmp(p, "nan") == 0) {
        *out = NAN;
        return true;
    }
    bool hex = p[0] == '0' && (p[1] == 'x' || p[1] == 'X');
    if (hex)
        p += 2;
    struct nc_buf clean = {0};
    nc_buf_append(&clean, s, (size_t)(p - s));
    bool digits = false, dot = false, ok = true;
    char prev = hex ? '0' : '^'; /* a base prefix counts as a digit for `_` */
    for (; *p; p++) {
        char c = *p;
        bool is_digit =
            hex ? isxdigit((unsigned char)c) != 0 : (c >= '0' && c <= '9');
        if (is_digit) {
            digits = true;
        } else if (c == '_') {
            if (!(isxdigit((unsigned char)prev) || prev == '0') ||
                !(hex ? isxdigit((unsigned char)p[1])
                      : (p[1] >= '0' && p[1] <= '9'))) {
                ok = false;
                break;
            }
            prev = c;
            continue;
        } else if (c == '.' && !dot) {
            dot = true;
        } else {
            break;
        }
        prev = c;
        nc_buf_putc(&clean, c);
    }
    if (ok && digits &&
        ((!hex && (*p == 'e' || *p == 'E')) ||
         (hex && (*p == 'p' || *p == 'P')))) {
        nc_buf_putc(&clean, *p++);
        if (*p == '+' || *p == '-')
            nc_buf_putc(&clean, *p++);
        bool exp_digits = false;
        for (; *p; p++) {
            if (*p >= '0' && *p <= '9') {
                exp_digits = true;
                nc_buf_putc(&clean, *p);
            } else if (*p == '_' && exp_digits && p[1] >= '0' && p[1] <= '9') {
                continue;
            } else {
                break;
            }
        }
        ok = exp_digits;
    } else if (hex) {
        ok = false; /* Go requires the p exponent on hex floats */
    }
    ok = ok && digits && *p == '\0';
    double v = 0;
    if (ok) {
        char *end;
        errno = 0;
        v = strtod(clean.data, &end);
        ok = *end == '\0' && !(errno == ERANGE && isinf(v));
    }
    nc_buf_free(&clean);
    if (ok)
        *out = v;
    return ok;
}

/* strconv.ParseBool. */
static bool go_parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"1", "t", "T", "TRUE", "true", "True"};
    static const char *const no[] = {"0", "f", "F", "FALSE", "false", "False"};
    for (size_t i = 0; i < NC_ARRAY_LEN(yes); i++) {
        if (strcmp(s, yes[i]) == 0) {
            *out = true;
            return true;
        }
        if (strcmp(s, no[i]) == 0) {
            *out = false;
            return true;
        }
    }
    return false;
}

/* ---- ordering: feasible.go checkOrder -------------------------------------
 * Integers if both parse as integers, else floats if both parse as floats,
 * else byte-wise string order. */

static bool compare_op(const char *op, int cmp)
{
    if (strcmp(op, "<") == 0)
        return cmp < 0;
    if (strcmp(op, "<=") == 0)
        return cmp <= 0;
    if (strcmp(op, ">") == 0)
        return cmp > 0;
    if (strcmp(op, ">=") == 0)
        return cmp >= 0;
    return false;
}

static bool check_order(const char *op, const char *l, const char *r)
{
    int64_t li, ri;
    if (go_parse_int64_n(l, strlen(l), &li) &&
        go_parse_int64_n(r, strlen(r), &ri))
        return compare_op(op, (li > ri) - (li < ri));
    double lf, rf;
    if (go_parse_float(l, &lf) && go_parse_float(r, &rf)) {
        /* NaN compares false with everything, as in Go. */
        if (isnan(lf) || isnan(rf))
            return false;
        return compare_op(op, (lf > rf) - (lf < rf));
    }
    int c = strcmp(l, r);
    return compare_op(op, (c > 0) - (c < 0));
}

/* ---- versions: hashicorp/go-version v1.9 and Nomad's semver helper ------ */

struct gover {
    int64_t *seg; /* at least 3, zero-padded */
    size_t nseg;
    size_t si;       /* segments actually written */
    const char *pre; /* prerelease, borrowed from the parsed text */
    size_t prelen;
};

static void gover_free(struct gover *v)
{
    free(v->seg);
    v->seg = NULL;
}

static bool ident_char(char c)
{
    return isalnum((unsigned char)c) || c == '-' || c == '~';
}

/* [0-9A-Za-z-~]+(\.[0-9A-Za-z-~]+)* over s[0:n]. */
static bool dotted_idents(const char *s, size_t n)
{
    if (n == 0)
        return false;
    bool need = true; /* an identifier character must come next */
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '.' && !need)
            need = true;
        else if (ident_char(s[i]))
            need = false;
        else
            return false;
    }
    return !need;
}

static bool pre_lead_char(char c)
{
    return isalpha((unsigned char)c) || c == '-' || c == '~';
}

/* NewVersion (strict = false) or NewSemver (strict = true) over s[0:n]:
 * the same language as go-version's VersionRegexpRaw / SemverRegexpRaw,
 * recognised by hand. Returns 0, or -EINVAL with *err a static reason. */
static int gover_parse(const char *s, size_t n, bool strict, struct gover *v,
                       const char **err)
{
    memset(v, 0, sizeof(*v));
    *err = "malformed version";
    size_t i = 0;
    if (i < n && s[i] == 'v')
        i++;
    size_t seg_start = i;
    if (i >= n || !isdigit((unsigned char)s[i]))
        return -EINVAL;
    size_t nseg = 1;
    while (i < n && isdigit((unsigned char)s[i]))
        i++;
    while (i + 1 < n && s[i] == '.' && isdigit((unsigned char)s[i + 1])) {
        i++;
        nseg++;
        while (i < n && isdigit((unsigned char)s[i]))
            i++;
    }
    size_t seg_end = i;

    /* The rest is [prerelease][+metadata]; metadata holds no '+'. */
    const char *rest = s + i;
    size_t restlen = n - i;
    const char *plus = memchr(rest, '+', restlen);
    size_t plen = plus ? (size_t)(plus - rest) : restlen;
    if (plus && !dotted_idents(plus + 1, restlen - plen - 1))
        return -EINVAL;
    if (plen > 0) {
        if (rest[0] == '-' && plen >= 2 && isdigit((unsigned char)rest[1]) &&
            dotted_idents(rest + 1, plen - 1)) {
            v->pre = rest + 1; /* -1a.b: numeric-led prerelease */
            v->prelen = plen - 1;
        } else if (rest[0] == '-' && plen >= 2 && pre_lead_char(rest[1]) &&
                   dotted_idents(rest + 1, plen - 1)) {
            v->pre = rest + 1; /* -beta.1 */
            v->prelen = plen - 1;
        } else if (!strict && pre_lead_char(rest[0]) &&
                   dotted_idents(rest, plen)) {
            v->pre = rest; /* 1.0beta, and "1.0-" whose prerelease is "-" */
            v->prelen = plen;
        } else {
            return -EINVAL;
        }
    }

    v->si = nseg;
    v->nseg = nseg < 3 ? 3 : nseg;
    v->seg = xcalloc(v->nseg, sizeof(*v->seg));
    const char *p = s + seg_start;
    for (size_t k = 0; k < nseg; k++) {
        size_t len = 0;
        while (p + len < s + seg_end && p[len] != '.')
            len++;
        if (!go_parse_int64_n(p, len, &v->seg[k])) {
            *err = "error parsing version: value out of range";
            gover_free(v);
            return -EINVAL;
        }
        p += len + 1;
    }
    return 0;
}

static bool gover_equal_segments(const struct gover *a, const struct gover *b)
{
    if (a->nseg != b->nseg)
        return false;
    for (size_t i = 0; i < a->nseg; i++)
        if (a->seg[i] != b->seg[i])
            return false;
    return true;
}

/* go-version comparePart: numeric identifiers below alphanumeric ones;
 * an absent part decides by the other's kind (a go-version quirk kept). */
static int compare_pre_part(const char *a, size_t an, const char *b, size_t bn)
{
    if (an == bn && memcmp(a, b, an) == 0)
        return 0;
    int64_t ai = 0, bi = 0;
    bool anum = go_parse_int64_n(a, an, &ai);
    bool bnum = go_parse_int64_n(b, bn, &bi);
    if (an == 0)
        return bnum ? -1 : 1;
    if (bn == 0)
        return anum ? 1 : -1;
    if (anum && !bnum)
        return -1;
    if (!anum && bnum)
        return 1;
    if (!anum && !bnum) {
        size_t m = an < bn ? an : bn;
        int c = memcmp(a, b, m);
        if (c > 0 || (c == 0 && an > bn))
            return 1;
        return -1;
    }
    return ai > bi ? 1 : -1;
}

static int compare_prereleases(const char *a, size_t an, const char *b,
                               size_t bn)
{
    if (an == bn && memcmp(a, b, an) == 0)
        return 0;
    size_t ai = 0, bi = 0;
    bool amore = true, bmore = true; /* strings.Split yields >= 1 part */
    while (amore || bmore) {
        const char *ap = "", *bp = "";
        size_t al = 0, bl = 0;
        if (amore) {
            ap = a + ai;
            while (ai + al < an && a[ai + al] != '.')
                al++;
            ai += al + 1;
            amore = ai <= an;
        }
        if (bmore) {
            bp = b + bi;
            while (bi + bl < bn && b[bi + bl] != '.')
                bl++;
            bi += bl + 1;
            bmore = bi <= bn;
        }
        int c = compare_pre_part(ap, al, bp, bl);
        if (c != 0)
            return c;
    }
    return 0;
}

static bool all_zero(const int64_t *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != 0)
            return false;
    return true;
}

/* go-version Version.Compare. */
static int gover_compare(const struct gover *a, const struct gover *b)
{
    if (gover_equal_segments(a, b)) {
        if (a->prelen == 0 && b->prelen == 0)
            return 0;
        if (a->prelen == 0)
            return 1;
        if (b->prelen == 0)
            return -1;
        return compare_prereleases(a->pre, a->prelen, b->pre, b->prelen);
    }
    size_t hs = a->nseg > b->nseg ? a->nseg : b->nseg;
    for (size_t i = 0; i < hs; i++) {
        if (i >= a->nseg)
            return all_zero(b->seg + i, b->nseg - i) ? 0 : -1;
        if (i >= b->nseg)
            return all_zero(a->seg + i, a->nseg - i) ? 0 : 1;
        if (a->seg[i] != b->seg[i])
            return a->seg[i] < b->seg[i] ? -1 : 1;
    }
    return 0;
}

enum vop { VOP_EQ, VOP_NE, VOP_GT, VOP_LT, VOP_GE, VOP_LE, VOP_PESSIMISTIC };

struct vconstraint {
    enum vop op;
    struct gover v;
};

/* go-version prereleaseCheck: prereleases only match constraints on the
 * same version with a prerelease. */
static bool prerelease_check(const struct gover *v, const struct gover *c)
{
    bool vpre = v->prelen > 0, cpre = c->prelen > 0;
    if (cpre && vpre)
        return gover_equal_segments(v, c);
    if (!cpre && vpre)
        return false;
    return true;
}

static bool vconstraint_check(const struct vconstraint *k,
                              const struct gover *v, bool semver)
{
    const struct gover *c = &k->v;
    int cmp = gover_compare(v, c);
    /* Nomad's semver helper uses plain Semver 2.0 ordering: no
     * prerelease filter for the ordering operators. */
    bool pre_ok = semver || prerelease_check(v, c);
    switch (k->op) {
    case VOP_EQ: return cmp == 0;
    case VOP_NE: return cmp != 0;
    case VOP_GT: return pre_ok && cmp == 1;
    case VOP_LT: return pre_ok && cmp == -1;
    case VOP_GE: return pre_ok && cmp >= 0;
    case VOP_LE: return pre_ok && cmp <= 0;
    case VOP_PESSIMISTIC:
        if (!prerelease_check(v, c) || (c->prelen > 0 && v->prelen == 0))
            return false;
        if (cmp < 0)
            return false;
        if (c->nseg > v->nseg)
            return false;
        for (size_t i = 0; i + 1 < c->si; i++)
            if (v->seg[i] != c->seg[i])
                return false;
        return c->seg[c->nseg - 1] <= v->seg[c->nseg - 1];
    }
    return false;
}

static bool go_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\f' || c == '\r';
}

/* version.NewConstraint / Nomad's semver.NewConstraint: comma-separated
 * `[op] version`. Returns 0, or -EINVAL with *err an allocated message in
 * the library's words. */
static int vconstraints_parse(const char *s, bool semver,
                              struct vconstraint **out, size_t *nout,
                              char **err)
{
    static const struct {
        const char *text;
        enum vop op;
        bool semver;
    } ops[] = {{"<=", VOP_LE, true}, {">=", VOP_GE, true},
               {"!=", VOP_NE, true}, {"~>", VOP_PESSIMISTIC, false},
               {"<", VOP_LT, true},  {">", VOP_GT, true},
               {"=", VOP_EQ, true}};
    struct vconstraint *list = NULL;
    size_t n = 0, cap = 0;
    const char *p = s;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        const char *a = p, *e = p + len;
        while (a < e && go_space(*a))
            a++;
        enum vop op = VOP_EQ;
        for (size_t i = 0; i < NC_ARRAY_LEN(ops); i++) {
            size_t ol = strlen(ops[i].text);
            if ((!semver || ops[i].semver) && (size_t)(e - a) >= ol &&
                memcmp(a, ops[i].text, ol) == 0) {
                op = ops[i].op;
                a += ol;
                break;
            }
        }
        while (a < e && go_space(*a))
            a++;
        while (e > a && go_space(e[-1]))
            e--;
        struct vconstraint k = {.op = op};
        const char *why;
        if (gover_parse(a, (size_t)(e - a), semver, &k.v, &why) < 0) {
            if (strcmp(why, "malformed version") == 0)
                *err = xasprintf("%s: %.*s",
                                 semver ? "Malformed constraint"
                                        : "malformed constraint",
                                 (int)len, p);
            else
                *err = xstrdup(why);
            for (size_t i = 0; i < n; i++)
                gover_free(&list[i].v);
            free(list);
            return -EINVAL;
        }
        nc_grow((void **)&list, &cap, n + 1, sizeof(*list));
        list[n++] = k;
        if (!comma)
            break;
        p = comma + 1;
    }
    *out = list;
    *nout = n;
    return 0;
}

static void vconstraints_free(struct vconstraint *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        gover_free(&list[i].v);
    free(list);
}

/* checkVersionMatch: the left side parsed leniently (NewVersion) in both
 * modes; a left side that is no version fails the constraint. */
static bool version_match(const char *l, const struct vconstraint *list,
                          size_t n, bool semver)
{
    struct gover v;
    const char *why;
    if (gover_parse(l, strlen(l), false, &v, &why) < 0)
        return false;
    bool ok = true;
    for (size_t i = 0; i < n && ok; i++)
        ok = vconstraint_check(&list[i], &v, semver);
    gover_free(&v);
    return ok;
}

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

/* ---- sets: checkSetContainsAll / checkSetContainsAny --------------------- */

struct span {
    const char *p;
    size_t n;
};

static int span_cmp(const void *a, const void *b)
{
    const struct span *x = a, *y = b;
    size_t m = x->n < y->n ? x->n : y->n;
    int c = memcmp(x->p, y->p, m);
    if (c)
        return c;
    return (x->n > y->n) - (x->n < y->n);
}

/* strings.Split(s, ",") with each item space-trimmed. */
static size_t split_trim(const char *s, struct span **out)
{
    size_t n = 1;
    for (const char *q = s; *q; q++)
        n += *q == ',';
    struct span *v = xcalloc(n, sizeof(*v));
    size_t i = 0;
    for (const char *p = s;; i++) {
        const char *comma = strchr(p, ',');
        const char *e = comma ? comma : p + strlen(p);
        const char *a = p;
        while (a < e && isspace((unsigned char)*a))
            a++;
        while (e > a && isspace((unsigned char)e[-1]))
            e--;
        v[i] = (struct span){a, (size_t)(e - a)};
        if (!comma)
            break;
        p = comma + 1;
    }
    *out = v;
    return n;
}

/* Sorted lookup keeps hostile thousand-item sets at n log n. */
static bool set_contains(const char *l, const char *r, bool any)
{
    struct span *lv, *rv;
    size_t ln = split_trim(l, &lv), rn = split_trim(r, &rv);
    qsort(lv, ln, sizeof(*lv), span_cmp);
    bool result = !any;
    for (size_t i = 0; i < rn; i++) {
        bool in = bsearch(&rv[i], lv, ln, sizeof(*lv), span_cmp) != NULL;
        if (any && in) {
            result = true;
            break;
        }
        if (!any && !in) {
            result = false;
            break;
        }
    }
    free(lv);
    free(rv);
    return result;
}

/* ---- constraints --------------------------------------------------------- */

static const char *operand_of(const struct constraint *c)
{
    /* The HCL default; an API job without an operand is treated alike. */
    return c->operand && *c->operand ? c->operand : "=";
}

static bool is_op(const char *op, const char *name)
{
    return strcmp(op, name) == 0;
}

bool placement_check_constraint(const struct node *node,
                                const struct constraint *c, char **why)
{
    if (why)
        *why = NULL;
    if (!node || !c)
        return false;
    const char *op = operand_of(c);
    if (is_op(op, "distinct_hosts") || is_op(op, "distinct_property"))
        return true;
    bool lf, rf;
    const char *l = resolve_target(node, c->ltarget, &lf);
    const char *r = resolve_target(node, c->rtarget, &rf);

    if (is_op(op, "=") || is_op(op, "==") || is_op(op, "is"))
        return lf && rf && strcmp(l, r) == 0;
    if (is_op(op, "!=") || is_op(op, "not"))
        return strcmp(l, r) != 0; /* a missing side is "" */
    if (is_op(op, "<") || is_op(op, "<=") || is_op(op, ">") || is_op(op, ">="))
        return lf && rf && check_order(op, l, r);
    if (is_op(op, "is_set"))
        return lf;
    if (is_op(op, "is_not_set"))
        return !lf;
    if (is_op(op, "version") || is_op(op, "semver")) {
        if (!rf)
            return false;
        bool semver = is_op(op, "semver");
        struct vconstraint *list;
        size_t n;
        char *err = NULL;
        if (vconstraints_parse(r, semver, &list, &n, &err) < 0) {
            if (why)
                *why = xasprintf("%s constraint is invalid: %s",
                                 semver ? "Semver" : "Version", err);
            free(err);
            return false;
        }
        bool ok = lf && version_match(l, list, n, semver);
        vconstraints_free(list, n);
        return ok;
    }
    if (is_op(op, "regexp")) {
        if (!rf)
            return false;
        regex_t re;
        char *err = NULL;
        if (regexp_compile(r, &re, &err) < 0) {
            if (why)
                *why =
                    xasprintf("Regular expression failed to compile: %s", err);
            free(err);
            return false;
        }
        size_t llen = strlen(l);
        if (lf && llen > REGEXP_MAX_SUBJECT) {
            regfree(&re);
            if (why)
                *why = xasprintf("the value is %zu bytes long; regexp "
                                 "constraints match at most %d",
                                 llen, REGEXP_MAX_SUBJECT);
            return false;
        }
        bool ok = lf && regexec(&re, l, 0, NULL, 0) == 0;
        regfree(&re);
        return ok;
    }
    if (is_op(op, "set_contains") || is_op(op, "set_contains_all"))
        return lf && rf && set_contains(l, r, false);
    if (is_op(op, "set_contains_any"))
        return lf && rf && set_contains(l, r, true);
    if (why) {
        struct nc_buf b = {0};
        nc_buf_puts(&b, "Unknown constraint type ");
        go_quote(&b, op);
        *why = nc_buf_take(&b);
    }
    return false;
}

/* Constraint.String(): "%s %s %s". */
static char *constraint_string(const struct constraint *c)
{
    return xasprintf("%s %s %s", str_or_empty(c->ltarget), operand_of(c),
                     str_or_empty(c->rtarget));
}

/* ---- node-level pieces ------------------------------------------------- */

/* ryanuber/go-glob as Nomad's Node.IsInAnyDC uses it: only `*` is special,
 * matched greedily left to right - linear, no backtracking. */
static bool go_glob(const char *pattern, const char *subj)
{
    if (!*pattern)
        return !*subj;
    if (strcmp(pattern, "*") == 0)
        return true;
    if (!strchr(pattern, '*'))
        return strcmp(pattern, subj) == 0;
    size_t plen = strlen(pattern);
    bool leading = pattern[0] == '*', trailing = pattern[plen - 1] == '*';
    const char *part = pattern;
    for (size_t i = 0;; i++) {
        const char *star = strchr(part, '*');
        if (!star)
            break; /* `part` is the last section */
        size_t n = (size_t)(star - part);
        const char *hit = memmem(subj, strlen(subj), part, n);
        if (i == 0 && !leading && hit != subj)
            return false;
        if (!hit)
            return false;
        subj = hit + n;
        part = star + 1;
    }
    return trailing || nc_str_has_suffix(subj, part);
}

static const struct node_driver *find_driver(const struct node *node,
                                             const char *name)
{
    for (size_t i = 0; i < node->ndrivers; i++)
        if (nc_streq(node->drivers[i].name, name))
            return &node->drivers[i];
    return NULL;
}

/* DriverChecker.hasDrivers: the driver's fingerprint, or for nodes without
 * one the attribute driver.<name> as a boolean. */
static bool node_has_driver(const struct node *node, const char *name)
{
    const struct node_driver *d = find_driver(node, name);
    if (d)
        return d->detected && d->healthy;
    char *key = xasprintf("driver.%s", name);
    const char *v = kv_get(&node->attributes, key);
    free(key);
    bool on = false;
    return v && go_parse_bool(v, &on) && on;
}

static const struct node_host_volume *find_host_volume(const struct node *node,
                                                       const char *name)
{
    for (size_t i = 0; i < node->nhost_volumes; i++)
        if (nc_streq(node->host_volumes[i].name, name))
            return &node->host_volumes[i];
    return NULL;
}

/* HostVolumeChecker for a static host volume: present, and not read-only
 * when the request wants to write. */
static bool host_volume_ok(const struct node *node, const char *source,
                           bool read_only)
{
    const struct node_host_volume *v = find_host_volume(node, source);
    return v && (read_only || !v->read_only);
}

/* ---- ports --------------------------------------------------------------- */

/* Host ports in use are marked by ranges through a difference array (O(1)
 * per range whatever its width), then flattened into a bitmap once. */
struct port_range {
    uint64_t lo, hi;
};

/* Nomad's ParsePortRanges ("22,80,8000-8100"), its messages included;
 * ports above 65535 are refused too since no host has them. Returns 0 with
 * *out allocated (NULL when empty), or -EINVAL with *err allocated. */
static int parse_port_ranges(const char *spec, struct port_range **out,
                             size_t *nout, char **err)
{
    *out = NULL;
    *nout = 0;
    if (!*spec)
        return 0;
    struct port_range *list = NULL;
    size_t n = 0, cap = 0;
    uint64_t count = 0;
    int rc = 0;
    for (const char *p = spec; rc == 0;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char *part = xstrndup(p, len);
        char *a = part, *e = part + len;
        while (*a && isspace((unsigned char)*a))
            a++;
        while (e > a && isspace((unsigned char)e[-1]))
            *--e = '\0';
        char *dash = strchr(a, '-');
        uint64_t lo = 0, hi = 0;
        const char *bad = a;
        if (dash && strchr(dash + 1, '-')) {
            *err = xstrdup("can only parse single port numbers or port "
                           "ranges (ex. 80,100-120,150)");
            rc = -EINVAL;
        } else if (!dash && !*a) {
            *err = xstrdup("can't specify empty port");
            rc = -EINVAL;
        } else {
            if (dash)
                *dash = '\0';
            int r = go_parse_uint64(a, &lo);
            hi = lo;
            if (!r && dash) {
                bad = dash + 1;
                r = go_parse_uint64(dash + 1, &hi);
            }
            if (r) {
                *err =
                    xasprintf("strconv.ParseUint: parsing \"%s\": %s", bad,
                              r == 1 ? "invalid syntax" : "value out of range");
                rc = -EINVAL;
            } else if (hi < lo) {
                *err =
                    xasprintf("invalid range: ending value (%llu) less "
                              "than starting (%llu) value",
                              (unsigned long long)hi, (unsigned long long)lo);
                rc = -EINVAL;
            } else if (lo == 0) {
                *err = xstrdup("port must be > 0");
                rc = -EINVAL;
            } else if (hi >= PORT_LIMIT) {
                *err = xasprintf("port must be < %d but found %llu", PORT_LIMIT,
                                 (unsigned long long)hi);
                rc = -EINVAL;
            } else if ((count += hi - lo + 1) > PORT_LIMIT) {
                *err = xasprintf("maximum of %d ports can be reserved",
                                 PORT_LIMIT);
                rc = -EINVAL;
            } else {
                nc_grow((void **)&list, &cap, n + 1, sizeof(*list));
                list[n++] = (struct port_range){lo, hi};
            }
        }
        free(part);
        if (!comma)
            break;
        p = comma + 1;
    }
    if (rc) {
        free(list);
        return rc;
    }
    *out = list;
    *nout = n;
    return 0;
}

static void mark_ranges(int64_t *diff, const struct port_range *list, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        diff[list[i].lo]++;
        diff[list[i].hi + 1]--;
    }
}

static bool bit_get(const uint8_t *bits, int port)
{
    return bits[port >> 3] & (1u << (port & 7));
}

static void bit_set(uint8_t *bits, int port)
{
    bits[port >> 3] |= (uint8_t)(1u << (port & 7));
}

/* ---- placement ----------------------------------------------------------- */

static void add_lines(struct strlist *dst, const struct strlist *src)
{
    for (size_t i = 0; i < src->n; i++)
        reason_add(dst, xstrdup(src->items[i]));
}

/* What is left on the node as groups are placed. */
struct pl_state {
    const struct job *job;
    const struct node *node;
    bool per_node; /* system / sysbatch: one allocation per group */
    int64_t cpu, memory, disk, cores; /* remaining */
    int64_t mhz_per_core;
    uint8_t *ports;        /* host ports in use */
    int64_t dynamic_free;  /* unused ports in 20000-32000 ... */
    int64_t dynamic_taken; /* ... less those given to earlier allocations */
    int64_t job_placed;    /* allocations of this job placed so far */
    struct strlist eligibility; /* datacenter / pool lines, empty if fine */
    struct strlist job_filter;  /* failing job-level constraints, checked
                                   once for all groups */
};

/* The failing check with the fewest allocations it lets through; ties go
 * to the check Nomad runs first. */
struct limiter {
    int64_t allowed;
    enum placement_failure kind;
    char *what; /* filter constraint text or exhausted dimension */
};

static void limit_by(struct limiter *lim, int64_t allowed,
                     enum placement_failure kind, char *what)
{
    if (allowed < 0)
        allowed = 0;
    if (allowed < lim->allowed) {
        lim->allowed = allowed;
        lim->kind = kind;
        free(lim->what);
        lim->what = what;
    } else {
        free(what);
    }
}

static bool is_constraint_op(const struct constraint *c, const char *op)
{
    return c->operand && strcmp(c->operand, op) == 0;
}

static bool has_distinct_hosts(const struct constraint *cs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (is_constraint_op(&cs[i], "distinct_hosts"))
            return true;
    return false;
}

static void check_constraints(const struct pl_state *st,
                              const struct constraint *cs, size_t n,
                              struct strlist *reasons)
{
    for (size_t i = 0; i < n; i++) {
        char *why = NULL;
        if (placement_check_constraint(st->node, &cs[i], &why))
            continue;
        char *text = constraint_string(&cs[i]);
        reason_add(reasons, quoted_line("Constraint ", text,
                                        ": 1 nodes excluded by filter"));
        if (why) {
            char *line = quoted_line("Constraint ", text, " is invalid: ");
            char *full = xasprintf("%s%s", line, why);
            free(line);
            reason_add(reasons, full);
        }
        free(text);
        free(why);
    }
}

/* Node-level feasibility, in Nomad's order: job constraints, drivers,
 * group then task constraints, host and CSI volumes. Unlike Nomad every
 * check runs, so all reasons show. */
static void filter_node(const struct pl_state *st, const struct task_group *tg,
                        struct strlist *reasons)
{
    add_lines(reasons, &st->job_filter);

    for (size_t t = 0; t < tg->ntasks; t++) {
        if (!node_has_driver(st->node, str_or_empty(tg->tasks[t].driver))) {
            reason_add(reasons, xstrdup("Constraint \"missing drivers\": 1 "
                                        "nodes excluded by filter"));
            break;
        }
    }

    check_constraints(st, tg->constraints, tg->nconstraints, reasons);
    for (size_t t = 0; t < tg->ntasks; t++)
        check_constraints(st, tg->tasks[t].constraints,
                          tg->tasks[t].nconstraints, reasons);

    for (size_t v = 0; v < tg->nvolumes; v++) {
        const struct volume_request *vr = &tg->volumes[v];
        if (nc_streq(vr->type, "host") && !vr->per_alloc &&
            !host_volume_ok(st->node, str_or_empty(vr->source), vr->read_only))
            reason_add(reasons,
                       xstrdup("Constraint \"missing compatible host "
                               "volumes\": 1 nodes excluded by filter"));
    }
    /* This node mounts no CSI volumes; Nomad's words for a volume it
     * cannot find. */
    for (size_t v = 0; v < tg->nvolumes; v++) {
        const struct volume_request *vr = &tg->volumes[v];
        if (nc_streq(vr->type, "csi")) {
            char *what =
                xasprintf("missing CSI volume(s) %s", str_or_empty(vr->source));
            reason_add(reasons, quoted_line("Constraint ", what,
                                            ": 1 nodes excluded by filter"));
            free(what);
        }
    }
}

/* per_alloc host volumes: allocation i needs "<source>[i]". Only the first
 * nhost_volumes + 1 indices can differ, so the scan is bounded. */
static void limit_per_alloc_volumes(const struct pl_state *st,
                                    const struct task_group *tg,
                                    int64_t desired, struct limiter *lim)
{
    bool any = false;
    for (size_t v = 0; v < tg->nvolumes; v++)
        any |=
            nc_streq(tg->volumes[v].type, "host") && tg->volumes[v].per_alloc;
    if (!any)
        return;
    int64_t bound = (int64_t)st->node->nhost_volumes + 1;
    for (int64_t i = 0; i < desired && i < bound; i++) {
        for (size_t v = 0; v < tg->nvolumes; v++) {
            const struct volume_request *vr = &tg->volumes[v];
            if (!nc_streq(vr->type, "host") || !vr->per_alloc)
                continue;
            char *name =
                xasprintf("%s[%lld]", str_or_empty(vr->source), (long long)i);
            bool ok = host_volume_ok(st->node, name, vr->read_only);
            free(name);
            if (!ok) {
                limit_by(lim, i, PLACEMENT_FILTERED,
                         xstrdup("missing compatible host volumes"));
                return;
            }
        }
    }
}

/* propertyset.go: at most RTarget (default 1) allocations per value of the
 * property; on one node every allocation shares the node's value. */
static void limit_distinct_property(const struct pl_state *st,
                                    const struct constraint *c,
                                    int64_t used_before, struct limiter *lim)
{
    const char *rt = str_or_empty(c->rtarget);
    uint64_t allowed = 1;
    if (*rt) {
        int r = go_parse_uint64(rt, &allowed);
        if (r) {
            struct nc_buf b = {0};
            nc_buf_puts(&b, "failed to convert RTarget ");
            go_quote(&b, rt);
            nc_buf_puts(&b, " to uint64: strconv.ParseUint: parsing ");
            go_quote(&b, rt);
            nc_buf_puts(&b,
                        r == 1 ? ": invalid syntax" : ": value out of range");
            limit_by(lim, 0, PLACEMENT_FILTERED, nc_buf_take(&b));
            return;
        }
    }
    bool found;
    const char *value = resolve_target(st->node, c->ltarget, &found);
    if (!found) {
        struct nc_buf b = {0};
        nc_buf_puts(&b, "missing property ");
        go_quote(&b, str_or_empty(c->ltarget));
        limit_by(lim, 0, PLACEMENT_FILTERED, nc_buf_take(&b));
        return;
    }
    int64_t left = allowed > (uint64_t)INT64_MAX
                       ? INT64_MAX
                       : (int64_t)allowed - used_before;
    if (left < 0)
        left = 0;
    if (left >= lim->allowed)
        return;
    limit_by(lim, left, PLACEMENT_FILTERED,
             xasprintf("distinct_property: %s=%s used by %lld allocs",
                       str_or_empty(c->ltarget), value,
                       (long long)(used_before + left)));
}

static int64_t free_dynamic_ports(const struct pl_state *st)
{
    int64_t n = st->dynamic_free - st->dynamic_taken;
    return n < 0 ? 0 : n;
}

static void take_port(struct pl_state *st, int port)
{
    if (bit_get(st->ports, port))
        return;
    bit_set(st->ports, port);
    if (port >= DYN_PORT_MIN && port <= DYN_PORT_MAX)
        st->dynamic_free--;
}

/* rank.go / NetworkIndex.AssignPorts: static ports first (out of range, or
 * already used), then dynamic ones from 20000-32000. */
static void limit_network(const struct pl_state *st,
                          const struct task_group *tg, struct limiter *lim,
                          int64_t *ndynamic)
{
    const struct port *first = NULL;
    *ndynamic = 0;
    for (size_t n = 0; n < tg->nnetworks; n++) {
        const struct network *net = &tg->networks[n];
        *ndynamic += (int64_t)net->ndynamic_ports;
        for (size_t i = 0; i < net->nreserved_ports; i++) {
            const struct port *pt = &net->reserved_ports[i];
            if (pt->value < 0 || pt->value >= PORT_LIMIT) {
                limit_by(lim, 0, PLACEMENT_EXHAUSTED,
                         xasprintf("network: invalid port %d (out of range)",
                                   pt->value));
                return;
            }
            if (pt->value == 0)
                continue; /* no host port asked */
            if (bit_get(st->ports, pt->value)) {
                limit_by(lim, 0, PLACEMENT_EXHAUSTED,
                         xasprintf("network: reserved port collision %s=%d",
                                   str_or_empty(pt->label), pt->value));
                return;
            }
            if (!first)
                first = pt;
        }
    }
    /* The second allocation collides with the first's static port. */
    int64_t by_static = first ? 1 : INT64_MAX;
    int64_t by_dynamic =
        *ndynamic > 0 ? free_dynamic_ports(st) / *ndynamic : INT64_MAX;
    if (first && by_static <= by_dynamic)
        limit_by(lim, by_static, PLACEMENT_EXHAUSTED,
                 xasprintf("network: reserved port collision %s=%d",
                           str_or_empty(first->label), first->value));
    else if (*ndynamic > 0)
        limit_by(lim, by_dynamic, PLACEMENT_EXHAUSTED,
                 xstrdup("network: dynamic port selection failed"));
}

static void limit_dimension(int64_t avail, int64_t ask, const char *dim,
                            struct limiter *lim)
{
    if (ask <= 0)
        return;
    limit_by(lim, avail > 0 ? avail / ask : 0, PLACEMENT_EXHAUSTED,
             xstrdup(dim));
}

static int64_t sat_add64(int64_t a, int64_t b)
{
    if (b > 0 && a > INT64_MAX - b)
        return INT64_MAX;
    return a + b;
}

/* total - reserved - used, with nonsense negatives read as 0: the result
 * stays within [-INT64_MAX, INT64_MAX]. */
static int64_t available(int64_t total, int64_t reserved, int64_t used)
{
    if (total < 0)
        total = 0;
    if (reserved < 0)
        reserved = 0;
    if (used < 0)
        used = 0;
    int64_t left = total - reserved; /* both >= 0: cannot overflow */
    if (left < 0 && used > INT64_MAX + left)
        return -INT64_MAX;
    return left - used;
}

static void class_line(const struct node *node, const char *suffix,
                       struct strlist *reasons)
{
    if (node->node_class && *node->node_class)
        reason_add(reasons, quoted_line("Class ", node->node_class, suffix));
}

static void place_group(struct pl_state *st, const struct task_group *tg,
                        struct placement_group_result *g)
{
    g->group = xstrdup(str_or_empty(tg->name));
    /* System and sysbatch jobs place one allocation of each group per node
     * whatever the count (Nomad refuses count > 1 for system jobs); count 0
     * still means none, as in Nomad's materializeSystemTaskGroups. */
    int64_t desired = tg->count > 0 ? (st->per_node ? 1 : tg->count) : 0;
    g->desired = (int)desired;
    g->placed = 0;
    g->failure = PLACEMENT_FIT;
    if (desired == 0)
        return;

    if (st->eligibility.n) {
        add_lines(&g->reasons, &st->eligibility);
        g->failure = PLACEMENT_FILTERED;
        return;
    }

    struct strlist filtered = {0};
    filter_node(st, tg, &filtered);
    if (filtered.n) {
        class_line(st->node, ": 1 nodes excluded by filter", &g->reasons);
        add_lines(&g->reasons, &filtered);
        strlist_free(&filtered);
        g->failure = PLACEMENT_FILTERED;
        return;
    }

    struct limiter lim = {.allowed = desired, .kind = PLACEMENT_FIT};
    limit_per_alloc_volumes(st, tg, desired, &lim);

    /* DistinctHostsIterator; the system stack has none. */
    if (!st->per_node) {
        if (has_distinct_hosts(st->job->constraints, st->job->nconstraints))
            limit_by(&lim, st->job_placed == 0 ? 1 : 0, PLACEMENT_FILTERED,
                     xstrdup("distinct_hosts"));
        if (has_distinct_hosts(tg->constraints, tg->nconstraints))
            limit_by(&lim, 1, PLACEMENT_FILTERED, xstrdup("distinct_hosts"));
    }
    for (size_t i = 0; i < st->job->nconstraints; i++)
        if (is_constraint_op(&st->job->constraints[i], "distinct_property"))
            limit_distinct_property(st, &st->job->constraints[i],
                                    st->job_placed, &lim);
    for (size_t i = 0; i < tg->nconstraints; i++)
        if (is_constraint_op(&tg->constraints[i], "distinct_property"))
            limit_distinct_property(st, &tg->constraints[i], 0, &lim);

    int64_t ndynamic;
    limit_network(st, tg, &lim, &ndynamic);

    int64_t cpu = 0, memory = 0, cores = 0;
    for (size_t t = 0; t < tg->ntasks; t++) {
        const struct resources *r = &tg->tasks[t].resources;
        if (r->cores > 0) {
            cores = sat_add64(cores, r->cores);
            cpu = sat_add64(cpu, (int64_t)r->cores * st->mhz_per_core);
        } else if (r->cpu > 0) {
            cpu = sat_add64(cpu, r->cpu);
        }
        if (r->memory_mb > 0)
            memory = sat_add64(memory, r->memory_mb);
    }
    int64_t disk = tg->ephemeral_disk.mb > 0 ? tg->ephemeral_disk.mb : 0;
    /* BinPackIterator order: cores, then Superset's cpu, memory, disk. */
    limit_dimension(st->cores, cores, "cores", &lim);
    limit_dimension(st->cpu, cpu, "cpu", &lim);
    limit_dimension(st->memory, memory, "memory", &lim);
    limit_dimension(st->disk, disk, "disk", &lim);

    int64_t placed = lim.allowed;
    g->placed = (int)placed;
    st->job_placed += placed;
    st->cpu -= placed * cpu; /* placed * ask <= avail: no overflow */
    st->memory -= placed * memory;
    st->disk -= placed * disk;
    st->cores -= placed * cores;
    st->dynamic_taken += placed * ndynamic;
    if (placed > 0) {
        for (size_t n = 0; n < tg->nnetworks; n++)
            for (size_t i = 0; i < tg->networks[n].nreserved_ports; i++)
                if (tg->networks[n].reserved_ports[i].value > 0)
                    take_port(st, tg->networks[n].reserved_ports[i].value);
    }

    if (placed < desired) {
        g->failure = lim.kind;
        if (lim.kind == PLACEMENT_FILTERED) {
            class_line(st->node, ": 1 nodes excluded by filter", &g->reasons);
            reason_add(&g->reasons,
                       quoted_line("Constraint ", lim.what,
                                   ": 1 nodes excluded by filter"));
        } else {
            reason_add(&g->reasons, xstrdup("Resources exhausted on 1 nodes"));
            class_line(st->node, " exhausted on 1 nodes", &g->reasons);
            reason_add(&g->reasons, quoted_line("Dimension ", lim.what,
                                                " exhausted on 1 nodes"));
        }
    }
    free(lim.what);
}

/* Datacenter (go-glob patterns, default "*") and node pool ("default"
 * unless set; "all" matches any): a node outside them is never evaluated,
 * which Nomad reports as below. */
static void check_eligibility(struct pl_state *st)
{
    const struct job *job = st->job;
    const char *dc = str_or_empty(st->node->datacenter);
    bool in_dc = job->datacenters.n == 0;
    for (size_t i = 0; i < job->datacenters.n && !in_dc; i++)
        in_dc = go_glob(str_or_empty(job->datacenters.items[i]), dc);
    const char *pool =
        job->node_pool && *job->node_pool ? job->node_pool : "default";
    bool in_pool =
        strcmp(pool, "all") == 0 || strcmp(pool, node_pool_of(st->node)) == 0;
    if (in_dc && in_pool)
        return;
    reason_add(&st->eligibility,
               xstrdup("No nodes were eligible for evaluation"));
    for (size_t i = 0; !in_dc && i < job->datacenters.n; i++)
        reason_add(&st->eligibility,
                   quoted_line("No nodes are available in datacenter ",
                               job->datacenters.items[i], ""));
    if (!in_pool)
        reason_add(
            &st->eligibility,
            quoted_line("No nodes are available in node pool ", pool, ""));
}

static const char *plural(int64_t n)
{
    return n == 1 ? "" : "s";
}

static char *build_message(const struct placement_result *r)
{
    size_t nfail = 0;
    const struct placement_group_result *only = NULL;
    bool all_filtered = true;
    int64_t failed = 0, desired = 0;
    for (size_t i = 0; i < r->ngroups; i++) {
        const struct placement_group_result *g = &r->groups[i];
        desired += g->desired;
        if (g->placed >= g->desired)
            continue;
        nfail++;
        only = g;
        failed += g->desired - g->placed;
        all_filtered &= g->failure == PLACEMENT_FILTERED && g->placed == 0;
    }
    struct nc_buf b = {0};
    if (all_filtered) {
        nc_buf_puts(&b, "Placement failed: no nodes satisfied constraints");
    } else if (nfail == 1) {
        nc_buf_printf(&b, "Placement failed: %d of %d allocation%s of group ",
                      only->desired - only->placed, only->desired,
                      plural(only->desired));
        go_quote(&b, only->group);
        nc_buf_puts(&b, " could not be placed");
    } else {
        nc_buf_printf(&b,
                      "Placement failed: %lld of %lld allocation%s could not "
                      "be placed",
                      (long long)failed, (long long)desired, plural(desired));
    }
    for (size_t i = 0; i < r->ngroups; i++) {
        const struct placement_group_result *g = &r->groups[i];
        if (g->placed >= g->desired)
            continue;
        int n = g->desired - g->placed;
        nc_buf_puts(&b, "\n    Task Group ");
        go_quote(&b, g->group);
        nc_buf_printf(&b, " (failed to place %d allocation%s):", n, plural(n));
        for (size_t k = 0; k < g->reasons.n; k++)
            nc_buf_printf(&b, "\n      * %s", g->reasons.items[k]);
    }
    return nc_buf_take(&b);
}

int placement_check(const struct job *job, const struct node *node,
                    const struct placement_usage *used,
                    struct placement_result *out)
{
    memset(out, 0, sizeof(*out));
    if (!job || !node) {
        out->message = xstrdup("Placement failed: no job or no node");
        return -EINVAL;
    }

    struct port_range *ranges = NULL;
    size_t nranges = 0;
    char *err = NULL;
    if (parse_port_ranges(str_or_empty(node->reserved.reserved_ports), &ranges,
                          &nranges, &err) < 0) {
        struct nc_buf b = {0};
        nc_buf_puts(&b, "Placement failed: node reserved_ports ");
        go_quote(&b, node->reserved.reserved_ports);
        nc_buf_printf(&b, " is invalid: %s", err);
        out->message = nc_buf_take(&b);
        free(err);
        return -EINVAL;
    }
    int64_t *diff = xcalloc(PORT_LIMIT + 1, sizeof(*diff));
    mark_ranges(diff, ranges, nranges);
    free(ranges);
    if (used) {
        /* Usage comes from our own store; an entry that is not a port
         * cannot block anything, so it is skipped rather than fatal. */
        for (size_t i = 0; i < used->used_ports.n; i++) {
            char *e = NULL;
            if (parse_port_ranges(str_or_empty(used->used_ports.items[i]),
                                  &ranges, &nranges, &e) == 0) {
                mark_ranges(diff, ranges, nranges);
                free(ranges);
            }
            free(e);
        }
    }

    struct pl_state st = {.job = job, .node = node};
    st.per_node =
        nc_streq(job->type, "system") || nc_streq(job->type, "sysbatch");
    st.ports = xcalloc(PORT_LIMIT / 8, 1);
    int64_t level = 0;
    for (int p = 0; p < PORT_LIMIT; p++) {
        level += diff[p];
        if (level > 0)
            bit_set(st.ports, p);
        else if (p >= DYN_PORT_MIN && p <= DYN_PORT_MAX)
            st.dynamic_free++;
    }
    free(diff);
    st.cpu = available(node->resources.cpu_mhz, node->reserved.cpu_mhz,
                       used ? used->cpu_mhz : 0);
    st.memory = available(node->resources.memory_mb, node->reserved.memory_mb,
                          used ? used->memory_mb : 0);
    st.disk = available(node->resources.disk_mb, node->reserved.disk_mb,
                        used ? used->disk_mb : 0);
    st.cores = available(node->resources.cores, node->reserved.cores,
                         used ? used->cores : 0);
    st.mhz_per_core = node->resources.cores > 0 && node->resources.cpu_mhz > 0
                          ? node->resources.cpu_mhz / node->resources.cores
                          : 0;
    check_eligibility(&st);
    check_constraints(&st, job->constraints, job->nconstraints,
                      &st.job_filter);

    out->ngroups = job->ngroups;
    out->groups =
        xcalloc(job->ngroups ? job->ngroups : 1, sizeof(*out->groups));
    for (size_t i = 0; i < job->ngroups; i++)
        place_group(&st, &job->groups[i], &out->groups[i]);
    free(st.ports);
    strlist_free(&st.eligibility);
    strlist_free(&st.job_filter);

    out->ok = true;
    for (size_t i = 0; i < out->ngroups; i++)
        if (out->groups[i].placed < out->groups[i].desired)
            out->ok = false;
    if (!out->ok)
        out->message = build_message(out);
    return 0;
}

void placement_result_free(struct placement_result *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->ngroups; i++) {
        free(r->groups[i].group);
        strlist_free(&r->groups[i].reasons);
    }
    free(r->groups);
    free(r->message);
    memset(r, 0, sizeof(*r));
}
