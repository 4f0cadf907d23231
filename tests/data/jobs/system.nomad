job "agentd" {
  type = "system"

  group "agent" {
    network {
      port "metrics" {
        static = 9100
      }
    }

    service {
      name     = "agentd"
      port     = "metrics"
      provider = "nomad"

      check {
        type     = "http"
        path     = "/metrics"
        interval = "10s"
        timeout  = "1s"
      }
    }

    task "agent" {
      driver = "exec"

      config {
        command = "/usr/bin/agentd"
      }
    }
  }
}
