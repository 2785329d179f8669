// ClientOptions with which the C++ SDK reaches a harness clavisd as a given
// principal over mTLS (the principal's client certificate, issued on first
// use by the harness CA). Header-only: the harness library does not link the
// SDK; tests that use the SDK do.
#ifndef CLAVIS_TESTS_HARNESS_SDK_OPTIONS_H_
#define CLAVIS_TESTS_HARNESS_SDK_OPTIONS_H_

#include <fstream>
#include <sstream>
#include <string>

#include "clavis/client.h"
#include "tests/harness/clavisd_process.h"

namespace clavis::testing {

// The whole file, or "" if it cannot be read.
inline std::string ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Certificates of `principal` (default: the acme tenant's admin); endpoint
// `endpoint` (default: the harness clavisd's address). Deadlines and
// backoffs short enough for tests.
inline ClientOptions SdkClientOptions(ClavisdProcess& clavisd,
                                      const std::string& principal = PrincipalName("acme"),
                                      const std::string& endpoint = "") {
  ClientOptions options;
  options.endpoint = endpoint.empty() ? clavisd.address() : endpoint;
  options.call_timeout = absl::Seconds(10);
  options.initial_backoff = absl::Milliseconds(20);
  options.max_backoff = absl::Milliseconds(200);
  const std::string prefix = clavisd.client_cert_prefix(principal);
  options.tls_ca_pem = ReadWholeFile(clavisd.ca_cert_file());
  options.tls_client_cert_pem = ReadWholeFile(prefix + ".crt");
  options.tls_client_key_pem = ReadWholeFile(prefix + ".key");
  options.tls_server_name = "localhost";
  return options;
}

}  // namespace clavis::testing

#endif  // CLAVIS_TESTS_HARNESS_SDK_OPTIONS_H_
