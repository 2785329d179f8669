// The data plane's gRPC handlers (KeyManagementService) called in process
// with arbitrary request messages, on a fresh in-memory domain per input
// that holds tenants/acme/keys/crm (generated) and tenants/acme/keys/byok
// (external, no material yet).
//
// Input: a sequence of frames (fuzz_util.h FrameReader): the tag chooses
// the RPC (tag % 7, kRpcs below), the body is its request message. Calls
// run in order on the same domain, so a GenerateDataKey can feed a
// Decrypt: a Decrypt, BatchDecrypt item or ReEncrypt whose ciphertext_blob
// is empty gets the blob of the last successful GenerateDataKey, Encrypt or
// ReEncrypt instead.
//
// Checks: no handler answers UNKNOWN, INTERNAL, UNAVAILABLE or DATA_LOSS
// (rpc_call.h); a data key is 32 bytes; and a substituted blob decrypts
// only under the context it was made with, to the plaintext it was made
// from.
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>

#include "kms/keys/ciphertext_blob.h"
#include "tests/fuzz/fuzz_domain.h"
#include "tests/fuzz/rpc_call.h"

namespace clavis::fuzz {
namespace {

namespace v1 = clavis::v1;
using Context = std::map<std::string, std::string>;

template <typename ProtoMap>
Context ToContext(const ProtoMap& map) {
  return Context(map.begin(), map.end());
}

// The last blob a call made, and what it was made from.
struct LastBlob {
  bool valid = false;
  std::string blob;
  Context context;
  std::string plaintext;

  void Set(const std::string& b, Context c, std::string p) {
    valid = true;
    blob = b;
    context = std::move(c);
    plaintext = std::move(p);
  }
};

class Session {
 public:
  void Run(uint8_t tag, absl::string_view body) {
    switch (tag % 7) {
      case 0:
        return GenerateDataKey(body);
      case 1:
        return BatchGenerateDataKey(body);
      case 2:
        return Decrypt(body);
      case 3:
        return BatchDecrypt(body);
      case 4:
        return ReEncrypt(body);
      case 5:
        return Encrypt(body);
      case 6:
        return DeriveBlindIndexKey(body);
    }
  }

 private:
  kms::KeyManagementService* service() { return domain_.management.get(); }

  void GenerateDataKey(absl::string_view body) {
    v1::GenerateDataKeyRequest request;
    v1::GenerateDataKeyResponse response;
    grpc::Status status;
    if (!CallHandler("GenerateDataKey", service(), &kms::KeyManagementService::GenerateDataKey,
                     body, &request, &response, &status) ||
        !status.ok()) {
      return;
    }
    FUZZ_CHECK(response.plaintext().size() == 32);
    FUZZ_CHECK(kms::ParseCiphertextBlob(response.ciphertext_blob()).ok());
    last_.Set(response.ciphertext_blob(), ToContext(request.encryption_context()),
              response.plaintext());
  }

  void BatchGenerateDataKey(absl::string_view body) {
    v1::BatchGenerateDataKeyRequest request;
    v1::BatchGenerateDataKeyResponse response;
    grpc::Status status;
    if (!CallHandler("BatchGenerateDataKey", service(),
                     &kms::KeyManagementService::BatchGenerateDataKey, body, &request, &response,
                     &status) ||
        !status.ok()) {
      return;
    }
    FUZZ_CHECK(response.items_size() == request.requests_size());
    for (int i = 0; i < response.items_size(); ++i) {
      const auto& item = response.items(i);
      if (item.status().code() != 0) continue;
      FUZZ_CHECK(item.result().plaintext().size() == 32);
      last_.Set(item.result().ciphertext_blob(),
                ToContext(request.requests(i).encryption_context()), item.result().plaintext());
    }
  }

  // Fills an empty blob from last_; true if it did.
  bool Substitute(std::string* blob) {
    if (!blob->empty() || !last_.valid) return false;
    *blob = last_.blob;
    return true;
  }

  void CheckOpened(const Context& context, const std::string& plaintext) {
    FUZZ_CHECK(context == last_.context);
    FUZZ_CHECK(plaintext == last_.plaintext);
  }

  void Decrypt(absl::string_view body) {
    v1::DecryptRequest request;
    if (!request.ParseFromArray(body.data(), static_cast<int>(body.size()))) return;
    const bool substituted = Substitute(request.mutable_ciphertext_blob());
    v1::DecryptResponse response;
    grpc::Status status;
    const std::string bytes = request.SerializeAsString();
    if (!CallHandler("Decrypt", service(), &kms::KeyManagementService::Decrypt, bytes, &request,
                     &response, &status)) {
      return;
    }
    if (status.ok() && substituted) {
      CheckOpened(ToContext(request.encryption_context()), response.plaintext());
    }
  }

  void BatchDecrypt(absl::string_view body) {
    v1::BatchDecryptRequest request;
    if (!request.ParseFromArray(body.data(), static_cast<int>(body.size()))) return;
    std::vector<bool> substituted;
    for (auto& item : *request.mutable_requests()) {
      substituted.push_back(Substitute(item.mutable_ciphertext_blob()));
    }
    v1::BatchDecryptResponse response;
    grpc::Status status;
    const std::string bytes = request.SerializeAsString();
    if (!CallHandler("BatchDecrypt", service(), &kms::KeyManagementService::BatchDecrypt, bytes,
                     &request, &response, &status) ||
        !status.ok()) {
      return;
    }
    FUZZ_CHECK(response.items_size() == request.requests_size());
    for (int i = 0; i < response.items_size(); ++i) {
      if (response.items(i).status().code() == 0 && substituted[i]) {
        CheckOpened(ToContext(request.requests(i).encryption_context()),
                    response.items(i).result().plaintext());
      }
    }
  }

  void ReEncrypt(absl::string_view body) {
    v1::ReEncryptRequest request;
    if (!request.ParseFromArray(body.data(), static_cast<int>(body.size()))) return;
    const bool substituted = Substitute(request.mutable_ciphertext_blob());
    v1::ReEncryptResponse response;
    grpc::Status status;
    const std::string bytes = request.SerializeAsString();
    if (!CallHandler("ReEncrypt", service(), &kms::KeyManagementService::ReEncrypt, bytes, &request,
                     &response, &status) ||
        !status.ok()) {
      return;
    }
    FUZZ_CHECK(kms::ParseCiphertextBlob(response.ciphertext_blob()).ok());
    if (substituted) {
      FUZZ_CHECK(ToContext(request.encryption_context()) == last_.context);
      Context next =
          request.change_context() ? ToContext(request.new_encryption_context()) : last_.context;
      last_.Set(response.ciphertext_blob(), std::move(next), last_.plaintext);
    }
  }

  void Encrypt(absl::string_view body) {
    v1::EncryptRequest request;
    v1::EncryptResponse response;
    grpc::Status status;
    if (!CallHandler("Encrypt", service(), &kms::KeyManagementService::Encrypt, body, &request,
                     &response, &status) ||
        !status.ok()) {
      return;
    }
    FUZZ_CHECK(kms::ParseCiphertextBlob(response.ciphertext_blob()).ok());
    last_.Set(response.ciphertext_blob(), ToContext(request.encryption_context()),
              request.plaintext());
  }

  void DeriveBlindIndexKey(absl::string_view body) {
    v1::DeriveBlindIndexKeyRequest request;
    v1::DeriveBlindIndexKeyResponse response;
    grpc::Status status;
    if (CallHandler("DeriveBlindIndexKey", service(),
                    &kms::KeyManagementService::DeriveBlindIndexKey, body, &request, &response,
                    &status) &&
        status.ok()) {
      FUZZ_CHECK(response.index_key().size() == 32);
    }
  }

  FuzzDomain domain_;
  LastBlob last_;
};

}  // namespace
}  // namespace clavis::fuzz

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  clavis::fuzz::QuietLogs();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  clavis::fuzz::Session session;
  clavis::fuzz::FrameReader frames(clavis::fuzz::AsView(data, size));
  uint8_t tag;
  absl::string_view body;
  // A bound on calls per input keeps every input fast.
  for (int calls = 0; calls < 16 && frames.Next(&tag, &body); ++calls) session.Run(tag, body);
  return 0;
}
