#!/bin/sh
# Task lifecycle as Nomad's: prestart tasks run to completion before the
# main task (a sidecar stays beside it and is stopped after it), poststart
# after the main task runs, poststop once after it ends; a failed prestart
# fails the allocation without starting the main task; a dead leader takes
# the others down; a job stop kills the main task before its sidecar.
. "$(dirname "$0")/lib.sh"

data=$TMP/data
cleanup_add "pkill -9 -f 'supervise $data/' ; true"

# alloc_field JOB PYTHON-EXPR over the job's first allocation (x)
alloc_field() {
    curl -s "$ADDR/v1/job/$1/allocations" |
        python3 -c "import json,sys; a=json.load(sys.stdin); x=a[0] if a else {}; print($2)" 2>/dev/null
}
# task_field JOB TASK PYTHON-EXPR over the task's state (t)
task_field() {
    alloc_field "$1" "(lambda t: $3)(x['TaskStates']['$2'])"
}
events() { task_field "$1" "$2" "' | '.join(e['Type'] for e in t['Events'])"; }

raw() { # raw_exec task body: NAME SCRIPT [extra HCL]
    cat <<T
    task "$1" {
      driver = "raw_exec"
      config {
        command = "/bin/sh"
        args    = ["-c", "$2"]
      }
      kill_timeout = "1s"
      $3
    }
T
}

batch_group() { # NAME: a batch job's head, its group failing at once
    printf 'job "%s" {\n  type = "batch"\n  group "g" {\n' "$1"
    printf '    restart {\n      attempts = 0\n      mode     = "fail"\n    }\n'
    printf '    reschedule {\n      attempts  = 0\n      unlimited = false\n    }\n'
}

{
    batch_group life
    raw prep 'sleep 0.5; date +%s.%N > $NOMAD_ALLOC_DIR/prep.tmp; mv $NOMAD_ALLOC_DIR/prep.tmp $NOMAD_ALLOC_DIR/prep.done' \
        'lifecycle { hook = "prestart" }'
    raw side 'echo up > $NOMAD_ALLOC_DIR/side.up; exec sleep 300' \
        'lifecycle {
        hook    = "prestart"
        sidecar = true
      }'
    # a task that runs has started, not done its first steps (as with Nomad):
    # main gives the sidecar, and post gives main, up to 10 s to write
    # their file; the prestart task must be done before main starts at all
    raw main 'test -f $NOMAD_ALLOC_DIR/prep.done || exit 7; i=0; until test -f $NOMAD_ALLOC_DIR/side.up; do i=$((i+1)); test $i -lt 100 || exit 8; sleep 0.1; done; date +%s.%N > $NOMAD_ALLOC_DIR/main.start.tmp; mv $NOMAD_ALLOC_DIR/main.start.tmp $NOMAD_ALLOC_DIR/main.start; sleep 2; exit 0'
    raw post 'i=0; until test -f $NOMAD_ALLOC_DIR/main.start; do i=$((i+1)); test $i -lt 100 || exit 9; sleep 0.1; done; touch $NOMAD_ALLOC_DIR/post.ran' \
        'lifecycle { hook = "poststart" }'
    raw clean 'echo x >> $NOMAD_ALLOC_DIR/poststop.count' \
        'lifecycle { hook = "poststop" }'
    echo '  }'
    echo '}'
} >"$TMP/life.nomad"

{
    batch_group badinit
    raw prep 'exit 3' 'lifecycle { hook = "prestart" }'
    raw main 'touch $NOMAD_ALLOC_DIR/main.ran; sleep 300'
    echo '  }'
    echo '}'
} >"$TMP/badinit.nomad"

{
    echo 'job "lead" {'
    echo '  type = "batch"'
    echo '  group "g" {'
    raw boss 'sleep 1; exit 0' 'leader = true'
    raw worker 'exec sleep 300'
    echo '  }'
    echo '}'
} >"$TMP/lead.nomad"

{
    echo 'job "svc" {'
    echo '  group "g" {'
    raw side 'trap \"date +%s.%N > $NOMAD_ALLOC_DIR/side.end; exit 0\" TERM; while :; do sleep 0.1; done' \
        'lifecycle {
        hook    = "prestart"
        sidecar = true
      }'
    raw web 'trap \"sleep 0.5; date +%s.%N > $NOMAD_ALLOC_DIR/web.end; exit 0\" TERM; while :; do sleep 0.1; done'
    raw bye 'echo x >> $NOMAD_ALLOC_DIR/poststop.count' \
        'lifecycle { hook = "poststop" }'
    echo '  }'
    echo '}'
} >"$TMP/svc.nomad"

need_agent "agent starts" life -dev -data-dir "$data"

# ---- prestart, sidecar, poststart, poststop ----
out=$("$NOMCLIENT" job run "$TMP/life.nomad" 2>&1)
check "job with lifecycle tasks is accepted" [ $? -eq 0 ]
id=$(alloc_field life 'x["ID"]')
adir="$data/alloc/$id/alloc"
main_started() { [ -f "$adir/main.start" ]; }
check "main task starts after the prestart task" wait_for 10 main_started
st=$(alloc_field life 'x["ClientStatus"]')
check "allocation is running while the main task runs ($st)" [ "$st" = running ]
check "finished prestart task is dead, not failed" \
    [ "$(task_field life prep "t['State']+' '+str(t['Failed'])")" = "dead False" ]
check "sidecar runs beside the main task" \
    [ "$(task_field life side "t['State']")" = running ]
post_ran() { [ -f "$adir/post.ran" ]; }
check "poststart task runs once the main task runs" wait_for 5 post_ran
complete() { [ "$(alloc_field life 'x["ClientStatus"]')" = complete ]; }
check "allocation completes after the main task ends" wait_for 15 complete
ev=$(events life side)
check "sidecar stopped after the main task (Main Tasks Dead)" contains "$ev" "Main Tasks Dead"
check "sidecar is dead, not failed" \
    [ "$(task_field life side "t['State']+' '+str(t['Failed'])")" = "dead False" ]
check "main task succeeded" [ "$(task_field life main "str(t['Failed'])")" = False ]
check "poststop task ran exactly once" [ "$(wc -l < "$adir/poststop.count" 2>/dev/null)" = 1 ]
order=$(python3 -c "print(float(open('$adir/prep.done').read()) < float(open('$adir/main.start').read()))")
check "prestart finished before main began" [ "$order" = True ]
sleep 0.5
check "poststop task not run again" [ "$(wc -l < "$adir/poststop.count" 2>/dev/null)" = 1 ]

# ---- a failing prestart task fails the allocation ----
"$NOMCLIENT" job run "$TMP/badinit.nomad" >/dev/null 2>&1
failed() { [ "$(alloc_field badinit 'x["ClientStatus"]')" = failed ]; }
check "failing prestart task fails the allocation" wait_for 10 failed
bid=$(alloc_field badinit 'x["ID"]')
check "main task never started" [ ! -e "$data/alloc/$bid/alloc/main.ran" ]
check "main task is dead, never run" \
    [ "$(task_field badinit main "t['State']+' '+str(t['StartedAt'] is None or t['StartedAt'].startswith('0001'))")" = "dead True" ]
check "prestart task failed" [ "$(task_field badinit prep "str(t['Failed'])")" = True ]
ev=$(events badinit main)
check "main task got Sibling Task Failed" contains "$ev" "Sibling Task Failed"

# ---- a dead leader stops the others ----
"$NOMCLIENT" job run "$TMP/lead.nomad" >/dev/null 2>&1
lead_done() { [ "$(alloc_field lead 'x["ClientStatus"]')" = complete ]; }
check "leader's end completes the allocation" wait_for 10 lead_done
ev=$(events lead worker)
check "worker got Leader Task Dead" contains "$ev" "Leader Task Dead"
msg=$(task_field lead worker "[e['DisplayMessage'] for e in t['Events'] if e['Type']=='Leader Task Dead'][0]")
check "with Nomad's text" [ "$msg" = "Leader Task in Group dead" ]

# ---- a job stop: main task first, its sidecar after, poststop once ----
"$NOMCLIENT" job run "$TMP/svc.nomad" >/dev/null 2>&1
svc_running() { [ "$(task_field svc web "t['State']")" = running ]; }
check "service allocation runs" wait_for 10 svc_running
sid=$(alloc_field svc 'x["ID"]')
sdir="$data/alloc/$sid/alloc"
sleep 0.3
"$NOMCLIENT" job stop svc >/dev/null 2>&1
svc_done() { [ "$(alloc_field svc 'x["ClientStatus"]')" = complete ]; }
check "stopped allocation completes" wait_for 15 svc_done
order=$(python3 -c "print(float(open('$sdir/web.end').read()) <= float(open('$sdir/side.end').read()))" 2>&1)
check "sidecar stopped after the main task ($order)" [ "$order" = True ]
check "poststop task ran once after the stop" [ "$(wc -l < "$sdir/poststop.count" 2>/dev/null)" = 1 ]

finish
