/* config_decode.c - the decoder the schema drives (config_schema.c): values,
 * string maps, blocks and labeled blocks from an HCL body or an object value,
 * and the handlers of host_volume and plugin blocks.
 *
 * It is strict the way Nomad's is: an unknown name or a wrong type is an
 * error naming file:line:col and the path to the item. JSON values have no
 * position, so errors in JSON files name the file and the path but no
 * line:col. */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/config.h"
#include "client/config_internal.h"

#include "client/drivers/driver.h"
#include "client/hcl/hcl.h"

struct config_decoder {
    struct agent_config *cfg;
    const char *filename;
    struct nc_error *err;
    struct nc_buf path;          /* "client > host_volume \"data\"" */
    struct strlist volumes_seen; /* host volumes defined in this file */
};

/* ---- errors ---- */

static int hfail(struct config_decoder *c, struct hcl_pos pos, const char *leaf,
                 const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* "file:line:col: path[ > leaf]: message" (JSON values: no line:col) */
static int hfail(struct config_decoder *c, struct hcl_pos pos, const char *leaf,
                 const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = hcl_vfail(c->err, c->filename, pos, c->path.data, leaf, fmt, ap);
    va_end(ap);
    return r;
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
                 hcl_kind_name(v->kind));
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

void config_set_str(char **dst, const char *s)
{
    char *copy = xstrdup(s);
    free(*dst);
    *dst = copy;
}

/* "https://host:port" and "http://host:port" become "host:port", the
 * former turning ssl on; "unix:///path" is kept as it is. */
void config_consul_set_address(struct agent_config *cfg, const char *addr,
                               bool set_ssl)
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
    case F_STRING: {
        char msg[300];
        if (v->kind != HCL_STRING)
            return type_error(c, v, leaf, "a string");
        if (f->check && f->check(v->str ? v->str : "", msg, sizeof(msg)) < 0)
            return hfail(c, v->pos, leaf, "%s", msg);
        if (dst)
            config_set_str(dst, v->str ? v->str : "");
        break;
    }
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
        if (dst)
            *(double *)dst = v->number;
        break;
    case F_DURATION: {
        int64_t ns;
        if (v->kind == HCL_NUMBER && v->is_integer) {
            char text[64], msg[300];
            nc_format_duration(v->integer, text, sizeof(text));
            if (f->check && f->check(text, msg, sizeof(msg)) < 0)
                return hfail(c, v->pos, leaf, "%s", msg);
            if (dst) /* nanoseconds, as Go's time.Duration decodes */
                *(int64_t *)dst = v->integer;
            break;
        }
        if (v->kind != HCL_STRING)
            return type_error(c, v, leaf, "a duration");
        if (nc_parse_duration(v->str ? v->str : "", &ns) < 0)
            return hfail(c, v->pos, leaf,
                         "\"%s\" is not a duration (like \"30s\" or \"5m\")",
                         v->str ? v->str : "");
        char msg[300];
        if (f->check && f->check(v->str, msg, sizeof(msg)) < 0)
            return hfail(c, v->pos, leaf, "%s", msg);
        if (dst)
            *(int64_t *)dst = ns;
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
                             hcl_kind_name(v->items[i]->kind));
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

int config_decode_host_volume(struct config_decoder *c, const char *label,
                              struct hcl_pos pos, const struct config_src *s)
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
    int r = decode_src(c, &config_host_volume_schema, vol, s);
    path_pop(c, mark);
    return r;
}

/* ---- plugin keys ---- */

static enum config_field_kind plugin_field_kind(enum config_key_kind k)
{
    switch (k) {
    case CONFIG_KEY_BOOL:
    case CONFIG_KEY_IGNORED_BOOL:
        return F_BOOL;
    case CONFIG_KEY_STRLIST:
        return F_STRLIST;
    case CONFIG_KEY_INT:
        return F_INT;
    case CONFIG_KEY_DURATION:
        return F_DURATION;
    case CONFIG_KEY_STRMAP:
        return F_STRMAP;
    case CONFIG_KEY_STRING:
    case CONFIG_KEY_IGNORED_STRING:
        break;
    }
    return F_STRING;
}

static void plugin_schema_free(struct config_schema *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++)
        if (s->fields[i].kind == F_BLOCK) {
            free((char *)s->fields[i].name); /* block names are owned */
            plugin_schema_free((struct config_schema *)s->fields[i].sub);
        }
    free((struct config_field *)s->fields);
    free(s);
}

/* The body of the driver's keys that start with `prefix` ("" for config
 * itself, "gc." for gc { ... }): a leaf for each name without a further
 * dot, a block for each first segment of the others. */
static struct config_schema *plugin_schema(const struct config_key *keys,
                                           size_t n, const char *prefix)
{
    size_t plen = strlen(prefix), nf = 0;
    struct config_field *f = xcalloc(n + 1, sizeof(*f));
    for (size_t i = 0; i < n; i++) {
        const struct config_key *k = &keys[i];
        if (strncmp(k->name, prefix, plen) != 0)
            continue;
        const char *rest = k->name + plen, *dot = strchr(rest, '.');
        if (!dot) {
            bool ignored = k->kind == CONFIG_KEY_IGNORED_BOOL ||
                           k->kind == CONFIG_KEY_IGNORED_STRING;
            f[nf++] = (struct config_field){
                .name = rest,
                .kind = plugin_field_kind(k->kind),
                .off = ignored ? NOFF : k->offset,
                .check = k->check,
            };
            continue;
        }
        size_t blen = (size_t)(dot - rest);
        bool seen = false;
        for (size_t q = 0; q < nf && !seen; q++)
            seen = f[q].kind == F_BLOCK && strlen(f[q].name) == blen &&
                   strncmp(f[q].name, rest, blen) == 0;
        if (seen)
            continue;
        char *sub = xasprintf("%s%.*s.", prefix, (int)blen, rest);
        f[nf++] = (struct config_field){
            .name = xstrndup(rest, blen),
            .kind = F_BLOCK,
            .off = NOFF,
            .sub = plugin_schema(keys, n, sub),
        };
        free(sub);
    }
    struct config_schema *s = xcalloc(1, sizeof(*s));
    *s = (struct config_schema){f, nf, false, NULL};
    return s;
}

int config_decode_plugin(struct config_decoder *c, const char *label,
                         struct hcl_pos pos, const struct config_src *s)
{
    /* a driver of this node declares its keys; other plugins' config is
     * theirs to know */
    const struct driver *d = driver_find(label);
    size_t n = d && d->plugin_keys ? d->nplugin_keys : 0;
    struct config_schema *config_s =
        n ? plugin_schema(d->plugin_keys, n, "") : NULL;
    struct config_field plugin_f[] = {
        BLOCK("config", config_s),
        IGNORED("args", F_STRLIST),
    };
    struct config_schema plugin_s = {plugin_f, NC_ARRAY_LEN(plugin_f), false,
                                     NULL};
    size_t mark = path_push(c, "plugin \"%s\"", label);
    int r =
        decode_src(c, n ? &plugin_s : &config_plugin_other_schema, c->cfg, s);
    path_pop(c, mark);
    plugin_schema_free(config_s);
    return r;
}

int config_decode_file(struct agent_config *cfg, const char *filename,
                       const struct config_src *src, struct nc_error *err)
{
    struct config_decoder c = {.cfg = cfg, .filename = filename, .err = err};
    int r = decode_src(&c, &config_top_schema, cfg, src);
    nc_buf_free(&c.path);
    strlist_free(&c.volumes_seen);
    return r;
}
