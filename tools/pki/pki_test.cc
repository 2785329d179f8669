// The certificates tools/pki issues, parsed back with OpenSSL: names,
// extensions, validity, signatures and chains; files, modes and bad input.
#include "tools/pki/pki.h"

#include <arpa/inet.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kms/policy/principal.h"

namespace clavis::pki {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::StartsWith;

template <typename T, void (*Free)(T*)>
struct Deleter {
  void operator()(T* p) const { Free(p); }
};
using X509Ptr = std::unique_ptr<X509, Deleter<X509, X509_free>>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY, EVP_PKEY_free>>;
using StorePtr = std::unique_ptr<X509_STORE, Deleter<X509_STORE, X509_STORE_free>>;
using StoreCtxPtr = std::unique_ptr<X509_STORE_CTX, Deleter<X509_STORE_CTX, X509_STORE_CTX_free>>;
using NamesPtr = std::unique_ptr<GENERAL_NAMES, Deleter<GENERAL_NAMES, GENERAL_NAMES_free>>;
using BasicConstraintsPtr =
    std::unique_ptr<BASIC_CONSTRAINTS, Deleter<BASIC_CONSTRAINTS, BASIC_CONSTRAINTS_free>>;
using BignumPtr = std::unique_ptr<BIGNUM, Deleter<BIGNUM, BN_free>>;
using BioPtr = std::unique_ptr<BIO, Deleter<BIO, BIO_free_all>>;

constexpr char kPrincipal[] = "tenants/acme/principals/billing-app";
constexpr char kGroup[] = "tenants/acme/groups/billing";

#define ASSERT_OK_AND_ASSIGN(lhs, expr)                       \
  auto lhs##_or = (expr);                                     \
  ASSERT_TRUE(lhs##_or.ok()) << lhs##_or.status().ToString(); \
  auto lhs = *std::move(lhs##_or)

testing::AssertionResult StatusIs(const absl::Status& status, absl::StatusCode code,
                                  absl::string_view substring = "") {
  if (status.code() == code && absl::StrContains(status.message(), substring)) {
    return testing::AssertionSuccess();
  }
  return testing::AssertionFailure()
         << "got " << status.ToString() << ", want " << absl::StatusCodeToString(code)
         << " containing \"" << substring << "\"";
}

X509Ptr ParseCertificate(const std::string& pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  return X509Ptr(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
}

PkeyPtr ParseKey(const crypto::SecretBytes& pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  return PkeyPtr(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
}

std::string CommonName(X509* certificate) {
  char buffer[256] = {};
  X509_NAME_get_text_by_NID(X509_get_subject_name(certificate), NID_commonName, buffer,
                            sizeof(buffer));
  return buffer;
}

absl::Time ToTime(const ASN1_TIME* time) {
  struct tm tm;
  EXPECT_EQ(ASN1_TIME_to_tm(time, &tm), 1);
  return absl::FromTM(tm, absl::UTCTimeZone());
}

// The SANs as "DNS:x", "IP:1.2.3.4"-style strings via OpenSSL's own printer.
std::vector<std::string> AltNames(X509* certificate, int type) {
  NamesPtr names(static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(certificate, NID_subject_alt_name, nullptr, nullptr)));
  std::vector<std::string> out;
  for (int i = 0; names != nullptr && i < sk_GENERAL_NAME_num(names.get()); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names.get(), i);
    int t = 0;
    const auto* value = static_cast<const ASN1_STRING*>(GENERAL_NAME_get0_value(name, &t));
    if (t != type) continue;
    if (type == GEN_IPADD) {
      char text[INET6_ADDRSTRLEN] = {};
      inet_ntop(ASN1_STRING_length(value) == 4 ? AF_INET : AF_INET6, ASN1_STRING_get0_data(value),
                text, sizeof(text));
      out.push_back(text);
    } else {
      out.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(value)),
                       ASN1_STRING_length(value));
    }
  }
  return out;
}

bool IsCriticalExtension(X509* certificate, int nid) {
  const int index = X509_get_ext_by_NID(certificate, nid, -1);
  return index >= 0 && X509_EXTENSION_get_critical(X509_get_ext(certificate, index)) == 1;
}

// Full chain verification (signature, validity, CA flags, purpose).
int VerifyChain(X509* leaf, X509* root, int purpose) {
  StorePtr store(X509_STORE_new());
  X509_STORE_add_cert(store.get(), root);
  StoreCtxPtr context(X509_STORE_CTX_new());
  X509_STORE_CTX_init(context.get(), store.get(), leaf, nullptr);
  X509_STORE_CTX_set_purpose(context.get(), purpose);
  const int ok = X509_verify_cert(context.get());
  return ok == 1 ? X509_V_OK : X509_STORE_CTX_get_error(context.get());
}

class TempDir {
 public:
  TempDir() {
    std::string pattern = absl::StrCat(testing::TempDir(), "/pki_test_XXXXXX");
    path_ = mkdtemp(pattern.data());
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string Join(absl::string_view name) const { return absl::StrCat(path_, "/", name); }
  std::vector<std::string> Entries() const {
    std::vector<std::string> names;
    for (const auto& e : std::filesystem::directory_iterator(path_)) {
      names.push_back(e.path().filename().string());
    }
    std::sort(names.begin(), names.end());
    return names;
  }

 private:
  std::string path_;
};

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void WriteAll(const std::string& path, const std::string& contents) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << contents;
}

unsigned Mode(const std::string& path) {
  struct stat st;
  EXPECT_EQ(stat(path.c_str(), &st), 0) << path;
  return st.st_mode & 07777;
}

class PkiTest : public testing::Test {
 protected:
  static void SetUpTestSuite() {
    absl::StatusOr<KeyAndCertificate> ca = CreateCertificateAuthority({});
    ASSERT_TRUE(ca.ok()) << ca.status();
    ca_ = new KeyAndCertificate(*std::move(ca));
    absl::StatusOr<KeyAndCertificate> other = CreateCertificateAuthority({"Other CA"});
    ASSERT_TRUE(other.ok()) << other.status();
    other_ca_ = new KeyAndCertificate(*std::move(other));
  }
  static void TearDownTestSuite() {
    delete ca_;
    delete other_ca_;
  }

  static KeyAndCertificate* ca_;
  static KeyAndCertificate* other_ca_;
};
KeyAndCertificate* PkiTest::ca_ = nullptr;
KeyAndCertificate* PkiTest::other_ca_ = nullptr;

TEST_F(PkiTest, CaIsASelfSignedP256CaCertificate) {
  X509Ptr cert = ParseCertificate(ca_->certificate_pem);
  ASSERT_NE(cert, nullptr);
  EXPECT_EQ(X509_get_version(cert.get()), X509_VERSION_3);
  EXPECT_EQ(CommonName(cert.get()), "Clavis CA");
  EXPECT_EQ(X509_NAME_cmp(X509_get_subject_name(cert.get()), X509_get_issuer_name(cert.get())), 0);
  EXPECT_EQ(X509_check_ca(cert.get()), 1);
  EXPECT_TRUE(IsCriticalExtension(cert.get(), NID_basic_constraints));
  BasicConstraintsPtr bc(static_cast<BASIC_CONSTRAINTS*>(
      X509_get_ext_d2i(cert.get(), NID_basic_constraints, nullptr, nullptr)));
  ASSERT_NE(bc, nullptr);
  EXPECT_TRUE(bc->ca);
  ASSERT_NE(bc->pathlen, nullptr);
  EXPECT_EQ(ASN1_INTEGER_get(bc->pathlen), 0);
  EXPECT_TRUE(IsCriticalExtension(cert.get(), NID_key_usage));
  EXPECT_EQ(X509_get_key_usage(cert.get()), static_cast<uint32_t>(KU_KEY_CERT_SIGN | KU_CRL_SIGN));
  EXPECT_NE(X509_get0_subject_key_id(cert.get()), nullptr);
  EXPECT_EQ(X509_get_signature_nid(cert.get()), NID_ecdsa_with_SHA256);

  // Self-signed: the signature verifies under its own key.
  EXPECT_EQ(X509_verify(cert.get(), X509_get0_pubkey(cert.get())), 1);
  EXPECT_EQ(X509_check_issued(cert.get(), cert.get()), X509_V_OK);

  // The key is an unencrypted PKCS#8 P-256 key and matches.
  EXPECT_THAT(std::string(ca_->private_key_pem.view()), StartsWith("-----BEGIN PRIVATE KEY-----"));
  PkeyPtr key = ParseKey(ca_->private_key_pem);
  ASSERT_NE(key, nullptr);
  EXPECT_TRUE(EVP_PKEY_is_a(key.get(), "EC"));
  char curve[64] = {};
  size_t curve_length = 0;
  ASSERT_EQ(EVP_PKEY_get_utf8_string_param(key.get(), "group", curve, sizeof(curve), &curve_length),
            1);
  EXPECT_STREQ(curve, "prime256v1");
  EXPECT_EQ(X509_check_private_key(cert.get(), key.get()), 1);
}

TEST_F(PkiTest, ValidityStartsJustBeforeNowAndLastsAsAsked) {
  const absl::Time before = absl::Now();
  ASSERT_OK_AND_ASSIGN(ca, CreateCertificateAuthority({"Short CA", absl::Hours(48)}));
  const absl::Time after = absl::Now();
  X509Ptr cert = ParseCertificate(ca.certificate_pem);
  const absl::Time not_before = ToTime(X509_get0_notBefore(cert.get()));
  const absl::Time not_after = ToTime(X509_get0_notAfter(cert.get()));
  // Backdated 5 minutes for clock skew; times have whole-second precision.
  EXPECT_GE(not_before, absl::FromUnixSeconds(absl::ToUnixSeconds(before)) - absl::Minutes(5));
  EXPECT_LE(not_before, after - absl::Minutes(5));
  EXPECT_GE(not_after, absl::FromUnixSeconds(absl::ToUnixSeconds(before)) + absl::Hours(48));
  EXPECT_LE(not_after, after + absl::Hours(48));

  ASSERT_OK_AND_ASSIGN(client, IssueClientCertificate(*ca_, {kPrincipal, {}, absl::Hours(1)}));
  X509Ptr leaf = ParseCertificate(client.certificate_pem);
  EXPECT_LE(ToTime(X509_get0_notAfter(leaf.get())) - absl::Now(), absl::Hours(1));
  EXPECT_GT(ToTime(X509_get0_notAfter(leaf.get())) - absl::Now(), absl::Minutes(59));
}

TEST_F(PkiTest, ServerCertificateIsSignedByTheCaForServerAuth) {
  ServerCertOptions options;
  options.dns_names = {"kms.internal", "*.kms.example.com"};
  options.ip_addresses = {"10.0.0.5", "::1"};
  ASSERT_OK_AND_ASSIGN(server, IssueServerCertificate(*ca_, options));
  X509Ptr cert = ParseCertificate(server.certificate_pem);
  X509Ptr ca = ParseCertificate(ca_->certificate_pem);
  ASSERT_NE(cert, nullptr);

  EXPECT_EQ(CommonName(cert.get()), "clavisd");
  EXPECT_EQ(X509_NAME_cmp(X509_get_issuer_name(cert.get()), X509_get_subject_name(ca.get())), 0);
  EXPECT_EQ(X509_check_ca(cert.get()), 0);
  EXPECT_TRUE(IsCriticalExtension(cert.get(), NID_basic_constraints));
  EXPECT_EQ(X509_get_key_usage(cert.get()), static_cast<uint32_t>(KU_DIGITAL_SIGNATURE));
  EXPECT_EQ(X509_get_extended_key_usage(cert.get()), static_cast<uint32_t>(XKU_SSL_SERVER));
  EXPECT_THAT(AltNames(cert.get(), GEN_DNS), ElementsAre("kms.internal", "*.kms.example.com"));
  EXPECT_THAT(AltNames(cert.get(), GEN_IPADD), ElementsAre("10.0.0.5", "::1"));
  EXPECT_EQ(X509_check_host(cert.get(), "kms.internal", 0, 0, nullptr), 1);
  EXPECT_EQ(X509_check_host(cert.get(), "a.kms.example.com", 0, 0, nullptr), 1);
  EXPECT_EQ(X509_check_host(cert.get(), "localhost", 0, 0, nullptr), 0);
  EXPECT_EQ(X509_check_ip_asc(cert.get(), "10.0.0.5", 0), 1);
  EXPECT_EQ(X509_check_ip_asc(cert.get(), "10.0.0.6", 0), 0);
  // The authority key id points at the CA's subject key id.
  ASSERT_NE(X509_get0_authority_key_id(cert.get()), nullptr);
  EXPECT_EQ(ASN1_OCTET_STRING_cmp(X509_get0_authority_key_id(cert.get()),
                                  X509_get0_subject_key_id(ca.get())),
            0);

  EXPECT_EQ(X509_verify(cert.get(), X509_get0_pubkey(ca.get())), 1);
  EXPECT_EQ(VerifyChain(cert.get(), ca.get(), X509_PURPOSE_SSL_SERVER), X509_V_OK);
  EXPECT_NE(VerifyChain(cert.get(), ca.get(), X509_PURPOSE_SSL_CLIENT), X509_V_OK);

  PkeyPtr key = ParseKey(server.private_key_pem);
  ASSERT_NE(key, nullptr);
  EXPECT_EQ(X509_check_private_key(cert.get(), key.get()), 1);
}

TEST_F(PkiTest, DefaultServerNamesAreLoopback) {
  ASSERT_OK_AND_ASSIGN(server, IssueServerCertificate(*ca_, {}));
  X509Ptr cert = ParseCertificate(server.certificate_pem);
  EXPECT_THAT(AltNames(cert.get(), GEN_DNS), ElementsAre("localhost"));
  EXPECT_EQ(X509_check_ip_asc(cert.get(), "127.0.0.1", 0), 1);
  EXPECT_EQ(X509_check_ip_asc(cert.get(), "::1", 0), 1);
}

TEST_F(PkiTest, ClientCertificateNamesThePrincipalAndGroups) {
  ClientCertOptions options;
  options.principal = kPrincipal;
  options.groups = {kGroup, "tenants/acme/groups/readers"};
  ASSERT_OK_AND_ASSIGN(client, IssueClientCertificate(*ca_, options));
  X509Ptr cert = ParseCertificate(client.certificate_pem);
  X509Ptr ca = ParseCertificate(ca_->certificate_pem);
  ASSERT_NE(cert, nullptr);

  EXPECT_EQ(CommonName(cert.get()), kPrincipal);
  EXPECT_EQ(X509_NAME_cmp(X509_get_issuer_name(cert.get()), X509_get_subject_name(ca.get())), 0);
  EXPECT_EQ(X509_check_ca(cert.get()), 0);
  EXPECT_EQ(X509_get_extended_key_usage(cert.get()), static_cast<uint32_t>(XKU_SSL_CLIENT));
  EXPECT_THAT(AltNames(cert.get(), GEN_URI),
              ElementsAre(absl::StrCat(kms::auth::kPrincipalUriScheme, kPrincipal),
                          absl::StrCat(kms::auth::kGroupUriScheme, kGroup),
                          "clavis-group:tenants/acme/groups/readers"));
  EXPECT_THAT(AltNames(cert.get(), GEN_DNS), IsEmpty());

  EXPECT_EQ(X509_verify(cert.get(), X509_get0_pubkey(ca.get())), 1);
  EXPECT_EQ(VerifyChain(cert.get(), ca.get(), X509_PURPOSE_SSL_CLIENT), X509_V_OK);
  EXPECT_NE(VerifyChain(cert.get(), ca.get(), X509_PURPOSE_SSL_SERVER), X509_V_OK);
}

TEST_F(PkiTest, SignatureFailsUnderAnotherCa) {
  ASSERT_OK_AND_ASSIGN(client, IssueClientCertificate(*ca_, {kPrincipal}));
  X509Ptr cert = ParseCertificate(client.certificate_pem);
  X509Ptr other = ParseCertificate(other_ca_->certificate_pem);
  EXPECT_EQ(X509_verify(cert.get(), X509_get0_pubkey(other.get())), 0);
  ERR_clear_error();
  EXPECT_NE(VerifyChain(cert.get(), other.get(), X509_PURPOSE_SSL_CLIENT), X509_V_OK);
}

TEST_F(PkiTest, SerialsAreRandom128BitNumbers) {
  ASSERT_OK_AND_ASSIGN(a, IssueClientCertificate(*ca_, {kPrincipal}));
  ASSERT_OK_AND_ASSIGN(b, IssueClientCertificate(*ca_, {kPrincipal}));
  X509Ptr ca = ParseCertificate(a.certificate_pem);
  X509Ptr cb = ParseCertificate(b.certificate_pem);
  EXPECT_NE(ASN1_INTEGER_cmp(X509_get0_serialNumber(ca.get()), X509_get0_serialNumber(cb.get())),
            0);
  BignumPtr serial(ASN1_INTEGER_to_BN(X509_get0_serialNumber(ca.get()), nullptr));
  EXPECT_FALSE(BN_is_negative(serial.get()));
  EXPECT_FALSE(BN_is_zero(serial.get()));
  EXPECT_LE(BN_num_bits(serial.get()), 128);
  // Different keys too.
  EXPECT_NE(a.private_key_pem, b.private_key_pem);
}

TEST_F(PkiTest, ClavisdMapsTheClientCertificateToItsPrincipalAndGroups) {
  // What clavisd does with a verified certificate (certificate_principal.h).
  const std::string long_principal =
      absl::StrCat("tenants/acme/principals/", std::string(100, 'a'));
  for (const std::string& principal : {std::string(kPrincipal), long_principal}) {
    ASSERT_OK_AND_ASSIGN(client, IssueClientCertificate(*ca_, {principal, {kGroup}}));
    X509Ptr cert = ParseCertificate(client.certificate_pem);
    absl::StatusOr<kms::auth::Identity> identity =
        kms::auth::IdentityFromCertificate(AltNames(cert.get(), GEN_URI), CommonName(cert.get()));
    ASSERT_TRUE(identity.ok()) << identity.status();
    EXPECT_EQ(identity->principal, principal);
    EXPECT_EQ(identity->tenant, "acme");
    EXPECT_THAT(identity->groups, ElementsAre(kGroup));
    EXPECT_EQ(identity->method, kms::auth::AuthMethod::kMutualTls);
  }
}

TEST_F(PkiTest, LongPrincipalGetsAMarkedTruncatedCommonName) {
  const std::string principal = absl::StrCat("tenants/acme/principals/", std::string(100, 'a'));
  ASSERT_OK_AND_ASSIGN(client, IssueClientCertificate(*ca_, {principal}));
  X509Ptr cert = ParseCertificate(client.certificate_pem);
  const std::string cn = CommonName(cert.get());
  EXPECT_EQ(cn.size(), 64u);
  EXPECT_EQ(cn, absl::StrCat(principal.substr(0, 63), "~"));
  EXPECT_FALSE(kms::policy::ParsePrincipal(cn).ok());  // names no principal
  // The URI carries the whole name.
  EXPECT_THAT(AltNames(cert.get(), GEN_URI), ElementsAre(absl::StrCat("clavis:", principal)));
}

TEST_F(PkiTest, ClientCertificateRefusesBadNames) {
  struct Case {
    std::string principal;
    std::vector<std::string> groups;
    std::string error;
  };
  for (const Case& c : std::vector<Case>{
           {"", {}, "is not tenants/"},
           {"billing-app", {}, "is not tenants/"},
           {"tenants/acme/groups/billing", {}, "is a group"},
           {"tenants/acme/principals/-bad", {}, "must start with a letter or digit"},
           {"tenants/acme/principals/a b", {}, "may contain only"},
           {kPrincipal, {"tenants/other/groups/billing"}, "another tenant"},
           {kPrincipal, {"tenants/acme/principals/bob"}, "not a group"},
           {kPrincipal, {"billing"}, "is not tenants/"},
           {kPrincipal, {kGroup, kGroup}, "given twice"},
       }) {
    ClientCertOptions options;
    options.principal = c.principal;
    options.groups = c.groups;
    EXPECT_TRUE(StatusIs(IssueClientCertificate(*ca_, options).status(),
                         absl::StatusCode::kInvalidArgument, c.error))
        << c.principal;
  }
}

TEST_F(PkiTest, ServerCertificateRefusesBadNamesAndAddresses) {
  for (const std::string ip :
       {"1.2.3", "1.2.3.4x", "256.1.1.1", "01.2.3.4", "fe80::1%eth0", "kms.internal", ""}) {
    ServerCertOptions options;
    options.dns_names = {};
    options.ip_addresses = {ip};
    EXPECT_TRUE(StatusIs(IssueServerCertificate(*ca_, options).status(),
                         absl::StatusCode::kInvalidArgument, "is not an IPv4 or IPv6 address"))
        << ip;
  }
  for (const std::string& dns :
       std::vector<std::string>{"", "a,DNS:evil.example", "-a.com", "a-.com", "a..b", "a.b.",
                                "under_score.com", "a*.com", "x.*.com", std::string(64, 'a')}) {
    ServerCertOptions options;
    options.dns_names = {dns};
    options.ip_addresses = {};
    EXPECT_TRUE(StatusIs(IssueServerCertificate(*ca_, options).status(),
                         absl::StatusCode::kInvalidArgument, "is not a DNS name"))
        << dns;
  }
  ServerCertOptions none;
  none.dns_names = {};
  none.ip_addresses = {};
  EXPECT_TRUE(StatusIs(IssueServerCertificate(*ca_, none).status(),
                       absl::StatusCode::kInvalidArgument, "at least one DNS name or IP"));
  ServerCertOptions long_cn;
  long_cn.common_name = std::string(65, 'c');
  EXPECT_TRUE(StatusIs(IssueServerCertificate(*ca_, long_cn).status(),
                       absl::StatusCode::kInvalidArgument, "common name"));
}

TEST_F(PkiTest, RefusesValidityOutOfRange) {
  for (absl::Duration validity :
       {absl::ZeroDuration(), absl::Seconds(-1), absl::Hours(24 * 365 * 101)}) {
    EXPECT_TRUE(StatusIs(CreateCertificateAuthority({"CA", validity}).status(),
                         absl::StatusCode::kInvalidArgument, "validity"));
    EXPECT_TRUE(StatusIs(IssueClientCertificate(*ca_, {kPrincipal, {}, validity}).status(),
                         absl::StatusCode::kInvalidArgument, "validity"));
  }
  EXPECT_TRUE(StatusIs(CreateCertificateAuthority({""}).status(),
                       absl::StatusCode::kInvalidArgument, "common name"));
}

TEST_F(PkiTest, RefusesACertificateThatOutlivesItsCa) {
  ASSERT_OK_AND_ASSIGN(ca, CreateCertificateAuthority({"Short CA", absl::Hours(24)}));
  EXPECT_TRUE(StatusIs(IssueClientCertificate(ca, {kPrincipal, {}, absl::Hours(48)}).status(),
                       absl::StatusCode::kInvalidArgument, "outlive its CA"));
  EXPECT_TRUE(IssueClientCertificate(ca, {kPrincipal, {}, absl::Hours(23)}).ok());
}

TEST_F(PkiTest, RefusesAMismatchedOrNonCaIssuer) {
  KeyAndCertificate mixed{ca_->certificate_pem, other_ca_->private_key_pem.Clone()};
  EXPECT_TRUE(StatusIs(IssueServerCertificate(mixed, {}).status(),
                       absl::StatusCode::kInvalidArgument, "does not match"));
  EXPECT_TRUE(StatusIs(IssueClientCertificate(mixed, {kPrincipal}).status(),
                       absl::StatusCode::kInvalidArgument, "does not match"));

  ASSERT_OK_AND_ASSIGN(leaf, IssueServerCertificate(*ca_, {}));
  EXPECT_TRUE(StatusIs(IssueClientCertificate(leaf, {kPrincipal}).status(),
                       absl::StatusCode::kInvalidArgument, "not a CA certificate"));

  KeyAndCertificate garbage{"not a certificate", ca_->private_key_pem.Clone()};
  EXPECT_TRUE(StatusIs(IssueClientCertificate(garbage, {kPrincipal}).status(),
                       absl::StatusCode::kInvalidArgument, "not a PEM certificate"));
  KeyAndCertificate no_key{ca_->certificate_pem, crypto::SecretBytes::CopyOf("junk")};
  EXPECT_TRUE(StatusIs(IssueClientCertificate(no_key, {kPrincipal}).status(),
                       absl::StatusCode::kInvalidArgument, "not an unencrypted PEM private key"));
}

TEST_F(PkiTest, WritesFilesWithExactModesAndReadsThemBack) {
  TempDir dir;
  const mode_t old_umask = umask(0077);  // the 0644 certificate must not depend on it
  const absl::Status written = WriteKeyAndCertificate(*ca_, dir.Join("ca"));
  umask(old_umask);
  ASSERT_TRUE(written.ok()) << written;
  EXPECT_THAT(dir.Entries(), ElementsAre("ca.crt", "ca.key"));  // no temporary files left
  EXPECT_EQ(Mode(dir.Join("ca.crt")), 0644u);
  EXPECT_EQ(Mode(dir.Join("ca.key")), 0600u);
  EXPECT_EQ(ReadAll(dir.Join("ca.crt")), ca_->certificate_pem);
  EXPECT_EQ(ReadAll(dir.Join("ca.key")), std::string(ca_->private_key_pem.view()));

  ASSERT_OK_AND_ASSIGN(read, ReadKeyAndCertificate(dir.Join("ca")));
  EXPECT_EQ(read.certificate_pem, ca_->certificate_pem);
  EXPECT_EQ(read.private_key_pem, ca_->private_key_pem);
  // What was read back can issue.
  EXPECT_TRUE(IssueClientCertificate(read, {kPrincipal}).ok());
}

TEST_F(PkiTest, RefusesToOverwriteUnlessAsked) {
  TempDir dir;
  ASSERT_TRUE(WriteKeyAndCertificate(*ca_, dir.Join("ca")).ok());
  EXPECT_TRUE(StatusIs(WriteKeyAndCertificate(*other_ca_, dir.Join("ca")),
                       absl::StatusCode::kAlreadyExists, "ca.crt already exists"));
  EXPECT_EQ(ReadAll(dir.Join("ca.crt")), ca_->certificate_pem);

  // Only the key exists: still refused, and the certificate is not written.
  ASSERT_EQ(unlink(dir.Join("ca.crt").c_str()), 0);
  EXPECT_TRUE(StatusIs(WriteKeyAndCertificate(*other_ca_, dir.Join("ca")),
                       absl::StatusCode::kAlreadyExists, "ca.key already exists"));
  EXPECT_THAT(dir.Entries(), ElementsAre("ca.key"));

  ASSERT_TRUE(WriteKeyAndCertificate(*other_ca_, dir.Join("ca"), /*overwrite=*/true).ok());
  EXPECT_EQ(ReadAll(dir.Join("ca.crt")), other_ca_->certificate_pem);
  EXPECT_EQ(ReadAll(dir.Join("ca.key")), std::string(other_ca_->private_key_pem.view()));
  EXPECT_EQ(Mode(dir.Join("ca.key")), 0600u);
  EXPECT_THAT(dir.Entries(), ElementsAre("ca.crt", "ca.key"));
}

TEST_F(PkiTest, WriteReportsAMissingDirectory) {
  TempDir dir;
  EXPECT_TRUE(StatusIs(WriteKeyAndCertificate(*ca_, dir.Join("missing/ca")),
                       absl::StatusCode::kNotFound, "missing/ca"));
  EXPECT_THAT(dir.Entries(), IsEmpty());
}

TEST_F(PkiTest, WriteFileAtomicallyKeepsExistingFiles) {
  TempDir dir;
  const std::string path = dir.Join("issuer.seed");
  ASSERT_TRUE(WriteFileAtomically(path, "one\n", 0600, false).ok());
  EXPECT_EQ(Mode(path), 0600u);
  EXPECT_TRUE(
      StatusIs(WriteFileAtomically(path, "two\n", 0600, false), absl::StatusCode::kAlreadyExists));
  EXPECT_EQ(ReadAll(path), "one\n");
  ASSERT_TRUE(WriteFileAtomically(path, "two\n", 0640, true).ok());
  EXPECT_EQ(ReadAll(path), "two\n");
  EXPECT_EQ(Mode(path), 0640u);
  EXPECT_THAT(dir.Entries(), ElementsAre("issuer.seed"));
}

TEST_F(PkiTest, ReadRefusesMissingCorruptedAndMismatchedFiles) {
  TempDir dir;
  EXPECT_TRUE(StatusIs(ReadKeyAndCertificate(dir.Join("ca")).status(), absl::StatusCode::kNotFound,
                       "ca.crt"));

  ASSERT_TRUE(WriteKeyAndCertificate(*ca_, dir.Join("ca")).ok());
  const std::string good_crt = ReadAll(dir.Join("ca.crt"));
  const std::string good_key = ReadAll(dir.Join("ca.key"));

  // The DER's outer SEQUENCE header garbled ("MII..." is 0x30 0x82 ...).
  std::string corrupted = good_crt;
  const size_t body = good_crt.find('\n') + 1;
  ASSERT_EQ(corrupted.substr(body, 3), "MII");
  corrupted[body] = 'A';
  WriteAll(dir.Join("ca.crt"), corrupted);
  EXPECT_TRUE(StatusIs(ReadKeyAndCertificate(dir.Join("ca")).status(),
                       absl::StatusCode::kInvalidArgument, "ca.crt"));
  WriteAll(dir.Join("ca.crt"), good_crt.substr(0, good_crt.size() / 2));
  EXPECT_TRUE(StatusIs(ReadKeyAndCertificate(dir.Join("ca")).status(),
                       absl::StatusCode::kInvalidArgument, "not a PEM certificate"));
  WriteAll(dir.Join("ca.crt"), good_crt);

  WriteAll(dir.Join("ca.key"), "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n");
  EXPECT_TRUE(StatusIs(ReadKeyAndCertificate(dir.Join("ca")).status(),
                       absl::StatusCode::kInvalidArgument, "not an unencrypted PEM private key"));
  WriteAll(dir.Join("ca.key"), "");
  EXPECT_TRUE(StatusIs(ReadKeyAndCertificate(dir.Join("ca")).status(),
                       absl::StatusCode::kInvalidArgument, "ca.key"));

  // The other CA's key beside this CA's certificate.
  WriteAll(dir.Join("ca.key"), std::string(other_ca_->private_key_pem.view()));
  EXPECT_TRUE(StatusIs(ReadKeyAndCertificate(dir.Join("ca")).status(),
                       absl::StatusCode::kInvalidArgument, "does not hold the key of"));

  WriteAll(dir.Join("ca.key"), good_key);
  EXPECT_TRUE(ReadKeyAndCertificate(dir.Join("ca")).ok());
}

TEST_F(PkiTest, ReadRefusesAnEncryptedKeyWithoutPrompting) {
  TempDir dir;
  ASSERT_TRUE(WriteKeyAndCertificate(*ca_, dir.Join("ca")).ok());
  PkeyPtr key = ParseKey(ca_->private_key_pem);
  BioPtr bio(BIO_new(BIO_s_mem()));
  const char passphrase[] = "correct horse";
  ASSERT_EQ(PEM_write_bio_PKCS8PrivateKey(bio.get(), key.get(), EVP_aes_256_cbc(), passphrase,
                                          sizeof(passphrase) - 1, nullptr, nullptr),
            1);
  char* data = nullptr;
  const long length = BIO_get_mem_data(bio.get(), &data);
  WriteAll(dir.Join("ca.key"), std::string(data, static_cast<size_t>(length)));
  EXPECT_TRUE(StatusIs(ReadKeyAndCertificate(dir.Join("ca")).status(),
                       absl::StatusCode::kInvalidArgument, "not an unencrypted PEM private key"));
}

TEST_F(PkiTest, DescribeCertificateShowsWhatWasIssued) {
  ServerCertOptions options;
  options.dns_names = {"kms.internal"};
  options.ip_addresses = {"10.0.0.5", "::1"};
  ASSERT_OK_AND_ASSIGN(server, IssueServerCertificate(*ca_, options));
  ASSERT_OK_AND_ASSIGN(info, DescribeCertificate(server.certificate_pem));
  EXPECT_EQ(info.subject, "CN=clavisd");
  EXPECT_EQ(info.issuer, "CN=Clavis CA");
  EXPECT_FALSE(info.is_ca);
  EXPECT_THAT(info.dns_names, ElementsAre("kms.internal"));
  EXPECT_THAT(info.ip_addresses, ElementsAre("10.0.0.5", "::1"));
  EXPECT_THAT(info.uris, IsEmpty());
  EXPECT_FALSE(info.serial_hex.empty());
  EXPECT_LT(info.not_before, absl::Now());
  EXPECT_GT(info.not_after, absl::Now() + absl::Hours(24 * 364));

  ASSERT_OK_AND_ASSIGN(ca_info, DescribeCertificate(ca_->certificate_pem));
  EXPECT_TRUE(ca_info.is_ca);

  ASSERT_OK_AND_ASSIGN(client,
                       IssueClientCertificate(*ca_, {kPrincipal, {kGroup}, absl::Hours(1)}));
  ASSERT_OK_AND_ASSIGN(client_info, DescribeCertificate(client.certificate_pem));
  EXPECT_EQ(client_info.subject, absl::StrCat("CN=", kPrincipal));
  EXPECT_THAT(client_info.uris, ElementsAre(absl::StrCat("clavis:", kPrincipal),
                                            absl::StrCat("clavis-group:", kGroup)));

  EXPECT_TRUE(StatusIs(DescribeCertificate("junk").status(), absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace clavis::pki
