// The SDK's sealed record (docs/FORMAT.md "Sealed record (v2)"), which
// applications read back from their own storage: hostile if that storage
// is.
//
// For every input:
//  - ParseSealedRecord must not crash; an accepted record splits the input
//    exactly and re-parses to the same fields;
//  - opening it with the fixture data key by the one-shot path (OpenRecord)
//    and by the cached-material path (OpenOwnRecord, when the header is the
//    material's) must agree;
//  - the input as an XOR mask over a record sealed at start-up: only the
//    unchanged record may open.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "client/src/sealed_record.h"
#include "crypto/encryption_context.h"
#include "tests/fuzz/fuzz_fixtures.h"
#include "tests/fuzz/fuzz_util.h"

namespace clavis::fuzz {
namespace {

using client_internal::ParsedSealedRecord;
using client_internal::RecordKeyMaterial;

struct Fixture {
  crypto::SecretBytes data_key = FixtureDataKey();
  std::string context = crypto::CanonicalEncryptionContext(FixtureContext());
  std::unique_ptr<RecordKeyMaterial> material;
  std::string sealed;  // "hello" with associated data "ad"
};

const Fixture& TheFixture() {
  static const Fixture* fixture = [] {
    auto* f = new Fixture();
    client_internal::SealedRecordFields fields{kFixtureKey, kFixtureSegment, kFixtureDataKeyBlob};
    auto material = RecordKeyMaterial::New(f->data_key, fields, f->context, FixtureSalt());
    FUZZ_CHECK(material.ok());
    f->material = *std::move(material);
    auto sealed = f->material->Seal("hello", "ad");
    FUZZ_CHECK(sealed.ok());
    f->sealed = *std::move(sealed);
    return f;
  }();
  return *fixture;
}

// What opening `input` with the fixture key gives, both ways.
absl::StatusOr<std::string> OpenBothWays(absl::string_view input, absl::string_view ad) {
  const Fixture& f = TheFixture();
  auto parsed = client_internal::ParseSealedRecord(input);
  if (!parsed.ok()) {
    FUZZ_CHECK(parsed.status().code() == absl::StatusCode::kInvalidArgument);
    if (absl::StartsWith(input, f.material->header())) {
      FUZZ_CHECK(!f.material->OpenOwnRecord(input, ad).ok());
    }
    return parsed.status();
  }
  auto opened = client_internal::OpenRecord(*parsed, f.data_key, f.context, ad);
  if (f.material->Matches(*parsed)) {
    auto via_material = f.material->Open(*parsed, ad);
    FUZZ_CHECK(via_material.ok() == opened.ok());
    if (opened.ok()) FUZZ_CHECK(*via_material == *opened);
  }
  if (absl::StartsWith(input, f.material->header())) {
    auto own = f.material->OpenOwnRecord(input, ad);
    FUZZ_CHECK(own.ok() == opened.ok());
    if (opened.ok()) FUZZ_CHECK(*own == *opened);
  }
  return opened;
}

void CheckParse(absl::string_view input) {
  auto parsed = client_internal::ParseSealedRecord(input);
  if (!parsed.ok()) return;
  FUZZ_CHECK(absl::StartsWith(input, parsed->header));
  FUZZ_CHECK(absl::StrCat(parsed->header, parsed->nonce, parsed->ciphertext_and_tag) == input);
  FUZZ_CHECK(client_internal::ValidateSealedRecordFields(parsed->fields).ok());
  auto again = client_internal::ParseSealedRecord(input);
  FUZZ_CHECK(again.ok() && again->header == parsed->header && again->nonce == parsed->nonce);
}

}  // namespace
}  // namespace clavis::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace clavis::fuzz;
  const absl::string_view input = AsView(data, size);
  CheckParse(input);
  (void)OpenBothWays(input, "ad");
  (void)OpenBothWays(input, "");

  const Fixture& f = TheFixture();
  const std::string tampered = XorOnto(f.sealed, input);
  auto opened = OpenBothWays(tampered, "ad");
  if (tampered == f.sealed) {
    FUZZ_CHECK(opened.ok() && *opened == "hello");
  } else {
    FUZZ_CHECK(!opened.ok());
  }
  return 0;
}
