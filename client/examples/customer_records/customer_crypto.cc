#include "client/examples/customer_records/customer_crypto.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "clavis/record_encryptor.h"
#include "clavis/secret_bytes.h"

namespace customer_records {
namespace {

// The fields of a customer document that hold personal data. The document
// is built in main.cc: {"email": ..., "phone": ..., "card": {"number": ...}}.
const std::vector<std::string>& PersonalFields() {
  static const auto* const fields =
      new std::vector<std::string>{"/email", "/phone", "/card/number"};
  return *fields;
}

const clavis::EncryptionContext& Context() {
  static const auto* const context = new clavis::EncryptionContext{{"table", "customers"}};
  return *context;
}

std::string AssociatedData(int64_t id) { return absl::StrCat("customers/", id); }

// The whole file, read with one allocation of its size, so that a private
// key leaves no stray copies behind when the string is wiped.
absl::StatusOr<std::string> ReadFile(const std::string& path, absl::string_view option) {
  FILE* f = std::fopen(path.c_str(), "rb");
  struct stat st;
  if (f == nullptr || ::fstat(::fileno(f), &st) != 0) {
    const int error = errno;
    if (f != nullptr) std::fclose(f);
    return absl::NotFoundError(
        absl::StrCat("cannot read ", option, " file ", path, ": ", std::strerror(error)));
  }
  std::string contents(static_cast<size_t>(st.st_size), '\0');
  const size_t n = std::fread(contents.data(), 1, contents.size(), f);
  std::fclose(f);
  if (n != contents.size()) {
    clavis::crypto::SecureWipe(contents.data(), contents.size());
    return absl::NotFoundError(absl::StrCat("cannot read ", option, " file ", path));
  }
  return contents;
}

absl::StatusOr<clavis::ClientOptions> MakeClientOptions(const ClavisSettings& settings) {
  clavis::ClientOptions options;
  options.endpoint = settings.endpoint;
  if (settings.cert_file.empty() != settings.key_file.empty()) {
    return absl::InvalidArgumentError("--cert and --key go together");
  }
  if (!settings.cert_file.empty() && settings.ca_cert_file.empty()) {
    return absl::InvalidArgumentError("--cert and --key need --ca-cert");
  }
  if (!settings.ca_cert_file.empty()) {
    absl::StatusOr<std::string> ca = ReadFile(settings.ca_cert_file, "--ca-cert");
    if (!ca.ok()) return ca.status();
    options.tls_ca_pem = *std::move(ca);
  }
  if (!settings.cert_file.empty()) {
    absl::StatusOr<std::string> cert = ReadFile(settings.cert_file, "--cert");
    if (!cert.ok()) return cert.status();
    options.tls_client_cert_pem = *std::move(cert);
    absl::StatusOr<std::string> key = ReadFile(settings.key_file, "--key");
    if (!key.ok()) return key.status();
    options.tls_client_key_pem = *std::move(key);
  }
  return options;
}

}  // namespace

absl::StatusOr<std::string> TenantOfKey(absl::string_view key) {
  std::vector<absl::string_view> parts = absl::StrSplit(key, '/');
  if (parts.size() != 4 || parts[0] != "tenants" || parts[1].empty() || parts[2] != "keys" ||
      parts[3].empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--clavis-key \"", key, "\" is not a key name (tenants/{t}/keys/{k})"));
  }
  return absl::StrCat("tenants/", parts[1]);
}

std::string NormalizeEmail(absl::string_view email) {
  return absl::AsciiStrToLower(absl::StripAsciiWhitespace(email));
}

absl::StatusOr<std::unique_ptr<CustomerCrypto>> CustomerCrypto::Connect(
    const ClavisSettings& settings) {
  absl::StatusOr<std::string> tenant = TenantOfKey(settings.key);
  if (!tenant.ok()) return tenant.status();
  absl::StatusOr<clavis::ClientOptions> options = MakeClientOptions(settings);
  if (!options.ok()) return options.status();
  absl::StatusOr<std::unique_ptr<clavis::Client>> client = clavis::Client::Connect(*options);
  // gRPC has its own copy of the private key now.
  clavis::crypto::SecureWipe(options->tls_client_key_pem.data(),
                             options->tls_client_key_pem.size());
  if (!client.ok()) return client.status();

  auto crypto = std::unique_ptr<CustomerCrypto>(new CustomerCrypto());
  crypto->client_ = *std::move(client);
  crypto->segment_ = settings.segment;

  absl::StatusOr<std::shared_ptr<clavis::DataKeyCache>> cache =
      clavis::DataKeyCache::New(crypto->client_);
  if (!cache.ok()) return cache.status();
  crypto->cache_ = *std::move(cache);

  absl::StatusOr<std::unique_ptr<clavis::RecordEncryptor>> records =
      clavis::RecordEncryptor::New(crypto->cache_, settings.key);
  if (!records.ok()) return records.status();
  absl::StatusOr<std::unique_ptr<clavis::FieldEncryptor>> fields =
      clavis::FieldEncryptor::New(*std::move(records), PersonalFields());
  if (!fields.ok()) return fields.status();
  crypto->fields_ = *std::move(fields);

  absl::StatusOr<std::unique_ptr<clavis::BlindIndex>> email_index =
      clavis::BlindIndex::New(crypto->cache_, settings.key, "email");
  if (!email_index.ok()) return email_index.status();
  crypto->email_index_ = *std::move(email_index);

  absl::StatusOr<std::unique_ptr<clavis::CacheInvalidator>> invalidator =
      clavis::CacheInvalidator::Start(crypto->client_, crypto->cache_, {*tenant});
  if (!invalidator.ok()) return invalidator.status();
  crypto->invalidator_ = *std::move(invalidator);
  return crypto;
}

CustomerCrypto::~CustomerCrypto() = default;

absl::StatusOr<std::string> CustomerCrypto::SealDocument(int64_t id,
                                                         absl::string_view document) const {
  return fields_->EncryptFields(segment_, document, Context(), AssociatedData(id));
}

absl::StatusOr<std::string> CustomerCrypto::OpenDocument(int64_t id,
                                                         absl::string_view stored) const {
  return fields_->DecryptFields(stored, Context(), AssociatedData(id));
}

absl::StatusOr<std::string> CustomerCrypto::EmailTag(absl::string_view email) const {
  return email_index_->ComputeHex(segment_, NormalizeEmail(email));
}

}  // namespace customer_records
