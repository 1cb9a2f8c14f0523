#pragma once
// docs/API.md, generated from the route table: `alumia-connectd --print-api-md > docs/API.md`.
// tests/unit/test_api_doc.cpp fails when the committed file differs from what this returns.
#include <string>

namespace alumia::daemon {

std::string api_markdown();

}  // namespace alumia::daemon
