job "report" {
  type        = "batch"
  datacenters = ["dc1"]

  periodic {
    cron             = "0 3 * * *"
    prohibit_overlap = true
    time_zone        = "Europe/Paris"
  }

  parameterized {
    payload       = "required"
    meta_required = ["customer"]
  }

  group "run" {
    task "report" {
      driver = "raw_exec"

      config {
        command = "/usr/local/bin/report"
      }

    }
  }
}
