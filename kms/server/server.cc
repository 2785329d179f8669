#include "kms/server/server.h"

#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "crypto/ed25519.h"
#include "crypto/encoding.h"
#include "google/protobuf/util/json_util.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"
#include "kms/access/approvals.h"
#include "kms/access/audit_keys.h"
#include "kms/access/audit_trail.h"
#include "kms/access/authenticator.h"
#include "kms/access/authorizer.h"
#include "kms/audit/audit_log.h"
#include "kms/auth/anomaly_detector.h"
#include "kms/auth/concurrency_limiter.h"
#include "kms/auth/rate_limiter.h"
#include "kms/auth/service_token.h"
#include "kms/backup/backup_maker.h"
#include "kms/backup/backup_restore.h"
#include "kms/keys/clock.h"
#include "kms/keys/envelope.h"
#include "kms/keys/import_tokens.h"
#include "kms/keys/key_events.h"
#include "kms/keys/key_importer.h"
#include "kms/keys/key_lifecycle.h"
#include "kms/keys/key_repository.h"
#include "kms/keys/store_follower.h"
#include "kms/logging/json_log_format.h"
#include "kms/root/key_file_provider.h"
#include "kms/root/passphrase_provider.h"
#include "kms/root/pkcs11_provider.h"
#include "kms/root/secret_input.h"
#include "kms/server/process_hardening.h"
#include "kms/service/access_control_service.h"
#include "kms/service/approval_gate.h"
#include "kms/service/key_admin_service.h"
#include "kms/service/key_management_service.h"
#include "kms/service/operations_service.h"
#include "kms/storage/etcd_store.h"
#include "kms/storage/rocksdb_store.h"
#include "spdlog/spdlog.h"

namespace clavis::kms {
namespace {

using clavis::server::ServerConfig;

constexpr char kDefaultListen[] = "127.0.0.1:7370";
constexpr char kDefaultPassphraseEnv[] = "CLAVIS_ROOT_PASSPHRASE";
constexpr char kDefaultPkcs11PinEnv[] = "CLAVIS_PKCS11_PIN";

std::string RootKeyFilePath(const ServerConfig& config) {
  return config.root_key().key_file().path().empty() ? config.data_dir() + "/root.key"
                                                     : config.root_key().key_file().path();
}

absl::Status EnsurePrivateDirectory(const std::string& path, bool create) {
  if (auto s = hardening::CheckPrivateDirectory(path, "data directory"); !s.ok()) return s;
  struct stat st;
  if (::stat(path.c_str(), &st) == 0) return absl::OkStatus();
  if (!create) {
    return absl::NotFoundError(absl::StrCat("data directory ", path, " does not exist"));
  }
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (ec) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot create data directory ", path, ": ", ec.message()));
  }
  ::chmod(path.c_str(), 0700);
  return absl::OkStatus();
}

// The start-up permission checks (docs/clavisd.md, "Start-up checks"), run
// before any secret is read: every file that holds a key or a secret must be
// private to the service user, and the audit directory (which may live
// outside the data directory) as private as the data directory. (The data
// directory itself: EnsurePrivateDirectory.)
absl::Status CheckSecretPermissions(const ServerConfig& config) {
  hardening::PermissionOptions options;
  options.allow_shared_secret_files = config.insecure_allow_shared_secret_files();
  if (!config.audit().insecure_disabled()) {
    if (auto s = hardening::CheckPrivateDirectory(config.audit().dir(), "audit directory");
        !s.ok()) {
      return s;
    }
  }
  std::vector<std::pair<std::string, const char*>> files = {
      {config.tls().key_file(), "TLS private key file"},
      {config.storage().etcd().key_file(), "etcd client key file"}};
  const auto& root = config.root_key();
  if (root.has_pkcs11()) {
    files.push_back({root.pkcs11().pin_file(), "PKCS#11 PIN file"});
  } else if (root.has_passphrase()) {
    files.push_back({root.passphrase().passphrase_file(), "passphrase file"});
  } else {
    files.push_back({RootKeyFilePath(config), "root key file"});
  }
  for (const auto& [path, what] : files) {
    if (auto s = hardening::CheckSecretFile(path, what, options); !s.ok()) return s;
  }
  // Not secret, but they decide whom clavisd trusts: nobody else may write them.
  const std::vector<std::pair<std::string, const char*>> trust_files = {
      {config.tls().client_ca_file(), "client CA file"},
      {config.tls().cert_file(), "TLS certificate file"},
      {config.tokens().issuers_file(), "token issuers file"},
      {config.tokens().revocation_file(), "token revocation file"},
      {config.storage().etcd().ca_file(), "etcd CA file"}};
  for (const auto& [path, what] : trust_files) {
    if (auto s = hardening::CheckTrustFile(path, what, options); !s.ok()) return s;
  }
  if (options.allow_shared_secret_files) {
    spdlog::warn(
        "insecure_allow_shared_secret_files is on: key and secret files that others can read "
        "are accepted");
  }
  return absl::OkStatus();
}

absl::StatusOr<crypto::SecretBytes> ReadPassphrase(const clavis::server::PassphraseRoot& cfg) {
  StartupSecretSource source;
  source.file = cfg.passphrase_file();
  source.env = cfg.passphrase_env();
  source.default_env = kDefaultPassphraseEnv;
  source.what = "passphrase";
  source.needed_by = "the passphrase root key";
  source.file_setting = "passphrase_file";
  return ReadStartupSecret(source);
}

absl::StatusOr<std::unique_ptr<RootKeyProvider>> OpenPkcs11RootKey(const ServerConfig& config) {
  const clavis::server::Pkcs11Root& cfg = config.root_key().pkcs11();
  // Named by flag: these are start-up mistakes an operator fixes by hand.
  if (cfg.module_path().empty() || cfg.token_label().empty() || cfg.key_label().empty()) {
    return absl::InvalidArgumentError(
        "the pkcs11 root key needs root_key.pkcs11.module_path, token_label and key_label "
        "(--pkcs11_module, --pkcs11_token_label, --pkcs11_key_label)");
  }
  StartupSecretSource source;
  source.file = cfg.pin_file();
  source.env = cfg.pin_env();
  source.default_env = kDefaultPkcs11PinEnv;
  source.what = "PIN";
  source.needed_by = "the pkcs11 root key";
  source.file_setting = "pin_file (--pkcs11_pin_file)";
  auto pin = ReadStartupSecret(source);
  if (!pin.ok()) return pin.status();
  Pkcs11RootKeyOptions options;
  options.module_path = cfg.module_path();
  options.token_label = cfg.token_label();
  options.key_label = cfg.key_label();
  options.create_key_if_missing = cfg.create_key_if_missing() && config.create_if_missing();
  auto provider = Pkcs11RootKeyProvider::Open(options, *pin);
  if (!provider.ok()) return provider.status();
  return std::unique_ptr<RootKeyProvider>(*std::move(provider));
}

absl::StatusOr<std::unique_ptr<RootKeyProvider>> OpenRootKey(const ServerConfig& config) {
  if (config.root_key().has_pkcs11()) return OpenPkcs11RootKey(config);
  if (config.root_key().has_passphrase()) {
    auto passphrase = ReadPassphrase(config.root_key().passphrase());
    if (!passphrase.ok()) return passphrase.status();
    PassphraseRootKeyOptions options;
    options.create_if_missing = config.create_if_missing();
    auto provider = PassphraseRootKeyProvider::Open(
        PassphraseRootKeyProvider::ParamsPathIn(config.data_dir()), *passphrase, options);
    if (!provider.ok()) return provider.status();
    return std::unique_ptr<RootKeyProvider>(*std::move(provider));
  }
  auto provider = KeyFileRootKeyProvider::Open(RootKeyFilePath(config), config.create_if_missing());
  if (!provider.ok()) return provider.status();  // the provider itself warns: dev only
  return std::unique_ptr<RootKeyProvider>(*std::move(provider));
}

absl::StatusOr<std::string> ReadTextFile(const std::string& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", what, " ", path));
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// "<key_id> <base64 public key>" per line; '#' comments.
absl::StatusOr<std::vector<auth::TrustedIssuer>> ReadIssuers(const std::string& path) {
  auto text = ReadTextFile(path, "token issuers file");
  if (!text.ok()) return text.status();
  std::vector<auth::TrustedIssuer> out;
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(*text, '\n')) {
    ++line_number;
    line = line.substr(0, line.find('#'));
    std::vector<absl::string_view> fields =
        absl::StrSplit(line, absl::ByAnyChar(" \t\r"), absl::SkipEmpty());
    if (fields.empty()) continue;
    auto key = fields.size() == 2 ? crypto::Base64Decode(fields[1])
                                  : absl::StatusOr<std::string>(absl::InvalidArgumentError(""));
    if (fields.size() != 2 || !key.ok() || key->size() != 32) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, " line ", line_number,
                       ": expected \"<key_id> <base64 Ed25519 public key (32 bytes)>\""));
    }
    out.push_back(auth::TrustedIssuer{std::string(fields[0]), *std::move(key)});
  }
  if (out.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(path, " names no token issuer"));
  }
  return out;
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> ListenerCredentials(
    const clavis::server::TlsConfig& tls) {
  if (tls.cert_file().empty()) return grpc::InsecureServerCredentials();
  auto cert = ReadTextFile(tls.cert_file(), "TLS certificate");
  if (!cert.ok()) return cert.status();
  auto key = ReadTextFile(tls.key_file(), "TLS private key");
  if (!key.ok()) return key.status();
  grpc::SslServerCredentialsOptions options(
      tls.client_ca_file().empty() ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
      : tls.require_client_certificate()
          ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
          : GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY);
  if (!tls.client_ca_file().empty()) {
    auto ca = ReadTextFile(tls.client_ca_file(), "client CA file");
    if (!ca.ok()) return ca.status();
    options.pem_root_certs = *ca;
  }
  options.pem_key_cert_pairs.push_back({*key, *cert});
  auto credentials = grpc::SslServerCredentials(options);
  // gRPC copied the key; do not leave another copy in the heap.
  crypto::SecureWipe(key->data(), key->size());
  crypto::SecureWipe(options.pem_key_cert_pairs[0].private_key.data(),
                     options.pem_key_cert_pairs[0].private_key.size());
  return credentials;
}

class ServerImpl : public Server {
 public:
  int port() const override { return port_; }
  void Wait() override { grpc_server_->Wait(); }
  void Shutdown(absl::Duration grace) override {
    spdlog::info("shutting down: finishing in-flight calls");
    management_->Shutdown();
    events_.CloseAll();
    grpc_server_->Shutdown(std::chrono::system_clock::now() + absl::ToChronoSeconds(grace));
  }
  ~ServerImpl() override {
    // Order matters: no call may run once the domain and store are gone.
    grpc_server_.reset();
    management_.reset();
    admin_.reset();
    access_control_.reset();
    operations_.reset();
    if (audit_log_ != nullptr) {
      if (auto s = audit_log_->Close(); !s.ok()) {
        spdlog::error("closing the audit log: {}", std::string(s.message()));
      } else {
        spdlog::info("audit log closed (closing checkpoint written)");
      }
    }
    follower_.reset();  // its feed thread calls into the repository
    escrow_.reset();
    backups_.reset();
    importer_.reset();
    import_tokens_.reset();  // drops every import token's private key
    envelope_.reset();
    lifecycle_.reset();
    repository_.reset();
    store_.reset();
    spdlog::info("store closed");
  }

  SystemClock clock_;
  KeyEventBus events_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<RootKeyProvider> root_;
  std::unique_ptr<KeyRepository> repository_;
  std::unique_ptr<KeyLifecycle> lifecycle_;
  std::unique_ptr<Envelope> envelope_;
  // Only with a store other replicas share (kms/keys/store_follower.h).
  std::unique_ptr<StoreFollower> follower_;
  std::unique_ptr<ImportTokenStore> import_tokens_;
  std::unique_ptr<KeyImporter> importer_;
  std::unique_ptr<EscrowExporter> escrow_;
  std::unique_ptr<BackupMaker> backups_;
  std::unique_ptr<access::Authenticator> authenticator_;
  std::unique_ptr<access::Authorizer> authorizer_;
  std::unique_ptr<auth::RateLimiter> rate_limiter_;
  std::unique_ptr<auth::ConcurrencyLimiter> concurrency_;
  std::unique_ptr<auth::AnomalyDetector> anomalies_;
  std::unique_ptr<AuditLog> audit_log_;
  std::unique_ptr<access::AuditTrail> audit_trail_;
  std::unique_ptr<access::ApprovalBook> approval_book_;
  std::unique_ptr<ApprovalGate> approval_gate_;
  std::unique_ptr<AccessControlService> access_control_;
  std::unique_ptr<KeyAdminService> admin_;
  std::unique_ptr<KeyManagementService> management_;
  std::unique_ptr<OperationsService> operations_;
  std::unique_ptr<grpc::Server> grpc_server_;
  int port_ = 0;
};

absl::Status BuildAccessControl(const ServerConfig& config, ServerImpl* server) {
  access::AuthenticatorOptions authn;
  authn.insecure_dev = config.insecure_dev_no_auth();
  if (!config.tokens().issuers_file().empty()) {
    auth::TokenVerifierOptions options;
    auto issuers = ReadIssuers(config.tokens().issuers_file());
    if (!issuers.ok()) return issuers.status();
    options.issuers = *std::move(issuers);
    options.audience = config.tokens().audience();
    options.revocation_file = config.tokens().revocation_file();
    if (config.tokens().max_lifetime_s() != 0) {
      options.max_lifetime = absl::Seconds(config.tokens().max_lifetime_s());
    }
    auto verifier = auth::TokenVerifier::Create(std::move(options), &server->clock_);
    if (!verifier.ok()) return verifier.status();
    authn.tokens = *std::move(verifier);
  }
  const auto& lockout = config.lockout();
  if (lockout.max_failures() != 0) authn.lockout.max_failures = lockout.max_failures();
  if (lockout.base_lockout_s() != 0) {
    authn.lockout.base_lockout = absl::Seconds(lockout.base_lockout_s());
  }
  if (lockout.max_lockout_s() != 0)
    authn.lockout.max_lockout = absl::Seconds(lockout.max_lockout_s());
  server->authenticator_ =
      std::make_unique<access::Authenticator>(std::move(authn), &server->clock_);

  access::AuthorizerOptions authz;
  authz.tenant_admins.assign(config.tenant_admins().begin(), config.tenant_admins().end());
  authz.backup_operators.assign(config.backup_operators().begin(), config.backup_operators().end());
  auto authorizer =
      access::Authorizer::Create(server->repository_.get(), &server->clock_, std::move(authz));
  if (!authorizer.ok()) return authorizer.status();
  server->authorizer_ = *std::move(authorizer);

  if (!config.rate_limit().disabled()) {
    auth::RateLimitOptions limits;
    if (config.rate_limit().requests_per_second() > 0) {
      limits.requests_per_second = config.rate_limit().requests_per_second();
      limits.burst = 2 * limits.requests_per_second;
    }
    if (config.rate_limit().burst() > 0) limits.burst = config.rate_limit().burst();
    server->rate_limiter_ = std::make_unique<auth::RateLimiter>(limits, &server->clock_);
  }

  auth::AnomalyOptions anomaly;
  if (config.anomaly().decrypt_rate_factor() > 0) {
    anomaly.rate_factor = config.anomaly().decrypt_rate_factor();
  }
  if (config.anomaly().min_decrypts_for_alert() != 0) {
    anomaly.min_decrypts_for_alert = config.anomaly().min_decrypts_for_alert();
  }
  if (config.anomaly().denial_streak() != 0)
    anomaly.denial_streak = config.anomaly().denial_streak();
  server->anomalies_ = std::make_unique<auth::AnomalyDetector>(anomaly, &server->clock_);

  if (config.audit().insecure_disabled()) {
    spdlog::warn("audit log DISABLED (audit.insecure_disabled): development only");
  } else {
    auto keys = access::LoadOrCreateAuditKeys(server->store_.get(), server->root_.get());
    if (!keys.ok()) return keys.status();
    AuditLogOptions options;
    options.dir = config.audit().dir();
    options.signing_seed = std::move(keys->signing_seed);
    options.context_key = std::move(keys->context_key);
    if (config.audit().flush_interval_ms() != 0) {
      options.flush_interval = absl::Milliseconds(config.audit().flush_interval_ms());
    }
    options.sync_every_record = config.audit().sync_every_record();
    if (config.audit().checkpoint_every_records() != 0) {
      options.checkpoint_every_records = config.audit().checkpoint_every_records();
    }
    if (config.audit().checkpoint_interval_s() != 0) {
      options.checkpoint_interval = absl::Seconds(config.audit().checkpoint_interval_s());
    }
    auto log = AuditLog::Open(std::move(options));
    if (!log.ok()) return log.status();
    server->audit_log_ = *std::move(log);
    const std::string public_key = crypto::Base64Encode(server->audit_log_->public_key());
    const std::string pub_path = config.data_dir() + "/audit-signing.pub";
    {
      std::ofstream out(pub_path + ".tmp");
      out << public_key << "\n";
    }
    std::filesystem::rename(pub_path + ".tmp", pub_path);
    spdlog::info("audit log in {} (signing public key {}, also in {})", config.audit().dir(),
                 public_key, pub_path);
  }
  server->audit_trail_ =
      std::make_unique<access::AuditTrail>(server->audit_log_.get(), server->anomalies_.get());
  server->approval_book_ = std::make_unique<access::ApprovalBook>(
      server->store_.get(), &server->clock_, absl::Seconds(config.approval_ttl_s()));
  server->approval_gate_ = std::make_unique<ApprovalGate>(
      server->lifecycle_.get(), server->authorizer_.get(), server->approval_book_.get());
  return absl::OkStatus();
}

}  // namespace

const char* ServerVersion() { return CLAVIS_VERSION; }

bool IsLoopbackAddress(const std::string& listen_address) {
  absl::string_view host = listen_address;
  const size_t colon = host.rfind(':');
  if (colon == absl::string_view::npos) return false;
  host = host.substr(0, colon);
  if (host == "localhost" || host == "[::1]") return true;
  return absl::StartsWith(host, "127.") && host.find_first_not_of("0123456789.") == host.npos;
}

absl::StatusOr<ServerConfig> ParseConfigJson(absl::string_view json) {
  ServerConfig config;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;
  auto status = google::protobuf::util::JsonStringToMessage(std::string(json), &config, options);
  if (!status.ok()) return absl::InvalidArgumentError(status.ToString());
  return config;
}

namespace {

absl::Status CompleteStorageConfig(clavis::server::StorageConfig* storage) {
  if (storage->backend().empty()) storage->set_backend("rocksdb");
  if (storage->backend() == "rocksdb") {
    if (storage->has_etcd()) {
      return absl::InvalidArgumentError(
          "storage.etcd (or an --etcd_* flag) is set but storage.backend is rocksdb: set "
          "storage.backend (--storage_backend) to etcd, or remove the etcd settings");
    }
    return absl::OkStatus();
  }
  if (storage->backend() != "etcd") {
    return absl::InvalidArgumentError(
        absl::StrCat("storage.backend must be rocksdb or etcd, not \"",
                     absl::CHexEscape(storage->backend()), "\""));
  }
  clavis::server::EtcdConfig* etcd = storage->mutable_etcd();
  if (etcd->endpoints().empty()) {
    return absl::InvalidArgumentError(
        "the etcd backend needs storage.etcd.endpoints (--etcd_endpoints host:port,...)");
  }
  if (etcd->key_prefix().empty()) etcd->set_key_prefix("/clavis/");
  if (etcd->request_timeout_ms() == 0) etcd->set_request_timeout_ms(5000);
  if (etcd->cert_file().empty() != etcd->key_file().empty()) {
    return absl::InvalidArgumentError("storage.etcd.cert_file and key_file go together");
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<ServerConfig> CompleteConfig(ServerConfig config) {
  if (config.listen_address().empty()) config.set_listen_address(kDefaultListen);
  if (config.data_dir().empty()) config.set_data_dir("clavis-data");
  if (config.key_cache_entries() == 0) config.set_key_cache_entries(10000);
  if (config.segment_cache_entries() == 0) config.set_segment_cache_entries(100000);
  if (config.max_batch_items() == 0) config.set_max_batch_items(1000);
  if (config.max_receive_message_bytes() == 0) config.set_max_receive_message_bytes(4 << 20);
  {
    clavis::server::LimitsConfig& l = *config.mutable_limits();
    if (l.max_calls_per_principal() == 0) l.set_max_calls_per_principal(64);
    if (l.max_calls_total() == 0) l.set_max_calls_total(4096);
    if (l.max_streams_per_principal() == 0) l.set_max_streams_per_principal(16);
    if (l.max_streams_total() == 0) l.set_max_streams_total(1024);
    if (l.max_stream_lifetime_s() == 0) l.set_max_stream_lifetime_s(3600);
    if (l.max_concurrent_streams_per_connection() == 0) {
      l.set_max_concurrent_streams_per_connection(100);
    }
    if (l.handshake_timeout_s() == 0) l.set_handshake_timeout_s(10);
  }
  if (config.log_level().empty()) config.set_log_level("info");
  const bool loopback = IsLoopbackAddress(config.listen_address());
  const bool tls = !config.tls().cert_file().empty();
  if (config.insecure_dev_no_auth() && !loopback) {
    return absl::FailedPreconditionError(absl::StrCat(
        "insecure_dev_no_auth cannot be combined with listen_address ", config.listen_address(),
        ": the unauthenticated development mode only listens on 127.0.0.1, [::1] or localhost"));
  }
  if (!tls && !loopback) {
    return absl::FailedPreconditionError(absl::StrCat(
        "listen_address ", config.listen_address(),
        " is not a loopback address: configure tls.cert_file and tls.key_file (plaintext is "
        "only allowed on 127.0.0.1, [::1] or localhost)"));
  }
  if (tls != !config.tls().key_file().empty()) {
    return absl::InvalidArgumentError("tls.cert_file and tls.key_file go together");
  }
  if (!config.tls().client_ca_file().empty() && !tls) {
    return absl::InvalidArgumentError("tls.client_ca_file needs tls.cert_file and tls.key_file");
  }
  if (config.tls().require_client_certificate() && config.tls().client_ca_file().empty()) {
    return absl::InvalidArgumentError("tls.require_client_certificate needs tls.client_ca_file");
  }
  const bool tokens = !config.tokens().issuers_file().empty();
  if (tokens && config.tokens().audience().empty()) {
    return absl::InvalidArgumentError("tokens.audience is required with tokens.issuers_file");
  }
  if (!config.insecure_dev_no_auth() && config.tls().client_ca_file().empty() && !tokens) {
    return absl::FailedPreconditionError(
        "no way to authenticate callers: configure tls.client_ca_file (mTLS) and/or "
        "tokens.issuers_file (service tokens), or start with --insecure_dev_no_auth for "
        "loopback development");
  }
  if (config.audit().insecure_disabled() && !config.insecure_dev_no_auth()) {
    return absl::FailedPreconditionError(
        "audit.insecure_disabled is only allowed together with insecure_dev_no_auth");
  }
  if (config.audit().dir().empty()) {
    config.mutable_audit()->set_dir(config.data_dir() + "/audit");
  }
  if (auto s = CompleteStorageConfig(config.mutable_storage()); !s.ok()) return s;
  if (config.approval_ttl_s() == 0) config.set_approval_ttl_s(86400);
  if (config.import_token_ttl_s() == 0) config.set_import_token_ttl_s(86400);
  int port = -1;
  const std::string port_text =
      config.listen_address().substr(config.listen_address().rfind(':') + 1);
  if (!absl::SimpleAtoi(port_text, &port) || port < 0 || port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("listen_address ", config.listen_address(), " has no valid port"));
  }
  if (config.limits().handshake_timeout_s() > 3600) {
    return absl::InvalidArgumentError("limits.handshake_timeout_s must be at most 3600");
  }
  if (config.limits().max_concurrent_streams_per_connection() > 100000) {
    return absl::InvalidArgumentError(
        "limits.max_concurrent_streams_per_connection must be at most 100000");
  }
  if (config.max_batch_items() > 10000) {
    return absl::InvalidArgumentError("max_batch_items must be at most 10000");
  }
  if (spdlog::level::from_str(config.log_level()) == spdlog::level::off &&
      config.log_level() != "off") {
    return absl::InvalidArgumentError(absl::StrCat("unknown log_level ", config.log_level()));
  }
  if (config.log_format().empty()) config.set_log_format("text");
  if (config.log_format() != "text" && config.log_format() != "json") {
    return absl::InvalidArgumentError(
        absl::StrCat("log_format must be text or json, not \"", config.log_format(), "\""));
  }
  return config;
}

namespace {

// The configured Store. For etcd, checks that the cluster answers, so a
// wrong endpoint fails the start with a clear message instead of the first
// call.
absl::StatusOr<std::unique_ptr<Store>> OpenStore(const ServerConfig& config) {
  if (config.storage().backend() != "etcd") {
    RocksDbStoreOptions store_options;
    store_options.path = config.data_dir() + "/db";
    store_options.create_if_missing = config.create_if_missing();
    store_options.verify_checksums_at_open =
        !config.has_verify_storage_at_start() || config.verify_storage_at_start();
    auto store = RocksDbStore::Open(store_options);
    if (!store.ok()) return store.status();
    spdlog::info("store: RocksDB in {}/db", config.data_dir());
    return std::unique_ptr<Store>(*std::move(store));
  }
  const clavis::server::EtcdConfig& etcd = config.storage().etcd();
  EtcdStoreOptions options;
  options.endpoints.assign(etcd.endpoints().begin(), etcd.endpoints().end());
  options.key_prefix = etcd.key_prefix();
  options.request_timeout = absl::Milliseconds(etcd.request_timeout_ms());
  options.tls_ca_file = etcd.ca_file();
  options.tls_cert_file = etcd.cert_file();
  options.tls_key_file = etcd.key_file();
  options.tls_server_name = etcd.server_name();
  auto store = EtcdStore::New(options);
  if (!store.ok()) {
    return absl::Status(store.status().code(),
                        absl::StrCat("etcd backend: ", store.status().message()));
  }
  auto version = (*store)->CheckReachable();
  if (!version.ok()) {
    return absl::UnavailableError(absl::StrCat(
        "etcd backend: no etcd member answered at ", absl::StrJoin(etcd.endpoints(), ","),
        " within ", etcd.request_timeout_ms(),
        " ms (storage.etcd.endpoints, --etcd_endpoints): ", version.status().message()));
  }
  spdlog::info("store: etcd {} at {}, key prefix \"{}\"", *version,
               absl::StrJoin(etcd.endpoints(), ","), absl::CHexEscape(etcd.key_prefix()));
  return std::unique_ptr<Store>(*std::move(store));
}

}  // namespace

absl::StatusOr<std::string> RestoreDataDirectory(const ServerConfig& raw_config,
                                                 const std::string& backup_path) {
  ServerConfig config = raw_config;
  if (config.storage().backend() == "etcd") {
    return absl::UnimplementedError(
        "--restore_from restores into the embedded RocksDB store only: restoring a backup into "
        "etcd is not supported yet (docs/ETCD.md)");
  }
  if (config.data_dir().empty()) config.set_data_dir("clavis-data");
  // Never make a new root of trust here: it could not unwrap the backup.
  config.set_create_if_missing(false);
  if (config.root_key().has_pkcs11()) {
    config.mutable_root_key()->mutable_pkcs11()->set_create_key_if_missing(false);
  }
  const std::string& dir = config.data_dir();
  std::error_code ec;
  if (std::filesystem::exists(dir, ec)) {
    // Only the root of trust's files may be there already: they are how the
    // operator brings the root key (key file, passphrase params) along.
    std::vector<std::string> others;
    for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
      const std::string name = entry.path().filename().string();
      if (name == "db.restore-tmp") continue;  // an interrupted restore's: replaced below
      if (name != "root.key" && name != PassphraseRootKeyProvider::kParamsFileName) {
        others.push_back(name);
      }
    }
    if (ec) {
      return absl::FailedPreconditionError(
          absl::StrCat("cannot list data directory ", dir, ": ", ec.message()));
    }
    if (!others.empty()) {
      std::sort(others.begin(), others.end());
      return absl::FailedPreconditionError(
          absl::StrCat("refusing to restore into data directory ", dir,
                       ": it is not empty (it holds ", absl::StrJoin(others, ", "),
                       "); restore into a new directory, which may hold only the root key's files "
                       "(root.key, root-passphrase.params)"));
    }
  }
  if (auto s = EnsurePrivateDirectory(dir, /*create=*/true); !s.ok()) return s;
  // The same checks as a start: the root key's files are read here too.
  if (auto s = CheckSecretPermissions(config); !s.ok()) return s;
  auto root = OpenRootKey(config);
  if (!root.ok()) return root.status();
  auto restored = RestoreBackup(backup_path, root->get(), dir + "/db");
  if (!restored.ok()) return restored.status();
  return absl::StrCat(
      "restored backup ", absl::BytesToHexString(restored->header.backup_id), " (made ",
      absl::FormatTime(absl::RFC3339_sec, restored->header.created, absl::UTCTimeZone()), " by ",
      restored->header.source, "): ", restored->entries, " store entries into ", dir,
      "/db; start clavisd on --data_dir ", dir, " with the same root key");
}

absl::StatusOr<std::unique_ptr<Server>> Server::BuildAndStart(const ServerConfig& raw_config) {
  auto config = CompleteConfig(raw_config);
  if (!config.ok()) return config.status();
  spdlog::set_level(spdlog::level::from_str(config->log_level()));
  if (auto s = logging::SetLogFormat(config->log_format()); !s.ok()) return s;
  if (auto s = EnsurePrivateDirectory(config->data_dir(), config->create_if_missing()); !s.ok()) {
    return s;
  }
  if (auto s = CheckSecretPermissions(*config); !s.ok()) return s;
  auto server = std::make_unique<ServerImpl>();
  auto store = OpenStore(*config);
  if (!store.ok()) return store.status();
  server->store_ = *std::move(store);
  auto root = OpenRootKey(*config);
  if (!root.ok()) return root.status();
  server->root_ = *std::move(root);

  KeyRepositoryOptions repo_options;
  repo_options.key_cache_entries = config->key_cache_entries();
  repo_options.segment_cache_entries = config->segment_cache_entries();
  server->repository_ =
      std::make_unique<KeyRepository>(server->store_.get(), server->root_.get(), repo_options);
  KeyPolicyLimits limits;
  if (config->insecure_dev_short_windows()) {
    spdlog::warn(
        "insecure_dev_short_windows is on: keys can be destroyed and rotated seconds after "
        "asking; never use this in production");
    limits.min_destruction_window = absl::Seconds(1);
    limits.min_rotation_period = absl::Seconds(1);
  }
  // A store other replicas write too (etcd) is followed, so this replica's
  // caches and WatchKeyEvents streams learn of their changes; then the
  // follower announces every change, this replica's own included, and the
  // lifecycle must not announce them a second time.
  auto follower = StoreFollower::Start(server->store_.get(), server->repository_.get(),
                                       &server->events_, &server->clock_);
  if (follower.ok()) {
    server->follower_ = *std::move(follower);
    spdlog::info("store shared with other replicas: following its changes");
  } else if (!absl::IsUnimplemented(follower.status())) {
    return follower.status();
  }
  server->lifecycle_ = std::make_unique<KeyLifecycle>(
      server->repository_.get(), &server->clock_,
      server->follower_ == nullptr ? &server->events_ : nullptr, limits);
  server->envelope_ =
      std::make_unique<Envelope>(server->repository_.get(), server->lifecycle_.get());
  if (auto s = BuildAccessControl(*config, server.get()); !s.ok()) return s;
  {
    const clavis::server::LimitsConfig& l = config->limits();
    server->concurrency_ = std::make_unique<auth::ConcurrencyLimiter>(
        auth::ConcurrencyLimits{l.max_calls_per_principal(), l.max_calls_total(),
                                l.max_streams_per_principal(), l.max_streams_total()});
  }
  AccessComponents access{server->authenticator_.get(), server->authorizer_.get(),
                          server->rate_limiter_.get(), server->audit_trail_.get(),
                          server->concurrency_.get()};
  ImportTokenOptions import_options;
  import_options.validity = absl::Seconds(config->import_token_ttl_s());
  import_options.sweep_interval = absl::Seconds(1);
  server->import_tokens_ = std::make_unique<ImportTokenStore>(&server->clock_, import_options);
  server->importer_ =
      std::make_unique<KeyImporter>(server->lifecycle_.get(), server->import_tokens_.get());
  server->escrow_ = std::make_unique<EscrowExporter>(server->repository_.get(), &server->clock_);
  // Spooled in the data directory: same filesystem protection as the store.
  server->backups_ = std::make_unique<BackupMaker>(
      server->store_.get(), server->root_.get(), &server->clock_, config->data_dir(),
      absl::StrCat("clavisd ", ServerVersion(), "; root key ", server->root_->Describe()));
  server->operations_ = std::make_unique<OperationsService>(server->backups_.get(), access);
  server->admin_ = std::make_unique<KeyAdminService>(server->lifecycle_.get(),
                                                     server->importer_.get(), server->escrow_.get(),
                                                     access, server->approval_gate_.get());
  server->access_control_ = std::make_unique<AccessControlService>(
      server->lifecycle_.get(), access, server->approval_gate_.get(), &server->clock_,
      ServerVersion());
  KeyManagementLimits management_limits;
  management_limits.max_batch_items = config->max_batch_items();
  management_limits.max_stream_lifetime = absl::Seconds(config->limits().max_stream_lifetime_s());
  server->management_ = std::make_unique<KeyManagementService>(
      server->envelope_.get(), &server->events_, access, management_limits);

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  auto credentials = ListenerCredentials(config->tls());
  if (!credentials.ok()) return credentials.status();
  builder.AddListeningPort(config->listen_address(), *credentials, &server->port_);
  builder.SetMaxReceiveMessageSize(static_cast<int>(config->max_receive_message_bytes()));
  // Transport limits (docs/clavisd.md, "Limits"): calls in flight on one
  // connection, and how long a connection may take to say who it is, so
  // idle half-open connections do not pile up.
  builder.AddChannelArgument(
      GRPC_ARG_MAX_CONCURRENT_STREAMS,
      static_cast<int>(config->limits().max_concurrent_streams_per_connection()));
  builder.AddChannelArgument(GRPC_ARG_SERVER_HANDSHAKE_TIMEOUT_MS,
                             static_cast<int>(config->limits().handshake_timeout_s() * 1000));
  builder.RegisterService(server->admin_.get());
  builder.RegisterService(server->management_.get());
  builder.RegisterService(server->access_control_.get());
  builder.RegisterService(server->operations_.get());
  server->grpc_server_ = builder.BuildAndStart();
  if (server->grpc_server_ == nullptr || server->port_ == 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", config->listen_address(), " (address in use?)"));
  }
  if (!config->port_file().empty()) {
    const std::string tmp = config->port_file() + ".tmp";
    {
      std::ofstream out(tmp);
      out << server->port_ << "\n";
    }
    std::filesystem::rename(tmp, config->port_file());
  }
  spdlog::info("clavisd listening on {} (port {}), data in {}, root key {}",
               config->listen_address(), server->port_, config->data_dir(),
               server->root_->Describe());
  if (config->insecure_dev_no_auth()) {
    spdlog::warn(
        "INSECURE DEVELOPMENT MODE: no authentication, every caller may do everything; "
        "loopback only. Never use this with real data.");
  }
  spdlog::info("authentication: {}{}{}", config->tls().cert_file().empty() ? "plaintext" : "TLS",
               config->tls().client_ca_file().empty() ? "" : ", client certificates (mTLS)",
               config->tokens().issuers_file().empty() ? "" : ", service tokens");
  return std::unique_ptr<Server>(std::move(server));
}

}  // namespace clavis::kms
