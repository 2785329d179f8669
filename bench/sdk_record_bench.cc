// What the SDK costs over raw AES-GCM, and how many round trips a cold read
// takes. Two parts, both against a real clavisd in this process (loopback
// gRPC, dev mode):
//
// 1. Warm-cache throughput of RecordEncryptor::Encrypt / Decrypt for 1 KiB
//    and 64 KiB records, against raw OpenSSL EVP AES-256-GCM on the same
//    sizes in the same run. The baseline is what a careful hand-written
//    application would do per record: one EVP_CIPHER_CTX keyed once, a fresh
//    random 96-bit nonce (RAND_bytes), encrypt, tag (decrypt: set the tag,
//    check it) — no key management at all. Baseline and SDK alternate in
//    short rounds and the median ratio is reported (machines are noisy).
//    Goal (client SDK issue): >= 0.85 at 1 KiB, >= 0.95 at 64 KiB.
// 2. Cold decrypt of 10,000 records spread over 1,000 segments with a new
//    cache (another process' view): RPCs made. Goal: at most 10.
//
//   build/bench/sdk_record_bench [--rounds 7] [--round_ms 300]
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "bench/in_process_clavisd.h"
#include "clavis/client.h"
#include "clavis/data_key_cache.h"
#include "clavis/record_encryptor.h"
#include "clavis/v1/key_admin.grpc.pb.h"
#include "grpcpp/create_channel.h"
#include "spdlog/spdlog.h"

namespace {

const clavis::EncryptionContext kContext = {{"table", "customers"}};

using clavis::bench::kBenchKey;

[[noreturn]] void Die(const std::string& what) { clavis::bench::InProcessClavisd::Die(what); }

// Raw EVP AES-256-GCM, keyed once.
class RawGcm {
 public:
  RawGcm() {
    unsigned char key[32];
    RAND_bytes(key, sizeof key);
    enc_ = EVP_CIPHER_CTX_new();
    dec_ = EVP_CIPHER_CTX_new();
    EVP_EncryptInit_ex(enc_, EVP_aes_256_gcm(), nullptr, key, nullptr);
    EVP_DecryptInit_ex(dec_, EVP_aes_256_gcm(), nullptr, key, nullptr);
  }
  ~RawGcm() {
    EVP_CIPHER_CTX_free(enc_);
    EVP_CIPHER_CTX_free(dec_);
  }
  // nonce || ciphertext || tag, into a new string (as the SDK returns).
  // `aad`: associated data of the size a sealed record authenticates (its
  // header and context), to tell the format's cost from the code's.
  std::string Seal(const std::string& plaintext, const std::string& aad = "") {
    std::string out(12 + plaintext.size() + 16, '\0');
    auto* p = reinterpret_cast<unsigned char*>(out.data());
    RAND_bytes(p, 12);
    int len = 0;
    EVP_EncryptInit_ex(enc_, nullptr, nullptr, nullptr, p);
    if (!aad.empty()) {
      EVP_EncryptUpdate(enc_, nullptr, &len, reinterpret_cast<const unsigned char*>(aad.data()),
                        static_cast<int>(aad.size()));
    }
    EVP_EncryptUpdate(enc_, p + 12, &len, reinterpret_cast<const unsigned char*>(plaintext.data()),
                      static_cast<int>(plaintext.size()));
    EVP_EncryptFinal_ex(enc_, p + 12 + len, &len);
    EVP_CIPHER_CTX_ctrl(enc_, EVP_CTRL_GCM_GET_TAG, 16, p + 12 + plaintext.size());
    return out;
  }
  std::string Open(const std::string& sealed, const std::string& aad = "") {
    const size_t n = sealed.size() - 28;
    std::string out(n, '\0');
    auto* in = reinterpret_cast<const unsigned char*>(sealed.data());
    int len = 0;
    EVP_DecryptInit_ex(dec_, nullptr, nullptr, nullptr, in);
    if (!aad.empty()) {
      EVP_DecryptUpdate(dec_, nullptr, &len, reinterpret_cast<const unsigned char*>(aad.data()),
                        static_cast<int>(aad.size()));
    }
    EVP_DecryptUpdate(dec_, reinterpret_cast<unsigned char*>(out.data()), &len, in + 12,
                      static_cast<int>(n));
    EVP_CIPHER_CTX_ctrl(dec_, EVP_CTRL_GCM_SET_TAG, 16, const_cast<unsigned char*>(in + 12 + n));
    if (EVP_DecryptFinal_ex(dec_, reinterpret_cast<unsigned char*>(out.data()) + len, &len) != 1) {
      Die("raw GCM tag check failed");
    }
    return out;
  }

 private:
  EVP_CIPHER_CTX* enc_;
  EVP_CIPHER_CTX* dec_;
};

// Bytes per second of `op` run repeatedly for `duration`.
template <typename Op>
double Throughput(size_t bytes_per_op, absl::Duration duration, Op op) {
  uint64_t ops = 0;
  const absl::Time start = absl::Now();
  absl::Time now = start;
  while (now - start < duration) {
    for (int i = 0; i < 64; ++i) op();
    ops += 64;
    now = absl::Now();
  }
  return ops * bytes_per_op / absl::ToDoubleSeconds(now - start);
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

struct Row {
  std::string what;
  double raw_mbps;
  double sdk_mbps;
  double ratio;      // SDK / raw
  double ratio_aad;  // SDK / raw with the sealed record's associated data
  double goal;
};

Row Compare(const std::string& what, size_t size, double goal, int rounds, absl::Duration round,
            const std::function<void()>& raw, const std::function<void()>& raw_aad,
            const std::function<void()>& sdk) {
  std::vector<double> raw_rates, sdk_rates, ratios, ratios_aad;
  for (int r = 0; r < rounds; ++r) {
    const double a = Throughput(size, round, raw);
    const double b = Throughput(size, round, sdk);
    const double c = Throughput(size, round, raw_aad);
    raw_rates.push_back(a);
    sdk_rates.push_back(b);
    ratios.push_back(b / a);
    ratios_aad.push_back(b / c);
  }
  return Row{what,           Median(raw_rates) / 1e6, Median(sdk_rates) / 1e6,
             Median(ratios), Median(ratios_aad),      goal};
}

}  // namespace

int main(int argc, char** argv) {
  int rounds = 7, round_ms = 300;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--rounds") (void)absl::SimpleAtoi(argv[i + 1], &rounds);
    if (flag == "--round_ms") (void)absl::SimpleAtoi(argv[i + 1], &round_ms);
  }
  spdlog::set_level(spdlog::level::warn);
  clavis::bench::InProcessClavisd clavisd;
  const std::string& address = clavisd.address();
  clavis::ClientOptions options;
  options.endpoint = address;
  auto connect = [&] {
    auto client = clavis::Client::Connect(options);
    if (!client.ok()) Die(std::string(client.status().message()));
    return std::shared_ptr<clavis::Client>(std::move(*client));
  };

  // ---- 1. warm-cache throughput ----
  auto client = connect();
  auto cache = *clavis::DataKeyCache::New(client);
  auto records = *clavis::RecordEncryptor::New(cache, kBenchKey);
  RawGcm raw;
  std::vector<Row> rows;
  for (size_t size : {size_t{1024}, size_t{65536}}) {
    const std::string plaintext(size, 'p');
    const std::string raw_sealed = raw.Seal(plaintext);
    absl::StatusOr<std::string> sdk_sealed =
        records->Encrypt("bench/customers", plaintext, kContext, "customer 42");
    if (!sdk_sealed.ok()) Die(std::string(sdk_sealed.status().message()));
    // What a sealed record authenticates besides its ciphertext: header
    // (everything before the nonce), canonical context, associated data.
    const size_t header_size = sdk_sealed->size() - size - 12 - 16;
    const std::string aad(header_size + 4 + 8 + 5 + 4 + 9 + 11, 'a');
    const std::string raw_aad_sealed = raw.Seal(plaintext, aad);
    if (!records->Decrypt(*sdk_sealed, kContext, "customer 42").ok()) Die("SDK decrypt failed");
    const double goal = size == 1024 ? 0.85 : 0.95;
    const std::string label = size == 1024 ? "1 KiB" : "64 KiB";
    rows.push_back(Compare(
        label + " encrypt", size, goal, rounds, absl::Milliseconds(round_ms),
        [&] { (void)raw.Seal(plaintext); }, [&] { (void)raw.Seal(plaintext, aad); },
        [&] {
          if (!records->Encrypt("bench/customers", plaintext, kContext, "customer 42").ok()) {
            Die("SDK encrypt failed");
          }
        }));
    rows.push_back(Compare(
        label + " decrypt", size, goal, rounds, absl::Milliseconds(round_ms),
        [&] { (void)raw.Open(raw_sealed); }, [&] { (void)raw.Open(raw_aad_sealed, aad); },
        [&] {
          if (!records->Decrypt(*sdk_sealed, kContext, "customer 42").ok()) {
            Die("SDK decrypt failed");
          }
        }));
  }
  const uint64_t warm_rpcs = client->stats().calls;

  // ---- 2. cold decrypt of 10,000 records over 1,000 segments ----
  std::vector<std::string> sealed;
  std::vector<std::string> ads;
  for (int i = 0; i < 10000; ++i) {
    ads.push_back(absl::StrCat("customer ", i));
    auto s = records->Encrypt(absl::StrCat("bench/segment-", i % 1000),
                              absl::StrCat("record ", i, std::string(200, 'x')), kContext, ads[i]);
    if (!s.ok()) Die(std::string(s.status().message()));
    sealed.push_back(std::move(*s));
  }
  auto reader_client = connect();
  auto reader = *clavis::RecordEncryptor::New(*clavis::DataKeyCache::New(reader_client), kBenchKey);
  std::vector<clavis::RecordToDecrypt> batch;
  for (int i = 0; i < 10000; ++i) batch.push_back({sealed[i], kContext, ads[i]});
  const absl::Time cold_start = absl::Now();
  auto opened = reader->DecryptMany(batch);
  const absl::Duration cold = absl::Now() - cold_start;
  for (const auto& r : opened) {
    if (!r.ok()) Die(absl::StrCat("cold decrypt failed: ", r.status().message()));
  }

  std::printf(
      "SDK RecordEncryptor (warm DataKeyCache) vs raw EVP AES-256-GCM, median of %d "
      "rounds of %d ms\n\n",
      rounds, round_ms);
  std::printf(
      "| operation | raw MB/s | SDK MB/s | SDK / raw | goal | SDK / raw with the record's AAD |\n"
      "|---|---:|---:|---:|---:|---:|\n");
  for (const Row& r : rows) {
    std::printf("| %s | %.0f | %.0f | %.3f | >= %.2f %s | %.3f |\n", r.what.c_str(), r.raw_mbps,
                r.sdk_mbps, r.ratio, r.goal, r.ratio >= r.goal ? "met" : "NOT MET", r.ratio_aad);
  }
  std::printf("\nRPCs during the warm-cache runs: %llu (the first record of each size)\n",
              static_cast<unsigned long long>(warm_rpcs));
  std::printf(
      "cold DecryptMany of 10,000 records over 1,000 segments: %llu RPCs (goal <= 10), "
      "%.0f ms\n",
      static_cast<unsigned long long>(reader_client->stats().calls),
      absl::ToDoubleMilliseconds(cold));
  return 0;
}
