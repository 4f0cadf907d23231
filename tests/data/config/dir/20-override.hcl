datacenter = "dc-b"
log_level  = "warn"

client {
  meta {
    b = "2"
    c = "2"
  }
  host_volume "data" {
    path = "/srv/b"
  }
  host_volume "logs" {
    path = "/var/log"
  }
  reserved {
    memory = 300
  }
}
