/* timers.c - when checks wake up: libuv timers, one per time slot.
 *
 * Every wake-up time is rounded up to a CHK_TIMER_SLACK_MS grid, and the
 * checks due in the same slot share one uv_timer_t (a list hangs off it).
 * With 2,000 checks at 1s that is ~250 timers in libuv's heap instead of
 * 2,000, one heap insert and remove per slot instead of per probe, and the
 * probes of a slot start in one loop iteration, so their answers tend to
 * come back in one epoll batch. The schedule itself stays exact (each
 * check keeps its due time), so the slack costs lateness, never drift.
 *
 * Slots are recycled through a free list and freed only when the engine
 * closes: no allocation per probe. A check that is removed (even from a
 * callback, with the caller still holding it) is freed by a zero-delay
 * "reaper" timer on a later loop iteration. */
#include "checks/checks_internal.h"

#include <stdlib.h>

#define SLOT_BUCKETS 1024 /* power of two */

struct chk_slot {
    uv_timer_t timer;
    struct chk_engine *e;
    uint64_t when;
    struct chk *head;       /* checks due at `when` */
    struct chk_slot *hnext; /* hash chain, or free list */
    struct chk_slot *anext; /* every slot of the engine */
    bool firing;            /* out of the hash: its callback runs */
};

static size_t bucket_of(uint64_t when)
{
    return (size_t)(when / CHK_TIMER_SLACK_MS) & (SLOT_BUCKETS - 1);
}

static void slot_unhash(struct chk_engine *e, struct chk_slot *s)
{
    struct chk_slot **pp = &e->slot_buckets[bucket_of(s->when)];
    while (*pp && *pp != s)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = s->hnext;
    s->hnext = NULL;
}

static void slot_recycle(struct chk_engine *e, struct chk_slot *s)
{
    uv_timer_stop(&s->timer);
    s->hnext = e->slot_free;
    e->slot_free = s;
}

static void on_slot_timer(uv_timer_t *t)
{
    struct chk_slot *s = t->data;
    struct chk_engine *e = s->e;
    slot_unhash(e, s);
    s->firing = true;
    struct chk *c;
    /* pop one at a time: a callback may remove or re-arm any check */
    while (!e->closing && (c = s->head)) {
        s->head = c->snext;
        if (s->head)
            s->head->sprev = NULL;
        c->slot = NULL;
        c->snext = c->sprev = NULL;
        chk_check_due(c);
    }
    s->firing = false;
    if (!e->closing)
        slot_recycle(e, s);
}

static struct chk_slot *slot_get(struct chk_engine *e, uint64_t when)
{
    for (struct chk_slot *s = e->slot_buckets[bucket_of(when)]; s; s = s->hnext)
        if (s->when == when)
            return s;
    struct chk_slot *s = e->slot_free;
    if (s) {
        e->slot_free = s->hnext;
    } else {
        s = xcalloc(1, sizeof(*s));
        s->e = e;
        uv_timer_init(e->loop, &s->timer);
        s->timer.data = s;
        s->anext = e->slots;
        e->slots = s;
        e->open_handles++;
    }
    s->when = when;
    s->head = NULL;
    s->hnext = e->slot_buckets[bucket_of(when)];
    e->slot_buckets[bucket_of(when)] = s;
    uint64_t now = uv_now(e->loop);
    uv_timer_start(&s->timer, on_slot_timer, when > now ? when - now : 0, 0);
    return s;
}

void chk_timer_disarm(struct chk *c)
{
    struct chk_slot *s = c->slot;
    if (!s)
        return;
    if (c->sprev)
        c->sprev->snext = c->snext;
    else
        s->head = c->snext;
    if (c->snext)
        c->snext->sprev = c->sprev;
    c->slot = NULL;
    c->snext = c->sprev = NULL;
    if (!s->head && !s->firing) {
        slot_unhash(c->e, s);
        slot_recycle(c->e, s);
    }
}

void chk_timer_arm(struct chk *c, uint64_t when)
{
    struct chk_engine *e = c->e;
    when = (when + CHK_TIMER_SLACK_MS - 1) / CHK_TIMER_SLACK_MS *
           CHK_TIMER_SLACK_MS;
    if (c->slot && c->slot->when == when && !c->slot->firing)
        return; /* a probe's start and end usually leave it where it is */
    chk_timer_disarm(c);
    struct chk_slot *s = slot_get(e, when);
    c->slot = s;
    c->sprev = NULL;
    c->snext = s->head;
    if (s->head)
        s->head->sprev = c;
    s->head = c;
}

/* ---- freeing removed checks ---- */

static void reap(struct chk_engine *e)
{
    while (e->graveyard) {
        struct chk *c = e->graveyard;
        e->graveyard = c->next;
        chk_check_free(c);
    }
}

static void on_reaper(uv_timer_t *t)
{
    reap(t->data);
}

void chk_timers_bury(struct chk *c)
{
    struct chk_engine *e = c->e;
    chk_timer_disarm(c);
    c->next = e->graveyard;
    e->graveyard = c;
    if (!e->closing && !uv_is_active((uv_handle_t *)&e->reaper))
        uv_timer_start(&e->reaper, on_reaper, 0, 0);
}

void chk_timers_init(struct chk_engine *e)
{
    e->slot_buckets = xcalloc(SLOT_BUCKETS, sizeof(*e->slot_buckets));
    uv_timer_init(e->loop, &e->reaper);
    e->reaper.data = e;
    e->open_handles++;
}

static void on_slot_closed(uv_handle_t *h)
{
    struct chk_slot *s = h->data;
    struct chk_engine *e = s->e;
    free(s);
    chk_engine_handle_closed(e);
}

static void on_reaper_closed(uv_handle_t *h)
{
    struct chk_engine *e = h->data;
    reap(e);
    chk_engine_handle_closed(e);
}

void chk_timers_close(struct chk_engine *e)
{
    for (struct chk_slot *s = e->slots, *next; s; s = next) {
        next = s->anext;
        uv_close((uv_handle_t *)&s->timer, on_slot_closed);
    }
    e->slots = e->slot_free = NULL;
    free(e->slot_buckets);
    e->slot_buckets = NULL;
    uv_close((uv_handle_t *)&e->reaper, on_reaper_closed);
}
