#pragma once
// The CLI's error type: a message for stderr and the exit code it ends with (SPEC §10). Daemon
// errors carry their code's exit code from the shared table; the CLI adds unreachable (3),
// timeout (8), usage (2) and interrupted (130), which no envelope code maps to.
#include <alumia/base/error.hpp>

#include <expected>
#include <string>
#include <utility>

namespace alumia::cli {

struct Failure {
  int exit_code = k_exit_error;
  std::string message;
};

template <class T>
using CliResult = std::expected<T, Failure>;
using CliStatus = std::expected<void, Failure>;

inline std::unexpected<Failure> cli_fail(int exit_code, std::string message) {
  return std::unexpected(Failure{exit_code, std::move(message)});
}
inline std::unexpected<Failure> usage_fail(std::string message) { return cli_fail(k_exit_usage, std::move(message)); }
inline Failure from_error(const Error& e) { return Failure{error_info(e.code).exit_code, e.message}; }

}  // namespace alumia::cli
