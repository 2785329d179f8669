// Crypto-shredding, proven on the raw files: after DestroySegment,
// DestroyKey or DestroyKeyVersion the destroyed wrapped key material appears
// in no file under the data directory (data files, WAL, MANIFEST, logs, ...),
// while the material of everything else is still there and still works.
//
// The wrapped bytes are read straight from the stored records (the test opens
// the RocksDB store itself while clavisd is stopped), and each test first
// shows that those bytes ARE found in the files before the destruction, so a
// search that could never succeed would not pass for a purge.
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "kms/keys/key_repository.h"
#include "kms/keys/names.h"
#include "kms/keys/records.pb.h"
#include "kms/storage/rocksdb_store.h"
#include "tests/harness/clavisd_process.h"

namespace clavis::testing {
namespace {

using clavis::v1::KeyState;
using kms::KeyName;
using kms::KeyRepository;
using kms::SegmentName;

constexpr char kTenant[] = "shred";

// Material to look for: a label for messages and the raw bytes.
using Needles = std::vector<std::pair<std::string, std::string>>;

void ExpectEverywhereAbsent(const std::string& dir, const Needles& needles) {
  const auto files = ReadAllFiles(dir);
  ASSERT_FALSE(files.empty());
  for (const auto& [label, bytes] : needles) {
    ASSERT_GE(bytes.size(), 32u) << label;
    std::vector<std::string> where;
    for (const auto& [path, content] : files) {
      if (content.find(bytes) != std::string::npos) where.push_back(path);
    }
    EXPECT_TRUE(where.empty()) << label << " (destroyed) is still stored in "
                               << absl::StrJoin(where, ", ");
  }
}

void ExpectSomewherePresent(const std::string& dir, const Needles& needles) {
  const auto files = ReadAllFiles(dir);
  for (const auto& [label, bytes] : needles) {
    ASSERT_GE(bytes.size(), 32u) << label;
    bool found = false;
    for (const auto& [path, content] : files) {
      if (content.find(bytes) != std::string::npos) found = true;
    }
    EXPECT_TRUE(found) << label << " is not found in any file under " << dir;
  }
}

// Opens the stopped server's store directly (clavisd must not be running:
// RocksDB locks the directory).
std::unique_ptr<kms::RocksDbStore> OpenStore(const std::string& data_dir) {
  kms::RocksDbStoreOptions options;
  options.path = data_dir + "/db";
  options.create_if_missing = false;
  auto store = kms::RocksDbStore::Open(options);
  EXPECT_TRUE(store.ok()) << store.status();
  if (!store.ok()) return nullptr;
  return *std::move(store);
}

std::optional<internal::KeyRecord> ReadKeyRecord(kms::Store& store, const KeyName& name) {
  auto raw = store.Get(KeyRepository::KeyStoreKey(name));
  EXPECT_TRUE(raw.ok()) << raw.status();
  if (!raw.ok() || !raw->has_value()) return std::nullopt;
  internal::KeyRecord record;
  EXPECT_TRUE(record.ParseFromString(**raw));
  return record;
}

std::optional<internal::SegmentRecord> ReadSegmentRecord(kms::Store& store,
                                                         const SegmentName& name) {
  auto raw = store.Get(KeyRepository::SegmentStoreKey(name));
  EXPECT_TRUE(raw.ok()) << raw.status();
  if (!raw.ok() || !raw->has_value()) return std::nullopt;
  internal::SegmentRecord record;
  EXPECT_TRUE(record.ParseFromString(**raw));
  return record;
}

// Every non-empty wrapped segment key of one segment.
void AddSegmentKeys(const internal::SegmentRecord& record, const std::string& label, Needles* out) {
  for (const auto& v : record.versions()) {
    if (!v.wrapped_key().empty()) {
      out->emplace_back(absl::StrCat(label, " segment key version ", v.version()), v.wrapped_key());
    }
  }
}

// Every root-wrapped master-key version of a key.
void AddMasterMaterial(const internal::KeyRecord& record, const std::string& label, Needles* out) {
  for (const auto& v : record.versions()) {
    if (!v.root_wrapped_material().empty()) {
      out->emplace_back(absl::StrCat(label, " version ", v.version(), " root-wrapped material"),
                        v.root_wrapped_material());
    }
  }
}

// Every segment record of a key, by label.
std::map<std::string, internal::SegmentRecord> ReadAllSegments(kms::Store& store,
                                                               const KeyName& key) {
  std::map<std::string, internal::SegmentRecord> out;
  const std::string prefix = KeyRepository::SegmentPrefix(key);
  auto rows = store.Scan(prefix, "", 0);
  EXPECT_TRUE(rows.ok()) << rows.status();
  if (!rows.ok()) return out;
  for (const auto& row : *rows) {
    internal::SegmentRecord record;
    EXPECT_TRUE(record.ParseFromString(row.value)) << row.key;
    out[row.key.substr(prefix.size())] = record;
  }
  return out;
}

struct DataKey {
  std::string segment;
  std::string plaintext;
  std::string blob;
  std::map<std::string, std::string> context;
};

class ShreddingTest : public ::testing::Test {
 protected:
  ShreddingTest() : data_dir_(dir_.path() + "/data"), clavisd_(Options(data_dir_)) {}

  static ClavisdOptions Options(const std::string& data_dir) {
    ClavisdOptions options;
    options.data_dir = data_dir;
    return options;
  }

  void SetUp() override { ASSERT_TRUE(Start()); }
  void TearDown() override {
    admin_.reset();
    data_.reset();
  }

  bool Start() {
    auto started = clavisd_.Start();
    EXPECT_TRUE(started.ok()) << started;
    if (!started.ok()) return false;
    admin_ = clavisd_.Admin(PrincipalName(kTenant));
    data_ = clavisd_.Data(PrincipalName(kTenant));
    return true;
  }
  // Drops our stubs first, so the graceful shutdown does not wait for them.
  bool Stop() {
    admin_.reset();
    data_.reset();
    auto stopped = clavisd_.Stop();
    EXPECT_TRUE(stopped.ok()) << stopped;
    return stopped.ok();
  }

  clavis::v1::Key CreateKey(const std::string& key_id) {
    clavis::v1::CreateKeyRequest request;
    request.set_parent(absl::StrCat("tenants/", kTenant));
    request.set_key_id(key_id);
    request.set_policy(TestKeyPolicy(absl::StrCat("tenants/", kTenant, "/keys/", key_id)));
    clavis::v1::Key key;
    auto status = admin_->CreateKey(ContextWithDeadline().get(), request, &key);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return key;
  }

  clavis::v1::Key RotateKey(const std::string& key) {
    clavis::v1::RotateKeyRequest request;
    request.set_name(key);
    clavis::v1::Key out;
    auto status = admin_->RotateKey(ContextWithDeadline().get(), request, &out);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return out;
  }

  DataKey Generate(const std::string& key, const std::string& segment) {
    clavis::v1::GenerateDataKeyRequest request;
    request.set_key(key);
    request.set_segment(segment);
    DataKey out;
    out.segment = segment;
    out.context["row"] = absl::StrCat(counter_++);
    request.mutable_encryption_context()->insert(out.context.begin(), out.context.end());
    clavis::v1::GenerateDataKeyResponse response;
    auto status = data_->GenerateDataKey(ContextWithDeadline().get(), request, &response);
    EXPECT_TRUE(status.ok()) << key << " " << segment << ": " << status.error_message();
    out.plaintext = response.plaintext();
    out.blob = response.ciphertext_blob();
    return out;
  }

  DataKey EncryptSmall(const std::string& key, const std::string& segment) {
    clavis::v1::EncryptRequest request;
    request.set_key(key);
    request.set_segment(segment);
    DataKey out;
    out.segment = segment;
    out.plaintext = absl::StrCat("customer record ", counter_++);
    out.context["table"] = "orders";
    request.set_plaintext(out.plaintext);
    request.mutable_encryption_context()->insert(out.context.begin(), out.context.end());
    clavis::v1::EncryptResponse response;
    auto status = data_->Encrypt(ContextWithDeadline().get(), request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    out.blob = response.ciphertext_blob();
    return out;
  }

  grpc::Status Decrypt(const DataKey& dk, std::string* plaintext) {
    clavis::v1::DecryptRequest request;
    request.set_ciphertext_blob(dk.blob);
    request.mutable_encryption_context()->insert(dk.context.begin(), dk.context.end());
    clavis::v1::DecryptResponse response;
    auto status = data_->Decrypt(ContextWithDeadline().get(), request, &response);
    *plaintext = response.plaintext();
    return status;
  }

  void ExpectDecrypts(const DataKey& dk) {
    std::string plaintext;
    auto status = Decrypt(dk, &plaintext);
    EXPECT_TRUE(status.ok()) << dk.segment << ": " << status.error_message();
    EXPECT_TRUE(plaintext == dk.plaintext) << dk.segment;
  }

  void ExpectRefusedAsDestroyed(const DataKey& dk) {
    std::string plaintext;
    auto status = Decrypt(dk, &plaintext);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION)
        << dk.segment << ": " << status.error_message();
    EXPECT_TRUE(absl::StrContains(status.error_message(), "DESTROYED")) << status.error_message();
    EXPECT_TRUE(plaintext.empty());
  }

  // Waits out a destruction window of `window` that started before now.
  static void WaitPast(absl::Duration window) { absl::SleepFor(window + absl::Milliseconds(300)); }

  static google::protobuf::Duration OneSecond() {
    google::protobuf::Duration d;
    d.set_seconds(1);
    return d;
  }

  TempDir dir_;
  const std::string data_dir_;
  ClavisdProcess clavisd_;
  std::unique_ptr<clavis::v1::KeyAdmin::Stub> admin_;
  std::unique_ptr<clavis::v1::KeyManagement::Stub> data_;
  int counter_ = 0;
};

TEST_F(ShreddingTest, DestroySegmentPurgesOnlyThatSegmentKey) {
  const clavis::v1::Key key = CreateKey("orders");
  ASSERT_FALSE(key.name().empty());
  const std::string a_name = key.name() + "/segments/a";
  // Segment a gets two key versions (rotated), b one.
  std::vector<DataKey> a_keys = {Generate(key.name(), "a"), EncryptSmall(key.name(), "a")};
  {
    clavis::v1::SegmentRequest request;
    request.set_name(a_name);
    clavis::v1::Segment segment;
    auto status = admin_->RotateSegment(ContextWithDeadline().get(), request, &segment);
    ASSERT_TRUE(status.ok()) << status.error_message();
    ASSERT_EQ(segment.primary_version(), 2u);
  }
  a_keys.push_back(Generate(key.name(), "a"));
  std::vector<DataKey> b_keys = {Generate(key.name(), "b"), Generate(key.name(), "b"),
                                 EncryptSmall(key.name(), "b")};
  ASSERT_TRUE(Stop());

  const KeyName key_name{kTenant, "orders"};
  Needles a_material;
  Needles b_material;
  {
    auto store = OpenStore(data_dir_);
    ASSERT_NE(store, nullptr);
    auto a = ReadSegmentRecord(*store, SegmentName{key_name, "a"});
    auto b = ReadSegmentRecord(*store, SegmentName{key_name, "b"});
    ASSERT_TRUE(a.has_value());
    ASSERT_TRUE(b.has_value());
    AddSegmentKeys(*a, "segment a", &a_material);
    AddSegmentKeys(*b, "segment b", &b_material);
  }
  ASSERT_EQ(a_material.size(), 2u);
  ASSERT_EQ(b_material.size(), 1u);
  // The search is meaningful: before destruction the bytes are found.
  ExpectSomewherePresent(data_dir_, a_material);
  ExpectSomewherePresent(data_dir_, b_material);
  if (HasFailure()) return;

  ASSERT_TRUE(Start());
  // Everything works before (and the server now caches the unwrapped keys).
  for (const DataKey& dk : a_keys) ExpectDecrypts(dk);
  for (const DataKey& dk : b_keys) ExpectDecrypts(dk);
  {
    clavis::v1::ScheduleSegmentDestructionRequest request;
    request.set_name(a_name);
    *request.mutable_pending_window() = OneSecond();
    clavis::v1::Segment segment;
    auto status =
        admin_->ScheduleSegmentDestruction(ContextWithDeadline().get(), request, &segment);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(segment.state(), KeyState::PENDING_DESTRUCTION);
  }
  // Still stored while pending (the schedule wrote the record once more).
  ExpectSomewherePresent(data_dir_, a_material);
  WaitPast(absl::Seconds(1));
  {
    clavis::v1::SegmentRequest request;
    request.set_name(a_name);
    clavis::v1::Segment segment;
    auto status =
        admin_->DestroySegment(ContextWithDeadline(absl::Seconds(30)).get(), request, &segment);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(segment.state(), KeyState::DESTROYED);
  }
  // The running server refuses at once (no stale cache) and still serves b.
  for (const DataKey& dk : a_keys) ExpectRefusedAsDestroyed(dk);
  for (const DataKey& dk : b_keys) ExpectDecrypts(dk);
  // Already gone while clavisd runs (DestroySegment returns after the purge)...
  ExpectEverywhereAbsent(data_dir_, a_material);
  ASSERT_TRUE(Stop());
  // ...and after a clean shutdown, which flushes and closes the store.
  ExpectEverywhereAbsent(data_dir_, a_material);
  ExpectSomewherePresent(data_dir_, b_material);
  {
    auto store = OpenStore(data_dir_);
    ASSERT_NE(store, nullptr);
    auto a = ReadSegmentRecord(*store, SegmentName{key_name, "a"});
    ASSERT_TRUE(a.has_value());
    EXPECT_EQ(a->state(), KeyState::DESTROYED);
    for (const auto& v : a->versions()) EXPECT_TRUE(v.wrapped_key().empty()) << v.version();
  }
  // Opening the store again left nothing behind either.
  ExpectEverywhereAbsent(data_dir_, a_material);

  ASSERT_TRUE(Start());
  for (const DataKey& dk : b_keys) ExpectDecrypts(dk);
  for (const DataKey& dk : a_keys) ExpectRefusedAsDestroyed(dk);
}

TEST_F(ShreddingTest, DestroyKeyPurgesAllMaterialAndEverySegmentKey) {
  const clavis::v1::Key doomed = CreateKey("doomed");
  const clavis::v1::Key kept = CreateKey("kept");
  ASSERT_FALSE(doomed.name().empty());
  ASSERT_FALSE(kept.name().empty());
  // Segments of the doomed key under both of its versions.
  std::vector<DataKey> doomed_keys;
  std::vector<DataKey> kept_keys;
  for (int i = 0; i < 4; ++i) {
    doomed_keys.push_back(Generate(doomed.name(), absl::StrCat("v1/s", i)));
    kept_keys.push_back(Generate(kept.name(), absl::StrCat("v1/s", i)));
  }
  EXPECT_EQ(RotateKey(doomed.name()).primary_version(), 2u);
  EXPECT_EQ(RotateKey(kept.name()).primary_version(), 2u);
  for (int i = 0; i < 4; ++i) {
    doomed_keys.push_back(Generate(doomed.name(), absl::StrCat("v2/s", i)));
    doomed_keys.push_back(EncryptSmall(doomed.name(), absl::StrCat("v1/s", i)));
    kept_keys.push_back(Generate(kept.name(), absl::StrCat("v2/s", i)));
  }
  ASSERT_TRUE(Stop());

  const KeyName doomed_name{kTenant, "doomed"};
  const KeyName kept_name{kTenant, "kept"};
  Needles doomed_material;
  Needles kept_material;
  {
    auto store = OpenStore(data_dir_);
    ASSERT_NE(store, nullptr);
    auto doomed_record = ReadKeyRecord(*store, doomed_name);
    auto kept_record = ReadKeyRecord(*store, kept_name);
    ASSERT_TRUE(doomed_record.has_value());
    ASSERT_TRUE(kept_record.has_value());
    AddMasterMaterial(*doomed_record, "doomed", &doomed_material);
    AddMasterMaterial(*kept_record, "kept", &kept_material);
    for (const auto& [label, record] : ReadAllSegments(*store, doomed_name)) {
      AddSegmentKeys(record, "doomed segment " + label, &doomed_material);
    }
    for (const auto& [label, record] : ReadAllSegments(*store, kept_name)) {
      AddSegmentKeys(record, "kept segment " + label, &kept_material);
    }
  }
  ASSERT_EQ(doomed_material.size(), 2u + 8u);
  ASSERT_EQ(kept_material.size(), 2u + 8u);
  ExpectSomewherePresent(data_dir_, doomed_material);
  ExpectSomewherePresent(data_dir_, kept_material);
  if (HasFailure()) return;

  ASSERT_TRUE(Start());
  for (const DataKey& dk : doomed_keys) ExpectDecrypts(dk);
  for (const DataKey& dk : kept_keys) ExpectDecrypts(dk);
  {
    clavis::v1::ScheduleDestructionRequest request;
    request.set_name(doomed.name());
    *request.mutable_pending_window() = OneSecond();
    clavis::v1::Key key;
    auto status = admin_->ScheduleKeyDestruction(ContextWithDeadline().get(), request, &key);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(key.state(), KeyState::PENDING_DESTRUCTION);
  }
  WaitPast(absl::Seconds(1));
  {
    clavis::v1::KeyNameRequest request;
    request.set_name(doomed.name());
    clavis::v1::Key key;
    auto status = admin_->DestroyKey(ContextWithDeadline(absl::Seconds(30)).get(), request, &key);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(key.state(), KeyState::DESTROYED);
    for (const auto& v : key.versions()) EXPECT_EQ(v.state(), KeyState::DESTROYED);
  }
  for (const DataKey& dk : doomed_keys) ExpectRefusedAsDestroyed(dk);
  for (const DataKey& dk : kept_keys) ExpectDecrypts(dk);
  ExpectEverywhereAbsent(data_dir_, doomed_material);
  ASSERT_TRUE(Stop());
  ExpectEverywhereAbsent(data_dir_, doomed_material);
  ExpectSomewherePresent(data_dir_, kept_material);
  {
    auto store = OpenStore(data_dir_);
    ASSERT_NE(store, nullptr);
    auto record = ReadKeyRecord(*store, doomed_name);
    ASSERT_TRUE(record.has_value());  // the id stays taken
    EXPECT_EQ(record->state(), KeyState::DESTROYED);
    for (const auto& v : record->versions()) {
      EXPECT_TRUE(v.root_wrapped_material().empty()) << v.version();
    }
    EXPECT_TRUE(ReadAllSegments(*store, doomed_name).empty());
    EXPECT_EQ(ReadAllSegments(*store, kept_name).size(), 8u);
  }
  ExpectEverywhereAbsent(data_dir_, doomed_material);

  ASSERT_TRUE(Start());
  for (const DataKey& dk : kept_keys) ExpectDecrypts(dk);
  for (const DataKey& dk : doomed_keys) ExpectRefusedAsDestroyed(dk);
  {
    clavis::v1::ListSegmentsRequest request;
    request.set_parent(doomed.name());
    clavis::v1::ListSegmentsResponse response;
    auto status = admin_->ListSegments(ContextWithDeadline().get(), request, &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(response.segments_size(), 0);
  }
}

TEST_F(ShreddingTest, DestroyKeyVersionPurgesOnlyThatVersionsMaterial) {
  const clavis::v1::Key key = CreateKey("versioned");
  ASSERT_FALSE(key.name().empty());
  const DataKey old_dk = Generate(key.name(), "old");  // segment key wrapped under v1
  EXPECT_EQ(RotateKey(key.name()).primary_version(), 2u);
  const DataKey new_dk = Generate(key.name(), "new");  // under v2
  ASSERT_TRUE(Stop());

  const KeyName key_name{kTenant, "versioned"};
  Needles v1_material;
  Needles v2_material;
  {
    auto store = OpenStore(data_dir_);
    ASSERT_NE(store, nullptr);
    auto record = ReadKeyRecord(*store, key_name);
    ASSERT_TRUE(record.has_value());
    ASSERT_EQ(record->versions_size(), 2);
    for (const auto& v : record->versions()) {
      Needles& out = v.version() == 1 ? v1_material : v2_material;
      out.emplace_back(absl::StrCat("version ", v.version(), " root-wrapped material"),
                       v.root_wrapped_material());
    }
    auto old_segment = ReadSegmentRecord(*store, SegmentName{key_name, "old"});
    ASSERT_TRUE(old_segment.has_value());
    ASSERT_EQ(old_segment->versions_size(), 1);
    EXPECT_EQ(old_segment->versions(0).key_version(), 1u);
  }
  ASSERT_EQ(v1_material.size(), 1u);
  ASSERT_EQ(v2_material.size(), 1u);
  ExpectSomewherePresent(data_dir_, v1_material);
  ExpectSomewherePresent(data_dir_, v2_material);
  if (HasFailure()) return;

  ASSERT_TRUE(Start());
  ExpectDecrypts(old_dk);
  ExpectDecrypts(new_dk);
  const std::string v1_name = key.name() + "/versions/1";
  {
    clavis::v1::ScheduleVersionDestructionRequest request;
    request.set_name(v1_name);
    *request.mutable_pending_window() = OneSecond();
    clavis::v1::Key out;
    auto status = admin_->ScheduleKeyVersionDestruction(ContextWithDeadline().get(), request, &out);
    ASSERT_TRUE(status.ok()) << status.error_message();
  }
  WaitPast(absl::Seconds(1));
  {
    clavis::v1::KeyVersionRequest request;
    request.set_name(v1_name);
    clavis::v1::Key out;
    auto status =
        admin_->DestroyKeyVersion(ContextWithDeadline(absl::Seconds(30)).get(), request, &out);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(out.state(), KeyState::ENABLED);
    ASSERT_EQ(out.versions_size(), 2);
    for (const auto& v : out.versions()) {
      EXPECT_EQ(v.state(), v.version() == 1 ? KeyState::DESTROYED : KeyState::ENABLED);
    }
  }
  ExpectRefusedAsDestroyed(old_dk);
  ExpectDecrypts(new_dk);
  ExpectEverywhereAbsent(data_dir_, v1_material);
  ASSERT_TRUE(Stop());
  ExpectEverywhereAbsent(data_dir_, v1_material);
  ExpectSomewherePresent(data_dir_, v2_material);
  {
    auto store = OpenStore(data_dir_);
    ASSERT_NE(store, nullptr);
    auto record = ReadKeyRecord(*store, key_name);
    ASSERT_TRUE(record.has_value());
    for (const auto& v : record->versions()) {
      EXPECT_EQ(v.root_wrapped_material().empty(), v.version() == 1) << v.version();
    }
  }
  ExpectEverywhereAbsent(data_dir_, v1_material);

  ASSERT_TRUE(Start());
  ExpectDecrypts(new_dk);
  ExpectRefusedAsDestroyed(old_dk);
  // New data keys in the old segment are refused too: its key is wrapped
  // under the destroyed version.
  {
    clavis::v1::GenerateDataKeyRequest request;
    request.set_key(key.name());
    request.set_segment("old");
    clavis::v1::GenerateDataKeyResponse response;
    auto status = data_->GenerateDataKey(ContextWithDeadline().get(), request, &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << status.error_message();
  }
}

}  // namespace
}  // namespace clavis::testing
