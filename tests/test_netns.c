// deps: netns/conf.c netns/exec.c netns/helper.c netns/iptables.c
// deps: netns/nsfs.c netns/state.c client/util.c
/* netns/ without the real CNI plugins: Nomad's bridge conflist, custom
 * networks from a config dir, validation, the CNI JSON shapes (runtime
 * config, errors, results), the helper protocol, the state journal,
 * iptables-save planning, running programs with a deadline and, as root,
 * the helper's ADD / rollback / DEL / CHECK sequencing with fake plugins
 * (shell scripts logging how they were called), also on a namespace
 * another process holds. Real plugins and kernel
 * objects are exercised by tests/integration/test_netns.sh. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "netns/netns.h"
#include "netns/netns_internal.h"

/* ---- fixtures ------------------------------------------------------------ */

static char tmpdir[64];

static int rm_entry(const char *path, const struct stat *st, int flag,
                    struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_netns.XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}

static void write_file(const char *name, const char *text, int mode)
{
    char *path = xasprintf("%s/%s", tmpdir, name);
    char *slash = strrchr(path, '/');
    *slash = '\0';
    nc_mkdir_p(path, 0755);
    *slash = '/';
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    chmod(path, (mode_t)mode);
    free(path);
}

static json_t *parse(const char *text)
{
    json_error_t je;
    json_t *j = json_loads(text, 0, &je);
    if (!j)
        fail_msg("bad test JSON: %s: %s", je.text, text);
    return j;
}

static void assert_json_equal(const json_t *got, const char *want)
{
    json_t *w = parse(want);
    if (!json_equal(got, w)) {
        char *g = json_dumps(got, JSON_SORT_KEYS);
        char *e = json_dumps(w, JSON_SORT_KEYS);
        print_error("got:  %s\nwant: %s\n", g, e);
        free(g);
        free(e);
        json_decref(w);
        fail();
    }
    json_decref(w);
}

static void assert_contains(const char *s, const char *part)
{
    if (!s || !strstr(s, part))
        fail_msg("\"%s\" does not contain \"%s\"", s ? s : "(null)", part);
}

/* ---- bridge conflist ----------------------------------------------------- */

static const char nomad_conflist[] =
    "{\"cniVersion\": \"0.4.0\", \"name\": \"nomad\", \"plugins\": ["
    "{\"type\": \"loopback\"},"
    "{\"type\": \"bridge\", \"bridge\": \"nomad\", \"ipMasq\": true,"
    " \"isGateway\": true, \"forceAddress\": true, \"hairpinMode\": true,"
    " \"ipam\": {\"type\": \"host-local\","
    " \"ranges\": [[{\"subnet\": \"172.26.64.0/20\"}]],"
    " \"routes\": [{\"dst\": \"0.0.0.0/0\"}]}},"
    "{\"type\": \"firewall\", \"backend\": \"iptables\","
    " \"iptablesAdminChainName\": \"NOMAD-ADMIN\"},"
    "{\"type\": \"portmap\", \"capabilities\": {\"portMappings\": true},"
    " \"snat\": true}]}";

static void test_bridge_conflist_default(void **state)
{
    (void)state;
    struct netns_config cfg = {.state_dir = "/x"};
    assert_int_equal(netns_config_validate(&cfg, NULL), 0);
    json_t *l = netns_bridge_conflist(&cfg);
    assert_json_equal(l, nomad_conflist);
    assert_int_equal(netns_conflist_validate(l, "bridge", NULL), 0);
    json_decref(l);
}

static void test_bridge_conflist_custom(void **state)
{
    (void)state;
    struct netns_config cfg = {.bridge_name = "nctest0",
                               .subnet = "10.255.64.0/24",
                               .network_name = "nctest",
                               .disable_hairpin = true,
                               .state_dir = "/x"};
    json_t *l = netns_bridge_conflist(&cfg);
    json_t *br = json_array_get(json_object_get(l, "plugins"), 1);
    assert_string_equal(json_string_value(json_object_get(l, "name")),
                        "nctest");
    assert_string_equal(json_string_value(json_object_get(br, "bridge")),
                        "nctest0");
    assert_true(json_is_false(json_object_get(br, "hairpinMode")));
    json_t *range = json_array_get(
        json_array_get(json_object_get(json_object_get(br, "ipam"), "ranges"),
                       0),
        0);
    assert_string_equal(json_string_value(json_object_get(range, "subnet")),
                        "10.255.64.0/24");
    json_decref(l);
    json_t *out = NULL;
    assert_int_equal(netns_conflist_for_mode(&cfg, "bridge", &out, NULL), 0);
    assert_non_null(out);
    json_decref(out);
}

static void test_config_validation(void **state)
{
    (void)state;
    struct {
        const char *bridge, *subnet, *state_dir, *want;
    } cases[] = {
        {"nomad", "172.26.64.0/20", "/d", NULL},
        {"a23456789012345", "10.0.0.0/8", "/d", NULL},
        {"a234567890123456", "10.0.0.0/8", "/d", "at most 15 (IFNAMSIZ)"},
        {"br/0", "10.0.0.0/8", "/d", "not a valid interface name"},
        {"br 0", "10.0.0.0/8", "/d", "not a valid interface name"},
        {"..", "10.0.0.0/8", "/d", "not a valid interface name"},
        {"br0", "10.0.0.0", "/d", "is not an IPv4 CIDR"},
        {"br0", "10.0.0.0/33", "/d", "is not an IPv4 CIDR"},
        {"br0", "300.0.0.0/8", "/d", "is not an IPv4 CIDR"},
        {"br0", "fd00::/64", "/d", "is not an IPv4 CIDR"},
        {"br0", "10.0.0.0/24x", "/d", "is not an IPv4 CIDR"},
        {"br0", "10.0.0.0/31", "/d", "no room for a gateway"},
        {"br0", "10.1.2.3/16", "/d", "did you mean 10.1.0.0/16?"},
        {"br0", "10.0.0.0/24", "rel", "must be an absolute path"},
    };
    for (size_t i = 0; i < NC_ARRAY_LEN(cases); i++) {
        struct netns_config cfg = {.bridge_name = cases[i].bridge,
                                   .subnet = cases[i].subnet,
                                   .state_dir = cases[i].state_dir};
        struct nc_error err = {0};
        int r = netns_config_validate(&cfg, &err);
        if (!cases[i].want) {
            assert_int_equal(r, 0);
            continue;
        }
        assert_int_equal(r, -EINVAL);
        assert_contains(err.msg, cases[i].want);
    }
    struct netns_config bad = {.network_name = "../x", .state_dir = "/d"};
    struct nc_error err = {0};
    assert_int_equal(netns_config_validate(&bad, &err), -EINVAL);
    assert_contains(err.msg, "conflist name \"../x\"");
}

/* ---- custom networks ----------------------------------------------------- */

static void test_load_networks(void **state)
{
    (void)state;
    write_file("net.d/10-alpha.conflist",
               "{\"cniVersion\":\"1.0.0\",\"name\":\"alpha\",\"plugins\":["
               "{\"type\":\"bridge\",\"bridge\":\"a0\"},"
               "{\"type\":\"portmap\",\"capabilities\":{\"portMappings\":true}"
               "}]}",
               0644);
    write_file(
        "net.d/20-beta.conf",
        "{\"cniVersion\":\"0.4.0\",\"name\":\"beta\",\"type\":\"macvlan\","
        "\"master\":\"eth0\"}",
        0644);
    write_file("net.d/30-gamma.json",
               "{\"cniVersion\":\"0.4.0\",\"name\":\"gamma\",\"plugins\":[{"
               "\"type\":\"ptp\"}]}",
               0644);
    write_file("net.d/README", "not a config", 0644);
    char *dir = xasprintf("%s/net.d", tmpdir);
    json_t *l = NULL;
    struct nc_error err = {0};
    assert_int_equal(netns_load_network(dir, "alpha", &l, &err), 0);
    assert_int_equal(json_array_size(json_object_get(l, "plugins")), 2);
    json_decref(l);
    /* a single plugin becomes a one-plugin list */
    assert_int_equal(netns_load_network(dir, "beta", &l, &err), 0);
    assert_json_equal(l,
                      "{\"cniVersion\":\"0.4.0\",\"name\":\"beta\","
                      "\"plugins\":[{\"cniVersion\":\"0.4.0\",\"name\":"
                      "\"beta\",\"type\":\"macvlan\",\"master\":\"eth0\"}]}");
    json_decref(l);
    /* a .json file holding a list */
    assert_int_equal(netns_load_network(dir, "gamma", &l, &err), 0);
    json_decref(l);
    /* wrong name */
    assert_int_equal(netns_load_network(dir, "delta", &l, &err), -ENOENT);
    assert_null(l);
    assert_contains(err.msg, "CNI network \"delta\" not found in");
    assert_contains(err.msg, dir);
    /* through the mode */
    struct netns_config cfg = {.cni_config_dir = dir, .state_dir = "/x"};
    assert_int_equal(netns_conflist_for_mode(&cfg, "cni/beta", &l, &err), 0);
    json_decref(l);
    assert_int_equal(netns_conflist_for_mode(&cfg, "host", &l, &err), -EINVAL);
    assert_contains(err.msg, "network mode \"host\"");
    free(dir);
}

static void test_load_network_errors(void **state)
{
    (void)state;
    json_t *l = NULL;
    struct nc_error err = {0};
    char *missing = xasprintf("%s/none", tmpdir);
    assert_int_equal(netns_load_network(missing, "x", &l, &err), -ENOENT);
    assert_contains(err.msg, missing);
    free(missing);

    write_file("empty/README", "", 0644);
    char *empty = xasprintf("%s/empty", tmpdir);
    assert_int_equal(netns_load_network(empty, "x", &l, &err), -ENOENT);
    assert_contains(err.msg, "no CNI network config");
    assert_contains(err.msg, empty);
    free(empty);

    write_file("bad/10-broken.conflist",
               "{\"cniVersion\":\"0.4.0\",\n\"name\":\"x\",\n\"plugins\": [}\n",
               0644);
    write_file("bad/20-notype.conf",
               "{\"cniVersion\":\"0.4.0\",\"name\":\"y\"}", 0644);
    write_file("bad/30-evil.conflist",
               "{\"cniVersion\":\"0.4.0\",\"name\":\"z\",\"plugins\":[{"
               "\"type\":\"../../bin/sh\"}]}",
               0644);
    write_file("bad/40-ok.conflist",
               "{\"cniVersion\":\"0.4.0\",\"name\":\"ok\",\"plugins\":[{"
               "\"type\":\"loopback\"}]}",
               0644);
    char *bad = xasprintf("%s/bad", tmpdir);
    /* the network sought is in a broken file: every broken file is named */
    assert_int_equal(netns_load_network(bad, "x", &l, &err), -EINVAL);
    assert_null(l);
    assert_contains(err.msg, "10-broken.conflist:3:");
    assert_contains(err.msg, "invalid JSON");
    assert_contains(err.msg, "20-notype.conf: missing \"type\"");
    assert_contains(err.msg, "30-evil.conflist: plugins[0]: type "
                             "\"../../bin/sh\" is not a plugin name");
    /* a good network beside broken ones still loads */
    assert_int_equal(netns_load_network(bad, "ok", &l, &err), 0);
    json_decref(l);
    free(bad);
}

static void test_conflist_shapes(void **state)
{
    (void)state;
    static const struct {
        const char *text, *want;
    } cases[] = {
        {"[]", "not a JSON object"},
        {"{\"cniVersion\":\"0.4.0\",\"plugins\":[{\"type\":\"a\"}]}",
         "\"name\" must be a string"},
        {"{\"name\":\"n\",\"plugins\":[{\"type\":\"a\"}]}", "\"cniVersion\""},
        {"{\"cniVersion\":\"0.4.0\",\"name\":\"n\",\"plugins\":[]}",
         "non-empty array"},
        {"{\"cniVersion\":\"0.4.0\",\"name\":\"n\",\"plugins\":[1]}",
         "plugins[0] is not an object"},
        {"{\"cniVersion\":\"0.4.0\",\"name\":\"n/x\",\"plugins\":[{\"type\":"
         "\"a\"}]}",
         "network name \"n/x\""},
        {"{\"cniVersion\":\"0.4.0\",\"name\":\"n\",\"plugins\":[{\"type\":"
         "\"a\",\"capabilities\":[]}]}",
         "\"capabilities\" must be an object"},
    };
    for (size_t i = 0; i < NC_ARRAY_LEN(cases); i++) {
        json_t *l = NULL;
        struct nc_error err = {0};
        assert_int_equal(netns_conflist_parse(cases[i].text,
                                              strlen(cases[i].text),
                                              "f.conflist", false, &l, &err),
                         -EINVAL);
        assert_null(l);
        assert_contains(err.msg, "f.conflist");
        assert_contains(err.msg, cases[i].want);
    }
}

static void test_missing_plugins(void **state)
{
    (void)state;
    write_file("bin1/loopback", "#!/bin/sh\n", 0755);
    write_file("bin2/bridge", "#!/bin/sh\n", 0755);
    write_file("bin2/firewall", "not executable", 0644);
    char *path = xasprintf("%s/bin1:%s/bin2", tmpdir, tmpdir);
    struct netns_config cfg = {.cni_path = path, .state_dir = "/x"};
    json_t *l = netns_bridge_conflist(&cfg);
    struct strlist missing = {0};
    assert_int_equal(netns_missing_plugins(path, l, &missing), 2);
    assert_string_equal(missing.items[0], "firewall");
    assert_string_equal(missing.items[1], "portmap");
    strlist_free(&missing);
    json_decref(l);
    struct nc_error err = {0};
    assert_int_equal(netns_mode_check(&cfg, "bridge", &err), -ENOENT);
    assert_contains(err.msg, "missing network \"bridge\": CNI plugins "
                             "firewall, portmap not found in cni_path");
    assert_contains(err.msg, path);
    /* a custom network that cannot be loaded says why */
    cfg.cni_config_dir = "/nonexistent-cni-dir";
    assert_int_equal(netns_mode_check(&cfg, "cni/x", &err), -ENOENT);
    assert_contains(err.msg, "missing network \"cni/x\"");
    assert_contains(err.msg, "/nonexistent-cni-dir");
    /* fingerprint: bridge unavailable, the loadable custom network listed */
    write_file("fp/a.conflist",
               "{\"cniVersion\":\"0.4.0\",\"name\":\"lo-only\",\"plugins\":[{"
               "\"type\":\"loopback\"}]}",
               0644);
    write_file("fp/b.conflist", "{broken", 0644);
    char *fp = xasprintf("%s/fp", tmpdir);
    cfg.cni_config_dir = fp;
    json_t *f = netns_fingerprint(&cfg);
    assert_json_equal(f, "{\"bridge\": {\"Available\": false, \"Missing\": "
                         "[\"firewall\", \"portmap\"]}, \"cni/lo-only\": "
                         "{\"Available\": true, \"Missing\": []}}");
    json_decref(f);
    free(fp);
    free(path);
}

/* ---- CNI shapes ------------------------------------------------------------
 */

static void test_port_mappings(void **state)
{
    (void)state;
    struct netns_port_mapping p[] = {
        {.host_port = 28080, .container_port = 8080},
        {.host_port = 5353,
         .container_port = 53,
         .protocol = "udp",
         .host_ip = "127.0.0.1"},
    };
    json_t *m = NULL;
    assert_int_equal(netns_port_mappings_json(p, 2, &m, NULL), 0);
    assert_json_equal(
        m, "[{\"hostPort\":28080,\"containerPort\":8080,\"protocol\":\"tcp\"},"
           "{\"hostPort\":28080,\"containerPort\":8080,\"protocol\":\"udp\"},"
           "{\"hostPort\":5353,\"containerPort\":53,\"protocol\":\"udp\","
           "\"hostIP\":\"127.0.0.1\"}]");
    json_decref(m);
    struct nc_error err = {0};
    struct netns_port_mapping bad[] = {
        {.host_port = 0, .container_port = 1},
        {.host_port = 1, .container_port = 70000},
        {.host_port = 1, .container_port = 1, .protocol = "icmp"},
        {.host_port = 1, .container_port = 1, .host_ip = "localhost"},
    };
    const char *want[] = {"ports must be 1 to 65535", "ports must be 1",
                          "protocol \"icmp\"", "host IP \"localhost\""};
    for (size_t i = 0; i < NC_ARRAY_LEN(bad); i++) {
        assert_int_equal(netns_port_mappings_json(&bad[i], 1, &m, &err),
                         -EINVAL);
        assert_null(m);
        assert_contains(err.msg, want[i]);
    }
    assert_int_equal(netns_port_mappings_json(NULL, 0, &m, NULL), 0);
    assert_int_equal(json_array_size(m), 0);
    json_decref(m);
}

static void test_plugin_config_runtime(void **state)
{
    (void)state;
    struct netns_config cfg = {.state_dir = "/x"};
    json_t *list = netns_bridge_conflist(&cfg);
    json_t *caps = parse("{\"portMappings\":[{\"hostPort\":1,\"containerPort\":"
                         "2,\"protocol\":\"tcp\"}],\"bandwidth\":{}}");
    json_t *prev = parse("{\"cniVersion\":\"0.4.0\",\"ips\":[]}");
    json_t *c0 = netns_plugin_config(list, 0, NULL, caps);
    assert_json_equal(c0, "{\"type\":\"loopback\",\"cniVersion\":\"0.4.0\","
                          "\"name\":\"nomad\"}");
    json_t *c3 = netns_plugin_config(list, 3, prev, caps);
    assert_json_equal(
        c3, "{\"type\":\"portmap\",\"capabilities\":{\"portMappings\":true},"
            "\"snat\":true,\"cniVersion\":\"0.4.0\",\"name\":\"nomad\","
            "\"prevResult\":{\"cniVersion\":\"0.4.0\",\"ips\":[]},"
            "\"runtimeConfig\":{\"portMappings\":[{\"hostPort\":1,"
            "\"containerPort\":2,\"protocol\":\"tcp\"}]}}");
    /* the bridge asks for no capability: no runtimeConfig */
    json_t *c1 = netns_plugin_config(list, 1, prev, caps);
    assert_null(json_object_get(c1, "runtimeConfig"));
    assert_non_null(json_object_get(c1, "prevResult"));
    json_decref(c0);
    json_decref(c1);
    json_decref(c3);
    /* a capability declared false, or asked for but not given */
    json_t *l2 = parse("{\"cniVersion\":\"1.0.0\",\"name\":\"n\",\"plugins\":["
                       "{\"type\":\"portmap\",\"capabilities\":{"
                       "\"portMappings\":false,\"ips\":true}}]}");
    json_t *c = netns_plugin_config(l2, 0, NULL, caps);
    assert_null(json_object_get(c, "runtimeConfig"));
    assert_string_equal(json_string_value(json_object_get(c, "cniVersion")),
                        "1.0.0");
    json_decref(c);
    json_decref(l2);
    json_decref(caps);
    json_decref(prev);
    json_decref(list);
}

static void test_plugin_errors(void **state)
{
    (void)state;
    char msg[512];
    const char *e1 = "{\"cniVersion\":\"0.4.0\",\"code\":999,\"msg\":\"failed "
                     "to set up portmap\",\"details\":\"iptables: Chain "
                     "already exists\"}";
    assert_int_equal(
        netns_plugin_error(e1, strlen(e1), "", 1, msg, sizeof(msg)), 999);
    assert_string_equal(msg,
                        "failed to set up portmap: iptables: Chain already "
                        "exists (CNI code 999)");
    const char *e2 = "{\"code\":7,\"msg\":\"failed to find plugin\"}";
    assert_int_equal(
        netns_plugin_error(e2, strlen(e2), NULL, 1, msg, sizeof(msg)), 7);
    assert_string_equal(msg, "failed to find plugin (CNI code 7)");
    /* no CNI error: the last line of stderr */
    assert_int_equal(netns_plugin_error("panic", 5,
                                        "goroutine 1\nruntime error: index\n\n",
                                        2, msg, sizeof(msg)),
                     -1);
    assert_string_equal(msg, "runtime error: index (exit status 2)");
    assert_int_equal(netns_plugin_error(NULL, 0, "", 137, msg, sizeof(msg)),
                     -1);
    assert_string_equal(msg, "exit status 137, no CNI error on stdout");
    /* hostile shapes */
    const char *e3 = "{\"code\":\"x\",\"msg\":12}";
    assert_int_equal(
        netns_plugin_error(e3, strlen(e3), "", 1, msg, sizeof(msg)), -1);
    assert_string_equal(msg, "exit status 1, no CNI error on stdout");
    char tiny[8];
    netns_plugin_error(e1, strlen(e1), "", 1, tiny, sizeof(tiny));
    assert_int_equal(strlen(tiny), 7);
}

static const char bridge_result[] =
    "{\"cniVersion\":\"0.4.0\",\"interfaces\":[{\"name\":\"nctest0\",\"mac\":"
    "\"fa:f4:d3:c8:e0:9e\"},{\"name\":\"veth73dcb9c0\"},{\"name\":\"eth0\","
    "\"sandbox\":\"/run/netns/a\"}],\"ips\":[{\"version\":\"4\",\"interface\":"
    "2,\"address\":\"10.255.64.2/24\",\"gateway\":\"10.255.64.1\"}],"
    "\"routes\":[{\"dst\":\"0.0.0.0/0\"}],\"dns\":{}}";

static void test_result_ip(void **state)
{
    (void)state;
    char ip[64], msg[256];
    json_t *r = NULL;
    assert_int_equal(netns_result_parse(bridge_result, strlen(bridge_result),
                                        &r, msg, sizeof(msg)),
                     0);
    assert_int_equal(netns_result_ip(r, "eth0", ip, sizeof(ip)), 0);
    assert_string_equal(ip, "10.255.64.2");
    json_decref(r);
    static const struct {
        const char *json, *ip;
    } cases[] = {
        /* no sandbox named eth0: any sandbox, then anything */
        {"{\"interfaces\":[{\"name\":\"net1\",\"sandbox\":\"/x\"}],\"ips\":[{"
         "\"address\":\"10.1.1.1/8\",\"interface\":0}]}",
         "10.1.1.1"},
        {"{\"ips\":[{\"address\":\"fd00::1/64\"},{\"address\":\"10.2.2.2/"
         "8\"}]}",
         "10.2.2.2"},
        {"{\"ips\":[{\"address\":\"10.3.3.3\"}]}", "10.3.3.3"},
        /* hostile: bad index types and ranges */
        {"{\"interfaces\":[],\"ips\":[{\"address\":\"10.4.4.4/"
         "8\",\"interface\":"
         "-1},{\"address\":\"10.5.5.5/8\",\"interface\":99}]}",
         "10.4.4.4"},
        {"{\"interfaces\":7,\"ips\":[{\"address\":7}]}", NULL},
        {"{\"ips\":[{\"address\":\"999.1.1.1/8\"}]}", NULL},
        {"{}", NULL},
    };
    for (size_t i = 0; i < NC_ARRAY_LEN(cases); i++) {
        json_t *j = parse(cases[i].json);
        int rc = netns_result_ip(j, "eth0", ip, sizeof(ip));
        if (cases[i].ip) {
            assert_int_equal(rc, 0);
            assert_string_equal(ip, cases[i].ip);
        } else {
            assert_int_equal(rc, -ENOENT);
        }
        json_decref(j);
    }
    assert_int_equal(netns_result_parse("", 0, &r, msg, sizeof(msg)), -EPROTO);
    assert_contains(msg, "printed no result");
    assert_int_equal(netns_result_parse("[1]", 3, &r, msg, sizeof(msg)),
                     -EPROTO);
    assert_int_equal(netns_result_parse("{x", 2, &r, msg, sizeof(msg)),
                     -EPROTO);
    assert_contains(msg, "invalid result");
    assert_null(r);
}

/* ---- helper protocol ----------------------------------------------------- */

static void test_request_round_trip(void **state)
{
    (void)state;
    struct netns_config cfg = {.bridge_name = "nctest0",
                               .subnet = "10.255.64.0/24",
                               .state_dir = "/var/lib/x/netns",
                               .plugin_timeout_ms = 5000};
    struct netns_port_mapping p = {
        .host_port = 28080, .container_port = 80, .protocol = "tcp"};
    struct netns_setup s = {
        .alloc_id = "0b5e-1", .mode = "bridge", .ports = &p, .nports = 1};
    json_t *list = netns_bridge_conflist(&cfg);
    struct netns_request r;
    assert_int_equal(netns_request_build(&r, "ADD", &cfg, &s, list, NULL, NULL),
                     0);
    json_decref(list);
    assert_string_equal(r.netns, "/run/netns/0b5e-1");
    json_t *j = netns_request_to_json(&r);
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(j, "AdminRule"), "Bridge")),
                        "nctest0");
    assert_int_equal(json_integer_value(json_object_get(j, "TimeoutMs")), 5000);
    struct netns_request back;
    struct nc_error err = {0};
    assert_int_equal(netns_request_from_json(j, &back, &err), 0);
    json_t *j2 = netns_request_to_json(&back);
    assert_true(json_equal(j, j2));
    assert_string_equal(back.ifname, "eth0");
    json_decref(j2);
    json_decref(j);
    netns_request_free(&back);
    netns_request_free(&r);
    /* custom netns name, DEL without conflist */
    s.netns_name = "web-1";
    s.mode = "cni/x";
    assert_int_equal(netns_request_build(&r, "DEL", &cfg, &s, NULL, NULL, NULL),
                     0);
    assert_string_equal(r.netns, "/run/netns/web-1");
    assert_null(r.admin_rule);
    netns_request_free(&r);
    s.netns_name = "../etc";
    assert_int_equal(netns_request_build(&r, "DEL", &cfg, &s, NULL, NULL, &err),
                     -EINVAL);
    s.alloc_id = "a b";
    s.netns_name = NULL;
    assert_int_equal(netns_request_build(&r, "DEL", &cfg, &s, NULL, NULL, &err),
                     -EINVAL);
    assert_contains(err.msg, "not a valid CNI container id");
}

static void test_request_rejects(void **state)
{
    (void)state;
    static const struct {
        const char *json, *want;
    } cases[] = {
        {"[]", "not a JSON object"},
        {"{\"Command\":\"RUN\"}", "must be ADD, DEL or CHECK"},
        {"{\"Command\":\"DEL\",\"AllocID\":\"../../etc\",\"StateDir\":\"/s\"}",
         "not a valid CNI container id"},
        {"{\"Command\":\"DEL\",\"AllocID\":\"a\",\"StateDir\":\"s\"}",
         "\"StateDir\" must be an absolute path"},
        {"{\"Command\":\"DEL\",\"AllocID\":\"a\",\"StateDir\":\"/s\","
         "\"Netns\":\"/etc/passwd\"}",
         "must be /run/netns/<name>"},
        {"{\"Command\":\"DEL\",\"AllocID\":\"a\",\"StateDir\":\"/s\","
         "\"Netns\":\"/run/netns/../x\"}",
         "must be /run/netns/<name>"},
        {"{\"Command\":\"ADD\",\"AllocID\":\"a\",\"StateDir\":\"/s\"}",
         "ADD needs a \"Conflist\""},
        {"{\"Command\":\"ADD\",\"AllocID\":\"a\",\"StateDir\":\"/s\","
         "\"Conflist\":{\"cniVersion\":\"0.4.0\",\"name\":\"n\",\"plugins\":[{"
         "\"type\":\"/bin/sh\"}]}}",
         "type \"/bin/sh\" is not a plugin name"},
    };
    for (size_t i = 0; i < NC_ARRAY_LEN(cases); i++) {
        json_t *j = parse(cases[i].json);
        struct netns_request r;
        struct nc_error err = {0};
        assert_int_equal(netns_request_from_json(j, &r, &err), -EINVAL);
        assert_contains(err.msg, cases[i].want);
        json_decref(j);
    }
    /* defaults filled in */
    json_t *j = parse("{\"Command\":\"DEL\",\"AllocID\":\"a1\",\"StateDir\":"
                      "\"/s\",\"IfName\":\"way-too-long-ifname\",\"TimeoutMs\":"
                      "-5,\"PortMappings\":7}");
    struct netns_request r;
    assert_int_equal(netns_request_from_json(j, &r, NULL), 0);
    assert_string_equal(r.netns, "/run/netns/a1");
    assert_string_equal(r.ifname, "eth0");
    assert_int_equal(r.timeout_ms, NETNS_DEFAULT_TIMEOUT_MS);
    assert_int_equal(json_array_size(r.ports), 0);
    assert_string_equal(r.cni_path, "/usr/lib/cni");
    netns_request_free(&r);
    json_decref(j);
}

/* A holder pid travels in the request (ADD only reads it) and is checked
 * for being a process id. */
static void test_request_holder(void **state)
{
    (void)state;
    struct netns_config cfg = {.state_dir = "/var/lib/x/netns"};
    struct netns_setup s = {.alloc_id = "h1", .mode = "bridge",
                            .holder_pid = 4321};
    json_t *list = netns_bridge_conflist(&cfg);
    struct netns_request r;
    assert_int_equal(netns_request_build(&r, "ADD", &cfg, &s, list, NULL, NULL),
                     0);
    assert_int_equal(r.holder_pid, 4321);
    json_t *j = netns_request_to_json(&r);
    assert_int_equal(json_integer_value(json_object_get(j, "HolderPid")), 4321);
    struct netns_request back;
    assert_int_equal(netns_request_from_json(j, &back, NULL), 0);
    assert_int_equal(back.holder_pid, 4321);
    netns_request_free(&back);
    netns_request_free(&r);
    /* none: no key at all, as before */
    s.holder_pid = 0;
    assert_int_equal(netns_request_build(&r, "ADD", &cfg, &s, list, NULL, NULL),
                     0);
    json_decref(j);
    j = netns_request_to_json(&r);
    assert_null(json_object_get(j, "HolderPid"));
    netns_request_free(&r);
    json_decref(j);
    struct nc_error err = {0};
    s.holder_pid = -7;
    assert_int_equal(netns_request_build(&r, "ADD", &cfg, &s, list, NULL, &err),
                     -EINVAL);
    assert_contains(err.msg, "holder pid -7 of allocation h1 is not a process");
    json_decref(list);
    static const char *const bad[] = {"0", "-3", "\"12\"", "99999999", "1.5",
                                      "null"};
    for (size_t i = 0; i < NC_ARRAY_LEN(bad); i++) {
        char *text = xasprintf("{\"Command\":\"ADD\",\"AllocID\":\"a\","
                               "\"StateDir\":\"/s\",\"Mode\":\"none\","
                               "\"HolderPid\":%s}",
                               bad[i]);
        j = parse(text);
        free(text);
        memset(&err, 0, sizeof(err));
        assert_int_equal(netns_request_from_json(j, &r, &err), -EINVAL);
        assert_contains(err.msg, "\"HolderPid\" must be a process id");
        json_decref(j);
    }
}

static void test_response_parse(void **state)
{
    (void)state;
    struct netns_response r;
    struct nc_error err = {0};
    const char *ok = "{\"OK\":true,\"Code\":0,\"Command\":\"ADD\",\"AllocID\":"
                     "\"a\",\"IP\":\"10.0.0.2\",\"Netns\":\"/run/netns/a\","
                     "\"Result\":{\"ips\":[]},\"Timings\":{\"TotalUs\":5}}\n";
    assert_int_equal(netns_response_parse(ok, strlen(ok), &r, &err), 0);
    assert_true(r.ok);
    assert_string_equal(r.ip, "10.0.0.2");
    assert_non_null(r.result);
    json_t *back = netns_response_to_json(&r);
    assert_int_equal(json_integer_value(json_object_get(
                         json_object_get(back, "Timings"), "TotalUs")),
                     5);
    json_decref(back);
    netns_response_free(&r);
    /* a failure with a positive code still fails, with a message */
    const char *bad = "{\"OK\":false,\"Code\":3}";
    assert_int_equal(netns_response_parse(bad, strlen(bad), &r, &err), 0);
    assert_false(r.ok);
    assert_true(r.code < 0);
    assert_contains(r.error, "without a message");
    assert_non_null(r.timings);
    netns_response_free(&r);
    assert_int_equal(netns_response_parse("", 0, &r, &err), -EPROTO);
    assert_contains(err.msg, "printed nothing");
    assert_int_equal(netns_response_parse("Segmentation fault", 18, &r, &err),
                     -EPROTO);
    assert_contains(err.msg, "Segmentation fault");
}

/* ---- state journal ------------------------------------------------------- */

static void test_state_journal(void **state)
{
    (void)state;
    char why[256];
    json_t *st = NULL;
    const char *text =
        "{\"AllocID\":\"a1\",\"Phase\":\"adding\",\"Results\":[]}\n"
        "{\"Results+\":{\"n\":1}}\n"
        "{\"Results+\":{\"n\":2},\"Updated\":\"t\"}\n"
        "{\"Phase\":\"added\",\"Result\":{\"n\":2},\"IP\":\"10.0.0.2\"}\n"
        "{\"Phase\":\"deleting\"";
    assert_int_equal(
        netns_state_parse(text, strlen(text), "a1", &st, why, sizeof(why)), 0);
    assert_json_equal(st, "{\"AllocID\":\"a1\",\"Phase\":\"added\",\"Results\":"
                          "[{\"n\":1},{\"n\":2}],\"Updated\":\"t\",\"Result\":"
                          "{\"n\":2},\"IP\":\"10.0.0.2\"}");
    json_decref(st);
    /* an intent alone; a killed writer's partial progress */
    const char *partial =
        "{\"AllocID\":\"a1\"}\n{\"Results+\":{\"n\":1}}\n{\"Re";
    assert_int_equal(netns_state_parse(partial, strlen(partial), "a1", &st, why,
                                       sizeof(why)),
                     0);
    assert_json_equal(netns_state_best_result(st), "{\"n\":1}");
    json_decref(st);
    assert_int_equal(netns_state_parse("{\"AllocID\":\"b\"}\n", 16, "a1", &st,
                                       why, sizeof(why)),
                     -EINVAL);
    assert_contains(why, "does not match");
    assert_int_equal(netns_state_parse("\n", 1, "a1", &st, why, sizeof(why)),
                     -EINVAL);
    /* files: write, append, read, corrupt files moved aside */
    char *dir = xasprintf("%s/state", tmpdir);
    nc_mkdir_p(dir, 0700);
    json_t *intent = parse("{\"AllocID\":\"a2\",\"Results\":[]}");
    assert_int_equal(netns_state_write(dir, "a2", intent, NULL), 0);
    json_t *u = parse("{\"Results+\":{\"x\":1}}");
    assert_int_equal(netns_state_append(dir, "a2", u, NULL), 0);
    assert_int_equal(netns_state_read(dir, "a2", &st, NULL), 0);
    assert_json_equal(st, "{\"AllocID\":\"a2\",\"Results\":[{\"x\":1}]}");
    assert_json_equal(netns_state_best_result(st), "{\"x\":1}");
    json_decref(st);
    json_decref(u);
    json_decref(intent);
    write_file("state/a3.json", "garbage", 0600);
    struct nc_error err = {0};
    assert_int_equal(netns_state_read(dir, "a3", &st, &err), -ENOENT);
    assert_contains(err.msg, ".corrupt");
    char *moved = xasprintf("%s/a3.json.corrupt", dir);
    assert_int_equal(access(moved, F_OK), 0);
    assert_int_equal(netns_state_read(dir, "nothing", &st, &err), -ENOENT);
    /* lock: one allocation's lock keeps out a second holder of it (an OFD
     * lock conflicts even within the process), not another allocation's */
    int fd = -1, fd2 = -1, fd3 = -1;
    assert_int_equal(netns_state_lock(dir, "a2", &fd, NULL), 0);
    char *lock = xasprintf("%s/%s", dir, NETNS_LOCK_FILE);
    fd2 = open(lock, O_RDWR);
    assert_true(fd2 >= 0);
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET,
                       .l_start = netns_lock_offset("a2"), .l_len = 1};
    assert_int_equal(fcntl(fd2, F_OFD_SETLK, &fl), -1);
    assert_true(errno == EAGAIN || errno == EACCES);
    assert_int_equal(netns_state_lock(dir, "a3", &fd3, NULL), 0);
    assert_true(netns_lock_offset("a2") != netns_lock_offset("a3"));
    close(fd);
    assert_int_equal(fcntl(fd2, F_OFD_SETLK, &fl), 0); /* released */
    close(fd2);
    close(fd3);
    free(lock);
    free(moved);
    free(dir);
}

/* ---- iptables planning --------------------------------------------------- */

static const char save_text[] =
    "# Generated by iptables-save v1.8.9 (nf_tables)\n"
    "*filter\n"
    ":INPUT ACCEPT [0:0]\n"
    ":FORWARD ACCEPT [0:0]\n"
    ":CNI-FORWARD - [0:0]\n"
    ":NOMAD-ADMIN - [0:0]\n"
    "-A FORWARD -m comment --comment \"CNI firewall plugin rules\" -j "
    "CNI-FORWARD\n"
    "-A CNI-FORWARD -m comment --comment \"CNI firewall plugin admin "
    "overrides\" -j NOMAD-ADMIN\n"
    "-A CNI-FORWARD -d 10.255.64.2/32 -m conntrack --ctstate "
    "RELATED,ESTABLISHED -j ACCEPT\n"
    "-A CNI-FORWARD -s 10.255.64.2/32 -j ACCEPT\n"
    "-A CNI-FORWARD -d 10.255.64.3/32 -m conntrack --ctstate "
    "RELATED,ESTABLISHED -j ACCEPT\n"
    "-A CNI-FORWARD -s 10.255.64.3/32 -j ACCEPT\n"
    "-A CNI-FORWARD -s 10.88.0.7/32 -j ACCEPT\n"
    "-A NOMAD-ADMIN -d 10.255.64.0/24 -o nctest0 -j ACCEPT\n"
    "COMMIT\n"
    "*nat\n"
    ":POSTROUTING ACCEPT [0:0]\n"
    ":CNI-00128e751d65f4dede2f65d3 - [0:0]\n"
    ":CNI-DN-00128e751d65f4dede2f6 - [0:0]\n"
    ":CNI-DN-b580ab2fa886c306e034e - [0:0]\n"
    ":CNI-HOSTPORT-DNAT - [0:0]\n"
    ":CNI-b580ab2fa886c306e034e10b - [0:0]\n"
    "-A PREROUTING -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT\n"
    "-A POSTROUTING -m comment --comment \"CNI portfwd requiring masquerade\" "
    "-j CNI-HOSTPORT-MASQ\n"
    "-A POSTROUTING -s 10.255.64.2/32 -m comment --comment \"name: "
    "\\\"nctest\\\" id: \\\"nct-a1\\\"\" -j CNI-00128e751d65f4dede2f65d3\n"
    "-A POSTROUTING -s 10.255.64.3/32 -m comment --comment \"name: "
    "\\\"nctest\\\" id: \\\"nct-a2\\\"\" -j CNI-b580ab2fa886c306e034e10b\n"
    "-A POSTROUTING -s 10.88.0.7/32 -m comment --comment \"name: "
    "\\\"podman\\\" id: \\\"nct-a1\\\"\" -j CNI-ffff8e751d65f4dede2f65d3\n"
    "-A CNI-00128e751d65f4dede2f65d3 -d 10.255.64.0/24 -m comment --comment "
    "\"name: \\\"nctest\\\" id: \\\"nct-a1\\\"\" -j ACCEPT\n"
    "-A CNI-00128e751d65f4dede2f65d3 ! -d 224.0.0.0/4 -m comment --comment "
    "\"name: \\\"nctest\\\" id: \\\"nct-a1\\\"\" -j MASQUERADE\n"
    "-A CNI-DN-00128e751d65f4dede2f6 -s 10.255.64.0/24 -p tcp -m tcp --dport "
    "28080 -j CNI-HOSTPORT-SETMARK\n"
    "-A CNI-DN-00128e751d65f4dede2f6 -p tcp -m tcp --dport 28080 -j DNAT "
    "--to-destination 10.255.64.2:8080\n"
    "-A CNI-DN-b580ab2fa886c306e034e -p tcp -m tcp --dport 28081 -j DNAT "
    "--to-destination 10.255.64.3:8080\n"
    "-A CNI-HOSTPORT-DNAT -p tcp -m comment --comment \"dnat name: "
    "\\\"nctest\\\" id: \\\"nct-a1\\\"\" -m multiport --dports 28080 -j "
    "CNI-DN-00128e751d65f4dede2f6\n"
    "-A CNI-HOSTPORT-DNAT -p tcp -m comment --comment \"dnat name: "
    "\\\"nctest\\\" id: \\\"nct-a2\\\"\" -m multiport --dports 28081 -j "
    "CNI-DN-b580ab2fa886c306e034e\n"
    "-A CNI-b580ab2fa886c306e034e10b ! -d 224.0.0.0/4 -m comment --comment "
    "\"name: \\\"nctest\\\" id: \\\"nct-a2\\\"\" -j MASQUERADE\n"
    "COMMIT\n";

static bool is_a1(const char *id, const char *ip, void *arg)
{
    (void)ip;
    (void)arg;
    return strcmp(id, "nct-a1") == 0;
}

static void test_ipt_plan_one_container(void **state)
{
    (void)state;
    struct netns_ipt_plan plan = {0};
    netns_ipt_plan_build(&plan, save_text, "nctest", is_a1, NULL, NULL, NULL,
                         NULL);
    char *script = netns_ipt_plan_script(&plan);
    assert_string_equal(
        script,
        "*filter\n"
        "-D CNI-FORWARD -d 10.255.64.2/32 -m conntrack --ctstate "
        "RELATED,ESTABLISHED -j ACCEPT\n"
        "-D CNI-FORWARD -s 10.255.64.2/32 -j ACCEPT\n"
        "COMMIT\n"
        "*nat\n"
        "-D POSTROUTING -s 10.255.64.2/32 -m comment --comment \"name: "
        "\\\"nctest\\\" id: \\\"nct-a1\\\"\" -j CNI-00128e751d65f4dede2f65d3\n"
        "-D CNI-HOSTPORT-DNAT -p tcp -m comment --comment \"dnat name: "
        "\\\"nctest\\\" id: \\\"nct-a1\\\"\" -m multiport --dports 28080 -j "
        "CNI-DN-00128e751d65f4dede2f6\n"
        "-F CNI-00128e751d65f4dede2f65d3\n"
        "-F CNI-DN-00128e751d65f4dede2f6\n"
        "-X CNI-00128e751d65f4dede2f65d3\n"
        "-X CNI-DN-00128e751d65f4dede2f6\n"
        "COMMIT\n");
    free(script);
    netns_ipt_plan_free(&plan);
    /* nothing of another network, nor shared chains, nor a2 */
    netns_ipt_plan_build(&plan, save_text, "other", is_a1, NULL, NULL, NULL,
                         NULL);
    assert_null(netns_ipt_plan_script(&plan));
    netns_ipt_plan_free(&plan);
}

static bool is_b(const char *id, const char *ip, void *arg)
{
    (void)ip;
    (void)arg;
    return strcmp(id, "nct-b") == 0;
}

/* Two networks with overlapping ranges lease one IP twice: sweeping the
 * container of one by that IP leaves the other's port mappings alone. */
static void test_ipt_plan_ip_of_another_network(void **state)
{
    (void)state;
    struct strlist ips = {0};
    strlist_add(&ips, "10.255.64.3"); /* nct-a2's address on "nctest" too */
    struct netns_ipt_plan plan = {0};
    netns_ipt_plan_build(&plan, save_text, "other", is_b, &ips, NULL, NULL,
                         NULL);
    char *script = netns_ipt_plan_script(&plan);
    assert_non_null(script); /* the untagged firewall rules by IP */
    assert_null(strstr(script, "CNI-DN-b580ab2fa886c306e034e"));
    assert_null(strstr(script, "*nat"));
    free(script);
    netns_ipt_plan_free(&plan);
    strlist_free(&ips);
}

static bool not_owned(const char *id, const char *ip, void *arg)
{
    (void)ip;
    return !strlist_contains(arg, id);
}

static bool ip_not_owned(const char *ip, void *arg)
{
    (void)arg;
    return strcmp(ip, "10.255.64.3") != 0;
}

static void test_ipt_plan_by_subnet(void **state)
{
    (void)state;
    /* a2 owned; an IP-only leftover (no comment) in the subnet is found,
     * the podman rule outside it is not */
    struct strlist owned = {0};
    strlist_add(&owned, "nct-a2");
    const char *extra = "*filter\n-A CNI-FORWARD -s 10.255.64.9/32 -j ACCEPT\n"
                        "COMMIT\n";
    char *text = xasprintf("%s%s", save_text, extra);
    struct netns_ipt_plan plan = {0};
    netns_ipt_plan_build(&plan, text, "nctest", not_owned, NULL,
                         "10.255.64.0/24", ip_not_owned, &owned);
    char *script = netns_ipt_plan_script(&plan);
    assert_contains(script, "-D CNI-FORWARD -s 10.255.64.9/32 -j ACCEPT");
    assert_contains(script, "-X CNI-DN-00128e751d65f4dede2f6");
    assert_null(strstr(script, "10.255.64.3"));
    assert_null(strstr(script, "b580ab2fa886c306e034e"));
    assert_null(strstr(script, "10.88.0.7"));
    assert_null(strstr(script, "NOMAD-ADMIN"));
    free(script);
    netns_ipt_plan_free(&plan);
    free(text);
    strlist_free(&owned);
    /* hostile input does not crash */
    const char *junk[] = {"",
                          "*nat\n-A ",
                          "*nat\n-A X --comment \"name: \\\"",
                          "-A X -j",
                          "*filter\n-A CNI-FORWARD -s -d\n",
                          "*nat\n-A X --comment \"dnat name: \\\"n\\\" id: "
                          "\\\"i\\\"\" -j CNI-\n"};
    for (size_t i = 0; i < NC_ARRAY_LEN(junk); i++) {
        netns_ipt_plan_build(&plan, junk[i], "n", is_a1, NULL, "10.0.0.0/8",
                             NULL, NULL);
        free(netns_ipt_plan_script(&plan));
        netns_ipt_plan_free(&plan);
    }
}

/* ---- exec and leases ----------------------------------------------------- */

/* portmap's jumps into CNI-HOSTPORT-DNAT: counted in the nat table only,
 * by the exact line portmap writes; the script adds what is missing and
 * removes extra copies, never declaring (and so flushing) the chain. */
static void test_hostport_jumps(void **state)
{
    (void)state;
    char *rule = netns_hostport_rule(0);
    assert_string_equal(
        rule,
        "-A PREROUTING -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT");
    free(rule);
    rule = netns_hostport_rule(1);
    assert_string_equal(
        rule, "-A OUTPUT -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT");
    free(rule);

    struct netns_hostport_count c;
    netns_hostport_count(save_text, &c);
    assert_true(c.chain);
    assert_int_equal(c.jumps[0], 1);
    assert_int_equal(c.jumps[1], 0);
    assert_null(netns_hostport_script(&c, false, true));
    char *script = netns_hostport_script(&c, true, false);
    assert_string_equal(
        script, "*nat\n"
                "-A OUTPUT -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT\n"
                "COMMIT\n");
    free(script);

    static const char dup[] =
        "*filter\n"
        ":CNI-HOSTPORT-DNAT - [0:0]\n" /* not nat's */
        "-A OUTPUT -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT\n"
        "COMMIT\n"
        "*nat\n"
        ":PREROUTING ACCEPT [0:0]\n"
        ":OUTPUT ACCEPT [0:0]\n"
        ":CNI-HOSTPORT-DNATX - [0:0]\n"
        "-A OUTPUT -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT\n"
        "-A OUTPUT ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j "
        "CNI-HOSTPORT-DNAT\n"
        "-A OUTPUT -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNATX\n"
        "-A OUTPUT -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT \r\n"
        "-A OUTPUT -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT";
    netns_hostport_count(dup, &c);
    assert_false(c.chain);
    assert_int_equal(c.jumps[0], 0);
    assert_int_equal(c.jumps[1], 3);
    script = netns_hostport_script(&c, false, true);
    assert_string_equal(
        script, "*nat\n"
                "-D OUTPUT -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT\n"
                "-D OUTPUT -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT\n"
                "COMMIT\n");
    free(script);
    script = netns_hostport_script(&c, true, false);
    assert_string_equal(
        script,
        "*nat\n"
        "-A PREROUTING -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT\n"
        "COMMIT\n");
    free(script);

    netns_hostport_count("", &c);
    assert_false(c.chain);
    script = netns_hostport_script(&c, true, true);
    assert_string_equal(
        script,
        "*nat\n"
        "-A PREROUTING -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT\n"
        "-A OUTPUT -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT\n"
        "COMMIT\n");
    free(script);
    netns_hostport_count(NULL, &c);
    assert_int_equal(c.jumps[0] + c.jumps[1], 0);
}

static void test_exec(void **state)
{
    (void)state;
    char *argv[] = {"/bin/sh", "-c", "cat; echo oops >&2; exit 3", NULL};
    struct netns_exec x = {.path = "/bin/sh",
                           .argv = argv,
                           .input = "hello",
                           .input_len = 5,
                           .timeout_ms = 5000};
    assert_int_equal(netns_exec_run(&x), 0);
    assert_int_equal(x.status, 3);
    assert_false(x.timed_out);
    assert_string_equal(x.out.data, "hello");
    assert_string_equal(x.err.data, "oops\n");
    netns_exec_free(&x);
    /* a large input through a small pipe, read back */
    size_t n = 1 << 20;
    char *big = xmalloc(n);
    memset(big, 'x', n);
    char *cat[] = {"/bin/cat", NULL};
    struct netns_exec y = {.path = "/bin/cat",
                           .argv = cat,
                           .input = big,
                           .input_len = n,
                           .timeout_ms = 10000};
    assert_int_equal(netns_exec_run(&y), 0);
    assert_int_equal(y.out.len, n);
    netns_exec_free(&y);
    free(big);
    /* the deadline kills the whole process group */
    char *slow[] = {"/bin/sh", "-c", "sleep 30 & sleep 30", NULL};
    struct netns_exec z = {.path = "/bin/sh", .argv = slow, .timeout_ms = 200};
    int64_t t = netns_now_us();
    assert_int_equal(netns_exec_run(&z), 0);
    assert_true(z.timed_out);
    assert_int_equal(z.status, 128 + 9);
    assert_true(netns_now_us() - t < 3000000);
    netns_exec_free(&z);
    struct netns_exec w = {
        .path = "/nonexistent/x", .argv = cat, .timeout_ms = 100};
    assert_int_equal(netns_exec_run(&w), -ENOENT);
}

static void test_ipam_leases(void **state)
{
    (void)state;
    write_file("ipam/net/10.255.64.2", "alloc-1\r\neth0", 0644);
    write_file("ipam/net/10.255.64.3", "alloc-2\r\neth0", 0644);
    write_file("ipam/net/10.255.64.4", "alloc-1\r\neth1", 0644);
    write_file("ipam/net/last_reserved_ip.0", "alloc-1", 0644);
    write_file("ipam/net/lock", "", 0644);
    char *dir = xasprintf("%s/ipam/net", tmpdir);
    struct strlist ips = {0};
    netns_ipam_leases_of(dir, "alloc-1", &ips);
    assert_int_equal(ips.n, 2);
    assert_true(strlist_contains(&ips, "10.255.64.2"));
    assert_true(strlist_contains(&ips, "10.255.64.4"));
    strlist_free(&ips);
    netns_ipam_leases_of("/nonexistent", "alloc-1", &ips);
    assert_int_equal(ips.n, 0);
    free(dir);
    json_t *l =
        parse("{\"name\":\"n\",\"plugins\":[{\"type\":\"bridge\","
              "\"ipam\":{\"type\":\"host-local\",\"dataDir\":\"/d\"}}]}");
    char *d = netns_ipam_dir(l);
    assert_string_equal(d, "/d/n");
    free(d);
    json_decref(l);
    struct netns_config cfg = {.network_name = "nctest", .state_dir = "/x"};
    l = netns_bridge_conflist(&cfg);
    d = netns_ipam_dir(l);
    assert_string_equal(d, "/var/lib/cni/networks/nctest");
    free(d);
    json_decref(l);
}

/* ---- the helper, as root, with fake plugins ------------------------------ */

static const char fake_plugin[] =
    "#!/bin/sh\n"
    "# fake CNI plugin: logs how it was called, fails ADD when named fail*\n"
    "me=$(basename \"$0\")\n"
    "in=$(cat)\n"
    "echo \"$CNI_COMMAND $me $CNI_CONTAINERID $CNI_IFNAME $CNI_NETNS\" >> "
    "\"$(dirname \"$0\")/calls.log\"\n"
    "printf '%s\\n' \"$in\" >> \"$(dirname \"$0\")/stdin.log\"\n"
    "case \"$me:$CNI_COMMAND\" in\n"
    "fail*:ADD) echo '{\"cniVersion\":\"0.4.0\",\"code\":11,\"msg\":\"cannot "
    "do it\",\"details\":\"port 80 busy\"}'; exit 1;;\n"
    "*:ADD) echo '{\"cniVersion\":\"0.4.0\",\"interfaces\":[{\"name\":"
    "\"eth0\",\"sandbox\":\"'\"$CNI_NETNS\"'\"}],\"ips\":[{\"version\":\"4\","
    "\"address\":\"10.99.0.5/24\",\"interface\":0}]}';;\n"
    "esac\n";

static void fake_request(struct netns_request *r, const char *cmd,
                         const char *plugins, const char *id)
{
    char *j = xasprintf(
        "{\"Command\":\"%s\",\"AllocID\":\"%s\",\"Netns\":\"/run/netns/%s\","
        "\"StateDir\":\"%s/state\",\"CNIPath\":\"%s/bin\",\"TimeoutMs\":10000,"
        "\"Conflist\":{\"cniVersion\":\"0.4.0\",\"name\":\"fakenet\","
        "\"plugins\":%s},\"PortMappings\":[{\"hostPort\":1,\"containerPort\":"
        "2,\"protocol\":\"tcp\"}]}",
        cmd, id, id, tmpdir, tmpdir, plugins);
    json_t *req = parse(j);
    free(j);
    assert_int_equal(netns_request_from_json(req, r, NULL), 0);
    json_decref(req);
}

static char *slurp(const char *name)
{
    char *path = xasprintf("%s/%s", tmpdir, name);
    char *s = nc_read_file(path, NULL, 0);
    free(path);
    return s ? s : xstrdup("");
}

static void test_helper_fake_plugins(void **state)
{
    (void)state;
    if (geteuid() != 0)
        skip();
    write_file("bin/okone", fake_plugin, 0755);
    write_file("bin/oktwo", fake_plugin, 0755);
    write_file("bin/failer", fake_plugin, 0755);
    char id[64];
    snprintf(id, sizeof(id), "nctest-unit-%d", (int)getpid());
    char *ns = xasprintf("/run/netns/%s", id);
    char *state_file = xasprintf("%s/state/%s.json", tmpdir, id);
    char *lock_file = xasprintf("%s/state/%s.lock", tmpdir, id);

    /* 1. a failing second plugin: rolled back in reverse, nothing left */
    struct netns_request req;
    struct netns_response resp;
    fake_request(&req, "ADD", "[{\"type\":\"okone\"},{\"type\":\"failer\"}]",
                 id);
    assert_int_equal(netns_helper_run(&req, &resp), -EIO);
    assert_false(resp.ok);
    assert_contains(resp.error, "CNI plugin \"failer\" (2 of 2) failed ADD: "
                                "cannot do it: port 80 busy (CNI code 11)");
    netns_response_free(&resp);
    netns_request_free(&req);
    char *calls = slurp("bin/calls.log");
    char *want = xasprintf("ADD okone %s eth0 %s\nADD failer %s eth0 %s\n"
                           "DEL failer %s eth0 \nDEL okone %s eth0 \n",
                           id, ns, id, ns, id, id);
    /* rollback runs before the namespace goes, so CNI_NETNS is set */
    char *want2 = xasprintf("ADD okone %s eth0 %s\nADD failer %s eth0 %s\n"
                            "DEL failer %s eth0 %s\nDEL okone %s eth0 %s\n",
                            id, ns, id, ns, id, ns, id, ns);
    if (strcmp(calls, want) != 0)
        assert_string_equal(calls, want2);
    free(want);
    free(want2);
    free(calls);
    char *in = slurp("bin/stdin.log");
    /* the failing plugin's DEL got the first plugin's result; portmap-style
     * capabilities were not injected (none declared) */
    assert_contains(in, "\"prevResult\":{\"cniVersion\":\"0.4.0\"");
    assert_null(strstr(in, "runtimeConfig"));
    free(in);
    assert_int_equal(access(state_file, F_OK), -1);
    assert_int_equal(access(lock_file, F_OK), -1);
    assert_int_equal(access(ns, F_OK), -1);
    char *log = xasprintf("%s/bin/calls.log", tmpdir);
    unlink(log);

    /* 2. success, reuse, CHECK, DEL with the recorded result */
    fake_request(&req, "ADD", "[{\"type\":\"okone\"},{\"type\":\"oktwo\"}]",
                 id);
    assert_int_equal(netns_helper_run(&req, &resp), 0);
    assert_true(resp.ok);
    assert_string_equal(resp.ip, "10.99.0.5");
    assert_true(netns_ns_exists(ns));
    assert_non_null(json_object_get(resp.timings, "NetnsUs"));
    assert_int_equal(json_array_size(json_object_get(resp.timings, "Plugins")),
                     2);
    netns_response_free(&resp);
    json_t *st = NULL;
    char *sd = xasprintf("%s/state", tmpdir);
    assert_int_equal(netns_state_read(sd, id, &st, NULL), 0);
    assert_string_equal(json_string_value(json_object_get(st, "Phase")),
                        "added");
    assert_int_equal(json_array_size(json_object_get(st, "Results")), 2);
    json_decref(st);
    assert_int_equal(netns_helper_run(&req, &resp), 0);
    assert_true(resp.reused);
    netns_response_free(&resp);
    netns_request_free(&req);
    fake_request(&req, "CHECK", "[{\"type\":\"okone\"},{\"type\":\"oktwo\"}]",
                 id);
    assert_int_equal(netns_helper_run(&req, &resp), 0);
    netns_response_free(&resp);
    netns_request_free(&req);
    /* DEL without a conflist in the request: the recorded one serves */
    char *j = xasprintf("{\"Command\":\"DEL\",\"AllocID\":\"%s\",\"StateDir\":"
                        "\"%s\",\"CNIPath\":\"%s/bin\"}",
                        id, sd, tmpdir);
    json_t *dj = parse(j);
    free(j);
    assert_int_equal(netns_request_from_json(dj, &req, NULL), 0);
    json_decref(dj);
    assert_int_equal(netns_helper_run(&req, &resp), 0);
    assert_string_equal(
        json_string_value(json_object_get(resp.timings, "PrevResultFrom")),
        "state");
    netns_response_free(&resp);
    calls = slurp("bin/calls.log");
    want = xasprintf("ADD okone %s eth0 %s\nADD oktwo %s eth0 %s\n"
                     "CHECK okone %s eth0 %s\nCHECK oktwo %s eth0 %s\n"
                     "DEL oktwo %s eth0 %s\nDEL okone %s eth0 %s\n",
                     id, ns, id, ns, id, ns, id, ns, id, ns, id, ns);
    assert_string_equal(calls, want);
    free(want);
    free(calls);
    assert_int_equal(access(state_file, F_OK), -1);
    assert_int_equal(access(lock_file, F_OK), -1);
    assert_false(netns_ns_exists(ns));
    assert_int_equal(access(ns, F_OK), -1);
    /* DEL again: nothing left is success */
    assert_int_equal(netns_helper_run(&req, &resp), 0);
    netns_response_free(&resp);
    netns_request_free(&req);
    /* CHECK of nothing says so */
    fake_request(&req, "CHECK", "[{\"type\":\"okone\"}]", id);
    assert_int_equal(netns_helper_run(&req, &resp), -ENOENT);
    assert_contains(resp.error, "no complete setup");
    netns_response_free(&resp);
    netns_request_free(&req);
    /* 3. a plugin that is not installed: rolled back too */
    fake_request(&req, "ADD", "[{\"type\":\"okone\"},{\"type\":\"absent\"}]",
                 id);
    assert_int_equal(netns_helper_run(&req, &resp), -ENOENT);
    assert_contains(resp.error, "CNI plugin \"absent\" (2 of 2) not found in "
                                "cni_path");
    netns_response_free(&resp);
    netns_request_free(&req);
    assert_int_equal(access(ns, F_OK), -1);
    assert_int_equal(access(state_file, F_OK), -1);
    free(log);
    free(sd);
    free(ns);
    free(state_file);
    free(lock_file);
}

/* Mode none: no chain to build or check, a request without a conflist. */
static void test_none_mode_config(void **state)
{
    (void)state;
    struct netns_config cfg = {.state_dir = "/x", .cni_path = "/nonexistent"};
    json_t *l = (json_t *)1;
    struct nc_error err = {0};
    assert_int_equal(netns_conflist_for_mode(&cfg, NETNS_MODE_NONE, &l, &err),
                     0);
    assert_null(l);
    /* no plugins needed, even with none installed */
    assert_int_equal(netns_mode_check(&cfg, NETNS_MODE_NONE, &err), 0);
    json_t *j = parse("{\"Command\":\"ADD\",\"AllocID\":\"a\",\"StateDir\":"
                      "\"/s\",\"Mode\":\"none\"}");
    struct netns_request r;
    assert_int_equal(netns_request_from_json(j, &r, &err), 0);
    assert_null(r.conflist);
    netns_request_free(&r);
    json_decref(j);
}

/* lo's flags inside the namespace at path, through `ip -n`. */
static bool lo_up_in(const char *name)
{
    char *cmd = xasprintf("ip -n %s -o link show lo 2>/dev/null | "
                          "grep -q ',UP'",
                          name);
    int rc = system(cmd);
    free(cmd);
    return rc == 0;
}

static void test_helper_none(void **state)
{
    (void)state;
    if (geteuid() != 0 || system("ip -V >/dev/null 2>&1") != 0)
        skip();
    char id[64];
    snprintf(id, sizeof(id), "nctest-none-%d", (int)getpid());
    char *ns = xasprintf("/run/netns/%s", id);
    char *state_file = xasprintf("%s/state/%s.json", tmpdir, id);
    char *j = xasprintf("{\"Command\":\"ADD\",\"AllocID\":\"%s\",\"StateDir\":"
                        "\"%s/state\",\"Mode\":\"none\"}",
                        id, tmpdir);
    json_t *aj = parse(j);
    free(j);
    struct netns_request req;
    struct netns_response resp;
    assert_int_equal(netns_request_from_json(aj, &req, NULL), 0);
    assert_int_equal(netns_helper_run(&req, &resp), 0);
    assert_string_equal(resp.netns, ns);
    assert_null(resp.ip);
    assert_true(json_is_object(resp.result));
    netns_response_free(&resp);
    assert_true(netns_ns_exists(ns));
    assert_true(lo_up_in(id));
    char *text = slurp(strstr(state_file, "state/"));
    assert_contains(text, "\"Mode\":\"none\"");
    assert_contains(text, "\"Phase\":\"added\"");
    assert_null(strstr(text, "Conflist"));
    free(text);
    /* again (a restarted agent): the complete setup is reused */
    assert_int_equal(netns_helper_run(&req, &resp), 0);
    assert_true(resp.reused);
    netns_response_free(&resp);
    netns_request_free(&req);
    json_decref(aj);
    /* an orphan's DEL brings the bridge's chain: the recorded mode wins,
     * no plugin runs (there is none in this CNIPath), the namespace goes */
    fake_request(&req, "DEL", "[{\"type\":\"okone\"}]", id);
    assert_int_equal(netns_helper_run(&req, &resp), 0);
    netns_response_free(&resp);
    netns_request_free(&req);
    assert_false(netns_ns_exists(ns));
    assert_int_equal(access(ns, F_OK), -1);
    assert_int_equal(access(state_file, F_OK), -1);
    free(ns);
    free(state_file);
}

/* ---- a namespace another process holds ---------------------------------- */

/* A process in a network namespace of its own (as `unshare -n sleep`),
 * waiting to be killed: its pid. */
static pid_t holder_start(void)
{
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(p[0]);
        char ok = unshare(CLONE_NEWNET) == 0 ? 'y' : 'n';
        if (write(p[1], &ok, 1) != 1)
            _exit(1);
        close(p[1]);
        for (;;)
            pause();
    }
    close(p[1]);
    char ok = 0;
    assert_int_equal(read(p[0], &ok, 1), 1);
    close(p[0]);
    assert_int_equal(ok, 'y');
    return pid;
}

static void holder_stop(pid_t pid)
{
    if (pid <= 0)
        return;
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

/* The holders of test_helper_holder, stopped whatever it ends with. */
static pid_t holders[2];

static int teardown_holders(void **state)
{
    for (size_t i = 0; i < NC_ARRAY_LEN(holders); i++) {
        holder_stop(holders[i]);
        holders[i] = 0;
    }
    char *cmd = xasprintf("umount /run/netns/nctest-holder-%d 2>/dev/null; "
                          "rm -f /run/netns/nctest-holder-%d",
                          (int)getpid(), (int)getpid());
    if (system(cmd) != 0)
        print_message("cleanup of /run/netns failed\n");
    free(cmd);
    return teardown(state);
}

/* Whether the namespace mounted at path is process pid's. */
static bool ns_of(const char *path, pid_t pid)
{
    char *link = xasprintf("/proc/%d/ns/net", (int)pid);
    struct stat a, b;
    bool same = stat(path, &a) == 0 && stat(link, &b) == 0 &&
                a.st_ino == b.st_ino && a.st_dev == b.st_dev;
    free(link);
    return same;
}

static int holder_add(const char *id, const char *plugins, int pid,
                      struct netns_response *resp)
{
    struct netns_request req;
    fake_request(&req, "ADD", plugins, id);
    req.holder_pid = pid;
    int r = netns_helper_run(&req, resp);
    netns_request_free(&req);
    return r;
}

static void test_helper_holder(void **state)
{
    (void)state;
    if (geteuid() != 0 || system("ip -V >/dev/null 2>&1") != 0)
        skip();
    write_file("bin/okone", fake_plugin, 0755);
    write_file("bin/oktwo", fake_plugin, 0755);
    const char *chain = "[{\"type\":\"okone\"},{\"type\":\"oktwo\"}]";
    char id[64];
    snprintf(id, sizeof(id), "nctest-holder-%d", (int)getpid());
    char *ns = xasprintf("/run/netns/%s", id);
    char *sd = xasprintf("%s/state", tmpdir);
    char *state_file = xasprintf("%s/%s.json", sd, id);
    char *log = xasprintf("%s/bin/calls.log", tmpdir);
    pid_t a = holders[0] = holder_start();
    pid_t b = holders[1] = holder_start();
    struct netns_response resp;

    /* 1. the chain runs on the holder's namespace, mounted at the path */
    assert_int_equal(holder_add(id, chain, a, &resp), 0);
    assert_false(resp.reused);
    assert_string_equal(resp.ip, "10.99.0.5");
    assert_string_equal(resp.netns, ns);
    netns_response_free(&resp);
    assert_true(ns_of(ns, a));
    char *calls = slurp("bin/calls.log");
    char *want = xasprintf("ADD okone %s eth0 %s\nADD oktwo %s eth0 %s\n", id,
                           ns, id, ns);
    assert_string_equal(calls, want);
    free(calls);
    free(want);
    json_t *st = NULL;
    assert_int_equal(netns_state_read(sd, id, &st, NULL), 0);
    assert_int_equal(json_integer_value(json_object_get(st, "HolderPid")), a);
    assert_contains(json_string_value(json_object_get(st, "HolderNetns")),
                    "net:[");
    json_decref(st);
    /* 2. again with the same holder (a restarted agent): reused */
    assert_int_equal(holder_add(id, chain, a, &resp), 0);
    assert_true(resp.reused);
    netns_response_free(&resp);
    /* 3. another holder (the first one's replacement): the setup in the
     * old namespace is undone and made again in the new one */
    unlink(log);
    assert_int_equal(holder_add(id, chain, b, &resp), 0);
    assert_false(resp.reused);
    netns_response_free(&resp);
    assert_true(ns_of(ns, b));
    calls = slurp("bin/calls.log");
    want = xasprintf("DEL oktwo %s eth0 %s\nDEL okone %s eth0 %s\n"
                     "ADD okone %s eth0 %s\nADD oktwo %s eth0 %s\n",
                     id, ns, id, ns, id, ns, id, ns);
    assert_string_equal(calls, want);
    free(calls);
    free(want);
    /* 4. the holder dies before DEL: the mount kept its namespace, so the
     * chain's DEL still runs inside it, and all goes */
    holder_stop(b);
    holders[1] = 0;
    unlink(log);
    struct netns_request req;
    fake_request(&req, "DEL", chain, id);
    assert_int_equal(netns_helper_run(&req, &resp), 0);
    netns_response_free(&resp);
    netns_request_free(&req);
    calls = slurp("bin/calls.log");
    want = xasprintf("DEL oktwo %s eth0 %s\nDEL okone %s eth0 %s\n", id, ns,
                     id, ns);
    assert_string_equal(calls, want);
    free(calls);
    free(want);
    assert_int_equal(access(ns, F_OK), -1);
    assert_int_equal(access(state_file, F_OK), -1);
    /* 5. the host's namespace (ours, pid 1's) is refused, nothing made */
    pid_t hosts[] = {getpid(), 1};
    for (size_t i = 0; i < NC_ARRAY_LEN(hosts); i++) {
        assert_int_equal(holder_add(id, chain, hosts[i], &resp), -EPERM);
        assert_contains(resp.error, "is in the host's network namespace");
        netns_response_free(&resp);
        assert_int_equal(access(ns, F_OK), -1);
        assert_int_equal(access(state_file, F_OK), -1);
    }
    /* 6. a gone holder is refused, and an earlier setup goes with it */
    assert_int_equal(holder_add(id, chain, a, &resp), 0);
    netns_response_free(&resp);
    assert_int_equal(holder_add(id, chain, b, &resp), -ESRCH);
    char *gone = xasprintf("the process holding the network namespace (pid %d) "
                           "is gone",
                           (int)b);
    assert_contains(resp.error, gone);
    free(gone);
    netns_response_free(&resp);
    assert_int_equal(access(ns, F_OK), -1);
    assert_int_equal(access(state_file, F_OK), -1);
    /* 7. a namespace that has the chain's interface already (another
     * allocation's) is refused and keeps it */
    char *cmd = xasprintf("nsenter -t %d -n ip link add eth0 type veth peer "
                          "name eth1 2>/dev/null",
                          (int)a);
    if (system(cmd) == 0) {
        assert_int_equal(holder_add(id, chain, a, &resp), -EEXIST);
        assert_contains(resp.error, "already has an interface eth0");
        netns_response_free(&resp);
        assert_int_equal(access(ns, F_OK), -1);
        assert_int_equal(access(state_file, F_OK), -1);
        free(cmd);
        cmd = xasprintf("nsenter -t %d -n ip link del eth0", (int)a);
        assert_int_equal(system(cmd), 0);
    }
    free(cmd);
    /* 8. mode none: the holder's namespace with lo up, no chain */
    char *j = xasprintf("{\"Command\":\"ADD\",\"AllocID\":\"%s\",\"StateDir\":"
                        "\"%s\",\"Mode\":\"none\",\"HolderPid\":%d}",
                        id, sd, (int)a);
    json_t *aj = parse(j);
    free(j);
    assert_int_equal(netns_request_from_json(aj, &req, NULL), 0);
    json_decref(aj);
    assert_int_equal(netns_helper_run(&req, &resp), 0);
    netns_response_free(&resp);
    netns_request_free(&req);
    assert_true(ns_of(ns, a));
    assert_true(lo_up_in(id));
    fake_request(&req, "DEL", chain, id);
    assert_int_equal(netns_helper_run(&req, &resp), 0);
    netns_response_free(&resp);
    netns_request_free(&req);
    assert_int_equal(access(ns, F_OK), -1);
    /* no DEL ever signalled the holder */
    assert_int_equal(kill(a, 0), 0);
    int st_a = 0;
    assert_int_equal(waitpid(a, &st_a, WNOHANG), 0);
    holder_stop(a);
    holders[0] = 0;
    free(ns);
    free(sd);
    free(state_file);
    free(log);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bridge_conflist_default),
        cmocka_unit_test(test_bridge_conflist_custom),
        cmocka_unit_test(test_config_validation),
        cmocka_unit_test_setup_teardown(test_load_networks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_load_network_errors, setup,
                                        teardown),
        cmocka_unit_test(test_conflist_shapes),
        cmocka_unit_test_setup_teardown(test_missing_plugins, setup, teardown),
        cmocka_unit_test(test_port_mappings),
        cmocka_unit_test(test_plugin_config_runtime),
        cmocka_unit_test(test_plugin_errors),
        cmocka_unit_test(test_result_ip),
        cmocka_unit_test(test_request_round_trip),
        cmocka_unit_test(test_request_rejects),
        cmocka_unit_test(test_request_holder),
        cmocka_unit_test(test_response_parse),
        cmocka_unit_test_setup_teardown(test_state_journal, setup, teardown),
        cmocka_unit_test(test_ipt_plan_one_container),
        cmocka_unit_test(test_ipt_plan_ip_of_another_network),
        cmocka_unit_test(test_ipt_plan_by_subnet),
        cmocka_unit_test(test_hostport_jumps),
        cmocka_unit_test(test_exec),
        cmocka_unit_test_setup_teardown(test_ipam_leases, setup, teardown),
        cmocka_unit_test(test_none_mode_config),
        cmocka_unit_test_setup_teardown(test_helper_none, setup, teardown),
        cmocka_unit_test_setup_teardown(test_helper_holder, setup,
                                        teardown_holders),
        cmocka_unit_test_setup_teardown(test_helper_fake_plugins, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
