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
 * is wanted is its text, "true" is a bool), so what Nomad takes we take.
 *
 * This file: those conversions and the path helpers (shared through
 * docker_config_internal.h), the plugin config's keys and defaults, and the
 * placeholder table entry. Image references are in docker_image_ref.c, the
 * submission check in docker_validate.c, the create body in docker_body.c,
 * registry credentials in docker_auth.c. */
#include "client/drivers/docker_config_internal.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/drivers/driver.h"
#include "client/drivers/internal.h"

/* ---- JSON values, converted as HCL converts them ---- */

/* The value under key, NULL when absent or null. */
const json_t *cget(const json_t *o, const char *key)
{
    const json_t *v = json_is_object(o) ? json_object_get(o, key) : NULL;
    return json_is_null(v) ? NULL : v;
}

/* A scalar's text (a string, a number, a bool), NULL for anything else.
 * Caller frees. */
char *jtext(const json_t *v)
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

bool jbool(const json_t *v, bool *out)
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
bool jint(const json_t *v, int64_t *out)
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

bool has_interp(const char *s)
{
    return s && strstr(s, "${") != NULL;
}

/* A block's objects: an object is one, a list holds them. */
size_t nblocks(const json_t *v)
{
    if (json_is_object(v))
        return 1;
    return json_is_array(v) ? json_array_size(v) : 0;
}

const json_t *block_at(const json_t *v, size_t i)
{
    if (json_is_object(v))
        return i == 0 ? v : NULL;
    const json_t *b = json_array_get(v, i);
    return json_is_object(b) ? b : NULL;
}

/* The accessors below read a config that passed the structural check. */

char *cstr(const json_t *o, const char *key)
{
    return jtext(cget(o, key));
}

bool cbool(const json_t *o, const char *key)
{
    bool b = false;
    const json_t *v = cget(o, key);
    return v && jbool(v, &b) && b;
}

int64_t cint(const json_t *o, const char *key, int64_t dflt)
{
    int64_t n;
    const json_t *v = cget(o, key);
    return v && jint(v, &n) ? n : dflt;
}

void cstrlist(const json_t *o, const char *key, struct strlist *out)
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
void cstrmap(const json_t *o, const char *key, struct kvlist *out)
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

const json_t *cblock(const json_t *o, const char *key)
{
    return block_at(cget(o, key), 0);
}

/* A deep copy with every string interpolated (keys are kept). */
json_t *interpolate(const json_t *v, const struct kvlist *env,
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

char *path_clean(const char *p)
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
char *expand_path(const char *base, const char *dir)
{
    if (dir[0] == '/')
        return path_clean(dir);
    char *j = xasprintf("%s/%s", base, dir);
    char *c = path_clean(j);
    free(j);
    return c;
}

bool is_parent_path(const char *parent, const char *path)
{
    size_t n = strlen(parent);
    if (n > 1 && parent[n - 1] == '/')
        n--;
    return strncmp(path, parent, n) == 0 &&
           (path[n] == '\0' || path[n] == '/' || (n == 1 && parent[0] == '/'));
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
    {"allow_caps", CONFIG_KEY_STRLIST, DCFG(allow_caps), caps_check_name},
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
