// `clavisctl pki` and `clavisctl token` end to end through Run(): the files
// they write parse back (OpenSSL, DecodeServiceTokenUnverified), --force,
// usage errors; and the credential options (--ca-cert, --cert/--key,
// --token-file) against an in-process gRPC server, plaintext and TLS.
#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "clavis/v1/key_admin.grpc.pb.h"
#include "crypto/ed25519.h"
#include "crypto/encoding.h"
#include "gmock/gmock.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"
#include "gtest/gtest.h"
#include "kms/auth/service_token.h"
#include "kms/keys/clock.h"
#include "tools/clavisctl/cli_testing.h"
#include "tools/clavisctl/exit_codes.h"
#include "tools/clavisctl/global_options.h"
#include "tools/clavisctl/run.h"

namespace clavis::clavisctl {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::StartsWith;

using Result = cli_testing::CliResult;

Result RunCli(std::vector<std::string> args, const char* env_endpoint = "127.0.0.1:1") {
  return cli_testing::RunCliInProcess(std::move(args), env_endpoint);
}

std::string Joined(const std::vector<std::string>& args) {
  std::string joined;
  for (const std::string& a : args) absl::StrAppend(&joined, a, " ");
  return joined;
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void WriteAll(const std::string& path, const std::string& contents) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << contents;
}

unsigned Mode(const std::string& path) {
  struct stat st;
  EXPECT_EQ(stat(path.c_str(), &st), 0) << path;
  return st.st_mode & 07777;
}

template <typename T, void (*Free)(T*)>
struct Deleter {
  void operator()(T* p) const { Free(p); }
};
using X509Ptr = std::unique_ptr<X509, Deleter<X509, X509_free>>;
using BioPtr = std::unique_ptr<BIO, Deleter<BIO, BIO_free_all>>;
using NamesPtr = std::unique_ptr<GENERAL_NAMES, Deleter<GENERAL_NAMES, GENERAL_NAMES_free>>;

X509Ptr ReadCertificate(const std::string& path) {
  const std::string pem = ReadAll(path);
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  return X509Ptr(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
}

bool KeyFileParses(const std::string& path) {
  const std::string pem = ReadAll(path);
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  EVP_PKEY* key = PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr);
  EVP_PKEY_free(key);
  return key != nullptr;
}

std::vector<std::string> Uris(X509* certificate) {
  NamesPtr names(static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(certificate, NID_subject_alt_name, nullptr, nullptr)));
  std::vector<std::string> out;
  for (int i = 0; names != nullptr && i < sk_GENERAL_NAME_num(names.get()); ++i) {
    int type = 0;
    const auto* value = static_cast<const ASN1_STRING*>(
        GENERAL_NAME_get0_value(sk_GENERAL_NAME_value(names.get(), i), &type));
    if (type == GEN_URI) {
      out.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(value)),
                       ASN1_STRING_length(value));
    }
  }
  return out;
}

google::protobuf::Struct ParseJson(const std::string& json) {
  google::protobuf::Struct parsed;
  EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(json, &parsed).ok()) << json;
  return parsed;
}

class PkiCommandsTest : public testing::Test {
 protected:
  void SetUp() override {
    // The credential options also come from the environment.
    for (const char* name :
         {kCaCertEnvVar, kClientCertEnvVar, kClientKeyEnvVar, kTokenFileEnvVar}) {
      unsetenv(name);
    }
    std::string pattern = absl::StrCat(testing::TempDir(), "/clavisctl_pki_XXXXXX");
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  std::string Path(absl::string_view name) const { return absl::StrCat(dir_, "/", name); }

  // A CA in Path("pki"), a server certificate for 127.0.0.1 and a client
  // certificate for tenants/acme/principals/admin.
  void MakePki() {
    for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
             {"pki", "init-ca", "--out", Path("pki")},
             {"pki", "issue-server", "--ca", Path("pki"), "--out", Path("pki/server")},
             {"pki", "issue-client", "--ca", Path("pki"), "--principal",
              "tenants/acme/principals/admin", "--group", "tenants/acme/groups/ops", "--out",
              Path("pki/admin")},
         }) {
      const Result r = RunCli(args);
      ASSERT_EQ(r.code, kExitOk) << Joined(args) << "\n" << r.err;
    }
  }

  std::string dir_;
};

TEST_F(PkiCommandsTest, InitCaIssueServerAndIssueClientWriteCertificatesThatParse) {
  Result r = RunCli({"pki", "init-ca", "--out", Path("pki"), "--common-name", "Test CA",
                     "--validity-days", "30"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_THAT(r.out, HasSubstr(Path("pki/ca.crt")));
  EXPECT_THAT(r.out, HasSubstr(Path("pki/ca.key")));
  EXPECT_THAT(r.out, HasSubstr("CN=Test CA"));
  EXPECT_THAT(r.err, HasSubstr("keep it offline"));
  EXPECT_EQ(Mode(Path("pki")), 0700u);
  EXPECT_EQ(Mode(Path("pki/ca.crt")), 0644u);
  EXPECT_EQ(Mode(Path("pki/ca.key")), 0600u);
  X509Ptr ca = ReadCertificate(Path("pki/ca.crt"));
  ASSERT_NE(ca, nullptr);
  EXPECT_EQ(X509_check_ca(ca.get()), 1);
  EXPECT_TRUE(KeyFileParses(Path("pki/ca.key")));

  r = RunCli({"pki", "issue-server", "--ca", Path("pki"), "--dns", "kms.internal", "--ip",
              "10.0.0.5", "--out", Path("server")});
  // The default (1 year) would outlive the 30-day CA.
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_THAT(r.err, HasSubstr("would outlive its CA"));
  r = RunCli({"pki", "issue-server", "--ca", Path("pki"), "--dns", "kms.internal", "--ip",
              "10.0.0.5", "--out", Path("server"), "--validity-days", "7"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_THAT(r.out, HasSubstr("kms.internal"));
  EXPECT_THAT(r.out, HasSubstr("10.0.0.5"));
  X509Ptr server = ReadCertificate(Path("server.crt"));
  ASSERT_NE(server, nullptr);
  EXPECT_EQ(X509_verify(server.get(), X509_get0_pubkey(ca.get())), 1);
  EXPECT_EQ(X509_check_host(server.get(), "kms.internal", 0, 0, nullptr), 1);
  EXPECT_EQ(X509_check_ip_asc(server.get(), "10.0.0.5", 0), 1);
  // Names given: the loopback defaults are not added.
  EXPECT_EQ(X509_check_host(server.get(), "localhost", 0, 0, nullptr), 0);
  EXPECT_EQ(Mode(Path("server.key")), 0600u);
  EXPECT_TRUE(KeyFileParses(Path("server.key")));

  r = RunCli({"pki", "issue-client", "--ca", Path("pki/"), "--principal",
              "tenants/acme/principals/billing-app", "--group", "tenants/acme/groups/billing",
              "--group", "tenants/acme/groups/readers", "--out", Path("billing"), "--validity-days",
              "7"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  X509Ptr client = ReadCertificate(Path("billing.crt"));
  ASSERT_NE(client, nullptr);
  EXPECT_EQ(X509_verify(client.get(), X509_get0_pubkey(ca.get())), 1);
  EXPECT_THAT(Uris(client.get()), ElementsAre("clavis:tenants/acme/principals/billing-app",
                                              "clavis-group:tenants/acme/groups/billing",
                                              "clavis-group:tenants/acme/groups/readers"));
  EXPECT_EQ(X509_get_extended_key_usage(client.get()), static_cast<uint32_t>(XKU_SSL_CLIENT));
  EXPECT_TRUE(KeyFileParses(Path("billing.key")));
}

TEST_F(PkiCommandsTest, JsonOutputIsOneObjectWithoutTheKey) {
  ASSERT_EQ(RunCli({"pki", "init-ca", "--out", Path("pki")}).code, kExitOk);
  const Result r = RunCli({"--json", "pki", "issue-client", "--ca", Path("pki"), "--principal",
                           "tenants/acme/principals/app", "--out", Path("app")});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_THAT(r.err, IsEmpty());
  const google::protobuf::Struct json = ParseJson(r.out);
  EXPECT_EQ(json.fields().at("certificateFile").string_value(), Path("app.crt"));
  EXPECT_EQ(json.fields().at("privateKeyFile").string_value(), Path("app.key"));
  EXPECT_EQ(json.fields().at("subject").string_value(), "CN=tenants/acme/principals/app");
  EXPECT_FALSE(json.fields().at("isCa").bool_value());
  ASSERT_EQ(json.fields().at("uris").list_value().values_size(), 1);
  EXPECT_EQ(json.fields().at("uris").list_value().values(0).string_value(),
            "clavis:tenants/acme/principals/app");
  EXPECT_THAT(r.out, Not(HasSubstr("PRIVATE KEY")));
}

TEST_F(PkiCommandsTest, RefusesToOverwriteWithoutForce) {
  ASSERT_EQ(RunCli({"pki", "init-ca", "--out", Path("pki")}).code, kExitOk);
  const std::string first = ReadAll(Path("pki/ca.crt"));

  Result r = RunCli({"pki", "init-ca", "--out", Path("pki")});
  EXPECT_EQ(r.code, kExitAlreadyExists) << r.err;
  EXPECT_THAT(r.err, HasSubstr("already exists; use --force"));
  EXPECT_THAT(r.out, IsEmpty());
  EXPECT_EQ(ReadAll(Path("pki/ca.crt")), first);

  r = RunCli({"pki", "init-ca", "--out", Path("pki"), "--force"});
  EXPECT_EQ(r.code, kExitOk) << r.err;
  EXPECT_NE(ReadAll(Path("pki/ca.crt")), first);
  EXPECT_EQ(Mode(Path("pki/ca.key")), 0600u);

  ASSERT_EQ(RunCli({"pki", "issue-server", "--ca", Path("pki"), "--out", Path("s")}).code, kExitOk);
  EXPECT_EQ(RunCli({"pki", "issue-server", "--ca", Path("pki"), "--out", Path("s")}).code,
            kExitAlreadyExists);
  EXPECT_EQ(
      RunCli({"pki", "issue-server", "--ca", Path("pki"), "--out", Path("s"), "--force"}).code,
      kExitOk);
  // The directory holds nothing but the results (no temporary files).
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(dir_)) {
    names.push_back(e.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  EXPECT_THAT(names, ElementsAre("pki", "s.crt", "s.key"));
}

TEST_F(PkiCommandsTest, PkiUsageErrorsExitTwo) {
  ASSERT_EQ(RunCli({"pki", "init-ca", "--out", Path("pki")}).code, kExitOk);
  const std::string ca = Path("pki");
  WriteAll(Path("garbage.crt"), "not a certificate");
  WriteAll(Path("garbage.key"), "not a key");
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"pki"},
           {"pki", "init-ca"},  // --out missing
           {"pki", "init-ca", "--out", Path("x"), "--validity-days", "0"},
           {"pki", "init-ca", "--out", Path("x"), "--common-name", ""},
           {"pki", "init-ca", "--out", Path("missing/parent/x")},
           {"pki", "issue-client", "--ca", ca, "--out", Path("c")},  // --principal missing
           {"pki", "issue-client", "--principal", "tenants/a/principals/p", "--out", Path("c")},
           {"pki", "issue-client", "--ca", ca, "--principal", "tenants/a/groups/g", "--out",
            Path("c")},
           {"pki", "issue-client", "--ca", ca, "--principal", "nobody", "--out", Path("c")},
           {"pki", "issue-client", "--ca", ca, "--principal", "tenants/a/principals/p", "--group",
            "tenants/b/groups/g", "--out", Path("c")},
           {"pki", "issue-client", "--ca", Path("nope"), "--principal", "tenants/a/principals/p",
            "--out", Path("c")},
           {"pki", "issue-client", "--ca", dir_, "--principal", "tenants/a/principals/p", "--out",
            Path("c")},  // no ca.crt there
           {"pki", "issue-server", "--ca", ca, "--ip", "10.0.0", "--out", Path("s")},
           {"pki", "issue-server", "--ca", ca, "--dns", "bad name", "--out", Path("s")},
           {"pki", "issue-server", "--ca", ca, "--out", Path("s"), "--validity-days", "36501"},
           // A certificate outliving its CA (5 years by default).
           {"pki", "issue-server", "--ca", ca, "--out", Path("s"), "--validity-days", "3650"},
       }) {
    const Result r = RunCli(args);
    EXPECT_EQ(r.code, kExitUsage) << Joined(args) << "\n" << r.err;
    EXPECT_THAT(r.err, HasSubstr("clavisctl: ")) << Joined(args);
    EXPECT_THAT(r.out, IsEmpty()) << Joined(args);
  }
  EXPECT_FALSE(std::filesystem::exists(Path("c.crt")));
  EXPECT_FALSE(std::filesystem::exists(Path("s.crt")));

  // A corrupted CA file is named in the error.
  WriteAll(Path("pki/ca.crt"), "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n");
  const Result r = RunCli({"pki", "issue-client", "--ca", ca, "--principal",
                           "tenants/a/principals/p", "--out", Path("c")});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_THAT(r.err, HasSubstr("ca.crt is not a PEM certificate"));
}

TEST_F(PkiCommandsTest, EveryNewCommandHasHelpWithAnExample) {
  for (std::vector<std::string> words : std::vector<std::vector<std::string>>{
           {"pki"},
           {"pki", "init-ca"},
           {"pki", "issue-server"},
           {"pki", "issue-client"},
           {"token"},
           {"token", "keygen"},
           {"token", "issue"},
       }) {
    const std::string joined = Joined(words);
    words.push_back("--help");
    const Result r = RunCli(words);
    EXPECT_EQ(r.code, 0) << joined;
    EXPECT_THAT(r.out, HasSubstr("Example")) << joined;
    EXPECT_THAT(r.out, HasSubstr("clavisctl " + joined)) << joined;
    EXPECT_THAT(r.out, HasSubstr("runs locally")) << joined;
  }
  const Result root = RunCli({"--help"});
  EXPECT_THAT(root.out, HasSubstr("--ca-cert"));
  EXPECT_THAT(root.out, HasSubstr("--token-file"));
  EXPECT_THAT(root.out, HasSubstr("CLAVIS_CA_CERT"));
  EXPECT_THAT(root.out, HasSubstr("pki"));
  EXPECT_THAT(root.out, HasSubstr("token"));
}

TEST_F(PkiCommandsTest, LocalCommandsNeitherWarnAboutNorReadCredentials) {
  // A non-loopback endpoint and a credential file that does not exist: pki
  // does not care.
  const Result r = RunCli({"--endpoint", "192.0.2.1:7370", "--ca-cert", Path("missing.crt"), "pki",
                           "init-ca", "--out", Path("pki")});
  EXPECT_EQ(r.code, kExitOk) << r.err;
  EXPECT_THAT(r.err, Not(HasSubstr("loopback")));
}

TEST_F(PkiCommandsTest, TokenKeygenWritesASeedAndPrintsTheIssuerLine) {
  const Result r = RunCli({"token", "keygen", "--out", Path("issuer"), "--key-id", "ops-2026"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_EQ(Mode(Path("issuer.seed")), 0600u);
  EXPECT_THAT(r.err, HasSubstr("--token_issuers_file"));

  // stdout: exactly "<key id> <base64 public key>\n".
  ASSERT_FALSE(r.out.empty());
  EXPECT_EQ(r.out.back(), '\n');
  const std::vector<std::string> parts =
      absl::StrSplit(absl::StripTrailingAsciiWhitespace(r.out), ' ');
  ASSERT_EQ(parts.size(), 2u) << r.out;
  EXPECT_EQ(parts[0], "ops-2026");
  absl::StatusOr<std::string> public_key = crypto::Base64Decode(parts[1]);
  ASSERT_TRUE(public_key.ok()) << parts[1];

  // The seed file is 64 hex digits whose public key is the one printed.
  const std::string hex(absl::StripAsciiWhitespace(ReadAll(Path("issuer.seed"))));
  ASSERT_EQ(hex.size(), 64u);
  absl::StatusOr<std::string> seed = crypto::HexDecode(hex);
  ASSERT_TRUE(seed.ok());
  absl::StatusOr<crypto::Ed25519KeyPair> pair =
      crypto::Ed25519KeyPair::FromSeed(crypto::SecretBytes::CopyOf(*seed));
  ASSERT_TRUE(pair.ok());
  EXPECT_EQ(pair->public_key, *public_key);

  // Not again without --force; --json then prints one object.
  EXPECT_EQ(RunCli({"token", "keygen", "--out", Path("issuer"), "--key-id", "k"}).code,
            kExitAlreadyExists);
  const Result again =
      RunCli({"--json", "token", "keygen", "--out", Path("issuer"), "--key-id", "k2", "--force"});
  ASSERT_EQ(again.code, kExitOk) << again.err;
  const google::protobuf::Struct json = ParseJson(again.out);
  EXPECT_EQ(json.fields().at("keyId").string_value(), "k2");
  EXPECT_EQ(json.fields().at("seedFile").string_value(), Path("issuer.seed"));
  EXPECT_NE(hex, absl::StripAsciiWhitespace(ReadAll(Path("issuer.seed"))));
}

class TokenIssueTest : public PkiCommandsTest {
 protected:
  void SetUp() override {
    PkiCommandsTest::SetUp();
    const Result r = RunCli({"token", "keygen", "--out", Path("issuer"), "--key-id", "ops-2026"});
    ASSERT_EQ(r.code, kExitOk) << r.err;
    const std::vector<std::string> parts =
        absl::StrSplit(absl::StripTrailingAsciiWhitespace(r.out), ' ');
    ASSERT_EQ(parts.size(), 2u);
    absl::StatusOr<std::string> public_key = crypto::Base64Decode(parts[1]);
    ASSERT_TRUE(public_key.ok());
    public_key_ = *public_key;
  }

  std::vector<std::string> IssueArgs() const {
    return {"token",         "issue",
            "--issuer-seed", Path("issuer.seed"),
            "--key-id",      "ops-2026",
            "--principal",   "tenants/acme/principals/batch",
            "--group",       "tenants/acme/groups/jobs",
            "--audience",    "kms-prod"};
  }

  std::string public_key_;
};

TEST_F(TokenIssueTest, PrintsATokenThatDecodesAndVerifies) {
  std::vector<std::string> args = IssueArgs();
  args.insert(args.end(), {"--ttl", "2h", "--token-id", "t-42"});
  const Result r = RunCli(args);
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_THAT(r.err, IsEmpty());
  const std::string token(absl::StripTrailingAsciiWhitespace(r.out));
  EXPECT_EQ(r.out, token + "\n");  // only the token on stdout
  EXPECT_THAT(token, StartsWith(kms::auth::kTokenPrefix));

  absl::StatusOr<kms::auth::TokenClaims> claims = kms::auth::DecodeServiceTokenUnverified(token);
  ASSERT_TRUE(claims.ok()) << claims.status();
  EXPECT_EQ(claims->issuer_key_id, "ops-2026");
  EXPECT_EQ(claims->principal, "tenants/acme/principals/batch");
  EXPECT_THAT(claims->groups, ElementsAre("tenants/acme/groups/jobs"));
  EXPECT_EQ(claims->audience, "kms-prod");
  EXPECT_EQ(claims->token_id, "t-42");
  EXPECT_EQ(claims->expires_at - claims->issued_at, absl::Hours(2));
  EXPECT_LE(absl::AbsDuration(claims->issued_at - absl::Now()), absl::Minutes(1));

  // What keygen printed is what a verifier needs.
  kms::SystemClock clock;
  kms::auth::TokenVerifierOptions options;
  options.audience = "kms-prod";
  options.issuers = {{"ops-2026", public_key_}};
  auto verifier = kms::auth::TokenVerifier::Create(options, &clock);
  ASSERT_TRUE(verifier.ok()) << verifier.status();
  absl::StatusOr<kms::auth::Identity> identity = (*verifier)->Verify(token);
  ASSERT_TRUE(identity.ok()) << identity.status();
  EXPECT_EQ(identity->principal, "tenants/acme/principals/batch");
  EXPECT_EQ(identity->token_id, "t-42");
}

TEST_F(TokenIssueTest, RandomTokenIdsDiffer) {
  const Result a = RunCli(IssueArgs());
  const Result b = RunCli(IssueArgs());
  ASSERT_EQ(a.code, kExitOk) << a.err;
  ASSERT_EQ(b.code, kExitOk) << b.err;
  auto ca = kms::auth::DecodeServiceTokenUnverified(absl::StripTrailingAsciiWhitespace(a.out));
  auto cb = kms::auth::DecodeServiceTokenUnverified(absl::StripTrailingAsciiWhitespace(b.out));
  ASSERT_TRUE(ca.ok() && cb.ok());
  EXPECT_NE(ca->token_id, cb->token_id);
  EXPECT_EQ(ca->expires_at - ca->issued_at, absl::Hours(1));  // the default --ttl
}

TEST_F(TokenIssueTest, OutWritesAPrivateFileAndPrintsNoToken) {
  std::vector<std::string> args = IssueArgs();
  args.insert(args.end(), {"--out", Path("batch.token")});
  Result r = RunCli(args);
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_EQ(Mode(Path("batch.token")), 0600u);
  const std::string token(absl::StripTrailingAsciiWhitespace(ReadAll(Path("batch.token"))));
  EXPECT_TRUE(kms::auth::DecodeServiceTokenUnverified(token).ok());
  EXPECT_THAT(r.out, HasSubstr(Path("batch.token")));
  EXPECT_THAT(r.out, Not(HasSubstr(token)));

  r = RunCli(args);
  EXPECT_EQ(r.code, kExitAlreadyExists) << r.err;
  args.push_back("--force");
  r = RunCli(args);
  EXPECT_EQ(r.code, kExitOk) << r.err;
  EXPECT_NE(absl::StripTrailingAsciiWhitespace(ReadAll(Path("batch.token"))), token);
}

TEST_F(TokenIssueTest, JsonHoldsTheTokenAndItsClaims) {
  std::vector<std::string> args = IssueArgs();
  args.push_back("--json");
  const Result r = RunCli(args);
  ASSERT_EQ(r.code, kExitOk) << r.err;
  const google::protobuf::Struct json = ParseJson(r.out);
  EXPECT_TRUE(
      kms::auth::DecodeServiceTokenUnverified(json.fields().at("token").string_value()).ok());
  EXPECT_EQ(json.fields().at("principal").string_value(), "tenants/acme/principals/batch");
  EXPECT_EQ(json.fields().at("audience").string_value(), "kms-prod");
  EXPECT_FALSE(json.fields().at("expiresAt").string_value().empty());
}

TEST_F(TokenIssueTest, UsageErrorsExitTwo) {
  WriteAll(Path("bad.seed"), "not hex at all\n");
  WriteAll(Path("short.seed"), "00ff\n");
  const std::string seed = Path("issuer.seed");
  const auto issue = [&](std::vector<std::string> extra) {
    std::vector<std::string> args = {"token", "issue"};
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  };
  const std::vector<std::string> principal = {"--principal", "tenants/acme/principals/batch"};
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"token"},
           {"token", "keygen", "--out", Path("k")},  // --key-id missing
           {"token", "keygen", "--out", Path("k"), "--key-id", "bad id"},
           issue({"--key-id", "k", "--principal", "tenants/a/principals/p", "--audience", "a"}),
           issue({"--issuer-seed", seed, "--key-id", "ops-2026", "--audience", "a"}),
           issue({"--issuer-seed", seed, "--key-id", "ops-2026", "--principal",
                  "tenants/a/principals/p"}),  // --audience missing
           issue({"--issuer-seed", Path("missing.seed"), "--key-id", "k", principal[0],
                  principal[1], "--audience", "a"}),
           issue({"--issuer-seed", Path("bad.seed"), "--key-id", "k", principal[0], principal[1],
                  "--audience", "a"}),
           issue({"--issuer-seed", Path("short.seed"), "--key-id", "k", principal[0], principal[1],
                  "--audience", "a"}),
           issue({"--issuer-seed", seed, "--key-id", "k", "--principal", "tenants/acme/groups/g",
                  "--audience", "a"}),
           issue({"--issuer-seed", seed, "--key-id", "k", principal[0], principal[1], "--group",
                  "tenants/other/groups/g", "--audience", "a"}),
           issue({"--issuer-seed", seed, "--key-id", "k", principal[0], principal[1], "--audience",
                  "a", "--ttl", "0s"}),
           issue({"--issuer-seed", seed, "--key-id", "k", principal[0], principal[1], "--audience",
                  "a", "--ttl", "1x"}),
           issue({"--issuer-seed", seed, "--key-id", "k", principal[0], principal[1], "--audience",
                  "a", "--token-id", "no spaces"}),
       }) {
    const Result r = RunCli(args);
    EXPECT_EQ(r.code, kExitUsage) << Joined(args) << "\n" << r.err;
    EXPECT_THAT(r.out, IsEmpty()) << Joined(args);
  }
  // The seed never shows in an error.
  const Result r = RunCli(issue({"--issuer-seed", Path("bad.seed"), "--key-id", "k", principal[0],
                                 principal[1], "--audience", "a"}));
  EXPECT_THAT(r.err, Not(HasSubstr("not hex at all")));
}

// --- Credential options -----------------------------------------------------

// A KeyAdmin that answers GetKey and records what the caller presented.
class RecordingAdmin final : public clavis::v1::KeyAdmin::Service {
 public:
  grpc::Status GetKey(grpc::ServerContext* context, const clavis::v1::GetKeyRequest* request,
                      clavis::v1::Key* response) override {
    std::lock_guard<std::mutex> lock(mu_);
    const auto& metadata = context->client_metadata();
    auto it = metadata.find("authorization");
    authorization_ = it == metadata.end() ? "" : std::string(it->second.data(), it->second.size());
    uris_.clear();
    for (const grpc::string_ref& uri : context->auth_context()->FindPropertyValues("peer_uri")) {
      uris_.emplace_back(uri.data(), uri.size());
    }
    response->set_name(request->name());
    return grpc::Status::OK;
  }
  std::string authorization() {
    std::lock_guard<std::mutex> lock(mu_);
    return authorization_;
  }
  std::vector<std::string> uris() {
    std::lock_guard<std::mutex> lock(mu_);
    return uris_;
  }

 private:
  std::mutex mu_;
  std::string authorization_;
  std::vector<std::string> uris_;
};

class CredentialsTest : public PkiCommandsTest {
 protected:
  // Listens on 127.0.0.1 with `credentials`; returns "127.0.0.1:<port>".
  std::string Start(std::shared_ptr<grpc::ServerCredentials> credentials) {
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", credentials, &port);
    builder.RegisterService(&admin_);
    server_ = builder.BuildAndStart();
    EXPECT_NE(port, 0);
    return absl::StrCat("127.0.0.1:", port);
  }
  // TLS with the server certificate of MakePki(); client certificates
  // signed by its CA are verified (and required when `require_client`).
  std::string StartTls(bool require_client) {
    grpc::SslServerCredentialsOptions options(
        require_client ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
                       : GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY);
    options.pem_root_certs = ReadAll(Path("pki/ca.crt"));
    options.pem_key_cert_pairs.push_back(
        {ReadAll(Path("pki/server.key")), ReadAll(Path("pki/server.crt"))});
    return Start(grpc::SslServerCredentials(options));
  }
  void TearDown() override {
    if (server_ != nullptr) server_->Shutdown();
    PkiCommandsTest::TearDown();
  }

  RecordingAdmin admin_;
  std::unique_ptr<grpc::Server> server_;
};

constexpr char kToken[] = "clavis-token.v1.not-a-real-token.but-shaped-like-one";

TEST_F(CredentialsTest, MutualTlsPresentsTheClientCertificate) {
  MakePki();
  const std::string endpoint = StartTls(/*require_client=*/true);
  const Result r = RunCli({"--endpoint", endpoint, "--ca-cert", Path("pki/ca.crt"), "--cert",
                           Path("pki/admin.crt"), "--key", Path("pki/admin.key"), "key", "get",
                           "tenants/acme/keys/main"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_THAT(r.err, IsEmpty());
  EXPECT_THAT(admin_.uris(), ElementsAre("clavis:tenants/acme/principals/admin",
                                         "clavis-group:tenants/acme/groups/ops"));
  EXPECT_THAT(admin_.authorization(), IsEmpty());
}

TEST_F(CredentialsTest, CredentialsComeFromTheEnvironmentToo) {
  MakePki();
  const std::string endpoint = StartTls(/*require_client=*/true);
  setenv(kCaCertEnvVar, Path("pki/ca.crt").c_str(), 1);
  setenv(kClientCertEnvVar, Path("pki/admin.crt").c_str(), 1);
  setenv(kClientKeyEnvVar, Path("pki/admin.key").c_str(), 1);
  const Result r = RunCli({"--endpoint", endpoint, "key", "get", "tenants/acme/keys/main"});
  EXPECT_EQ(r.code, kExitOk) << r.err;
  EXPECT_THAT(admin_.uris(), ElementsAre("clavis:tenants/acme/principals/admin",
                                         "clavis-group:tenants/acme/groups/ops"));
}

TEST_F(CredentialsTest, TlsWithoutTheRequiredClientCertificateFailsWithAHint) {
  MakePki();
  const std::string endpoint = StartTls(/*require_client=*/true);
  const Result r = RunCli({"--endpoint", endpoint, "--ca-cert", Path("pki/ca.crt"), "key", "get",
                           "tenants/acme/keys/main"});
  EXPECT_EQ(r.code, kExitUnavailable) << r.err;
  EXPECT_THAT(r.err, HasSubstr("TLS handshake"));
}

TEST_F(CredentialsTest, AServerOfAnotherCaIsRefused) {
  MakePki();
  const std::string endpoint = StartTls(/*require_client=*/false);
  ASSERT_EQ(RunCli({"pki", "init-ca", "--out", Path("other")}).code, kExitOk);
  const Result r = RunCli({"--endpoint", endpoint, "--ca-cert", Path("other/ca.crt"), "key", "get",
                           "tenants/acme/keys/main"});
  EXPECT_EQ(r.code, kExitUnavailable) << r.err;
}

TEST_F(CredentialsTest, TokenOverTlsIsABearerHeader) {
  MakePki();
  WriteAll(Path("app.token"), absl::StrCat(kToken, "\n"));
  const std::string endpoint = StartTls(/*require_client=*/false);
  // --verbose logs (to the process's stderr) the call, never the token.
  testing::internal::CaptureStderr();
  const Result r =
      RunCli({"-v", "--endpoint", endpoint, "--ca-cert", Path("pki/ca.crt"), "--token-file",
              Path("app.token"), "key", "get", "tenants/acme/keys/main"});
  const std::string log = testing::internal::GetCapturedStderr();
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_EQ(admin_.authorization(), absl::StrCat("Bearer ", kToken));
  EXPECT_THAT(admin_.uris(), IsEmpty());
  EXPECT_THAT(log, HasSubstr("GetKeyRequest"));
  EXPECT_THAT(log, Not(HasSubstr(kToken)));
  EXPECT_THAT(r.err, Not(HasSubstr(kToken)));
  EXPECT_THAT(r.out, Not(HasSubstr(kToken)));
}

TEST_F(CredentialsTest, TokenOnPlaintextLoopbackIsSentPerCall) {
  WriteAll(Path("app.token"), absl::StrCat(kToken, "\n"));
  const std::string endpoint = Start(grpc::InsecureServerCredentials());
  testing::internal::CaptureStderr();
  const Result r = RunCli({"-v", "--endpoint", endpoint, "--token-file", Path("app.token"), "key",
                           "get", "tenants/acme/keys/main"});
  const std::string log = testing::internal::GetCapturedStderr();
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_EQ(admin_.authorization(), absl::StrCat("Bearer ", kToken));
  EXPECT_THAT(log, HasSubstr("GetKeyRequest"));
  EXPECT_THAT(log, Not(HasSubstr(kToken)));
  EXPECT_THAT(r.err, Not(HasSubstr(kToken)));
}

TEST_F(CredentialsTest, NoCredentialsNoHeader) {
  const std::string endpoint = Start(grpc::InsecureServerCredentials());
  const Result r = RunCli({"--endpoint", endpoint, "key", "get", "tenants/acme/keys/main"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_THAT(admin_.authorization(), IsEmpty());
}

TEST_F(CredentialsTest, CredentialUsageErrorsExitTwo) {
  MakePki();
  WriteAll(Path("app.token"), absl::StrCat(kToken, "\n"));
  WriteAll(Path("two-lines.token"), absl::StrCat(kToken, "\n", kToken, "\n"));
  WriteAll(Path("not-a.token"), "0123456789abcdef0123456789abcdef\n");
  const std::string ca = Path("pki/ca.crt");
  const std::string cert = Path("pki/admin.crt");
  const std::string key = Path("pki/admin.key");
  const std::vector<std::string> get = {"key", "get", "tenants/acme/keys/main"};
  const auto with = [&](std::vector<std::string> options) {
    options.insert(options.end(), get.begin(), get.end());
    return options;
  };
  for (const auto& [args, message] : std::vector<std::pair<std::vector<std::string>, std::string>>{
           {with({"--ca-cert", ca, "--cert", cert}), "--cert and --key go together"},
           {with({"--ca-cert", ca, "--key", key}), "--cert and --key go together"},
           {with({"--cert", cert, "--key", key}), "need --ca-cert"},
           {with({"--ca-cert", Path("missing.crt")}), "cannot open"},
           {with({"--ca-cert", Path("app.token")}), "is not a PEM certificate file"},
           {with({"--ca-cert", ca, "--cert", key, "--key", cert}), "is not a PEM certificate"},
           {with({"--ca-cert", ca, "--cert", cert, "--key", cert}), "is not a PEM private key"},
           {with({"--endpoint", "192.0.2.1:7370", "--token-file", Path("app.token")}),
            "refusing to send a service token in clear"},
           {with({"--token-file", Path("missing.token")}), "cannot open"},
           {with({"--token-file", Path("not-a.token")}), "does not hold a Clavis service token"},
           {with({"--token-file", Path("two-lines.token")}), "more than one line"},
       }) {
    const Result r = RunCli(args);
    EXPECT_EQ(r.code, kExitUsage) << Joined(args) << "\n" << r.err;
    EXPECT_THAT(r.err, HasSubstr(message)) << Joined(args);
    EXPECT_THAT(r.err, Not(HasSubstr("PRIVATE KEY-----"))) << Joined(args);
    EXPECT_THAT(r.err, Not(HasSubstr("0123456789abcdef"))) << Joined(args);
  }
  // Only a client certificate in the environment is the same mistake.
  setenv(kClientCertEnvVar, cert.c_str(), 1);
  const Result r = RunCli(with({"--ca-cert", ca}));
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_THAT(r.err, HasSubstr("--cert and --key go together"));
}

TEST_F(CredentialsTest, DecryptKeepsItsOwnKeyOption) {
  // `decrypt --key K` is the expected master key; the client key goes before
  // the command words (or in $CLAVIS_CLIENT_KEY).
  MakePki();
  const Result r = RunCli({"--ca-cert", Path("pki/ca.crt"), "--cert", Path("pki/admin.crt"),
                           "--key", Path("pki/admin.key"), "--timeout", "1s", "decrypt",
                           "--blob-base64", "AQEE", "--key", "tenants/acme/keys/main"});
  EXPECT_EQ(r.code, kExitUnavailable) << r.err;  // parsed fine; nothing listens on port 1
}

}  // namespace
}  // namespace clavis::clavisctl
