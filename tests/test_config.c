// deps: client/config.c client/config_decode.c client/config_json.c
// deps: client/config_schema.c client/config_validate.c client/tls.c client/hcl/ client/util.c
// deps: client/drivers/ client/curl_uv.c client/alloc/alloc.c client/node/ client/job/ volumes/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "client/config.h"

static const char *const consul_env[] = {
    "CONSUL_HTTP_ADDR",       "CONSUL_HTTP_TOKEN", "CONSUL_HTTP_SSL",
    "CONSUL_HTTP_SSL_VERIFY", "CONSUL_CACERT",     "CONSUL_CLIENT_CERT",
    "CONSUL_CLIENT_KEY",
};

static void clear_consul_env(void)
{
    for (size_t i = 0; i < NC_ARRAY_LEN(consul_env); i++)
        unsetenv(consul_env[i]);
}

/* Loads `src` as `filename` on top of the defaults. */
static int load(struct agent_config *cfg, const char *filename, const char *src,
                struct nc_error *err)
{
    config_defaults(cfg, false);
    return config_load_string(cfg, filename, src, strlen(src), err);
}

/* Asserts that `src` fails to load with exactly `msg`. */
static void expect_load_error(const char *filename, const char *src,
                              const char *msg)
{
    struct agent_config cfg;
    struct nc_error err = {0};
    int r = load(&cfg, filename, src, &err);
    if (r == 0)
        fail_msg("loaded without error: %s", src);
    assert_int_equal(r, -EINVAL);
    assert_string_equal(err.msg, msg);
    config_free(&cfg);
}

/* Asserts that `src` loads but config_validate says exactly `msg`. */
static void expect_invalid(const char *src, const char *msg)
{
    struct agent_config cfg;
    struct nc_error err = {0};
    if (load(&cfg, "agent.hcl", src, &err) < 0)
        fail_msg("load failed: %s", err.msg);
    assert_int_equal(config_validate(&cfg, &err), -EINVAL);
    assert_string_equal(err.msg, msg);
    config_free(&cfg);
}

static const struct host_volume_config *
find_volume(const struct agent_config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->client.nhost_volumes; i++)
        if (strcmp(cfg->client.host_volumes[i].name, name) == 0)
            return &cfg->client.host_volumes[i];
    return NULL;
}

static void test_defaults(void **state)
{
    (void)state;
    struct agent_config cfg;
    struct nc_error err = {0};
    config_defaults(&cfg, false);
    char host[256] = {0};
    gethostname(host, sizeof(host) - 1);
    assert_false(cfg.dev_mode);
    assert_string_equal(cfg.data_dir, "/var/lib/nomclient");
    assert_string_equal(cfg.name, host);
    assert_string_equal(cfg.datacenter, "dc1");
    assert_string_equal(cfg.region, "global");
    assert_string_equal(cfg.bind_addr, "0.0.0.0");
    assert_int_equal(cfg.http_port, 4646);
    assert_string_equal(cfg.log_level, "INFO");
    assert_false(cfg.log_json);
    assert_null(cfg.plugin_dir);
    assert_null(cfg.addresses.http);
    assert_true(cfg.client.enabled);
    assert_string_equal(cfg.client.node_pool, "default");
    assert_null(cfg.client.node_class);
    assert_string_equal(cfg.client.cni_path, "/usr/lib/cni");
    assert_string_equal(cfg.client.cni_config_dir, "/etc/cni/net.d");
    assert_string_equal(cfg.client.bridge_network_name, "nomad");
    assert_string_equal(cfg.client.bridge_network_subnet, "172.26.64.0/20");
    assert_int_equal(cfg.client.min_dynamic_port, 20000);
    assert_int_equal(cfg.client.max_dynamic_port, 32000);
    assert_false(cfg.client.raw_exec_enabled);
    assert_int_equal(cfg.client.chroot_env.n, 0);
    assert_int_equal(cfg.client.nhost_volumes, 0);
    assert_string_equal(cfg.consul.address, "127.0.0.1:8500");
    assert_true(cfg.consul.verify_ssl);
    assert_false(cfg.consul.ssl);
    assert_false(cfg.consul.configured);
    assert_true(cfg.consul.auto_advertise);
    assert_false(cfg.acl.enabled);
    assert_int_equal(cfg.files.n, 0);
    assert_int_equal(config_validate(&cfg, &err), 0);
    config_free(&cfg);
    config_free(&cfg); /* twice is fine */
}

static void test_defaults_dev(void **state)
{
    (void)state;
    struct agent_config cfg;
    struct nc_error err = {0};
    config_defaults(&cfg, true);
    assert_true(cfg.dev_mode);
    assert_true(strncmp(cfg.data_dir, "/tmp/nomclient-dev-", 19) == 0);
    assert_int_equal(strlen(cfg.data_dir), strlen("/tmp/nomclient-dev-XXXXXX"));
    struct stat st;
    assert_int_equal(stat(cfg.data_dir, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_string_equal(cfg.bind_addr, "127.0.0.1");
    assert_true(cfg.client.raw_exec_enabled);
    assert_int_equal(config_validate(&cfg, &err), 0);

    /* each dev agent gets its own directory */
    struct agent_config other;
    config_defaults(&other, true);
    assert_string_not_equal(cfg.data_dir, other.data_dir);
    assert_int_equal(rmdir(other.data_dir), 0);
    config_free(&other);

    assert_int_equal(rmdir(cfg.data_dir), 0);
    config_free(&cfg);
}

static void test_free_zeroed(void **state)
{
    (void)state;
    struct agent_config cfg = {0};
    config_free(&cfg);
    config_free(&cfg);
    config_free(NULL);
}

static void test_full_file(void **state)
{
    (void)state;
    struct agent_config cfg;
    struct nc_error err = {0};
    config_defaults(&cfg, false);
    if (config_load_path(&cfg, "data/config/full.hcl", &err) < 0)
        fail_msg("%s", err.msg);
    assert_int_equal(cfg.files.n, 1);
    assert_string_equal(cfg.files.items[0], "data/config/full.hcl");
    assert_string_equal(cfg.data_dir, "/srv/nomclient");
    assert_string_equal(cfg.name, "worker-1");
    assert_string_equal(cfg.datacenter, "eu-west-1a");
    assert_string_equal(cfg.region, "europe");
    assert_string_equal(cfg.bind_addr, "10.1.2.3");
    assert_string_equal(cfg.log_level, "DEBUG");
    assert_true(cfg.log_json);
    assert_string_equal(cfg.plugin_dir, "/opt/nomclient/plugins");
    assert_int_equal(cfg.http_port, 5656);
    assert_string_equal(cfg.addresses.http, "10.1.2.3");
    assert_string_equal(cfg.advertise.http, "10.1.2.3:5656");

    assert_true(cfg.client.enabled);
    assert_string_equal(cfg.client.node_class, "batch");
    assert_string_equal(cfg.client.node_pool, "gpu");
    assert_int_equal(cfg.client.servers.n, 2);
    assert_string_equal(cfg.client.servers.items[1], "10.0.0.2:4647");
    assert_int_equal(cfg.client.meta.n, 2);
    assert_string_equal(kv_get(&cfg.client.meta, "rack"), "r12");
    assert_string_equal(kv_get(&cfg.client.meta, "tier"), "2");
    assert_int_equal(cfg.client.nhost_volumes, 2);
    assert_string_equal(cfg.client.host_volumes[0].name, "data");
    assert_string_equal(cfg.client.host_volumes[0].path, "/srv/data");
    assert_false(cfg.client.host_volumes[0].read_only);
    assert_string_equal(cfg.client.host_volumes[1].name, "certs");
    assert_string_equal(cfg.client.host_volumes[1].path, "/etc/ssl/certs");
    assert_true(cfg.client.host_volumes[1].read_only);
    assert_string_equal(cfg.client.cni_path, "/opt/cni/bin");
    assert_string_equal(cfg.client.cni_config_dir, "/opt/cni/config");
    assert_string_equal(cfg.client.bridge_network_name, "nomclient");
    assert_string_equal(cfg.client.bridge_network_subnet, "10.99.0.0/16");
    assert_int_equal(cfg.client.min_dynamic_port, 21000);
    assert_int_equal(cfg.client.max_dynamic_port, 22000);
    assert_string_equal(cfg.client.network_interface, "eth1");
    assert_int_equal(cfg.client.cpu_total_compute, 12000);
    assert_int_equal(cfg.client.memory_total_mb, 32768);
    assert_int_equal(cfg.client.reserved.cpu, 500);
    assert_int_equal(cfg.client.reserved.cores, 3); /* "0-1,3" */
    assert_int_equal(cfg.client.reserved.memory_mb, 1024);
    assert_int_equal(cfg.client.reserved.disk_mb, 2048);
    assert_string_equal(cfg.client.reserved.reserved_ports, "22,80,8000-8100");
    assert_int_equal(cfg.client.options.n, 2);
    assert_string_equal(kv_get(&cfg.client.options, "driver.denylist"),
                        "docker");
    assert_int_equal(cfg.client.chroot_env.n, 2);
    assert_string_equal(kv_get(&cfg.client.chroot_env, "/etc"), "/etc");
    assert_true(cfg.client.raw_exec_enabled);

    assert_true(cfg.consul.configured);
    assert_string_equal(cfg.consul.address, "127.0.0.1:8501");
    assert_string_equal(cfg.consul.token, "abcd");
    assert_true(cfg.consul.ssl);
    assert_false(cfg.consul.verify_ssl);
    assert_string_equal(cfg.consul.ca_file, "/etc/consul/ca.pem");
    assert_string_equal(cfg.consul.cert_file, "/etc/consul/cert.pem");
    assert_string_equal(cfg.consul.key_file, "/etc/consul/key.pem");
    assert_string_equal(cfg.consul.auth, "user:pass");
    assert_string_equal(cfg.consul.server_service_name, "nomad-srv");
    assert_string_equal(cfg.consul.client_service_name, "nomad-cli");
    assert_false(cfg.consul.auto_advertise);
    assert_true(cfg.consul.checks_use_advertise);
    assert_int_equal(cfg.consul.tags.n, 2);
    assert_string_equal(cfg.consul.tags.items[0], "edge");
    assert_true(cfg.acl.enabled);

    assert_int_equal(config_validate(&cfg, &err), 0);
    config_free(&cfg);
}

static void test_directory_merge(void **state)
{
    (void)state;
    struct agent_config cfg;
    struct nc_error err = {0};
    config_defaults(&cfg, false);
    if (config_load_path(&cfg, "data/config/dir", &err) < 0)
        fail_msg("%s", err.msg);
    /* name order; notes.txt, .hidden.hcl and the sub.hcl directory are
     * not config files */
    assert_int_equal(cfg.files.n, 3);
    assert_string_equal(cfg.files.items[0], "data/config/dir/10-base.hcl");
    assert_string_equal(cfg.files.items[1], "data/config/dir/20-override.hcl");
    assert_string_equal(cfg.files.items[2], "data/config/dir/30-json.json");

    assert_string_equal(cfg.data_dir, "/srv/merged"); /* only in the first */
    assert_string_equal(cfg.datacenter, "dc-b");      /* later wins */
    assert_string_equal(cfg.region, "r-json");
    assert_string_equal(cfg.log_level, "WARN");
    /* meta merged key by key */
    assert_int_equal(cfg.client.meta.n, 3);
    assert_string_equal(kv_get(&cfg.client.meta, "a"), "1");
    assert_string_equal(kv_get(&cfg.client.meta, "b"), "2");
    assert_string_equal(kv_get(&cfg.client.meta, "c"), "3");
    assert_string_equal(kv_get(&cfg.client.options, "x"), "1");
    assert_string_equal(kv_get(&cfg.client.chroot_env, "/usr"), "/usr");
    /* host volumes by name: a later definition replaces the whole volume */
    assert_int_equal(cfg.client.nhost_volumes, 2);
    const struct host_volume_config *data = find_volume(&cfg, "data");
    assert_non_null(data);
    assert_string_equal(data->path, "/srv/b");
    assert_false(data->read_only);
    assert_non_null(find_volume(&cfg, "logs"));
    /* reserved field by field */
    assert_int_equal(cfg.client.reserved.cpu, 100);
    assert_int_equal(cfg.client.reserved.memory_mb, 300);
    assert_true(cfg.consul.configured);
    assert_string_equal(cfg.consul.address, "consul-a:8500");
    assert_true(cfg.client.raw_exec_enabled);
    assert_int_equal(config_validate(&cfg, &err), 0);

    /* a directory path with a trailing slash names files the same way */
    config_free(&cfg);
    config_defaults(&cfg, false);
    if (config_load_path(&cfg, "data/config/dir/", &err) < 0)
        fail_msg("%s", err.msg);
    assert_string_equal(cfg.files.items[0], "data/config/dir/10-base.hcl");
    config_free(&cfg);
}

static void test_files_in_order(void **state)
{
    (void)state;
    /* -config given twice: the second file wins for scalars, merges maps */
    struct agent_config cfg;
    struct nc_error err = {0};
    config_defaults(&cfg, false);
    assert_int_equal(config_load_path(&cfg, "data/config/full.hcl", &err), 0);
    assert_int_equal(config_load_path(&cfg, "data/config/agent.json", &err), 0);
    assert_int_equal(cfg.files.n, 2);
    assert_string_equal(cfg.data_dir, "/srv/json");
    assert_string_equal(cfg.datacenter, "eu-west-1a");
    assert_string_equal(kv_get(&cfg.client.meta, "rack"), "r12");
    assert_string_equal(kv_get(&cfg.client.meta, "k"), "v");
    assert_int_equal(cfg.client.nhost_volumes, 2);
    assert_true(find_volume(&cfg, "data")->read_only);
    assert_int_equal(cfg.client.reserved.cpu, 500);
    assert_int_equal(cfg.client.reserved.cores, 2);
    assert_string_equal(cfg.client.reserved.reserved_ports, "22");
    /* lists are replaced, not appended */
    assert_int_equal(cfg.client.servers.n, 1);
    assert_int_equal(cfg.consul.tags.n, 1);
    config_free(&cfg);
}

static void test_json_file(void **state)
{
    (void)state;
    struct agent_config cfg;
    struct nc_error err = {0};
    config_defaults(&cfg, false);
    if (config_load_path(&cfg, "data/config/agent.json", &err) < 0)
        fail_msg("%s", err.msg);
    assert_string_equal(cfg.data_dir, "/srv/json");
    assert_string_equal(cfg.bind_addr, "127.0.0.1");
    assert_string_equal(cfg.log_level, "TRACE");
    assert_int_equal(cfg.http_port, 4747);
    assert_string_equal(cfg.client.node_class, "json");
    assert_string_equal(kv_get(&cfg.client.meta, "k"), "v");
    assert_string_equal(kv_get(&cfg.client.meta, "n"), "5");
    assert_string_equal(kv_get(&cfg.client.meta, "f"), "1.5");
    assert_string_equal(kv_get(&cfg.client.meta, "b"), "true");
    assert_int_equal(cfg.client.nhost_volumes, 1);
    assert_string_equal(cfg.client.host_volumes[0].path, "/srv/data");
    assert_true(cfg.client.host_volumes[0].read_only);
    assert_int_equal(cfg.client.reserved.cores, 2);
    assert_true(cfg.client.raw_exec_enabled);
    assert_true(cfg.consul.configured);
    /* the scheme says TLS */
    assert_string_equal(cfg.consul.address, "consul.service:8501");
    assert_true(cfg.consul.ssl);
    assert_int_equal(config_validate(&cfg, &err), 0);
    config_free(&cfg);
}

static void test_json_errors(void **state)
{
    (void)state;
    /* jansson keeps no positions: file and path only */
    expect_load_error("agent.json", "{\"client\": {\"enabeld\": true}}",
                      "agent.json: client: unknown attribute \"enabeld\"");
    expect_load_error("agent.json", "{\"data_dir\": 42}",
                      "agent.json: data_dir: expected a string, got number");
    expect_load_error(
        "agent.json",
        "{\"client\": {\"host_volume\": {\"data\": {\"path\": true}}}}",
        "agent.json: client > host_volume \"data\" > path: expected a "
        "string, got bool");
    expect_load_error("agent.json", "{\"client\": {\"host_volume\": [5]}}",
                      "agent.json: client > host_volume: expected a block, "
                      "got number");
    expect_load_error("agent.json", "[1, 2]",
                      "agent.json: expected a JSON object at the top level");
    expect_load_error("agent.json", "{\"server\": {\"enabled\": true}}",
                      "agent.json: server: server mode is not supported by "
                      "nomclient; run Nomad servers for that");

    struct agent_config cfg;
    struct nc_error err = {0};
    assert_int_equal(load(&cfg, "agent.json", "{\"data_dir\": }", &err),
                     -EINVAL);
    assert_true(strncmp(err.msg, "agent.json:1:", 13) == 0);
    config_free(&cfg);

    /* no extension: a body starting with '{' is JSON */
    assert_int_equal(load(&cfg, "agent.conf", " {\"region\": \"r\"}", &err), 0);
    assert_string_equal(cfg.region, "r");
    config_free(&cfg);
}

static void test_exec_allow_caps(void **state)
{
    (void)state;
    struct agent_config cfg;
    struct nc_error err = {0};
    /* Nomad's defaults unless set */
    assert_int_equal(load(&cfg, "agent.hcl", "", &err), 0);
    assert_int_equal(cfg.client.exec_allow_caps.n, 13);
    assert_true(strlist_contains(&cfg.client.exec_allow_caps, "CAP_CHOWN"));
    config_free(&cfg);
    assert_int_equal(
        load(&cfg, "agent.hcl",
             "plugin \"exec\" {\n  config {\n"
             "    allow_caps = [\"chown\", \"CAP_NET_RAW\", \"all\"]\n"
             "    no_pivot_root = false\n  }\n}\n",
             &err),
        0);
    assert_int_equal(cfg.client.exec_allow_caps.n, 3);
    assert_string_equal(cfg.client.exec_allow_caps.items[1], "CAP_NET_RAW");
    config_free(&cfg);
    expect_load_error("agent.hcl",
                      "plugin \"exec\" {\n  config {\n"
                      "    allow_caps = [\"chown\", \"net_rwa\"]\n  }\n}\n",
                      "agent.hcl:3:28: plugin \"exec\" > config > allow_caps: "
                      "unknown capability \"net_rwa\" (names as in "
                      "capabilities(7), with or without CAP_, or \"all\")");
}

static void test_load_errors(void **state)
{
    (void)state;
    expect_load_error("agent.hcl",
                      "data_dir = \"/x\"\n"
                      "client {\n"
                      "  enabled = true\n"
                      "  enabeld = true\n"
                      "}\n",
                      "agent.hcl:4:3: client: unknown attribute \"enabeld\"");
    expect_load_error("agent.hcl",
                      "client {\n"
                      "  host_volume \"x\" { path = \"/a\"  read_only = true }\n"
                      "}\n",
                      "agent.hcl:2:34: Invalid single-argument block "
                      "definition; A single-line block definition must end "
                      "with a closing brace immediately after its single "
                      "argument definition.");
    expect_load_error("agent.hcl", "bind_addr = \"::\"\nclinet {\n}\n",
                      "agent.hcl:2:1: unknown block \"clinet\"");
    expect_load_error("agent.hcl", "colour = \"blue\"\n",
                      "agent.hcl:1:1: unknown attribute \"colour\"");
    expect_load_error("agent.hcl", "tls {\n  http = true\n  htp = 1\n}\n",
                      "agent.hcl:3:3: tls: unknown attribute \"htp\"");
    expect_load_error("agent.hcl", "tls {\n  tls_min_version = \"tls9\"\n}\n",
                      "agent.hcl:2:21: tls > tls_min_version: unsupported "
                      "TLS version \"tls9\" (one of tls10, tls11, tls12)");
    expect_load_error("agent.hcl", "name = \"n\"\ndata_dir = 42\n",
                      "agent.hcl:2:12: data_dir: expected a string, got "
                      "number");
    expect_load_error("agent.hcl", "log_json = \"yes\"\n",
                      "agent.hcl:1:12: log_json: expected a bool, got string");
    expect_load_error("agent.hcl", "ports {\n  http = 46.5\n}\n",
                      "agent.hcl:2:10: ports > http: expected a whole "
                      "number, got 46.5");
    expect_load_error("agent.hcl",
                      "client {\n  reserved {\n    memory = \"lots\"\n  }\n}\n",
                      "agent.hcl:3:14: client > reserved > memory: expected "
                      "a whole number, got \"lots\"");
    expect_load_error("agent.hcl",
                      "client {\n  reserved {\n    cores = \"2-1\"\n  }\n}\n",
                      "agent.hcl:3:13: client > reserved > cores: \"2-1\" "
                      "is not a cpuset like \"0-1,3\"");
    expect_load_error("agent.hcl", "client {\n  servers = [\"a\", 4647]\n}\n",
                      "agent.hcl:2:19: client > servers: expected a list of "
                      "strings, got number in the list");
    expect_load_error("agent.hcl", "client {\n  servers = \"a\"\n}\n",
                      "agent.hcl:2:13: client > servers: expected a list of "
                      "strings, got string");
    expect_load_error("agent.hcl",
                      "client {\n"
                      "  host_volume \"data\" {\n"
                      "    pth = \"/srv\"\n"
                      "  }\n"
                      "}\n",
                      "agent.hcl:3:5: client > host_volume \"data\": unknown "
                      "attribute \"pth\"");
    expect_load_error(
        "agent.hcl", "client {\n  host_volume {\n    path = \"/srv\"\n  }\n}\n",
        "agent.hcl:2:3: client > host_volume: expected one "
        "label, as in host_volume \"name\" { ... }");
    expect_load_error("agent.hcl", "client \"x\" {\n}\n",
                      "agent.hcl:1:1: client: unexpected label \"x\"");
    expect_load_error("agent.hcl", "log_level = \"verbose\"\n",
                      "agent.hcl:1:13: log_level: \"verbose\" is not a log "
                      "level (trace, debug, info, warn, error)");
    expect_load_error("agent.hcl", "server {\n  enabled = true\n}\n",
                      "agent.hcl:2:3: server: server mode is not supported "
                      "by nomclient; run Nomad servers for that");
    expect_load_error("agent.hcl", "client {\n  gc_interval = \"soon\"\n}\n",
                      "agent.hcl:2:17: client > gc_interval: \"soon\" is "
                      "not a duration (like \"30s\" or \"5m\")");
    expect_load_error("agent.hcl", "data_dir {\n}\n",
                      "agent.hcl:1:1: data_dir: expected an attribute "
                      "(data_dir = ...), got a block");
    expect_load_error("agent.hcl", "client = 3\n",
                      "agent.hcl:1:10: client: expected a block, got number");
    expect_load_error("agent.hcl", "client {\n  meta {\n    a = [1]\n  }\n}\n",
                      "agent.hcl:3:9: client > meta > a: expected a string, "
                      "got list");
    expect_load_error("agent.hcl",
                      "client {\n  meta {\n    inner {\n    }\n  }\n}\n",
                      "agent.hcl:3:5: client > meta: unexpected block "
                      "\"inner\"; expected name = \"value\" pairs");
    expect_load_error("agent.hcl",
                      "plugin \"raw_exec\" {\n"
                      "  config {\n"
                      "    enabld = true\n"
                      "  }\n"
                      "}\n",
                      "agent.hcl:3:5: plugin \"raw_exec\" > config: unknown "
                      "attribute \"enabld\"");
    expect_load_error("agent.hcl", "consul {\n  adress = \"x\"\n}\n",
                      "agent.hcl:2:3: consul: unknown attribute \"adress\"");
    expect_load_error("agent.hcl", "data_dir = var.dir\n",
                      "agent.hcl:1:12: data_dir: expected a string, got "
                      "expression var.dir (variables and functions are not "
                      "evaluated in agent configuration)");
    expect_load_error("agent.hcl",
                      "client {\n"
                      "  host_volume \"a\" {\n"
                      "    path = \"/a\"\n"
                      "  }\n"
                      "}\n"
                      "client {\n"
                      "  host_volume \"a\" {\n"
                      "    path = \"/b\"\n"
                      "  }\n"
                      "}\n",
                      "agent.hcl:7:3: client > host_volume \"a\": defined "
                      "more than once in this file");

    /* syntax errors come from the parser, with the file name */
    struct agent_config cfg;
    struct nc_error err = {0};
    assert_int_equal(load(&cfg, "agent.hcl", "client {\n", &err), -EINVAL);
    assert_true(strncmp(err.msg, "agent.hcl:", 10) == 0);
    config_free(&cfg);
}

static void test_accepted_and_ignored(void **state)
{
    (void)state;
    struct agent_config cfg;
    struct nc_error err = {0};
    const char *src = "leave_on_interrupt = true\n"
                      "disable_update_check = true\n"
                      "ports {\n  rpc = 4647\n  serf = 4648\n}\n"
                      "server {\n  enabled = false\n  bootstrap_expect = 3\n}\n"
                      "client {\n"
                      "  enabled = true\n"
                      "  servers = [\"1.2.3.4:4647\"]\n"
                      "  gc_interval = \"1m\"\n"
                      "  gc_parallel_destroys = 2\n"
                      "  no_host_uuid = true\n"
                      "  server_join {\n    retry_join = [\"x\"]\n  }\n"
                      "}\n"
                      "client {\n  node_class = \"second-block\"\n}\n"
                      "plugin \"podman\" {\n"
                      "  config {\n    anything = [1, 2]\n  }\n"
                      "}\n"
                      "telemetry {\n  prometheus_metrics = true\n}\n"
                      "acl {\n  enabled = true\n}\n"
                      "data_dir = null\n";
    if (load(&cfg, "agent.hcl", src, &err) < 0)
        fail_msg("%s", err.msg);
    /* repeated client blocks in one file merge */
    assert_int_equal(cfg.client.servers.n, 1);
    assert_string_equal(cfg.client.node_class, "second-block");
    assert_true(cfg.acl.enabled);
    assert_false(cfg.consul.configured);
    assert_false(cfg.client.raw_exec_enabled);
    assert_string_equal(cfg.data_dir, "/var/lib/nomclient"); /* null: unset */
    assert_int_equal(config_validate(&cfg, &err), 0);
    config_free(&cfg);

    /* the attribute form of blocks, as HCL1 allows */
    src = "client = {\n  node_class = \"attr\"\n"
          "  meta = { a = \"b\" }\n}\n"
          "consul {\n}\n";
    if (load(&cfg, "agent.hcl", src, &err) < 0)
        fail_msg("%s", err.msg);
    assert_string_equal(cfg.client.node_class, "attr");
    assert_string_equal(kv_get(&cfg.client.meta, "a"), "b");
    assert_true(cfg.consul.configured); /* an empty block still counts */
    config_free(&cfg);

    /* dev mode's raw_exec can be turned off by a file */
    config_defaults(&cfg, true);
    src = "plugin \"raw_exec\" {\n  config {\n    enabled = false\n  }\n}\n";
    assert_int_equal(
        config_load_string(&cfg, "agent.hcl", src, strlen(src), &err), 0);
    assert_false(cfg.client.raw_exec_enabled);
    rmdir(cfg.data_dir);
    config_free(&cfg);
}

static void test_validate(void **state)
{
    (void)state;
    expect_invalid("client {\n  bridge_network_subnet = \"10.0.0/33\"\n}\n",
                   "client.bridge_network_subnet: \"10.0.0/33\" is not an "
                   "IPv4 CIDR");
    expect_invalid("client {\n  bridge_network_subnet = \"10.0.0.0/33\"\n}\n",
                   "client.bridge_network_subnet: \"10.0.0.0/33\" is not an "
                   "IPv4 CIDR");
    expect_invalid("client {\n  bridge_network_subnet = \"fd00::/64\"\n}\n",
                   "client.bridge_network_subnet: \"fd00::/64\" is not an "
                   "IPv4 CIDR");
    expect_invalid("client {\n"
                   "  host_volume \"data\" {\n"
                   "    path = \"srv/data\"\n"
                   "  }\n"
                   "}\n",
                   "client.host_volume \"data\".path: \"srv/data\" is not an "
                   "absolute path");
    expect_invalid("client {\n"
                   "  host_volume \"data\" {\n"
                   "    read_only = true\n"
                   "  }\n"
                   "}\n",
                   "client.host_volume \"data\".path: missing; a host volume "
                   "needs an absolute path");
    expect_invalid(
        "client {\n  host_volume \"\" {\n    path = \"/x\"\n  }\n}\n",
        "client.host_volume: a host volume needs a non-empty name");
    expect_invalid("ports {\n  http = 70000\n}\n",
                   "ports.http: 70000 is not a port (0-65535)");
    expect_invalid("client {\n  min_dynamic_port = 32000\n}\n",
                   "client.min_dynamic_port: 32000 must be less than "
                   "client.max_dynamic_port (32000)");
    expect_invalid("client {\n  max_dynamic_port = 70000\n}\n",
                   "client.max_dynamic_port: 70000 is not a port (1-65535)");
    expect_invalid("client {\n  min_dynamic_port = 0\n}\n",
                   "client.min_dynamic_port: 0 is not a port (1-65535)");
    expect_invalid("bind_addr = \"localhost\"\n",
                   "bind_addr: \"localhost\" is not an IP address");
    expect_invalid("addresses {\n  http = \"nowhere\"\n}\n",
                   "addresses.http: \"nowhere\" is not an IP address");
    expect_invalid("data_dir = \"data\"\n",
                   "data_dir: \"data\" is not an absolute path");
    expect_invalid("datacenter = \"\"\n", "datacenter: must not be empty");
    expect_invalid("client {\n  enabled = false\n}\n",
                   "client.enabled: nomclient only runs as a client; with "
                   "the client disabled there is nothing to run");
    expect_invalid("client {\n  reserved {\n    memory = -1\n  }\n}\n",
                   "client.reserved.memory: -1 must not be negative");
    expect_invalid(
        "client {\n  reserved {\n    reserved_ports = \"22,x\"\n  }\n}\n",
        "client.reserved.reserved_ports: \"22,x\": \"x\" is not a port or a "
        "range of ports (expected a list like \"22,80,8000-8100\")");
    expect_invalid(
        "client {\n  reserved {\n    reserved_ports = \"80-70\"\n  }\n}\n",
        "client.reserved.reserved_ports: \"80-70\": \"80-70\": the range ends "
        "before it starts (expected a list like \"22,80,8000-8100\")");
    expect_invalid(
        "client {\n  reserved {\n    reserved_ports = \"22,,80\"\n  }\n}\n",
        "client.reserved.reserved_ports: \"22,,80\": empty port in the list "
        "(expected a list like \"22,80,8000-8100\")");
    expect_invalid(
        "client {\n  reserved {\n    reserved_ports = \"0-10\"\n  }\n}\n",
        "client.reserved.reserved_ports: \"0-10\": \"0-10\": ports are "
        "1-65535 (expected a list like \"22,80,8000-8100\")");

    /* what is fine */
    struct agent_config cfg;
    struct nc_error err = {0};
    const char *ok = "bind_addr = \"::1\"\n"
                     "ports {\n  http = 0\n}\n"
                     "client {\n"
                     "  bridge_network_subnet = \"10.0.0.0/8\"\n"
                     "  reserved {\n"
                     "    reserved_ports = \"22, 80,8000-8100\"\n"
                     "  }\n"
                     "}\n";
    assert_int_equal(load(&cfg, "agent.hcl", ok, &err), 0);
    assert_int_equal(config_validate(&cfg, &err), 0);
    /* a -log-level flag lands after loading: validate catches it */
    free(cfg.log_level);
    cfg.log_level = xstrdup("loud");
    assert_int_equal(config_validate(&cfg, &err), -EINVAL);
    assert_string_equal(err.msg, "log_level: \"loud\" is not a log level "
                                 "(trace, debug, info, warn, error)");
    config_free(&cfg);

    /* duplicate names can only come from code, not from files */
    config_defaults(&cfg, false);
    cfg.client.host_volumes = xcalloc(2, sizeof(*cfg.client.host_volumes));
    cfg.client.nhost_volumes = 2;
    for (int i = 0; i < 2; i++) {
        cfg.client.host_volumes[i].name = xstrdup("twice");
        cfg.client.host_volumes[i].path = xstrdup("/x");
    }
    assert_int_equal(config_validate(&cfg, &err), -EINVAL);
    assert_string_equal(err.msg,
                        "client.host_volume \"twice\": defined more than once");
    config_free(&cfg);
}

static void test_missing_file(void **state)
{
    (void)state;
    struct agent_config cfg;
    struct nc_error err = {0};
    config_defaults(&cfg, false);
    assert_int_equal(config_load_path(&cfg, "data/config/nope.hcl", &err),
                     -ENOENT);
    assert_string_equal(err.msg,
                        "data/config/nope.hcl: No such file or directory");
    assert_int_equal(cfg.files.n, 0);
    config_free(&cfg);
}

static void test_unreadable_file_in_dir(void **state)
{
    (void)state;
    char dir[] = "/tmp/nomclient-cfgtest-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char *good = xasprintf("%s/a.hcl", dir);
    char *dangling = xasprintf("%s/b.hcl", dir);
    FILE *f = fopen(good, "w");
    assert_non_null(f);
    fputs("region = \"from-a\"\n", f);
    fclose(f);
    assert_int_equal(symlink("/nonexistent/nomclient.hcl", dangling), 0);

    struct agent_config cfg;
    struct nc_error err = {0};
    config_defaults(&cfg, false);
    assert_int_equal(config_load_path(&cfg, dir, &err), -ENOENT);
    char *want = xasprintf("%s: No such file or directory", dangling);
    assert_string_equal(err.msg, want);
    /* the files before it were loaded */
    assert_int_equal(cfg.files.n, 1);
    assert_string_equal(cfg.region, "from-a");
    config_free(&cfg);

    /* an empty directory is no error, as in Nomad */
    unlink(dangling);
    unlink(good);
    config_defaults(&cfg, false);
    assert_int_equal(config_load_path(&cfg, dir, &err), 0);
    assert_int_equal(cfg.files.n, 0);
    config_free(&cfg);

    assert_int_equal(rmdir(dir), 0);
    free(want);
    free(good);
    free(dangling);
}

static void test_env(void **state)
{
    (void)state;
    struct agent_config cfg;
    struct nc_error err = {0};

    /* nothing set: nothing changes */
    clear_consul_env();
    config_defaults(&cfg, false);
    config_apply_env(&cfg);
    assert_false(cfg.consul.configured);
    assert_string_equal(cfg.consul.address, "127.0.0.1:8500");
    assert_null(cfg.consul.token);
    config_free(&cfg);

    /* no file: the environment fills everything */
    setenv("CONSUL_HTTP_ADDR", "https://consul.example:8501", 1);
    setenv("CONSUL_HTTP_TOKEN", "env-token", 1);
    setenv("CONSUL_HTTP_SSL_VERIFY", "false", 1);
    setenv("CONSUL_CACERT", "/env/ca.pem", 1);
    setenv("CONSUL_CLIENT_CERT", "/env/cert.pem", 1);
    setenv("CONSUL_CLIENT_KEY", "/env/key.pem", 1);
    config_defaults(&cfg, false);
    config_apply_env(&cfg);
    assert_true(cfg.consul.configured);
    assert_string_equal(cfg.consul.address, "consul.example:8501");
    assert_true(cfg.consul.ssl);
    assert_false(cfg.consul.verify_ssl);
    assert_string_equal(cfg.consul.token, "env-token");
    assert_string_equal(cfg.consul.ca_file, "/env/ca.pem");
    assert_string_equal(cfg.consul.cert_file, "/env/cert.pem");
    assert_string_equal(cfg.consul.key_file, "/env/key.pem");
    config_free(&cfg);

    /* what a file set stays; the rest comes from the environment */
    const char *src = "consul {\n"
                      "  address = \"10.0.0.5:8500\"\n"
                      "  token = \"file-token\"\n"
                      "  ssl = false\n"
                      "}\n";
    assert_int_equal(load(&cfg, "agent.hcl", src, &err), 0);
    config_apply_env(&cfg);
    assert_string_equal(cfg.consul.address, "10.0.0.5:8500");
    assert_string_equal(cfg.consul.token, "file-token");
    assert_false(cfg.consul.ssl);
    assert_false(cfg.consul.verify_ssl);
    assert_string_equal(cfg.consul.ca_file, "/env/ca.pem");
    config_free(&cfg);

    /* unix sockets are kept as they are; CONSUL_HTTP_SSL is a Go bool */
    clear_consul_env();
    setenv("CONSUL_HTTP_ADDR", "unix:///run/consul.sock", 1);
    setenv("CONSUL_HTTP_SSL", "T", 1);
    config_defaults(&cfg, false);
    config_apply_env(&cfg);
    assert_true(cfg.consul.configured);
    assert_string_equal(cfg.consul.address, "unix:///run/consul.sock");
    assert_true(cfg.consul.ssl);
    config_free(&cfg);

    /* a file's verify_ssl = true is not overridden either */
    clear_consul_env();
    setenv("CONSUL_HTTP_SSL_VERIFY", "0", 1);
    setenv("CONSUL_HTTP_ADDR", "http://plain:8500", 1);
    assert_int_equal(
        load(&cfg, "agent.hcl", "consul {\n  verify_ssl = true\n}\n", &err), 0);
    config_apply_env(&cfg);
    assert_true(cfg.consul.verify_ssl);
    assert_string_equal(cfg.consul.address, "plain:8500");
    assert_false(cfg.consul.ssl);
    config_free(&cfg);
    clear_consul_env();
}

static void test_contrib_example(void **state)
{
    (void)state;
    struct agent_config cfg;
    struct nc_error err = {0};
    config_defaults(&cfg, false);
    if (config_load_path(&cfg, "../contrib/agent.hcl", &err) < 0)
        fail_msg("%s", err.msg);
    if (config_validate(&cfg, &err) < 0)
        fail_msg("%s", err.msg);
    assert_string_equal(cfg.data_dir, "/var/lib/nomclient");
    assert_false(cfg.client.raw_exec_enabled);
    assert_non_null(find_volume(&cfg, "data"));
    assert_string_equal(cfg.client.cni_path, "/usr/lib/cni");
    assert_string_equal(cfg.log_level, "INFO");
    config_free(&cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_defaults_dev),
        cmocka_unit_test(test_free_zeroed),
        cmocka_unit_test(test_full_file),
        cmocka_unit_test(test_directory_merge),
        cmocka_unit_test(test_files_in_order),
        cmocka_unit_test(test_json_file),
        cmocka_unit_test(test_json_errors),
        cmocka_unit_test(test_load_errors),
        cmocka_unit_test(test_exec_allow_caps),
        cmocka_unit_test(test_accepted_and_ignored),
        cmocka_unit_test(test_validate),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_unreadable_file_in_dir),
        cmocka_unit_test(test_env),
        cmocka_unit_test(test_contrib_example),
    };
    clear_consul_env();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
