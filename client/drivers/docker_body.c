/* docker_body.c - a task's docker options and the container create
 * body made of them (Nomad's createContainerConfig); see
 * docker_config.h. */
#include "client/drivers/docker_config_internal.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/drivers/internal.h"

/* ---- the task's options for the driver ---- */

static const struct node *no_node(const struct node *n)
{
    static const struct node empty;
    return n ? n : &empty;
}

static const struct kvlist *no_env(const struct kvlist *env)
{
    static const struct kvlist empty;
    return env ? env : &empty;
}

char *docker_task_string(const struct task *spec, const char *key,
                         const struct kvlist *env, const struct node *n)
{
    char *raw = spec ? cstr(spec->config, key) : NULL;
    if (!raw)
        return NULL;
    char *s = alloc_interpolate(raw, no_env(env), no_node(n));
    free(raw);
    return s;
}

bool docker_task_bool(const struct task *spec, const char *key)
{
    return spec && cbool(spec->config, key);
}

char *docker_task_image(const struct task *spec, const struct kvlist *env,
                        const struct node *n)
{
    char *s = docker_task_string(spec, "image", env, n);
    if (s && nc_str_has_prefix(s, "https://"))
        memmove(s, s + 8, strlen(s + 8) + 1);
    return s;
}

int64_t docker_task_pull_timeout(const struct task *spec)
{
    int64_t ns = 5 * MINUTE_NS;
    char *s = spec ? cstr(spec->config, "image_pull_timeout") : NULL;
    if (s && nc_parse_duration(s, &ns) < 0)
        ns = 5 * MINUTE_NS;
    free(s);
    return ns;
}

char *docker_container_name(const char *task, const char *alloc_id)
{
    char *s = xasprintf("%s-%s", task ? task : "", alloc_id ? alloc_id : "");
    for (char *p = s; *p && p < s + (task ? strlen(task) : 0); p++)
        if (*p == '/')
            *p = '_';
    return s;
}

/* ---- the container create body ---- */

struct body {
    const struct docker_task_ctx *c;
    const struct docker_plugin_config *pc;
    const json_t *config; /* interpolated */
    json_t *root, *host;
    const char *mode; /* the network mode */
    bool container_mode;
    char *alloc_root; /* <alloc> */
    struct nc_error *err;
};

/* A list option into obj[field] when the config has one. */
static void put_list(json_t *obj, const char *field, const json_t *config,
                     const char *key)
{
    if (!cget(config, key))
        return;
    struct strlist l = {0};
    cstrlist(config, key, &l);
    json_object_set_new(obj, field, nc_strlist_json(&l));
    strlist_free(&l);
}

static void put_string(json_t *obj, const char *field, const json_t *config,
                       const char *key)
{
    char *s = cstr(config, key);
    if (s && *s)
        json_object_set_new(obj, field, json_string(s));
    free(s);
}

static int body_fail(struct body *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int body_fail(struct body *b, const char *fmt, ...)
{
    struct nc_buf m = {0};
    va_list ap;
    va_start(ap, fmt);
    nc_buf_vprintf(&m, fmt, ap);
    va_end(ap);
    nc_error_set(b->err, -EINVAL, "%s", m.data ? m.data : "");
    nc_buf_free(&m);
    return -EINVAL;
}

/* Nomad's containerBinds: /alloc, /local, /secrets, then the config's
 * volumes (relative to the task dir unless a volume driver names them),
 * the SELinux label on each. */
static int add_binds(struct body *b)
{
    const struct docker_task_ctx *c = b->c;
    const struct kvlist *env = no_env(c->env);
    const char *alloc_dst = kv_get(env, "NOMAD_ALLOC_DIR");
    const char *local_dst = kv_get(env, "NOMAD_TASK_DIR");
    const char *secrets_dst = kv_get(env, "NOMAD_SECRETS_DIR");
    struct strlist binds = {0};
    char *s;
    strlist_add(&binds, (s = xasprintf("%s:%s", c->alloc_dir,
                                       alloc_dst ? alloc_dst : "/alloc")));
    free(s);
    strlist_add(&binds, (s = xasprintf("%s/local:%s", c->task_dir,
                                       local_dst ? local_dst : "/local")));
    free(s);
    strlist_add(&binds,
                (s = xasprintf("%s/secrets:%s", c->task_dir,
                               secrets_dst ? secrets_dst : "/secrets")));
    free(s);
    char *driver = cstr(b->config, "volume_driver");
    bool local = !driver || !*driver;
    free(driver);
    struct strlist vols = {0};
    cstrlist(b->config, "volumes", &vols);
    int r = 0;
    for (size_t i = 0; i < vols.n && r == 0; i++) {
        const char *vb = vols.items[i];
        /* src:dst[:mode], split on every ':' as Nomad's parser does */
        char *copy = xstrdup(vb);
        char **parts = xcalloc(strlen(vb) + 2, sizeof(*parts));
        size_t np = 0;
        for (char *p = copy, *q; p; p = q) {
            q = strchr(p, ':');
            if (q)
                *q++ = '\0';
            parts[np++] = p;
        }
        if (np < 2) {
            r = body_fail(b,
                          "invalid docker volume \"%s\": not "
                          "<src>:<destination> format",
                          vb);
        } else {
            char *src = local ? expand_path(c->task_dir, parts[0])
                              : path_clean(parts[0]);
            if (!b->pc->volumes.enabled &&
                !is_parent_path(b->alloc_root, src)) {
                r = body_fail(b,
                              "volumes are not enabled; cannot mount host "
                              "paths: \"%s\"",
                              vb);
            } else {
                s = np > 2 ? xasprintf("%s:%s:%s", src, parts[1], parts[2])
                           : xasprintf("%s:%s", src, parts[1]);
                strlist_add(&binds, s);
                free(s);
            }
            free(src);
        }
        free(parts);
        free(copy);
    }
    strlist_free(&vols);
    const char *label = b->pc->volumes.selinuxlabel;
    json_t *arr = json_array();
    for (size_t i = 0; i < binds.n; i++) {
        if (label && *label) {
            s = xasprintf("%s:%s", binds.items[i], label);
            json_array_append_new(arr, json_string(s));
            free(s);
        } else {
            json_array_append_new(arr, json_string(binds.items[i]));
        }
    }
    strlist_free(&binds);
    json_object_set_new(b->host, "Binds", arr);
    return r;
}

/* A mount block as the Engine's Mount (Nomad's toDockerMount). */
static int add_mount(struct body *b, const json_t *m, json_t *mounts)
{
    char *type = cstr(m, "type"), *source = cstr(m, "source");
    char *target = cstr(m, "target");
    const char *t = type && *type ? type : "volume";
    json_t *hm = json_object();
    int r = 0;
    json_object_set_new(hm, "Type", json_string(t));
    json_object_set_new(hm, "Target", json_string(target ? target : ""));
    json_object_set_new(hm, "ReadOnly", json_boolean(cbool(m, "readonly")));
    if (strcmp(t, "bind") == 0) {
        char *src = expand_path(b->c->task_dir, source ? source : "");
        if (!b->pc->volumes.enabled && !is_parent_path(b->alloc_root, src))
            r = body_fail(b,
                          "volumes are not enabled; cannot mount host path: "
                          "\"%s\" \"%s\"",
                          src, b->alloc_root);
        json_object_set_new(hm, "Source", json_string(src));
        free(src);
        const json_t *bo = cblock(m, "bind_options");
        char *prop = bo ? cstr(bo, "propagation") : NULL;
        json_object_set_new(
            hm, "BindOptions",
            json_pack("{s:s}", "Propagation", prop ? prop : ""));
        free(prop);
    } else if (strcmp(t, "tmpfs") == 0) {
        if (source && *source)
            r = body_fail(b, "invalid source, must be \"\" for tmpfs");
        const json_t *to = cblock(m, "tmpfs_options");
        json_object_set_new(hm, "TmpfsOptions",
                            json_pack("{s:I, s:I}", "SizeBytes",
                                      (json_int_t)cint(to, "size", 0), "Mode",
                                      (json_int_t)cint(to, "mode", 0)));
    } else if (strcmp(t, "volume") == 0) {
        if (!b->pc->volumes.enabled)
            r = body_fail(b,
                          "volumes are not enabled; cannot mount volume: "
                          "\"%s\"",
                          source ? source : "");
        json_object_set_new(hm, "Source", json_string(source ? source : ""));
        const json_t *vo = cblock(m, "volume_options");
        const json_t *dc = vo ? cblock(vo, "driver_config") : NULL;
        struct kvlist labels = {0}, opts = {0};
        cstrmap(vo, "labels", &labels);
        cstrmap(dc, "options", &opts);
        char *dname = dc ? cstr(dc, "name") : NULL;
        json_object_set_new(hm, "VolumeOptions",
                            json_pack("{s:b, s:o, s:{s:s, s:o}}", "NoCopy",
                                      cbool(vo, "no_copy"), "Labels",
                                      nc_kvlist_json(&labels), "DriverConfig", "Name",
                                      dname ? dname : "", "Options",
                                      nc_kvlist_json(&opts)));
        free(dname);
        kv_free(&labels);
        kv_free(&opts);
    } else {
        r = body_fail(b,
                      "invalid mount type, must be \"bind\", \"volume\", "
                      "\"tmpfs\": \"%s\"",
                      t);
    }
    json_array_append_new(mounts, hm);
    free(type);
    free(source);
    free(target);
    return r;
}

/* The group's host volumes the task mounts (volume_mount), as bind
 * mounts with their propagation, read-only if any of the three says so. */
static int add_volume_mounts(struct body *b, json_t *mounts)
{
    const struct docker_task_ctx *c = b->c;
    const struct task *spec = c->spec;
    const struct task_group *g = c->a ? alloc_group(c->a) : NULL;
    for (size_t k = 0; k < spec->nvolume_mounts; k++) {
        const struct volume_mount *vm = &spec->volume_mounts[k];
        const struct volume_request *vr = NULL;
        for (size_t q = 0; g && q < g->nvolumes; q++)
            if (nc_streq(g->volumes[q].name, vm->volume))
                vr = &g->volumes[q];
        const struct host_volume_config *hv = NULL;
        for (size_t q = 0; vr && q < c->cfg->client.nhost_volumes; q++)
            if (nc_streq(c->cfg->client.host_volumes[q].name, vr->source))
                hv = &c->cfg->client.host_volumes[q];
        if (!vr || !hv)
            return body_fail(b, "volume_mount \"%s\": %s", vm->volume,
                             !vr ? "no group volume of that name"
                                 : "the host volume is not declared in the "
                                   "agent config (client { host_volume ... })");
        const char *pm = vm->propagation_mode;
        const char *prop = nc_streq(pm, "host-to-task")    ? "rslave"
                           : nc_streq(pm, "bidirectional") ? "rshared"
                                                           : "rprivate";
        json_array_append_new(
            mounts,
            json_pack("{s:s, s:s, s:s, s:b, s:{s:s}}", "Type", "bind", "Source",
                      hv->path ? hv->path : "", "Target",
                      vm->destination ? vm->destination : "", "ReadOnly",
                      hv->read_only || vr->read_only || vm->read_only,
                      "BindOptions", "Propagation", prop));
    }
    return 0;
}

/* PortBindings and ExposedPorts: each port the config names, `to` inside
 * (tcp and udp) bound to the allocation's host port, as Nomad's
 * publishedPorts; none in a group's shared namespace. */
static int add_ports(struct body *b)
{
    const struct docker_task_ctx *c = b->c;
    struct strlist ports = {0};
    cstrlist(b->config, "ports", &ports);
    json_t *bindings = json_object(), *exposed = json_object();
    int r = 0;
    const char *node_ip =
        c->node ? kv_get(&c->node->attributes, "unique.network.ip-address")
                : NULL;
    if (ports.n && !b->container_mode) {
        for (size_t i = 0; i < ports.n && r == 0; i++) {
            const struct alloc_port *p = NULL;
            for (size_t k = 0; c->a && k < c->a->nports && !p; k++)
                if (nc_streq(c->a->ports[k].label, ports.items[i]))
                    p = &c->a->ports[k];
            if (!p) {
                r = body_fail(b, "Port \"%s\" not found, check network block",
                              ports.items[i]);
                break;
            }
            int to = p->to > 0 ? p->to : p->value;
            const char *ip = p->host_ip && *p->host_ip ? p->host_ip
                             : node_ip                 ? node_ip
                                                       : "";
            char host_port[16];
            snprintf(host_port, sizeof(host_port), "%d", p->value);
            static const char *const protos[] = {"tcp", "udp"};
            for (size_t q = 0; q < 2; q++) {
                char key[32];
                snprintf(key, sizeof(key), "%d/%s", to, protos[q]);
                json_t *list = json_object_get(bindings, key);
                if (!list) {
                    list = json_array();
                    json_object_set_new(bindings, key, list);
                }
                json_array_append_new(list,
                                      json_pack("{s:s, s:s}", "HostIp", ip,
                                                "HostPort", host_port));
                json_object_set_new(exposed, key, json_object());
            }
        }
    } else if (!ports.n && nblocks(cget(b->config, "port_map"))) {
        r = body_fail(b,
                      c->a && c->a->nports
                          ? "'port_map' cannot map group network ports, use "
                            "'ports' instead"
                          : "Trying to map ports but no network interface is "
                            "available");
    }
    strlist_free(&ports);
    if (json_object_size(bindings))
        json_object_set_new(b->host, "PortBindings", bindings);
    else
        json_decref(bindings);
    if (json_object_size(exposed))
        json_object_set_new(b->root, "ExposedPorts", exposed);
    else
        json_decref(exposed);
    return r;
}

/* DNS: the group's dns block, else the config's dns_* (servers that are
 * not IP addresses skipped, as Nomad logs and skips them). In a group's
 * shared namespace the pause container carries them. */
static int add_dns(struct body *b)
{
    const struct task_group *g = b->c->a ? alloc_group(b->c->a) : NULL;
    const struct network *nw = g && g->nnetworks ? &g->networks[0] : NULL;
    bool group_dns =
        nw && (nw->dns_servers.n || nw->dns_searches.n || nw->dns_options.n);
    static const char *const keys[] = {"dns_servers", "dns_search_domains",
                                       "dns_options"};
    if (b->container_mode) {
        for (size_t i = 0; i < NC_ARRAY_LEN(keys); i++)
            if (nblocks(cget(b->config, keys[i])) ||
                json_array_size(cget(b->config, keys[i])))
                return body_fail(b,
                                 "%s cannot be set with network mode \"%s\" "
                                 "(the group's network shares one "
                                 "resolv.conf: use its dns block)",
                                 keys[i], b->mode);
        return 0;
    }
    struct strlist servers = {0}, search = {0}, opts = {0};
    if (group_dns) {
        strlist_copy(&servers, &nw->dns_servers);
        strlist_copy(&search, &nw->dns_searches);
        strlist_copy(&opts, &nw->dns_options);
    } else {
        struct strlist all = {0};
        cstrlist(b->config, "dns_servers", &all);
        for (size_t i = 0; i < all.n; i++) {
            unsigned char addr[16];
            if (inet_pton(AF_INET, all.items[i], addr) == 1 ||
                inet_pton(AF_INET6, all.items[i], addr) == 1)
                strlist_add(&servers, all.items[i]);
        }
        strlist_free(&all);
        cstrlist(b->config, "dns_search_domains", &search);
        cstrlist(b->config, "dns_options", &opts);
    }
    if (servers.n)
        json_object_set_new(b->host, "Dns", nc_strlist_json(&servers));
    if (search.n)
        json_object_set_new(b->host, "DnsSearch", nc_strlist_json(&search));
    if (opts.n)
        json_object_set_new(b->host, "DnsOptions", nc_strlist_json(&opts));
    strlist_free(&servers);
    strlist_free(&search);
    strlist_free(&opts);
    return 0;
}

/* Nomad's label names for extra_labels globs */
static bool glob_match(const char *pat, const char *s)
{
    if (!*pat)
        return !*s;
    if (*pat == '*') {
        for (const char *p = s;; p++) {
            if (glob_match(pat + 1, p))
                return true;
            if (!*p)
                return false;
        }
    }
    return *s == *pat && glob_match(pat + 1, s + 1);
}

static void add_labels(struct body *b)
{
    const struct docker_task_ctx *c = b->c;
    struct kvlist labels = {0};
    cstrmap(b->config, "labels", &labels);
    kv_set(&labels, "com.hashicorp.nomad.alloc_id", c->a ? c->a->id : "");
    const struct alloc *a = c->a;
    const char *job_name = a && a->job && a->job->name ? a->job->name
                           : a                         ? a->job_id
                                                       : "";
    const struct {
        const char *name, *value;
    } extra[] = {
        {"job_name", job_name},
        {"job_id", a ? a->job_id : ""},
        {"task_group_name", a ? a->group : ""},
        {"task_name", c->t ? c->t->name : c->spec->name},
        {"namespace", a ? a->namespace : ""},
        {"node_name", c->node ? c->node->name : ""},
        {"node_id", c->node ? c->node->id : ""},
    };
    const struct strlist *globs = &b->pc->extra_labels;
    for (size_t i = 0; i < NC_ARRAY_LEN(extra); i++)
        for (size_t g = 0; g < globs->n; g++)
            if (glob_match(globs->items[g], extra[i].name)) {
                char *key = xasprintf("com.hashicorp.nomad.%s", extra[i].name);
                kv_set(&labels, key, extra[i].value ? extra[i].value : "");
                free(key);
                break;
            }
    json_object_set_new(b->root, "Labels", nc_kvlist_json(&labels));
    kv_free(&labels);
}

static void add_logging(struct body *b)
{
    const json_t *lg = cblock(b->config, "logging");
    char *type = lg ? cstr(lg, "type") : NULL;
    if (!type || !*type) {
        free(type);
        type = lg ? cstr(lg, "driver") : NULL;
    }
    struct kvlist conf = {0};
    bool have_conf = lg && cget(lg, "config");
    cstrmap(lg, "config", &conf);
    if ((!type || !*type) && !have_conf) {
        /* the plugin's, else Nomad's json-file default */
        free(type);
        const struct docker_plugin_config *pc = b->pc;
        if (!pc->logging.type && !pc->logging.config.n) {
            type = xstrdup("json-file");
            kv_set(&conf, "max-file", "2");
            kv_set(&conf, "max-size", "2m");
        } else {
            type = xstrdup(pc->logging.type ? pc->logging.type : "");
            kv_copy(&conf, &pc->logging.config);
        }
    }
    json_object_set_new(b->host, "LogConfig",
                        json_pack("{s:s, s:o}", "Type", type ? type : "",
                                  "Config", nc_kvlist_json(&conf)));
    free(type);
    kv_free(&conf);
}

/* security_opt, a seccomp profile file read and compacted into it as the
 * Docker CLI (and Nomad) do */
static int add_security_opt(struct body *b)
{
    struct strlist so = {0}, out = {0};
    cstrlist(b->config, "security_opt", &so);
    int r = 0;
    for (size_t i = 0; i < so.n && r == 0; i++) {
        char *name = NULL, *value = NULL;
        if (split_security_opt(so.items[i], &name, &value) < 0) {
            r = body_fail(b,
                          "failed to parse security_opt configuration: "
                          "invalid security_opt: \"%s\"",
                          so.items[i]);
            break;
        }
        if (strcmp(name, "seccomp") == 0 && value &&
            strcmp(value, "unconfined") != 0) {
            json_error_t je;
            json_t *prof = json_load_file(value, 0, &je);
            if (!prof) {
                r = body_fail(b,
                              "failed to parse security_opt configuration: "
                              "opening seccomp profile (%s) failed: %s",
                              value, je.text);
            } else {
                char *txt =
                    json_dumps(prof, JSON_COMPACT | JSON_PRESERVE_ORDER);
                char *opt = xasprintf("seccomp=%s", txt ? txt : "");
                strlist_add(&out, opt);
                free(opt);
                free(txt);
                json_decref(prof);
            }
        } else {
            strlist_add(&out, so.items[i]);
        }
        free(name);
        free(value);
    }
    if (r == 0 && so.n)
        json_object_set_new(b->host, "SecurityOpt", nc_strlist_json(&out));
    strlist_free(&so);
    strlist_free(&out);
    return r;
}

static int add_resources(struct body *b)
{
    const struct task *spec = b->c->spec;
    const json_t *config = b->config;
    /* Nomad's memoryLimits: the hard limit is the larger of
     * memory_hard_limit and memory_max, with memory as the reservation */
    int64_t soft = (int64_t)spec->resources.memory_mb << 20;
    int64_t hard = cint(config, "memory_hard_limit", 0);
    if (spec->resources.memory_max_mb > hard)
        hard = spec->resources.memory_max_mb;
    int64_t memory = hard > 0 ? hard << 20 : soft;
    json_object_set_new(b->host, "Memory", json_integer(memory));
    json_object_set_new(b->host, "MemoryReservation",
                        json_integer(hard > 0 ? soft : 0));
    json_object_set_new(b->host, "MemorySwap", json_integer(memory));
    json_object_set_new(b->host, "MemorySwappiness", json_integer(0));
    json_object_set_new(b->host, "CpuShares",
                        json_integer(spec->resources.cpu));
    if (cbool(config, "cpu_hard_limit")) {
        int64_t period = cint(config, "cpu_cfs_period", 100000);
        if (period < 0 || period > 1000000)
            return body_fail(b, "invalid value for cpu_cfs_period");
        if (period == 0)
            period = 100000;
        int total = b->c->node ? b->c->node->resources.cpu_mhz : 0;
        long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
        if (total <= 0 || ncpu <= 0)
            return body_fail(b, "cpu_hard_limit: the node's total CPU is not "
                                "known");
        /* the task's share of the node's compute, over every core */
        double share = (double)spec->resources.cpu / total;
        json_object_set_new(b->host, "CpuPeriod", json_integer(period));
        json_object_set_new(
            b->host, "CpuQuota",
            json_integer((int64_t)(share * (double)period) * ncpu));
    }
    put_string(b->host, "CpusetCpus", config, "cpuset_cpus");
    int64_t pids = b->pc->pids_limit > 0 ? b->pc->pids_limit : 0;
    if (cint(config, "pids_limit", 0) > 0)
        pids = cint(config, "pids_limit", 0);
    json_object_set_new(b->host, "PidsLimit", json_integer(pids));
    return 0;
}

static int add_caps_and_devices(struct body *b)
{
    char msg[600];
    struct strlist add = {0}, drop = {0};
    cstrlist(b->config, "cap_add", &add);
    cstrlist(b->config, "cap_drop", &drop);
    json_t *ca = json_array(), *cd = json_array();
    int r =
        caps_delta(&b->pc->allow_caps, &add, &drop, ca, cd, msg, sizeof(msg));
    strlist_free(&add);
    strlist_free(&drop);
    json_object_set_new(b->host, "CapAdd", ca);
    json_object_set_new(b->host, "CapDrop", cd);
    if (r < 0)
        return body_fail(b, "%s", msg);
    const json_t *dv = cget(b->config, "devices");
    if (!nblocks(dv))
        return 0;
    json_t *devs = json_array();
    for (size_t i = 0; i < nblocks(dv); i++) {
        const json_t *d = block_at(dv, i);
        char *hp = cstr(d, "host_path"), *cp = cstr(d, "container_path");
        char *perm = cstr(d, "cgroup_permissions");
        json_array_append_new(devs, json_pack("{s:s, s:s, s:s}", "PathOnHost",
                                              hp ? hp : "", "PathInContainer",
                                              cp && *cp ? cp
                                              : hp      ? hp
                                                        : "",
                                              "CgroupPermissions",
                                              perm && *perm ? perm : "rwm"));
        free(hp);
        free(cp);
        free(perm);
    }
    json_object_set_new(b->host, "Devices", devs);
    return 0;
}

static void add_host_misc(struct body *b)
{
    const json_t *config = b->config;
    json_t *h = b->host;
    json_object_set_new(h, "Privileged",
                        json_boolean(cbool(config, "privileged")));
    if (cbool(config, "init"))
        json_object_set_new(h, "Init", json_true());
    put_string(h, "Runtime", config, "runtime");
    put_string(h, "IpcMode", config, "ipc_mode");
    put_string(h, "PidMode", config, "pid_mode");
    put_string(h, "UTSMode", config, "uts_mode");
    put_string(h, "UsernsMode", config, "userns_mode");
    put_string(h, "VolumeDriver", config, "volume_driver");
    put_list(h, "GroupAdd", config, "group_add");
    json_object_set_new(h, "ReadonlyRootfs",
                        json_boolean(cbool(config, "readonly_rootfs")));
    if (cint(config, "shm_size", 0) > 0)
        json_object_set_new(h, "ShmSize",
                            json_integer(cint(config, "shm_size", 0)));
    if (cint(config, "oom_score_adj", 0) > 0)
        json_object_set_new(h, "OomScoreAdj",
                            json_integer(cint(config, "oom_score_adj", 0)));
    struct kvlist m = {0};
    cstrmap(config, "sysctl", &m);
    if (m.n)
        json_object_set_new(h, "Sysctls", nc_kvlist_json(&m));
    kv_free(&m);
    cstrmap(config, "storage_opt", &m);
    if (m.n)
        json_object_set_new(h, "StorageOpt", nc_kvlist_json(&m));
    kv_free(&m);
}

static int add_ulimits(struct body *b)
{
    struct kvlist ul = {0};
    cstrmap(b->config, "ulimit", &ul);
    json_t *arr = json_array();
    int r = 0;
    for (size_t i = 0; i < ul.n && r == 0; i++) {
        char msg[300];
        int64_t soft, hard;
        if (parse_ulimit(ul.items[i].key, ul.items[i].value, &soft, &hard, msg,
                         sizeof(msg)) < 0)
            r = body_fail(b, "failed to parse ulimit configuration: %s", msg);
        else
            json_array_append_new(arr, json_pack("{s:s, s:I, s:I}", "Name",
                                                 ul.items[i].key, "Soft",
                                                 (json_int_t)soft, "Hard",
                                                 (json_int_t)hard));
    }
    kv_free(&ul);
    if (json_array_size(arr))
        json_object_set_new(b->host, "Ulimits", arr);
    else
        json_decref(arr);
    return r;
}

/* Cmd, Entrypoint, WorkingDir, User, Hostname, Tty, OpenStdin, MacAddress,
 * Healthcheck, Env */
static int add_process(struct body *b)
{
    const json_t *config = b->config;
    json_t *root = b->root;
    char *cmd = cstr(config, "command");
    struct strlist args = {0};
    cstrlist(config, "args", &args);
    int r = 0;
    if (cmd && *cmd) {
        size_t n = strlen(cmd);
        if (strspn(cmd, " \t\r\n\f\v") == n)
            r = body_fail(b, "command empty: \"%s\"", cmd);
        else if (isspace((unsigned char)cmd[0]) ||
                 isspace((unsigned char)cmd[n - 1]))
            r = body_fail(b, "command contains extra white space: \"%s\"", cmd);
        json_t *a = json_array();
        json_array_append_new(a, json_string(cmd));
        for (size_t i = 0; i < args.n; i++)
            json_array_append_new(a, json_string(args.items[i]));
        json_object_set_new(root, "Cmd", a);
    } else if (args.n) {
        json_object_set_new(root, "Cmd", nc_strlist_json(&args));
    }
    free(cmd);
    strlist_free(&args);
    if (r < 0)
        return r;
    put_list(root, "Entrypoint", config, "entrypoint");
    put_string(root, "WorkingDir", config, "work_dir");
    if (b->c->spec->user && *b->c->spec->user)
        json_object_set_new(root, "User", json_string(b->c->spec->user));
    char *hostname = cstr(config, "hostname");
    if (hostname && *hostname && b->container_mode)
        r = body_fail(b,
                      "hostname cannot be set with network mode \"%s\"; set "
                      "it in the group's network block",
                      b->mode);
    else if (hostname && *hostname)
        json_object_set_new(root, "Hostname", json_string(hostname));
    free(hostname);
    if (r < 0)
        return r;
    json_object_set_new(root, "Tty", json_boolean(cbool(config, "tty")));
    json_object_set_new(root, "OpenStdin",
                        json_boolean(cbool(config, "interactive")));
    put_string(root, "MacAddress", config, "mac_address");
    if (cbool(cblock(config, "healthchecks"), "disable"))
        json_object_set_new(root, "Healthcheck",
                            json_pack("{s:[s]}", "Test", "NONE"));
    json_t *env = json_array();
    const struct kvlist *e = no_env(b->c->env);
    for (size_t i = 0; i < e->n; i++) {
        char *kv = xasprintf("%s=%s", e->items[i].key, e->items[i].value);
        json_array_append_new(env, json_string(kv));
        free(kv);
    }
    json_object_set_new(root, "Env", env);
    return 0;
}

static int add_network(struct body *b)
{
    json_object_set_new(b->host, "NetworkMode", json_string(b->mode));
    const json_t *config = b->config;
    struct strlist extra = {0};
    cstrlist(config, "extra_hosts", &extra);
    int r = 0;
    if (extra.n && b->container_mode)
        r = body_fail(b,
                      "extra_hosts cannot be set with network mode \"%s\" (the "
                      "group's network shares one /etc/hosts)",
                      b->mode);
    else if (extra.n)
        json_object_set_new(b->host, "ExtraHosts", nc_strlist_json(&extra));
    strlist_free(&extra);
    if (r < 0)
        return r;
    char *v4 = cstr(config, "ipv4_address"), *v6 = cstr(config, "ipv6_address");
    bool aliases = json_array_size(cget(config, "network_aliases")) > 0;
    if (aliases || (v4 && *v4) || (v6 && *v6)) {
        json_t *ep = json_object();
        if (aliases)
            put_list(ep, "Aliases", config, "network_aliases");
        if ((v4 && *v4) || (v6 && *v6))
            json_object_set_new(ep, "IPAMConfig",
                                json_pack("{s:s, s:s}", "IPv4Address",
                                          v4 ? v4 : "", "IPv6Address",
                                          v6 ? v6 : ""));
        json_t *eps = json_object();
        json_object_set_new(eps, b->mode, ep);
        json_object_set_new(b->root, "NetworkingConfig",
                            json_pack("{s:o}", "EndpointsConfig", eps));
    }
    free(v4);
    free(v6);
    return add_ports(b);
}

json_t *docker_container_body(const struct docker_task_ctx *c,
                              struct nc_error *err)
{
    if (!c || !c->cfg || !c->spec || !c->task_dir || !c->alloc_dir) {
        nc_error_set(err, -EINVAL, "docker: incomplete task context");
        return NULL;
    }
    json_t *config = interpolate(c->spec->config ? c->spec->config : NULL,
                                 no_env(c->env), no_node(c->node), 0);
    if (!json_is_object(config)) {
        json_decref(config);
        config = json_object();
    }
    if (validate_config(c->cfg, config, true, err) < 0) {
        json_decref(config);
        return NULL;
    }
    struct body b = {
        .c = c,
        .pc = &c->cfg->client.docker,
        .config = config,
        .root = json_object(),
        .host = json_object(),
        .err = err,
    };
    char *parent = xasprintf("%s/..", c->alloc_dir);
    b.alloc_root = path_clean(parent);
    free(parent);
    char *mode = cstr(config, "network_mode");
    if (!mode || !*mode) {
        free(mode);
        mode = xstrdup(c->network_mode && *c->network_mode ? c->network_mode
                                                           : "default");
    }
    b.mode = mode;
    b.container_mode = nc_str_has_prefix(mode, "container:");
    /* the driver's (a resolved ID), else the interpolated config's */
    char *image = c->image ? xstrdup(c->image) : cstr(config, "image");
    if (!c->image && image && nc_str_has_prefix(image, "https://"))
        memmove(image, image + 8, strlen(image + 8) + 1);
    json_object_set_new(b.root, "Image", json_string(image ? image : ""));
    free(image);

    json_t *mounts = json_array();
    int r = add_process(&b);
    if (r == 0)
        r = add_resources(&b);
    if (r == 0)
        r = add_binds(&b);
    static const char *const mount_keys[] = {"mount", "mounts"};
    for (size_t k = 0; k < NC_ARRAY_LEN(mount_keys) && r == 0; k++) {
        const json_t *mv = cget(config, mount_keys[k]);
        for (size_t i = 0; i < nblocks(mv) && r == 0; i++)
            r = add_mount(&b, block_at(mv, i), mounts);
    }
    if (r == 0)
        r = add_volume_mounts(&b, mounts);
    if (r == 0)
        r = add_caps_and_devices(&b);
    if (r == 0)
        r = add_dns(&b);
    if (r == 0)
        r = add_network(&b);
    if (r == 0)
        r = add_ulimits(&b);
    if (r == 0)
        r = add_security_opt(&b);
    if (r == 0) {
        add_host_misc(&b);
        add_logging(&b);
        add_labels(&b);
    }
    if (json_array_size(mounts))
        json_object_set_new(b.host, "Mounts", mounts);
    else
        json_decref(mounts);
    json_object_set_new(b.root, "HostConfig", b.host);
    free(mode);
    free(b.alloc_root);
    json_decref(config);
    if (r < 0) {
        json_decref(b.root);
        return NULL;
    }
    return b.root;
}
