#pragma once
// Metrics of one process (SPEC §9, GET /metrics): counters, gauges and fixed-bucket histograms, and
// their Prometheus text exposition (format 0.0.4).
//
// Why this shape: recording sits on the request path, so a series is registered once (name, help,
// labels fixed then) and recording is one relaxed atomic add — no lock, no lookup, no allocation.
// Labels are values chosen at registration (a route's pattern, a method, a status class, a provider,
// an outcome), never request data such as a raw path, so the number of series is bounded by the code.
// Registration takes a lock and returns a reference that lives as long as the registry; registering
// the same name and labels again returns the same series, so a caller may keep a pointer in a static.
//
// The text writer (TextWriter) is public so that a scrape can add figures computed at that moment
// (counters the store keeps, jobs per state) after the registry's own, in the same format.
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace alumia::metrics {

// Label name → value pairs, in the order they are written.
using Labels = std::vector<std::pair<std::string, std::string>>;

class Counter {
 public:
  void inc(uint64_t n = 1) noexcept { m_value.fetch_add(n, std::memory_order_relaxed); }
  uint64_t value() const noexcept { return m_value.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> m_value{0};
};

class Gauge {
 public:
  void set(int64_t v) noexcept { m_value.store(v, std::memory_order_relaxed); }
  void add(int64_t d) noexcept { m_value.fetch_add(d, std::memory_order_relaxed); }
  int64_t value() const noexcept { return m_value.load(std::memory_order_relaxed); }

 private:
  std::atomic<int64_t> m_value{0};
};

// Buckets fixed at registration: upper bounds, strictly increasing and finite (+Inf is implied).
class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void observe(double v) noexcept;
  const std::vector<double>& bounds() const noexcept { return m_bounds; }
  // Observations ≤ bounds()[i], not cumulative; index bounds().size() is the +Inf overflow.
  uint64_t bucket(std::size_t i) const noexcept { return m_buckets[i].load(std::memory_order_relaxed); }
  uint64_t count() const noexcept { return m_count.load(std::memory_order_relaxed); }
  double sum() const noexcept { return m_sum.load(std::memory_order_relaxed); }

 private:
  std::vector<double> m_bounds;
  std::unique_ptr<std::atomic<uint64_t>[]> m_buckets;
  std::atomic<uint64_t> m_count{0};
  std::atomic<double> m_sum{0};
};

// Writes the exposition format: a family's # HELP and # TYPE lines, then its samples. Label values
// and help text are escaped (\\, \n, and in label values \"); +Inf, -Inf and NaN as the format spells them.
class TextWriter {
 public:
  // type: "counter", "gauge" or "histogram".
  void family(std::string_view name, std::string_view help, std::string_view type);
  void sample(std::string_view name, const Labels& labels, double value);
  void sample(std::string_view name, const Labels& labels, uint64_t value);
  void histogram(std::string_view name, const Labels& labels, const Histogram& h);
  const std::string& text() const noexcept { return m_out; }
  std::string take() noexcept { return std::move(m_out); }

 private:
  void series(std::string_view name, const Labels& labels, const std::pair<std::string, std::string>* extra);
  std::string m_out;
};

std::string escape_label_value(std::string_view v);
std::string escape_help(std::string_view v);
// Go's float formatting as Prometheus reads it: shortest round-trip, "+Inf", "-Inf", "NaN".
std::string format_value(double v);
// [a-zA-Z_:][a-zA-Z0-9_:]* (metric) and [a-zA-Z_][a-zA-Z0-9_]* not starting "__" (label).
bool valid_metric_name(std::string_view name);
bool valid_label_name(std::string_view name);

class Registry {
 public:
  Registry();
  ~Registry();
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // Throw std::invalid_argument on a bad name or label name, a name registered with another type or
  // help, or a histogram with other buckets: these are programming errors, found by the first run.
  Counter& counter(const std::string& name, const std::string& help, Labels labels = {});
  Gauge& gauge(const std::string& name, const std::string& help, Labels labels = {});
  Histogram& histogram(const std::string& name, const std::string& help, std::vector<double> bounds,
                       Labels labels = {});

  // Every family in name order, its series in registration order.
  void write(TextWriter& out) const;
  std::string text() const;

 private:
  struct Series;
  struct Family;
  Series& find_or_add(const std::string& name, const std::string& help, std::string_view type, Labels labels,
                      const std::vector<double>* bounds);
  mutable std::mutex m_mutex;
  std::vector<std::unique_ptr<Family>> m_families;
};

// The daemon's registry: the one process-wide instance, as spdlog's default logger is, so that the
// store's writer, the relay worker and the router record without each being handed it.
Registry& process_registry();

// Seconds buckets for request latency: 1 ms to 10 s.
const std::vector<double>& latency_buckets();

}  // namespace alumia::metrics
