// Terminal manners of the CLI (issue 15 items 3 and 6) that need no daemon: tables cut to the
// terminal's width, where the CLI runs (SSH, display, $BROWSER, container), the table of arguments
// completed from the daemon, and, walking build_app() and the sources, that every error says what to
// do next with a command that exists.
#include "completion.hpp"
#include "output.hpp"
#include "terminal.hpp"
#include "test_cli_support.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
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
  CHECK(generate_fish_completion(*h.app).find("-l endpoint -x -a '(__alumia_connect_dynamic endpoints)'") !=
        std::string::npos);
}

namespace {

// Every `alumia-connect …` a user can be told to run: the string literals (not comments) of cli/,
// daemon/ and common/, from "alumia-connect " up to the end of the command (a backtick, a quote, a
// bracket, ';', '&&', ' or ', ' then ').
struct NamedCommand {
  std::string file;
  std::string text;
};

std::vector<NamedCommand> commands_named_in_sources() {
  std::vector<NamedCommand> out;
  const std::regex trailing_comment(R"(\s//\s.*$)");
  for (const char* dir : {"cli", "daemon", "common"}) {
    for (const auto& entry :
         std::filesystem::recursive_directory_iterator(std::string(ALUMIA_SOURCE_DIR) + "/" + dir)) {
      const auto ext = entry.path().extension();
      if (ext != ".cpp" && ext != ".hpp") continue;
      if (entry.path().filename() == "completion.cpp") continue;  // shell code; the scripts run in real shells
      std::ifstream in(entry.path());
      std::string line;
      while (std::getline(in, line)) {
        const auto first = line.find_first_not_of(' ');
        if (first == std::string::npos || line.compare(first, 2, "//") == 0 || line.compare(first, 1, "*") == 0)
          continue;
        line = std::regex_replace(line, trailing_comment, "");
        for (auto at = line.find("alumia-connect "); at != std::string::npos;
             at = line.find("alumia-connect ", at + 1)) {
          std::string rest = line.substr(at + 15);
          rest = rest.substr(0, rest.find_first_of("`\"<();"));
          for (const char* end : {"&&", " or ", " then ", "\\n"})
            if (auto e = rest.find(end); e != std::string::npos) rest.resize(e);
          out.push_back({entry.path().lexically_relative(ALUMIA_SOURCE_DIR).string(), rest});
        }
      }
    }
  }
  return out;
}

// "" when `text` (the words after "alumia-connect ") names a command path of build_app() and only
// options that command (or the root, globally) has; else what is wrong.
std::string check_named(const std::vector<CommandDoc>& docs, const std::string& text) {
  const auto find = [&](const std::string& path) {
    return std::find_if(docs.begin(), docs.end(), [&](const CommandDoc& d) { return d.path == path; });
  };
  const auto has_option = [&](const CommandDoc& d, const std::string& name) {
    for (const CommandDoc* c : {&d, &docs.front()})
      for (const auto& o : c->options)
        if (std::find(o.names.begin(), o.names.end(), name) != o.names.end()) return true;
    return name == "--help";
  };
  std::istringstream words(text);
  std::string word, path;
  bool first = true, arguments = false;
  while (words >> word) {
    while (!word.empty() && (word.back() == '.' || word.back() == ',' || word.back() == ']')) word.pop_back();
    if (!word.empty() && word.front() == '[') word.erase(0, 1);
    if (word.empty()) continue;
    const auto& doc = *find(path);
    if (word.starts_with("-")) {
      const std::string name = word.substr(0, word.find('='));
      if (!has_option(doc, name)) return "`" + name + "` is not an option of `alumia-connect " + doc.path + "`";
    } else if (!arguments && std::find(doc.subcommands.begin(), doc.subcommands.end(), word) != doc.subcommands.end()) {
      path = path.empty() ? word : path + " " + word;
    } else if (first) {
      // Prose, not a command ("this alumia-connect is …", "the alumia-connect link"): the words a
      // message may follow the program's name with. Any other first word must be a command.
      static const std::set<std::string> k_prose{"is", "link", "master", "..."};
      if (!k_prose.contains(word)) return "`" + word + "` is not a command";
      return "";
    } else {
      arguments = true;  // an argument: no subcommand after it, but its options are still checked
    }
    first = false;
  }
  return "";
}

}  // namespace

TEST_CASE("every `alumia-connect ...` a message names is a command of build_app() with its options", "[cli][manners]") {
  alumia::cli::testing::CliHarness h;
  const auto docs = describe_commands(*h.app, true);
  const auto named = commands_named_in_sources();
  REQUIRE(named.size() > 50);  // the scan found the messages (doctor's fixes, next steps, hints)
  for (const auto& n : named) {
    INFO(n.file << ": alumia-connect " << n.text);
    CHECK(check_named(docs, n.text) == "");
  }
  // The scanner itself refuses what it should.
  CHECK(check_named(docs, "keys create --scopes admin") != "");
  CHECK(check_named(docs, "webhook list") != "");
  CHECK(check_named(docs, "jobs retry --state dead") == "");
  CHECK(check_named(docs, "connect github --reconnect ID") == "");
}

TEST_CASE("every command that takes an id or slug names, on NOT_FOUND, the command that lists them", "[cli][manners]") {
  alumia::cli::testing::CliHarness h;
  for (const auto& d : describe_commands(*h.app, false)) {
    if (d.path.empty() || !d.subcommands.empty()) continue;
    bool takes_id = !d.positionals.empty();
    for (const auto& o : d.options)
      takes_id = takes_id || o.value_name == "ID" || o.value_name == "SLUG" || o.value_name == "CONNECTION";
    if (!takes_id) continue;
    INFO(d.path);
    const std::string next = next_step(d.path, error_info(ErrorCode::not_found).exit_code);
    CHECK(next.find("`alumia-connect ") != std::string::npos);
    CHECK(next.find(" list`") != std::string::npos);
    // A refused value names the command's --help.
    CHECK(next_step(d.path, error_info(ErrorCode::validation_error).exit_code) ==
          "; see `alumia-connect " + d.path + " --help`");
  }
}
