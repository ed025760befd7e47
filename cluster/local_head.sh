#!/usr/bin/env bash
# Start, inspect or stop a Ray head node on this machine for sparse-sweep.
#
#   cluster/local_head.sh start  [--port 6379] [--dashboard-port 8265] [--temp-dir DIR] [--num-cpus N]
#                                [--num-gpus N] [-- more `ray start` options]
#   cluster/local_head.sh status [--temp-dir DIR]
#   cluster/local_head.sh stop   [--temp-dir DIR]
#
# The node listens on 127.0.0.1 only, keeps its files in its own temp dir (default /tmp/sparse-sweep-ray),
# and runs with usage stats and token auth off. `stop` stops this node's processes only (never `ray stop`,
# which kills every Ray process on the machine). Run it from the activated venv (or with .venv/bin on PATH):
# jobs submitted to the head run with the head's Python.
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

pgid_file="$temp_dir/head.pgid"
running() { [ -f "$pgid_file" ] && kill -0 -- "-$(cat "$pgid_file")" 2>/dev/null; }

case "$action" in
  start)
    if running; then echo "a head node already runs with temp dir $temp_dir" >&2; exit 1; fi
    mkdir -p "$temp_dir"
    # --block keeps `ray start` in the foreground of a new process group that holds every process of
    # this node, so `stop` can end exactly this node.
    setsid "$ray_bin" start --head --block --node-ip-address=127.0.0.1 --port="$port" \
      --dashboard-host=127.0.0.1 --dashboard-port="$dashboard_port" --include-dashboard=true \
      --temp-dir="$temp_dir" --disable-usage-stats "${extra[@]}" >"$temp_dir/head.log" 2>&1 &
    echo $! >"$pgid_file"
    for _ in $(seq 1 120); do
      if "$ray_bin" status --address "127.0.0.1:$port" 2>/dev/null | grep -q "Node status"; then break; fi
      if ! running; then cat "$temp_dir/head.log" >&2; exit 1; fi
      sleep 0.5
    done
    cat <<INFO
Ray head node started (temp dir $temp_dir, process group $(cat "$pgid_file")).
  run a sweep on it:   sweep run SPEC --address 127.0.0.1:$port
  submit it as a job:  sweep submit SPEC --address http://127.0.0.1:$dashboard_port --results /abs/path
  dashboard:           http://127.0.0.1:$dashboard_port
  stop it:             $0 stop --temp-dir $temp_dir
INFO
    ;;
  status)
    if ! running; then echo "no head node with temp dir $temp_dir"; exit 1; fi
    "$ray_bin" status --address "127.0.0.1:$port"
    ;;
  stop)
    if ! running; then echo "no head node with temp dir $temp_dir"; rm -f "$pgid_file"; exit 0; fi
    pgid=$(cat "$pgid_file")
    kill -TERM -- "-$pgid" 2>/dev/null || true
    for _ in $(seq 1 30); do running || break; sleep 0.5; done
    kill -KILL -- "-$pgid" 2>/dev/null || true
    rm -f "$pgid_file"
    echo "stopped the head node with temp dir $temp_dir"
    ;;
  *)
    sed -n '2,12p' "$0" >&2; exit 2 ;;
esac
