#include "output.hpp"

#include <alumia/base/secret.hpp>
#include <alumia/base/text.hpp>

#include <openssl/crypto.h>

#include <algorithm>

namespace alumia::cli {
namespace {

constexpr char k_hex[] = "0123456789abcdef";

void append_byte_escape(std::string& out, unsigned char c) {
  out += "\\x";
  out.push_back(k_hex[c >> 4]);
  out.push_back(k_hex[c & 0xf]);
}

// ESC [ (digits or ;)* m at `at`: the length of the sequence; 0 when it is something else; npos
// when `text` ends before it could tell.
std::size_t sgr_length(std::string_view text, std::size_t at) {
  if (at + 1 >= text.size()) return std::string_view::npos;
  if (text[at + 1] != '[') return 0;
  for (std::size_t i = at + 2; i < text.size(); ++i) {
    const char c = text[i];
    if (c == 'm') return i - at + 1;
    if ((c < '0' || c > '9') && c != ';') return 0;
    if (i - at > 32) return 0;
  }
  return std::string_view::npos;
}

// How many bytes at the end of `text` start a UTF-8 sequence that the next write may complete.
std::size_t incomplete_utf8_tail(std::string_view text) {
  const std::size_t n = text.size();
  for (std::size_t back = 1; back <= 3 && back <= n; ++back) {
    const auto c = static_cast<unsigned char>(text[n - back]);
    if ((c & 0xc0) == 0x80) continue;  // a continuation byte: look further back for the lead
    const std::size_t need = c >= 0xf0 && c <= 0xf4 ? 4 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xc2 && c <= 0xdf ? 2 : 1;
    return need > back ? back : 0;
  }
  return 0;
}

}  // namespace

std::string terminal_safe(std::string_view text, Layout layout) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size();) {
    const Utf8Step step = decode_utf8(text, i);
    const char32_t c = step.code_point;
    if (!step.valid) {
      append_byte_escape(out, static_cast<unsigned char>(text[i]));
    } else if (!is_control_code_point(c)) {
      out.append(text.substr(i, step.length));
    } else if (c == '\n' || c == '\t') {
      if (layout == Layout::block) out.push_back(static_cast<char>(c));
      else out += c == '\n' ? "\\n" : "\\t";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c < 0x80) {
      append_byte_escape(out, static_cast<unsigned char>(c));
    } else {
      out += "\\u00";
      out.push_back(k_hex[c >> 4]);
      out.push_back(k_hex[c & 0xf]);
    }
    i += step.length;
  }
  return out;
}

TerminalFilter::TerminalFilter(std::streambuf* sink, std::function<Mode()> mode)
    : m_sink(sink), m_mode(std::move(mode)) {}

TerminalFilter::~TerminalFilter() { drain(true); }

TerminalFilter::int_type TerminalFilter::overflow(int_type ch) {
  if (traits_type::eq_int_type(ch, traits_type::eof())) return traits_type::not_eof(ch);
  m_pending.push_back(traits_type::to_char_type(ch));
  return drain(false) ? ch : traits_type::eof();
}

std::streamsize TerminalFilter::xsputn(const char* s, std::streamsize n) {
  m_pending.append(s, static_cast<std::size_t>(n));
  return drain(false) ? n : 0;
}

int TerminalFilter::sync() {
  if (!drain(true)) return -1;
  return m_sink->pubsync();
}

// Forwards what is complete; `final` forwards the rest too (escaped: it is not a whole sequence).
bool TerminalFilter::drain(bool final) {
  if (m_pending.empty()) return true;
  const Mode mode = m_mode ? m_mode() : Mode::escape;
  std::string out;
  std::size_t done = 0;
  if (mode == Mode::raw) {
    out.swap(m_pending);
    done = out.size();
  } else {
    const std::string_view text = m_pending;
    std::size_t plain = 0;  // start of the text not yet escaped
    std::size_t i = 0;
    for (; i < text.size(); ++i) {
      if (text[i] != '\x1b' || mode != Mode::escape_keep_sgr) continue;
      const std::size_t len = sgr_length(text, i);
      if (len == std::string_view::npos && !final) break;  // wait for the rest of the sequence
      if (len == 0 || len == std::string_view::npos) continue;
      out += terminal_safe(text.substr(plain, i - plain), Layout::block);
      out.append(text.substr(i, len));
      i += len - 1;
      plain = i + 1;
    }
    std::size_t end = i;
    if (!final && end == text.size()) end -= incomplete_utf8_tail(text.substr(plain));
    out += terminal_safe(text.substr(plain, end - plain), Layout::block);
    done = end;
    OPENSSL_cleanse(m_pending.data(), done);  // `token` and `keys create` print secrets through here
    m_pending.erase(0, done);
  }
  const auto written = m_sink->sputn(out.data(), static_cast<std::streamsize>(out.size()));
  const bool complete = written == static_cast<std::streamsize>(out.size());
  wipe_string(out);
  return complete;
}

namespace {

constexpr std::size_t k_min_cut_width = 8;  // a column is never cut narrower than this
std::size_t g_table_width = 0;

std::size_t display_width(std::string_view text) {
  std::size_t n = 0;
  for (std::size_t i = 0; i < text.size(); i += decode_utf8(text, i).length) ++n;
  return n;
}

// The first `width - 1` code points and "…".
std::string cut(const std::string& text, std::size_t width) {
  std::size_t i = 0;
  for (std::size_t n = 0; n + 1 < width && i < text.size(); ++n) i += decode_utf8(text, i).length;
  return text.substr(0, i) + "\u2026";
}

// Narrows the widest columns (never the first) until the row fits `limit`.
void fit(std::vector<std::size_t>& widths, std::size_t limit) {
  if (limit == 0 || widths.size() < 2) return;
  for (;;) {
    std::size_t total = 2 * (widths.size() - 1);
    for (const auto w : widths) total += w;
    if (total <= limit) return;
    std::size_t widest = 0;
    for (std::size_t i = 1; i < widths.size(); ++i)
      if (widths[i] > k_min_cut_width && (widest == 0 || widths[i] > widths[widest])) widest = i;
    if (widest == 0) return;  // nothing left to cut: let the terminal wrap
    std::size_t second = k_min_cut_width;
    for (std::size_t i = 1; i < widths.size(); ++i)
      if (i != widest) second = std::max(second, std::min(widths[i], widths[widest]));
    const std::size_t excess = total - limit;
    widths[widest] -= std::max<std::size_t>(1, std::min(excess, widths[widest] - second));
  }
}

}  // namespace

void set_table_width(std::size_t columns) { g_table_width = columns; }
std::size_t table_width() { return g_table_width; }

std::vector<std::string> wrap_text(const std::string& text, std::size_t width) {
  std::vector<std::string> lines{""};
  if (width == 0) {
    lines.back() = text;
    return lines;
  }
  std::size_t used = 0;
  std::size_t start = 0;
  while (start <= text.size()) {
    std::size_t end = text.find(' ', start);
    if (end == std::string::npos) end = text.size();
    const std::string word = text.substr(start, end - start);
    const std::size_t w = display_width(word);
    if (used > 0 && used + 1 + w > width) {
      lines.emplace_back();
      used = 0;
    }
    if (used > 0) {
      lines.back() += ' ';
      ++used;
    }
    lines.back() += word;
    used += w;
    start = end + 1;
  }
  return lines;
}

void print_table(std::ostream& out, const Table& raw, const CellDecorator& decorate) {
  Table table;
  for (const auto& h : raw.headers) table.headers.push_back(terminal_safe(h));
  for (const auto& row : raw.rows) {
    auto& safe = table.rows.emplace_back();
    for (const auto& cell : row) safe.push_back(terminal_safe(cell));
  }
  std::vector<std::size_t> widths(table.headers.size(), 0);
  for (std::size_t i = 0; i < table.headers.size(); ++i) widths[i] = display_width(table.headers[i]);
  for (const auto& row : table.rows)
    for (std::size_t i = 0; i < row.size() && i < widths.size(); ++i)
      widths[i] = std::max(widths[i], display_width(row[i]));
  fit(widths, g_table_width);
  const auto line = [&](const std::vector<std::string>& cells, bool header) {
    std::string s;
    for (std::size_t i = 0; i < widths.size(); ++i) {
      std::string cell = i < cells.size() ? cells[i] : "";
      if (display_width(cell) > widths[i]) cell = cut(cell, widths[i]);
      const bool last = i + 1 == widths.size();
      const std::size_t pad = last ? 0 : widths[i] - display_width(cell) + 2;
      if (!header && decorate) cell = decorate(i, cell);
      s += cell;
      s.append(pad, ' ');
    }
    while (!s.empty() && s.back() == ' ') s.pop_back();
    out << s << '\n';
  };
  line(table.headers, true);
  for (const auto& row : table.rows) line(row, false);
}

void print_fields(std::ostream& out, const std::vector<std::pair<std::string, std::string>>& fields,
                  const FieldDecorator& decorate) {
  std::vector<std::pair<std::string, std::string>> safe;
  for (const auto& [k, v] : fields) safe.emplace_back(terminal_safe(k), terminal_safe(v));
  std::size_t w = 0;
  for (const auto& [k, v] : safe) w = std::max(w, k.size());
  for (std::size_t i = 0; i < safe.size(); ++i) {
    const auto& [k, v] = safe[i];
    out << k << ':' << std::string(w - k.size() + 2, ' ') << (decorate ? decorate(fields[i].first, v) : v) << '\n';
  }
  for (auto& [k, v] : safe) wipe_string(v);  // callers print secrets once with this and wipe theirs
}

std::string jstr(const json& j, std::string_view key) {
  if (!j.is_object()) return {};
  auto it = j.find(key);
  if (it == j.end() || !it->is_string()) return {};
  return it->get<std::string>();
}

bool jbool(const json& j, std::string_view key) {
  if (!j.is_object()) return false;
  auto it = j.find(key);
  return it != j.end() && it->is_boolean() && it->get<bool>();
}

std::string jdisplay(const json& j, std::string_view key) {
  if (!j.is_object()) return "-";
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return "-";
  if (it->is_string()) return it->get<std::string>().empty() ? "-" : it->get<std::string>();
  if (it->is_boolean()) return it->get<bool>() ? "yes" : "no";
  if (it->is_array()) {
    std::string s;
    for (const auto& e : *it) {
      if (!s.empty()) s += ", ";
      s += e.is_string() ? e.get<std::string>() : e.dump();
    }
    return s.empty() ? "-" : s;
  }
  return it->dump();
}

std::string short_time(const std::string& iso) {
  if (iso.size() < 19 || iso[10] != 'T') return iso.empty() ? "-" : iso;
  std::string s = iso.substr(0, 19);
  s[10] = ' ';
  return s;
}

// Text the CLI did not get from the daemon as JSON (a log line) may not be UTF-8: replaced, never thrown.
void print_json(std::ostream& out, const json& data) {
  out << data.dump(2, ' ', false, json::error_handler_t::replace) << '\n';
}

}  // namespace alumia::cli
