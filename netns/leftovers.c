/* leftovers.c - network setups no owned allocation accounts for.
 *
 * Only what is provably ours is considered: state files in state_dir,
 * namespaces they name, host-local leases and iptables rules of our
 * networks whose container id has a state file or whose address lies in
 * the bridge subnet, and extra copies of portmap's jumps into
 * CNI-HOSTPORT-DNAT (one always stays). Another tool's namespaces,
 * networks and rules are never listed, let alone removed. Cleaning runs a
 * helper DEL per allocation on a private loop (so the caller's loop is not
 * re-entered), then one last sweep for rules only an address ties to us. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "netns/netns_internal.h"

#define CLEAN_PARALLEL 4

struct scan {
    const struct netns_config *cfg;
    const struct strlist *owned;
    const char *bridge_network, *subnet;
    struct strlist gone;      /* container ids to tear down */
    struct strlist owned_ips; /* addresses owned allocations hold */
    struct kvlist lease_ids;  /* leased IP -> container id */
    struct strlist networks;  /* conflist names to look at */
    json_t *conflists;        /* network name -> conflist */
    json_t *setups, *namespaces, *ipam, *iptables, *errors;
};

static bool owned(const struct scan *s, const char *id)
{
    return s->owned && strlist_contains(s->owned, id);
}

static void add_unique(struct strlist *l, const char *v)
{
    if (v && !strlist_contains(l, v))
        strlist_add(l, v);
}

static void add_network(struct scan *s, const json_t *conflist)
{
    const char *name = json_string_value(json_object_get(conflist, "name"));
    if (!name || json_object_get(s->conflists, name))
        return;
    json_object_set(s->conflists, name, (json_t *)conflist);
    add_unique(&s->networks, name);
}

static void scan_states(struct scan *s)
{
    DIR *d = opendir(s->cfg->state_dir);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (n <= 5 || !nc_str_has_suffix(e->d_name, ".json"))
            continue;
        cleanup_free char *id = xstrndup(e->d_name, n - 5);
        if (!netns_name_valid(id))
            continue;
        cleanup_free char *path =
            xasprintf("%s/%s", s->cfg->state_dir, e->d_name);
        size_t len;
        cleanup_free char *text = nc_read_file(path, &len, 16u << 20);
        json_t *st = NULL;
        char why[256] = "unreadable";
        if (!text ||
            netns_state_parse(text, len, id, &st, why, sizeof(why)) < 0) {
            json_array_append_new(s->errors, json_sprintf("%s: %s", path, why));
            continue;
        }
        const char *ip = json_string_value(json_object_get(st, "IP"));
        const json_t *list = json_object_get(st, "Conflist");
        if (netns_conflist_validate(list, path, NULL) == 0)
            add_network(s, list);
        if (owned(s, id)) {
            add_unique(&s->owned_ips, ip);
            json_decref(st);
            continue;
        }
        const char *ns = json_string_value(json_object_get(st, "Netns"));
        json_t *setup =
            json_pack("{s:s, s:s?, s:s?, s:s?, s:s?}", "AllocID", id, "Netns",
                      ns, "Phase",
                      json_string_value(json_object_get(st, "Phase")), "IP", ip,
                      "Network",
                      json_string_value(json_object_get(list, "name")));
        /* a driver's holder (docker's pause container): the driver's
         * leftovers remove it, a DEL here only the namespace's mount */
        json_t *holder = json_object_get(st, "HolderPid");
        if (json_is_integer(holder))
            json_object_set(setup, "HolderPid", holder);
        json_array_append_new(s->setups, setup);
        if (ns && netns_ns_exists(ns))
            json_array_append_new(s->namespaces, json_string(ns));
        add_unique(&s->gone, id);
        json_decref(st);
    }
    if (d)
        closedir(d);
}

struct lease_scan {
    struct scan *s;
    const char *network;
    bool bridge;
};

static void on_lease(const char *ip, const char *id, const char *path,
                     void *arg)
{
    struct lease_scan *l = arg;
    struct scan *s = l->s;
    kv_set(&s->lease_ids, ip, id);
    if (owned(s, id)) {
        add_unique(&s->owned_ips, ip);
        return;
    }
    if (!(l->bridge && netns_ip_in_subnet(ip, s->subnet)) &&
        !strlist_contains(&s->gone, id))
        return;
    json_array_append_new(s->ipam, json_pack("{s:s, s:s, s:s, s:s}", "IP", ip,
                                             "ContainerID", id, "File", path,
                                             "Network", l->network));
    add_unique(&s->gone, id);
}

static void scan_leases(struct scan *s)
{
    const char *name;
    json_t *list;
    json_object_foreach(s->conflists, name, list)
    {
        cleanup_free char *dir = netns_ipam_dir(list);
        struct lease_scan l = {s, name, strcmp(name, s->bridge_network) == 0};
        netns_ipam_leases(dir, on_lease, &l);
    }
}

/* Rules of a network are ours for an unowned id with a state file, or
 * (bridge network) whose address is in the subnet. */
struct accept_ctx {
    struct scan *s;
    bool bridge;
};

static bool accept_id(const char *id, const char *ip, void *arg)
{
    struct accept_ctx *c = arg;
    if (owned(c->s, id))
        return false;
    return strlist_contains(&c->s->gone, id) ||
           (c->bridge && ip && netns_ip_in_subnet(ip, c->s->subnet));
}

static bool accept_ip(const char *ip, void *arg)
{
    struct accept_ctx *c = arg;
    return !strlist_contains(&c->s->owned_ips, ip);
}

/* Plans, over one iptables-save, what every network of ours leaves. */
static void plan_all(struct scan *s, const char *save,
                     struct netns_ipt_plan *plan)
{
    for (size_t i = 0; i < s->networks.n; i++) {
        const char *net = s->networks.items[i];
        struct accept_ctx c = {s, strcmp(net, s->bridge_network) == 0};
        struct strlist ips = {0};
        for (size_t k = 0; k < s->lease_ids.n; k++)
            if (strlist_contains(&s->gone, s->lease_ids.items[k].value))
                add_unique(&ips, s->lease_ids.items[k].key);
        netns_ipt_plan_build(plan, save, net, accept_id, &ips,
                             c.bridge ? s->subnet : NULL, accept_ip, &c);
        strlist_free(&ips);
    }
}

/* Extra copies of portmap's jumps into CNI-HOSTPORT-DNAT, which portmaps
 * racing on a host without them (or an older helper) left: one copy per
 * hook serves every container of every network, the rest only make each
 * packet walk the chain again. Listed once per extra copy; one always
 * stays (portmap never removes it, and other CNI users share it). */
static void scan_hostport(struct scan *s, const char *save)
{
    struct netns_hostport_count c;
    netns_hostport_count(save, &c);
    for (size_t h = 0; h < NETNS_HOSTPORT_HOOKS; h++) {
        cleanup_free char *rule = netns_hostport_rule(h);
        for (unsigned i = 1; i < c.jumps[h]; i++)
            json_array_append_new(
                s->iptables, json_pack("{s:s, s:s, s:s, s:b}", "Table", "nat",
                                       "Chain", netns_hostport_hooks[h], "Rule",
                                       rule, "Duplicate", 1));
    }
}

static void scan_iptables(struct scan *s)
{
    struct nc_error err = {0};
    cleanup_free char *save = netns_ipt_save(10000, &err);
    if (!save) {
        json_array_append_new(s->errors, json_string(err.msg));
        return;
    }
    struct netns_ipt_plan plan = {0};
    plan_all(s, save, &plan);
    for (size_t i = 0; i < plan.nrules; i++) {
        const struct netns_ipt_rule *r = &plan.rules[i];
        const char *id = r->container_id;
        if (!id && r->ip)
            id = kv_get(&s->lease_ids, r->ip);
        json_array_append_new(s->iptables,
                              json_pack("{s:s, s:s, s:s, s:s?}", "Table",
                                        r->table, "Chain", r->chain, "Rule",
                                        r->rule, "ContainerID", id));
        if (r->container_id)
            add_unique(&s->gone, r->container_id);
    }
    netns_ipt_plan_free(&plan);
    scan_hostport(s, save);
}

/* ---- cleaning ------------------------------------------------------------ */

struct cleaner {
    uv_loop_t loop;
    const struct netns_config *cfg;
    struct scan *s;
    size_t next, running;
};

static void start_next(struct cleaner *c);

static void on_deleted(const struct netns_result *res, void *arg)
{
    struct cleaner *c = arg;
    c->running--;
    if (res->status < 0)
        json_array_append_new(
            c->s->errors,
            json_sprintf("DEL %s: %s", res->alloc_id, res->message));
    start_next(c);
}

static void start_next(struct cleaner *c)
{
    while (c->running < CLEAN_PARALLEL && c->next < c->s->gone.n) {
        const char *id = c->s->gone.items[c->next++];
        struct netns_setup setup = {.alloc_id = id};
        struct nc_error err = {0};
        if (netns_del(&c->loop, c->cfg, &setup, NULL, on_deleted, c, &err) < 0)
            json_array_append_new(c->s->errors,
                                  json_sprintf("DEL %s: %s", id, err.msg));
        else
            c->running++;
    }
}

static void clean(struct scan *s)
{
    struct cleaner c = {.cfg = s->cfg, .s = s};
    if (uv_loop_init(&c.loop) < 0) {
        json_array_append_new(s->errors, json_string("cannot create a loop"));
        return;
    }
    start_next(&c);
    uv_run(&c.loop, UV_RUN_DEFAULT);
    netns_loop_done(&c.loop);
    uv_loop_close(&c.loop);
    /* what only an address ties to us (rules whose allocation left no
     * lease or state, e.g. after a DEL without prevResult) */
    struct nc_error err = {0};
    cleanup_free char *save = netns_ipt_save(10000, &err);
    struct netns_ipt_plan plan = {0};
    if (save)
        plan_all(s, save, &plan);
    cleanup_free char *script = netns_ipt_plan_script(&plan);
    netns_ipt_plan_free(&plan);
    if (script && netns_ipt_restore(script, 10000, &err) < 0)
        json_array_append_new(s->errors, json_string(err.msg));
    size_t removed = 0;
    if (netns_hostport_dedupe(10000, &removed, &err) < 0)
        json_array_append_new(s->errors,
                              json_sprintf("remove the extra jumps into %s: %s",
                                           NETNS_HOSTPORT_CHAIN, err.msg));
}

/* The bridge and Nomad's NOMAD-ADMIN rule for it serve every allocation
 * on the network, so they stay while any allocation runs there, as Nomad
 * keeps them; once none is left (and no set-up remains to tear down) they
 * are leftovers too. */
static json_t *scan_bridge(struct scan *s, bool do_clean)
{
    if (s->owned && s->owned->n)
        return json_null();
    const char *bridge = netns_cfg_bridge(s->cfg);
    char path[64];
    snprintf(path, sizeof(path), "/sys/class/net/%s", bridge);
    bool link = access(path, F_OK) == 0;
    json_t *rule = json_pack("{s:s, s:s, s:s}", "Chain", NETNS_ADMIN_CHAIN,
                             "Bridge", bridge, "Subnet", s->subnet);
    struct nc_error err = {0};
    int present = netns_ipt_admin_present(rule, false, 10000, &err);
    if (!link && present <= 0) {
        json_decref(rule);
        return json_null();
    }
    if (do_clean) {
        if (present > 0 && netns_ipt_admin_present(rule, true, 10000, &err) < 0)
            json_array_append_new(s->errors, json_string(err.msg));
        if (link && netns_bridge_delete(bridge, 10000, &err) < 0)
            json_array_append_new(s->errors, json_string(err.msg));
    }
    json_decref(rule);
    return json_pack("{s:s, s:b, s:b}", "Name", bridge, "Link", link,
                     "AdminRule", present > 0);
}

json_t *netns_leftovers(const struct netns_config *cfg,
                        const struct strlist *owned_alloc_ids, bool do_clean)
{
    struct scan s = {
        .cfg = cfg,
        .owned = owned_alloc_ids,
        .bridge_network = netns_cfg_network(cfg),
        .subnet = netns_cfg_subnet(cfg),
        .conflists = json_object(),
        .setups = json_array(),
        .namespaces = json_array(),
        .ipam = json_array(),
        .iptables = json_array(),
        .errors = json_array(),
    };
    struct nc_error err = {0};
    if (netns_config_validate(cfg, &err) < 0) {
        json_array_append_new(s.errors, json_string(err.msg));
    } else {
        json_t *bridge = netns_bridge_conflist(cfg);
        add_network(&s, bridge);
        json_decref(bridge);
        scan_states(&s);
        scan_leases(&s);
        scan_iptables(&s);
        if (do_clean)
            clean(&s);
    }
    json_t *bridge = json_array_size(s.errors) ? json_null()
                                               : scan_bridge(&s, do_clean);
    json_t *out =
        json_pack("{s:o, s:o, s:o, s:o, s:o, s:b, s:o}", "Setups", s.setups,
                  "Namespaces", s.namespaces, "IPAM", s.ipam, "Iptables",
                  s.iptables, "Bridge", bridge, "Cleaned", do_clean, "Errors",
                  s.errors);
    strlist_free(&s.gone);
    strlist_free(&s.owned_ips);
    kv_free(&s.lease_ids);
    strlist_free(&s.networks);
    json_decref(s.conflists);
    return out;
}
