// The intake log's record decoder (common/store/intake_record.cpp): what the webhook store reads back
// from the log after a crash, so any bytes a torn or corrupted log holds. The input is one record's
// payload. Property: a record that decodes encodes back to exactly the same bytes (decode accepts one
// exact record and nothing else).
#include "fuzz_common.hpp"

#include "intake_record.hpp"

#include <cstdint>
#include <string>

using namespace alumia;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view record = fuzz::as_text(data, size);
  const auto decoded = intake_record::decode(record);
  if (!decoded) return 0;
  if (intake_record::encode(*decoded) != record)
    fuzz::finding("fuzz_intake_record", "a decoded record does not encode back to the same bytes");
  return 0;
}
