/* helper.c - `nomclient netns-helper REQUEST.json|-`: one ADD, DEL or CHECK
 * for one allocation, done sequentially in this process, the outcome
 * printed as one JSON object.
 *
 * Crash safety rests on three things: the per-allocation flock (held from
 * start to end, so helpers for one allocation never overlap), the state
 * file written before anything exists and after every plugin (so whatever
 * a kill -9 leaves is named there, with the latest result as prevResult),
 * and a DEL that treats "already gone" as done. */
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "netns/netns_internal.h"

#define PLUGIN_PATH                                                            \
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

struct helper {
    const struct netns_request *req;
    struct netns_state_sync intent; /* fsync in flight */
    json_t *timings;
    json_t *plugin_timings;
    int64_t plugins_us;  /* time spent in plugins and iptables tools */
    bool plugin_started; /* whether the last run_plugin got as far as exec */
};

static void add_us(struct helper *h, const char *key, int64_t us)
{
    json_t *v = json_object_get(h->timings, key);
    json_object_set_new(h->timings, key,
                        json_integer(json_integer_value(v) + us));
}

/* ---- prevResult from leases ---------------------------------------------- */

/* A prevResult made from leased IPs, for a DEL that has nothing better:
 * enough for the firewall plugin to find its rules. */
static json_t *result_from_leases(const json_t *conflist, const char *netns,
                                  const char *ifname, const struct strlist *ips)
{
    json_t *list = json_array();
    for (size_t i = 0; i < ips->n; i++) {
        bool v6 = strchr(ips->items[i], ':') != NULL;
        json_array_append_new(
            list,
            json_pack("{s:s, s:s+, s:i}", "version", v6 ? "6" : "4", "address",
                      ips->items[i], v6 ? "/128" : "/32", "interface", 0));
    }
    return json_pack("{s:O, s:[{s:s, s:s}], s:o}", "cniVersion",
                     json_object_get(conflist, "cniVersion"), "interfaces",
                     "name", ifname, "sandbox", netns, "ips", list);
}

static void result_ips(const json_t *result, struct strlist *ips)
{
    size_t i;
    const json_t *e;
    json_array_foreach(json_object_get(result, "ips"), i, e)
    {
        const char *a = json_string_value(json_object_get(e, "address"));
        if (!a)
            continue;
        cleanup_free char *ip = xstrndup(a, strcspn(a, "/"));
        if (!strlist_contains(ips, ip))
            strlist_add(ips, ip);
    }
}

/* ---- plugins ------------------------------------------------------------- */

static char *find_plugin(const char *cni_path, const char *type)
{
    cleanup_free char *dirs = xstrdup(cni_path);
    char *save = NULL;
    for (char *d = strtok_r(dirs, ":", &save); d;
         d = strtok_r(NULL, ":", &save)) {
        char *p = xasprintf("%s/%s", d, type);
        if (access(p, X_OK) == 0)
            return p;
        free(p);
    }
    return NULL;
}

/* Runs plugin i of list for cmd. On ADD success *result gets its output. */
static int run_plugin(struct helper *h, const char *cmd, const json_t *list,
                      size_t i, const json_t *prev, const json_t *caps,
                      const char *netns, json_t **result, struct nc_error *err)
{
    const struct netns_request *req = h->req;
    const json_t *plugin = json_array_get(json_object_get(list, "plugins"), i);
    const char *type = json_string_value(json_object_get(plugin, "type"));
    size_t nplugins = json_array_size(json_object_get(list, "plugins"));
    if (result)
        *result = NULL;
    h->plugin_started = false;
    cleanup_free char *path = find_plugin(req->cni_path, type);
    if (!path)
        return nc_error_set(err, -ENOENT,
                            "CNI plugin \"%s\" (%zu of %zu) not found in "
                            "cni_path %s",
                            type, i + 1, nplugins, req->cni_path);
    json_t *conf = netns_plugin_config(list, i, prev, caps);
    cleanup_free char *input = json_dumps(conf, JSON_COMPACT);
    json_decref(conf);
    cleanup_free char *e_cmd = xasprintf("CNI_COMMAND=%s", cmd);
    cleanup_free char *e_id = xasprintf("CNI_CONTAINERID=%s", req->alloc_id);
    cleanup_free char *e_ns = xasprintf("CNI_NETNS=%s", netns);
    cleanup_free char *e_if = xasprintf("CNI_IFNAME=%s", req->ifname);
    cleanup_free char *e_path = xasprintf("CNI_PATH=%s", req->cni_path);
    char *envp[] = {e_cmd, e_id, e_ns, e_if, e_path, "PATH=" PLUGIN_PATH, NULL};
    char *argv[] = {path, NULL};
    struct netns_exec x = {
        .path = path,
        .argv = argv,
        .envp = envp,
        .input = input,
        .input_len = strlen(input),
        .timeout_ms = req->timeout_ms,
    };
    int64_t t = netns_now_us();
    int r = netns_exec_run(&x);
    int64_t us = netns_now_us() - t;
    h->plugins_us += us;
    json_array_append_new(h->plugin_timings,
                          json_pack("{s:s, s:s, s:I}", "Type", type, "Command",
                                    cmd, "Us", (json_int_t)us));
    if (r < 0)
        return nc_error_set(err, r, "CNI plugin \"%s\": cannot run %s: %s",
                            type, path, strerror(-r));
    h->plugin_started = true;
    char msg[800];
    if (x.timed_out) {
        r = nc_error_set(err, -ETIMEDOUT,
                         "CNI plugin \"%s\" (%zu of %zu) did not finish %s "
                         "within %d ms and was killed",
                         type, i + 1, nplugins, cmd, req->timeout_ms);
    } else if (x.status != 0) {
        netns_plugin_error(x.out.data, x.out.len, x.err.data, x.status, msg,
                           sizeof(msg));
        r = nc_error_set(err, -EIO,
                         "CNI plugin \"%s\" (%zu of %zu) failed %s: %s", type,
                         i + 1, nplugins, cmd, msg);
    } else if (result && netns_result_parse(x.out.data, x.out.len, result, msg,
                                            sizeof(msg)) < 0) {
        r = nc_error_set(err, -EPROTO,
                         "CNI plugin \"%s\" (%zu of %zu) %s on %s", type, i + 1,
                         nplugins, msg, cmd);
    }
    netns_exec_free(&x);
    return r;
}

/* The runtime capabilities a chain may ask for: port mappings. */
static json_t *capability_args(const json_t *ports)
{
    return json_array_size(ports) ? json_pack("{s:O}", "portMappings", ports)
                                  : json_object();
}

/* CHECK exists from CNI 0.4.0 on; libcni skips it for older networks. */
static bool has_check(const json_t *conflist)
{
    const char *v = json_string_value(json_object_get(conflist, "cniVersion"));
    return v && !nc_str_has_prefix(v, "0.1.") &&
           !nc_str_has_prefix(v, "0.2.") && !nc_str_has_prefix(v, "0.3.");
}

/* ---- state --------------------------------------------------------------- */

static void stamp(json_t *j)
{
    char now[64];
    nc_format_time(nc_now_unix_ns(), now, sizeof(now));
    json_object_set_new(j, "Updated", json_string(now));
}

/* The intent, visible at once and durable soon: the fsyncs run on a
 * thread while the namespace is made (see intent_durable). */
static int write_intent(struct helper *h, json_t *state, struct nc_error *err)
{
    stamp(state);
    int64_t t = netns_now_us();
    int r = netns_state_write_begin(h->req->state_dir, h->req->alloc_id, state,
                                    &h->intent, err);
    add_us(h, "StateUs", netns_now_us() - t);
    return r;
}

/* Waits for the intent's fsync: before a plugin that may write what
 * survives a power loss (host-local's leases), i.e. any but loopback. */
static int intent_durable(struct helper *h, struct nc_error *err)
{
    int64_t t = netns_now_us();
    int r = netns_state_write_end(&h->intent, err);
    int64_t us = netns_now_us() - t;
    add_us(h, "StateUs", us);
    add_us(h, "StateSyncWaitUs", us);
    return r;
}

/* One update line; steals update. Failing to record progress is logged,
 * not fatal: the intent already names everything DEL needs. */
static void record(struct helper *h, json_t *update)
{
    stamp(update);
    struct nc_error err = {0};
    int64_t t = netns_now_us();
    if (netns_state_append(h->req->state_dir, h->req->alloc_id, update, &err) <
        0)
        LOG_WARN("netns", "%s", err.msg);
    add_us(h, "StateUs", netns_now_us() - t);
    json_decref(update);
}

/* The intent; holder_fd (-1: none) is the namespace a holder pid named. */
static json_t *new_state(const struct netns_request *req, int holder_fd)
{
    json_t *s = json_pack(
        "{s:i, s:s, s:s, s:s, s:s, s:s, s:s, s:O, s:[]}", "Version",
        NETNS_STATE_VERSION, "AllocID", req->alloc_id, "Phase", "adding",
        "Netns", req->netns, "IfName", req->ifname, "Mode",
        req->mode ? req->mode : "bridge", "CNIPath", req->cni_path,
        "PortMappings", req->ports, "Results");
    if (req->conflist) /* none mode has no chain */
        json_object_set(s, "Conflist", req->conflist);
    if (req->admin_rule)
        json_object_set(s, "AdminRule", req->admin_rule);
    struct stat st;
    if (holder_fd >= 0) {
        json_object_set_new(s, "HolderPid", json_integer(req->holder_pid));
        if (fstat(holder_fd, &st) == 0)
            json_object_set_new(
                s, "HolderNetns",
                json_sprintf("net:[%llu]", (unsigned long long)st.st_ino));
    }
    return s;
}

/* ---- DEL ----------------------------------------------------------------- */

struct del_plan {
    const json_t *conflist;
    const char *netns;
    const json_t *prev;
    const char *prev_from;
    const json_t *ports;
    size_t nplugins; /* DEL plugins [0, nplugins) in reverse */
    bool sweep;      /* sweep iptables afterwards whatever happens */
};

/* Tears down per plan; keeps going after a failure so that as much as
 * possible goes, and returns the first error. */
static int del_run(struct helper *h, const struct del_plan *p,
                   struct nc_error *err)
{
    const struct netns_request *req = h->req;
    /* no chain (mode none, or nothing recorded or sent): the namespace is
     * all there is */
    if (!p->conflist)
        return netns_ns_remove(p->netns, err);
    struct strlist ips = {0};
    cleanup_free char *ipam = netns_ipam_dir(p->conflist);
    netns_ipam_leases_of(ipam, req->alloc_id, &ips);
    json_t *synth = NULL;
    const json_t *prev = p->prev;
    const char *prev_from = p->prev_from;
    if (!prev && ips.n) {
        prev = synth =
            result_from_leases(p->conflist, p->netns, req->ifname, &ips);
        prev_from = "ipam";
    }
    result_ips(prev, &ips);
    json_object_set_new(h->timings, "PrevResultFrom",
                        json_string(prev ? prev_from : "none"));
    /* portmap tears down only when given mappings; its chain is named by
     * network and container id, so any mapping does when none is known */
    json_t *caps = capability_args(p->ports);
    if (json_array_size(p->ports) == 0)
        json_object_set_new(caps, "portMappings",
                            json_pack("[{s:i, s:i, s:s}]", "hostPort", 1,
                                      "containerPort", 1, "protocol", "tcp"));
    bool ns_there = netns_ns_exists(p->netns);
    int first = 0;
    for (size_t i = p->nplugins; i > 0; i--) {
        struct nc_error e2 = {0};
        int r = run_plugin(h, "DEL", p->conflist, i - 1, prev, caps,
                           ns_there ? p->netns : "", NULL, &e2);
        if (r < 0 && first == 0) {
            first = r;
            nc_error_set(err, r, "%s", e2.msg);
        }
    }
    json_decref(caps);
    json_decref(synth);
    const char *network =
        json_string_value(json_object_get(p->conflist, "name"));
    if (p->sweep || !ns_there || first < 0 ||
        !(nc_streq(prev_from, "state") || nc_streq(prev_from, "request"))) {
        struct nc_error e2 = {0};
        size_t removed = 0;
        int64_t t = netns_now_us();
        int r = netns_ipt_sweep(network, req->alloc_id, &ips, req->timeout_ms,
                                &removed, &e2);
        int64_t us = netns_now_us() - t;
        h->plugins_us += us;
        add_us(h, "SweepUs", us);
        json_object_set_new(h->timings, "SweptRules",
                            json_integer((json_int_t)removed));
        if (r < 0 && first == 0) {
            first = r;
            nc_error_set(err, r, "iptables sweep: %s", e2.msg);
        }
    }
    strlist_free(&ips);
    int64_t t = netns_now_us();
    struct nc_error e3 = {0};
    int r = netns_ns_remove(p->netns, &e3);
    add_us(h, "NetnsUs", netns_now_us() - t);
    if (r < 0 && first == 0) {
        first = r;
        nc_error_set(err, r, "%s", e3.msg);
    }
    return first;
}

static void plan_from_state(struct del_plan *p, const struct netns_request *req,
                            const json_t *state)
{
    memset(p, 0, sizeof(*p));
    const json_t *list = state ? json_object_get(state, "Conflist") : NULL;
    p->conflist = json_is_object(list) &&
                          netns_conflist_validate(list, "state", NULL) == 0
                      ? list
                      : req->conflist;
    /* a none setup is its namespace alone, whatever chain the request
     * brings (an orphan's DEL brings the bridge's) */
    if (nc_streq(json_string_value(json_object_get(state, "Mode")),
                 NETNS_MODE_NONE))
        p->conflist = NULL;
    const char *ns = json_string_value(json_object_get(state, "Netns"));
    p->netns = ns && nc_str_has_prefix(ns, NETNS_RUN_DIR "/") &&
                       netns_name_valid(ns + strlen(NETNS_RUN_DIR "/"))
                   ? ns
                   : req->netns;
    if (req->prev_result) {
        p->prev = req->prev_result;
        p->prev_from = "request";
    } else if ((p->prev = netns_state_best_result(state))) {
        p->prev_from = "state";
    }
    const json_t *ports = json_object_get(state, "PortMappings");
    p->ports = json_array_size(ports) ? ports : req->ports;
    p->nplugins = json_array_size(json_object_get(p->conflist, "plugins"));
    p->sweep =
        state &&
        !nc_streq(json_string_value(json_object_get(state, "Phase")), "added");
}

/* The recorded state or NULL; a corrupt file is reported and set aside. */
static json_t *read_state(const struct netns_request *req)
{
    json_t *state = NULL;
    struct nc_error err = {0};
    netns_state_read(req->state_dir, req->alloc_id, &state, &err);
    if (err.msg[0])
        LOG_WARN("netns", "%s", err.msg);
    return state;
}

static int do_del(struct helper *h, struct netns_response *resp,
                  struct nc_error *err)
{
    const struct netns_request *req = h->req;
    json_t *state = read_state(req);
    struct del_plan p;
    plan_from_state(&p, req, state);
    resp->netns = xstrdup(p.netns);
    int r = del_run(h, &p, err);
    if (r == 0) {
        netns_state_remove(req->state_dir, req->alloc_id);
    } else if (state) {
        record(h,
               json_pack("{s:s, s:s}", "Phase", "deleting", "Error", err->msg));
    }
    json_decref(state);
    return r;
}

/* ---- ADD ----------------------------------------------------------------- */

static bool has_plugin(const json_t *conflist, const char *type)
{
    size_t i;
    const json_t *p;
    json_array_foreach(json_object_get(conflist, "plugins"), i, p)
    {
        if (nc_streq(json_string_value(json_object_get(p, "type")), type))
            return true;
    }
    return false;
}

/* Waits for the jumps portmap shares (nothing once they were seen). Not
 * fatal: without them portmap adds them itself, as it would anyway. */
static void hostport_wait(struct helper *h, struct netns_hostport *c)
{
    if (!c->started)
        return;
    int64_t t = netns_now_us();
    bool ran = false;
    struct nc_error err = {0};
    if (netns_hostport_finish(c, &ran, &err) < 0)
        LOG_WARN("netns",
                 "allocation %s: putting portmap's jumps into %s in "
                 "place: %s",
                 h->req->alloc_id, NETNS_HOSTPORT_CHAIN, err.msg);
    int64_t us = netns_now_us() - t;
    h->plugins_us += us;
    add_us(h, "HostportUs", us);
    if (ran)
        json_object_set_new(h->timings, "HostportEnsured", json_true());
}

/* Mode none, once its namespace (lo up) exists: durable, then recorded
 * complete with an empty result and no address. */
static int add_none(struct helper *h, struct netns_response *resp,
                    struct nc_error *err)
{
    const struct netns_request *req = h->req;
    int r = intent_durable(h, err);
    if (r < 0) {
        struct nc_error e2 = {0};
        if (netns_ns_remove(req->netns, &e2) == 0)
            netns_state_remove(req->state_dir, req->alloc_id);
        return r;
    }
    resp->result = json_object();
    record(h, json_pack("{s:s, s:O}", "Phase", "added", "Result",
                        resp->result));
    return 0;
}

/* The namespace the request's holder pid names, pinned by an fd: 0 and
 * *fd -1 without a holder pid, else 0 and the fd, or -errno (err set). */
static int open_holder(struct helper *h, int *fd, struct nc_error *err)
{
    *fd = -1;
    if (h->req->holder_pid <= 0)
        return 0;
    int64_t t = netns_now_us();
    int r = netns_holder_open(h->req->holder_pid, err);
    add_us(h, "HolderUs", netns_now_us() - t);
    if (r < 0)
        return r;
    *fd = r;
    return 0;
}

static int do_add(struct helper *h, struct netns_response *resp,
                  struct nc_error *err)
{
    const struct netns_request *req = h->req;
    /* a holder's namespace, held by this fd until the chain is done (the
     * mount holds it from then on, whatever becomes of the holder) */
    struct nc_error holder_err = {0};
    cleanup_close int holder = -1;
    int holder_r = open_holder(h, &holder, &holder_err);
    json_t *old = read_state(req);
    if (old) {
        const char *ns = json_string_value(json_object_get(old, "Netns"));
        json_t *res = json_object_get(old, "Result");
        /* with a holder, only a setup in its namespace will do (a new
         * holder after a restart gets a new setup) */
        if (nc_streq(json_string_value(json_object_get(old, "Phase")),
                     "added") &&
            json_is_object(res) && ns && netns_ns_exists(ns) &&
            (req->holder_pid <= 0 ||
             (holder >= 0 && netns_ns_is(ns, holder)))) {
            resp->reused = true;
            resp->netns = xstrdup(ns);
            resp->ip = xstrdup(json_string_value(json_object_get(old, "IP")));
            resp->result = json_incref(res);
            json_decref(old);
            return 0;
        }
        /* a setup that never completed, or in another namespace than the
         * holder's: take it down before starting over */
        struct del_plan p;
        plan_from_state(&p, req, old);
        p.sweep = true;
        int r = del_run(h, &p, err);
        json_decref(old);
        if (r < 0) {
            nc_error_prefix(err, "removing the unfinished earlier setup");
            return r;
        }
        netns_state_remove(req->state_dir, req->alloc_id);
    }
    if (holder_r < 0) /* nothing exists now: the holder's failure alone */
        return nc_error_set(err, holder_r, "%s", holder_err.msg);
    /* a holder's namespace that has the chain's interface already is not
     * a new holder's (a buggy driver, or its pid reused by a process of
     * another allocation): a failed ADD's rollback would delete it */
    if (holder >= 0 && req->conflist &&
        (holder_r = netns_ns_has_link(holder, req->ifname, err)) != 0)
        return holder_r < 0
                   ? holder_r
                   : nc_error_set(err, -EEXIST,
                                  "the network namespace of process %d "
                                  "already has an interface %s, as another "
                                  "allocation's would: refusing to set up "
                                  "allocation %s in it",
                                  req->holder_pid, req->ifname, req->alloc_id);
    resp->netns = xstrdup(req->netns);
    struct stat st;
    if (lstat(req->netns, &st) == 0)
        return nc_error_set(err, -EEXIST,
                            "network namespace %s already exists and no setup "
                            "of allocation %s is recorded in %s (remove it "
                            "with `ip netns del`, or see `nomclient "
                            "leftovers`)",
                            req->netns, req->alloc_id, req->state_dir);

    /* the intent, before anything exists */
    json_t *state = new_state(req, holder);
    int r = write_intent(h, state, err);
    json_decref(state);
    if (r < 0)
        return r;
    int64_t t = netns_now_us();
    bool none = !req->conflist;
    r = holder >= 0 ? netns_ns_attach(req->netns, holder, none, err)
                    : netns_ns_create(req->netns, none, err);
    add_us(h, "NetnsUs", netns_now_us() - t);
    if (r < 0) {
        intent_durable(h, NULL);
        netns_state_remove(req->state_dir, req->alloc_id);
        return r;
    }
    if (none)
        return add_none(h, resp, err);
    /* Nomad's NOMAD-ADMIN rule: checked beside the chain, added after it */
    struct netns_ipt_admin admin = {0};
    if (req->admin_rule) {
        t = netns_now_us();
        r = netns_ipt_admin_start(&admin, req->admin_rule, req->timeout_ms,
                                  err);
        add_us(h, "AdminRuleUs", netns_now_us() - t);
    }
    /* portmap's jumps into CNI-HOSTPORT-DNAT: put in place beside the
     * chain, before portmap runs, so parallel portmaps do not each add
     * them (see iptables.c) */
    struct netns_hostport hostport = {0};
    if (json_array_size(req->ports) && has_plugin(req->conflist, "portmap"))
        netns_hostport_start(&hostport, req->state_dir, req->timeout_ms);
    json_t *caps = capability_args(req->ports);
    size_t n = json_array_size(json_object_get(req->conflist, "plugins"));
    json_t *prev = NULL;
    size_t ran = 0;
    for (; ran < n && r == 0; ran++) {
        json_t *res = NULL;
        const char *type = json_string_value(json_object_get(
            json_array_get(json_object_get(req->conflist, "plugins"), ran),
            "type"));
        if (!nc_streq(type, "loopback") && (r = intent_durable(h, err)) < 0)
            break;
        if (nc_streq(type, "portmap"))
            hostport_wait(h, &hostport);
        r = run_plugin(h, "ADD", req->conflist, ran, prev, caps, req->netns,
                       &res, err);
        if (r == 0) {
            json_decref(prev);
            prev = res;
            record(h, json_pack("{s:O}", "Results+", res));
        } else if (!h->plugin_started) {
            ran--; /* it never ran: nothing of it to roll back */
        }
    }
    hostport_wait(h, &hostport); /* when no portmap ran */
    int r3 = intent_durable(h, r == 0 ? err : NULL);
    if (r == 0)
        r = r3;
    char ip[INET6_ADDRSTRLEN] = "";
    if (r == 0 && netns_result_ip(prev, req->ifname, ip, sizeof(ip)) < 0)
        r = nc_error_set(
            err, -EADDRNOTAVAIL,
            "network \"%s\": the CNI result has no interface "
            "with an address",
            json_string_value(json_object_get(req->conflist, "name")));
    if (admin.started) {
        t = netns_now_us();
        char *lock = xasprintf("%s/admin-rule.lock", req->state_dir);
        int r2 = netns_ipt_admin_finish(&admin, req->admin_rule, r == 0, lock,
                                        req->timeout_ms, err);
        free(lock);
        int64_t us = netns_now_us() - t;
        h->plugins_us += us;
        add_us(h, "AdminRuleUs", us);
        if (r == 0)
            r = r2;
    }
    json_decref(caps);
    if (r < 0) {
        /* roll back everything, the failing plugin included (it may have
         * done half its work), with the last good result as prevResult */
        struct del_plan p = {
            .conflist = req->conflist,
            .netns = req->netns,
            .prev = prev,
            .prev_from = "state",
            .ports = req->ports,
            .nplugins = ran,
            .sweep = true,
        };
        struct nc_error e3 = {0};
        int r2 = del_run(h, &p, &e3);
        if (r2 == 0) {
            netns_state_remove(req->state_dir, req->alloc_id);
        } else {
            record(h,
                   json_pack("{s:s, s:s}", "Phase", "failed", "Error", e3.msg));
            char first[sizeof(err->msg)];
            snprintf(first, sizeof(first), "%s", err->msg);
            nc_error_set(err, r, "%s; rolling back failed too: %s", first,
                         e3.msg);
        }
        json_decref(prev);
        return r;
    }
    record(h, json_pack("{s:s, s:O, s:s}", "Phase", "added", "Result", prev,
                        "IP", ip));
    resp->ip = xstrdup(ip);
    resp->result = prev;
    return 0;
}

/* ---- CHECK --------------------------------------------------------------- */

static int do_check(struct helper *h, struct netns_response *resp,
                    struct nc_error *err)
{
    const struct netns_request *req = h->req;
    json_t *state = read_state(req);
    const json_t *res = json_object_get(state, "Result");
    const json_t *list = json_object_get(state, "Conflist");
    const char *ns = json_string_value(json_object_get(state, "Netns"));
    int r = 0;
    if (!state || !json_is_object(res) || !ns ||
        !nc_streq(json_string_value(json_object_get(state, "Phase")), "added"))
        r = nc_error_set(err, -ENOENT,
                         "no complete setup of allocation %s is recorded in %s",
                         req->alloc_id, req->state_dir);
    else if (netns_conflist_validate(list, "recorded \"Conflist\"", err) < 0)
        r = -EINVAL;
    else if (!netns_ns_exists(ns))
        r = nc_error_set(err, -ENOENT, "network namespace %s is gone", ns);
    if (r == 0) {
        json_t *caps = capability_args(json_object_get(state, "PortMappings"));
        size_t n = json_array_size(json_object_get(list, "plugins"));
        for (size_t i = 0; i < n && r == 0 && has_check(list); i++)
            r = run_plugin(h, "CHECK", list, i, res, caps, ns, NULL, err);
        json_decref(caps);
        resp->netns = xstrdup(ns);
        resp->ip = xstrdup(json_string_value(json_object_get(state, "IP")));
        resp->result = json_incref((json_t *)res);
    }
    json_decref(state);
    return r;
}

/* ---- entry --------------------------------------------------------------- */

int netns_helper_run(const struct netns_request *req,
                     struct netns_response *resp)
{
    int64_t t0 = netns_now_us();
    struct helper h = {
        .req = req,
        .timings = json_object(),
        .plugin_timings = json_array(),
    };
    memset(resp, 0, sizeof(*resp));
    resp->command = xstrdup(req->command);
    resp->alloc_id = xstrdup(req->alloc_id);
    struct nc_error err = {0};
    int lock = -1;
    int64_t t = netns_now_us();
    int r = netns_state_lock(req->state_dir, req->alloc_id, &lock, &err);
    add_us(&h, "LockUs", netns_now_us() - t);
    if (r == 0) {
        if (strcmp(req->command, "ADD") == 0)
            r = do_add(&h, resp, &err);
        else if (strcmp(req->command, "DEL") == 0)
            r = do_del(&h, resp, &err);
        else
            r = do_check(&h, resp, &err);
        close(lock);
    }
    int64_t total = netns_now_us() - t0;
    json_object_set_new(h.timings, "Plugins", h.plugin_timings);
    json_object_set_new(h.timings, "PluginsUs", json_integer(h.plugins_us));
    json_object_set_new(h.timings, "TotalUs", json_integer(total));
    json_object_set_new(h.timings, "OverheadUs",
                        json_integer(total - h.plugins_us));
    resp->timings = h.timings;
    resp->ok = r == 0;
    resp->code = r;
    if (r < 0)
        resp->error = xstrdup(err.msg[0] ? err.msg : strerror(-r));
    return r;
}

/* The answer to one request (j NULL: it was not JSON, je says why),
 * as the JSON object printed for it (new reference); *rc gets the outcome.
 * t_start: when this process or thread took the request up. */
static json_t *answer(const json_t *j, const json_error_t *je, const char *src,
                      int64_t t_start, int *rc)
{
    struct netns_response resp = {0};
    struct netns_request req;
    struct nc_error err = {0};
    int r;
    if (!j) {
        r = nc_error_set(&err, -EINVAL, "%s:%d:%d: invalid JSON: %s", src,
                         je->line, je->column, je->text);
    } else {
        r = netns_request_from_json(j, &req, &err);
        if (r == 0) {
            r = netns_helper_run(&req, &resp);
            int64_t startup = t_start - req.sent_us;
            if (req.sent_us > 0 && startup >= 0 && startup < 60000000)
                json_object_set_new(resp.timings, "StartupUs",
                                    json_integer(startup));
            netns_request_free(&req);
        }
    }
    if (r < 0 && !resp.error) {
        resp.ok = false;
        resp.code = r;
        resp.error = xstrdup(err.msg);
    }
    if (resp.timings)
        json_object_set_new(resp.timings, "DoneUs",
                            json_integer(netns_now_us()));
    json_t *out = netns_response_to_json(&resp);
    netns_response_free(&resp);
    *rc = r;
    return out;
}

/* ---- -serve: one process for many requests ------------------------------
 * The main thread reads request lines; workers (made as needed, up to
 * SERVE_WORKERS, then kept) run them and print the answers. Kept threads
 * save each request a thread's creation, and their CPU time stays
 * visible in /proc/<pid>/task. */

#define SERVE_WORKERS 16

struct server_job {
    struct server_job *next;
    char *line;
    size_t len;
};

struct server {
    pthread_mutex_t mu; /* all below, and stdout */
    pthread_cond_t work, idle;
    struct server_job *head, **tail;
    int workers, waiting; /* made, and idle of them */
    int queued;           /* on the list, not yet taken */
    int running;          /* queued or being run */
};

static void serve_one(struct server *srv, struct server_job *job)
{
    int64_t t = netns_now_us();
    json_error_t je;
    json_t *j = json_loadb(job->line, job->len, 0, &je);
    int rc;
    json_t *out = answer(j, &je, "request", t, &rc);
    json_t *id = json_object_get(j, "ReqID");
    if (json_is_integer(id))
        json_object_set(out, "ReqID", id);
    char *text = json_dumps(out, JSON_COMPACT);
    json_decref(out);
    json_decref(j);
    pthread_mutex_lock(&srv->mu);
    /* a gone agent makes this EPIPE, and the state file says it all */
    fputs(text, stdout);
    fputc('\n', stdout);
    fflush(stdout);
    srv->running--;
    pthread_cond_signal(&srv->idle);
    pthread_mutex_unlock(&srv->mu);
    netns_ns_refill();
    free(text);
    free(job->line);
    free(job);
}

static void *worker(void *arg)
{
    struct server *srv = arg;
    nc_sched_short_slice();
    pthread_mutex_lock(&srv->mu);
    for (;;) {
        while (!srv->head) {
            srv->waiting++;
            pthread_cond_wait(&srv->work, &srv->mu);
            srv->waiting--;
        }
        struct server_job *job = srv->head;
        srv->queued--;
        srv->head = job->next;
        if (!srv->head)
            srv->tail = &srv->head;
        pthread_mutex_unlock(&srv->mu);
        serve_one(srv, job);
        pthread_mutex_lock(&srv->mu);
    }
    return NULL;
}

static int serve(void)
{
    struct server srv = {
        .mu = PTHREAD_MUTEX_INITIALIZER,
        .work = PTHREAD_COND_INITIALIZER,
        .idle = PTHREAD_COND_INITIALIZER,
    };
    srv.tail = &srv.head;
    nc_sched_short_slice();
    netns_ns_keep_spare();
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    /* only whole lines: what a killed agent left half-written is not run */
    while ((n = getline(&line, &cap, stdin)) > 0 && line[n - 1] == '\n') {
        struct server_job *job = xcalloc(1, sizeof(*job));
        job->line = xstrndup(line, (size_t)n - 1);
        job->len = (size_t)n - 1;
        pthread_mutex_lock(&srv.mu);
        srv.running++;
        srv.queued++;
        *srv.tail = job;
        srv.tail = &job->next;
        pthread_t th;
        if (srv.waiting >= srv.queued) /* an idle worker for it */
            pthread_cond_signal(&srv.work);
        else if (srv.workers < SERVE_WORKERS &&
                 pthread_create(&th, &attr, worker, &srv) == 0)
            srv.workers++;
        else if (srv.workers == 0) { /* no thread to be had: here, now */
            srv.head = NULL;
            srv.tail = &srv.head;
            srv.queued = 0;
            pthread_mutex_unlock(&srv.mu);
            serve_one(&srv, job);
            continue;
        }
        pthread_mutex_unlock(&srv.mu);
    }
    free(line);
    pthread_attr_destroy(&attr);
    pthread_mutex_lock(&srv.mu);
    while (srv.running > 0)
        pthread_cond_wait(&srv.idle, &srv.mu);
    pthread_mutex_unlock(&srv.mu);
    return 0;
}

int netns_helper_main(int argc, char **argv)
{
    int64_t t_main = netns_now_us();
    signal(SIGPIPE, SIG_IGN);
    if (argc != 2) {
        fprintf(stderr, "usage: nomclient netns-helper REQUEST.json|-|-serve\n");
        return 2;
    }
    if (strcmp(argv[1], "-serve") == 0)
        return serve();
    struct nc_buf in = {0};
    const char *src = strcmp(argv[1], "-") == 0 ? "stdin" : argv[1];
    if (strcmp(argv[1], "-") == 0) {
        char chunk[8192];
        size_t n;
        while ((n = fread(chunk, 1, sizeof(chunk), stdin)) > 0 &&
               in.len < (16u << 20))
            nc_buf_append(&in, chunk, n);
    } else {
        size_t len;
        char *text = nc_read_file(argv[1], &len, 16u << 20);
        if (text) {
            in.data = text;
            in.len = len;
        }
    }
    int r;
    json_t *out;
    if (!in.data) {
        struct nc_error err = {0};
        r = nc_error_set(&err, -errno, "read %s: %s", src, strerror(errno));
        struct netns_response resp = {.code = r, .error = err.msg};
        out = netns_response_to_json(&resp);
    } else {
        json_error_t je;
        json_t *j = json_loadb(in.data, in.len, 0, &je);
        out = answer(j, &je, src, t_main, &r);
        json_decref(j);
    }
    nc_buf_free(&in);
    char *text = json_dumps(out, JSON_COMPACT);
    printf("%s\n", text);
    fflush(stdout);
    free(text);
    json_decref(out);
    return r == 0 ? 0 : 1;
}
