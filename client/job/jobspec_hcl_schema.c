/* jobspec_hcl_schema.c - the schema the HCL converter (jobspec_hcl.c)
 * walks: every block and attribute of a Nomad job this node accepts, the
 * API JSON key each becomes, and the hooks that finish a block the way
 * Nomad's jobspec2 does (constraint shortcuts, periodic's SpecType, vault
 * blocks copied into tasks). */
#include <stdio.h>
#include <string.h>

#include "client/job/internal.h"

/* Table entries; the kinds are named without their JS_A_ / JS_B_ prefix. */
/* clang-format off */
#define ATTR(n, k, kind) {n, k, JS_A_##kind, JS_B_NONE, NULL, NULL}
#define BLOCK(n, k, kind, sub) {n, k, JS_A_NONE, JS_B_##kind, sub, NULL}
#define LBLOCK(n, k, kind, sub, lk) {n, k, JS_A_NONE, JS_B_##kind, sub, lk}
#define STRMAP(n, k) {n, k, JS_A_STRMAP, JS_B_STRMAP, NULL, NULL}
#define OPAQUE(n, k) {n, k, JS_A_NONE, JS_B_OPAQUE, NULL, NULL}
/* clang-format on */
#define SCHEMA(id, postfn)                                                     \
    static const struct js_hcl_schema id##_s = {id##_f, NC_ARRAY_LEN(id##_f),  \
                                                postfn, false}

static int post_constraint(struct js_hcl_ctx *, json_t *,
                           const struct hcl_body *);
static int post_affinity(struct js_hcl_ctx *, json_t *,
                         const struct hcl_body *);
static int post_periodic(struct js_hcl_ctx *, json_t *,
                         const struct hcl_body *);
static int post_group(struct js_hcl_ctx *, json_t *, const struct hcl_body *);

static const struct js_hcl_field constraint_f[] = {
    ATTR("attribute", "LTarget", STRING),
    ATTR("value", "RTarget", SCALAR),
    ATTR("operator", "Operand", STRING),
    ATTR("distinct_hosts", "_distinct_hosts", BOOL),
    ATTR("distinct_property", "_distinct_property", STRING),
    ATTR("regexp", "_regexp", STRING),
    ATTR("version", "_version", STRING),
    ATTR("semver", "_semver", STRING),
    ATTR("set_contains", "_set_contains", STRING),
    ATTR("set_contains_all", "_set_contains_all", STRING),
    ATTR("set_contains_any", "_set_contains_any", STRING),
};
SCHEMA(constraint, post_constraint);

static const struct js_hcl_field affinity_f[] = {
    ATTR("attribute", "LTarget", STRING),
    ATTR("value", "RTarget", SCALAR),
    ATTR("operator", "Operand", STRING),
    ATTR("weight", "Weight", INT),
    ATTR("regexp", "_regexp", STRING),
    ATTR("version", "_version", STRING),
    ATTR("semver", "_semver", STRING),
    ATTR("set_contains", "_set_contains", STRING),
    ATTR("set_contains_all", "_set_contains_all", STRING),
    ATTR("set_contains_any", "_set_contains_any", STRING),
};
SCHEMA(affinity, post_affinity);

static const struct js_hcl_field spread_target_f[] = {
    ATTR("percent", "Percent", INT),
};
SCHEMA(spread_target, NULL);

static const struct js_hcl_field spread_f[] = {
    ATTR("attribute", "Attribute", STRING),
    ATTR("weight", "Weight", INT),
    LBLOCK("target", "SpreadTarget", LABELED, &spread_target_s, "Value"),
};
SCHEMA(spread, NULL);

static const struct js_hcl_field restart_f[] = {
    ATTR("attempts", "Attempts", INT),
    ATTR("interval", "Interval", DURATION),
    ATTR("delay", "Delay", DURATION),
    ATTR("mode", "Mode", STRING),
    ATTR("render_templates", "RenderTemplates", BOOL),
};
SCHEMA(restart, NULL);

static const struct js_hcl_field reschedule_f[] = {
    ATTR("attempts", "Attempts", INT),
    ATTR("interval", "Interval", DURATION),
    ATTR("delay", "Delay", DURATION),
    ATTR("delay_function", "DelayFunction", STRING),
    ATTR("max_delay", "MaxDelay", DURATION),
    ATTR("unlimited", "Unlimited", BOOL),
};
SCHEMA(reschedule, NULL);

static const struct js_hcl_field update_f[] = {
    ATTR("max_parallel", "MaxParallel", INT),
    ATTR("health_check", "HealthCheck", STRING),
    ATTR("min_healthy_time", "MinHealthyTime", DURATION),
    ATTR("healthy_deadline", "HealthyDeadline", DURATION),
    ATTR("progress_deadline", "ProgressDeadline", DURATION),
    ATTR("stagger", "Stagger", DURATION),
    ATTR("canary", "Canary", INT),
    ATTR("auto_revert", "AutoRevert", BOOL),
    ATTR("auto_promote", "AutoPromote", BOOL),
};
SCHEMA(update, NULL);

static const struct js_hcl_field migrate_f[] = {
    ATTR("max_parallel", "MaxParallel", INT),
    ATTR("health_check", "HealthCheck", STRING),
    ATTR("min_healthy_time", "MinHealthyTime", DURATION),
    ATTR("healthy_deadline", "HealthyDeadline", DURATION),
};
SCHEMA(migrate, NULL);

static const struct js_hcl_field periodic_f[] = {
    ATTR("enabled", "Enabled", BOOL),
    ATTR("cron", "Spec", STRING),
    ATTR("crons", "Specs", STRLIST),
    ATTR("prohibit_overlap", "ProhibitOverlap", BOOL),
    ATTR("time_zone", "TimeZone", STRING),
};
SCHEMA(periodic, post_periodic);

static const struct js_hcl_field parameterized_f[] = {
    ATTR("payload", "Payload", STRING),
    ATTR("meta_required", "MetaRequired", STRLIST),
    ATTR("meta_optional", "MetaOptional", STRLIST),
};
SCHEMA(parameterized, NULL);

static const struct js_hcl_field vault_f[] = {
    ATTR("policies", "Policies", STRLIST),
    ATTR("role", "Role", STRING),
    ATTR("namespace", "Namespace", STRING),
    ATTR("cluster", "Cluster", STRING),
    ATTR("env", "Env", BOOL),
    ATTR("disable_file", "DisableFile", BOOL),
    ATTR("change_mode", "ChangeMode", STRING),
    ATTR("change_signal", "ChangeSignal", STRING),
    ATTR("allow_token_expiration", "AllowTokenExpiration", BOOL),
};
SCHEMA(vault, NULL);

static const struct js_hcl_field ephemeral_disk_f[] = {
    ATTR("size", "SizeMB", INT),
    ATTR("migrate", "Migrate", BOOL),
    ATTR("sticky", "Sticky", BOOL),
};
SCHEMA(ephemeral_disk, NULL);

static const struct js_hcl_field scaling_f[] = {
    ATTR("min", "Min", INT64),        ATTR("max", "Max", INT64),
    ATTR("enabled", "Enabled", BOOL), ATTR("type", "Type", STRING),
    OPAQUE("policy", "Policy"),
};
SCHEMA(scaling, NULL);

static const struct js_hcl_field dns_f[] = {
    ATTR("servers", "Servers", STRLIST),
    ATTR("searches", "Searches", STRLIST),
    ATTR("options", "Options", STRLIST),
};
SCHEMA(dns, NULL);

static const struct js_hcl_field port_f[] = {
    ATTR("static", "Value", INT),
    ATTR("to", "To", INT),
    ATTR("host_network", "HostNetwork", STRING),
};
SCHEMA(port, NULL);

static const struct js_hcl_field network_f[] = {
    ATTR("mode", "Mode", STRING),
    ATTR("hostname", "Hostname", STRING),
    ATTR("mbits", "MBits", INT),
    BLOCK("dns", "DNS", ONE, &dns_s),
    LBLOCK("port", "DynamicPorts", PORT, &port_s, "Label"),
};
SCHEMA(network, NULL);

static const struct js_hcl_field volume_f[] = {
    ATTR("type", "Type", STRING),
    ATTR("source", "Source", STRING),
    ATTR("read_only", "ReadOnly", BOOL),
    ATTR("per_alloc", "PerAlloc", BOOL),
    ATTR("access_mode", "AccessMode", STRING),
    ATTR("attachment_mode", "AttachmentMode", STRING),
};
SCHEMA(volume, NULL);

static const struct js_hcl_field check_restart_f[] = {
    ATTR("limit", "Limit", INT),
    ATTR("grace", "Grace", DURATION),
    ATTR("ignore_warnings", "IgnoreWarnings", BOOL),
};
SCHEMA(check_restart, NULL);

static const struct js_hcl_field check_f[] = {
    ATTR("name", "Name", STRING),
    ATTR("type", "Type", STRING),
    ATTR("command", "Command", STRING),
    ATTR("args", "Args", STRLIST),
    ATTR("path", "Path", STRING),
    ATTR("protocol", "Protocol", STRING),
    ATTR("port", "PortLabel", SCALAR),
    ATTR("address_mode", "AddressMode", STRING),
    ATTR("interval", "Interval", DURATION),
    ATTR("timeout", "Timeout", DURATION),
    ATTR("method", "Method", STRING),
    BLOCK("header", "Header", HEADER, NULL),
    ATTR("body", "Body", STRING),
    ATTR("initial_status", "InitialStatus", STRING),
    ATTR("tls_skip_verify", "TLSSkipVerify", BOOL),
    ATTR("task", "TaskName", STRING),
    ATTR("success_before_passing", "SuccessBeforePassing", INT),
    ATTR("failures_before_critical", "FailuresBeforeCritical", INT),
    ATTR("failures_before_warning", "FailuresBeforeWarning", INT),
    ATTR("on_update", "OnUpdate", STRING),
    ATTR("expose", "Expose", BOOL),
    ATTR("grpc_service", "GRPCService", STRING),
    ATTR("grpc_use_tls", "GRPCUseTLS", BOOL),
    BLOCK("check_restart", "CheckRestart", ONE, &check_restart_s),
};
SCHEMA(check, NULL);

/* connect, kept as API JSON for Consul */
static const struct js_hcl_field expose_path_f[] = {
    ATTR("path", "Path", STRING),
    ATTR("protocol", "Protocol", STRING),
    ATTR("local_path_port", "LocalPathPort", INT),
    ATTR("listener_port", "ListenerPort", STRING),
};
SCHEMA(expose_path, NULL);

static const struct js_hcl_field expose_f[] = {
    BLOCK("path", "Paths", LIST, &expose_path_s),
};
SCHEMA(expose, NULL);

static const struct js_hcl_field mesh_gateway_f[] = {
    ATTR("mode", "Mode", STRING),
};
SCHEMA(mesh_gateway, NULL);

static const struct js_hcl_field upstream_f[] = {
    ATTR("destination_name", "DestinationName", STRING),
    ATTR("destination_namespace", "DestinationNamespace", STRING),
    ATTR("destination_peer", "DestinationPeer", STRING),
    ATTR("destination_partition", "DestinationPartition", STRING),
    ATTR("destination_type", "DestinationType", STRING),
    ATTR("local_bind_port", "LocalBindPort", INT),
    ATTR("datacenter", "Datacenter", STRING),
    ATTR("local_bind_address", "LocalBindAddress", STRING),
    ATTR("local_bind_socket_path", "LocalBindSocketPath", STRING),
    ATTR("local_bind_socket_mode", "LocalBindSocketMode", STRING),
    BLOCK("mesh_gateway", "MeshGateway", ONE, &mesh_gateway_s),
    OPAQUE("config", "Config"),
};
SCHEMA(upstream, NULL);

static const struct js_hcl_field transparent_proxy_f[] = {
    ATTR("uid", "UID", STRING),
    ATTR("outbound_port", "OutboundPort", INT),
    ATTR("exclude_inbound_ports", "ExcludeInboundPorts", STRLIST),
    ATTR("exclude_outbound_ports", "ExcludeOutboundPorts", INTLIST),
    ATTR("exclude_outbound_cidrs", "ExcludeOutboundCIDRs", STRLIST),
    ATTR("exclude_uids", "ExcludeUIDs", STRLIST),
    ATTR("no_dns", "NoDNS", BOOL),
};
SCHEMA(transparent_proxy, NULL);

static const struct js_hcl_field proxy_f[] = {
    ATTR("local_service_address", "LocalServiceAddress", STRING),
    ATTR("local_service_port", "LocalServicePort", INT),
    BLOCK("expose", "Expose", ONE, &expose_s),
    BLOCK("upstreams", "Upstreams", LIST, &upstream_s),
    BLOCK("transparent_proxy", "TransparentProxy", ONE, &transparent_proxy_s),
    OPAQUE("config", "Config"),
};
SCHEMA(proxy, NULL);

static const struct js_hcl_field sidecar_service_f[] = {
    ATTR("tags", "Tags", STRLIST),
    ATTR("port", "Port", SCALAR),
    BLOCK("proxy", "Proxy", ONE, &proxy_s),
    ATTR("disable_default_tcp_check", "DisableDefaultTCPCheck", BOOL),
    STRMAP("meta", "Meta"),
};
SCHEMA(sidecar_service, NULL);

static const struct js_hcl_field device_f[] = {
    ATTR("count", "Count", INT64),
    BLOCK("constraint", "Constraints", LIST, &constraint_s),
    BLOCK("affinity", "Affinities", LIST, &affinity_s),
};
SCHEMA(device, NULL);

static const struct js_hcl_field resources_f[] = {
    ATTR("cpu", "CPU", INT),
    ATTR("cores", "Cores", INT),
    ATTR("memory", "MemoryMB", INT),
    ATTR("memory_max", "MemoryMaxMB", INT),
    ATTR("disk", "DiskMB", INT),
    LBLOCK("device", "Devices", LABELED, &device_s, "Name"),
};
SCHEMA(resources, NULL);

static const struct js_hcl_field logs_f[] = {
    ATTR("max_files", "MaxFiles", INT),
    ATTR("max_file_size", "MaxFileSizeMB", INT),
    ATTR("disabled", "Disabled", BOOL),
};
SCHEMA(logs, NULL);

static const struct js_hcl_field sidecar_task_f[] = {
    ATTR("name", "Name", STRING),
    ATTR("driver", "Driver", STRING),
    ATTR("user", "User", STRING),
    OPAQUE("config", "Config"),
    STRMAP("env", "Env"),
    BLOCK("resources", "Resources", ONE, &resources_s),
    STRMAP("meta", "Meta"),
    ATTR("kill_timeout", "KillTimeout", DURATION),
    BLOCK("logs", "LogConfig", ONE, &logs_s),
    ATTR("shutdown_delay", "ShutdownDelay", DURATION),
    ATTR("kill_signal", "KillSignal", STRING),
};
SCHEMA(sidecar_task, NULL);

static const struct js_hcl_field bind_address_f[] = {
    ATTR("address", "Address", STRING),
    ATTR("port", "Port", INT),
};
SCHEMA(bind_address, NULL);

static const struct js_hcl_field gateway_proxy_f[] = {
    ATTR("connect_timeout", "ConnectTimeout", DURATION),
    ATTR("envoy_gateway_bind_tagged_addresses",
         "EnvoyGatewayBindTaggedAddresses", BOOL),
    LBLOCK("envoy_gateway_bind_addresses", "EnvoyGatewayBindAddresses",
           LABELED_MAP, &bind_address_s, "Name"),
    ATTR("envoy_gateway_no_default_bind", "EnvoyGatewayNoDefaultBind", BOOL),
    ATTR("envoy_dns_discovery_type", "EnvoyDNSDiscoveryType", STRING),
    OPAQUE("config", "Config"),
};
SCHEMA(gateway_proxy, NULL);

static const struct js_hcl_field gateway_tls_f[] = {
    ATTR("enabled", "Enabled", BOOL),
    ATTR("tls_min_version", "TLSMinVersion", STRING),
    ATTR("tls_max_version", "TLSMaxVersion", STRING),
    ATTR("cipher_suites", "CipherSuites", STRLIST),
};
SCHEMA(gateway_tls, NULL);

static const struct js_hcl_field ingress_service_f[] = {
    ATTR("name", "Name", STRING),
    ATTR("hosts", "Hosts", STRLIST),
};
SCHEMA(ingress_service, NULL);

static const struct js_hcl_field ingress_listener_f[] = {
    ATTR("port", "Port", INT),
    ATTR("protocol", "Protocol", STRING),
    BLOCK("service", "Services", LIST, &ingress_service_s),
};
SCHEMA(ingress_listener, NULL);

static const struct js_hcl_field ingress_f[] = {
    BLOCK("tls", "TLS", ONE, &gateway_tls_s),
    BLOCK("listener", "Listeners", LIST, &ingress_listener_s),
};
SCHEMA(ingress, NULL);

static const struct js_hcl_field linked_service_f[] = {
    ATTR("name", "Name", STRING),
    ATTR("ca_file", "CAFile", STRING),
    ATTR("cert_file", "CertFile", STRING),
    ATTR("key_file", "KeyFile", STRING),
    ATTR("sni", "SNI", STRING),
};
SCHEMA(linked_service, NULL);

static const struct js_hcl_field terminating_f[] = {
    BLOCK("service", "Services", LIST, &linked_service_s),
};
SCHEMA(terminating, NULL);

static const struct js_hcl_field mesh_f[] = {
    ATTR("_", "_", NONE), /* no fields; Nomad's mesh block is empty */
};
SCHEMA(mesh, NULL);

static const struct js_hcl_field gateway_f[] = {
    BLOCK("proxy", "Proxy", ONE, &gateway_proxy_s),
    BLOCK("ingress", "Ingress", ONE, &ingress_s),
    BLOCK("terminating", "Terminating", ONE, &terminating_s),
    BLOCK("mesh", "Mesh", ONE, &mesh_s),
};
SCHEMA(gateway, NULL);

static const struct js_hcl_field connect_f[] = {
    ATTR("native", "Native", BOOL),
    BLOCK("sidecar_service", "SidecarService", ONE, &sidecar_service_s),
    BLOCK("sidecar_task", "SidecarTask", ONE, &sidecar_task_s),
    BLOCK("gateway", "Gateway", ONE, &gateway_s),
};
SCHEMA(connect, NULL);

static const struct js_hcl_field service_f[] = {
    ATTR("name", "Name", STRING),
    ATTR("port", "PortLabel", SCALAR),
    ATTR("tags", "Tags", STRLIST),
    ATTR("canary_tags", "CanaryTags", STRLIST),
    STRMAP("meta", "Meta"),
    STRMAP("canary_meta", "CanaryMeta"),
    ATTR("address_mode", "AddressMode", STRING),
    ATTR("address", "Address", STRING),
    ATTR("provider", "Provider", STRING),
    ATTR("enable_tag_override", "EnableTagOverride", BOOL),
    ATTR("task", "TaskName", STRING),
    ATTR("on_update", "OnUpdate", STRING),
    BLOCK("connect", "Connect", ONE, &connect_s),
    BLOCK("check", "Checks", LIST, &check_s),
    BLOCK("check_restart", "CheckRestart", ONE, &check_restart_s),
};
SCHEMA(service, NULL);

static const struct js_hcl_field template_wait_f[] = {
    ATTR("min", "Min", DURATION),
    ATTR("max", "Max", DURATION),
};
SCHEMA(template_wait, NULL);

static const struct js_hcl_field change_script_f[] = {
    ATTR("command", "Command", STRING),
    ATTR("args", "Args", STRLIST),
    ATTR("timeout", "Timeout", DURATION),
    ATTR("fail_on_error", "FailOnError", BOOL),
};
SCHEMA(change_script, NULL);

static const struct js_hcl_field template_f[] = {
    ATTR("data", "EmbeddedTmpl", STRING),
    ATTR("source", "SourcePath", STRING),
    ATTR("destination", "DestPath", STRING),
    ATTR("change_mode", "ChangeMode", STRING),
    ATTR("change_signal", "ChangeSignal", STRING),
    ATTR("splay", "Splay", DURATION),
    ATTR("perms", "Perms", STRING),
    ATTR("left_delimiter", "LeftDelim", STRING),
    ATTR("right_delimiter", "RightDelim", STRING),
    ATTR("env", "Envvars", BOOL),
    ATTR("error_on_missing_key", "ErrMissingKey", BOOL),
    ATTR("uid", "Uid", INT),
    ATTR("gid", "Gid", INT),
    BLOCK("wait", "Wait", ONE, &template_wait_s),
    BLOCK("change_script", "ChangeScript", ONE, &change_script_s),
};
SCHEMA(template, NULL);

static const struct js_hcl_field volume_mount_f[] = {
    ATTR("volume", "Volume", STRING),
    ATTR("destination", "Destination", STRING),
    ATTR("read_only", "ReadOnly", BOOL),
    ATTR("propagation_mode", "PropagationMode", STRING),
};
SCHEMA(volume_mount, NULL);

static const struct js_hcl_field lifecycle_f[] = {
    ATTR("hook", "Hook", STRING),
    ATTR("sidecar", "Sidecar", BOOL),
};
SCHEMA(lifecycle, NULL);

static const struct js_hcl_field artifact_f[] = {
    ATTR("source", "GetterSource", STRING),
    ATTR("destination", "RelativeDest", STRING),
    ATTR("mode", "GetterMode", STRING),
    STRMAP("options", "GetterOptions"),
    STRMAP("headers", "GetterHeaders"),
    ATTR("chown", "Chown", BOOL),
    ATTR("insecure", "GetterInsecure", BOOL),
};
SCHEMA(artifact, NULL);

static const struct js_hcl_field task_f[] = {
    ATTR("driver", "Driver", STRING),
    ATTR("user", "User", STRING),
    OPAQUE("config", "Config"),
    STRMAP("env", "Env"),
    STRMAP("meta", "Meta"),
    BLOCK("resources", "Resources", ONE, &resources_s),
    BLOCK("template", "Templates", LIST, &template_s),
    BLOCK("vault", "Vault", ONE, &vault_s),
    BLOCK("volume_mount", "VolumeMounts", LIST, &volume_mount_s),
    BLOCK("service", "Services", LIST, &service_s),
    ATTR("kill_timeout", "KillTimeout", DURATION),
    ATTR("kill_signal", "KillSignal", STRING),
    ATTR("shutdown_delay", "ShutdownDelay", DURATION),
    BLOCK("logs", "LogConfig", ONE, &logs_s),
    BLOCK("lifecycle", "Lifecycle", ONE, &lifecycle_s),
    ATTR("leader", "Leader", BOOL),
    BLOCK("restart", "RestartPolicy", ONE, &restart_s),
    BLOCK("constraint", "Constraints", LIST, &constraint_s),
    BLOCK("affinity", "Affinities", LIST, &affinity_s),
    BLOCK("artifact", "Artifacts", LIST, &artifact_s),
    BLOCK("scaling", "ScalingPolicies", SCALING, &scaling_s),
};
static const struct js_hcl_schema task_s = {task_f, NC_ARRAY_LEN(task_f), NULL,
                                            true};

static const struct js_hcl_field group_f[] = {
    ATTR("count", "Count", INT),
    BLOCK("network", "Networks", LIST, &network_s),
    BLOCK("service", "Services", LIST, &service_s),
    LBLOCK("volume", "Volumes", LABELED_MAP, &volume_s, "Name"),
    BLOCK("restart", "RestartPolicy", ONE, &restart_s),
    BLOCK("reschedule", "ReschedulePolicy", ONE, &reschedule_s),
    BLOCK("update", "Update", ONE, &update_s),
    BLOCK("migrate", "Migrate", ONE, &migrate_s),
    BLOCK("scaling", "Scaling", ONE, &scaling_s),
    BLOCK("ephemeral_disk", "EphemeralDisk", ONE, &ephemeral_disk_s),
    STRMAP("meta", "Meta"),
    BLOCK("constraint", "Constraints", LIST, &constraint_s),
    BLOCK("affinity", "Affinities", LIST, &affinity_s),
    BLOCK("spread", "Spreads", LIST, &spread_s),
    ATTR("shutdown_delay", "ShutdownDelay", DURATION),
    ATTR("stop_after_client_disconnect", "StopAfterClientDisconnect", DURATION),
    LBLOCK("task", "Tasks", LABELED, &task_s, "Name"),
    BLOCK("vault", "_Vault", ONE, &vault_s),
};
SCHEMA(group, post_group);

static const struct js_hcl_field job_f[] = {
    ATTR("region", "Region", STRING),
    ATTR("namespace", "Namespace", STRING),
    ATTR("name", "Name", STRING),
    ATTR("type", "Type", STRING),
    ATTR("priority", "Priority", INT),
    ATTR("all_at_once", "AllAtOnce", BOOL),
    ATTR("datacenters", "Datacenters", STRLIST),
    ATTR("node_pool", "NodePool", STRING),
    STRMAP("meta", "Meta"),
    BLOCK("constraint", "Constraints", LIST, &constraint_s),
    BLOCK("affinity", "Affinities", LIST, &affinity_s),
    BLOCK("spread", "Spreads", LIST, &spread_s),
    BLOCK("update", "Update", ONE, &update_s),
    BLOCK("migrate", "Migrate", ONE, &migrate_s),
    BLOCK("reschedule", "Reschedule", ONE, &reschedule_s),
    BLOCK("periodic", "Periodic", ONE, &periodic_s),
    BLOCK("parameterized", "ParameterizedJob", ONE, &parameterized_s),
    BLOCK("vault", "_Vault", ONE, &vault_s),
    LBLOCK("group", "TaskGroups", LABELED, &group_s, "Name"),
};
const struct js_hcl_schema js_hcl_job_schema = {job_f, NC_ARRAY_LEN(job_f),
                                                NULL, false};

/* ---- post-processing hooks ---- */

/* Shortcut attributes (regexp = "...", distinct_hosts = true, ...) set
 * the operator, as jobspec2's decodeConstraint does; later ones win in
 * the same order Nomad applies them. */
static int shortcuts(json_t *obj, const char *const *names, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char key[64];
        snprintf(key, sizeof(key), "_%s", names[i]);
        json_t *v = json_object_get(obj, key);
        if (!v)
            continue;
        if (strcmp(names[i], "distinct_hosts") == 0) {
            json_object_set_new(obj, "Operand", json_string("distinct_hosts"));
            json_object_set_new(obj, "RTarget", json_string(json_is_true(v)
                                                                ? "true"
                                                                : "false"));
        } else if (json_string_length(v) > 0) {
            json_object_set_new(obj, "Operand", json_string(names[i]));
            if (strcmp(names[i], "distinct_property") == 0)
                json_object_set(obj, "LTarget", v);
            else
                json_object_set(obj, "RTarget", v);
        }
        json_object_del(obj, key);
    }
    if (!json_object_get(obj, "Operand"))
        json_object_set_new(obj, "Operand", json_string("="));
    return 0;
}

static int post_constraint(struct js_hcl_ctx *c, json_t *obj,
                           const struct hcl_body *body)
{
    static const char *const order[] = {
        "version",        "semver",           "regexp",
        "set_contains",   "set_contains_all", "set_contains_any",
        "distinct_hosts", "distinct_property"};
    (void)c;
    (void)body;
    return shortcuts(obj, order, NC_ARRAY_LEN(order));
}

static int post_affinity(struct js_hcl_ctx *c, json_t *obj,
                         const struct hcl_body *body)
{
    static const char *const order[] = {"version",          "semver",
                                        "regexp",           "set_contains_any",
                                        "set_contains_all", "set_contains"};
    (void)c;
    (void)body;
    return shortcuts(obj, order, NC_ARRAY_LEN(order));
}

static int post_periodic(struct js_hcl_ctx *c, json_t *obj,
                         const struct hcl_body *body)
{
    (void)c;
    (void)body;
    if (json_object_get(obj, "Spec") || json_object_get(obj, "Specs"))
        json_object_set_new(obj, "SpecType", json_string("cron"));
    return 0;
}

/* A vault block of a group (or job) applies to its tasks that have none,
 * as jobspec2 does. */
void js_hcl_spread_vault(json_t *group, const json_t *vault)
{
    size_t i;
    json_t *t;
    json_array_foreach(json_object_get(group, "Tasks"), i, t)
    {
        json_t *tv = json_object_get(t, "Vault");
        if (!tv || json_is_null(tv))
            json_object_set_new(t, "Vault", json_deep_copy(vault));
    }
}

static int post_group(struct js_hcl_ctx *c, json_t *obj,
                      const struct hcl_body *body)
{
    (void)c;
    (void)body;
    json_t *v = json_object_get(obj, "_Vault");
    if (v) {
        js_hcl_spread_vault(obj, v);
        json_object_del(obj, "_Vault");
    }
    return 0;
}
