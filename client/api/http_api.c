/* http_api.c - the agent's HTTP API, in Nomad's shapes: field names and
 * paths follow Nomad's /v1 API so its users' tools and habits carry over.
 * Errors are always JSON: {"error": "..."} with a 4xx/5xx status. */
#include "client/api/api.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client/agent.h"
#include "client/hcl/hcl.h"
#include "client/services/services.h"
#include "client/alloc/alloc.h"
#include "client/node/node.h"
#include "client/job/job.h"

#define NOMAD_API_VERSION "1.7.7"

static bool method_allowed(const char *method, const char *allowed);

/* Allocation stubs of this node, newest first, optionally of one job. */
static json_t *alloc_list_json(struct agent *a, const char *job_id)
{
    json_t *list = json_array();
    for (size_t i = a->allocs ? a->allocs->nallocs : 0; i-- > 0;) {
        const struct alloc *al = a->allocs->allocs[i];
        if (!job_id || strcmp(al->job_id, job_id) == 0)
            json_array_append_new(list, alloc_stub_to_json(al));
    }
    return list;
}

static json_t *kv_to_json(const struct kvlist *l)
{
    json_t *o = json_object();
    for (size_t i = 0; i < l->n; i++)
        json_object_set_new(o, l->items[i].key, json_string(l->items[i].value));
    return o;
}

static json_t *strlist_to_json(const struct strlist *l)
{
    json_t *a = json_array();
    for (size_t i = 0; i < l->n; i++)
        json_array_append_new(a, json_string(l->items[i]));
    return a;
}

static json_t *node_to_json(const struct agent *a)
{
    const struct node *n = &a->node;
    json_t *drivers = json_object();
    for (size_t i = 0; i < n->ndrivers; i++) {
        const struct node_driver *d = &n->drivers[i];
        json_t *attrs = json_object();
        char prefix[128];
        snprintf(prefix, sizeof(prefix), "driver.%s", d->name);
        for (size_t k = 0; k < n->attributes.n; k++)
            if (nc_str_has_prefix(n->attributes.items[k].key, prefix))
                json_object_set_new(attrs, n->attributes.items[k].key,
                                    json_string(n->attributes.items[k].value));
        json_object_set_new(
            drivers, d->name,
            json_pack("{s:o, s:b, s:b, s:s, s:I}", "Attributes", attrs,
                      "Detected", d->detected, "Healthy", d->healthy,
                      "HealthDescription",
                      d->health_description ? d->health_description : "",
                      "UpdateTime", (json_int_t)n->start_time_unix_ns));
    }
    json_t *volumes = json_object();
    for (size_t i = 0; i < n->nhost_volumes; i++)
        json_object_set_new(volumes, n->host_volumes[i].name,
                            json_pack("{s:s, s:s, s:b}", "Name",
                                      n->host_volumes[i].name, "Path",
                                      n->host_volumes[i].path, "ReadOnly",
                                      n->host_volumes[i].read_only));
    json_t *cores = json_array();
    for (int i = 0; i < n->resources.cores; i++)
        json_array_append_new(cores, json_integer(i));

    int cpu = 0;
    int64_t mem = 0, disk = 0;
    agent_allocated(a, NULL, &cpu, &mem, &disk, NULL);

    json_t *o = json_object();
    json_object_set_new(o, "ID", json_string(n->id));
    json_object_set_new(o, "Name", json_string(n->name));
    json_object_set_new(o, "Datacenter", json_string(n->datacenter));
    json_object_set_new(o, "NodeClass", json_string(n->node_class ? n->node_class : ""));
    json_object_set_new(o, "NodePool", json_string(n->node_pool ? n->node_pool : "default"));
    json_object_set_new(o, "HTTPAddr", json_string(n->http_addr ? n->http_addr : ""));
    json_object_set_new(o, "TLSEnabled", json_false());
    json_object_set_new(o, "Attributes", kv_to_json(&n->attributes));
    json_object_set_new(o, "Meta", kv_to_json(&n->meta));
    json_object_set_new(o, "Drivers", drivers);
    json_object_set_new(o, "HostVolumes", volumes);
    json_object_set_new(o, "HostNetworks", json_object());
    json_object_set_new(o, "Drain", json_false());
    json_object_set_new(o, "SchedulingEligibility",
                        json_string(n->eligible ? "eligible" : "ineligible"));
    json_object_set_new(o, "Status", json_string(n->status ? n->status : "ready"));
    json_object_set_new(o, "StatusDescription", json_string(""));
    json_object_set_new(o, "StatusUpdatedAt",
                        json_integer(n->start_time_unix_ns / 1000000000));
    json_object_set_new(
        o, "NodeResources",
        json_pack("{s:{s:i, s:i, s:o}, s:{s:I}, s:{s:I}, s:[], s:i, s:i}",
                  "Cpu", "CpuShares", n->resources.cpu_mhz, "TotalCpuCores",
                  n->resources.cores, "ReservableCpuCores", cores, "Memory",
                  "MemoryMB", (json_int_t)n->resources.memory_mb, "Disk",
                  "DiskMB", (json_int_t)n->resources.disk_mb, "Networks",
                  "MinDynamicPort", a->cfg->client.min_dynamic_port,
                  "MaxDynamicPort", a->cfg->client.max_dynamic_port));
    json_object_set_new(
        o, "ReservedResources",
        json_pack("{s:{s:i}, s:{s:I}, s:{s:I}, s:{s:s}}", "Cpu", "CpuShares",
                  n->reserved.cpu_mhz, "Memory", "MemoryMB",
                  (json_int_t)n->reserved.memory_mb, "Disk", "DiskMB",
                  (json_int_t)n->reserved.disk_mb, "Networks",
                  "ReservedHostPorts",
                  n->reserved.reserved_ports ? n->reserved.reserved_ports : ""));
    /* Not in Nomad's Node: what the jobs on this node take, so that
     * `status -self` can show allocated resources without a server. */
    json_object_set_new(o, "AllocatedResources",
                        json_pack("{s:i, s:I, s:I}", "CpuMHz", cpu, "MemoryMB",
                                  (json_int_t)mem, "DiskMB", (json_int_t)disk));
    /* and what the running allocations use, as `nomad node status` sums
     * their stats: CPU ticks (MHz) and resident memory */
    double used_mhz = 0;
    json_int_t used_mem = 0;
    for (size_t i = 0; a->allocs && i < a->allocs->nallocs; i++) {
        struct alloc *al = a->allocs->allocs[i];
        if (!nc_streq(al->client_status, "running"))
            continue;
        json_t *st = alloc_stats_json(al, &a->node);
        json_t *ru = json_object_get(st, "ResourceUsage");
        used_mhz += json_number_value(
            json_object_get(json_object_get(ru, "CpuStats"), "TotalTicks"));
        used_mem += json_integer_value(
            json_object_get(json_object_get(ru, "MemoryStats"), "RSS"));
        json_decref(st);
    }
    json_object_set_new(o, "AllocationUtilization",
                        json_pack("{s:i, s:I}", "CpuMHz", (int)(used_mhz + 0.5),
                                  "MemoryBytes", used_mem));
    json_object_set_new(
        o, "Events",
        json_pack("[{s:s, s:s, s:{}, s:I}]", "Message", "Node registered",
                  "Subsystem", "Cluster", "Details", "Timestamp",
                  (json_int_t)n->start_time_unix_ns));
    json_object_set_new(o, "CreateIndex", json_integer(1));
    json_object_set_new(o, "ModifyIndex", json_integer(1));
    return o;
}

static void handle_agent_self(struct agent *a, struct http_response *resp)
{
    const struct agent_config *c = a->cfg;
    json_t *vols = json_object();
    for (size_t i = 0; i < c->client.nhost_volumes; i++)
        json_object_set_new(vols, c->client.host_volumes[i].name,
                            json_pack("{s:s, s:b}", "Path",
                                      c->client.host_volumes[i].path,
                                      "ReadOnly",
                                      c->client.host_volumes[i].read_only));
    json_t *files = strlist_to_json(&c->files);
    uint64_t up = (nc_now_mono_ns() - a->start_mono_ns) / 1000000000ull;
    json_t *body = json_pack(
        "{s:{s:s, s:s, s:s, s:s, s:s, s:b, s:{s:i}, s:s, s:b, s:o, "
        "s:{s:b, s:s, s:s, s:o, s:s, s:s, s:s, s:s, s:i, s:i}, "
        "s:{s:s, s:b}, s:{s:b}, s:{s:s, s:s}}, "
        "s:{s:s, s:s, s:i, s:s, s:{s:s, s:s, s:s}}, "
        "s:{s:{s:s, s:s, s:i, s:s}, s:{s:s, s:s}, s:{s:s}}}",
        "config", "Datacenter", c->datacenter, "Region", c->region, "DataDir",
        c->data_dir, "NodeName", a->node.name, "BindAddr", c->bind_addr,
        "DevMode", c->dev_mode, "Ports", "HTTP", c->http_port, "LogLevel",
        c->log_level, "LogJson", c->log_json, "Files", files, "Client",
        "Enabled", c->client.enabled, "NodeClass",
        c->client.node_class ? c->client.node_class : "", "NodePool",
        c->client.node_pool ? c->client.node_pool : "default", "HostVolumes",
        vols, "CNIPath", c->client.cni_path, "CNIConfigDir",
        c->client.cni_config_dir, "BridgeNetworkName",
        c->client.bridge_network_name, "BridgeNetworkSubnet",
        c->client.bridge_network_subnet, "MinDynamicPort",
        c->client.min_dynamic_port, "MaxDynamicPort",
        c->client.max_dynamic_port, "Consul", "Addr",
        c->consul.address ? c->consul.address : "", "EnableSSL", c->consul.ssl,
        "ACL", "Enabled", c->acl.enabled, "Version", "Version",
        NOMAD_API_VERSION, "Nomclient", NOMCLIENT_VERSION,
        "member", "Name", a->node.name, "Addr", c->bind_addr, "Port",
        c->http_port, "Status", "alive", "Tags", "dc", c->datacenter, "region",
        c->region, "role", "client",
        "stats", "client", "node_id", a->node.id, "known_servers", "0",
        "num_allocations", 0, "last_heartbeat", "0", "nomad", "version",
        NOMCLIENT_VERSION, "api", NOMAD_API_VERSION, "runtime", "arch",
        kv_get(&a->node.attributes, "cpu.arch")
            ? kv_get(&a->node.attributes, "cpu.arch")
            : "unknown");
    if (!body) {
        http_response_error(resp, 500, "cannot encode agent self");
        return;
    }
    char upbuf[32];
    snprintf(upbuf, sizeof(upbuf), "%llu", (unsigned long long)up);
    json_object_set_new(json_object_get(json_object_get(body, "stats"), "runtime"),
                        "uptime_seconds", json_string(upbuf));
    json_object_set_new(json_object_get(json_object_get(body, "stats"), "client"),
                        "num_jobs", json_integer((json_int_t)a->store->njobs));
    http_response_json(resp, 200, body);
}

static char *format_warnings(const struct strlist *w)
{
    if (!w->n)
        return xstrdup("");
    struct nc_buf b = {0};
    nc_buf_printf(&b, "%zu warning%s:\n", w->n, w->n == 1 ? "" : "s");
    for (size_t i = 0; i < w->n; i++)
        nc_buf_printf(&b, "\n* %s", w->items[i]);
    return nc_buf_take(&b);
}

static json_t *job_summary_json(const struct job_entry *e)
{
    json_t *summary = json_object();
    bool per_node = nc_streq(e->job->type, "system") ||
                    nc_streq(e->job->type, "sysbatch");
    for (size_t g = 0; g < e->job->ngroups; g++) {
        const struct task_group *tg = &e->job->groups[g];
        int queued = e->stop ? 0 : (per_node ? 1 : tg->count);
        json_object_set_new(summary, tg->name,
                            json_pack("{s:i, s:i, s:i, s:i, s:i, s:i, s:i}",
                                      "Queued", queued, "Complete", 0,
                                      "Failed", 0, "Running", 0, "Starting", 0,
                                      "Lost", 0, "Unknown", 0));
    }
    return json_pack("{s:s, s:s, s:o, s:{s:i, s:i, s:i}, s:I, s:I}", "JobID",
                     e->job->id, "Namespace", e->job->namespace, "Summary",
                     summary, "Children", "Pending", 0, "Running", 0, "Dead",
                     0, "CreateIndex", (json_int_t)e->create_index,
                     "ModifyIndex", (json_int_t)e->modify_index);
}

static json_t *job_stub_json(const struct job_entry *e)
{
    const struct job *j = e->job;
    return json_pack(
        "{s:s, s:s, s:s, s:s, s:o, s:s, s:s, s:i, s:b, s:b, s:b, s:s, s:s, "
        "s:o, s:I, s:I, s:I, s:I}",
        "ID", j->id, "ParentID", "", "Name", j->name, "Namespace", j->namespace,
        "Datacenters", strlist_to_json(&j->datacenters), "NodePool",
        j->node_pool ? j->node_pool : "default", "Type", j->type, "Priority",
        j->priority, "Periodic", j->periodic != NULL, "ParameterizedJob",
        j->parameterized != NULL, "Stop", e->stop, "Status",
        state_job_status(e), "StatusDescription", "", "JobSummary",
        job_summary_json(e), "CreateIndex", (json_int_t)e->create_index,
        "ModifyIndex", (json_int_t)e->modify_index, "JobModifyIndex",
        (json_int_t)e->job_modify_index, "SubmitTime",
        (json_int_t)e->submit_time);
}

static json_t *job_full_json(const struct job_entry *e)
{
    json_t *o = jobspec_to_json(e->job);
    json_object_set_new(o, "Stop", json_boolean(e->stop));
    json_object_set_new(o, "Status", json_string(state_job_status(e)));
    json_object_set_new(o, "StatusDescription", json_string(""));
    json_object_set_new(o, "Stable", json_false());
    json_object_set_new(o, "Version", json_integer((json_int_t)e->version));
    json_object_set_new(o, "SubmitTime", json_integer(e->submit_time));
    json_object_set_new(o, "CreateIndex", json_integer((json_int_t)e->create_index));
    json_object_set_new(o, "ModifyIndex", json_integer((json_int_t)e->modify_index));
    json_object_set_new(o, "JobModifyIndex",
                        json_integer((json_int_t)e->job_modify_index));
    return o;
}

static json_t *parse_body(const struct http_request *req,
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

static void set_index(struct http_response *resp, uint64_t index)
{
    char buf[32];
    snprintf(buf, sizeof(buf), "%llu", (unsigned long long)index);
    http_response_set_header(resp, "X-Nomad-Index", buf);
    http_response_set_header(resp, "X-Nomad-KnownLeader", "true");
    http_response_set_header(resp, "X-Nomad-LastContact", "0");
}

/* POST /v1/jobs and POST /v1/job/:id */
static void handle_job_register(struct agent *a, const struct http_request *req,
                                struct http_response *resp, const char *path_id)
{
    json_t *doc = parse_body(req, resp);
    if (!doc)
        return;
    json_t *jj = json_object_get(doc, "Job");
    if (!json_is_object(jj)) {
        json_decref(doc);
        http_response_error(resp, 400, "Job must be specified");
        return;
    }
    struct job *job = NULL;
    struct nc_error err = {0};
    if (jobspec_from_json(jj, &job, &err) < 0) {
        json_decref(doc);
        http_response_error(resp, 400, "%s", err.msg);
        return;
    }
    if (path_id && strcmp(path_id, job->id) != 0) {
        json_decref(doc);
        jobspec_free(job);
        http_response_error(resp, 400, "Job ID does not match name");
        return;
    }
    struct job_entry *old = state_get_job(a->store, job->id);
    if (json_is_true(json_object_get(doc, "EnforceIndex"))) {
        json_t *want = json_object_get(doc, "JobModifyIndex");
        json_int_t w = json_is_integer(want) ? json_integer_value(want) : 0;
        json_int_t have = old ? (json_int_t)old->job_modify_index : 0;
        if (w != have) {
            json_decref(doc);
            jobspec_free(job);
            http_response_error(resp, 409,
                                "Enforcing job modify index %lld: job %s with "
                                "conflicting job modify index: %lld",
                                (long long)w, have ? "exists" : "does not exist",
                                (long long)have);
            return;
        }
    }
    json_decref(doc);

    struct placement_usage used = {0};
    agent_allocated(a, job->id, &used.cpu_mhz, &used.memory_mb, &used.disk_mb,
                    &used.used_ports);
    struct placement_result pr = {0};
    placement_check(job, &a->node, &used, &pr);
    strlist_free(&used.used_ports);
    if (!pr.ok) {
        json_t *failed = json_object();
        for (size_t i = 0; i < pr.ngroups; i++) {
            const struct placement_group_result *g = &pr.groups[i];
            if (g->placed >= g->desired)
                continue;
            json_object_set_new(failed, g->group,
                                json_pack("{s:i, s:i, s:o}", "Desired",
                                          g->desired, "Placed", g->placed,
                                          "Reasons",
                                          strlist_to_json(&g->reasons)));
        }
        LOG_INFO("api", "job %s refused: %s", job->id, pr.message);
        http_response_json(resp, 422,
                           json_pack("{s:s, s:o}", "error",
                                     pr.message ? pr.message
                                                : "Placement failed",
                                     "FailedTGAllocs", failed));
        placement_result_free(&pr);
        jobspec_free(job);
        return;
    }
    placement_result_free(&pr);

    char *warnings = format_warnings(&job->warnings);
    struct job_entry *e = NULL;
    char *id = xstrdup(job->id);
    if (state_put_job(a->store, job, &e, &err) < 0) {
        http_response_error(resp, 500, "storing job %s: %s", id, err.msg);
        free(id);
        free(warnings);
        return;
    }
    LOG_INFO("api", "job %s registered (version %llu)", id,
             (unsigned long long)e->version);
    if (a->allocs)
        alloc_manager_run_job(a->allocs, e->job, e->version, &err);
    free(id);
    char eval[37];
    nc_uuid(eval);
    set_index(resp, e->modify_index);
    http_response_json(
        resp, 200,
        json_pack("{s:s, s:I, s:I, s:s, s:I, s:i, s:b}", "EvalID", eval,
                  "EvalCreateIndex", (json_int_t)e->modify_index,
                  "JobModifyIndex", (json_int_t)e->job_modify_index,
                  "Warnings", warnings, "Index", (json_int_t)e->modify_index,
                  "LastContact", 0, "KnownLeader", true));
    free(warnings);
}

/* POST /v1/jobs/parse: {"JobHCL": "...", "Canonicalize": true} */
static void handle_jobs_parse(const struct http_request *req,
                              struct http_response *resp)
{
    json_t *doc = parse_body(req, resp);
    if (!doc)
        return;
    const char *hcl = json_string_value(json_object_get(doc, "JobHCL"));
    if (!hcl) {
        json_decref(doc);
        http_response_error(resp, 400, "JobHCL must be a string");
        return;
    }
    struct job *job = NULL;
    struct nc_error err = {0};
    int r = jobspec_parse_hcl("input.hcl", hcl, strlen(hcl), &job, &err);
    json_decref(doc);
    if (r < 0) {
        http_response_error(resp, 400, "%s", err.msg);
        return;
    }
    http_response_json(resp, 200, jobspec_to_json(job));
    jobspec_free(job);
}

/* PUT /v1/validate/job: Nomad's shape, errors in the body with 200. */
static void handle_validate(const struct http_request *req,
                            struct http_response *resp)
{
    json_t *doc = parse_body(req, resp);
    if (!doc)
        return;
    struct job *job = NULL;
    struct nc_error err = {0};
    json_t *jj = json_object_get(doc, "Job");
    int r = json_is_object(jj) ? jobspec_from_json(jj, &job, &err)
                               : nc_error_set(&err, -EINVAL, "Job must be specified");
    json_decref(doc);
    json_t *errors = json_array();
    char *warnings = xstrdup("");
    if (r < 0) {
        json_array_append_new(errors, json_string(err.msg));
    } else {
        free(warnings);
        warnings = format_warnings(&job->warnings);
    }
    http_response_json(resp, 200,
                       json_pack("{s:b, s:o, s:s, s:s}", "DriverConfigValidated",
                                 r == 0, "ValidationErrors", errors, "Error",
                                 r < 0 ? err.msg : "", "Warnings", warnings));
    free(warnings);
    jobspec_free(job);
}

static bool method_is(const struct http_request *req, const char *m)
{
    return strcmp(req->method, m) == 0;
}

static void method_not_allowed(struct http_response *resp, const char *allow)
{
    http_response_set_header(resp, "Allow", allow);
    http_response_error(resp, 405, "method not allowed; use %s", allow);
}

static void handle_job(struct agent *a, const struct http_request *req,
                       struct http_response *resp, const char *rest)
{
    /* Job IDs may contain '/', so sub-resources are matched as suffixes,
     * as Nomad's router does. */
    static const char *subs[] = {"/allocations", "/summary", "/evaluations"};
    char *id = NULL;
    const char *sub = NULL;
    for (size_t i = 0; i < NC_ARRAY_LEN(subs); i++) {
        if (nc_str_has_suffix(rest, subs[i]) && strlen(rest) > strlen(subs[i])) {
            id = xstrndup(rest, strlen(rest) - strlen(subs[i]));
            sub = subs[i] + 1;
            break;
        }
    }
    if (!id)
        id = xstrdup(rest);
    if (!*id) {
        free(id);
        http_response_error(resp, 404, "job ID missing from the path");
        return;
    }
    if (!sub && (method_is(req, "POST") || method_is(req, "PUT"))) {
        handle_job_register(a, req, resp, id);
        free(id);
        return;
    }
    struct job_entry *e = state_get_job(a->store, id);
    if (!e) {
        http_response_error(resp, 404, "job not found: %s", id);
        free(id);
        return;
    }
    if (!sub) {
        if (method_is(req, "GET") || method_is(req, "HEAD")) {
            set_index(resp, e->modify_index);
            http_response_json(resp, 200, job_full_json(e));
        } else if (method_is(req, "DELETE")) {
            bool purge = nc_streq(kv_get(&req->query, "purge"), "true");
            struct nc_error err = {0};
            if (a->allocs)
                alloc_manager_stop_job(a->allocs, id);
            if (state_stop_job(a->store, id, purge, &err) < 0) {
                http_response_error(resp, 500, "stopping job %s: %s", id, err.msg);
            } else {
                char eval[37];
                nc_uuid(eval);
                LOG_INFO("api", "job %s %s", id, purge ? "purged" : "stopped");
                set_index(resp, a->store->index);
                http_response_json(resp, 200,
                                   json_pack("{s:s, s:I, s:I}", "EvalID", eval,
                                             "EvalCreateIndex",
                                             (json_int_t)a->store->index,
                                             "JobModifyIndex",
                                             (json_int_t)a->store->index));
            }
        } else {
            method_not_allowed(resp, "GET, POST, PUT, DELETE");
        }
    } else if (!method_is(req, "GET") && !method_is(req, "HEAD")) {
        method_not_allowed(resp, "GET");
    } else if (strcmp(sub, "summary") == 0) {
        http_response_json(resp, 200, job_summary_json(e));
    } else if (strcmp(sub, "allocations") == 0) {
        http_response_json(resp, 200, alloc_list_json(a, id));
    } else {
        http_response_json(resp, 200, json_array());
    }
    free(id);
}

static void handle_agent_health(struct agent *a, const struct http_request *req,
                                struct http_response *resp)
{
    http_response_json(resp, 200,
                       json_pack("{s:{s:b, s:s}}", "client", "ok", true,
                                 "message", "ok"));
}

static void handle_nodes(struct agent *a, const struct http_request *req,
                         struct http_response *resp)
{
    json_t *n = node_to_json(a);
    json_t *addr = json_object_get(json_object_get(n, "Attributes"),
                                   "unique.network.ip-address");
    json_t *stub = json_pack(
        "{s:O, s:O, s:O, s:O, s:O, s:o, s:O, s:O, s:O}", "ID",
        json_object_get(n, "ID"), "Name", json_object_get(n, "Name"),
        "Datacenter", json_object_get(n, "Datacenter"), "NodeClass",
        json_object_get(n, "NodeClass"), "NodePool",
        json_object_get(n, "NodePool"), "Address",
        addr ? json_incref(addr) : json_string(""), "Status",
        json_object_get(n, "Status"), "SchedulingEligibility",
        json_object_get(n, "SchedulingEligibility"), "Drain",
        json_object_get(n, "Drain"));
    json_decref(n);
    http_response_json(resp, 200, json_pack("[o]", stub));
}

static void handle_client_stats(struct agent *a, const struct http_request *req,
                                struct http_response *resp)
{
    const struct host_stats *s = hoststats_latest(a->stats);
    if (!s)
        http_response_error(resp, 503, "host stats not collected yet");
    else
        http_response_json(resp, 200, hoststats_to_json(s));
}

static void handle_jobs(struct agent *a, const struct http_request *req,
                        struct http_response *resp)
{
    if (method_is(req, "POST") || method_is(req, "PUT")) {
        handle_job_register(a, req, resp, NULL);
        return;
    }
    const char *prefix = kv_get(&req->query, "prefix");
    json_t *list = json_array();
    for (size_t i = 0; i < a->store->njobs; i++)
        if (!prefix || nc_str_has_prefix(a->store->jobs[i]->job->id, prefix))
            json_array_append_new(list, job_stub_json(a->store->jobs[i]));
    set_index(resp, a->store->index);
    http_response_json(resp, 200, list);
}

static void handle_allocations(struct agent *a, const struct http_request *req,
                               struct http_response *resp)
{
    http_response_json(resp, 200, alloc_list_json(a, NULL));
}

/* GET /v1/allocation/:id (full id or unique prefix) */
static void handle_allocation(struct agent *a, const struct http_request *req,
                              struct http_response *resp, const char *id)
{
    bool ambiguous = false;
    struct alloc *al = a->allocs ? alloc_manager_find(a->allocs, id, &ambiguous)
                                 : NULL;
    if (!method_allowed(req->method, "GET"))
        method_not_allowed(resp, "GET");
    else if (ambiguous)
        http_response_error(resp, 400, "allocation ID prefix \"%s\" matches "
                                       "several allocations", id);
    else if (!al)
        http_response_error(resp, 404, "allocation not found: %s", id);
    else
        http_response_json(resp, 200, alloc_to_json(al));
}

/* GET /v1/client/allocation/:id/stats and /v1/client/allocation/:id/checks */
static void handle_client_allocation(struct agent *a,
                                     const struct http_request *req,
                                     struct http_response *resp,
                                     const char *rest)
{
    const char *slash = strchr(rest, '/');
    const char *what = slash ? slash + 1 : "";
    if (!nc_streq(what, "stats") && !nc_streq(what, "checks")) {
        http_response_error(resp, 404, "no such endpoint: %s %s", req->method,
                            req->path);
        return;
    }
    if (!method_allowed(req->method, "GET")) {
        method_not_allowed(resp, "GET");
        return;
    }
    char *id = xstrndup(rest, (size_t)(slash - rest));
    bool ambiguous = false;
    struct alloc *al = a->allocs ? alloc_manager_find(a->allocs, id, &ambiguous)
                                 : NULL;
    if (ambiguous)
        http_response_error(resp, 400, "allocation ID prefix \"%s\" matches "
                                       "several allocations", id);
    else if (!al)
        http_response_error(resp, 404, "allocation not found: %s", id);
    else if (nc_streq(what, "stats"))
        http_response_json(resp, 200, alloc_stats_json(al, &a->node));
    else
        http_response_json(resp, 200, alloc_checks_alloc_json(a->checks, al->id));
    free(id);
}

/* GET /v1/agent/checks: every check this node runs, with its live state. */
static void handle_agent_checks(struct agent *a, const struct http_request *req,
                                struct http_response *resp)
{
    http_response_json(resp, 200, alloc_checks_agent_json(a->checks));
}

static void handle_leader(struct agent *a, const struct http_request *req,
                          struct http_response *resp)
{
    http_response_json(resp, 200, json_string(""));
}

static void handle_self(struct agent *a, const struct http_request *req,
                        struct http_response *resp)
{
    handle_agent_self(a, resp);
}

static void handle_parse(struct agent *a, const struct http_request *req,
                         struct http_response *resp)
{
    handle_jobs_parse(req, resp);
}

static void handle_validate_route(struct agent *a,
                                  const struct http_request *req,
                                  struct http_response *resp)
{
    handle_validate(req, resp);
}

/* Whether a followed task will write no more: dead, or gone. */
static bool task_finished(void *arg, const char *alloc_id, const char *task)
{
    struct agent *a = arg;
    struct alloc *al = a->allocs ? alloc_manager_find(a->allocs, alloc_id, NULL)
                                 : NULL;
    for (size_t i = 0; al && i < al->ntasks; i++)
        if (strcmp(al->tasks[i].name, task) == 0)
            return nc_streq(al->tasks[i].state, "dead");
    return true;
}

/* GET /v1/client/fs/logs/:alloc?task=T&type=stdout|stderr: the newest log
 * file of the task (its last MiB), as text; with follow=true, then what the
 * task writes, until it is dead (chunked). */
static void handle_fs_logs(struct agent *a, const struct http_request *req,
                           struct http_response *resp, const char *id)
{
    bool ambiguous = false;
    struct alloc *al = a->allocs ? alloc_manager_find(a->allocs, id, &ambiguous)
                                 : NULL;
    if (!al) {
        http_response_error(resp, ambiguous ? 400 : 404,
                            ambiguous ? "allocation ID prefix \"%s\" is ambiguous"
                                      : "allocation not found: %s", id);
        return;
    }
    const char *task = kv_get(&req->query, "task");
    const char *type = kv_get(&req->query, "type");
    if (!type)
        type = "stdout";
    if (strcmp(type, "stdout") != 0 && strcmp(type, "stderr") != 0) {
        http_response_error(resp, 400, "type must be stdout or stderr");
        return;
    }
    if (!task && al->ntasks == 1)
        task = al->tasks[0].name;
    bool known = false;
    for (size_t i = 0; task && i < al->ntasks; i++)
        known |= strcmp(al->tasks[i].name, task) == 0;
    if (!known) {
        http_response_error(resp, 400, task ? "allocation %s has no task \"%s\""
                                            : "allocation %s has several tasks; "
                                              "name one with task=%s",
                            al->id, task ? task : "");
        return;
    }
    char *dir = alloc_dir_path(a->allocs, al);
    const char *follow = kv_get(&req->query, "follow");
    if (follow && strcmp(follow, "true") == 0) {
        char *log_dir = xasprintf("%s/alloc/logs", dir);
        struct log_follow_spec fs = {.log_dir = log_dir, .alloc_id = al->id,
                                     .task = task, .type = type,
                                     .tail_bytes = 1 << 20,
                                     .done = task_finished, .done_arg = a};
        log_follow_start(&a->follows, a->loop, resp, &fs);
        free(log_dir);
        free(dir);
        return;
    }
    char *path = NULL;
    for (int i = 0;; i++) {
        char *p = xasprintf("%s/alloc/logs/%s.%s.%d", dir, task, type, i);
        if (access(p, F_OK) < 0) {
            free(p);
            if (path || i > 1000)
                break;
            continue;
        }
        free(path);
        path = p;
    }
    free(dir);
    size_t len = 0;
    char *txt = path ? nc_read_file(path, &len, 0) : NULL;
    free(path);
    size_t keep = len > (1u << 20) ? (1u << 20) : len;
    http_response_set_body(resp, txt ? txt + len - keep : "", keep,
                           "text/plain; charset=utf-8");
    free(txt);
}

/* GET lists what no allocation owns; DELETE removes it. */
static void handle_leftovers(struct agent *a, const struct http_request *req,
                             struct http_response *resp)
{
    bool clean = method_is(req, "DELETE");
    if (clean)
        LOG_INFO("api", "cleaning leftovers of allocations this node no "
                        "longer runs");
    http_response_json(resp, 200, alloc_manager_leftovers(a->allocs, clean));
}

/* ---- services, registrations, metrics: thin handlers over catalog.h,
 * registrations.h and metrics.h ---------------------------------------- */

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
static void handle_services(struct agent *a, const struct http_request *req,
                            struct http_response *resp)
{
    if (refuse_filter(req, resp))
        return;
    struct catalog_query q = {.namespace_ = kv_get(&req->query, "namespace")};
    set_index(resp, a->catalog ? catalog_index(a->catalog) : 0);
    http_response_json(resp, 200, a->catalog
                                      ? catalog_list_query_json(a->catalog, &q)
                                      : json_array());
}

/* GET /v1/service/:name[?namespace=&choose=n|key&passing] */
static void handle_service(struct agent *a, const struct http_request *req,
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
    } else if (!method_allowed(req->method, "GET")) {
        method_not_allowed(resp, "GET");
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
        set_index(resp, a->catalog ? catalog_index(a->catalog) : 0);
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
static void handle_registrations(struct agent *a,
                                 const struct http_request *req,
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
static void handle_registration(struct agent *a,
                                const struct http_request *req,
                                struct http_response *resp, const char *id)
{
    if (!method_allowed(req->method, "GET")) {
        method_not_allowed(resp, "GET");
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
static void handle_metrics(struct agent *a, const struct http_request *req,
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

typedef void (*route_fn)(struct agent *a, const struct http_request *req,
                         struct http_response *resp);

static const struct route {
    const char *path;
    const char *methods; /* the Allow header: methods accepted */
    route_fn fn;
} routes[] = {
    {"/v1/agent/self", "GET", handle_self},
    {"/v1/agent/health", "GET", handle_agent_health},
    {"/v1/agent/checks", "GET", handle_agent_checks},
    {"/v1/agent/registrations", "GET", handle_registrations},
    {"/v1/services", "GET", handle_services},
    {"/v1/metrics", "GET", handle_metrics},
    {"/v1/nodes", "GET", handle_nodes},
    {"/v1/client/stats", "GET", handle_client_stats},
    {"/v1/jobs", "GET, POST, PUT", handle_jobs},
    {"/v1/jobs/parse", "POST, PUT", handle_parse},
    {"/v1/validate/job", "POST, PUT", handle_validate_route},
    {"/v1/allocations", "GET", handle_allocations},
    {"/v1/client/leftovers", "GET, DELETE", handle_leftovers},
    {"/v1/status/leader", "GET", handle_leader},
};

static bool method_allowed(const char *method, const char *allowed)
{
    if (strcmp(method, "HEAD") == 0)
        method = "GET";
    size_t n = strlen(method);
    for (const char *p = allowed; (p = strstr(p, method)); p += n)
        if ((p == allowed || p[-1] == ' ') && (p[n] == ',' || !p[n]))
            return true;
    return false;
}

static void handle_node(struct agent *a, const struct http_request *req,
                        struct http_response *resp, const char *id)
{
    if (!method_allowed(req->method, "GET"))
        method_not_allowed(resp, "GET");
    else if (nc_str_has_suffix(id, "/allocations"))
        http_response_json(resp, 200, alloc_list_json(a, NULL));
    else if (strcmp(id, "self") != 0 && strcmp(id, a->node.id) != 0)
        http_response_error(resp, 404, "node not found: %s", id);
    else
        http_response_json(resp, 200, node_to_json(a));
}

void http_api_handle(void *ctx, const struct http_request *req,
                     struct http_response *resp)
{
    struct agent *a = ctx;
    const char *p = req->path;
    for (size_t i = 0; i < NC_ARRAY_LEN(routes); i++) {
        if (strcmp(p, routes[i].path) != 0)
            continue;
        if (method_allowed(req->method, routes[i].methods))
            routes[i].fn(a, req, resp);
        else
            method_not_allowed(resp, routes[i].methods);
        return;
    }
    if (nc_str_has_prefix(p, "/v1/node/"))
        handle_node(a, req, resp, p + strlen("/v1/node/"));
    else if (nc_str_has_prefix(p, "/v1/job/"))
        handle_job(a, req, resp, p + strlen("/v1/job/"));
    else if (nc_str_has_prefix(p, "/v1/client/fs/logs/"))
        handle_fs_logs(a, req, resp, p + strlen("/v1/client/fs/logs/"));
    else if (nc_str_has_prefix(p, "/v1/client/allocation/"))
        handle_client_allocation(a, req, resp,
                                 p + strlen("/v1/client/allocation/"));
    else if (nc_str_has_prefix(p, "/v1/service/"))
        handle_service(a, req, resp, p + strlen("/v1/service/"));
    else if (nc_str_has_prefix(p, "/v1/agent/registration/"))
        handle_registration(a, req, resp, p + strlen("/v1/agent/registration/"));
    else if (nc_str_has_prefix(p, "/v1/allocation/"))
        handle_allocation(a, req, resp, p + strlen("/v1/allocation/"));
    else
        http_response_error(resp, 404, "no such endpoint: %s %s", req->method, p);
}
