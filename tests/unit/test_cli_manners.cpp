// Terminal manners of the CLI (issue 15 items 3 and 6) that need no daemon: tables cut to the
// terminal's width, where the CLI runs (SSH, display, $BROWSER, container), and the table of
// arguments completed from the daemon.
#include "completion.hpp"
#include "output.hpp"
#include "terminal.hpp"
#include "test_cli_support.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <map>
#include <sstream>
#include <string>

using namespace alumia;
using namespace alumia::cli;

namespace {

std::size_t code_points(const std::string& s) {
  std::size_t n = 0;
  for (unsigned char c : s)
    if ((c & 0xc0) != 0x80) ++n;
  return n;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) out.push_back(line);
  return out;
}

EnvLookup env_of(std::map<std::string, std::string> vars) {
  return [vars](std::string_view k) -> std::optional<std::string> {
    auto it = vars.find(std::string(k));
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

// Resets the process-wide table width when a test ends.
struct TableWidth {
  explicit TableWidth(std::size_t w) { set_table_width(w); }
  ~TableWidth() { set_table_width(0); }
};

}  // namespace

TEST_CASE("print_table fits the terminal: wide columns are cut with an ellipsis, the first never", "[cli][manners]") {
  const std::string id = "0193a5b2-7c1d-7e2f-8a9b-0c1d2e3f4a5b";
  const Table t{{"ID", "PROVIDER", "LABEL", "STATUS"},
                {{id, "github", std::string(70, 'x'), "active"}, {"short", "stripe", "é日本語ラベル", "disabled"}}};
  {
    std::ostringstream whole;
    print_table(whole, t);
    CHECK(whole.str().find(std::string(70, 'x')) != std::string::npos);  // no width: nothing is cut
  }
  TableWidth width(80);
  std::ostringstream out;
  print_table(out, t);
  const auto lines = lines_of(out.str());
  REQUIRE(lines.size() == 3);
  for (const auto& l : lines) CHECK(code_points(l) <= 80);
  CHECK(lines[1].starts_with(id + "  "));
  CHECK(lines[1].find("x\u2026  active") != std::string::npos);
  CHECK(lines[2].find("é日本語ラベル") != std::string::npos);  // short enough to stay whole
  // Columns line up by code points, not bytes: STATUS starts at the same column on every line.
  const auto status_column = [](const std::string& l, const std::string& word) {
    return code_points(l.substr(0, l.find(word)));
  };
  CHECK(status_column(lines[0], "STATUS") == status_column(lines[1], "active"));
  CHECK(status_column(lines[0], "STATUS") == status_column(lines[2], "disabled"));
}

TEST_CASE("print_table: a terminal too narrow for the minimum widths wraps instead of losing the id",
          "[cli][manners]") {
  TableWidth width(20);
  std::ostringstream out;
  print_table(out, Table{{"ID", "LABEL"}, {{"0193a5b2-7c1d-7e2f-8a9b-0c1d2e3f4a5b", "a fairly long label"}}});
  const auto lines = lines_of(out.str());
  REQUIRE(lines.size() == 2);
  CHECK(lines[1].starts_with("0193a5b2-7c1d-7e2f-8a9b-0c1d2e3f4a5b  a fairl\u2026"));
}

TEST_CASE("terminal_columns: $COLUMNS when sane", "[cli][manners]") {
  CHECK(terminal_columns(env_of({{"COLUMNS", "120"}})) == 120);
  // Junk or absurd values fall through to the window size of fd 1 (0 when it is not a terminal).
  const auto fallback = terminal_columns(env_of({}));
  CHECK(terminal_columns(env_of({{"COLUMNS", "abc"}})) == fallback);
  CHECK(terminal_columns(env_of({{"COLUMNS", "5"}})) == fallback);
  CHECK(terminal_columns(env_of({{"COLUMNS", "99999"}})) == fallback);
}

TEST_CASE("detect_surroundings: SSH, display, $BROWSER and container", "[cli][manners]") {
  auto ssh = detect_surroundings(env_of({{"SSH_CONNECTION", "203.0.113.7 50122 198.51.100.2 22"}, {"DISPLAY", ":0"}}));
  CHECK(ssh.ssh);
  CHECK(ssh.ssh_server == "198.51.100.2");
  CHECK(ssh.display);
  CHECK_FALSE(ssh.can_open_browser());  // X forwarding or not, the browser would open on this machine

  CHECK(detect_surroundings(env_of({{"SSH_TTY", "/dev/pts/3"}})).ssh);
  CHECK(detect_surroundings(env_of({{"SSH_CLIENT", "203.0.113.7 50122 22"}})).ssh_server.empty());
  CHECK(detect_surroundings(env_of({{"SSH_TTY", "/dev/pts/3"}, {"BROWSER", "w3m"}})).can_open_browser());
  CHECK(detect_surroundings(env_of({{"WAYLAND_DISPLAY", "wayland-0"}})).can_open_browser());
  CHECK_FALSE(detect_surroundings(env_of({})).can_open_browser());
  CHECK_FALSE(detect_surroundings(env_of({{"BROWSER", ""}})).can_open_browser());  // empty is unset
  CHECK(detect_surroundings(env_of({{"container", "docker"}})).container == "docker");
}

TEST_CASE("every argument completed from the daemon exists in build_app()", "[cli][manners]") {
  alumia::cli::testing::CliHarness h;
  const auto docs = describe_commands(*h.app, true);
  for (const auto& a : dynamic_args()) {
    INFO(a.path << " " << a.option);
    const auto doc = std::find_if(docs.begin(), docs.end(), [&](const CommandDoc& d) { return d.path == a.path; });
    REQUIRE(doc != docs.end());
    if (std::string(a.option).empty()) {
      CHECK_FALSE(doc->positionals.empty());
    } else {
      const bool found = std::any_of(doc->options.begin(), doc->options.end(), [&](const OptionDoc& o) {
        return std::find(o.names.begin(), o.names.end(), a.option) != o.names.end() && !o.value_name.empty();
      });
      CHECK(found);
    }
    const std::string kind = a.kind;
    CHECK((kind == "connections" || kind == "endpoints" || kind == "connectors"));
  }
  // The scripts call the hidden command; it is in build_app() but not offered to users.
  const auto visible = describe_commands(*h.app, false).front().subcommands;
  CHECK(std::find(visible.begin(), visible.end(), "__complete") == visible.end());
  const auto all = describe_commands(*h.app, true).front().subcommands;
  CHECK(std::find(all.begin(), all.end(), "__complete") != all.end());
  CHECK(generate_bash_completion(*h.app).find("alumia-connect __complete \"$1\"") != std::string::npos);
  CHECK(generate_zsh_completion(*h.app).find("alumia-connect __complete \"$1\"") != std::string::npos);
  CHECK(generate_fish_completion(*h.app).find("-l endpoint -r -a '(__alumia_connect_dynamic endpoints)'") !=
        std::string::npos);
}
