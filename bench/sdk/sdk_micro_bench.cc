// SDK micro-benchmarks (Google Benchmark) against raw OpenSSL AES-256-GCM
// measured in the same run, with a clavisd in this process (loopback gRPC,
// dev mode; bench/in_process_clavisd.h). See bench/sdk/README.md.
//
// 1. Warm cache: RecordEncryptor::Encrypt / Decrypt of 64 B, 1 KiB, 64 KiB
//    and 1 MiB records with a warm DataKeyCache, against raw EVP
//    AES-256-GCM on the same sizes. The headline baseline is the one of
//    bench/sdk_record_bench.cc: what a careful hand-written application does
//    per record, with one EVP_CIPHER_CTX keyed once and a RAND_bytes nonce
//    per record, no key management. Also reported: raw GCM with a counter
//    nonce (as the SDK's nonces are), and raw GCM with as much associated
//    data as a sealed record authenticates (what the format costs).
// 2. Cold decrypt: records over segments opened with a new cache (another
//    process' view), as DecryptMany and one Decrypt at a time; counters say
//    how many RPCs that took.
// 3. FieldEncryptor on a typical customer JSON record (7 of its fields
//    encrypted), against the same fields sealed with raw GCM, and against
//    the same field encryption written by hand (nlohmann JSON, raw GCM,
//    base64).
//
// After the run it prints tables of SDK / baseline ratios computed from the
// run's own figures: for records, the paired_* benchmarks, which alternate
// SDK and baselines in short bursts and take the median of the per-round
// ratios (a shared VM's noise moves separately measured figures by 10-20%);
// medians over --benchmark_repetitions if given. Nothing is asserted about
// speed.
//
//   build/bench/sdk/sdk_micro_bench --benchmark_repetitions=5
//       --benchmark_enable_random_interleaving=true --benchmark_min_time=0.1
//   build/bench/sdk/sdk_micro_bench --quick      # CI smoke: a few seconds
//
// Flags of its own (given before or among Google Benchmark's):
//   --quick          sizes 1 KiB and 64 KiB, 1,000 cold records over 100
//                    segments, 5 paired rounds, --benchmark_min_time=0.05
//                    (each unless given)
//   --sizes=A,B,...  record sizes in bytes (default 64,1024,65536,1048576)
//   --cold=N,M       cold decrypt of N records over M segments (10000,1000)
//   --paired_rounds=N  rounds of the paired_* benchmarks (31; --quick: 5)
#include <benchmark/benchmark.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "bench/in_process_clavisd.h"
#include "clavis/client.h"
#include "clavis/data_key_cache.h"
#include "clavis/field_encryptor.h"
#include "clavis/record_encryptor.h"
#include "crypto/encoding.h"
#include "nlohmann/json.hpp"
#include "spdlog/spdlog.h"

namespace {

using clavis::bench::kBenchKey;
using Json = nlohmann::ordered_json;

const clavis::EncryptionContext kContext = {{"table", "customers"}};
constexpr char kSegment[] = "bench/customers";
constexpr char kAssociatedData[] = "customer 42";

[[noreturn]] void Die(const std::string& what) { clavis::bench::InProcessClavisd::Die(what); }

// ---------------------------------------------------------------------------
// The baseline: raw EVP AES-256-GCM, one context per direction keyed once.

class RawGcm {
 public:
  enum class Nonce { kRandom, kCounter };

  RawGcm() {
    unsigned char key[32];
    if (RAND_bytes(key, sizeof key) != 1 || RAND_bytes(prefix_, sizeof prefix_) != 1) {
      Die("RAND_bytes failed");
    }
    enc_ = EVP_CIPHER_CTX_new();
    dec_ = EVP_CIPHER_CTX_new();
    if (enc_ == nullptr || dec_ == nullptr ||
        EVP_EncryptInit_ex(enc_, EVP_aes_256_gcm(), nullptr, key, nullptr) != 1 ||
        EVP_DecryptInit_ex(dec_, EVP_aes_256_gcm(), nullptr, key, nullptr) != 1) {
      Die("EVP AES-256-GCM setup failed");
    }
    OPENSSL_cleanse(key, sizeof key);
  }
  ~RawGcm() {
    EVP_CIPHER_CTX_free(enc_);
    EVP_CIPHER_CTX_free(dec_);
  }
  RawGcm(const RawGcm&) = delete;
  RawGcm& operator=(const RawGcm&) = delete;

  // nonce || ciphertext || tag, into a new string (as the SDK returns).
  // `nonce`: a fresh RAND_bytes nonce, or a random 4-byte prefix and a
  // 64-bit counter (the SDK's scheme). `aad`: associated data, e.g. of the
  // size a sealed record authenticates, to tell the format's cost from the
  // code's.
  std::string Seal(const std::string& plaintext, Nonce nonce, const std::string& aad = "") {
    std::string out(12 + plaintext.size() + 16, '\0');
    auto* p = reinterpret_cast<unsigned char*>(out.data());
    if (nonce == Nonce::kRandom) {
      if (RAND_bytes(p, 12) != 1) Die("RAND_bytes failed");
    } else {
      std::memcpy(p, prefix_, 4);
      const uint64_t n = counter_++;
      for (int i = 0; i < 8; ++i) p[4 + i] = static_cast<unsigned char>(n >> (56 - 8 * i));
    }
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

  // The plaintext of Seal's output; exits if the tag does not match.
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
  unsigned char prefix_[4];
  uint64_t counter_ = 0;
};

// ---------------------------------------------------------------------------
// Shared state, set up in main before the benchmarks run.

struct Options {
  std::vector<int64_t> sizes = {64, 1024, 65536, 1048576};
  int64_t cold_records = 10000;
  int64_t cold_segments = 1000;
  int64_t paired_rounds = 31;
};

struct World {
  std::unique_ptr<clavis::bench::InProcessClavisd> clavisd;
  clavis::ClientOptions client_options;
  std::shared_ptr<clavis::Client> client;
  std::shared_ptr<clavis::DataKeyCache> cache;
  std::shared_ptr<clavis::RecordEncryptor> records;
  RawGcm raw;
};
World* world = nullptr;

std::shared_ptr<clavis::Client> Connect() {
  auto client = clavis::Client::Connect(world->client_options);
  if (!client.ok()) Die(std::string(client.status().message()));
  return std::shared_ptr<clavis::Client>(std::move(*client));
}

template <typename T>
T Check(absl::StatusOr<T> v, const char* what) {
  if (!v.ok()) Die(absl::StrCat(what, ": ", v.status().message()));
  return std::move(*v);
}

// What a sealed record of this benchmark authenticates besides its
// ciphertext: the header (everything before the nonce), the canonical
// context and the associated data. Filler of that size, for the baseline.
std::string RecordAadFiller(const std::string& sdk_sealed, size_t plaintext_size) {
  const size_t header = sdk_sealed.size() - plaintext_size - 12 - 16;
  const size_t context = 4 + 8 + std::strlen("table") + std::strlen("customers");
  return std::string(header + context + std::strlen(kAssociatedData), 'a');
}

// The data key blob's length in a sealed record (docs/FORMAT.md "Sealed
// record (v2)": magic, version, algorithm, u16 key name, u16 segment, u32 blob).
size_t BlobSize(const std::string& sealed) {
  auto byte = [&](size_t i) { return static_cast<size_t>(static_cast<unsigned char>(sealed[i])); };
  size_t at = 6;
  at += 2 + (byte(at) << 8 | byte(at + 1));
  at += 2 + (byte(at) << 8 | byte(at + 1));
  return byte(at) << 24 | byte(at + 1) << 16 | byte(at + 2) << 8 | byte(at + 3);
}

// Plaintext of `size` bytes (content is irrelevant to AES-GCM).
std::string Plaintext(int64_t size) { return std::string(static_cast<size_t>(size), 'p'); }

void SetBytes(benchmark::State& state, int64_t size) {
  state.SetBytesProcessed(state.iterations() * size);
}

// RPCs made by the warm benchmarks' client during a run (0 but for the
// first record, or a data key used up by its byte limit).
class RpcCounter {
 public:
  explicit RpcCounter(const clavis::Client& client)
      : client_(client), start_(client.stats().calls) {}
  void Report(benchmark::State& state) const {
    state.counters["rpcs"] = static_cast<double>(client_.stats().calls - start_);
  }

 private:
  const clavis::Client& client_;
  const uint64_t start_;
};

// ---------------------------------------------------------------------------
// 1. Warm cache

void RawEncrypt(benchmark::State& state, RawGcm::Nonce nonce, bool record_aad) {
  const std::string plaintext = Plaintext(state.range(0));
  std::string aad;
  if (record_aad) {
    aad = RecordAadFiller(
        Check(world->records->Encrypt(kSegment, plaintext, kContext, kAssociatedData), "encrypt"),
        plaintext.size());
  }
  for (auto _ : state) {
    std::string sealed = world->raw.Seal(plaintext, nonce, aad);
    benchmark::DoNotOptimize(sealed.data());
  }
  SetBytes(state, state.range(0));
}

void RawDecrypt(benchmark::State& state, bool record_aad) {
  const std::string plaintext = Plaintext(state.range(0));
  std::string aad;
  if (record_aad) {
    aad = RecordAadFiller(
        Check(world->records->Encrypt(kSegment, plaintext, kContext, kAssociatedData), "encrypt"),
        plaintext.size());
  }
  const std::string sealed = world->raw.Seal(plaintext, RawGcm::Nonce::kRandom, aad);
  for (auto _ : state) {
    std::string opened = world->raw.Open(sealed, aad);
    benchmark::DoNotOptimize(opened.data());
  }
  SetBytes(state, state.range(0));
}

void SdkEncrypt(benchmark::State& state) {
  const std::string plaintext = Plaintext(state.range(0));
  // Warm: the first record fetches the segment's data key.
  (void)Check(world->records->Encrypt(kSegment, plaintext, kContext, kAssociatedData), "encrypt");
  const RpcCounter rpcs(*world->client);
  for (auto _ : state) {
    absl::StatusOr<std::string> sealed =
        world->records->Encrypt(kSegment, plaintext, kContext, kAssociatedData);
    if (!sealed.ok()) {
      state.SkipWithError(std::string(sealed.status().message()).c_str());
      break;
    }
    benchmark::DoNotOptimize(sealed->data());
  }
  rpcs.Report(state);
  SetBytes(state, state.range(0));
}

void SdkDecrypt(benchmark::State& state) {
  const std::string plaintext = Plaintext(state.range(0));
  const std::string sealed =
      Check(world->records->Encrypt(kSegment, plaintext, kContext, kAssociatedData), "encrypt");
  if (Check(world->records->Decrypt(sealed, kContext, kAssociatedData), "decrypt") != plaintext) {
    Die("SDK decrypt returned the wrong plaintext");
  }
  const RpcCounter rpcs(*world->client);
  for (auto _ : state) {
    absl::StatusOr<std::string> opened = world->records->Decrypt(sealed, kContext, kAssociatedData);
    if (!opened.ok()) {
      state.SkipWithError(std::string(opened.status().message()).c_str());
      break;
    }
    benchmark::DoNotOptimize(opened->data());
  }
  rpcs.Report(state);
  SetBytes(state, state.range(0));
}

// Baseline and SDK in alternating bursts of about 2 ms each (thread CPU
// time), the order rotating every round: the medians of the per-round
// ratios are what the ratio table reports, as they stand up to this
// shared VM's noise far better than a ratio of two separately measured
// medians. One iteration is one round.
double ThreadCpuSeconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

void Paired(benchmark::State& state, bool encrypt) {
  const int64_t size = state.range(0);
  const std::string plaintext = Plaintext(size);
  const std::string sdk_sealed =
      Check(world->records->Encrypt(kSegment, plaintext, kContext, kAssociatedData), "encrypt");
  const std::string aad = RecordAadFiller(sdk_sealed, plaintext.size());
  const std::string raw_sealed = world->raw.Seal(plaintext, RawGcm::Nonce::kRandom);
  const std::string raw_aad_sealed = world->raw.Seal(plaintext, RawGcm::Nonce::kCounter, aad);
  const int64_t burst = std::max<int64_t>(4, 2'000'000 / std::max<int64_t>(size, 256));
  // 0: SDK, 1: raw, 2: raw with a counter nonce, 3: raw with the record's AAD.
  auto run = [&](int which) {
    bool ok = true;
    for (int64_t i = 0; i < burst; ++i) {
      std::string out;
      switch (which) {
        case 0: {
          absl::StatusOr<std::string> r =
              encrypt ? world->records->Encrypt(kSegment, plaintext, kContext, kAssociatedData)
                      : world->records->Decrypt(sdk_sealed, kContext, kAssociatedData);
          ok &= r.ok();
          if (r.ok()) out = std::move(*r);
          break;
        }
        case 1:
          out = encrypt ? world->raw.Seal(plaintext, RawGcm::Nonce::kRandom)
                        : world->raw.Open(raw_sealed);
          break;
        case 2:
          out = encrypt ? world->raw.Seal(plaintext, RawGcm::Nonce::kCounter)
                        : world->raw.Open(raw_sealed);
          break;
        default:
          out = encrypt ? world->raw.Seal(plaintext, RawGcm::Nonce::kCounter, aad)
                        : world->raw.Open(raw_aad_sealed, aad);
          break;
      }
      benchmark::DoNotOptimize(out.data());
    }
    if (!ok) Die("SDK failed in the paired benchmark");
  };
  std::vector<double> vs_raw, vs_raw_ctr, vs_raw_aad, aad_vs_raw, sdk_mbps, raw_mbps;
  int round = 0;
  for (auto _ : state) {
    double t[4];
    for (int k = 0; k < 4; ++k) {
      const int which = (k + round) % 4;
      const double start = ThreadCpuSeconds();
      run(which);
      t[which] = ThreadCpuSeconds() - start;
    }
    ++round;
    vs_raw.push_back(t[1] / t[0]);
    vs_raw_ctr.push_back(t[2] / t[0]);
    vs_raw_aad.push_back(t[3] / t[0]);
    aad_vs_raw.push_back(t[2] / t[3]);
    sdk_mbps.push_back(static_cast<double>(burst * size) / t[0] / 1e6);
    raw_mbps.push_back(static_cast<double>(burst * size) / t[1] / 1e6);
    state.SetIterationTime(t[0] + t[1] + t[2] + t[3]);
  }
  state.counters["sdk_vs_raw"] = Median(vs_raw);
  state.counters["sdk_vs_raw_ctr"] = Median(vs_raw_ctr);
  state.counters["sdk_vs_raw_aad"] = Median(vs_raw_aad);
  // What the format alone costs: raw GCM with the record's AAD against raw
  // GCM, both with counter nonces (the best any implementation of the
  // format could do here).
  state.counters["raw_aad_vs_raw"] = Median(aad_vs_raw);
  state.counters["sdk_MBps"] = Median(sdk_mbps);
  state.counters["raw_MBps"] = Median(raw_mbps);
}

// ---------------------------------------------------------------------------
// 2. Cold decrypt: N records over M segments, a new cache per iteration.

struct ColdRecords {
  std::vector<std::string> sealed;
  std::vector<std::string> associated_data;
};

const ColdRecords& SealColdRecords(int64_t n, int64_t m) {
  static std::map<std::pair<int64_t, int64_t>, ColdRecords> made;
  ColdRecords& r = made[{n, m}];
  if (!r.sealed.empty()) return r;
  for (int64_t i = 0; i < n; ++i) {
    r.associated_data.push_back(absl::StrCat("customer ", i));
    r.sealed.push_back(
        Check(world->records->Encrypt(absl::StrCat("bench/segment-", i % m),
                                      absl::StrCat("record ", i, std::string(200, 'x')), kContext,
                                      r.associated_data.back()),
              "encrypt"));
  }
  return r;
}

void ColdDecrypt(benchmark::State& state, bool many) {
  const int64_t n = state.range(0), m = state.range(1);
  const ColdRecords& records = SealColdRecords(n, m);
  std::vector<clavis::RecordToDecrypt> batch;
  for (int64_t i = 0; i < n; ++i) {
    batch.push_back({records.sealed[i], kContext, records.associated_data[i]});
  }
  auto reader_client = Connect();
  uint64_t rpcs = 0;
  for (auto _ : state) {
    state.PauseTiming();
    auto reader = Check(clavis::RecordEncryptor::New(
                            Check(clavis::DataKeyCache::New(reader_client), "cache"), kBenchKey),
                        "encryptor");
    const uint64_t before = reader_client->stats().calls;
    state.ResumeTiming();
    if (many) {
      for (const auto& r : reader->DecryptMany(batch)) {
        if (!r.ok()) Die(absl::StrCat("cold decrypt failed: ", r.status().message()));
      }
    } else {
      for (const auto& r : batch) {
        if (!reader->Decrypt(r.sealed, r.context, r.associated_data).ok()) {
          Die("cold decrypt failed");
        }
      }
    }
    state.PauseTiming();
    rpcs += reader_client->stats().calls - before;
    reader.reset();  // the cache goes with it, outside the timing
    state.ResumeTiming();
  }
  state.counters["records"] = static_cast<double>(n);
  state.counters["segments"] = static_cast<double>(m);
  state.counters["rpcs"] = static_cast<double>(rpcs) / static_cast<double>(state.iterations());
  state.SetItemsProcessed(state.iterations() * n);
}

// ---------------------------------------------------------------------------
// 3. Field-level encryption of a customer record

// A typical customer record; the first seven pointers are personal data.
const char kCustomerJson[] = R"({
  "id": 48213,
  "name": "Margaret Ellen Okonkwo-Hartley",
  "email": "margaret.okonkwo-hartley@example-mail.co.uk",
  "phone": "+44 20 7946 0958",
  "address": {"street": "Flat 4B, 221 Baker Street", "city": "London",
              "postcode": "NW1 6XE", "country": "GB"},
  "birth_date": "1984-03-17",
  "health_note": "Type 2 diabetes, managed with metformin 500 mg twice daily. Penicillin allergy (rash, 2019). Prefers morning appointments; hard of hearing in the left ear.",
  "card": {"pan": "4111111111111111", "expiry": "09/29", "brand": "visa"},
  "segment": "retail",
  "marketing_opt_in": false,
  "created_at": "2026-11-24T09:15:00Z"
})";
const std::vector<std::string> kCustomerFields = {
    "/name", "/email", "/phone", "/address", "/birth_date", "/health_note", "/card/pan"};

struct FieldWorld {
  std::unique_ptr<clavis::FieldEncryptor> sdk;
  std::string plain;                // compact
  std::string encrypted;            // by the SDK
  std::vector<std::string> values;  // each field's serialized value
  std::string hand_encrypted;       // by HandEncrypt
};

FieldWorld& Fields() {
  static FieldWorld* f = [] {
    auto* f = new FieldWorld;
    f->sdk = Check(clavis::FieldEncryptor::New(world->records, kCustomerFields), "fields");
    Json doc = Json::parse(kCustomerJson);
    f->plain = doc.dump();
    for (const std::string& p : kCustomerFields)
      f->values.push_back(doc.at(Json::json_pointer(p)).dump());
    f->encrypted =
        Check(f->sdk->EncryptFields(kSegment, f->plain, kContext, kAssociatedData), "fields");
    return f;
  }();
  return *f;
}

// The same field encryption written by hand: nlohmann JSON, raw GCM with a
// random nonce per field, base64 (no context, no associated data, no key
// management).
std::string HandEncrypt(const std::string& json) {
  Json doc = Json::parse(json);
  for (const std::string& p : kCustomerFields) {
    Json& v = doc.at(Json::json_pointer(p));
    v = absl::StrCat(
        "raw:", clavis::crypto::Base64Encode(world->raw.Seal(v.dump(), RawGcm::Nonce::kRandom)));
  }
  return doc.dump();
}
std::string HandDecrypt(const std::string& json) {
  Json doc = Json::parse(json);
  for (const std::string& p : kCustomerFields) {
    Json& v = doc.at(Json::json_pointer(p));
    const std::string sealed = Check(
        clavis::crypto::Base64Decode(absl::string_view(v.get_ref<const std::string&>()).substr(4)),
        "base64");
    v = Json::parse(world->raw.Open(sealed));
  }
  return doc.dump();
}

void FieldsSdkEncrypt(benchmark::State& state) {
  FieldWorld& f = Fields();
  for (auto _ : state) {
    auto out = f.sdk->EncryptFields(kSegment, f.plain, kContext, kAssociatedData);
    if (!out.ok()) Die(std::string(out.status().message()));
    benchmark::DoNotOptimize(out->data());
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(f.plain.size()));
}
void FieldsSdkDecrypt(benchmark::State& state) {
  FieldWorld& f = Fields();
  if (Check(f.sdk->DecryptFields(f.encrypted, kContext, kAssociatedData), "fields") != f.plain) {
    Die("field decryption returned another document");
  }
  for (auto _ : state) {
    auto out = f.sdk->DecryptFields(f.encrypted, kContext, kAssociatedData);
    if (!out.ok()) Die(std::string(out.status().message()));
    benchmark::DoNotOptimize(out->data());
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(f.plain.size()));
}
void FieldsHandEncrypt(benchmark::State& state) {
  FieldWorld& f = Fields();
  for (auto _ : state) {
    std::string out = HandEncrypt(f.plain);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(f.plain.size()));
}
void FieldsHandDecrypt(benchmark::State& state) {
  FieldWorld& f = Fields();
  const std::string encrypted = HandEncrypt(f.plain);
  if (HandDecrypt(encrypted) != f.plain) Die("hand-written field decryption is wrong");
  for (auto _ : state) {
    std::string out = HandDecrypt(encrypted);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(f.plain.size()));
}
// Only the AES-GCM work: the seven values sealed (opened) with raw GCM.
void FieldsRawEncrypt(benchmark::State& state) {
  FieldWorld& f = Fields();
  for (auto _ : state) {
    for (const std::string& v : f.values) {
      std::string sealed = world->raw.Seal(v, RawGcm::Nonce::kRandom);
      benchmark::DoNotOptimize(sealed.data());
    }
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(f.plain.size()));
}
void FieldsRawDecrypt(benchmark::State& state) {
  FieldWorld& f = Fields();
  std::vector<std::string> sealed;
  for (const std::string& v : f.values)
    sealed.push_back(world->raw.Seal(v, RawGcm::Nonce::kRandom));
  for (auto _ : state) {
    for (const std::string& s : sealed) {
      std::string opened = world->raw.Open(s);
      benchmark::DoNotOptimize(opened.data());
    }
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(f.plain.size()));
}

// ---------------------------------------------------------------------------
// The ratio table: figures collected from the run's own reports.

struct Figure {
  // Per iteration, one per repetition: CPU time, or real time for
  // benchmarks that UseRealTime (the cold ones wait for RPCs).
  std::vector<double> seconds;
  double median_seconds = -1;                           // the "median" aggregate, if any
  std::map<std::string, std::vector<double>> counters;  // per repetition
  std::map<std::string, double> median_counters;        // the "median" aggregate
};

class CollectingReporter : public benchmark::ConsoleReporter {
 public:
  // Colours only on a terminal (Google Benchmark's own --benchmark_color
  // applies to its default reporter, not to this one).
  CollectingReporter() : ConsoleReporter(isatty(STDOUT_FILENO) ? OO_ColorTabular : OO_Tabular) {}

  void ReportRuns(const std::vector<Run>& runs) override {
    for (const Run& run : runs) {
      if (run.error_occurred) continue;
      // Named "function/args", without the /iterations:, /real_time and
      // /manual_time suffixes.
      Figure& f = figures_[run.run_name.args.empty()
                               ? run.run_name.function_name
                               : absl::StrCat(run.run_name.function_name, "/", run.run_name.args)];
      // CPU time, but for the benchmarks timed by the wall clock (the cold
      // ones wait for RPCs) or by hand (paired_*, thread CPU time).
      const bool real_time = !run.run_name.time_type.empty();
      const double seconds = (real_time ? run.GetAdjustedRealTime() : run.GetAdjustedCPUTime()) /
                             benchmark::GetTimeUnitMultiplier(run.time_unit);
      if (run.run_type == Run::RT_Aggregate) {
        if (run.aggregate_name == "median") {
          f.median_seconds = seconds;
          for (const auto& [name, counter] : run.counters) f.median_counters[name] = counter.value;
        }
        continue;
      }
      f.seconds.push_back(seconds);
      for (const auto& [name, counter] : run.counters) f.counters[name].push_back(counter.value);
    }
    ConsoleReporter::ReportRuns(runs);
  }

  // Seconds per iteration of `name` (median over repetitions), or -1.
  double Seconds(const std::string& name) const {
    auto it = figures_.find(name);
    if (it == figures_.end()) return -1;
    const Figure& f = it->second;
    if (f.median_seconds > 0) return f.median_seconds;
    if (f.seconds.empty()) return -1;
    return Median(f.seconds);
  }
  double Counter(const std::string& name, const std::string& counter) const {
    auto it = figures_.find(name);
    if (it == figures_.end()) return -1;
    auto m = it->second.median_counters.find(counter);
    if (m != it->second.median_counters.end()) return m->second;
    auto c = it->second.counters.find(counter);
    return c == it->second.counters.end() ? -1 : Median(c->second);
  }

 private:
  std::map<std::string, Figure> figures_;
};

std::string Fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

std::string SizeLabel(int64_t size) {
  if (size >= (1 << 20) && size % (1 << 20) == 0) return absl::StrCat(size >> 20, " MiB");
  if (size >= 1024 && size % 1024 == 0) return absl::StrCat(size >> 10, " KiB");
  return absl::StrCat(size, " B");
}

void PrintTables(const CollectingReporter& r, const Options& options) {
  const std::string sample =
      Check(world->records->Encrypt(kSegment, "x", kContext, kAssociatedData), "encrypt");
  std::printf(
      "\nA sealed record here: %zu bytes of header (its data key blob %zu), authenticated with "
      "the\ncanonical context and the associated data: %zu bytes of AAD per record.\n",
      sample.size() - 1 - 12 - 16, BlobSize(sample), RecordAadFiller(sample, 1).size());
  std::printf(
      "\nSDK vs raw EVP AES-256-GCM, same run: medians over the rounds of alternating ~2 ms "
      "bursts\n(paired_*, thread CPU time; without them, ratios of the other benchmarks' "
      "medians).\nraw: a RAND_bytes nonce per record (the headline baseline); raw ctr: a counter "
      "nonce;\nraw+aad: a counter nonce and as much associated data as the sealed record "
      "authenticates;\nraw+aad / raw: what the format's associated data alone costs (the "
      "ceiling of SDK / raw ctr).\n\n");
  std::printf(
      "| size | op | SDK MB/s | raw MB/s | SDK / raw | SDK / raw ctr | SDK / raw+aad | raw+aad / "
      "raw | target | met? |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---|\n");
  // Figures missing from the run (filtered out) print as "n/a".
  auto mbps = [](int64_t size, double seconds) {
    return seconds > 0 ? Fixed(size / seconds / 1e6, 0) : std::string("n/a");
  };
  auto ratio = [](double sdk, double raw) {
    return sdk > 0 && raw > 0 ? Fixed(raw / sdk, 2) : std::string("n/a");
  };
  auto us = [](double seconds) {
    return seconds > 0 ? Fixed(seconds * 1e6, 2) : std::string("n/a");
  };
  for (int64_t size : options.sizes) {
    const std::string arg = absl::StrCat("/", size);
    double target = 0;
    if (size == 1024) target = 0.85;
    if (size == 65536) target = 0.95;
    for (bool encrypt : {true, false}) {
      const double sdk = r.Seconds((encrypt ? "sdk_encrypt" : "sdk_decrypt") + arg);
      const double raw = r.Seconds((encrypt ? "raw_encrypt" : "raw_decrypt") + arg);
      const double raw_ctr =
          encrypt ? r.Seconds("raw_encrypt_counter_nonce" + arg) : r.Seconds("raw_decrypt" + arg);
      const double raw_aad = r.Seconds(
          (encrypt ? "raw_encrypt_counter_nonce_record_aad" : "raw_decrypt_record_aad") + arg);
      // The paired ratios if that benchmark ran, else the ratios of medians.
      const std::string paired = (encrypt ? "paired_encrypt" : "paired_decrypt") + arg;
      const double p_raw = r.Counter(paired, "sdk_vs_raw");
      const bool have_paired = p_raw > 0;
      if (sdk <= 0 && raw <= 0 && !have_paired) continue;
      const std::string vs_raw = have_paired ? Fixed(p_raw, 2) : ratio(sdk, raw);
      const std::string vs_ctr =
          have_paired ? Fixed(r.Counter(paired, "sdk_vs_raw_ctr"), 2) : ratio(sdk, raw_ctr);
      const std::string vs_aad =
          have_paired ? Fixed(r.Counter(paired, "sdk_vs_raw_aad"), 2) : ratio(sdk, raw_aad);
      const double headline = have_paired ? p_raw : (sdk > 0 && raw > 0 ? raw / sdk : 0);
      std::string met = "-";
      if (target > 0 && headline > 0) met = headline >= target ? "met" : "NOT MET";
      const std::string ceiling =
          have_paired ? Fixed(r.Counter(paired, "raw_aad_vs_raw"), 2) : ratio(raw_aad, raw_ctr);
      std::printf(
          "| %s | %s | %s | %s | %s%s | %s | %s | %s | %s | %s |\n", SizeLabel(size).c_str(),
          encrypt ? "encrypt" : "decrypt",
          have_paired ? Fixed(r.Counter(paired, "sdk_MBps"), 0).c_str() : mbps(size, sdk).c_str(),
          have_paired ? Fixed(r.Counter(paired, "raw_MBps"), 0).c_str() : mbps(size, raw).c_str(),
          vs_raw.c_str(), have_paired ? "" : " (medians)", vs_ctr.c_str(), vs_aad.c_str(),
          ceiling.c_str(), target > 0 ? absl::StrCat(">= ", target).c_str() : "-", met.c_str());
    }
  }

  // The other tables only for what ran.
  bool any_fields = false;
  for (const char* name : {"fields_sdk_encrypt", "fields_sdk_decrypt", "fields_hand_encrypt",
                           "fields_hand_decrypt", "fields_raw_encrypt", "fields_raw_decrypt"}) {
    any_fields |= r.Seconds(name) > 0;
  }
  const double fe = r.Seconds("fields_sdk_encrypt"), fd = r.Seconds("fields_sdk_decrypt");
  if (any_fields) {
    std::printf(
        "\nFieldEncryptor, one customer record (%zu fields, %zu bytes of JSON):\n\n"
        "| op | SDK us/doc | hand-written JSON+GCM us/doc | SDK / hand-written | raw GCM of the "
        "fields us/doc | SDK / raw GCM |\n|---|---:|---:|---:|---:|---:|\n",
        kCustomerFields.size(), Json::parse(kCustomerJson).dump().size());
    for (bool encrypt : {true, false}) {
      const double sdk = encrypt ? fe : fd;
      const double hand = r.Seconds(encrypt ? "fields_hand_encrypt" : "fields_hand_decrypt");
      const double raw = r.Seconds(encrypt ? "fields_raw_encrypt" : "fields_raw_decrypt");
      std::printf("| %s | %s | %s | %s | %s | %s |\n", encrypt ? "encrypt" : "decrypt",
                  us(sdk).c_str(), us(hand).c_str(), ratio(sdk, hand).c_str(), us(raw).c_str(),
                  ratio(sdk, raw).c_str());
    }
  }

  bool header_printed = false;
  for (const char* call : {"cold_decrypt_many", "cold_decrypt_one_by_one"}) {
    const std::string name =
        absl::StrCat(call, "/", options.cold_records, "/", options.cold_segments);
    if (r.Seconds(name) <= 0) continue;
    if (!header_printed) {
      std::printf(
          "\nCold decrypt with a new cache (RPCs per run; goal for 10,000/1,000: <= 10):\n\n"
          "| records | segments | call | RPCs | ms |\n|---:|---:|---|---:|---:|\n");
      header_printed = true;
    }
    std::printf("| %lld | %lld | %s | %.0f | %.1f |\n",
                static_cast<long long>(options.cold_records),
                static_cast<long long>(options.cold_segments),
                absl::StrContains(call, "many") ? "DecryptMany" : "Decrypt each",
                r.Counter(name, "rpcs"), r.Seconds(name) * 1e3);
  }
}

bool ParseList(absl::string_view text, std::vector<int64_t>* out) {
  out->clear();
  for (absl::string_view part : absl::StrSplit(text, ',')) {
    int64_t v = 0;
    if (!absl::SimpleAtoi(part, &v) || v < 0 || v > (int64_t{1} << 30)) return false;
    out->push_back(v);
  }
  return !out->empty();
}

}  // namespace

int main(int argc, char** argv) {
  // Our flags first; the rest is Google Benchmark's.
  Options options;
  bool quick = false, min_time_given = false;
  std::vector<char*> args = {argv[0]};
  for (int i = 1; i < argc; ++i) {
    const absl::string_view a = argv[i];
    std::vector<int64_t> list;
    if (a == "--quick") {
      quick = true;
    } else if (absl::StartsWith(a, "--sizes=")) {
      if (!ParseList(a.substr(8), &options.sizes)) Die("--sizes wants e.g. 64,1024");
    } else if (absl::StartsWith(a, "--paired_rounds=")) {
      if (!absl::SimpleAtoi(a.substr(16), &options.paired_rounds) || options.paired_rounds < 1) {
        Die("--paired_rounds wants a positive number");
      }
    } else if (absl::StartsWith(a, "--cold=")) {
      if (!ParseList(a.substr(7), &list) || list.size() != 2 || list[0] < 1 || list[1] < 1) {
        Die("--cold wants N,M (records, segments)");
      }
      options.cold_records = list[0];
      options.cold_segments = list[1];
    } else {
      if (absl::StartsWith(a, "--benchmark_min_time")) min_time_given = true;
      args.push_back(argv[i]);
    }
  }
  static char min_time[] = "--benchmark_min_time=0.05";
  if (quick) {
    bool sizes_given = false, cold_given = false, rounds_given = false;
    for (int i = 1; i < argc; ++i) {
      sizes_given |= absl::StartsWith(argv[i], "--sizes=");
      cold_given |= absl::StartsWith(argv[i], "--cold=");
      rounds_given |= absl::StartsWith(argv[i], "--paired_rounds=");
    }
    if (!sizes_given) options.sizes = {1024, 65536};
    if (!cold_given) options.cold_records = 1000, options.cold_segments = 100;
    if (!rounds_given) options.paired_rounds = 5;
    if (!min_time_given) args.push_back(min_time);
  }
  int bench_argc = static_cast<int>(args.size());
  benchmark::Initialize(&bench_argc, args.data());
  if (benchmark::ReportUnrecognizedArguments(bench_argc, args.data())) return 1;

  spdlog::set_level(spdlog::level::warn);
  World w;
  world = &w;
  w.clavisd = std::make_unique<clavis::bench::InProcessClavisd>();
  w.client_options.endpoint = w.clavisd->address();
  w.client = Connect();
  w.cache = Check(clavis::DataKeyCache::New(w.client), "cache");
  w.records = Check(clavis::RecordEncryptor::New(w.cache, kBenchKey), "encryptor");

  // Baseline and SDK side by side for each size, so that drift over the run
  // hits both alike (--benchmark_enable_random_interleaving mixes further).
  for (int64_t size : options.sizes) {
    benchmark::RegisterBenchmark("raw_encrypt", RawEncrypt, RawGcm::Nonce::kRandom, false)
        ->Arg(size);
    benchmark::RegisterBenchmark("raw_encrypt_counter_nonce", RawEncrypt, RawGcm::Nonce::kCounter,
                                 false)
        ->Arg(size);
    benchmark::RegisterBenchmark("raw_encrypt_counter_nonce_record_aad", RawEncrypt,
                                 RawGcm::Nonce::kCounter, true)
        ->Arg(size);
    benchmark::RegisterBenchmark("sdk_encrypt", SdkEncrypt)->Arg(size);
    benchmark::RegisterBenchmark("raw_decrypt", RawDecrypt, false)->Arg(size);
    benchmark::RegisterBenchmark("raw_decrypt_record_aad", RawDecrypt, true)->Arg(size);
    benchmark::RegisterBenchmark("sdk_decrypt", SdkDecrypt)->Arg(size);
    for (bool encrypt : {true, false}) {
      benchmark::RegisterBenchmark(encrypt ? "paired_encrypt" : "paired_decrypt", Paired, encrypt)
          ->Arg(size)
          ->Iterations(options.paired_rounds)
          ->UseManualTime();
    }
  }
  benchmark::RegisterBenchmark("fields_raw_encrypt", FieldsRawEncrypt);
  benchmark::RegisterBenchmark("fields_hand_encrypt", FieldsHandEncrypt);
  benchmark::RegisterBenchmark("fields_sdk_encrypt", FieldsSdkEncrypt);
  benchmark::RegisterBenchmark("fields_raw_decrypt", FieldsRawDecrypt);
  benchmark::RegisterBenchmark("fields_hand_decrypt", FieldsHandDecrypt);
  benchmark::RegisterBenchmark("fields_sdk_decrypt", FieldsSdkDecrypt);
  for (bool many : {true, false}) {
    benchmark::RegisterBenchmark(many ? "cold_decrypt_many" : "cold_decrypt_one_by_one",
                                 ColdDecrypt, many)
        ->Args({options.cold_records, options.cold_segments})
        ->UseRealTime()
        ->Unit(benchmark::kMillisecond);
  }

  CollectingReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  PrintTables(reporter, options);
  std::fflush(stdout);
  benchmark::Shutdown();
  w.records.reset();
  w.cache.reset();
  w.client.reset();
  world = nullptr;
  return 0;
}
