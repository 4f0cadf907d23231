/* acl_policy.c - the policy language (acl/policy.go in Nomad) for what a
 * node enforces, and the merged permissions of a token (acl/acl.go).
 * Blocks a node has no use for (node_pool, host_volume, quota, plugin,
 * variables) are checked for a valid policy and otherwise ignored, so a
 * policy written for a Nomad cluster applies here unchanged. */
#include "client/acl/acl.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "client/hcl/hcl.h"

static const struct {
    const char *name;
    uint32_t bit;
} ns_caps[] = {
    {"deny", ACL_NS_DENY},
    {"list-jobs", ACL_NS_LIST_JOBS},
    {"parse-job", ACL_NS_PARSE_JOB},
    {"read-job", ACL_NS_READ_JOB},
    {"submit-job", ACL_NS_SUBMIT_JOB},
    {"dispatch-job", ACL_NS_DISPATCH_JOB},
    {"read-logs", ACL_NS_READ_LOGS},
    {"read-fs", ACL_NS_READ_FS},
    {"alloc-exec", ACL_NS_ALLOC_EXEC},
    {"alloc-node-exec", ACL_NS_ALLOC_NODE_EXEC},
    {"alloc-lifecycle", ACL_NS_ALLOC_LIFECYCLE},
    {"sentinel-override", ACL_NS_SENTINEL_OVERRIDE},
    {"csi-register-plugin", ACL_NS_CSI_REGISTER_PLUGIN},
    {"csi-write-volume", ACL_NS_CSI_WRITE_VOLUME},
    {"csi-read-volume", ACL_NS_CSI_READ_VOLUME},
    {"csi-list-volume", ACL_NS_CSI_LIST_VOLUME},
    {"csi-mount-volume", ACL_NS_CSI_MOUNT_VOLUME},
    {"list-scaling-policies", ACL_NS_LIST_SCALING_POLICIES},
    {"read-scaling-policy", ACL_NS_READ_SCALING_POLICY},
    {"read-job-scaling", ACL_NS_READ_JOB_SCALING},
    {"scale-job", ACL_NS_SCALE_JOB},
    {"submit-recommendation", ACL_NS_SUBMIT_RECOMMENDATION},
};

uint32_t acl_ns_cap_parse(const char *name)
{
    for (size_t i = 0; i < NC_ARRAY_LEN(ns_caps); i++)
        if (strcmp(name, ns_caps[i].name) == 0)
            return ns_caps[i].bit;
    return 0;
}

uint32_t acl_ns_policy_expand(const char *policy)
{
    const uint32_t read = ACL_NS_LIST_JOBS | ACL_NS_PARSE_JOB |
                          ACL_NS_READ_JOB | ACL_NS_CSI_LIST_VOLUME |
                          ACL_NS_CSI_READ_VOLUME | ACL_NS_READ_JOB_SCALING |
                          ACL_NS_LIST_SCALING_POLICIES |
                          ACL_NS_READ_SCALING_POLICY;
    const uint32_t write =
        read | ACL_NS_SCALE_JOB | ACL_NS_SUBMIT_JOB | ACL_NS_DISPATCH_JOB |
        ACL_NS_READ_LOGS | ACL_NS_READ_FS | ACL_NS_ALLOC_EXEC |
        ACL_NS_ALLOC_LIFECYCLE | ACL_NS_CSI_MOUNT_VOLUME |
        ACL_NS_CSI_WRITE_VOLUME | ACL_NS_SUBMIT_RECOMMENDATION;
    if (strcmp(policy, "deny") == 0)
        return ACL_NS_DENY;
    if (strcmp(policy, "read") == 0)
        return read;
    if (strcmp(policy, "write") == 0)
        return write;
    if (strcmp(policy, "scale") == 0)
        return ACL_NS_LIST_SCALING_POLICIES | ACL_NS_READ_SCALING_POLICY |
               ACL_NS_READ_JOB_SCALING | ACL_NS_SCALE_JOB;
    return 0;
}

static int parse_level(const char *s, enum acl_level *out)
{
    if (strcmp(s, "deny") == 0)
        *out = ACL_LEVEL_DENY;
    else if (strcmp(s, "read") == 0)
        *out = ACL_LEVEL_READ;
    else if (strcmp(s, "write") == 0)
        *out = ACL_LEVEL_WRITE;
    else
        return -EINVAL;
    return 0;
}

/* Nomad's namespace and volume names: [a-zA-Z0-9-*]{1,128}; node pools
 * also allow '_'. */
static bool valid_name(const char *s, bool underscore)
{
    size_t n = strlen(s);
    if (n < 1 || n > 128)
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
              (*s >= '0' && *s <= '9') || *s == '-' || *s == '*' ||
              (underscore && *s == '_')))
            return false;
    return true;
}

static int fail_at(struct nc_error *err, const struct hcl_pos *p,
                   const char *what)
{
    return nc_error_set(err, -EINVAL, "policy:%d:%d: %s", p->line, p->col,
                        what);
}

/* `policy = "..."` of a block: *out NULL when absent. */
static int block_string(const struct hcl_item *it, const char *key,
                        const char **out, struct nc_error *err)
{
    *out = NULL;
    for (size_t i = 0; i < it->body->n; i++) {
        const struct hcl_item *a = &it->body->items[i];
        if (a->type != HCL_ATTRIBUTE || strcmp(a->name, key) != 0)
            continue;
        if (a->value->kind != HCL_STRING)
            return fail_at(err, &a->pos, "expected a string");
        *out = a->value->str;
    }
    return 0;
}

/* A namespace block: policy, capabilities and (ignored) variables. */
static int parse_namespace(const struct hcl_item *it, struct acl_rules *out,
                           struct nc_error *err)
{
    if (it->nlabels != 1)
        return fail_at(err, &it->pos, "namespace needs one name label");
    const char *name = it->labels[0];
    if (!valid_name(name, false))
        return nc_error_set(err, -EINVAL, "policy:%d:%d: Invalid namespace "
                            "name: \"%s\"", it->pos.line, it->pos.col, name);
    uint32_t caps = 0;
    for (size_t i = 0; i < it->body->n; i++) {
        const struct hcl_item *a = &it->body->items[i];
        if (a->type == HCL_BLOCK && strcmp(a->name, "variables") == 0)
            continue;
        if (a->type != HCL_ATTRIBUTE)
            return fail_at(err, &a->pos, "unexpected block in namespace");
        if (strcmp(a->name, "policy") == 0) {
            uint32_t e = a->value->kind == HCL_STRING
                             ? acl_ns_policy_expand(a->value->str) : 0;
            if (!e)
                return nc_error_set(err, -EINVAL, "policy:%d:%d: Invalid "
                                    "namespace policy for \"%s\"",
                                    a->pos.line, a->pos.col, name);
            caps |= e;
        } else if (strcmp(a->name, "capabilities") == 0) {
            const struct hcl_value *v = a->value;
            if (v->kind != HCL_LIST)
                return fail_at(err, &a->pos, "capabilities: expected a list");
            for (size_t k = 0; k < v->n; k++) {
                const struct hcl_value *c = v->items[k];
                uint32_t bit = c->kind == HCL_STRING ? acl_ns_cap_parse(c->str)
                                                     : 0;
                if (!bit)
                    return nc_error_set(
                        err, -EINVAL, "policy:%d:%d: Invalid namespace "
                        "capability '%s' for \"%s\"", c->pos.line, c->pos.col,
                        c->kind == HCL_STRING ? c->str : hcl_kind_name(c->kind),
                        name);
                caps |= bit;
            }
        } else {
            return nc_error_set(err, -EINVAL, "policy:%d:%d: unknown key "
                                "\"%s\" in namespace", a->pos.line,
                                a->pos.col, a->name);
        }
    }
    if (!caps)
        return nc_error_set(err, -EINVAL, "policy:%d:%d: Invalid namespace "
                            "policy for \"%s\": no policy or capabilities",
                            it->pos.line, it->pos.col, name);
    out->ns = xrealloc(out->ns, (out->nns + 1) * sizeof(*out->ns));
    out->ns[out->nns++] = (struct acl_ns_rule){xstrdup(name), caps};
    return 0;
}

/* node, agent, operator, quota, plugin: `policy` is a level (plugin also
 * "list"); node_pool and host_volume: checked and ignored. */
static int parse_level_block(const struct hcl_item *it, enum acl_level *out,
                             struct nc_error *err)
{
    const char *p;
    int r = block_string(it, "policy", &p, err);
    if (r < 0)
        return r;
    enum acl_level lv = ACL_LEVEL_NONE;
    bool plugin_list = p && strcmp(it->name, "plugin") == 0 &&
                       strcmp(p, "list") == 0;
    if (!plugin_list && (!p || parse_level(p, &lv) < 0))
        return nc_error_set(err, -EINVAL, "policy:%d:%d: Invalid %s policy",
                            it->pos.line, it->pos.col, it->name);
    if (out)
        *out = lv;
    return 0;
}

int acl_rules_parse(const char *src, size_t len, struct acl_rules *out,
                    struct nc_error *err)
{
    memset(out, 0, sizeof(*out));
    struct hcl_file *f = NULL;
    int r = hcl_parse("policy", src, len, &f, err);
    if (r < 0) {
        nc_error_prefix(err, "Failed to parse ACL Policy");
        return r;
    }
    bool any = false;
    for (size_t i = 0; i < f->body->n && r == 0; i++) {
        const struct hcl_item *it = &f->body->items[i];
        any = true;
        if (it->type != HCL_BLOCK)
            r = fail_at(err, &it->pos, "expected a block");
        else if (strcmp(it->name, "namespace") == 0)
            r = parse_namespace(it, out, err);
        else if (strcmp(it->name, "node") == 0)
            r = parse_level_block(it, &out->node, err);
        else if (strcmp(it->name, "agent") == 0)
            r = parse_level_block(it, &out->agent, err);
        else if (strcmp(it->name, "operator") == 0)
            r = parse_level_block(it, &out->operator_, err);
        else if (strcmp(it->name, "quota") == 0 ||
                 strcmp(it->name, "plugin") == 0)
            r = parse_level_block(it, NULL, err);
        else if (strcmp(it->name, "node_pool") == 0 ||
                 strcmp(it->name, "host_volume") == 0) {
            bool pool = it->name[1] == 'o';
            if (it->nlabels != 1 || !valid_name(it->labels[0], pool))
                r = fail_at(err, &it->pos, pool ? "Invalid node pool name"
                                                : "Invalid host volume name");
        } else
            r = nc_error_set(err, -EINVAL, "policy:%d:%d: unknown block "
                             "\"%s\"", it->pos.line, it->pos.col, it->name);
    }
    hcl_file_free(f);
    if (r == 0 && !any)
        r = nc_error_set(err, -EINVAL, "Invalid policy: no rules");
    return r;
}

void acl_rules_free(struct acl_rules *r)
{
    for (size_t i = 0; i < r->nns; i++)
        free(r->ns[i].name);
    free(r->ns);
    memset(r, 0, sizeof(*r));
}

static enum acl_level merge_level(enum acl_level a, enum acl_level b)
{
    return a > b ? a : b; /* NONE < READ < WRITE < DENY */
}

void acl_merge(struct acl *acl, const struct acl_rules *rules)
{
    struct acl_rules *m = &acl->merged;
    for (size_t i = 0; i < rules->nns; i++) {
        const struct acl_ns_rule *in = &rules->ns[i];
        struct acl_ns_rule *have = NULL;
        for (size_t k = 0; k < m->nns && !have; k++)
            if (strcmp(m->ns[k].name, in->name) == 0)
                have = &m->ns[k];
        if (!have) {
            m->ns = xrealloc(m->ns, (m->nns + 1) * sizeof(*m->ns));
            have = &m->ns[m->nns++];
            *have = (struct acl_ns_rule){xstrdup(in->name), 0};
        }
        have->caps |= in->caps;
        if (have->caps & ACL_NS_DENY)
            have->caps = ACL_NS_DENY;
    }
    m->node = merge_level(m->node, rules->node);
    m->agent = merge_level(m->agent, rules->agent);
    m->operator_ = merge_level(m->operator_, rules->operator_);
}

void acl_free(struct acl *acl)
{
    if (acl)
        acl_rules_free(&acl->merged);
}

/* go-glob: '*' matches any run of characters, nothing else is special.
 * Iterative, backtracking only to the last star: O(len(g) * len(s)). */
static bool glob_match(const char *g, const char *s)
{
    const char *star = NULL, *resume = NULL;
    while (*s) {
        if (*g == '*') {
            star = g++;
            resume = s;
        } else if (*g == *s) {
            g++;
            s++;
        } else if (star) {
            g = star + 1;
            s = ++resume;
        } else {
            return false;
        }
    }
    while (*g == '*')
        g++;
    return !*g;
}

bool acl_allow_ns(const struct acl *acl, const char *ns, uint32_t cap)
{
    if (acl->management)
        return true;
    const struct acl_rules *m = &acl->merged;
    if (strcmp(ns, "*") == 0) {
        for (size_t i = 0; i < m->nns; i++)
            if (!(m->ns[i].caps & ACL_NS_DENY) && (m->ns[i].caps & cap))
                return true;
        return false;
    }
    const struct acl_ns_rule *best = NULL;
    size_t best_diff = 0;
    for (size_t i = 0; i < m->nns; i++) {
        const struct acl_ns_rule *r = &m->ns[i];
        if (!strchr(r->name, '*')) {
            if (strcmp(r->name, ns) == 0) {
                best = r;
                break;
            }
            continue;
        }
        if (!glob_match(r->name, ns))
            continue;
        /* Nomad keeps the glob whose literal part is longest */
        size_t lit = 0;
        for (const char *p = r->name; *p; p++)
            lit += *p != '*';
        size_t diff = strlen(ns) - lit;
        if (!best || diff < best_diff)
            best = r, best_diff = diff;
    }
    if (!best || (best->caps & ACL_NS_DENY))
        return false;
    return (best->caps & cap) == cap;
}

static bool allow_level(const struct acl *acl, enum acl_level have,
                        enum acl_level want)
{
    if (acl->management)
        return true;
    return have != ACL_LEVEL_DENY && have >= want;
}

bool acl_allow_node(const struct acl *acl, enum acl_level want)
{
    return allow_level(acl, acl->merged.node, want);
}

bool acl_allow_agent(const struct acl *acl, enum acl_level want)
{
    return allow_level(acl, acl->merged.agent, want);
}
