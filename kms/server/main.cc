// clavisd: the Clavis key service. See docs/clavisd.md.
#include <signal.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/synchronization/mutex.h"
#include "crypto/secure_heap.h"
#include "kms/server/process_hardening.h"
#include "kms/server/server.h"
#include "spdlog/spdlog.h"

namespace {

using clavis::server::ServerConfig;

constexpr char kFooter[] = R"(Examples:
  clavisd --insecure_dev_no_auth            # dev: ./clavis-data, key-file root key, 127.0.0.1:7370,
                                            #      no authentication (loopback only)
  clavisd --tls_cert_file pki/server.crt --tls_key_file pki/server.key \
          --client_ca_file pki/ca.crt --tenant_admin tenants/acme/principals/admin   # mTLS
  clavisd --data_dir /var/lib/clavis --root_key passphrase   # passphrase from $CLAVIS_ROOT_PASSPHRASE
  clavisd --data_dir /var/lib/clavis --root_key pkcs11 --pkcs11_module /usr/lib/softhsm/libsofthsm2.so \
          --pkcs11_token_label clavis-root --pkcs11_key_label clavis-root-key   # HSM; PIN from $CLAVIS_PKCS11_PIN
  clavisd --config /etc/clavis/clavisd.json --log_level debug
  clavisd --storage_backend etcd --etcd_endpoints 10.0.0.1:2379,10.0.0.2:2379,10.0.0.3:2379 \
          --root_key passphrase ...         # keys in etcd (docs/ETCD.md); root key and audit
                                            # log still in --data_dir
  clavisd --restore_from clavis.backup --data_dir /var/lib/clavis-new --root_key passphrase
                                            # offline restore into a new directory, then exit

Signals: SIGTERM or SIGINT stop accepting calls, let in-flight calls finish and close the store.)";

absl::Status LoadConfigFile(const std::string& path, ServerConfig* config) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError("cannot read config file " + path);
  std::stringstream text;
  text << in.rdbuf();
  auto parsed = clavis::kms::ParseConfigJson(text.str());
  if (!parsed.ok()) {
    return absl::InvalidArgumentError("config file " + path + ": " +
                                      std::string(parsed.status().message()));
  }
  *config = *std::move(parsed);
  return absl::OkStatus();
}

}  // namespace

int main(int argc, char** argv) {
#ifdef NDEBUG
  // Abseil's mutex deadlock detection records every lock in a global graph:
  // a measurable share of each call's CPU (bench/load). Release builds turn
  // it off; debug and sanitizer builds keep it.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
#endif
  CLI::App app{"clavisd: the Clavis key service (tenant master keys, segment keys, data keys)"};
  app.footer(kFooter);
  app.set_version_flag("--version", std::string("clavisd ") + clavis::kms::ServerVersion());
  std::string config_path, listen_address, data_dir, root_key, root_key_file, passphrase_file,
      passphrase_env, log_level, log_format, port_file;
  bool dev_short_windows = false, no_create = false, insecure_dev_no_auth = false,
       require_client_cert = false, audit_sync = false;
  std::string tls_cert, tls_key, client_ca, token_issuers, token_audience, token_revocation,
      audit_dir;
  std::vector<std::string> tenant_admins;
  double rate_limit_rps = 0;
  uint32_t import_token_ttl_s = 0;
  uint32_t key_cache = 0, segment_cache = 0, max_batch = 0;
  app.add_option("--config", config_path, "JSON config file (ServerConfig, docs/clavisd.md)");
  app.add_option("--listen_address", listen_address,
                 "host:port to listen on (default 127.0.0.1:7370; loopback only)");
  app.add_option("--data_dir", data_dir, "data directory (default ./clavis-data)");
  app.add_option("--root_key", root_key,
                 "root of trust: key_file (dev, default), passphrase or pkcs11 (an HSM)")
      ->check(CLI::IsMember({"key_file", "passphrase", "pkcs11"}));
  app.add_option("--root_key_file", root_key_file, "key file path (default <data_dir>/root.key)");
  app.add_option("--passphrase_file", passphrase_file, "read the root passphrase from this file");
  app.add_option("--passphrase_env", passphrase_env,
                 "read the root passphrase from this variable (default CLAVIS_ROOT_PASSPHRASE)");
  std::string pkcs11_module, pkcs11_token_label, pkcs11_key_label, pkcs11_pin_file, pkcs11_pin_env;
  bool pkcs11_create_key = false;
  app.add_option("--pkcs11_module", pkcs11_module,
                 "pkcs11 root key: the PKCS#11 module, e.g. /usr/lib/softhsm/libsofthsm2.so");
  app.add_option("--pkcs11_token_label", pkcs11_token_label,
                 "pkcs11 root key: label of the token holding the root key");
  app.add_option("--pkcs11_key_label", pkcs11_key_label,
                 "pkcs11 root key: CKA_LABEL of the AES-256 root key in the token");
  app.add_option("--pkcs11_pin_file", pkcs11_pin_file,
                 "pkcs11 root key: read the token's user PIN from this file (first line)");
  app.add_option("--pkcs11_pin_env", pkcs11_pin_env,
                 "pkcs11 root key: read the PIN from this variable (default CLAVIS_PKCS11_PIN; "
                 "cleared after reading)");
  app.add_flag("--pkcs11_create_key", pkcs11_create_key,
               "pkcs11 root key: generate the key inside the token if it is missing (first "
               "start only)");
  app.add_flag("--insecure_dev_short_windows", dev_short_windows,
               "allow destruction windows and rotation periods of seconds (tests only)");
  app.add_option("--key_cache_entries", key_cache, "master keys kept unwrapped (default 10000)");
  app.add_option("--segment_cache_entries", segment_cache,
                 "segment keys kept unwrapped (default 100000)");
  app.add_option("--max_batch_items", max_batch, "items per batch call (default 1000)");
  app.add_option("--log_level", log_level, "trace, debug, info, warn, error");
  app.add_option("--log_format", log_format,
                 "text (default) or json: one JSON object per line (time, level, logger, msg)");
  app.add_option("--port_file", port_file, "write the bound port to this file");
  app.add_flag("--no_create", no_create, "refuse to start on a missing data directory or root key");
  std::string verify_storage_at_start;
  app.add_option("--verify_storage_at_start", verify_storage_at_start,
                 "check every data file checksum at start-up: true (default) or false")
      ->check(CLI::IsMember({"true", "false"}));
  app.add_flag("--insecure_dev_no_auth", insecure_dev_no_auth,
               "DEVELOPMENT ONLY: no authentication, every caller may do everything (loopback "
               "addresses only)");
  app.add_option("--tls_cert_file", tls_cert, "PEM server certificate: serve TLS");
  app.add_option("--tls_key_file", tls_key, "PEM private key of the server certificate");
  app.add_option("--client_ca_file", client_ca,
                 "PEM CA of client certificates: enables mTLS (principal from the certificate)");
  app.add_flag("--require_client_certificate", require_client_cert,
               "refuse TLS connections without a valid client certificate");
  app.add_option("--token_issuers_file", token_issuers,
                 "trusted service-token issuers, lines of \"<key_id> <base64 public key>\"");
  app.add_option("--token_audience", token_audience, "the audience service tokens must name");
  app.add_option("--token_revocation_file", token_revocation,
                 "revoked token ids, one per line (re-read when it changes)");
  app.add_option("--tenant_admin", tenant_admins,
                 "principal or group administering its tenant (repeatable): create/list keys");
  std::vector<std::string> backup_operators;
  app.add_option("--backup_operator", backup_operators,
                 "principal or group (any tenant) allowed to take backups of the whole store "
                 "(repeatable; default nobody)");
  std::string restore_from;
  app.add_option("--restore_from", restore_from,
                 "restore this backup file into --data_dir (new or empty), with the root key "
                 "flags it was made under, then exit (docs/BACKUP.md)");
  app.add_option("--audit_dir", audit_dir, "audit log directory (default <data_dir>/audit)");
  app.add_flag("--audit_sync_every_record", audit_sync,
               "fsync the audit log before every answer (default: group commit every 100 ms)");
  app.add_option("--import_token_ttl_s", import_token_ttl_s,
                 "lifetime of BYOK import tokens and their RSA keys, seconds (default 86400)");
  app.add_option("--rate_limit_rps", rate_limit_rps,
                 "requests per second per principal (default 1000, burst 2x)");
  uint32_t max_calls_per_principal = 0, max_streams_per_principal = 0, max_stream_lifetime_s = 0;
  app.add_option("--max_calls_per_principal", max_calls_per_principal,
                 "unary calls one principal may have in progress (default 64; more: "
                 "RESOURCE_EXHAUSTED)");
  app.add_option("--max_streams_per_principal", max_streams_per_principal,
                 "streams (WatchKeyEvents, ExportEscrow, CreateBackup) one principal may have "
                 "open (default 16)");
  app.add_option("--max_stream_lifetime_s", max_stream_lifetime_s,
                 "a WatchKeyEvents stream ends after this many seconds; clients re-open it "
                 "(default 3600)");
  std::string storage_backend, etcd_key_prefix, etcd_ca_file, etcd_cert_file, etcd_key_file,
      etcd_server_name;
  std::vector<std::string> etcd_endpoints;
  uint32_t etcd_request_timeout_ms = 0;
  app.add_option("--storage_backend", storage_backend,
                 "where keys are stored: rocksdb (default, <data_dir>/db) or etcd (docs/ETCD.md)");
  app.add_option("--etcd_endpoints", etcd_endpoints,
                 "etcd client endpoints, comma-separated: host:port, http://... or https://...")
      ->delimiter(',');
  app.add_option("--etcd_key_prefix", etcd_key_prefix,
                 "prefix of every clavisd key in etcd (default /clavis/)");
  app.add_option("--etcd_request_timeout_ms", etcd_request_timeout_ms,
                 "deadline of every etcd call (default 5000)");
  app.add_option("--etcd_ca_file", etcd_ca_file, "PEM CA of the etcd server certificates: TLS");
  app.add_option("--etcd_cert_file", etcd_cert_file, "PEM client certificate for etcd");
  app.add_option("--etcd_key_file", etcd_key_file, "PEM private key of --etcd_cert_file");
  app.add_option("--etcd_server_name", etcd_server_name,
                 "name to verify in etcd's server certificates (default: the endpoint's host)");
  bool allow_shared_secret_files = false;
  app.add_flag("--insecure_allow_shared_secret_files", allow_shared_secret_files,
               "accept key/secret files that group or others can read or another user owns "
               "(containers that mount secrets so); logged as a warning at every start");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  // Before anything secret is read: a core file would hold unwrapped keys.
  if (auto s = clavis::hardening::DisableCoreDumps(); !s.ok()) {
    std::fprintf(stderr, "clavisd: %s\n", std::string(s.message()).c_str());
    return 1;
  }

  ServerConfig config;
  if (!config_path.empty()) {
    // The config decides everything, whom to trust included: nobody else
    // may write it (only the flag can relax that, not the file itself).
    clavis::hardening::PermissionOptions config_permissions;
    config_permissions.allow_shared_secret_files = allow_shared_secret_files;
    if (auto s = clavis::hardening::CheckTrustFile(config_path, "config file", config_permissions);
        !s.ok()) {
      std::fprintf(stderr, "clavisd: %s\n", std::string(s.message()).c_str());
      return 1;
    }
    if (auto s = LoadConfigFile(config_path, &config); !s.ok()) {
      std::fprintf(stderr, "clavisd: %s\n", std::string(s.message()).c_str());
      return 2;
    }
  }
  // Parsing a config file starts from an empty message, so the default is
  // applied after it: a file that does not say otherwise creates.
  if (!config.has_create_if_missing()) config.set_create_if_missing(true);
  if (!listen_address.empty()) config.set_listen_address(listen_address);
  if (!data_dir.empty()) config.set_data_dir(data_dir);
  const bool pkcs11_flags = !pkcs11_module.empty() || !pkcs11_token_label.empty() ||
                            !pkcs11_key_label.empty() || !pkcs11_pin_file.empty() ||
                            !pkcs11_pin_env.empty() || pkcs11_create_key;
  if (pkcs11_flags && !root_key.empty() && root_key != "pkcs11") {
    std::fprintf(stderr, "clavisd: the --pkcs11_* flags go with --root_key pkcs11\n");
    return 2;
  }
  if (root_key == "pkcs11" || pkcs11_flags) {
    // Flags override the config file's fields one by one.
    auto* p = config.mutable_root_key()->mutable_pkcs11();
    if (!pkcs11_module.empty()) p->set_module_path(pkcs11_module);
    if (!pkcs11_token_label.empty()) p->set_token_label(pkcs11_token_label);
    if (!pkcs11_key_label.empty()) p->set_key_label(pkcs11_key_label);
    if (!pkcs11_pin_file.empty()) p->set_pin_file(pkcs11_pin_file);
    if (!pkcs11_pin_env.empty()) p->set_pin_env(pkcs11_pin_env);
    if (pkcs11_create_key) p->set_create_key_if_missing(true);
  } else if (root_key == "passphrase" || !passphrase_file.empty() || !passphrase_env.empty()) {
    auto* p = config.mutable_root_key()->mutable_passphrase();
    if (!passphrase_file.empty()) p->set_passphrase_file(passphrase_file);
    if (!passphrase_env.empty()) p->set_passphrase_env(passphrase_env);
  } else if (root_key == "key_file" || !root_key_file.empty()) {
    config.mutable_root_key()->mutable_key_file()->set_path(root_key_file);
  }
  if (dev_short_windows) config.set_insecure_dev_short_windows(true);
  if (key_cache != 0) config.set_key_cache_entries(key_cache);
  if (segment_cache != 0) config.set_segment_cache_entries(segment_cache);
  if (max_batch != 0) config.set_max_batch_items(max_batch);
  if (!log_level.empty()) config.set_log_level(log_level);
  if (!log_format.empty()) config.set_log_format(log_format);
  if (!port_file.empty()) config.set_port_file(port_file);
  if (no_create) config.set_create_if_missing(false);
  if (!verify_storage_at_start.empty()) {
    config.set_verify_storage_at_start(verify_storage_at_start == "true");
  }
  if (insecure_dev_no_auth) config.set_insecure_dev_no_auth(true);
  if (!tls_cert.empty()) config.mutable_tls()->set_cert_file(tls_cert);
  if (!tls_key.empty()) config.mutable_tls()->set_key_file(tls_key);
  if (!client_ca.empty()) config.mutable_tls()->set_client_ca_file(client_ca);
  if (require_client_cert) config.mutable_tls()->set_require_client_certificate(true);
  if (!token_issuers.empty()) config.mutable_tokens()->set_issuers_file(token_issuers);
  if (!token_audience.empty()) config.mutable_tokens()->set_audience(token_audience);
  if (!token_revocation.empty()) config.mutable_tokens()->set_revocation_file(token_revocation);
  for (const auto& admin : tenant_admins) config.add_tenant_admins(admin);
  for (const auto& op : backup_operators) config.add_backup_operators(op);
  if (!audit_dir.empty()) config.mutable_audit()->set_dir(audit_dir);
  if (audit_sync) config.mutable_audit()->set_sync_every_record(true);
  if (rate_limit_rps > 0) config.mutable_rate_limit()->set_requests_per_second(rate_limit_rps);
  if (allow_shared_secret_files) config.set_insecure_allow_shared_secret_files(true);
  if (max_calls_per_principal > 0) {
    config.mutable_limits()->set_max_calls_per_principal(max_calls_per_principal);
  }
  if (max_streams_per_principal > 0) {
    config.mutable_limits()->set_max_streams_per_principal(max_streams_per_principal);
  }
  if (max_stream_lifetime_s > 0) {
    config.mutable_limits()->set_max_stream_lifetime_s(max_stream_lifetime_s);
  }
  if (import_token_ttl_s > 0) config.set_import_token_ttl_s(import_token_ttl_s);
  if (!storage_backend.empty()) config.mutable_storage()->set_backend(storage_backend);
  {
    auto* etcd = config.mutable_storage()->mutable_etcd();
    if (!etcd_endpoints.empty()) {
      etcd->clear_endpoints();
      for (const auto& endpoint : etcd_endpoints) etcd->add_endpoints(endpoint);
    }
    if (!etcd_key_prefix.empty()) etcd->set_key_prefix(etcd_key_prefix);
    if (etcd_request_timeout_ms > 0) etcd->set_request_timeout_ms(etcd_request_timeout_ms);
    if (!etcd_ca_file.empty()) etcd->set_ca_file(etcd_ca_file);
    if (!etcd_cert_file.empty()) etcd->set_cert_file(etcd_cert_file);
    if (!etcd_key_file.empty()) etcd->set_key_file(etcd_key_file);
    if (!etcd_server_name.empty()) etcd->set_server_name(etcd_server_name);
    // An etcd message with nothing in it is no etcd setting at all.
    if (etcd->ByteSizeLong() == 0) config.mutable_storage()->clear_etcd();
    if (config.storage().ByteSizeLong() == 0) config.clear_storage();
  }

  if (!restore_from.empty()) {
    auto restored = clavis::kms::RestoreDataDirectory(config, restore_from);
    if (!restored.ok()) {
      std::fprintf(stderr, "clavisd: restore failed: %s\n",
                   std::string(restored.status().message()).c_str());
      return 1;
    }
    std::printf("%s\n", restored->c_str());
    return 0;
  }

  // Signals are taken by one thread with sigwait, so the handler can do real
  // work (a clean gRPC shutdown) instead of async-signal-safe tricks.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  // The RSA private keys of BYOK imports are made in OpenSSL's secure heap
  // (locked, cleared when freed); without the lock they still work.
  if (auto s = clavis::crypto::InitSecureHeap(4 << 20); !s.ok()) {
    spdlog::warn("{}", std::string(s.message()));
  }
  auto server = clavis::kms::Server::BuildAndStart(config);
  if (!server.ok()) {
    spdlog::error("clavisd cannot start: {}", std::string(server.status().message()));
    return 1;
  }
  std::thread signal_thread([&] {
    int sig = 0;
    sigwait(&signals, &sig);
    spdlog::info("received {}", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    (*server)->Shutdown(absl::Seconds(10));
  });
  (*server)->Wait();
  signal_thread.join();
  server->reset();
  spdlog::info("clavisd stopped");
  return 0;
}
