#!/usr/bin/env bash
# Runs a command against a real, private Secret Service: a throwaway D-Bus session bus with an
# unlocked gnome-keyring, under a temporary HOME and XDG directories. Works headless and as root.
#
#   tests/support/with-keyring.sh CMD [ARGS...]
#
# The exit status is the command's. The temporary directory, and any gnome-keyring-daemon started
# for this session that outlives the bus, are removed on exit.
set -euo pipefail

if [[ $# -eq 0 ]]; then
  echo "usage: $0 CMD [ARGS...]" >&2
  exit 2
fi
for tool in dbus-run-session gnome-keyring-daemon; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "$0: $tool not found (install the dbus and gnome-keyring packages)" >&2
    exit 2
  fi
done

session_dir=$(mktemp -d "${TMPDIR:-/tmp}/alumia-keyring.XXXXXXXX")
chmod 0700 "$session_dir"

# Only processes whose environment carries this session's marker are ours to stop.
kill_session_daemons() {
  local environ pid comm
  for environ in /proc/[0-9]*/environ; do
    pid=${environ#/proc/}
    pid=${pid%/environ}
    [[ $pid == "$$" ]] && continue
    comm=$(cat "/proc/$pid/comm" 2>/dev/null) || continue
    [[ $comm == gnome-keyring-d* ]] || continue
    if { tr '\0' '\n' <"$environ"; } 2>/dev/null | grep -qxF "ALUMIA_KEYRING_SESSION=$session_dir"; then
      kill "$pid" 2>/dev/null || true
    fi
  done
}

cleanup() {
  kill_session_daemons
  rm -rf -- "$session_dir"
}
trap cleanup EXIT

mkdir -p "$session_dir/home" "$session_dir/data" "$session_dir/config" "$session_dir/cache" \
  "$session_dir/run"
chmod 0700 "$session_dir/run"
export ALUMIA_KEYRING_SESSION="$session_dir"
export HOME="$session_dir/home"
export XDG_DATA_HOME="$session_dir/data"
export XDG_CONFIG_HOME="$session_dir/config"
export XDG_CACHE_HOME="$session_dir/cache"
export XDG_RUNTIME_DIR="$session_dir/run"
# No display: nothing may try to show a prompt or autolaunch another bus.
unset DISPLAY WAYLAND_DISPLAY DBUS_SESSION_BUS_ADDRESS GNOME_KEYRING_CONTROL

# gnome-keyring-daemon runs in the foreground as a child of the inner shell, so that the shell can
# stop and reap it (a daemonized one is re-parented to PID 1, which in containers may never reap
# it). `--unlock` reads the login keyring's password from stdin and creates that keyring. The
# command runs once the daemon owns org.freedesktop.secrets on the bus; otherwise D-Bus activation
# would start a second daemon.
#
# The session runs in its own process group (setsid: a background job of a non-interactive shell
# is never a group leader, so setsid does not fork and the group id is $!). On SIGINT/SIGTERM the
# whole group -- command, keyring, bus -- is terminated; bash's `wait` is interruptible, so the
# trap runs at once instead of after the command.
interrupted=""
session_pid=""
on_signal() {
  interrupted=$1
  [[ -n $session_pid ]] && kill -TERM -- "-$session_pid" 2>/dev/null
  return 0
}
trap 'on_signal 130' INT
trap 'on_signal 143' TERM
setsid dbus-run-session -- bash -c '
  set -u
  printf pw | gnome-keyring-daemon --foreground --unlock --components=secrets >/dev/null &
  keyring_pid=$!
  stop_keyring() { kill "$keyring_pid" 2>/dev/null; wait "$keyring_pid" 2>/dev/null; }
  trap stop_keyring EXIT
  for _ in $(seq 1 100); do
    if gdbus call --session --dest org.freedesktop.DBus --object-path /org/freedesktop/DBus \
        --method org.freedesktop.DBus.NameHasOwner org.freedesktop.secrets 2>/dev/null \
        | grep -q true; then
      "$@"
      exit $?
    fi
    kill -0 "$keyring_pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "with-keyring.sh: gnome-keyring-daemon did not take org.freedesktop.secrets within 10 s" >&2
  exit 125
' _ "$@" &
session_pid=$!
set +e
while :; do
  wait "$session_pid"
  status=$?
  kill -0 "$session_pid" 2>/dev/null || break
done
set -e
[[ -n $interrupted ]] && status=$interrupted
exit "$status"
