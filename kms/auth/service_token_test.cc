#include "kms/auth/service_token.h"

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "crypto/byte_io.h"
#include "crypto/ed25519.h"
#include "crypto/encoding.h"
#include "crypto/random.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace clavis::kms::auth {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kAudience[] = "clavisd.prod";

std::string B64(absl::string_view bytes) {
  return crypto::Base64Encode(bytes, crypto::Base64Variant::kUrlSafeNoPadding);
}

// The claims encoding of docs/FORMAT.md, written out independently of the
// implementation so the two are checked against each other.
struct SpecClaims {
  uint8_t version = 1;
  std::string issuer_key_id = "k1";
  std::string principal = "tenants/acme/principals/billing-app";
  std::string audience = kAudience;
  std::string token_id = "t-42";
  std::vector<std::string> groups = {"tenants/acme/groups/readers"};
  int64_t issued_at = 1800000000;
  int64_t expires_at = 1800000000 + 3600;
  std::string trailing;  // bytes appended after the last field

  std::string Encode() const {
    std::string out;
    crypto::ByteWriter w(&out);
    w.U8(version);
    w.U8Prefixed(issuer_key_id);
    w.U16Prefixed(principal);
    w.U16Prefixed(audience);
    w.U8Prefixed(token_id);
    w.U8(static_cast<uint8_t>(groups.size()));
    for (const std::string& g : groups) w.U16Prefixed(g);
    w.U64(static_cast<uint64_t>(issued_at));
    w.U64(static_cast<uint64_t>(expires_at));
    out += trailing;
    return out;
  }
};

// A token carrying `claims_bytes`, correctly signed with `seed`.
std::string SignRaw(absl::string_view claims_bytes, const crypto::SecretBytes& seed) {
  std::string signed_part = absl::StrCat(kTokenPrefix, B64(claims_bytes));
  auto sig = crypto::Ed25519Sign(seed, signed_part);
  EXPECT_TRUE(sig.ok());
  return absl::StrCat(signed_part, ".", B64(*sig));
}

std::string TempPath(absl::string_view name) {
  return absl::StrCat(::testing::TempDir(), "/auth_", name, "_",
                      crypto::HexEncode(crypto::RandomBytes(6)));
}

void WriteText(const std::string& path, absl::string_view text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  ASSERT_TRUE(out.good());
}

class ServiceTokenTest : public ::testing::Test {
 protected:
  TokenClaims Claims() const {
    TokenClaims c;
    c.issuer_key_id = "k1";
    c.principal = "tenants/acme/principals/billing-app";
    c.groups = {"tenants/acme/groups/readers"};
    c.audience = kAudience;
    c.issued_at = clock_.Now();
    c.expires_at = clock_.Now() + absl::Hours(1);
    c.token_id = "t-42";
    return c;
  }

  std::string Sign(const TokenClaims& c) {
    auto token = SignServiceToken(c, issuer_.seed);
    EXPECT_TRUE(token.ok()) << token.status();
    return token.ok() ? *token : std::string();
  }

  TokenVerifierOptions Options() const {
    TokenVerifierOptions o;
    o.audience = kAudience;
    o.issuers = {{"k1", issuer_.public_key}, {"k0", other_.public_key}};
    return o;
  }

  std::unique_ptr<TokenVerifier> Verifier(TokenVerifierOptions o) {
    auto v = TokenVerifier::Create(std::move(o), &clock_);
    EXPECT_TRUE(v.ok()) << v.status();
    return v.ok() ? *std::move(v) : nullptr;
  }
  std::unique_ptr<TokenVerifier> Verifier() { return Verifier(Options()); }

  // Refused as Unauthenticated with `why` in the message, and the message
  // does not echo the token's encoded claims or signature.
  void ExpectRefused(const TokenVerifier& v, absl::string_view token, absl::string_view why,
                     absl::StatusCode code = absl::StatusCode::kUnauthenticated) {
    auto id = v.Verify(token);
    ASSERT_FALSE(id.ok()) << "accepted: " << why;
    EXPECT_EQ(id.status().code(), code) << id.status();
    EXPECT_THAT(std::string(id.status().message()), HasSubstr(std::string(why)));
    ExpectNoTokenBytes(id.status(), token);
  }

  static void ExpectNoTokenBytes(const absl::Status& status, absl::string_view token) {
    const std::string message(status.message());
    if (token.size() <= sizeof(kTokenPrefix)) return;
    absl::string_view rest = token.substr(sizeof(kTokenPrefix) - 1);
    // Any 12 consecutive characters of the encoded parts.
    for (size_t i = 0; i + 12 <= rest.size(); i += 6) {
      ASSERT_THAT(message, Not(HasSubstr(std::string(rest.substr(i, 12)))))
          << "message echoes token bytes: " << message;
    }
  }

  FakeClock clock_;
  crypto::Ed25519KeyPair issuer_ = crypto::Ed25519KeyPair::Generate();
  crypto::Ed25519KeyPair other_ = crypto::Ed25519KeyPair::Generate();
};

TEST_F(ServiceTokenTest, SignVerifyRoundTrip) {
  const std::string token = Sign(Claims());
  EXPECT_THAT(token, ::testing::StartsWith("clavis-token.v1."));
  auto v = Verifier();
  auto id = v->Verify(token);
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(id->principal, "tenants/acme/principals/billing-app");
  EXPECT_EQ(id->tenant, "acme");
  EXPECT_THAT(id->groups, ::testing::ElementsAre("tenants/acme/groups/readers"));
  EXPECT_EQ(id->method, AuthMethod::kToken);
  EXPECT_EQ(id->token_id, "t-42");
}

TEST_F(ServiceTokenTest, EncodingIsExactlyTheSpec) {
  // The bytes of docs/FORMAT.md written out by hand.
  const std::string expected_claims = std::string(
      "\x01"                                         // version
      "\x02k1"                                       // issuer
      "\x00\x23tenants/acme/principals/billing-app"  // principal
      "\x00\x0c"
      "clavisd.prod"  // audience
      "\x04t-42"      // token id
      "\x01"          // one group
      "\x00\x1btenants/acme/groups/readers"
      "\x00\x00\x00\x00\x6b\x49\xd2\x00"   // issued_at
      "\x00\x00\x00\x00\x6b\x49\xe0\x10",  // expires_at
      1 + 3 + 37 + 14 + 5 + 1 + 29 + 16);
  ASSERT_EQ(expected_claims, SpecClaims{}.Encode());
  const std::string token = Sign(Claims());
  const std::string signed_part = absl::StrCat("clavis-token.v1.", B64(expected_claims));
  ASSERT_EQ(token.substr(0, signed_part.size()), signed_part);
  ASSERT_EQ(token[signed_part.size()], '.');
  auto sig = crypto::Base64Decode(token.substr(signed_part.size() + 1),
                                  crypto::Base64Variant::kUrlSafeNoPadding);
  ASSERT_TRUE(sig.ok());
  ASSERT_EQ(sig->size(), 64u);
  EXPECT_TRUE(crypto::Ed25519Verify(issuer_.public_key, signed_part, *sig).ok());
  // Ed25519 is deterministic: the spec construction gives the same token.
  EXPECT_EQ(token, SignRaw(expected_claims, issuer_.seed));
}

TEST_F(ServiceTokenTest, SubSecondTimesAreTruncated) {
  TokenClaims c = Claims();
  c.issued_at += absl::Milliseconds(900);
  c.expires_at += absl::Milliseconds(900);
  auto decoded = DecodeServiceTokenUnverified(Sign(c));
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(decoded->issued_at, clock_.Now());
  EXPECT_EQ(decoded->expires_at, clock_.Now() + absl::Hours(1));
}

TEST_F(ServiceTokenTest, DecodeUnverifiedReturnsClaimsWithoutCheckingSignature) {
  TokenClaims c = Claims();
  c.groups.push_back("tenants/acme/groups/ops");
  std::string token = Sign(c);
  // Another issuer's signature: decoding does not care.
  std::string forged = SignRaw(
      [&] {
        auto s = crypto::Base64Decode(token.substr(16, token.rfind('.') - 16),
                                      crypto::Base64Variant::kUrlSafeNoPadding);
        return *s;
      }(),
      other_.seed);
  for (const std::string& t : {token, forged}) {
    auto d = DecodeServiceTokenUnverified(t);
    ASSERT_TRUE(d.ok()) << d.status();
    EXPECT_EQ(d->principal, c.principal);
    EXPECT_EQ(d->groups, c.groups);
    EXPECT_EQ(d->issuer_key_id, "k1");
    EXPECT_EQ(d->audience, kAudience);
    EXPECT_EQ(d->token_id, "t-42");
    EXPECT_EQ(d->issued_at, c.issued_at);
    EXPECT_EQ(d->expires_at, c.expires_at);
  }
  ExpectRefused(*Verifier(), forged, "token signature is not valid");
  auto bad = DecodeServiceTokenUnverified("clavis-token.v1.AAAA.BBBB");
  EXPECT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("malformed token"));
}

TEST_F(ServiceTokenTest, ExpiredTokenIsRefusedAfterTheSkew) {
  auto v = Verifier();
  const std::string token = Sign(Claims());
  clock_.Advance(absl::Hours(1) + absl::Seconds(60));  // exactly expires_at + skew
  EXPECT_TRUE(v->Verify(token).ok());
  clock_.Advance(absl::Seconds(1));
  ExpectRefused(*v, token, "token expired at 2027-01-15T09:00:00Z");
  ExpectRefused(*v, token, "t-42");
}

TEST_F(ServiceTokenTest, NotYetValidTokenIsRefusedBeyondTheSkew) {
  auto v = Verifier();
  TokenClaims c = Claims();
  c.issued_at = clock_.Now() + absl::Seconds(60);
  c.expires_at = c.issued_at + absl::Hours(1);
  EXPECT_TRUE(v->Verify(Sign(c)).ok());
  c.issued_at += absl::Seconds(1);
  c.expires_at += absl::Seconds(1);
  ExpectRefused(*v, Sign(c), "not valid yet");
}

TEST_F(ServiceTokenTest, WrongAudienceIsRefused) {
  TokenClaims c = Claims();
  c.audience = "clavisd.staging";
  ExpectRefused(*Verifier(), Sign(c),
                "token is for audience \"clavisd.staging\", this server is \"clavisd.prod\"");
}

TEST_F(ServiceTokenTest, UnknownIssuerIsRefused) {
  TokenClaims c = Claims();
  c.issuer_key_id = "k2";
  ExpectRefused(*Verifier(), Sign(c), "unknown token issuer key \"k2\"");
}

TEST_F(ServiceTokenTest, SignatureByAnotherTrustedKeyIsRefused) {
  // Claims name k1, but k0's key signed them.
  TokenClaims c = Claims();
  auto token = SignServiceToken(c, other_.seed);
  ASSERT_TRUE(token.ok());
  ExpectRefused(*Verifier(), *token, "token signature is not valid");
}

TEST_F(ServiceTokenTest, LifetimeLongerThanTheMaximumIsRefused) {
  auto v = Verifier();
  TokenClaims c = Claims();
  c.expires_at = c.issued_at + absl::Hours(24);
  EXPECT_TRUE(v->Verify(Sign(c)).ok());
  c.expires_at += absl::Seconds(1);
  ExpectRefused(*v, Sign(c), "lifetime");
}

TEST_F(ServiceTokenTest, EveryFlippedBitOfClaimsOrSignatureIsRefused) {
  auto v = Verifier();
  const std::string token = Sign(Claims());
  const size_t dot = token.rfind('.');
  const std::string claims =
      *crypto::Base64Decode(token.substr(16, dot - 16), crypto::Base64Variant::kUrlSafeNoPadding);
  const std::string sig =
      *crypto::Base64Decode(token.substr(dot + 1), crypto::Base64Variant::kUrlSafeNoPadding);
  int checked = 0;
  for (uint8_t mask : {0x01, 0x80}) {
    for (size_t i = 0; i < claims.size(); ++i) {
      std::string c = claims;
      c[i] = static_cast<char>(c[i] ^ mask);
      const std::string t = absl::StrCat(kTokenPrefix, B64(c), ".", B64(sig));
      ASSERT_FALSE(v->Verify(t).ok()) << "claims byte " << i;
      ++checked;
    }
    for (size_t i = 0; i < sig.size(); ++i) {
      std::string s = sig;
      s[i] = static_cast<char>(s[i] ^ mask);
      const std::string t = absl::StrCat(token.substr(0, dot), ".", B64(s));
      ExpectRefused(*v, t, "token signature is not valid");
      ++checked;
    }
  }
  EXPECT_EQ(checked, 2 * (claims.size() + 64));
}

TEST_F(ServiceTokenTest, EveryChangedCharacterIsRefused) {
  auto v = Verifier();
  const std::string token = Sign(Claims());
  for (size_t i = 0; i < token.size(); ++i) {
    for (char replacement : {'A', 'B', '_', '-', '.', '=', '+', '/', ' ', '\0', '\xff'}) {
      if (token[i] == replacement) continue;
      std::string t = token;
      t[i] = replacement;
      auto id = v->Verify(t);
      ASSERT_FALSE(id.ok()) << "position " << i << " replaced by " << int{replacement};
      EXPECT_EQ(id.status().code(), absl::StatusCode::kUnauthenticated);
      ExpectNoTokenBytes(id.status(), t);
    }
  }
}

TEST_F(ServiceTokenTest, TruncatedAtEveryLengthIsRefused) {
  auto v = Verifier();
  const std::string token = Sign(Claims());
  ASSERT_TRUE(v->Verify(token).ok());
  for (size_t n = 0; n < token.size(); ++n) {
    const std::string t = token.substr(0, n);
    auto id = v->Verify(t);
    ASSERT_FALSE(id.ok()) << "length " << n;
    EXPECT_EQ(id.status().code(), absl::StatusCode::kUnauthenticated);
    EXPECT_FALSE(DecodeServiceTokenUnverified(t).ok()) << "length " << n;
  }
}

TEST_F(ServiceTokenTest, NonCanonicalBase64IsRefused) {
  auto v = Verifier();
  const std::string token = Sign(Claims());
  const size_t dot = token.rfind('.');
  const std::string claims_part = token.substr(16, dot - 16);
  const std::string sig_part = token.substr(dot + 1);
  ASSERT_EQ(sig_part.size(), 86u);  // 64 bytes, no padding
  ExpectRefused(*v, token + "==", "malformed token");
  ExpectRefused(*v, absl::StrCat(kTokenPrefix, claims_part, "=.", sig_part), "malformed token");
  ExpectRefused(*v, token + ".", "malformed token");
  ExpectRefused(*v, token + ".AAAA", "malformed token");
  ExpectRefused(*v, " " + token, "malformed token");
  ExpectRefused(*v, token + "\n", "malformed token");
  ExpectRefused(*v, absl::StrCat(kTokenPrefix, ".", sig_part), "malformed token");
  ExpectRefused(*v, absl::StrCat(kTokenPrefix, claims_part), "malformed token");
  // Standard-alphabet characters in place of their URL-safe twins.
  std::string standard = crypto::Base64Encode(
      *crypto::Base64Decode(sig_part, crypto::Base64Variant::kUrlSafeNoPadding));
  ExpectRefused(*v, absl::StrCat(token.substr(0, dot), ".", standard), "malformed token");
  // The last character of the signature part carries 2 unused bits: setting
  // them gives the same bytes in a non-canonical spelling.
  std::string loose = token;
  const char last = loose.back();
  const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  const size_t value = alphabet.find(last);
  ASSERT_EQ(value % 4, 0u);
  loose.back() = alphabet[value + 1];
  ExpectRefused(*v, loose, "malformed token");
}

TEST_F(ServiceTokenTest, OversizedTokenIsRefusedBeforeDecoding) {
  auto v = Verifier();
  const std::string token = Sign(Claims());
  std::string big = token + std::string(kMaxTokenBytes, 'A');
  ExpectRefused(*v, big, absl::StrCat("longer than ", kMaxTokenBytes));
  ExpectRefused(*v, std::string(kMaxTokenBytes + 1, '.'), "longer than");
  // The signer refuses to make one: 32 groups of the longest names fit the
  // group limit but not the size limit.
  const std::string tenant(63, 't');
  TokenClaims c = Claims();
  c.principal = absl::StrCat("tenants/", tenant, "/principals/", std::string(128, 'p'));
  c.groups.clear();
  for (int i = 10; i < 42; ++i) {
    c.groups.push_back(absl::StrCat("tenants/", tenant, "/groups/", std::string(126, 'g'), i));
  }
  auto signed_big = SignServiceToken(c, issuer_.seed);
  ASSERT_FALSE(signed_big.ok());
  EXPECT_EQ(signed_big.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(signed_big.status().message()), HasSubstr("limit of 8192"));
}

TEST_F(ServiceTokenTest, WrongVersionIsRefused) {
  auto v = Verifier();
  const std::string token = Sign(Claims());
  ExpectRefused(*v, "clavis-token.v2." + token.substr(16), "not a Clavis service token");
  ExpectRefused(*v, "Clavis-token.v1." + token.substr(16), "not a Clavis service token");
  ExpectRefused(*v, token.substr(16), "not a Clavis service token");
  SpecClaims spec;
  spec.version = 2;
  ExpectRefused(*v, SignRaw(spec.Encode(), issuer_.seed), "unsupported claims version 2");
}

TEST_F(ServiceTokenTest, StrictClaimsDecoding) {
  auto v = Verifier();
  // Sanity: the spec encoder makes a token the verifier accepts.
  ASSERT_TRUE(v->Verify(SignRaw(SpecClaims{}.Encode(), issuer_.seed)).ok());

  SpecClaims trailing;
  trailing.trailing = std::string(1, '\0');
  ExpectRefused(*v, SignRaw(trailing.Encode(), issuer_.seed), "1 unexpected bytes");

  SpecClaims too_many;
  too_many.groups.clear();
  for (int i = 0; i < 33; ++i) too_many.groups.push_back(absl::StrCat("tenants/acme/groups/g", i));
  ExpectRefused(*v, SignRaw(too_many.Encode(), issuer_.seed), "33 groups");

  SpecClaims other_tenant;
  other_tenant.groups.push_back("tenants/evil/groups/admins");
  ExpectRefused(*v, SignRaw(other_tenant.Encode(), issuer_.seed),
                "is of another tenant than principal");

  SpecClaims group_as_principal;
  group_as_principal.principal = "tenants/acme/groups/readers";
  ExpectRefused(*v, SignRaw(group_as_principal.Encode(), issuer_.seed), "malformed token");

  SpecClaims principal_as_group;
  principal_as_group.groups = {"tenants/acme/principals/root"};
  ExpectRefused(*v, SignRaw(principal_as_group.Encode(), issuer_.seed), "malformed token");

  SpecClaims duplicate_group;
  duplicate_group.groups = {"tenants/acme/groups/a", "tenants/acme/groups/a"};
  ExpectRefused(*v, SignRaw(duplicate_group.Encode(), issuer_.seed), "named twice");

  SpecClaims bad_token_id;
  bad_token_id.token_id = "t 42";
  ExpectRefused(*v, SignRaw(bad_token_id.Encode(), issuer_.seed), "token id");

  SpecClaims empty_issuer;
  empty_issuer.issuer_key_id = "";
  ExpectRefused(*v, SignRaw(empty_issuer.Encode(), issuer_.seed), "issuer key id");

  SpecClaims backwards;
  backwards.expires_at = backwards.issued_at;
  ExpectRefused(*v, SignRaw(backwards.Encode(), issuer_.seed), "expires_at is not after");

  SpecClaims huge_times;  // far from now, and a lifetime that would overflow int64 seconds
  huge_times.issued_at = INT64_MIN;
  huge_times.expires_at = INT64_MAX;
  ExpectRefused(*v, SignRaw(huge_times.Encode(), issuer_.seed), "lifetime");

  SpecClaims long_lifetime;
  long_lifetime.expires_at = INT64_MAX;
  ExpectRefused(*v, SignRaw(long_lifetime.Encode(), issuer_.seed), "lifetime");
}

TEST_F(ServiceTokenTest, SigningRefusesMalformedClaims) {
  struct Case {
    const char* what;
    std::function<void(TokenClaims&)> edit;
    const char* message;
  };
  const std::vector<Case> cases = {
      {"group as principal", [](TokenClaims& c) { c.principal = "tenants/acme/groups/x"; },
       "principal"},
      {"no tenant", [](TokenClaims& c) { c.principal = "principals/x"; }, "principal"},
      {"bad tenant", [](TokenClaims& c) { c.principal = "tenants/ACME/principals/x"; },
       "principal"},
      {"group of other tenant", [](TokenClaims& c) { c.groups = {"tenants/other/groups/g"}; },
       "is of another tenant than principal"},
      {"principal as group", [](TokenClaims& c) { c.groups = {"tenants/acme/principals/p"}; },
       "group"},
      {"malformed group", [](TokenClaims& c) { c.groups = {"tenants/acme/groups/"}; }, "group"},
      {"duplicate group",
       [](TokenClaims& c) {
         c.groups = {"tenants/acme/groups/g", "tenants/acme/groups/g"};
       },
       "named twice"},
      {"33 groups",
       [](TokenClaims& c) {
         c.groups.clear();
         for (int i = 0; i < 33; ++i) c.groups.push_back(absl::StrCat("tenants/acme/groups/g", i));
       },
       "at most 32 groups"},
      {"empty audience", [](TokenClaims& c) { c.audience = ""; }, "audience"},
      {"audience with space", [](TokenClaims& c) { c.audience = "a b"; }, "audience"},
      {"empty issuer", [](TokenClaims& c) { c.issuer_key_id = ""; }, "issuer key id"},
      {"long issuer", [](TokenClaims& c) { c.issuer_key_id = std::string(65, 'k'); },
       "issuer key id"},
      {"issuer slash", [](TokenClaims& c) { c.issuer_key_id = "k/1"; }, "issuer key id"},
      {"empty token id", [](TokenClaims& c) { c.token_id = ""; }, "token id"},
      {"token id newline", [](TokenClaims& c) { c.token_id = "t\n1"; }, "token id"},
      {"expires == issued", [](TokenClaims& c) { c.expires_at = c.issued_at; }, "expires_at"},
      {"expires < issued", [](TokenClaims& c) { c.expires_at = c.issued_at - absl::Seconds(1); },
       "expires_at"},
      {"expires within the same second",
       [](TokenClaims& c) { c.expires_at = c.issued_at + absl::Milliseconds(500); }, "expires_at"},
      {"infinite expiry", [](TokenClaims& c) { c.expires_at = absl::InfiniteFuture(); }, "finite"},
  };
  for (const Case& k : cases) {
    TokenClaims c = Claims();
    k.edit(c);
    auto token = SignServiceToken(c, issuer_.seed);
    ASSERT_FALSE(token.ok()) << k.what;
    EXPECT_EQ(token.status().code(), absl::StatusCode::kInvalidArgument) << k.what;
    EXPECT_THAT(std::string(token.status().message()), HasSubstr(k.message)) << k.what;
  }
  auto short_seed = SignServiceToken(Claims(), crypto::SecretBytes(31));
  EXPECT_EQ(short_seed.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(ServiceTokenTest, CreateRefusesBadOptions) {
  auto expect_bad = [&](TokenVerifierOptions o, absl::string_view message) {
    auto v = TokenVerifier::Create(std::move(o), &clock_);
    ASSERT_FALSE(v.ok()) << message;
    EXPECT_EQ(v.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(v.status().message()), HasSubstr(std::string(message)));
  };
  TokenVerifierOptions o = Options();
  o.audience = "";
  expect_bad(o, "audience");
  o = Options();
  o.issuers.clear();
  expect_bad(o, "at least one trusted issuer");
  o = Options();
  o.issuers[0].public_key.pop_back();
  expect_bad(o, "must be 32 bytes");
  o = Options();
  o.issuers[1].key_id = "k1";
  expect_bad(o, "listed twice");
  o = Options();
  o.issuers[0].key_id = "bad key";
  expect_bad(o, "issuer key id");
  o = Options();
  o.max_lifetime = absl::ZeroDuration();
  expect_bad(o, "max_lifetime");
  o = Options();
  o.clock_skew = -absl::Seconds(1);
  expect_bad(o, "clock_skew");
  EXPECT_FALSE(TokenVerifier::Create(Options(), nullptr).ok());
}

class RevocationTest : public ServiceTokenTest {
 protected:
  void SetUp() override { path_ = TempPath("revoked"); }
  void TearDown() override {
    std::error_code ignored;
    std::filesystem::permissions(path_, std::filesystem::perms::owner_all, ignored);
    std::filesystem::remove_all(path_, ignored);
  }
  std::unique_ptr<TokenVerifier> RevocationVerifier() {
    TokenVerifierOptions o = Options();
    o.revocation_file = path_;
    return Verifier(std::move(o));
  }
  std::string path_;
};

TEST_F(RevocationTest, RevokedIdIsRefusedAndEditsApplyAfterOneSecond) {
  WriteText(path_, "# revoked tokens\n\n  t-41  \nt-42 # leaked in a log\n");
  auto v = RevocationVerifier();
  const std::string token = Sign(Claims());
  TokenClaims other = Claims();
  other.token_id = "t-43";
  const std::string other_token = Sign(other);
  ExpectRefused(*v, token, "token t-42 was revoked");
  EXPECT_TRUE(v->Verify(other_token).ok());

  // Un-revoke t-42 and revoke t-43: not looked at within the second.
  WriteText(path_, "t-43\n");
  clock_.Advance(absl::Milliseconds(999));
  ExpectRefused(*v, token, "token t-42 was revoked");
  EXPECT_TRUE(v->Verify(other_token).ok());
  clock_.Advance(absl::Milliseconds(1));
  EXPECT_TRUE(v->Verify(token).ok());
  ExpectRefused(*v, other_token, "token t-43 was revoked");

  // A deleted file revokes nothing.
  std::filesystem::remove(path_);
  clock_.Advance(absl::Seconds(1));
  EXPECT_TRUE(v->Verify(other_token).ok());
}

TEST_F(RevocationTest, MissingFileRevokesNothing) {
  auto v = RevocationVerifier();
  EXPECT_TRUE(v->Verify(Sign(Claims())).ok());
  // Created later: picked up.
  WriteText(path_, "t-42\n");
  clock_.Advance(absl::Seconds(1));
  ExpectRefused(*v, Sign(Claims()), "token t-42 was revoked");
}

TEST_F(RevocationTest, RevocationIsCheckedOnlyAfterTheSignature) {
  WriteText(path_, "t-42\n");
  auto v = RevocationVerifier();
  auto forged = SignServiceToken(Claims(), other_.seed);
  ASSERT_TRUE(forged.ok());
  ExpectRefused(*v, *forged, "token signature is not valid");
}

TEST_F(RevocationTest, UnreadableFileRefusesEveryToken) {
  // A directory exists but cannot be read as a file.
  std::filesystem::create_directory(path_);
  auto v = RevocationVerifier();
  ExpectRefused(*v, Sign(Claims()), "revocation list", absl::StatusCode::kUnavailable);
  ExpectRefused(*v, Sign(Claims()), "no token is accepted", absl::StatusCode::kUnavailable);
  std::filesystem::remove(path_);
  WriteText(path_, "t-1\n");
  clock_.Advance(absl::Seconds(1));
  EXPECT_TRUE(v->Verify(Sign(Claims())).ok());
}

TEST_F(RevocationTest, FileWithoutReadPermissionRefusesEveryToken) {
  if (geteuid() == 0) {
    GTEST_SKIP() << "running as root: a mode 000 file is still readable (the directory case "
                    "of UnreadableFileRefusesEveryToken covers failing closed)";
  }
  WriteText(path_, "t-1\n");
  auto v = RevocationVerifier();
  EXPECT_TRUE(v->Verify(Sign(Claims())).ok());
  ASSERT_EQ(chmod(path_.c_str(), 0), 0);
  clock_.Advance(absl::Seconds(1));
  ExpectRefused(*v, Sign(Claims()), "Permission denied", absl::StatusCode::kUnavailable);
  ASSERT_EQ(chmod(path_.c_str(), 0600), 0);
  clock_.Advance(absl::Seconds(1));
  EXPECT_TRUE(v->Verify(Sign(Claims())).ok());
}

TEST_F(RevocationTest, MalformedLineRefusesEveryToken) {
  WriteText(path_, "t-1\nt-2 t-3\n");
  auto v = RevocationVerifier();
  ExpectRefused(*v, Sign(Claims()), "line 2", absl::StatusCode::kUnavailable);
  // Fixed: accepted again once re-read.
  WriteText(path_, "t-1\nt-2\nt-3\n");
  clock_.Advance(absl::Seconds(1));
  EXPECT_TRUE(v->Verify(Sign(Claims())).ok());
}

TEST_F(RevocationTest, ConcurrentVerifySmokeTest) {
  WriteText(path_, "t-0\n");
  auto v = RevocationVerifier();
  std::vector<std::string> tokens;
  for (int i = 0; i < 4; ++i) {
    TokenClaims c = Claims();
    c.token_id = absl::StrCat("t-", i);
    tokens.push_back(Sign(c));
  }
  std::vector<std::thread> threads;
  std::atomic<int> wrong{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        if (t == 0 && i % 20 == 0) clock_.Advance(absl::Milliseconds(500));
        const bool ok = v->Verify(tokens[i % 4]).ok();
        if (ok != (i % 4 != 0)) ++wrong;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(wrong.load(), 0);
}

}  // namespace
}  // namespace clavis::kms::auth
