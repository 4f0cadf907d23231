// deps: client/drivers/ client/curl_uv.c client/alloc/alloc.c client/node/ client/job/
// deps: client/hcl/ client/util.c volumes/
/* The driver table: lookup by a task's driver, fingerprints into the node,
 * the plugin config each driver declares, and signal names. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "client/drivers/driver.h"

static void test_find(void **state)
{
    (void)state;
    const struct driver *exec = driver_find("exec");
    const struct driver *raw = driver_find("raw_exec");
    assert_non_null(exec);
    assert_non_null(raw);
    assert_ptr_not_equal(exec, raw);
    assert_string_equal(exec->name, "exec");
    assert_non_null(driver_find("docker")); /* its config, at least */
    assert_null(driver_find("EXEC"));
    assert_null(driver_find(""));
    assert_null(driver_find(NULL));
    struct task t = {.driver = "raw_exec"};
    assert_ptr_equal(driver_of(&t), raw);
    t.driver = "qemu";
    assert_null(driver_of(&t));
    assert_null(driver_of(NULL));
    /* every operation the runner calls is there */
    const struct driver *all[] = {exec, raw};
    for (size_t i = 0; i < 2; i++) {
        assert_non_null(all[i]->start);
        assert_non_null(all[i]->release);
        assert_non_null(all[i]->abort);
        assert_non_null(all[i]->recover);
        assert_non_null(all[i]->signal);
        assert_non_null(all[i]->stop);
        assert_non_null(all[i]->stats);
        assert_non_null(all[i]->destroy);
        assert_non_null(all[i]->detach);
        assert_non_null(all[i]->fingerprint);
    }
}

static void test_fingerprint(void **state)
{
    (void)state;
    struct agent_config cfg = {0};
    struct node n = {0};
    cfg.client.raw_exec_enabled = true;
    drivers_fingerprint(&cfg, &n);
    const struct node_driver *raw = node_driver_find(&n, "raw_exec");
    assert_non_null(raw);
    assert_true(raw->detected && raw->healthy);
    assert_string_equal(raw->health_description, "Healthy");
    assert_string_equal(kv_get(&n.attributes, "driver.raw_exec"), "1");
    const struct node_driver *exec = node_driver_find(&n, "exec");
    assert_non_null(exec);
    bool root = geteuid() == 0;
    assert_int_equal(exec->detected, root);
    assert_string_equal(exec->health_description,
                        root ? "Healthy" : "exec driver must run as root");
    if (root)
        assert_string_equal(kv_get(&n.attributes, "driver.exec"), "1");
    const struct node_driver *docker = node_driver_find(&n, "docker");
    assert_non_null(docker);
    assert_false(docker->detected);
    assert_null(kv_get(&n.attributes, "driver.docker"));
    assert_null(node_driver_find(&n, "qemu"));
    node_free(&n);

    struct node off = {0};
    cfg.client.raw_exec_enabled = false;
    drivers_fingerprint(&cfg, &off);
    assert_false(node_driver_find(&off, "raw_exec")->detected);
    assert_string_equal(node_driver_find(&off, "raw_exec")->health_description,
                        "disabled");
    assert_null(kv_get(&off.attributes, "driver.raw_exec"));
    node_free(&off);
}

static const struct config_key *key(const struct driver *d, const char *name)
{
    for (size_t i = 0; i < d->nplugin_keys; i++)
        if (strcmp(d->plugin_keys[i].name, name) == 0)
            return &d->plugin_keys[i];
    return NULL;
}

static void test_plugin_keys(void **state)
{
    (void)state;
    const struct driver *exec = driver_find("exec");
    const struct config_key *caps = key(exec, "allow_caps");
    assert_non_null(caps);
    assert_int_equal(caps->kind, CONFIG_KEY_STRLIST);
    assert_int_equal(caps->offset,
                     offsetof(struct agent_config, client.exec_allow_caps));
    char msg[200] = "";
    assert_int_equal(caps->check("net_raw", msg, sizeof(msg)), 0);
    assert_int_equal(caps->check("CAP_CHOWN", msg, sizeof(msg)), 0);
    assert_int_equal(caps->check("all", msg, sizeof(msg)), 0);
    assert_int_equal(caps->check("net_rawx", msg, sizeof(msg)), -EINVAL);
    assert_non_null(strstr(msg, "unknown capability \"net_rawx\""));
    const struct config_key *pid = key(exec, "default_pid_mode");
    assert_non_null(pid);
    assert_int_equal(pid->kind, CONFIG_KEY_STRING);
    assert_int_equal(pid->check("host", msg, sizeof(msg)), 0);
    assert_int_equal(pid->check("private", msg, sizeof(msg)), 0);
    assert_int_equal(pid->check("shared", msg, sizeof(msg)), -EINVAL);
    assert_non_null(strstr(msg, "default_pid_mode must be \"private\" or "
                                "\"host\", got \"shared\""));
    assert_int_equal(key(exec, "default_ipc_mode")->kind, CONFIG_KEY_STRING);
    assert_null(key(exec, "enabled"));
    const struct driver *raw = driver_find("raw_exec");
    const struct config_key *en = key(raw, "enabled");
    assert_non_null(en);
    assert_int_equal(en->kind, CONFIG_KEY_BOOL);
    assert_null(key(raw, "allow_caps"));
}

static void test_signal_names(void **state)
{
    (void)state;
    assert_int_equal(driver_signal_number("SIGUSR1"), SIGUSR1);
    assert_int_equal(driver_signal_number("usr1"), SIGUSR1);
    assert_int_equal(driver_signal_number("SigHup"), SIGHUP);
    assert_int_equal(driver_signal_number("SIGWINCH"), SIGWINCH);
    assert_int_equal(driver_signal_number("KILL"), SIGKILL);
    assert_int_equal(driver_signal_number(""), SIGTERM);
    assert_int_equal(driver_signal_number(NULL), SIGTERM);
    assert_int_equal(driver_signal_number("SIGFOO"), -1);
    assert_int_equal(driver_signal_number("SIG"), -1);
    assert_int_equal(driver_signal_number("10"), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_find),
        cmocka_unit_test(test_fingerprint),
        cmocka_unit_test(test_plugin_keys),
        cmocka_unit_test(test_signal_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
