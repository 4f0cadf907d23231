/* http_api_node.c - the agent and its node: /v1/agent/self, /health,
 * /v1/node/:id (with /drain and /eligibility), /v1/nodes and
 * /v1/client/stats, in Nomad's shapes. */
#include "client/api/internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "client/agent.h"
#include "client/alloc/alloc.h"
#include "client/job/job.h"
#include "client/node/node.h"
#include "client/services/services.h"

#define NOMAD_API_VERSION "1.7.7"

static json_t *kv_to_json(const struct kvlist *l)
{
    json_t *o = json_object();
    for (size_t i = 0; i < l->n; i++)
        json_object_set_new(o, l->items[i].key, json_string(l->items[i].value));
    return o;
}

json_t *http_api_time_json(int64_t unix_ns)
{
    if (unix_ns <= 0)
        return json_string("0001-01-01T00:00:00Z");
    time_t sec = (time_t)(unix_ns / 1000000000);
    struct tm tm;
    gmtime_r(&sec, &tm);
    char buf[64];
    size_t n = strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
    int frac = (int)(unix_ns % 1000000000), digits = 9;
    while (frac && frac % 10 == 0) { /* RFC3339Nano drops trailing zeros */
        frac /= 10;
        digits--;
    }
    if (frac)
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, ".%0*d", digits, frac);
    snprintf(buf + n, sizeof(buf) - n, "Z");
    return json_string(buf);
}

/* Nomad's DrainStrategy, null unless draining. */
static json_t *drain_strategy_json(const struct node *n)
{
    if (!n->drain)
        return json_null();
    return json_pack("{s:I, s:b, s:o, s:o}", "Deadline",
                     (json_int_t)n->drain_strategy.deadline_ns,
                     "IgnoreSystemJobs", n->drain_strategy.ignore_system,
                     "ForceDeadline",
                     http_api_time_json(n->drain_strategy.force_deadline),
                     "StartedAt", http_api_time_json(n->drain_strategy.started_at));
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
    json_object_set_new(o, "Drain", json_boolean(n->drain));
    json_object_set_new(o, "DrainStrategy", drain_strategy_json(n));
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
    json_t *events =
        json_pack("[{s:s, s:s, s:{}, s:I}]", "Message", "Node registered",
                  "Subsystem", "Cluster", "Details", "Timestamp",
                  (json_int_t)n->start_time_unix_ns);
    if (n->events)
        json_array_extend(events, n->events);
    json_object_set_new(o, "Events", events);
    json_object_set_new(o, "CreateIndex", json_integer(1));
    json_object_set_new(o, "ModifyIndex", json_integer(1));
    return o;
}

static void agent_self_json_answer(struct agent *a, struct http_response *resp)
{
    const struct agent_config *c = a->cfg;
    json_t *vols = json_object();
    for (size_t i = 0; i < c->client.nhost_volumes; i++)
        json_object_set_new(vols, c->client.host_volumes[i].name,
                            json_pack("{s:s, s:b}", "Path",
                                      c->client.host_volumes[i].path,
                                      "ReadOnly",
                                      c->client.host_volumes[i].read_only));
    json_t *files = http_api_strlist_to_json(&c->files);
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

void http_api_agent_health(struct agent *a, const struct http_request *req,
                           struct http_response *resp)
{
    http_response_json(resp, 200,
                       json_pack("{s:{s:b, s:s}}", "client", "ok", true,
                                 "message", "ok"));
}

void http_api_nodes(struct agent *a, const struct http_request *req,
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

void http_api_client_stats(struct agent *a, const struct http_request *req,
                           struct http_response *resp)
{
    const struct host_stats *s = hoststats_latest(a->stats);
    if (!s)
        http_response_error(resp, 503, "host stats not collected yet");
    else
        http_response_json(resp, 200, hoststats_to_json(s));
}

void http_api_agent_self(struct agent *a, const struct http_request *req,
                         struct http_response *resp)
{
    agent_self_json_answer(a, resp);
}

/* Nomad's NodeDrainUpdateResponse and NodeEligibilityUpdateResponse: no
 * evaluations here, the change is applied at once. */
static void answer_node_update(struct agent *a, struct http_response *resp)
{
    uint64_t index = ++a->node_index;
    http_api_set_index(resp, index);
    http_response_json(resp, 200,
                       json_pack("{s:I, s:[], s:I, s:I}", "NodeModifyIndex",
                                 (json_int_t)index, "EvalIDs",
                                 "EvalCreateIndex", (json_int_t)0, "Index",
                                 (json_int_t)index));
}

/* PUT|POST /v1/node/:id/drain {"DrainSpec": {"Deadline": ns,
 * "IgnoreSystemJobs": bool} | null, "MarkEligible": bool} */
static void node_drain(struct agent *a, const struct http_request *req,
                       struct http_response *resp)
{
    json_t *doc = http_api_parse_body(req, resp);
    if (!doc)
        return;
    json_t *spec = http_api_body_field(doc, "DrainSpec");
    bool mark = false, ignore = false;
    json_t *deadline = spec ? http_api_body_field(spec, "Deadline") : NULL;
    if (spec && !json_is_null(spec) && !json_is_object(spec))
        http_response_error(resp, 400, "DrainSpec must be an object or null");
    else if (deadline && !json_is_null(deadline) && !json_is_integer(deadline))
        http_response_error(resp, 400,
                            "DrainSpec.Deadline must be an integer "
                            "(nanoseconds)");
    else if (http_api_body_bool(doc, "MarkEligible", &mark, resp) &&
             (!json_is_object(spec) ||
              http_api_body_bool(spec, "IgnoreSystemJobs", &ignore, resp))) {
        bool enable = json_is_object(spec);
        int64_t ns = json_integer_value(deadline);
        agent_node_drain(a, enable, ns < 0 ? -1 : ns, ignore, mark);
        LOG_INFO("api", "node drain %s", enable ? "enabled" : "disabled");
        answer_node_update(a, resp);
    }
    json_decref(doc);
}

/* PUT|POST /v1/node/:id/eligibility {"Eligibility": "eligible" |
 * "ineligible"} */
static void node_eligibility(struct agent *a, const struct http_request *req,
                             struct http_response *resp)
{
    json_t *doc = http_api_parse_body(req, resp);
    if (!doc)
        return;
    const char *e = NULL;
    if (http_api_body_string(doc, "Eligibility", &e, resp)) {
        struct nc_error err = {0};
        if (!nc_streq(e, "eligible") && !nc_streq(e, "ineligible"))
            http_response_error(resp, 400,
                                "invalid scheduling eligibility \"%s\"", e);
        else if (agent_node_eligibility(a, nc_streq(e, "eligible"), &err) < 0)
            http_response_error(resp, 400, "%s", err.msg);
        else
            answer_node_update(a, resp);
    }
    json_decref(doc);
}

/* /v1/node/:id and its actions: allocations (GET), drain and eligibility
 * (PUT or POST, as Nomad's API takes them). The id is this node's, or
 * "self". */
void http_api_node(struct agent *a, const struct http_request *req,
                   struct http_response *resp, const char *id)
{
    static const struct {
        const char *name, *methods;
        void (*fn)(struct agent *a, const struct http_request *req,
                   struct http_response *resp);
    } actions[] = {{"drain", "PUT, POST", node_drain},
                   {"eligibility", "PUT, POST", node_eligibility}};
    const char *slash = strchr(id, '/');
    size_t idlen = slash ? (size_t)(slash - id) : strlen(id);
    const char *what = slash ? slash + 1 : "";
    bool self = (idlen == 4 && strncmp(id, "self", 4) == 0) ||
                (idlen == strlen(a->node.id) &&
                 strncmp(id, a->node.id, idlen) == 0);
    for (size_t i = 0; i < NC_ARRAY_LEN(actions); i++) {
        if (!nc_streq(what, actions[i].name))
            continue;
        if (!http_api_method_allowed(req->method, actions[i].methods))
            http_api_method_not_allowed(resp, actions[i].methods);
        else if (!self)
            http_response_error(resp, 404, "node not found: %.*s", (int)idlen,
                                id);
        else
            actions[i].fn(a, req, resp);
        return;
    }
    if (!http_api_method_allowed(req->method, "GET"))
        http_api_method_not_allowed(resp, "GET");
    else if (nc_str_has_suffix(id, "/allocations"))
        http_response_json(resp, 200, http_api_alloc_list_json(a, NULL));
    else if (!self || slash)
        http_response_error(resp, 404, "node not found: %s", id);
    else
        http_response_json(resp, 200, node_to_json(a));
}

/* GET|PUT /v1/client/gc[?node_id=]: every terminal allocation of this node
 * is garbage collected (in the background, at most gc_parallel_destroys at
 * once); 200 with no body, as Nomad answers. Nomad's docs say GET, its
 * handler takes any method. */
void http_api_client_gc(struct agent *a, const struct http_request *req,
                        struct http_response *resp)
{
    const char *node_id = kv_get(&req->query, "node_id");
    if (node_id && *node_id && strcmp(node_id, a->node.id) != 0) {
        http_response_error(resp, 404, "Unknown node \"%s\"", node_id);
        return;
    }
    size_t n = a->allocs ? alloc_gc_collect_all(a->allocs) : 0;
    LOG_INFO("api", "client garbage collection: %zu terminal allocation(s) "
                    "to destroy", n);
}
