#pragma once
// The webhook store's own metrics, one definition for both backends' writers (SPEC §9 /metrics): the
// series keep their name, help and buckets whichever backend commits.
#include <alumia/base/metrics.hpp>

namespace alumia::store_metrics {

// Operations per group commit of the webhook store's writer (SQLite: group_writer.cpp; PostgreSQL:
// pg_webhook_ingest.cpp).
inline metrics::Histogram& write_batch_sizes() {
  static metrics::Histogram& h = metrics::process_registry().histogram(
      "alumia_store_write_batch_size", "operations per group commit of the webhook store's writer",
      {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024});
  return h;
}

// Times the SQLite writer passed its connection between its background thread and its catch-up thread
// (group_writer.cpp): how often a backlog of deliveries built up, and how often it was worked off.
inline metrics::Counter& writer_handovers() {
  static metrics::Counter& c = metrics::process_registry().counter(
      "alumia_store_writer_handovers_total",
      "times the webhook store's SQLite writer passed its connection between its background and catch-up threads");
  return c;
}

}  // namespace alumia::store_metrics
