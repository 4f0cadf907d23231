// deps: client/alloc/lifecycle.c client/util.c
/* The task coordinator's decisions (Nomad 1.6's tasklifecycle): which
 * stages each phase lets start, how the phase moves on with the tasks'
 * states, and which dead task takes the live ones down, in what order. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "client/alloc/internal.h"

#define N(v) (sizeof(v) / sizeof((v)[0]))

static void test_stage_of(void **state)
{
    (void)state;
    struct task t = {0};
    struct lifecycle l = {.hook = "prestart"};
    assert_int_equal(lifecycle_stage_of(NULL), LC_MAIN);
    assert_int_equal(lifecycle_stage_of(&t), LC_MAIN);
    t.lifecycle = &l;
    assert_int_equal(lifecycle_stage_of(&t), LC_PRESTART);
    l.sidecar = true;
    assert_int_equal(lifecycle_stage_of(&t), LC_PRESTART_SIDECAR);
    l.hook = "poststart";
    assert_int_equal(lifecycle_stage_of(&t), LC_POSTSTART_SIDECAR);
    l.sidecar = false;
    assert_int_equal(lifecycle_stage_of(&t), LC_POSTSTART);
    l.hook = "poststop";
    assert_int_equal(lifecycle_stage_of(&t), LC_POSTSTOP);
}

static void test_gates(void **state)
{
    (void)state;
    assert_true(lifecycle_allows(LC_PHASE_PRESTART, LC_PRESTART));
    assert_true(lifecycle_allows(LC_PHASE_PRESTART, LC_PRESTART_SIDECAR));
    assert_false(lifecycle_allows(LC_PHASE_PRESTART, LC_MAIN));
    assert_false(lifecycle_allows(LC_PHASE_PRESTART, LC_POSTSTOP));
    assert_false(lifecycle_allows(LC_PHASE_MAIN, LC_PRESTART));
    assert_true(lifecycle_allows(LC_PHASE_MAIN, LC_MAIN));
    assert_false(lifecycle_allows(LC_PHASE_MAIN, LC_POSTSTART));
    assert_true(lifecycle_allows(LC_PHASE_POSTSTART, LC_POSTSTART));
    assert_true(lifecycle_allows(LC_PHASE_WAIT_ALLOC, LC_POSTSTART_SIDECAR));
    assert_false(lifecycle_allows(LC_PHASE_WAIT_ALLOC, LC_POSTSTART));
    assert_true(lifecycle_allows(LC_PHASE_POSTSTOP, LC_POSTSTOP));
    assert_false(lifecycle_allows(LC_PHASE_POSTSTOP, LC_MAIN));
    assert_false(lifecycle_allows(LC_PHASE_POSTSTOP, LC_PRESTART_SIDECAR));
    assert_false(lifecycle_allows((enum lifecycle_phase)99, LC_MAIN));
}

static void test_phases(void **state)
{
    (void)state;
    struct lifecycle_view v[] = {
        {.stage = LC_PRESTART}, {.stage = LC_PRESTART_SIDECAR},
        {.stage = LC_MAIN},     {.stage = LC_POSTSTART},
        {.stage = LC_POSTSTOP},
    };
    /* all pending: prestart tasks first */
    assert_int_equal(lifecycle_next(LC_PHASE_PRESTART, v, N(v)),
                     LC_PHASE_PRESTART);
    /* the init task running, the sidecar up: still prestart */
    v[0].state = LC_RUNNING;
    v[1].state = LC_RUNNING;
    assert_int_equal(lifecycle_next(LC_PHASE_PRESTART, v, N(v)),
                     LC_PHASE_PRESTART);
    /* a failed init task does not open the main gate */
    v[0].state = LC_DEAD;
    v[0].failed = true;
    assert_int_equal(lifecycle_next(LC_PHASE_PRESTART, v, N(v)),
                     LC_PHASE_PRESTART);
    /* a successful one does; the sidecar must be running */
    v[0].failed = false;
    v[1].state = LC_PENDING;
    assert_int_equal(lifecycle_next(LC_PHASE_PRESTART, v, N(v)),
                     LC_PHASE_PRESTART);
    v[1].state = LC_RUNNING;
    assert_int_equal(lifecycle_next(LC_PHASE_PRESTART, v, N(v)), LC_PHASE_MAIN);
    /* main running: poststart */
    v[2].state = LC_RUNNING;
    assert_int_equal(lifecycle_next(LC_PHASE_MAIN, v, N(v)),
                     LC_PHASE_POSTSTART);
    /* poststart done: wait for the allocation */
    v[3].state = LC_DEAD;
    assert_int_equal(lifecycle_next(LC_PHASE_POSTSTART, v, N(v)),
                     LC_PHASE_WAIT_ALLOC);
    /* never backwards: a main task pending again (restart) stays put */
    v[2].state = LC_PENDING;
    assert_int_equal(lifecycle_next(LC_PHASE_WAIT_ALLOC, v, N(v)),
                     LC_PHASE_WAIT_ALLOC);
    /* everything but poststop dead: poststop, from any phase */
    v[1].state = v[2].state = LC_DEAD;
    assert_int_equal(lifecycle_next(LC_PHASE_WAIT_ALLOC, v, N(v)),
                     LC_PHASE_POSTSTOP);
    assert_int_equal(lifecycle_next(LC_PHASE_PRESTART, v, N(v)),
                     LC_PHASE_POSTSTOP);
    /* no lifecycle tasks: straight through to the main gate */
    struct lifecycle_view m[] = {{.stage = LC_MAIN}, {.stage = LC_MAIN}};
    enum lifecycle_phase p = lifecycle_next(LC_PHASE_PRESTART, m, N(m));
    assert_int_equal(p, LC_PHASE_MAIN);
    assert_true(lifecycle_allows(p, LC_MAIN));
}

static void test_kills(void **state)
{
    (void)state;
    size_t who = 99;
    struct lifecycle_view v[] = {
        {.stage = LC_PRESTART, .state = LC_DEAD},
        {.stage = LC_PRESTART_SIDECAR, .state = LC_RUNNING},
        {.stage = LC_MAIN, .state = LC_RUNNING},
        {.stage = LC_POSTSTOP},
    };
    /* a finished init task kills nobody */
    assert_int_equal(lifecycle_kill_reason(v, N(v), &who), LC_KILL_NONE);
    /* the main task ended: only the sidecar lives, it is stopped */
    v[2].state = LC_DEAD;
    assert_int_equal(lifecycle_kill_reason(v, N(v), &who), LC_KILL_MAIN_DEAD);
    /* a failure is blamed on the task */
    v[2].failed = true;
    assert_int_equal(lifecycle_kill_reason(v, N(v), &who),
                     LC_KILL_SIBLING_FAILED);
    assert_int_equal(who, 2);
    /* a dead leader wins over a failure */
    v[0].leader = true;
    assert_int_equal(lifecycle_kill_reason(v, N(v), &who), LC_KILL_LEADER_DEAD);
    assert_int_equal(who, 0);
    /* nobody left alive (poststop aside): nothing to kill */
    v[1].state = LC_DEAD;
    assert_int_equal(lifecycle_kill_reason(v, N(v), &who), LC_KILL_NONE);
    assert_string_equal(lifecycle_kill_event(LC_KILL_LEADER_DEAD),
                        "Leader Task Dead");
    assert_string_equal(lifecycle_kill_event(LC_KILL_MAIN_DEAD),
                        "Main Tasks Dead");
    assert_string_equal(lifecycle_kill_event(LC_KILL_SIBLING_FAILED),
                        "Sibling Task Failed");
    assert_null(lifecycle_kill_event(LC_KILL_NONE));
}

static void test_kill_order(void **state)
{
    (void)state;
    struct lifecycle_view v[] = {
        {.stage = LC_PRESTART_SIDECAR, .state = LC_RUNNING},
        {.stage = LC_MAIN, .state = LC_RUNNING},
        {.stage = LC_POSTSTOP},
        {.stage = LC_POSTSTART_SIDECAR, .state = LC_RUNNING, .leader = true},
    };
    assert_false(lifecycle_stop_now(v, N(v), 0)); /* sidecar waits */
    assert_true(lifecycle_stop_now(v, N(v), 1));
    assert_false(lifecycle_stop_now(v, N(v), 2)); /* poststop never */
    assert_true(lifecycle_stop_now(v, N(v), 3));  /* a leader first */
    v[1].state = LC_DEAD;
    assert_true(lifecycle_stop_now(v, N(v), 0));
}

static void test_done_on_success(void **state)
{
    (void)state;
    assert_true(lifecycle_done_on_success(LC_PRESTART, false));
    assert_true(lifecycle_done_on_success(LC_POSTSTART, false));
    assert_true(lifecycle_done_on_success(LC_POSTSTOP, false));
    assert_false(lifecycle_done_on_success(LC_PRESTART_SIDECAR, true));
    assert_false(lifecycle_done_on_success(LC_POSTSTART_SIDECAR, true));
    assert_false(lifecycle_done_on_success(LC_MAIN, false));
    assert_true(lifecycle_done_on_success(LC_MAIN, true));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stage_of),
        cmocka_unit_test(test_gates),
        cmocka_unit_test(test_phases),
        cmocka_unit_test(test_kills),
        cmocka_unit_test(test_kill_order),
        cmocka_unit_test(test_done_on_success),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
