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
// clavis-rotator runs beside clavisd (a quarter of the keys rotate every
// second, a quarter of them rotate their segment keys every second, so it
// rotates and re-wraps all the time) and is killed with SIGKILL too: per
// cycle, before clavisd, after it, or alone; clavisd is sometimes killed
// alone (the rotator lives on and reconnects). Every rotation the rotator
// logged as done must be there after the restart. While clavisd is down:
//  - `clavisctl audit verify` reports the crash (exit 4: a torn final record
//    or an unverified tail), never tampering, and the log holds an OK record
//    of every acknowledged CreateKey and at least as many OK RotateKey
//    records per key as rotations were acknowledged (workers and rotator);
//  - a copy of the store, opened in-process with the root key, has no
//    half-written key or segment: versions numbered 1..n, the primary among
//    them, and every master-key version and every segment-key version
//    unwraps.
// After the last cycle clavisd stops cleanly and `audit verify` passes the
// whole log (exit 0, one AuditLogRecovered alert per crash).
// State accumulates over the cycles: later cycles check the earlier ones too.
//
// The seed is printed; CLAVIS_CRASH_SEED=<n> replays the same schedule (the
// thread interleaving, of course, differs).
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
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
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "kms/audit/audit_query.h"
#include "kms/keys/key_repository.h"
#include "kms/keys/names.h"
#include "kms/root/key_file_provider.h"
#include "kms/storage/rocksdb_store.h"
#include "nlohmann/json.hpp"
#include "spdlog/spdlog.h"
#include "tests/harness/clavisd_process.h"
#include "tests/harness/run_shell.h"
#include "tests/harness/spawn.h"

namespace clavis::testing {
namespace {

using clavis::v1::KeyState;

constexpr char kTenant[] = "crash";
constexpr int kCycles = 8;      // each kill plan twice
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
  // Acknowledged RotateKey calls of the worker threads, by key.
  std::map<std::string, int> rotations;
};

// What clavis-rotator logged as done (each line is written after the OK
// answer): master-key versions it rotated to, by key, and the highest
// segment-key version it rotated each segment to.
struct RotatorFacts {
  std::map<std::string, std::set<uint32_t>> key_versions;
  std::map<std::string, uint32_t> segment_versions;  // by segment resource name
  size_t key_rotations = 0;
  size_t segment_rotations = 0;
  size_t rewraps = 0;  // "re-wrapped N segment keys of K" lines
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
    // Work for clavis-rotator: a quarter of the keys rotate every second
    // (the next time is a period after creation), a quarter of them rotate
    // their segment keys every second (on its full scans).
    if (rng_() % 4 == 0) request.mutable_rotation_period()->set_seconds(1);
    if (rng_() % 4 == 0) request.mutable_segment_rotation_period()->set_seconds(1);
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
    ++ledger_->rotations[request.name()];
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

// Versions numbered 1..n in order, the primary among them; "" if so.
template <typename Versions>
std::string VersionProblem(const Versions& versions, uint32_t primary) {
  for (int i = 0; i < versions.size(); ++i) {
    if (versions.Get(i).version() != static_cast<uint32_t>(i + 1)) {
      return absl::StrCat("version #", i, " is numbered ", versions.Get(i).version());
    }
  }
  if (primary < 1 || primary > static_cast<uint32_t>(versions.size())) {
    return absl::StrCat("primary version ", primary, " of ", versions.size());
  }
  return "";
}

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

// Checks the ledger and what the rotator logged against a freshly restarted
// clavisd, and that no key holds fewer rotations than the audit log says
// were done (`audited_rotations`, by key). Narrows the possible states of
// revocable segments to what was found.
VerifyStats Verify(ClavisdProcess& clavisd, Ledger& ledger, const RotatorFacts& rotator,
                   const std::map<std::string, int>& audited_rotations) {
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
  std::map<std::string, std::map<std::string, uint32_t>> segments_of;  // label -> primary
  for (const auto& [name, listed_key] : listed) {
    clavis::v1::GetKeyRequest get;
    get.set_name(name);
    clavis::v1::Key key;
    auto status = admin->GetKey(ContextWithDeadline().get(), get, &key);
    if (!status.ok()) findings.Add(absl::StrCat("GetKey ", name, ": ", Describe(status)));
    // No half-created version: 1..n, the primary among them.
    if (std::string p = VersionProblem(key.versions(), key.primary_version());
        status.ok() && !p.empty()) {
      findings.Add(absl::StrCat("GetKey ", name, " shows a half-written key: ", p));
    }
    if (auto it = audited_rotations.find(name);
        status.ok() && it != audited_rotations.end() && it->second >= key.versions_size()) {
      findings.Add(absl::StrCat(name, " has ", key.versions_size(), " versions but the audit log ",
                                "holds ", it->second, " OK rotations of it"));
    }
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
      for (const auto& s : response.segments())
        segments_of[name][s.segment()] = s.primary_version();
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

  // Rotations clavis-rotator logged as done.
  for (const auto& [name, versions] : rotator.key_versions) {
    auto it = listed.find(name);
    if (it == listed.end()) {
      findings.Add(absl::StrCat("the rotator rotated ", name, ", which is missing"));
      continue;
    }
    if (it->second.primary_version() < *versions.rbegin()) {
      findings.Add(absl::StrCat(name, " has primary version ", it->second.primary_version(),
                                " but the rotator rotated it to version ", *versions.rbegin()));
    }
  }
  for (const auto& [segment, version] : rotator.segment_versions) {
    const size_t at = segment.find("/segments/");
    const std::string key = segment.substr(0, at);
    const std::string label = at == std::string::npos ? "" : segment.substr(at + 10);
    auto it = segments_of[key].find(label);
    if (it == segments_of[key].end()) {
      findings.Add(absl::StrCat("the rotator rotated segment ", segment, ", which is missing"));
    } else if (it->second < version) {
      findings.Add(absl::StrCat(segment, " has primary segment-key version ", it->second,
                                " but the rotator rotated it to version ", version));
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

// clavis-rotator as a child process, as the tenant's admin (mTLS), busy:
// a pass every 50 ms, a full scan (segment rotations) on the first pass and
// every 5 seconds (a full scan of every segment takes seconds). Its log
// (stderr, info level) is appended to one file for the whole test.
class RotatorProcess {
 public:
  RotatorProcess(ClavisdProcess* clavisd, std::string log_file)
      : clavisd_(clavisd), log_file_(std::move(log_file)) {}
  ~RotatorProcess() { Kill(); }

  void Start() {
    const std::string prefix = clavisd_->client_cert_prefix(PrincipalName(kTenant));
    std::vector<std::string> args = {CLAVIS_ROTATOR_BINARY,
                                     "--endpoint",
                                     absl::StrCat("localhost:", clavisd_->port()),
                                     "--ca_cert",
                                     clavisd_->ca_cert_file(),
                                     "--cert",
                                     prefix + ".crt",
                                     "--key",
                                     prefix + ".key",
                                     "--tenant",
                                     kTenant,
                                     "--interval_s",
                                     "0.05",
                                     "--full_scan_s",
                                     "5",
                                     "--retire_grace_s",
                                     "3600",
                                     "--metrics_listen",
                                     "",
                                     "--log_level",
                                     "info"};
    const pid_t pid = SpawnLogged(std::move(args), log_file_);
    ASSERT_GE(pid, 0) << "fork";
    pid_ = pid;
    ++starts_;
  }
  // SIGKILL; true if it was still running then (it did not exit on its own).
  bool Kill() { return Signal(SIGKILL) == 128 + SIGKILL; }
  // SIGTERM: a clean exit (0) expected.
  int Stop() { return Signal(SIGTERM); }
  bool running() const { return pid_ > 0; }
  int starts() const { return starts_; }
  const std::string& log_file() const { return log_file_; }

 private:
  int Signal(int signal) {
    if (pid_ <= 0) return -1;
    ::kill(pid_, signal);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

  ClavisdProcess* const clavisd_;
  const std::string log_file_;
  pid_t pid_ = -1;
  int starts_ = 0;
};

// The rotations clavis-rotator logged as done, from its whole log:
//   ... rotator: rotated tenants/t/keys/k to version 7 (due ...)
//   ... rotator: rotated segment tenants/t/keys/k/segments/s to segment-key version 3
// A line cut by a kill has no complete number at the end and is skipped.
RotatorFacts ReadRotatorLog(const std::string& path) {
  RotatorFacts facts;
  std::ifstream in(path);
  std::string line;
  constexpr absl::string_view kKey = "rotator: rotated ";
  constexpr absl::string_view kSegment = "rotator: rotated segment ";
  while (std::getline(in, line)) {
    absl::string_view rest = line;
    if (absl::StrContains(rest, "rotator: re-wrapped ")) ++facts.rewraps;
    if (size_t at = rest.find(kSegment); at != absl::string_view::npos) {
      rest.remove_prefix(at + kSegment.size());
      const size_t to = rest.find(" to segment-key version ");
      uint32_t version = 0;
      if (to == absl::string_view::npos ||
          !absl::SimpleAtoi(rest.substr(to + strlen(" to segment-key version ")), &version)) {
        continue;
      }
      uint32_t& max = facts.segment_versions[std::string(rest.substr(0, to))];
      max = std::max(max, version);
      ++facts.segment_rotations;
    } else if (size_t at = rest.find(kKey); at != absl::string_view::npos) {
      rest.remove_prefix(at + kKey.size());
      const size_t to = rest.find(" to version ");
      const size_t due = rest.find(" (due ");
      uint32_t version = 0;
      if (to == absl::string_view::npos || due == absl::string_view::npos || due < to ||
          !absl::SimpleAtoi(rest.substr(to + strlen(" to version "), due - to - 12), &version)) {
        continue;
      }
      facts.key_versions[std::string(rest.substr(0, to))].insert(version);
      ++facts.key_rotations;
    }
  }
  return facts;
}

struct AuditStats {
  int exit_code = -1;
  std::string problem;  // AuditProblemName, e.g. "torn record"
  uint64_t records = 0;
  uint64_t unverified_tail = 0;
  // OK RotateKey records by key (for the after-restart check: every one of
  // them is in the store).
  std::map<std::string, int> rotations;
};

// `clavisctl audit verify --json` on the audit log of a killed clavisd:
// exit 4 (FAILED_PRECONDITION: no closing checkpoint, the tail maybe torn),
// never tampering. Then the records themselves: an OK CreateKey of every
// acknowledged key, and per key at least as many OK RotateKey records as
// rotations were acknowledged to the workers and logged by the rotator.
// (Calls are audited under their policy action: RotateKey as "Rotate".)
AuditStats CheckAuditAfterCrash(const std::string& audit_dir, const std::string& public_key_file,
                                const Ledger& ledger, const RotatorFacts& rotator) {
  AuditStats stats;
  CommandResult verify =
      RunShell(absl::StrCat(CLAVISCTL_BINARY, " audit verify --dir ", audit_dir,
                            " --public-key-file ", public_key_file, " --json 2>/dev/null"));
  stats.exit_code = verify.exit_code;
  auto report = nlohmann::json::parse(verify.out, nullptr, /*allow_exceptions=*/false);
  if (report.is_discarded() || !report.is_object()) {
    ADD_FAILURE() << "audit verify printed no JSON (exit " << verify.exit_code
                  << "): " << verify.out;
    return stats;
  }
  stats.problem = report.value("problem", "");
  stats.records = report.value("records", uint64_t{0});
  stats.unverified_tail = report.value("unverifiedTailRecords", uint64_t{0});
  EXPECT_EQ(verify.exit_code, 4) << "a crashed log: no closing checkpoint, nothing altered\n"
                                 << verify.out;
  EXPECT_FALSE(report.value("tampered", true)) << "a crash must not look like tampering\n"
                                               << verify.out;
  EXPECT_FALSE(report.value("ok", true)) << verify.out;

  std::set<std::string> created;
  kms::AuditFilter filter;
  absl::Status read = kms::ForEachAuditRecord(audit_dir, filter, [&](const kms::AuditRecord& r) {
    if (r.kind != kms::AuditRecordKind::kCall || r.result_code != absl::StatusCode::kOk) {
      return true;
    }
    if (r.action == "CreateKey") created.insert(r.resource);
    if (r.action == "Rotate") ++stats.rotations[r.resource];  // RotateKey, by policy action
    return true;
  });
  EXPECT_TRUE(read.ok()) << "reading the crashed audit log: " << read;
  Findings findings;
  for (const auto& [name, facts] : ledger.keys) {
    if (created.count(name) == 0) {
      findings.Add(absl::StrCat("acknowledged CreateKey of ", name, " has no OK audit record"));
    }
    int acked = 0;
    if (auto it = ledger.rotations.find(name); it != ledger.rotations.end()) acked += it->second;
    if (auto it = rotator.key_versions.find(name); it != rotator.key_versions.end()) {
      acked += static_cast<int>(it->second.size());
    }
    const int audited = stats.rotations.count(name) ? stats.rotations.at(name) : 0;
    if (audited < acked) {
      findings.Add(absl::StrCat(name, ": ", acked, " acknowledged rotations but only ", audited,
                                " OK Rotate audit records"));
    }
  }
  return stats;
}

struct StoreStats {
  size_t keys = 0;
  size_t master_versions = 0;
  size_t segments = 0;
  size_t segment_versions = 0;
};

// Opens a copy of a killed clavisd's store in-process with its root key
// and checks that nothing is half-written: every key and segment record
// has versions 1..n and its primary among them, the primary master-key
// version is enabled with a key check value, every master-key version with
// material and every segment-key version unwraps (the segment key under
// the master-key version it names).
StoreStats CheckStoreUnwraps(const std::string& data_dir, const std::string& scratch) {
  StoreStats stats;
  // The store and the key-file root key log their opening: not news here.
  spdlog::set_level(spdlog::level::err);
  std::filesystem::remove_all(scratch);
  std::filesystem::copy(data_dir + "/db", scratch, std::filesystem::copy_options::recursive);
  kms::RocksDbStoreOptions options;
  options.path = scratch;
  options.create_if_missing = false;
  auto store = kms::RocksDbStore::Open(options);
  if (!store.ok()) {
    ADD_FAILURE() << "opening a copy of the crashed store: " << store.status();
    return stats;
  }
  auto root = kms::KeyFileRootKeyProvider::Open(data_dir + "/root.key", false);
  if (!root.ok()) {
    ADD_FAILURE() << "root key: " << root.status();
    return stats;
  }
  kms::KeyRepository repository(store->get(), root->get());
  Findings findings;
  auto keys = repository.ListKeys(kTenant, "", 0);
  if (!keys.ok()) {
    findings.Add(absl::StrCat("ListKeys of the crashed store: ", keys.status().ToString()));
    return stats;
  }
  for (const auto& record : *keys) {
    ++stats.keys;
    const kms::KeyName name{record.tenant(), record.key_id()};
    const std::string display = name.ToString();
    if (std::string p = VersionProblem(record.versions(), record.primary_version()); !p.empty()) {
      findings.Add(absl::StrCat(display, " is half-written: ", p));
      continue;
    }
    const auto& primary = record.versions(static_cast<int>(record.primary_version()) - 1);
    if (primary.state() != KeyState::ENABLED || primary.key_check_value().empty() ||
        primary.root_wrapped_material().empty()) {
      findings.Add(absl::StrCat(display, " primary version ", primary.version(), " is ",
                                clavis::v1::KeyState_Name(primary.state()), " with ",
                                primary.root_wrapped_material().size(), " bytes of material"));
    }
    auto entry = repository.GetKey(name);
    if (!entry.ok()) {
      findings.Add(absl::StrCat("GetKey ", display, ": ", entry.status().ToString()));
      continue;
    }
    for (const auto& v : record.versions()) {
      if (v.root_wrapped_material().empty()) continue;
      ++stats.master_versions;
      auto aead = repository.MasterAead(**entry, v.version());
      if (!aead.ok()) {
        findings.Add(absl::StrCat(display, " version ", v.version(),
                                  " does not unwrap: ", aead.status().ToString()));
      }
    }
    auto segments = repository.ListSegments(name, "", "", 0);
    if (!segments.ok()) {
      findings.Add(absl::StrCat("ListSegments ", display, ": ", segments.status().ToString()));
      continue;
    }
    for (const auto& segment : *segments) {
      ++stats.segments;
      const kms::SegmentName segment_name{name, segment.segment()};
      if (std::string p = VersionProblem(segment.versions(), segment.primary_version());
          !p.empty()) {
        findings.Add(absl::StrCat(segment_name.ToString(), " is half-written: ", p));
        continue;
      }
      auto segment_entry = repository.GetSegment(segment_name);
      if (!segment_entry.ok()) {
        findings.Add(absl::StrCat("GetSegment ", segment_name.ToString(), ": ",
                                  segment_entry.status().ToString()));
        continue;
      }
      for (const auto& v : segment.versions()) {
        ++stats.segment_versions;
        auto aead = repository.SegmentAead(**entry, **segment_entry, v.version());
        if (!aead.ok()) {
          findings.Add(absl::StrCat(segment_name.ToString(), " segment-key version ", v.version(),
                                    " (under master-key version ", v.key_version(),
                                    ") does not unwrap: ", aead.status().ToString()));
        }
      }
    }
  }
  store->reset();
  std::filesystem::remove_all(scratch);
  return stats;
}

uint64_t ChooseSeed() {
  if (const char* env = std::getenv("CLAVIS_CRASH_SEED"); env != nullptr) {
    uint64_t seed = 0;
    if (absl::SimpleAtoi(env, &seed)) return seed;
  }
  return std::random_device{}() ^ (static_cast<uint64_t>(std::random_device{}()) << 32);
}

// Who is killed in a cycle, and in which order.
enum class KillPlan { kClavisdOnly, kRotatorOnly, kRotatorFirst, kClavisdFirst };

const char* KillPlanName(KillPlan plan) {
  switch (plan) {
    case KillPlan::kClavisdOnly:
      return "clavisd only";
    case KillPlan::kRotatorOnly:
      return "rotator only";
    case KillPlan::kRotatorFirst:
      return "rotator, then clavisd";
    case KillPlan::kClavisdFirst:
      return "clavisd, then rotator";
  }
  return "?";
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
  // A clavisd killed alone comes back on its port: the rotator reconnects.
  options.keep_port_on_restart = true;
  ClavisdProcess clavisd(options);
  RotatorProcess rotator(&clavisd, dir.path() + "/rotator.log");
  Ledger ledger;
  OpCounts total;
  int clavisd_kills = 0, rotator_kills = 0;
  const absl::Time test_start = absl::Now();

  {
    auto started = clavisd.Start();
    ASSERT_TRUE(started.ok()) << started;
  }
  // The audit signing key pinned outside the data directory, as an
  // operator keeps it.
  const std::string pinned_key = dir.path() + "/audit-signing.pub";
  std::filesystem::copy_file(options.data_dir + "/audit-signing.pub", pinned_key);
  const std::string audit_dir = options.data_dir + "/audit";

  // Every plan twice, in a seeded order.
  std::vector<KillPlan> plans;
  for (int i = 0; i < kCycles; ++i) plans.push_back(static_cast<KillPlan>(i % 4));
  std::shuffle(plans.begin(), plans.end(), rng);

  // Each cycle runs on the server the previous one restarted and verified.
  for (int cycle = 0; cycle < kCycles; ++cycle) {
    const KillPlan plan = plans[cycle];
    SCOPED_TRACE(absl::StrCat("cycle ", cycle, " (kill ", KillPlanName(plan), ")"));
    if (!rotator.running()) rotator.Start();
    const int threads = std::uniform_int_distribution<int>(4, 6)(rng);
    const absl::Duration run_for =
        absl::Milliseconds(std::uniform_int_distribution<int>(500, 2000)(rng));
    // When the rotator dies relative to the start (before clavisd) or to
    // clavisd's death (after it).
    const double rotator_at = std::uniform_real_distribution<double>(0.2, 0.95)(rng);
    const absl::Duration rotator_after =
        absl::Milliseconds(std::uniform_int_distribution<int>(0, 300)(rng));
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

    auto kill_rotator = [&] {
      EXPECT_TRUE(rotator.Kill()) << "clavis-rotator had exited before its kill; log "
                                  << rotator.log_file();
      ++rotator_kills;
    };
    const bool kill_clavisd = plan != KillPlan::kRotatorOnly;
    if (plan == KillPlan::kRotatorFirst) {
      absl::SleepFor(run_for * rotator_at);
      kill_rotator();
      absl::SleepFor(run_for * (1 - rotator_at));
    } else {
      absl::SleepFor(run_for);
    }
    if (kill_clavisd) {
      killed.store(true);
      clavisd.Kill();
      ++clavisd_kills;
    }
    if (plan == KillPlan::kClavisdFirst) {
      absl::SleepFor(rotator_after);  // the rotator is failing its calls meanwhile
      kill_rotator();
    }
    if (plan == KillPlan::kRotatorOnly) kill_rotator();
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
    // What the rotator acknowledged: read while clavisd is down, so every
    // rotation logged was answered by the process that was killed.
    const RotatorFacts rotated = ReadRotatorLog(rotator.log_file());

    AuditStats audit;
    StoreStats store;
    if (kill_clavisd) {
      audit = CheckAuditAfterCrash(audit_dir, pinned_key, ledger, rotated);
      store = CheckStoreUnwraps(options.data_dir, dir.path() + "/store-copy");
      auto started = clavisd.Start();
      ASSERT_TRUE(started.ok()) << "restart after kill -9: " << started;
    }
    const absl::Time verify_start = absl::Now();
    const VerifyStats stats = Verify(clavisd, ledger, rotated, audit.rotations);
    std::cout << "cycle " << cycle << ": kill " << KillPlanName(plan) << "; " << threads
              << " threads, " << absl::FormatDuration(run_for) << "; acknowledged "
              << cycle_counts.Total() << " calls (CreateKey " << cycle_counts.create
              << ", RotateKey " << cycle_counts.rotate << ", GenerateDataKey "
              << cycle_counts.generate << ", Encrypt " << cycle_counts.encrypt << ", RevokeSegment "
              << cycle_counts.revoke << ", EnableSegment " << cycle_counts.enable << "; "
              << cycle_counts.new_segment << " created a segment; ABORTED " << cycle_counts.aborted
              << "), " << cycle_counts.after_kill << " failed after the kill, "
              << ledger.blobs.size() - blobs_before
              << " new blobs; rotator so far: " << rotated.key_rotations << " rotations of "
              << rotated.key_versions.size() << " keys, " << rotated.segment_rotations << " of "
              << rotated.segment_versions.size() << " segments, " << rotated.rewraps << " re-wraps";
    if (kill_clavisd) {
      std::cout << "; audit verify exit " << audit.exit_code << " (" << audit.problem << ", "
                << audit.records << " records, " << audit.unverified_tail
                << " unverified at the tail); store copy: " << store.keys << " keys, "
                << store.master_versions << " master-key versions, " << store.segments
                << " segments, " << store.segment_versions << " segment-key versions unwrap";
    }
    std::cout << "; verified " << stats.keys_listed << " keys, " << stats.segments_listed
              << " segments, " << stats.blobs_checked << " blobs, " << stats.revocable_checked
              << " revocable segments in "
              << absl::FormatDuration(
                     absl::Trunc(absl::Now() - verify_start, absl::Milliseconds(1)))
              << std::endl;
    EXPECT_GT(cycle_counts.Total(), 0) << "no call was acknowledged in this cycle";
    // The kill hit a server under load: calls were still being made.
    if (kill_clavisd) {
      EXPECT_GT(cycle_counts.after_kill, 0) << "no call was made after the kill";
    }
    if (::testing::Test::HasFailure()) break;
  }

  // The rotator did its job during the test (else the kills proved little).
  const RotatorFacts rotated = ReadRotatorLog(rotator.log_file());
  EXPECT_GT(rotated.key_versions.size(), 0u) << "the rotator rotated no key";
  EXPECT_GT(rotated.segment_versions.size(), 0u) << "the rotator rotated no segment";
  if (rotator.running()) {
    EXPECT_EQ(rotator.Stop(), 0) << "SIGTERM is a clean exit";
  }

  // A clean stop closes the log: the whole chain, across every crash and
  // recovery, verifies, with one recovery alert per crash.
  EXPECT_TRUE(clavisd.Stop().ok());
  CommandResult verify = RunShell(absl::StrCat(CLAVISCTL_BINARY, " audit verify --dir ", audit_dir,
                                               " --public-key-file ", pinned_key, " 2>&1"));
  EXPECT_EQ(verify.exit_code, 0) << verify.out;
  EXPECT_TRUE(absl::StrContains(verify.out, "closed cleanly")) << verify.out;
  int recovered = 0;
  kms::AuditFilter filter;
  filter.action = "AuditLogRecovered";
  EXPECT_TRUE(kms::ForEachAuditRecord(audit_dir, filter, [&](const kms::AuditRecord& r) {
                if (r.kind == kms::AuditRecordKind::kAlert) ++recovered;
                return true;
              }).ok());
  EXPECT_EQ(recovered, clavisd_kills) << "one AuditLogRecovered alert per crash";

  std::cout << "total: " << total.Total() << " acknowledged calls over " << kCycles << " cycles ("
            << clavisd_kills << " kill -9 of clavisd, " << rotator_kills << " of clavis-rotator), "
            << ledger.keys.size() << " keys, " << ledger.blobs.size() << " blobs, "
            << ledger.revocable.size() << " revocable segments, rotator: " << rotated.key_rotations
            << " rotations of " << rotated.key_versions.size() << " keys, "
            << rotated.segment_rotations << " of " << rotated.segment_versions.size()
            << " segments, " << rotated.rewraps
            << " re-wraps; audit: " << absl::StripTrailingAsciiWhitespace(verify.out) << "; in "
            << absl::FormatDuration(absl::Trunc(absl::Now() - test_start, absl::Milliseconds(1)))
            << std::endl;
}

}  // namespace
}  // namespace clavis::testing
