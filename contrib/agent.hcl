# nomclient worker configuration.
#
# Install as /etc/nomclient.d/agent.hcl and start with
#   nomclient agent -config /etc/nomclient.d
# Every *.hcl and *.json file of that directory is read in name order and
# merged as Nomad merges agent files: later files win for single values,
# meta/options/chroot_env are merged key by key, host volumes by name.
# The syntax is Nomad's; keys nomclient does not know are errors.

# State: the client ID, allocations and their directories live here.
data_dir = "/var/lib/nomclient"

# Defaults to the host name.
# name = "worker-1"

datacenter = "dc1"
region     = "global"

# Address the HTTP API listens on; 0.0.0.0 is every interface.
bind_addr = "0.0.0.0"

ports {
  http = 4646
}

# trace, debug, info, warn or error.
log_level = "info"
log_json  = false

client {
  enabled = true

  # Used by job constraints and node pools, as in Nomad.
  # node_class = "batch"
  node_pool = "default"

  meta {
    rack = "r1"
  }

  # Directories of this host that jobs may mount by name:
  #   volume "data" { type = "host", source = "data" }
  host_volume "data" {
    path      = "/srv/data"
    read_only = false
  }

  # Resources kept back for the host itself.
  reserved {
    cpu            = 500  # MHz
    memory         = 512  # MB
    disk           = 1024 # MB
    reserved_ports = "22"
  }

  # `alloc exec` into this node's tasks; true refuses it (as Nomad).
  disable_remote_exec = false

  # Bridge networking and CNI. The plugin path is where Debian's
  # containernetworking-plugins package puts them.
  cni_path              = "/usr/lib/cni"
  cni_config_dir        = "/etc/cni/net.d"
  bridge_network_name   = "nomad"
  bridge_network_subnet = "172.26.64.0/20"

  # Ports handed out to dynamic port labels.
  min_dynamic_port = 20000
  max_dynamic_port = 32000

  # Garbage collection of finished allocations (Nomad's client GC): the
  # oldest terminal ones (complete or failed, every task and network gone)
  # lose their directories, logs and state while the node holds more than
  # gc_max_allocs allocations (running ones count, and are never removed)
  # or data_dir's filesystem is fuller than the thresholds (percent).
  # Checked every gc_interval, after an allocation ends and before one is
  # made; gc_parallel_destroys at once. `agent -dev`: 10m, 99, 99.
  # PUT /v1/client/gc collects every terminal allocation now.
  gc_interval              = "1m"
  gc_disk_usage_threshold  = 80
  gc_inode_usage_threshold = 70
  gc_max_allocs            = 50
  gc_parallel_destroys     = 2

  # Interface whose address is fingerprinted and advertised.
  # network_interface = "eth0"

  # Overrides of what fingerprinting finds.
  # cpu_total_compute = 10000 # MHz
  # memory_total_mb   = 16384

  # What the exec driver copies into a task's chroot (host path = path in
  # the chroot). Empty means the driver's defaults.
  # chroot_env = {
  #   "/bin" = "/bin"
  #   "/etc" = "/etc"
  #   "/lib" = "/lib"
  #   "/usr" = "/usr"
  # }
}

# The capabilities an exec task's cap_add may ask for (a task gets these,
# less its cap_drop, plus its cap_add). Nomad's default set; add e.g.
# "net_raw" for ping, or "all" to leave it to the job.
# plugin "exec" {
#   config {
#     allow_caps = ["audit_write", "chown", "dac_override", "fowner", "fsetid",
#                   "kill", "mknod", "net_bind_service", "setfcap", "setgid",
#                   "setpcap", "setuid", "sys_chroot"]
#   }
# }

# raw_exec runs tasks as the agent's user with no isolation: keep it off
# unless every job submitter is trusted.
plugin "raw_exec" {
  config {
    enabled = false
  }
}

# docker tasks run on the local Docker Engine (API 1.41+). Nomad's keys and
# defaults; the commented values are the defaults.
# plugin "docker" {
#   config {
#     endpoint         = "unix:///var/run/docker.sock"
#     allow_privileged = false
#     volumes {
#       enabled = false        # host paths outside the alloc dir in `volumes`
#     }
#     gc {
#       image       = true
#       image_delay = "3m"
#       container   = true
#       dangling_containers {
#         enabled        = true
#         period         = "5m"
#         creation_grace = "5m"
#       }
#     }
#     infra_image           = "gcr.io/google_containers/pause-amd64:3.1"
#     pull_activity_timeout = "2m"
#     extra_labels          = ["job_name", "task_group_name", "task_name"]
#     auth {
#       config = "/root/.docker/config.json"
#       helper = "ecr-login"
#     }
#   }
# }

# Register services and checks with a local Consul agent. Without a consul
# block (or CONSUL_HTTP_ADDR), services stay in nomclient's own catalog.
# CONSUL_HTTP_TOKEN, CONSUL_CACERT and the like fill what is not set here.
# consul {
#   address    = "127.0.0.1:8500"
#   token      = ""
#   ssl        = false
#   verify_ssl = true
#   ca_file    = "/etc/consul.d/ca.pem"
#   cert_file  = "/etc/consul.d/client.pem"
#   key_file   = "/etc/consul.d/client-key.pem"
# }

# ACL tokens on the HTTP API (standalone: `nomclient acl bootstrap` once).
# token_ttl and policy_ttl are for cluster mode (not yet).
acl {
  enabled    = false
  token_ttl  = "30s"
  policy_ttl = "30s"
}

# HTTPS on the API (OpenSSL, loaded only when http = true). rpc and
# verify_server_hostname are for the server connection (not yet).
# tls {
#   http                = true
#   ca_file             = "/etc/nomclient.d/ca.pem"
#   cert_file           = "/etc/nomclient.d/agent.pem"
#   key_file            = "/etc/nomclient.d/agent-key.pem"
#   verify_https_client = false
#   tls_min_version     = "tls12"
# }

# Connections one client IP may hold at once (Nomad's default 100).
# limits {
#   http_max_conns_per_client = 100
#   https_handshake_timeout   = "5s"
# }
