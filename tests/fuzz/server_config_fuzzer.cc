// clavisd's config file (docs/clavisd.md): JSON parsed into ServerConfig by
// ParseConfigJson, then completed and checked by CompleteConfig, exactly as
// `clavisd --config FILE` does before anything starts.
//
// Neither may crash; CompleteConfig answers only InvalidArgument or
// FailedPrecondition, and is idempotent (a completed config completes to
// itself, so defaults never fight a check). A config that completes also
// survives a round trip through JSON.
#include <cstddef>
#include <cstdint>
#include <string>

#include "google/protobuf/util/json_util.h"
#include "kms/server/server.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

// Compared as JSON rather than with MessageDifferencer: a NaN double is
// equal to itself there.
std::string Json(const clavis::server::ServerConfig& config) {
  std::string json;
  FUZZ_CHECK(google::protobuf::util::MessageToJsonString(config, &json).ok());
  return json;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto parsed = clavis::kms::ParseConfigJson(clavis::fuzz::AsView(data, size));
  if (!parsed.ok()) {
    FUZZ_CHECK(parsed.status().code() == absl::StatusCode::kInvalidArgument);
    return 0;
  }
  auto completed = clavis::kms::CompleteConfig(*parsed);
  if (!completed.ok()) {
    FUZZ_CHECK(completed.status().code() == absl::StatusCode::kInvalidArgument ||
               completed.status().code() == absl::StatusCode::kFailedPrecondition);
    return 0;
  }
  auto again = clavis::kms::CompleteConfig(*completed);
  FUZZ_CHECK(again.ok());
  const std::string json = Json(*completed);
  FUZZ_CHECK(Json(*again) == json);
  auto reparsed = clavis::kms::ParseConfigJson(json);
  FUZZ_CHECK(reparsed.ok());
  FUZZ_CHECK(Json(*reparsed) == json);
  return 0;
}
