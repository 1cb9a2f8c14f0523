#!/usr/bin/env bash
# Installs the Debian packages the build and the test suite need. Idempotent and silent when
# nothing is missing. Runs as root on Debian 12 (the project's machines); elsewhere it only reports.
set -euo pipefail
pkgs=(build-essential cmake pkg-config make g++
      libcli11-dev libcpp-httplib-dev libmicrohttpd-dev libsqlitecpp-dev libsqlite3-dev nlohmann-json3-dev libssl-dev
      libsecret-1-dev libglib2.0-dev libpq-dev catch2 liburiparser-dev libidn2-dev libspdlog-dev libfmt-dev
      gnome-keyring dbus dbus-x11 sqlite3 curl wrk python3 procps clang-format)
command -v node >/dev/null 2>&1 || pkgs+=(nodejs)
command -v npm >/dev/null 2>&1 || pkgs+=(npm)
pkgs+=(nginx)  # tests/functional/test_deploy_nginx.cpp runs its own nginx (the system service is not used)
pkgs+=(python3-prometheus-client)  # tests/functional/test_metrics.cpp parses GET /metrics with its parser
pkgs+=(dpkg-dev file)  # the .deb: CPack's Depends (dpkg-shlibdeps reads the ELF files); tests/packaging/test_deb.sh
pkgs+=(chromium)  # tests/functional/test_admin_pages_browser.cpp drives it headless (tests/browser/)
pkgs+=(postgresql-15)  # the PostgreSQL store's tests start their own server (tests/support/postgres.hpp)
pkgs+=(zsh fish)  # tests/functional/test_completions.cpp loads the generated completions in each shell
pkgs+=(lld)  # the daemon's link places its start-up code first (daemon/startup.order, daemon/CMakeLists.txt)
pkgs+=(haproxy)  # deploy/haproxy.cfg is checked and run in front of real daemons (tests/functional/test_deploy_haproxy.cpp, bench/cluster)
# `make fuzz` (scripts/install-deps.sh fuzz): libFuzzer needs clang, and clang 14 (Debian 12's default)
# cannot compile libstdc++ 12's <expected>, which the code uses throughout; clang 19 of Debian 12 can.
[ "${1:-}" = fuzz ] && pkgs+=(clang-19 libclang-rt-19-dev)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing packages: ${missing[*]} (run as root, or: sudo apt-get install ${missing[*]})" >&2
  exit 1
fi
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
