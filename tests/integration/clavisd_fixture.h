// Shared pieces of the clavisd end-to-end tests: a fixture that starts one
// clavisd per test (fresh data directory), typed call helpers for both
// services, a gRPC status matcher, and an encoder/decoder of the ciphertext
// blob format written from docs/FORMAT.md (independent of kms/keys) so tests
// can edit blob headers.
#ifndef CLAVIS_TESTS_INTEGRATION_CLAVISD_FIXTURE_H_
#define CLAVIS_TESTS_INTEGRATION_CLAVISD_FIXTURE_H_

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "tests/harness/clavisd_process.h"

namespace clavis::testing {

using Context = std::map<std::string, std::string>;
using AdminStub = clavis::v1::KeyAdmin::Stub;
using DataStub = clavis::v1::KeyManagement::Stub;

inline const char* CodeName(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:
      return "OK";
    case grpc::StatusCode::CANCELLED:
      return "CANCELLED";
    case grpc::StatusCode::UNKNOWN:
      return "UNKNOWN";
    case grpc::StatusCode::INVALID_ARGUMENT:
      return "INVALID_ARGUMENT";
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::NOT_FOUND:
      return "NOT_FOUND";
    case grpc::StatusCode::ALREADY_EXISTS:
      return "ALREADY_EXISTS";
    case grpc::StatusCode::PERMISSION_DENIED:
      return "PERMISSION_DENIED";
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return "RESOURCE_EXHAUSTED";
    case grpc::StatusCode::FAILED_PRECONDITION:
      return "FAILED_PRECONDITION";
    case grpc::StatusCode::ABORTED:
      return "ABORTED";
    case grpc::StatusCode::OUT_OF_RANGE:
      return "OUT_OF_RANGE";
    case grpc::StatusCode::UNIMPLEMENTED:
      return "UNIMPLEMENTED";
    case grpc::StatusCode::INTERNAL:
      return "INTERNAL";
    case grpc::StatusCode::UNAVAILABLE:
      return "UNAVAILABLE";
    case grpc::StatusCode::DATA_LOSS:
      return "DATA_LOSS";
    case grpc::StatusCode::UNAUTHENTICATED:
      return "UNAUTHENTICATED";
    default:
      return "?";
  }
}

inline std::string Describe(const grpc::Status& s) {
  return absl::StrCat(CodeName(s.error_code()), ": \"", absl::CHexEscape(s.error_message()), "\"");
}

// EXPECT_TRUE(StatusIs(status, CODE, "substring")): the code, and (if given)
// a substring of the message.
inline ::testing::AssertionResult StatusIs(const grpc::Status& s, grpc::StatusCode code,
                                           const std::string& substring = "") {
  if (s.error_code() != code) {
    return ::testing::AssertionFailure()
           << "expected " << CodeName(code) << ", got " << Describe(s);
  }
  if (!substring.empty() && !absl::StrContains(s.error_message(), substring)) {
    return ::testing::AssertionFailure()
           << "expected a message containing \"" << substring << "\", got " << Describe(s);
  }
  return ::testing::AssertionSuccess();
}

inline ::testing::AssertionResult IsOk(const grpc::Status& s) {
  if (s.ok()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "expected OK, got " << Describe(s);
}

inline google::protobuf::Duration Seconds(int64_t seconds, int32_t nanos = 0) {
  google::protobuf::Duration d;
  d.set_seconds(seconds);
  d.set_nanos(nanos);
  return d;
}

inline absl::Time ToAbsl(const google::protobuf::Timestamp& t) {
  return absl::FromUnixSeconds(t.seconds()) + absl::Nanoseconds(t.nanos());
}

template <typename ProtoMap>
void SetContext(const Context& context, ProtoMap* out) {
  out->clear();
  for (const auto& [k, v] : context) (*out)[k] = v;
}

// The ciphertext blob (docs/FORMAT.md "Ciphertext blob (v1)"), decoded just
// far enough to edit its header.
struct BlobParts {
  uint8_t version = 1;
  uint8_t algorithm = 1;
  std::string tenant;
  std::string key_id;
  std::string segment;
  uint32_t segment_key_version = 0;
  std::string rest;  // nonce || ciphertext || tag

  static std::optional<BlobParts> Parse(const std::string& blob) {
    BlobParts p;
    size_t i = 0;
    auto need = [&](size_t n) { return i + n <= blob.size(); };
    auto u8 = [&]() { return static_cast<uint8_t>(blob[i++]); };
    if (!need(3)) return std::nullopt;
    p.version = u8();
    p.algorithm = u8();
    size_t n = u8();
    if (!need(n)) return std::nullopt;
    p.tenant = blob.substr(i, n);
    i += n;
    if (!need(1)) return std::nullopt;
    n = u8();
    if (!need(n)) return std::nullopt;
    p.key_id = blob.substr(i, n);
    i += n;
    if (!need(2)) return std::nullopt;
    n = static_cast<size_t>(u8()) << 8;
    n |= u8();
    if (!need(n)) return std::nullopt;
    p.segment = blob.substr(i, n);
    i += n;
    if (!need(4)) return std::nullopt;
    for (int b = 0; b < 4; ++b) p.segment_key_version = (p.segment_key_version << 8) | u8();
    p.rest = blob.substr(i);
    return p;
  }

  std::string Header() const {
    std::string out;
    out.push_back(static_cast<char>(version));
    out.push_back(static_cast<char>(algorithm));
    out.push_back(static_cast<char>(tenant.size()));
    out += tenant;
    out.push_back(static_cast<char>(key_id.size()));
    out += key_id;
    out.push_back(static_cast<char>((segment.size() >> 8) & 0xff));
    out.push_back(static_cast<char>(segment.size() & 0xff));
    out += segment;
    for (int shift = 24; shift >= 0; shift -= 8) {
      out.push_back(static_cast<char>((segment_key_version >> shift) & 0xff));
    }
    return out;
  }

  std::string Encode() const { return Header() + rest; }
};

// The tenant a request is about, for picking the principal that makes it:
// the first "tenants/{t}/..." string field, or the tenant in a ciphertext
// blob's header, looking into nested messages (batch items) too. Requests
// naming no known test tenant (malformed names) go to "acme".
inline std::string TenantNamedIn(const google::protobuf::Message& message, bool blobs) {
  const auto* descriptor = message.GetDescriptor();
  const auto* reflection = message.GetReflection();
  for (int i = 0; i < descriptor->field_count(); ++i) {
    const auto* field = descriptor->field(i);
    if (field->is_map()) continue;
    std::string found;
    if (!blobs && field->type() == google::protobuf::FieldDescriptor::TYPE_STRING &&
        !field->is_repeated()) {
      const std::string value = reflection->GetString(message, field);
      if (absl::StartsWith(value, "tenants/")) {
        const size_t end = value.find('/', 8);
        found = value.substr(8, end == std::string::npos ? std::string::npos : end - 8);
      }
    } else if (blobs && field->type() == google::protobuf::FieldDescriptor::TYPE_BYTES &&
               !field->is_repeated() && field->name() == "ciphertext_blob") {
      auto blob = BlobParts::Parse(reflection->GetString(message, field));
      if (blob.has_value()) found = blob->tenant;
    } else if (field->type() == google::protobuf::FieldDescriptor::TYPE_MESSAGE &&
               field->is_repeated() && reflection->FieldSize(message, field) > 0) {
      found = TenantNamedIn(reflection->GetRepeatedMessage(message, field, 0), blobs);
    }
    if (!found.empty()) return found;
  }
  return "";
}

// The tenant a request is about, for picking the principal that makes it: a
// "tenants/{t}/..." name in the request (the key a Decrypt expects wins over
// the blob), else the tenant in a ciphertext blob's header, looking into
// batch items too. Requests naming no known test tenant (malformed names,
// edited blobs) are made by acme's admin.
inline std::string TenantOf(const google::protobuf::Message& message) {
  std::string found = TenantNamedIn(message, /*blobs=*/false);
  if (found.empty()) found = TenantNamedIn(message, /*blobs=*/true);
  const auto& known = TestTenants();
  return std::find(known.begin(), known.end(), found) != known.end() ? found : "acme";
}

// One clavisd per test, in a fresh directory; stubs on its channel.
class ClavisdTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ClavisdOptions options;
    options.data_dir = dir_.path() + "/data";
    clavisd_ = std::make_unique<ClavisdProcess>(options);
    absl::Status started = clavisd_->Start();
    ASSERT_TRUE(started.ok()) << started;
    admin_ = clavisd_->Admin();
    data_ = clavisd_->Data();
  }

  void TearDown() override {
    // Stubs share the channel; drop them first so clavisd's graceful
    // shutdown has no open connection to wait for.
    admin_.reset();
    data_.reset();
    admin_stubs_.clear();
    data_stubs_.clear();
    if (clavisd_ != nullptr && clavisd_->running()) {
      // A crash during the test shows up here as an abnormal exit status.
      absl::Status stopped = clavisd_->Stop();
      EXPECT_TRUE(stopped.ok()) << stopped;
    }
    clavisd_.reset();
  }

  // Any unary method of either stub, with a fresh 10 s deadline.
  template <typename Stub, typename Req, typename Resp>
  grpc::Status Call(grpc::Status (Stub::*method)(grpc::ClientContext*, const Req&, Resp*),
                    const Req& request, Resp* response = nullptr) {
    Resp ignored;
    auto ctx = ContextWithDeadline(absl::Seconds(10));
    Stub* stub = StubFor(static_cast<Stub*>(nullptr), TenantOf(request));
    return (stub->*method)(ctx.get(), request, response != nullptr ? response : &ignored);
  }

  // ---- KeyAdmin ----

  grpc::Status CreateKey(const std::string& tenant, const std::string& key_id,
                         clavis::v1::Key* out = nullptr, bool require_explicit_segments = false) {
    clavis::v1::CreateKeyRequest r;
    r.set_parent("tenants/" + tenant);
    r.set_key_id(key_id);
    r.set_require_explicit_segments(require_explicit_segments);
    r.set_policy(TestKeyPolicy(absl::StrCat("tenants/", tenant, "/keys/", key_id)));
    return Call(&AdminStub::CreateKey, r, out);
  }

  // Creates tenants/{tenant}/keys/{key_id}; fails the test if it cannot.
  std::string MakeKey(const std::string& tenant, const std::string& key_id,
                      bool require_explicit_segments = false) {
    clavis::v1::Key key;
    grpc::Status s = CreateKey(tenant, key_id, &key, require_explicit_segments);
    EXPECT_TRUE(IsOk(s)) << "CreateKey " << tenant << "/" << key_id;
    return absl::StrCat("tenants/", tenant, "/keys/", key_id);
  }

  clavis::v1::Key GetKey(const std::string& name) {
    clavis::v1::GetKeyRequest r;
    r.set_name(name);
    clavis::v1::Key key;
    grpc::Status s = Call(&AdminStub::GetKey, r, &key);
    EXPECT_TRUE(IsOk(s)) << "GetKey " << name;
    return key;
  }

  // KeyNameRequest RPCs: EnableKey, DisableKey, CancelKeyDestruction, DestroyKey.
  grpc::Status KeyOp(grpc::Status (AdminStub::*method)(grpc::ClientContext*,
                                                       const clavis::v1::KeyNameRequest&,
                                                       clavis::v1::Key*),
                     const std::string& name, clavis::v1::Key* out = nullptr) {
    clavis::v1::KeyNameRequest r;
    r.set_name(name);
    return Call(method, r, out);
  }

  grpc::Status RotateKey(const std::string& name, clavis::v1::Key* out = nullptr) {
    clavis::v1::RotateKeyRequest r;
    r.set_name(name);
    return Call(&AdminStub::RotateKey, r, out);
  }

  grpc::Status ScheduleKeyDestruction(const std::string& name,
                                      std::optional<google::protobuf::Duration> window,
                                      clavis::v1::Key* out = nullptr) {
    clavis::v1::ScheduleDestructionRequest r;
    r.set_name(name);
    if (window.has_value()) *r.mutable_pending_window() = *window;
    return Call(&AdminStub::ScheduleKeyDestruction, r, out);
  }

  // KeyVersionRequest RPCs: Enable/Disable/CancelDestruction/DestroyKeyVersion.
  grpc::Status VersionOp(grpc::Status (AdminStub::*method)(grpc::ClientContext*,
                                                           const clavis::v1::KeyVersionRequest&,
                                                           clavis::v1::Key*),
                         const std::string& name, clavis::v1::Key* out = nullptr) {
    clavis::v1::KeyVersionRequest r;
    r.set_name(name);
    return Call(method, r, out);
  }

  grpc::Status ScheduleVersionDestruction(const std::string& name,
                                          std::optional<google::protobuf::Duration> window,
                                          clavis::v1::Key* out = nullptr) {
    clavis::v1::ScheduleVersionDestructionRequest r;
    r.set_name(name);
    if (window.has_value()) *r.mutable_pending_window() = *window;
    return Call(&AdminStub::ScheduleKeyVersionDestruction, r, out);
  }

  // SegmentRequest RPCs: Create/Get/Rotate/Revoke/Enable/CancelDestruction/DestroySegment.
  grpc::Status SegmentOp(grpc::Status (AdminStub::*method)(grpc::ClientContext*,
                                                           const clavis::v1::SegmentRequest&,
                                                           clavis::v1::Segment*),
                         const std::string& name, clavis::v1::Segment* out = nullptr) {
    clavis::v1::SegmentRequest r;
    r.set_name(name);
    return Call(method, r, out);
  }

  grpc::Status ScheduleSegmentDestruction(const std::string& name,
                                          std::optional<google::protobuf::Duration> window,
                                          clavis::v1::Segment* out = nullptr) {
    clavis::v1::ScheduleSegmentDestructionRequest r;
    r.set_name(name);
    if (window.has_value()) *r.mutable_pending_window() = *window;
    return Call(&AdminStub::ScheduleSegmentDestruction, r, out);
  }

  // ---- KeyManagement ----

  grpc::Status GenerateDataKey(const std::string& key, const std::string& segment,
                               const Context& context,
                               clavis::v1::GenerateDataKeyResponse* out = nullptr) {
    clavis::v1::GenerateDataKeyRequest r;
    r.set_key(key);
    r.set_segment(segment);
    SetContext(context, r.mutable_encryption_context());
    return Call(&DataStub::GenerateDataKey, r, out);
  }

  // A data key; fails the test if it cannot be made.
  clavis::v1::GenerateDataKeyResponse MakeDataKey(const std::string& key,
                                                  const std::string& segment,
                                                  const Context& context = {}) {
    clavis::v1::GenerateDataKeyResponse dk;
    grpc::Status s = GenerateDataKey(key, segment, context, &dk);
    EXPECT_TRUE(IsOk(s)) << "GenerateDataKey " << key << " " << segment;
    return dk;
  }

  grpc::Status Decrypt(const std::string& blob, const Context& context,
                       clavis::v1::DecryptResponse* out = nullptr,
                       const std::string& expected_key = "") {
    clavis::v1::DecryptRequest r;
    r.set_ciphertext_blob(blob);
    SetContext(context, r.mutable_encryption_context());
    r.set_key(expected_key);
    return Call(&DataStub::Decrypt, r, out);
  }

  // The blob decrypts to `plaintext`.
  ::testing::AssertionResult DecryptsTo(const std::string& blob, const Context& context,
                                        const std::string& plaintext) {
    clavis::v1::DecryptResponse out;
    grpc::Status s = Decrypt(blob, context, &out);
    if (!s.ok()) return ::testing::AssertionFailure() << "Decrypt: " << Describe(s);
    if (out.plaintext() != plaintext) {
      return ::testing::AssertionFailure() << "Decrypt returned another plaintext";
    }
    return ::testing::AssertionSuccess();
  }

  grpc::Status Encrypt(const std::string& key, const std::string& segment,
                       const std::string& plaintext, const Context& context,
                       clavis::v1::EncryptResponse* out = nullptr) {
    clavis::v1::EncryptRequest r;
    r.set_key(key);
    r.set_segment(segment);
    r.set_plaintext(plaintext);
    SetContext(context, r.mutable_encryption_context());
    return Call(&DataStub::Encrypt, r, out);
  }

  grpc::Status ReEncrypt(const std::string& blob, const Context& context,
                         std::optional<Context> new_context,
                         clavis::v1::ReEncryptResponse* out = nullptr) {
    clavis::v1::ReEncryptRequest r;
    r.set_ciphertext_blob(blob);
    SetContext(context, r.mutable_encryption_context());
    if (new_context.has_value()) {
      r.set_change_context(true);
      SetContext(*new_context, r.mutable_new_encryption_context());
    }
    return Call(&DataStub::ReEncrypt, r, out);
  }

  grpc::Status DeriveBlindIndexKey(const std::string& key, const std::string& segment,
                                   const std::string& index,
                                   clavis::v1::DeriveBlindIndexKeyResponse* out = nullptr) {
    clavis::v1::DeriveBlindIndexKeyRequest r;
    r.set_key(key);
    r.set_segment(segment);
    r.set_index(index);
    return Call(&DataStub::DeriveBlindIndexKey, r, out);
  }

  // Drops every stub (so no open connection delays the shutdown) and stops
  // clavisd cleanly.
  void StopClavisd() {
    admin_.reset();
    data_.reset();
    admin_stubs_.clear();
    data_stubs_.clear();
    absl::Status stopped = clavisd_->Stop();
    ASSERT_TRUE(stopped.ok()) << stopped;
  }

  // Stops clavisd cleanly and starts it again on the same data directory
  // (it may listen on another port: every stub is made anew).
  void Restart() {
    StopClavisd();
    if (::testing::Test::HasFatalFailure()) return;
    absl::Status started = clavisd_->Start();
    ASSERT_TRUE(started.ok()) << started;
    admin_ = clavisd_->Admin();
    data_ = clavisd_->Data();
  }

  // The data-plane stub of `tenant`'s admin principal (for streams).
  DataStub* DataFor(const std::string& tenant) {
    return StubFor(static_cast<DataStub*>(nullptr), tenant);
  }

  TempDir dir_;
  std::unique_ptr<ClavisdProcess> clavisd_;
  std::unique_ptr<AdminStub> admin_;
  std::unique_ptr<DataStub> data_;

 private:
  // Each tenant's calls are made by that tenant's admin principal.
  AdminStub* StubFor(AdminStub*, const std::string& tenant) {
    auto& stub = admin_stubs_[tenant];
    if (stub == nullptr) stub = clavisd_->Admin(PrincipalName(tenant));
    return stub.get();
  }
  DataStub* StubFor(DataStub*, const std::string& tenant) {
    auto& stub = data_stubs_[tenant];
    if (stub == nullptr) stub = clavisd_->Data(PrincipalName(tenant));
    return stub.get();
  }
  std::map<std::string, std::unique_ptr<AdminStub>> admin_stubs_;
  std::map<std::string, std::unique_ptr<DataStub>> data_stubs_;
};

}  // namespace clavis::testing

#endif  // CLAVIS_TESTS_INTEGRATION_CLAVISD_FIXTURE_H_
