/* catalog.c - see client/services/services.h.
 *
 * The entries are kept sorted by ID, as the desired state is, so an update
 * is one merge of two sorted lists. A registration that cannot be served
 * (no address, or an address Nomad's servers refuse) is kept as rejected,
 * with the reason, for the debugging view. */
#include "client/services/services.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct cat_entry {
    char *id;
    char *name, *namespace_;
    json_t *reg;    /* ServiceRegistration without indexes and health */
    json_t *checks; /* [{"ID", "Name", "Type", "Status", "Output"}] */
    const char *health;
    char *error; /* rejected: why; NULL when served */
    uint64_t create_index, modify_index;
    int64_t since; /* unix ns: registered, changed, or rejected */
};

struct catalog {
    const struct node *node;
    bool all;
    struct cat_entry *entries;
    size_t n, cap;
    uint64_t index;
};

struct catalog *catalog_new(const struct node *node, bool all_providers)
{
    struct catalog *c = xcalloc(1, sizeof(*c));
    c->node = node;
    c->all = all_providers;
    return c;
}

static void entry_free(struct cat_entry *e)
{
    free(e->id);
    free(e->name);
    free(e->namespace_);
    json_decref(e->reg);
    json_decref(e->checks);
    free(e->error);
}

void catalog_free(struct catalog *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n; i++)
        entry_free(&c->entries[i]);
    free(c->entries);
    free(c);
}

bool catalog_serves(const struct catalog *c, const struct svc_reg *r)
{
    return c->all || nc_streq(r->provider, "nomad");
}

/* Nomad's servers refuse an unspecified address (ServiceRegistration
 * .Validate); a registration without one cannot be reached at all. */
static char *refusal(const struct svc_reg *r)
{
    if (r->error)
        return xstrdup(r->error);
    if (!r->address || !*r->address)
        return xstrdup("no address to register");
    if (strcmp(r->address, "0.0.0.0") == 0 || strcmp(r->address, "::") == 0)
        return xasprintf("invalid service registration address %s (an "
                         "unspecified address cannot be reached)",
                         r->address);
    return NULL;
}

static const char *const status_order[] = {"critical", "warning", "passing"};

static int status_rank(const char *s)
{
    for (int i = 0; i < 3; i++)
        if (nc_streq(s, status_order[i]))
            return i;
    return 0; /* unknown counts as the worst */
}

/* A probe's output as the catalog serves it: its first line, bounded
 * (the whole of it is at /v1/agent/checks). */
static json_t *output_json(const char *s)
{
    size_t n = s ? strcspn(s, "\r\n") : 0;
    if (n > 512)
        n = 512;
    /* a cut inside a UTF-8 sequence is backed off to its start */
    json_t *j = NULL;
    for (size_t back = 0; !j && back < 4 && back <= n; back++)
        j = json_stringn(s ? s : "", n - back);
    return j ? j : json_string("");
}

static json_t *checks_json(const struct svc_reg *r, const char **health)
{
    json_t *a = json_array();
    int worst = 2;
    for (size_t i = 0; i < r->nchecks; i++) {
        const struct svc_check *k = &r->checks[i];
        json_array_append_new(a, json_pack("{s:s, s:s, s:s, s:s, s:o}", "ID",
                                           k->id, "Name", k->name, "Type",
                                           k->type, "Status", k->status,
                                           "Output", output_json(k->output)));
        int rank = status_rank(k->status);
        if (rank < worst)
            worst = rank;
    }
    *health = status_order[worst];
    return a;
}

static int entry_cmp(const void *key, const void *elem)
{
    return strcmp(key, ((const struct cat_entry *)elem)->id);
}

static struct cat_entry *find_in(struct cat_entry *entries, size_t n,
                                 const char *id)
{
    return n ? bsearch(id, entries, n, sizeof(*entries), entry_cmp) : NULL;
}

static struct cat_entry *find(const struct catalog *c, const char *id)
{
    return find_in(c->entries, c->n, id);
}

void catalog_update(struct catalog *c, const struct svc_set *desired)
{
    struct cat_entry *next = NULL;
    size_t n = 0, cap = 0;
    int64_t now = nc_now_unix_ns();
    for (size_t i = 0; i < desired->n; i++) {
        const struct svc_reg *r = &desired->regs[i];
        if (!catalog_serves(c, r))
            continue;
        nc_grow((void **)&next, &cap, n + 1, sizeof(*next));
        struct cat_entry *e = &next[n++];
        memset(e, 0, sizeof(*e));
        e->id = xstrdup(r->id);
        e->name = xstrdup(r->name);
        e->namespace_ = xstrdup(r->namespace_);
        e->error = refusal(r);
        e->checks = checks_json(r, &e->health);
        e->reg = e->error ? NULL : services_nomad_json(r, c->node);
        struct cat_entry *old = find(c, r->id);
        if (old && old->reg && e->reg && json_equal(old->reg, e->reg)) {
            e->create_index = old->create_index;
            e->modify_index = old->modify_index;
            e->since = old->since;
        } else if (old && nc_streq(old->error, e->error) && e->error) {
            e->since = old->since; /* still rejected for the same reason */
        } else if (e->reg) {
            e->create_index =
                old && old->reg ? old->create_index : c->index + 1;
            e->modify_index = ++c->index;
            e->since = now;
        } else {
            e->since = now;
        }
    }
    /* a registration gone from the catalog is a change its clients see */
    for (size_t i = 0; i < c->n; i++) {
        const struct cat_entry *old = &c->entries[i];
        const struct cat_entry *kept = find_in(next, n, old->id);
        if (old->reg && (!kept || !kept->reg))
            c->index++;
    }
    for (size_t i = 0; i < c->n; i++)
        entry_free(&c->entries[i]);
    free(c->entries);
    c->entries = next;
    c->n = n;
    c->cap = cap;
}

/* ---- queries --------------------------------------------------------- */

static bool in_namespace(const struct cat_entry *e, const char *ns)
{
    if (!ns || !*ns)
        ns = "default";
    return strcmp(ns, "*") == 0 || strcmp(e->namespace_, ns) == 0;
}

static int str_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* One namespace's stub: its services by name, each with the union of its
 * registrations' tags, both sorted. */
static json_t *namespace_stub(const struct catalog *c, const char *ns)
{
    struct strlist names = {0};
    for (size_t i = 0; i < c->n; i++)
        if (c->entries[i].reg && strcmp(c->entries[i].namespace_, ns) == 0 &&
            !strlist_contains(&names, c->entries[i].name))
            strlist_add(&names, c->entries[i].name);
    if (names.n > 1)
        qsort(names.items, names.n, sizeof(*names.items), str_cmp);
    json_t *services = json_array();
    for (size_t k = 0; k < names.n; k++) {
        struct strlist tags = {0};
        for (size_t i = 0; i < c->n; i++) {
            const struct cat_entry *e = &c->entries[i];
            if (!e->reg || strcmp(e->namespace_, ns) != 0 ||
                strcmp(e->name, names.items[k]) != 0)
                continue;
            size_t t;
            json_t *tag;
            json_array_foreach(json_object_get(e->reg, "Tags"), t, tag)
            {
                if (!strlist_contains(&tags, json_string_value(tag)))
                    strlist_add(&tags, json_string_value(tag));
            }
        }
        if (tags.n > 1)
            qsort(tags.items, tags.n, sizeof(*tags.items), str_cmp);
        json_t *jt = json_array();
        for (size_t t = 0; t < tags.n; t++)
            json_array_append_new(jt, json_string(tags.items[t]));
        json_array_append_new(services, json_pack("{s:s, s:o}", "ServiceName",
                                                  names.items[k], "Tags", jt));
        strlist_free(&tags);
    }
    strlist_free(&names);
    return json_pack("{s:s, s:o}", "Namespace", ns, "Services", services);
}

json_t *catalog_list_query_json(const struct catalog *c,
                                const struct catalog_query *q)
{
    const char *want = q ? q->namespace_ : NULL;
    struct strlist nss = {0};
    for (size_t i = 0; i < c->n; i++) {
        const struct cat_entry *e = &c->entries[i];
        if (e->reg && in_namespace(e, want) &&
            !strlist_contains(&nss, e->namespace_))
            strlist_add(&nss, e->namespace_);
    }
    if (nss.n > 1)
        qsort(nss.items, nss.n, sizeof(*nss.items), str_cmp);
    json_t *out = json_array();
    for (size_t i = 0; i < nss.n; i++)
        json_array_append_new(out, namespace_stub(c, nss.items[i]));
    strlist_free(&nss);
    return out;
}

json_t *catalog_list_json(const struct catalog *c)
{
    struct catalog_query q = {.namespace_ = "*"};
    return catalog_list_query_json(c, &q);
}

/* The registration as served: Nomad's fields, the indexes, and health. */
static json_t *served_json(const struct cat_entry *e)
{
    json_t *o = json_deep_copy(e->reg);
    json_object_set_new(o, "CreateIndex",
                        json_integer((json_int_t)e->create_index));
    json_object_set_new(o, "ModifyIndex",
                        json_integer((json_int_t)e->modify_index));
    json_object_set_new(o, "Health", json_string(e->health));
    json_object_set_new(o, "Checks", json_deep_copy(e->checks));
    return o;
}

/* ---- choose: Nomad's rendezvous hashing ------------------------------ */

/* Nomad orders registrations by the SHA-256 hex digest of their fields
 * and the caller's key (ServiceRegistration.HashWith), and choose must
 * pick the same ones Nomad's servers do. */
static void sha256_str(struct nc_sha256 *s, const json_t *o, const char *key)
{
    const char *v = json_string_value(json_object_get(o, key));
    if (v)
        nc_sha256_add(s, v, strlen(v));
}

struct ranked {
    char hash[65];
    json_t *reg;
};

static int by_hash(const void *a, const void *b)
{
    return strcmp(((const struct ranked *)a)->hash,
                  ((const struct ranked *)b)->hash);
}

/* Nomad's ServiceRegistration.HashWith: the port as 8 big-endian bytes,
 * then AllocID, ID, Namespace, Address, ServiceName, each tag, the key. */
static void hash_with(const json_t *reg, const char *key, char out[65])
{
    struct nc_sha256 s;
    nc_sha256_init(&s);
    uint64_t port = (uint64_t)json_integer_value(json_object_get(reg, "Port"));
    uint8_t be[8];
    for (int i = 0; i < 8; i++)
        be[i] = (uint8_t)(port >> (56 - 8 * i));
    nc_sha256_add(&s, be, 8);
    static const char *const fields[] = {"AllocID", "ID", "Namespace",
                                         "Address", "ServiceName"};
    for (size_t i = 0; i < NC_ARRAY_LEN(fields); i++)
        sha256_str(&s, reg, fields[i]);
    size_t i;
    json_t *tag;
    json_array_foreach(json_object_get(reg, "Tags"), i, tag)
    {
        const char *t = json_string_value(tag);
        nc_sha256_add(&s, t, strlen(t));
    }
    nc_sha256_add(&s, key, strlen(key));
    nc_sha256_hex(&s, out);
}

/* ?choose=<n>|<key>: the n registrations with the lowest hashes, in that
 * order, as Nomad's servers answer (a stable pick per key). */
static int choose(json_t **list, const char *param, struct nc_error *err)
{
    const char *bar = strchr(param, '|');
    char *end = NULL;
    long n = bar && bar != param ? strtol(param, &end, 10) : -1;
    if (!bar || end != bar || n < 0 || n > 1000000 || !bar[1])
        return nc_error_set(err, -EINVAL,
                            "failed to choose services: Parameter for "
                            "choose must be in form '<number>|<key>'");
    size_t count = json_array_size(*list);
    struct ranked *r = xcalloc(count ? count : 1, sizeof(*r));
    for (size_t i = 0; i < count; i++) {
        r[i].reg = json_array_get(*list, i);
        hash_with(r[i].reg, bar + 1, r[i].hash);
    }
    /* qsort is not stable, but equal hashes would need equal fields */
    if (count > 1)
        qsort(r, count, sizeof(*r), by_hash);
    json_t *out = json_array();
    for (size_t i = 0; i < count && i < (size_t)n; i++)
        json_array_append(out, r[i].reg);
    free(r);
    json_decref(*list);
    *list = out;
    return 0;
}

int catalog_service_query(const struct catalog *c, const char *name,
                          const struct catalog_query *q, json_t **out,
                          struct nc_error *err)
{
    json_t *list = json_array();
    for (size_t i = 0; i < c->n; i++) {
        const struct cat_entry *e = &c->entries[i];
        if (!e->reg || strcmp(e->name, name) != 0 ||
            !in_namespace(e, q ? q->namespace_ : NULL) ||
            (q && q->passing && strcmp(e->health, "passing") != 0))
            continue;
        json_array_append_new(list, served_json(e));
    }
    if (q && q->choose) {
        int r = choose(&list, q->choose, err);
        if (r < 0) {
            json_decref(list);
            *out = NULL;
            return r;
        }
    }
    *out = list;
    return 0;
}

json_t *catalog_service_json(const struct catalog *c, const char *name)
{
    json_t *out = NULL;
    catalog_service_query(c, name, NULL, &out, NULL);
    return out;
}

json_t *catalog_describe(const struct catalog *c, const char *service_id)
{
    const struct cat_entry *e = find(c, service_id);
    if (!e)
        return NULL;
    char since[40];
    nc_format_time(e->since, since, sizeof(since));
    if (e->error)
        return json_pack("{s:s, s:s, s:s}", "State", "rejected", "Since", since,
                         "Error", e->error);
    return json_pack("{s:s, s:s, s:I, s:I, s:o}", "State", "in sync", "Since",
                     since, "CreateIndex", (json_int_t)e->create_index,
                     "ModifyIndex", (json_int_t)e->modify_index, "Registration",
                     served_json(e));
}

uint64_t catalog_index(const struct catalog *c)
{
    return c->index;
}

size_t catalog_count(const struct catalog *c)
{
    size_t n = 0;
    for (size_t i = 0; i < c->n; i++)
        n += c->entries[i].reg != NULL;
    return n;
}

bool catalog_all_providers(const struct catalog *c)
{
    return c->all;
}
