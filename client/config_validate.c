/* config_validate.c - final checks of a merged agent configuration
 * (config_validate): addresses, ports, paths and host volumes, with
 * Nomad's words where it has them. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client/config.h"
#include "client/config_internal.h"

static bool is_ip(const char *s)
{
    unsigned char buf[sizeof(struct in6_addr)];
    return s && (inet_pton(AF_INET, s, buf) == 1 ||
                 inet_pton(AF_INET6, s, buf) == 1);
}

static bool is_ipv4_cidr(const char *s)
{
    const char *slash = s ? strchr(s, '/') : NULL;
    if (!slash)
        return false;
    char ip[INET_ADDRSTRLEN];
    size_t n = (size_t)(slash - s);
    if (n == 0 || n >= sizeof(ip))
        return false;
    memcpy(ip, s, n);
    ip[n] = '\0';
    struct in_addr a;
    if (inet_pton(AF_INET, ip, &a) != 1)
        return false;
    const char *p = slash + 1;
    size_t digits = strspn(p, "0123456789");
    if (digits == 0 || digits > 2 || p[digits])
        return false;
    return atoi(p) <= 32;
}

static bool is_abs_path(const char *s)
{
    return s && s[0] == '/';
}

/* Checks "22,80,8000-8100" as Nomad's ParsePortRanges does; on error
 * returns a reason the caller frees. */
static char *port_spec_error(const char *spec)
{
    const char *p = spec;
    if (!*p)
        return NULL;
    for (;;) {
        size_t len = strcspn(p, ",");
        char *part = xstrndup(p, len);
        char *a = part, *e = part + len;
        while (*a && isspace((unsigned char)*a))
            a++;
        while (e > a && isspace((unsigned char)e[-1]))
            *--e = '\0';
        char *why = NULL;
        char *dash = strchr(a, '-');
        long long lo = 0, hi = 0;
        if (!*a) {
            why = xstrdup("empty port in the list");
        } else {
            if (dash)
                *dash = '\0';
            bool ok =
                a[0] != '-' && a[0] != '+' && config_parse_long(a, &lo);
            hi = lo;
            if (ok && dash)
                ok = isdigit((unsigned char)dash[1]) &&
                     config_parse_long(dash + 1, &hi);
            if (dash)
                *dash = '-';
            if (!ok)
                why = xasprintf("\"%s\" is not a port or a range of ports", a);
            else if (lo < 1 || lo > 65535 || hi < 1 || hi > 65535)
                why = xasprintf("\"%s\": ports are 1-65535", a);
            else if (hi < lo)
                why = xasprintf("\"%s\": the range ends before it starts", a);
        }
        free(part);
        if (why)
            return why;
        if (!p[len])
            return NULL;
        p += len + 1;
    }
}

static const char *str_or_empty(const char *s)
{
    return s ? s : "";
}

static int validate_agent(const struct agent_config *cfg, struct nc_error *err)
{
    const struct {
        const char *name;
        const char *value;
    } required[] = {
        {"name", cfg->name},
        {"datacenter", cfg->datacenter},
        {"region", cfg->region},
        {"client.node_pool", cfg->client.node_pool},
    };
    for (size_t i = 0; i < NC_ARRAY_LEN(required); i++)
        if (!required[i].value || !required[i].value[0])
            return nc_error_set(err, -EINVAL, "%s: must not be empty",
                                required[i].name);
    if (!is_abs_path(cfg->data_dir))
        return nc_error_set(err, -EINVAL,
                            "data_dir: \"%s\" is not an absolute path",
                            str_or_empty(cfg->data_dir));
    if (!is_ip(cfg->bind_addr))
        return nc_error_set(err, -EINVAL,
                            "bind_addr: \"%s\" is not an IP address",
                            str_or_empty(cfg->bind_addr));
    if (cfg->addresses.http && !is_ip(cfg->addresses.http))
        return nc_error_set(err, -EINVAL,
                            "addresses.http: \"%s\" is not an IP address",
                            cfg->addresses.http);
    if (cfg->http_port < 0 || cfg->http_port > 65535)
        return nc_error_set(err, -EINVAL,
                            "ports.http: %d is not a port (0-65535)",
                            cfg->http_port);
    enum nc_log_level lvl;
    if (nc_log_parse_level(str_or_empty(cfg->log_level), &lvl) < 0)
        return nc_error_set(err, -EINVAL,
                            "log_level: \"%s\" is not a log level (trace, "
                            "debug, info, warn, error)",
                            str_or_empty(cfg->log_level));
    if (!cfg->client.enabled)
        return nc_error_set(err, -EINVAL,
                            "client.enabled: nomclient only runs as a "
                            "client; with the client disabled there is "
                            "nothing to run");
    return 0;
}

static int validate_client(const struct agent_config *cfg, struct nc_error *err)
{
    int lo = cfg->client.min_dynamic_port, hi = cfg->client.max_dynamic_port;
    if (lo < 1 || lo > 65535)
        return nc_error_set(err, -EINVAL,
                            "client.min_dynamic_port: %d is not a port "
                            "(1-65535)",
                            lo);
    if (hi < 1 || hi > 65535)
        return nc_error_set(err, -EINVAL,
                            "client.max_dynamic_port: %d is not a port "
                            "(1-65535)",
                            hi);
    if (lo >= hi)
        return nc_error_set(err, -EINVAL,
                            "client.min_dynamic_port: %d must be less than "
                            "client.max_dynamic_port (%d)",
                            lo, hi);
    if (!is_ipv4_cidr(cfg->client.bridge_network_subnet))
        return nc_error_set(err, -EINVAL,
                            "client.bridge_network_subnet: \"%s\" is not an "
                            "IPv4 CIDR",
                            str_or_empty(cfg->client.bridge_network_subnet));

    const struct {
        const char *name;
        int value;
    } counts[] = {
        {"client.reserved.cpu", cfg->client.reserved.cpu},
        {"client.reserved.cores", cfg->client.reserved.cores},
        {"client.reserved.memory", cfg->client.reserved.memory_mb},
        {"client.reserved.disk", cfg->client.reserved.disk_mb},
        {"client.cpu_total_compute", cfg->client.cpu_total_compute},
        {"client.memory_total_mb", cfg->client.memory_total_mb},
    };
    for (size_t i = 0; i < NC_ARRAY_LEN(counts); i++)
        if (counts[i].value < 0)
            return nc_error_set(err, -EINVAL, "%s: %d must not be negative",
                                counts[i].name, counts[i].value);
    if (cfg->client.reserved.reserved_ports) {
        char *why = port_spec_error(cfg->client.reserved.reserved_ports);
        if (why) {
            nc_error_set(err, -EINVAL,
                         "client.reserved.reserved_ports: \"%s\": %s "
                         "(expected a list like \"22,80,8000-8100\")",
                         cfg->client.reserved.reserved_ports, why);
            free(why);
            return -EINVAL;
        }
    }
    return 0;
}

/* Nomad takes any value and fixes gc_parallel_destroys up to 1 with a
 * warning; here a value the collector cannot work with is refused. */
static int validate_gc(const struct agent_config *cfg, struct nc_error *err)
{
    const struct {
        const char *name;
        double value;
    } pcts[] = {
        {"client.gc_disk_usage_threshold", cfg->client.gc_disk_usage_threshold},
        {"client.gc_inode_usage_threshold",
         cfg->client.gc_inode_usage_threshold},
    };
    if (cfg->client.gc_interval_ns <= 0)
        return nc_error_set(err, -EINVAL,
                            "client.gc_interval: must be a positive duration "
                            "(like \"1m\")");
    for (size_t i = 0; i < NC_ARRAY_LEN(pcts); i++)
        if (!(pcts[i].value >= 0 && pcts[i].value <= 100))
            return nc_error_set(err, -EINVAL,
                                "%s: %g is not a percentage (0-100)",
                                pcts[i].name, pcts[i].value);
    if (cfg->client.gc_max_allocs < 1)
        return nc_error_set(err, -EINVAL,
                            "client.gc_max_allocs: %d must be at least 1",
                            cfg->client.gc_max_allocs);
    if (cfg->client.gc_parallel_destroys < 1)
        return nc_error_set(err, -EINVAL,
                            "client.gc_parallel_destroys: %d must be at "
                            "least 1",
                            cfg->client.gc_parallel_destroys);
    return 0;
}

static int validate_host_volumes(const struct agent_config *cfg,
                                 struct nc_error *err)
{
    for (size_t i = 0; i < cfg->client.nhost_volumes; i++) {
        const struct host_volume_config *v = &cfg->client.host_volumes[i];
        if (!v->name || !v->name[0])
            return nc_error_set(err, -EINVAL,
                                "client.host_volume: a host volume needs a "
                                "non-empty name");
        for (size_t j = 0; j < i; j++)
            if (strcmp(cfg->client.host_volumes[j].name, v->name) == 0)
                return nc_error_set(err, -EINVAL,
                                    "client.host_volume \"%s\": defined "
                                    "more than once",
                                    v->name);
        if (!v->path)
            return nc_error_set(err, -EINVAL,
                                "client.host_volume \"%s\".path: missing; a "
                                "host volume needs an absolute path",
                                v->name);
        if (!is_abs_path(v->path))
            return nc_error_set(err, -EINVAL,
                                "client.host_volume \"%s\".path: \"%s\" is "
                                "not an absolute path",
                                v->name, v->path);
    }
    return 0;
}

/* The files are read when the server starts (and on SIGHUP); this names
 * a missing or unreadable one before anything else starts. */
static int validate_tls(const struct agent_config *cfg, struct nc_error *err)
{
    if (cfg->limits.http_max_conns_per_client < 0)
        return nc_error_set(err, -EINVAL,
                            "limits.http_max_conns_per_client: %d must not be "
                            "negative (0 means no limit)",
                            cfg->limits.http_max_conns_per_client);
    if (cfg->limits.https_handshake_timeout_ns < 0)
        return nc_error_set(err, -EINVAL,
                            "limits.https_handshake_timeout: must not be "
                            "negative");
    if (!cfg->tls.http)
        return 0;
    if (!cfg->tls.cert_file || !cfg->tls.cert_file[0] || !cfg->tls.key_file ||
        !cfg->tls.key_file[0])
        return nc_error_set(err, -EINVAL,
                            "tls.http: HTTPS needs tls.cert_file and "
                            "tls.key_file");
    if (cfg->tls.verify_https_client &&
        (!cfg->tls.ca_file || !cfg->tls.ca_file[0]))
        return nc_error_set(err, -EINVAL,
                            "tls.verify_https_client: set, and no CA "
                            "certificate provided (tls.ca_file)");
    const struct {
        const char *name, *path;
    } files[] = {
        {"tls.ca_file", cfg->tls.ca_file},
        {"tls.cert_file", cfg->tls.cert_file},
        {"tls.key_file", cfg->tls.key_file},
    };
    for (size_t i = 0; i < NC_ARRAY_LEN(files); i++) {
        if (!files[i].path || !files[i].path[0])
            continue;
        if (access(files[i].path, R_OK) < 0)
            return nc_error_set(err, -errno, "%s: \"%s\": %s", files[i].name,
                                files[i].path, strerror(errno));
    }
    return 0;
}

int config_validate(const struct agent_config *cfg, struct nc_error *err)
{
    int r = validate_agent(cfg, err);
    if (r == 0)
        r = validate_client(cfg, err);
    if (r == 0)
        r = validate_host_volumes(cfg, err);
    if (r == 0)
        r = validate_gc(cfg, err);
    if (r == 0)
        r = validate_tls(cfg, err);
    return r;
}
