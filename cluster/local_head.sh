#!/usr/bin/env bash
# Start, inspect or stop a Ray head node on this machine for sparse-sweep.
#
#   cluster/local_head.sh start  [--port N|auto] [--dashboard-port N|auto] [--temp-dir DIR] [--num-cpus N]
#                                [--num-gpus N] [-- more `ray start` options]
#   cluster/local_head.sh status [--temp-dir DIR]
#   cluster/local_head.sh stop   [--temp-dir DIR]
#
# The node listens on 127.0.0.1 only, keeps its files in its own temp dir (default /tmp/sparse-sweep-ray),
# and runs with usage stats and token auth off. A port that is already in use is refused; `--port auto`
# picks free ports for everything the node listens on (GCS, dashboard, client server, dashboard agent), so a
# second head can run beside a first. The ports are recorded in the temp dir (head.ports), where `status` and
# `stop` find them. `start` reports success only once its own processes answer on them. `stop` ends this
# node's process group only (never `ray stop`, which kills every Ray process on the machine). Run it from
# the activated venv (or with .venv/bin on PATH): jobs submitted to the head run with the head's Python.
set -euo pipefail

action=${1:-}
shift || true
port=6379
dashboard_port=8265
temp_dir=${SPARSE_SWEEP_RAY_TEMP:-/tmp/sparse-sweep-ray}
extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --port) port=$2; shift 2 ;;
    --dashboard-port) dashboard_port=$2; shift 2 ;;
    --temp-dir) temp_dir=$2; shift 2 ;;
    --num-cpus|--num-gpus) extra+=("$1" "$2"); shift 2 ;;
    --) shift; extra+=("$@"); break ;;
    *) echo "local_head.sh: unknown option $1" >&2; exit 2 ;;
  esac
done

export RAY_USAGE_STATS_ENABLED=0 RAY_AUTH_MODE=disabled RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0
here=$(cd "$(dirname "$0")/.." && pwd)
ray_bin=$(command -v ray || echo "$here/.venv/bin/ray")
[ -x "$ray_bin" ] || { echo "local_head.sh: no 'ray' found; run 'make install' first" >&2; exit 1; }
if [ -d "$here/.venv/bin" ]; then export PATH="$here/.venv/bin:$PATH"; fi
python_bin=$(dirname "$ray_bin")/python
[ -x "$python_bin" ] || python_bin=python3
ports() { "$python_bin" "$here/cluster/head_ports.py" "$@"; }

pgid_file="$temp_dir/head.pgid"
ports_file="$temp_dir/head.ports"
running() { [ -f "$pgid_file" ] && kill -0 -- "-$(cat "$pgid_file")" 2>/dev/null; }
given() {  # whether the extra `ray start` options already set this one
  local option
  for option in "${extra[@]}"; do case "$option" in "$1"|"$1"=*) return 0 ;; esac; done
  return 1
}
recorded() {  # the recorded GCS and dashboard ports of the head in $temp_dir (6379/8265 for an older one)
  port=6379 dashboard_port=8265
  # shellcheck disable=SC1090
  if [ -f "$ports_file" ]; then . "$ports_file"; fi
}
stop_group() {  # end this node's process group and wait until it is gone
  local pgid
  pgid=$(cat "$pgid_file")
  # `ray start --block` (the group's leader) stops its node in Ray's order on TERM, in a few seconds; TERM to
  # every process at once leaves the GCS waiting 30 s and more. So: the leader, then the group, then KILL.
  kill -TERM "$pgid" 2>/dev/null || true
  for _ in $(seq 1 30); do running || break; sleep 0.5; done
  kill -TERM -- "-$pgid" 2>/dev/null || true
  for _ in $(seq 1 10); do running || break; sleep 0.5; done
  kill -KILL -- "-$pgid" 2>/dev/null || true
  for _ in $(seq 1 20); do running || break; sleep 0.5; done
  rm -f "$pgid_file" "$ports_file"
}
fail_start() {  # one line, the node's own processes stopped
  echo "local_head.sh: $1" >&2
  stop_group
  exit 1
}

case "$action" in
  start)
    if running; then echo "local_head.sh: a head node already runs with temp dir $temp_dir" >&2; exit 1; fi
    own_ports=()
    if [ "$port" = auto ]; then
      read -r port auto_dashboard client agent < <(ports pick 4)
      if [ "$dashboard_port" = auto ] || [ "$dashboard_port" = 8265 ]; then dashboard_port=$auto_dashboard; fi
      given --ray-client-server-port || own_ports+=("--ray-client-server-port=$client")
      given --dashboard-agent-listen-port || own_ports+=("--dashboard-agent-listen-port=$agent")
    elif [ "$dashboard_port" = auto ]; then
      read -r dashboard_port < <(ports pick 1)
    fi
    if taken=$(ports free "$port" "$dashboard_port"); then :; else
      echo "local_head.sh: port $taken on this machine is in use (another Ray head?); choose free ports" \
        "with --port N --dashboard-port N, or --port auto" >&2
      exit 2
    fi
    mkdir -p "$temp_dir"
    # --block keeps `ray start` in the foreground of a new process group that holds every process of
    # this node, so `stop` can end exactly this node.
    setsid "$ray_bin" start --head --block --node-ip-address=127.0.0.1 --port="$port" \
      --dashboard-host=127.0.0.1 --dashboard-port="$dashboard_port" --include-dashboard=true \
      --temp-dir="$temp_dir" --disable-usage-stats "${own_ports[@]}" "${extra[@]}" \
      >"$temp_dir/head.log" 2>&1 &
    echo $! >"$pgid_file"
    printf 'port=%s\ndashboard_port=%s\n' "$port" "$dashboard_port" >"$ports_file"
    # Ready when this node's own processes listen on both ports and its GCS answers: a GCS that some other
    # head runs on the same port must never pass for this one.
    ready=
    for _ in $(seq 1 180); do
      if ! running; then
        fail_start "the head node stopped while starting: $(grep -v '^[[:space:]]*$' "$temp_dir/head.log" \
          | tail -n1); see $temp_dir/head.log"
      fi
      if others=$(ports owner "$(cat "$pgid_file")" "$port" "$dashboard_port"); then
        if "$ray_bin" status --address "127.0.0.1:$port" 2>/dev/null | grep -q "Node status"; then
          ready=1; break
        fi
      elif grep -qv -- ' -$' <<<"$others"; then
        fail_start "port ${others%% *} is held by another process (pid $(awk '{print $2; exit}' \
          <<<"$others")), not by this head node; choose free ports with --port N, or --port auto"
      fi
      sleep 0.5
    done
    [ -n "$ready" ] || fail_start "the head node did not answer within 90 s; see $temp_dir/head.log"
    cat <<INFO
Ray head node started (temp dir $temp_dir, process group $(cat "$pgid_file"), port $port).
  run a sweep on it:   sweep run SPEC --address 127.0.0.1:$port
  submit it as a job:  sweep submit SPEC --address http://127.0.0.1:$dashboard_port --results /abs/path
  dashboard:           http://127.0.0.1:$dashboard_port
  its status:          $0 status --temp-dir $temp_dir
  stop it:             $0 stop --temp-dir $temp_dir
INFO
    ;;
  status)
    if ! running; then echo "no head node with temp dir $temp_dir"; exit 1; fi
    recorded
    echo "head node with temp dir $temp_dir: process group $(cat "$pgid_file"), address 127.0.0.1:$port," \
      "dashboard http://127.0.0.1:$dashboard_port"
    "$ray_bin" status --address "127.0.0.1:$port"
    ;;
  stop)
    if ! running; then echo "no head node with temp dir $temp_dir"; rm -f "$pgid_file" "$ports_file"; exit 0; fi
    stop_group
    echo "stopped the head node with temp dir $temp_dir"
    ;;
  *)
    sed -n '2,15p' "$0" >&2; exit 2 ;;
esac
