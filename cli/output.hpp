#pragma once
// Human output: aligned tables and key/value blocks on stdout. Machine output (--json) is the
// envelope's data, pretty-printed with 2 spaces.
//
// The terminal is not the server's (issue 10 item 5): labels, account names, event types, header
// values and error messages come from the daemon, and through it from strangers. Everything human
// output prints passes terminal_safe(): the table and field printers apply it to every cell, key
// and value, and CliContext's stdout runs through a TerminalFilter, so a command that writes a
// server string with `<<` cannot let a control sequence through either.
#include <nlohmann/json.hpp>

#include <functional>
#include <ostream>
#include <streambuf>
#include <string>
#include <string_view>
#include <vector>

namespace alumia::cli {

using nlohmann::json;

// inline_: a value inside a line (a cell, a field): newlines and tabs from the data are escaped too,
// so data never starts a line of its own or shifts a column. block: free text (an event body, a
// message) keeps its \n and \t.
enum class Layout { inline_, block };

// Makes text safe for a terminal, visibly: C0 controls become \n, \t, \r or \xHH (ESC is \x1b), DEL
// is \x7f, C1 controls encoded in UTF-8 are \u0080-\u009f, and each byte that is not part of valid
// UTF-8 is \xHH (a raw 0x9b is an 8-bit CSI to some terminals). Valid UTF-8 is kept as it is.
std::string terminal_safe(std::string_view text, Layout layout = Layout::inline_);

// A streambuf in front of the real stdout buffer. `mode` is read on every write: raw passes
// everything (--json: JSON escaping already makes it exact), escape applies terminal_safe (block),
// escape_keep_sgr does too but lets the colour sequences paint() makes (ESC [ digits;... m) through.
// Writes are forwarded at once, except an incomplete UTF-8 or colour sequence at the end, which
// waits for the next write or a flush.
class TerminalFilter final : public std::streambuf {
 public:
  enum class Mode { raw, escape, escape_keep_sgr };
  TerminalFilter(std::streambuf* sink, std::function<Mode()> mode);
  ~TerminalFilter() override;
  TerminalFilter(const TerminalFilter&) = delete;
  TerminalFilter& operator=(const TerminalFilter&) = delete;

 protected:
  int_type overflow(int_type ch) override;
  std::streamsize xsputn(const char* s, std::streamsize n) override;
  int sync() override;

 private:
  bool drain(bool final);

  std::streambuf* m_sink;
  std::function<Mode()> m_mode;
  std::string m_pending;
};

// Every header and cell passes terminal_safe (inline); column widths come from that text;
// `decorate` (optional) wraps a cell after padding so colour codes do not break the alignment.
struct Table {
  std::vector<std::string> headers;
  std::vector<std::vector<std::string>> rows;
};
using CellDecorator = std::function<std::string(std::size_t column, const std::string& cell)>;
//
// Tables fit the terminal (issue 15 item 6): when set_table_width() was given the width of the
// terminal stdout is (CliContext does so for human output on a TTY), the widest columns other than
// the first (the id a user copies) are cut to fit, their cells ending in "…". Piped output and --json
// are never cut. Widths count code points, not bytes.
void print_table(std::ostream& out, const Table& table, const CellDecorator& decorate = {});
void set_table_width(std::size_t columns);  // 0: no limit
std::size_t table_width();                  // what set_table_width() was given
// Free text in lines of at most `width` code points, broken at spaces (a longer word stays whole);
// width 0: one line.
std::vector<std::string> wrap_text(const std::string& text, std::size_t width);

// "key:   value" lines, keys padded to the longest. Keys and values pass terminal_safe (inline);
// `decorate` (optional) then wraps a value, e.g. to colour it.
using FieldDecorator = std::function<std::string(const std::string& key, const std::string& value)>;
void print_fields(std::ostream& out, const std::vector<std::pair<std::string, std::string>>& fields,
                  const FieldDecorator& decorate = {});

// Tolerant accessors: missing or differently typed members give "" (never throw).
std::string jstr(const json& j, std::string_view key);
bool jbool(const json& j, std::string_view key);
// A value as a display string: strings as is, null as "-", arrays joined with ", ".
std::string jdisplay(const json& j, std::string_view key);
// ISO timestamps shortened for tables: "2025-11-29T03:28:00.123Z" → "2025-11-29 03:28:00".
std::string short_time(const std::string& iso);

void print_json(std::ostream& out, const json& data);

}  // namespace alumia::cli
