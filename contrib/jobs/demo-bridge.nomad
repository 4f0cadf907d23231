# Submitted by `sudo make run` beside demo.nomad: the same server in its own
# network namespace on the `nomad` bridge (172.26.64.0/20), its port 8080
# mapped to a dynamic host port, checked through the mapping.
job "demo-bridge" {
  datacenters = ["*"]

  group "web" {
    network {
      mode = "bridge"
      port "http" {
        to = 8080
      }
    }

    service {
      name     = "web"
      port     = "http"
      provider = "nomad"

      check {
        type     = "http"
        path     = "/"
        interval = "2s"
        timeout  = "2s"
      }
    }

    task "web" {
      driver = "exec"

      config {
        command = "/usr/bin/python3"
        args    = ["-m", "http.server", "8080"]
      }

      resources {
        cpu    = 50
        memory = 64
      }
    }
  }
}
