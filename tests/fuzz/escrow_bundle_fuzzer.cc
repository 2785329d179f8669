// The escrow bundle (docs/FORMAT.md "Escrow bundle (v1)"), read by
// clavis-recover from a file the customer keeps, possibly for years.
//
// ParseEscrowBundle must not crash, and a bundle it accepts has one
// canonical encoding: encoding it and parsing that back gives a bundle
// that encodes to the same bytes (so nothing parsed is lost or invented).
#include <cstddef>
#include <cstdint>
#include <string>

#include "kms/escrow/escrow_bundle.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

std::string Encode(const clavis::kms::EscrowBundle& bundle) {
  std::string out = clavis::kms::EncodeEscrowHeader(bundle.header);
  for (const auto& segment : bundle.segments) out += clavis::kms::EncodeEscrowSegment(segment);
  out += clavis::kms::EncodeEscrowTrailer(bundle.segments.size());
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto bundle = clavis::kms::ParseEscrowBundle(clavis::fuzz::AsView(data, size));
  if (!bundle.ok()) {
    FUZZ_CHECK(bundle.status().code() == absl::StatusCode::kInvalidArgument);
    return 0;
  }
  const std::string encoded = Encode(*bundle);
  auto again = clavis::kms::ParseEscrowBundle(encoded);
  FUZZ_CHECK(again.ok());
  FUZZ_CHECK(Encode(*again) == encoded);
  FUZZ_CHECK(again->segments.size() == bundle->segments.size());
  return 0;
}
