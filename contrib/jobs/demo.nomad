# The demo job that `make run` submits to the dev agent. It uses only what a
# fresh Debian machine has: Python's http.server under raw_exec (enabled by
# -dev), a service with an HTTP check, and, when the agent runs as root, a
# second group on its own bridge network namespace with a mapped port.
job "demo" {
  datacenters = ["*"]
  type        = "service"

  group "hello" {
    count = 1

    network {
      port "http" {}
    }

    service {
      name     = "hello"
      port     = "http"
      provider = "nomad"

      check {
        type     = "http"
        path     = "/"
        interval = "2s"
        timeout  = "2s"
      }
    }

    task "hello" {
      driver = "raw_exec"

      config {
        command = "/usr/bin/python3"
        args    = ["-m", "http.server", "--bind", "127.0.0.1", "${NOMAD_PORT_http}"]
      }

      resources {
        cpu    = 50
        memory = 32
      }
    }
  }
}
