#!/bin/sh
# Templates as Nomad renders them, through the real agent in -dev mode
# with raw_exec tasks: the seed's nginx.conf shape rendered with the
# task's env into local/ before the task starts; an env = true file
# reaching the task's environment; a nomadService template rendered again
# when a second job registers the service, restarting the task once after
# splay; error_on_missing_key failing the task with Nomad's message; a
# destination outside the task dir refused.
. "$(dirname "$0")/lib.sh"

data=$TMP/data
cleanup_add "pkill -9 -f 'supervise $data/' ; true"

job() { # NAME TYPE COMMAND EXTRA-HCL (in the task) [DRIVER]
    cat >"$TMP/$1.nomad" <<J
job "$1" {
  type = "$2"
  group "g" {
    restart {
      attempts = 0
      mode     = "fail"
    }
    reschedule {
      attempts  = 0
      unlimited = false
    }
    task "t" {
      driver = "${5:-raw_exec}"
      config {
        command = "/bin/sh"
        args    = ["-c", "$3"]
      }
      kill_timeout = "1s"
$4
    }
  }
}
J
}
alloc_field() {
    curl -s "$ADDR/v1/job/$1/allocations" |
        python3 -c "import json,sys; a=json.load(sys.stdin); x=a[0] if a else {}; print($2)" 2>/dev/null
}
status_is() { [ "$(alloc_field "$1" 'x.get("ClientStatus")')" = "$2" ]; }
events() { alloc_field "$1" "' | '.join(e['Type'] for e in x['TaskStates']['t']['Events'])"; }
messages() { alloc_field "$1" "' | '.join(e['DisplayMessage'] for e in x['TaskStates']['t']['Events'])"; }
alloc_id() { alloc_field "$1" 'x["ID"]'; }
stdout_of() { cat "$data/alloc/$(alloc_id "$1")/alloc/logs/t.stdout.0" 2>/dev/null; }

need_agent "agent starts" tmpl -dev -data-dir "$data"

# ---- the seed's nginx.conf shape, with env values ----
job nginx batch 'cat $NOMAD_TASK_DIR/nginx.conf; stat -c perms=%a:%u:%g $NOMAD_TASK_DIR/nginx.conf' '      template {
        data = <<EOF
events {
    worker_connections 1024;
}
http {
    upstream backend {
        server {{ env "NOMAD_ALLOC_ID" }}:{{ env "NOMAD_UNSET_VAR" }}x;
    }
    server {
        listen 80;
        # {{ env "NOMAD_TASK_NAME" | toUpper }} in {{ env "NOMAD_JOB_NAME" }}
    }
}
EOF
        destination = "local/nginx.conf"
        perms       = "0640"
        uid         = 65534
        gid         = 65534
      }'
out=$("$NOMCLIENT" job run "$TMP/nginx.nomad" 2>&1)
check "a job with a template is accepted without a warning ($out)" [ -z "$(printf '%s' "$out" | grep -i 'template')" ]
check "the task completes" wait_for 10 status_is nginx complete
id=$(alloc_id nginx)
o=$(stdout_of nginx)
check "the file was there when the task started, with the alloc id" contains "$o" "server $id:x;"
check "an unset variable renders as \"\"; pipelines run" contains "$o" "# T in nginx"
check "perms 0640, uid and gid applied" contains "$o" "perms=640:65534:65534"
check "the rendered file is in local/" [ -f "$data/alloc/$id/t/local/nginx.conf" ]

# ---- env = true ----
job envf batch 'echo DB=$DATABASE_URL R=$REDIS_URL Q=$QUOTED; printf %s \"$EXPORTED\" | od -An -c' '      env {
        REDIS_URL = "from-the-task-env"
      }
      template {
        data = <<EOF
# a comment
DATABASE_URL="postgresql://{{ env "NOMAD_TASK_NAME" }}@db/myapp"
REDIS_URL=redis://{{ env "NOMAD_JOB_NAME" }} # trailing comment
QUOTED='"'"'single $quoted'"'"'
export EXPORTED="a\tb"
EOF
        destination = "secrets/config.env"
        env         = true
      }'
"$NOMCLIENT" job run "$TMP/envf.nomad" >/dev/null 2>&1
check "the env file task completes" wait_for 10 status_is envf complete
o=$(stdout_of envf)
check "a double-quoted value reaches the task ($o)" contains "$o" "DB=postgresql://t@db/myapp"
check "an unquoted value with a comment, over the task env" contains "$o" "R=redis://envf "
check "a single-quoted value is literal" contains "$o" 'Q=single $quoted'
check "export prefix and escapes ($o)" contains "$o" 'a  \t   b'

# ---- exec: the files in the chroot, the env file in the supervisor's env ----
job exectask batch 'cat /local/dir.txt; echo MODE=$APP_MODE' '      template {
        data        = "dir={{ env \"NOMAD_TASK_DIR\" }} alloc={{ env \"NOMAD_ALLOC_DIR\" }}"
        destination = "${NOMAD_TASK_DIR}/dir.txt"
      }
      template {
        data        = "APP_MODE={{ env \"NOMAD_JOB_NAME\" }}-mode"
        destination = "secrets/app.env"
        env         = true
      }' exec
"$NOMCLIENT" job run "$TMP/exectask.nomad" >/dev/null 2>&1
check "the exec task completes" wait_for 15 status_is exectask complete
o=$(stdout_of exectask)
check "it read the rendered file inside its chroot, env as it sees it ($o)" contains "$o" "dir=/local alloc=/alloc"
check "the env file reached the supervisor's env" contains "$o" "MODE=exectask-mode"

# ---- nomadService: rendered again when a second job registers it ----
job watcher service 'cat $NOMAD_TASK_DIR/up.conf; echo run >>$NOMAD_ALLOC_DIR/runs; sleep 300' '      template {
        data = <<EOF
{{ range nomadService "tmplweb" }}upstream {{ .Address }}:{{ .Port }}
{{ else }}no upstream
{{ end }}
EOF
        destination = "local/up.conf"
        splay       = "1s"
      }'
"$NOMCLIENT" job run "$TMP/watcher.nomad" >/dev/null 2>&1
check "the watcher runs" wait_for 10 status_is watcher running
wid=$(alloc_id watcher)
runs() { wc -l <"$data/alloc/$wid/alloc/runs" 2>/dev/null || echo 0; }
check "first render: no upstream" wait_for 5 grep -q "no upstream" "$data/alloc/$wid/t/local/up.conf"
cat >"$TMP/web.nomad" <<'J'
job "web" {
  group "g" {
    network {
      port "http" {
        static = 23456
      }
    }
    service {
      name     = "tmplweb"
      port     = "http"
      provider = "nomad"
    }
    task "t" {
      driver = "raw_exec"
      config {
        command = "/bin/sleep"
        args    = ["300"]
      }
      kill_timeout = "1s"
    }
  }
}
J
job sig service 'trap \"echo got-usr1 >>$NOMAD_ALLOC_DIR/sigs\" USR1; echo run >>$NOMAD_ALLOC_DIR/runs; while true; do sleep 0.2; done' '      template {
        data          = "{{ range nomadService \"tmplweb\" }}{{ .Port }}{{ end }}"
        destination   = "local/port.txt"
        change_mode   = "signal"
        change_signal = "SIGUSR1"
        splay         = "100ms"
      }'
"$NOMCLIENT" job run "$TMP/sig.nomad" >/dev/null 2>&1
check "the signal watcher runs" wait_for 10 status_is sig running
sid=$(alloc_id sig)
job scr service 'echo run >>$NOMAD_ALLOC_DIR/runs; exec sleep 300' '      template {
        data        = "{{ range nomadService \"tmplweb\" }}{{ .Port }}{{ end }}"
        destination = "local/port.txt"
        change_mode = "script"
        change_script {
          command = "/bin/sh"
          args    = ["-c", "cat local/port.txt >../alloc/script-saw"]
          timeout = "5s"
        }
        splay = "100ms"
      }'
"$NOMCLIENT" job run "$TMP/scr.nomad" >/dev/null 2>&1
check "the script watcher runs" wait_for 10 status_is scr running
cid=$(alloc_id scr)
"$NOMCLIENT" job run "$TMP/web.nomad" >/dev/null 2>&1
check "the service job runs" wait_for 10 status_is web running
check "change_mode signal: the task got SIGUSR1" wait_for 10 grep -qs got-usr1 "$data/alloc/$sid/alloc/sigs"
check "with Nomad's event" contains "$(messages sig)" "Template re-rendered"
check "and was not restarted" [ "$(wc -l <"$data/alloc/$sid/alloc/runs")" -eq 1 ]
check "the file holds the port" grep -q 23456 "$data/alloc/$sid/t/local/port.txt"
"$NOMCLIENT" job stop sig >/dev/null 2>&1
saw() { grep -qs 23456 "$data/alloc/$cid/alloc/script-saw"; }
check "change_mode script: the script ran in the task and saw the new file" wait_for 10 saw
check "with Nomad's event ($(messages scr))" contains "$(messages scr)" "Template successfully ran script /bin/sh with arguments: [-c cat local/port.txt >../alloc/script-saw]. Exit code: 0"
check "and the task was not restarted" [ "$(wc -l <"$data/alloc/$cid/alloc/runs")" -eq 1 ]
"$NOMCLIENT" job stop scr >/dev/null 2>&1
check "the template is rendered again with the upstream" wait_for 10 grep -q "upstream .*:23456" "$data/alloc/$wid/t/local/up.conf"
two() { [ "$(runs)" -eq 2 ]; }
check "the task is restarted after splay" wait_for 10 two
sleep 2
check "once ($(runs) runs)" [ "$(runs)" -eq 2 ]
m=$(messages watcher)
check "with Nomad's event ($m)" contains "$m" "Template with change_mode restart re-rendered"
check "the task runs again" status_is watcher running
job coalesce service 'echo run >>$NOMAD_ALLOC_DIR/runs; exec sleep 300' '      template {
        data        = "{{ range nomadService \"tmplweb\" }}{{ .Port }}{{ end }}"
        destination = "local/port.txt"
        splay       = "100ms"
        wait {
          min = "4s"
          max = "20s"
        }
      }'
"$NOMCLIENT" job run "$TMP/coalesce.nomad" >/dev/null 2>&1
check "the wait watcher runs" wait_for 10 status_is coalesce running
coid=$(alloc_id coalesce)
check "its first render has the port" grep -q 23456 "$data/alloc/$coid/t/local/port.txt"
t0=$(date +%s)
"$NOMCLIENT" job stop web >/dev/null 2>&1
check "the service gone: rendered again" wait_for 10 grep -q "no upstream" "$data/alloc/$wid/t/local/up.conf"
"$NOMCLIENT" job run "$TMP/web.nomad" >/dev/null 2>&1
check "the service is back" wait_for 10 status_is web running
t1=$(date +%s)
sleep $((6 - (t1 - t0) > 0 ? 6 - (t1 - t0) : 0))
check "wait {min}: gone and back within min ($((t1 - t0)) s) renders once, the same: no restart" [ "$(wc -l <"$data/alloc/$coid/alloc/runs")" -eq 1 ]
check "no re-render event" [ -z "$(messages coalesce | grep 're-rendered')" ]
"$NOMCLIENT" job stop web >/dev/null 2>&1
twice() { [ "$(wc -l <"$data/alloc/$coid/alloc/runs")" -eq 2 ]; }
check "gone for good: rendered after min, restarted once" wait_for 12 twice
"$NOMCLIENT" job stop coalesce >/dev/null 2>&1
"$NOMCLIENT" job stop watcher >/dev/null 2>&1

# ---- a missing dependency holds the start ----
job blocked service 'echo started' '      template {
        data        = "{{ key \"app/config\" }}"
        destination = "local/kv.txt"
      }'
"$NOMCLIENT" job run "$TMP/blocked.nomad" >/dev/null 2>&1
missing_ev() { contains "$(messages blocked)" "Missing: kv.block(app/config)"; }
check "Missing: kv.block(...) within 3 s and a bit" wait_for 6 missing_ev
check "the task has not started" status_is blocked pending
check "no file written" [ ! -e "$data/alloc/$(alloc_id blocked)/t/local/kv.txt" ]
check "one Missing event" [ "$(messages blocked | grep -o 'Missing:' | wc -l)" -eq 1 ]
"$NOMCLIENT" job stop blocked >/dev/null 2>&1

# ---- error_on_missing_key ----
job missingkey batch 'echo never' '      template {
        data                 = "{{ $m := parseJSON \"{\\\"a\\\": 1}\" }}{{ $m.b }}"
        destination          = "local/out.txt"
        error_on_missing_key = true
      }'
"$NOMCLIENT" job run "$TMP/missingkey.nomad" >/dev/null 2>&1
check "a missing key fails the task" wait_for 10 status_is missingkey failed
m=$(messages missingkey)
check "with Nomad's message ($m)" contains "$m" 'Template failed: (dynamic): execute: template: :1:'
check "naming the key" contains "$m" 'map has no entry for key "b"'
check "the task never ran" [ -z "$(stdout_of missingkey)" ]

# ---- a destination outside the task dir ----
job escape0 batch 'echo never' '      template {
        data        = "x"
        destination = "../../../../escaped.txt"
      }'
out=$("$NOMCLIENT" job run "$TMP/escape0.nomad" 2>&1)
check "a literal escape is refused at submit ($out)" contains "$out" "destination escapes allocation directory"
job escape batch 'echo never' '      meta {
        d = "../../escaped.txt"
      }
      template {
        data        = "x"
        destination = "${NOMAD_META_d}"
      }'
"$NOMCLIENT" job run "$TMP/escape.nomad" >/dev/null 2>&1
check "an interpolated destination escaping the task dir fails the task" wait_for 10 status_is escape failed
m=$(messages escape)
check "with Nomad's words ($m)" contains "$m" "template: template destination path escapes alloc directory"
check "nothing written outside" [ ! -e "$data/escaped.txt" ] && [ ! -e "$data/alloc/escaped.txt" ]

# ---- source: a file in the allocation (a prestart task wrote it) ----
cat >"$TMP/src.nomad" <<'J'
job "src" {
  type = "batch"
  group "g" {
    restart {
      attempts = 0
      mode     = "fail"
    }
    reschedule {
      attempts  = 0
      unlimited = false
    }
    task "pre" {
      lifecycle {
        hook = "prestart"
      }
      driver = "raw_exec"
      config {
        command = "/bin/sh"
        args    = ["-c", "printf '[[ env \"NOMAD_TASK_NAME\" ]] from a source' >../alloc/t.tpl"]
      }
    }
    task "t" {
      driver = "raw_exec"
      config {
        command = "/bin/cat"
        args    = ["local/out.txt"]
      }
      template {
        source          = "../alloc/t.tpl"
        destination     = "local/out.txt"
        left_delimiter  = "[["
        right_delimiter = "]]"
      }
      template {
        data        = "{{ file \"../alloc/t.tpl\" | len }} bytes"
        destination = "local/file.txt"
      }
    }
  }
}
J
"$NOMCLIENT" job run "$TMP/src.nomad" >/dev/null 2>&1
check "a source template in the alloc dir, with delimiters, renders" wait_for 15 status_is src complete
check "its output" contains "$(stdout_of src)" "t from a source"
check "file reads a file in the alloc dir" grep -q "^41 bytes$" "$data/alloc/$(alloc_id src)/t/local/file.txt"
job fileout batch 'echo never' '      template {
        data        = "{{ file \"/etc/hostname\" }}"
        destination = "local/x"
      }'
"$NOMCLIENT" job run "$TMP/fileout.nomad" >/dev/null 2>&1
check "file outside the task and alloc dirs fails the task" wait_for 10 status_is fileout failed
check "saying it escapes" contains "$(messages fileout)" "file: path /etc/hostname escapes the task directory"
job srcout batch 'echo never' '      template {
        source      = "/etc/hostname"
        destination = "local/x"
      }'
"$NOMCLIENT" job run "$TMP/srcout.nomad" >/dev/null 2>&1
check "a source outside the task and alloc dirs fails the task" wait_for 10 status_is srcout failed
check "in Nomad's words" contains "$(messages srcout)" "template: template source path escapes alloc directory"

# ---- secret: no Vault ----
job vault batch 'echo never' '      template {
        data        = "{{ with secret \"kv/x\" }}{{ .Data.v }}{{ end }}"
        destination = "secrets/x"
      }'
"$NOMCLIENT" job run "$TMP/vault.nomad" >/dev/null 2>&1
check "secret fails the task" wait_for 10 status_is vault failed
check "saying Vault is not configured" contains "$(messages vault)" "Vault is not configured on this node"

stop_agent
finish
