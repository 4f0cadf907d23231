/* jobspec_hcl.c - Nomad job files (HCL syntax tree from hcl.h) to Nomad's
 * API job JSON, driven by a schema of every block and attribute this node
 * accepts.
 *
 * The schema is strict the way Nomad's jobspec2 decoder is: an unknown or
 * misspelt name, a block where an attribute belongs, a wrong type or a bad
 * duration is an error naming file:line:col and the path to the item.
 * Decoding stops at the first such error. Driver config and scaling
 * policies are not ours to know: they are converted as Nomad converts them
 * (nested blocks become lists of objects) and kept as JSON. Every JSON
 * path written is recorded with its position, so later checks can point
 * into the file too. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/hcl/hcl.h"
#include "client/job/internal.h"

/* ---- schema ---- */

enum akind {
    A_NONE,
    A_STRING,
    A_SCALAR,   /* string; numbers and bools are taken as their text */
    A_INT,      /* fits in int */
    A_INT64,
    A_BOOL,
    A_DURATION, /* "10s" or a number of nanoseconds */
    A_STRLIST,
    A_INTLIST,
    A_STRMAP,   /* name = { k = "v" }: attribute form of meta/env blocks */
};

enum bkind {
    B_NONE,
    B_ONE,         /* at most one, an object */
    B_LIST,        /* repeated, a list of objects */
    B_LABELED,     /* repeated with one label stored under label_key */
    B_LABELED_MAP, /* one label, an object keyed by label */
    B_STRMAP,      /* meta/env: name = "value" pairs */
    B_OPAQUE,      /* driver config and the like: Nomad's generic rules */
    B_HEADER,      /* check header { Name = ["v"] } */
    B_PORT,        /* network port "label": reserved or dynamic list */
    B_SCALING,     /* task scaling: optional label "cpu" / "mem" */
};

struct hctx;
struct hschema;

struct hfield {
    const char *name; /* HCL name */
    const char *key;  /* API JSON key */
    unsigned char attr, block;
    const struct hschema *sub;
    const char *label_key;
};

typedef int (*post_fn)(struct hctx *c, json_t *obj,
                       const struct hcl_body *body);

struct hschema {
    const struct hfield *fields;
    size_t n;
    post_fn post;
    bool driver_hint; /* task body: suggest moving driver keys to config */
};

#define ATTR(n, k, kind) {n, k, kind, B_NONE, NULL, NULL}
#define BLOCK(n, k, kind, sub) {n, k, A_NONE, kind, sub, NULL}
#define LBLOCK(n, k, kind, sub, lk) {n, k, A_NONE, kind, sub, lk}
#define STRMAP(n, k) {n, k, A_STRMAP, B_STRMAP, NULL, NULL}
#define OPAQUE(n, k) {n, k, A_NONE, B_OPAQUE, NULL, NULL}
#define SCHEMA(id, postfn)                                                     \
    static const struct hschema id##_s = {id##_f, NC_ARRAY_LEN(id##_f),       \
                                          postfn, false}

struct hctx {
    struct js_posmap *pos;
    struct nc_error *err;
    const char *filename;
    struct nc_buf h; /* human path */
    struct nc_buf j; /* JSON path */
    const char *job_id;
    int depth;
};

static int post_constraint(struct hctx *, json_t *, const struct hcl_body *);
static int post_affinity(struct hctx *, json_t *, const struct hcl_body *);
static int post_periodic(struct hctx *, json_t *, const struct hcl_body *);
static int post_group(struct hctx *, json_t *, const struct hcl_body *);

static const struct hfield constraint_f[] = {
    ATTR("attribute", "LTarget", A_STRING),
    ATTR("value", "RTarget", A_SCALAR),
    ATTR("operator", "Operand", A_STRING),
    ATTR("distinct_hosts", "_distinct_hosts", A_BOOL),
    ATTR("distinct_property", "_distinct_property", A_STRING),
    ATTR("regexp", "_regexp", A_STRING),
    ATTR("version", "_version", A_STRING),
    ATTR("semver", "_semver", A_STRING),
    ATTR("set_contains", "_set_contains", A_STRING),
    ATTR("set_contains_all", "_set_contains_all", A_STRING),
    ATTR("set_contains_any", "_set_contains_any", A_STRING),
};
SCHEMA(constraint, post_constraint);

static const struct hfield affinity_f[] = {
    ATTR("attribute", "LTarget", A_STRING),
    ATTR("value", "RTarget", A_SCALAR),
    ATTR("operator", "Operand", A_STRING),
    ATTR("weight", "Weight", A_INT),
    ATTR("regexp", "_regexp", A_STRING),
    ATTR("version", "_version", A_STRING),
    ATTR("semver", "_semver", A_STRING),
    ATTR("set_contains", "_set_contains", A_STRING),
    ATTR("set_contains_all", "_set_contains_all", A_STRING),
    ATTR("set_contains_any", "_set_contains_any", A_STRING),
};
SCHEMA(affinity, post_affinity);

static const struct hfield spread_target_f[] = {
    ATTR("percent", "Percent", A_INT),
};
SCHEMA(spread_target, NULL);

static const struct hfield spread_f[] = {
    ATTR("attribute", "Attribute", A_STRING),
    ATTR("weight", "Weight", A_INT),
    LBLOCK("target", "SpreadTarget", B_LABELED, &spread_target_s, "Value"),
};
SCHEMA(spread, NULL);

static const struct hfield restart_f[] = {
    ATTR("attempts", "Attempts", A_INT),
    ATTR("interval", "Interval", A_DURATION),
    ATTR("delay", "Delay", A_DURATION),
    ATTR("mode", "Mode", A_STRING),
    ATTR("render_templates", "RenderTemplates", A_BOOL),
};
SCHEMA(restart, NULL);

static const struct hfield reschedule_f[] = {
    ATTR("attempts", "Attempts", A_INT),
    ATTR("interval", "Interval", A_DURATION),
    ATTR("delay", "Delay", A_DURATION),
    ATTR("delay_function", "DelayFunction", A_STRING),
    ATTR("max_delay", "MaxDelay", A_DURATION),
    ATTR("unlimited", "Unlimited", A_BOOL),
};
SCHEMA(reschedule, NULL);

static const struct hfield update_f[] = {
    ATTR("max_parallel", "MaxParallel", A_INT),
    ATTR("health_check", "HealthCheck", A_STRING),
    ATTR("min_healthy_time", "MinHealthyTime", A_DURATION),
    ATTR("healthy_deadline", "HealthyDeadline", A_DURATION),
    ATTR("progress_deadline", "ProgressDeadline", A_DURATION),
    ATTR("stagger", "Stagger", A_DURATION),
    ATTR("canary", "Canary", A_INT),
    ATTR("auto_revert", "AutoRevert", A_BOOL),
    ATTR("auto_promote", "AutoPromote", A_BOOL),
};
SCHEMA(update, NULL);

static const struct hfield migrate_f[] = {
    ATTR("max_parallel", "MaxParallel", A_INT),
    ATTR("health_check", "HealthCheck", A_STRING),
    ATTR("min_healthy_time", "MinHealthyTime", A_DURATION),
    ATTR("healthy_deadline", "HealthyDeadline", A_DURATION),
};
SCHEMA(migrate, NULL);

static const struct hfield periodic_f[] = {
    ATTR("enabled", "Enabled", A_BOOL),
    ATTR("cron", "Spec", A_STRING),
    ATTR("crons", "Specs", A_STRLIST),
    ATTR("prohibit_overlap", "ProhibitOverlap", A_BOOL),
    ATTR("time_zone", "TimeZone", A_STRING),
};
SCHEMA(periodic, post_periodic);

static const struct hfield parameterized_f[] = {
    ATTR("payload", "Payload", A_STRING),
    ATTR("meta_required", "MetaRequired", A_STRLIST),
    ATTR("meta_optional", "MetaOptional", A_STRLIST),
};
SCHEMA(parameterized, NULL);

static const struct hfield vault_f[] = {
    ATTR("policies", "Policies", A_STRLIST),
    ATTR("role", "Role", A_STRING),
    ATTR("namespace", "Namespace", A_STRING),
    ATTR("cluster", "Cluster", A_STRING),
    ATTR("env", "Env", A_BOOL),
    ATTR("disable_file", "DisableFile", A_BOOL),
    ATTR("change_mode", "ChangeMode", A_STRING),
    ATTR("change_signal", "ChangeSignal", A_STRING),
    ATTR("allow_token_expiration", "AllowTokenExpiration", A_BOOL),
};
SCHEMA(vault, NULL);

static const struct hfield ephemeral_disk_f[] = {
    ATTR("size", "SizeMB", A_INT),
    ATTR("migrate", "Migrate", A_BOOL),
    ATTR("sticky", "Sticky", A_BOOL),
};
SCHEMA(ephemeral_disk, NULL);

static const struct hfield scaling_f[] = {
    ATTR("min", "Min", A_INT64),
    ATTR("max", "Max", A_INT64),
    ATTR("enabled", "Enabled", A_BOOL),
    ATTR("type", "Type", A_STRING),
    OPAQUE("policy", "Policy"),
};
SCHEMA(scaling, NULL);

static const struct hfield dns_f[] = {
    ATTR("servers", "Servers", A_STRLIST),
    ATTR("searches", "Searches", A_STRLIST),
    ATTR("options", "Options", A_STRLIST),
};
SCHEMA(dns, NULL);

static const struct hfield port_f[] = {
    ATTR("static", "Value", A_INT),
    ATTR("to", "To", A_INT),
    ATTR("host_network", "HostNetwork", A_STRING),
};
SCHEMA(port, NULL);

static const struct hfield network_f[] = {
    ATTR("mode", "Mode", A_STRING),
    ATTR("hostname", "Hostname", A_STRING),
    ATTR("mbits", "MBits", A_INT),
    BLOCK("dns", "DNS", B_ONE, &dns_s),
    LBLOCK("port", "DynamicPorts", B_PORT, &port_s, "Label"),
};
SCHEMA(network, NULL);

static const struct hfield volume_f[] = {
    ATTR("type", "Type", A_STRING),
    ATTR("source", "Source", A_STRING),
    ATTR("read_only", "ReadOnly", A_BOOL),
    ATTR("per_alloc", "PerAlloc", A_BOOL),
    ATTR("access_mode", "AccessMode", A_STRING),
    ATTR("attachment_mode", "AttachmentMode", A_STRING),
};
SCHEMA(volume, NULL);

static const struct hfield check_restart_f[] = {
    ATTR("limit", "Limit", A_INT),
    ATTR("grace", "Grace", A_DURATION),
    ATTR("ignore_warnings", "IgnoreWarnings", A_BOOL),
};
SCHEMA(check_restart, NULL);

static const struct hfield check_f[] = {
    ATTR("name", "Name", A_STRING),
    ATTR("type", "Type", A_STRING),
    ATTR("command", "Command", A_STRING),
    ATTR("args", "Args", A_STRLIST),
    ATTR("path", "Path", A_STRING),
    ATTR("protocol", "Protocol", A_STRING),
    ATTR("port", "PortLabel", A_SCALAR),
    ATTR("address_mode", "AddressMode", A_STRING),
    ATTR("interval", "Interval", A_DURATION),
    ATTR("timeout", "Timeout", A_DURATION),
    ATTR("method", "Method", A_STRING),
    BLOCK("header", "Header", B_HEADER, NULL),
    ATTR("body", "Body", A_STRING),
    ATTR("initial_status", "InitialStatus", A_STRING),
    ATTR("tls_skip_verify", "TLSSkipVerify", A_BOOL),
    ATTR("task", "TaskName", A_STRING),
    ATTR("success_before_passing", "SuccessBeforePassing", A_INT),
    ATTR("failures_before_critical", "FailuresBeforeCritical", A_INT),
    ATTR("failures_before_warning", "FailuresBeforeWarning", A_INT),
    ATTR("on_update", "OnUpdate", A_STRING),
    ATTR("expose", "Expose", A_BOOL),
    ATTR("grpc_service", "GRPCService", A_STRING),
    ATTR("grpc_use_tls", "GRPCUseTLS", A_BOOL),
    BLOCK("check_restart", "CheckRestart", B_ONE, &check_restart_s),
};
SCHEMA(check, NULL);

/* connect, kept as API JSON for Consul */
static const struct hfield expose_path_f[] = {
    ATTR("path", "Path", A_STRING),
    ATTR("protocol", "Protocol", A_STRING),
    ATTR("local_path_port", "LocalPathPort", A_INT),
    ATTR("listener_port", "ListenerPort", A_STRING),
};
SCHEMA(expose_path, NULL);

static const struct hfield expose_f[] = {
    BLOCK("path", "Paths", B_LIST, &expose_path_s),
};
SCHEMA(expose, NULL);

static const struct hfield mesh_gateway_f[] = {
    ATTR("mode", "Mode", A_STRING),
};
SCHEMA(mesh_gateway, NULL);

static const struct hfield upstream_f[] = {
    ATTR("destination_name", "DestinationName", A_STRING),
    ATTR("destination_namespace", "DestinationNamespace", A_STRING),
    ATTR("destination_peer", "DestinationPeer", A_STRING),
    ATTR("destination_partition", "DestinationPartition", A_STRING),
    ATTR("destination_type", "DestinationType", A_STRING),
    ATTR("local_bind_port", "LocalBindPort", A_INT),
    ATTR("datacenter", "Datacenter", A_STRING),
    ATTR("local_bind_address", "LocalBindAddress", A_STRING),
    ATTR("local_bind_socket_path", "LocalBindSocketPath", A_STRING),
    ATTR("local_bind_socket_mode", "LocalBindSocketMode", A_STRING),
    BLOCK("mesh_gateway", "MeshGateway", B_ONE, &mesh_gateway_s),
    OPAQUE("config", "Config"),
};
SCHEMA(upstream, NULL);

static const struct hfield transparent_proxy_f[] = {
    ATTR("uid", "UID", A_STRING),
    ATTR("outbound_port", "OutboundPort", A_INT),
    ATTR("exclude_inbound_ports", "ExcludeInboundPorts", A_STRLIST),
    ATTR("exclude_outbound_ports", "ExcludeOutboundPorts", A_INTLIST),
    ATTR("exclude_outbound_cidrs", "ExcludeOutboundCIDRs", A_STRLIST),
    ATTR("exclude_uids", "ExcludeUIDs", A_STRLIST),
    ATTR("no_dns", "NoDNS", A_BOOL),
};
SCHEMA(transparent_proxy, NULL);

static const struct hfield proxy_f[] = {
    ATTR("local_service_address", "LocalServiceAddress", A_STRING),
    ATTR("local_service_port", "LocalServicePort", A_INT),
    BLOCK("expose", "Expose", B_ONE, &expose_s),
    BLOCK("upstreams", "Upstreams", B_LIST, &upstream_s),
    BLOCK("transparent_proxy", "TransparentProxy", B_ONE, &transparent_proxy_s),
    OPAQUE("config", "Config"),
};
SCHEMA(proxy, NULL);

static const struct hfield sidecar_service_f[] = {
    ATTR("tags", "Tags", A_STRLIST),
    ATTR("port", "Port", A_SCALAR),
    BLOCK("proxy", "Proxy", B_ONE, &proxy_s),
    ATTR("disable_default_tcp_check", "DisableDefaultTCPCheck", A_BOOL),
    STRMAP("meta", "Meta"),
};
SCHEMA(sidecar_service, NULL);

static const struct hfield device_f[] = {
    ATTR("count", "Count", A_INT64),
    BLOCK("constraint", "Constraints", B_LIST, &constraint_s),
    BLOCK("affinity", "Affinities", B_LIST, &affinity_s),
};
SCHEMA(device, NULL);

static const struct hfield resources_f[] = {
    ATTR("cpu", "CPU", A_INT),
    ATTR("cores", "Cores", A_INT),
    ATTR("memory", "MemoryMB", A_INT),
    ATTR("memory_max", "MemoryMaxMB", A_INT),
    ATTR("disk", "DiskMB", A_INT),
    LBLOCK("device", "Devices", B_LABELED, &device_s, "Name"),
};
SCHEMA(resources, NULL);

static const struct hfield logs_f[] = {
    ATTR("max_files", "MaxFiles", A_INT),
    ATTR("max_file_size", "MaxFileSizeMB", A_INT),
    ATTR("disabled", "Disabled", A_BOOL),
};
SCHEMA(logs, NULL);

static const struct hfield sidecar_task_f[] = {
    ATTR("name", "Name", A_STRING),
    ATTR("driver", "Driver", A_STRING),
    ATTR("user", "User", A_STRING),
    OPAQUE("config", "Config"),
    STRMAP("env", "Env"),
    BLOCK("resources", "Resources", B_ONE, &resources_s),
    STRMAP("meta", "Meta"),
    ATTR("kill_timeout", "KillTimeout", A_DURATION),
    BLOCK("logs", "LogConfig", B_ONE, &logs_s),
    ATTR("shutdown_delay", "ShutdownDelay", A_DURATION),
    ATTR("kill_signal", "KillSignal", A_STRING),
};
SCHEMA(sidecar_task, NULL);

static const struct hfield bind_address_f[] = {
    ATTR("address", "Address", A_STRING),
    ATTR("port", "Port", A_INT),
};
SCHEMA(bind_address, NULL);

static const struct hfield gateway_proxy_f[] = {
    ATTR("connect_timeout", "ConnectTimeout", A_DURATION),
    ATTR("envoy_gateway_bind_tagged_addresses",
         "EnvoyGatewayBindTaggedAddresses", A_BOOL),
    LBLOCK("envoy_gateway_bind_addresses", "EnvoyGatewayBindAddresses",
           B_LABELED_MAP, &bind_address_s, "Name"),
    ATTR("envoy_gateway_no_default_bind", "EnvoyGatewayNoDefaultBind", A_BOOL),
    ATTR("envoy_dns_discovery_type", "EnvoyDNSDiscoveryType", A_STRING),
    OPAQUE("config", "Config"),
};
SCHEMA(gateway_proxy, NULL);

static const struct hfield gateway_tls_f[] = {
    ATTR("enabled", "Enabled", A_BOOL),
    ATTR("tls_min_version", "TLSMinVersion", A_STRING),
    ATTR("tls_max_version", "TLSMaxVersion", A_STRING),
    ATTR("cipher_suites", "CipherSuites", A_STRLIST),
};
SCHEMA(gateway_tls, NULL);

static const struct hfield ingress_service_f[] = {
    ATTR("name", "Name", A_STRING),
    ATTR("hosts", "Hosts", A_STRLIST),
};
SCHEMA(ingress_service, NULL);

static const struct hfield ingress_listener_f[] = {
    ATTR("port", "Port", A_INT),
    ATTR("protocol", "Protocol", A_STRING),
    BLOCK("service", "Services", B_LIST, &ingress_service_s),
};
SCHEMA(ingress_listener, NULL);

static const struct hfield ingress_f[] = {
    BLOCK("tls", "TLS", B_ONE, &gateway_tls_s),
    BLOCK("listener", "Listeners", B_LIST, &ingress_listener_s),
};
SCHEMA(ingress, NULL);

static const struct hfield linked_service_f[] = {
    ATTR("name", "Name", A_STRING),
    ATTR("ca_file", "CAFile", A_STRING),
    ATTR("cert_file", "CertFile", A_STRING),
    ATTR("key_file", "KeyFile", A_STRING),
    ATTR("sni", "SNI", A_STRING),
};
SCHEMA(linked_service, NULL);

static const struct hfield terminating_f[] = {
    BLOCK("service", "Services", B_LIST, &linked_service_s),
};
SCHEMA(terminating, NULL);

static const struct hfield mesh_f[] = {
    ATTR("_", "_", A_NONE), /* no fields; Nomad's mesh block is empty */
};
SCHEMA(mesh, NULL);

static const struct hfield gateway_f[] = {
    BLOCK("proxy", "Proxy", B_ONE, &gateway_proxy_s),
    BLOCK("ingress", "Ingress", B_ONE, &ingress_s),
    BLOCK("terminating", "Terminating", B_ONE, &terminating_s),
    BLOCK("mesh", "Mesh", B_ONE, &mesh_s),
};
SCHEMA(gateway, NULL);

static const struct hfield connect_f[] = {
    ATTR("native", "Native", A_BOOL),
    BLOCK("sidecar_service", "SidecarService", B_ONE, &sidecar_service_s),
    BLOCK("sidecar_task", "SidecarTask", B_ONE, &sidecar_task_s),
    BLOCK("gateway", "Gateway", B_ONE, &gateway_s),
};
SCHEMA(connect, NULL);

static const struct hfield service_f[] = {
    ATTR("name", "Name", A_STRING),
    ATTR("port", "PortLabel", A_SCALAR),
    ATTR("tags", "Tags", A_STRLIST),
    ATTR("canary_tags", "CanaryTags", A_STRLIST),
    STRMAP("meta", "Meta"),
    STRMAP("canary_meta", "CanaryMeta"),
    ATTR("address_mode", "AddressMode", A_STRING),
    ATTR("address", "Address", A_STRING),
    ATTR("provider", "Provider", A_STRING),
    ATTR("enable_tag_override", "EnableTagOverride", A_BOOL),
    ATTR("task", "TaskName", A_STRING),
    ATTR("on_update", "OnUpdate", A_STRING),
    BLOCK("connect", "Connect", B_ONE, &connect_s),
    BLOCK("check", "Checks", B_LIST, &check_s),
    BLOCK("check_restart", "CheckRestart", B_ONE, &check_restart_s),
};
SCHEMA(service, NULL);

static const struct hfield template_f[] = {
    ATTR("data", "EmbeddedTmpl", A_STRING),
    ATTR("source", "SourcePath", A_STRING),
    ATTR("destination", "DestPath", A_STRING),
    ATTR("change_mode", "ChangeMode", A_STRING),
    ATTR("change_signal", "ChangeSignal", A_STRING),
    ATTR("splay", "Splay", A_DURATION),
    ATTR("perms", "Perms", A_STRING),
    ATTR("left_delimiter", "LeftDelim", A_STRING),
    ATTR("right_delimiter", "RightDelim", A_STRING),
    ATTR("env", "Envvars", A_BOOL),
};
SCHEMA(template, NULL);

static const struct hfield volume_mount_f[] = {
    ATTR("volume", "Volume", A_STRING),
    ATTR("destination", "Destination", A_STRING),
    ATTR("read_only", "ReadOnly", A_BOOL),
    ATTR("propagation_mode", "PropagationMode", A_STRING),
};
SCHEMA(volume_mount, NULL);

static const struct hfield lifecycle_f[] = {
    ATTR("hook", "Hook", A_STRING),
    ATTR("sidecar", "Sidecar", A_BOOL),
};
SCHEMA(lifecycle, NULL);

static const struct hfield artifact_f[] = {
    ATTR("source", "GetterSource", A_STRING),
    ATTR("destination", "RelativeDest", A_STRING),
    ATTR("mode", "GetterMode", A_STRING),
    STRMAP("options", "GetterOptions"),
    STRMAP("headers", "GetterHeaders"),
    ATTR("chown", "Chown", A_BOOL),
    ATTR("insecure", "GetterInsecure", A_BOOL),
};
SCHEMA(artifact, NULL);

static const struct hfield task_f[] = {
    ATTR("driver", "Driver", A_STRING),
    ATTR("user", "User", A_STRING),
    OPAQUE("config", "Config"),
    STRMAP("env", "Env"),
    STRMAP("meta", "Meta"),
    BLOCK("resources", "Resources", B_ONE, &resources_s),
    BLOCK("template", "Templates", B_LIST, &template_s),
    BLOCK("vault", "Vault", B_ONE, &vault_s),
    BLOCK("volume_mount", "VolumeMounts", B_LIST, &volume_mount_s),
    BLOCK("service", "Services", B_LIST, &service_s),
    ATTR("kill_timeout", "KillTimeout", A_DURATION),
    ATTR("kill_signal", "KillSignal", A_STRING),
    ATTR("shutdown_delay", "ShutdownDelay", A_DURATION),
    BLOCK("logs", "LogConfig", B_ONE, &logs_s),
    BLOCK("lifecycle", "Lifecycle", B_ONE, &lifecycle_s),
    ATTR("leader", "Leader", A_BOOL),
    BLOCK("restart", "RestartPolicy", B_ONE, &restart_s),
    BLOCK("constraint", "Constraints", B_LIST, &constraint_s),
    BLOCK("affinity", "Affinities", B_LIST, &affinity_s),
    BLOCK("artifact", "Artifacts", B_LIST, &artifact_s),
    BLOCK("scaling", "ScalingPolicies", B_SCALING, &scaling_s),
};
static const struct hschema task_s = {task_f, NC_ARRAY_LEN(task_f), NULL,
                                      true};

static const struct hfield group_f[] = {
    ATTR("count", "Count", A_INT),
    BLOCK("network", "Networks", B_LIST, &network_s),
    BLOCK("service", "Services", B_LIST, &service_s),
    LBLOCK("volume", "Volumes", B_LABELED_MAP, &volume_s, "Name"),
    BLOCK("restart", "RestartPolicy", B_ONE, &restart_s),
    BLOCK("reschedule", "ReschedulePolicy", B_ONE, &reschedule_s),
    BLOCK("update", "Update", B_ONE, &update_s),
    BLOCK("migrate", "Migrate", B_ONE, &migrate_s),
    BLOCK("scaling", "Scaling", B_ONE, &scaling_s),
    BLOCK("ephemeral_disk", "EphemeralDisk", B_ONE, &ephemeral_disk_s),
    STRMAP("meta", "Meta"),
    BLOCK("constraint", "Constraints", B_LIST, &constraint_s),
    BLOCK("affinity", "Affinities", B_LIST, &affinity_s),
    BLOCK("spread", "Spreads", B_LIST, &spread_s),
    ATTR("shutdown_delay", "ShutdownDelay", A_DURATION),
    ATTR("stop_after_client_disconnect", "StopAfterClientDisconnect",
         A_DURATION),
    LBLOCK("task", "Tasks", B_LABELED, &task_s, "Name"),
    BLOCK("vault", "_Vault", B_ONE, &vault_s),
};
SCHEMA(group, post_group);

static const struct hfield job_f[] = {
    ATTR("region", "Region", A_STRING),
    ATTR("namespace", "Namespace", A_STRING),
    ATTR("name", "Name", A_STRING),
    ATTR("type", "Type", A_STRING),
    ATTR("priority", "Priority", A_INT),
    ATTR("all_at_once", "AllAtOnce", A_BOOL),
    ATTR("datacenters", "Datacenters", A_STRLIST),
    ATTR("node_pool", "NodePool", A_STRING),
    STRMAP("meta", "Meta"),
    BLOCK("constraint", "Constraints", B_LIST, &constraint_s),
    BLOCK("affinity", "Affinities", B_LIST, &affinity_s),
    BLOCK("spread", "Spreads", B_LIST, &spread_s),
    BLOCK("update", "Update", B_ONE, &update_s),
    BLOCK("migrate", "Migrate", B_ONE, &migrate_s),
    BLOCK("reschedule", "Reschedule", B_ONE, &reschedule_s),
    BLOCK("periodic", "Periodic", B_ONE, &periodic_s),
    BLOCK("parameterized", "ParameterizedJob", B_ONE, &parameterized_s),
    BLOCK("vault", "_Vault", B_ONE, &vault_s),
    LBLOCK("group", "TaskGroups", B_LABELED, &group_s, "Name"),
};
SCHEMA(job, NULL);

/* Keys of common drivers' config: written at task level by mistake, they
 * get a hint instead of a bare "unknown attribute". */
static const char *const driver_keys[] = {
    "image",   "command",      "args",       "ports",     "volumes",
    "entrypoint", "network_mode", "mount",   "labels",    "auth",
    "work_dir", "privileged",  "cap_add",    "cap_drop",  "hostname",
    "dns_servers", "force_pull", "pid_mode", "ipc_mode",  "mounts",
};

/* ---- errors ---- */

static const char *kind_name(enum hcl_kind k)
{
    switch (k) {
    case HCL_NULL:
        return "null";
    case HCL_BOOL:
        return "bool";
    case HCL_NUMBER:
        return "number";
    case HCL_STRING:
        return "string";
    case HCL_LIST:
        return "list";
    case HCL_OBJECT:
        return "object";
    case HCL_EXPR:
        return "expression";
    }
    return "value";
}

static int hfail(struct hctx *c, struct hcl_pos pos, const char *leaf,
                 const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* "file:line:col: path[ > leaf]: message" */
static int hfail(struct hctx *c, struct hcl_pos pos, const char *leaf,
                 const char *fmt, ...)
{
    struct nc_buf b = {0};
    nc_buf_printf(&b, "%s:%d:%d: ", c->filename, pos.line, pos.col);
    if (c->h.len)
        nc_buf_puts(&b, c->h.data);
    if (leaf)
        nc_buf_printf(&b, "%s%s", c->h.len ? " > " : "", leaf);
    if (c->h.len || leaf)
        nc_buf_puts(&b, ": ");
    va_list ap;
    va_start(ap, fmt);
    nc_buf_vprintf(&b, fmt, ap);
    va_end(ap);
    nc_error_set(c->err, -EINVAL, "%s", b.data);
    nc_buf_free(&b);
    return -EINVAL;
}

/* Expression text, shortened for messages. */
static char *short_text(const char *s)
{
    if (!s)
        return xstrdup("");
    size_t n = strlen(s);
    if (n <= 40)
        return xstrdup(s);
    char *t = xmalloc(44);
    memcpy(t, s, 40);
    memcpy(t + 40, "...", 4);
    return t;
}

static int type_error(struct hctx *c, const struct hcl_item *it,
                      const struct hcl_value *v, const char *want)
{
    if (v->kind == HCL_EXPR) {
        char *t = short_text(v->str);
        hfail(c, v->pos, it->name,
              "expected %s, got expression %s (variables, functions and "
              "operators are not evaluated by this node)",
              want, t);
        free(t);
        return -EINVAL;
    }
    return hfail(c, v->pos, it->name, "expected %s, got %s", want,
                 kind_name(v->kind));
}

/* Levenshtein distance, for "did you mean"; names are short. */
static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 64 || lb > 64)
        return 99;
    size_t prev[65], cur[65];
    for (size_t j = 0; j <= lb; j++)
        prev[j] = j;
    for (size_t i = 1; i <= la; i++) {
        cur[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t del = prev[j] + 1, ins = cur[j - 1] + 1;
            size_t sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
            cur[j] = del < ins ? del : ins;
            if (sub < cur[j])
                cur[j] = sub;
        }
        memcpy(prev, cur, sizeof(prev));
    }
    return prev[lb];
}

static const char *closest(const char *name, const char *const *cands,
                           size_t n, size_t stride)
{
    const char *best = NULL;
    size_t bestd = 3;
    for (size_t i = 0; i < n; i++) {
        const char *cand = *(const char *const *)((const char *)cands +
                                                   i * stride);
        if (cand[0] == '_')
            continue;
        size_t d = edit_distance(name, cand);
        if (d < bestd) {
            bestd = d;
            best = cand;
        }
    }
    return best;
}

static int unknown_item(struct hctx *c, const struct hschema *s,
                        const struct hcl_item *it)
{
    const char *what = it->type == HCL_ATTRIBUTE ? "attribute" : "block";
    const char *best = closest(it->name, &s->fields[0].name, s->n,
                               sizeof(struct hfield));
    if (best)
        return hfail(c, it->pos, NULL, "unknown %s \"%s\"; did you mean \"%s\"?",
                     what, it->name, best);
    if (s->driver_hint) {
        const char *dk = closest(it->name, driver_keys,
                                 NC_ARRAY_LEN(driver_keys), sizeof(char *));
        if (dk && strcmp(dk, it->name) == 0)
            return hfail(c, it->pos, NULL,
                         "unknown %s \"%s\"; driver options go inside the "
                         "config block",
                         what, it->name);
        if (dk)
            return hfail(c, it->pos, NULL,
                         "unknown %s \"%s\"; did you mean \"%s\"? (driver "
                         "options go inside the config block)",
                         what, it->name, dk);
    }
    return hfail(c, it->pos, NULL, "unknown %s \"%s\"", what, it->name);
}

/* ---- small helpers ---- */

static void record(struct hctx *c, struct hcl_pos pos)
{
    js_posmap_add(c->pos, c->j.data ? c->j.data : "Job", pos);
}

static json_t *new_string(struct hctx *c, const char *s, struct hcl_pos pos,
                          const char *leaf)
{
    json_t *j = json_string(s ? s : "");
    if (!j)
        hfail(c, pos, leaf, "string is not valid UTF-8");
    return j;
}

/* Sets obj[key] = v (stolen), failing on keys that are not UTF-8. */
static int put(struct hctx *c, json_t *obj, const char *key, json_t *v,
               struct hcl_pos pos, const char *leaf)
{
    if (json_object_set_new(obj, key, v) < 0)
        return hfail(c, pos, leaf, "name \"%s\" is not valid UTF-8", key);
    return 0;
}

static bool number_i64(const struct hcl_value *v, int64_t *out)
{
    if (v->kind != HCL_NUMBER)
        return false;
    if (v->is_integer) {
        *out = v->integer;
        return true;
    }
    double d = v->number;
    if (!isfinite(d) || d != floor(d) || d < -9.2e18 || d > 9.2e18)
        return false;
    *out = (int64_t)d;
    return true;
}

static const char *number_text(const struct hcl_value *v, char *buf,
                               size_t len)
{
    if (v->str && *v->str)
        return v->str;
    if (v->is_integer)
        snprintf(buf, len, "%lld", (long long)v->integer);
    else
        snprintf(buf, len, "%.17g", v->number);
    return buf;
}

/* A number where a string is wanted (env, meta, constraint values): the
 * text hcl/v2 gives it, "1e3" -> "1000", not the text as written. */
static json_t *number_string(struct hctx *c, const struct hcl_value *v,
                             const char *leaf)
{
    char *text = hcl_number_text(v);
    if (!text) {
        hfail(c, v->pos, leaf,
              "number %s is too long to convert to a string (more than %d "
              "characters)",
              v->str ? v->str : "", HCL_NUMBER_TEXT_MAX);
        return NULL;
    }
    json_t *j = json_string(text);
    free(text);
    return j;
}

/* ---- opaque values (driver config, policies) ---- */

static int opaque_body(struct hctx *c, const struct hcl_body *b, json_t *obj,
                       const char *leaf, int depth);

static int opaque_value(struct hctx *c, const struct hcl_value *v,
                        const char *leaf, int depth, json_t **out)
{
    *out = NULL;
    if (depth > JS_MAX_DEPTH)
        return hfail(c, v->pos, leaf, "nested deeper than %d levels",
                     JS_MAX_DEPTH);
    switch (v->kind) {
    case HCL_NULL:
        *out = json_null();
        return 0;
    case HCL_BOOL:
        *out = json_boolean(v->boolean);
        return 0;
    case HCL_NUMBER: {
        int64_t n;
        /* Nomad keeps whole numbers as integers, others as floats */
        if (number_i64(v, &n))
            *out = json_integer(n);
        else if (isfinite(v->number))
            *out = json_real(v->number);
        else
            return hfail(c, v->pos, leaf, "number out of range");
        return 0;
    }
    case HCL_STRING:
        *out = new_string(c, v->str, v->pos, leaf);
        return *out ? 0 : -EINVAL;
    case HCL_LIST: {
        json_t *a = json_array();
        for (size_t i = 0; i < v->n; i++) {
            json_t *e;
            if (opaque_value(c, v->items[i], leaf, depth + 1, &e) < 0) {
                json_decref(a);
                return -EINVAL;
            }
            json_array_append_new(a, e);
        }
        *out = a;
        return 0;
    }
    case HCL_OBJECT: {
        json_t *o = json_object();
        for (size_t i = 0; i < v->n; i++) {
            json_t *e;
            if (json_object_get(o, v->keys[i])) {
                json_decref(o);
                return hfail(c, v->key_pos ? v->key_pos[i] : v->pos, leaf,
                             "duplicate key \"%s\"", v->keys[i]);
            }
            if (opaque_value(c, v->items[i], leaf, depth + 1, &e) < 0 ||
                put(c, o, v->keys[i], e, v->pos, leaf) < 0) {
                json_decref(o);
                return -EINVAL;
            }
        }
        *out = o;
        return 0;
    }
    case HCL_EXPR: {
        char *t = short_text(v->str);
        hfail(c, v->pos, leaf,
              "expression %s is not supported (variables, functions and "
              "operators are not evaluated by this node)",
              t);
        free(t);
        return -EINVAL;
    }
    }
    return hfail(c, v->pos, leaf, "unsupported value");
}

/* Nomad (jobspec2 BlocksAsAttrs): an attribute whose value is an object
 * becomes a one-element list; each block becomes an object appended to
 * the list under its type; labels nest it as {label: [object]}. */
static int opaque_body(struct hctx *c, const struct hcl_body *b, json_t *obj,
                       const char *leaf, int depth)
{
    if (depth > JS_MAX_DEPTH)
        return hfail(c, b->pos, leaf, "nested deeper than %d levels",
                     JS_MAX_DEPTH);
    json_t *from_blocks = json_object(); /* keys filled by blocks */
    int r = 0;
    for (size_t i = 0; i < b->n && r == 0; i++) {
        const struct hcl_item *it = &b->items[i];
        json_t *prev = json_object_get(obj, it->name);
        if (it->type == HCL_ATTRIBUTE) {
            if (prev) {
                r = hfail(c, it->pos, leaf, "duplicate \"%s\"", it->name);
                break;
            }
            json_t *v;
            if ((r = opaque_value(c, it->value, leaf, depth + 1, &v)) < 0)
                break;
            if (json_is_object(v) && it->value->kind == HCL_OBJECT) {
                json_t *wrap = json_array();
                json_array_append_new(wrap, v);
                v = wrap;
            }
            r = put(c, obj, it->name, v, it->pos, leaf);
            continue;
        }
        if (prev && !json_object_get(from_blocks, it->name)) {
            r = hfail(c, it->pos, leaf, "duplicate \"%s\"", it->name);
            break;
        }
        json_t *bo = json_object();
        if ((r = opaque_body(c, it->body, bo, leaf, depth + 1)) < 0) {
            json_decref(bo);
            break;
        }
        for (size_t l = it->nlabels; l-- > 0;) {
            json_t *wrap = json_object(), *list = json_array();
            json_array_append_new(list, bo);
            if ((r = put(c, wrap, it->labels[l], list, it->pos, leaf)) < 0) {
                json_decref(wrap);
                bo = NULL;
                break;
            }
            bo = wrap;
        }
        if (r < 0) {
            json_decref(bo);
            break;
        }
        if (!prev) {
            prev = json_array();
            if ((r = put(c, obj, it->name, prev, it->pos, leaf)) < 0) {
                json_decref(bo);
                break;
            }
            json_object_set_new(from_blocks, it->name, json_true());
        }
        json_array_append_new(prev, bo);
    }
    json_decref(from_blocks);
    return r;
}

/* ---- typed attributes ---- */

static int conv_attr(struct hctx *c, const struct hcl_item *it,
                     enum akind kind, json_t **out)
{
    const struct hcl_value *v = it->value;
    char nb[64];
    int64_t n;
    *out = NULL;
    switch (kind) {
    case A_NONE:
        break;
    case A_STRING:
        if (v->kind != HCL_STRING)
            return type_error(c, it, v, "a string");
        *out = new_string(c, v->str, v->pos, it->name);
        return *out ? 0 : -EINVAL;
    case A_SCALAR:
        if (v->kind == HCL_STRING)
            *out = new_string(c, v->str, v->pos, it->name);
        else if (v->kind == HCL_NUMBER)
            *out = number_string(c, v, it->name);
        else if (v->kind == HCL_BOOL)
            *out = json_string(v->boolean ? "true" : "false");
        else
            return type_error(c, it, v, "a string");
        return *out ? 0 : -EINVAL;
    case A_INT:
    case A_INT64:
        if (v->kind != HCL_NUMBER)
            return type_error(c, it, v, "a number");
        if (!number_i64(v, &n))
            return hfail(c, v->pos, it->name, "expected a whole number, got %s",
                         number_text(v, nb, sizeof(nb)));
        if (kind == A_INT && (n < -2147483648LL || n > 2147483647LL))
            return hfail(c, v->pos, it->name, "number %lld is out of range",
                         (long long)n);
        *out = json_integer(n);
        return 0;
    case A_BOOL:
        if (v->kind != HCL_BOOL)
            return type_error(c, it, v, "a bool");
        *out = json_boolean(v->boolean);
        return 0;
    case A_DURATION:
        if (v->kind == HCL_NUMBER && number_i64(v, &n)) {
            *out = json_integer(n); /* nanoseconds, as Nomad accepts */
            return 0;
        }
        if (v->kind != HCL_STRING)
            return type_error(c, it, v, "a duration string like \"10s\"");
        int r = nc_parse_duration(v->str, &n);
        if (r == -ERANGE)
            return hfail(c, v->pos, it->name, "duration \"%s\" is too large",
                         v->str);
        if (r < 0)
            return hfail(c, v->pos, it->name,
                         "invalid duration \"%s\"; use a number and a unit, "
                         "like \"10s\" or \"1m30s\"",
                         v->str);
        *out = json_integer(n);
        return 0;
    case A_STRLIST:
    case A_INTLIST: {
        bool ints = kind == A_INTLIST;
        const char *want = ints ? "a list of numbers" : "a list of strings";
        if (v->kind != HCL_LIST)
            return type_error(c, it, v, want);
        json_t *a = json_array();
        for (size_t i = 0; i < v->n; i++) {
            const struct hcl_value *e = v->items[i];
            json_t *x = NULL;
            if (!ints && e->kind == HCL_STRING)
                x = new_string(c, e->str, e->pos, it->name);
            else if (ints && number_i64(e, &n))
                x = json_integer(n);
            else if (e->kind == HCL_EXPR) {
                json_decref(a);
                return type_error(c, it, e, want);
            } else {
                json_decref(a);
                return hfail(c, e->pos, it->name, "expected %s, got a list "
                             "containing %s", want, kind_name(e->kind));
            }
            if (!x) {
                json_decref(a);
                return -EINVAL;
            }
            json_array_append_new(a, x);
        }
        *out = a;
        return 0;
    }
    case A_STRMAP: {
        if (v->kind != HCL_OBJECT)
            return type_error(c, it, v, "an object of strings");
        json_t *o = json_object();
        for (size_t i = 0; i < v->n; i++) {
            const struct hcl_value *e = v->items[i];
            struct hcl_pos kp = v->key_pos ? v->key_pos[i] : e->pos;
            json_t *x = NULL;
            if (json_object_get(o, v->keys[i])) {
                json_decref(o);
                return hfail(c, kp, it->name, "duplicate key \"%s\"",
                             v->keys[i]);
            }
            if (e->kind == HCL_STRING)
                x = new_string(c, e->str, e->pos, it->name);
            else if (e->kind == HCL_NUMBER)
                x = number_string(c, e, it->name);
            else if (e->kind == HCL_BOOL)
                x = json_string(e->boolean ? "true" : "false");
            else {
                json_decref(o);
                return hfail(c, e->pos, it->name,
                             "value of \"%s\": expected a string, got %s",
                             v->keys[i], kind_name(e->kind));
            }
            if (!x || put(c, o, v->keys[i], x, kp, it->name) < 0) {
                json_decref(o);
                return -EINVAL;
            }
        }
        *out = o;
        return 0;
    }
    }
    return hfail(c, it->pos, it->name, "unsupported attribute kind");
}

/* meta { k = "v" } / env { ... }: attributes only, values become text. */
static int strmap_block(struct hctx *c, const struct hcl_item *blk,
                        json_t **out)
{
    json_t *o = json_object();
    for (size_t i = 0; i < blk->body->n; i++) {
        const struct hcl_item *it = &blk->body->items[i];
        if (it->type != HCL_ATTRIBUTE) {
            json_decref(o);
            return hfail(c, it->pos, blk->name,
                         "unexpected block \"%s\"; %s takes name = \"value\" "
                         "pairs",
                         it->name, blk->name);
        }
        if (json_object_get(o, it->name)) {
            json_decref(o);
            return hfail(c, it->pos, blk->name, "duplicate key \"%s\"",
                         it->name);
        }
        const struct hcl_value *e = it->value;
        json_t *x;
        if (e->kind == HCL_STRING)
            x = new_string(c, e->str, e->pos, blk->name);
        else if (e->kind == HCL_NUMBER)
            x = number_string(c, e, blk->name);
        else if (e->kind == HCL_BOOL)
            x = json_string(e->boolean ? "true" : "false");
        else {
            struct hcl_item fake = *it;
            json_decref(o);
            size_t mark = c->h.len;
            if (c->h.len)
                nc_buf_puts(&c->h, " > ");
            nc_buf_puts(&c->h, blk->name);
            type_error(c, &fake, e, "a string");
            js_buf_truncate(&c->h, mark);
            return -EINVAL;
        }
        if (!x || put(c, o, it->name, x, it->pos, blk->name) < 0) {
            json_decref(o);
            return -EINVAL;
        }
    }
    *out = o;
    return 0;
}

/* header { Authorization = ["Basic ..."] } */
static int header_block(struct hctx *c, const struct hcl_item *blk,
                        json_t **out)
{
    json_t *o = json_object();
    for (size_t i = 0; i < blk->body->n; i++) {
        const struct hcl_item *it = &blk->body->items[i];
        if (it->type != HCL_ATTRIBUTE) {
            json_decref(o);
            return hfail(c, it->pos, "header",
                         "unexpected block \"%s\"; header takes Name = "
                         "[\"value\"] pairs",
                         it->name);
        }
        json_t *vals;
        if (json_object_get(o, it->name)) {
            json_decref(o);
            return hfail(c, it->pos, "header", "duplicate header \"%s\"",
                         it->name);
        }
        size_t mark = c->h.len;
        nc_buf_puts(&c->h, c->h.len ? " > header" : "header");
        int r = conv_attr(c, it, A_STRLIST, &vals);
        js_buf_truncate(&c->h, mark);
        if (r < 0 || put(c, o, it->name, vals, it->pos, "header") < 0) {
            json_decref(o);
            return -EINVAL;
        }
    }
    *out = o;
    return 0;
}

/* ---- blocks ---- */

static int conv_body(struct hctx *c, const struct hschema *s,
                     const struct hcl_body *b, json_t *obj);

static const struct hcl_value *body_attr(const struct hcl_body *b,
                                         const char *name)
{
    for (size_t i = 0; i < b->n; i++)
        if (b->items[i].type == HCL_ATTRIBUTE &&
            strcmp(b->items[i].name, name) == 0)
            return b->items[i].value;
    return NULL;
}

static int need_labels(struct hctx *c, const struct hcl_item *it, size_t min,
                       size_t max)
{
    if (it->nlabels >= min && it->nlabels <= max)
        return 0;
    if (max == 0)
        return hfail(c, it->pos, NULL, "%s block takes no labels, got %zu",
                     it->name, it->nlabels);
    if (it->nlabels == 0)
        return hfail(c, it->pos, NULL,
                     "%s block needs a name: %s \"name\" { ... }", it->name,
                     it->name);
    return hfail(c, it->pos, NULL, "%s block takes one label, got %zu",
                 it->name, it->nlabels);
}

/* Converts one block into a new object, with the human and JSON paths
 * already extended by the caller. */
static int block_object(struct hctx *c, const struct hschema *s,
                        const struct hcl_item *it, json_t **out)
{
    *out = NULL;
    if (++c->depth > JS_MAX_DEPTH) {
        c->depth--;
        return hfail(c, it->pos, NULL, "nested deeper than %d levels",
                     JS_MAX_DEPTH);
    }
    json_t *o = json_object();
    record(c, it->pos);
    int r = conv_body(c, s, it->body, o);
    c->depth--;
    if (r < 0) {
        json_decref(o);
        return r;
    }
    *out = o;
    return 0;
}

/* Appends o to obj[key] (a list). */
static void append(json_t *obj, const char *key, json_t *o)
{
    json_t *list = json_object_get(obj, key);
    if (!json_is_array(list)) {
        list = json_array();
        json_object_set_new(obj, key, list);
    }
    json_array_append_new(list, o);
}

static size_t list_len(const json_t *obj, const char *key)
{
    return json_array_size(json_object_get(obj, key));
}

/* Human path piece for an unlabeled repeated block: its name when it is
 * alone, "name[i]" otherwise, or name "x" for named services/checks. */
static void list_segment(struct hctx *c, const struct hcl_item *it, size_t i,
                         size_t count)
{
    const struct hcl_value *nm = NULL;
    if (strcmp(it->name, "service") == 0 || strcmp(it->name, "check") == 0)
        nm = body_attr(it->body, "name");
    if (nm && nm->kind == HCL_STRING)
        js_seg_named(&c->h, it->name, nm->str);
    else
        js_seg_index(&c->h, it->name, i, count);
}

/* o[key] = the block's label; frees o on failure. */
static int set_label(struct hctx *c, json_t *o, const char *key,
                     const struct hcl_item *it)
{
    json_t *label = new_string(c, it->labels[0], it->pos, NULL);
    if (!label) {
        json_decref(o);
        return -EINVAL;
    }
    json_object_set_new(o, key, label);
    return 0;
}

static int conv_block(struct hctx *c, const struct hfield *f,
                      const struct hcl_item *it, json_t *obj, size_t index,
                      size_t count)
{
    size_t hmark = c->h.len, jmark = c->j.len;
    json_t *o = NULL;
    int r = 0;
    switch ((enum bkind)f->block) {
    case B_NONE:
        return -EINVAL;
    case B_ONE:
        if ((r = need_labels(c, it, 0, 0)) < 0)
            return r;
        js_seg_named(&c->h, it->name, NULL);
        nc_buf_printf(&c->j, ".%s", f->key);
        if ((r = block_object(c, f->sub, it, &o)) == 0)
            json_object_set_new(obj, f->key, o);
        break;
    case B_LIST:
        if ((r = need_labels(c, it, 0, 0)) < 0)
            return r;
        list_segment(c, it, index, count);
        nc_buf_printf(&c->j, ".%s[%zu]", f->key, list_len(obj, f->key));
        if ((r = block_object(c, f->sub, it, &o)) == 0)
            append(obj, f->key, o);
        break;
    case B_LABELED:
        if ((r = need_labels(c, it, 1, 1)) < 0)
            return r;
        if (strcmp(it->name, "group") == 0)
            js_buf_truncate(&c->h, 0); /* group paths start at the group */
        js_seg_named(&c->h, it->name, it->labels[0]);
        nc_buf_printf(&c->j, ".%s[%zu]", f->key, list_len(obj, f->key));
        if ((r = block_object(c, f->sub, it, &o)) < 0)
            break;
        if ((r = set_label(c, o, f->label_key, it)) < 0)
            break;
        append(obj, f->key, o);
        break;
    case B_LABELED_MAP: {
        if ((r = need_labels(c, it, 1, 1)) < 0)
            return r;
        json_t *map = json_object_get(obj, f->key);
        if (json_object_get(map, it->labels[0])) {
            r = hfail(c, it->pos, NULL, "duplicate %s \"%s\"", it->name,
                      it->labels[0]);
            break;
        }
        js_seg_named(&c->h, it->name, it->labels[0]);
        nc_buf_printf(&c->j, ".%s[\"%s\"]", f->key, it->labels[0]);
        if ((r = block_object(c, f->sub, it, &o)) < 0)
            break;
        if ((r = set_label(c, o, f->label_key, it)) < 0)
            break;
        if (!map) {
            map = json_object();
            json_object_set_new(obj, f->key, map);
        }
        r = put(c, map, it->labels[0], o, it->pos, NULL);
        break;
    }
    case B_STRMAP:
        if ((r = need_labels(c, it, 0, 0)) < 0)
            return r;
        nc_buf_printf(&c->j, ".%s", f->key);
        record(c, it->pos);
        if ((r = strmap_block(c, it, &o)) == 0)
            json_object_set_new(obj, f->key, o);
        break;
    case B_OPAQUE:
        if ((r = need_labels(c, it, 0, 0)) < 0)
            return r;
        nc_buf_printf(&c->j, ".%s", f->key);
        record(c, it->pos);
        o = json_object();
        if ((r = opaque_body(c, it->body, o, it->name, c->depth + 1)) == 0)
            json_object_set_new(obj, f->key, o);
        else
            json_decref(o);
        break;
    case B_HEADER:
        if ((r = need_labels(c, it, 0, 0)) < 0)
            return r;
        nc_buf_printf(&c->j, ".%s", f->key);
        record(c, it->pos);
        if ((r = header_block(c, it, &o)) == 0)
            json_object_set_new(obj, f->key, o);
        break;
    case B_PORT: {
        if ((r = need_labels(c, it, 1, 1)) < 0)
            return r;
        /* A port with a static value is a reserved port (Nomad's
         * normalizeNetworkPorts); checked before converting so the
         * recorded path is the final one. */
        const struct hcl_value *st = body_attr(it->body, "static");
        int64_t sv = 0;
        bool reserved = st && number_i64(st, &sv) && sv != 0;
        const char *key = reserved ? "ReservedPorts" : "DynamicPorts";
        js_seg_named(&c->h, it->name, it->labels[0]);
        nc_buf_printf(&c->j, ".%s[%zu]", key, list_len(obj, key));
        if ((r = block_object(c, f->sub, it, &o)) < 0)
            break;
        if ((r = set_label(c, o, f->label_key, it)) < 0)
            break;
        append(obj, key, o);
        break;
    }
    case B_SCALING: {
        if ((r = need_labels(c, it, 0, 1)) < 0)
            return r;
        const char *type = "horizontal";
        if (it->nlabels) {
            if (strcmp(it->labels[0], "cpu") == 0)
                type = "vertical_cpu";
            else if (strcmp(it->labels[0], "mem") == 0)
                type = "vertical_mem";
            else
                return hfail(c, it->pos, NULL,
                             "scaling policy name must be \"cpu\" or \"mem\", "
                             "got \"%s\"",
                             it->labels[0]);
            js_seg_named(&c->h, it->name, it->labels[0]);
        } else {
            js_seg_index(&c->h, it->name, index, count);
        }
        json_t *list = json_object_get(obj, f->key);
        size_t i;
        json_t *prev;
        json_array_foreach(list, i, prev)
        {
            if (nc_streq(json_string_value(json_object_get(prev, "Type")),
                         type)) {
                r = hfail(c, it->pos, NULL,
                          "only one %s scaling block is allowed",
                          it->nlabels ? it->labels[0] : "unlabeled");
                break;
            }
        }
        if (r < 0)
            break;
        nc_buf_printf(&c->j, ".%s[%zu]", f->key, list_len(obj, f->key));
        if ((r = block_object(c, f->sub, it, &o)) < 0)
            break;
        const char *given = json_string_value(json_object_get(o, "Type"));
        if (given && strcmp(given, type) != 0 && it->nlabels) {
            json_decref(o);
            r = hfail(c, it->pos, NULL,
                      "invalid policy type, expected \"%s\" but found \"%s\"",
                      type, given);
            break;
        }
        if (!given)
            json_object_set_new(o, "Type", json_string(type));
        append(obj, f->key, o);
        break;
    }
    }
    js_buf_truncate(&c->h, hmark);
    js_buf_truncate(&c->j, jmark);
    return r;
}

static int conv_body(struct hctx *c, const struct hschema *s,
                     const struct hcl_body *b, json_t *obj)
{
    /* seen[i]: position of the attribute or single block already given */
    const struct hcl_item **seen = xcalloc(s->n, sizeof(*seen));
    size_t *count = xcalloc(s->n, sizeof(*count));
    size_t *index = xcalloc(s->n, sizeof(*index));
    int r = 0;
    for (size_t i = 0; i < b->n; i++)
        for (size_t f = 0; f < s->n; f++)
            if (strcmp(b->items[i].name, s->fields[f].name) == 0 &&
                b->items[i].type == HCL_BLOCK)
                count[f]++;
    for (size_t i = 0; i < b->n && r == 0; i++) {
        const struct hcl_item *it = &b->items[i];
        const struct hfield *f = NULL;
        size_t fi = 0;
        for (; fi < s->n; fi++) {
            if (strcmp(it->name, s->fields[fi].name) == 0 &&
                (s->fields[fi].attr || s->fields[fi].block)) {
                f = &s->fields[fi];
                break;
            }
        }
        if (!f) {
            r = unknown_item(c, s, it);
            break;
        }
        bool single = it->type == HCL_ATTRIBUTE || f->block == B_ONE ||
                      f->block == B_STRMAP || f->block == B_OPAQUE ||
                      f->block == B_HEADER;
        if (single && seen[fi]) {
            r = hfail(c, it->pos, NULL,
                      "duplicate %s \"%s\"; it was already defined at %d:%d",
                      it->type == HCL_ATTRIBUTE ? "attribute" : "block",
                      it->name, seen[fi]->pos.line, seen[fi]->pos.col);
            break;
        }
        seen[fi] = it;
        if (it->type == HCL_ATTRIBUTE) {
            if (!f->attr) {
                r = hfail(c, it->pos, NULL,
                          "\"%s\" is a block, not an attribute; write %s { "
                          "... }",
                          it->name, it->name);
                break;
            }
            json_t *v;
            size_t jmark = c->j.len;
            nc_buf_printf(&c->j, ".%s", f->key);
            js_posmap_add(c->pos, c->j.data, it->value->pos);
            js_buf_truncate(&c->j, jmark);
            if (f->key[0] == '_' && strcmp(f->key, "_Vault") != 0) {
                /* a constraint shortcut fills Operand and a target */
                nc_buf_puts(&c->j, ".Operand");
                js_posmap_add(c->pos, c->j.data, it->value->pos);
                js_buf_truncate(&c->j, jmark);
                nc_buf_puts(&c->j, strcmp(f->key, "_distinct_property") == 0
                                       ? ".LTarget"
                                       : ".RTarget");
                js_posmap_add(c->pos, c->j.data, it->value->pos);
                js_buf_truncate(&c->j, jmark);
            }
            r = conv_attr(c, it, (enum akind)f->attr, &v);
            if (r == 0)
                json_object_set_new(obj, f->key, v);
            continue;
        }
        if (!f->block) {
            r = hfail(c, it->pos, NULL,
                      "\"%s\" is an attribute, not a block; write %s = ...",
                      it->name, it->name);
            break;
        }
        r = conv_block(c, f, it, obj, index[fi]++, count[fi]);
    }
    free(seen);
    free(count);
    free(index);
    if (r == 0 && s->post)
        r = s->post(c, obj, b);
    return r;
}

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

static int post_constraint(struct hctx *c, json_t *obj,
                           const struct hcl_body *body)
{
    static const char *const order[] = {
        "version", "semver", "regexp", "set_contains", "set_contains_all",
        "set_contains_any", "distinct_hosts", "distinct_property"};
    (void)c;
    (void)body;
    return shortcuts(obj, order, NC_ARRAY_LEN(order));
}

static int post_affinity(struct hctx *c, json_t *obj,
                         const struct hcl_body *body)
{
    static const char *const order[] = {"version", "semver", "regexp",
                                        "set_contains_any", "set_contains_all",
                                        "set_contains"};
    (void)c;
    (void)body;
    return shortcuts(obj, order, NC_ARRAY_LEN(order));
}

static int post_periodic(struct hctx *c, json_t *obj,
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
static void spread_vault(json_t *group, const json_t *vault)
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

static int post_group(struct hctx *c, json_t *obj, const struct hcl_body *body)
{
    (void)c;
    (void)body;
    json_t *v = json_object_get(obj, "_Vault");
    if (v) {
        spread_vault(obj, v);
        json_object_del(obj, "_Vault");
    }
    return 0;
}

/* ---- top level ---- */

int js_hcl_to_api(const struct hcl_file *file, struct js_posmap *pos,
                  json_t **out, json_t **job_vault, struct nc_error *err)
{
    *out = NULL;
    *job_vault = NULL;
    const char *filename = file->filename ? file->filename : "job.nomad";
    struct hctx c = {.pos = pos, .err = err, .filename = filename};
    const struct hcl_body *top = file->body;
    const struct hcl_item *jobblk = NULL;
    int r = 0;
    static const char *const top_names[] = {"job"};
    for (size_t i = 0; top && i < top->n && r == 0; i++) {
        const struct hcl_item *it = &top->items[i];
        if (it->type == HCL_BLOCK && strcmp(it->name, "job") == 0) {
            if (jobblk)
                r = hfail(&c, it->pos, NULL,
                          "only one job block is allowed per file (the first "
                          "is at %d:%d)",
                          jobblk->pos.line, jobblk->pos.col);
            jobblk = it;
        } else if (strcmp(it->name, "variable") == 0 ||
                   strcmp(it->name, "variables") == 0 ||
                   strcmp(it->name, "locals") == 0) {
            r = hfail(&c, it->pos, NULL,
                      "%s blocks are not supported by this node: write the "
                      "values into the job",
                      it->name);
        } else {
            const char *best =
                closest(it->name, top_names, 1, sizeof(char *));
            if (best)
                r = hfail(&c, it->pos, NULL,
                          "unknown %s \"%s\"; did you mean \"job\"?",
                          it->type == HCL_ATTRIBUTE ? "attribute" : "block",
                          it->name);
            else
                r = hfail(&c, it->pos, NULL,
                          "unexpected %s \"%s\" at top level; a job file "
                          "holds one job \"name\" { ... } block",
                          it->type == HCL_ATTRIBUTE ? "attribute" : "block",
                          it->name);
        }
    }
    if (r < 0)
        return r;
    if (!jobblk) {
        struct hcl_pos p = {1, 1};
        return hfail(&c, p, NULL,
                     "no job block found; a job file holds one job \"name\" "
                     "{ ... } block");
    }
    if (jobblk->nlabels == 0)
        return hfail(&c, jobblk->pos, NULL,
                     "job block needs a name: job \"name\" { ... }");
    if (jobblk->nlabels > 1)
        return hfail(&c, jobblk->pos, NULL,
                     "job block takes one label (the job ID), got %zu",
                     jobblk->nlabels);
    c.job_id = jobblk->labels[0];
    json_t *root = json_object();
    json_t *id = new_string(&c, jobblk->labels[0], jobblk->pos, NULL);
    if (!id) {
        json_decref(root);
        return -EINVAL;
    }
    json_object_set_new(root, "ID", id);
    nc_buf_puts(&c.j, "Job");
    js_seg_named(&c.h, "job", jobblk->labels[0]);
    record(&c, jobblk->pos);
    r = conv_body(&c, &job_s, jobblk->body, root);
    nc_buf_free(&c.h);
    nc_buf_free(&c.j);
    if (r < 0) {
        json_decref(root);
        return r;
    }
    if (!json_object_get(root, "Name"))
        json_object_set(root, "Name", id);
    json_t *v = json_object_get(root, "_Vault");
    if (v) {
        size_t i;
        json_t *g;
        json_array_foreach(json_object_get(root, "TaskGroups"), i, g)
            spread_vault(g, v);
        *job_vault = json_incref(v);
        json_object_del(root, "_Vault");
    }
    *out = root;
    return 0;
}
