// revocation_client: one application process of
// tests/integration/revocation_test.cc. It connects with the C++ SDK (mTLS),
// keeps a DataKeyCache with a CacheInvalidator (default max_age of five
// minutes: only the invalidator can make revocation reach it in time), seals
// one record in each of two segments, and then decrypts in a loop, each
// record both through the SDK (served from the warm cache) and as a blob
// through the server's Decrypt RPC, until stdin is closed. It prints one
// line per attempt, stamped with CLOCK_MONOTONIC (system-wide on Linux, so
// comparable with the test's clock) taken when the attempt returned:
//
//   READY
//   OK <sdk|server> <segment> <monotonic ns>
//   FAIL <sdk|server> <segment> <monotonic ns> <status code>
//   DONE <attempts>
//
// READY comes once every path succeeded and the invalidator is connected.
//
// Usage: revocation_client ENDPOINT CA_FILE CERT_PREFIX KEY SEGMENT...
// (CERT_PREFIX.crt and CERT_PREFIX.key: the principal's client certificate.)
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "clavis/cache_invalidator.h"
#include "clavis/client.h"
#include "clavis/data_key_cache.h"
#include "clavis/record_encryptor.h"

namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

int64_t MonotonicNs() {
  timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

// One line per attempt; true if it succeeded.
bool Report(const char* path, const std::string& segment, const absl::Status& status) {
  const int64_t now = MonotonicNs();
  if (status.ok()) {
    std::printf("OK %s %s %lld\n", path, segment.c_str(), static_cast<long long>(now));
  } else {
    std::printf("FAIL %s %s %lld %d\n", path, segment.c_str(), static_cast<long long>(now),
                static_cast<int>(status.code()));
  }
  return status.ok();
}

struct Target {
  std::string segment;
  std::string sealed;  // an SDK record (RecordEncryptor)
  std::string blob;    // a data key's ciphertext blob, for the Decrypt RPC
};

}  // namespace

int main(int argc, char** argv) {
  if (argc < 6) {
    std::fprintf(stderr, "usage: %s ENDPOINT CA_FILE CERT_PREFIX KEY SEGMENT...\n", argv[0]);
    return 2;
  }
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  const std::string key = argv[4];
  const std::string tenant = key.substr(0, key.find("/keys/"));
  clavis::ClientOptions options;
  options.endpoint = argv[1];
  options.tls_ca_pem = ReadFile(argv[2]);
  options.tls_client_cert_pem = ReadFile(std::string(argv[3]) + ".crt");
  options.tls_client_key_pem = ReadFile(std::string(argv[3]) + ".key");
  options.tls_server_name = "localhost";
  options.call_timeout = absl::Seconds(5);
  options.initial_backoff = absl::Milliseconds(20);
  options.max_backoff = absl::Milliseconds(200);
  auto connected = clavis::Client::Connect(options);
  if (!connected.ok()) {
    std::fprintf(stderr, "connect: %s\n", connected.status().ToString().c_str());
    return 1;
  }
  std::shared_ptr<clavis::Client> client = *std::move(connected);
  auto cache = clavis::DataKeyCache::New(client);
  if (!cache.ok()) {
    std::fprintf(stderr, "cache: %s\n", cache.status().ToString().c_str());
    return 1;
  }
  auto invalidator = clavis::CacheInvalidator::Start(client, *cache, {tenant});
  auto records = clavis::RecordEncryptor::New(*cache, key);
  if (!invalidator.ok() || !records.ok()) {
    std::fprintf(stderr, "SDK set-up failed\n");
    return 1;
  }
  const clavis::EncryptionContext context = {{"app", "revocation-test"}};

  std::vector<Target> targets;
  for (int i = 5; i < argc; ++i) {
    Target t{argv[i], "", ""};
    auto sealed = (*records)->Encrypt(t.segment, "a revocable record", context);
    auto data_key = client->GenerateDataKey(key, t.segment, context);
    if (!sealed.ok() || !data_key.ok()) {
      std::fprintf(stderr, "sealing in %s failed: %s %s\n", t.segment.c_str(),
                   sealed.status().ToString().c_str(), data_key.status().ToString().c_str());
      return 1;
    }
    t.sealed = *std::move(sealed);
    t.blob = data_key->ciphertext_blob;
    targets.push_back(std::move(t));
  }

  // Stop when the test closes our stdin.
  std::atomic<bool> stop{false};
  std::thread stdin_watch([&stop] {
    char buffer[64];
    while (::read(STDIN_FILENO, buffer, sizeof(buffer)) > 0) {
    }
    stop.store(true);
  });

  bool ready = false;
  uint64_t attempts = 0;
  while (!stop.load()) {
    bool all_ok = true;
    for (const Target& t : targets) {
      all_ok &= Report("sdk", t.segment, (*records)->Decrypt(t.sealed, context).status());
      all_ok &= Report("server", t.segment, client->Decrypt(t.blob, context).status());
      attempts += 2;
    }
    if (!ready && all_ok && (*invalidator)->connected()) {
      ready = true;
      std::printf("READY\n");
    }
    absl::SleepFor(absl::Milliseconds(1));
  }
  std::printf("DONE %llu\n", static_cast<unsigned long long>(attempts));
  stdin_watch.join();
  return 0;
}
