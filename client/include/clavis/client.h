// clavis::Client: the SDK's connection to clavisd's KeyManagement API (the
// data plane, proto/clavis/v1/key_management.proto).
//
//   clavis::ClientOptions options;
//   options.endpoint = "127.0.0.1:7443";
//   auto client = clavis::Client::Connect(options);
//   if (!client.ok()) return client.status();
//   absl::StatusOr<clavis::DataKey> dk = (*client)->GenerateDataKey(
//       "tenants/acme/keys/crm", "acme/orders/2026-11", {{"customer", "42"}});
//
// Most applications do not call it directly: they pass it to a
// RecordEncryptor (clavis/record_encryptor.h) as its DataKeySource.
//
// Every call has a deadline (ClientOptions::call_timeout, per attempt) and is
// retried, with exponential backoff and jitter, only when it fails with
// UNAVAILABLE (the server could not be reached or is shutting down): every
// data-plane call is safe to repeat, and no other failure gets better by
// trying again. A call that ran out of attempts returns the last UNAVAILABLE
// status, saying how many attempts were made. Failures keep the server's
// status code; messages never contain key bytes or context values.
//
// Thread safety: a Client is immutable after Connect and safe to use from
// many threads at once; one Client (one HTTP/2 channel) per process is the
// intended use.
#ifndef CLAVIS_CLIENT_INCLUDE_CLAVIS_CLIENT_H_
#define CLAVIS_CLIENT_INCLUDE_CLAVIS_CLIENT_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "clavis/data_key_source.h"
#include "clavis/encryption_context.h"
#include "clavis/secret_bytes.h"

namespace clavis {

struct ClientOptions {
  // "host:port" of clavisd, or several replicas as a comma-separated list
  // of IP addresses of one family ("10.0.0.1:7443,10.0.0.2:7443"), tried in
  // order: a connection goes to the first that answers and fails over to the
  // next when it goes away. (For names, give one DNS name that resolves to
  // every replica.) Without TLS (tls_ca_pem empty) only loopback hosts
  // (127.0.0.0/8, ::1, localhost) are accepted, because data keys would
  // otherwise cross the network in the clear. With TLS and several
  // addresses, tls_server_name is required.
  std::string endpoint;

  // ---- Transport security and credentials (docs/ACCESS.md) ----
  // PEM CA certificate(s) that signed clavisd's certificate: connect with TLS.
  std::string tls_ca_pem;
  // mTLS: this application's client certificate (PEM chain) and private key
  // (PEM). The key is copied into gRPC; wipe your copy after Connect.
  std::string tls_client_cert_pem;
  std::string tls_client_key_pem;
  // The name to verify in clavisd's certificate when it differs from the
  // endpoint's host (e.g. dialling an IP address).
  std::string tls_server_name;
  // A service token, sent as `authorization: Bearer <token>` with every
  // call; called before each attempt, so it can return a refreshed token.
  // Requires TLS unless the endpoint is loopback.
  std::function<std::string()> token_source;
  // Deadline of each attempt of a call.
  absl::Duration call_timeout = absl::Seconds(10);
  // Attempts per call, the first included (1 = never retry); 1..10.
  int max_attempts = 4;
  // Backoff before retry n (n = 1, 2, ...): a uniformly random duration in
  // [b/2, b] with b = min(max_backoff, initial_backoff * multiplier^(n-1)).
  // The jitter keeps many clients from retrying in lockstep.
  absl::Duration initial_backoff = absl::Milliseconds(100);
  absl::Duration max_backoff = absl::Seconds(5);
  double backoff_multiplier = 2.0;
  // Items per BatchDecrypt RPC (BatchDecryptDataKeys splits larger batches);
  // must not exceed clavisd's --max_batch_items (default 1000). 1..10000.
  int max_batch_items = 1000;
};

// A key state change from clavisd's WatchKeyEvents stream.
struct KeyEventInfo {
  // The names of clavis.v1.KeyEvent.Type ("DISABLED", "SEGMENT_REVOKED",
  // ...), or "REDACTED" for an event of a key the caller may not watch.
  std::string type;
  std::string key;        // tenants/{t}/keys/{k}; empty when redacted
  std::string segment;    // segment events
  uint32_t version = 0;   // key version events
  uint64_t sequence = 0;  // per tenant, +1 per event while the server runs
};

// A running WatchKeyEvents subscription; destroying it stops it (and waits
// for its thread).
class KeyEventSubscription {
 public:
  virtual ~KeyEventSubscription() = default;
  // Whether the stream is established now.
  virtual bool connected() const = 0;
};

// One item of BatchDecrypt.
struct DecryptItem {
  std::string ciphertext_blob;
  EncryptionContext context;
  // Optional: the key the blob must belong to ("tenants/{t}/keys/{k}").
  std::string key;
};

class Client : public DataKeySource {
 public:
  // Checks `options` (InvalidArgument naming the bad field) and sets up the
  // channel. Does not contact the server: an unreachable server shows up as
  // UNAVAILABLE on the first call.
  static absl::StatusOr<std::unique_ptr<Client>> Connect(const ClientOptions& options);

  // Waits up to 2 s for a connection attempt still in progress, then for
  // gRPC's own clean-up when this was the process' last gRPC user (not
  // bounded by us, normally milliseconds), so that a process may exit right
  // after it.
  ~Client() override;
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // A fresh 32-byte data key, in plaintext and as the server's ciphertext
  // blob, bound to `key`, `segment` and `context`.
  absl::StatusOr<DataKey> GenerateDataKey(absl::string_view key, absl::string_view segment,
                                          const EncryptionContext& context) override;

  // The data key of a blob made for `key` and `segment` with `context`; the
  // server refuses a blob of another key, and the client a blob of another
  // segment (InvalidArgument).
  absl::StatusOr<SecretBytes> DecryptDataKey(absl::string_view key, absl::string_view segment,
                                             absl::string_view ciphertext_blob,
                                             const EncryptionContext& context) override;

  // The plaintext of any ciphertext blob (a data key or an Encrypt result),
  // which must have been bound to `context`. A key's being disabled or
  // revoked gives FAILED_PRECONDITION; a wrong context or altered blob
  // INVALID_ARGUMENT("decryption failed ...").
  absl::StatusOr<SecretBytes> Decrypt(absl::string_view ciphertext_blob,
                                      const EncryptionContext& context);

  // Decrypts many blobs in one round trip. The outer status is the call's
  // (e.g. UNAVAILABLE after the last attempt); on success there is one result
  // per item, in order, each failing or succeeding on its own.
  absl::StatusOr<std::vector<absl::StatusOr<SecretBytes>>> BatchDecrypt(
      absl::Span<const DecryptItem> items);

  // DataKeySource::BatchDecryptDataKeys over BatchDecrypt RPCs of up to
  // ClientOptions::max_batch_items each. Each result is checked like
  // DecryptDataKey's (the server must report the requested key and segment).
  std::vector<absl::StatusOr<SecretBytes>> BatchDecryptDataKeys(
      absl::Span<const DataKeyRequest> requests) override;

  // The DeriveBlindIndexKey RPC (see DataKeySource).
  absl::StatusOr<SecretBytes> DeriveBlindIndexKey(absl::string_view key, absl::string_view segment,
                                                  absl::string_view index) override;

  // Follows WatchKeyEvents of `tenant` ("tenants/{t}") in a background
  // thread until the subscription is destroyed. `on_event` gets each event;
  // `on_connection` is called with true each time the stream is (re)
  // established (events may have been missed before it: treat it as "resync")
  // and with false and the reason each time it breaks. A broken stream is
  // re-opened with the client's backoff (at most max_backoff apart), forever.
  // Both callbacks run on the subscription's thread, one at a time, and must
  // not destroy the subscription, which must not outlive this Client. Needs
  // the WatchKeyEvents permission; keys
  // the caller may not watch arrive as "REDACTED" events.
  // Counters since Connect, e.g. for metrics: RPCs made (a call retried
  // three times counts once in `calls` and three times in `attempts`).
  struct Stats {
    uint64_t calls = 0;
    uint64_t attempts = 0;
  };
  Stats stats() const;

  std::unique_ptr<KeyEventSubscription> WatchKeyEvents(
      std::string tenant, std::function<void(const KeyEventInfo&)> on_event,
      std::function<void(bool connected, const absl::Status& why)> on_connection);

  // Internal: the gRPC channel and stub (keeps gRPC out of this header).
  struct Rep;

 private:
  explicit Client(std::unique_ptr<Rep> rep);

  const std::unique_ptr<Rep> rep_;
};

}  // namespace clavis

#endif  // CLAVIS_CLIENT_INCLUDE_CLAVIS_CLIENT_H_
