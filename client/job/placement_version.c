/* placement_version.c - the version and semver constraint operators:
 * hashicorp/go-version v1.9 and Nomad's semver helper. */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "client/job/internal.h"

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
        if (!pl_parse_int64_n(p, len, &v->seg[k])) {
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
    bool anum = pl_parse_int64_n(a, an, &ai);
    bool bnum = pl_parse_int64_n(b, bn, &bi);
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

bool pl_version_check(const char *version, bool found, const char *constraints,
                      bool semver, char **why)
{
    struct vconstraint *list;
    size_t n;
    char *err = NULL;
    if (vconstraints_parse(constraints, semver, &list, &n, &err) < 0) {
        if (why)
            *why = xasprintf("%s constraint is invalid: %s",
                             semver ? "Semver" : "Version", err);
        free(err);
        return false;
    }
    bool ok = found && version_match(version, list, n, semver);
    vconstraints_free(list, n);
    return ok;
}
