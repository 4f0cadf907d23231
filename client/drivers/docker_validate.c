/* docker_validate.c - a task's docker config checked at submission:
 * Nomad's taskConfigSpec, then what the values mean and what the plugin
 * config allows (capabilities as Nomad's capabilities.Delta); see
 * docker_config.h. */
#include "client/drivers/docker_config_internal.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/capability.h>

#include "client/drivers/internal.h"

/* ---- capabilities (Nomad's capabilities.Delta for docker) ---- */

static bool list_has_all(const struct strlist *l)
{
    for (size_t i = 0; i < l->n; i++) {
        const char *s = l->items[i];
        if (strncasecmp(s, "cap_", 4) == 0)
            s += 4;
        if (strcasecmp(s, "all") == 0)
            return true;
    }
    return false;
}

static int caps_mask(const struct strlist *l, uint64_t *mask, char *msg,
                     size_t len)
{
    for (size_t i = 0; i < l->n; i++)
        if (caps_parse(l->items[i], mask) < 0) {
            snprintf(msg, len, "unknown capability \"%s\"", l->items[i]);
            return -EINVAL;
        }
    return 0;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The lower-case names without "cap_" of mask's bits, sorted, as a JSON
 * array, or (text) joined by ", ". */
static char *caps_names(uint64_t mask, json_t *arr)
{
    char *names[64];
    size_t n = 0;
    for (int v = 0; v < 64; v++) {
        if (!(mask & ((uint64_t)1 << v)))
            continue;
        char *name = cap_to_name((cap_value_t)v);
        names[n++] =
            xstrdup(name && strncmp(name, "cap_", 4) == 0 ? name + 4 : name);
        cap_free(name);
    }
    qsort(names, n, sizeof(*names), name_cmp);
    struct nc_buf b = {0};
    nc_buf_puts(&b, "");
    for (size_t i = 0; i < n; i++) {
        if (arr)
            json_array_append_new(arr, json_string(names[i]));
        nc_buf_printf(&b, "%s%s", i ? ", " : "", names[i]);
        free(names[i]);
    }
    return nc_buf_take(&b);
}

/* What to pass as CapAdd and CapDrop so the container gets Docker's
 * defaults within allow_caps, less cap_drop, plus cap_add; every cap_add
 * must be allowed. allow NULL: no check (structural validation only). */
int caps_delta(const struct strlist *allow, const struct strlist *add,
               const struct strlist *drop, json_t *cap_add, json_t *cap_drop,
               char *msg, size_t len)
{
    uint64_t basis = 0, allowed = 0, adds = 0, drops = 0;
    for (const char *const *c = caps_nomad_defaults; *c; c++)
        caps_parse(*c, &basis);
    caps_parse("NET_RAW", &basis); /* Docker's defaults are Nomad's + it */
    int r;
    if ((allow && (r = caps_mask(allow, &allowed, msg, len)) < 0) ||
        (r = caps_mask(add, &adds, msg, len)) < 0 ||
        (r = caps_mask(drop, &drops, msg, len)) < 0)
        return r;
    if (allow && (adds & ~allowed)) {
        char *names = caps_names(adds & ~allowed, NULL);
        snprintf(msg, len,
                 "driver does not allow the following capabilities: %s", names);
        free(names);
        return -EPERM;
    }
    if (cap_add) {
        if (list_has_all(add))
            json_array_append_new(cap_add, json_string("all"));
        else
            free(caps_names(adds, cap_add));
    }
    if (cap_drop && allow) {
        if (list_has_all(drop))
            json_array_append_new(cap_drop, json_string("all"));
        else
            free(caps_names((basis & ~allowed) | drops, cap_drop));
    }
    return 0;
}

/* ---- the task config's shape (Nomad's taskConfigSpec) ---- */

enum tkind {
    T_STRING,
    T_BOOL,
    T_INT,
    T_STRLIST,
    T_STRMAP, /* list(map(string)), or block attributes */
    T_NUMMAP, /* list(map(number)) */
    T_BLOCK,  /* at most one */
    T_BLOCKS, /* any number */
};

struct tschema;
struct tkey {
    const char *name;
    enum tkind kind;
    const struct tschema *sub;
};
struct tschema {
    const struct tkey *keys;
    size_t n;
};

#define TSCHEMA(id)                                                            \
    static const struct tschema id##_s = {id##_k, NC_ARRAY_LEN(id##_k)}

static const struct tkey auth_k[] = {
    {"username", T_STRING, NULL},
    {"password", T_STRING, NULL},
    {"email", T_STRING, NULL},
    {"server_address", T_STRING, NULL},
};
TSCHEMA(auth);

static const struct tkey device_k[] = {
    {"host_path", T_STRING, NULL},
    {"container_path", T_STRING, NULL},
    {"cgroup_permissions", T_STRING, NULL},
};
TSCHEMA(device);

static const struct tkey healthchecks_k[] = {
    {"disable", T_BOOL, NULL},
};
TSCHEMA(healthchecks);

static const struct tkey logging_k[] = {
    {"type", T_STRING, NULL},
    {"driver", T_STRING, NULL},
    {"config", T_STRMAP, NULL},
};
TSCHEMA(logging);

static const struct tkey bind_options_k[] = {
    {"propagation", T_STRING, NULL},
};
TSCHEMA(bind_options);

static const struct tkey tmpfs_options_k[] = {
    {"size", T_INT, NULL},
    {"mode", T_INT, NULL},
};
TSCHEMA(tmpfs_options);

static const struct tkey driver_config_k[] = {
    {"name", T_STRING, NULL},
    {"options", T_STRMAP, NULL},
};
TSCHEMA(driver_config);

static const struct tkey volume_options_k[] = {
    {"no_copy", T_BOOL, NULL},
    {"labels", T_STRMAP, NULL},
    {"driver_config", T_BLOCK, &driver_config_s},
};
TSCHEMA(volume_options);

static const struct tkey mount_k[] = {
    {"type", T_STRING, NULL},
    {"target", T_STRING, NULL},
    {"source", T_STRING, NULL},
    {"readonly", T_BOOL, NULL},
    {"bind_options", T_BLOCK, &bind_options_s},
    {"tmpfs_options", T_BLOCK, &tmpfs_options_s},
    {"volume_options", T_BLOCK, &volume_options_s},
};
TSCHEMA(mount);

static const struct tkey task_k[] = {
    {"image", T_STRING, NULL},
    {"advertise_ipv6_address", T_BOOL, NULL},
    {"args", T_STRLIST, NULL},
    {"auth", T_BLOCK, &auth_s},
    {"auth_soft_fail", T_BOOL, NULL},
    {"cap_add", T_STRLIST, NULL},
    {"cap_drop", T_STRLIST, NULL},
    {"command", T_STRING, NULL},
    {"cpuset_cpus", T_STRING, NULL},
    {"cpu_hard_limit", T_BOOL, NULL},
    {"cpu_cfs_period", T_INT, NULL},
    {"devices", T_BLOCKS, &device_s},
    {"dns_search_domains", T_STRLIST, NULL},
    {"dns_options", T_STRLIST, NULL},
    {"dns_servers", T_STRLIST, NULL},
    {"entrypoint", T_STRLIST, NULL},
    {"extra_hosts", T_STRLIST, NULL},
    {"force_pull", T_BOOL, NULL},
    {"group_add", T_STRLIST, NULL},
    {"healthchecks", T_BLOCK, &healthchecks_s},
    {"hostname", T_STRING, NULL},
    {"init", T_BOOL, NULL},
    {"interactive", T_BOOL, NULL},
    {"ipc_mode", T_STRING, NULL},
    {"ipv4_address", T_STRING, NULL},
    {"ipv6_address", T_STRING, NULL},
    {"isolation", T_STRING, NULL},
    {"labels", T_STRMAP, NULL},
    {"load", T_STRING, NULL},
    {"logging", T_BLOCK, &logging_s},
    {"mac_address", T_STRING, NULL},
    {"memory_hard_limit", T_INT, NULL},
    {"mount", T_BLOCKS, &mount_s},
    {"mounts", T_BLOCKS, &mount_s}, /* the pre-1.0 name */
    {"network_aliases", T_STRLIST, NULL},
    {"network_mode", T_STRING, NULL},
    {"oom_score_adj", T_INT, NULL}, /* Nomad 1.9's */
    {"runtime", T_STRING, NULL},
    {"pids_limit", T_INT, NULL},
    {"pid_mode", T_STRING, NULL},
    {"ports", T_STRLIST, NULL},
    {"port_map", T_NUMMAP, NULL}, /* deprecated in Nomad, accepted */
    {"privileged", T_BOOL, NULL},
    {"image_pull_timeout", T_STRING, NULL},
    {"readonly_rootfs", T_BOOL, NULL},
    {"security_opt", T_STRLIST, NULL},
    {"shm_size", T_INT, NULL},
    {"storage_opt", T_STRMAP, NULL},
    {"sysctl", T_STRMAP, NULL},
    {"tty", T_BOOL, NULL},
    {"ulimit", T_STRMAP, NULL},
    {"uts_mode", T_STRING, NULL},
    {"userns_mode", T_STRING, NULL},
    {"volumes", T_STRLIST, NULL},
    {"volume_driver", T_STRING, NULL},
    {"work_dir", T_STRING, NULL},
};
TSCHEMA(task);

/* ---- checking ---- */

struct vctx {
    const struct agent_config *cfg; /* NULL: structural checks only */
    bool runtime;                   /* interpolated already */
    struct nc_buf path;             /* "config > mount[1]" */
    struct nc_error *err;
};

static int vfail(struct vctx *v, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int vfail(struct vctx *v, const char *fmt, ...)
{
    struct nc_buf m = {0};
    va_list ap;
    va_start(ap, fmt);
    nc_buf_vprintf(&m, fmt, ap);
    va_end(ap);
    nc_error_set(v->err, -EINVAL, "%s: %s", v->path.data ? v->path.data : "",
                 m.data ? m.data : "");
    nc_buf_free(&m);
    return -EINVAL;
}

/* Appends " > seg" (seg[i] when the list has several); returns the length
 * to go back to. */
static size_t vpush(struct vctx *v, const char *seg, size_t i, size_t n)
{
    size_t mark = v->path.len;
    if (mark)
        nc_buf_puts(&v->path, " > ");
    if (n > 1)
        nc_buf_printf(&v->path, "%s[%zu]", seg, i);
    else
        nc_buf_puts(&v->path, seg);
    return mark;
}

static void vpop(struct vctx *v, size_t mark)
{
    v->path.len = mark;
    if (v->path.data)
        v->path.data[mark] = '\0';
}

/* Levenshtein distance, capped (names are short). */
static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 63 || lb > 63)
        return 64;
    size_t row[64];
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (row[j] + 1 < best)
                best = row[j] + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

static int unknown_key(struct vctx *v, const struct tschema *s, const char *key)
{
    const char *best = NULL;
    size_t best_d = 3; /* as HCL suggests: fewer than 3 edits */
    for (size_t i = 0; i < s->n; i++) {
        size_t d = edit_distance(key, s->keys[i].name);
        if (d < best_d) {
            best_d = d;
            best = s->keys[i].name;
        }
    }
    if (best)
        return vfail(v, "unknown key \"%s\" (did you mean \"%s\"?)", key, best);
    return vfail(v, "unknown key \"%s\"", key);
}

static int check_object(struct vctx *v, const struct tschema *s,
                        const json_t *obj);

static int check_map(struct vctx *v, const json_t *val, bool numbers)
{
    const char *want = numbers ? "a map of numbers" : "a map of strings";
    if (!json_is_object(val) && !json_is_array(val))
        return vfail(v, "must be %s", want);
    for (size_t i = 0; i < nblocks(val); i++) {
        const json_t *m = block_at(val, i);
        if (!m)
            return vfail(v, "must be %s", want);
        const char *k;
        json_t *item;
        json_object_foreach((json_t *)m, k, item)
        {
            int64_t n;
            char *t = numbers ? NULL : jtext(item);
            bool ok =
                json_is_null(item) || (numbers ? jint(item, &n) : t != NULL);
            free(t);
            if (!ok) {
                size_t mark = vpush(v, k, 0, 1);
                int r =
                    vfail(v, "must be %s", numbers ? "a number" : "a string");
                vpop(v, mark);
                return r;
            }
        }
    }
    return 0;
}

static int check_value(struct vctx *v, const struct tkey *k, const json_t *val)
{
    int64_t n;
    bool b;
    char *t;
    switch (k->kind) {
    case T_STRING:
        if (!(t = jtext(val)))
            return vfail(v, "must be a string");
        free(t);
        return 0;
    case T_BOOL:
        return jbool(val, &b) ? 0 : vfail(v, "must be a bool");
    case T_INT:
        if (jint(val, &n))
            return 0;
        return vfail(v, json_is_real(val) ? "must be a whole number"
                                          : "must be a number");
    case T_STRLIST: {
        if (!json_is_array(val))
            return vfail(v, "must be a list of strings");
        size_t i;
        json_t *item;
        json_array_foreach((json_t *)val, i, item)
        {
            if (!(t = jtext(item)))
                return vfail(v, "must be a list of strings");
            free(t);
        }
        return 0;
    }
    case T_STRMAP:
        return check_map(v, val, false);
    case T_NUMMAP:
        return check_map(v, val, true);
    case T_BLOCK:
    case T_BLOCKS: {
        size_t count = nblocks(val);
        if (!json_is_object(val) && !json_is_array(val))
            return vfail(v, "must be a block");
        if (k->kind == T_BLOCK && count > 1)
            return vfail(v, "only one %s block is allowed", k->name);
        for (size_t i = 0; i < count; i++) {
            const json_t *blk = block_at(val, i);
            if (!blk)
                return vfail(v, "must be a block");
            /* the path already names the key; repeated blocks get [i] */
            size_t mark = v->path.len;
            if (count > 1)
                nc_buf_printf(&v->path, "[%zu]", i);
            int r = check_object(v, k->sub, blk);
            vpop(v, mark);
            if (r < 0)
                return r;
        }
        return 0;
    }
    }
    return 0;
}

static int check_object(struct vctx *v, const struct tschema *s,
                        const json_t *obj)
{
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)obj, key, val)
    {
        const struct tkey *k = NULL;
        for (size_t i = 0; i < s->n && !k; i++)
            if (strcmp(s->keys[i].name, key) == 0)
                k = &s->keys[i];
        if (!k)
            return unknown_key(v, s, key);
        if (json_is_null(val))
            continue;
        size_t mark = vpush(v, key, 0, 1);
        int r = check_value(v, k, val);
        vpop(v, mark);
        if (r < 0)
            return r;
    }
    return 0;
}

/* The checks below read values of a config whose shape passed. */

/* fails with the path at key */
static int vfail_at(struct vctx *v, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int vfail_at(struct vctx *v, const char *key, const char *fmt, ...)
{
    struct nc_buf m = {0};
    va_list ap;
    va_start(ap, fmt);
    nc_buf_vprintf(&m, fmt, ap);
    va_end(ap);
    size_t mark = vpush(v, key, 0, 1);
    int r = vfail(v, "%s", m.data ? m.data : "");
    vpop(v, mark);
    nc_buf_free(&m);
    return r;
}

/* Whether a string is to be checked now: at run time always, at
 * submission only without "${...}" (its value comes later). */
static bool checkable(const struct vctx *v, const char *s)
{
    return v->runtime || !has_interp(s);
}

/* Nomad's validateCommand */
static int check_command(struct vctx *v, const char *cmd)
{
    size_t n = strlen(cmd), lead = 0, trail = 0;
    while (lead < n && isspace((unsigned char)cmd[lead]))
        lead++;
    while (trail < n - lead && isspace((unsigned char)cmd[n - 1 - trail]))
        trail++;
    if (lead == n)
        return vfail_at(v, "command", "command empty: \"%s\"", cmd);
    if (lead || trail)
        return vfail_at(v, "command",
                        "command contains extra white space: \"%s\"", cmd);
    return 0;
}

/* "soft[:hard]" of a ulimit, as Nomad's sliceMergeUlimit reads it */
int parse_ulimit(const char *name, const char *raw, int64_t *soft,
                 int64_t *hard, char *msg, size_t len)
{
    if (!*raw) {
        snprintf(msg, len,
                 "Malformed ulimit specification %s: \"%s\", cannot be empty",
                 name, raw);
        return -EINVAL;
    }
    const char *colon = strchr(raw, ':');
    char *s = colon ? xstrndup(raw, (size_t)(colon - raw)) : xstrdup(raw);
    const char *h = colon ? colon + 1 : raw;
    char *end;
    errno = 0;
    long long sv = strtoll(s, &end, 10);
    bool sok = *s && !*end && !errno;
    free(s);
    if (!sok) {
        snprintf(msg, len, "Malformed soft ulimit %s: %s", name, raw);
        return -EINVAL;
    }
    errno = 0;
    long long hv = strtoll(h, &end, 10);
    if (!*h || *end || errno) {
        snprintf(msg, len, "Malformed hard ulimit %s: %s", name, raw);
        return -EINVAL;
    }
    *soft = sv;
    *hard = hv;
    return 0;
}

/* Nomad's parseSecurityOpts, without reading seccomp profiles: the
 * option's name and value, or -EINVAL. */
int split_security_opt(const char *opt, char **name, char **value)
{
    const char *eq = strchr(opt, '=');
    const char *sep = eq;
    if (!eq && strcmp(opt, "no-new-privileges") != 0) {
        sep = strchr(opt, ':');
        if (!sep)
            return -EINVAL;
    }
    *name = sep ? xstrndup(opt, (size_t)(sep - opt)) : xstrdup(opt);
    *value = sep ? xstrdup(sep + 1) : NULL;
    return 0;
}

static int check_mount(struct vctx *v, const json_t *m, bool volumes_on)
{
    char *type = cstr(m, "type"), *source = cstr(m, "source");
    char *target = cstr(m, "target");
    int r = 0;
    const char *t = type && *type ? type : "volume";
    const json_t *bo = cblock(m, "bind_options");
    char *prop = bo ? cstr(bo, "propagation") : NULL;
    if (strcmp(t, "bind") != 0 && strcmp(t, "volume") != 0 &&
        strcmp(t, "tmpfs") != 0) {
        r = vfail_at(v, "type",
                     "invalid mount type, must be \"bind\", \"volume\", "
                     "\"tmpfs\": \"%s\"",
                     t);
    } else if (!target || !*target) {
        r = vfail_at(v, "target", "a mount needs a target path");
    } else if (strcmp(t, "tmpfs") == 0 && source && *source) {
        r = vfail_at(v, "source", "invalid source, must be \"\" for tmpfs");
    }
    if (r == 0 && prop && *prop) {
        static const char *const props[] = {"private", "rprivate", "shared",
                                            "rshared", "slave",    "rslave"};
        bool ok = false;
        for (size_t i = 0; i < NC_ARRAY_LEN(props); i++)
            ok |= strcmp(prop, props[i]) == 0;
        if (!ok) {
            size_t mark = vpush(v, "bind_options", 0, 1);
            r = vfail_at(v, "propagation",
                         "\"%s\" is not a propagation mode (private, rprivate, "
                         "shared, rshared, slave, rslave)",
                         prop);
            vpop(v, mark);
        }
    }
    /* the sandbox: only with a plugin config, at submission (the body
     * checks the real paths) */
    if (r == 0 && v->cfg && !v->runtime && !volumes_on) {
        if (strcmp(t, "volume") == 0)
            r = vfail_at(v, "type",
                         "volumes are not enabled; cannot mount volume: \"%s\"",
                         source ? source : "");
        else if (strcmp(t, "bind") == 0 && source && checkable(v, source) &&
                 (source[0] == '/' || jobspec_path_escapes_alloc(source)))
            r = vfail_at(v, "source",
                         "volumes are not enabled; cannot mount host path: "
                         "\"%s\"",
                         source);
    }
    free(prop);
    free(type);
    free(source);
    free(target);
    return r;
}

static int check_semantics(struct vctx *v, const json_t *config)
{
    const struct docker_plugin_config *pc =
        v->cfg ? &v->cfg->client.docker : NULL;
    bool volumes_on = pc && pc->volumes.enabled;
    char msg[600];
    int r = 0;
    char *s = NULL;

    /* image */
    s = cstr(config, "image");
    if (!s || !*s) {
        free(s);
        if (cget(config, "image"))
            return vfail_at(v, "image",
                            "image name required for docker driver");
        return vfail(v, "the argument \"image\" is required, but no definition "
                        "was found");
    }
    struct nc_error ie = {0};
    if (checkable(v, s) && docker_parse_image(s, NULL, NULL, NULL, &ie) < 0)
        r = vfail_at(v, "image", "%s", ie.msg);
    free(s);
    if (r < 0)
        return r;

    if ((s = cstr(config, "command")) && checkable(v, s))
        r = check_command(v, s);
    free(s);
    if (r < 0)
        return r;

    s = cstr(config, "image_pull_timeout");
    int64_t ns;
    if (s && nc_parse_duration(s, &ns) < 0)
        r = vfail_at(v, "image_pull_timeout",
                     "\"%s\" is not a duration (like \"30s\" or \"5m\")", s);
    free(s);
    if (r < 0)
        return r;

    if (pc && cbool(config, "privileged") && !pc->allow_privileged)
        return vfail_at(
            v, "privileged",
            "Docker privileged mode is disabled on this Nomad agent");

    struct strlist add = {0}, drop = {0};
    cstrlist(config, "cap_add", &add);
    cstrlist(config, "cap_drop", &drop);
    uint64_t names = 0;
    const char *cap_key = "cap_add";
    if ((r = caps_mask(&add, &names, msg, sizeof(msg))) == 0 &&
        (r = caps_mask(&drop, &names, msg, sizeof(msg))) < 0)
        cap_key = "cap_drop";
    if (r == 0)
        r = caps_delta(pc ? &pc->allow_caps : NULL, &add, &drop, NULL, NULL,
                       msg, sizeof(msg));
    strlist_free(&add);
    strlist_free(&drop);
    if (r < 0)
        return vfail_at(v, cap_key, "%s", msg);

    if ((s = cstr(config, "runtime")) && *s && pc &&
        !strlist_contains(&pc->allow_runtimes, s))
        r = vfail_at(v, "runtime", "requested runtime \"%s\" is not allowed",
                     s);
    free(s);
    if (r < 0)
        return r;

    if ((s = cstr(config, "isolation")) && *s)
        r = vfail_at(v, "isolation",
                     "Failed to create container configuration, cannot use "
                     "isolation mode \"%s\" on linux",
                     s);
    free(s);
    if (r < 0)
        return r;

    int64_t pids = cint(config, "pids_limit", 0);
    if (pids < 0)
        return vfail_at(v, "pids_limit", "must not be negative");
    if (pc && pids > 0 && pc->pids_limit > 0 && pids > pc->pids_limit)
        return vfail_at(v, "pids_limit",
                        "pids_limit cannot be greater than nomad plugin config "
                        "pids_limit: %d",
                        pc->pids_limit);
    int64_t period = cint(config, "cpu_cfs_period", 100000);
    if (period < 0 || period > 1000000)
        return vfail_at(v, "cpu_cfs_period",
                        "invalid value for cpu_cfs_period");
    static const char *const nonneg[] = {"memory_hard_limit", "shm_size"};
    for (size_t i = 0; i < NC_ARRAY_LEN(nonneg); i++)
        if (cint(config, nonneg[i], 0) < 0)
            return vfail_at(v, nonneg[i], "must not be negative");
    int64_t oom = cint(config, "oom_score_adj", 0);
    if (oom < 0 || oom > 1000)
        return vfail_at(v, "oom_score_adj", "must be between 0 and 1000");

    /* volumes */
    if ((s = cstr(config, "volume_driver")) && *s && pc && !volumes_on)
        r = vfail_at(v, "volume_driver",
                     "volumes are not enabled; cannot use volume driver \"%s\"",
                     s);
    bool local_binds = !s || !*s;
    free(s);
    if (r < 0)
        return r;
    struct strlist vols = {0};
    cstrlist(config, "volumes", &vols);
    for (size_t i = 0; i < vols.n && r == 0; i++) {
        const char *vb = vols.items[i];
        const char *colon = strchr(vb, ':');
        if (!colon) {
            r = vfail_at(
                v, "volumes",
                "invalid docker volume \"%s\": not <src>:<destination> "
                "format",
                vb);
            break;
        }
        char *src = xstrndup(vb, (size_t)(colon - vb));
        if (pc && !volumes_on && local_binds && !v->runtime &&
            checkable(v, vb) &&
            (src[0] == '/' || jobspec_path_escapes_alloc(src)))
            r = vfail_at(v, "volumes",
                         "volumes are not enabled; cannot mount host paths: "
                         "\"%s\"",
                         vb);
        free(src);
    }
    strlist_free(&vols);
    if (r < 0)
        return r;

    static const char *const mount_keys[] = {"mount", "mounts"};
    for (size_t k = 0; k < NC_ARRAY_LEN(mount_keys); k++) {
        const json_t *mv = cget(config, mount_keys[k]);
        size_t n = nblocks(mv);
        for (size_t i = 0; i < n && r == 0; i++) {
            size_t mark = vpush(v, mount_keys[k], i, n);
            r = check_mount(v, block_at(mv, i), volumes_on);
            vpop(v, mark);
        }
    }
    if (r < 0)
        return r;

    const json_t *dv = cget(config, "devices");
    for (size_t i = 0; i < nblocks(dv) && r == 0; i++) {
        const json_t *d = block_at(dv, i);
        size_t mark = vpush(v, "devices", i, nblocks(dv));
        char *hp = cstr(d, "host_path"), *perm = cstr(d, "cgroup_permissions");
        if (!hp || !*hp)
            r = vfail(v, "host path must be set in configuration for devices");
        else if (perm && perm[strspn(perm, "rwm")])
            r = vfail_at(v, "cgroup_permissions",
                         "invalid cgroup permission string: \"%s\"", perm);
        free(hp);
        free(perm);
        vpop(v, mark);
    }
    if (r < 0)
        return r;

    struct kvlist ul = {0};
    cstrmap(config, "ulimit", &ul);
    for (size_t i = 0; i < ul.n && r == 0; i++) {
        int64_t soft, hard;
        if (checkable(v, ul.items[i].value) &&
            parse_ulimit(ul.items[i].key, ul.items[i].value, &soft, &hard, msg,
                         sizeof(msg)) < 0)
            r = vfail_at(v, "ulimit",
                         "failed to parse ulimit configuration: %s", msg);
    }
    kv_free(&ul);
    if (r < 0)
        return r;

    struct strlist so = {0};
    cstrlist(config, "security_opt", &so);
    for (size_t i = 0; i < so.n && r == 0; i++) {
        char *name, *value;
        if (split_security_opt(so.items[i], &name, &value) < 0) {
            r = vfail_at(v, "security_opt",
                         "failed to parse security_opt configuration: invalid "
                         "security_opt: \"%s\"",
                         so.items[i]);
            continue;
        }
        free(name);
        free(value);
    }
    strlist_free(&so);
    return r;
}

/* Shape, then meaning; config NULL is a config without image. */
int validate_config(const struct agent_config *cfg, const json_t *config,
                    bool runtime, struct nc_error *err)
{
    struct vctx v = {.cfg = cfg, .runtime = runtime, .err = err};
    nc_buf_puts(&v.path, "config");
    json_t *empty = NULL;
    if (!config)
        config = empty = json_object();
    int r;
    if (!json_is_object(config))
        r = vfail(&v, "must be a block");
    else if ((r = check_object(&v, &task_s, config)) == 0)
        r = check_semantics(&v, config);
    json_decref(empty);
    nc_buf_free(&v.path);
    return r;
}

int docker_validate(const struct agent_config *cfg, const struct task *spec,
                    struct nc_error *err)
{
    return validate_config(cfg, spec ? spec->config : NULL, false, err);
}
