// deps: client/config.c client/config_decode.c client/config_json.c
// deps: client/config_schema.c client/config_validate.c client/tls.c
// deps: client/drivers/driver.c client/drivers/exec.c
// deps: client/drivers/supervisor.c client/drivers/cgroup.c
// deps: client/drivers/logfile.c client/drivers/exec_session.c
// deps: client/drivers/caps.c client/drivers/docker_config.c
// deps: client/drivers/docker_image_ref.c client/drivers/docker_validate.c
// deps: client/drivers/docker_body.c client/drivers/docker_auth.c
// deps: client/alloc/alloc.c client/node/ client/job/ client/hcl/
// deps: client/util.c volumes/ client/drivers/docker_api.c client/curl_uv.c
/* The docker driver's config half: plugin "docker" { config { ... } } in
 * agent files (Nomad's keys, defaults and file:line:col errors), the
 * check of a task's config at submission (and of every job the agent is
 * given), the container create body, image references and registry
 * credentials. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "client/config.h"
#include "client/drivers/docker_config.h"
#include "client/drivers/driver.h"
#include "client/job/job.h"

#define NS_MIN (60 * (int64_t)1000000000)

/* ---- the plugin config ---- */

static int load(struct agent_config *cfg, const char *src, struct nc_error *err)
{
    config_defaults(cfg, false);
    return config_load_string(cfg, "agent.hcl", src, strlen(src), err);
}

static void expect_load_error(const char *src, const char *msg)
{
    struct agent_config cfg;
    struct nc_error err = {0};
    int r = load(&cfg, src, &err);
    if (r == 0)
        fail_msg("loaded without error: %s", src);
    assert_int_equal(r, -EINVAL);
    assert_string_equal(err.msg, msg);
    config_free(&cfg);
}

static void test_plugin_keys_table(void **state)
{
    (void)state;
    assert_int_equal(docker_nplugin_keys, DOCKER_NPLUGIN_KEYS);
    for (size_t i = 0; i < docker_nplugin_keys; i++)
        assert_non_null(docker_plugin_keys[i].name);
    const struct driver *d = driver_find("docker");
    assert_non_null(d);
    assert_ptr_equal(d->plugin_keys, docker_plugin_keys);
    assert_int_equal(d->nplugin_keys, DOCKER_NPLUGIN_KEYS);
    assert_ptr_equal(d->validate, docker_validate);
}

static void test_plugin_defaults(void **state)
{
    (void)state;
    struct agent_config cfg;
    config_defaults(&cfg, false);
    const struct docker_plugin_config *d = &cfg.client.docker;
    assert_string_equal(d->endpoint, "unix:///var/run/docker.sock");
    assert_true(d->gc.image);
    assert_int_equal(d->gc.image_delay_ns, 3 * NS_MIN);
    assert_true(d->gc.container);
    assert_true(d->gc.dangling_containers.enabled);
    assert_int_equal(d->gc.dangling_containers.period_ns, 5 * NS_MIN);
    assert_int_equal(d->gc.dangling_containers.creation_grace_ns, 5 * NS_MIN);
    assert_false(d->gc.dangling_containers.dry_run);
    assert_false(d->volumes.enabled);
    assert_false(d->allow_privileged);
    /* Nomad's capabilities.HCLSpecLiteral */
    assert_int_equal(d->allow_caps.n, 13);
    assert_string_equal(d->allow_caps.items[0], "AUDIT_WRITE");
    assert_true(strlist_contains(&d->allow_caps, "NET_BIND_SERVICE"));
    assert_false(strlist_contains(&d->allow_caps, "NET_RAW"));
    assert_int_equal(d->allow_runtimes.n, 2);
    assert_string_equal(d->allow_runtimes.items[0], "runc");
    assert_string_equal(d->allow_runtimes.items[1], "nvidia");
    assert_string_equal(d->nvidia_runtime, "nvidia");
    assert_true(
        nc_str_has_prefix(d->infra_image, "gcr.io/google_containers/pause-"));
    assert_true(nc_str_has_suffix(d->infra_image, ":3.1"));
    assert_int_equal(d->infra_image_pull_timeout_ns, 5 * NS_MIN);
    assert_int_equal(d->pull_activity_timeout_ns, 2 * NS_MIN);
    assert_int_equal(d->pids_limit, 0);
    assert_int_equal(d->extra_labels.n, 0);
    assert_null(d->logging.type);
    config_free(&cfg);
}

static void test_plugin_config(void **state)
{
    (void)state;
    struct agent_config cfg;
    struct nc_error err = {0};
    const char *src = "plugin \"docker\" {\n"
                      "  config {\n"
                      "    endpoint = \"unix:///run/dk/docker.sock\"\n"
                      "    auth {\n"
                      "      config = \"/etc/docker-auth.json\"\n"
                      "      helper = \"ecr-login\"\n"
                      "    }\n"
                      "    tls {\n      cert = \"/c\"\n      key = \"/k\"\n    "
                      "  ca = \"/a\"\n"
                      "    }\n"
                      "    gc {\n"
                      "      image_delay = \"1h30m\"\n"
                      "      container = false\n"
                      "      dangling_containers {\n"
                      "        creation_grace = \"10m\"\n"
                      "        dry_run = true\n"
                      "      }\n"
                      "    }\n"
                      "    volumes {\n      enabled = true\n      selinuxlabel "
                      "= \"z\"\n    }\n"
                      "    allow_privileged = true\n"
                      "    allow_caps = [\"chown\", \"NET_RAW\"]\n"
                      "    allow_runtimes = [\"runc\", \"gvisor\"]\n"
                      "    infra_image = \"registry.local:5000/pause:1\"\n"
                      "    pull_activity_timeout = \"90s\"\n"
                      "    pids_limit = 500\n"
                      "    disable_log_collection = false\n"
                      "    extra_labels = [\"job_*\", \"task_name\"]\n"
                      "    logging {\n"
                      "      type = \"journald\"\n"
                      "      config {\n        tag = \"nomad\"\n      }\n"
                      "    }\n"
                      "  }\n"
                      "}\n";
    if (load(&cfg, src, &err) < 0)
        fail_msg("%s", err.msg);
    const struct docker_plugin_config *d = &cfg.client.docker;
    assert_string_equal(d->endpoint, "unix:///run/dk/docker.sock");
    assert_string_equal(d->auth.config, "/etc/docker-auth.json");
    assert_string_equal(d->auth.helper, "ecr-login");
    assert_string_equal(d->tls.ca, "/a");
    assert_true(d->gc.image); /* left at its default */
    assert_int_equal(d->gc.image_delay_ns, 90 * NS_MIN);
    assert_false(d->gc.container);
    assert_true(d->gc.dangling_containers.enabled);
    assert_int_equal(d->gc.dangling_containers.creation_grace_ns, 10 * NS_MIN);
    assert_true(d->gc.dangling_containers.dry_run);
    assert_true(d->volumes.enabled);
    assert_string_equal(d->volumes.selinuxlabel, "z");
    assert_true(d->allow_privileged);
    assert_int_equal(d->allow_caps.n, 2); /* replaced, not added to */
    assert_string_equal(d->allow_runtimes.items[1], "gvisor");
    assert_string_equal(d->infra_image, "registry.local:5000/pause:1");
    assert_int_equal(d->pull_activity_timeout_ns, 90 * (int64_t)1000000000);
    assert_int_equal(d->pids_limit, 500);
    assert_int_equal(d->extra_labels.n, 2);
    assert_string_equal(d->logging.type, "journald");
    assert_string_equal(kv_get(&d->logging.config, "tag"), "nomad");

    /* a second file: the attribute form, merged onto the first */
    src = "plugin \"docker\" {\n"
          "  config = {\n"
          "    gc = { image = false }\n"
          "    logging = { config = { mode = \"non-blocking\" } }\n"
          "  }\n"
          "}\n";
    if (config_load_string(&cfg, "b.hcl", src, strlen(src), &err) < 0)
        fail_msg("%s", err.msg);
    assert_false(d->gc.image);
    assert_int_equal(d->gc.image_delay_ns, 90 * NS_MIN);
    assert_string_equal(kv_get(&d->logging.config, "tag"), "nomad");
    assert_string_equal(kv_get(&d->logging.config, "mode"), "non-blocking");
    config_free(&cfg);

    /* JSON agent files take the same keys */
    config_defaults(&cfg, false);
    src = "{\"plugin\": {\"docker\": {\"config\": {\"gc\": "
          "{\"dangling_containers\": {\"period\": \"1m\"}}, "
          "\"allow_privileged\": true}}}}";
    if (config_load_string(&cfg, "agent.json", src, strlen(src), &err) < 0)
        fail_msg("%s", err.msg);
    assert_int_equal(cfg.client.docker.gc.dangling_containers.period_ns,
                     NS_MIN);
    assert_true(cfg.client.docker.allow_privileged);
    config_free(&cfg);
}

static void test_plugin_config_errors(void **state)
{
    (void)state;
    /* unknown key */
    expect_load_error("plugin \"docker\" {\n  config {\n"
                      "    allow_privileged = true\n"
                      "    allow_privilegd = true\n  }\n}\n",
                      "agent.hcl:4:5: plugin \"docker\" > config: unknown "
                      "attribute \"allow_privilegd\"");
    /* nested unknown key, two levels down */
    expect_load_error("plugin \"docker\" {\n  config {\n    gc {\n"
                      "      dangling_containers {\n"
                      "        periode = \"5m\"\n      }\n    }\n  }\n}\n",
                      "agent.hcl:5:9: plugin \"docker\" > config > gc > "
                      "dangling_containers: unknown attribute \"periode\"");
    /* a block where the spec has none */
    expect_load_error("plugin \"docker\" {\n  config {\n"
                      "    auth {\n      token {\n      }\n    }\n  }\n}\n",
                      "agent.hcl:4:7: plugin \"docker\" > config > auth: "
                      "unknown block \"token\"");
    /* wrong types */
    expect_load_error("plugin \"docker\" {\n  config {\n"
                      "    allow_caps = \"CHOWN\"\n  }\n}\n",
                      "agent.hcl:3:18: plugin \"docker\" > config > "
                      "allow_caps: expected a list of strings, got string");
    expect_load_error("plugin \"docker\" {\n  config {\n"
                      "    volumes {\n      enabled = \"yes\"\n    }\n  }\n}\n",
                      "agent.hcl:4:17: plugin \"docker\" > config > volumes > "
                      "enabled: expected a bool, got string");
    expect_load_error("plugin \"docker\" {\n  config {\n"
                      "    pids_limit = 1.5\n  }\n}\n",
                      "agent.hcl:3:18: plugin \"docker\" > config > "
                      "pids_limit: expected a whole number, got 1.5");
    expect_load_error("plugin \"docker\" {\n  config {\n"
                      "    gc = \"off\"\n  }\n}\n",
                      "agent.hcl:3:10: plugin \"docker\" > config > gc: "
                      "expected a block, got string");
    /* bad durations */
    expect_load_error("plugin \"docker\" {\n  config {\n"
                      "    gc {\n      image_delay = \"3 minutes\"\n    }\n"
                      "  }\n}\n",
                      "agent.hcl:4:21: plugin \"docker\" > config > gc > "
                      "image_delay: \"3 minutes\" is not a duration (like "
                      "\"30s\" or \"5m\")");
    expect_load_error("plugin \"docker\" {\n  config {\n"
                      "    pull_activity_timeout = \"30s\"\n  }\n}\n",
                      "agent.hcl:3:29: plugin \"docker\" > config > "
                      "pull_activity_timeout: pull_activity_timeout is less "
                      "than minimum, 1m0s");
    expect_load_error("plugin \"docker\" {\n  config {\n"
                      "    gc {\n      dangling_containers {\n"
                      "        creation_grace = \"30s\"\n      }\n    }\n"
                      "  }\n}\n",
                      "agent.hcl:5:26: plugin \"docker\" > config > gc > "
                      "dangling_containers > creation_grace: creation_grace "
                      "is less than minimum, 1m0s");
    /* values the driver could not use */
    expect_load_error("plugin \"docker\" {\n  config {\n"
                      "    endpoint = \"/var/run/docker.sock\"\n  }\n}\n",
                      "agent.hcl:3:16: plugin \"docker\" > config > endpoint: "
                      "\"/var/run/docker.sock\" is not a Docker endpoint "
                      "(unix:///path/to/docker.sock or tcp://host:port)");
    expect_load_error("plugin \"docker\" {\n  config {\n"
                      "    allow_caps = [\"chown\", \"warp_drive\"]\n  }\n}\n",
                      "agent.hcl:3:28: plugin \"docker\" > config > "
                      "allow_caps: unknown capability \"warp_drive\" (names as "
                      "in capabilities(7), with or without CAP_, or \"all\")");
    expect_load_error("plugin \"docker\" {\n  config {\n"
                      "    infra_image = \"Pause Image\"\n  }\n}\n",
                      "agent.hcl:3:19: plugin \"docker\" > config > "
                      "infra_image: invalid reference format: \"Pause Image\"");
    expect_load_error("plugin \"docker\" {\n  config {\n"
                      "    logging {\n      config {\n        tag {\n"
                      "        }\n      }\n    }\n  }\n}\n",
                      "agent.hcl:5:9: plugin \"docker\" > config > logging > "
                      "config: unexpected block \"tag\"; expected name = "
                      "\"value\" pairs");
}

/* The agent's own loader (what `nomclient agent -config` runs) names the
 * file. */
static void test_plugin_config_file(void **state)
{
    (void)state;
    char dir[] = "/tmp/nc-dockercfg-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char *path = xasprintf("%s/agent.hcl", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("plugin \"docker\" {\n  config {\n    gc {\n"
          "      imge = true\n    }\n  }\n}\n",
          f);
    fclose(f);
    struct agent_config cfg;
    struct nc_error err = {0};
    config_defaults(&cfg, false);
    assert_int_equal(config_load_path(&cfg, path, &err), -EINVAL);
    char *want = xasprintf("%s:4:7: plugin \"docker\" > config > gc: unknown "
                           "attribute \"imge\"",
                           path);
    assert_string_equal(err.msg, want);
    free(want);
    config_free(&cfg);
    unlink(path);
    rmdir(dir);
    free(path);
}

/* ---- the task config ---- */

/* A task whose config is the JSON text given. */
static struct task *task_with(const char *config_json)
{
    struct task *t = xcalloc(1, sizeof(*t));
    json_error_t je;
    t->name = xstrdup("web");
    t->driver = xstrdup("docker");
    t->config = json_loads(config_json, 0, &je);
    if (!t->config)
        fail_msg("bad test JSON: %s: %s", config_json, je.text);
    t->resources.cpu = 500;
    t->resources.memory_mb = 256;
    return t;
}

static void task_free(struct task *t)
{
    json_decref(t->config);
    free(t->name);
    free(t->driver);
    free(t);
}

static void expect_valid(const struct agent_config *cfg, const char *config)
{
    struct task *t = task_with(config);
    struct nc_error err = {0};
    if (docker_validate(cfg, t, &err) < 0)
        fail_msg("refused: %s: %s", config, err.msg);
    task_free(t);
}

static void expect_invalid(const struct agent_config *cfg, const char *config,
                           const char *msg)
{
    struct task *t = task_with(config);
    struct nc_error err = {0};
    int r = docker_validate(cfg, t, &err);
    if (r == 0)
        fail_msg("accepted: %s", config);
    assert_int_equal(r, -EINVAL);
    assert_string_equal(err.msg, msg);
    task_free(t);
}

static void test_validate_shape(void **state)
{
    (void)state;
    struct agent_config cfg;
    config_defaults(&cfg, false);
    /* what HCL makes of a rich config (blocks are lists, object values
     * one-element lists, numbers where strings go) */
    expect_valid(
        &cfg,
        "{\"image\": \"redis:7\", \"command\": \"redis-server\","
        " \"args\": [\"--port\", 6379, true],"
        " \"ports\": [\"db\"], \"port_map\": [{\"db\": 6379}],"
        " \"labels\": [{\"app\": \"redis\", \"tier\": 2}],"
        " \"auth\": [{\"username\": \"u\", \"password\": \"p\"}],"
        " \"mount\": [{\"type\": \"tmpfs\", \"target\": \"/t\","
        "   \"tmpfs_options\": [{\"size\": 1024, \"mode\": 448}]},"
        "  {\"type\": \"bind\", \"target\": \"/c\", \"source\": \"local/c\","
        "   \"readonly\": \"true\", \"bind_options\": "
        "[{\"propagation\": \"rshared\"}]}],"
        " \"logging\": [{\"type\": \"json-file\", \"config\": "
        "[{\"max-size\": \"10m\"}]}],"
        " \"ulimit\": [{\"nofile\": \"1024:2048\", \"nproc\": 64}],"
        " \"sysctl\": {\"net.core.somaxconn\": \"16384\"},"
        " \"devices\": [{\"host_path\": \"/dev/fuse\"}],"
        " \"healthchecks\": {\"disable\": true},"
        " \"security_opt\": [\"no-new-privileges\", \"label=disable\"],"
        " \"cap_add\": [\"chown\"], \"cap_drop\": [\"ALL\"],"
        " \"shm_size\": 67108864, \"memory_hard_limit\": 512.0,"
        " \"image_pull_timeout\": \"10m\", \"network_mode\": \"host\","
        " \"volumes\": [\"local/data:/data\", \"../alloc/x:/x:ro\"],"
        " \"storage_opt\": [{\"size\": \"10G\"}],"
        " \"oom_score_adj\": 100, \"tty\": true, \"init\": false}");
    /* the plain JSON an API client may send */
    expect_valid(&cfg,
                 "{\"image\": \"nginx\", \"labels\": {\"a\": \"b\"},"
                 " \"mounts\": [{\"type\": \"tmpfs\", \"target\": \"/t\"}],"
                 " \"auth\": {\"server_address\": \"r.io\"},"
                 " \"privileged\": null}");

    expect_invalid(
        &cfg, "{\"image\": \"redis\", \"comand\": \"x\"}",
        "config: unknown key \"comand\" (did you mean \"command\"?)");
    expect_invalid(&cfg, "{\"image\": \"redis\", \"frobnicate\": 1}",
                   "config: unknown key \"frobnicate\"");
    expect_invalid(&cfg,
                   "{\"image\": \"redis\", \"mount\": [{\"type\": \"bind\","
                   " \"target\": \"/x\", \"sorce\": \"local\"}]}",
                   "config > mount: unknown key \"sorce\" (did you mean "
                   "\"source\"?)");
    expect_invalid(&cfg,
                   "{\"image\": \"redis\", \"mount\": [{\"target\": \"/a\","
                   " \"type\": \"tmpfs\"}, {\"target\": \"/b\", \"type\": "
                   "\"tmpfs\", \"tmpfs_options\": [{\"sise\": 1}]}]}",
                   "config > mount[1] > tmpfs_options: unknown key \"sise\" "
                   "(did you mean \"size\"?)");
    expect_invalid(&cfg, "{\"image\": \"redis\", \"cap_add\": \"NET_ADMIN\"}",
                   "config > cap_add: must be a list of strings");
    expect_invalid(&cfg, "{\"image\": \"redis\", \"args\": [[\"a\"]]}",
                   "config > args: must be a list of strings");
    expect_invalid(&cfg, "{\"image\": \"redis\", \"privileged\": \"yes\"}",
                   "config > privileged: must be a bool");
    expect_invalid(&cfg, "{\"image\": \"redis\", \"shm_size\": \"big\"}",
                   "config > shm_size: must be a number");
    expect_invalid(&cfg, "{\"image\": \"redis\", \"pids_limit\": 1.5}",
                   "config > pids_limit: must be a whole number");
    expect_invalid(&cfg, "{\"image\": \"redis\", \"labels\": \"app=x\"}",
                   "config > labels: must be a map of strings");
    expect_invalid(&cfg,
                   "{\"image\": \"redis\", \"labels\": [{\"a\": [\"b\"]}]}",
                   "config > labels > a: must be a string");
    expect_invalid(&cfg,
                   "{\"image\": \"redis\", \"port_map\": [{\"http\": "
                   "\"eighty\"}]}",
                   "config > port_map > http: must be a number");
    expect_invalid(&cfg,
                   "{\"image\": \"redis\", \"auth\": [{\"username\": \"a\"},"
                   " {\"username\": \"b\"}]}",
                   "config > auth: only one auth block is allowed");
    expect_invalid(&cfg, "{\"image\": \"redis\", \"logging\": \"json-file\"}",
                   "config > logging: must be a block");
    expect_invalid(&cfg, "{\"command\": \"x\"}",
                   "config: the argument \"image\" is required, but no "
                   "definition was found");
    expect_invalid(&cfg, "{\"image\": \"\"}",
                   "config > image: image name required for docker driver");
    struct task empty = {.name = "t", .driver = "docker"};
    struct nc_error err = {0};
    assert_int_equal(docker_validate(&cfg, &empty, &err), -EINVAL);
    expect_invalid(&cfg, "{\"image\": \"redis\", \"command\": \" redis\"}",
                   "config > command: command contains extra white space: "
                   "\" redis\"");
    expect_invalid(&cfg,
                   "{\"image\": \"redis\", \"image_pull_timeout\": "
                   "\"soon\"}",
                   "config > image_pull_timeout: \"soon\" is not a duration "
                   "(like \"30s\" or \"5m\")");
    config_free(&cfg);
}

static void test_validate_images(void **state)
{
    (void)state;
    static const char *const good[] = {
        "redis",
        "redis:7.2-alpine",
        "library/redis:latest",
        "https://redis:7",
        "registry.example.com:5000/team/app:v1.2.3",
        "localhost/app",
        "localhost:5000/app",
        "ghcr.io/org/my_app__x-y.z:1",
        "app@sha256:"
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        "app:1@sha256:"
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        "${NOMAD_META_image}", /* interpolated at run time */
    };
    static const struct {
        const char *ref, *msg;
    } bad[] = {
        {"Foo Bar", "config > image: invalid reference format: \"Foo Bar\""},
        {"Redis", "config > image: invalid reference format: \"Redis\" "
                  "(repository name must be lowercase)"},
        {"team/App:1", "config > image: invalid reference format: "
                       "\"team/App:1\" (repository name must be lowercase)"},
        {"redis:", "config > image: invalid reference format: \"redis:\""},
        {"redis:-x", "config > image: invalid reference format: \"redis:-x\""},
        {"redis@sha256:abc",
         "config > image: invalid reference format: \"redis@sha256:abc\""},
        {"redis__-x",
         "config > image: invalid reference format: \"redis__-x\""},
        {"/redis", "config > image: invalid reference format: \"/redis\""},
        {"reg.io:port/x", "config > image: invalid reference format: "
                          "\"reg.io:port/x\""},
    };
    struct agent_config cfg;
    config_defaults(&cfg, false);
    for (size_t i = 0; i < NC_ARRAY_LEN(good); i++) {
        char *j = xasprintf("{\"image\": \"%s\"}", good[i]);
        expect_valid(&cfg, j);
        free(j);
    }
    for (size_t i = 0; i < NC_ARRAY_LEN(bad); i++) {
        char *j = xasprintf("{\"image\": \"%s\"}", bad[i].ref);
        expect_invalid(&cfg, j, bad[i].msg);
        free(j);
    }
    config_free(&cfg);
}

static void test_validate_plugin_rules(void **state)
{
    (void)state;
    struct agent_config cfg;
    config_defaults(&cfg, false);
    expect_invalid(&cfg, "{\"image\": \"redis\", \"privileged\": true}",
                   "config > privileged: Docker privileged mode is disabled "
                   "on this Nomad agent");
    expect_invalid(&cfg,
                   "{\"image\": \"redis\", \"cap_add\": [\"SYS_ADMIN\", "
                   "\"net_raw\", \"chown\"]}",
                   "config > cap_add: driver does not allow the following "
                   "capabilities: net_raw, sys_admin");
    expect_invalid(&cfg, "{\"image\": \"redis\", \"cap_drop\": [\"nope\"]}",
                   "config > cap_drop: unknown capability \"nope\"");
    expect_invalid(&cfg, "{\"image\": \"redis\", \"runtime\": \"runsc\"}",
                   "config > runtime: requested runtime \"runsc\" is not "
                   "allowed");
    expect_valid(&cfg, "{\"image\": \"redis\", \"runtime\": \"runc\"}");
    expect_invalid(&cfg, "{\"image\": \"redis\", \"volumes\": [\"/etc:/etc\"]}",
                   "config > volumes: volumes are not enabled; cannot mount "
                   "host paths: \"/etc:/etc\"");
    expect_invalid(&cfg,
                   "{\"image\": \"redis\", \"volumes\": [\"../../x:/x\"]}",
                   "config > volumes: volumes are not enabled; cannot mount "
                   "host paths: \"../../x:/x\"");
    expect_invalid(&cfg, "{\"image\": \"redis\", \"volumes\": [\"/etc\"]}",
                   "config > volumes: invalid docker volume \"/etc\": not "
                   "<src>:<destination> format");
    expect_invalid(&cfg, "{\"image\": \"redis\", \"volume_driver\": \"pxd\"}",
                   "config > volume_driver: volumes are not enabled; cannot "
                   "use volume driver \"pxd\"");
    expect_invalid(&cfg,
                   "{\"image\": \"redis\", \"mount\": [{\"type\": \"bind\","
                   " \"source\": \"/srv\", \"target\": \"/srv\"}]}",
                   "config > mount > source: volumes are not enabled; cannot "
                   "mount host path: \"/srv\"");
    expect_invalid(&cfg,
                   "{\"image\": \"redis\", \"mount\": [{\"source\": \"data\","
                   " \"target\": \"/data\"}]}",
                   "config > mount > type: volumes are not enabled; cannot "
                   "mount volume: \"data\"");
    expect_invalid(&cfg,
                   "{\"image\": \"redis\", \"mount\": [{\"type\": \"nfs\","
                   " \"target\": \"/d\"}]}",
                   "config > mount > type: invalid mount type, must be "
                   "\"bind\", \"volume\", \"tmpfs\": \"nfs\"");
    expect_invalid(&cfg,
                   "{\"image\": \"redis\", \"mount\": [{\"type\": \"tmpfs\","
                   " \"source\": \"x\", \"target\": \"/d\"}]}",
                   "config > mount > source: invalid source, must be \"\" for "
                   "tmpfs");
    expect_invalid(&cfg,
                   "{\"image\": \"redis\", \"devices\": [{"
                   "\"container_path\": \"/dev/x\"}]}",
                   "config > devices: host path must be set in configuration "
                   "for devices");
    expect_invalid(&cfg,
                   "{\"image\": \"redis\", \"devices\": [{\"host_path\": "
                   "\"/dev/a\"}, {\"host_path\": \"/dev/b\", "
                   "\"cgroup_permissions\": \"rwx\"}]}",
                   "config > devices[1] > cgroup_permissions: invalid cgroup "
                   "permission string: \"rwx\"");
    expect_invalid(&cfg,
                   "{\"image\": \"redis\", \"ulimit\": [{\"nofile\": "
                   "\"lots\"}]}",
                   "config > ulimit: failed to parse ulimit configuration: "
                   "Malformed soft ulimit nofile: lots");
    expect_invalid(&cfg,
                   "{\"image\": \"redis\", \"security_opt\": "
                   "[\"nonsense\"]}",
                   "config > security_opt: failed to parse security_opt "
                   "configuration: invalid security_opt: \"nonsense\"");
    expect_invalid(&cfg, "{\"image\": \"redis\", \"isolation\": \"hyperv\"}",
                   "config > isolation: Failed to create container "
                   "configuration, cannot use isolation mode \"hyperv\" on "
                   "linux");
    expect_invalid(&cfg, "{\"image\": \"redis\", \"cpu_cfs_period\": 2000000}",
                   "config > cpu_cfs_period: invalid value for cpu_cfs_period");
    /* interpolated paths are checked when they are known */
    expect_valid(&cfg, "{\"image\": \"redis\", \"volumes\": "
                       "[\"${NOMAD_META_dir}:/d\"]}");

    /* what the operator allows */
    cfg.client.docker.allow_privileged = true;
    cfg.client.docker.volumes.enabled = true;
    strlist_add(&cfg.client.docker.allow_caps, "SYS_ADMIN");
    cfg.client.docker.pids_limit = 100;
    expect_valid(&cfg, "{\"image\": \"redis\", \"privileged\": true,"
                       " \"cap_add\": [\"sys_admin\"], \"volumes\": "
                       "[\"/etc:/etc:ro\"], \"volume_driver\": \"pxd\","
                       " \"mount\": [{\"source\": \"data\", \"target\": "
                       "\"/d\"}], \"pids_limit\": 50}");
    expect_invalid(&cfg, "{\"image\": \"redis\", \"pids_limit\": 500}",
                   "config > pids_limit: pids_limit cannot be greater than "
                   "nomad plugin config pids_limit: 100");
    config_free(&cfg);

    /* without an agent config (the CLI): only what needs none */
    expect_valid(NULL, "{\"image\": \"redis\", \"privileged\": true,"
                       " \"cap_add\": [\"sys_admin\"], \"runtime\": \"x\","
                       " \"volumes\": [\"/etc:/etc\"]}");
    expect_invalid(NULL, "{\"image\": \"redis\", \"cap_add\": [\"warp\"]}",
                   "config > cap_add: unknown capability \"warp\"");
    expect_invalid(
        NULL, "{\"image\": \"redis\", \"comand\": \"x\"}",
        "config: unknown key \"comand\" (did you mean \"command\"?)");
}

/* ---- jobs at submission ---- */

static struct job *parse_job(const char *src)
{
    struct job *job = NULL;
    struct nc_error err = {0};
    if (jobspec_parse_hcl("job.nomad", src, strlen(src), &job, &err) < 0)
        fail_msg("%s", err.msg);
    return job;
}

static void test_validate_job(void **state)
{
    (void)state;
    struct agent_config cfg;
    config_defaults(&cfg, false);
    struct nc_error err = {0};
    struct job *job = parse_job(
        "job \"web\" {\n  group \"g\" {\n    task \"t\" {\n"
        "      driver = \"docker\"\n"
        "      config {\n        image = \"nginx\"\n"
        "        comand = \"nginx\"\n      }\n    }\n"
        "    task \"ok\" {\n      driver = \"docker\"\n"
        "      config {\n        image = \"nginx\"\n      }\n    }\n"
        "    task \"e\" {\n      driver = \"exec\"\n"
        "      config {\n        command = \"/bin/true\"\n      }\n    }\n"
        "  }\n}\n");
    assert_int_equal(drivers_validate_job(&cfg, job, &err), -EINVAL);
    assert_string_equal(err.msg, "group \"g\" > task \"t\" > config: unknown "
                                 "key \"comand\" (did you mean \"command\"?)");
    /* the CLI's check finds it too */
    assert_int_equal(drivers_validate_job(NULL, job, &err), -EINVAL);
    jobspec_free(job);

    /* blocks as HCL writes them, errors of several tasks together */
    job = parse_job(
        "job \"web\" {\n  group \"a\" {\n    task \"x\" {\n"
        "      driver = \"docker\"\n"
        "      config {\n        image = \"nginx\"\n"
        "        mount {\n          type = \"bind\"\n"
        "          target = \"/x\"\n          source = \"/etc\"\n        }\n"
        "      }\n    }\n  }\n"
        "  group \"b\" {\n    task \"y\" {\n      driver = \"docker\"\n"
        "      config {\n        image = \"nginx\"\n"
        "        privileged = true\n        labels {\n"
        "          a = \"b\"\n        }\n      }\n    }\n  }\n}\n");
    assert_int_equal(drivers_validate_job(&cfg, job, &err), -EINVAL);
    assert_string_equal(err.msg,
                        "2 errors occurred:\n"
                        "\t* group \"a\" > task \"x\" > config > mount > "
                        "source: volumes are not enabled; cannot mount host "
                        "path: \"/etc\"\n"
                        "\t* group \"b\" > task \"y\" > config > privileged: "
                        "Docker privileged mode is disabled on this Nomad "
                        "agent");
    cfg.client.docker.allow_privileged = true;
    cfg.client.docker.volumes.enabled = true;
    assert_int_equal(drivers_validate_job(&cfg, job, &err), 0);
    jobspec_free(job);
    config_free(&cfg);
}

/* The seed jobs (tests/data/jobs holds copies of examples/seed) pass with
 * the default plugin config. */
static void test_seed_jobs(void **state)
{
    (void)state;
    static const char *const seeds[] = {
        "data/jobs/custom-scheduler.nomad",
        "data/jobs/platform.nomad",
        "data/jobs/secrets.nomad",
        "data/jobs/service-mesh.nomad",
    };
    struct agent_config cfg;
    config_defaults(&cfg, false);
    for (size_t i = 0; i < NC_ARRAY_LEN(seeds); i++) {
        struct job *job = NULL;
        struct nc_error err = {0};
        if (jobspec_parse_file(seeds[i], &job, &err) < 0)
            fail_msg("%s: %s", seeds[i], err.msg);
        if (drivers_validate_job(&cfg, job, &err) < 0)
            fail_msg("%s: %s", seeds[i], err.msg);
        jobspec_free(job);
    }
    config_free(&cfg);
}

/* ---- images ---- */

static void test_parse_image(void **state)
{
    (void)state;
    static const struct {
        const char *ref, *repo, *tag, *digest;
    } cases[] = {
        {"redis", "redis", "latest", NULL},
        {"redis:7", "redis", "7", NULL},
        {"https://redis:7", "redis", "7", NULL},
        {"localhost:5000/app", "localhost:5000/app", "latest", NULL},
        {"localhost:5000/app:2", "localhost:5000/app", "2", NULL},
        {"reg.io/a/b@sha256:0123456789abcdef0123456789abcdef0123456789abcdef"
         "0123456789abcdef",
         "reg.io/a/b", NULL,
         "sha256:"
         "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"},
        {"a:t@sha512:0123456789abcdef0123456789abcdef", "a", "t",
         "sha512:0123456789abcdef0123456789abcdef"},
        {"Reg.IO/x", "Reg.IO/x", "latest", NULL}, /* hosts may have capitals */
    };
    for (size_t i = 0; i < NC_ARRAY_LEN(cases); i++) {
        char *repo, *tag, *digest;
        struct nc_error err = {0};
        if (docker_parse_image(cases[i].ref, &repo, &tag, &digest, &err) < 0)
            fail_msg("%s: %s", cases[i].ref, err.msg);
        assert_string_equal(repo, cases[i].repo);
        if (cases[i].tag)
            assert_string_equal(tag, cases[i].tag);
        else
            assert_null(tag);
        if (cases[i].digest)
            assert_string_equal(digest, cases[i].digest);
        else
            assert_null(digest);
        free(repo);
        free(tag);
        free(digest);
    }
    char *long_name = xcalloc(1, 300);
    memset(long_name, 'a', 260);
    struct nc_error err = {0};
    assert_int_equal(docker_parse_image(long_name, NULL, NULL, NULL, &err),
                     -EINVAL);
    assert_non_null(strstr(err.msg, "must not be more than 255 characters"));
    free(long_name);
    assert_int_equal(docker_parse_image("", NULL, NULL, NULL, &err), -EINVAL);
    assert_string_equal(err.msg, "invalid reference format: \"\"");
    assert_int_equal(docker_parse_image(NULL, NULL, NULL, NULL, &err), -EINVAL);

    static const struct {
        const char *in, *out;
    } tagged[] = {
        {"redis", "redis:latest"},
        {"redis:7", "redis:7"},
        {"https://redis", "redis:latest"},
        {"localhost:5000/app", "localhost:5000/app:latest"},
        {"a@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789"
         "abcdef",
         "a@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789"
         "abcdef"},
    };
    for (size_t i = 0; i < NC_ARRAY_LEN(tagged); i++) {
        char *s = docker_image_with_tag(tagged[i].in);
        assert_string_equal(s, tagged[i].out);
        free(s);
    }
    static const struct {
        const char *repo, *registry;
    } regs[] = {
        {"redis", "https://index.docker.io/v1/"},
        {"library/redis", "https://index.docker.io/v1/"},
        {"docker.io/library/redis", "https://index.docker.io/v1/"},
        {"quay.io/org/app", "quay.io"},
        {"localhost/app", "localhost"},
        {"reg.local:5000/app", "reg.local:5000"},
    };
    for (size_t i = 0; i < NC_ARRAY_LEN(regs); i++) {
        char *s = docker_registry_of(regs[i].repo);
        assert_string_equal(s, regs[i].registry);
        free(s);
    }
    char *name = docker_container_name("web/front", "0123-abcd");
    assert_string_equal(name, "web_front-0123-abcd");
    free(name);
}

/* ---- the container body ---- */

struct fixture {
    struct agent_config cfg;
    struct node node;
    struct job *job;
    struct alloc a;
    struct alloc_task t;
    struct kvlist env;
    struct alloc_port ports[2];
};

static const char body_job[] =
    "job \"shop\" {\n"
    "  meta {\n    version = \"7\"\n  }\n"
    "  group \"cache\" {\n"
    "    network {\n      port \"db\" {\n        to = 6379\n      }\n"
    "      port \"admin\" {\n        static = 9000\n      }\n"
    "      dns {\n        servers = [\"10.0.0.2\"]\n      }\n    }\n"
    "    volume \"data\" {\n      type = \"host\"\n      source = \"pg\"\n"
    "      read_only = true\n    }\n"
    "    task \"redis\" {\n"
    "      driver = \"docker\"\n"
    "      user = \"999\"\n"
    "      config {\n"
    "        image = \"redis:${NOMAD_META_version}\"\n"
    "        command = \"redis-server\"\n"
    "        args = [\"--port\", \"${NOMAD_HOST_PORT_db}\", \"--arch\", "
    "\"${attr.cpu.arch}\"]\n"
    "        ports = [\"db\", \"admin\"]\n"
    "        work_dir = \"/data\"\n"
    "        hostname = \"cache-${NOMAD_ALLOC_INDEX}\"\n"
    "        labels {\n          team = \"shop\"\n        }\n"
    "        volumes = [\"local/conf:/etc/redis\", \"../alloc/shared:/s:ro\"]\n"
    "        mount {\n          type = \"tmpfs\"\n          target = \"/run\"\n"
    "          tmpfs_options {\n            size = 1048576\n          }\n"
    "        }\n"
    "        mount {\n          type = \"bind\"\n          target = \"/cfg\"\n"
    "          source = \"secrets/cfg\"\n          readonly = true\n        }\n"
    "        cap_add = [\"chown\"]\n"
    "        cap_drop = [\"kill\"]\n"
    "        ulimit {\n          nofile = \"1024:4096\"\n          nproc = "
    "\"64\"\n        }\n"
    "        sysctl = {\n          \"net.core.somaxconn\" = \"512\"\n        "
    "}\n"
    "        devices = [{ host_path = \"/dev/fuse\" }]\n"
    "        shm_size = 1024\n"
    "        pids_limit = 64\n"
    "        memory_hard_limit = 512\n"
    "        tty = true\n"
    "        interactive = true\n"
    "        healthchecks {\n          disable = true\n        }\n"
    "        extra_hosts = [\"db.local:10.0.0.9\"]\n"
    "        network_aliases = [\"cache\"]\n"
    "      }\n"
    "      volume_mount {\n        volume = \"data\"\n"
    "        destination = \"/var/lib/pg\"\n"
    "        propagation_mode = \"host-to-task\"\n      }\n"
    "      resources {\n        cpu = 500\n        memory = 256\n      }\n"
    "    }\n"
    "  }\n"
    "}\n";

static void fixture_init(struct fixture *f, const char *src)
{
    memset(f, 0, sizeof(*f));
    config_defaults(&f->cfg, false);
    f->cfg.client.host_volumes =
        xcalloc(1, sizeof(*f->cfg.client.host_volumes));
    f->cfg.client.host_volumes[0] =
        (struct host_volume_config){xstrdup("pg"), xstrdup("/srv/pg"), false};
    f->cfg.client.nhost_volumes = 1;
    f->node.id = xstrdup("node-1");
    f->node.name = xstrdup("worker-1");
    f->node.datacenter = xstrdup("dc1");
    f->node.region = xstrdup("global");
    f->node.resources.cpu_mhz = 4000;
    kv_set(&f->node.attributes, "cpu.arch", "amd64");
    kv_set(&f->node.attributes, "unique.network.ip-address", "10.1.1.5");
    f->job = parse_job(src);
    f->a.id = "a1b2c3d4-0000-1111-2222-333344445555";
    f->a.name = "shop.cache[0]";
    f->a.job_id = "shop";
    f->a.group = "cache";
    f->a.namespace = "default";
    f->a.job = f->job;
    f->a.network_mode = "host";
    f->ports[0] = (struct alloc_port){"db", 23456, 6379, ""};
    f->ports[1] = (struct alloc_port){"admin", 9000, 9000, ""};
    f->a.ports = f->ports;
    f->a.nports = 2;
    f->t.name = "redis";
    f->t.alloc = &f->a;
}

static void fixture_free(struct fixture *f)
{
    kv_free(&f->env);
    jobspec_free(f->job);
    node_free(&f->node);
    config_free(&f->cfg);
}

static const struct task *fixture_spec(struct fixture *f)
{
    return &f->job->groups[0].tasks[0];
}

static json_t *fixture_body(struct fixture *f, const char *network_mode,
                            struct nc_error *err)
{
    const struct task *spec = fixture_spec(f);
    kv_free(&f->env);
    alloc_task_env(&f->a, spec, &f->node, "/d/alloc/a1/alloc",
                   "/d/alloc/a1/redis", true, &f->env);
    struct docker_task_ctx c = {
        .cfg = &f->cfg,
        .node = &f->node,
        .a = &f->a,
        .t = &f->t,
        .spec = spec,
        .task_dir = "/d/alloc/a1/redis",
        .alloc_dir = "/d/alloc/a1/alloc",
        .env = &f->env,
        .network_mode = network_mode,
    };
    return docker_container_body(&c, err);
}

static const char *jstr(const json_t *o, const char *path)
{
    /* "HostConfig.NetworkMode" */
    char *copy = xstrdup(path), *save = NULL;
    const json_t *v = o;
    for (char *p = strtok_r(copy, ".", &save); p && v;
         p = strtok_r(NULL, ".", &save))
        v = json_object_get(v, p);
    free(copy);
    return json_string_value(v);
}

static bool array_has(const json_t *arr, const char *s)
{
    size_t i;
    json_t *v;
    json_array_foreach((json_t *)arr, i,
                       v) if (nc_streq(json_string_value(v), s)) return true;
    return false;
}

static void test_container_body(void **state)
{
    (void)state;
    struct fixture f;
    fixture_init(&f, body_job);
    strlist_add(&f.cfg.client.docker.extra_labels, "job_*");
    strlist_add(&f.cfg.client.docker.extra_labels, "node_name");
    struct nc_error err = {0};
    json_t *b = fixture_body(&f, NULL, &err);
    if (!b)
        fail_msg("%s", err.msg);
    const json_t *h = json_object_get(b, "HostConfig");

    assert_string_equal(jstr(b, "Image"), "redis:7");
    json_t *cmd = json_object_get(b, "Cmd");
    assert_int_equal(json_array_size(cmd), 5);
    assert_string_equal(json_string_value(json_array_get(cmd, 0)),
                        "redis-server");
    assert_string_equal(json_string_value(json_array_get(cmd, 2)), "23456");
    assert_string_equal(json_string_value(json_array_get(cmd, 4)), "amd64");
    assert_string_equal(jstr(b, "WorkingDir"), "/data");
    assert_string_equal(jstr(b, "User"), "999");
    assert_string_equal(jstr(b, "Hostname"), "cache-0");
    assert_true(json_is_true(json_object_get(b, "Tty")));
    assert_true(json_is_true(json_object_get(b, "OpenStdin")));
    assert_string_equal(
        json_string_value(json_array_get(
            json_object_get(json_object_get(b, "Healthcheck"), "Test"), 0)),
        "NONE");
    const json_t *env = json_object_get(b, "Env");
    assert_true(array_has(env, "NOMAD_ALLOC_DIR=/alloc"));
    assert_true(array_has(env, "NOMAD_TASK_DIR=/local"));
    assert_true(array_has(env, "NOMAD_SECRETS_DIR=/secrets"));
    assert_true(array_has(env, "NOMAD_HOST_PORT_db=23456"));

    /* labels: the task's, the allocation's, and the extra ones asked for */
    const json_t *labels = json_object_get(b, "Labels");
    assert_string_equal(jstr(labels, "team"), "shop");
    assert_string_equal(json_string_value(json_object_get(
                            labels, "com.hashicorp.nomad.alloc_id")),
                        f.a.id);
    assert_string_equal(json_string_value(json_object_get(
                            labels, "com.hashicorp.nomad.job_name")),
                        "shop");
    assert_string_equal(json_string_value(json_object_get(
                            labels, "com.hashicorp.nomad.job_id")),
                        "shop");
    assert_string_equal(json_string_value(json_object_get(
                            labels, "com.hashicorp.nomad.node_name")),
                        "worker-1");
    assert_null(json_object_get(labels, "com.hashicorp.nomad.task_name"));
    assert_int_equal(json_object_size(labels), 5);

    /* resources: memory_hard_limit is the limit, memory the reservation */
    assert_int_equal(json_integer_value(json_object_get(h, "Memory")),
                     512 << 20);
    assert_int_equal(
        json_integer_value(json_object_get(h, "MemoryReservation")), 256 << 20);
    assert_int_equal(json_integer_value(json_object_get(h, "MemorySwap")),
                     512 << 20);
    assert_int_equal(json_integer_value(json_object_get(h, "CpuShares")), 500);
    assert_int_equal(json_integer_value(json_object_get(h, "PidsLimit")), 64);
    assert_int_equal(json_integer_value(json_object_get(h, "ShmSize")), 1024);
    assert_null(json_object_get(h, "CpuQuota"));

    /* binds exactly as Nomad makes them, then the config's volumes */
    const json_t *binds = json_object_get(h, "Binds");
    assert_int_equal(json_array_size(binds), 5);
    assert_string_equal(json_string_value(json_array_get(binds, 0)),
                        "/d/alloc/a1/alloc:/alloc");
    assert_string_equal(json_string_value(json_array_get(binds, 1)),
                        "/d/alloc/a1/redis/local:/local");
    assert_string_equal(json_string_value(json_array_get(binds, 2)),
                        "/d/alloc/a1/redis/secrets:/secrets");
    assert_string_equal(json_string_value(json_array_get(binds, 3)),
                        "/d/alloc/a1/redis/local/conf:/etc/redis");
    assert_string_equal(json_string_value(json_array_get(binds, 4)),
                        "/d/alloc/a1/alloc/shared:/s:ro");

    /* mounts: the config's, then the host volume read-only */
    const json_t *mounts = json_object_get(h, "Mounts");
    assert_int_equal(json_array_size(mounts), 3);
    const json_t *m0 = json_array_get(mounts, 0);
    assert_string_equal(jstr(m0, "Type"), "tmpfs");
    assert_string_equal(jstr(m0, "Target"), "/run");
    assert_int_equal(json_integer_value(json_object_get(
                         json_object_get(m0, "TmpfsOptions"), "SizeBytes")),
                     1048576);
    const json_t *m1 = json_array_get(mounts, 1);
    assert_string_equal(jstr(m1, "Source"), "/d/alloc/a1/redis/secrets/cfg");
    assert_true(json_is_true(json_object_get(m1, "ReadOnly")));
    const json_t *m2 = json_array_get(mounts, 2);
    assert_string_equal(jstr(m2, "Type"), "bind");
    assert_string_equal(jstr(m2, "Source"), "/srv/pg");
    assert_string_equal(jstr(m2, "Target"), "/var/lib/pg");
    assert_true(json_is_true(json_object_get(m2, "ReadOnly")));
    assert_string_equal(jstr(m2, "BindOptions.Propagation"), "rslave");

    /* host networking: Docker's default network, the ports bound */
    assert_string_equal(jstr(h, "NetworkMode"), "default");
    const json_t *pb = json_object_get(h, "PortBindings");
    assert_int_equal(json_object_size(pb), 4);
    const json_t *tcp = json_array_get(json_object_get(pb, "6379/tcp"), 0);
    assert_string_equal(jstr(tcp, "HostIp"), "10.1.1.5");
    assert_string_equal(jstr(tcp, "HostPort"), "23456");
    assert_non_null(json_object_get(pb, "6379/udp"));
    assert_string_equal(
        jstr(json_array_get(json_object_get(pb, "9000/tcp"), 0), "HostPort"),
        "9000");
    const json_t *exposed = json_object_get(b, "ExposedPorts");
    assert_int_equal(json_object_size(exposed), 4);
    assert_non_null(json_object_get(exposed, "9000/udp"));
    /* the group's dns block wins over dns_* */
    assert_string_equal(
        json_string_value(json_array_get(json_object_get(h, "Dns"), 0)),
        "10.0.0.2");
    assert_true(
        array_has(json_object_get(h, "ExtraHosts"), "db.local:10.0.0.9"));
    assert_true(array_has(
        json_object_get(
            json_object_get(
                json_object_get(json_object_get(b, "NetworkingConfig"),
                                "EndpointsConfig"),
                "default"),
            "Aliases"),
        "cache"));

    /* capabilities as Docker's defaults within allow_caps */
    const json_t *ca = json_object_get(h, "CapAdd");
    assert_int_equal(json_array_size(ca), 1);
    assert_string_equal(json_string_value(json_array_get(ca, 0)), "chown");
    const json_t *cd = json_object_get(h, "CapDrop");
    assert_true(array_has(cd, "kill"));
    assert_true(array_has(cd, "net_raw")); /* not in allow_caps */
    assert_int_equal(json_array_size(cd), 2);

    const json_t *ul = json_object_get(h, "Ulimits");
    assert_int_equal(json_array_size(ul), 2);
    const json_t *u0 = json_array_get(ul, 0);
    assert_string_equal(jstr(u0, "Name"), "nofile");
    assert_int_equal(json_integer_value(json_object_get(u0, "Soft")), 1024);
    assert_int_equal(json_integer_value(json_object_get(u0, "Hard")), 4096);
    assert_int_equal(
        json_integer_value(json_object_get(json_array_get(ul, 1), "Hard")), 64);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(h, "Sysctls"),
                                          "net.core.somaxconn")),
        "512");
    const json_t *dev = json_array_get(json_object_get(h, "Devices"), 0);
    assert_string_equal(jstr(dev, "PathOnHost"), "/dev/fuse");
    assert_string_equal(jstr(dev, "PathInContainer"), "/dev/fuse");
    assert_string_equal(jstr(dev, "CgroupPermissions"), "rwm");
    /* Nomad's log default */
    assert_string_equal(jstr(h, "LogConfig.Type"), "json-file");
    assert_string_equal(jstr(h, "LogConfig.Config.max-file"), "2");
    assert_string_equal(jstr(h, "LogConfig.Config.max-size"), "2m");
    assert_false(json_is_true(json_object_get(h, "Privileged")));
    json_decref(b);
    fixture_free(&f);
}

/* A bridge group: the task joins the pause container's namespace; no
 * port bindings, and what the shared namespace owns cannot be set. */
static void test_container_body_group_network(void **state)
{
    (void)state;
    struct fixture f;
    fixture_init(&f,
                 "job \"j\" {\n  group \"cache\" {\n"
                 "    network {\n      mode = \"bridge\"\n"
                 "      port \"db\" {\n        to = 6379\n      }\n    }\n"
                 "    task \"redis\" {\n      driver = \"docker\"\n"
                 "      config {\n        image = \"redis\"\n"
                 "        ports = [\"db\"]\n"
                 "        args = [\"${NOMAD_ALLOC_DIR}/x\"]\n"
                 "        cpu_hard_limit = true\n"
                 "        logging {\n          type = \"local\"\n        }\n"
                 "      }\n"
                 "      resources {\n        cpu = 1000\n        memory = 128\n"
                 "        memory_max = 256\n      }\n"
                 "    }\n  }\n}\n");
    f.a.network_mode = "bridge";
    f.cfg.client.docker.volumes.selinuxlabel = xstrdup("z");
    struct nc_error err = {0};
    json_t *b = fixture_body(&f, "container:abc123", &err);
    if (!b)
        fail_msg("%s", err.msg);
    const json_t *h = json_object_get(b, "HostConfig");
    assert_string_equal(jstr(b, "Image"), "redis");
    assert_string_equal(jstr(h, "NetworkMode"), "container:abc123");
    assert_null(json_object_get(h, "PortBindings"));
    assert_null(json_object_get(b, "ExposedPorts"));
    assert_null(json_object_get(b, "Hostname"));
    assert_null(json_object_get(h, "Dns"));
    assert_string_equal(
        json_string_value(json_array_get(json_object_get(b, "Cmd"), 0)),
        "/alloc/x");
    assert_string_equal(
        json_string_value(json_array_get(json_object_get(h, "Binds"), 0)),
        "/d/alloc/a1/alloc:/alloc:z");
    /* memory_max is the limit */
    assert_int_equal(json_integer_value(json_object_get(h, "Memory")),
                     256 << 20);
    assert_int_equal(
        json_integer_value(json_object_get(h, "MemoryReservation")), 128 << 20);
    /* a quarter of a 4000 MHz node, on every core */
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    assert_int_equal(json_integer_value(json_object_get(h, "CpuPeriod")),
                     100000);
    assert_int_equal(json_integer_value(json_object_get(h, "CpuQuota")),
                     25000 * ncpu);
    assert_string_equal(jstr(h, "LogConfig.Type"), "local");
    assert_int_equal(json_object_size(json_object_get(
                         json_object_get(h, "LogConfig"), "Config")),
                     0);
    json_decref(b);

    /* the task's own network_mode wins, as in Nomad */
    json_object_set_new(fixture_spec(&f)->config, "network_mode",
                        json_string("host"));
    b = fixture_body(&f, "container:abc123", &err);
    if (!b)
        fail_msg("%s", err.msg);
    assert_string_equal(jstr(b, "HostConfig.NetworkMode"), "host");
    assert_non_null(
        json_object_get(json_object_get(b, "HostConfig"), "PortBindings"));
    json_decref(b);
    json_object_del(fixture_spec(&f)->config, "network_mode");

    json_object_set_new(fixture_spec(&f)->config, "hostname", json_string("h"));
    assert_null(fixture_body(&f, "container:abc123", &err));
    assert_string_equal(err.msg,
                        "hostname cannot be set with network mode "
                        "\"container:abc123\"; set it in the group's network "
                        "block");
    fixture_free(&f);
}

static void test_container_body_errors(void **state)
{
    (void)state;
    struct fixture f;
    const char *tmpl = "job \"j\" {\n  group \"cache\" {\n"
                       "    task \"redis\" {\n      driver = \"docker\"\n"
                       "      config {\n        image = \"redis\"\n%s"
                       "      }\n    }\n  }\n}\n";
    static const struct {
        const char *config, *msg;
    } cases[] = {
        /* interpolated to a path outside the allocation */
        {"        volumes = [\"${NOMAD_ALLOC_DIR}/../../x:/x\"]\n",
         "volumes are not enabled; cannot mount host paths: "
         "\"/alloc/../../x:/x\""},
        {"        mount {\n          type = \"bind\"\n"
         "          target = \"/x\"\n"
         "          source = \"${NOMAD_TASK_DIR}\"\n        }\n",
         "volumes are not enabled; cannot mount host path: \"/local\" "
         "\"/d/alloc/a1\""},
        {"        ports = [\"web\"]\n",
         "Port \"web\" not found, check network block"},
        {"        port_map {\n          web = 80\n        }\n",
         "Trying to map ports but no network interface is available"},
        {"        image = \"${NOMAD_META_missing}\"\n",
         "config > image: invalid reference format: \"${NOMAD_META_missing}\""},
        {"        command = \"${NOMAD_META_missing_too}\"\n"
         "        security_opt = [\"seccomp=/nonexistent/profile.json\"]\n",
         NULL}, /* checked below: the file is read */
    };
    for (size_t i = 0; i < NC_ARRAY_LEN(cases); i++) {
        char *src = xasprintf(tmpl, cases[i].config);
        if (strstr(cases[i].config, "image = ")) {
            /* the case's image replaces the first */
            free(src);
            src = xasprintf("job \"j\" {\n  group \"cache\" {\n"
                            "    task \"redis\" {\n      driver = \"docker\"\n"
                            "      config {\n%s      }\n    }\n  }\n}\n",
                            cases[i].config);
        }
        fixture_init(&f, src);
        free(src);
        f.a.nports = 0;
        struct nc_error err = {0};
        json_t *b = fixture_body(&f, NULL, &err);
        assert_null(b);
        if (cases[i].msg)
            assert_string_equal(err.msg, cases[i].msg);
        else
            assert_non_null(strstr(err.msg, "opening seccomp profile "
                                            "(/nonexistent/profile.json) "
                                            "failed"));
        fixture_free(&f);
    }
}

/* ---- registry credentials ---- */

static void write_file(const char *path, const char *text, int mode)
{
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
    chmod(path, mode);
}

static void test_auth(void **state)
{
    (void)state;
    signal(SIGPIPE, SIG_IGN); /* as the agent runs */
    char dir[] = "/tmp/nc-dockerauth-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char *old_path = xstrdup(getenv("PATH"));
    char *path = xasprintf("%s:%s", dir, old_path ? old_path : "/usr/bin:/bin");
    setenv("PATH", path, 1);
    free(path);

    /* helpers: one answers with what it read, one fails, one is silent */
    char *h_ok = xasprintf("%s/docker-credential-test", dir);
    write_file(h_ok,
               "#!/bin/sh\n[ \"$1\" = get ] || exit 3\nread -r server\n"
               "printf '{\"ServerURL\":\"%s\",\"Username\":\"u-%s\","
               "\"Secret\":\"s3cret\"}' \"$server\" \"$server\"\n",
               0755);
    char *h_bad = xasprintf("%s/docker-credential-broken", dir);
    write_file(h_bad, "#!/bin/sh\necho 'credentials not found' >&2\nexit 1\n",
               0755);
    char *h_junk = xasprintf("%s/docker-credential-junk", dir);
    write_file(h_junk, "#!/bin/sh\necho 'Username: u'\n", 0755);
    char *h_none = xasprintf("%s/docker-credential-empty", dir);
    write_file(h_none, "#!/bin/sh\ncat >/dev/null\necho '{}'\n", 0755);

    /* base64("alice:pa:ss") */
    char *file = xasprintf("%s/config.json", dir);
    write_file(file,
               "{\"auths\": {"
               " \"https://index.docker.io/v1/\": {\"auth\": "
               "\"YWxpY2U6cGE6c3M=\", \"email\": \"a@x\"},"
               " \"https://legacy.example.com/v1/\": {\"username\": \"bob\","
               " \"password\": \"pw\"},"
               " \"empty.example.com\": {}},"
               " \"credHelpers\": {\"helped.example.com\": \"test\","
               " \"broken.example.com\": \"broken\"},"
               " \"credsStore\": \"empty\"}",
               0600);

    struct agent_config cfg;
    config_defaults(&cfg, false);
    cfg.client.docker.auth.config = xstrdup(file);
    struct docker_auth a;
    struct nc_error err = {0};

    /* the task's block first */
    struct task *t =
        task_with("{\"image\": \"redis\", \"auth\": [{\"username\":"
                  " \"tu\", \"password\": \"tp\", "
                  "\"server_address\": \"r.io\"}]}");
    assert_int_equal(docker_auth_lookup(&cfg, t, "redis", &a, &err), 1);
    assert_string_equal(a.username, "tu");
    assert_string_equal(a.password, "tp");
    assert_string_equal(a.server, "r.io");
    char *hdr = docker_auth_header(&a);
    assert_non_null(hdr);
    assert_null(strpbrk(hdr, "+/")); /* URL-safe */
    assert_true(strlen(hdr) % 4 == 0);
    free(hdr);
    docker_auth_free(&a);
    task_free(t);

    t = task_with("{\"image\": \"redis\"}");
    assert_int_equal(docker_auth_lookup(&cfg, t, "library/redis", &a, &err), 1);
    assert_string_equal(a.username, "alice");
    assert_string_equal(a.password, "pa:ss");
    assert_string_equal(a.email, "a@x");
    assert_string_equal(a.server, "https://index.docker.io/v1/");
    docker_auth_free(&a);
    /* a legacy key matched by its host */
    assert_int_equal(
        docker_auth_lookup(&cfg, t, "legacy.example.com/app", &a, &err), 1);
    assert_string_equal(a.username, "bob");
    docker_auth_free(&a);
    /* credHelpers, with the registry on the helper's stdin */
    assert_int_equal(
        docker_auth_lookup(&cfg, t, "helped.example.com/app", &a, &err), 1);
    assert_string_equal(a.username, "u-helped.example.com");
    assert_string_equal(a.password, "s3cret");
    docker_auth_free(&a);
    assert_int_equal(
        docker_auth_lookup(&cfg, t, "broken.example.com/app", &a, &err), -EIO);
    assert_string_equal(err.msg, "docker-credential-broken with input "
                                 "\"broken.example.com\" failed with stderr: "
                                 "credentials not found");
    /* an empty entry, then credsStore that knows nothing: none */
    assert_int_equal(
        docker_auth_lookup(&cfg, t, "empty.example.com/app", &a, &err), 0);
    assert_null(a.username);

    /* the plugin's helper when the file has nothing */
    free(cfg.client.docker.auth.config);
    cfg.client.docker.auth.config = NULL;
    cfg.client.docker.auth.helper = xstrdup("test");
    assert_int_equal(docker_auth_lookup(&cfg, t, "quay.io/x/y", &a, &err), 1);
    assert_string_equal(a.username, "u-quay.io");
    docker_auth_free(&a);
    free(cfg.client.docker.auth.helper);
    cfg.client.docker.auth.helper = xstrdup("junk");
    assert_int_equal(docker_auth_lookup(&cfg, t, "quay.io/x/y", &a, &err),
                     -EINVAL);
    assert_true(nc_str_has_prefix(err.msg, "docker-credential-junk: the answer "
                                           "is not a JSON object"));
    free(cfg.client.docker.auth.helper);
    cfg.client.docker.auth.helper = xstrdup("missing");
    assert_int_equal(docker_auth_lookup(&cfg, t, "quay.io/x/y", &a, &err),
                     -ENOENT);
    assert_string_equal(err.msg, "exec: \"docker-credential-missing\": "
                                 "executable file not found in $PATH");
    free(cfg.client.docker.auth.helper);
    cfg.client.docker.auth.helper = NULL;
    assert_int_equal(docker_auth_lookup(&cfg, t, "quay.io/x/y", &a, &err), 0);

    /* a broken file */
    char *bad = xasprintf("%s/bad.json", dir);
    write_file(bad, "{\"auths\": ", 0600);
    cfg.client.docker.auth.config = xstrdup(bad);
    assert_int_equal(docker_auth_lookup(&cfg, t, "redis", &a, &err), -EINVAL);
    assert_true(
        nc_str_has_prefix(err.msg, "Failed to parse auth config file: "));
    free(cfg.client.docker.auth.config);
    cfg.client.docker.auth.config = xasprintf("%s/absent.json", dir);
    assert_int_equal(docker_auth_lookup(&cfg, t, "redis", &a, &err), -ENOENT);
    assert_true(
        nc_str_has_prefix(err.msg, "Failed to open auth config file: "));
    task_free(t);
    config_free(&cfg);

    setenv("PATH", old_path ? old_path : "/usr/bin:/bin", 1);
    free(old_path);
    const char *files[] = {h_ok, h_bad, h_junk, h_none, file, bad};
    for (size_t i = 0; i < NC_ARRAY_LEN(files); i++) {
        unlink(files[i]);
        free((char *)files[i]);
    }
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plugin_keys_table),
        cmocka_unit_test(test_plugin_defaults),
        cmocka_unit_test(test_plugin_config),
        cmocka_unit_test(test_plugin_config_errors),
        cmocka_unit_test(test_plugin_config_file),
        cmocka_unit_test(test_validate_shape),
        cmocka_unit_test(test_validate_images),
        cmocka_unit_test(test_validate_plugin_rules),
        cmocka_unit_test(test_validate_job),
        cmocka_unit_test(test_seed_jobs),
        cmocka_unit_test(test_parse_image),
        cmocka_unit_test(test_container_body),
        cmocka_unit_test(test_container_body_group_network),
        cmocka_unit_test(test_container_body_errors),
        cmocka_unit_test(test_auth),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
