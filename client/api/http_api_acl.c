/* http_api_acl.c - ACL on the HTTP API: the capability each route needs
 * (http_api_acl_check, called by the dispatcher before any route runs) and
 * Nomad's /v1/acl routes for standalone tokens and policies.
 *
 * What a route needs follows Nomad's endpoints: job reads read-job, job
 * writes submit-job, logs read-logs, fs read-fs, signal/restart/stop
 * alloc-lifecycle, node reads and writes node:read/node:write, agent
 * routes and metrics agent:read. Allocation routes are checked in the
 * allocation's namespace, the others in ?namespace= (or the body's
 * Job.Namespace on a job write), "default" when absent. /v1/agent/health,
 * /v1/status/leader (as in Nomad) and /v1/acl/bootstrap are open. */
#include "client/api/internal.h"

#include <string.h>

#include "client/acl/acl.h"
#include "client/agent.h"
#include "client/alloc/alloc.h"

enum need_kind { OPEN, NS, NODE, AGENT, MANAGEMENT, ANY_TOKEN, POLICY_READ };
enum method_class { ANY, READ, WRITE };
enum ns_from { NS_QUERY, NS_ALLOC, NS_BODY };

static const struct need {
    const char *path;
    bool prefix;
    enum method_class methods;
    enum need_kind kind;
    uint32_t cap;         /* NS */
    enum acl_level level; /* NODE, AGENT */
    enum ns_from from;
} needs[] = {
    /* first match wins */
    {"/v1/agent/health", false, ANY, OPEN, 0, 0, 0},
    {"/v1/status/leader", false, ANY, OPEN, 0, 0, 0},
    {"/v1/acl/bootstrap", false, ANY, OPEN, 0, 0, 0},
    {"/v1/acl/token/self", false, ANY, ANY_TOKEN, 0, 0, 0},
    {"/v1/acl/policy/", true, READ, POLICY_READ, 0, 0, 0},
    {"/v1/acl/", true, ANY, MANAGEMENT, 0, 0, 0},
    {"/v1/agent/", true, READ, AGENT, 0, ACL_LEVEL_READ, 0},
    {"/v1/agent/", true, WRITE, AGENT, 0, ACL_LEVEL_WRITE, 0},
    {"/v1/metrics", false, ANY, AGENT, 0, ACL_LEVEL_READ, 0},
    {"/v1/nodes", false, ANY, NODE, 0, ACL_LEVEL_READ, 0},
    {"/v1/client/stats", false, ANY, NODE, 0, ACL_LEVEL_READ, 0},
    {"/v1/node/", true, READ, NODE, 0, ACL_LEVEL_READ, 0},
    {"/v1/node/", true, WRITE, NODE, 0, ACL_LEVEL_WRITE, 0},
    {"/v1/client/gc", false, ANY, NODE, 0, ACL_LEVEL_WRITE, 0},
    {"/v1/client/leftovers", false, READ, NODE, 0, ACL_LEVEL_READ, 0},
    {"/v1/client/leftovers", false, WRITE, NODE, 0, ACL_LEVEL_WRITE, 0},
    {"/v1/jobs", false, READ, NS, ACL_NS_LIST_JOBS, 0, NS_QUERY},
    {"/v1/jobs", false, WRITE, NS, ACL_NS_SUBMIT_JOB, 0, NS_BODY},
    {"/v1/jobs/parse", false, ANY, NS, ACL_NS_PARSE_JOB, 0, NS_QUERY},
    {"/v1/validate/job", false, ANY, NS, ACL_NS_READ_JOB, 0, NS_QUERY},
    {"/v1/job/", true, READ, NS, ACL_NS_READ_JOB, 0, NS_QUERY},
    {"/v1/job/", true, WRITE, NS, ACL_NS_SUBMIT_JOB, 0, NS_BODY},
    {"/v1/allocations", false, ANY, NS, ACL_NS_READ_JOB, 0, NS_QUERY},
    {"/v1/allocation/", true, READ, NS, ACL_NS_READ_JOB, 0, NS_ALLOC},
    {"/v1/allocation/", true, WRITE, NS, ACL_NS_ALLOC_LIFECYCLE, 0, NS_ALLOC},
    /* /v1/client/allocation/:id/<op>: see client_alloc_cap */
    {"/v1/client/allocation/", true, ANY, NS, 0, 0, NS_ALLOC},
    {"/v1/client/fs/logs/", true, ANY, NS, ACL_NS_READ_LOGS, 0, NS_ALLOC},
    {"/v1/client/fs/", true, ANY, NS, ACL_NS_READ_FS, 0, NS_ALLOC},
    {"/v1/services", false, ANY, NS, ACL_NS_READ_JOB, 0, NS_QUERY},
    {"/v1/service/", true, READ, NS, ACL_NS_READ_JOB, 0, NS_QUERY},
    {"/v1/service/", true, WRITE, NS, ACL_NS_SUBMIT_JOB, 0, NS_QUERY},
};

/* Anything not in the table (unknown routes included) needs management. */
static const struct need need_management = {"", true, ANY, MANAGEMENT,
                                            0, 0, 0};

static bool is_read(const char *method)
{
    return strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
}

static const struct need *find_need(const struct http_request *req)
{
    bool read = is_read(req->method);
    for (size_t i = 0; i < NC_ARRAY_LEN(needs); i++) {
        const struct need *n = &needs[i];
        if (n->methods == (read ? WRITE : READ))
            continue;
        if (n->prefix ? nc_str_has_prefix(req->path, n->path)
                      : strcmp(req->path, n->path) == 0)
            return n;
    }
    return &need_management;
}

/* /v1/client/allocation/:id/<op>: stats and checks read, exec execs, gc
 * submits (as Nomad's ClientAllocations.GarbageCollect), signal and
 * restart are lifecycle. */
static uint32_t client_alloc_cap(const char *rest)
{
    const char *op = strrchr(rest, '/');
    op = op ? op + 1 : "";
    if (strcmp(op, "stats") == 0 || strcmp(op, "checks") == 0)
        return ACL_NS_READ_JOB;
    if (strcmp(op, "exec") == 0)
        return ACL_NS_ALLOC_EXEC;
    if (strcmp(op, "gc") == 0)
        return ACL_NS_SUBMIT_JOB;
    return ACL_NS_ALLOC_LIFECYCLE;
}

/* The allocation id in a path after the route's prefix: the first
 * segment, or for /v1/client/fs/<op>/:id the second. */
static void alloc_id_of(const struct need *n, const char *path, char *out,
                        size_t outlen)
{
    const char *p = path + strlen(n->path);
    if (strcmp(n->path, "/v1/client/fs/") == 0) {
        const char *slash = strchr(p, '/');
        p = slash ? slash + 1 : "";
    }
    size_t len = strcspn(p, "/");
    if (len >= outlen)
        len = outlen - 1;
    memcpy(out, p, len);
    out[len] = '\0';
}

/* The namespace a job write names in its body, if any (borrowed from
 * *doc, which the caller frees). */
static const char *body_namespace(const struct http_request *req,
                                  json_t **doc)
{
    *doc = req->body_len ? json_loadb(req->body, req->body_len, 0, NULL)
                         : NULL;
    json_t *job = *doc ? http_api_body_field(*doc, "Job") : NULL;
    json_t *ns = job ? http_api_body_field(job, "Namespace") : NULL;
    const char *s = json_string_value(ns);
    return s && *s ? s : NULL;
}

/* The secret the request carries ("" if none). */
static void request_secret(const struct http_request *req, char *out,
                           size_t outlen)
{
    acl_token_from_headers(kv_get(&req->headers, "x-nomad-token"),
                           kv_get(&req->headers, "authorization"), out,
                           outlen);
}

static bool token_holds_policy(const struct acl_token *t, const char *name)
{
    return t && strlist_contains(&t->policies, name);
}

bool http_api_acl_check(struct agent *a, const struct http_request *req,
                        struct http_response *resp)
{
    const struct need *n = find_need(req);
    if (n->kind == OPEN)
        return true;
    char secret[64];
    request_secret(req, secret, sizeof(secret));
    const struct acl *acl;
    const struct acl_token *token;
    switch (acl_store_resolve(a->acl, secret, &acl, &token)) {
    case ACL_TOKEN_INVALID:
        http_response_error(resp, 400, "ACL token is invalid");
        return false;
    case ACL_TOKEN_NOT_FOUND:
        http_response_error(resp, 403, "ACL token not found");
        return false;
    case ACL_RESOLVED:
        break;
    }
    bool ok = false;
    switch (n->kind) {
    case OPEN:
        ok = true;
        break;
    case ANY_TOKEN:
        ok = token != NULL;
        break;
    case MANAGEMENT:
        ok = acl->management;
        break;
    case POLICY_READ:
        ok = acl->management ||
             token_holds_policy(token, req->path + strlen(n->path));
        break;
    case NODE:
        ok = acl_allow_node(acl, n->level);
        break;
    case AGENT:
        ok = acl_allow_agent(acl, n->level);
        break;
    case NS: {
        uint32_t cap = n->cap;
        if (!cap)
            cap = client_alloc_cap(req->path + strlen(n->path));
        const char *ns = kv_get(&req->query, "namespace");
        if (!ns || !*ns)
            ns = "default";
        json_t *doc = NULL;
        if (n->from == NS_ALLOC && a->allocs) {
            char id[64];
            alloc_id_of(n, req->path, id, sizeof(id));
            struct alloc *al = alloc_manager_find(a->allocs, id, NULL);
            if (al && al->namespace)
                ns = al->namespace;
        } else if (n->from == NS_BODY) {
            const char *b = body_namespace(req, &doc);
            if (b)
                ns = b;
        }
        if (nc_str_has_suffix(req->path, "/dispatch"))
            cap = ACL_NS_DISPATCH_JOB;
        ok = acl_allow_ns(acl, ns, cap);
        json_decref(doc);
        break;
    }
    }
    if (!ok)
        http_response_error(resp, 403, "Permission denied");
    return ok;
}

/* ---- /v1/acl routes ---- */

static bool acl_enabled(struct agent *a, struct http_response *resp)
{
    if (a->acl)
        return true;
    http_response_error(resp, 400, "ACL support disabled");
    return false;
}

/* Nomad's ACLToken; `secret` NULL or "" leaves SecretID empty (only its
 * hash is kept, so it is shown when made and to its own holder). */
static json_t *token_json(const struct acl_token *t, const char *secret,
                          bool stub)
{
    json_t *o = json_pack(
        "{s:s, s:s, s:s, s:o, s:n, s:b, s:o, s:I, s:I}", "AccessorID",
        t->accessor_id, "Name", t->name ? t->name : "", "Type",
        t->management ? "management" : "client", "Policies",
        t->management && !t->policies.n ? json_null()
                                        : http_api_strlist_to_json(&t->policies),
        "Roles", "Global", t->global, "CreateTime",
        http_api_time_json(t->create_time), "CreateIndex",
        (json_int_t)t->create_index, "ModifyIndex",
        (json_int_t)t->modify_index);
    if (!stub)
        json_object_set_new(o, "SecretID", json_string(secret ? secret : ""));
    return o;
}

static json_t *policy_json(const struct acl_policy *p, bool stub)
{
    json_t *o = json_pack("{s:s, s:s, s:I, s:I}", "Name", p->name,
                          "Description", p->description ? p->description : "",
                          "CreateIndex", (json_int_t)p->create_index,
                          "ModifyIndex", (json_int_t)p->modify_index);
    if (!stub) {
        json_object_set_new(o, "Rules", json_string(p->rules));
        json_object_set_new(o, "JobACL", json_null());
    }
    return o;
}

static void answer_store_error(struct http_response *resp, int r,
                               const struct nc_error *err)
{
    int status = r == -ENOENT ? 404 : r == -EINVAL || r == -EEXIST ? 400 : 500;
    http_response_error(resp, status, "%s", err->msg);
}

void http_api_acl_bootstrap(struct agent *a, const struct http_request *req,
                            struct http_response *resp)
{
    if (!acl_enabled(a, resp))
        return;
    const char *given = NULL;
    json_t *doc = NULL;
    if (req->body_len) {
        if (!(doc = http_api_parse_body(req, resp)) ||
            !http_api_body_string(doc, "BootstrapSecret", &given, resp)) {
            json_decref(doc);
            return;
        }
    }
    const struct acl_token *t;
    char secret[37];
    struct nc_error err = {0};
    int r = acl_store_bootstrap(a->acl, given, &t, secret, &err);
    json_decref(doc);
    if (r < 0) {
        answer_store_error(resp, r, &err);
        return;
    }
    http_api_set_index(resp, acl_store_index(a->acl));
    http_response_json(resp, 200, token_json(t, secret, false));
}

void http_api_acl_tokens(struct agent *a, const struct http_request *req,
                         struct http_response *resp)
{
    if (!acl_enabled(a, resp))
        return;
    json_t *list = json_array();
    const struct acl_token *t;
    for (size_t i = 0; (t = acl_store_token_at(a->acl, i)); i++)
        json_array_append_new(list, token_json(t, NULL, true));
    http_api_set_index(resp, acl_store_index(a->acl));
    http_response_json(resp, 200, list);
}

/* Name, Type, Policies and Global of a request body into *t (strings
 * borrowed from doc). Returns false after answering 400. */
static bool token_from_body(const json_t *doc, struct acl_token *t,
                            struct http_response *resp)
{
    const char *name, *type;
    if (!http_api_body_string(doc, "Name", &name, resp) ||
        !http_api_body_string(doc, "Type", &type, resp) ||
        !http_api_body_bool(doc, "Global", &t->global, resp))
        return false;
    if (strcmp(type, "client") != 0 && strcmp(type, "management") != 0) {
        http_response_error(resp, 400, "token type must be client or "
                            "management");
        return false;
    }
    t->name = (char *)name;
    t->management = strcmp(type, "management") == 0;
    json_t *pl = http_api_body_field(doc, "Policies");
    size_t i;
    json_t *v;
    if (pl && !json_is_null(pl) && !json_is_array(pl)) {
        http_response_error(resp, 400, "Policies must be a list of names");
        return false;
    }
    json_array_foreach(pl, i, v) {
        if (!json_is_string(v)) {
            http_response_error(resp, 400, "Policies must be a list of names");
            return false;
        }
        strlist_add(&t->policies, json_string_value(v));
    }
    return true;
}

static void token_write(struct agent *a, const struct http_request *req,
                        struct http_response *resp, const char *accessor)
{
    json_t *doc = http_api_parse_body(req, resp);
    if (!doc)
        return;
    struct acl_token t = {0};
    const char *body_acc = "";
    if (token_from_body(doc, &t, resp) &&
        http_api_body_string(doc, "AccessorID", &body_acc, resp)) {
        struct nc_error err = {0};
        const struct acl_token *out;
        char secret[37] = "";
        int r;
        if (accessor && *body_acc && strcmp(body_acc, accessor) != 0) {
            r = nc_error_set(&err, -EINVAL, "Accessor ID in body does not "
                             "match the request path");
        } else if (accessor) {
            snprintf(t.accessor_id, sizeof(t.accessor_id), "%s", accessor);
            r = acl_store_token_update(a->acl, &t, &out, &err);
        } else if (*body_acc) {
            r = nc_error_set(&err, -EINVAL, "AccessorID must be empty to "
                             "create a token");
        } else {
            r = acl_store_token_create(a->acl, &t, &out, secret, &err);
        }
        if (r < 0) {
            answer_store_error(resp, r, &err);
        } else {
            http_api_set_index(resp, acl_store_index(a->acl));
            http_response_json(resp, 200, token_json(out, secret, false));
        }
    }
    strlist_free(&t.policies);
    json_decref(doc);
}

void http_api_acl_token_create(struct agent *a, const struct http_request *req,
                               struct http_response *resp)
{
    if (acl_enabled(a, resp))
        token_write(a, req, resp, NULL);
}

void http_api_acl_token(struct agent *a, const struct http_request *req,
                        struct http_response *resp, const char *accessor)
{
    if (!acl_enabled(a, resp))
        return;
    if (strcmp(accessor, "self") == 0) {
        if (!http_api_method_allowed(req->method, "GET")) {
            http_api_method_not_allowed(resp, "GET");
            return;
        }
        char secret[64];
        request_secret(req, secret, sizeof(secret));
        const struct acl *acl;
        const struct acl_token *t = NULL;
        if (acl_store_resolve(a->acl, secret, &acl, &t) != ACL_RESOLVED || !t) {
            http_response_error(resp, 403, "ACL token not found");
            return;
        }
        http_api_set_index(resp, acl_store_index(a->acl));
        http_response_json(resp, 200, token_json(t, secret, false));
        return;
    }
    if (http_api_method_is(req, "DELETE")) {
        struct nc_error err = {0};
        int r = acl_store_token_delete(a->acl, accessor, &err);
        if (r < 0) {
            answer_store_error(resp, r == -ENOENT ? -EINVAL : r, &err);
            return;
        }
        http_api_set_index(resp, acl_store_index(a->acl));
        http_response_set_status(resp, 200);
    } else if (http_api_method_is(req, "POST") || http_api_method_is(req, "PUT")) {
        token_write(a, req, resp, accessor);
    } else if (http_api_method_allowed(req->method, "GET")) {
        const struct acl_token *t = acl_store_token_get(a->acl, accessor);
        if (!t) {
            http_response_error(resp, 404, "ACL token not found");
            return;
        }
        http_api_set_index(resp, acl_store_index(a->acl));
        http_response_json(resp, 200, token_json(t, NULL, false));
    } else {
        http_api_method_not_allowed(resp, "GET, POST, PUT, DELETE");
    }
}

void http_api_acl_policies(struct agent *a, const struct http_request *req,
                           struct http_response *resp)
{
    if (!acl_enabled(a, resp))
        return;
    json_t *list = json_array();
    const struct acl_policy *p;
    for (size_t i = 0; (p = acl_store_policy_at(a->acl, i)); i++)
        json_array_append_new(list, policy_json(p, true));
    http_api_set_index(resp, acl_store_index(a->acl));
    http_response_json(resp, 200, list);
}

void http_api_acl_policy(struct agent *a, const struct http_request *req,
                         struct http_response *resp, const char *name)
{
    if (!acl_enabled(a, resp))
        return;
    struct nc_error err = {0};
    if (http_api_method_is(req, "DELETE")) {
        int r = acl_store_policy_delete(a->acl, name, &err);
        if (r < 0) {
            answer_store_error(resp, r, &err);
            return;
        }
        http_api_set_index(resp, acl_store_index(a->acl));
        http_response_set_status(resp, 200);
    } else if (http_api_method_is(req, "POST") || http_api_method_is(req, "PUT")) {
        json_t *doc = http_api_parse_body(req, resp);
        const char *bname, *desc, *rules;
        if (!doc || !http_api_body_string(doc, "Name", &bname, resp) ||
            !http_api_body_string(doc, "Description", &desc, resp) ||
            !http_api_body_string(doc, "Rules", &rules, resp)) {
            json_decref(doc);
            return;
        }
        int r;
        if (*bname && strcmp(bname, name) != 0)
            r = nc_error_set(&err, -EINVAL, "ACL policy name does not match "
                             "request path");
        else
            r = acl_store_policy_upsert(a->acl, name, desc, rules, &err);
        json_decref(doc);
        if (r < 0) {
            answer_store_error(resp, r, &err);
            return;
        }
        http_api_set_index(resp, acl_store_index(a->acl));
        http_response_set_status(resp, 200);
    } else if (http_api_method_allowed(req->method, "GET")) {
        const struct acl_policy *p = acl_store_policy_get(a->acl, name);
        if (!p) {
            http_response_error(resp, 404, "ACL policy not found");
            return;
        }
        http_api_set_index(resp, acl_store_index(a->acl));
        http_response_json(resp, 200, policy_json(p, false));
    } else {
        http_api_method_not_allowed(resp, "GET, POST, PUT, DELETE");
    }
}
