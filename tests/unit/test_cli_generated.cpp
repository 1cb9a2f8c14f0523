// Completions and the man page are generated from build_app() and committed; these tests catch
// drift. To refresh: `alumia-connect completion bash > completions/alumia-connect.bash` (zsh →
// completions/_alumia-connect, fish → completions/alumia-connect.fish, man → man/alumia-connect.1).
#include "test_cli_support.hpp"

#include "completion.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <fstream>
#include <sstream>

using alumia::cli::testing::CliHarness;

namespace {

std::string read_source_file(const std::string& rel) {
  std::ifstream in(std::string(ALUMIA_SOURCE_DIR) + "/" + rel);
  std::stringstream buf;
  buf << in.rdbuf();
  return buf.str();
}

// The man page escapes '-' as "\-"; compare on the plain text.
std::string unescape_roff(std::string s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size() && s[i + 1] == '-') continue;
    if (s[i] == '\\' && i + 1 < s.size() && s[i + 1] == '&') {
      ++i;
      continue;
    }
    out += s[i];
  }
  return out;
}

}  // namespace

TEST_CASE("committed completions match build_app()", "[cli]") {
  CliHarness h;
  const auto hint = "regenerate with `alumia-connect completion <shell>` (see test_cli_generated.cpp)";
  INFO(hint);
  CHECK(read_source_file("completions/alumia-connect.bash") == alumia::cli::generate_bash_completion(*h.app));
  CHECK(read_source_file("completions/_alumia-connect") == alumia::cli::generate_zsh_completion(*h.app));
  CHECK(read_source_file("completions/alumia-connect.fish") == alumia::cli::generate_fish_completion(*h.app));
}

TEST_CASE("completions name every visible command and option", "[cli]") {
  CliHarness h;
  const auto bash = alumia::cli::generate_bash_completion(*h.app);
  for (const auto& doc : alumia::cli::describe_commands(*h.app, false)) {
    for (const auto& sub : doc.subcommands) CHECK(bash.find(sub) != std::string::npos);
    for (const auto& opt : doc.options)
      for (const auto& name : opt.names) CHECK(bash.find(name) != std::string::npos);
  }
  CHECK(bash.find("'connections'") != std::string::npos);
  const auto visible = alumia::cli::describe_commands(*h.app, false).front().subcommands;
  CHECK(std::find(visible.begin(), visible.end(), "completion") == visible.end());  // hidden
  const auto all = alumia::cli::describe_commands(*h.app, true).front().subcommands;
  CHECK(std::find(all.begin(), all.end(), "completion") != all.end());
}

TEST_CASE("every command path and flag of build_app() is in man/alumia-connect.1", "[cli]") {
  CliHarness h;
  const auto man = unescape_roff(read_source_file("man/alumia-connect.1"));
  REQUIRE_FALSE(man.empty());
  for (const auto& doc : alumia::cli::describe_commands(*h.app, true)) {
    if (doc.path.empty()) continue;
    INFO(doc.path);
    CHECK(man.find("alumia-connect " + doc.path) != std::string::npos);
    for (const auto& opt : doc.options)
      for (const auto& name : opt.names) CHECK(man.find(name) != std::string::npos);
  }
  for (const char* section : {".SH EXIT STATUS", ".SH ENVIRONMENT", ".SH FILES"})
    CHECK(man.find(section) != std::string::npos);
  for (const char* code : {"\n.B 130\n", "\n.B 8\n", "\n.B 3\n"}) CHECK(man.find(code) != std::string::npos);
}

TEST_CASE("man/alumia-connectd.8 documents the daemon flags", "[cli]") {
  const auto man = unescape_roff(read_source_file("man/alumia-connectd.8"));
  for (const char* flag :
       {"--listen", "--public-listen", "--data-dir", "--env", "--keyring", "--master-key-file", "--master-key-name",
        "--store", "--relay-to", "--log-level", "--allow-insecure-base-url", "SIGTERM", ".SH FILES"})
    CHECK(man.find(flag) != std::string::npos);
}
