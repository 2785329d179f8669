// DeriveBlindIndexKey end to end, against a real clavisd with mTLS: the key
// is stable (repeated calls, segment and master rotation, restarts) and
// independent per index, segment, key and tenant; only principals granted
// DeriveBlindIndexKey get it; bad input is INVALID_ARGUMENT; unusable keys
// and segments are FAILED_PRECONDITION and a destroyed segment gives no key
// ever again; every call is audited and the index key is never written
// anywhere. The derivation itself is checked byte by byte against the spec
// in kms/keys/blind_index_test.cc.
#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "kms/audit/audit_query.h"
#include "kms/audit/audit_verifier.h"
#include "tests/integration/clavisd_fixture.h"

namespace clavis::testing {
namespace {

using grpc::StatusCode;

constexpr char kSegment[] = "acme/customers";

class BlindIndexTest : public ClavisdTest {
 protected:
  // The index key, or "" (with a test failure) if the call fails.
  std::string IndexKey(const std::string& key, const std::string& segment,
                       const std::string& index = "email") {
    clavis::v1::DeriveBlindIndexKeyResponse out;
    grpc::Status s = DeriveBlindIndexKey(key, segment, index, &out);
    EXPECT_TRUE(IsOk(s)) << key << " " << segment << " " << index;
    EXPECT_EQ(out.index_key().size(), 32u);
    return out.index_key();
  }

  // The call made by `who` (a principal name) on its own stub.
  grpc::Status DeriveAs(const std::string& who, const std::string& key, const std::string& segment,
                        const std::string& index = "email", std::string* index_key = nullptr) {
    clavis::v1::DeriveBlindIndexKeyRequest r;
    r.set_key(key);
    r.set_segment(segment);
    r.set_index(index);
    clavis::v1::DeriveBlindIndexKeyResponse out;
    grpc::Status s = clavisd_->Data(who)->DeriveBlindIndexKey(ContextWithDeadline().get(), r, &out);
    if (index_key != nullptr) *index_key = out.index_key();
    if (!s.ok()) {
      EXPECT_TRUE(out.index_key().empty()) << "a refused call carries no key";
    }
    return s;
  }

  static std::string SegName(const std::string& key, const std::string& label) {
    return absl::StrCat(key, "/segments/", label);
  }

  std::string DataDir() const { return dir_.path() + "/data"; }
  std::string AuditDir() const { return DataDir() + "/audit"; }

  std::vector<kms::AuditRecord> AuditRecords() {
    std::vector<kms::AuditRecord> out;
    absl::Status s =
        kms::ForEachAuditRecord(AuditDir(), kms::AuditFilter{}, [&](const kms::AuditRecord& r) {
          out.push_back(r);
          return true;
        });
    EXPECT_TRUE(s.ok()) << s;
    return out;
  }

  // Every way the key could show up in text or bytes.
  static std::vector<std::string> Encodings(const std::string& secret) {
    std::string base64, websafe;
    absl::Base64Escape(secret, &base64);
    absl::WebSafeBase64Escape(secret, &websafe);
    return {secret, absl::BytesToHexString(secret), base64, websafe, absl::CHexEscape(secret)};
  }
};

TEST_F(BlindIndexTest, SameInputsGiveTheSameKeyAcrossRotationsAndRestarts) {
  const std::string key = MakeKey("acme", "crm");
  const std::string first = IndexKey(key, kSegment);
  ASSERT_EQ(first.size(), 32u);
  EXPECT_EQ(IndexKey(key, kSegment), first);
  // Data keys of the segment still work alongside (the segment was created
  // on first use and is an ordinary segment).
  auto dk = MakeDataKey(key, kSegment, {{"customer", "42"}});
  EXPECT_EQ(dk.segment_key_version(), 1u);

  // Segment rotation: new data keys move to version 2, the index key stays.
  clavis::v1::Segment segment;
  ASSERT_TRUE(IsOk(SegmentOp(&AdminStub::RotateSegment, SegName(key, kSegment), &segment)));
  EXPECT_EQ(segment.primary_version(), 2u);
  EXPECT_EQ(MakeDataKey(key, kSegment).segment_key_version(), 2u);
  EXPECT_EQ(IndexKey(key, kSegment), first);

  // Master rotation and re-wrap of every segment key under the new version.
  ASSERT_TRUE(IsOk(RotateKey(key)));
  clavis::v1::RewrapSegmentsRequest rewrap;
  rewrap.set_name(key);
  clavis::v1::RewrapSegmentsResponse rewrapped;
  ASSERT_TRUE(IsOk(Call(&AdminStub::RewrapSegments, rewrap, &rewrapped)));
  EXPECT_EQ(IndexKey(key, kSegment), first);

  Restart();
  EXPECT_EQ(IndexKey(key, kSegment), first);
  EXPECT_TRUE(DecryptsTo(dk.ciphertext_blob(), {{"customer", "42"}}, dk.plaintext()));
}

TEST_F(BlindIndexTest, IndexSegmentKeyAndTenantEachGiveAnIndependentKey) {
  const std::string crm = MakeKey("acme", "crm");
  const std::string hr = MakeKey("acme", "hr");
  const std::string globex = MakeKey("globex", "crm");
  const std::vector<std::string> keys = {
      IndexKey(crm, kSegment, "email"),    IndexKey(crm, kSegment, "phone"),
      IndexKey(crm, kSegment, "email.v2"), IndexKey(crm, "acme/suppliers", "email"),
      IndexKey(hr, kSegment, "email"),     IndexKey(globex, kSegment, "email"),
  };
  for (size_t i = 0; i < keys.size(); ++i) {
    for (size_t j = i + 1; j < keys.size(); ++j) EXPECT_NE(keys[i], keys[j]) << i << " vs " << j;
  }
}

TEST_F(BlindIndexTest, OnlyPrincipalsGrantedDeriveBlindIndexKeyGetTheKey) {
  const std::string key = "tenants/acme/keys/people";
  const std::string app = PrincipalName("acme", "app");
  const std::string search = PrincipalName("acme", "search");
  const std::string by_context = PrincipalName("acme", "by-context");
  clavis::v1::CreateKeyRequest create;
  create.set_parent("tenants/acme");
  create.set_key_id("people");
  create.set_policy(absl::StrCat(R"({"version": 1, "statements": [
      {"sid": "key-users", "effect": "Allow", "principals": [")",
                                 app, R"("],
       "actions": ["GenerateDataKey", "Decrypt", "ReEncrypt", "Encrypt", "GetKey"]},
      {"sid": "search", "effect": "Allow", "principals": [")",
                                 search, R"("],
       "actions": ["DeriveBlindIndexKey"],
       "conditions": {"segmentPrefixes": ["acme/customers/"]}},
      {"sid": "by-context", "effect": "Allow", "principals": [")",
                                 by_context, R"("],
       "actions": ["DeriveBlindIndexKey"],
       "conditions": {"encryptionContext": {"purpose": "search"}}}]})"));
  ASSERT_TRUE(IsOk(Call(&AdminStub::CreateKey, create)));

  std::string index_key;
  EXPECT_TRUE(IsOk(DeriveAs(search, key, "acme/customers/eu", "email", &index_key)));
  EXPECT_EQ(index_key.size(), 32u);
  EXPECT_TRUE(StatusIs(DeriveAs(search, key, "acme/hr"), StatusCode::PERMISSION_DENIED,
                       "not under an allowed prefix"));
  // Other data-plane rights do not include it.
  clavis::v1::GenerateDataKeyRequest gen;
  gen.set_key(key);
  gen.set_segment("acme/customers/eu");
  clavis::v1::GenerateDataKeyResponse dk;
  EXPECT_TRUE(IsOk(clavisd_->Data(app)->GenerateDataKey(ContextWithDeadline().get(), gen, &dk)));
  EXPECT_TRUE(StatusIs(DeriveAs(app, key, "acme/customers/eu"), StatusCode::PERMISSION_DENIED,
                       "no statement allows DeriveBlindIndexKey for " + app));
  // ...nor does it include them.
  EXPECT_TRUE(
      StatusIs(clavisd_->Data(search)->GenerateDataKey(ContextWithDeadline().get(), gen, &dk),
               StatusCode::PERMISSION_DENIED));
  // The call carries no encryption context: a grant conditioned on one never applies.
  EXPECT_TRUE(StatusIs(DeriveAs(by_context, key, "acme/customers/eu"),
                       StatusCode::PERMISSION_DENIED, "encryption context"));
  // Tenant administrators administer keys; they do not use them.
  EXPECT_TRUE(StatusIs(DeriveAs(PrincipalName("acme"), key, "acme/customers/eu"),
                       StatusCode::PERMISSION_DENIED));
  EXPECT_TRUE(StatusIs(DeriveAs(PrincipalName("acme", "nobody"), key, "acme/customers/eu"),
                       StatusCode::PERMISSION_DENIED));
  // The same principal gets the same key again.
  std::string again;
  EXPECT_TRUE(IsOk(DeriveAs(search, key, "acme/customers/eu", "email", &again)));
  EXPECT_EQ(again, index_key);
}

TEST_F(BlindIndexTest, AnotherTenantsKeyIsPermissionDenied) {
  const std::string key = MakeKey("acme", "crm");
  const std::string globex_admin = PrincipalName("globex");
  for (const std::string& name : {key, std::string("tenants/acme/keys/ghost")}) {
    SCOPED_TRACE(name);
    EXPECT_TRUE(StatusIs(DeriveAs(globex_admin, name, kSegment), StatusCode::PERMISSION_DENIED,
                         "cross-tenant access is never allowed"));
  }
  // Refused before anything happened: the segment was not created.
  EXPECT_TRUE(
      StatusIs(SegmentOp(&AdminStub::GetSegment, SegName(key, kSegment)), StatusCode::NOT_FOUND));
}

TEST_F(BlindIndexTest, MalformedRequestsAreInvalidArgumentWithClearMessages) {
  const std::string key = MakeKey("acme", "crm");
  const std::string index_rule = "a-z, 0-9, '_', '.' and '-'";
  struct BadRequest {
    std::string key, segment, index, substring;
  };
  const std::vector<BadRequest> cases = {
      {"", kSegment, "email", "malformed key name \"\""},
      {"tenants/acme", kSegment, "email", "malformed key name"},
      {"tenants/acme/keys/Crm", kSegment, "email", "key id \"Crm\" may contain only"},
      {"tenants/acme/keys/crm/segments/x", kSegment, "email", "malformed key name"},
      {key, "", "email", "segment is empty"},
      {key, std::string(257, 's'), "email", "is longer than 256 characters"},
      {key, "acme//customers", "email", "has an empty, '.' or '..' part"},
      {key, kSegment, "", "index name is empty"},
      {key, kSegment, std::string(65, 'x'), "index name of 65 bytes is longer than 64 bytes"},
      {key, kSegment, std::string(5000, 'x'), "index name of 5000 bytes is longer than 64"},
      {key, kSegment, "Email", "may contain only " + index_rule},
      {key, kSegment, "e mail", "may contain only " + index_rule},
      {key, kSegment, "customers/email", "may contain only " + index_rule},
      {key, kSegment, "jane.doe@example.com", "may contain only " + index_rule},
      {key, kSegment, std::string("e\0mail", 6), "may contain only " + index_rule},
  };
  for (const BadRequest& c : cases) {
    SCOPED_TRACE(absl::StrCat("key \"", absl::CHexEscape(c.key.substr(0, 80)), "\" segment \"",
                              absl::CHexEscape(c.segment.substr(0, 80)), "\" index \"",
                              absl::CHexEscape(c.index.substr(0, 80)), "\""));
    clavis::v1::DeriveBlindIndexKeyResponse out;
    grpc::Status s = DeriveBlindIndexKey(c.key, c.segment, c.index, &out);
    EXPECT_TRUE(StatusIs(s, StatusCode::INVALID_ARGUMENT, c.substring));
    EXPECT_TRUE(out.index_key().empty());
    EXPECT_LT(s.error_message().size(), 300u);
    // The index name is never echoed (it might be a value typed by mistake).
    if (c.key == key && c.segment == kSegment && c.index.size() > 1) {
      EXPECT_EQ(s.error_message().find(c.index), std::string::npos) << s.error_message();
    }
  }
  // Nothing was created by the refused calls.
  EXPECT_TRUE(
      StatusIs(SegmentOp(&AdminStub::GetSegment, SegName(key, kSegment)), StatusCode::NOT_FOUND));
  // The longest allowed name works.
  EXPECT_EQ(IndexKey(key, kSegment, std::string(64, 'x')).size(), 32u);
}

TEST_F(BlindIndexTest, DisabledKeyAndRevokedSegmentAreFailedPrecondition) {
  const std::string key = MakeKey("acme", "crm");
  const std::string first = IndexKey(key, kSegment);
  const std::string other = IndexKey(key, "acme/suppliers");

  ASSERT_TRUE(IsOk(KeyOp(&AdminStub::DisableKey, key)));
  EXPECT_TRUE(StatusIs(DeriveBlindIndexKey(key, kSegment, "email"), StatusCode::FAILED_PRECONDITION,
                       "key " + key + " is DISABLED"));
  // Not even a new segment can be made under a disabled key.
  EXPECT_TRUE(StatusIs(DeriveBlindIndexKey(key, "acme/new", "email"),
                       StatusCode::FAILED_PRECONDITION, "is DISABLED"));
  ASSERT_TRUE(IsOk(KeyOp(&AdminStub::EnableKey, key)));
  EXPECT_EQ(IndexKey(key, kSegment), first);

  ASSERT_TRUE(IsOk(SegmentOp(&AdminStub::RevokeSegment, SegName(key, kSegment))));
  EXPECT_TRUE(StatusIs(DeriveBlindIndexKey(key, kSegment, "email"), StatusCode::FAILED_PRECONDITION,
                       "it was revoked"));
  EXPECT_EQ(IndexKey(key, "acme/suppliers"), other);
  ASSERT_TRUE(IsOk(SegmentOp(&AdminStub::EnableSegment, SegName(key, kSegment))));
  EXPECT_EQ(IndexKey(key, kSegment), first);
}

TEST_F(BlindIndexTest, ExplicitSegmentsMustBeCreatedFirst) {
  const std::string key = MakeKey("acme", "strict", /*require_explicit_segments=*/true);
  EXPECT_TRUE(StatusIs(DeriveBlindIndexKey(key, kSegment, "email"), StatusCode::FAILED_PRECONDITION,
                       "clavisctl segment create"));
  ASSERT_TRUE(IsOk(SegmentOp(&AdminStub::CreateSegment, SegName(key, kSegment))));
  EXPECT_EQ(IndexKey(key, kSegment).size(), 32u);
}

TEST_F(BlindIndexTest, DestroyedSegmentIsNotDerivableAnyMore) {
  const std::string key = MakeKey("acme", "crm");
  IndexKey(key, kSegment);
  const std::string survivor = IndexKey(key, "acme/suppliers");
  ASSERT_TRUE(IsOk(ScheduleSegmentDestruction(SegName(key, kSegment), Seconds(1))));
  EXPECT_TRUE(StatusIs(DeriveBlindIndexKey(key, kSegment, "email"), StatusCode::FAILED_PRECONDITION,
                       "PENDING_DESTRUCTION"));
  absl::SleepFor(absl::Milliseconds(1300));
  clavis::v1::Segment destroyed;
  ASSERT_TRUE(IsOk(SegmentOp(&AdminStub::DestroySegment, SegName(key, kSegment), &destroyed)));
  EXPECT_EQ(destroyed.state(), clavis::v1::DESTROYED);
  for (const char* index : {"email", "phone"}) {
    EXPECT_TRUE(StatusIs(DeriveBlindIndexKey(key, kSegment, index), StatusCode::FAILED_PRECONDITION,
                         "DESTROYED"));
  }
  Restart();
  EXPECT_TRUE(StatusIs(DeriveBlindIndexKey(key, kSegment, "email"), StatusCode::FAILED_PRECONDITION,
                       "DESTROYED"));
  EXPECT_EQ(IndexKey(key, "acme/suppliers"), survivor);
}

TEST_F(BlindIndexTest, CallsAreAuditedAndTheIndexKeyIsNeverWritten) {
  const std::string key = MakeKey("acme", "crm");
  const std::string index_key = IndexKey(key, kSegment, "email");
  const std::string nobody = PrincipalName("acme", "nobody");
  EXPECT_TRUE(StatusIs(DeriveAs(nobody, key, kSegment), StatusCode::PERMISSION_DENIED));
  EXPECT_TRUE(StatusIs(DeriveBlindIndexKey(key, kSegment, "E"), StatusCode::INVALID_ARGUMENT));

  bool allowed = false, denied = false, invalid = false;
  for (const auto& r : AuditRecords()) {
    if (r.kind != kms::AuditRecordKind::kCall || r.action != "DeriveBlindIndexKey") continue;
    EXPECT_EQ(r.resource, key);
    EXPECT_TRUE(r.context_hash.empty()) << "the call has no encryption context";
    if (r.principal == PrincipalName("acme") && r.result_code == absl::StatusCode::kOk) {
      allowed = true;
      EXPECT_EQ(r.segment, kSegment);
      EXPECT_FALSE(r.peer.empty());
      EXPECT_FALSE(r.request_id.empty());
    }
    if (r.principal == nobody && r.result_code == absl::StatusCode::kPermissionDenied) {
      denied = true;
      EXPECT_EQ(r.segment, kSegment);
    }
    if (r.principal == PrincipalName("acme") &&
        r.result_code == absl::StatusCode::kInvalidArgument) {
      invalid = true;
    }
  }
  EXPECT_TRUE(allowed);
  EXPECT_TRUE(denied);
  EXPECT_TRUE(invalid);

  const std::string public_key = clavisd_->AuditPublicKey();
  StopClavisd();
  if (HasFatalFailure()) return;
  auto report = kms::VerifyAuditLog(AuditDir(), public_key);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_TRUE(report->ok()) << report->ToString();

  // Neither the audit log nor clavisd's own log holds the key, in any encoding.
  std::vector<std::pair<std::string, std::string>> files = ReadAllFiles(AuditDir());
  std::ifstream log(clavisd_->log_file(), std::ios::binary);
  std::stringstream log_text;
  log_text << log.rdbuf();
  files.emplace_back(clavisd_->log_file(), log_text.str());
  EXPECT_FALSE(files.back().second.empty()) << "clavisd's log was not found";
  for (const auto& [path, content] : files) {
    for (const std::string& encoded : Encodings(index_key)) {
      EXPECT_EQ(content.find(encoded), std::string::npos) << path << " holds the index key";
    }
  }
}

}  // namespace
}  // namespace clavis::testing
