// deps: client/alloc/ client/drivers/ client/node/ client/job/ client/hcl/
// deps: client/util.c volumes/ netns/ client/config.c client/config_decode.c
// deps: client/config_json.c client/config_schema.c client/config_validate.c client/tls.c client/curl_uv.c client/template/
/* Client garbage collection: which allocations a pass picks and in which
 * order, given the count and the data_dir's usage (alloc_gc_select), what
 * is collectable (alloc_gc_eligible), and the gc_* agent keys. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "client/alloc/alloc.h"
#include "client/config.h"

#define NALLOCS 8

struct fixture {
    struct alloc allocs[NALLOCS];
    struct alloc_task tasks[NALLOCS];
    struct alloc *ptrs[NALLOCS];
    size_t n;
};

/* An allocation that ended at `end` (0: running). */
static struct alloc *add(struct fixture *f, int64_t end)
{
    struct alloc *a = &f->allocs[f->n];
    struct alloc_task *t = &f->tasks[f->n];
    memset(a, 0, sizeof(*a));
    memset(t, 0, sizeof(*t));
    static char ids[NALLOCS][8];
    snprintf(ids[f->n], sizeof(ids[f->n]), "a%zu", f->n);
    a->id = ids[f->n];
    a->create_index = f->n + 1;
    a->client_status = end ? "complete" : "running";
    a->desired_status = "run";
    a->tasks = t;
    a->ntasks = 1;
    t->state = end ? "dead" : "running";
    t->finished_at = end;
    t->supervisor_pid = end ? 0 : 4242;
    f->ptrs[f->n++] = a;
    return a;
}

static const struct alloc_gc_limits limits = {
    .max_allocs = 3, .disk_pct = 80, .inode_pct = 70, .parallel = 2};
static const struct alloc_gc_usage calm = {.known = true, .disk_pct = 10,
                                           .inode_pct = 10};

static size_t pick(struct fixture *f, const struct alloc_gc_usage *u,
                   size_t incoming, size_t in_flight, struct alloc **out,
                   char *reason)
{
    return alloc_gc_select(f->ptrs, f->n, &limits, u, incoming, in_flight,
                           out, reason, 160);
}

static void test_under_every_limit(void **state)
{
    struct fixture f = {0};
    add(&f, 100);
    add(&f, 0);
    add(&f, 50);
    struct alloc *out[NALLOCS];
    char reason[160];
    assert_int_equal(pick(&f, &calm, 0, 0, out, reason), 0);
    assert_string_equal(reason, "");
}

/* Over gc_max_allocs: the excess goes, the oldest ended first; running
 * allocations count but are never picked. */
static void test_count_oldest_first(void **state)
{
    struct fixture f = {0};
    struct alloc *newer = add(&f, 300);
    add(&f, 0);
    struct alloc *oldest = add(&f, 100);
    add(&f, 0);
    struct alloc *middle = add(&f, 200);
    struct alloc *out[NALLOCS];
    char reason[160];
    assert_int_equal(pick(&f, &calm, 0, 0, out, reason), 2);
    assert_ptr_equal(out[0], oldest);
    assert_ptr_equal(out[1], middle);
    assert_string_equal(reason,
                        "number of allocations (5) is over the limit (3)");
    (void)newer;
}

/* Only running ones: nothing to pick, the reason still says why. */
static void test_nothing_terminal(void **state)
{
    struct fixture f = {0};
    for (int i = 0; i < 5; i++)
        add(&f, 0);
    struct alloc *out[NALLOCS];
    char reason[160];
    assert_int_equal(pick(&f, &calm, 0, 0, out, reason), 0);
    assert_string_equal(reason,
                        "number of allocations (5) is over the limit (3)");
}

/* Queued or being destroyed: no longer counted nor picked again. */
static void test_queued_not_counted(void **state)
{
    struct fixture f = {0};
    add(&f, 100)->gc_state = ALLOC_GC_DESTROYING;
    add(&f, 200)->gc_state = ALLOC_GC_QUEUED;
    struct alloc *third = add(&f, 300);
    add(&f, 400);
    add(&f, 0);
    struct alloc *out[NALLOCS];
    char reason[160];
    assert_int_equal(pick(&f, &calm, 0, 2, out, reason), 0);
    add(&f, 0); /* 4 counted now */
    assert_int_equal(pick(&f, &calm, 0, 2, out, reason), 1);
    assert_ptr_equal(out[0], third);
}

/* A new allocation about to be made: room for it under the limit, and
 * only the count matters then. */
static void test_make_room(void **state)
{
    struct fixture f = {0};
    struct alloc *old = add(&f, 100);
    add(&f, 200);
    add(&f, 0);
    struct alloc *out[NALLOCS];
    char reason[160];
    struct alloc_gc_usage full = {.known = true, .disk_pct = 99,
                                  .inode_pct = 99};
    assert_int_equal(pick(&f, &full, 1, 0, out, reason), 1);
    assert_ptr_equal(out[0], old);
    assert_string_equal(reason, "new allocations and over max (3)");
    assert_int_equal(pick(&f, &full, 2, 0, out, reason), 2);
}

/* Over the disk or inode threshold: as many as there are free destroy
 * slots, the next pass measuring again; the disk comes first, as Nomad
 * orders its reasons. */
static void test_usage_thresholds(void **state)
{
    struct fixture f = {0};
    struct alloc *a = add(&f, 100);
    struct alloc *b = add(&f, 50);
    add(&f, 70);
    struct alloc *out[NALLOCS];
    char reason[160];
    struct alloc_gc_usage disk = {.known = true, .disk_pct = 85.4,
                                  .inode_pct = 90};
    assert_int_equal(pick(&f, &disk, 0, 0, out, reason), 2);
    assert_ptr_equal(out[0], b);
    assert_string_equal(reason, "disk usage of 85 is over gc threshold of 80");
    assert_int_equal(pick(&f, &disk, 0, 1, out, reason), 1);
    assert_int_equal(pick(&f, &disk, 0, 2, out, reason), 0);
    struct alloc_gc_usage inodes = {.known = true, .disk_pct = 10,
                                    .inode_pct = 71};
    assert_int_equal(pick(&f, &inodes, 0, 1, out, reason), 1);
    assert_string_equal(reason, "inode usage of 71 is over gc threshold of 70");
    /* unknown usage (statvfs failed): only the count decides */
    struct alloc_gc_usage unknown = {.known = false, .disk_pct = 99};
    assert_int_equal(pick(&f, &unknown, 0, 0, out, reason), 0);
    (void)a;
}

/* Equal end times: the older allocation (create index) first. */
static void test_ties(void **state)
{
    struct fixture f = {0};
    for (int i = 0; i < 5; i++)
        add(&f, 100);
    struct alloc *out[NALLOCS];
    char reason[160];
    assert_int_equal(pick(&f, &calm, 0, 0, out, reason), 2);
    assert_ptr_equal(out[0], f.ptrs[0]);
    assert_ptr_equal(out[1], f.ptrs[1]);
}

/* What may be collected: terminal and quiet, network down. */
static void test_eligible(void **state)
{
    struct fixture f = {0};
    struct alloc *a = add(&f, 100);
    assert_true(alloc_gc_eligible(a));
    a->client_status = "failed";
    assert_true(alloc_gc_eligible(a));
    a->client_status = "running";
    assert_false(alloc_gc_eligible(a));
    a->client_status = "complete";
    a->net_phase = "tearing-down";
    assert_false(alloc_gc_eligible(a));
    a->net_phase = "down";
    assert_true(alloc_gc_eligible(a));
    a->net_busy = true;
    assert_false(alloc_gc_eligible(a));
    a->net_busy = false;
    uv_timer_t timer;
    a->reschedule_timer = &timer; /* a replacement is due */
    assert_false(alloc_gc_eligible(a));
    a->reschedule_timer = NULL;
    a->tasks[0].supervisor_pid = 7; /* complete yet a supervisor lives */
    assert_false(alloc_gc_eligible(a));
    a->tasks[0].supervisor_pid = 0;
    a->tasks[0].timer = &timer; /* a restart is due */
    assert_false(alloc_gc_eligible(a));
    a->tasks[0].timer = NULL;
    assert_int_equal(alloc_gc_ended(a), 100);
    a->tasks[0].finished_at = 0;
    a->modify_time = 77;
    assert_int_equal(alloc_gc_ended(a), 77);
}

static int load(const char *src, struct agent_config *cfg,
                struct nc_error *err)
{
    config_defaults(cfg, false);
    int r = config_load_string(cfg, "agent.hcl", src, strlen(src), err);
    return r < 0 ? r : config_validate(cfg, err);
}

static void test_config_keys(void **state)
{
    struct agent_config cfg = {0};
    struct nc_error err = {0};
    assert_int_equal(load("client {}\n", &cfg, &err), 0);
    assert_int_equal(cfg.client.gc_interval_ns, 60000000000LL);
    assert_true(cfg.client.gc_disk_usage_threshold == 80);
    assert_true(cfg.client.gc_inode_usage_threshold == 70);
    assert_int_equal(cfg.client.gc_max_allocs, 50);
    assert_int_equal(cfg.client.gc_parallel_destroys, 2);
    config_free(&cfg);

    memset(&cfg, 0, sizeof(cfg));
    assert_int_equal(load("client {\n  gc_interval = \"5s\"\n"
                          "  gc_disk_usage_threshold = 90.5\n"
                          "  gc_inode_usage_threshold = 60\n"
                          "  gc_max_allocs = 10\n"
                          "  gc_parallel_destroys = 4\n}\n",
                          &cfg, &err),
                     0);
    assert_int_equal(cfg.client.gc_interval_ns, 5000000000LL);
    assert_true(cfg.client.gc_disk_usage_threshold == 90.5);
    assert_true(cfg.client.gc_inode_usage_threshold == 60);
    assert_int_equal(cfg.client.gc_max_allocs, 10);
    assert_int_equal(cfg.client.gc_parallel_destroys, 4);
    config_free(&cfg);

    static const struct {
        const char *src, *msg;
    } bad[] = {
        {"client {\n  gc_interval = \"0s\"\n}\n",
         "client.gc_interval: must be a positive duration"},
        {"client {\n  gc_disk_usage_threshold = 120\n}\n",
         "client.gc_disk_usage_threshold: 120 is not a percentage (0-100)"},
        {"client {\n  gc_inode_usage_threshold = -1\n}\n",
         "client.gc_inode_usage_threshold: -1 is not a percentage"},
        {"client {\n  gc_max_allocs = 0\n}\n",
         "client.gc_max_allocs: 0 must be at least 1"},
        {"client {\n  gc_parallel_destroys = 0\n}\n",
         "client.gc_parallel_destroys: 0 must be at least 1"},
        {"client {\n  gc_max_allocs = \"many\"\n}\n", "gc_max_allocs"},
        {"client {\n  gc_disk_usage_threshold = \"high\"\n}\n",
         "agent.hcl:2:"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        memset(&cfg, 0, sizeof(cfg));
        memset(&err, 0, sizeof(err));
        assert_true(load(bad[i].src, &cfg, &err) < 0);
        if (!strstr(err.msg, bad[i].msg))
            fail_msg("%s: got \"%s\"", bad[i].src, err.msg);
        config_free(&cfg);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_under_every_limit),
        cmocka_unit_test(test_count_oldest_first),
        cmocka_unit_test(test_nothing_terminal),
        cmocka_unit_test(test_queued_not_counted),
        cmocka_unit_test(test_make_room),
        cmocka_unit_test(test_usage_thresholds),
        cmocka_unit_test(test_ties),
        cmocka_unit_test(test_eligible),
        cmocka_unit_test(test_config_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
