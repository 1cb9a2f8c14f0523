// The metrics registry and its Prometheus text writer (metrics.hpp).
#include <alumia/base/metrics.hpp>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <stdexcept>
#include <variant>

namespace alumia::metrics {

struct Registry::Series {
  Labels labels;
  std::variant<Counter, Gauge, Histogram> value;
  template <class T, class... A>
  Series(Labels l, std::in_place_type_t<T> t, A&&... a) : labels(std::move(l)), value(t, std::forward<A>(a)...) {}
};

struct Registry::Family {
  std::string name;
  std::string help;
  std::string type;
  std::vector<double> bounds;  // histogram
  std::vector<std::unique_ptr<Series>> series;
};

Registry::Registry() = default;
Registry::~Registry() = default;

Histogram::Histogram(std::vector<double> bounds) : m_bounds(std::move(bounds)) {
  for (std::size_t i = 0; i < m_bounds.size(); ++i)
    if (!std::isfinite(m_bounds[i]) || (i > 0 && m_bounds[i] <= m_bounds[i - 1]))
      throw std::invalid_argument("histogram bounds must be finite and strictly increasing");
  m_buckets = std::make_unique<std::atomic<uint64_t>[]>(m_bounds.size() + 1);
}

void Histogram::observe(double v) noexcept {
  const auto at = std::lower_bound(m_bounds.begin(), m_bounds.end(), v) - m_bounds.begin();  // first bound ≥ v
  m_buckets[static_cast<std::size_t>(at)].fetch_add(1, std::memory_order_relaxed);
  m_sum.fetch_add(v, std::memory_order_relaxed);
  m_count.fetch_add(1, std::memory_order_relaxed);
}

std::string escape_label_value(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

std::string escape_help(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') out += "\\\\";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

std::string format_value(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[64];
  auto [p, ec] = std::to_chars(buf, buf + sizeof buf, v);
  return ec == std::errc{} ? std::string(buf, p) : "NaN";
}

namespace {
bool name_char(char c, bool first, bool colon) {
  const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colon && c == ':');
  return alpha || (!first && c >= '0' && c <= '9');
}
bool valid_name(std::string_view name, bool colon) {
  if (name.empty()) return false;
  for (std::size_t i = 0; i < name.size(); ++i)
    if (!name_char(name[i], i == 0, colon)) return false;
  return true;
}
}  // namespace

bool valid_metric_name(std::string_view name) { return valid_name(name, true); }
bool valid_label_name(std::string_view name) { return valid_name(name, false) && !name.starts_with("__"); }

void TextWriter::family(std::string_view name, std::string_view help, std::string_view type) {
  m_out.append("# HELP ").append(name).append(" ").append(escape_help(help)).append("\n");
  m_out.append("# TYPE ").append(name).append(" ").append(type).append("\n");
}

void TextWriter::series(std::string_view name, const Labels& labels, const std::pair<std::string, std::string>* extra) {
  m_out.append(name);
  if (labels.empty() && !extra) return;
  m_out += '{';
  bool first = true;
  auto one = [&](const std::string& k, const std::string& v) {
    if (!first) m_out += ',';
    first = false;
    m_out.append(k).append("=\"").append(escape_label_value(v)).append("\"");
  };
  for (const auto& [k, v] : labels) one(k, v);
  if (extra) one(extra->first, extra->second);
  m_out += '}';
}

void TextWriter::sample(std::string_view name, const Labels& labels, double value) {
  series(name, labels, nullptr);
  m_out.append(" ").append(format_value(value)).append("\n");
}

void TextWriter::sample(std::string_view name, const Labels& labels, uint64_t value) {
  series(name, labels, nullptr);
  m_out.append(" ").append(std::to_string(value)).append("\n");
}

void TextWriter::histogram(std::string_view name, const Labels& labels, const Histogram& h) {
  // Read the buckets first and derive the count from them, so that _count equals the +Inf bucket even
  // while observations land during the scrape (the sum may then be a step ahead: the format allows it).
  const std::string bucket = std::string(name) + "_bucket";
  uint64_t cumulative = 0;
  for (std::size_t i = 0; i <= h.bounds().size(); ++i) {
    cumulative += h.bucket(i);
    const std::pair<std::string, std::string> le{"le", i < h.bounds().size() ? format_value(h.bounds()[i]) : "+Inf"};
    series(bucket, labels, &le);
    m_out.append(" ").append(std::to_string(cumulative)).append("\n");
  }
  series(std::string(name) + "_sum", labels, nullptr);
  m_out.append(" ").append(format_value(h.sum())).append("\n");
  series(std::string(name) + "_count", labels, nullptr);
  m_out.append(" ").append(std::to_string(cumulative)).append("\n");
}

Registry::Series& Registry::find_or_add(const std::string& name, const std::string& help, std::string_view type,
                                        Labels labels, const std::vector<double>* bounds) {
  if (!valid_metric_name(name)) throw std::invalid_argument("metric name '" + name + "' is not valid");
  for (const auto& [k, v] : labels)
    if (!valid_label_name(k) || k == "le")
      throw std::invalid_argument("label name '" + k + "' of metric " + name + " is not valid");
  std::lock_guard lock(m_mutex);
  auto it = std::find_if(m_families.begin(), m_families.end(), [&](const auto& f) { return f->name == name; });
  if (it == m_families.end()) {
    auto f = std::make_unique<Family>();
    f->name = name;
    f->help = help;
    f->type = std::string(type);
    if (bounds) f->bounds = *bounds;
    it = m_families.insert(std::upper_bound(m_families.begin(), m_families.end(), name,
                                            [](const std::string& n, const auto& g) { return n < g->name; }),
                           std::move(f));
  } else if ((*it)->type != type || (*it)->help != help || (bounds && (*it)->bounds != *bounds)) {
    throw std::invalid_argument("metric " + name + " is already registered with another type, help or buckets");
  }
  Family& f = **it;
  for (auto& s : f.series)
    if (s->labels == labels) return *s;
  if (type == "counter") f.series.push_back(std::make_unique<Series>(std::move(labels), std::in_place_type<Counter>));
  else if (type == "gauge") f.series.push_back(std::make_unique<Series>(std::move(labels), std::in_place_type<Gauge>));
  else f.series.push_back(std::make_unique<Series>(std::move(labels), std::in_place_type<Histogram>, f.bounds));
  return *f.series.back();
}

Counter& Registry::counter(const std::string& name, const std::string& help, Labels labels) {
  return std::get<Counter>(find_or_add(name, help, "counter", std::move(labels), nullptr).value);
}

Gauge& Registry::gauge(const std::string& name, const std::string& help, Labels labels) {
  return std::get<Gauge>(find_or_add(name, help, "gauge", std::move(labels), nullptr).value);
}

Histogram& Registry::histogram(const std::string& name, const std::string& help, std::vector<double> bounds,
                               Labels labels) {
  Histogram probe(bounds);  // checks the bounds before anything is registered
  return std::get<Histogram>(find_or_add(name, help, "histogram", std::move(labels), &bounds).value);
}

void Registry::write(TextWriter& out) const {
  std::lock_guard lock(m_mutex);
  for (const auto& f : m_families) {
    out.family(f->name, f->help, f->type);
    for (const auto& s : f->series) {
      if (const auto* c = std::get_if<Counter>(&s->value)) out.sample(f->name, s->labels, c->value());
      else if (const auto* g = std::get_if<Gauge>(&s->value))
        out.sample(f->name, s->labels, static_cast<double>(g->value()));
      else out.histogram(f->name, s->labels, std::get<Histogram>(s->value));
    }
  }
}

std::string Registry::text() const {
  TextWriter w;
  write(w);
  return w.take();
}

Registry& process_registry() {
  static Registry r;
  return r;
}

const std::vector<double>& latency_buckets() {
  static const std::vector<double> b{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
  return b;
}

}  // namespace alumia::metrics
