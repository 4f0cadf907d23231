# The demo job that `make run` submits to the dev agent. It uses only what a
# fresh Debian machine has: a shell loop under raw_exec (enabled by -dev).
job "demo" {
  datacenters = ["*"]
  type        = "service"

  group "hello" {
    count = 1

    network {
      port "http" {}
    }

    task "hello" {
      driver = "raw_exec"

      config {
        command = "/bin/sh"
        args    = ["-c", "while true; do echo \"hello from $NOMAD_ALLOC_ID on port $NOMAD_PORT_http\"; sleep 10; done"]
      }

      resources {
        cpu    = 50
        memory = 32
      }
    }
  }
}
