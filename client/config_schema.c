/* config_schema.c - every block and attribute the agent accepts, as the
 * tables config_decode.c walks. Keys Nomad has that make no sense for this
 * node are listed explicitly as accepted and ignored; nothing is ignored by
 * accident. */
#include <stddef.h>

#include "client/config.h"
#include "client/config_internal.h"
#include "client/tls.h"

#define CFG(m) offsetof(struct agent_config, m)
#define VOL(m) offsetof(struct host_volume_config, m)
/* clang-format off */
#define CONSUL(n, k, m, bit) {n, k, CFG(consul.m), bit, NULL, NULL, NULL}
/* clang-format on */
#define SCHEMA(id, open, enter)                                                \
    static const struct config_schema id##_s = {id##_f, NC_ARRAY_LEN(id##_f),  \
                                                open, enter}

static const struct config_field ports_f[] = {
    ATTR("http", F_INT, CFG(http_port)),
    IGNORED("rpc", F_INT),
    IGNORED("serf", F_INT),
};
SCHEMA(ports, false, NULL);

static const struct config_field addresses_f[] = {
    ATTR("http", F_STRING, CFG(addresses.http)),
    IGNORED("rpc", F_STRING),
    IGNORED("serf", F_STRING),
};
SCHEMA(addresses, false, NULL);

static const struct config_field advertise_f[] = {
    ATTR("http", F_STRING, CFG(advertise.http)),
    IGNORED("rpc", F_STRING),
    IGNORED("serf", F_STRING),
};
SCHEMA(advertise, false, NULL);

/* Only `enabled` matters: any other server setting is moot when it is
 * false, and true is refused. */
static const struct config_field server_f[] = {
    ATTR("enabled", F_SERVER_ENABLED, NOFF),
};
SCHEMA(server, true, NULL);

static const struct config_field reserved_f[] = {
    ATTR("cpu", F_INT, CFG(client.reserved.cpu)),
    ATTR("cores", F_CORES, CFG(client.reserved.cores)),
    ATTR("memory", F_INT, CFG(client.reserved.memory_mb)),
    ATTR("disk", F_INT, CFG(client.reserved.disk_mb)),
    ATTR("reserved_ports", F_STRING, CFG(client.reserved.reserved_ports)),
};
SCHEMA(reserved, false, NULL);

static const struct config_field host_volume_f[] = {
    ATTR("path", F_STRING, VOL(path)),
    ATTR("read_only", F_BOOL, VOL(read_only)),
};
const struct config_schema config_host_volume_schema = {
    host_volume_f, NC_ARRAY_LEN(host_volume_f), false, NULL};

static const struct config_field client_f[] = {
    ATTR("enabled", F_BOOL, CFG(client.enabled)),
    ATTR("node_class", F_STRING, CFG(client.node_class)),
    ATTR("node_pool", F_STRING, CFG(client.node_pool)),
    STRMAP("meta", CFG(client.meta)),
    LABELED("host_volume", config_decode_host_volume),
    ATTR("cni_path", F_STRING, CFG(client.cni_path)),
    ATTR("cni_config_dir", F_STRING, CFG(client.cni_config_dir)),
    ATTR("bridge_network_name", F_STRING, CFG(client.bridge_network_name)),
    ATTR("bridge_network_subnet", F_STRING, CFG(client.bridge_network_subnet)),
    ATTR("min_dynamic_port", F_INT, CFG(client.min_dynamic_port)),
    ATTR("max_dynamic_port", F_INT, CFG(client.max_dynamic_port)),
    BLOCK("reserved", &reserved_s),
    ATTR("network_interface", F_STRING, CFG(client.network_interface)),
    ATTR("cpu_total_compute", F_INT, CFG(client.cpu_total_compute)),
    ATTR("memory_total_mb", F_INT, CFG(client.memory_total_mb)),
    STRMAP("options", CFG(client.options)),
    STRMAP("chroot_env", CFG(client.chroot_env)),
    ATTR("servers", F_STRLIST, CFG(client.servers)),
    /* garbage collection of terminal allocations (client/alloc/gc.c) */
    ATTR("gc_interval", F_DURATION, CFG(client.gc_interval_ns)),
    ATTR("gc_disk_usage_threshold", F_NUMBER,
         CFG(client.gc_disk_usage_threshold)),
    ATTR("gc_inode_usage_threshold", F_NUMBER,
         CFG(client.gc_inode_usage_threshold)),
    ATTR("gc_parallel_destroys", F_INT, CFG(client.gc_parallel_destroys)),
    ATTR("gc_max_allocs", F_INT, CFG(client.gc_max_allocs)),
    /* Nomad client settings that do not apply to a standalone node: there
     * is no server to join, no host UUID. */
    IGNORED("gc_volumes_on_node_gc", F_BOOL),
    IGNORED("max_kill_timeout", F_DURATION),
    IGNORED("no_host_uuid", F_BOOL),
    IGNORED("network_speed", F_INT),
    ATTR("disable_remote_exec", F_BOOL, CFG(client.disable_remote_exec)),
    ATTR("bridge_network_hairpin_mode", F_BOOL,
         CFG(client.bridge_network_hairpin_mode)),
    IGNORED("nomad_service_discovery", F_BOOL),
    OPAQUE("server_join"),
    OPAQUE("template"),
    OPAQUE("artifact"),
    OPAQUE("drain_on_shutdown"),
};
SCHEMA(client, false, NULL);

/* Other plugins' config is theirs to know. */
static const struct config_field plugin_other_f[] = {
    OPAQUE("config"),
    IGNORED("args", F_STRLIST),
};
const struct config_schema config_plugin_other_schema = {
    plugin_other_f, NC_ARRAY_LEN(plugin_other_f), false, NULL};

static void consul_enter(struct agent_config *cfg)
{
    cfg->consul.configured = true;
}

static const struct config_field consul_f[] = {
    CONSUL("address", F_CONSUL_ADDRESS, address, CONFIG_SET_CONSUL_ADDRESS),
    CONSUL("token", F_STRING, token, CONFIG_SET_CONSUL_TOKEN),
    CONSUL("ssl", F_BOOL, ssl, CONFIG_SET_CONSUL_SSL),
    CONSUL("verify_ssl", F_BOOL, verify_ssl, CONFIG_SET_CONSUL_VERIFY_SSL),
    CONSUL("ca_file", F_STRING, ca_file, CONFIG_SET_CONSUL_CA_FILE),
    CONSUL("cert_file", F_STRING, cert_file, CONFIG_SET_CONSUL_CERT_FILE),
    CONSUL("key_file", F_STRING, key_file, CONFIG_SET_CONSUL_KEY_FILE),
    CONSUL("auth", F_STRING, auth, 0),
    CONSUL("server_service_name", F_STRING, server_service_name, 0),
    CONSUL("client_service_name", F_STRING, client_service_name, 0),
    CONSUL("auto_advertise", F_BOOL, auto_advertise, 0),
    CONSUL("checks_use_advertise", F_BOOL, checks_use_advertise, 0),
    CONSUL("tags", F_STRLIST, tags, 0),
    IGNORED("timeout", F_DURATION),
    IGNORED("name", F_STRING),
    IGNORED("grpc_address", F_STRING),
    IGNORED("grpc_ca_file", F_STRING),
    IGNORED("share_ssl", F_BOOL),
    IGNORED("server_auto_join", F_BOOL),
    IGNORED("client_auto_join", F_BOOL),
    IGNORED("server_http_check_name", F_STRING),
    IGNORED("server_serf_check_name", F_STRING),
    IGNORED("server_rpc_check_name", F_STRING),
    IGNORED("client_http_check_name", F_STRING),
};
SCHEMA(consul, false, consul_enter);

static int check_tls_min_version(const char *v, char *msg, size_t msglen)
{
    return tls_check_min_version(v, msg, msglen);
}

static int check_tls_cipher_suites(const char *v, char *msg, size_t msglen)
{
    return tls_check_cipher_suites(v, msg, msglen);
}

/* clang-format off */
#define CHECKED(n, off, fn) {n, F_STRING, off, 0, NULL, NULL, fn}
/* clang-format on */

static const struct config_field tls_f[] = {
    ATTR("http", F_BOOL, CFG(tls.http)),
    ATTR("rpc", F_BOOL, CFG(tls.rpc)),
    ATTR("ca_file", F_STRING, CFG(tls.ca_file)),
    ATTR("cert_file", F_STRING, CFG(tls.cert_file)),
    ATTR("key_file", F_STRING, CFG(tls.key_file)),
    ATTR("verify_https_client", F_BOOL, CFG(tls.verify_https_client)),
    ATTR("verify_server_hostname", F_BOOL, CFG(tls.verify_server_hostname)),
    CHECKED("tls_min_version", CFG(tls.tls_min_version),
            check_tls_min_version),
    CHECKED("tls_cipher_suites", CFG(tls.tls_cipher_suites),
            check_tls_cipher_suites),
    IGNORED("rpc_upgrade_mode", F_BOOL),
    IGNORED("tls_prefer_server_cipher_suites", F_BOOL),
};
SCHEMA(tls, false, NULL);

/* Nomad's rpc_* limits belong to the servers' connection. */
static const struct config_field limits_f[] = {
    ATTR("http_max_conns_per_client", F_INT,
         CFG(limits.http_max_conns_per_client)),
    ATTR("https_handshake_timeout", F_DURATION,
         CFG(limits.https_handshake_timeout_ns)),
    IGNORED("rpc_handshake_timeout", F_DURATION),
    IGNORED("rpc_max_conns_per_client", F_INT),
};
SCHEMA(limits, false, NULL);

static const struct config_field acl_f[] = {
    ATTR("enabled", F_BOOL, CFG(acl.enabled)),
    ATTR("token_ttl", F_DURATION, CFG(acl.token_ttl_ns)),
    ATTR("policy_ttl", F_DURATION, CFG(acl.policy_ttl_ns)),
    IGNORED("role_ttl", F_DURATION),
    IGNORED("token_min_expiration_ttl", F_DURATION),
    IGNORED("token_max_expiration_ttl", F_DURATION),
    IGNORED("replication_token", F_STRING),
};
SCHEMA(acl, false, NULL);

/* Accepted: metrics sinks are not ours, but a bad interval is still
 * reported. */
static const struct config_field telemetry_f[] = {
    IGNORED("collection_interval", F_DURATION),
};
SCHEMA(telemetry, true, NULL);

static const struct config_field top_f[] = {
    ATTR("data_dir", F_STRING, CFG(data_dir)),
    ATTR("name", F_STRING, CFG(name)),
    ATTR("datacenter", F_STRING, CFG(datacenter)),
    ATTR("region", F_STRING, CFG(region)),
    ATTR("bind_addr", F_STRING, CFG(bind_addr)),
    BLOCK("ports", &ports_s),
    BLOCK("addresses", &addresses_s),
    BLOCK("advertise", &advertise_s),
    ATTR("log_level", F_LOG_LEVEL, CFG(log_level)),
    ATTR("log_json", F_BOOL, CFG(log_json)),
    ATTR("plugin_dir", F_STRING, CFG(plugin_dir)),
    IGNORED("enable_debug", F_BOOL),
    IGNORED("disable_update_check", F_BOOL),
    IGNORED("disable_anonymous_signature", F_BOOL),
    IGNORED("leave_on_interrupt", F_BOOL),
    IGNORED("leave_on_terminate", F_BOOL),
    IGNORED("log_include_location", F_BOOL),
    IGNORED("enable_syslog", F_BOOL),
    IGNORED("syslog_facility", F_STRING),
    STRMAP("http_api_response_headers", NOFF),
    BLOCK("server", &server_s),
    BLOCK("client", &client_s),
    LABELED("plugin", config_decode_plugin),
    BLOCK("consul", &consul_s),
    BLOCK("acl", &acl_s),
    BLOCK("telemetry", &telemetry_s),
    OPAQUE("ui"),
    BLOCK("tls", &tls_s),
    BLOCK("limits", &limits_s),
};
const struct config_schema config_top_schema = {top_f, NC_ARRAY_LEN(top_f),
                                                false, NULL};
