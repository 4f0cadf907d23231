/* config.c - the agent configuration: defaults, HCL and JSON files merged
 * the way Nomad merges them, and the CONSUL_* environment; the final checks
 * are in config_validate.c.
 *
 * Every file is decoded straight onto the accumulated configuration, which
 * gives Nomad's merge rules for free: a later scalar replaces an earlier
 * one, meta/options/chroot_env are merged key by key, reserved fields one
 * by one, host volumes by name (a later definition replaces the earlier one
 * whole, as Nomad's HostVolumeSliceMerge does). Several `client` blocks in
 * one file therefore merge too.
 *
 * The decoder (config_decode.c) walks the tables of every block and
 * attribute we accept (config_schema.c); JSON files are converted to the
 * same syntax tree first (config_json.c). */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "client/config.h"
#include "client/config_internal.h"

#include "client/drivers/driver.h"
#include "client/hcl/hcl.h"

void config_defaults(struct agent_config *cfg, bool dev)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->dev_mode = dev;
    if (dev) {
        char tmpl[] = "/tmp/nomclient-dev-XXXXXX";
        if (mkdtemp(tmpl)) {
            cfg->data_dir = xstrdup(tmpl);
        } else {
            /* the agent creates it and reports any failure */
            LOG_WARN("config", "cannot create a dev data dir in /tmp: %s",
                     strerror(errno));
            cfg->data_dir = xasprintf("/tmp/nomclient-dev-%ld", (long)getpid());
        }
    } else {
        cfg->data_dir = xstrdup("/var/lib/nomclient");
    }
    char host[256];
    if (gethostname(host, sizeof(host)) < 0 || !host[0])
        snprintf(host, sizeof(host), "localhost");
    host[sizeof(host) - 1] = '\0';
    cfg->name = xstrdup(host);
    cfg->datacenter = xstrdup("dc1");
    cfg->region = xstrdup("global");
    cfg->bind_addr = xstrdup(dev ? "127.0.0.1" : "0.0.0.0");
    cfg->http_port = 4646;
    cfg->limits.http_max_conns_per_client = 100;       /* Nomad's */
    cfg->limits.https_handshake_timeout_ns = 5000000000; /* Nomad's 5s */
    cfg->log_level = xstrdup("INFO");

    cfg->client.enabled = true;
    cfg->client.node_pool = xstrdup("default");
    cfg->client.cni_path = xstrdup("/usr/lib/cni");
    cfg->client.cni_config_dir = xstrdup("/etc/cni/net.d");
    cfg->client.bridge_network_name = xstrdup("nomad");
    cfg->client.bridge_network_subnet = xstrdup("172.26.64.0/20");
    /* on, as the design asks (tasks reach their own mapped ports); Nomad
     * 1.7 defaults it to off: set it false to match that */
    cfg->client.bridge_network_hairpin_mode = true;
    cfg->client.min_dynamic_port = 20000;
    cfg->client.max_dynamic_port = 32000;
    cfg->client.gc_interval_ns = (dev ? 600 : 60) * (int64_t)1000000000;
    cfg->client.gc_disk_usage_threshold = dev ? 99 : 80;
    cfg->client.gc_inode_usage_threshold = dev ? 99 : 70;
    cfg->client.gc_max_allocs = 50;
    cfg->client.gc_parallel_destroys = 2;
    drivers_config_defaults(cfg, dev); /* their plugin config */
    /* as `nomad agent -dev`: the node's address is the loopback's, so a dev
     * agent's ports and checks never reach beyond this machine */
    if (dev)
        cfg->client.network_interface = xstrdup("lo");

    cfg->consul.address = xstrdup("127.0.0.1:8500");
    cfg->consul.verify_ssl = true;
    cfg->consul.server_service_name = xstrdup("nomad");
    cfg->consul.client_service_name = xstrdup("nomad-client");
    cfg->consul.auto_advertise = true;
}

int config_load_string(struct agent_config *cfg, const char *filename,
                       const char *src, size_t len, struct nc_error *err)
{
    bool json = nc_str_has_suffix(filename, ".json");
    if (!json && !nc_str_has_suffix(filename, ".hcl")) {
        /* no telling extension: an HCL body cannot start with '{' */
        size_t i = 0;
        while (i < len && isspace((unsigned char)src[i]))
            i++;
        json = i < len && src[i] == '{';
    }
    if (json)
        return config_load_json(cfg, filename, src, len, err);
    struct hcl_file *f = NULL;
    int r = hcl_parse(filename, src, len, &f, err);
    if (r < 0)
        return r;
    r = config_decode_file(cfg, filename, &(struct config_src){.body = f->body},
                           err);
    hcl_file_free(f);
    return r;
}

static int load_file(struct agent_config *cfg, const char *path,
                     struct nc_error *err)
{
    size_t len;
    char *src = nc_read_file(path, &len, 0);
    if (!src) {
        int e = errno ? errno : EIO;
        return nc_error_set(err, -e, "%s: %s", path, strerror(e));
    }
    int r = config_load_string(cfg, path, src, len, err);
    free(src);
    if (r == 0)
        strlist_add(&cfg->files, path);
    return r;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* As Nomad's LoadConfigDir: *.hcl and *.json, not hidden files or editor
 * leftovers. */
static bool is_config_name(const char *name)
{
    if (name[0] == '.' || name[0] == '#')
        return false;
    return nc_str_has_suffix(name, ".hcl") || nc_str_has_suffix(name, ".json");
}

int config_load_path(struct agent_config *cfg, const char *path,
                     struct nc_error *err)
{
    struct stat st;
    if (stat(path, &st) < 0) {
        int e = errno;
        return nc_error_set(err, -e, "%s: %s", path, strerror(e));
    }
    if (!S_ISDIR(st.st_mode))
        return load_file(cfg, path, err);

    DIR *d = opendir(path);
    if (!d) {
        int e = errno;
        return nc_error_set(err, -e, "%s: %s", path, strerror(e));
    }
    struct strlist files = {0};
    bool slash = nc_str_has_suffix(path, "/");
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!is_config_name(de->d_name))
            continue;
        char *full = xasprintf("%s%s%s", path, slash ? "" : "/", de->d_name);
        struct stat fst;
        /* a directory named x.hcl is skipped; unreadable files are
         * reported when read */
        if (stat(full, &fst) == 0 && S_ISDIR(fst.st_mode)) {
            free(full);
            continue;
        }
        strlist_add(&files, full);
        free(full);
    }
    closedir(d);
    if (files.n)
        qsort(files.items, files.n, sizeof(*files.items), cmp_names);
    int r = 0;
    for (size_t i = 0; i < files.n && r == 0; i++)
        r = load_file(cfg, files.items[i], err);
    strlist_free(&files);
    return r;
}

void config_apply_env(struct agent_config *cfg)
{
    unsigned fs = cfg->consul.file_set;
    const char *v;
    bool b;
    struct {
        const char *env;
        unsigned bit;
        char **field;
    } strs[] = {
        {"CONSUL_HTTP_TOKEN", CONFIG_SET_CONSUL_TOKEN, &cfg->consul.token},
        {"CONSUL_CACERT", CONFIG_SET_CONSUL_CA_FILE, &cfg->consul.ca_file},
        {"CONSUL_CLIENT_CERT", CONFIG_SET_CONSUL_CERT_FILE,
         &cfg->consul.cert_file},
        {"CONSUL_CLIENT_KEY", CONFIG_SET_CONSUL_KEY_FILE,
         &cfg->consul.key_file},
    };
    for (size_t i = 0; i < NC_ARRAY_LEN(strs); i++) {
        v = getenv(strs[i].env);
        if (v && *v && !(fs & strs[i].bit))
            config_set_str(strs[i].field, v);
    }
    v = getenv("CONSUL_HTTP_SSL");
    if (v && *v && !(fs & CONFIG_SET_CONSUL_SSL)) {
        if (nc_parse_go_bool(v, &b))
            cfg->consul.ssl = b;
        else
            LOG_WARN("config", "ignoring CONSUL_HTTP_SSL=\"%s\": not a bool",
                     v);
    }
    v = getenv("CONSUL_HTTP_SSL_VERIFY");
    if (v && *v && !(fs & CONFIG_SET_CONSUL_VERIFY_SSL)) {
        if (nc_parse_go_bool(v, &b))
            cfg->consul.verify_ssl = b;
        else
            LOG_WARN("config",
                     "ignoring CONSUL_HTTP_SSL_VERIFY=\"%s\": not a bool", v);
    }
    v = getenv("CONSUL_HTTP_ADDR");
    if (v && *v) {
        cfg->consul.configured = true;
        if (!(fs & CONFIG_SET_CONSUL_ADDRESS))
            config_consul_set_address(cfg, v, !(fs & CONFIG_SET_CONSUL_SSL));
    }
}

void config_free(struct agent_config *cfg)
{
    if (!cfg)
        return;
    drivers_config_free(cfg); /* what their plugin keys hold */
    char **owned[] = {
        &cfg->data_dir,
        &cfg->name,
        &cfg->datacenter,
        &cfg->region,
        &cfg->bind_addr,
        &cfg->log_level,
        &cfg->plugin_dir,
        &cfg->addresses.http,
        &cfg->advertise.http,
        &cfg->client.node_class,
        &cfg->client.node_pool,
        &cfg->client.cni_path,
        &cfg->client.cni_config_dir,
        &cfg->client.bridge_network_name,
        &cfg->client.bridge_network_subnet,
        &cfg->client.reserved.reserved_ports,
        &cfg->client.network_interface,
        &cfg->consul.address,
        &cfg->consul.token,
        &cfg->consul.ca_file,
        &cfg->consul.cert_file,
        &cfg->consul.key_file,
        &cfg->consul.auth,
        &cfg->consul.server_service_name,
        &cfg->consul.client_service_name,
        &cfg->tls.ca_file,
        &cfg->tls.cert_file,
        &cfg->tls.key_file,
        &cfg->tls.tls_min_version,
        &cfg->tls.tls_cipher_suites,
    };
    for (size_t i = 0; i < NC_ARRAY_LEN(owned); i++)
        free(*owned[i]);
    for (size_t i = 0; i < cfg->client.nhost_volumes; i++) {
        free(cfg->client.host_volumes[i].name);
        free(cfg->client.host_volumes[i].path);
    }
    free(cfg->client.host_volumes);
    kv_free(&cfg->client.meta);
    kv_free(&cfg->client.options);
    kv_free(&cfg->client.chroot_env);
    strlist_free(&cfg->client.servers);
    strlist_free(&cfg->client.exec_allow_caps);
    free(cfg->client.exec_default_pid_mode);
    free(cfg->client.exec_default_ipc_mode);
    strlist_free(&cfg->consul.tags);
    strlist_free(&cfg->files);
    memset(cfg, 0, sizeof(*cfg));
}
