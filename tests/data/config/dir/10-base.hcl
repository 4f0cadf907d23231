data_dir   = "/srv/merged"
datacenter = "dc-a"

client {
  meta {
    a = "1"
    b = "1"
  }
  host_volume "data" {
    path      = "/srv/a"
    read_only = true
  }
  reserved {
    cpu    = 100
    memory = 200
  }
  options = {
    x = "1"
  }
}

consul {
  address = "consul-a:8500"
}
