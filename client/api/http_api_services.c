/* http_api_services.c - services, registrations, checks, metrics: thin
 * handlers over the catalog and registrations (client/services/) and metrics. */
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

/* GET /v1/agent/checks: every check this node runs, with its live state. */
void http_api_agent_checks(struct agent *a, const struct http_request *req,
                           struct http_response *resp)
{
    http_response_json(resp, 200, alloc_checks_agent_json(a->checks));
}

/* Whether the query names `key`, with or without a value ("?passing"). */
static bool query_has(const struct http_request *req, const char *key)
{
    for (size_t i = 0; i < req->query.n; i++)
        if (strcmp(req->query.items[i].key, key) == 0)
            return !nc_streq(req->query.items[i].value, "false") &&
                   !nc_streq(req->query.items[i].value, "0");
    return false;
}

/* Nomad's bexpr ?filter is not implemented: answering unfiltered would
 * look like a match. */
static bool refuse_filter(const struct http_request *req,
                          struct http_response *resp)
{
    if (!kv_get(&req->query, "filter"))
        return false;
    http_response_error(resp, 400, "?filter expressions are not supported by "
                                   "this agent; use ?namespace, ?choose or "
                                   "?passing");
    return true;
}

static json_t *consul_describe_cb(void *arg, const char *id)
{
    return consul_sync_describe(arg, id);
}

static json_t *alloc_stats_cb(void *arg, struct alloc *al)
{
    return alloc_stats_json(al, &((struct agent *)arg)->node);
}

/* What the registration view reads; release with reg_inputs_put. */
struct reg_inputs {
    struct registrations_source src;
    json_t *checks, *stale, *status;
};

static void reg_inputs_get(struct agent *a, struct reg_inputs *in)
{
    in->checks = a->checks ? alloc_checks_agent_json(a->checks) : NULL;
    in->stale = a->consul ? consul_sync_stale(a->consul) : NULL;
    in->status = a->consul ? consul_sync_status(a->consul) : NULL;
    in->src = (struct registrations_source){
        .desired = &a->services, .node = &a->node, .catalog = a->catalog,
        .consul_describe = a->consul ? consul_describe_cb : NULL,
        .consul_arg = a->consul, .consul_stale = in->stale,
        .consul_status = in->status, .checks = in->checks,
        .allocs = a->allocs ? a->allocs->allocs : NULL,
        .nallocs = a->allocs ? a->allocs->nallocs : 0};
}

static void reg_inputs_put(struct reg_inputs *in)
{
    json_decref(in->checks);
    json_decref(in->stale);
    json_decref(in->status);
}

/* GET /v1/services[?namespace=] */
void http_api_services(struct agent *a, const struct http_request *req,
                       struct http_response *resp)
{
    if (refuse_filter(req, resp))
        return;
    struct catalog_query q = {.namespace_ = kv_get(&req->query, "namespace")};
    http_api_set_index(resp, a->catalog ? catalog_index(a->catalog) : 0);
    http_response_json(resp, 200, a->catalog
                                      ? catalog_list_query_json(a->catalog, &q)
                                      : json_array());
}

/* GET /v1/service/:name[?namespace=&choose=n|key&passing] */
void http_api_service(struct agent *a, const struct http_request *req,
                      struct http_response *resp, const char *name)
{
    const char *slash = strchr(name, '/');
    if (slash && strchr(slash + 1, '/')) {
        http_response_error(resp, 400, "invalid URI");
    } else if (slash) {
        http_response_error(resp, 405, "registrations of this node follow "
                                       "its allocations: stop the job or "
                                       "allocation to remove one");
    } else if (!*name) {
        http_response_error(resp, 400, "missing service name");
    } else if (!http_api_method_allowed(req->method, "GET")) {
        http_api_method_not_allowed(resp, "GET");
    } else if (!refuse_filter(req, resp)) {
        struct catalog_query q = {
            .namespace_ = kv_get(&req->query, "namespace"),
            .choose = kv_get(&req->query, "choose"),
            .passing = query_has(req, "passing")};
        json_t *list = NULL;
        struct nc_error err = {0};
        if (!a->catalog)
            list = json_array();
        else if (catalog_service_query(a->catalog, name, &q, &list, &err) < 0) {
            http_response_error(resp, 400, "%s", err.msg);
            return;
        }
        http_api_set_index(resp, a->catalog ? catalog_index(a->catalog) : 0);
        http_response_json(resp, 200, list);
    }
}

/* The names of this node's services, for a "not found" message. */
static char *service_names(const struct agent *a)
{
    struct strlist names = {0};
    for (size_t i = 0; i < a->services.n; i++)
        if (!strlist_contains(&names, a->services.regs[i].name))
            strlist_add(&names, a->services.regs[i].name);
    struct nc_buf b = {0};
    for (size_t i = 0; i < names.n; i++)
        nc_buf_printf(&b, "%s%s", i ? ", " : "", names.items[i]);
    strlist_free(&names);
    return b.data ? nc_buf_take(&b) : xstrdup("none");
}

/* GET /v1/agent/registrations[?service=NAME&detail=true] */
void http_api_registrations(struct agent *a, const struct http_request *req,
                            struct http_response *resp)
{
    const char *service = kv_get(&req->query, "service");
    struct registrations_filter f = {
        .service = service && *service ? service : NULL,
        .detail = (service && *service) || query_has(req, "detail")};
    struct reg_inputs in = {0};
    reg_inputs_get(a, &in);
    json_t *view = registrations_json(&in.src, &f);
    reg_inputs_put(&in);
    if (f.service && !json_array_size(json_object_get(view, "Registrations")) &&
        !json_array_size(json_object_get(view, "Stale"))) {
        char *names = service_names(a);
        http_response_error(resp, 404, "no registration of service \"%s\" on "
                                       "this node (its services: %s)",
                            f.service, names);
        free(names);
        json_decref(view);
        return;
    }
    http_response_json(resp, 200, view);
}

/* GET /v1/agent/registration/:id (full ID or unique prefix) */
void http_api_registration(struct agent *a, const struct http_request *req,
                           struct http_response *resp, const char *id)
{
    if (!http_api_method_allowed(req->method, "GET")) {
        http_api_method_not_allowed(resp, "GET");
        return;
    }
    if (!*id) {
        http_response_error(resp, 400, "missing registration ID");
        return;
    }
    struct registrations_filter f = {.id = id, .detail = true};
    struct reg_inputs in = {0};
    reg_inputs_get(a, &in);
    json_t *view = registrations_json(&in.src, &f);
    reg_inputs_put(&in);
    json_t *regs = json_object_get(view, "Registrations");
    json_t *stale = json_object_get(view, "Stale");
    size_t n = json_array_size(regs) + json_array_size(stale);
    if (n == 1)
        http_response_json(resp, 200,
                           json_incref(json_array_size(regs)
                                           ? json_array_get(regs, 0)
                                           : json_array_get(stale, 0)));
    else if (n == 0)
        http_response_error(resp, 404, "no registration with ID \"%s\" on "
                                       "this node",
                            id);
    else
        http_response_error(resp, 400, "registration ID prefix \"%s\" "
                                       "matches %zu registrations",
                            id, n);
    json_decref(view);
}

/* GET /v1/metrics[?format=prometheus]: computed on the request. */
void http_api_metrics(struct agent *a, const struct http_request *req,
                      struct http_response *resp)
{
    const char *format = kv_get(&req->query, "format");
    if (format && *format && strcmp(format, "prometheus") != 0) {
        http_response_error(resp, 400, "unknown format \"%s\": use "
                                       "format=prometheus, or none for JSON",
                            format);
        return;
    }
    struct reg_inputs in = {0};
    reg_inputs_get(a, &in);
    json_t *view = registrations_json(&in.src, NULL);
    struct metrics_source ms = {
        .node = &a->node, .host = hoststats_latest(a->stats),
        .allocs = in.src.allocs, .nallocs = in.src.nallocs,
        .alloc_stats = alloc_stats_cb, .alloc_stats_arg = a,
        .checks = in.checks, .consul_status = in.status,
        .registrations = view};
    struct metrics *m = metrics_collect(&ms);
    json_decref(view);
    reg_inputs_put(&in);
    if (format && *format) {
        char *text = metrics_prometheus(m);
        http_response_set_body(resp, text, strlen(text),
                               "text/plain; version=0.0.4; charset=utf-8");
        free(text);
    } else {
        http_response_json(resp, 200, metrics_json(m));
    }
    metrics_free(m);
}
