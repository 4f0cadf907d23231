/* acl_store.c - standalone ACL state: tokens and policies in
 * data_dir/client/acl/{tokens,policies}.json, rewritten whole and
 * atomically after every change. A token's SecretID never reaches the
 * disk, only its SHA-256; resolving compares against every token's hash in
 * constant time, so neither timing nor the file gives a secret away.
 *
 * Resolved permissions are cached per token and dropped on any change, so
 * a deleted token or policy stops counting at the next request. */
#include "client/acl/acl.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- secrets: only their SHA-256 (client/util.h; the agent links no
 * crypto library) is kept ---- */

void acl_hash_secret(const char *secret, char out[65])
{
    struct nc_sha256 s;
    nc_sha256_init(&s);
    nc_sha256_add(&s, secret, strlen(secret));
    nc_sha256_hex(&s, out);
}

bool acl_secret_equal(const char *a, const char *b)
{
    size_t n = strlen(a);
    if (n != strlen(b))
        return false;
    unsigned char diff = 0;
    for (size_t i = 0; i < n; i++)
        diff |= (unsigned char)(a[i] ^ b[i]);
    return diff == 0;
}

bool acl_is_uuid(const char *s)
{
    for (int i = 0; i < 36; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        char c = s[i];
        if (dash ? c != '-'
                 : !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
                     (c >= 'A' && c <= 'F')))
            return false;
    }
    return s[36] == '\0';
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' ||
           c == '\f';
}

static void copy_word(const char *p, const char *end, char *out, size_t outlen)
{
    while (p < end && is_space(*p))
        p++;
    while (end > p && is_space(end[-1]))
        end--;
    size_t n = (size_t)(end - p);
    if (n >= outlen)
        n = outlen - 1;
    memcpy(out, p, n);
    out[n] = '\0';
}

void acl_token_from_headers(const char *x_nomad_token,
                            const char *authorization, char *out,
                            size_t outlen)
{
    out[0] = '\0';
    if (x_nomad_token && *x_nomad_token) {
        copy_word(x_nomad_token, x_nomad_token + strlen(x_nomad_token), out,
                  outlen);
        return;
    }
    if (!authorization)
        return;
    /* "<Scheme> <Value>": Go splits on single spaces, takes the scheme,
     * trims the rest and keeps its first space-separated word */
    const char *sp = strchr(authorization, ' ');
    if (!sp || (size_t)(sp - authorization) != 6 ||
        strncasecmp(authorization, "bearer", 6) != 0)
        return;
    const char *v = sp + 1;
    while (*v && is_space(*v))
        v++;
    const char *end = v;
    while (*end && *end != ' ')
        end++;
    copy_word(v, end, out, outlen);
}

/* ---- the store ---- */

struct token_slot {
    struct acl_token t;
    struct acl acl; /* cached permissions */
    bool acl_valid;
};

struct acl_store {
    char *dir;
    struct token_slot *tokens;
    size_t ntokens;
    struct acl_policy *policies;
    size_t npolicies;
    uint64_t index;
    uint64_t bootstrap_index; /* 0: not bootstrapped */
    struct acl anonymous;
    bool anonymous_valid;
};

static void token_clear(struct acl_token *t)
{
    free(t->name);
    strlist_free(&t->policies);
}

static void policy_clear(struct acl_policy *p)
{
    free(p->name);
    free(p->description);
    free(p->rules);
}

static void invalidate(struct acl_store *s)
{
    for (size_t i = 0; i < s->ntokens; i++) {
        acl_free(&s->tokens[i].acl);
        memset(&s->tokens[i].acl, 0, sizeof(s->tokens[i].acl));
        s->tokens[i].acl_valid = false;
    }
    acl_free(&s->anonymous);
    memset(&s->anonymous, 0, sizeof(s->anonymous));
    s->anonymous_valid = false;
}

void acl_store_free(struct acl_store *s)
{
    if (!s)
        return;
    invalidate(s);
    for (size_t i = 0; i < s->ntokens; i++)
        token_clear(&s->tokens[i].t);
    for (size_t i = 0; i < s->npolicies; i++)
        policy_clear(&s->policies[i]);
    free(s->tokens);
    free(s->policies);
    free(s->dir);
    free(s);
}

static int save(struct acl_store *s, struct nc_error *err)
{
    json_t *toks = json_array(), *pols = json_array();
    for (size_t i = 0; i < s->ntokens; i++) {
        const struct acl_token *t = &s->tokens[i].t;
        json_t *pl = json_array();
        for (size_t k = 0; k < t->policies.n; k++)
            json_array_append_new(pl, json_string(t->policies.items[k]));
        json_array_append_new(
            toks, json_pack("{s:s, s:s, s:s, s:s, s:b, s:o, s:I, s:I, s:I}",
                            "AccessorID", t->accessor_id, "SecretHash",
                            t->secret_hash, "Name", t->name ? t->name : "",
                            "Type", t->management ? "management" : "client",
                            "Global", t->global, "Policies", pl, "CreateTime",
                            (json_int_t)t->create_time, "CreateIndex",
                            (json_int_t)t->create_index, "ModifyIndex",
                            (json_int_t)t->modify_index));
    }
    for (size_t i = 0; i < s->npolicies; i++) {
        const struct acl_policy *p = &s->policies[i];
        json_array_append_new(
            pols, json_pack("{s:s, s:s, s:s, s:I, s:I}", "Name", p->name,
                            "Description", p->description ? p->description : "",
                            "Rules", p->rules, "CreateIndex",
                            (json_int_t)p->create_index, "ModifyIndex",
                            (json_int_t)p->modify_index));
    }
    json_t *tdoc = json_pack("{s:I, s:I, s:o}", "Index", (json_int_t)s->index,
                             "BootstrapIndex", (json_int_t)s->bootstrap_index,
                             "Tokens", toks);
    json_t *pdoc = json_pack("{s:o}", "Policies", pols);
    char *tj = json_dumps(tdoc, JSON_INDENT(2));
    char *pj = json_dumps(pdoc, JSON_INDENT(2));
    json_decref(tdoc);
    json_decref(pdoc);
    char *tp = xasprintf("%s/tokens.json", s->dir);
    char *pp = xasprintf("%s/policies.json", s->dir);
    int r = nc_write_file_atomic(pp, pj, strlen(pj), 0600);
    if (r == 0)
        r = nc_write_file_atomic(tp, tj, strlen(tj), 0600);
    if (r < 0)
        nc_error_set(err, r, "writing the ACL state in %s: %s", s->dir,
                     strerror(-r));
    free(tj);
    free(pj);
    free(tp);
    free(pp);
    return r;
}

static const char *jstr(const json_t *o, const char *k)
{
    const char *v = json_string_value(json_object_get(o, k));
    return v ? v : "";
}

static int load(struct acl_store *s, struct nc_error *err)
{
    char *tp = xasprintf("%s/tokens.json", s->dir);
    char *pp = xasprintf("%s/policies.json", s->dir);
    json_error_t je;
    json_t *tdoc = json_load_file(tp, 0, &je);
    json_t *pdoc = json_load_file(pp, 0, &je);
    int r = 0;
    if (tdoc) {
        s->index = (uint64_t)json_integer_value(json_object_get(tdoc, "Index"));
        s->bootstrap_index = (uint64_t)json_integer_value(
            json_object_get(tdoc, "BootstrapIndex"));
        size_t i;
        json_t *o;
        json_array_foreach(json_object_get(tdoc, "Tokens"), i, o) {
            const char *acc = jstr(o, "AccessorID"), *h = jstr(o, "SecretHash");
            if (!acl_is_uuid(acc) || strlen(h) != 64) {
                r = nc_error_set(err, -EINVAL, "%s: token %zu is damaged", tp,
                                 i);
                break;
            }
            s->tokens = xrealloc(s->tokens, (s->ntokens + 1) * sizeof(*s->tokens));
            struct token_slot *sl = &s->tokens[s->ntokens++];
            memset(sl, 0, sizeof(*sl));
            memcpy(sl->t.accessor_id, acc, 37);
            memcpy(sl->t.secret_hash, h, 65);
            sl->t.name = xstrdup(jstr(o, "Name"));
            sl->t.management = strcmp(jstr(o, "Type"), "management") == 0;
            sl->t.global = json_is_true(json_object_get(o, "Global"));
            size_t k;
            json_t *pn;
            json_array_foreach(json_object_get(o, "Policies"), k, pn)
                if (json_is_string(pn))
                    strlist_add(&sl->t.policies, json_string_value(pn));
            sl->t.create_time = json_integer_value(json_object_get(o, "CreateTime"));
            sl->t.create_index =
                (uint64_t)json_integer_value(json_object_get(o, "CreateIndex"));
            sl->t.modify_index =
                (uint64_t)json_integer_value(json_object_get(o, "ModifyIndex"));
        }
    }
    if (pdoc && r == 0) {
        size_t i;
        json_t *o;
        json_array_foreach(json_object_get(pdoc, "Policies"), i, o) {
            s->policies = xrealloc(s->policies,
                                   (s->npolicies + 1) * sizeof(*s->policies));
            struct acl_policy *p = &s->policies[s->npolicies++];
            p->name = xstrdup(jstr(o, "Name"));
            p->description = xstrdup(jstr(o, "Description"));
            p->rules = xstrdup(jstr(o, "Rules"));
            p->create_index =
                (uint64_t)json_integer_value(json_object_get(o, "CreateIndex"));
            p->modify_index =
                (uint64_t)json_integer_value(json_object_get(o, "ModifyIndex"));
        }
    }
    json_decref(tdoc);
    json_decref(pdoc);
    free(tp);
    free(pp);
    return r;
}

int acl_store_open(struct acl_store **out, const char *dir,
                   struct nc_error *err)
{
    *out = NULL;
    int r = nc_mkdir_p(dir, 0700);
    if (r < 0)
        return nc_error_set(err, r, "creating %s: %s", dir, strerror(-r));
    struct acl_store *s = xcalloc(1, sizeof(*s));
    s->dir = xstrdup(dir);
    if ((r = load(s, err)) < 0) {
        acl_store_free(s);
        return r;
    }
    *out = s;
    return 0;
}

/* Compiles the permissions of a list of policy names. */
static void compile(const struct acl_store *s, const struct strlist *names,
                    struct acl *out)
{
    for (size_t i = 0; i < names->n; i++) {
        const struct acl_policy *p = acl_store_policy_get(s, names->items[i]);
        struct acl_rules rules;
        struct nc_error e = {0};
        if (p && acl_rules_parse(p->rules, strlen(p->rules), &rules, &e) == 0)
            acl_merge(out, &rules);
        if (p)
            acl_rules_free(&rules);
    }
}

enum acl_resolve_result acl_store_resolve(struct acl_store *s,
                                          const char *secret,
                                          const struct acl **acl,
                                          const struct acl_token **token)
{
    if (token)
        *token = NULL;
    if (!secret || !*secret) {
        if (!s->anonymous_valid) {
            struct strlist anon = {0};
            strlist_add(&anon, "anonymous");
            compile(s, &anon, &s->anonymous);
            strlist_free(&anon);
            s->anonymous_valid = true;
        }
        *acl = &s->anonymous;
        return ACL_RESOLVED;
    }
    if (!acl_is_uuid(secret))
        return ACL_TOKEN_INVALID;
    char hash[65];
    acl_hash_secret(secret, hash);
    struct token_slot *found = NULL;
    for (size_t i = 0; i < s->ntokens; i++)
        if (acl_secret_equal(s->tokens[i].t.secret_hash, hash) && !found)
            found = &s->tokens[i];
    if (!found)
        return ACL_TOKEN_NOT_FOUND;
    if (!found->acl_valid) {
        found->acl.management = found->t.management;
        if (!found->t.management)
            compile(s, &found->t.policies, &found->acl);
        found->acl_valid = true;
    }
    *acl = &found->acl;
    if (token)
        *token = &found->t;
    return ACL_RESOLVED;
}

static int check_token(const struct acl_store *s, const struct acl_token *t,
                       struct nc_error *err)
{
    if (t->name && strlen(t->name) > 256)
        return nc_error_set(err, -EINVAL, "token name too long");
    if (t->management && t->policies.n)
        return nc_error_set(err, -EINVAL, "management token cannot be "
                            "associated with policies or roles");
    if (!t->management && !t->policies.n)
        return nc_error_set(err, -EINVAL,
                            "client token missing policies or roles");
    for (size_t i = 0; i < t->policies.n; i++)
        if (!acl_store_policy_get(s, t->policies.items[i]))
            return nc_error_set(err, -EINVAL, "cannot find policy %s",
                                t->policies.items[i]);
    return 0;
}

static const struct acl_token *add_token(struct acl_store *s,
                                         const struct acl_token *t,
                                         const char *secret,
                                         char secret_out[37])
{
    s->tokens = xrealloc(s->tokens, (s->ntokens + 1) * sizeof(*s->tokens));
    struct token_slot *sl = &s->tokens[s->ntokens++];
    memset(sl, 0, sizeof(*sl));
    nc_uuid(sl->t.accessor_id);
    if (secret)
        snprintf(secret_out, 37, "%s", secret);
    else
        nc_uuid(secret_out);
    acl_hash_secret(secret_out, sl->t.secret_hash);
    sl->t.name = xstrdup(t->name ? t->name : "");
    sl->t.management = t->management;
    sl->t.global = t->global;
    strlist_copy(&sl->t.policies, &t->policies);
    sl->t.create_time = nc_now_unix_ns();
    sl->t.create_index = sl->t.modify_index = ++s->index;
    return &sl->t;
}

/* Drops the last token again after a failed save. */
static void drop_last_token(struct acl_store *s)
{
    struct token_slot *sl = &s->tokens[--s->ntokens];
    acl_free(&sl->acl);
    token_clear(&sl->t);
}

int acl_store_bootstrap(struct acl_store *s, const char *secret,
                        const struct acl_token **out, char secret_out[37],
                        struct nc_error *err)
{
    if (s->bootstrap_index)
        return nc_error_set(err, -EEXIST, "ACL bootstrap already done "
                            "(reset index: %llu)",
                            (unsigned long long)s->bootstrap_index);
    if (secret && *secret && !acl_is_uuid(secret))
        return nc_error_set(err, -EINVAL, "invalid acl token");
    struct acl_token t = {.name = "Bootstrap Token", .management = true,
                          .global = true};
    *out = add_token(s, &t, secret && *secret ? secret : NULL, secret_out);
    s->bootstrap_index = s->index;
    int r = save(s, err);
    if (r < 0) {
        drop_last_token(s);
        s->bootstrap_index = 0;
        *out = NULL;
    }
    return r;
}

int acl_store_token_create(struct acl_store *s, const struct acl_token *t,
                           const struct acl_token **out, char secret_out[37],
                           struct nc_error *err)
{
    int r = check_token(s, t, err);
    if (r < 0)
        return r;
    *out = add_token(s, t, NULL, secret_out);
    if ((r = save(s, err)) < 0) {
        drop_last_token(s);
        *out = NULL;
    }
    return r;
}

static struct token_slot *find_token(const struct acl_store *s,
                                     const char *accessor)
{
    for (size_t i = 0; i < s->ntokens; i++)
        if (strcmp(s->tokens[i].t.accessor_id, accessor) == 0)
            return &s->tokens[i];
    return NULL;
}

const struct acl_token *acl_store_token_get(const struct acl_store *s,
                                            const char *accessor)
{
    struct token_slot *sl = find_token(s, accessor);
    return sl ? &sl->t : NULL;
}

const struct acl_token *acl_store_token_at(const struct acl_store *s, size_t i)
{
    return i < s->ntokens ? &s->tokens[i].t : NULL;
}

int acl_store_token_update(struct acl_store *s, const struct acl_token *t,
                           const struct acl_token **out, struct nc_error *err)
{
    struct token_slot *sl = find_token(s, t->accessor_id);
    if (!sl)
        return nc_error_set(err, -ENOENT, "ACL token not found");
    if (sl->t.management != t->management)
        return nc_error_set(err, -EINVAL, "cannot toggle management type of "
                            "token");
    int r = check_token(s, t, err);
    if (r < 0)
        return r;
    free(sl->t.name);
    sl->t.name = xstrdup(t->name ? t->name : "");
    sl->t.global = t->global;
    strlist_free(&sl->t.policies);
    strlist_copy(&sl->t.policies, &t->policies);
    sl->t.modify_index = ++s->index;
    invalidate(s);
    *out = &sl->t;
    return save(s, err);
}

int acl_store_token_delete(struct acl_store *s, const char *accessor,
                           struct nc_error *err)
{
    struct token_slot *sl = find_token(s, accessor);
    if (!sl)
        return nc_error_set(err, -ENOENT, "Cannot delete nonexistent tokens: "
                            "%s", accessor);
    invalidate(s);
    token_clear(&sl->t);
    size_t i = (size_t)(sl - s->tokens);
    memmove(sl, sl + 1, (s->ntokens - i - 1) * sizeof(*sl));
    s->ntokens--;
    s->index++;
    return save(s, err);
}

/* Nomad's policy names: [a-zA-Z0-9-]{1,128}. */
static bool valid_policy_name(const char *n)
{
    size_t len = strlen(n);
    if (len < 1 || len > 128)
        return false;
    for (; *n; n++)
        if (!((*n >= 'a' && *n <= 'z') || (*n >= 'A' && *n <= 'Z') ||
              (*n >= '0' && *n <= '9') || *n == '-'))
            return false;
    return true;
}

int acl_store_policy_upsert(struct acl_store *s, const char *name,
                            const char *description, const char *rules,
                            struct nc_error *err)
{
    if (!valid_policy_name(name))
        return nc_error_set(err, -EINVAL, "invalid name '%s'", name);
    if (description && strlen(description) > 256)
        return nc_error_set(err, -EINVAL, "description longer than 256");
    struct acl_rules parsed;
    int r = acl_rules_parse(rules, strlen(rules), &parsed, err);
    acl_rules_free(&parsed);
    if (r < 0) {
        nc_error_prefix(err, "policy %s invalid", name);
        return r;
    }
    struct acl_policy *p = (struct acl_policy *)acl_store_policy_get(s, name);
    if (!p) {
        s->policies = xrealloc(s->policies,
                               (s->npolicies + 1) * sizeof(*s->policies));
        p = &s->policies[s->npolicies++];
        memset(p, 0, sizeof(*p));
        p->name = xstrdup(name);
        p->create_index = s->index + 1;
    }
    free(p->description);
    free(p->rules);
    p->description = xstrdup(description ? description : "");
    p->rules = xstrdup(rules);
    p->modify_index = ++s->index;
    invalidate(s);
    return save(s, err);
}

int acl_store_policy_delete(struct acl_store *s, const char *name,
                            struct nc_error *err)
{
    struct acl_policy *p = (struct acl_policy *)acl_store_policy_get(s, name);
    if (!p)
        return nc_error_set(err, -ENOENT, "ACL policy not found");
    policy_clear(p);
    size_t i = (size_t)(p - s->policies);
    memmove(p, p + 1, (s->npolicies - i - 1) * sizeof(*p));
    s->npolicies--;
    s->index++;
    invalidate(s);
    return save(s, err);
}

const struct acl_policy *acl_store_policy_get(const struct acl_store *s,
                                              const char *name)
{
    for (size_t i = 0; i < s->npolicies; i++)
        if (strcmp(s->policies[i].name, name) == 0)
            return &s->policies[i];
    return NULL;
}

const struct acl_policy *acl_store_policy_at(const struct acl_store *s,
                                             size_t i)
{
    return i < s->npolicies ? &s->policies[i] : NULL;
}

uint64_t acl_store_index(const struct acl_store *s) { return s->index; }

bool acl_store_bootstrapped(const struct acl_store *s)
{
    return s->bootstrap_index != 0;
}
