/* docker_config.c - see docker_config.h. Facts from Nomad 1.6.5's
 * drivers/docker (config.go, driver.go, utils.go, ports.go) and
 * drivers/shared/capabilities; the code is ours.
 *
 * A task's config reaches us as the job model keeps it: the JSON Nomad's
 * jobspec makes of the HCL body, where a block is a list of objects
 * (`mount { ... }` twice: "mount": [{...}, {...}]) and an attribute whose
 * value is an object is a one-element list (`labels = { a = "b" }`:
 * "labels": [{"a": "b"}]); API clients may send plain objects. Values are
 * converted as HCL converts them for Nomad's spec (a number where a string
 * is wanted is its text, "true" is a bool), so what Nomad takes we take. */
#include "client/drivers/docker_config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/capability.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "client/drivers/driver.h"
#include "client/drivers/internal.h"

extern char **environ;

#define MINUTE_NS (60 * (int64_t)1000000000)
#define HUB_REGISTRY "https://index.docker.io/v1/"

/* ---- JSON values, converted as HCL converts them ---- */

/* The value under key, NULL when absent or null. */
static const json_t *cget(const json_t *o, const char *key)
{
    const json_t *v = json_is_object(o) ? json_object_get(o, key) : NULL;
    return json_is_null(v) ? NULL : v;
}

/* A scalar's text (a string, a number, a bool), NULL for anything else.
 * Caller frees. */
static char *jtext(const json_t *v)
{
    char buf[64];
    if (json_is_string(v))
        return xstrdup(json_string_value(v));
    if (json_is_integer(v)) {
        snprintf(buf, sizeof(buf), "%lld", (long long)json_integer_value(v));
        return xstrdup(buf);
    }
    if (json_is_real(v)) {
        snprintf(buf, sizeof(buf), "%.15g", json_real_value(v));
        return xstrdup(buf);
    }
    if (json_is_boolean(v))
        return xstrdup(json_is_true(v) ? "true" : "false");
    return NULL;
}

static bool jbool(const json_t *v, bool *out)
{
    if (json_is_boolean(v)) {
        *out = json_is_true(v);
        return true;
    }
    if (json_is_string(v) && (nc_streq(json_string_value(v), "true") ||
                              nc_streq(json_string_value(v), "false"))) {
        *out = nc_streq(json_string_value(v), "true");
        return true;
    }
    return false;
}

/* A whole number: an integer, a real without fraction, or its text. */
static bool jint(const json_t *v, int64_t *out)
{
    if (json_is_integer(v)) {
        *out = json_integer_value(v);
        return true;
    }
    if (json_is_real(v)) {
        double d = json_real_value(v);
        if (d != floor(d) || d < -9.2e18 || d > 9.2e18)
            return false;
        *out = (int64_t)d;
        return true;
    }
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        char *end;
        errno = 0;
        long long n = strtoll(s, &end, 10);
        if (!*s || isspace((unsigned char)*s) || *end || errno)
            return false;
        *out = n;
        return true;
    }
    return false;
}

static bool has_interp(const char *s)
{
    return s && strstr(s, "${") != NULL;
}

/* A block's objects: an object is one, a list holds them. */
static size_t nblocks(const json_t *v)
{
    if (json_is_object(v))
        return 1;
    return json_is_array(v) ? json_array_size(v) : 0;
}

static const json_t *block_at(const json_t *v, size_t i)
{
    if (json_is_object(v))
        return i == 0 ? v : NULL;
    const json_t *b = json_array_get(v, i);
    return json_is_object(b) ? b : NULL;
}

/* The accessors below read a config that passed the structural check. */

static char *cstr(const json_t *o, const char *key)
{
    return jtext(cget(o, key));
}

static bool cbool(const json_t *o, const char *key)
{
    bool b = false;
    const json_t *v = cget(o, key);
    return v && jbool(v, &b) && b;
}

static int64_t cint(const json_t *o, const char *key, int64_t dflt)
{
    int64_t n;
    const json_t *v = cget(o, key);
    return v && jint(v, &n) ? n : dflt;
}

static void cstrlist(const json_t *o, const char *key, struct strlist *out)
{
    size_t i;
    const json_t *item;
    json_array_foreach(cget(o, key), i, item)
    {
        char *s = jtext(item);
        strlist_add(out, s ? s : "");
        free(s);
    }
}

/* A map of strings, its objects merged in order (list(map(string)) or
 * block attributes). */
static void cstrmap(const json_t *o, const char *key, struct kvlist *out)
{
    const json_t *v = cget(o, key);
    for (size_t i = 0; i < nblocks(v); i++) {
        const char *k;
        json_t *val;
        json_object_foreach((json_t *)block_at(v, i), k, val)
        {
            char *s = jtext(val);
            if (s)
                kv_set(out, k, s);
            free(s);
        }
    }
}

static const json_t *cblock(const json_t *o, const char *key)
{
    return block_at(cget(o, key), 0);
}

/* A deep copy with every string interpolated (keys are kept). */
static json_t *interpolate(const json_t *v, const struct kvlist *env,
                           const struct node *n, int depth)
{
    if (depth > 64)
        return json_null();
    if (json_is_string(v)) {
        char *s = alloc_interpolate(json_string_value(v), env, n);
        json_t *j = json_string(s ? s : "");
        free(s);
        return j ? j : json_string("");
    }
    if (json_is_array(v)) {
        json_t *a = json_array();
        size_t i;
        json_t *item;
        json_array_foreach((json_t *)v, i, item)
            json_array_append_new(a, interpolate(item, env, n, depth + 1));
        return a;
    }
    if (json_is_object(v)) {
        json_t *o = json_object();
        const char *k;
        json_t *val;
        json_object_foreach((json_t *)v, k, val)
            json_object_set_new(o, k, interpolate(val, env, n, depth + 1));
        return o;
    }
    return v ? json_deep_copy(v) : json_null();
}

/* ---- paths (Go's filepath.Clean, Join, and Nomad's isParentPath) ---- */

static char *path_clean(const char *p)
{
    bool rooted = p[0] == '/';
    size_t len = strlen(p);
    char **parts = xcalloc(len + 1, sizeof(*parts));
    size_t n = 0;
    char *copy = xstrdup(p);
    char *save = NULL;
    for (char *tok = strtok_r(copy, "/", &save); tok;
         tok = strtok_r(NULL, "/", &save)) {
        if (strcmp(tok, ".") == 0)
            continue;
        if (strcmp(tok, "..") == 0) {
            if (n && strcmp(parts[n - 1], "..") != 0)
                n--;
            else if (!rooted)
                parts[n++] = tok;
            continue;
        }
        parts[n++] = tok;
    }
    struct nc_buf b = {0};
    if (rooted)
        nc_buf_putc(&b, '/');
    for (size_t i = 0; i < n; i++)
        nc_buf_printf(&b, "%s%s", i ? "/" : "", parts[i]);
    if (!b.len)
        nc_buf_putc(&b, '.');
    free(parts);
    free(copy);
    return nc_buf_take(&b);
}

/* dir made absolute against base (absolute already) and cleaned. */
static char *expand_path(const char *base, const char *dir)
{
    if (dir[0] == '/')
        return path_clean(dir);
    char *j = xasprintf("%s/%s", base, dir);
    char *c = path_clean(j);
    free(j);
    return c;
}

static bool is_parent_path(const char *parent, const char *path)
{
    size_t n = strlen(parent);
    if (n > 1 && parent[n - 1] == '/')
        n--;
    return strncmp(path, parent, n) == 0 &&
           (path[n] == '\0' || path[n] == '/' || (n == 1 && parent[0] == '/'));
}

/* ---- image references (Docker's distribution/reference grammar) ---- */

static bool lower_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* alnum+ (separator alnum+)*, a separator being ".", "_", "__" or "-"+ */
static bool path_component_ok(const char *s, size_t n)
{
    size_t i = 0;
    if (n == 0 || !lower_alnum(s[0]))
        return false;
    while (i < n) {
        while (i < n && lower_alnum(s[i]))
            i++;
        if (i == n)
            return true;
        size_t j = i;
        if (s[j] == '.') {
            j++;
        } else if (s[j] == '_') {
            j++;
            if (j < n && s[j] == '_')
                j++;
        } else if (s[j] == '-') {
            while (j < n && s[j] == '-')
                j++;
        } else {
            return false;
        }
        if (j == n || !lower_alnum(s[j]))
            return false;
        i = j;
    }
    return true;
}

/* host components ([a-zA-Z0-9] or with inner '-') joined by '.', and an
 * optional ":port" */
static bool domain_ok(const char *s, size_t n)
{
    const char *colon = memchr(s, ':', n);
    size_t hn = colon ? (size_t)(colon - s) : n;
    if (colon) {
        size_t pn = n - hn - 1;
        if (pn == 0)
            return false;
        for (size_t i = hn + 1; i < n; i++)
            if (!isdigit((unsigned char)s[i]))
                return false;
    }
    size_t start = 0;
    for (size_t i = 0; i <= hn; i++) {
        if (i < hn && s[i] != '.')
            continue;
        size_t len = i - start;
        if (len == 0 || !isalnum((unsigned char)s[start]) ||
            !isalnum((unsigned char)s[i - 1]))
            return false;
        for (size_t k = start; k < i; k++)
            if (!isalnum((unsigned char)s[k]) && s[k] != '-')
                return false;
        start = i + 1;
    }
    return true;
}

static bool word_char(char c)
{
    return isalnum((unsigned char)c) || c == '_';
}

static bool tag_ok(const char *s, size_t n)
{
    if (n == 0 || n > 128 || !word_char(s[0]))
        return false;
    for (size_t i = 1; i < n; i++)
        if (!word_char(s[i]) && s[i] != '.' && s[i] != '-')
            return false;
    return true;
}

/* algo ":" hex, algo components [A-Za-z][A-Za-z0-9]* joined by [+._-] */
static bool digest_ok(const char *s)
{
    const char *colon = strchr(s, ':');
    if (!colon || colon == s)
        return false;
    bool start = true;
    for (const char *p = s; p < colon; p++) {
        if (start) {
            if (!isalpha((unsigned char)*p))
                return false;
            start = false;
        } else if (strchr("+._-", *p)) {
            start = true;
        } else if (!isalnum((unsigned char)*p)) {
            return false;
        }
    }
    if (start)
        return false;
    size_t hex = strlen(colon + 1);
    for (const char *p = colon + 1; *p; p++)
        if (!isxdigit((unsigned char)*p))
            return false;
    if (hex < 32)
        return false;
    if ((size_t)(colon - s) == 6 && strncmp(s, "sha256", 6) == 0 && hex != 64)
        return false;
    return true;
}

/* Where the domain ends in name (0: none), by Docker's splitDockerDomain. */
static size_t domain_len(const char *name)
{
    const char *slash = strchr(name, '/');
    if (!slash)
        return 0;
    size_t n = (size_t)(slash - name);
    bool dot_colon = memchr(name, '.', n) || memchr(name, ':', n);
    bool upper = false;
    for (size_t i = 0; i < n; i++)
        upper |= isupper((unsigned char)name[i]) != 0;
    if (dot_colon || upper || (n == 9 && strncmp(name, "localhost", 9) == 0))
        return n;
    return 0;
}

int docker_parse_image(const char *ref, char **repo, char **tag, char **digest,
                       struct nc_error *err)
{
    if (repo)
        *repo = NULL;
    if (tag)
        *tag = NULL;
    if (digest)
        *digest = NULL;
    const char *orig = ref ? ref : "";
    const char *s = nc_str_has_prefix(orig, "https://") ? orig + 8 : orig;
    const char *at = strchr(s, '@');
    size_t name_end = at ? (size_t)(at - s) : strlen(s);
    const char *why = NULL;
    /* the tag is after the last ':' that follows the last '/' */
    const char *tag_start = NULL;
    for (size_t i = name_end; i-- > 0;) {
        if (s[i] == '/')
            break;
        if (s[i] == ':') {
            tag_start = s + i + 1;
            break;
        }
    }
    size_t nlen = tag_start ? (size_t)(tag_start - 1 - s) : name_end;
    char *name = xstrndup(s, nlen);
    bool ok =
        nlen > 0 && (!at || (!strchr(at + 1, '@') && digest_ok(at + 1))) &&
        (!tag_start || tag_ok(tag_start, (size_t)(s + name_end - tag_start)));
    size_t dl = ok ? domain_len(name) : 0;
    if (ok && dl && !domain_ok(name, dl))
        ok = false;
    if (ok) {
        /* the path: components after the domain */
        const char *p = name + (dl ? dl + 1 : 0);
        bool lower_ok = true, any_upper = false;
        for (const char *c = p;; c++) {
            const char *e = strchr(c, '/');
            size_t len = e ? (size_t)(e - c) : strlen(c);
            char *low = xstrndup(c, len);
            for (char *q = low; *q; q++) {
                any_upper |= isupper((unsigned char)*q) != 0;
                *q = (char)tolower((unsigned char)*q);
            }
            if (!path_component_ok(c, len))
                ok = false;
            if (!path_component_ok(low, len))
                lower_ok = false;
            free(low);
            if (!e)
                break;
            c = e;
        }
        if (!ok && lower_ok && any_upper)
            why = "repository name must be lowercase";
        if (ok && nlen > 255) {
            ok = false;
            why = "repository name must not be more than 255 characters";
        }
    }
    if (!ok) {
        free(name);
        if (why)
            return nc_error_set(err, -EINVAL,
                                "invalid reference format: \"%s\" (%s)", orig,
                                why);
        return nc_error_set(err, -EINVAL, "invalid reference format: \"%s\"",
                            orig);
    }
    if (tag)
        *tag = tag_start
                   ? xstrndup(tag_start, (size_t)(s + name_end - tag_start))
               : at ? NULL
                    : xstrdup("latest");
    if (digest)
        *digest = at ? xstrdup(at + 1) : NULL;
    if (repo)
        *repo = name;
    else
        free(name);
    return 0;
}

char *docker_image_with_tag(const char *ref)
{
    const char *s = ref ? ref : "";
    if (nc_str_has_prefix(s, "https://"))
        s += 8;
    char *repo = NULL, *tag = NULL, *digest = NULL;
    if (docker_parse_image(s, &repo, &tag, &digest, NULL) < 0)
        return xstrdup(s);
    char *out = digest                          ? xstrdup(s)
                : strchr(s + strlen(repo), ':') ? xstrdup(s)
                                                : xasprintf("%s:latest", s);
    free(repo);
    free(tag);
    free(digest);
    return out;
}

char *docker_registry_of(const char *repo)
{
    const char *s = repo ? repo : "";
    if (nc_str_has_prefix(s, "https://"))
        s += 8;
    size_t n = domain_len(s);
    if (!n || (n == 9 && strncmp(s, "docker.io", 9) == 0) ||
        (n == 15 && strncmp(s, "index.docker.io", 15) == 0) ||
        (n == 20 && strncmp(s, "registry-1.docker.io", 20) == 0))
        return xstrdup(HUB_REGISTRY);
    return xstrndup(s, n);
}

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
static int caps_delta(const struct strlist *allow, const struct strlist *add,
                      const struct strlist *drop, json_t *cap_add,
                      json_t *cap_drop, char *msg, size_t len)
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
static int parse_ulimit(const char *name, const char *raw, int64_t *soft,
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
static int split_security_opt(const char *opt, char **name, char **value)
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
static int validate_config(const struct agent_config *cfg, const json_t *config,
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

static json_t *strlist_json(const struct strlist *l)
{
    json_t *a = json_array();
    for (size_t i = 0; i < l->n; i++)
        json_array_append_new(a, json_string(l->items[i]));
    return a;
}

static json_t *kv_json(const struct kvlist *l)
{
    json_t *o = json_object();
    for (size_t i = 0; i < l->n; i++)
        json_object_set_new(o, l->items[i].key, json_string(l->items[i].value));
    return o;
}

/* A list option into obj[field] when the config has one. */
static void put_list(json_t *obj, const char *field, const json_t *config,
                     const char *key)
{
    if (!cget(config, key))
        return;
    struct strlist l = {0};
    cstrlist(config, key, &l);
    json_object_set_new(obj, field, strlist_json(&l));
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
                                      kv_json(&labels), "DriverConfig", "Name",
                                      dname ? dname : "", "Options",
                                      kv_json(&opts)));
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
        json_object_set_new(b->host, "Dns", strlist_json(&servers));
    if (search.n)
        json_object_set_new(b->host, "DnsSearch", strlist_json(&search));
    if (opts.n)
        json_object_set_new(b->host, "DnsOptions", strlist_json(&opts));
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
    json_object_set_new(b->root, "Labels", kv_json(&labels));
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
                                  "Config", kv_json(&conf)));
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
        json_object_set_new(b->host, "SecurityOpt", strlist_json(&out));
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
        json_object_set_new(h, "Sysctls", kv_json(&m));
    kv_free(&m);
    cstrmap(config, "storage_opt", &m);
    if (m.n)
        json_object_set_new(h, "StorageOpt", kv_json(&m));
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
        json_object_set_new(root, "Cmd", strlist_json(&args));
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
        json_object_set_new(b->host, "ExtraHosts", strlist_json(&extra));
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

/* ---- registry credentials ---- */

static const char b64std[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char b64url[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static char *base64_encode(const unsigned char *in, size_t n, const char *alpha)
{
    char *out = xmalloc(4 * ((n + 2) / 3) + 1), *o = out;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < n)
            v |= in[i + 2];
        *o++ = alpha[(v >> 18) & 63];
        *o++ = alpha[(v >> 12) & 63];
        *o++ = i + 1 < n ? alpha[(v >> 6) & 63] : '=';
        *o++ = i + 2 < n ? alpha[v & 63] : '=';
    }
    *o = '\0';
    return out;
}

/* Standard or URL-safe base64, padding optional; NULL when malformed. */
static char *base64_decode(const char *in, size_t *outlen)
{
    size_t n = strlen(in);
    unsigned char *out = xmalloc(n / 4 * 3 + 4);
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        char ch = in[i];
        if (ch == '=')
            break;
        const char *p = strchr(b64std, ch);
        if (!p || !ch) {
            p = strchr(b64url, ch);
            if (!p || !ch) {
                free(out);
                return NULL;
            }
            p = b64std + (p - b64url);
        }
        acc = (acc << 6) | (uint32_t)(p - b64std);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)((acc >> bits) & 0xff);
        }
    }
    out[o] = '\0';
    *outlen = o;
    return (char *)out;
}

void docker_auth_free(struct docker_auth *a)
{
    if (!a)
        return;
    free(a->username);
    free(a->password);
    free(a->email);
    free(a->server);
    memset(a, 0, sizeof(*a));
}

static bool auth_empty(const struct docker_auth *a)
{
    return !(a->username && *a->username) && !(a->password && *a->password) &&
           !(a->email && *a->email) && !(a->server && *a->server);
}

char *docker_auth_header(const struct docker_auth *a)
{
    json_t *j = json_pack("{s:s, s:s, s:s, s:s}", "username",
                          a && a->username ? a->username : "", "password",
                          a && a->password ? a->password : "", "email",
                          a && a->email ? a->email : "", "serveraddress",
                          a && a->server ? a->server : "");
    char *txt = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    char *out = base64_encode((const unsigned char *)(txt ? txt : "{}"),
                              strlen(txt ? txt : "{}"), b64url);
    free(txt);
    return out;
}

/* Docker's ConvertToHostname: no scheme, nothing after the host. */
static char *to_hostname(const char *url)
{
    const char *s = url;
    if (nc_str_has_prefix(s, "http://"))
        s += 7;
    else if (nc_str_has_prefix(s, "https://"))
        s += 8;
    return xstrndup(s, strcspn(s, "/"));
}

#define HELPER_TIMEOUT_MS 10000
#define HELPER_OUTPUT_MAX 65536

/* Runs docker-credential-<helper> get with input on stdin; its stdout
 * into *out. Blocking, at most HELPER_TIMEOUT_MS. */
static int run_helper(const char *helper, const char *input, char **out,
                      struct nc_error *err)
{
    *out = NULL;
    if (!*helper || helper[strspn(helper, "abcdefghijklmnopqrstuvwxyz"
                                          "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                          "0123456789._-")])
        return nc_error_set(err, -EINVAL,
                            "\"%s\" is not a credential helper name", helper);
    char *prog = xasprintf("docker-credential-%s", helper);
    int in[2] = {-1, -1}, so[2] = {-1, -1}, se[2] = {-1, -1};
    int r = 0;
    pid_t pid = -1;
    if (pipe2(in, O_CLOEXEC) < 0 || pipe2(so, O_CLOEXEC) < 0 ||
        pipe2(se, O_CLOEXEC) < 0) {
        r = nc_error_set(err, -errno, "%s: pipe: %s", prog, strerror(errno));
        goto out;
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    posix_spawn_file_actions_adddup2(&fa, so[1], 1);
    posix_spawn_file_actions_adddup2(&fa, se[1], 2);
    char *argv[] = {prog, "get", NULL};
    int e = posix_spawnp(&pid, prog, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(in[0]);
    close(so[1]);
    close(se[1]);
    in[0] = so[1] = se[1] = -1;
    if (e != 0) {
        pid = -1;
        r = nc_error_set(
            err, -e,
            e == ENOENT ? "exec: \"%s\": executable file not found in $PATH"
                        : "exec: \"%s\": %s",
            prog, strerror(e));
        goto out;
    }
    /* the registry name is short: it fits the pipe at once */
    if (write(in[1], input, strlen(input)) < 0) {
        /* the helper may have gone already; its exit says why */
    }
    close(in[1]);
    in[1] = -1;
    struct nc_buf ob = {0}, eb = {0};
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    /* the exit is awaited within the deadline too (a helper that closes
     * its output and lingers), through a pidfd where the kernel has them */
    int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    bool timed_out = false, exited = false;
    while (so[0] >= 0 || se[0] >= 0 || (pidfd >= 0 && !exited)) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        long spent = (now.tv_sec - t0.tv_sec) * 1000 +
                     (now.tv_nsec - t0.tv_nsec) / 1000000;
        if (spent >= HELPER_TIMEOUT_MS) {
            timed_out = true;
            break;
        }
        /* poll skips negative fds */
        struct pollfd pf[3] = {{so[0], POLLIN, 0},
                               {se[0], POLLIN, 0},
                               {exited ? -1 : pidfd, POLLIN, 0}};
        int pr = poll(pf, 3, (int)(HELPER_TIMEOUT_MS - spent));
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr < 0) {
            timed_out = true; /* cannot wait for it: end it */
            break;
        }
        if (pf[2].revents)
            exited = true;
        for (int k = 0; k < 2; k++) {
            int *fd = k == 0 ? &so[0] : &se[0];
            if (*fd < 0 || !(pf[k].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            char buf[4096];
            ssize_t got = read(*fd, buf, sizeof(buf));
            if (got <= 0) {
                close(*fd);
                *fd = -1;
                continue;
            }
            struct nc_buf *dst = k == 0 ? &ob : &eb;
            if (dst->len < HELPER_OUTPUT_MAX)
                nc_buf_append(dst, buf, (size_t)got);
        }
    }
    if (pidfd >= 0)
        close(pidfd);
    if (timed_out)
        kill(pid, SIGKILL);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    pid = -1;
    if (timed_out) {
        r = nc_error_set(err, -ETIMEDOUT, "%s get: no answer within %ds", prog,
                         HELPER_TIMEOUT_MS / 1000);
    } else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        /* Nomad's words */
        size_t n = eb.len;
        while (n && isspace((unsigned char)eb.data[n - 1]))
            n--;
        r = nc_error_set(err, -EIO,
                         "%s with input \"%s\" failed with stderr: %.*s", prog,
                         input, (int)n, eb.data ? eb.data : "");
    } else {
        nc_buf_puts(&ob, "");
        *out = nc_buf_take(&ob);
    }
    nc_buf_free(&ob);
    nc_buf_free(&eb);
out:
    for (int k = 0; k < 2; k++) {
        if (in[k] >= 0)
            close(in[k]);
        if (so[k] >= 0)
            close(so[k]);
        if (se[k] >= 0)
            close(se[k]);
    }
    free(prog);
    return r;
}

/* A helper's answer: 1 with credentials, 0 without, -errno. */
static int auth_from_helper(const char *helper, const char *registry,
                            struct docker_auth *out, struct nc_error *err)
{
    if (!helper || !*helper)
        return 0;
    char *txt = NULL;
    int r = run_helper(helper, registry, &txt, err);
    if (r < 0)
        return r;
    json_error_t je;
    json_t *j = json_loads(txt, 0, &je);
    free(txt);
    if (!json_is_object(j)) {
        json_decref(j);
        return nc_error_set(err, -EINVAL,
                            "docker-credential-%s: the answer is not a JSON "
                            "object: %s",
                            helper, je.text);
    }
    const char *u = json_string_value(json_object_get(j, "Username"));
    const char *p = json_string_value(json_object_get(j, "Secret"));
    if ((u && *u) || (p && *p)) {
        out->username = xstrdup(u ? u : "");
        out->password = xstrdup(p ? p : "");
        out->server = xstrdup(registry);
        r = 1;
    }
    json_decref(j);
    return r;
}

/* The auth config file: "auths" (exact key, else legacy keys as hosts;
 * Docker Hub only exactly), then "credHelpers", then "credsStore". */
static int auth_from_file(const char *file, const char *registry,
                          struct docker_auth *out, struct nc_error *err)
{
    size_t len;
    char *txt = nc_read_file(file, &len, 1 << 20);
    if (!txt)
        return nc_error_set(err, -(errno ? errno : EIO),
                            "Failed to open auth config file: %s, error: %s",
                            file, strerror(errno ? errno : EIO));
    json_error_t je;
    json_t *root = json_loadb(txt, len, 0, &je);
    free(txt);
    if (!json_is_object(root)) {
        json_decref(root);
        return nc_error_set(err, -EINVAL,
                            "Failed to parse auth config file: %s: %s", file,
                            root ? "not a JSON object" : je.text);
    }
    int r = 0;
    const json_t *auths = json_object_get(root, "auths");
    const json_t *entry = json_object_get(auths, registry);
    char *key = xstrdup(registry);
    if (!json_is_object(entry) && strcmp(registry, HUB_REGISTRY) != 0) {
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)auths, k, v)
        {
            char *host = to_hostname(k);
            bool same = strcmp(host, registry) == 0;
            free(host);
            if (same && json_is_object(v)) {
                entry = v;
                free(key);
                key = xstrdup(k);
                break;
            }
        }
    }
    if (json_is_object(entry)) {
        struct docker_auth a = {0};
        const char *b64 = json_string_value(json_object_get(entry, "auth"));
        a.username =
            xstrdup(json_string_value(json_object_get(entry, "username")));
        a.password =
            xstrdup(json_string_value(json_object_get(entry, "password")));
        a.email = xstrdup(json_string_value(json_object_get(entry, "email")));
        if (b64 && *b64) {
            size_t n;
            char *dec = base64_decode(b64, &n);
            char *colon = dec ? memchr(dec, ':', n) : NULL;
            if (!colon) {
                free(dec);
                docker_auth_free(&a);
                free(key);
                json_decref(root);
                return nc_error_set(err, -EINVAL,
                                    "Failed to parse auth config file: %s: "
                                    "invalid auth configuration for \"%s\"",
                                    file, registry);
            }
            *colon = '\0';
            free(a.username);
            free(a.password);
            a.username = xstrdup(dec);
            a.password = xstrdup(colon + 1);
            free(dec);
        }
        if (!auth_empty(&a)) {
            a.server = xstrdup(key);
            *out = a;
            r = 1;
        } else {
            docker_auth_free(&a);
        }
    }
    free(key);
    if (r == 0) {
        const char *h = json_string_value(
            json_object_get(json_object_get(root, "credHelpers"), registry));
        r = auth_from_helper(h, registry, out, err);
    }
    if (r == 0)
        r = auth_from_helper(
            json_string_value(json_object_get(root, "credsStore")), registry,
            out, err);
    json_decref(root);
    return r;
}

int docker_auth_lookup(const struct agent_config *cfg, const struct task *spec,
                       const char *repo, struct docker_auth *out,
                       struct nc_error *err)
{
    memset(out, 0, sizeof(*out));
    const json_t *ab = spec ? cblock(spec->config, "auth") : NULL;
    if (ab) {
        out->username = cstr(ab, "username");
        out->password = cstr(ab, "password");
        out->email = cstr(ab, "email");
        out->server = cstr(ab, "server_address");
        if (!auth_empty(out))
            return 1;
        docker_auth_free(out);
    }
    if (!cfg)
        return 0;
    const struct docker_plugin_config *pc = &cfg->client.docker;
    char *registry = docker_registry_of(repo);
    int r = 0;
    if (pc->auth.config && *pc->auth.config)
        r = auth_from_file(pc->auth.config, registry, out, err);
    if (r == 0)
        r = auth_from_helper(pc->auth.helper, registry, out, err);
    free(registry);
    if (r <= 0)
        docker_auth_free(out);
    return r;
}

/* ---- the plugin config ---- */

#define DCFG(m) offsetof(struct agent_config, client.docker.m)

static int check_endpoint(const char *v, char *msg, size_t len)
{
    static const char *const schemes[] = {"unix://", "tcp://", "http://",
                                          "https://"};
    for (size_t i = 0; i < NC_ARRAY_LEN(schemes); i++)
        if (nc_str_has_prefix(v, schemes[i]) && v[strlen(schemes[i])])
            return 0;
    snprintf(msg, len,
             "\"%s\" is not a Docker endpoint (unix:///path/to/docker.sock or "
             "tcp://host:port)",
             v);
    return -EINVAL;
}

static int check_helper(const char *v, char *msg, size_t len)
{
    if (!v[strspn(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                     "0123456789._-")])
        return 0;
    snprintf(msg, len,
             "\"%s\" is not a credential helper name (docker-credential-<name> "
             "is run)",
             v);
    return -EINVAL;
}

static int check_cap(const char *name, char *msg, size_t len)
{
    uint64_t mask = 0;
    if (caps_parse(name, &mask) == 0)
        return 0;
    snprintf(msg, len,
             "unknown capability \"%s\" (names as in capabilities(7), with or "
             "without CAP_, or \"all\")",
             name);
    return -EINVAL;
}

static int check_image(const char *ref, char *msg, size_t len)
{
    struct nc_error e = {0};
    if (docker_parse_image(ref, NULL, NULL, NULL, &e) == 0)
        return 0;
    snprintf(msg, len, "%s", e.msg);
    return -EINVAL;
}

static int check_duration_at_least(const char *what, const char *v, int64_t min,
                                   char *msg, size_t len)
{
    int64_t ns = 0;
    if (nc_parse_duration(v, &ns) < 0 || ns >= min)
        return 0; /* a bad duration is the decoder's to report */
    char m[32];
    nc_format_duration(min, m, sizeof(m));
    snprintf(msg, len, "%s is less than minimum, %s", what, m);
    return -EINVAL;
}

static int check_nonnegative(const char *v, char *msg, size_t len)
{
    int64_t ns = 0;
    if (nc_parse_duration(v, &ns) == 0 && ns < 0) {
        snprintf(msg, len, "must not be negative");
        return -EINVAL;
    }
    return 0;
}

static int check_creation_grace(const char *v, char *msg, size_t len)
{
    return check_duration_at_least("creation_grace", v, MINUTE_NS, msg, len);
}

static int check_pull_activity(const char *v, char *msg, size_t len)
{
    return check_duration_at_least("pull_activity_timeout", v, MINUTE_NS, msg,
                                   len);
}

/* clang-format off */
const struct config_key docker_plugin_keys[] = {
    {"endpoint", CONFIG_KEY_STRING, DCFG(endpoint), check_endpoint},
    {"auth.config", CONFIG_KEY_STRING, DCFG(auth.config), NULL},
    {"auth.helper", CONFIG_KEY_STRING, DCFG(auth.helper), check_helper},
    {"tls.cert", CONFIG_KEY_STRING, DCFG(tls.cert), NULL},
    {"tls.key", CONFIG_KEY_STRING, DCFG(tls.key), NULL},
    {"tls.ca", CONFIG_KEY_STRING, DCFG(tls.ca), NULL},
    {"gc.image", CONFIG_KEY_BOOL, DCFG(gc.image), NULL},
    {"gc.image_delay", CONFIG_KEY_DURATION, DCFG(gc.image_delay_ns),
     check_nonnegative},
    {"gc.container", CONFIG_KEY_BOOL, DCFG(gc.container), NULL},
    {"gc.dangling_containers.enabled", CONFIG_KEY_BOOL,
     DCFG(gc.dangling_containers.enabled), NULL},
    {"gc.dangling_containers.period", CONFIG_KEY_DURATION,
     DCFG(gc.dangling_containers.period_ns), check_nonnegative},
    {"gc.dangling_containers.creation_grace", CONFIG_KEY_DURATION,
     DCFG(gc.dangling_containers.creation_grace_ns), check_creation_grace},
    {"gc.dangling_containers.dry_run", CONFIG_KEY_BOOL,
     DCFG(gc.dangling_containers.dry_run), NULL},
    {"volumes.enabled", CONFIG_KEY_BOOL, DCFG(volumes.enabled), NULL},
    {"volumes.selinuxlabel", CONFIG_KEY_STRING, DCFG(volumes.selinuxlabel),
     NULL},
    {"allow_privileged", CONFIG_KEY_BOOL, DCFG(allow_privileged), NULL},
    {"allow_caps", CONFIG_KEY_STRLIST, DCFG(allow_caps), check_cap},
    {"nvidia_runtime", CONFIG_KEY_STRING, DCFG(nvidia_runtime), NULL},
    {"allow_runtimes", CONFIG_KEY_STRLIST, DCFG(allow_runtimes), NULL},
    {"infra_image", CONFIG_KEY_STRING, DCFG(infra_image), check_image},
    {"infra_image_pull_timeout", CONFIG_KEY_DURATION,
     DCFG(infra_image_pull_timeout_ns), check_nonnegative},
    {"pull_activity_timeout", CONFIG_KEY_DURATION,
     DCFG(pull_activity_timeout_ns), check_pull_activity},
    {"pids_limit", CONFIG_KEY_INT, DCFG(pids_limit), NULL},
    {"disable_log_collection", CONFIG_KEY_BOOL, DCFG(disable_log_collection),
     NULL},
    {"extra_labels", CONFIG_KEY_STRLIST, DCFG(extra_labels), NULL},
    {"logging.type", CONFIG_KEY_STRING, DCFG(logging.type), NULL},
    {"logging.config", CONFIG_KEY_STRMAP, DCFG(logging.config), NULL},
};
/* clang-format on */
const size_t docker_nplugin_keys = NC_ARRAY_LEN(docker_plugin_keys);

static void set_str(char **dst, const char *s)
{
    free(*dst);
    *dst = xstrdup(s);
}

void docker_config_defaults(struct agent_config *cfg, bool dev)
{
    struct docker_plugin_config *d = &cfg->client.docker;
    (void)dev; /* `nomad agent -dev` keeps the docker defaults too */
    set_str(&d->endpoint, "unix:///var/run/docker.sock");
    d->gc.image = true;
    d->gc.image_delay_ns = 3 * MINUTE_NS;
    d->gc.container = true;
    d->gc.dangling_containers.enabled = true;
    d->gc.dangling_containers.period_ns = 5 * MINUTE_NS;
    d->gc.dangling_containers.creation_grace_ns = 5 * MINUTE_NS;
    d->gc.dangling_containers.dry_run = false;
    d->volumes.enabled = false;
    d->allow_privileged = false;
    strlist_free(&d->allow_caps);
    for (const char *const *cap = caps_nomad_defaults; *cap; cap++)
        strlist_add(&d->allow_caps,
                    *cap + 4); /* Nomad writes them without CAP_ */
    strlist_free(&d->allow_runtimes);
    strlist_add(&d->allow_runtimes, "runc");
    strlist_add(&d->allow_runtimes, "nvidia");
    set_str(&d->nvidia_runtime, "nvidia");
#if defined(__aarch64__)
    set_str(&d->infra_image, "gcr.io/google_containers/pause-arm64:3.1");
#else
    set_str(&d->infra_image, "gcr.io/google_containers/pause-amd64:3.1");
#endif
    d->infra_image_pull_timeout_ns = 5 * MINUTE_NS;
    d->pull_activity_timeout_ns = 2 * MINUTE_NS;
    d->pids_limit = 0;
    d->disable_log_collection = false;
}

/* ---- the table entry while the Engine side is not linked in ---- */

/* client/drivers/docker.c defines driver_docker (a strong definition,
 * which the linker takes over this one): until then, and in tests that
 * link only this half, the docker driver's config keys, defaults and
 * submission checks work, and the node lists docker as undetected so
 * placement says "missing drivers" as Nomad would. */
static void placeholder_fingerprint(const struct driver *d,
                                    const struct agent_config *cfg,
                                    struct node *n)
{
    node_add_driver(n, d->name, false, false, "not supported by nomclient");
}

__attribute__((weak)) const struct driver driver_docker = {
    .name = "docker",
    .fingerprint = placeholder_fingerprint,
    .config_defaults = docker_config_defaults,
    .plugin_keys = docker_plugin_keys,
    .nplugin_keys = NC_ARRAY_LEN(docker_plugin_keys),
    .validate = docker_validate,
};
