#!/usr/bin/env bash
# The .deb (issue 15 item 5): CPack builds it from this build directory; its contents are checked with
# dpkg-deb -c and its Depends (from dpkg-shlibdeps) with dpkg-deb -f; then it is installed with dpkg -i
# when we are root and the package is not installed already (else unpacked with dpkg-deb -x into a temp
# root), both programs answer --version from there, and it is removed (dpkg --purge) leaving none of its files.
# Usage: test_deb.sh BUILD_DIR. Exits 77 (skipped) when dpkg or cpack is absent. Bounded: every step
# has a timeout.
set -euo pipefail
BUILD=$(cd "$1" && pwd)
skip() { echo "SKIP: $*"; exit 77; }
command -v dpkg-deb >/dev/null || skip "dpkg-deb is not installed (not a Debian system)"
command -v cpack >/dev/null || skip "cpack is not installed"
command -v dpkg-shlibdeps >/dev/null || skip "dpkg-shlibdeps is not installed (apt-get install dpkg-dev)"

WORK=$(mktemp -d)
INSTALLED=0
cleanup() {
  if [ "$INSTALLED" = 1 ]; then timeout 120 dpkg --purge alumia-connect >/dev/null 2>&1 || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# Only the DEB generator, into our own directory (the build directory's _CPack_Packages is shared).
timeout 300 cpack --config "$BUILD/CPackConfig.cmake" -G DEB -B "$WORK/pkg" >"$WORK/cpack.log" 2>&1 ||
  { cat "$WORK/cpack.log" >&2; fail "cpack -G DEB failed"; }
DEB=$(find "$WORK/pkg" -maxdepth 1 -name 'alumia-connect_*.deb' | head -1)
[ -n "$DEB" ] || fail "cpack wrote no alumia-connect_*.deb into $WORK/pkg"
echo "built $(basename "$DEB") ($(stat -c %s "$DEB") bytes)"

dpkg-deb -c "$DEB" | awk '{ print $6 }' | sed 's#^\./#/#' >"$WORK/contents"
for f in /usr/bin/alumia-connect /usr/bin/alumia-connectd \
         /usr/share/man/man1/alumia-connect.1 /usr/share/man/man8/alumia-connectd.8 \
         /usr/share/bash-completion/completions/alumia-connect \
         /usr/share/zsh/vendor-completions/_alumia-connect \
         /usr/share/fish/vendor_completions.d/alumia-connect.fish \
         /usr/lib/systemd/user/alumia-connectd.service \
         /usr/share/doc/alumia-connect/README.md /usr/share/doc/alumia-connect/catalog.md \
         /usr/share/doc/alumia-connect/spec/SPEC.md; do
  grep -qx "$f" "$WORK/contents" || { cat "$WORK/contents" >&2; fail "the .deb lacks $f"; }
done
# Nothing outside /usr, and nothing of the build (tests, benches) in it.
if grep -v '^/usr' "$WORK/contents" | grep -qv '^/$'; then fail "files outside /usr: $(grep -v '^/usr' "$WORK/contents" | grep -v '^/$')"; fi
if grep -Eq 'unit_tests|functional_tests|bench_' "$WORK/contents"; then fail "test or bench binaries in the .deb"; fi

DEPENDS=$(dpkg-deb -f "$DEB" Depends)
echo "Depends: $DEPENDS"
for lib in libc6 libstdc++6 libsqlite3-0 libssl3; do
  grep -q "$lib" <<<"$DEPENDS" || fail "Depends ($DEPENDS) lacks $lib (dpkg-shlibdeps should have found it)"
done
grep -q libidn2-0 <<<"$DEPENDS" || fail "Depends ($DEPENDS) lacks libidn2-0 (dlopened to judge a public base URL)"
if grep -q libmicrohttpd <<<"$DEPENDS"; then fail "Depends ($DEPENDS) names libmicrohttpd: the daemon links its archive"; fi
grep -q libsecret-1-0 <<<"$(dpkg-deb -f "$DEB" Recommends)" || fail "Recommends lacks libsecret-1-0 (dlopened by the keyring helper)"
grep -q libpq5 <<<"$(dpkg-deb -f "$DEB" Recommends)" || fail "Recommends lacks libpq5 (dlopened for a PostgreSQL store)"
if grep -q libpq5 <<<"$DEPENDS"; then fail "Depends ($DEPENDS) names libpq5: only a PostgreSQL store loads it (dlopen)"; fi
[ "$(dpkg-deb -f "$DEB" Package)" = alumia-connect ] || fail "wrong package name"

check_versions() {  # ROOT: run both programs from ROOT/usr/bin
  local want
  want="$(dpkg-deb -f "$DEB" Version)"
  for p in alumia-connect alumia-connectd; do
    out=$(timeout 30 "$1/usr/bin/$p" --version) || fail "$1/usr/bin/$p --version failed"
    [ "$out" = "$p $want" ] || fail "$1/usr/bin/$p --version printed '$out', not '$p $want'"
    echo "$1/usr/bin/$p --version: $out"
  done
}

installed_already() { dpkg-query -W -f='${Status}' alumia-connect 2>/dev/null | grep -q 'ok installed'; }
if [ "$(id -u)" = 0 ] && command -v dpkg >/dev/null && ! installed_already; then
  # dpkg's lock may be held for a moment by another dpkg: retry for up to a minute.
  ok=0
  for _ in $(seq 1 30); do
    if timeout 120 dpkg -i "$DEB" >"$WORK/dpkg-i.log" 2>&1; then ok=1; break; fi
    grep -q 'lock' "$WORK/dpkg-i.log" || break
    sleep 2
  done
  [ "$ok" = 1 ] || { cat "$WORK/dpkg-i.log" >&2; fail "dpkg -i failed"; }
  INSTALLED=1
  [ "$(dpkg-query -W -f='${Status}' alumia-connect)" = "install ok installed" ] || fail "dpkg does not list it installed"
  check_versions ""
  timeout 120 dpkg --purge alumia-connect >"$WORK/dpkg-r.log" 2>&1 || { cat "$WORK/dpkg-r.log" >&2; fail "dpkg --purge failed"; }
  installed_already && fail "dpkg still lists alumia-connect after --purge"
  INSTALLED=0
  while read -r f; do
    [ -f "$f" ] && fail "$f is still there after dpkg -r"
  done < <(grep -v '/$' "$WORK/contents")
  echo "installed with dpkg -i, ran, removed with dpkg --purge: no file left"
else
  why="not root"
  [ "$(id -u)" = 0 ] && why="an alumia-connect package is installed already (left alone)"
  echo "dpkg -i not used ($why): unpacking with dpkg-deb -x"
  dpkg-deb -x "$DEB" "$WORK/root"
  check_versions "$WORK/root"
fi
echo "PASS"
