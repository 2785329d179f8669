#include "tests/harness/clavisd_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "crypto/ed25519.h"
#include "crypto/encoding.h"
#include "crypto/random.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "kms/auth/service_token.h"
#include "tools/pki/pki.h"

namespace clavis::testing {
namespace {

std::atomic<int> counter{0};

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void WriteFile(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
}

constexpr char kIssuerKeyId[] = "test-issuer";
constexpr char kAudience[] = "clavis-test";

}  // namespace

const std::vector<std::string>& TestTenants() {
  static const auto* tenants = new std::vector<std::string>{
      "acme", "acme2", "globex", "initech", "boundary", "timestamps", "nobody", "versioned",
      "orders", "kept", "doomed", "crash", "shred", "sdk", "cli", "authz",
      // Names of the longest allowed length (63), used by the bad-input tests.
      std::string(63, 'b'), std::string(63, 't')};
  return *tenants;
}

std::string PrincipalName(const std::string& tenant, const std::string& id) {
  return absl::StrCat("tenants/", tenant, "/principals/", id);
}

std::string TestKeyPolicy(const std::string& key, std::vector<std::string> principals) {
  if (principals.empty()) {
    std::vector<std::string> parts = absl::StrSplit(key, '/');
    principals.push_back(PrincipalName(parts.size() > 1 ? parts[1] : "acme"));
  }
  std::string list;
  for (const auto& p : principals) absl::StrAppend(&list, list.empty() ? "" : ", ", "\"", p, "\"");
  return absl::StrCat(
      R"({"version": "2026-11-01", "allowAdminAndDataToSamePrincipal": true, "statements": [)",
      R"({"sid": "test-everything", "effect": "Allow", "principals": [)", list,
      R"(], "actions": ["*"]}]})");
}

TempDir::TempDir() {
  path_ = absl::StrCat(::testing::TempDir(), "/clavis_it_", ::getpid(), "_", counter++);
  std::filesystem::remove_all(path_);
  std::filesystem::create_directories(path_);
  std::filesystem::permissions(path_, std::filesystem::perms::owner_all);
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

ClavisdProcess::ClavisdProcess(ClavisdOptions options) : options_(std::move(options)) {
  if (options_.log_file.empty()) {
    options_.log_file = absl::StrCat(options_.data_dir, ".clavisd-", counter++, ".log");
  }
}

ClavisdProcess::~ClavisdProcess() {
  if (running()) (void)Stop();
}

std::string ClavisdProcess::address() const { return absl::StrCat("127.0.0.1:", port_); }

absl::Status ClavisdProcess::Start(absl::Duration timeout) {
  if (running()) return absl::FailedPreconditionError("already running");
  const std::string port_file = options_.data_dir + ".port";
  std::filesystem::remove(port_file);
  // A restart keeps the port if asked, so long-lived clients reconnect.
  const std::string listen = (options_.keep_port_on_restart && port_ != 0)
                                 ? absl::StrCat("127.0.0.1:", port_)
                                 : std::string("127.0.0.1:0");
  std::vector<std::string> args = {CLAVISD_BINARY, "--listen_address=" + listen,
                                   "--data_dir=" + options_.data_dir, "--port_file=" + port_file,
                                   "--log_level=" + options_.log_level};
  if (options_.dev_short_windows) args.push_back("--insecure_dev_short_windows");
  if (options_.auth == HarnessAuth::kExternal) pki_dir_ = options_.external_pki_dir;
  if (options_.auth == HarnessAuth::kInsecureDev) {
    args.push_back("--insecure_dev_no_auth");
  } else if (options_.auth == HarnessAuth::kMutualTls) {
    if (auto s = PreparePki(); !s.ok()) return s;
    for (const std::string& a :
         {"--tls_cert_file=" + pki_dir_ + "/server.crt",
          "--tls_key_file=" + pki_dir_ + "/server.key", "--client_ca_file=" + pki_dir_ + "/ca.crt",
          "--token_issuers_file=" + pki_dir_ + "/issuers",
          std::string("--token_audience=") + kAudience}) {
      args.push_back(a);
    }
    for (const std::string& tenant : TestTenants()) {
      args.push_back("--tenant_admin=" + PrincipalName(tenant));
    }
  }
  bool rate_limit_given = false;
  for (const auto& a : options_.extra_args) {
    args.push_back(a);
    if (a.rfind("--rate_limit_rps", 0) == 0) rate_limit_given = true;
  }
  // Load tests must not trip the per-principal rate limit by accident; the
  // rate-limit test sets its own.
  if (!rate_limit_given) args.push_back("--rate_limit_rps=1000000");

  const pid_t pid = ::fork();
  if (pid < 0) return absl::InternalError("fork failed");
  if (pid == 0) {
    const int fd = ::open(options_.log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (fd >= 0) {
      ::dup2(fd, STDOUT_FILENO);
      ::dup2(fd, STDERR_FILENO);
      ::close(fd);
    }
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    std::perror("execv clavisd");
    ::_exit(127);
  }
  pid_ = pid;

  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return absl::InternalError(
          absl::StrCat("clavisd exited during start-up; log:\n", ReadFile(options_.log_file)));
    }
    std::string text = ReadFile(port_file);
    int port = 0;
    if (!text.empty() && absl::SimpleAtoi(absl::StripAsciiWhitespace(text), &port) && port > 0) {
      port_ = port;
      break;
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  if (port_ == 0) {
    Kill();
    return absl::DeadlineExceededError("clavisd did not report its port in time");
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    channels_.clear();
  }
  if (!channel()->WaitForConnected(absl::ToChronoTime(deadline))) {
    Kill();
    return absl::DeadlineExceededError("clavisd did not accept connections in time");
  }
  return absl::OkStatus();
}

absl::Status ClavisdProcess::Stop(absl::Duration timeout) {
  if (!running()) return absl::OkStatus();
  {
    std::lock_guard<std::mutex> lock(mu_);
    channels_.clear();
  }
  ::kill(pid_, SIGTERM);
  const absl::Time deadline = absl::Now() + timeout;
  int status = 0;
  while (absl::Now() < deadline) {
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return absl::OkStatus();
      return absl::InternalError(absl::StrCat("clavisd exited with status ", status, "; log:\n",
                                              ReadFile(options_.log_file)));
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  Kill();
  return absl::DeadlineExceededError("clavisd did not stop within the timeout after SIGTERM");
}

void ClavisdProcess::Kill() {
  if (!running()) return;
  ::kill(pid_, SIGKILL);
  int status = 0;
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
  std::lock_guard<std::mutex> lock(mu_);
  channels_.clear();
}

absl::Status ClavisdProcess::PreparePki() {
  pki_dir_ = options_.data_dir + ".pki";
  if (std::filesystem::exists(pki_dir_ + "/server.crt")) return absl::OkStatus();  // a restart
  std::filesystem::create_directories(pki_dir_);
  auto ca = pki::CreateCertificateAuthority({});
  if (!ca.ok()) return ca.status();
  if (auto s = pki::WriteKeyAndCertificate(*ca, pki_dir_ + "/ca", true); !s.ok()) return s;
  auto server = pki::IssueServerCertificate(*ca, {});
  if (!server.ok()) return server.status();
  if (auto s = pki::WriteKeyAndCertificate(*server, pki_dir_ + "/server", true); !s.ok()) return s;
  auto issuer = crypto::Ed25519KeyPair::Generate();
  // A signing seed: private to this user, as an operator's would be.
  WriteFile(pki_dir_ + "/issuer.seed", crypto::HexEncode(issuer.seed.view()));
  ::chmod((pki_dir_ + "/issuer.seed").c_str(), 0600);
  WriteFile(pki_dir_ + "/issuers",
            absl::StrCat(kIssuerKeyId, " ", crypto::Base64Encode(issuer.public_key), "\n"));
  return absl::OkStatus();
}

std::string ClavisdProcess::client_cert_prefix(const std::string& principal) {
  std::lock_guard<std::mutex> lock(mu_);
  const std::string who = principal.empty() ? PrincipalName("acme") : principal;
  std::string file = who;
  for (char& c : file) {
    if (c == '/') c = '_';
  }
  const std::string prefix = absl::StrCat(pki_dir_, "/client-", file);
  if (!std::filesystem::exists(prefix + ".crt")) {
    auto ca = pki::ReadKeyAndCertificate(pki_dir_ + "/ca");
    EXPECT_TRUE(ca.ok()) << ca.status();
    if (!ca.ok()) return prefix;
    pki::ClientCertOptions options;
    options.principal = who;
    auto cert = pki::IssueClientCertificate(*ca, options);
    EXPECT_TRUE(cert.ok()) << cert.status();
    if (cert.ok()) {
      auto s = pki::WriteKeyAndCertificate(*cert, prefix, true);
      EXPECT_TRUE(s.ok()) << s;
    }
  }
  return prefix;
}

std::shared_ptr<grpc::Channel> ClavisdProcess::MakeTlsChannel(const std::string& cert_prefix) {
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = ReadFile(ca_cert_file());
  if (!cert_prefix.empty()) {
    ssl.pem_cert_chain = ReadFile(cert_prefix + ".crt");
    ssl.pem_private_key = ReadFile(cert_prefix + ".key");
  }
  grpc::ChannelArguments args;
  // The server certificate names localhost; the harness dials 127.0.0.1.
  args.SetSslTargetNameOverride("localhost");
  // One connection per channel object: tests that compare principals must
  // not share a subchannel (and its client certificate) across channels.
  args.SetInt("grpc.use_local_subchannel_pool", 1);
  return grpc::CreateCustomChannel(address(), grpc::SslCredentials(ssl), args);
}

std::shared_ptr<grpc::Channel> ClavisdProcess::NewChannel(const std::string& principal) {
  const std::string who = principal.empty() ? PrincipalName("acme") : principal;
  if (options_.auth == HarnessAuth::kInsecureDev) {
    grpc::ChannelArguments args;
    args.SetInt("grpc.use_local_subchannel_pool", 1);
    return grpc::CreateCustomChannel(address(), grpc::InsecureChannelCredentials(), args);
  }
  return MakeTlsChannel(client_cert_prefix(who));
}

std::shared_ptr<grpc::Channel> ClavisdProcess::channel(const std::string& principal) {
  const std::string who = principal.empty() ? PrincipalName("acme") : principal;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = channels_.find(who);
    if (it != channels_.end()) return it->second;
  }
  std::shared_ptr<grpc::Channel> channel = NewChannel(who);
  std::lock_guard<std::mutex> lock(mu_);
  return channels_.emplace(who, channel).first->second;
}

std::shared_ptr<grpc::Channel> ClavisdProcess::AnonymousChannel() {
  if (options_.auth == HarnessAuth::kInsecureDev) {
    return grpc::CreateChannel(address(), grpc::InsecureChannelCredentials());
  }
  return MakeTlsChannel("");
}

std::string ClavisdProcess::IssueToken(const std::string& principal, absl::Duration ttl,
                                       const std::vector<std::string>& groups,
                                       const std::string& audience, const std::string& token_id) {
  auto seed_hex = ReadFile(pki_dir_ + "/issuer.seed");
  auto seed = crypto::HexDecode(seed_hex);
  EXPECT_TRUE(seed.ok());
  if (!seed.ok()) return "";
  kms::auth::TokenClaims claims;
  claims.issuer_key_id = kIssuerKeyId;
  claims.principal = principal;
  claims.groups = groups;
  claims.audience = audience;
  claims.issued_at = absl::Now();
  claims.expires_at = claims.issued_at + ttl;
  claims.token_id = token_id.empty() ? "t-" + crypto::HexEncode(crypto::RandomBytes(8)) : token_id;
  auto token = kms::auth::SignServiceToken(claims, crypto::SecretBytes::CopyOf(*seed));
  EXPECT_TRUE(token.ok()) << token.status();
  return token.ok() ? *token : "";
}

std::string ClavisdProcess::AuditPublicKey() const {
  auto decoded = crypto::Base64Decode(
      absl::StripAsciiWhitespace(ReadFile(options_.data_dir + "/audit-signing.pub")));
  return decoded.ok() ? *decoded : "";
}

std::unique_ptr<clavis::v1::KeyAdmin::Stub> ClavisdProcess::Admin(const std::string& principal) {
  return clavis::v1::KeyAdmin::NewStub(channel(principal));
}

std::unique_ptr<clavis::v1::KeyManagement::Stub> ClavisdProcess::Data(
    const std::string& principal) {
  return clavis::v1::KeyManagement::NewStub(channel(principal));
}

std::unique_ptr<grpc::ClientContext> ContextWithDeadline(absl::Duration timeout) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  return ctx;
}

std::vector<std::pair<std::string, std::string>> ReadAllFiles(const std::string& dir) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir)) {
    if (entry.is_regular_file()) out.emplace_back(entry.path().string(), ReadFile(entry.path()));
  }
  return out;
}

}  // namespace clavis::testing
