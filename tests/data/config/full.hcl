# Every setting nomclient reads, plus some it accepts and ignores.
data_dir   = "/srv/nomclient"
name       = "worker-1"
datacenter = "eu-west-1a"
region     = "europe"
bind_addr  = "10.1.2.3"
log_level  = "debug"
log_json   = true
plugin_dir = "/opt/nomclient/plugins"

enable_debug         = false
disable_update_check = true
leave_on_interrupt   = true
leave_on_terminate   = true

ports {
  http = 5656
  rpc  = 4647
  serf = 4648
}

addresses {
  http = "10.1.2.3"
  rpc  = "10.1.2.3"
}

advertise {
  http = "10.1.2.3:5656"
}

server {
  enabled          = false
  bootstrap_expect = 3
}

client {
  enabled    = true
  node_class = "batch"
  node_pool  = "gpu"
  servers    = ["10.0.0.1:4647", "10.0.0.2:4647"]

  meta {
    rack = "r12"
    tier = 2
  }

  host_volume "data" {
    path      = "/srv/data"
    read_only = false
  }

  host_volume "certs" {
    path      = "/etc/ssl/certs"
    read_only = true
  }

  cni_path              = "/opt/cni/bin"
  cni_config_dir        = "/opt/cni/config"
  bridge_network_name   = "nomclient"
  bridge_network_subnet = "10.99.0.0/16"
  min_dynamic_port      = 21000
  max_dynamic_port      = 22000
  network_interface     = "eth1"
  cpu_total_compute     = 12000
  memory_total_mb       = 32768

  reserved {
    cpu            = 500
    cores          = "0-1,3"
    memory         = 1024
    disk           = 2048
    reserved_ports = "22,80,8000-8100"
  }

  options = {
    "driver.denylist"                         = "docker"
    "fingerprint.network.disallow_link_local" = "true"
  }

  chroot_env = {
    "/bin" = "/bin"
    "/etc" = "/etc"
  }

  gc_interval             = "1m"
  gc_max_allocs           = 50
  gc_disk_usage_threshold = 80
  max_kill_timeout        = "30s"
}

plugin "raw_exec" {
  config {
    enabled = true
  }
}

plugin "docker" {
  config {
    allow_privileged = false
    volumes {
      enabled = true
    }
  }
}

consul {
  address              = "127.0.0.1:8501"
  token                = "abcd"
  ssl                  = true
  verify_ssl           = false
  ca_file              = "/etc/consul/ca.pem"
  cert_file            = "/etc/consul/cert.pem"
  key_file             = "/etc/consul/key.pem"
  auth                 = "user:pass"
  server_service_name  = "nomad-srv"
  client_service_name  = "nomad-cli"
  auto_advertise       = false
  checks_use_advertise = true
  tags                 = ["edge", "blue"]
  timeout              = "5s"
}

acl {
  enabled   = true
  token_ttl = "30s"
}

telemetry {
  collection_interval        = "10s"
  publish_allocation_metrics = true
  prometheus_metrics         = true
}
