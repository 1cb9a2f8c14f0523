// The metrics registry and its Prometheus text writer (base/metrics.hpp, GET /metrics): what a
// registered series records, and the exposition format 0.0.4 byte for byte (HELP/TYPE, escaping,
// cumulative buckets with le="+Inf", _sum and _count). The functional test (test_metrics) parses a
// real scrape with prometheus_client's parser.
#include <alumia/base/metrics.hpp>

#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <thread>

using namespace alumia::metrics;

TEST_CASE("metrics: a counter and a gauge written with HELP and TYPE, families in name order", "[metrics]") {
  Registry r;
  r.gauge("b_queue", "jobs waiting").set(7);
  Counter& c = r.counter("a_requests_total", "requests served", {{"route", "/x"}, {"method", "GET"}});
  c.inc();
  c.inc(2);
  CHECK(c.value() == 3);
  CHECK(r.text() ==
        "# HELP a_requests_total requests served\n"
        "# TYPE a_requests_total counter\n"
        "a_requests_total{route=\"/x\",method=\"GET\"} 3\n"
        "# HELP b_queue jobs waiting\n"
        "# TYPE b_queue gauge\n"
        "b_queue 7\n");
}

TEST_CASE("metrics: registering again returns the same series; a clash is refused", "[metrics]") {
  Registry r;
  Counter& a = r.counter("x_total", "x", {{"k", "1"}});
  Counter& b = r.counter("x_total", "x", {{"k", "1"}});
  Counter& other = r.counter("x_total", "x", {{"k", "2"}});
  CHECK(&a == &b);
  CHECK(&a != &other);
  CHECK_THROWS_AS(r.gauge("x_total", "x"), std::invalid_argument);                    // another type
  CHECK_THROWS_AS(r.counter("x_total", "another help"), std::invalid_argument);       // another help
  CHECK_THROWS_AS(r.counter("1bad", "x"), std::invalid_argument);                     // a bad metric name
  CHECK_THROWS_AS(r.counter("y_total", "x", {{"a-b", "v"}}), std::invalid_argument);  // a bad label name
  CHECK_THROWS_AS(r.counter("y_total", "x", {{"__x", "v"}}), std::invalid_argument);  // reserved
  CHECK_THROWS_AS(r.histogram("h", "x", {1, 1}), std::invalid_argument);              // not increasing
  CHECK_THROWS_AS(r.histogram("h", "x", {1, std::numeric_limits<double>::infinity()}), std::invalid_argument);
  r.histogram("h2", "x", {1, 2});
  CHECK_THROWS_AS(r.histogram("h2", "x", {1, 3}), std::invalid_argument);  // other buckets
}

TEST_CASE("metrics: a histogram's buckets are cumulative, le=+Inf equals _count, bounds inclusive", "[metrics]") {
  Registry r;
  Histogram& h = r.histogram("lat_seconds", "latency", {0.1, 1}, {{"route", "/a"}});
  h.observe(0.05);
  h.observe(0.1);  // on the bound: counted in le="0.1"
  h.observe(0.5);
  h.observe(20);
  CHECK(h.count() == 4);
  CHECK(h.sum() == Approx(20.65));
  CHECK(r.text() ==
        "# HELP lat_seconds latency\n"
        "# TYPE lat_seconds histogram\n"
        "lat_seconds_bucket{route=\"/a\",le=\"0.1\"} 2\n"
        "lat_seconds_bucket{route=\"/a\",le=\"1\"} 3\n"
        "lat_seconds_bucket{route=\"/a\",le=\"+Inf\"} 4\n"
        "lat_seconds_sum{route=\"/a\"} 20.65\n"
        "lat_seconds_count{route=\"/a\"} 4\n");
}

TEST_CASE("metrics: label values and help are escaped as the format says", "[metrics]") {
  CHECK(escape_label_value("a\\b\"c\nd") == "a\\\\b\\\"c\\nd");
  CHECK(escape_help("a\\b\"c\nd") == "a\\\\b\"c\\nd");  // quotes stay in help
  Registry r;
  r.counter("e_total", "line one\nline \\two", {{"v", "say \"hi\""}}).inc();
  CHECK(r.text() ==
        "# HELP e_total line one\\nline \\\\two\n"
        "# TYPE e_total counter\n"
        "e_total{v=\"say \\\"hi\\\"\"} 1\n");
}

TEST_CASE("metrics: values as Prometheus reads them", "[metrics]") {
  CHECK(format_value(0.25) == "0.25");
  CHECK(format_value(10) == "10");
  CHECK(format_value(std::numeric_limits<double>::infinity()) == "+Inf");
  CHECK(format_value(-std::numeric_limits<double>::infinity()) == "-Inf");
  CHECK(format_value(std::nan("")) == "NaN");
  CHECK(valid_metric_name("alumia:x_total"));
  CHECK_FALSE(valid_metric_name(""));
  CHECK_FALSE(valid_metric_name("a b"));
  CHECK(valid_label_name("route"));
  CHECK_FALSE(valid_label_name("a:b"));
}

TEST_CASE("metrics: recording from many threads loses nothing", "[metrics]") {
  Registry r;
  Counter& c = r.counter("n_total", "n");
  Histogram& h = r.histogram("v", "v", {1, 10});
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 10'000; ++i) {
        c.inc();
        h.observe(i % 3 == 0 ? 0.5 : 5);
      }
    });
  for (auto& t : threads) t.join();
  CHECK(c.value() == 40'000);
  CHECK(h.count() == 40'000);
  CHECK(h.bucket(0) + h.bucket(1) + h.bucket(2) == 40'000);
  CHECK(h.bucket(2) == 0);
}

TEST_CASE("metrics: the writer adds figures computed at the scrape in the same format", "[metrics]") {
  TextWriter w;
  w.family("jobs", "jobs per state", "gauge");
  w.sample("jobs", {{"state", "queued"}}, uint64_t{3});
  w.sample("age_seconds", {}, 1.5);
  CHECK(w.text() == "# HELP jobs jobs per state\n# TYPE jobs gauge\njobs{state=\"queued\"} 3\nage_seconds 1.5\n");
}
