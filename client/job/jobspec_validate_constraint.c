/* jobspec_validate_constraint.c - constraints, affinities and spreads of a
 * job, its groups and tasks, checked as Nomad's structs do. */
#include <ctype.h>
#include <errno.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/job/internal.h"

#define S(x) ((x) ? (x) : "")

/* ---- constraints, affinities, spreads ---- */

/* hashicorp/go-version constraints: "op version" separated by commas. */
static bool version_constraint_ok(const char *s)
{
    if (!s || !*s)
        return false;
    const char *p = s;
    for (;;) {
        while (*p == ' ')
            p++;
        static const char *const ops[] = {">=", "<=", "!=", "~>", "=",
                                          ">",  "<"};
        for (size_t i = 0; i < NC_ARRAY_LEN(ops); i++) {
            size_t n = strlen(ops[i]);
            if (strncmp(p, ops[i], n) == 0) {
                p += n;
                break;
            }
        }
        while (*p == ' ')
            p++;
        if (*p == 'v')
            p++;
        if (!isdigit((unsigned char)*p))
            return false;
        while (isalnum((unsigned char)*p) || *p == '.' || *p == '-' ||
               *p == '+')
            p++;
        while (*p == ' ')
            p++;
        if (!*p)
            return true;
        if (*p != ',')
            return false;
        p++;
    }
}

static void check_attribute(struct jv_ctx *v, const char *target)
{
    static const char *const exact[] = {"${node.unique.id}", "${node.datacenter}",
                                        "${node.unique.name}", "${node.class}",
                                        "${node.pool}"};
    static const char *const prefixes[] = {"${attr.", "${device.", "${meta."};
    if (target[0] != '$')
        return;
    if (!nc_str_has_prefix(target, "${")) {
        jv_err(v, ".LTarget", "attribute \"%s\" is missing an opening brace",
             target);
        return;
    }
    if (!nc_str_has_suffix(target, "}")) {
        jv_err(v, ".LTarget", "attribute \"%s\" is missing a closing brace",
             target);
        return;
    }
    for (size_t i = 0; i < NC_ARRAY_LEN(exact); i++)
        if (strcmp(target, exact[i]) == 0)
            return;
    for (size_t i = 0; i < NC_ARRAY_LEN(prefixes); i++)
        if (nc_str_has_prefix(target, prefixes[i]))
            return;
    jv_err(v, ".LTarget", "unsupported attribute \"%s\"", target);
}

static void check_regexp(struct jv_ctx *v, const char *re)
{
    regex_t rx;
    int rc = regcomp(&rx, S(re), REG_EXTENDED | REG_NOSUB);
    if (rc != 0) {
        char buf[256];
        regerror(rc, &rx, buf, sizeof(buf));
        jv_err(v, ".RTarget", "Regular expression failed to compile: %s", buf);
        return;
    }
    regfree(&rx);
}

static void validate_constraint(struct jv_ctx *v, const struct constraint *c,
                                bool task_level)
{
    const char *op = S(c->operand), *rt = S(c->rtarget);
    bool need_ltarget = true;
    if (!*op) {
        jv_err(v, ".Operand", "Missing constraint operand");
    } else if (strcmp(op, "distinct_hosts") == 0) {
        need_ltarget = false;
    } else if (JV_ONE_OF(op, "set_contains", "set_contains_all",
                      "set_contains_any")) {
        if (!*rt)
            jv_err(v, ".RTarget", "Set contains constraint requires an RTarget");
    } else if (strcmp(op, "regexp") == 0) {
        check_regexp(v, rt);
    } else if (JV_ONE_OF(op, "version", "semver")) {
        if (!version_constraint_ok(rt))
            jv_err(v, ".RTarget", "%s constraint is invalid: Malformed "
                 "constraint: %s", strcmp(op, "version") == 0 ? "Version"
                                                                 : "Semver",
                 rt);
    } else if (strcmp(op, "distinct_property") == 0) {
        if (*rt) {
            char *end;
            errno = 0;
            unsigned long long n = strtoull(rt, &end, 10);
            if (*end || errno || rt[0] == '-')
                jv_err(v, ".RTarget",
                     "Failed to convert RTarget \"%s\" to uint64", rt);
            else if (n < 1)
                jv_err(v, ".RTarget",
                     "Distinct Property must have an allowed count of 1 or "
                     "greater: %llu < 1",
                     n);
        }
    } else if (JV_ONE_OF(op, "is_set", "is_not_set")) {
        if (*rt)
            jv_err(v, ".RTarget", "Operator \"%s\" does not support an RTarget",
                 op);
    } else if (JV_ONE_OF(op, "=", "==", "is", "!=", "not", "<", "<=", ">",
                      ">=")) {
        if (!*rt)
            jv_err(v, ".RTarget", "Operator \"%s\" requires an RTarget", op);
    } else {
        jv_err(v, ".Operand", "Unknown constraint type \"%s\"", op);
    }
    if (need_ltarget) {
        if (!c->ltarget || !*c->ltarget)
            jv_err(v, ".LTarget",
                 "no attribute provided but is required by operator");
        else
            check_attribute(v, c->ltarget);
    }
    if (task_level && JV_ONE_OF(op, "distinct_hosts", "distinct_property"))
        jv_err(v, ".Operand", "operand %s is not allowed at task level", op);
}

void jv_validate_constraints(struct jv_ctx *v, const struct constraint *c,
                                 size_t n, bool task_level)
{
    for (size_t i = 0; i < n; i++) {
        struct jv_mark m = jv_mark(v);
        nc_buf_printf(&v->j, ".Constraints[%zu]", i);
        js_seg_index(&v->h, "constraint", i, n);
        validate_constraint(v, &c[i], task_level);
        jv_restore(v, m);
    }
}

void jv_validate_affinities(struct jv_ctx *v, const struct affinity *a,
                                size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct jv_mark m = jv_mark(v);
        nc_buf_printf(&v->j, ".Affinities[%zu]", i);
        js_seg_index(&v->h, "affinity", i, n);
        const char *op = S(a[i].operand), *rt = S(a[i].rtarget);
        if (!*op)
            jv_err(v, ".Operand", "Missing affinity operand");
        else if (JV_ONE_OF(op, "set_contains", "set_contains_all",
                        "set_contains_any")) {
            if (!*rt)
                jv_err(v, ".RTarget",
                     "Set contains operators require an RTarget");
        } else if (strcmp(op, "regexp") == 0) {
            check_regexp(v, rt);
        } else if (JV_ONE_OF(op, "version", "semver")) {
            if (!version_constraint_ok(rt))
                jv_err(v, ".RTarget", "%s affinity is invalid: Malformed "
                     "constraint: %s", strcmp(op, "version") == 0 ? "Version"
                                                                     : "Semver",
                     rt);
        } else if (JV_ONE_OF(op, "=", "==", "is", "!=", "not", "<", "<=", ">",
                          ">=")) {
            if (!*rt)
                jv_err(v, ".RTarget", "Operator \"%s\" requires an RTarget", op);
        } else {
            jv_err(v, ".Operand", "Unknown affinity operator \"%s\"", op);
        }
        if (!a[i].ltarget || !*a[i].ltarget)
            jv_err(v, ".LTarget", "No LTarget provided but is required");
        if (a[i].weight == 0)
            jv_err(v, ".Weight", "Affinity weight cannot be zero");
        if (a[i].weight > 100 || a[i].weight < -100)
            jv_err(v, ".Weight",
                 "Affinity weight must be within the range [-100,100]");
        jv_restore(v, m);
    }
}

void jv_validate_spreads(struct jv_ctx *v, const struct spread *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct jv_mark m = jv_mark(v);
        nc_buf_printf(&v->j, ".Spreads[%zu]", i);
        js_seg_index(&v->h, "spread", i, n);
        if (!s[i].attribute || !*s[i].attribute)
            jv_err(v, ".Attribute", "Missing spread attribute");
        if (s[i].weight <= 0 || s[i].weight > 100)
            jv_err(v, ".Weight",
                 "Spread block must have a positive weight from 0 to 100");
        long sum = 0;
        for (size_t t = 0; t < s[i].ntargets; t++) {
            const struct spread_target *st = &s[i].targets[t];
            for (size_t u = 0; u < t; u++)
                if (nc_streq(S(s[i].targets[u].value), S(st->value))) {
                    jv_err(v, NULL, "Spread target value \"%s\" already defined",
                         S(st->value));
                    break;
                }
            if (st->percent < 0 || st->percent > 100)
                jv_err(v, NULL,
                     "Spread target percentage for value \"%s\" must be "
                     "between 0 and 100",
                     S(st->value));
            sum += st->percent;
        }
        if (sum > 100)
            jv_err(v, NULL,
                 "Sum of spread target percentages must not be greater than "
                 "100%%; got %ld%%",
                 sum);
        jv_restore(v, m);
    }
}

