# Exercises most of what the job model accepts.
job "full" {
  region      = "eu"
  namespace   = "apps"
  datacenters = ["dc1", "dc2"]
  type        = "service"
  priority    = 70
  all_at_once = false
  node_pool   = "edge"

  meta {
    team = "core"
    tier = 2
  }

  constraint {
    attribute = "${attr.kernel.name}"
    value     = "linux"
  }

  constraint {
    attribute = "${attr.os.version}"
    version   = ">= 12"
  }

  constraint {
    distinct_hosts = true
  }

  update {
    max_parallel = 2
    stagger      = "45s"
  }

  reschedule {
    delay     = "1m"
    unlimited = true
  }

  group "web" {
    count = 2

    network {
      mode     = "bridge"
      hostname = "web-1"

      dns {
        servers  = ["10.0.0.53"]
        searches = ["svc.local"]
        options  = ["ndots:2"]
      }

      port "http" {
        to = 8080
      }

      port "admin" {
        static       = 9090
        host_network = "private"
      }
    }

    volume "certs" {
      type      = "host"
      source    = "tls-certs"
      read_only = true
    }

    restart {
      attempts = 5
      delay    = "10s"
      mode     = "delay"
    }

    ephemeral_disk {
      size    = 500
      sticky  = true
    }

    update {
      canary       = 1
      auto_promote = true
    }

    shutdown_delay = "5s"

    service {
      name         = "web"
      port         = "http"
      tags         = ["v1", "public"]
      canary_tags  = ["canary"]
      address_mode = "host"
      provider     = "consul"

      meta {
        version = "1"
      }

      check_restart {
        limit = 3
        grace = "30s"
      }

      check {
        name     = "web-alive"
        type     = "http"
        path     = "/healthz"
        interval = "15s"
        timeout  = "3s"
        method   = "POST"
        body     = "{}"

        header {
          Authorization = ["Basic abc"]
          X-Trace       = ["a", "b"]
        }
      }

      check {
        name      = "admin-tcp"
        type      = "tcp"
        port      = "admin"
        interval  = "30s"
        timeout   = "2s"
        on_update = "ignore_warnings"

        check_restart {
          ignore_warnings = true
        }
      }
    }

    task "app" {
      driver       = "docker"
      user         = "nobody"
      kill_timeout = "20s"
      kill_signal  = "SIGTERM"
      leader       = true

      config {
        image   = "example/web:1.0"
        ports   = ["http"]
        args    = ["-port", "8080"]
        labels  = { app = "web" }
        ratio   = 1.5

        mount {
          type   = "bind"
          target = "/etc/certs"
        }

        mount {
          type   = "tmpfs"
          target = "/tmp"
        }
      }

      env = {
        PORT      = 8080
        LOG_LEVEL = "info"
      }

      resources {
        cpu        = 250
        memory     = 128
        memory_max = 256

        device "nvidia/gpu" {
          count = 2

          constraint {
            attribute = "${device.attr.memory}"
            operator  = ">="
            value     = "2 GiB"
          }
        }
      }

      volume_mount {
        volume      = "certs"
        destination = "/etc/certs"
        read_only   = true
      }

      template {
        source        = "local/app.tpl"
        destination   = "local/app.conf"
        change_mode   = "signal"
        change_signal = "sighup"
        splay         = "10s"
        perms         = "0600"
      }

      artifact {
        source      = "https://example.com/app.tar.gz"
        destination = "local/app"

        options {
          checksum = "sha256:abcd"
        }
      }

      logs {
        max_files     = 3
        max_file_size = 20
      }

      restart {
        attempts = 1
      }

      service {
        port = "admin"

        check {
          type     = "script"
          command  = "/bin/check"
          args     = ["-q"]
          interval = "1m"
          timeout  = "5s"
        }
      }
    }

    task "setup" {
      driver = "exec"

      lifecycle {
        hook    = "prestart"
        sidecar = false
      }

      config {
        command = "/bin/true"
      }
    }
  }
}
