#include "tests/fuzz/fuzz_domain.h"

#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "crypto/random.h"
#include "google/protobuf/stubs/logging.h"
#include "kms/root/root_key_wrapping.h"
#include "spdlog/spdlog.h"

namespace clavis::fuzz {
namespace {

// RootKeyProvider over a random key in memory: no files, no Argon2id.
class MemoryRootKey final : public kms::RootKeyProvider {
 public:
  explicit MemoryRootKey(kms::RootKeyWrapper wrapper) : wrapper_(std::move(wrapper)) {}
  absl::StatusOr<std::string> Wrap(const crypto::SecretBytes& plaintext,
                                   absl::string_view associated_data) override {
    return wrapper_.Wrap(plaintext, associated_data);
  }
  absl::StatusOr<crypto::SecretBytes> Unwrap(absl::string_view wrapped,
                                             absl::string_view associated_data) override {
    return wrapper_.Unwrap(wrapped, associated_data);
  }
  std::string Describe() const override { return "fuzz:memory"; }

 private:
  const kms::RootKeyWrapper wrapper_;
};

void Die(const char* what, const absl::Status& status) {
  std::fprintf(stderr, "fuzz domain: %s: %s\n", what, status.ToString().c_str());
  std::abort();
}

// The audit log is reopened in a fresh directory every so many inputs, so a
// long run does not fill the disk with records.
constexpr int kInputsPerAuditLog = 20000;

class SharedAuditLog {
 public:
  kms::AuditLog* Get() {
    if (log_ == nullptr || ++uses_ > kInputsPerAuditLog) Reopen();
    return log_.get();
  }
  ~SharedAuditLog() { Drop(); }

 private:
  void Drop() {
    log_.reset();
    if (!dir_.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(dir_, ec);
    }
  }
  void Reopen() {
    Drop();
    const char* tmp = std::getenv("TMPDIR");
    std::string tmpl = std::string(tmp != nullptr && *tmp ? tmp : "/tmp") + "/clavis-fuzz-XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) std::abort();
    dir_ = tmpl;
    kms::AuditLogOptions options;
    options.dir = dir_ + "/audit";
    options.signing_seed = crypto::SecretBytes::CopyOf(crypto::RandomBytes(32));
    options.context_key = crypto::SecretBytes::CopyOf(crypto::RandomBytes(32));
    auto log = kms::AuditLog::Open(std::move(options));
    if (!log.ok()) Die("audit log", log.status());
    log_ = *std::move(log);
    uses_ = 0;
  }

  std::string dir_;
  std::unique_ptr<kms::AuditLog> log_;
  int uses_ = 0;
};

kms::AuditLog* FuzzAuditLog() {
  static SharedAuditLog* log = new SharedAuditLog();  // never destroyed: exit may race flushes
  return log->Get();
}

}  // namespace

void QuietLogs() {
  spdlog::set_level(spdlog::level::off);
  // protobuf logs every string field that is not UTF-8 (then refuses it).
  google::protobuf::SetLogHandler(nullptr);
}

kms::RootKeyProvider* FuzzRootKey() {
  static kms::RootKeyProvider* root = [] {
    auto wrapper = kms::RootKeyWrapper::New(crypto::SecretBytes::CopyOf(crypto::RandomBytes(32)));
    if (!wrapper.ok()) Die("root key", wrapper.status());
    return new MemoryRootKey(*std::move(wrapper));
  }();
  return root;
}

FuzzDomain::FuzzDomain() {
  repository = std::make_unique<kms::KeyRepository>(&store, FuzzRootKey());
  lifecycle = std::make_unique<kms::KeyLifecycle>(repository.get(), &clock, &events);
  envelope = std::make_unique<kms::Envelope>(repository.get(), lifecycle.get());

  kms::access::AuthenticatorOptions authn;
  authn.insecure_dev = true;
  authenticator = std::make_unique<kms::access::Authenticator>(std::move(authn), &clock);
  auto authz = kms::access::Authorizer::Create(repository.get(), &clock, {});
  if (!authz.ok()) Die("authorizer", authz.status());
  authorizer = *std::move(authz);
  anomalies = std::make_unique<kms::auth::AnomalyDetector>(kms::auth::AnomalyOptions{}, &clock);
  audit = std::make_unique<kms::access::AuditTrail>(FuzzAuditLog(), anomalies.get());
  approval_book = std::make_unique<kms::access::ApprovalBook>(&store, &clock);
  approval_gate =
      std::make_unique<kms::ApprovalGate>(lifecycle.get(), authorizer.get(), approval_book.get());
  import_tokens = std::make_unique<kms::ImportTokenStore>(&clock);
  importer = std::make_unique<kms::KeyImporter>(lifecycle.get(), import_tokens.get());
  escrow = std::make_unique<kms::EscrowExporter>(repository.get(), &clock);

  kms::AccessComponents access{authenticator.get(), authorizer.get(), nullptr, audit.get()};
  management = std::make_unique<kms::KeyManagementService>(envelope.get(), &events, access);
  admin = std::make_unique<kms::KeyAdminService>(lifecycle.get(), importer.get(), escrow.get(),
                                                 access, approval_gate.get());
  access_control = std::make_unique<kms::AccessControlService>(lifecycle.get(), access,
                                                               approval_gate.get(), &clock, "fuzz");

  kms::CreateKeyParams generated;
  generated.tenant = kTenant;
  generated.key_id = "crm";
  if (auto key = lifecycle->CreateKey(generated); !key.ok()) Die("create key", key.status());
  kms::CreateKeyParams external;
  external.tenant = kTenant;
  external.key_id = "byok";
  external.origin = clavis::v1::EXTERNAL;
  if (auto key = lifecycle->CreateKey(external); !key.ok()) Die("create key", key.status());
}

FuzzDomain::~FuzzDomain() { management->Shutdown(); }

}  // namespace clavis::fuzz
