// The CLI's terminal sanitizer (issue 10 item 5): control characters from the daemon are shown,
// never run, and valid text is left alone.
#include "output.hpp"
#include "test_cli_support.hpp"

#include <alumia/base/text.hpp>

#include <catch2/catch.hpp>

#include <sstream>
#include <string>

using namespace alumia;
using namespace alumia::cli;
using namespace std::string_literals;

namespace {

// Nothing a terminal acts on: no C0 (newlines and tabs included), DEL or C1, raw or as UTF-8.
bool inert(const std::string& s) { return !find_control_character(s); }

}  // namespace

TEST_CASE("terminal_safe: control characters become visible escapes", "[cli][terminal]") {
  CHECK(terminal_safe("push\x1b]52;c;aGVsbG8=\x07") == "push\\x1b]52;c;aGVsbG8=\\x07");  // OSC 52 (clipboard)
  CHECK(terminal_safe("\x1b[2J\x1b[31mred") == "\\x1b[2J\\x1b[31mred");
  CHECK(terminal_safe("a\x07z") == "a\\x07z");           // BEL
  CHECK(terminal_safe("nul\0here"s) == "nul\\x00here");  // NUL
  CHECK(terminal_safe("del\x7f") == "del\\x7f");         // DEL
  CHECK(terminal_safe("csi\xc2\x9b"
                      "31m") == "csi\\u009b31m");  // C1 CSI, as UTF-8
  CHECK(terminal_safe("nel\xc2\x85") == "nel\\u0085");
  CHECK(terminal_safe("raw\x9b"
                      "31m") == "raw\\x9b31m");            // C1 CSI as a raw byte (8-bit terminals)
  CHECK(terminal_safe("bad\xff\xc3") == "bad\\xff\\xc3");  // not UTF-8 at all
  CHECK(terminal_safe("cr\rover") == "cr\\rover");
}

TEST_CASE("terminal_safe: valid UTF-8 text is kept as is", "[cli][terminal]") {
  for (const std::string text : {"plain ascii", "café — naïve", "日本語のラベル", "emoji 🚀 ok", "€ 0x82 inside €",
                                 "\xc2\xa0nbsp", "back\\slash"})
    CHECK(terminal_safe(text) == text);
}

TEST_CASE("terminal_safe: tabs and newlines from data are escaped in a cell, kept in a block", "[cli][terminal]") {
  CHECK(terminal_safe("two\nlines\tand a tab") == "two\\nlines\\tand a tab");
  CHECK(terminal_safe("two\nlines\tand a tab", Layout::block) == "two\nlines\tand a tab");
  CHECK(terminal_safe("esc\x1b in a block\n", Layout::block) == "esc\\x1b in a block\n");
  CHECK(inert(terminal_safe("\x1b\x07\x9b\xc2\x9b\x7f\n\t\r"s + '\0')));
}

TEST_CASE("print_table and print_fields escape every cell, key and value", "[cli][terminal]") {
  std::ostringstream out;
  print_table(out, Table{{"ID", "LABEL"}, {{"1", "evil\x1b]52;c;aGVsbG8=\x07"}, {"2", "two\nlines"}}});
  CHECK(out.str() == "ID  LABEL\n1   evil\\x1b]52;c;aGVsbG8=\\x07\n2   two\\nlines\n");
  std::ostringstream fields;
  print_fields(
      fields, {{"label", "a\x1b[8mhidden"}, {"x-github-event", "push\x07"}},
      [](const std::string& key, const std::string& value) { return key == "label" ? "[" + value + "]" : value; });
  CHECK(fields.str() == "label:           [a\\x1b[8mhidden]\nx-github-event:  push\\x07\n");
}

TEST_CASE("TerminalFilter: stdout cannot carry a control sequence, whatever a command writes", "[cli][terminal]") {
  std::ostringstream sink;
  TerminalFilter::Mode mode = TerminalFilter::Mode::escape;
  {
    TerminalFilter filter(sink.rdbuf(), [&] { return mode; });
    std::ostream out(&filter);
    out << "title\x1b]0;owned\x07 line\n" << std::flush;
    CHECK(sink.str() == "title\\x1b]0;owned\\x07 line\n");
    sink.str("");
    // Colours from paint() pass only when colour is on, and nothing else does.
    mode = TerminalFilter::Mode::escape_keep_sgr;
    out << "\x1b[32mactive\x1b[0m \x1b]52;c;eA==\x07 \x1b[2J\n" << std::flush;
    CHECK(sink.str() == "\x1b[32mactive\x1b[0m \\x1b]52;c;eA==\\x07 \\x1b[2J\n");
    sink.str("");
    // A sequence split across writes is judged whole: a UTF-8 character, a colour code.
    out << "caf\xc3";
    out << "\xa9 \x1b[";
    out << "33mq\x1b[0m\n" << std::flush;
    CHECK(sink.str() == "caf\xc3\xa9 \x1b[33mq\x1b[0m\n");
    sink.str("");
    // --json: exact.
    mode = TerminalFilter::Mode::raw;
    out << "{\"a\":\"\x7f\"}\n" << std::flush;
    CHECK(sink.str() == "{\"a\":\"\x7f\"}\n");
    sink.str("");
    mode = TerminalFilter::Mode::escape;
    out << "tail\xe6\x97";  // an incomplete character left at exit is escaped, not dropped
  }
  CHECK(sink.str() == "tail\\xe6\\x97");
}

TEST_CASE("CliContext: out and err run through the filter, --json stdout stays exact", "[cli][terminal]") {
  testing::CliHarness h;
  h.ctx.out << "label \x1b]52;c;aGVsbG8=\x07\n";
  h.ctx.err << "error \x1b[2J\n";
  h.ctx.note("note \x9b");
  CHECK(h.out.str() == "label \\x1b]52;c;aGVsbG8=\\x07\n");
  CHECK(h.err.str() == "error \\x1b[2J\nnote \\x9b\n");
  h.ctx.global.json = true;
  h.ctx.out << "{\"x\":\"\\u001b\x7f\"}\n";
  CHECK(h.out.str() == "label \\x1b]52;c;aGVsbG8=\\x07\n{\"x\":\"\\u001b\x7f\"}\n");
}

TEST_CASE("labels refuse control characters; printable UTF-8 is accepted", "[terminal]") {
  for (const std::string& bad : {"nul\0x"s, "esc\x1b[31m"s, "bel\x07"s, "del\x7f"s, "c1\xc2\x9b"s, "raw\x9b"s, "\n"s}) {
    INFO(bad);
    CHECK(find_control_character(bad));
    auto st = check_no_control_characters(bad, "label");
    REQUIRE_FALSE(st);
    CHECK(st.error().code == ErrorCode::bad_request);
  }
  for (const std::string good : {"prod", "café — naïve", "€ uses 0x82 as a continuation byte", "日本語", ""})
    CHECK(check_no_control_characters(good, "label"));
}
