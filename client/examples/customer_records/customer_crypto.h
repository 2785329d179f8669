// CustomerCrypto: the Clavis side of the customer records example.
//
// It connects to clavisd (mutual TLS), keeps data keys and the email index
// key in a clavis::DataKeyCache, and runs a clavis::CacheInvalidator for the
// key's tenant, so that disabling or revoking the key empties the cache of a
// running process within about a second. With them it:
//  - seals the personal fields of a customer document, /email, /phone and
//    /card/number (clavis::FieldEncryptor), bound to the customer's id
//    (associated data "customers/<id>"), so a field copied into another
//    customer's row does not decrypt;
//  - computes the blind index tag of an email (clavis::BlindIndex, index
//    "email") over its normalized form, so lookups ignore case and
//    surrounding spaces.
// Every record uses the encryption context {"table": "customers"}, so
// records share data keys within the cache's limits.
//
// Errors are the SDK's, unchanged: FAILED_PRECONDITION when the key or the
// segment is disabled, revoked or being destroyed, PERMISSION_DENIED when the
// key policy does not let this application's principal use the key,
// UNAVAILABLE when clavisd cannot be reached. Nothing here returns or logs
// key material.
//
// Thread safety: immutable after Connect; methods may be called concurrently.
#ifndef CLAVIS_CLIENT_EXAMPLES_CUSTOMER_RECORDS_CUSTOMER_CRYPTO_H_
#define CLAVIS_CLIENT_EXAMPLES_CUSTOMER_RECORDS_CUSTOMER_CRYPTO_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "clavis/blind_index.h"
#include "clavis/cache_invalidator.h"
#include "clavis/client.h"
#include "clavis/data_key_cache.h"
#include "clavis/field_encryptor.h"

namespace customer_records {

struct ClavisSettings {
  std::string endpoint;      // clavisd's host:port
  std::string ca_cert_file;  // PEM CA certificate of clavisd; empty: plaintext (loopback only)
  std::string cert_file;     // this application's client certificate (PEM)
  std::string key_file;      // its private key (PEM)
  std::string key;           // tenants/{t}/keys/{k}
  std::string segment;       // e.g. acme/customers
};

// The tenant of a key name: "tenants/acme" for "tenants/acme/keys/crm".
// InvalidArgument for anything else.
absl::StatusOr<std::string> TenantOfKey(absl::string_view key);

// The form of an email that is indexed: without surrounding white space,
// ASCII letters lower-cased.
std::string NormalizeEmail(absl::string_view email);

class CustomerCrypto {
 public:
  // Reads the PEM files, connects and starts the invalidator, whose event
  // stream is the only call made here (an unreachable server shows up on the
  // first operation). InvalidArgument for a bad key name or credential
  // option, NotFound for an unreadable file.
  static absl::StatusOr<std::unique_ptr<CustomerCrypto>> Connect(const ClavisSettings& settings);
  ~CustomerCrypto();
  CustomerCrypto(const CustomerCrypto&) = delete;
  CustomerCrypto& operator=(const CustomerCrypto&) = delete;

  // `document` (JSON) with its personal fields encrypted, for customer `id`.
  absl::StatusOr<std::string> SealDocument(int64_t id, absl::string_view document) const;
  // The stored document of customer `id` with its fields decrypted.
  absl::StatusOr<std::string> OpenDocument(int64_t id, absl::string_view stored) const;
  // The email's blind index tag, 64 lower-case hex digits.
  absl::StatusOr<std::string> EmailTag(absl::string_view email) const;

 private:
  CustomerCrypto() = default;

  // Declared in the order they are built; destroyed in reverse, so the
  // invalidator stops before the client it uses goes away.
  std::shared_ptr<clavis::Client> client_;
  std::shared_ptr<clavis::DataKeyCache> cache_;
  std::unique_ptr<clavis::FieldEncryptor> fields_;
  std::unique_ptr<clavis::BlindIndex> email_index_;
  std::unique_ptr<clavis::CacheInvalidator> invalidator_;
  std::string segment_;
};

}  // namespace customer_records

#endif  // CLAVIS_CLIENT_EXAMPLES_CUSTOMER_RECORDS_CUSTOMER_CRYPTO_H_
