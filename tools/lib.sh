# Shell helpers shared by tools/demo.sh and bench/*.sh (sourced, not run).
# hv_private_bus DIR POLICY: starts a dbus-daemon on DIR/bus with the project's policy; sets
#   HV_ADDR and appends the pid to HV_PIDS.
# hv_start_daemon HVWGD HVWGCTL CONF LOG: starts hvwgd on HV_ADDR, waits for its name; sets HV_DAEMON_PID.
# hv_bench_work DATA NAME: a work dir DATA/NAME.XXXXXX (removed at exit with everything started
#   here) with images/ and machines/ and a hvwgd.conf whose [Storage] reads file:// from DATA;
#   sets HV_WORK. Callers append further sections to $HV_WORK/hvwgd.conf.
# hv_stop_all: stops everything started here.
HV_PIDS=()

hv_private_bus() {
  local dir=$1 policy=$2 sock="$1/bus"
  sed -e "s|@SOCKET@|$sock|" -e "s|@POLICY@|$policy|" "$(dirname "${BASH_SOURCE[0]}")/../dbus/private-bus.conf.in" > "$dir/bus.conf"
  dbus-daemon --nofork --nosyslog --config-file="$dir/bus.conf" >/dev/null 2>"$dir/bus.log" &
  HV_PIDS+=($!)
  local i
  for i in $(seq 200); do [ -S "$sock" ] && break; sleep 0.05; done
  [ -S "$sock" ] || { echo "dbus-daemon did not start: $(cat "$dir/bus.log")" >&2; return 1; }
  HV_ADDR="unix:path=$sock"
}

hv_start_daemon() {
  local hvwgd=$1 hvwgctl=$2 conf=$3 log=$4 i
  "$hvwgd" --bus-address="$HV_ADDR" --config="$conf" 2>>"$log" &
  HV_DAEMON_PID=$!
  HV_PIDS+=($HV_DAEMON_PID)
  for i in $(seq 200); do
    "$hvwgctl" --bus-address="$HV_ADDR" status >/dev/null 2>&1 && return 0
    kill -0 "$HV_DAEMON_PID" 2>/dev/null || break
    sleep 0.05
  done
  echo "hvwgd did not start: $(tail -5 "$log")" >&2
  return 1
}

hv_bench_work() {
  local data=$1 name=$2
  HV_WORK=$(mktemp -d "$data/$name.XXXXXX")
  chmod 755 "$HV_WORK"
  trap 'hv_stop_all; rm -rf "$HV_WORK"' EXIT
  mkdir -p "$HV_WORK/images" "$HV_WORK/machines"
  printf '[Storage]\nImageRoot=%s/images\nMachineRoot=%s/machines\nAllowedSourceDirs=%s\n' "$HV_WORK" "$HV_WORK" "$data" \
    > "$HV_WORK/hvwgd.conf"
}

hv_stop_all() {
  local p
  for p in "${HV_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  HV_PIDS=()
}
