/* catalog.c - see catalog.h. (Placeholder until the catalog lands.) */
#include "catalog.h"

#include <stdlib.h>

struct catalog {
    const struct node *node;
    bool all;
};

struct catalog *catalog_new(const struct node *node, bool all_providers)
{
    struct catalog *c = xcalloc(1, sizeof(*c));
    c->node = node;
    c->all = all_providers;
    return c;
}

void catalog_free(struct catalog *c) { free(c); }

void catalog_update(struct catalog *c, const struct svc_set *desired) {}

bool catalog_serves(const struct catalog *c, const struct svc_reg *r)
{
    return c->all || nc_streq(r->provider, "nomad");
}

json_t *catalog_list_json(const struct catalog *c) { return json_array(); }

json_t *catalog_service_json(const struct catalog *c, const char *name)
{
    return json_array();
}

json_t *catalog_describe(const struct catalog *c, const char *service_id)
{
    return NULL;
}
