#pragma once
// Helpers for the CLI unit tests: a CliContext over string streams and a fake environment.
#include "app.hpp"

#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

namespace alumia::cli::testing {

using Env = std::map<std::string, std::string>;

struct CliHarness {
  std::map<std::string, std::string> env_vars;
  std::istringstream in;
  std::ostringstream out;
  std::ostringstream err;
  CliContext ctx;
  std::unique_ptr<CLI::App> app;

  explicit CliHarness(std::map<std::string, std::string> vars = {})
      : env_vars(std::move(vars)),
        ctx(
            [this](std::string_view k) -> std::optional<std::string> {
              auto it = env_vars.find(std::string(k));
              if (it == env_vars.end()) return std::nullopt;
              return it->second;
            },
            in, out, err, TerminalInfo{}),
        app(build_app(ctx)) {}

  // Parses like main() would (program name first). Throws CLI::ParseError on usage errors.
  void parse(std::vector<std::string> args) {
    args.insert(args.begin(), "alumia-connect");
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    app->parse(static_cast<int>(argv.size()), argv.data());
  }

  // Parse result as main() reports it: the exit code for a parse error, -1 when parsing succeeded.
  int parse_exit(std::vector<std::string> args) {
    try {
      parse(std::move(args));
      return -1;
    } catch (const CLI::ParseError& e) {
      return report_parse_error(*app, e, ctx);
    }
  }

  CLI::App* sub(const std::string& path) {
    CLI::App* a = app.get();
    std::istringstream words(path);
    std::string w;
    while (words >> w) a = a->get_subcommand(w);
    return a;
  }
};

}  // namespace alumia::cli::testing
