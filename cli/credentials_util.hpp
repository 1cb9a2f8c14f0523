#pragma once
// Shared by `connect`, `credentials`, `connections`, `oauth-client` and `webhooks`: how a connection
// is shown and how credential values are collected (--field, --from-stdin, or prompts on the TTY).
#include "app.hpp"

#include <map>
#include <string>
#include <vector>

namespace alumia::cli {

// "key=value" → {key, value}. The value may contain '='; the key must be non-empty and contain
// no whitespace.
CliResult<std::pair<std::string, std::string>> parse_field(const std::string& arg);
// All --field arguments; a key given twice is a usage error.
CliResult<std::map<std::string, std::string>> parse_fields(const std::vector<std::string>& args);
// A JSON object of string values (numbers and booleans are converted); anything else is a usage error.
CliResult<std::map<std::string, std::string>> parse_values_json(const std::string& text);

struct CredentialInput {
  std::vector<std::string> fields;  // --field key=value
  bool from_stdin = false;
};

// Collects the values for `connector`'s credentialFields. Warns when a secret field comes from
// argv; prompts (echo off for secrets) on a TTY; without one, missing required fields are a usage
// error. The caller wipes the returned values.
CliResult<std::map<std::string, std::string>> collect_credentials(CliContext& ctx, const json& connector,
                                                                  const CredentialInput& input);

// One secret that must not appear on the command line: prompted for with echo off when stdin is a
// terminal, otherwise one line of stdin (line ending dropped). Nothing is a usage error that shows
// `example`, a command line that pipes the value in. The caller wipes the result.
CliResult<std::string> read_secret(CliContext& ctx, const std::string& what, const std::string& example);

// POST /connections/:id/credentials with the values; wipes the request body afterwards.
CliResult<json> submit_credentials(CliContext& ctx, const std::string& connection_id,
                                   std::map<std::string, std::string>& values);

// Human view of one connection.
void print_connection(CliContext& ctx, const json& connection);
// SGR code for a status: of a connection, a webhook endpoint or a relay job.
std::string status_color(const std::string& status);
// print_fields' decorator that colours the values of the fields named "status" and "job".
FieldDecorator status_fields(const CliContext& ctx);

}  // namespace alumia::cli
