// Crash consistency: every call that got an OK answer survives a kill -9.
//
// Each cycle starts clavisd on the same data directory, runs several client
// threads that create keys, rotate them, generate data keys (mostly in new
// segments, so segment creation is exercised), encrypt small payloads and
// revoke/enable segments, and records ONLY the calls answered OK together
// with what they returned. At a random (seeded) moment clavisd is killed with
// SIGKILL while the threads are still calling. After a restart on the same
// directory the test checks that everything acknowledged is there:
//  - every acknowledged key exists, with every acknowledged version (same key
//    check value) and a primary version at least the highest acknowledged;
//  - every acknowledged blob in a segment that is never revoked decrypts to
//    exactly the recorded plaintext under its context;
//  - every revoke/enable lands on the acknowledged state (or, for the one
//    call in flight at the kill, on either state), and blobs of such segments
//    decrypt exactly when the segment is enabled;
//  - every record is readable: ListKeys, GetKey and ListSegments of every key
//    succeed (no DATA_LOSS).
// State accumulates over the cycles: later cycles check the earlier ones too.
//
// The seed is printed; CLAVIS_CRASH_SEED=<n> replays the same schedule (the
// thread interleaving, of course, differs).
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "tests/harness/clavisd_process.h"

namespace clavis::testing {
namespace {

using clavis::v1::KeyState;

constexpr char kTenant[] = "crash";
constexpr int kCycles = 6;
constexpr size_t kBatch = 500;  // BatchDecrypt items per call (server max 1000)

using Context = std::map<std::string, std::string>;

// What an acknowledged CreateKey/RotateKey/GenerateDataKey told us about a key.
struct KeyFacts {
  uint32_t max_acked_version = 0;
  // Acknowledged versions; the key check value where the answer carried it.
  std::map<uint32_t, std::string> versions;
};

// A ciphertext blob from an acknowledged GenerateDataKey or Encrypt.
struct AckedBlob {
  std::string key;      // tenants/{t}/keys/{k}
  std::string segment;  // label
  std::string blob;
  std::string plaintext;
  Context context;
  bool revocable = false;
};

// A segment that revoke/enable calls target. During a cycle exactly one
// thread (its owner) calls it, one call at a time, so its state after a
// crash is that of the last acknowledged call, or of a later call that was
// in flight (or failed) and may or may not have been applied.
struct RevocableSegment {
  std::string key;
  std::string segment;
  std::set<int> possible_states;  // clavis.v1.KeyState values
  int owner = -1;
};

struct OpCounts {
  int create = 0, rotate = 0, generate = 0, encrypt = 0, revoke = 0, enable = 0;
  int new_segment = 0;  // acknowledged GenerateDataKey/Encrypt calls that created a segment
  int aborted = 0;      // ABORTED before the kill (compare-and-set contention)
  int after_kill = 0;   // calls that failed once the kill had begun (not recorded)
  int Total() const { return create + rotate + generate + encrypt + revoke + enable; }
  void Add(const OpCounts& o) {
    create += o.create;
    rotate += o.rotate;
    generate += o.generate;
    new_segment += o.new_segment;
    encrypt += o.encrypt;
    revoke += o.revoke;
    enable += o.enable;
    aborted += o.aborted;
    after_kill += o.after_kill;
  }
};

// Everything acknowledged so far, shared by the client threads.
class Ledger {
 public:
  std::mutex mu;
  std::vector<std::string> key_names;
  std::map<std::string, KeyFacts> keys;
  // Labels of acknowledged, never-revoked segments, by key.
  std::map<std::string, std::vector<std::string>> plain_segments;
  std::vector<AckedBlob> blobs;
  std::vector<RevocableSegment> revocable;
  std::vector<std::string> unexpected;  // errors before the kill
};

std::string SegmentResource(const std::string& key, const std::string& segment) {
  return absl::StrCat(key, "/segments/", segment);
}

void RecordKey(Ledger& ledger, const clavis::v1::Key& key, bool is_new) {
  // Caller holds ledger.mu.
  KeyFacts& facts = ledger.keys[key.name()];
  if (is_new) ledger.key_names.push_back(key.name());
  facts.max_acked_version = std::max(facts.max_acked_version, key.primary_version());
  for (const auto& v : key.versions()) {
    if (v.version() == key.primary_version()) facts.versions[v.version()] = v.key_check_value();
  }
}

class Worker {
 public:
  Worker(int index, int cycle, uint64_t seed, Ledger* ledger, ClavisdProcess& clavisd,
         const std::atomic<bool>* killed, const std::atomic<bool>* stop)
      : index_(index),
        cycle_(cycle),
        rng_(seed),
        ledger_(ledger),
        admin_(clavisd.Admin(PrincipalName(kTenant))),
        data_(clavisd.Data(PrincipalName(kTenant))),
        killed_(killed),
        stop_(stop) {}

  void Run() {
    while (!stop_->load()) {
      const double r = std::uniform_real_distribution<double>(0, 1)(rng_);
      if (r < 0.05 || !HasKeys()) {
        CreateKey();
      } else if (r < 0.12) {
        RotateKey();
      } else if (r < 0.60) {
        GenerateDataKey();
      } else if (r < 0.85) {
        Encrypt();
      } else {
        RevokeOrEnable();
      }
    }
    // Drop the stubs (their channel leads to the killed process) before the
    // thread ends, so no connection outlives the cycle.
    admin_.reset();
    data_.reset();
  }

  const OpCounts& counts() const { return counts_; }

 private:
  bool HasKeys() {
    std::lock_guard<std::mutex> lock(ledger_->mu);
    return !ledger_->key_names.empty();
  }

  // A failed call: before the kill anything but ABORTED is a finding.
  void Failed(const char* what, const grpc::Status& status) {
    if (killed_->load()) {
      ++counts_.after_kill;
      return;
    }
    if (status.error_code() == grpc::StatusCode::ABORTED) {
      ++counts_.aborted;
      return;
    }
    std::lock_guard<std::mutex> lock(ledger_->mu);
    ledger_->unexpected.push_back(absl::StrCat(what, " failed before the kill: code ",
                                               status.error_code(), ": ", status.error_message()));
  }

  std::string RandomKey() {
    std::lock_guard<std::mutex> lock(ledger_->mu);
    const auto& names = ledger_->key_names;
    return names[std::uniform_int_distribution<size_t>(0, names.size() - 1)(rng_)];
  }

  Context RandomContext() {
    Context context;
    const int n = std::uniform_int_distribution<int>(0, 2)(rng_);
    if (n >= 1) context["row"] = absl::StrCat(rng_() % 100000);
    if (n >= 2) context["table"] = absl::StrCat("t", rng_() % 7);
    return context;
  }

  void CreateKey() {
    clavis::v1::CreateKeyRequest request;
    request.set_parent(absl::StrCat("tenants/", kTenant));
    request.set_key_id(absl::StrCat("c", cycle_, "-t", index_, "-k", next_key_++));
    request.set_policy(
        TestKeyPolicy(absl::StrCat("tenants/", kTenant, "/keys/", request.key_id())));
    clavis::v1::Key key;
    auto status = admin_->CreateKey(ContextWithDeadline().get(), request, &key);
    if (!status.ok()) return Failed("CreateKey", status);
    ++counts_.create;
    std::lock_guard<std::mutex> lock(ledger_->mu);
    RecordKey(*ledger_, key, /*is_new=*/true);
  }

  void RotateKey() {
    clavis::v1::RotateKeyRequest request;
    request.set_name(RandomKey());
    clavis::v1::Key key;
    auto status = admin_->RotateKey(ContextWithDeadline().get(), request, &key);
    if (!status.ok()) return Failed("RotateKey", status);
    ++counts_.rotate;
    std::lock_guard<std::mutex> lock(ledger_->mu);
    RecordKey(*ledger_, key, /*is_new=*/false);
  }

  // A label for a data-plane call: a new one half of the time.
  std::string PlainSegment(const std::string& key, bool* is_new) {
    {
      std::lock_guard<std::mutex> lock(ledger_->mu);
      auto it = ledger_->plain_segments.find(key);
      if (it != ledger_->plain_segments.end() && !it->second.empty() && rng_() % 2 == 0) {
        *is_new = false;
        return it->second[std::uniform_int_distribution<size_t>(0, it->second.size() - 1)(rng_)];
      }
    }
    *is_new = true;
    return absl::StrCat("p/c", cycle_, "/t", index_, "/s", next_segment_++);
  }

  void GenerateDataKey() {
    const std::string key = RandomKey();
    bool is_new = false;
    const std::string segment = PlainSegment(key, &is_new);
    AckedBlob blob;
    if (!Generate(key, segment, &blob)) return;
    ++counts_.generate;
    if (is_new) ++counts_.new_segment;
    std::lock_guard<std::mutex> lock(ledger_->mu);
    if (is_new) ledger_->plain_segments[key].push_back(segment);
    ledger_->blobs.push_back(std::move(blob));
  }

  // GenerateDataKey; true (and *out filled, the key's version recorded) if OK.
  bool Generate(const std::string& key, const std::string& segment, AckedBlob* out) {
    clavis::v1::GenerateDataKeyRequest request;
    request.set_key(key);
    request.set_segment(segment);
    const Context context = RandomContext();
    request.mutable_encryption_context()->insert(context.begin(), context.end());
    clavis::v1::GenerateDataKeyResponse response;
    auto status = data_->GenerateDataKey(ContextWithDeadline().get(), request, &response);
    if (!status.ok()) {
      Failed("GenerateDataKey", status);
      return false;
    }
    EXPECT_EQ(response.plaintext().size(), 32u);
    *out = AckedBlob{key, segment, response.ciphertext_blob(), response.plaintext(), context};
    // key_version names the master-key version the segment key is wrapped
    // under: it was acknowledged too.
    const std::string prefix = key + "/versions/";
    uint32_t version = 0;
    if (absl::StartsWith(response.key_version(), prefix) &&
        absl::SimpleAtoi(response.key_version().substr(prefix.size()), &version)) {
      std::lock_guard<std::mutex> lock(ledger_->mu);
      KeyFacts& facts = ledger_->keys[key];
      facts.versions.emplace(version, "");  // keeps a known check value
    } else {
      ADD_FAILURE() << "GenerateDataKey returned key_version " << response.key_version()
                    << " for key " << key;
    }
    return true;
  }

  void Encrypt() {
    const std::string key = RandomKey();
    bool is_new = false;
    const std::string segment = PlainSegment(key, &is_new);
    clavis::v1::EncryptRequest request;
    request.set_key(key);
    request.set_segment(segment);
    std::string plaintext(std::uniform_int_distribution<size_t>(0, 300)(rng_), '\0');
    for (char& c : plaintext) c = static_cast<char>(rng_());
    request.set_plaintext(plaintext);
    const Context context = RandomContext();
    request.mutable_encryption_context()->insert(context.begin(), context.end());
    clavis::v1::EncryptResponse response;
    auto status = data_->Encrypt(ContextWithDeadline().get(), request, &response);
    if (!status.ok()) return Failed("Encrypt", status);
    ++counts_.encrypt;
    if (is_new) ++counts_.new_segment;
    std::lock_guard<std::mutex> lock(ledger_->mu);
    if (is_new) ledger_->plain_segments[key].push_back(segment);
    ledger_->blobs.push_back(
        AckedBlob{key, segment, response.ciphertext_blob(), plaintext, context});
  }

  void RevokeOrEnable() {
    // Owned revocable segments (indices into ledger_->revocable).
    std::vector<size_t> owned;
    {
      std::lock_guard<std::mutex> lock(ledger_->mu);
      for (size_t i = 0; i < ledger_->revocable.size(); ++i) {
        if (ledger_->revocable[i].owner == index_) owned.push_back(i);
      }
    }
    if (next_rv_ < 2) {  // two new ones per thread and cycle
      // A new revocable segment: it exists once a data key in it is acknowledged.
      const std::string key = RandomKey();
      const std::string segment = absl::StrCat("rv/c", cycle_, "/t", index_, "/s", next_rv_++);
      AckedBlob blob;
      if (!Generate(key, segment, &blob)) return;
      ++counts_.generate;
      ++counts_.new_segment;
      blob.revocable = true;
      std::lock_guard<std::mutex> lock(ledger_->mu);
      ledger_->blobs.push_back(std::move(blob));
      ledger_->revocable.push_back(
          RevocableSegment{key, segment, {static_cast<int>(KeyState::ENABLED)}, index_});
      return;
    }
    if (owned.empty()) return;
    const size_t i = owned[std::uniform_int_distribution<size_t>(0, owned.size() - 1)(rng_)];
    std::string name;
    bool revoke = false;
    {
      std::lock_guard<std::mutex> lock(ledger_->mu);
      RevocableSegment& s = ledger_->revocable[i];
      name = SegmentResource(s.key, s.segment);
      if (s.possible_states.size() == 1) {
        revoke = *s.possible_states.begin() == KeyState::ENABLED;
      } else {
        revoke = rng_() % 2 == 0;
      }
      // From now on the call may have been applied, whatever it answers.
      s.possible_states.insert(revoke ? KeyState::DISABLED : KeyState::ENABLED);
    }
    clavis::v1::SegmentRequest request;
    request.set_name(name);
    clavis::v1::Segment segment;
    auto status = revoke ? admin_->RevokeSegment(ContextWithDeadline().get(), request, &segment)
                         : admin_->EnableSegment(ContextWithDeadline().get(), request, &segment);
    if (!status.ok()) return Failed(revoke ? "RevokeSegment" : "EnableSegment", status);
    const KeyState expected = revoke ? KeyState::DISABLED : KeyState::ENABLED;
    EXPECT_EQ(segment.state(), expected) << name;
    ++(revoke ? counts_.revoke : counts_.enable);
    std::lock_guard<std::mutex> lock(ledger_->mu);
    ledger_->revocable[i].possible_states = {static_cast<int>(expected)};
  }

  const int index_;
  const int cycle_;
  std::mt19937_64 rng_;
  Ledger* const ledger_;
  std::unique_ptr<clavis::v1::KeyAdmin::Stub> admin_;
  std::unique_ptr<clavis::v1::KeyManagement::Stub> data_;
  const std::atomic<bool>* const killed_;
  const std::atomic<bool>* const stop_;
  OpCounts counts_;
  int next_key_ = 0;
  int next_segment_ = 0;
  int next_rv_ = 0;
};

struct VerifyStats {
  size_t keys_listed = 0;
  size_t segments_listed = 0;
  size_t blobs_checked = 0;
  size_t revocable_checked = 0;
};

// Test failures, each reported in full up to a limit and then only counted,
// so a crash that loses everything gives a readable report.
class Findings {
 public:
  ~Findings() {
    if (count_ > kLimit) {
      ADD_FAILURE() << count_ << " findings in this verification, the first " << kLimit << " shown";
    }
  }
  void Add(const std::string& what) {
    if (++count_ <= kLimit) ADD_FAILURE() << what;
  }

 private:
  static constexpr size_t kLimit = 25;
  size_t count_ = 0;
};

std::string Describe(const grpc::Status& status) {
  return absl::StrCat("code ", status.error_code(), ": ", status.error_message());
}

// Checks the ledger against a freshly restarted clavisd. Narrows the
// possible states of revocable segments to what was found.
VerifyStats Verify(ClavisdProcess& clavisd, Ledger& ledger) {
  VerifyStats stats;
  Findings findings;
  auto admin = clavisd.Admin(PrincipalName(kTenant));
  auto data = clavisd.Data(PrincipalName(kTenant));

  // Every key record parses: page through ListKeys, GetKey each.
  std::map<std::string, clavis::v1::Key> listed;
  std::string token;
  do {
    clavis::v1::ListKeysRequest request;
    request.set_parent(absl::StrCat("tenants/", kTenant));
    request.set_page_size(100);
    request.set_page_token(token);
    clavis::v1::ListKeysResponse response;
    auto status = admin->ListKeys(ContextWithDeadline().get(), request, &response);
    if (!status.ok()) {
      findings.Add(absl::StrCat("ListKeys: ", Describe(status)));
      break;
    }
    for (const auto& k : response.keys()) listed[k.name()] = k;
    token = response.next_page_token();
  } while (!token.empty());
  stats.keys_listed = listed.size();

  // Every segment record of every key parses: GetKey and ListSegments.
  std::map<std::string, std::set<std::string>> segments_of;
  for (const auto& [name, listed_key] : listed) {
    clavis::v1::GetKeyRequest get;
    get.set_name(name);
    clavis::v1::Key key;
    auto status = admin->GetKey(ContextWithDeadline().get(), get, &key);
    if (!status.ok()) findings.Add(absl::StrCat("GetKey ", name, ": ", Describe(status)));
    std::string seg_token;
    do {
      clavis::v1::ListSegmentsRequest request;
      request.set_parent(name);
      request.set_page_size(1000);
      request.set_page_token(seg_token);
      clavis::v1::ListSegmentsResponse response;
      status = admin->ListSegments(ContextWithDeadline().get(), request, &response);
      if (!status.ok()) {
        findings.Add(absl::StrCat("ListSegments ", name, ": ", Describe(status)));
        break;
      }
      for (const auto& s : response.segments()) segments_of[name].insert(s.segment());
      seg_token = response.next_page_token();
    } while (!seg_token.empty());
    stats.segments_listed += segments_of[name].size();
  }

  // Acknowledged keys and versions.
  for (const auto& [name, facts] : ledger.keys) {
    auto it = listed.find(name);
    if (it == listed.end()) {
      findings.Add(absl::StrCat("acknowledged key ", name, " is missing after the crash"));
      continue;
    }
    const clavis::v1::Key& key = it->second;
    if (key.state() != KeyState::ENABLED) {
      findings.Add(absl::StrCat(name, " is ", clavis::v1::KeyState_Name(key.state())));
    }
    if (key.primary_version() < facts.max_acked_version) {
      findings.Add(absl::StrCat(name, " has primary version ", key.primary_version(),
                                " but rotation to version ", facts.max_acked_version,
                                " was acknowledged"));
    }
    std::map<uint32_t, const clavis::v1::KeyVersion*> versions;
    for (const auto& v : key.versions()) versions[v.version()] = &v;
    for (const auto& [version, kcv] : facts.versions) {
      auto v = versions.find(version);
      if (v == versions.end()) {
        findings.Add(absl::StrCat("acknowledged version ", version, " of ", name, " is missing"));
        continue;
      }
      if (v->second->state() != KeyState::ENABLED) {
        findings.Add(absl::StrCat(name, " version ", version, " is ",
                                  clavis::v1::KeyState_Name(v->second->state())));
      }
      if (!kcv.empty() && v->second->key_check_value() != kcv) {
        findings.Add(absl::StrCat(name, " version ", version, " has key check value ",
                                  v->second->key_check_value(), ", acknowledged with ", kcv));
      }
    }
  }

  // Acknowledged segments exist.
  for (const auto& [key, labels] : ledger.plain_segments) {
    for (const auto& label : labels) {
      if (segments_of[key].count(label) == 0) {
        findings.Add(
            absl::StrCat("acknowledged segment ", SegmentResource(key, label), " is missing"));
      }
    }
  }

  // Revocable segments are in an allowed state.
  std::map<std::string, KeyState> revocable_state;
  for (RevocableSegment& s : ledger.revocable) {
    const std::string name = SegmentResource(s.key, s.segment);
    clavis::v1::SegmentRequest request;
    request.set_name(name);
    clavis::v1::Segment segment;
    auto status = admin->GetSegment(ContextWithDeadline().get(), request, &segment);
    if (!status.ok()) {
      findings.Add(absl::StrCat("GetSegment ", name, ": ", Describe(status)));
      continue;
    }
    ++stats.revocable_checked;
    if (s.possible_states.count(segment.state()) == 0) {
      std::vector<std::string> allowed;
      for (int state : s.possible_states) allowed.push_back(clavis::v1::KeyState_Name(state));
      findings.Add(absl::StrCat(name, " is ", clavis::v1::KeyState_Name(segment.state()),
                                " but the acknowledged calls allow only ",
                                absl::StrJoin(allowed, " or ")));
    }
    s.possible_states = {static_cast<int>(segment.state())};
    revocable_state[name] = segment.state();
  }

  // Every acknowledged blob decrypts to its plaintext (revocable ones: iff
  // their segment is enabled).
  for (size_t begin = 0; begin < ledger.blobs.size(); begin += kBatch) {
    const size_t end = std::min(ledger.blobs.size(), begin + kBatch);
    clavis::v1::BatchDecryptRequest request;
    for (size_t i = begin; i < end; ++i) {
      auto* item = request.add_requests();
      item->set_ciphertext_blob(ledger.blobs[i].blob);
      item->mutable_encryption_context()->insert(ledger.blobs[i].context.begin(),
                                                 ledger.blobs[i].context.end());
    }
    clavis::v1::BatchDecryptResponse response;
    auto status =
        data->BatchDecrypt(ContextWithDeadline(absl::Seconds(30)).get(), request, &response);
    if (!status.ok() || response.items_size() != static_cast<int>(end - begin)) {
      findings.Add(absl::StrCat("BatchDecrypt: ", Describe(status), " (", response.items_size(),
                                " items for ", end - begin, ")"));
      break;
    }
    for (size_t i = begin; i < end; ++i) {
      const AckedBlob& blob = ledger.blobs[i];
      const auto& item = response.items(static_cast<int>(i - begin));
      const std::string name = SegmentResource(blob.key, blob.segment);
      bool expect_ok = true;
      if (blob.revocable) {
        auto it = revocable_state.find(name);
        if (it == revocable_state.end()) continue;  // reported above
        expect_ok = it->second == KeyState::ENABLED;
      }
      ++stats.blobs_checked;
      if (!expect_ok) {
        if (item.status().code() != static_cast<int>(grpc::StatusCode::FAILED_PRECONDITION)) {
          findings.Add(absl::StrCat("blob #", i, " of revoked ", name, " gave code ",
                                    item.status().code(), ": ", item.status().message()));
        }
        continue;
      }
      if (item.status().code() != 0) {
        findings.Add(absl::StrCat("acknowledged blob #", i, " of ", name,
                                  " does not decrypt: code ", item.status().code(), ": ",
                                  item.status().message()));
      } else if (item.result().plaintext() != blob.plaintext ||
                 item.result().segment() != blob.segment || item.result().key() != blob.key) {
        findings.Add(absl::StrCat("acknowledged blob #", i, " of ", name,
                                  " decrypts to other bytes or names another key/segment (",
                                  item.result().key(), " ", item.result().segment(), ")"));
      }
    }
  }
  return stats;
}

uint64_t ChooseSeed() {
  if (const char* env = std::getenv("CLAVIS_CRASH_SEED"); env != nullptr) {
    uint64_t seed = 0;
    if (absl::SimpleAtoi(env, &seed)) return seed;
  }
  return std::random_device{}() ^ (static_cast<uint64_t>(std::random_device{}()) << 32);
}

TEST(CrashTest, EveryAcknowledgedCallSurvivesKillMinus9) {
  const uint64_t seed = ChooseSeed();
  std::cout << "crash_test seed: " << seed << " (replay with CLAVIS_CRASH_SEED=" << seed << ")"
            << std::endl;
  ::testing::Test::RecordProperty("seed", std::to_string(seed));
  SCOPED_TRACE(absl::StrCat("seed ", seed));
  std::mt19937_64 rng(seed);

  TempDir dir;
  ClavisdOptions options;
  options.data_dir = dir.path() + "/data";
  ClavisdProcess clavisd(options);
  Ledger ledger;
  OpCounts total;
  const absl::Time test_start = absl::Now();

  {
    auto started = clavisd.Start();
    ASSERT_TRUE(started.ok()) << started;
  }
  // Each cycle runs on the server the previous one restarted and verified.
  for (int cycle = 0; cycle < kCycles; ++cycle) {
    SCOPED_TRACE(absl::StrCat("cycle ", cycle));
    const int threads = std::uniform_int_distribution<int>(4, 6)(rng);
    const absl::Duration run_for =
        absl::Milliseconds(std::uniform_int_distribution<int>(300, 1500)(rng));
    {
      // Hand the revocable segments of earlier cycles to this cycle's threads.
      std::lock_guard<std::mutex> lock(ledger.mu);
      for (size_t i = 0; i < ledger.revocable.size(); ++i) {
        ledger.revocable[i].owner = static_cast<int>(i % threads);
      }
    }
    const size_t blobs_before = ledger.blobs.size();

    std::atomic<bool> killed{false};
    std::atomic<bool> stop{false};
    std::vector<std::unique_ptr<Worker>> workers;
    for (int t = 0; t < threads; ++t) {
      workers.push_back(
          std::make_unique<Worker>(t, cycle, rng(), &ledger, clavisd, &killed, &stop));
    }
    std::vector<std::thread> running;
    for (auto& w : workers) running.emplace_back([&w] { w->Run(); });

    absl::SleepFor(run_for);
    killed.store(true);
    clavisd.Kill();
    // Let the threads run into the dead server for a moment (UNAVAILABLE).
    absl::SleepFor(absl::Milliseconds(50));
    stop.store(true);
    for (auto& t : running) t.join();

    OpCounts cycle_counts;
    for (const auto& w : workers) cycle_counts.Add(w->counts());
    total.Add(cycle_counts);
    {
      std::lock_guard<std::mutex> lock(ledger.mu);
      for (const auto& u : ledger.unexpected) ADD_FAILURE() << u;
      ledger.unexpected.clear();
    }

    {
      auto started = clavisd.Start();
      ASSERT_TRUE(started.ok()) << "restart after kill -9: " << started;
    }
    const absl::Time verify_start = absl::Now();
    const VerifyStats stats = Verify(clavisd, ledger);
    std::cout << "cycle " << cycle << ": " << threads << " threads, killed after "
              << absl::FormatDuration(run_for) << "; acknowledged " << cycle_counts.Total()
              << " calls (CreateKey " << cycle_counts.create << ", RotateKey "
              << cycle_counts.rotate << ", GenerateDataKey " << cycle_counts.generate
              << ", Encrypt " << cycle_counts.encrypt << ", RevokeSegment " << cycle_counts.revoke
              << ", EnableSegment " << cycle_counts.enable << "; " << cycle_counts.new_segment
              << " created a segment; ABORTED " << cycle_counts.aborted << "), "
              << cycle_counts.after_kill << " failed after the kill, "
              << ledger.blobs.size() - blobs_before << " new blobs; verified " << stats.keys_listed
              << " keys, " << stats.segments_listed << " segments, " << stats.blobs_checked
              << " blobs, " << stats.revocable_checked << " revocable segments in "
              << absl::FormatDuration(
                     absl::Trunc(absl::Now() - verify_start, absl::Milliseconds(1)))
              << std::endl;
    EXPECT_GT(cycle_counts.Total(), 0) << "no call was acknowledged in this cycle";
    // The kill hit a server under load: calls were still being made.
    EXPECT_GT(cycle_counts.after_kill, 0) << "no call was made after the kill";
    if (::testing::Test::HasFailure()) break;
  }

  std::cout << "total: " << total.Total() << " acknowledged calls over " << kCycles
            << " kill -9 cycles, " << ledger.keys.size() << " keys, " << ledger.blobs.size()
            << " blobs, " << ledger.revocable.size() << " revocable segments, in "
            << absl::FormatDuration(absl::Trunc(absl::Now() - test_start, absl::Milliseconds(1)))
            << std::endl;
  EXPECT_TRUE(clavisd.Stop().ok());
}

}  // namespace
}  // namespace clavis::testing
