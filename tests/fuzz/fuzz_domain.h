// The key domain and the gRPC service handlers wired together in memory for
// the fuzz targets: MemoryStore, a root key held in process memory, a
// FakeClock, the development-mode authenticator (every caller may do
// everything, so requests reach the domain) and a real audit log in a
// temporary directory (hostile names and contexts reach its encoder).
// No network server: targets call the handlers with a bare ServerContext.
// Test-only.
#ifndef CLAVIS_TESTS_FUZZ_FUZZ_DOMAIN_H_
#define CLAVIS_TESTS_FUZZ_FUZZ_DOMAIN_H_

#include <memory>
#include <string>

#include "kms/access/approvals.h"
#include "kms/access/audit_trail.h"
#include "kms/access/authenticator.h"
#include "kms/access/authorizer.h"
#include "kms/audit/audit_log.h"
#include "kms/auth/anomaly_detector.h"
#include "kms/escrow/escrow_exporter.h"
#include "kms/keys/clock.h"
#include "kms/keys/envelope.h"
#include "kms/keys/import_tokens.h"
#include "kms/keys/key_events.h"
#include "kms/keys/key_importer.h"
#include "kms/keys/key_lifecycle.h"
#include "kms/keys/key_repository.h"
#include "kms/root/root_key_provider.h"
#include "kms/service/access_control_service.h"
#include "kms/service/approval_gate.h"
#include "kms/service/key_admin_service.h"
#include "kms/service/key_management_service.h"
#include "kms/storage/memory_store.h"

namespace clavis::fuzz {

// The names every domain starts with: a generated key and an external
// (BYOK) key still waiting for its material.
inline constexpr char kTenant[] = "acme";
inline constexpr char kKeyName[] = "tenants/acme/keys/crm";
inline constexpr char kExternalKeyName[] = "tenants/acme/keys/byok";

// Turns logging off: the domain logs every key event, which would drown
// libFuzzer's output. Call from LLVMFuzzerInitialize.
void QuietLogs();

// The process-wide root key (random per process, in memory).
kms::RootKeyProvider* FuzzRootKey();

// A fresh domain per input, so an input's outcome does not depend on what
// ran before it (crashes reproduce from the saved input alone). The root
// key and the audit log are shared: making them is costly, and neither
// changes what a call returns.
class FuzzDomain {
 public:
  FuzzDomain();
  ~FuzzDomain();

  kms::MemoryStore store;
  kms::FakeClock clock;
  kms::KeyEventBus events;
  std::unique_ptr<kms::KeyRepository> repository;
  std::unique_ptr<kms::KeyLifecycle> lifecycle;
  std::unique_ptr<kms::Envelope> envelope;
  std::unique_ptr<kms::access::Authenticator> authenticator;
  std::unique_ptr<kms::access::Authorizer> authorizer;
  std::unique_ptr<kms::auth::AnomalyDetector> anomalies;
  std::unique_ptr<kms::access::AuditTrail> audit;
  std::unique_ptr<kms::access::ApprovalBook> approval_book;
  std::unique_ptr<kms::ApprovalGate> approval_gate;
  std::unique_ptr<kms::ImportTokenStore> import_tokens;
  std::unique_ptr<kms::KeyImporter> importer;
  std::unique_ptr<kms::EscrowExporter> escrow;
  std::unique_ptr<kms::KeyManagementService> management;
  std::unique_ptr<kms::KeyAdminService> admin;
  std::unique_ptr<kms::AccessControlService> access_control;
};

}  // namespace clavis::fuzz

#endif  // CLAVIS_TESTS_FUZZ_FUZZ_DOMAIN_H_
