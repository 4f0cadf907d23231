/* config.c - the agent configuration: defaults, HCL and JSON files merged
 * the way Nomad merges them, and the CONSUL_* environment; the final checks
 * are in config_validate.c.
 *
 * Every file is decoded straight onto the accumulated configuration, which
 * gives Nomad's merge rules for free: a later scalar replaces an earlier
 * one, meta/options/chroot_env are merged key by key, reserved fields one
 * by one, host volumes by name (a later definition replaces the earlier one
 * whole, as Nomad's HostVolumeSliceMerge does). Several `client` blocks in
 * one file therefore merge too.
 *
 * Decoding is driven by a schema of every block and attribute we accept.
 * It is strict the way Nomad's is: an unknown name or a wrong type is an
 * error naming file:line:col and the path to the item. Keys Nomad has that
 * make no sense for this node are listed explicitly as accepted and
 * ignored; nothing is ignored by accident.
 *
 * JSON files are converted to the same syntax tree (an object for a body,
 * attributes whose values are objects or lists of objects for blocks, as
 * HCL1's JSON form writes them) and go through the same decoder. jansson
 * keeps no positions, so errors in JSON files name the file and the path
 * but no line:col. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "client/config.h"
#include "client/config_internal.h"

#include "client/drivers/driver.h"
#include "client/hcl/hcl.h"

/* consul.file_set bits */
enum {
    CONFIG_SET_CONSUL_ADDRESS = 1u << 0,
    CONFIG_SET_CONSUL_TOKEN = 1u << 1,
    CONFIG_SET_CONSUL_SSL = 1u << 2,
    CONFIG_SET_CONSUL_VERIFY_SSL = 1u << 3,
    CONFIG_SET_CONSUL_CA_FILE = 1u << 4,
    CONFIG_SET_CONSUL_CERT_FILE = 1u << 5,
    CONFIG_SET_CONSUL_KEY_FILE = 1u << 6,
};

/* ---- schema ---- */

enum config_field_kind {
    F_STRING,
    F_INT,
    F_BOOL,
    F_NUMBER,
    F_DURATION, /* "10s", or a whole number of nanoseconds */
    F_STRLIST,
    F_LOG_LEVEL,
    F_CORES,          /* a count, or a cpuset "0-1,3" counted */
    F_CONSUL_ADDRESS, /* an "https://" prefix turns ssl on */
    F_SERVER_ENABLED, /* true is refused */
    /* block-like kinds from here on */
    F_STRMAP,  /* meta { k = "v" } or meta = { k = "v" } */
    F_BLOCK,   /* one nested body, merged when repeated */
    F_LABELED, /* host_volume "name" { ... }: a handler per label */
    F_OPAQUE,  /* accepted as a whole and ignored */
};

#define NOFF ((size_t)-1) /* accepted, checked, not stored */

/* Where a body comes from: an HCL block body or an object value (the
 * attribute form `client = { ... }` and JSON). */
struct config_src {
    const struct hcl_body *body;
    const struct hcl_value *obj;
};

struct config_decoder;
typedef int (*config_label_fn)(struct config_decoder *c, const char *label,
                               struct hcl_pos pos, const struct config_src *s);

struct config_schema;

struct config_field {
    const char *name;
    enum config_field_kind kind;
    size_t off;      /* into the base struct being decoded, or NOFF */
    unsigned setbit; /* consul.file_set bit recorded when set */
    const struct config_schema *sub;
    config_label_fn labeled;
    /* F_STRLIST: each item checked (a driver's key, e.g. capabilities) */
    int (*check)(const char *item, char *msg, size_t msglen);
};

struct config_schema {
    const struct config_field *fields;
    size_t n;
    bool open; /* names not listed are accepted and ignored */
    void (*enter)(struct agent_config *cfg);
};

struct config_decoder {
    struct agent_config *cfg;
    const char *filename;
    struct nc_error *err;
    struct nc_buf path;          /* "client > host_volume \"data\"" */
    struct strlist volumes_seen; /* host volumes defined in this file */
};

#define CFG(m) offsetof(struct agent_config, m)
#define VOL(m) offsetof(struct host_volume_config, m)
/* clang-format off */
#define ATTR(n, k, off) {n, k, off, 0, NULL, NULL, NULL}
#define CONSUL(n, k, m, bit) {n, k, CFG(consul.m), bit, NULL, NULL, NULL}
#define IGNORED(n, k) {n, k, NOFF, 0, NULL, NULL, NULL}
#define STRMAP(n, off) {n, F_STRMAP, off, 0, NULL, NULL, NULL}
#define BLOCK(n, sub) {n, F_BLOCK, NOFF, 0, sub, NULL, NULL}
#define LABELED(n, fn) {n, F_LABELED, NOFF, 0, NULL, fn, NULL}
#define OPAQUE(n) {n, F_OPAQUE, NOFF, 0, NULL, NULL, NULL}
/* clang-format on */
#define SCHEMA(id, open, enter)                                                \
    static const struct config_schema id##_s = {id##_f, NC_ARRAY_LEN(id##_f),  \
                                                open, enter}

static int config_decode_host_volume(struct config_decoder *c,
                                     const char *label, struct hcl_pos pos,
                                     const struct config_src *s);
static int config_decode_plugin(struct config_decoder *c, const char *label,
                                struct hcl_pos pos, const struct config_src *s);
static void consul_enter(struct agent_config *cfg);

static const struct config_field ports_f[] = {
    ATTR("http", F_INT, CFG(http_port)),
    IGNORED("rpc", F_INT),
    IGNORED("serf", F_INT),
};
SCHEMA(ports, false, NULL);

static const struct config_field addresses_f[] = {
    ATTR("http", F_STRING, CFG(addresses.http)),
    IGNORED("rpc", F_STRING),
    IGNORED("serf", F_STRING),
};
SCHEMA(addresses, false, NULL);

static const struct config_field advertise_f[] = {
    ATTR("http", F_STRING, CFG(advertise.http)),
    IGNORED("rpc", F_STRING),
    IGNORED("serf", F_STRING),
};
SCHEMA(advertise, false, NULL);

/* Only `enabled` matters: any other server setting is moot when it is
 * false, and true is refused. */
static const struct config_field server_f[] = {
    ATTR("enabled", F_SERVER_ENABLED, NOFF),
};
SCHEMA(server, true, NULL);

static const struct config_field reserved_f[] = {
    ATTR("cpu", F_INT, CFG(client.reserved.cpu)),
    ATTR("cores", F_CORES, CFG(client.reserved.cores)),
    ATTR("memory", F_INT, CFG(client.reserved.memory_mb)),
    ATTR("disk", F_INT, CFG(client.reserved.disk_mb)),
    ATTR("reserved_ports", F_STRING, CFG(client.reserved.reserved_ports)),
};
SCHEMA(reserved, false, NULL);

static const struct config_field host_volume_f[] = {
    ATTR("path", F_STRING, VOL(path)),
    ATTR("read_only", F_BOOL, VOL(read_only)),
};
SCHEMA(host_volume, false, NULL);

static const struct config_field client_f[] = {
    ATTR("enabled", F_BOOL, CFG(client.enabled)),
    ATTR("node_class", F_STRING, CFG(client.node_class)),
    ATTR("node_pool", F_STRING, CFG(client.node_pool)),
    STRMAP("meta", CFG(client.meta)),
    LABELED("host_volume", config_decode_host_volume),
    ATTR("cni_path", F_STRING, CFG(client.cni_path)),
    ATTR("cni_config_dir", F_STRING, CFG(client.cni_config_dir)),
    ATTR("bridge_network_name", F_STRING, CFG(client.bridge_network_name)),
    ATTR("bridge_network_subnet", F_STRING, CFG(client.bridge_network_subnet)),
    ATTR("min_dynamic_port", F_INT, CFG(client.min_dynamic_port)),
    ATTR("max_dynamic_port", F_INT, CFG(client.max_dynamic_port)),
    BLOCK("reserved", &reserved_s),
    ATTR("network_interface", F_STRING, CFG(client.network_interface)),
    ATTR("cpu_total_compute", F_INT, CFG(client.cpu_total_compute)),
    ATTR("memory_total_mb", F_INT, CFG(client.memory_total_mb)),
    STRMAP("options", CFG(client.options)),
    STRMAP("chroot_env", CFG(client.chroot_env)),
    ATTR("servers", F_STRLIST, CFG(client.servers)),
    /* Nomad client settings that do not apply to a standalone node: garbage
     * collection is ours, there is no server to join, no host UUID. */
    IGNORED("gc_interval", F_DURATION),
    IGNORED("gc_disk_usage_threshold", F_NUMBER),
    IGNORED("gc_inode_usage_threshold", F_NUMBER),
    IGNORED("gc_parallel_destroys", F_INT),
    IGNORED("gc_max_allocs", F_INT),
    IGNORED("gc_volumes_on_node_gc", F_BOOL),
    IGNORED("max_kill_timeout", F_DURATION),
    IGNORED("no_host_uuid", F_BOOL),
    IGNORED("disable_remote_exec", F_BOOL),
    IGNORED("network_speed", F_INT),
    ATTR("bridge_network_hairpin_mode", F_BOOL,
         CFG(client.bridge_network_hairpin_mode)),
    IGNORED("nomad_service_discovery", F_BOOL),
    OPAQUE("server_join"),
    OPAQUE("template"),
    OPAQUE("artifact"),
    OPAQUE("drain_on_shutdown"),
};
SCHEMA(client, false, NULL);

/* Other plugins' config is theirs to know. */
static const struct config_field plugin_other_f[] = {
    OPAQUE("config"),
    IGNORED("args", F_STRLIST),
};
SCHEMA(plugin_other, false, NULL);

static const struct config_field consul_f[] = {
    CONSUL("address", F_CONSUL_ADDRESS, address, CONFIG_SET_CONSUL_ADDRESS),
    CONSUL("token", F_STRING, token, CONFIG_SET_CONSUL_TOKEN),
    CONSUL("ssl", F_BOOL, ssl, CONFIG_SET_CONSUL_SSL),
    CONSUL("verify_ssl", F_BOOL, verify_ssl, CONFIG_SET_CONSUL_VERIFY_SSL),
    CONSUL("ca_file", F_STRING, ca_file, CONFIG_SET_CONSUL_CA_FILE),
    CONSUL("cert_file", F_STRING, cert_file, CONFIG_SET_CONSUL_CERT_FILE),
    CONSUL("key_file", F_STRING, key_file, CONFIG_SET_CONSUL_KEY_FILE),
    CONSUL("auth", F_STRING, auth, 0),
    CONSUL("server_service_name", F_STRING, server_service_name, 0),
    CONSUL("client_service_name", F_STRING, client_service_name, 0),
    CONSUL("auto_advertise", F_BOOL, auto_advertise, 0),
    CONSUL("checks_use_advertise", F_BOOL, checks_use_advertise, 0),
    CONSUL("tags", F_STRLIST, tags, 0),
    IGNORED("timeout", F_DURATION),
    IGNORED("name", F_STRING),
    IGNORED("grpc_address", F_STRING),
    IGNORED("grpc_ca_file", F_STRING),
    IGNORED("share_ssl", F_BOOL),
    IGNORED("server_auto_join", F_BOOL),
    IGNORED("client_auto_join", F_BOOL),
    IGNORED("server_http_check_name", F_STRING),
    IGNORED("server_serf_check_name", F_STRING),
    IGNORED("server_rpc_check_name", F_STRING),
    IGNORED("client_http_check_name", F_STRING),
};
SCHEMA(consul, false, consul_enter);

static const struct config_field acl_f[] = {
    ATTR("enabled", F_BOOL, CFG(acl.enabled)),
    IGNORED("token_ttl", F_DURATION),
    IGNORED("policy_ttl", F_DURATION),
    IGNORED("role_ttl", F_DURATION),
    IGNORED("token_min_expiration_ttl", F_DURATION),
    IGNORED("token_max_expiration_ttl", F_DURATION),
    IGNORED("replication_token", F_STRING),
};
SCHEMA(acl, false, NULL);

/* Accepted: metrics sinks are not ours, but a bad interval is still
 * reported. */
static const struct config_field telemetry_f[] = {
    IGNORED("collection_interval", F_DURATION),
};
SCHEMA(telemetry, true, NULL);

static const struct config_field top_f[] = {
    ATTR("data_dir", F_STRING, CFG(data_dir)),
    ATTR("name", F_STRING, CFG(name)),
    ATTR("datacenter", F_STRING, CFG(datacenter)),
    ATTR("region", F_STRING, CFG(region)),
    ATTR("bind_addr", F_STRING, CFG(bind_addr)),
    BLOCK("ports", &ports_s),
    BLOCK("addresses", &addresses_s),
    BLOCK("advertise", &advertise_s),
    ATTR("log_level", F_LOG_LEVEL, CFG(log_level)),
    ATTR("log_json", F_BOOL, CFG(log_json)),
    ATTR("plugin_dir", F_STRING, CFG(plugin_dir)),
    IGNORED("enable_debug", F_BOOL),
    IGNORED("disable_update_check", F_BOOL),
    IGNORED("disable_anonymous_signature", F_BOOL),
    IGNORED("leave_on_interrupt", F_BOOL),
    IGNORED("leave_on_terminate", F_BOOL),
    IGNORED("log_include_location", F_BOOL),
    IGNORED("enable_syslog", F_BOOL),
    IGNORED("syslog_facility", F_STRING),
    STRMAP("http_api_response_headers", NOFF),
    BLOCK("server", &server_s),
    BLOCK("client", &client_s),
    LABELED("plugin", config_decode_plugin),
    BLOCK("consul", &consul_s),
    BLOCK("acl", &acl_s),
    BLOCK("telemetry", &telemetry_s),
    OPAQUE("ui"),
    OPAQUE("limits"),
};
SCHEMA(top, false, NULL);

/* ---- errors ---- */

static const char *kind_name(enum hcl_kind k)
{
    switch (k) {
    case HCL_NULL:
        return "null";
    case HCL_BOOL:
        return "bool";
    case HCL_NUMBER:
        return "number";
    case HCL_STRING:
        return "string";
    case HCL_LIST:
        return "list";
    case HCL_OBJECT:
        return "object";
    case HCL_EXPR:
        return "expression";
    }
    return "value";
}

static int hfail(struct config_decoder *c, struct hcl_pos pos, const char *leaf,
                 const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* "file:line:col: path[ > leaf]: message"; JSON values have no position
 * (line 0), then it is "file: path: message". */
static int hfail(struct config_decoder *c, struct hcl_pos pos, const char *leaf,
                 const char *fmt, ...)
{
    struct nc_buf b = {0};
    if (pos.line > 0)
        nc_buf_printf(&b, "%s:%d:%d: ", c->filename, pos.line, pos.col);
    else
        nc_buf_printf(&b, "%s: ", c->filename);
    if (c->path.len)
        nc_buf_puts(&b, c->path.data);
    if (leaf)
        nc_buf_printf(&b, "%s%s", c->path.len ? " > " : "", leaf);
    if (c->path.len || leaf)
        nc_buf_puts(&b, ": ");
    va_list ap;
    va_start(ap, fmt);
    nc_buf_vprintf(&b, fmt, ap);
    va_end(ap);
    nc_error_set(c->err, -EINVAL, "%s", b.data);
    nc_buf_free(&b);
    return -EINVAL;
}

static int type_error(struct config_decoder *c, const struct hcl_value *v,
                      const char *leaf, const char *want)
{
    if (v->kind == HCL_EXPR) {
        const char *t = v->str ? v->str : "";
        return hfail(c, v->pos, leaf,
                     "expected %s, got expression %.40s%s (variables and "
                     "functions are not evaluated in agent configuration)",
                     want, t, strlen(t) > 40 ? "..." : "");
    }
    return hfail(c, v->pos, leaf, "expected %s, got %s", want,
                 kind_name(v->kind));
}

static size_t path_push(struct config_decoder *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Appends a segment to the path; returns the length to restore. */
static size_t path_push(struct config_decoder *c, const char *fmt, ...)
{
    size_t mark = c->path.len;
    if (mark)
        nc_buf_puts(&c->path, " > ");
    va_list ap;
    va_start(ap, fmt);
    nc_buf_vprintf(&c->path, fmt, ap);
    va_end(ap);
    return mark;
}

static void path_pop(struct config_decoder *c, size_t mark)
{
    c->path.len = mark;
    if (c->path.data)
        c->path.data[mark] = '\0';
}

/* ---- value helpers ---- */

static const char *const level_names[] = {"TRACE", "DEBUG", "INFO",
                                          "WARN",  "ERROR", "OFF"};

bool config_parse_long(const char *s, long long *out)
{
    if (!s || !*s || isspace((unsigned char)*s))
        return false;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end)
        return false;
    *out = v;
    return true;
}

static int get_int(struct config_decoder *c, const struct hcl_value *v,
                   const char *leaf, int *out)
{
    long long n;
    if (v->kind == HCL_NUMBER && v->is_integer)
        n = v->integer;
    else if (v->kind == HCL_NUMBER)
        return hfail(c, v->pos, leaf, "expected a whole number, got %s",
                     v->str ? v->str : "a fraction");
    else if (v->kind == HCL_STRING && config_parse_long(v->str, &n))
        ; /* HCL1, which Nomad reads agent files with, takes "4646" too */
    else if (v->kind == HCL_STRING)
        return hfail(c, v->pos, leaf, "expected a whole number, got \"%s\"",
                     v->str);
    else
        return type_error(c, v, leaf, "a whole number");
    if (n < INT_MIN || n > INT_MAX)
        return hfail(c, v->pos, leaf, "%lld is out of range", n);
    *out = (int)n;
    return 0;
}

/* Counts the cores of a cpuset like "0-1,3". */
static bool cpuset_count(const char *s, int *out)
{
    long long total = 0;
    const char *p = s;
    for (;;) {
        char *end;
        if (!isdigit((unsigned char)*p))
            return false;
        long long lo = strtoll(p, &end, 10), hi = lo;
        p = end;
        if (*p == '-') {
            if (!isdigit((unsigned char)p[1]))
                return false;
            hi = strtoll(p + 1, &end, 10);
            p = end;
        }
        if (hi < lo || lo > INT_MAX || hi > INT_MAX)
            return false;
        total += hi - lo + 1;
        if (total > INT_MAX)
            return false;
        if (*p == '\0')
            break;
        if (*p != ',')
            return false;
        p++;
    }
    *out = (int)total;
    return true;
}

/* Text of a scalar for string maps (meta, options): HCL1 turns numbers and
 * bools into their text, as written. NULL for anything else (and for a
 * number without source text). */
static const char *scalar_text(const struct hcl_value *v)
{
    switch (v->kind) {
    case HCL_STRING:
        return v->str ? v->str : "";
    case HCL_NUMBER:
        return v->str;
    case HCL_BOOL:
        return v->boolean ? "true" : "false";
    default:
        return NULL;
    }
}

static void config_set_str(char **dst, const char *s)
{
    char *copy = xstrdup(s);
    free(*dst);
    *dst = copy;
}

/* "https://host:port" and "http://host:port" become "host:port", the
 * former turning ssl on; "unix:///path" is kept as it is. */
static void config_consul_set_address(struct agent_config *cfg,
                                      const char *addr, bool set_ssl)
{
    if (nc_str_has_prefix(addr, "https://")) {
        addr += strlen("https://");
        if (set_ssl)
            cfg->consul.ssl = true;
    } else if (nc_str_has_prefix(addr, "http://")) {
        addr += strlen("http://");
    }
    config_set_str(&cfg->consul.address, addr);
}

static void consul_enter(struct agent_config *cfg)
{
    cfg->consul.configured = true;
}

/* ---- decoding ---- */

static int decode_src(struct config_decoder *c, const struct config_schema *s,
                      void *base, const struct config_src *src);

static int decode_attr(struct config_decoder *c, const struct config_field *f,
                       void *base, const struct hcl_item *it)
{
    const struct hcl_value *v = it->value;
    void *dst = f->off == NOFF ? NULL : (char *)base + f->off;
    const char *leaf = it->name;
    int n = 0;
    if (v->kind == HCL_NULL)
        return 0; /* as in HCL: null leaves the setting alone */
    switch (f->kind) {
    case F_STRING:
        if (v->kind != HCL_STRING)
            return type_error(c, v, leaf, "a string");
        if (dst)
            config_set_str(dst, v->str ? v->str : "");
        break;
    case F_LOG_LEVEL: {
        enum nc_log_level lvl;
        if (v->kind != HCL_STRING)
            return type_error(c, v, leaf, "a string");
        if (nc_log_parse_level(v->str ? v->str : "", &lvl) < 0)
            return hfail(c, v->pos, leaf,
                         "\"%s\" is not a log level (trace, debug, info, "
                         "warn, error)",
                         v->str ? v->str : "");
        if (dst)
            config_set_str(dst, level_names[lvl]);
        break;
    }
    case F_CONSUL_ADDRESS:
        if (v->kind != HCL_STRING)
            return type_error(c, v, leaf, "a string");
        config_consul_set_address(c->cfg, v->str ? v->str : "", true);
        if (nc_str_has_prefix(v->str ? v->str : "", "https://"))
            c->cfg->consul.file_set |= CONFIG_SET_CONSUL_SSL;
        break;
    case F_INT:
        if (get_int(c, v, leaf, &n) < 0)
            return -EINVAL;
        if (dst)
            *(int *)dst = n;
        break;
    case F_CORES:
        if (v->kind == HCL_STRING) {
            if (!cpuset_count(v->str ? v->str : "", &n))
                return hfail(c, v->pos, leaf,
                             "\"%s\" is not a cpuset like \"0-1,3\"",
                             v->str ? v->str : "");
        } else if (get_int(c, v, leaf, &n) < 0) {
            return -EINVAL;
        }
        if (dst)
            *(int *)dst = n;
        break;
    case F_BOOL:
    case F_SERVER_ENABLED:
        if (v->kind != HCL_BOOL)
            return type_error(c, v, leaf, "a bool");
        if (f->kind == F_SERVER_ENABLED && v->boolean)
            return hfail(c, it->pos, NULL,
                         "server mode is not supported by nomclient; run "
                         "Nomad servers for that");
        if (dst)
            *(bool *)dst = v->boolean;
        break;
    case F_NUMBER:
        if (v->kind != HCL_NUMBER)
            return type_error(c, v, leaf, "a number");
        break;
    case F_DURATION: {
        int64_t ns;
        if (v->kind == HCL_NUMBER && v->is_integer)
            break; /* nanoseconds, as Go's time.Duration decodes */
        if (v->kind != HCL_STRING)
            return type_error(c, v, leaf, "a duration");
        if (nc_parse_duration(v->str ? v->str : "", &ns) < 0)
            return hfail(c, v->pos, leaf,
                         "\"%s\" is not a duration (like \"30s\" or \"5m\")",
                         v->str ? v->str : "");
        break;
    }
    case F_STRLIST:
        if (v->kind != HCL_LIST)
            return type_error(c, v, leaf, "a list of strings");
        for (size_t i = 0; i < v->n; i++) {
            char msg[300];
            if (v->items[i]->kind != HCL_STRING)
                return hfail(c, v->items[i]->pos, leaf,
                             "expected a list of strings, got %s in the list",
                             kind_name(v->items[i]->kind));
            if (f->check &&
                f->check(v->items[i]->str ? v->items[i]->str : "", msg,
                         sizeof(msg)) < 0)
                return hfail(c, v->items[i]->pos, leaf, "%s", msg);
        }
        if (dst) {
            struct strlist *l = dst;
            strlist_free(l);
            for (size_t i = 0; i < v->n; i++)
                strlist_add(l, v->items[i]->str ? v->items[i]->str : "");
        }
        break;
    default:
        return hfail(c, it->pos, leaf, "internal error: bad field kind");
    }
    c->cfg->consul.file_set |= f->setbit;
    return 0;
}

static int strmap_entry(struct config_decoder *c, struct kvlist *l,
                        const char *key, const struct hcl_value *v)
{
    char num[64];
    if (v->kind == HCL_NULL)
        return 0;
    const char *text = scalar_text(v);
    if (!text && v->kind == HCL_NUMBER) {
        if (v->is_integer)
            snprintf(num, sizeof(num), "%lld", (long long)v->integer);
        else
            snprintf(num, sizeof(num), "%.17g", v->number);
        text = num;
    }
    if (!text)
        return type_error(c, v, key, "a string");
    if (l)
        kv_set(l, key, text);
    return 0;
}

static int decode_strmap(struct config_decoder *c, const struct config_field *f,
                         void *base, const char *name,
                         const struct config_src *src)
{
    struct kvlist *l = f->off == NOFF ? NULL : (void *)((char *)base + f->off);
    size_t mark = path_push(c, "%s", name);
    int r = 0;
    if (src->body) {
        for (size_t i = 0; i < src->body->n && r == 0; i++) {
            const struct hcl_item *it = &src->body->items[i];
            if (it->type == HCL_BLOCK)
                r = hfail(c, it->pos, NULL,
                          "unexpected block \"%s\"; expected name = "
                          "\"value\" pairs",
                          it->name);
            else
                r = strmap_entry(c, l, it->name, it->value);
        }
    } else {
        for (size_t i = 0; i < src->obj->n && r == 0; i++)
            r = strmap_entry(c, l, src->obj->keys[i], src->obj->items[i]);
    }
    path_pop(c, mark);
    return r;
}

static int decode_block_src(struct config_decoder *c,
                            const struct config_field *f, void *base,
                            const char *name, const struct config_src *src)
{
    if (f->kind == F_STRMAP)
        return decode_strmap(c, f, base, name, src);
    size_t mark = path_push(c, "%s", name);
    int r = decode_src(c, f->sub, base, src);
    path_pop(c, mark);
    return r;
}

/* A labeled block written as an object: { label = { ... } } or
 * { label = [{ ... }, ...] }. */
static int decode_labeled_object(struct config_decoder *c,
                                 const struct config_field *f,
                                 const struct hcl_value *obj)
{
    for (size_t i = 0; i < obj->n; i++) {
        const struct hcl_value *e = obj->items[i];
        const char *label = obj->keys[i];
        struct hcl_pos pos = obj->key_pos ? obj->key_pos[i] : e->pos;
        if (e->kind == HCL_NULL)
            continue;
        if (e->kind == HCL_OBJECT) {
            int r = f->labeled(c, label, pos, &(struct config_src){.obj = e});
            if (r < 0)
                return r;
            continue;
        }
        if (e->kind != HCL_LIST) {
            size_t mark = path_push(c, "%s", f->name);
            int r = type_error(c, e, label, "a block");
            path_pop(c, mark);
            return r;
        }
        for (size_t j = 0; j < e->n; j++) {
            const struct hcl_value *b = e->items[j];
            int r;
            if (b->kind == HCL_OBJECT) {
                r = f->labeled(c, label, b->pos,
                               &(struct config_src){.obj = b});
            } else {
                size_t mark = path_push(c, "%s", f->name);
                r = type_error(c, b, label, "a block");
                path_pop(c, mark);
            }
            if (r < 0)
                return r;
        }
    }
    return 0;
}

/* A block written as an attribute: name = { ... }, or, as HCL1's JSON
 * form writes repeated blocks, name = [{ ... }, ...]. */
static int decode_block_value(struct config_decoder *c,
                              const struct config_field *f, void *base,
                              const char *name, const struct hcl_value *v,
                              bool in_list)
{
    const char *want = f->kind == F_STRMAP ? "a map of strings" : "a block";
    if (v->kind == HCL_NULL)
        return 0;
    if (v->kind == HCL_LIST && !in_list) {
        for (size_t i = 0; i < v->n; i++) {
            int r = decode_block_value(c, f, base, name, v->items[i], true);
            if (r < 0)
                return r;
        }
        return 0;
    }
    if (v->kind != HCL_OBJECT)
        return type_error(c, v, name, want);
    if (f->kind == F_LABELED)
        return decode_labeled_object(c, f, v);
    return decode_block_src(c, f, base, name, &(struct config_src){.obj = v});
}

static int decode_block_field(struct config_decoder *c,
                              const struct config_field *f, void *base,
                              const struct hcl_item *it)
{
    if (f->kind == F_OPAQUE)
        return 0;
    if (it->type == HCL_ATTRIBUTE)
        return decode_block_value(c, f, base, it->name, it->value, false);
    struct config_src s = {.body = it->body};
    if (f->kind == F_LABELED) {
        if (it->nlabels != 1)
            return hfail(c, it->pos, it->name,
                         "expected one label, as in %s \"name\" { ... }",
                         it->name);
        return f->labeled(c, it->labels[0], it->pos, &s);
    }
    if (it->nlabels)
        return hfail(c, it->pos, it->name, "unexpected label \"%s\"",
                     it->labels[0]);
    return decode_block_src(c, f, base, it->name, &s);
}

static const struct config_field *find_field(const struct config_schema *s,
                                             const char *name)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->fields[i].name, name) == 0)
            return &s->fields[i];
    return NULL;
}

static int decode_item(struct config_decoder *c, const struct config_schema *s,
                       void *base, const struct hcl_item *it)
{
    const struct config_field *f = find_field(s, it->name);
    if (!f) {
        if (s->open)
            return 0;
        return hfail(c, it->pos, NULL, "unknown %s \"%s\"",
                     it->type == HCL_BLOCK ? "block" : "attribute", it->name);
    }
    if (f->kind >= F_STRMAP)
        return decode_block_field(c, f, base, it);
    if (it->type == HCL_BLOCK)
        return hfail(c, it->pos, it->name,
                     "expected an attribute (%s = ...), got a block", it->name);
    return decode_attr(c, f, base, it);
}

static int decode_src(struct config_decoder *c, const struct config_schema *s,
                      void *base, const struct config_src *src)
{
    if (s->enter)
        s->enter(c->cfg);
    if (src->body) {
        for (size_t i = 0; i < src->body->n; i++) {
            int r = decode_item(c, s, base, &src->body->items[i]);
            if (r < 0)
                return r;
        }
        return 0;
    }
    const struct hcl_value *obj = src->obj;
    for (size_t i = 0; obj && i < obj->n; i++) {
        struct hcl_item it = {
            .type = HCL_ATTRIBUTE,
            .name = obj->keys[i],
            .pos = obj->key_pos ? obj->key_pos[i] : obj->items[i]->pos,
            .value = obj->items[i],
        };
        int r = decode_item(c, s, base, &it);
        if (r < 0)
            return r;
    }
    return 0;
}

static int config_decode_host_volume(struct config_decoder *c,
                                     const char *label, struct hcl_pos pos,
                                     const struct config_src *s)
{
    struct agent_config *cfg = c->cfg;
    size_t mark = path_push(c, "host_volume \"%s\"", label);
    if (strlist_contains(&c->volumes_seen, label)) {
        int r = hfail(c, pos, NULL, "defined more than once in this file");
        path_pop(c, mark);
        return r;
    }
    strlist_add(&c->volumes_seen, label);
    struct host_volume_config *vol = NULL;
    for (size_t i = 0; i < cfg->client.nhost_volumes; i++) {
        if (strcmp(cfg->client.host_volumes[i].name, label) == 0) {
            /* a later file redefines the volume as a whole */
            vol = &cfg->client.host_volumes[i];
            free(vol->path);
            vol->path = NULL;
            vol->read_only = false;
            break;
        }
    }
    if (!vol) {
        size_t n = cfg->client.nhost_volumes;
        cfg->client.host_volumes =
            xrealloc(cfg->client.host_volumes, (n + 1) * sizeof(*vol));
        vol = &cfg->client.host_volumes[n];
        memset(vol, 0, sizeof(*vol));
        vol->name = xstrdup(label);
        cfg->client.nhost_volumes = n + 1;
    }
    int r = decode_src(c, &host_volume_s, vol, s);
    path_pop(c, mark);
    return r;
}

static int config_decode_plugin(struct config_decoder *c, const char *label,
                                struct hcl_pos pos, const struct config_src *s)
{
    /* a driver of this node declares its keys; other plugins' config is
     * theirs to know */
    const struct driver *d = driver_find(label);
    size_t n = d && d->plugin_keys ? d->nplugin_keys : 0;
    struct config_field *keys = xcalloc(n + 1, sizeof(*keys));
    for (size_t i = 0; i < n; i++) {
        const struct config_key *k = &d->plugin_keys[i];
        bool ignored = k->kind == CONFIG_KEY_IGNORED_BOOL ||
                       k->kind == CONFIG_KEY_IGNORED_STRING;
        keys[i] = (struct config_field){
            .name = k->name,
            .kind = k->kind == CONFIG_KEY_BOOL ||
                            k->kind == CONFIG_KEY_IGNORED_BOOL
                        ? F_BOOL
                    : k->kind == CONFIG_KEY_STRLIST ? F_STRLIST
                                                    : F_STRING,
            .off = ignored ? NOFF : k->offset,
            .check = k->check,
        };
    }
    struct config_schema config_s = {keys, n, false, NULL};
    struct config_field plugin_f[] = {
        BLOCK("config", &config_s),
        IGNORED("args", F_STRLIST),
    };
    struct config_schema plugin_s = {plugin_f, NC_ARRAY_LEN(plugin_f), false,
                                     NULL};
    size_t mark = path_push(c, "plugin \"%s\"", label);
    int r = decode_src(c, n ? &plugin_s : &plugin_other_s, c->cfg, s);
    path_pop(c, mark);
    free(keys);
    return r;
}

static int config_decode_file(struct agent_config *cfg, const char *filename,
                              const struct config_src *src,
                              struct nc_error *err)
{
    struct config_decoder c = {.cfg = cfg, .filename = filename, .err = err};
    int r = decode_src(&c, &top_s, cfg, src);
    nc_buf_free(&c.path);
    strlist_free(&c.volumes_seen);
    return r;
}

/* ---- JSON ---- */

static void json_hcl_free(struct hcl_value *v)
{
    if (!v)
        return;
    for (size_t i = 0; i < v->n; i++) {
        json_hcl_free(v->items[i]);
        if (v->keys)
            free(v->keys[i]);
    }
    free(v->items);
    free(v->keys);
    free(v->key_pos);
    free(v->str);
    free(v);
}

/* Shortest text that reads back as the same double. */
static char *real_text(double d)
{
    char buf[64];
    snprintf(buf, sizeof(buf), "%.15g", d);
    if (strtod(buf, NULL) != d)
        snprintf(buf, sizeof(buf), "%.17g", d);
    return xstrdup(buf);
}

/* A syntax tree without positions, built and freed here (hcl.c's own
 * allocation scheme is its business). */
static struct hcl_value *json_to_hcl(json_t *j)
{
    struct hcl_value *v = xcalloc(1, sizeof(*v));
    switch (json_typeof(j)) {
    case JSON_OBJECT: {
        const char *key;
        json_t *val;
        size_t i = 0;
        v->kind = HCL_OBJECT;
        v->n = json_object_size(j);
        v->items = xcalloc(v->n, sizeof(*v->items));
        v->keys = xcalloc(v->n, sizeof(*v->keys));
        v->key_pos = xcalloc(v->n, sizeof(*v->key_pos));
        json_object_foreach(j, key, val)
        {
            if (i == v->n)
                break;
            v->keys[i] = xstrdup(key);
            v->items[i] = json_to_hcl(val);
            i++;
        }
        v->n = i;
        break;
    }
    case JSON_ARRAY:
        v->kind = HCL_LIST;
        v->n = json_array_size(j);
        v->items = xcalloc(v->n, sizeof(*v->items));
        for (size_t i = 0; i < v->n; i++)
            v->items[i] = json_to_hcl(json_array_get(j, i));
        break;
    case JSON_STRING:
        v->kind = HCL_STRING;
        v->str = xstrndup(json_string_value(j), json_string_length(j));
        break;
    case JSON_INTEGER:
        v->kind = HCL_NUMBER;
        v->is_integer = true;
        v->integer = json_integer_value(j);
        v->number = (double)v->integer;
        v->str = xasprintf("%lld", (long long)v->integer);
        break;
    case JSON_REAL:
        v->kind = HCL_NUMBER;
        v->number = json_real_value(j);
        v->str = real_text(v->number);
        break;
    case JSON_TRUE:
    case JSON_FALSE:
        v->kind = HCL_BOOL;
        v->boolean = json_is_true(j);
        break;
    case JSON_NULL:
        v->kind = HCL_NULL;
        break;
    }
    return v;
}

static int config_load_json(struct agent_config *cfg, const char *filename,
                            const char *src, size_t len, struct nc_error *err)
{
    json_error_t je;
    json_t *root = json_loadb(src, len, 0, &je);
    if (!root)
        return nc_error_set(err, -EINVAL, "%s:%d:%d: %s", filename, je.line,
                            je.column, je.text);
    if (!json_is_object(root)) {
        json_decref(root);
        return nc_error_set(err, -EINVAL,
                            "%s: expected a JSON object at the top level",
                            filename);
    }
    struct hcl_value *tree = json_to_hcl(root);
    json_decref(root);
    int r = config_decode_file(cfg, filename, &(struct config_src){.obj = tree},
                               err);
    json_hcl_free(tree);
    return r;
}

/* ---- public ---- */

void config_defaults(struct agent_config *cfg, bool dev)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->dev_mode = dev;
    if (dev) {
        char tmpl[] = "/tmp/nomclient-dev-XXXXXX";
        if (mkdtemp(tmpl)) {
            cfg->data_dir = xstrdup(tmpl);
        } else {
            /* the agent creates it and reports any failure */
            LOG_WARN("config", "cannot create a dev data dir in /tmp: %s",
                     strerror(errno));
            cfg->data_dir = xasprintf("/tmp/nomclient-dev-%ld", (long)getpid());
        }
    } else {
        cfg->data_dir = xstrdup("/var/lib/nomclient");
    }
    char host[256];
    if (gethostname(host, sizeof(host)) < 0 || !host[0])
        snprintf(host, sizeof(host), "localhost");
    host[sizeof(host) - 1] = '\0';
    cfg->name = xstrdup(host);
    cfg->datacenter = xstrdup("dc1");
    cfg->region = xstrdup("global");
    cfg->bind_addr = xstrdup(dev ? "127.0.0.1" : "0.0.0.0");
    cfg->http_port = 4646;
    cfg->log_level = xstrdup("INFO");

    cfg->client.enabled = true;
    cfg->client.node_pool = xstrdup("default");
    cfg->client.cni_path = xstrdup("/usr/lib/cni");
    cfg->client.cni_config_dir = xstrdup("/etc/cni/net.d");
    cfg->client.bridge_network_name = xstrdup("nomad");
    cfg->client.bridge_network_subnet = xstrdup("172.26.64.0/20");
    /* on, as the design asks (tasks reach their own mapped ports); Nomad
     * 1.7 defaults it to off: set it false to match that */
    cfg->client.bridge_network_hairpin_mode = true;
    cfg->client.min_dynamic_port = 20000;
    cfg->client.max_dynamic_port = 32000;
    drivers_config_defaults(cfg, dev); /* their plugin config */
    /* as `nomad agent -dev`: the node's address is the loopback's, so a dev
     * agent's ports and checks never reach beyond this machine */
    if (dev)
        cfg->client.network_interface = xstrdup("lo");

    cfg->consul.address = xstrdup("127.0.0.1:8500");
    cfg->consul.verify_ssl = true;
    cfg->consul.server_service_name = xstrdup("nomad");
    cfg->consul.client_service_name = xstrdup("nomad-client");
    cfg->consul.auto_advertise = true;
}

int config_load_string(struct agent_config *cfg, const char *filename,
                       const char *src, size_t len, struct nc_error *err)
{
    bool json = nc_str_has_suffix(filename, ".json");
    if (!json && !nc_str_has_suffix(filename, ".hcl")) {
        /* no telling extension: an HCL body cannot start with '{' */
        size_t i = 0;
        while (i < len && isspace((unsigned char)src[i]))
            i++;
        json = i < len && src[i] == '{';
    }
    if (json)
        return config_load_json(cfg, filename, src, len, err);
    struct hcl_file *f = NULL;
    int r = hcl_parse(filename, src, len, &f, err);
    if (r < 0)
        return r;
    r = config_decode_file(cfg, filename, &(struct config_src){.body = f->body},
                           err);
    hcl_file_free(f);
    return r;
}

static int load_file(struct agent_config *cfg, const char *path,
                     struct nc_error *err)
{
    size_t len;
    char *src = nc_read_file(path, &len, 0);
    if (!src) {
        int e = errno ? errno : EIO;
        return nc_error_set(err, -e, "%s: %s", path, strerror(e));
    }
    int r = config_load_string(cfg, path, src, len, err);
    free(src);
    if (r == 0)
        strlist_add(&cfg->files, path);
    return r;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* As Nomad's LoadConfigDir: *.hcl and *.json, not hidden files or editor
 * leftovers. */
static bool is_config_name(const char *name)
{
    if (name[0] == '.' || name[0] == '#')
        return false;
    return nc_str_has_suffix(name, ".hcl") || nc_str_has_suffix(name, ".json");
}

int config_load_path(struct agent_config *cfg, const char *path,
                     struct nc_error *err)
{
    struct stat st;
    if (stat(path, &st) < 0) {
        int e = errno;
        return nc_error_set(err, -e, "%s: %s", path, strerror(e));
    }
    if (!S_ISDIR(st.st_mode))
        return load_file(cfg, path, err);

    DIR *d = opendir(path);
    if (!d) {
        int e = errno;
        return nc_error_set(err, -e, "%s: %s", path, strerror(e));
    }
    struct strlist files = {0};
    bool slash = nc_str_has_suffix(path, "/");
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!is_config_name(de->d_name))
            continue;
        char *full = xasprintf("%s%s%s", path, slash ? "" : "/", de->d_name);
        struct stat fst;
        /* a directory named x.hcl is skipped; unreadable files are
         * reported when read */
        if (stat(full, &fst) == 0 && S_ISDIR(fst.st_mode)) {
            free(full);
            continue;
        }
        strlist_add(&files, full);
        free(full);
    }
    closedir(d);
    if (files.n)
        qsort(files.items, files.n, sizeof(*files.items), cmp_names);
    int r = 0;
    for (size_t i = 0; i < files.n && r == 0; i++)
        r = load_file(cfg, files.items[i], err);
    strlist_free(&files);
    return r;
}

/* Go's strconv.ParseBool, which the Consul API client uses. */
static bool parse_go_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"1", "t", "T", "TRUE", "true", "True"};
    static const char *const no[] = {"0", "f", "F", "FALSE", "false", "False"};
    for (size_t i = 0; i < NC_ARRAY_LEN(yes); i++) {
        if (strcmp(s, yes[i]) == 0) {
            *out = true;
            return true;
        }
        if (strcmp(s, no[i]) == 0) {
            *out = false;
            return true;
        }
    }
    return false;
}

void config_apply_env(struct agent_config *cfg)
{
    unsigned fs = cfg->consul.file_set;
    const char *v;
    bool b;
    struct {
        const char *env;
        unsigned bit;
        char **field;
    } strs[] = {
        {"CONSUL_HTTP_TOKEN", CONFIG_SET_CONSUL_TOKEN, &cfg->consul.token},
        {"CONSUL_CACERT", CONFIG_SET_CONSUL_CA_FILE, &cfg->consul.ca_file},
        {"CONSUL_CLIENT_CERT", CONFIG_SET_CONSUL_CERT_FILE,
         &cfg->consul.cert_file},
        {"CONSUL_CLIENT_KEY", CONFIG_SET_CONSUL_KEY_FILE,
         &cfg->consul.key_file},
    };
    for (size_t i = 0; i < NC_ARRAY_LEN(strs); i++) {
        v = getenv(strs[i].env);
        if (v && *v && !(fs & strs[i].bit))
            config_set_str(strs[i].field, v);
    }
    v = getenv("CONSUL_HTTP_SSL");
    if (v && *v && !(fs & CONFIG_SET_CONSUL_SSL)) {
        if (parse_go_bool(v, &b))
            cfg->consul.ssl = b;
        else
            LOG_WARN("config", "ignoring CONSUL_HTTP_SSL=\"%s\": not a bool",
                     v);
    }
    v = getenv("CONSUL_HTTP_SSL_VERIFY");
    if (v && *v && !(fs & CONFIG_SET_CONSUL_VERIFY_SSL)) {
        if (parse_go_bool(v, &b))
            cfg->consul.verify_ssl = b;
        else
            LOG_WARN("config",
                     "ignoring CONSUL_HTTP_SSL_VERIFY=\"%s\": not a bool", v);
    }
    v = getenv("CONSUL_HTTP_ADDR");
    if (v && *v) {
        cfg->consul.configured = true;
        if (!(fs & CONFIG_SET_CONSUL_ADDRESS))
            config_consul_set_address(cfg, v, !(fs & CONFIG_SET_CONSUL_SSL));
    }
}

void config_free(struct agent_config *cfg)
{
    if (!cfg)
        return;
    char **owned[] = {
        &cfg->data_dir,
        &cfg->name,
        &cfg->datacenter,
        &cfg->region,
        &cfg->bind_addr,
        &cfg->log_level,
        &cfg->plugin_dir,
        &cfg->addresses.http,
        &cfg->advertise.http,
        &cfg->client.node_class,
        &cfg->client.node_pool,
        &cfg->client.cni_path,
        &cfg->client.cni_config_dir,
        &cfg->client.bridge_network_name,
        &cfg->client.bridge_network_subnet,
        &cfg->client.reserved.reserved_ports,
        &cfg->client.network_interface,
        &cfg->consul.address,
        &cfg->consul.token,
        &cfg->consul.ca_file,
        &cfg->consul.cert_file,
        &cfg->consul.key_file,
        &cfg->consul.auth,
        &cfg->consul.server_service_name,
        &cfg->consul.client_service_name,
    };
    for (size_t i = 0; i < NC_ARRAY_LEN(owned); i++)
        free(*owned[i]);
    for (size_t i = 0; i < cfg->client.nhost_volumes; i++) {
        free(cfg->client.host_volumes[i].name);
        free(cfg->client.host_volumes[i].path);
    }
    free(cfg->client.host_volumes);
    kv_free(&cfg->client.meta);
    kv_free(&cfg->client.options);
    kv_free(&cfg->client.chroot_env);
    strlist_free(&cfg->client.servers);
    strlist_free(&cfg->client.exec_allow_caps);
    strlist_free(&cfg->consul.tags);
    strlist_free(&cfg->files);
    memset(cfg, 0, sizeof(*cfg));
}
