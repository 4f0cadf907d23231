/* cli_agent.c - `nomclient agent`: flags over the config files, then the
 * agent until an interrupt. */
#include "client/cli_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client/api/api.h"
#include "client/format.h"
#include "client/agent.h"
#include "client/config.h"

static const char agent_usage[] =
    "Usage: nomclient agent [options]\n"
    "\n"
    "  Starts the nomclient agent and runs until an interrupt is received.\n"
    "  The agent is the client side of a Nomad cluster: it fingerprints this\n"
    "  node, accepts jobs and serves the HTTP API.\n"
    "\n"
    "Options:\n"
    "  -dev                 Development mode: no config file needed, data in a\n"
    "                       fresh temporary directory, API on 127.0.0.1:4646.\n"
    "  -config=<path>       A config file or a directory of *.hcl/*.json files;\n"
    "                       may be repeated, later ones override earlier ones.\n"
    "  -data-dir=<path>     Where state and task directories live.\n"
    "  -bind=<addr>         Address the HTTP API binds to.\n"
    "  -http-port=<port>    Port of the HTTP API (default 4646).\n"
    "  -node=<name>         Node name (default: hostname).\n"
    "  -dc=<datacenter>     Datacenter (default: dc1).\n"
    "  -region=<region>     Region (default: global).\n"
    "  -node-class=<class>  Node class.\n"
    "  -meta=<key=value>    Node metadata; may be repeated.\n"
    "  -network-interface=<name>  Interface whose address is advertised.\n"
    "  -log-level=<level>   trace, debug, info, warn or error (default info).\n"
    "  -log-json            Log one JSON object per line.\n";

int cli_cmd_agent(int argc, char **argv)
{
    bool dev = false, log_json = false;
    const char *data_dir = NULL, *bind = NULL, *port = NULL, *node = NULL,
               *dc = NULL, *region = NULL, *klass = NULL, *iface = NULL,
               *level = NULL;
    struct strlist configs = {0}, metas = {0};
    const struct flag flags[] = {
        {"dev", FLAG_BOOL, &dev},
        {"config", FLAG_MULTI, &configs},
        {"data-dir", FLAG_STRING, &data_dir},
        {"bind", FLAG_STRING, &bind},
        {"http-port", FLAG_STRING, &port},
        {"node", FLAG_STRING, &node},
        {"dc", FLAG_STRING, &dc},
        {"region", FLAG_STRING, &region},
        {"node-class", FLAG_STRING, &klass},
        {"meta", FLAG_MULTI, &metas},
        {"network-interface", FLAG_STRING, &iface},
        {"log-level", FLAG_STRING, &level},
        {"log-json", FLAG_BOOL, &log_json},
    };
    int rc = 1;
    struct agent_config cfg = {0};
    int pos = cli_parse_flags("agent", argc, argv, flags, NC_ARRAY_LEN(flags));
    if (pos == -2) {
        fputs(agent_usage, stdout);
        rc = 0;
        goto out;
    }
    if (pos < 0 || pos != argc) {
        if (pos >= 0)
            fprintf(stderr, "agent: unexpected argument \"%s\"\n", argv[pos]);
        fputs(agent_usage, stderr);
        goto out;
    }
    if (!dev && configs.n == 0) {
        fprintf(stderr, "==> Must specify either a configuration file or "
                        "directory with -config, or use -dev\n");
        goto out;
    }
    config_defaults(&cfg, dev);
    struct nc_error err = {0};
    for (size_t i = 0; i < configs.n; i++) {
        if (config_load_path(&cfg, configs.items[i], &err) < 0) {
            fprintf(stderr, "==> Error loading configuration from %s: %s\n",
                    configs.items[i], err.msg);
            goto out;
        }
    }
    config_apply_env(&cfg);
    if (data_dir) {
        if (dev)
            rmdir(cfg.data_dir); /* the fresh, still empty dev dir */
        free(cfg.data_dir);
        cfg.data_dir = xstrdup(data_dir);
    }
    if (bind) {
        free(cfg.bind_addr);
        cfg.bind_addr = xstrdup(bind);
    }
    if (port) {
        char *end;
        long p = strtol(port, &end, 10);
        if (*end || p < 0 || p > 65535) {
            fprintf(stderr, "==> Invalid -http-port \"%s\": expected 0-65535\n", port);
            goto out;
        }
        cfg.http_port = (int)p;
    }
    struct {
        const char *val;
        char **field;
    } overrides[] = {{node, &cfg.name},
                     {dc, &cfg.datacenter},
                     {region, &cfg.region},
                     {klass, &cfg.client.node_class},
                     {iface, &cfg.client.network_interface},
                     {level, &cfg.log_level}};
    for (size_t i = 0; i < NC_ARRAY_LEN(overrides); i++) {
        if (overrides[i].val) {
            free(*overrides[i].field);
            *overrides[i].field = xstrdup(overrides[i].val);
        }
    }
    for (size_t i = 0; i < metas.n; i++) {
        char *eq = strchr(metas.items[i], '=');
        if (!eq || eq == metas.items[i]) {
            fprintf(stderr, "==> Invalid -meta \"%s\": expected key=value\n",
                    metas.items[i]);
            goto out;
        }
        *eq = '\0';
        kv_set(&cfg.client.meta, metas.items[i], eq + 1);
    }
    if (log_json)
        cfg.log_json = true;
    if (config_validate(&cfg, &err) < 0) {
        fprintf(stderr, "==> Invalid configuration: %s\n", err.msg);
        goto out;
    }
    enum nc_log_level lvl = NC_LOG_INFO;
    nc_log_parse_level(cfg.log_level, &lvl);
    nc_log_setup(lvl, cfg.log_json);
    if (agent_run(&cfg, &err) < 0) {
        fprintf(stderr, "==> Error starting agent: %s\n", err.msg);
        LOG_ERROR("agent", "%s", err.msg);
        goto out;
    }
    rc = 0;
out:
    config_free(&cfg);
    strlist_free(&configs);
    strlist_free(&metas);
    return rc;
}
