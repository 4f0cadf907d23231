/* catalog.h - the agent's built-in service catalog: services with
 * provider = "nomad", and every service when no consul block is configured
 * (dev mode), served in Nomad's shape at /v1/services and
 * /v1/service/:name, with their check status.
 *
 * Each registration keeps its CreateIndex and ModifyIndex for as long as
 * nothing Nomad's ServiceRegistration carries changes (check status is not
 * part of it), so clients comparing indexes see only real changes. Check
 * health is added as two fields Nomad's API clients ignore: "Health" (the
 * worst check status, "passing" without checks) and "Checks". */
#ifndef NOMCLIENT_CATALOG_H
#define NOMCLIENT_CATALOG_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "node.h"
#include "services.h"
#include "util.h"

struct catalog;

/* all_providers: take every service (no Consul), else provider "nomad"
 * only. */
struct catalog *catalog_new(const struct node *node, bool all_providers);
void catalog_free(struct catalog *c);

/* The desired state changed: the catalog takes the entries it serves. */
void catalog_update(struct catalog *c, const struct svc_set *desired);

/* Whether the catalog serves this registration (provider rules above). */
bool catalog_serves(const struct catalog *c, const struct svc_reg *r);

/* /v1/services: [{"Namespace", "Services": [{"ServiceName", "Tags"}]}] */
json_t *catalog_list_json(const struct catalog *c);
/* /v1/service/:name: [ServiceRegistration, ...] (empty array if none) */
json_t *catalog_service_json(const struct catalog *c, const char *name);
/* For the debugging view: {"State": "in sync", "Since": time} for a
 * registration the catalog holds. New reference, NULL if not held. */
json_t *catalog_describe(const struct catalog *c, const char *service_id);

/* ---- extensions ------------------------------------------------------ */

/* What a /v1/services or /v1/service/:name request may narrow. */
struct catalog_query {
    const char *namespace_; /* NULL: "default", as Nomad; "*": every one */
    const char *choose;     /* Nomad's "<n>|<key>": n registrations chosen
                               by rendezvous hashing on key; NULL: all */
    bool passing;           /* only those whose checks all pass */
};

/* catalog_list_json of one namespace (q->namespace_ rules). New ref. */
json_t *catalog_list_query_json(const struct catalog *c,
                                const struct catalog_query *q);
/* catalog_service_json narrowed by q. Returns 0 with *out a new array, or
 * -EINVAL with err holding Nomad's message for a malformed choose. */
int catalog_service_query(const struct catalog *c, const char *name,
                          const struct catalog_query *q, json_t **out,
                          struct nc_error *err);

/* The highest index the catalog has given (X-Nomad-Index): raised by every
 * registration added, changed or removed. */
uint64_t catalog_index(const struct catalog *c);
/* Registrations served (rejected ones not counted). */
size_t catalog_count(const struct catalog *c);
bool catalog_all_providers(const struct catalog *c);

#endif
