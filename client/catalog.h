/* catalog.h - the agent's built-in service catalog: services with
 * provider = "nomad", and every service when no consul block is configured
 * (dev mode), served in Nomad's shape at /v1/services and
 * /v1/service/:name, with their check status. */
#ifndef NOMCLIENT_CATALOG_H
#define NOMCLIENT_CATALOG_H

#include <jansson.h>
#include <stdbool.h>

#include "node.h"
#include "services.h"

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

#endif
