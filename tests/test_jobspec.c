// deps: client/job/ client/hcl/ client/util.c
/* Tests for the job model: HCL and JSON decoding, Nomad's defaults,
 * validation messages, warnings and the JSON round trip. Run with
 * cwd = tests/. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client/job/job.h"

#define SEC 1000000000LL
#define DATA "data/jobs/"

/* ---- helpers ---- */

static struct job *file_ok(const char *path)
{
    struct job *job = NULL;
    struct nc_error err = {0};
    int r = jobspec_parse_file(path, &job, &err);
    if (r != 0)
        fail_msg("%s: %s", path, err.msg);
    assert_non_null(job);
    return job;
}

static struct job *hcl_ok(const char *src)
{
    struct job *job = NULL;
    struct nc_error err = {0};
    int r = jobspec_parse_hcl("job.nomad", src, strlen(src), &job, &err);
    if (r != 0)
        fail_msg("unexpected error: %s", err.msg);
    return job;
}

/* Decoding must fail with exactly `want`. */
static void hcl_err(const char *src, const char *want)
{
    struct job *job = NULL;
    struct nc_error err = {0};
    int r = jobspec_parse_hcl("job.nomad", src, strlen(src), &job, &err);
    if (r == 0) {
        jobspec_free(job);
        fail_msg("expected error \"%s\", got success", want);
    }
    assert_int_equal(r, -EINVAL);
    assert_null(job);
    assert_string_equal(err.msg, want);
}

static struct job *json_ok(const char *src)
{
    struct job *job = NULL;
    struct nc_error err = {0};
    int r = jobspec_parse_json("job.json", src, strlen(src), &job, &err);
    if (r != 0)
        fail_msg("unexpected error: %s", err.msg);
    return job;
}

/* from_json on a document must fail with exactly `want`. */
static void json_err(const char *src, const char *want)
{
    json_error_t je;
    json_t *root = json_loads(src, 0, &je);
    if (!root)
        fail_msg("bad test JSON: %s", je.text);
    struct job *job = NULL;
    struct nc_error err = {0};
    int r = jobspec_from_json(root, &job, &err);
    json_decref(root);
    if (r == 0) {
        jobspec_free(job);
        fail_msg("expected error \"%s\", got success", want);
    }
    assert_int_equal(r, -EINVAL);
    assert_null(job);
    assert_string_equal(err.msg, want);
}

static char *dump(const json_t *j)
{
    return json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
}

/* JSON of a job, as text. */
static char *job_text(const struct job *job)
{
    json_t *j = jobspec_to_json(job);
    char *s = dump(j);
    json_decref(j);
    return s;
}

/* model -> JSON -> model -> JSON gives the same JSON, with and without
 * the {"Job": ...} wrapper. */
static void assert_roundtrip(const struct job *job)
{
    json_t *j1 = jobspec_to_json(job);
    char *s1 = dump(j1);
    for (int wrapped = 0; wrapped < 2; wrapped++) {
        json_t *doc = wrapped ? json_pack("{s:O}", "Job", j1) : json_incref(j1);
        struct job *back = NULL;
        struct nc_error err = {0};
        if (jobspec_from_json(doc, &back, &err) != 0)
            fail_msg("round trip decode failed: %s", err.msg);
        char *s2 = job_text(back);
        assert_string_equal(s1, s2);
        free(s2);
        jobspec_free(back);
        json_decref(doc);
    }
    free(s1);
    json_decref(j1);
}

static const struct task_group *group_named(const struct job *job,
                                            const char *name)
{
    for (size_t i = 0; i < job->ngroups; i++)
        if (strcmp(job->groups[i].name, name) == 0)
            return &job->groups[i];
    fail_msg("no group %s", name);
    return NULL;
}

/* Compares JSON values, whatever the order of object keys. */
static void assert_json_text(const json_t *j, const char *want)
{
    json_error_t je;
    json_t *w = json_loads(want, JSON_DECODE_ANY, &je);
    if (!w)
        fail_msg("bad expected JSON: %s", je.text);
    if (!json_equal((json_t *)j, w)) {
        char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
        char *t = json_dumps(w, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
        assert_string_equal(s, t);
        free(s);
        free(t);
    }
    json_decref(w);
}

static void assert_warnings(const struct job *job, const char *const *want,
                            size_t n)
{
    for (size_t i = 0; i < job->warnings.n && i < n; i++)
        assert_string_equal(job->warnings.items[i], want[i]);
    assert_int_equal(job->warnings.n, n);
}

/* ---- seed files ---- */

static void test_seed_platform(void **state)
{
    (void)state;
    struct job *job = file_ok(DATA "platform.nomad");
    assert_string_equal(job->id, "platform");
    assert_string_equal(job->name, "platform");
    assert_string_equal(job->type, "service");
    assert_int_equal(job->datacenters.n, 1);
    assert_string_equal(job->datacenters.items[0], "dc1");
    assert_int_equal(job->ngroups, 3);

    const struct task_group *fe = group_named(job, "frontend");
    assert_int_equal(fe->count, 3);
    assert_int_equal(fe->nnetworks, 1);
    assert_string_equal(fe->networks[0].mode, "bridge");
    assert_int_equal(fe->networks[0].nreserved_ports, 0);
    assert_int_equal(fe->networks[0].ndynamic_ports, 1);
    assert_string_equal(fe->networks[0].dynamic_ports[0].label, "http");
    assert_int_equal(fe->networks[0].dynamic_ports[0].to, 80);
    assert_int_equal(fe->networks[0].dynamic_ports[0].value, 0);
    assert_int_equal(fe->nservices, 1);
    const struct service *svc = &fe->services[0];
    assert_string_equal(svc->name, "frontend");
    assert_string_equal(svc->port_label, "http");
    assert_null(svc->task_name);
    assert_non_null(svc->connect);
    assert_json_text(svc->connect,
                     "{\"SidecarService\":{\"Proxy\":{\"Upstreams\":[{"
                     "\"DestinationName\":\"api\",\"LocalBindPort\":8080}]}}}");
    assert_int_equal(svc->nchecks, 1);
    assert_string_equal(svc->checks[0].type, "http");
    assert_string_equal(svc->checks[0].path, "/health");
    assert_true(svc->checks[0].interval == 10000000000LL);
    assert_true(svc->checks[0].timeout == 2 * SEC);
    assert_string_equal(svc->checks[0].protocol, "http");
    assert_string_equal(svc->checks[0].method, "GET");
    assert_int_equal(fe->ntasks, 1);
    const struct task *nginx = &fe->tasks[0];
    assert_string_equal(nginx->driver, "docker");
    assert_json_text(nginx->config,
                     "{\"image\":\"nginx:latest\",\"ports\":[\"http\"],"
                     "\"volumes\":[\"local/nginx.conf:/etc/nginx/nginx.conf\","
                     "\"local/html:/usr/share/nginx/html\"]}");
    assert_int_equal(nginx->ntemplates, 1);
    assert_true(strncmp(nginx->templates[0].embedded_tmpl,
                        "events {\n    worker_connections 1024;\n}\n",
                        38) == 0);
    assert_true(strstr(nginx->templates[0].embedded_tmpl,
                       "server {{ env \"NOMAD_UPSTREAM_ADDR_api\" }};") != NULL);
    assert_string_equal(nginx->templates[0].dest_path, "local/nginx.conf");
    assert_int_equal(nginx->resources.cpu, 500);
    assert_int_equal(nginx->resources.memory_mb, 256);

    const struct task_group *api = group_named(job, "api");
    assert_int_equal(api->count, 5);
    assert_non_null(api->update);
    assert_int_equal(api->update->canary, 1);
    assert_true(api->update->auto_revert);
    assert_false(api->update->auto_promote);
    assert_int_equal(api->update->max_parallel, 1);
    assert_true(api->update->min_healthy_time == 10 * SEC);
    assert_true(api->update->healthy_deadline == 300 * SEC);
    assert_true(api->update->progress_deadline == 600 * SEC);
    assert_true(api->update->stagger == 30 * SEC);
    const struct task *apit = &api->tasks[0];
    assert_json_text(apit->vault, "{\"AllowTokenExpiration\":false,"
                                  "\"ChangeMode\":\"restart\",\"ChangeSignal\":"
                                  "\"SIGHUP\",\"Cluster\":\"default\","
                                  "\"DisableFile\":false,\"Env\":true,"
                                  "\"Namespace\":\"\",\"Policies\":"
                                  "[\"api-prod\"]}");
    assert_true(apit->templates[0].envvars);
    assert_string_equal(apit->templates[0].dest_path, "secrets/config.env");
    assert_int_equal(apit->resources.cpu, 1000);

    const struct task_group *db = group_named(job, "database");
    assert_int_equal(db->networks[0].nreserved_ports, 1);
    assert_string_equal(db->networks[0].reserved_ports[0].label, "db");
    assert_int_equal(db->networks[0].reserved_ports[0].value, 5432);
    assert_int_equal(db->networks[0].reserved_ports[0].to, 5432);
    assert_string_equal(db->networks[0].reserved_ports[0].host_network,
                        "default");
    assert_int_equal(db->nvolumes, 1);
    assert_string_equal(db->volumes[0].name, "postgres");
    assert_string_equal(db->volumes[0].type, "host");
    assert_string_equal(db->volumes[0].source, "postgres");
    assert_false(db->volumes[0].read_only);
    assert_string_equal(db->services[0].checks[0].type, "tcp");
    assert_null(db->services[0].checks[0].path);
    const struct task *pg = &db->tasks[0];
    assert_string_equal(kv_get(&pg->env, "POSTGRES_DB"), "myapp");
    assert_int_equal(pg->env.n, 3);
    assert_int_equal(pg->nvolume_mounts, 1);
    assert_string_equal(pg->volume_mounts[0].volume, "postgres");
    assert_string_equal(pg->volume_mounts[0].destination,
                        "/var/lib/postgresql/data");
    assert_string_equal(pg->volume_mounts[0].propagation_mode, "private");

    static const char *const warnings[] = {
        "group \"frontend\" > service \"frontend\": connect sidecars are not "
        "supported by this node; kept but ignored",
        "group \"api\" > update: rolling updates, canaries and auto_revert "
        "are not run by this node (a new job version replaces every "
        "allocation at once); kept but ignored",
        "group \"api\" > service \"api\": connect sidecars are not supported "
        "by this node; kept but ignored",
        "group \"api\" > task \"api\": vault is not supported by this node; "
        "kept but ignored",
    };
    assert_warnings(job, warnings, NC_ARRAY_LEN(warnings));
    jobspec_free(job);
}

/* Item 9 of "No silent ignores": every stanza decoded but not acted on is
 * a warning naming its path; what the node does act on (or is being made
 * real: artifact, lifecycle, dns, hostname, logs.disabled, network mode
 * none; script checks are not accepted here yet) is not. */
static void test_warnings_ignored_stanzas(void **state)
{
    (void)state;
    struct job *job = hcl_ok(
        "job \"w\" {\n"
        "  update { max_parallel = 2 }\n"
        "  group \"g\" {\n"
        "    migrate { min_healthy_time = \"30s\" }\n"
        "    ephemeral_disk { sticky = true }\n"
        "    stop_after_client_disconnect = \"1m\"\n"
        "    network {\n"
        "      mbits = 10\n"
        "      port \"http\" { host_network = \"public\" }\n"
        "    }\n"
        "    volume \"data\" {\n"
        "      type   = \"host\"\n"
        "      source = \"data\"\n"
        "    }\n"
        "    service {\n"
        "      name        = \"web\"\n"
        "      port        = \"http\"\n"
        "      canary_tags = [\"canary\"]\n"
        "      check {\n"
        "        name     = \"alive\"\n"
        "        type     = \"http\"\n"
        "        path     = \"/\"\n"
        "        interval = \"10s\"\n"
        "        timeout  = \"2s\"\n"
        "        expose   = true\n"
        "      }\n"
        "    }\n"
        "    task \"t\" {\n"
        "      driver = \"raw_exec\"\n"
        "      config { command = \"/bin/true\" }\n"
        "      leader = true\n"
        "      volume_mount {\n"
        "        volume           = \"data\"\n"
        "        destination      = \"/data\"\n"
        "        propagation_mode = \"host-to-task\"\n"
        "      }\n"
        "      template {\n"
        "        data        = \"x\"\n"
        "        destination = \"local/x\"\n"
        "      }\n"
        "      vault { policies = [\"p\"] }\n"
        "    }\n"
        "  }\n"
        "}\n");
    static const char *const want[] = {
        "group \"g\" > update: rolling updates, canaries and auto_revert are "
        "not run by this node (a new job version replaces every allocation "
        "at once); kept but ignored",
        "group \"g\" > migrate: health_check, min_healthy_time and "
        "healthy_deadline are not acted on by this node (a drain stops "
        "max_parallel allocations at a time, with no replacement elsewhere "
        "to wait for); kept but ignored",
        "group \"g\" > ephemeral_disk: sticky and migrate are not acted on "
        "by this node (a replacement allocation starts with a new "
        "directory); kept but ignored",
        "group \"g\": stop_after_client_disconnect is not acted on by this "
        "node (it has no servers to lose); kept but ignored",
        "group \"g\" > network: mbits is not reserved nor enforced by this "
        "node; kept but ignored",
        "group \"g\" > network > port \"http\": host_network \"public\": "
        "host networks are not supported by this node (the port is on the "
        "default network); kept but ignored",
        "group \"g\" > service \"web\": canary_tags and canary_meta are used "
        "only by canary deployments, which this node does not run; kept but "
        "ignored",
        "group \"g\" > service \"web\" > check \"alive\": expose needs a "
        "Consul Connect sidecar, which this node does not run; kept but "
        "ignored",
        "group \"g\" > task \"t\": vault is not supported by this node; kept "
        "but ignored",
        "group \"g\" > task \"t\" > volume_mount: propagation_mode "
        "\"host-to-task\" is not supported by this node (mounts are "
        "private); kept but ignored",
    };
    assert_warnings(job, want, NC_ARRAY_LEN(want));
    jobspec_free(job);

    /* what is acted on, or being made real, and Nomad's defaults (the
     * migrate a service group gets without the block): no warning */
    job = hcl_ok(
        "job \"quiet\" {\n"
        "  group \"g\" {\n"
        "    network {\n"
        "      mode     = \"none\"\n"
        "      hostname = \"h\"\n"
        "      dns { servers = [\"1.1.1.1\"] }\n"
        "    }\n"
        "    task \"pre\" {\n"
        "      driver = \"raw_exec\"\n"
        "      config { command = \"/bin/true\" }\n"
        "      lifecycle { hook = \"prestart\" }\n"
        "      artifact { source = \"https://example.com/x.tgz\" }\n"
        "      logs { disabled = true }\n"
        "    }\n"
        "    task \"t\" {\n"
        "      driver = \"raw_exec\"\n"
        "      config { command = \"/bin/true\" }\n"
        "      service {\n"
        "        name     = \"s\"\n"
        "        provider = \"nomad\"\n"
        "      }\n"
        "    }\n"
        "  }\n"
        "}\n");
    assert_warnings(job, NULL, 0);
    jobspec_free(job);
}

static void test_seed_custom_scheduler(void **state)
{
    (void)state;
    struct job *job = file_ok(DATA "custom-scheduler.nomad");
    assert_string_equal(job->type, "system");
    assert_int_equal(job->nconstraints, 2);
    assert_string_equal(job->constraints[0].ltarget, "${attr.cpu.arch}");
    assert_string_equal(job->constraints[0].rtarget, "amd64");
    assert_string_equal(job->constraints[0].operand, "=");
    assert_int_equal(job->nspreads, 1);
    assert_string_equal(job->spreads[0].attribute, "${node.datacenter}");
    assert_int_equal(job->spreads[0].weight, 100);
    assert_int_equal(job->spreads[0].ntargets, 2);
    assert_string_equal(job->spreads[0].targets[1].value, "us-west");
    assert_int_equal(job->spreads[0].targets[1].percent, 40);
    assert_int_equal(job->naffinities, 1);
    assert_int_equal(job->affinities[0].weight, 50);
    assert_string_equal(job->affinities[0].operand, "=");

    const struct task_group *g = &job->groups[0];
    assert_int_equal(g->count, 10);
    assert_non_null(g->reschedule);
    assert_int_equal(g->reschedule->attempts, 3);
    assert_true(g->reschedule->interval == 3600 * SEC);
    assert_string_equal(g->reschedule->delay_function, "exponential");
    assert_false(g->reschedule->unlimited);
    assert_non_null(g->migrate);
    assert_int_equal(g->migrate->max_parallel, 3);
    assert_null(g->update);

    const struct task *t = &g->tasks[0];
    assert_int_equal(t->nscaling_policies, 1);
    const struct scaling_policy *sp = &t->scaling_policies[0];
    assert_true(sp->enabled);
    assert_true(sp->min == 5);
    assert_true(sp->max == 20);
    assert_string_equal(sp->type, "horizontal");
    assert_json_text(
        sp->policy,
        "{\"cooldown\":\"2m\",\"evaluation_interval\":\"1m\",\"check\":[{"
        "\"cpu\":[{\"source\":\"prometheus\",\"query\":\"avg(nomad_client_"
        "allocs_cpu_total_percent{task_group=\\\"workers\\\"})\",\"strategy\":"
        "[{\"target-value\":[{\"target\":70}]}]}]}]}");

    static const char *const warnings[] = {
        "job \"custom-scheduler\" > affinity: affinity is not supported by "
        "this node; kept but ignored",
        "job \"custom-scheduler\" > spread: spread is not supported by this "
        "node; kept but ignored",
        "group \"workers\": count 10 is ignored: system jobs run one "
        "allocation per node",
        "group \"workers\" > reschedule: system jobs are not rescheduled; kept "
        "but ignored",
        "group \"workers\" > migrate: migrate applies to service jobs only; "
        "kept but ignored",
        "group \"workers\" > task \"worker\" > scaling: scaling policies are "
        "not acted on by this node (no autoscaler); kept but ignored",
    };
    assert_warnings(job, warnings, NC_ARRAY_LEN(warnings));
    jobspec_free(job);
}

static void test_seed_secrets_and_mesh(void **state)
{
    (void)state;
    struct job *job = file_ok(DATA "secrets.nomad");
    const struct task *t = &job->groups[0].tasks[0];
    assert_string_equal(json_string_value(json_object_get(t->vault,
                                                          "ChangeMode")),
                        "signal");
    assert_string_equal(json_string_value(json_object_get(t->vault,
                                                          "ChangeSignal")),
                        "SIGUSR1");
    assert_true(strstr(t->templates[0].embedded_tmpl,
                       "AWS_SECRET_ACCESS_KEY=\"{{ .Data.secret_key }}\"") !=
                NULL);
    assert_int_equal(job->warnings.n, 1); /* vault; templates are rendered */
    jobspec_free(job);

    job = file_ok(DATA "service-mesh.nomad");
    const struct task_group *g = &job->groups[0];
    assert_int_equal(g->count, 1);
    assert_json_text(
        g->services[0].connect,
        "{\"SidecarService\":{\"Proxy\":{\"Config\":{\"protocol\":\"http\"},"
        "\"Expose\":{\"Paths\":[{\"Path\":\"/api\",\"Protocol\":\"http\","
        "\"LocalPathPort\":8080,\"ListenerPort\":\"expose\"}]},\"Upstreams\":"
        "[{\"DestinationName\":\"database\",\"LocalBindPort\":5432}]}}}");
    assert_string_equal(kv_get(&g->tasks[0].env, "CONSUL_HTTP_ADDR"),
                        "http://${NOMAD_IP_http}:8500");
    jobspec_free(job);
}

/* ---- defaults ---- */

static void test_defaults_service(void **state)
{
    (void)state;
    struct job *job = file_ok(DATA "minimal.nomad");
    assert_string_equal(job->id, "min");
    assert_string_equal(job->name, "min");
    assert_string_equal(job->type, "service");
    assert_int_equal(job->priority, 50);
    assert_string_equal(job->region, "global");
    assert_string_equal(job->namespace, "default");
    assert_string_equal(job->node_pool, "default");
    assert_int_equal(job->datacenters.n, 1);
    assert_string_equal(job->datacenters.items[0], "*");
    assert_null(job->update);
    const struct task_group *g = &job->groups[0];
    assert_int_equal(g->count, 1);
    assert_int_equal(g->restart.attempts, 2);
    assert_true(g->restart.interval == 1800 * SEC);
    assert_true(g->restart.delay == 15 * SEC);
    assert_string_equal(g->restart.mode, "fail");
    assert_non_null(g->reschedule);
    assert_true(g->reschedule->unlimited);
    assert_true(g->reschedule->delay == 30 * SEC);
    assert_true(g->reschedule->max_delay == 3600 * SEC);
    assert_string_equal(g->reschedule->delay_function, "exponential");
    assert_non_null(g->migrate);
    assert_int_equal(g->migrate->max_parallel, 1);
    assert_string_equal(g->migrate->health_check, "checks");
    assert_true(g->migrate->min_healthy_time == 10 * SEC);
    assert_true(g->migrate->healthy_deadline == 300 * SEC);
    assert_null(g->update);
    assert_int_equal(g->ephemeral_disk.mb, 300);
    assert_int_equal(g->nnetworks, 0);
    const struct task *t = &g->tasks[0];
    assert_true(t->kill_timeout == 5 * SEC);
    assert_int_equal(t->logs.max_files, 10);
    assert_int_equal(t->logs.max_file_size_mb, 10);
    assert_int_equal(t->resources.cpu, 100);
    assert_int_equal(t->resources.memory_mb, 300);
    assert_null(t->restart);
    assert_null(t->config);
    assert_int_equal(job->warnings.n, 0);
    jobspec_free(job);
}

static void test_defaults_batch_and_system(void **state)
{
    (void)state;
    struct job *job = file_ok(DATA "batch.nomad");
    const struct task_group *g = &job->groups[0];
    assert_int_equal(g->restart.attempts, 3);
    assert_true(g->restart.interval == 24 * 3600 * SEC);
    assert_true(g->restart.delay == 15 * SEC);
    assert_string_equal(g->restart.mode, "fail");
    assert_int_equal(g->reschedule->attempts, 1);
    assert_true(g->reschedule->interval == 24 * 3600 * SEC);
    assert_true(g->reschedule->delay == 5 * SEC);
    assert_string_equal(g->reschedule->delay_function, "constant");
    assert_false(g->reschedule->unlimited);
    assert_null(g->migrate);
    assert_json_text(job->periodic,
                     "{\"Spec\":\"0 3 * * *\",\"ProhibitOverlap\":true,"
                     "\"TimeZone\":\"Europe/Paris\",\"SpecType\":\"cron\","
                     "\"Enabled\":true,\"Specs\":[]}");
    assert_json_text(job->parameterized,
                     "{\"Payload\":\"required\",\"MetaRequired\":"
                     "[\"customer\"]}");
    jobspec_free(job);

    job = file_ok(DATA "system.nomad");
    g = &job->groups[0];
    assert_null(g->reschedule);
    assert_null(g->migrate);
    assert_int_equal(g->restart.attempts, 2);
    assert_string_equal(g->networks[0].mode, "host");
    const struct service *s = &g->services[0];
    assert_string_equal(s->provider, "nomad");
    assert_string_equal(s->address_mode, "auto");
    assert_string_equal(s->on_update, "require_healthy");
    assert_string_equal(s->checks[0].on_update, "require_healthy");
    assert_string_equal(s->checks[0].protocol, "http");
    assert_string_equal(s->checks[0].method, "GET");
    assert_null(s->checks[0].check_restart);
    jobspec_free(job);
}

static void test_defaults_blocks(void **state)
{
    (void)state;
    struct job *job = hcl_ok(
        "job \"d\" {\n"
        "  update {\n"
        "    max_parallel = 3\n"
        "  }\n"
        "  group \"a\" {\n"
        "    update {}\n"
        "    scaling {\n"
        "      min = 2\n"
        "      max = 4\n"
        "    }\n"
        "    network {\n"
        "      port \"p\" {}\n"
        "    }\n"
        "    service {\n"
        "      port = \"p\"\n"
        "      check {\n"
        "        type     = \"tcp\"\n"
        "        interval = \"5s\"\n"
        "        timeout  = \"1s\"\n"
        "        check_restart {\n"
        "          limit = 2\n"
        "        }\n"
        "      }\n"
        "    }\n"
        "    task \"t\" {\n"
        "      driver = \"exec\"\n"
        "      service {\n"
        "        port = \"p\"\n"
        "      }\n"
        "      restart {\n"
        "        attempts = 9\n"
        "      }\n"
        "    }\n"
        "  }\n"
        "  group \"b\" {\n"
        "    task \"t\" {\n"
        "      driver = \"exec\"\n"
        "    }\n"
        "  }\n"
        "}\n");
    /* job update: DefaultUpdateStrategy under the given value */
    assert_non_null(job->update);
    assert_int_equal(job->update->max_parallel, 3);
    assert_string_equal(job->update->health_check, "checks");
    const struct task_group *a = &job->groups[0], *b = &job->groups[1];
    assert_int_equal(a->update->max_parallel, 3); /* merged from the job */
    assert_true(a->update->min_healthy_time == 10 * SEC);
    assert_true(a->update->healthy_deadline == 300 * SEC);
    assert_true(a->update->progress_deadline == 600 * SEC);
    assert_true(a->update->stagger == 30 * SEC);
    assert_string_equal(a->update->health_check, "checks");
    assert_non_null(b->update); /* inherited from the job */
    assert_int_equal(b->update->max_parallel, 3);
    /* count from scaling.min */
    assert_int_equal(a->count, 2);
    assert_true(a->scaling->enabled);
    assert_string_equal(a->scaling->type, "horizontal");
    assert_int_equal(b->count, 1);
    /* network and ports */
    assert_string_equal(a->networks[0].mode, "host");
    assert_string_equal(a->networks[0].dynamic_ports[0].host_network,
                        "default");
    /* service names derived, task service bound to its task */
    assert_string_equal(a->services[0].name, "d-a");
    assert_null(a->services[0].task_name);
    assert_string_equal(a->tasks[0].services[0].name, "d-a-t");
    assert_string_equal(a->tasks[0].services[0].task_name, "t");
    assert_string_equal(a->tasks[0].services[0].provider, "consul");
    /* check_restart grace 1s */
    const struct check *c = &a->services[0].checks[0];
    assert_non_null(c->check_restart);
    assert_int_equal(c->check_restart->limit, 2);
    assert_true(c->check_restart->grace == SEC);
    assert_null(c->protocol);
    assert_null(c->method);
    /* task restart: the group's with the task's attempts on top */
    assert_non_null(a->tasks[0].restart);
    assert_int_equal(a->tasks[0].restart->attempts, 9);
    assert_true(a->tasks[0].restart->interval == 1800 * SEC);
    assert_string_equal(a->tasks[0].restart->mode, "fail");
    assert_roundtrip(job);
    jobspec_free(job);
}

static void test_full_file(void **state)
{
    (void)state;
    struct job *job = file_ok(DATA "full.nomad");
    assert_string_equal(job->region, "eu");
    assert_string_equal(job->namespace, "apps");
    assert_string_equal(job->node_pool, "edge");
    assert_int_equal(job->priority, 70);
    assert_string_equal(kv_get(&job->meta, "tier"), "2");
    assert_string_equal(job->constraints[1].operand, "version");
    assert_string_equal(job->constraints[1].rtarget, ">= 12");
    assert_string_equal(job->constraints[2].operand, "distinct_hosts");
    assert_string_equal(job->constraints[2].rtarget, "true");
    const struct task_group *g = &job->groups[0];
    assert_int_equal(g->restart.attempts, 5);
    assert_string_equal(g->restart.mode, "delay");
    assert_true(g->restart.delay == 10 * SEC);
    assert_true(g->restart.interval == 1800 * SEC);
    assert_true(g->reschedule->delay == 60 * SEC);
    assert_int_equal(g->update->canary, 1);
    assert_int_equal(g->update->max_parallel, 2);
    assert_true(g->update->stagger == 45 * SEC);
    assert_int_equal(g->ephemeral_disk.mb, 500);
    assert_true(g->ephemeral_disk.sticky);
    assert_true(g->shutdown_delay == 5 * SEC);
    const struct network *n = &g->networks[0];
    assert_string_equal(n->hostname, "web-1");
    assert_string_equal(n->dns_servers.items[0], "10.0.0.53");
    assert_string_equal(n->dns_options.items[0], "ndots:2");
    assert_int_equal(n->nreserved_ports, 1);
    assert_string_equal(n->reserved_ports[0].label, "admin");
    assert_int_equal(n->reserved_ports[0].value, 9090);
    assert_string_equal(n->reserved_ports[0].host_network, "private");
    assert_string_equal(n->dynamic_ports[0].label, "http");
    assert_true(g->volumes[0].read_only);

    const struct service *s = &g->services[0];
    assert_string_equal(s->tags.items[1], "public");
    assert_string_equal(s->canary_tags.items[0], "canary");
    assert_string_equal(s->address_mode, "host");
    assert_string_equal(kv_get(&s->meta, "version"), "1");
    const struct check *c0 = &s->checks[0], *c1 = &s->checks[1];
    assert_string_equal(c0->name, "web-alive");
    assert_string_equal(c0->method, "POST");
    assert_string_equal(c0->body, "{}");
    assert_string_equal(kv_get(&c0->header, "Authorization"), "Basic abc");
    assert_string_equal(kv_get(&c0->header, "X-Trace"), "a\x1f" "b");
    /* service check_restart merged into every check */
    assert_int_equal(c0->check_restart->limit, 3);
    assert_true(c0->check_restart->grace == 30 * SEC);
    assert_false(c0->check_restart->ignore_warnings);
    assert_int_equal(c1->check_restart->limit, 3);
    assert_true(c1->check_restart->ignore_warnings);
    assert_string_equal(c1->port_label, "admin");
    assert_string_equal(c1->on_update, "ignore_warnings");

    const struct task *t = &g->tasks[0];
    assert_string_equal(t->user, "nobody");
    assert_true(t->kill_timeout == 20 * SEC);
    assert_string_equal(t->kill_signal, "SIGTERM");
    assert_true(t->leader);
    assert_json_text(t->config,
                     "{\"image\":\"example/web:1.0\",\"ports\":[\"http\"],"
                     "\"args\":[\"-port\",\"8080\"],\"labels\":[{\"app\":"
                     "\"web\"}],\"ratio\":1.5,\"mount\":[{\"type\":\"bind\","
                     "\"target\":\"/etc/certs\"},{\"type\":\"tmpfs\","
                     "\"target\":\"/tmp\"}]}");
    assert_string_equal(kv_get(&t->env, "PORT"), "8080");
    assert_int_equal(t->resources.cpu, 250);
    assert_int_equal(t->resources.memory_max_mb, 256);
    assert_json_text(t->resources.devices,
                     "[{\"Count\":2,\"Constraints\":[{\"LTarget\":"
                     "\"${device.attr.memory}\",\"Operand\":\">=\","
                     "\"RTarget\":\"2 GiB\"}],\"Name\":\"nvidia/gpu\"}]");
    assert_string_equal(t->templates[0].change_signal, "SIGHUP");
    assert_true(t->templates[0].splay == 10 * SEC);
    assert_string_equal(t->templates[0].perms, "0600");
    assert_string_equal(t->templates[0].left_delim, "{{");
    assert_int_equal(t->nartifacts, 1);
    assert_string_equal(t->artifacts[0].source, "https://example.com/app.tar.gz");
    assert_string_equal(t->artifacts[0].destination, "local/app");
    assert_string_equal(kv_get(&t->artifacts[0].options, "checksum"), "sha256:abcd");
    assert_string_equal(t->artifacts[0].mode, "any");
    assert_false(t->artifacts[0].insecure);
    assert_int_equal(t->logs.max_files, 3);
    assert_int_equal(t->logs.max_file_size_mb, 20);
    assert_int_equal(t->restart->attempts, 1);
    assert_string_equal(t->restart->mode, "delay");
    assert_string_equal(t->services[0].name, "full-web-app");
    assert_string_equal(t->services[0].checks[0].command, "/bin/check");
    const struct task *setup = &g->tasks[1];
    assert_non_null(setup->lifecycle);
    assert_string_equal(setup->lifecycle->hook, "prestart");
    assert_false(setup->lifecycle->sidecar);
    jobspec_free(job);
}

/* The JSON of a job in Nomad's API field names. */
static void test_json_output_shape(void **state)
{
    (void)state;
    struct job *job = file_ok(DATA "platform.nomad");
    json_t *j = jobspec_to_json(job);
    json_t *g = json_array_get(json_object_get(j, "TaskGroups"), 2);
    json_t *net = json_array_get(json_object_get(g, "Networks"), 0);
    assert_json_text(net, "{\"Mode\":\"bridge\",\"ReservedPorts\":[{\"Label\":"
                          "\"db\",\"Value\":5432,\"To\":5432,\"HostNetwork\":"
                          "\"default\"}],\"DynamicPorts\":null,\"MBits\":0,"
                          "\"DNS\":null,\"Hostname\":\"\"}");
    assert_json_text(json_object_get(g, "Volumes"),
                     "{\"postgres\":{\"Name\":\"postgres\",\"Type\":\"host\","
                     "\"Source\":\"postgres\",\"ReadOnly\":false,"
                     "\"AccessMode\":\"\",\"AttachmentMode\":\"\","
                     "\"PerAlloc\":false}}");
    assert_json_text(json_object_get(g, "RestartPolicy"),
                     "{\"Interval\":1800000000000,\"Attempts\":2,\"Delay\":"
                     "15000000000,\"Mode\":\"fail\",\"RenderTemplates\":false}");
    assert_json_text(json_object_get(g, "EphemeralDisk"),
                     "{\"Sticky\":false,\"Migrate\":false,\"SizeMB\":300}");
    json_t *check = json_array_get(
        json_object_get(json_array_get(json_object_get(g, "Services"), 0),
                        "Checks"),
        0);
    assert_int_equal(json_integer_value(json_object_get(check, "Interval")),
                     10000000000LL);
    assert_string_equal(json_string_value(json_object_get(check, "Type")),
                        "tcp");
    json_t *task = json_array_get(json_object_get(g, "Tasks"), 0);
    assert_json_text(json_object_get(task, "Resources"),
                     "{\"CPU\":1000,\"Cores\":0,\"MemoryMB\":1024,"
                     "\"MemoryMaxMB\":0,\"DiskMB\":0,\"Devices\":null}");
    assert_json_text(json_object_get(task, "LogConfig"),
                     "{\"MaxFiles\":10,\"MaxFileSizeMB\":10,\"Disabled\":false}");
    assert_json_text(json_object_get(task, "VolumeMounts"),
                     "[{\"Volume\":\"postgres\",\"Destination\":"
                     "\"/var/lib/postgresql/data\",\"ReadOnly\":false,"
                     "\"PropagationMode\":\"private\"}]");
    assert_int_equal(json_integer_value(json_object_get(task, "KillTimeout")),
                     5000000000LL);
    /* first keys as nomad job run -output prints them */
    const char *keys[] = {"Region", "Namespace", "ID", "Name", "Type",
                          "Priority"};
    void *it = json_object_iter(j);
    for (size_t i = 0; i < NC_ARRAY_LEN(keys); i++, it = json_object_iter_next(j, it))
        assert_string_equal(json_object_iter_key(it), keys[i]);
    json_decref(j);
    jobspec_free(job);
}

/* ---- round trips ---- */

static void test_roundtrip_all_files(void **state)
{
    (void)state;
    DIR *d = opendir(DATA);
    assert_non_null(d);
    struct dirent *e;
    int n = 0;
    while ((e = readdir(d))) {
        if (!nc_str_has_suffix(e->d_name, ".nomad") &&
            !nc_str_has_suffix(e->d_name, ".json"))
            continue;
        char *path = xasprintf(DATA "%s", e->d_name);
        struct job *job = file_ok(path);
        assert_roundtrip(job);
        jobspec_free(job);
        free(path);
        n++;
    }
    closedir(d);
    assert_true(n >= 9);
}

/* HCL and JSON inputs describing the same job give the same JSON. */
static void test_json_input_matches_hcl(void **state)
{
    (void)state;
    struct job *h = file_ok(DATA "platform.nomad");
    char *a = job_text(h);
    struct job *j = json_ok(a);
    char *b = job_text(j);
    assert_string_equal(a, b);
    /* a job file in JSON is detected by its first character */
    char path[] = "/tmp/nc-jobspec-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fprintf(f, "\n  \t{\"Job\": %s}", a);
    fclose(f);
    struct job *k = file_ok(path);
    char *c = job_text(k);
    assert_string_equal(a, c);
    unlink(path);
    free(a);
    free(b);
    free(c);
    jobspec_free(h);
    jobspec_free(j);
    jobspec_free(k);
}

static void test_json_file_and_unknown_fields(void **state)
{
    (void)state;
    struct job *job = file_ok(DATA "web.json");
    assert_string_equal(job->id, "web-json");
    assert_string_equal(kv_get(&job->meta, "owner"), "ops");
    const struct task_group *g = &job->groups[0];
    assert_int_equal(g->count, 2);
    assert_string_equal(g->services[0].checks[0].protocol, "http");
    assert_int_equal(g->tasks[0].resources.cpu, 200);
    assert_int_equal(g->tasks[0].resources.memory_mb, 64);
    assert_string_equal(
        json_string_value(json_object_get(g->tasks[0].config, "image")),
        "nginx:1.25");
    jobspec_free(job);

    /* bare job object, no wrapper */
    job = json_ok("{\"ID\":\"bare\",\"TaskGroups\":[{\"Name\":\"g\","
                  "\"Tasks\":[{\"Name\":\"t\",\"Driver\":\"exec\"}]}],"
                  "\"Unknown\":{\"Deep\":[1,2,3]}}");
    assert_string_equal(job->id, "bare");
    assert_string_equal(job->groups[0].tasks[0].driver, "exec");
    jobspec_free(job);
}

/* ---- HCL decoding errors ---- */

static void test_hcl_misspellings(void **state)
{
    (void)state;
    hcl_err("job \"j\" {\n"
            "  group \"g\" {\n"
            "    cuont = 3\n"
            "  }\n"
            "}\n",
            "job.nomad:3:5: group \"g\": unknown attribute \"cuont\"; did you "
            "mean \"count\"?");
    hcl_err("job \"j\" {\n"
            "  group \"api\" {\n"
            "    sevice {\n"
            "      name = \"x\"\n"
            "    }\n"
            "  }\n"
            "}\n",
            "job.nomad:3:5: group \"api\": unknown block \"sevice\"; did you "
            "mean \"service\"?");
    hcl_err("job \"j\" {\n"
            "  group \"api\" {\n"
            "    task \"api\" {\n"
            "      driver = \"docker\"\n"
            "      imgae  = \"nginx\"\n"
            "    }\n"
            "  }\n"
            "}\n",
            "job.nomad:5:7: group \"api\" > task \"api\": unknown attribute "
            "\"imgae\"; did you mean \"image\"? (driver options go inside the "
            "config block)");
    hcl_err("job \"j\" {\n"
            "  group \"api\" {\n"
            "    task \"api\" {\n"
            "      image = \"nginx\"\n"
            "    }\n"
            "  }\n"
            "}\n",
            "job.nomad:4:7: group \"api\" > task \"api\": unknown attribute "
            "\"image\"; driver options go inside the config block");
    hcl_err("job \"j\" {\n"
            "  group \"api\" {\n"
            "    task \"api\" {\n"
            "      driver = \"exec\"\n"
            "      resources {\n"
            "        memroy = 10\n"
            "      }\n"
            "    }\n"
            "  }\n"
            "}\n",
            "job.nomad:6:9: group \"api\" > task \"api\" > resources: unknown "
            "attribute \"memroy\"; did you mean \"memory\"?");
    hcl_err("job \"j\" {\n"
            "  datacenter = [\"dc1\"]\n"
            "}\n",
            "job.nomad:2:3: job \"j\": unknown attribute \"datacenter\"; did "
            "you mean \"datacenters\"?");
    hcl_err("job \"j\" {\n"
            "  frobnicate = 1\n"
            "}\n",
            "job.nomad:2:3: job \"j\": unknown attribute \"frobnicate\"");
    hcl_err("job \"j\" {\n"
            "  group \"g\" {\n"
            "    service {\n"
            "      name = \"web\"\n"
            "      check {\n"
            "        intervall = \"10s\"\n"
            "      }\n"
            "    }\n"
            "  }\n"
            "}\n",
            "job.nomad:6:9: group \"g\" > service \"web\" > check: unknown "
            "attribute \"intervall\"; did you mean \"interval\"?");
    hcl_err("jbo \"j\" {\n}\n",
            "job.nomad:1:1: unknown block \"jbo\"; did you mean \"job\"?");
}

static void test_hcl_type_errors(void **state)
{
    (void)state;
    hcl_err("job \"j\" {\n"
            "  group \"web\" {\n"
            "    count = \"3\"\n"
            "  }\n"
            "}\n",
            "job.nomad:3:13: group \"web\" > count: expected a number, got "
            "string");
    hcl_err("job \"j\" {\n"
            "  priority = \"high\"\n"
            "}\n",
            "job.nomad:2:14: job \"j\" > priority: expected a number, got "
            "string");
    hcl_err("job \"j\" {\n"
            "  datacenters = \"dc1\"\n"
            "}\n",
            "job.nomad:2:17: job \"j\" > datacenters: expected a list of "
            "strings, got string");
    hcl_err("job \"j\" {\n"
            "  datacenters = [\"dc1\", 2]\n"
            "}\n",
            "job.nomad:2:25: job \"j\" > datacenters: expected a list of "
            "strings, got a list containing number");
    hcl_err("job \"j\" {\n"
            "  group \"g\" {\n"
            "    count = 1.5\n"
            "  }\n"
            "}\n",
            "job.nomad:3:13: group \"g\" > count: expected a whole number, got "
            "1.5");
    hcl_err("job \"j\" {\n"
            "  group \"g\" {\n"
            "    count = 99999999999\n"
            "  }\n"
            "}\n",
            "job.nomad:3:13: group \"g\" > count: number 99999999999 is out of "
            "range");
    hcl_err("job \"j\" {\n"
            "  group \"g\" {\n"
            "    task \"t\" {\n"
            "      leader = \"yes\"\n"
            "    }\n"
            "  }\n"
            "}\n",
            "job.nomad:4:16: group \"g\" > task \"t\" > leader: expected a "
            "bool, got string");
    hcl_err("job \"j\" {\n"
            "  type = 1\n"
            "}\n",
            "job.nomad:2:10: job \"j\" > type: expected a string, got number");
    hcl_err("job \"j\" {\n"
            "  group \"g\" {\n"
            "    count = var.count\n"
            "  }\n"
            "}\n",
            "job.nomad:3:13: group \"g\" > count: expected a number, got "
            "expression var.count (variables, functions and operators are not "
            "evaluated by this node)");
    hcl_err("job \"j\" {\n"
            "  group \"g\" {\n"
            "    task \"t\" {\n"
            "      env {\n"
            "        LIST = [\"a\"]\n"
            "      }\n"
            "    }\n"
            "  }\n"
            "}\n",
            "job.nomad:5:16: group \"g\" > task \"t\" > env > LIST: expected a "
            "string, got list");
    hcl_err("job \"j\" {\n"
            "  meta = [\"a\"]\n"
            "}\n",
            "job.nomad:2:10: job \"j\" > meta: expected an object of strings, "
            "got list");
}

static void test_hcl_durations(void **state)
{
    (void)state;
    hcl_err("job \"j\" {\n"
            "  group \"g\" {\n"
            "    task \"t\" {\n"
            "      kill_timeout = \"10x\"\n"
            "    }\n"
            "  }\n"
            "}\n",
            "job.nomad:4:22: group \"g\" > task \"t\" > kill_timeout: invalid "
            "duration \"10x\"; use a number and a unit, like \"10s\" or "
            "\"1m30s\"");
    hcl_err("job \"j\" {\n"
            "  group \"g\" {\n"
            "    service {\n"
            "      check {\n"
            "        interval = \"10\"\n"
            "      }\n"
            "    }\n"
            "  }\n"
            "}\n",
            "job.nomad:5:20: group \"g\" > service > check > interval: invalid "
            "duration \"10\"; use a number and a unit, like \"10s\" or "
            "\"1m30s\"");
    hcl_err("job \"j\" {\n"
            "  group \"g\" {\n"
            "    shutdown_delay = true\n"
            "  }\n"
            "}\n",
            "job.nomad:3:22: group \"g\" > shutdown_delay: expected a duration "
            "string like \"10s\", got bool");
    hcl_err("job \"j\" {\n"
            "  group \"g\" {\n"
            "    shutdown_delay = \"99999999999h\"\n"
            "  }\n"
            "}\n",
            "job.nomad:3:22: group \"g\" > shutdown_delay: duration "
            "\"99999999999h\" is too large");
    /* a number is nanoseconds, as Nomad accepts */
    struct job *job = hcl_ok("job \"j\" {\n"
                             "  group \"g\" {\n"
                             "    shutdown_delay = 1500000000\n"
                             "    task \"t\" {\n"
                             "      driver       = \"exec\"\n"
                             "      kill_timeout = \"1m30s\"\n"
                             "    }\n"
                             "  }\n"
                             "}\n");
    assert_true(job->groups[0].shutdown_delay == 1500000000LL);
    assert_true(job->groups[0].tasks[0].kill_timeout == 90 * SEC);
    jobspec_free(job);
}

static void test_hcl_structure_errors(void **state)
{
    (void)state;
    hcl_err("job {\n}\n",
            "job.nomad:1:1: job block needs a name: job \"name\" { ... }");
    hcl_err("job \"a\" \"b\" {\n}\n",
            "job.nomad:1:1: job block takes one label (the job ID), got 2");
    hcl_err("job \"a\" {\n  group \"g\" {\n    task \"t\" {\n      driver = "
            "\"exec\"\n    }\n  }\n}\n"
            "job \"b\" {\n}\n",
            "job.nomad:8:1: only one job block is allowed per file (the first "
            "is at 1:1)");
    hcl_err("# nothing here\n",
            "job.nomad:1:1: no job block found; a job file holds one job "
            "\"name\" { ... } block");
    hcl_err("variable \"image\" {\n}\njob \"j\" {\n}\n",
            "job.nomad:1:1: variable blocks are not supported by this node: "
            "write the values into the job");
    hcl_err("region = \"x\"\n",
            "job.nomad:1:1: unexpected attribute \"region\" at top level; a "
            "job file holds one job \"name\" { ... } block");
    hcl_err("job \"j\" {\n"
            "  group {\n"
            "  }\n"
            "}\n",
            "job.nomad:2:3: job \"j\": group block needs a name: group "
            "\"name\" { ... }");
    hcl_err("job \"j\" {\n"
            "  update \"x\" {\n"
            "  }\n"
            "}\n",
            "job.nomad:2:3: job \"j\": update block takes no labels, got 1");
    hcl_err("job \"j\" {\n"
            "  group \"g\" {\n"
            "    count {\n"
            "    }\n"
            "  }\n"
            "}\n",
            "job.nomad:3:5: group \"g\": \"count\" is an attribute, not a "
            "block; write count = ...");
    hcl_err("job \"j\" {\n"
            "  group \"g\" {\n"
            "    network = {}\n"
            "  }\n"
            "}\n",
            "job.nomad:3:5: group \"g\": \"network\" is a block, not an "
            "attribute; write network { ... }");
    hcl_err("job \"j\" {\n"
            "  group \"g\" {\n"
            "    count = 1\n"
            "    count = 2\n"
            "  }\n"
            "}\n",
            "job.nomad:4:5: group \"g\": duplicate attribute \"count\"; it was "
            "already defined at 3:5");
    hcl_err("job \"j\" {\n"
            "  update {\n"
            "  }\n"
            "  update {\n"
            "  }\n"
            "}\n",
            "job.nomad:4:3: job \"j\": duplicate block \"update\"; it was "
            "already defined at 2:3");
    hcl_err("job \"j\" {\n"
            "  meta = { a = \"1\" }\n"
            "  meta {\n"
            "    b = \"2\"\n"
            "  }\n"
            "}\n",
            "job.nomad:3:3: job \"j\": duplicate block \"meta\"; it was "
            "already defined at 2:3");
    hcl_err("job \"j\" {\n"
            "  group \"g\" {\n"
            "    volume \"v\" {\n"
            "    }\n"
            "    volume \"v\" {\n"
            "    }\n"
            "  }\n"
            "}\n",
            "job.nomad:5:5: group \"g\": duplicate volume \"v\"");
    hcl_err("job \"j\" {\n"
            "  group \"g\" {\n"
            "    task \"t\" {\n"
            "      env {\n"
            "        inner {\n"
            "        }\n"
            "      }\n"
            "    }\n"
            "  }\n"
            "}\n",
            "job.nomad:5:9: group \"g\" > task \"t\" > env: unexpected block "
            "\"inner\"; env takes name = \"value\" pairs");
    hcl_err("job \"j\" {\n"
            "  group \"g\" {\n"
            "    task \"t\" {\n"
            "      scaling \"gpu\" {\n"
            "      }\n"
            "    }\n"
            "  }\n"
            "}\n",
            "job.nomad:4:7: group \"g\" > task \"t\": scaling policy name must "
            "be \"cpu\" or \"mem\", got \"gpu\"");
    hcl_err("job \"j\" {\n"
            "  group \"g\" {\n"
            "    task \"t\" {\n"
            "      driver = \"exec\"\n"
            "      config {\n"
            "        image = upper(\"x\")\n"
            "      }\n"
            "    }\n"
            "  }\n"
            "}\n",
            "job.nomad:6:17: group \"g\" > task \"t\" > config: expression "
            "upper(\"x\") is not supported (variables, functions and "
            "operators are not evaluated by this node)");

    /* a syntax error comes from the HCL parser, with the file name */
    struct job *job = NULL;
    struct nc_error err = {0};
    const char *bad = "job \"j\" {\n  group \"g\" {\n";
    assert_int_equal(jobspec_parse_hcl("job.nomad", bad, strlen(bad), &job,
                                       &err),
                     -EINVAL);
    assert_null(job);
    assert_true(nc_str_has_prefix(err.msg, "job.nomad:"));
}

/* Driver config follows Nomad's rules: nested blocks become lists of
 * objects, labels nest, an object attribute becomes a one-element list. */
static void test_hcl_config_conversion(void **state)
{
    (void)state;
    struct job *job = hcl_ok("job \"j\" {\n"
                             "  group \"g\" {\n"
                             "    task \"t\" {\n"
                             "      driver = \"docker\"\n"
                             "      config {\n"
                             "        image  = \"x\"\n"
                             "        n      = 3\n"
                             "        f      = 2.5\n"
                             "        on     = true\n"
                             "        none   = null\n"
                             "        nested = [[1, 2], {k = \"v\"}]\n"
                             "        obj    = { a = 1 }\n"
                             "        logging {\n"
                             "          type = \"json\"\n"
                             "          config {\n"
                             "            max = \"10m\"\n"
                             "          }\n"
                             "        }\n"
                             "        logging {\n"
                             "          type = \"syslog\"\n"
                             "        }\n"
                             "        lbl \"a\" \"b\" {\n"
                             "          x = 1\n"
                             "        }\n"
                             "      }\n"
                             "    }\n"
                             "  }\n"
                             "}\n");
    assert_json_text(job->groups[0].tasks[0].config,
                     "{\"image\":\"x\",\"n\":3,\"f\":2.5,\"on\":true,\"none\":"
                     "null,\"nested\":[[1,2],{\"k\":\"v\"}],\"obj\":[{\"a\":1}"
                     "],\"logging\":[{\"type\":\"json\",\"config\":[{\"max\":"
                     "\"10m\"}]},{\"type\":\"syslog\"}],\"lbl\":[{\"a\":[{\"b\":"
                     "[{\"x\":1}]}]}]}");
    /* printed with sorted keys, as Go prints maps */
    json_t *j = jobspec_to_json(job);
    json_t *cfg = json_object_get(
        json_array_get(json_object_get(json_array_get(json_object_get(
                                                          j, "TaskGroups"),
                                                      0),
                                       "Tasks"),
                       0),
        "Config");
    void *it = json_object_iter(cfg);
    assert_string_equal(json_object_iter_key(it), "f");
    json_decref(j);
    assert_roundtrip(job);
    jobspec_free(job);
}

/* A number where a string is wanted reads as hcl/v2 gives it (cty's
 * Text('f', -1)), in env, meta and constraint values alike: the strings
 * the job's API JSON shows. */
static void test_hcl_numbers_as_strings(void **state)
{
    (void)state;
    struct job *job = hcl_ok(
        "job \"j\" {\n"
        "  meta {\n"
        "    ratio = 2.50\n"
        "  }\n"
        "  constraint {\n"
        "    attribute = \"${attr.cpu.numcores}\"\n"
        "    operator  = \">=\"\n"
        "    value     = 4e0\n"
        "  }\n"
        "  group \"g\" {\n"
        "    meta = { weight = 1e2, tiny = 1e-7 }\n"
        "    task \"t\" {\n"
        "      driver = \"exec\"\n"
        "      env {\n"
        "        BIG  = 1e3\n"
        "        HALF = 1.50\n"
        "        TENTH = 0.1\n"
        "        TINY = 1e-7\n"
        "        ZERO = -0\n"
        "        LONG = 12345678901234567890\n"
        "        NEG  = -2.500e1\n"
        "        INT  = 42\n"
        "      }\n"
        "      meta {\n"
        "        huge = 1.5e300\n"
        "      }\n"
        "    }\n"
        "  }\n"
        "}\n");
    json_t *api = jobspec_to_json(job);
    assert_json_text(json_object_get(api, "Meta"), "{\"ratio\":\"2.5\"}");
    json_t *c0 = json_array_get(json_object_get(api, "Constraints"), 0);
    assert_json_text(json_object_get(c0, "RTarget"), "\"4\"");
    json_t *g = json_array_get(json_object_get(api, "TaskGroups"), 0);
    assert_json_text(json_object_get(g, "Meta"),
                     "{\"weight\":\"100\",\"tiny\":\"0.0000001\"}");
    json_t *t = json_array_get(json_object_get(g, "Tasks"), 0);
    assert_json_text(json_object_get(t, "Env"),
                     "{\"BIG\":\"1000\",\"HALF\":\"1.5\",\"TENTH\":\"0.1\","
                     "\"TINY\":\"0.0000001\",\"ZERO\":\"0\",\"LONG\":"
                     "\"12345678901234567890\",\"NEG\":\"-25\",\"INT\":\"42\"}");
    char huge[302] = "15"; /* 1.5e300: 15 and 299 zeros */
    memset(huge + 2, '0', 299);
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(t, "Meta"), "huge")),
                        huge);
    json_decref(api);
    assert_roundtrip(job);
    jobspec_free(job);

    hcl_err("job \"j\" {\n"
            "  meta {\n"
            "    n = 1e99999\n"
            "  }\n"
            "}\n",
            "job.nomad:3:9: job \"j\" > meta: number 1e99999 is too long "
            "to convert to a string (more than 4096 characters)");
}

static void test_hcl_shortcuts_and_blocks(void **state)
{
    (void)state;
    struct job *job = hcl_ok(
        "job \"j\" {\n"
        "  constraint {\n"
        "    attribute = \"${attr.kernel.version}\"\n"
        "    regexp    = \"^5\\\\.\"\n"
        "  }\n"
        "  constraint {\n"
        "    distinct_property = \"${meta.rack}\"\n"
        "    value             = 2\n"
        "  }\n"
        "  constraint {\n"
        "    attribute    = \"${meta.tags}\"\n"
        "    set_contains = \"a,b\"\n"
        "  }\n"
        "  affinity {\n"
        "    attribute = \"${node.class}\"\n"
        "    value     = \"large\"\n"
        "    weight    = -20\n"
        "  }\n"
        "  vault {\n"
        "    policies = [\"shared\"]\n"
        "  }\n"
        "  group \"g\" {\n"
        "    task \"own\" {\n"
        "      driver = \"exec\"\n"
        "      vault {\n"
        "        policies = [\"own\"]\n"
        "      }\n"
        "    }\n"
        "    task \"inherits\" {\n"
        "      driver = \"exec\"\n"
        "      lifecycle {\n"
        "        hook    = \"poststart\"\n"
        "        sidecar = true\n"
        "      }\n"
        "    }\n"
        "  }\n"
        "}\n");
    assert_string_equal(job->constraints[0].operand, "regexp");
    assert_string_equal(job->constraints[0].rtarget, "^5\\.");
    assert_string_equal(job->constraints[1].operand, "distinct_property");
    assert_string_equal(job->constraints[1].ltarget, "${meta.rack}");
    assert_string_equal(job->constraints[1].rtarget, "2");
    assert_string_equal(job->constraints[2].operand, "set_contains");
    assert_int_equal(job->affinities[0].weight, -20);
    const struct task *own = &job->groups[0].tasks[0];
    const struct task *inh = &job->groups[0].tasks[1];
    assert_string_equal(json_string_value(json_array_get(
                            json_object_get(own->vault, "Policies"), 0)),
                        "own");
    assert_string_equal(json_string_value(json_array_get(
                            json_object_get(inh->vault, "Policies"), 0)),
                        "shared");
    assert_non_null(job->vault);
    assert_true(inh->lifecycle->sidecar);
    assert_roundtrip(job);
    jobspec_free(job);
}

/* ---- validation ---- */

struct vcase {
    const char *src;
    const char *want;
};

static void run_cases(const struct vcase *c, size_t n)
{
    for (size_t i = 0; i < n; i++)
        hcl_err(c[i].src, c[i].want);
}

#define GROUP_START "job \"j\" {\n  group \"g\" {\n"
#define TASK_T "    task \"t\" {\n      driver = \"exec\"\n    }\n"
#define END "  }\n}\n"

static void test_validate_job_level(void **state)
{
    (void)state;
    static const struct vcase cases[] = {
        {"job \"my job\" {\n" "  group \"g\" {\n" TASK_T END,
         "job.nomad:1:1: job \"my job\": Job ID contains a space"},
        {"job \"j\" {\n  type = \"daemon\"\n  group \"g\" {\n" TASK_T END,
         "job.nomad:2:10: job \"j\": Invalid job type: \"daemon\""},
        {"job \"j\" {\n  priority = 0\n  group \"g\" {\n" TASK_T END,
         "job.nomad:2:14: job \"j\": job priority must be between [1, 100]"},
        {"job \"j\" {\n  priority = 101\n  group \"g\" {\n" TASK_T END,
         "job.nomad:2:14: job \"j\": job priority must be between [1, 100]"},
        {"job \"j\" {\n}\n",
         "job.nomad:1:1: job \"j\": Missing job task groups"},
        {"job \"j\" {\n  datacenters = [\"dc1\", \"\"]\n  group \"g\" {\n" TASK_T
         END,
         "job.nomad:2:17: job \"j\": Job datacenter must be non-empty string"},
        {"job \"j\" {\n  region = \"\"\n  group \"g\" {\n" TASK_T END,
         "job.nomad:2:12: job \"j\": Missing job region"},
        {"job \"j\" {\n  periodic {\n    cron = \"* * * * *\"\n  }\n"
         "  group \"g\" {\n" TASK_T END,
         "job.nomad:2:3: job \"j\": Periodic can only be used with \"batch\" "
         "or \"sysbatch\" scheduler"},
        {"job \"j\" {\n  group \"g\" {\n" TASK_T "  }\n  group \"g\" {\n" TASK_T
         END,
         "job.nomad:7:3: job \"j\": Job task group 2 redefines 'g' from group "
         "1"},
        {"job \"j\" {\n  constraint {\n    attribute = \"${attr.x}\"\n"
         "    operator  = \"~~\"\n    value = \"1\"\n  }\n"
         "  group \"g\" {\n" TASK_T END,
         "job.nomad:4:17: job \"j\" > constraint: Unknown constraint type "
         "\"~~\""},
        {"job \"j\" {\n  constraint {\n    attribute = \"${attr.x}\"\n"
         "    regexp    = \"([a-z\"\n  }\n  group \"g\" {\n" TASK_T END,
         "job.nomad:4:17: job \"j\" > constraint: Regular expression failed "
         "to compile: Unmatched [, [^, [:, [., or [="},
        {"job \"j\" {\n  constraint {\n    operator = \"is_set\"\n  }\n"
         "  group \"g\" {\n" TASK_T END,
         "job.nomad:2:3: job \"j\" > constraint: no attribute provided but is "
         "required by operator"},
        {"job \"j\" {\n  constraint {\n    attribute = \"${attr.x}\"\n  }\n"
         "  group \"g\" {\n" TASK_T END,
         "job.nomad:2:3: job \"j\" > constraint: Operator \"=\" requires an "
         "RTarget"},
        {"job \"j\" {\n  constraint {\n    attribute = \"${nope.x}\"\n"
         "    value = \"1\"\n  }\n  group \"g\" {\n" TASK_T END,
         "job.nomad:3:17: job \"j\" > constraint: unsupported attribute "
         "\"${nope.x}\""},
        {"job \"j\" {\n  constraint {\n    attribute = \"${attr.x}\"\n"
         "    version   = \"not a version\"\n  }\n  group \"g\" {\n" TASK_T END,
         "job.nomad:4:17: job \"j\" > constraint: Version constraint is "
         "invalid: Malformed constraint: not a version"},
        {"job \"j\" {\n  affinity {\n    attribute = \"${attr.x}\"\n"
         "    value = \"1\"\n    weight = 0\n  }\n  group \"g\" {\n" TASK_T END,
         "job.nomad:5:14: job \"j\" > affinity: Affinity weight cannot be "
         "zero"},
        {"job \"j\" {\n  spread {\n    attribute = \"${node.datacenter}\"\n"
         "    target \"a\" {\n      percent = 70\n    }\n"
         "    target \"b\" {\n      percent = 40\n    }\n  }\n"
         "  group \"g\" {\n" TASK_T END,
         "job.nomad:2:3: job \"j\" > spread: Sum of spread target percentages "
         "must not be greater than 100%; got 110%"},
    };
    run_cases(cases, NC_ARRAY_LEN(cases));
}

static void test_validate_group_level(void **state)
{
    (void)state;
    static const struct vcase cases[] = {
        {GROUP_START "    count = -1\n" TASK_T END,
         "job.nomad:3:13: group \"g\": Task group count can't be negative"},
        {GROUP_START END,
         "job.nomad:2:3: group \"g\": Missing tasks for task group"},
        {GROUP_START "    restart {\n      mode = \"sometimes\"\n    }\n" TASK_T
         END,
         "job.nomad:4:14: group \"g\" > restart: Unsupported restart mode: "
         "\"sometimes\""},
        {GROUP_START "    restart {\n      interval = \"1s\"\n    }\n" TASK_T
         END,
         "2 errors occurred:\n"
         "\t* job.nomad:4:18: group \"g\" > restart: Interval can not be less "
         "than 5s (got 1s)\n"
         "\t* job.nomad:3:5: group \"g\" > restart: Nomad can't restart the "
         "TaskGroup 2 times in an interval of 1s with a delay of 15s"},
        {GROUP_START "    reschedule {\n      delay_function = \"random\"\n"
         "    }\n" TASK_T END,
         "job.nomad:4:24: group \"g\" > reschedule: Invalid delay function "
         "\"random\", must be one of [\"constant\" \"exponential\" "
         "\"fibonacci\"]"},
        {GROUP_START "    ephemeral_disk {\n      size = 5\n    }\n" TASK_T END,
         "2 errors occurred:\n"
         "\t* job.nomad:4:14: group \"g\": minimum DiskMB value is 10; got 5\n"
         "\t* job.nomad:6:5: group \"g\" > task \"t\" > logs: log storage "
         "(100 MB) must be less than requested disk capacity (5 MB)"},
        {"job \"j\" {\n  type = \"batch\"\n  group \"g\" {\n"
         "    update {\n    }\n" TASK_T END,
         "job.nomad:4:5: group \"g\" > update: Job type \"batch\" does not "
         "allow update block"},
        {GROUP_START "    update {\n      health_check = \"vibes\"\n    }\n"
         TASK_T END,
         "job.nomad:4:22: group \"g\" > update: Invalid health check given: "
         "\"vibes\""},
        {GROUP_START "    migrate {\n      max_parallel = -1\n    }\n" TASK_T
         END,
         "job.nomad:4:22: group \"g\" > migrate: MaxParallel must be >= 0 but "
         "found -1"},
        {GROUP_START "    scaling {\n      min = 1\n    }\n" TASK_T END,
         "job.nomad:3:5: group \"g\" > scaling: maximum count must be "
         "specified and non-negative"},
        {GROUP_START "    count = 5\n    scaling {\n      min = 1\n"
         "      max = 3\n    }\n" TASK_T END,
         "job.nomad:6:13: group \"g\" > scaling: task group count must not be "
         "greater than maximum count in scaling policy"},
        {GROUP_START TASK_T TASK_T END,
         "job.nomad:6:5: group \"g\": Task 2 redefines 't' from task 1"},
        {GROUP_START "    task \"a\" {\n      driver = \"exec\"\n"
         "      leader = true\n    }\n    task \"b\" {\n"
         "      driver = \"exec\"\n      leader = true\n    }\n" END,
         "job.nomad:2:3: group \"g\": Only one task may be marked as leader"},
        {GROUP_START "    task \"a\" {\n      driver = \"exec\"\n"
         "      lifecycle {\n        hook = \"prestart\"\n      }\n    }\n" END,
         "job.nomad:2:3: group \"g\": Task group g must have at least one main "
         "task"},
        {GROUP_START "    volume \"v\" {\n      type = \"host\"\n    }\n" TASK_T
         END,
         "job.nomad:3:5: group \"g\" > volume \"v\": volume has an empty "
         "source"},
        {GROUP_START "    volume \"v\" {\n      type   = \"nfs\"\n"
         "      source = \"x\"\n    }\n" TASK_T END,
         "job.nomad:4:16: group \"g\" > volume \"v\": volume has unrecognized "
         "type nfs"},
    };
    run_cases(cases, NC_ARRAY_LEN(cases));
}

static void test_validate_network(void **state)
{
    (void)state;
    static const struct vcase cases[] = {
        {GROUP_START "    network {\n      port \"p\" {\n        static = "
                     "70000\n      }\n    }\n" TASK_T END,
         "job.nomad:5:18: group \"g\" > network > port \"p\": Port p (70000) "
         "cannot be greater than 65535"},
        {GROUP_START "    network {\n      port \"p\" {\n        static = -3\n"
                     "      }\n    }\n" TASK_T END,
         "job.nomad:5:18: group \"g\" > network > port \"p\": Port p (-3) "
         "cannot be less than 1"},
        {GROUP_START "    network {\n      port \"p\" {\n        to = -2\n"
                     "      }\n    }\n" TASK_T END,
         "job.nomad:5:14: group \"g\" > network > port \"p\": Port \"p\" "
         "cannot be mapped to negative value -2"},
        {GROUP_START "    network {\n      port \"p\" {\n        to = 65536\n"
                     "      }\n    }\n" TASK_T END,
         "job.nomad:5:14: group \"g\" > network > port \"p\": Port \"p\" "
         "cannot be mapped to a port (65536) greater than 65535"},
        {GROUP_START "    network {\n      port \"p\" {}\n      port \"p\" {}\n"
                     "    }\n" TASK_T END,
         "job.nomad:5:7: group \"g\" > network > port \"p\": Port label p "
         "already in use by taskgroup network"},
        {GROUP_START "    network {\n      port \"a\" {\n        static = 80\n"
                     "      }\n      port \"b\" {\n        static = 80\n"
                     "      }\n    }\n" TASK_T END,
         "job.nomad:8:18: group \"g\" > network > port \"b\": Static port 80 "
         "already reserved by taskgroup network:a"},
        {GROUP_START "    network {\n      mode = \"overlay\"\n    }\n" TASK_T
         END,
         "job.nomad:4:14: group \"g\" > network: invalid network mode "
         "\"overlay\": must be \"host\", \"bridge\", \"none\" or "
         "\"cni/<name>\""},
        {GROUP_START "    network {\n      hostname = \"bad_name!\"\n    }\n"
         TASK_T END,
         "job.nomad:4:18: group \"g\" > network: Hostname is not a valid DNS "
         "name"},
        {GROUP_START "    network {\n      port \"a b\" {}\n    }\n" TASK_T END,
         "job.nomad:4:7: group \"g\" > network > port \"a b\": port label "
         "\"a b\" is invalid: use letters, digits, \"_\", \"-\" and \".\""},
    };
    run_cases(cases, NC_ARRAY_LEN(cases));
}

#define NET_HTTP "    network {\n      port \"http\" {}\n    }\n"

static void test_validate_services(void **state)
{
    (void)state;
    static const struct vcase cases[] = {
        {GROUP_START NET_HTTP "    service {\n      name = \"web\"\n"
                              "      port = \"htp\"\n    }\n" TASK_T END,
         "job.nomad:8:14: group \"g\" > service \"web\": port label \"htp\" "
         "referenced by services web does not exist"},
        {GROUP_START "    task \"t\" {\n      driver = \"exec\"\n"
                     "      service {\n        port = \"http\"\n      }\n"
                     "    }\n" END,
         "job.nomad:6:16: group \"g\" > task \"t\" > service \"j-g-t\": port "
         "label \"http\" referenced by services j-g-t does not exist"},
        {GROUP_START NET_HTTP "    service {\n      name = \"web_1\"\n"
                              "    }\n" TASK_T END,
         "job.nomad:7:14: group \"g\" > service \"web_1\": Service name must "
         "be valid per RFC 1123 and can contain only alphanumeric characters "
         "or dashes and must be no longer than 63 characters: \"web_1\""},
        {GROUP_START NET_HTTP "    service {\n      port = \"http\"\n"
                              "      check {\n        type = \"icmp\"\n"
                              "      }\n    }\n" TASK_T END,
         "job.nomad:9:16: group \"g\" > service \"j-g\" > check: invalid check "
         "type (\"icmp\"), must be one of grpc, tcp, http, script"},
        {GROUP_START NET_HTTP "    service {\n      port = \"http\"\n"
                              "      check {\n        type = \"http\"\n"
                              "        interval = \"10s\"\n"
                              "        timeout = \"1s\"\n      }\n    }\n"
                              TASK_T END,
         "job.nomad:8:7: group \"g\" > service \"j-g\" > check: http type "
         "must have http path"},
        {GROUP_START NET_HTTP "    service {\n      port = \"http\"\n"
                              "      check {\n        type = \"tcp\"\n"
                              "        timeout = \"1s\"\n      }\n    }\n"
                              TASK_T END,
         "job.nomad:8:7: group \"g\" > service \"j-g\" > check: missing "
         "required value interval. Interval cannot be less than 1s"},
        {GROUP_START NET_HTTP "    service {\n      port = \"http\"\n"
                              "      check {\n        type = \"tcp\"\n"
                              "        interval = \"500ms\"\n"
                              "        timeout = \"1s\"\n      }\n    }\n"
                              TASK_T END,
         "job.nomad:10:20: group \"g\" > service \"j-g\" > check: minimum "
         "check interval is 1s, got 500ms"},
        {GROUP_START NET_HTTP "    service {\n      port = \"http\"\n"
                              "      check {\n        type = \"tcp\"\n"
                              "        interval = \"5s\"\n"
                              "        timeout = \"100ms\"\n      }\n    }\n"
                              TASK_T END,
         "job.nomad:11:19: group \"g\" > service \"j-g\" > check: minimum "
         "check timeout is 1s, got 100ms"},
        {GROUP_START NET_HTTP "    service {\n      port = \"http\"\n"
                              "      check {\n        type = \"tcp\"\n"
                              "        interval = \"5s\"\n"
                              "        port = \"admin\"\n"
                              "        timeout = \"1s\"\n      }\n    }\n"
                              TASK_T END,
         "job.nomad:11:16: group \"g\" > service \"j-g\": port label "
         "\"admin\" referenced by services j-g does not exist"},
        {GROUP_START NET_HTTP "    service {\n"
                              "      check {\n        type = \"tcp\"\n"
                              "        interval = \"5s\"\n"
                              "        timeout = \"1s\"\n      }\n    }\n"
                              TASK_T END,
         "job.nomad:7:7: group \"g\" > service \"j-g\" > check: check requires "
         "a port but neither check nor service \"j-g\" have a port"},
        {GROUP_START NET_HTTP "    service {\n      port = \"http\"\n"
                              "      provider = \"etcd\"\n    }\n" TASK_T END,
         "job.nomad:8:18: group \"g\" > service \"j-g\": Service provider must "
         "be \"consul\", or \"nomad\"; not \"etcd\""},
        {GROUP_START "    task \"t\" {\n      driver = \"exec\"\n"
                     "      service {\n        connect {\n"
                     "          native = true\n        }\n      }\n"
                     "    }\n" END,
         "job.nomad:6:9: group \"g\" > task \"t\" > service \"j-g-t\": service "
         "\"j-g-t\" cannot have \"connect\" block, only services defined in a "
         "\"group\" block can"},
    };
    run_cases(cases, NC_ARRAY_LEN(cases));
}

static void test_validate_tasks(void **state)
{
    (void)state;
    static const struct vcase cases[] = {
        {GROUP_START "    task \"t\" {\n    }\n" END,
         "job.nomad:3:5: group \"g\" > task \"t\": Missing task driver"},
        {GROUP_START "    task \"alloc\" {\n      driver = \"exec\"\n    }\n"
         END,
         "job.nomad:3:5: group \"g\" > task \"alloc\": Task cannot be named "
         "\"alloc\""},
        {GROUP_START "    task \"t\" {\n      driver = \"exec\"\n"
                     "      resources {\n        memory = 5\n      }\n"
                     "    }\n" END,
         "job.nomad:6:18: group \"g\" > task \"t\" > resources: minimum "
         "MemoryMB value is 10; got 5"},
        {GROUP_START "    task \"t\" {\n      driver = \"exec\"\n"
                     "      resources {\n        cpu = 100\n"
                     "        cores = 2\n      }\n    }\n" END,
         "job.nomad:5:7: group \"g\" > task \"t\" > resources: Task can only "
         "ask for 'cpu' or 'cores' resource, not both."},
        {GROUP_START "    task \"t\" {\n      driver = \"exec\"\n"
                     "      resources {\n        memory = 100\n"
                     "        memory_max = 50\n      }\n    }\n" END,
         "job.nomad:7:22: group \"g\" > task \"t\" > resources: MemoryMaxMB "
         "value (50) should be larger than MemoryMB value (100)"},
        {GROUP_START "    task \"t\" {\n      driver = \"exec\"\n"
                     "      resources {\n        disk = -1\n      }\n"
                     "    }\n" END,
         "job.nomad:6:16: group \"g\" > task \"t\" > resources: DiskMB value "
         "(-1) cannot be negative"},
        {GROUP_START "    task \"t\" {\n      driver = \"exec\"\n"
                     "      kill_timeout = \"-1s\"\n    }\n" END,
         "job.nomad:5:22: group \"g\" > task \"t\": KillTimeout must be a "
         "positive value"},
        {GROUP_START "    task \"t\" {\n      driver = \"exec\"\n"
                     "      volume_mount {\n        volume = \"data\"\n"
                     "        destination = \"/data\"\n      }\n    }\n" END,
         "job.nomad:6:18: group \"g\" > task \"t\" > volume_mount: references "
         "undefined volume \"data\""},
        {GROUP_START "    task \"t\" {\n      driver = \"exec\"\n"
                     "      lifecycle {\n        hook = \"midstart\"\n"
                     "      }\n    }\n"
                     "    task \"main\" {\n      driver = \"exec\"\n    }\n"
                     END,
         "job.nomad:6:16: group \"g\" > task \"t\" > lifecycle: invalid hook: "
         "midstart"},
        {GROUP_START "    task \"t\" {\n      driver = \"exec\"\n"
                     "      template {\n        data = \"x\"\n      }\n"
                     "    }\n" END,
         "job.nomad:5:7: group \"g\" > task \"t\" > template: Must specify a "
         "destination for the template"},
        {GROUP_START "    task \"t\" {\n      driver = \"exec\"\n"
                     "      template {\n        data = \"x\"\n"
                     "        destination = \"../../etc/passwd\"\n      }\n"
                     "    }\n" END,
         "job.nomad:7:23: group \"g\" > task \"t\" > template: destination "
         "escapes allocation directory"},
        {GROUP_START "    task \"t\" {\n      driver = \"exec\"\n"
                     "      logs {\n        max_files = 0\n      }\n    }\n"
                     END,
         "job.nomad:6:21: group \"g\" > task \"t\" > logs: minimum number of "
         "files is 1; got 0"},
        {GROUP_START "    task \"t\" {\n      driver = \"exec\"\n"
                     "      constraint {\n        distinct_hosts = true\n"
                     "      }\n    }\n" END,
         "job.nomad:6:26: group \"g\" > task \"t\" > constraint: operand "
         "distinct_hosts is not allowed at task level"},
        {GROUP_START "    task \"t\" {\n      driver = \"exec\"\n"
                     "      restart {\n        mode = \"never\"\n      }\n"
                     "    }\n" END,
         "job.nomad:6:16: group \"g\" > task \"t\" > restart: Unsupported "
         "restart mode: \"never\""},
    };
    run_cases(cases, NC_ARRAY_LEN(cases));
}

/* All errors are reported, joined as Nomad's multierror does; past 16 the
 * rest are counted. */
static void test_validate_many_errors(void **state)
{
    (void)state;
    hcl_err("job \"j\" {\n"
            "  priority = 200\n"
            "  group \"g\" {\n"
            "    count = -1\n"
            "    task \"t\" {\n"
            "    }\n"
            "  }\n"
            "}\n",
            "3 errors occurred:\n"
            "\t* job.nomad:2:14: job \"j\": job priority must be between [1, "
            "100]\n"
            "\t* job.nomad:4:13: group \"g\": Task group count can't be "
            "negative\n"
            "\t* job.nomad:5:5: group \"g\" > task \"t\": Missing task driver");

    struct nc_buf b = {0};
    nc_buf_puts(&b, "job \"j\" {\n  group \"g\" {\n");
    for (int i = 0; i < 20; i++)
        nc_buf_printf(&b, "    task \"t%d\" {\n    }\n", i);
    nc_buf_puts(&b, "  }\n}\n");
    struct job *job = NULL;
    struct nc_error err = {0};
    assert_int_equal(jobspec_parse_hcl("job.nomad", b.data, b.len, &job, &err),
                     -EINVAL);
    assert_true(nc_str_has_prefix(
        err.msg, "20 errors occurred:\n\t* job.nomad:3:5: group \"g\" > task "
                 "\"t0\": Missing task driver\n\t* "));
    const char *tail = strstr(err.msg, "\n\t* ... and ");
    assert_non_null(tail);
    size_t listed = 0;
    for (const char *p = err.msg; (p = strstr(p, "Missing task driver")); p++)
        listed++;
    char want[64];
    snprintf(want, sizeof(want), "\n\t* ... and %zu more", 20 - listed);
    assert_string_equal(tail, want);
    assert_true(listed >= 10);
    nc_buf_free(&b);
}

/* Validation of a model built by hand (NULL strings read as empty). */
static void test_validate_handbuilt(void **state)
{
    (void)state;
    struct job *job = xcalloc(1, sizeof(*job));
    job->id = xstrdup("x");
    job->name = xstrdup("x");
    job->region = xstrdup("global");
    job->namespace = xstrdup("default");
    job->type = xstrdup("batch");
    job->priority = 50;
    strlist_add(&job->datacenters, "dc1");
    struct nc_error err = {0};
    assert_int_equal(jobspec_validate(job, &err), -EINVAL);
    assert_string_equal(err.msg, "job \"x\": Missing job task groups");

    job->groups = xcalloc(1, sizeof(*job->groups));
    job->ngroups = 1;
    struct task_group *g = &job->groups[0];
    g->name = xstrdup("g");
    g->count = 1;
    g->ephemeral_disk.mb = 300;
    g->restart = (struct restart_policy){.attempts = 3,
                                         .interval = 3600 * SEC,
                                         .delay = 15 * SEC,
                                         .mode = xstrdup("fail")};
    g->tasks = xcalloc(1, sizeof(*g->tasks));
    g->ntasks = 1;
    g->tasks[0].name = xstrdup("t");
    assert_int_equal(jobspec_validate(job, &err), -EINVAL);
    assert_string_equal(
        err.msg, "5 errors occurred:\n"
                 "\t* group \"g\" > task \"t\": Missing task driver\n"
                 "\t* group \"g\" > task \"t\" > resources: minimum CPU value "
                 "is 1; got 0\n"
                 "\t* group \"g\" > task \"t\" > resources: minimum MemoryMB "
                 "value is 10; got 0\n"
                 "\t* group \"g\" > task \"t\" > logs: minimum number of files "
                 "is 1; got 0\n"
                 "\t* group \"g\" > task \"t\" > logs: minimum file size is "
                 "1MB; got 0");
    g->tasks[0].driver = xstrdup("exec");
    g->tasks[0].resources.cpu = 100;
    g->tasks[0].resources.memory_mb = 64;
    g->tasks[0].logs.max_files = 1;
    g->tasks[0].logs.max_file_size_mb = 1;
    assert_int_equal(jobspec_validate(job, &err), 0);
    char *s = job_text(job); /* NULL strings print as "" */
    assert_non_null(strstr(s, "\"User\":\"\""));
    free(s);
    jobspec_free(job);
    jobspec_free(NULL);
}

/* ---- JSON decoding errors ---- */

static void test_json_type_errors(void **state)
{
    (void)state;
    json_err("{\"Job\":{\"ID\":\"j\",\"TaskGroups\":[{\"Name\":\"g\","
             "\"Tasks\":[{\"Name\":\"a\",\"Driver\":\"exec\"},{\"Name\":\"b\","
             "\"Driver\":\"exec\",\"Resources\":{\"CPU\":\"100\"}}]}]}}",
             "Job.TaskGroups[0].Tasks[1].Resources.CPU: expected a number");
    json_err("{\"ID\":\"j\",\"TaskGroups\":[{\"Count\":1.5}]}",
             "Job.TaskGroups[0].Count: expected a whole number, got 1.5");
    json_err("{\"ID\":\"j\",\"TaskGroups\":[{\"Count\":4294967296}]}",
             "Job.TaskGroups[0].Count: number 4294967296 out of range");
    json_err("{\"ID\":\"j\",\"TaskGroups\":[3]}",
             "Job.TaskGroups[0]: expected an object");
    json_err("{\"ID\":\"j\",\"TaskGroups\":{}}",
             "Job.TaskGroups: expected an array");
    json_err("{\"ID\":7}", "Job.ID: expected a string");
    json_err("{\"ID\":\"j\",\"Datacenters\":[\"dc1\",false]}",
             "Job.Datacenters[1]: expected a string");
    json_err("{\"ID\":\"j\",\"AllAtOnce\":\"yes\"}",
             "Job.AllAtOnce: expected a boolean");
    json_err("{\"ID\":\"j\",\"Meta\":{\"a\":1}}", "Job.Meta.a: expected a string");
    json_err("{\"ID\":\"j\",\"TaskGroups\":[{\"Tasks\":[{\"Config\":[1]}]}]}",
             "Job.TaskGroups[0].Tasks[0].Config: expected an object");
    json_err("{\"ID\":\"j\",\"TaskGroups\":[{\"Volumes\":{\"v\":[]}}]}",
             "Job.TaskGroups[0].Volumes[\"v\"]: expected an object");
    json_err("{\"ID\":\"j\",\"TaskGroups\":[{\"Services\":[{\"Checks\":[{"
             "\"Header\":{\"X\":\"v\"}}]}]}]}",
             "Job.TaskGroups[0].Services[0].Checks[0].Header.X: expected an "
             "array of strings");
    json_err("{\"ID\":\"j\",\"TaskGroups\":[{\"Tasks\":[{\"KillTimeout\":"
             "\"5s\"}]}]}",
             "Job.TaskGroups[0].Tasks[0].KillTimeout: expected a number");
    /* a wrongly typed policy is reported, not replaced by defaults */
    json_err("{\"ID\":\"j\",\"TaskGroups\":[{\"RestartPolicy\":5}]}",
             "Job.TaskGroups[0].RestartPolicy: expected an object");
    json_err("{\"ID\":\"j\",\"Update\":{},\"TaskGroups\":[{\"Update\":\"x\"}]}",
             "Job.TaskGroups[0].Update: expected an object");
    json_err("{\"ID\":\"j\",\"Reschedule\":{},\"TaskGroups\":[{"
             "\"ReschedulePolicy\":[]}]}",
             "Job.TaskGroups[0].ReschedulePolicy: expected an object");
    json_err("{\"ID\":\"j\",\"TaskGroups\":[{\"Services\":[{\"CheckRestart\":"
             "{},\"Checks\":[{\"CheckRestart\":1}]}]}]}",
             "Job.TaskGroups[0].Services[0].Checks[0].CheckRestart: expected "
             "an object");
    json_err("{\"ID\":\"j\",\"TaskGroups\":[{\"Services\":[{\"CheckRestart\":"
             "true}]}]}",
             "Job.TaskGroups[0].Services[0].CheckRestart: expected an object");
    json_err("[1]", "Job: expected an object");
    json_err("{\"Job\":\"x\"}", "Job: expected an object");

    /* validation errors from JSON name the place without a position */
    json_err("{\"ID\":\"j\",\"TaskGroups\":[{\"Name\":\"g\",\"Tasks\":[{"
             "\"Name\":\"t\"}]}]}",
             "group \"g\" > task \"t\": Missing task driver");

    /* deep opaque JSON is refused, not recursed into */
    struct nc_buf b = {0};
    nc_buf_puts(&b, "{\"ID\":\"j\",\"TaskGroups\":[{\"Tasks\":[{\"Config\":");
    for (int i = 0; i < 70; i++)
        nc_buf_puts(&b, "{\"a\":");
    nc_buf_puts(&b, "1");
    for (int i = 0; i < 70; i++)
        nc_buf_puts(&b, "}");
    nc_buf_puts(&b, "}]}]}");
    json_err(b.data, "Job.TaskGroups[0].Tasks[0].Config: nested deeper than "
                     "64 levels");
    nc_buf_free(&b);
}

static void test_json_text_errors(void **state)
{
    (void)state;
    struct job *job = NULL;
    struct nc_error err = {0};
    const char *src = "{\"ID\": }";
    assert_int_equal(jobspec_parse_json("j.json", src, strlen(src), &job, &err),
                     -EINVAL);
    assert_true(nc_str_has_prefix(err.msg, "j.json:1:"));
    src = "{\"ID\":\"j\",\"Priority\":\"high\"}";
    assert_int_equal(jobspec_parse_json("j.json", src, strlen(src), &job, &err),
                     -EINVAL);
    assert_string_equal(err.msg, "j.json: Job.Priority: expected a number");
    assert_int_equal(jobspec_parse_file("no/such/job.nomad", &job, &err),
                     -ENOENT);
    assert_string_equal(err.msg, "no/such/job.nomad: cannot read job file: No "
                                 "such file or directory");
    assert_null(job);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seed_platform),
        cmocka_unit_test(test_seed_custom_scheduler),
        cmocka_unit_test(test_seed_secrets_and_mesh),
        cmocka_unit_test(test_defaults_service),
        cmocka_unit_test(test_defaults_batch_and_system),
        cmocka_unit_test(test_defaults_blocks),
        cmocka_unit_test(test_full_file),
        cmocka_unit_test(test_json_output_shape),
        cmocka_unit_test(test_roundtrip_all_files),
        cmocka_unit_test(test_json_input_matches_hcl),
        cmocka_unit_test(test_json_file_and_unknown_fields),
        cmocka_unit_test(test_hcl_misspellings),
        cmocka_unit_test(test_hcl_type_errors),
        cmocka_unit_test(test_hcl_durations),
        cmocka_unit_test(test_hcl_structure_errors),
        cmocka_unit_test(test_hcl_config_conversion),
        cmocka_unit_test(test_hcl_numbers_as_strings),
        cmocka_unit_test(test_hcl_shortcuts_and_blocks),
        cmocka_unit_test(test_validate_job_level),
        cmocka_unit_test(test_validate_group_level),
        cmocka_unit_test(test_validate_network),
        cmocka_unit_test(test_validate_services),
        cmocka_unit_test(test_validate_tasks),
        cmocka_unit_test(test_validate_many_errors),
        cmocka_unit_test(test_validate_handbuilt),
        cmocka_unit_test(test_json_type_errors),
        cmocka_unit_test(test_json_text_errors),
        cmocka_unit_test(test_warnings_ignored_stanzas),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
