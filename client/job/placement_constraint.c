/* placement_constraint.c - constraint targets and operators: Nomad's
 * resolveTarget and checkConstraint (scheduler/feasible/feasible.go);
 * version and regexp operators have files of their own. */
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "client/job/internal.h"

/* ---- targets ------------------------------------------------------------- */

static const char *kv_get_n(const struct kvlist *l, const char *key, size_t n)
{
    for (size_t i = 0; i < l->n; i++)
        if (strlen(l->items[i].key) == n &&
            memcmp(l->items[i].key, key, n) == 0)
            return pl_or_empty(l->items[i].value);
    return NULL;
}

/* A node's pool as Nomad canonicalises it. */
const char *pl_node_pool(const struct node *node)
{
    return node->node_pool && *node->node_pool ? node->node_pool : "default";
}

/* Nomad's resolveTarget: the value (never NULL; "" when missing) and
 * whether it was found. Borrowed from the node or the target. */
const char *pl_resolve_target(const struct node *node, const char *target,
                                  bool *found)
{
    target = pl_or_empty(target);
    *found = true;
    if (strncmp(target, "${", 2) != 0)
        return target;
    if (strcmp(target, "${node.unique.id}") == 0)
        return pl_or_empty(node->id);
    if (strcmp(target, "${node.datacenter}") == 0)
        return pl_or_empty(node->datacenter);
    if (strcmp(target, "${node.unique.name}") == 0)
        return pl_or_empty(node->name);
    if (strcmp(target, "${node.class}") == 0)
        return pl_or_empty(node->node_class);
    if (strcmp(target, "${node.pool}") == 0)
        return pl_node_pool(node);
    /* Not in Nomad's list (its nodes have no region field), but asked for
     * and unambiguous. */
    if (strcmp(target, "${node.region}") == 0)
        return pl_or_empty(node->region);

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
    const char *v = node ? pl_resolve_target(node, target, &found) : "";
    *out = found ? xstrdup(v) : NULL;
    return found;
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
    if (pl_parse_int64_n(l, strlen(l), &li) &&
        pl_parse_int64_n(r, strlen(r), &ri))
        return compare_op(op, (li > ri) - (li < ri));
    double lf, rf;
    if (pl_parse_float(l, &lf) && pl_parse_float(r, &rf)) {
        /* NaN compares false with everything, as in Go. */
        if (isnan(lf) || isnan(rf))
            return false;
        return compare_op(op, (lf > rf) - (lf < rf));
    }
    int c = strcmp(l, r);
    return compare_op(op, (c > 0) - (c < 0));
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
    const char *l = pl_resolve_target(node, c->ltarget, &lf);
    const char *r = pl_resolve_target(node, c->rtarget, &rf);

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
    if (is_op(op, "version") || is_op(op, "semver"))
        return rf && pl_version_check(l, lf, r, is_op(op, "semver"), why);
    if (is_op(op, "regexp"))
        return rf && pl_regexp_check(l, lf, r, why);
    if (is_op(op, "set_contains") || is_op(op, "set_contains_all"))
        return lf && rf && set_contains(l, r, false);
    if (is_op(op, "set_contains_any"))
        return lf && rf && set_contains(l, r, true);
    if (why) {
        struct nc_buf b = {0};
        nc_buf_puts(&b, "Unknown constraint type ");
        pl_go_quote(&b, op);
        *why = nc_buf_take(&b);
    }
    return false;
}

/* Constraint.String(): "%s %s %s". */
char *pl_constraint_string(const struct constraint *c)
{
    return xasprintf("%s %s %s", pl_or_empty(c->ltarget), operand_of(c),
                     pl_or_empty(c->rtarget));
}
