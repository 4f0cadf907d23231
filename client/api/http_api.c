/* http_api.c - the agent's HTTP API, in Nomad's shapes: field names and
 * paths follow Nomad's /v1 API so its users' tools and habits carry over.
 * Errors are always JSON: {"error": "..."} with a 4xx/5xx status.
 *
 * This file holds the route table, the dispatcher and the helpers every
 * route file uses; the routes live by group in http_api_node.c (agent and
 * node), http_api_jobs.c, http_api_allocs.c and http_api_services.c
 * (services, registrations, checks, metrics). */
#include "client/api/internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client/agent.h"
#include "client/alloc/alloc.h"
#include "client/job/job.h"
#include "client/node/node.h"
#include "client/services/services.h"

json_t *http_api_strlist_to_json(const struct strlist *l)
{
    json_t *a = json_array();
    for (size_t i = 0; i < l->n; i++)
        json_array_append_new(a, json_string(l->items[i]));
    return a;
}

json_t *http_api_parse_body(const struct http_request *req,
                            struct http_response *resp)
{
    if (!req->body_len) {
        http_response_error(resp, 400, "request body is empty; expected JSON");
        return NULL;
    }
    json_error_t jerr;
    json_t *doc = json_loadb(req->body, req->body_len, 0, &jerr);
    if (!doc) {
        http_response_error(resp, 400, "invalid JSON in request body at line %d column %d: %s",
                            jerr.line, jerr.column, jerr.text);
        return NULL;
    }
    if (!json_is_object(doc)) {
        json_decref(doc);
        http_response_error(resp, 400, "request body must be a JSON object");
        return NULL;
    }
    return doc;
}

void http_api_set_index(struct http_response *resp, uint64_t index)
{
    char buf[32];
    snprintf(buf, sizeof(buf), "%llu", (unsigned long long)index);
    http_response_set_header(resp, "X-Nomad-Index", buf);
    http_response_set_header(resp, "X-Nomad-KnownLeader", "true");
    http_response_set_header(resp, "X-Nomad-LastContact", "0");
}

bool http_api_method_is(const struct http_request *req, const char *m)
{
    return strcmp(req->method, m) == 0;
}

void http_api_method_not_allowed(struct http_response *resp, const char *allow)
{
    http_response_set_header(resp, "Allow", allow);
    http_response_error(resp, 405, "method not allowed; use %s", allow);
}

static void handle_leader(struct agent *a, const struct http_request *req,
                          struct http_response *resp)
{
    http_response_json(resp, 200, json_string(""));
}

typedef void (*route_fn)(struct agent *a, const struct http_request *req,
                         struct http_response *resp);

static const struct route {
    const char *path;
    const char *methods; /* the Allow header: methods accepted */
    route_fn fn;
} routes[] = {
    {"/v1/agent/self", "GET", http_api_agent_self},
    {"/v1/agent/health", "GET", http_api_agent_health},
    {"/v1/agent/checks", "GET", http_api_agent_checks},
    {"/v1/agent/registrations", "GET", http_api_registrations},
    {"/v1/services", "GET", http_api_services},
    {"/v1/metrics", "GET", http_api_metrics},
    {"/v1/nodes", "GET", http_api_nodes},
    {"/v1/client/stats", "GET", http_api_client_stats},
    {"/v1/jobs", "GET, POST, PUT", http_api_jobs},
    {"/v1/jobs/parse", "POST, PUT", http_api_jobs_parse},
    {"/v1/validate/job", "POST, PUT", http_api_validate_job},
    {"/v1/allocations", "GET", http_api_allocations},
    {"/v1/client/leftovers", "GET, DELETE", http_api_leftovers},
    {"/v1/client/gc", "GET, PUT, POST", http_api_client_gc},
    {"/v1/status/leader", "GET", handle_leader},
    {"/v1/acl/bootstrap", "POST, PUT", http_api_acl_bootstrap},
    {"/v1/acl/tokens", "GET", http_api_acl_tokens},
    {"/v1/acl/token", "POST, PUT", http_api_acl_token_create},
    {"/v1/acl/policies", "GET", http_api_acl_policies},
};

bool http_api_method_allowed(const char *method, const char *allowed)
{
    if (strcmp(method, "HEAD") == 0)
        method = "GET";
    size_t n = strlen(method);
    for (const char *p = allowed; (p = strstr(p, method)); p += n)
        if ((p == allowed || p[-1] == ' ') && (p[n] == ',' || !p[n]))
            return true;
    return false;
}

void http_api_handle(void *ctx, const struct http_request *req,
                     struct http_response *resp)
{
    struct agent *a = ctx;
    const char *p = req->path;
    if (a->acl && !http_api_exec_token_later(req) &&
        !http_api_acl_check(a, req, resp))
        return;
    for (size_t i = 0; i < NC_ARRAY_LEN(routes); i++) {
        if (strcmp(p, routes[i].path) != 0)
            continue;
        if (http_api_method_allowed(req->method, routes[i].methods))
            routes[i].fn(a, req, resp);
        else
            http_api_method_not_allowed(resp, routes[i].methods);
        return;
    }
    if (nc_str_has_prefix(p, "/v1/node/"))
        http_api_node(a, req, resp, p + strlen("/v1/node/"));
    else if (nc_str_has_prefix(p, "/v1/job/"))
        http_api_job(a, req, resp, p + strlen("/v1/job/"));
    else if (nc_str_has_prefix(p, "/v1/client/fs/logs/"))
        http_api_fs_logs(a, req, resp, p + strlen("/v1/client/fs/logs/"));
    else if (nc_str_has_prefix(p, "/v1/client/fs/"))
        http_api_fs(a, req, resp, p + strlen("/v1/client/fs/"));
    else if (nc_str_has_prefix(p, "/v1/client/allocation/") &&
             nc_str_has_suffix(p, "/exec"))
        http_api_alloc_exec(a, req, resp, p + strlen("/v1/client/allocation/"));
    else if (nc_str_has_prefix(p, "/v1/client/allocation/"))
        http_api_client_allocation(a, req, resp,
                                 p + strlen("/v1/client/allocation/"));
    else if (nc_str_has_prefix(p, "/v1/service/"))
        http_api_service(a, req, resp, p + strlen("/v1/service/"));
    else if (nc_str_has_prefix(p, "/v1/agent/registration/"))
        http_api_registration(a, req, resp, p + strlen("/v1/agent/registration/"));
    else if (nc_str_has_prefix(p, "/v1/acl/token/"))
        http_api_acl_token(a, req, resp, p + strlen("/v1/acl/token/"));
    else if (nc_str_has_prefix(p, "/v1/acl/policy/"))
        http_api_acl_policy(a, req, resp, p + strlen("/v1/acl/policy/"));
    else if (nc_str_has_prefix(p, "/v1/allocation/"))
        http_api_allocation(a, req, resp, p + strlen("/v1/allocation/"));
    else
        http_response_error(resp, 404, "no such endpoint: %s %s", req->method, p);
}
