// Columns and row readers of the webhook tables (sqlite_rows.hpp).
#include "sqlite_rows.hpp"

#include <stdexcept>

namespace alumia::sqlite {
namespace {

// Only the daemon writes these rows; a provider it does not know is damage, never a verifier to guess.
Provider provider_column(const SQLite::Column& c) {
  const std::string text = c.getString();
  if (auto p = parse_provider(text)) return *p;
  throw std::runtime_error("unknown provider '" + text + "' in the webhook store");
}

}  // namespace

const char* const k_endpoint_cols =
    "SELECT id,user_id,provider,connection_id,label,status,relay_to,config,max_body_bytes,previous_secret_expires_at,"
    "received,duplicates,rejected,verification_failures,last_delivery_at,created_at,updated_at,deleted_at,"
    "last_error_code,last_error_message,last_error_at,rate_per_second,rate_burst,rate_limited,retention_days FROM "
    "webhook_endpoints";
const char* const k_job_cols =
    "SELECT id,event_id,endpoint_id,user_id,state,attempts,next_attempt_at,last_status,last_error,created_at,"
    "updated_at,finished_at FROM webhook_jobs";
// The newest job of an event gives its jobState.
const char* const k_event_cols =
    "SELECT e.id,e.endpoint_id,e.user_id,e.provider,e.event_key,e.event_type,e.received_at,"
    "COALESCE((SELECT j.state FROM webhook_jobs j WHERE j.event_id=e.id ORDER BY j.created_at DESC, j.rowid DESC "
    "LIMIT 1),'') AS job_state,e.body_removed_at";

const char* const k_job_counts_sql =
    "SELECT c.endpoint_id,c.state,c.n FROM webhook_endpoints e JOIN webhook_job_counts c ON c.endpoint_id=e.id "
    "WHERE e.user_id=?";
const char* const k_oldest_queued_sql =
    "SELECT id,event_id,endpoint_id,user_id,state,attempts,next_attempt_at,last_status,last_error,created_at,"
    "updated_at,finished_at FROM webhook_jobs WHERE endpoint_id=? AND state='queued' ORDER BY next_attempt_at LIMIT 1";

const char* const k_claim_sql =
    "SELECT id,event_id,endpoint_id,user_id,state,attempts,next_attempt_at,last_status,last_error,created_at,"
    "updated_at,finished_at FROM webhook_jobs WHERE endpoint_id=?1 AND state=?2 AND next_attempt_at <= ?3 ORDER BY "
    "next_attempt_at LIMIT ?4";
const char* const k_next_due_sql = "SELECT MIN(next_attempt_at) FROM webhook_jobs WHERE endpoint_id=?1 AND state=?2";
const char* const k_requeue_running_sql =
    "UPDATE webhook_jobs SET state='queued',next_attempt_at=?1,updated_at=?2 WHERE endpoint_id IN (SELECT id FROM "
    "webhook_endpoints) AND state='running'";

WebhookEndpointRecord read_endpoint(SQLite::Statement& q) {
  WebhookEndpointRecord e;
  e.id = q.getColumn(0).getString();
  e.user_id = q.getColumn(1).getString();
  e.provider = provider_column(q.getColumn(2));
  e.connection_id = opt_str(q.getColumn(3));
  e.label = q.getColumn(4).getString();
  // Text we did not write reads as the state that does least: an endpoint that refuses, a job that waits.
  e.status = parse_endpoint_status(q.getColumn(5).getString()).value_or(EndpointStatus::disabled);
  e.relay_to = opt_str(q.getColumn(6));
  e.config = q.getColumn(7).getString();
  e.max_body_bytes = q.getColumn(8).getInt64();
  e.previous_secret_expires_at = opt_int(q.getColumn(9));
  e.received = q.getColumn(10).getInt64();
  e.duplicates = q.getColumn(11).getInt64();
  e.rejected = q.getColumn(12).getInt64();
  e.verification_failures = q.getColumn(13).getInt64();
  e.last_delivery_at = opt_int(q.getColumn(14));
  e.created_at = q.getColumn(15).getInt64();
  e.updated_at = q.getColumn(16).getInt64();
  e.deleted_at = opt_int(q.getColumn(17));
  if (const auto at = opt_int(q.getColumn(20)))
    e.last_error = EndpointError{q.getColumn(18).getString(), q.getColumn(19).getString(), *at};
  const auto per_second = opt_int(q.getColumn(21));
  const auto burst = opt_int(q.getColumn(22));
  if (per_second && burst) e.rate_limit = RateLimit{*per_second, *burst};
  e.rate_limited = q.getColumn(23).getInt64();
  e.retention_days = opt_int(q.getColumn(24));
  return e;
}

WebhookJob read_job(SQLite::Statement& q) {
  WebhookJob j;
  j.id = q.getColumn(0).getString();
  j.event_id = q.getColumn(1).getString();
  j.endpoint_id = q.getColumn(2).getString();
  j.user_id = q.getColumn(3).getString();
  j.state = parse_job_state(q.getColumn(4).getString()).value_or(JobState::dead);
  j.attempts = q.getColumn(5).getInt64();
  j.next_attempt_at = q.getColumn(6).getInt64();
  j.last_status = opt_int(q.getColumn(7));
  j.last_error = opt_str(q.getColumn(8));
  j.created_at = q.getColumn(9).getInt64();
  j.updated_at = q.getColumn(10).getInt64();
  j.finished_at = opt_int(q.getColumn(11));
  return j;
}

WebhookEvent read_event(SQLite::Statement& q) {
  WebhookEvent e;
  e.id = q.getColumn(0).getString();
  e.endpoint_id = q.getColumn(1).getString();
  e.user_id = q.getColumn(2).getString();
  e.provider = provider_column(q.getColumn(3));
  e.event_key = q.getColumn(4).getString();
  e.event_type = q.getColumn(5).getString();
  e.received_at = q.getColumn(6).getInt64();
  e.job_state = parse_job_state(q.getColumn(7).getString());  // '': no job
  e.body_removed_at = opt_int(q.getColumn(8));
  return e;
}

}  // namespace alumia::sqlite
