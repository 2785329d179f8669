// Encrypts and decrypts one record through clavisd with the installed SDK.
//
//   app <clavisd host:port> <key name, e.g. tenants/acme/keys/crm>
//
// Prints "round trip ok" and exits 0, or prints the failing status and exits 1.
#include <iostream>
#include <memory>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "clavis/client.h"
#include "clavis/record_encryptor.h"

namespace {

absl::Status RoundTrip(const std::string& endpoint, const std::string& key) {
  clavis::ClientOptions options;
  options.endpoint = endpoint;
  absl::StatusOr<std::unique_ptr<clavis::Client>> client = clavis::Client::Connect(options);
  if (!client.ok()) return client.status();
  std::shared_ptr<clavis::DataKeySource> source = std::move(*client);
  absl::StatusOr<std::unique_ptr<clavis::RecordEncryptor>> encryptor =
      clavis::RecordEncryptor::New(std::move(source), key);
  if (!encryptor.ok()) return encryptor.status();

  const std::string record = "order 1001: 3 x widget, ship to 42 Main St";
  const clavis::EncryptionContext context = {{"customer", "42"}, {"table", "orders"}};
  absl::StatusOr<std::string> sealed = (*encryptor)->Encrypt("example/orders", record, context);
  if (!sealed.ok()) return sealed.status();
  absl::StatusOr<std::string> opened = (*encryptor)->Decrypt(*sealed, context);
  if (!opened.ok()) return opened.status();
  if (*opened != record) return absl::InternalError("decrypted record differs from the original");
  return absl::OkStatus();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: " << argv[0] << " <clavisd host:port> <key name>\n";
    return 2;
  }
  const absl::Status status = RoundTrip(argv[1], argv[2]);
  if (!status.ok()) {
    std::cout << status << "\n";
    return 1;
  }
  std::cout << "round trip ok\n";
  return 0;
}
