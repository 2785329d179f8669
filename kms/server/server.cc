#include "kms/server/server.h"

#include <sys/stat.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"
#include "kms/keys/clock.h"
#include "kms/keys/envelope.h"
#include "kms/keys/key_events.h"
#include "kms/keys/key_lifecycle.h"
#include "kms/keys/key_repository.h"
#include "kms/root/key_file_provider.h"
#include "kms/root/passphrase_provider.h"
#include "kms/service/key_admin_service.h"
#include "kms/service/key_management_service.h"
#include "kms/storage/rocksdb_store.h"
#include "spdlog/spdlog.h"

namespace clavis::kms {
namespace {

using clavis::server::ServerConfig;

constexpr char kDefaultListen[] = "127.0.0.1:7370";
constexpr char kDefaultPassphraseEnv[] = "CLAVIS_ROOT_PASSPHRASE";

absl::Status EnsurePrivateDirectory(const std::string& path, bool create) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
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
  if (!S_ISDIR(st.st_mode)) {
    return absl::FailedPreconditionError(absl::StrCat(path, " is not a directory"));
  }
  if ((st.st_mode & 077) != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("data directory ", path, " is accessible by group or others (mode ",
                     absl::StrFormat("%04o", st.st_mode & 0777), "); run `chmod 700 ", path, "`"));
  }
  return absl::OkStatus();
}

absl::StatusOr<crypto::SecretBytes> ReadPassphrase(const clavis::server::PassphraseRoot& cfg) {
  if (!cfg.passphrase_file().empty()) {
    std::ifstream in(cfg.passphrase_file());
    if (!in) {
      return absl::NotFoundError(
          absl::StrCat("cannot read passphrase file ", cfg.passphrase_file()));
    }
    std::string line;
    std::getline(in, line);
    crypto::SecretBytes out = crypto::SecretBytes::CopyOf(line);
    crypto::SecureWipe(line.data(), line.size());
    return out;
  }
  const std::string env =
      cfg.passphrase_env().empty() ? kDefaultPassphraseEnv : cfg.passphrase_env();
  const char* value = std::getenv(env.c_str());
  if (value == nullptr || *value == '\0') {
    return absl::FailedPreconditionError(absl::StrCat(
        "the passphrase root key needs a passphrase: set ", env, " or passphrase_file"));
  }
  crypto::SecretBytes out = crypto::SecretBytes::CopyOf(absl::string_view(value));
  // Wipe the value in place first: unsetenv alone leaves it in memory (and
  // in /proc/self/environ); then child processes must not inherit it.
  crypto::SecureWipe(const_cast<char*>(value), std::strlen(value));
  ::unsetenv(env.c_str());
  return out;
}

absl::StatusOr<std::unique_ptr<RootKeyProvider>> OpenRootKey(const ServerConfig& config) {
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
  const std::string path = config.root_key().key_file().path().empty()
                               ? config.data_dir() + "/root.key"
                               : config.root_key().key_file().path();
  auto provider = KeyFileRootKeyProvider::Open(path, config.create_if_missing());
  if (!provider.ok()) return provider.status();  // the provider itself warns: dev only
  return std::unique_ptr<RootKeyProvider>(*std::move(provider));
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
    envelope_.reset();
    lifecycle_.reset();
    repository_.reset();
    store_.reset();
    spdlog::info("store closed");
  }

  SystemClock clock_;
  KeyEventBus events_;
  std::unique_ptr<RocksDbStore> store_;
  std::unique_ptr<RootKeyProvider> root_;
  std::unique_ptr<KeyRepository> repository_;
  std::unique_ptr<KeyLifecycle> lifecycle_;
  std::unique_ptr<Envelope> envelope_;
  std::unique_ptr<KeyAdminService> admin_;
  std::unique_ptr<KeyManagementService> management_;
  std::unique_ptr<grpc::Server> grpc_server_;
  int port_ = 0;
};

}  // namespace

bool IsLoopbackAddress(const std::string& listen_address) {
  absl::string_view host = listen_address;
  const size_t colon = host.rfind(':');
  if (colon == absl::string_view::npos) return false;
  host = host.substr(0, colon);
  if (host == "localhost" || host == "[::1]") return true;
  return absl::StartsWith(host, "127.") && host.find_first_not_of("0123456789.") == host.npos;
}

absl::StatusOr<ServerConfig> CompleteConfig(ServerConfig config) {
  if (config.listen_address().empty()) config.set_listen_address(kDefaultListen);
  if (config.data_dir().empty()) config.set_data_dir("clavis-data");
  if (config.key_cache_entries() == 0) config.set_key_cache_entries(10000);
  if (config.segment_cache_entries() == 0) config.set_segment_cache_entries(100000);
  if (config.max_batch_items() == 0) config.set_max_batch_items(1000);
  if (config.max_receive_message_bytes() == 0) config.set_max_receive_message_bytes(4 << 20);
  if (config.log_level().empty()) config.set_log_level("info");
  if (!IsLoopbackAddress(config.listen_address())) {
    return absl::FailedPreconditionError(absl::StrCat(
        "listen_address ", config.listen_address(),
        " is not a loopback address; until TLS and authentication are in place clavisd only "
        "listens on 127.0.0.1, [::1] or localhost"));
  }
  int port = -1;
  const std::string port_text =
      config.listen_address().substr(config.listen_address().rfind(':') + 1);
  if (!absl::SimpleAtoi(port_text, &port) || port < 0 || port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("listen_address ", config.listen_address(), " has no valid port"));
  }
  if (config.max_batch_items() > 10000) {
    return absl::InvalidArgumentError("max_batch_items must be at most 10000");
  }
  if (spdlog::level::from_str(config.log_level()) == spdlog::level::off &&
      config.log_level() != "off") {
    return absl::InvalidArgumentError(absl::StrCat("unknown log_level ", config.log_level()));
  }
  return config;
}

absl::StatusOr<std::unique_ptr<Server>> Server::BuildAndStart(const ServerConfig& raw_config) {
  auto config = CompleteConfig(raw_config);
  if (!config.ok()) return config.status();
  spdlog::set_level(spdlog::level::from_str(config->log_level()));
  if (auto s = EnsurePrivateDirectory(config->data_dir(), config->create_if_missing()); !s.ok()) {
    return s;
  }
  auto server = std::make_unique<ServerImpl>();
  RocksDbStoreOptions store_options;
  store_options.path = config->data_dir() + "/db";
  store_options.create_if_missing = config->create_if_missing();
  auto store = RocksDbStore::Open(store_options);
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
  server->lifecycle_ = std::make_unique<KeyLifecycle>(server->repository_.get(), &server->clock_,
                                                      &server->events_, limits);
  server->envelope_ =
      std::make_unique<Envelope>(server->repository_.get(), server->lifecycle_.get());
  server->admin_ = std::make_unique<KeyAdminService>(server->lifecycle_.get());
  KeyManagementLimits management_limits;
  management_limits.max_batch_items = config->max_batch_items();
  server->management_ = std::make_unique<KeyManagementService>(server->envelope_.get(),
                                                               &server->events_, management_limits);

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.AddListeningPort(config->listen_address(), grpc::InsecureServerCredentials(),
                           &server->port_);
  builder.SetMaxReceiveMessageSize(static_cast<int>(config->max_receive_message_bytes()));
  builder.RegisterService(server->admin_.get());
  builder.RegisterService(server->management_.get());
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
  spdlog::warn(
      "plaintext, unauthenticated mode: loopback only, for development (TLS and authentication "
      "come with access control)");
  return std::unique_ptr<Server>(std::move(server));
}

}  // namespace clavis::kms
