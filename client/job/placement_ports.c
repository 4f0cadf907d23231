/* placement_ports.c - host ports: the node's reserved and used ranges,
 * static port collisions and the dynamic range (NetworkIndex.AssignPorts
 * in Nomad's structs/network.go). */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "client/job/internal.h"

/* Nomad's defaults: structs/network.go. */
#define PORT_LIMIT 65536 /* MaxValidPort: host ports are 1..65535 */
#define DYN_PORT_MIN 20000
#define DYN_PORT_MAX 32000

/* Host ports in use are marked by ranges through a difference array (O(1)
 * per range whatever its width), then flattened into a bitmap once. */
struct port_range {
    uint64_t lo, hi;
};

/* Nomad's ParsePortRanges ("22,80,8000-8100"), its messages included;
 * ports above 65535 are refused too since no host has them. Returns 0 with
 * *out allocated (NULL when empty), or -EINVAL with *err allocated. */
static int parse_port_ranges(const char *spec, struct port_range **out,
                             size_t *nout, char **err)
{
    *out = NULL;
    *nout = 0;
    if (!*spec)
        return 0;
    struct port_range *list = NULL;
    size_t n = 0, cap = 0;
    uint64_t count = 0;
    int rc = 0;
    for (const char *p = spec; rc == 0;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char *part = xstrndup(p, len);
        char *a = part, *e = part + len;
        while (*a && isspace((unsigned char)*a))
            a++;
        while (e > a && isspace((unsigned char)e[-1]))
            *--e = '\0';
        char *dash = strchr(a, '-');
        uint64_t lo = 0, hi = 0;
        const char *bad = a;
        if (dash && strchr(dash + 1, '-')) {
            *err = xstrdup("can only parse single port numbers or port "
                           "ranges (ex. 80,100-120,150)");
            rc = -EINVAL;
        } else if (!dash && !*a) {
            *err = xstrdup("can't specify empty port");
            rc = -EINVAL;
        } else {
            if (dash)
                *dash = '\0';
            int r = pl_parse_uint64(a, &lo);
            hi = lo;
            if (!r && dash) {
                bad = dash + 1;
                r = pl_parse_uint64(dash + 1, &hi);
            }
            if (r) {
                *err =
                    xasprintf("strconv.ParseUint: parsing \"%s\": %s", bad,
                              r == 1 ? "invalid syntax" : "value out of range");
                rc = -EINVAL;
            } else if (hi < lo) {
                *err =
                    xasprintf("invalid range: ending value (%llu) less "
                              "than starting (%llu) value",
                              (unsigned long long)hi, (unsigned long long)lo);
                rc = -EINVAL;
            } else if (lo == 0) {
                *err = xstrdup("port must be > 0");
                rc = -EINVAL;
            } else if (hi >= PORT_LIMIT) {
                *err = xasprintf("port must be < %d but found %llu", PORT_LIMIT,
                                 (unsigned long long)hi);
                rc = -EINVAL;
            } else if ((count += hi - lo + 1) > PORT_LIMIT) {
                *err = xasprintf("maximum of %d ports can be reserved",
                                 PORT_LIMIT);
                rc = -EINVAL;
            } else {
                nc_grow((void **)&list, &cap, n + 1, sizeof(*list));
                list[n++] = (struct port_range){lo, hi};
            }
        }
        free(part);
        if (!comma)
            break;
        p = comma + 1;
    }
    if (rc) {
        free(list);
        return rc;
    }
    *out = list;
    *nout = n;
    return 0;
}

static void mark_ranges(int64_t *diff, const struct port_range *list, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        diff[list[i].lo]++;
        diff[list[i].hi + 1]--;
    }
}

static bool bit_get(const uint8_t *bits, int port)
{
    return bits[port >> 3] & (1u << (port & 7));
}

static void bit_set(uint8_t *bits, int port)
{
    bits[port >> 3] |= (uint8_t)(1u << (port & 7));
}

int pl_ports_init(struct pl_ports *ports, const struct node *node,
                  const struct placement_usage *used, char **message)
{
    memset(ports, 0, sizeof(*ports));
    struct port_range *ranges = NULL;
    size_t nranges = 0;
    char *err = NULL;
    if (parse_port_ranges(pl_or_empty(node->reserved.reserved_ports), &ranges,
                          &nranges, &err) < 0) {
        struct nc_buf b = {0};
        nc_buf_puts(&b, "Placement failed: node reserved_ports ");
        pl_go_quote(&b, node->reserved.reserved_ports);
        nc_buf_printf(&b, " is invalid: %s", err);
        *message = nc_buf_take(&b);
        free(err);
        return -EINVAL;
    }
    int64_t *diff = xcalloc(PORT_LIMIT + 1, sizeof(*diff));
    mark_ranges(diff, ranges, nranges);
    free(ranges);
    if (used) {
        /* Usage comes from our own store; an entry that is not a port
         * cannot block anything, so it is skipped rather than fatal. */
        for (size_t i = 0; i < used->used_ports.n; i++) {
            char *e = NULL;
            if (parse_port_ranges(pl_or_empty(used->used_ports.items[i]),
                                  &ranges, &nranges, &e) == 0) {
                mark_ranges(diff, ranges, nranges);
                free(ranges);
            }
            free(e);
        }
    }

    ports->used = xcalloc(PORT_LIMIT / 8, 1);
    int64_t level = 0;
    for (int p = 0; p < PORT_LIMIT; p++) {
        level += diff[p];
        if (level > 0)
            bit_set(ports->used, p);
        else if (p >= DYN_PORT_MIN && p <= DYN_PORT_MAX)
            ports->dynamic_free++;
    }
    free(diff);
    return 0;
}

void pl_ports_free(struct pl_ports *ports)
{
    free(ports->used);
    ports->used = NULL;
}

static int64_t free_dynamic_ports(const struct pl_ports *ports)
{
    int64_t n = ports->dynamic_free - ports->dynamic_taken;
    return n < 0 ? 0 : n;
}

static void take_port(struct pl_ports *ports, int port)
{
    if (bit_get(ports->used, port))
        return;
    bit_set(ports->used, port);
    if (port >= DYN_PORT_MIN && port <= DYN_PORT_MAX)
        ports->dynamic_free--;
}

/* rank.go / NetworkIndex.AssignPorts: static ports first (out of range, or
 * already used), then dynamic ones from 20000-32000. */
void pl_ports_limit(const struct pl_ports *ports, const struct task_group *tg,
                    struct pl_limiter *lim, int64_t *ndynamic)
{
    const struct port *first = NULL;
    *ndynamic = 0;
    for (size_t n = 0; n < tg->nnetworks; n++) {
        const struct network *net = &tg->networks[n];
        *ndynamic += (int64_t)net->ndynamic_ports;
        for (size_t i = 0; i < net->nreserved_ports; i++) {
            const struct port *pt = &net->reserved_ports[i];
            if (pt->value < 0 || pt->value >= PORT_LIMIT) {
                pl_limit_by(lim, 0, PLACEMENT_EXHAUSTED,
                            xasprintf("network: invalid port %d (out of range)",
                                      pt->value));
                return;
            }
            if (pt->value == 0)
                continue; /* no host port asked */
            if (bit_get(ports->used, pt->value)) {
                pl_limit_by(lim, 0, PLACEMENT_EXHAUSTED,
                            xasprintf("network: reserved port collision %s=%d",
                                      pl_or_empty(pt->label), pt->value));
                return;
            }
            if (!first)
                first = pt;
        }
    }
    /* The second allocation collides with the first's static port. */
    int64_t by_static = first ? 1 : INT64_MAX;
    int64_t by_dynamic =
        *ndynamic > 0 ? free_dynamic_ports(ports) / *ndynamic : INT64_MAX;
    if (first && by_static <= by_dynamic)
        pl_limit_by(lim, by_static, PLACEMENT_EXHAUSTED,
                    xasprintf("network: reserved port collision %s=%d",
                              pl_or_empty(first->label), first->value));
    else if (*ndynamic > 0)
        pl_limit_by(lim, by_dynamic, PLACEMENT_EXHAUSTED,
                    xstrdup("network: dynamic port selection failed"));
}

void pl_ports_take(struct pl_ports *ports, const struct task_group *tg,
                   int64_t placed, int64_t ndynamic)
{
    ports->dynamic_taken += placed * ndynamic;
    if (placed <= 0)
        return;
    for (size_t n = 0; n < tg->nnetworks; n++)
        for (size_t i = 0; i < tg->networks[n].nreserved_ports; i++)
            if (tg->networks[n].reserved_ports[i].value > 0)
                take_port(ports, tg->networks[n].reserved_ports[i].value);
}
