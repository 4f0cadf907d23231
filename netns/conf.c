/* conf.c - configuration, conflists and the JSON shapes of CNI and of the
 * helper protocol. Pure: files and JSON only, nothing is run. */
#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "netns/netns_internal.h"

/* ---- defaults and validation --------------------------------------------- */

static const char *or_default(const char *v, const char *def)
{
    return v && *v ? v : def;
}

const char *netns_cfg_bridge(const struct netns_config *cfg)
{
    return or_default(cfg->bridge_name, NETNS_DEFAULT_BRIDGE);
}

const char *netns_cfg_subnet(const struct netns_config *cfg)
{
    return or_default(cfg->subnet, NETNS_DEFAULT_SUBNET);
}

const char *netns_cfg_network(const struct netns_config *cfg)
{
    return or_default(cfg->network_name, NETNS_DEFAULT_NETWORK);
}

const char *netns_cfg_cni_path(const struct netns_config *cfg)
{
    return or_default(cfg->cni_path, NETNS_DEFAULT_CNI_PATH);
}

int netns_cfg_timeout_ms(const struct netns_config *cfg)
{
    return cfg->plugin_timeout_ms > 0 ? cfg->plugin_timeout_ms
                                      : NETNS_DEFAULT_TIMEOUT_MS;
}

int netns_parse_cidr(const char *s, uint32_t *addr, int *prefix)
{
    const char *slash = s ? strchr(s, '/') : NULL;
    if (!slash || slash == s || (size_t)(slash - s) >= INET_ADDRSTRLEN)
        return -EINVAL;
    char ip[INET_ADDRSTRLEN];
    memcpy(ip, s, (size_t)(slash - s));
    ip[slash - s] = '\0';
    struct in_addr a;
    if (inet_pton(AF_INET, ip, &a) != 1)
        return -EINVAL;
    const char *p = slash + 1;
    if (!isdigit((unsigned char)p[0]) ||
        (p[1] && !isdigit((unsigned char)p[1])) || (p[1] && p[2]))
        return -EINVAL;
    int n = atoi(p);
    if (n > 32)
        return -EINVAL;
    *addr = ntohl(a.s_addr);
    *prefix = n;
    return 0;
}

static uint32_t prefix_mask(int prefix)
{
    return prefix <= 0 ? 0 : 0xffffffffu << (32 - prefix);
}

bool netns_ip_in_subnet(const char *ip, const char *subnet)
{
    uint32_t net, a;
    int prefix;
    if (!ip || netns_parse_cidr(subnet, &net, &prefix) < 0)
        return false;
    char buf[INET_ADDRSTRLEN];
    size_t n = strcspn(ip, "/");
    if (n >= sizeof(buf))
        return false;
    memcpy(buf, ip, n);
    buf[n] = '\0';
    struct in_addr in;
    if (inet_pton(AF_INET, buf, &in) != 1)
        return false;
    a = ntohl(in.s_addr);
    return (a & prefix_mask(prefix)) == (net & prefix_mask(prefix));
}

bool netns_name_valid(const char *s)
{
    if (!s || !*s || *s == '.' || *s == '-')
        return false;
    size_t n = 0;
    for (const char *p = s; *p; p++, n++)
        if (!isalnum((unsigned char)*p) && *p != '_' && *p != '.' && *p != '-')
            return false;
    return n <= 128;
}

int netns_config_validate(const struct netns_config *cfg, struct nc_error *err)
{
    const char *br = netns_cfg_bridge(cfg);
    size_t n = strlen(br);
    if (n >= 16)
        return nc_error_set(err, -EINVAL,
                            "bridge network name \"%s\" is %zu bytes long; "
                            "interface names have at most 15 (IFNAMSIZ)",
                            br, n);
    if (strcmp(br, ".") == 0 || strcmp(br, "..") == 0 ||
        strpbrk(br, "/: \t\n\r\v\f"))
        return nc_error_set(err, -EINVAL,
                            "bridge network name \"%s\" is not a valid "
                            "interface name (no '/', ':' or white space)",
                            br);
    const char *subnet = netns_cfg_subnet(cfg);
    uint32_t net;
    int prefix;
    if (netns_parse_cidr(subnet, &net, &prefix) < 0)
        return nc_error_set(err, -EINVAL,
                            "bridge network subnet \"%s\" is not an IPv4 CIDR "
                            "such as 172.26.64.0/20",
                            subnet);
    if (prefix < 1 || prefix > 30)
        return nc_error_set(err, -EINVAL,
                            "bridge network subnet \"%s\": prefix /%d leaves "
                            "no room for a gateway and allocations (use /1 to "
                            "/30)",
                            subnet, prefix);
    if (net & ~prefix_mask(prefix)) {
        uint32_t base = net & prefix_mask(prefix);
        return nc_error_set(err, -EINVAL,
                            "bridge network subnet \"%s\" has host bits set; "
                            "did you mean %u.%u.%u.%u/%d?",
                            subnet, base >> 24, (base >> 16) & 255,
                            (base >> 8) & 255, base & 255, prefix);
    }
    const char *name = netns_cfg_network(cfg);
    if (!netns_name_valid(name))
        return nc_error_set(err, -EINVAL,
                            "bridge network conflist name \"%s\" must be "
                            "letters, digits, '_', '.' or '-'",
                            name);
    if (!cfg->state_dir || cfg->state_dir[0] != '/')
        return nc_error_set(err, -EINVAL,
                            "netns state dir \"%s\" must be an absolute path",
                            cfg->state_dir ? cfg->state_dir : "");
    return 0;
}

/* ---- conflists ----------------------------------------------------------- */

json_t *netns_bridge_conflist(const struct netns_config *cfg)
{
    /* Nomad's nomadCNIConfigTemplate, field for field */
    return json_pack(
        "{s:s, s:s, s:[{s:s}, {s:s, s:s, s:b, s:b, s:b, s:b, s:{s:s, "
        "s:[[{s:s}]], s:[{s:s}]}}, {s:s, s:s, s:s}, {s:s, s:{s:b}, s:b}]}",
        "cniVersion", "0.4.0", "name", netns_cfg_network(cfg), "plugins",
        "type", "loopback",
        /* bridge */
        "type", "bridge", "bridge", netns_cfg_bridge(cfg), "ipMasq", 1,
        "isGateway", 1, "forceAddress", 1, "hairpinMode", !cfg->disable_hairpin,
        "ipam", "type", "host-local", "ranges", "subnet", netns_cfg_subnet(cfg),
        "routes", "dst", "0.0.0.0/0",
        /* firewall */
        "type", "firewall", "backend", "iptables", "iptablesAdminChainName",
        NETNS_ADMIN_CHAIN,
        /* portmap */
        "type", "portmap", "capabilities", "portMappings", 1, "snat", 1);
}

int netns_conflist_validate(const json_t *list, const char *origin,
                            struct nc_error *err)
{
    if (!json_is_object(list))
        return nc_error_set(err, -EINVAL, "%s: not a JSON object", origin);
    const json_t *name = json_object_get(list, "name");
    if (!json_is_string(name))
        return nc_error_set(err, -EINVAL, "%s: \"name\" must be a string",
                            origin);
    if (!netns_name_valid(json_string_value(name)))
        return nc_error_set(err, -EINVAL,
                            "%s: network name \"%s\" must be letters, digits, "
                            "'_', '.' or '-'",
                            origin, json_string_value(name));
    const json_t *ver = json_object_get(list, "cniVersion");
    if (!json_is_string(ver) || !*json_string_value(ver))
        return nc_error_set(err, -EINVAL,
                            "%s: \"cniVersion\" must be a string such as "
                            "\"0.4.0\"",
                            origin);
    const json_t *plugins = json_object_get(list, "plugins");
    if (!json_is_array(plugins) || json_array_size(plugins) == 0)
        return nc_error_set(
            err, -EINVAL, "%s: \"plugins\" must be a non-empty array", origin);
    if (json_array_size(plugins) > NETNS_MAX_PLUGINS)
        return nc_error_set(err, -EINVAL, "%s: more than %d plugins", origin,
                            NETNS_MAX_PLUGINS);
    size_t i;
    const json_t *p;
    json_array_foreach(plugins, i, p)
    {
        if (!json_is_object(p))
            return nc_error_set(err, -EINVAL,
                                "%s: plugins[%zu] is not an object", origin, i);
        const json_t *type = json_object_get(p, "type");
        if (!json_is_string(type))
            return nc_error_set(
                err, -EINVAL, "%s: plugins[%zu]: missing \"type\"", origin, i);
        if (!netns_name_valid(json_string_value(type)))
            return nc_error_set(err, -EINVAL,
                                "%s: plugins[%zu]: type \"%s\" is not a plugin "
                                "name (letters, digits, '_', '.', '-')",
                                origin, i, json_string_value(type));
        const json_t *caps = json_object_get(p, "capabilities");
        if (caps && !json_is_object(caps))
            return nc_error_set(err, -EINVAL,
                                "%s: plugins[%zu]: \"capabilities\" must be an "
                                "object",
                                origin, i);
    }
    return 0;
}

int netns_conflist_parse(const char *text, size_t len, const char *origin,
                         bool single, json_t **out, struct nc_error *err)
{
    json_error_t je;
    json_t *j = json_loadb(text, len, 0, &je);
    *out = NULL;
    if (!j)
        return nc_error_set(err, -EINVAL, "%s:%d:%d: invalid JSON: %s", origin,
                            je.line, je.column, je.text);
    if (single && json_is_object(j) && !json_object_get(j, "plugins")) {
        /* a single plugin's config, as libcni's ConfFromBytes reads it */
        if (!json_is_string(json_object_get(j, "type"))) {
            json_decref(j);
            return nc_error_set(err, -EINVAL,
                                "%s: missing \"type\" (a single-plugin "
                                "network config)",
                                origin);
        }
        json_t *list = json_object();
        json_t *v;
        if ((v = json_object_get(j, "cniVersion")))
            json_object_set(list, "cniVersion", v);
        if ((v = json_object_get(j, "name")))
            json_object_set(list, "name", v);
        json_object_set_new(list, "plugins", json_pack("[o]", j));
        j = list;
    }
    int r = netns_conflist_validate(j, origin, err);
    if (r < 0) {
        json_decref(j);
        return r;
    }
    *out = j;
    return 0;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int netns_load_network(const char *dir, const char *name, json_t **out,
                       struct nc_error *err)
{
    *out = NULL;
    DIR *d = opendir(dir);
    if (!d)
        return nc_error_set(err, -errno, "CNI config dir %s: %s", dir,
                            strerror(errno));
    struct strlist files = {0};
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.' && (nc_str_has_suffix(e->d_name, ".conflist") ||
                                    nc_str_has_suffix(e->d_name, ".conf") ||
                                    nc_str_has_suffix(e->d_name, ".json")))
            strlist_add(&files, e->d_name);
    closedir(d);
    if (files.n == 0) {
        strlist_free(&files);
        return nc_error_set(err, -ENOENT,
                            "no CNI network config (*.conflist, *.conf, "
                            "*.json) found in %s",
                            dir);
    }
    qsort(files.items, files.n, sizeof(*files.items), cmp_names);
    struct nc_buf broken = {0};
    int r = -ENOENT;
    for (size_t i = 0; i < files.n && !*out; i++) {
        cleanup_free char *path = xasprintf("%s/%s", dir, files.items[i]);
        size_t len;
        cleanup_free char *text = nc_read_file(path, &len, 1 << 20);
        struct nc_error e2 = {0};
        json_t *list = NULL;
        if (!text)
            nc_error_set(&e2, -errno, "%s: %s", path, strerror(errno));
        else
            netns_conflist_parse(text, len, path,
                                 !nc_str_has_suffix(path, ".conflist"), &list,
                                 &e2);
        if (!list) {
            nc_buf_printf(&broken, "; %s", e2.msg);
            continue;
        }
        if (strcmp(json_string_value(json_object_get(list, "name")), name) == 0)
            *out = list;
        else
            json_decref(list);
    }
    if (*out)
        r = 0;
    else if (broken.len)
        r = nc_error_set(err, -EINVAL, "CNI network \"%s\" not found in %s%s",
                         name, dir, broken.data);
    else
        r = nc_error_set(err, -ENOENT,
                         "CNI network \"%s\" not found in %s (no config file "
                         "has that \"name\")",
                         name, dir);
    nc_buf_free(&broken);
    strlist_free(&files);
    return r;
}

int netns_conflist_for_mode(const struct netns_config *cfg, const char *mode,
                            json_t **out, struct nc_error *err)
{
    *out = NULL;
    if (!mode || strcmp(mode, "bridge") == 0) {
        int r = netns_config_validate(cfg, err);
        if (r < 0)
            return r;
        *out = netns_bridge_conflist(cfg);
        return 0;
    }
    if (strcmp(mode, NETNS_MODE_NONE) == 0)
        return 0; /* a namespace with lo up and nothing else: no chain */
    if (nc_str_has_prefix(mode, "cni/") && mode[4]) {
        const char *dir = or_default(cfg->cni_config_dir, "/etc/cni/net.d");
        return netns_load_network(dir, mode + 4, out, err);
    }
    return nc_error_set(err, -EINVAL,
                        "network mode \"%s\" has no namespace to set up "
                        "(bridge, none or cni/<name>)",
                        mode);
}

static bool plugin_exists(const char *cni_path, const char *type)
{
    cleanup_free char *dirs = xstrdup(cni_path);
    char *save = NULL;
    for (char *d = strtok_r(dirs, ":", &save); d;
         d = strtok_r(NULL, ":", &save)) {
        cleanup_free char *p = xasprintf("%s/%s", d, type);
        if (access(p, X_OK) == 0)
            return true;
    }
    return false;
}

size_t netns_missing_plugins(const char *cni_path, const json_t *conflist,
                             struct strlist *missing)
{
    size_t n = 0, i;
    const json_t *p;
    const char *path = or_default(cni_path, NETNS_DEFAULT_CNI_PATH);
    json_array_foreach(json_object_get(conflist, "plugins"), i, p)
    {
        const char *type = json_string_value(json_object_get(p, "type"));
        if (!type || plugin_exists(path, type))
            continue;
        if (!strlist_contains(missing, type))
            strlist_add(missing, type);
        n++;
    }
    return n;
}

static char *join(const struct strlist *l, const char *sep)
{
    struct nc_buf b = {0};
    for (size_t i = 0; i < l->n; i++)
        nc_buf_printf(&b, "%s%s", i ? sep : "", l->items[i]);
    return nc_buf_take(&b);
}

int netns_mode_check(const struct netns_config *cfg, const char *mode,
                     struct nc_error *err)
{
    json_t *list = NULL;
    int r = netns_conflist_for_mode(cfg, mode, &list, err);
    if (r < 0) {
        nc_error_prefix(err, "missing network \"%s\"", mode ? mode : "bridge");
        return r;
    }
    struct strlist missing = {0};
    if (netns_missing_plugins(netns_cfg_cni_path(cfg), list, &missing)) {
        cleanup_free char *names = join(&missing, ", ");
        r = nc_error_set(err, -ENOENT,
                         "missing network \"%s\": CNI plugins %s not found in "
                         "cni_path %s (install containernetworking-plugins or "
                         "set client.cni_path)",
                         mode ? mode : "bridge", names,
                         netns_cfg_cni_path(cfg));
    }
    strlist_free(&missing);
    json_decref(list);
    return r;
}

static json_t *availability(const struct netns_config *cfg, const json_t *list)
{
    struct strlist missing = {0};
    netns_missing_plugins(netns_cfg_cni_path(cfg), list, &missing);
    json_t *m = json_array();
    for (size_t i = 0; i < missing.n; i++)
        json_array_append_new(m, json_string(missing.items[i]));
    json_t *o =
        json_pack("{s:b, s:o}", "Available", missing.n == 0, "Missing", m);
    strlist_free(&missing);
    return o;
}

json_t *netns_fingerprint(const struct netns_config *cfg)
{
    json_t *out = json_object();
    json_t *bridge = netns_bridge_conflist(cfg);
    json_object_set_new(out, "bridge", availability(cfg, bridge));
    json_decref(bridge);
    const char *dir = or_default(cfg->cni_config_dir, "/etc/cni/net.d");
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        bool conflist = nc_str_has_suffix(e->d_name, ".conflist");
        if (e->d_name[0] == '.' ||
            !(conflist || nc_str_has_suffix(e->d_name, ".conf") ||
              nc_str_has_suffix(e->d_name, ".json")))
            continue;
        cleanup_free char *path = xasprintf("%s/%s", dir, e->d_name);
        size_t len;
        cleanup_free char *text = nc_read_file(path, &len, 1 << 20);
        json_t *list = NULL;
        if (!text ||
            netns_conflist_parse(text, len, path, !conflist, &list, NULL) < 0)
            continue;
        cleanup_free char *key = xasprintf(
            "cni/%s", json_string_value(json_object_get(list, "name")));
        if (!json_object_get(out, key))
            json_object_set_new(out, key, availability(cfg, list));
        json_decref(list);
    }
    if (d)
        closedir(d);
    return out;
}

/* ---- host-local leases --------------------------------------------------- */

char *netns_ipam_dir(const json_t *conflist)
{
    const char *name = json_string_value(json_object_get(conflist, "name"));
    size_t i;
    const json_t *p;
    json_array_foreach(json_object_get(conflist, "plugins"), i, p)
    {
        const json_t *ipam = json_object_get(p, "ipam");
        if (!nc_streq(json_string_value(json_object_get(ipam, "type")),
                      "host-local") ||
            !name)
            continue;
        const char *dir = json_string_value(json_object_get(ipam, "dataDir"));
        return xasprintf("%s/%s", dir && *dir ? dir : NETNS_IPAM_DIR, name);
    }
    return NULL;
}

void netns_ipam_leases(const char *dir, netns_lease_fn fn, void *arg)
{
    DIR *d = dir ? opendir(dir) : NULL;
    struct dirent *e;
    while (d && (e = readdir(d))) {
        unsigned char buf[16];
        if (inet_pton(AF_INET, e->d_name, buf) != 1 &&
            inet_pton(AF_INET6, e->d_name, buf) != 1)
            continue; /* lock, last_reserved_ip.N */
        cleanup_free char *path = xasprintf("%s/%s", dir, e->d_name);
        cleanup_free char *text = nc_read_file(path, NULL, 4096);
        if (!text)
            continue;
        text[strcspn(text, "\r\n")] = '\0';
        if (netns_name_valid(text))
            fn(e->d_name, text, path, arg);
    }
    if (d)
        closedir(d);
}

struct leases_of {
    const char *id;
    struct strlist *ips;
};

static void lease_of(const char *ip, const char *id, const char *path,
                     void *arg)
{
    struct leases_of *l = arg;
    (void)path;
    if (strcmp(id, l->id) == 0 && !strlist_contains(l->ips, ip))
        strlist_add(l->ips, ip);
}

void netns_ipam_leases_of(const char *dir, const char *container_id,
                          struct strlist *ips)
{
    struct leases_of l = {container_id, ips};
    netns_ipam_leases(dir, lease_of, &l);
}

/* ---- CNI shapes ---------------------------------------------------------- */

static int add_mapping(json_t *arr, const struct netns_port_mapping *p,
                       const char *proto)
{
    json_t *m =
        json_pack("{s:i, s:i, s:s}", "hostPort", p->host_port, "containerPort",
                  p->container_port, "protocol", proto);
    if (p->host_ip && *p->host_ip)
        json_object_set_new(m, "hostIP", json_string(p->host_ip));
    return json_array_append_new(arr, m);
}

int netns_port_mappings_json(const struct netns_port_mapping *ports, size_t n,
                             json_t **out, struct nc_error *err)
{
    json_t *arr = json_array();
    *out = NULL;
    for (size_t i = 0; i < n; i++) {
        const struct netns_port_mapping *p = &ports[i];
        if (p->host_port < 1 || p->host_port > 65535 || p->container_port < 1 ||
            p->container_port > 65535) {
            json_decref(arr);
            return nc_error_set(err, -EINVAL,
                                "port mapping %d -> %d: ports must be 1 to "
                                "65535",
                                p->host_port, p->container_port);
        }
        unsigned char buf[16];
        if (p->host_ip && *p->host_ip &&
            inet_pton(AF_INET, p->host_ip, buf) != 1 &&
            inet_pton(AF_INET6, p->host_ip, buf) != 1) {
            json_decref(arr);
            return nc_error_set(err, -EINVAL,
                                "port mapping %d: host IP \"%s\" is not an "
                                "address",
                                p->host_port, p->host_ip);
        }
        if (!p->protocol || !*p->protocol) {
            add_mapping(arr, p, "tcp");
            add_mapping(arr, p, "udp");
        } else if (strcmp(p->protocol, "tcp") == 0 ||
                   strcmp(p->protocol, "udp") == 0 ||
                   strcmp(p->protocol, "sctp") == 0) {
            add_mapping(arr, p, p->protocol);
        } else {
            json_decref(arr);
            return nc_error_set(err, -EINVAL,
                                "port mapping %d: protocol \"%s\" is not tcp, "
                                "udp or sctp",
                                p->host_port, p->protocol);
        }
    }
    *out = arr;
    return 0;
}

json_t *netns_plugin_config(const json_t *list, size_t i,
                            const json_t *prev_result,
                            const json_t *capability_args)
{
    const json_t *plugin = json_array_get(json_object_get(list, "plugins"), i);
    json_t *c = json_deep_copy(plugin);
    json_object_set(c, "cniVersion", json_object_get(list, "cniVersion"));
    json_object_set(c, "name", json_object_get(list, "name"));
    if (prev_result)
        json_object_set_new(c, "prevResult", json_deep_copy(prev_result));
    json_t *rc = json_object();
    const char *cap;
    json_t *on;
    json_object_foreach(json_object_get(plugin, "capabilities"), cap, on)
    {
        json_t *arg = json_object_get(capability_args, cap);
        if (json_is_true(on) && arg)
            json_object_set_new(rc, cap, json_deep_copy(arg));
    }
    if (json_object_size(rc))
        json_object_set_new(c, "runtimeConfig", rc);
    else
        json_decref(rc);
    return c;
}

/* The last non-empty line of s, at most 300 bytes of it. */
static void last_line(const char *s, char *out, size_t outlen)
{
    out[0] = '\0';
    if (!s)
        return;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1]))
        n--;
    size_t start = n;
    while (start && s[start - 1] != '\n')
        start--;
    size_t len = n - start;
    if (len > 300)
        len = 300;
    if (len >= outlen)
        len = outlen - 1;
    memcpy(out, s + start, len);
    out[len] = '\0';
}

int netns_plugin_error(const char *out, size_t outlen, const char *errout,
                       int exit_status, char *msg, size_t msglen)
{
    json_t *j = out && outlen ? json_loadb(out, outlen, 0, NULL) : NULL;
    const char *m = json_string_value(json_object_get(j, "msg"));
    const char *details = json_string_value(json_object_get(j, "details"));
    json_t *code = json_object_get(j, "code");
    int c = json_is_integer(code) ? (int)json_integer_value(code) : -1;
    if (m && *m) {
        if (details && *details)
            snprintf(msg, msglen, "%s: %s (CNI code %d)", m, details, c);
        else
            snprintf(msg, msglen, "%s (CNI code %d)", m, c);
    } else {
        char line[320];
        last_line(errout, line, sizeof(line));
        if (*line)
            snprintf(msg, msglen, "%s (exit status %d)", line, exit_status);
        else
            snprintf(msg, msglen, "exit status %d, no CNI error on stdout",
                     exit_status);
        c = -1;
    }
    json_decref(j);
    return c;
}

int netns_result_parse(const char *out, size_t len, json_t **result, char *msg,
                       size_t msglen)
{
    json_error_t je;
    *result = out && len ? json_loadb(out, len, 0, &je) : NULL;
    if (!*result) {
        if (!out || !len)
            snprintf(msg, msglen, "printed no result");
        else
            snprintf(msg, msglen, "printed an invalid result: %d:%d: %s",
                     je.line, je.column, je.text);
        return -EPROTO;
    }
    if (!json_is_object(*result)) {
        json_decref(*result);
        *result = NULL;
        snprintf(msg, msglen, "printed a result that is not a JSON object");
        return -EPROTO;
    }
    return 0;
}

/* ip of one "ips" entry if IPv4, without the prefix. */
static bool entry_ipv4(const json_t *e, char *ip, size_t iplen)
{
    const char *addr = json_string_value(json_object_get(e, "address"));
    if (!addr)
        return false;
    size_t n = strcspn(addr, "/");
    char buf[INET_ADDRSTRLEN];
    struct in_addr a;
    if (n >= sizeof(buf) || n >= iplen)
        return false;
    memcpy(buf, addr, n);
    buf[n] = '\0';
    if (inet_pton(AF_INET, buf, &a) != 1)
        return false;
    memcpy(ip, buf, n + 1);
    return true;
}

int netns_result_ip(const json_t *result, const char *ifname, char *ip,
                    size_t iplen)
{
    const json_t *ifaces = json_object_get(result, "interfaces");
    const json_t *ips = json_object_get(result, "ips");
    /* pass 0: sandbox interface named ifname; 1: any sandbox; 2: anything */
    for (int pass = 0; pass < 3; pass++) {
        size_t i;
        const json_t *e;
        json_array_foreach(ips, i, e)
        {
            const json_t *idx = json_object_get(e, "interface");
            const json_t *iface =
                json_is_integer(idx) && json_integer_value(idx) >= 0
                    ? json_array_get(ifaces, (size_t)json_integer_value(idx))
                    : NULL;
            const char *sandbox =
                json_string_value(json_object_get(iface, "sandbox"));
            const char *name =
                json_string_value(json_object_get(iface, "name"));
            bool ok = pass == 2 ||
                      (sandbox && *sandbox &&
                       (pass == 1 || (ifname && nc_streq(name, ifname))));
            if (ok && entry_ipv4(e, ip, iplen))
                return 0;
        }
    }
    if (iplen)
        ip[0] = '\0';
    return -ENOENT;
}

/* ---- helper protocol ----------------------------------------------------- */

static char *get_str(const json_t *j, const char *key)
{
    const char *s = json_string_value(json_object_get(j, key));
    return s ? xstrdup(s) : NULL;
}

static json_t *get_obj(const json_t *j, const char *key)
{
    json_t *v = json_object_get(j, key);
    return json_is_object(v) ? json_incref(v) : NULL;
}

static bool netns_path_valid(const char *p)
{
    return p && nc_str_has_prefix(p, NETNS_RUN_DIR "/") &&
           netns_name_valid(p + strlen(NETNS_RUN_DIR "/"));
}

int netns_request_from_json(const json_t *j, struct netns_request *r,
                            struct nc_error *err)
{
    memset(r, 0, sizeof(*r));
    if (!json_is_object(j))
        return nc_error_set(err, -EINVAL, "request: not a JSON object");
    r->command = get_str(j, "Command");
    r->alloc_id = get_str(j, "AllocID");
    r->netns = get_str(j, "Netns");
    r->ifname = get_str(j, "IfName");
    r->mode = get_str(j, "Mode");
    r->state_dir = get_str(j, "StateDir");
    r->cni_path = get_str(j, "CNIPath");
    r->conflist = get_obj(j, "Conflist");
    r->prev_result = get_obj(j, "PrevResult");
    r->admin_rule = get_obj(j, "AdminRule");
    json_t *ports = json_object_get(j, "PortMappings");
    r->ports = json_is_array(ports) ? json_incref(ports) : json_array();
    r->sent_us = json_integer_value(json_object_get(j, "SentUs"));
    json_t *holder = json_object_get(j, "HolderPid");
    bool holder_ok = !holder || (json_is_integer(holder) &&
                                 json_integer_value(holder) > 0 &&
                                 json_integer_value(holder) <= NETNS_PID_MAX);
    if (holder_ok && holder)
        r->holder_pid = (int)json_integer_value(holder);
    json_t *t = json_object_get(j, "TimeoutMs");
    r->timeout_ms = json_is_integer(t) && json_integer_value(t) > 0 &&
                            json_integer_value(t) < 3600000
                        ? (int)json_integer_value(t)
                        : NETNS_DEFAULT_TIMEOUT_MS;
    int rc = 0;
    if (!r->command ||
        (strcmp(r->command, "ADD") != 0 && strcmp(r->command, "DEL") != 0 &&
         strcmp(r->command, "CHECK") != 0))
        rc = nc_error_set(err, -EINVAL,
                          "request: \"Command\" must be ADD, DEL or CHECK");
    else if (!netns_name_valid(r->alloc_id))
        rc = nc_error_set(err, -EINVAL,
                          "request: \"AllocID\" \"%s\" is not a valid CNI "
                          "container id",
                          r->alloc_id ? r->alloc_id : "");
    else if (!r->state_dir || r->state_dir[0] != '/')
        rc = nc_error_set(err, -EINVAL,
                          "request: \"StateDir\" must be an absolute path");
    else if (r->netns && !netns_path_valid(r->netns))
        rc = nc_error_set(err, -EINVAL,
                          "request: \"Netns\" \"%s\" must be %s/<name>",
                          r->netns, NETNS_RUN_DIR);
    else if (!holder_ok)
        rc = nc_error_set(err, -EINVAL,
                          "request: \"HolderPid\" must be a process id "
                          "(1..%d)",
                          NETNS_PID_MAX);
    else if (r->conflist)
        rc = netns_conflist_validate(r->conflist, "request: \"Conflist\"", err);
    else if (strcmp(r->command, "ADD") == 0 &&
             !nc_streq(r->mode, NETNS_MODE_NONE))
        rc = nc_error_set(err, -EINVAL, "request: ADD needs a \"Conflist\"");
    if (rc == 0 && !r->netns)
        r->netns = xasprintf("%s/%s", NETNS_RUN_DIR, r->alloc_id);
    if (rc == 0 && (!r->ifname || !netns_name_valid(r->ifname) ||
                    strlen(r->ifname) > 15)) {
        free(r->ifname);
        r->ifname = xstrdup(NETNS_IFNAME);
    }
    if (rc == 0 && !r->cni_path)
        r->cni_path = xstrdup(NETNS_DEFAULT_CNI_PATH);
    if (rc < 0)
        netns_request_free(r);
    return rc;
}

static void set_str(json_t *j, const char *key, const char *v)
{
    if (v)
        json_object_set_new(j, key, json_string(v));
}

static void set_json(json_t *j, const char *key, json_t *v)
{
    if (v)
        json_object_set(j, key, v);
}

json_t *netns_request_to_json(const struct netns_request *r)
{
    json_t *j = json_object();
    set_str(j, "Command", r->command);
    set_str(j, "AllocID", r->alloc_id);
    set_str(j, "Netns", r->netns);
    set_str(j, "IfName", r->ifname);
    set_str(j, "Mode", r->mode);
    set_str(j, "StateDir", r->state_dir);
    set_str(j, "CNIPath", r->cni_path);
    set_json(j, "Conflist", r->conflist);
    set_json(j, "PortMappings", r->ports);
    set_json(j, "PrevResult", r->prev_result);
    set_json(j, "AdminRule", r->admin_rule);
    json_object_set_new(j, "TimeoutMs", json_integer(r->timeout_ms));
    if (r->holder_pid > 0)
        json_object_set_new(j, "HolderPid", json_integer(r->holder_pid));
    if (r->sent_us)
        json_object_set_new(j, "SentUs", json_integer(r->sent_us));
    return j;
}

void netns_request_free(struct netns_request *r)
{
    free(r->command);
    free(r->alloc_id);
    free(r->netns);
    free(r->ifname);
    free(r->mode);
    free(r->state_dir);
    free(r->cni_path);
    json_decref(r->conflist);
    json_decref(r->ports);
    json_decref(r->prev_result);
    json_decref(r->admin_rule);
    memset(r, 0, sizeof(*r));
}

int netns_request_build(struct netns_request *r, const char *cmd,
                        const struct netns_config *cfg,
                        const struct netns_setup *setup, const json_t *conflist,
                        const json_t *prev_result, struct nc_error *err)
{
    memset(r, 0, sizeof(*r));
    if (!setup || !netns_name_valid(setup->alloc_id))
        return nc_error_set(err, -EINVAL,
                            "allocation id \"%s\" is not a valid CNI "
                            "container id",
                            setup && setup->alloc_id ? setup->alloc_id : "");
    const char *name = or_default(setup->netns_name, setup->alloc_id);
    if (!netns_name_valid(name))
        return nc_error_set(err, -EINVAL,
                            "network namespace name \"%s\" must be letters, "
                            "digits, '_', '.' or '-'",
                            name);
    if (!cfg->state_dir || cfg->state_dir[0] != '/')
        return nc_error_set(err, -EINVAL,
                            "netns state dir must be an absolute path");
    if (setup->holder_pid < 0 || setup->holder_pid > NETNS_PID_MAX)
        return nc_error_set(err, -EINVAL,
                            "holder pid %d of allocation %s is not a process "
                            "id",
                            setup->holder_pid, setup->alloc_id);
    json_t *ports = NULL;
    int rc = netns_port_mappings_json(setup->ports, setup->nports, &ports, err);
    if (rc < 0)
        return rc;
    r->command = xstrdup(cmd);
    r->alloc_id = xstrdup(setup->alloc_id);
    r->netns = xasprintf("%s/%s", NETNS_RUN_DIR, name);
    r->ifname = xstrdup(NETNS_IFNAME);
    r->mode = xstrdup(or_default(setup->mode, "bridge"));
    r->state_dir = xstrdup(cfg->state_dir);
    r->cni_path = xstrdup(netns_cfg_cni_path(cfg));
    r->conflist = conflist ? json_deep_copy(conflist) : NULL;
    r->ports = ports;
    r->prev_result = prev_result ? json_deep_copy(prev_result) : NULL;
    if (strcmp(r->mode, "bridge") == 0)
        r->admin_rule =
            json_pack("{s:s, s:s, s:s}", "Chain", NETNS_ADMIN_CHAIN, "Bridge",
                      netns_cfg_bridge(cfg), "Subnet", netns_cfg_subnet(cfg));
    r->timeout_ms = netns_cfg_timeout_ms(cfg);
    r->holder_pid = setup->holder_pid;
    return 0;
}

int netns_response_parse(const char *text, size_t len, struct netns_response *r,
                         struct nc_error *err)
{
    json_error_t je;
    json_t *j = text && len ? json_loadb(text, len, 0, &je) : NULL;
    int rc = 0;
    if (!json_is_object(j)) {
        memset(r, 0, sizeof(*r));
        rc = !len ? nc_error_set(err, -EPROTO, "netns helper printed nothing")
                  : nc_error_set(err, -EPROTO,
                                 "netns helper printed no JSON object: %.200s",
                                 text);
    } else {
        netns_response_from_json(j, r);
    }
    json_decref(j);
    return rc;
}

void netns_response_from_json(const json_t *j, struct netns_response *r)
{
    memset(r, 0, sizeof(*r));
    r->ok = json_is_true(json_object_get(j, "OK"));
    json_t *code = json_object_get(j, "Code");
    r->code = json_is_integer(code) ? (int)json_integer_value(code) : 0;
    if (!r->ok && r->code >= 0)
        r->code = -EIO;
    if (r->ok)
        r->code = 0;
    r->error = get_str(j, "Error");
    r->command = get_str(j, "Command");
    r->alloc_id = get_str(j, "AllocID");
    r->ip = get_str(j, "IP");
    r->netns = get_str(j, "Netns");
    r->reused = json_is_true(json_object_get(j, "Reused"));
    r->result = get_obj(j, "Result");
    r->timings = get_obj(j, "Timings");
    if (!r->timings)
        r->timings = json_object();
    if (!r->ok && !r->error)
        r->error = xstrdup("netns helper failed without a message");
}

json_t *netns_response_to_json(const struct netns_response *r)
{
    json_t *j = json_pack("{s:b, s:i}", "OK", r->ok, "Code", r->code);
    set_str(j, "Error", r->error);
    set_str(j, "Command", r->command);
    set_str(j, "AllocID", r->alloc_id);
    set_str(j, "IP", r->ip);
    set_str(j, "Netns", r->netns);
    if (r->reused)
        json_object_set_new(j, "Reused", json_true());
    set_json(j, "Result", r->result);
    set_json(j, "Timings", r->timings);
    return j;
}

void netns_response_free(struct netns_response *r)
{
    free(r->error);
    free(r->command);
    free(r->alloc_id);
    free(r->ip);
    free(r->netns);
    json_decref(r->result);
    json_decref(r->timings);
    memset(r, 0, sizeof(*r));
}
