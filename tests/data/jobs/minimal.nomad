job "min" {
  group "g" {
    task "t" {
      driver = "exec"
    }
  }
}
