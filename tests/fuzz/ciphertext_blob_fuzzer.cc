// The ciphertext blob (wrapped data key, Encrypt's output; docs/FORMAT.md
// "Ciphertext blob (v1)"), which Decrypt and ReEncrypt take from callers.
//
// Every input is used twice:
//  1. as a blob: ParseCiphertextBlob must not crash, and a blob it accepts
//     must re-encode to the same bytes (header and split exact);
//  2. as an XOR mask and tail over a real blob: Envelope::Decrypt must refuse
//     every blob but the original (the header and body are authenticated).
#include <cstddef>
#include <cstdint>
#include <string>

#include "kms/keys/ciphertext_blob.h"
#include "tests/fuzz/fuzz_domain.h"
#include "tests/fuzz/fuzz_util.h"

namespace clavis::fuzz {
namespace {

struct Original {
  FuzzDomain domain;
  kms::EncryptionContext context{{"customer", "42"}};
  std::string blob;
  std::string plaintext;
};

Original& TheOriginal() {
  static Original* original = [] {
    auto* o = new Original();
    auto key = kms::ParseSegmentName(std::string(kKeyName) + "/segments/acme/orders");
    FUZZ_CHECK(key.ok());
    auto data_key = o->domain.envelope->GenerateDataKey(*key, o->context);
    FUZZ_CHECK(data_key.ok());
    o->blob = data_key->ciphertext_blob;
    o->plaintext = std::string(data_key->plaintext.view());
    return o;
  }();
  return *original;
}

void CheckParse(absl::string_view input) {
  auto parsed = kms::ParseCiphertextBlob(input);
  if (!parsed.ok()) {
    FUZZ_CHECK(parsed.status().code() == absl::StatusCode::kInvalidArgument);
    return;
  }
  FUZZ_CHECK(parsed->header.Encode() == parsed->header_bytes);
  FUZZ_CHECK(parsed->header_bytes + parsed->nonce + parsed->ciphertext_and_tag == input);
  FUZZ_CHECK(parsed->nonce.size() == kms::kBlobNonceSize);
  FUZZ_CHECK(parsed->ciphertext_and_tag.size() >= kms::kBlobTagSize);
  auto again =
      kms::ParseCiphertextBlob(parsed->header_bytes + parsed->nonce + parsed->ciphertext_and_tag);
  FUZZ_CHECK(again.ok() && again->header_bytes == parsed->header_bytes);
}

void CheckTampered(absl::string_view mask) {
  Original& o = TheOriginal();
  const std::string blob = XorOnto(o.blob, mask);
  auto result = o.domain.envelope->Decrypt(blob, o.context, std::nullopt);
  if (blob == o.blob) {
    FUZZ_CHECK(result.ok() && result->plaintext.view() == o.plaintext);
  } else {
    FUZZ_CHECK(!result.ok());
  }
}

}  // namespace
}  // namespace clavis::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view input = clavis::fuzz::AsView(data, size);
  clavis::fuzz::CheckParse(input);
  clavis::fuzz::CheckTampered(input);
  return 0;
}
