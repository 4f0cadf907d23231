/* consul.c - see consul.h. (Placeholder until the sync loop lands: it
 * accepts updates and reports Consul as not configured.) */
#include "consul.h"

#include <errno.h>
#include <stdlib.h>

struct consul_sync {
    int unused;
};

int consul_sync_open(struct consul_sync **out, uv_loop_t *loop,
                     const struct agent_config *cfg, const struct node *node,
                     struct nc_error *err)
{
    *out = NULL;
    return nc_error_set(err, -ENOSYS, "the Consul sync loop is not built yet");
}

void consul_sync_close(struct consul_sync *s) { free(s); }

void consul_sync_update(struct consul_sync *s, const struct svc_set *desired) {}

void consul_sync_flush_alloc(struct consul_sync *s, const char *alloc_id,
                             void (*done)(void *arg, const char *alloc_id),
                             void *arg)
{
    done(arg, alloc_id);
}

json_t *consul_sync_describe(const struct consul_sync *s, const char *id)
{
    return json_pack("{s:s}", "State", "pending");
}

json_t *consul_sync_stale(const struct consul_sync *s) { return json_array(); }

json_t *consul_sync_status(const struct consul_sync *s) { return json_object(); }
