// bench_idle_floor (built by bench/idle_rss.sh, not by CMake): the floor under the daemon's idle RSS.
// idle_rss.sh links this against exactly the shared libraries alumia-connectd names (its DT_NEEDED,
// with --no-as-needed so that none is dropped); main() initialises only what any user of those
// libraries must (OpenSSL with its configuration, SQLite), says "ready" and sleeps until a signal.
// What the daemon's idle RSS holds beyond this process's is what the daemon itself adds.
#include <openssl/crypto.h>
#include <sqlite3.h>
#include <unistd.h>

#include <cstdio>

int main() {
  if (OPENSSL_init_crypto(OPENSSL_INIT_LOAD_CONFIG, nullptr) != 1 || sqlite3_initialize() != SQLITE_OK) {
    std::fputs("bench_idle_floor: initialisation failed\n", stderr);
    return 1;
  }
  std::puts("ready");
  std::fflush(stdout);
  for (;;) ::pause();
}
