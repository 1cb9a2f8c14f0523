#pragma once
// Generators that walk build_app(): shell completions (bash, zsh, fish) and the man page. The
// committed files in completions/ and man/ are their output; unit tests check for drift.
#include <CLI/CLI.hpp>

#include <string>
#include <vector>

namespace alumia::cli {

struct OptionDoc {
  std::vector<std::string> names;  // "-q", "--quiet"
  std::string value_name;          // "" for flags
  std::string description;
};

struct PositionalDoc {
  std::string name;
  std::string description;
  bool required = false;
};

struct CommandDoc {
  std::string path;  // "" for the root, "connections list"
  std::string description;
  bool hidden = false;
  std::vector<OptionDoc> options;  // the command's own options (globals only on the root)
  std::vector<PositionalDoc> positionals;
  std::vector<std::string> subcommands;  // names, in definition order
};

// Arguments whose values come from the running daemon (issue 15 item 6): the generated scripts call
// the hidden `alumia-connect __complete KIND`, which prints one `value<TAB>description` line per
// connection, endpoint or connector, within a short timeout and silently nothing when the daemon is
// down. `option` is empty for the command's positional argument.
struct DynamicArg {
  const char* path;    // "connections show"
  const char* option;  // "--reconnect", or "" for the positional
  const char* kind;    // "connections", "endpoints" or "connectors"
};
const std::vector<DynamicArg>& dynamic_args();

// Every command, depth first, root first. `include_hidden` adds commands with an empty group.
std::vector<CommandDoc> describe_commands(const CLI::App& root, bool include_hidden);

std::string generate_bash_completion(const CLI::App& root);
std::string generate_zsh_completion(const CLI::App& root);
std::string generate_fish_completion(const CLI::App& root);
std::string generate_man_page(const CLI::App& root);

}  // namespace alumia::cli
