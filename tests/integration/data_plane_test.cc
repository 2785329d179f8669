// The data plane of clavisd through gRPC: data keys, small-payload
// encryption, re-encryption, batches, the binding of blobs to their
// encryption context, segment, key and tenant, and the WatchKeyEvents stream.
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/integration/clavisd_fixture.h"

namespace clavis::testing {
namespace {

using clavis::v1::KeyEvent;
using grpc::StatusCode;

constexpr char kDecryptionFailed[] = "decryption failed";

class DataPlaneTest : public ClavisdTest {
 protected:
  const Context ctx_{{"customer", "42"}, {"table", "orders"}};
};

TEST_F(DataPlaneTest, GeneratedDataKeyDecryptsToTheSamePlaintextAndNamesWhereItCameFrom) {
  const std::string key = MakeKey("acme", "crm");
  clavis::v1::GenerateDataKeyResponse dk;
  ASSERT_TRUE(IsOk(GenerateDataKey(key, "acme/orders/2026-11", ctx_, &dk)));
  EXPECT_EQ(dk.plaintext().size(), 32u);
  EXPECT_EQ(dk.key_version(), "tenants/acme/keys/crm/versions/1");
  EXPECT_EQ(dk.segment_key_version(), 1u);
  // The blob names its tenant, key, segment and version, and does not hold
  // the data key in clear.
  auto parts = BlobParts::Parse(dk.ciphertext_blob());
  ASSERT_TRUE(parts.has_value());
  EXPECT_EQ(parts->version, 1);
  EXPECT_EQ(parts->algorithm, 1);
  EXPECT_EQ(parts->tenant, "acme");
  EXPECT_EQ(parts->key_id, "crm");
  EXPECT_EQ(parts->segment, "acme/orders/2026-11");
  EXPECT_EQ(parts->segment_key_version, 1u);
  EXPECT_EQ(parts->rest.size(), 12u + 32u + 16u);
  EXPECT_EQ(dk.ciphertext_blob().find(dk.plaintext()), std::string::npos);

  clavis::v1::DecryptResponse out;
  ASSERT_TRUE(IsOk(Decrypt(dk.ciphertext_blob(), ctx_, &out)));
  EXPECT_EQ(out.plaintext(), dk.plaintext());
  EXPECT_EQ(out.key(), key);
  EXPECT_EQ(out.segment(), "acme/orders/2026-11");
  EXPECT_EQ(out.segment_key_version(), 1u);
  // With the expected key named, too.
  ASSERT_TRUE(IsOk(Decrypt(dk.ciphertext_blob(), ctx_, &out, key)));
  EXPECT_EQ(out.plaintext(), dk.plaintext());

  // Every data key is fresh, and so is every wrap of it.
  std::set<std::string> plaintexts{dk.plaintext()}, blobs{dk.ciphertext_blob()};
  for (int i = 0; i < 20; ++i) {
    auto another = MakeDataKey(key, "acme/orders/2026-11", ctx_);
    EXPECT_TRUE(plaintexts.insert(another.plaintext()).second);
    EXPECT_TRUE(blobs.insert(another.ciphertext_blob()).second);
  }
  // Without any context, too.
  auto bare = MakeDataKey(key, "bare");
  EXPECT_TRUE(DecryptsTo(bare.ciphertext_blob(), {}, bare.plaintext()));

  EXPECT_TRUE(StatusIs(GenerateDataKey("tenants/acme/keys/nope", "s", ctx_), StatusCode::NOT_FOUND,
                       "key tenants/acme/keys/nope not found"));
}

TEST_F(DataPlaneTest, EncryptTakesUpTo4096BytesAndRoundTrips) {
  const std::string key = MakeKey("acme", "crm");
  for (size_t size : {size_t{0}, size_t{1}, size_t{255}, size_t{4095}, size_t{4096}}) {
    std::string payload(size, '\0');
    for (size_t i = 0; i < size; ++i) payload[i] = static_cast<char>((i * 131 + 7) & 0xff);
    clavis::v1::EncryptResponse enc;
    ASSERT_TRUE(IsOk(Encrypt(key, "records", payload, ctx_, &enc))) << size;
    EXPECT_EQ(enc.segment_key_version(), 1u);
    auto parts = BlobParts::Parse(enc.ciphertext_blob());
    ASSERT_TRUE(parts.has_value());
    EXPECT_EQ(parts->rest.size(), 12 + size + 16);
    EXPECT_TRUE(DecryptsTo(enc.ciphertext_blob(), ctx_, payload)) << size;
  }
  // The longest names still fit a blob.
  const std::string long_key = MakeKey(std::string(63, 't'), std::string(63, 'k'));
  const std::string long_segment = std::string(128, 'a') + "/" + std::string(127, 'b');
  clavis::v1::EncryptResponse enc;
  ASSERT_TRUE(IsOk(Encrypt(long_key, long_segment, std::string(4096, 'x'), ctx_, &enc)));
  EXPECT_TRUE(DecryptsTo(enc.ciphertext_blob(), ctx_, std::string(4096, 'x')));

  EXPECT_TRUE(StatusIs(Encrypt(key, "records", std::string(4097, 'x'), ctx_),
                       StatusCode::INVALID_ARGUMENT,
                       "plaintext is 4097 bytes; Encrypt takes at most 4096"));
  EXPECT_TRUE(StatusIs(Encrypt(key, "records", std::string(65536, 'x'), ctx_),
                       StatusCode::INVALID_ARGUMENT, "at most 4096"));
}

TEST_F(DataPlaneTest, EveryContextMismatchFailsWithOneAndTheSameMessage) {
  const std::string key = MakeKey("acme", "crm");
  auto dk = MakeDataKey(key, "s1", ctx_);
  clavis::v1::EncryptResponse enc;
  ASSERT_TRUE(IsOk(Encrypt(key, "s1", "secret record", ctx_, &enc)));

  const std::vector<std::pair<std::string, Context>> wrong = {
      {"missing entirely", {}},
      {"one entry missing", {{"customer", "42"}}},
      {"extra entry", {{"customer", "42"}, {"table", "orders"}, {"x", "1"}}},
      {"extra entry with empty value", {{"customer", "42"}, {"table", "orders"}, {"x", ""}}},
      {"changed value", {{"customer", "43"}, {"table", "orders"}}},
      {"value with a trailing space", {{"customer", "42 "}, {"table", "orders"}}},
      {"empty value", {{"customer", ""}, {"table", "orders"}}},
      {"changed key", {{"Customer", "42"}, {"table", "orders"}}},
      {"swapped values", {{"customer", "orders"}, {"table", "42"}}},
  };
  std::set<std::string> messages;
  for (const std::string& blob : {dk.ciphertext_blob(), enc.ciphertext_blob()}) {
    for (const auto& [what, context] : wrong) {
      clavis::v1::DecryptResponse out;
      grpc::Status s = Decrypt(blob, context, &out);
      EXPECT_TRUE(StatusIs(s, StatusCode::INVALID_ARGUMENT, kDecryptionFailed)) << what;
      EXPECT_TRUE(out.plaintext().empty()) << what;
      messages.insert(s.error_message());
    }
  }
  // One message for all: nothing tells which entry was wrong.
  EXPECT_EQ(messages.size(), 1u);
  for (const auto& m : messages) {
    EXPECT_EQ(m.find("43"), std::string::npos);
    EXPECT_EQ(m.find("customer"), std::string::npos);
  }
  // A blob made without a context refuses any context.
  auto bare = MakeDataKey(key, "s1");
  EXPECT_TRUE(StatusIs(Decrypt(bare.ciphertext_blob(), {{"customer", "42"}}),
                       StatusCode::INVALID_ARGUMENT, kDecryptionFailed));
  // The right context still works (the map's order on the wire does not matter).
  EXPECT_TRUE(
      DecryptsTo(dk.ciphertext_blob(), {{"table", "orders"}, {"customer", "42"}}, dk.plaintext()));
  EXPECT_TRUE(DecryptsTo(enc.ciphertext_blob(), ctx_, "secret record"));
}

TEST_F(DataPlaneTest, BlobMovedToAnotherSegmentKeyOrVersionFailsLikeAContextMismatch) {
  const std::string key = MakeKey("acme", "crm");
  const std::string other = MakeKey("acme", "other");
  auto dk = MakeDataKey(key, "acme/orders/2026-11", ctx_);
  MakeDataKey(key, "acme/orders/2026-12", ctx_);    // exists, same key
  MakeDataKey(other, "acme/orders/2026-11", ctx_);  // same label, another key
  grpc::Status context_mismatch = Decrypt(dk.ciphertext_blob(), {});
  ASSERT_TRUE(StatusIs(context_mismatch, StatusCode::INVALID_ARGUMENT, kDecryptionFailed));

  auto parts = BlobParts::Parse(dk.ciphertext_blob());
  ASSERT_TRUE(parts.has_value());
  struct Edit {
    std::string what;
    std::function<void(BlobParts*)> edit;
  };
  // Rotate the original segment so that version 2 exists as well.
  clavis::v1::SegmentRequest rotate;
  rotate.set_name(key + "/segments/acme/orders/2026-11");
  ASSERT_TRUE(IsOk(Call(&AdminStub::RotateSegment, rotate)));
  const std::vector<Edit> edits = {
      {"another existing segment of the key",
       [](BlobParts* p) { p->segment = "acme/orders/2026-12"; }},
      {"a segment that does not exist", [](BlobParts* p) { p->segment = "acme/orders/2027-01"; }},
      {"another key with the same segment label", [](BlobParts* p) { p->key_id = "other"; }},
      {"another existing segment-key version", [](BlobParts* p) { p->segment_key_version = 2; }},
      {"a segment-key version that does not exist",
       [](BlobParts* p) { p->segment_key_version = 77; }},
  };
  for (const auto& e : edits) {
    BlobParts moved = *parts;
    e.edit(&moved);
    clavis::v1::DecryptResponse out;
    grpc::Status s = Decrypt(moved.Encode(), ctx_, &out);
    EXPECT_TRUE(StatusIs(s, StatusCode::INVALID_ARGUMENT, kDecryptionFailed)) << e.what;
    EXPECT_EQ(s.error_message(), context_mismatch.error_message()) << e.what;
    EXPECT_TRUE(out.plaintext().empty()) << e.what;
    // Re-encryption is refused alike.
    EXPECT_TRUE(StatusIs(ReEncrypt(moved.Encode(), ctx_, std::nullopt),
                         StatusCode::INVALID_ARGUMENT, kDecryptionFailed))
        << e.what;
  }
  // The untouched blob is fine.
  EXPECT_TRUE(DecryptsTo(dk.ciphertext_blob(), ctx_, dk.plaintext()));
}

TEST_F(DataPlaneTest, DecryptRefusesABlobOfAnotherExpectedKey) {
  const std::string key = MakeKey("acme", "crm");
  MakeKey("acme", "other");
  MakeKey("globex", "crm");
  auto dk = MakeDataKey(key, "s1", ctx_);
  clavis::v1::DecryptResponse out;
  for (const std::string& expected :
       {std::string("tenants/acme/keys/other"), std::string("tenants/globex/keys/crm"),
        std::string("tenants/acme/keys/never-created")}) {
    EXPECT_TRUE(StatusIs(Decrypt(dk.ciphertext_blob(), ctx_, &out, expected),
                         StatusCode::INVALID_ARGUMENT,
                         "the ciphertext blob was not made with key " + expected));
    EXPECT_TRUE(out.plaintext().empty());
  }
  EXPECT_TRUE(StatusIs(Decrypt(dk.ciphertext_blob(), ctx_, &out, "acme/crm"),
                       StatusCode::INVALID_ARGUMENT, "malformed key name"));
  ASSERT_TRUE(IsOk(Decrypt(dk.ciphertext_blob(), ctx_, &out, key)));
  EXPECT_EQ(out.plaintext(), dk.plaintext());

  clavis::v1::BatchDecryptRequest batch;
  for (const std::string& expected : {std::string("tenants/acme/keys/other"), key}) {
    auto* item = batch.add_requests();
    item->set_ciphertext_blob(dk.ciphertext_blob());
    SetContext(ctx_, item->mutable_encryption_context());
    item->set_key(expected);
  }
  clavis::v1::BatchDecryptResponse results;
  ASSERT_TRUE(IsOk(Call(&DataStub::BatchDecrypt, batch, &results)));
  ASSERT_EQ(results.items_size(), 2);
  EXPECT_EQ(results.items(0).status().code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_FALSE(results.items(0).has_result());
  EXPECT_EQ(results.items(1).status().code(), 0);
  EXPECT_EQ(results.items(1).result().plaintext(), dk.plaintext());
}

TEST_F(DataPlaneTest, ReEncryptMovesToTheCurrentSegmentKeyAndCanChangeTheContext) {
  const std::string key = MakeKey("acme", "crm");
  clavis::v1::EncryptResponse enc;
  ASSERT_TRUE(IsOk(Encrypt(key, "s1", "the record", ctx_, &enc)));
  auto dk = MakeDataKey(key, "s1", ctx_);

  // Same segment version: a fresh blob, same plaintext.
  clavis::v1::ReEncryptResponse same;
  ASSERT_TRUE(IsOk(ReEncrypt(enc.ciphertext_blob(), ctx_, std::nullopt, &same)));
  EXPECT_EQ(same.segment_key_version(), 1u);
  EXPECT_NE(same.ciphertext_blob(), enc.ciphertext_blob());
  EXPECT_TRUE(DecryptsTo(same.ciphertext_blob(), ctx_, "the record"));

  clavis::v1::SegmentRequest rotate;
  rotate.set_name(key + "/segments/s1");
  ASSERT_TRUE(IsOk(Call(&AdminStub::RotateSegment, rotate)));

  clavis::v1::ReEncryptResponse moved;
  ASSERT_TRUE(IsOk(ReEncrypt(enc.ciphertext_blob(), ctx_, std::nullopt, &moved)));
  EXPECT_EQ(moved.segment_key_version(), 2u);
  clavis::v1::DecryptResponse out;
  ASSERT_TRUE(IsOk(Decrypt(moved.ciphertext_blob(), ctx_, &out)));
  EXPECT_EQ(out.plaintext(), "the record");
  EXPECT_EQ(out.segment_key_version(), 2u);
  EXPECT_EQ(out.segment(), "s1");
  EXPECT_TRUE(DecryptsTo(enc.ciphertext_blob(), ctx_, "the record"));  // the old one still works

  // A data key re-wrapped is the same data key.
  clavis::v1::ReEncryptResponse dk_moved;
  ASSERT_TRUE(IsOk(ReEncrypt(dk.ciphertext_blob(), ctx_, std::nullopt, &dk_moved)));
  EXPECT_TRUE(DecryptsTo(dk_moved.ciphertext_blob(), ctx_, dk.plaintext()));

  // A new context.
  const Context ctx2{{"customer", "42"}, {"table", "archive"}};
  clavis::v1::ReEncryptResponse rebound;
  ASSERT_TRUE(IsOk(ReEncrypt(enc.ciphertext_blob(), ctx_, ctx2, &rebound)));
  EXPECT_TRUE(DecryptsTo(rebound.ciphertext_blob(), ctx2, "the record"));
  EXPECT_TRUE(StatusIs(Decrypt(rebound.ciphertext_blob(), ctx_), StatusCode::INVALID_ARGUMENT,
                       kDecryptionFailed));
  // ... including no context at all.
  clavis::v1::ReEncryptResponse unbound;
  ASSERT_TRUE(IsOk(ReEncrypt(enc.ciphertext_blob(), ctx_, Context{}, &unbound)));
  EXPECT_TRUE(DecryptsTo(unbound.ciphertext_blob(), {}, "the record"));

  // new_encryption_context counts only with change_context set.
  clavis::v1::ReEncryptRequest r;
  r.set_ciphertext_blob(enc.ciphertext_blob());
  SetContext(ctx_, r.mutable_encryption_context());
  SetContext(ctx2, r.mutable_new_encryption_context());
  clavis::v1::ReEncryptResponse kept;
  ASSERT_TRUE(IsOk(Call(&DataStub::ReEncrypt, r, &kept)));
  EXPECT_TRUE(DecryptsTo(kept.ciphertext_blob(), ctx_, "the record"));

  // The source context must match.
  clavis::v1::ReEncryptResponse refused;
  EXPECT_TRUE(StatusIs(ReEncrypt(enc.ciphertext_blob(), ctx2, ctx2, &refused),
                       StatusCode::INVALID_ARGUMENT, kDecryptionFailed));
  EXPECT_TRUE(refused.ciphertext_blob().empty());
}

TEST_F(DataPlaneTest, BatchCallsReportPerItemStatusesInRequestOrder) {
  const std::vector<std::string> keys = {MakeKey("acme", "k1"), MakeKey("acme", "k2")};
  const std::string off = MakeKey("acme", "off");
  auto off_dk = MakeDataKey(off, "seg/0", ctx_);
  clavis::v1::KeyNameRequest disable;
  disable.set_name(off);
  ASSERT_TRUE(IsOk(Call(&AdminStub::DisableKey, disable)));

  constexpr int kItems = 300;
  auto item_context = [](int i) { return Context{{"item", absl::StrCat(i)}}; };
  // Items spread over 2 keys x 30 segments = 60 segments; some are bad.
  struct Bad {
    int index;
    std::string key;
    std::string segment;
    Context context;
    StatusCode code;
    std::string substring;
  };
  const std::vector<Bad> bad_generate = {
      {0, "not-a-key-name", "seg/0", {}, StatusCode::INVALID_ARGUMENT, "malformed key name"},
      {17, "tenants/acme/keys/ghost", "seg/1", {}, StatusCode::NOT_FOUND, "not found"},
      {99, keys[1], "seg//1", {}, StatusCode::INVALID_ARGUMENT, "segment"},
      {150, keys[0], "seg/2", {{"", "v"}}, StatusCode::INVALID_ARGUMENT, "empty key"},
      {201, off, "seg/0", {}, StatusCode::FAILED_PRECONDITION, "is DISABLED since"},
      {299, keys[0], "", {}, StatusCode::INVALID_ARGUMENT, "segment is empty"},
  };
  clavis::v1::BatchGenerateDataKeyRequest gen;
  for (int i = 0; i < kItems; ++i) {
    auto* item = gen.add_requests();
    item->set_key(keys[i % 2]);
    item->set_segment(absl::StrCat("seg/", (i / 2) % 30));
    SetContext(item_context(i), item->mutable_encryption_context());
  }
  for (const auto& b : bad_generate) {
    auto* item = gen.mutable_requests(b.index);
    item->set_key(b.key);
    item->set_segment(b.segment);
    SetContext(b.context, item->mutable_encryption_context());
  }
  clavis::v1::BatchGenerateDataKeyResponse generated;
  ASSERT_TRUE(IsOk(Call(&DataStub::BatchGenerateDataKey, gen, &generated)));
  ASSERT_EQ(generated.items_size(), kItems);
  std::set<int> bad_indices;
  for (const auto& b : bad_generate) {
    bad_indices.insert(b.index);
    const auto& item = generated.items(b.index);
    EXPECT_EQ(item.status().code(), static_cast<int>(b.code)) << b.index;
    EXPECT_NE(item.status().message().find(b.substring), std::string::npos)
        << b.index << ": " << item.status().message();
    EXPECT_FALSE(item.has_result()) << b.index;
  }
  std::set<std::string> plaintexts;
  for (int i = 0; i < kItems; ++i) {
    if (bad_indices.count(i) != 0) continue;
    const auto& item = generated.items(i);
    ASSERT_EQ(item.status().code(), 0) << i << ": " << item.status().message();
    EXPECT_TRUE(item.status().message().empty());
    EXPECT_EQ(item.result().plaintext().size(), 32u);
    EXPECT_TRUE(plaintexts.insert(item.result().plaintext()).second);
    EXPECT_EQ(item.result().key_version(), keys[i % 2] + "/versions/1");
    auto parts = BlobParts::Parse(item.result().ciphertext_blob());
    ASSERT_TRUE(parts.has_value());
    EXPECT_EQ("tenants/acme/keys/" + parts->key_id, keys[i % 2]) << i;
    EXPECT_EQ(parts->segment, absl::StrCat("seg/", (i / 2) % 30)) << i;
  }
  // The 60 segments exist.
  for (const auto& key : keys) {
    clavis::v1::ListSegmentsRequest list;
    list.set_parent(key);
    clavis::v1::ListSegmentsResponse segments;
    ASSERT_TRUE(IsOk(Call(&AdminStub::ListSegments, list, &segments)));
    EXPECT_EQ(segments.segments_size(), 30) << key;
  }

  // Decrypt them all back, in one batch, with other bad items in place of
  // the ones that failed.
  const std::vector<Bad> bad_decrypt = {
      {0, "", "", {}, StatusCode::INVALID_ARGUMENT, "ciphertext blob is empty"},
      {17, "", "", {}, StatusCode::INVALID_ARGUMENT, "unsupported ciphertext blob format version"},
      {99, "", "", {{"item", "wrong"}}, StatusCode::INVALID_ARGUMENT, kDecryptionFailed},
      {150, "tenants/acme/keys/k2", "", {}, StatusCode::INVALID_ARGUMENT, "not made with key"},
      {201, "", "", {}, StatusCode::FAILED_PRECONDITION, "is DISABLED since"},
      {299, "", "", {}, StatusCode::INVALID_ARGUMENT, "truncated"},
  };
  const std::string good_blob = generated.items(2).result().ciphertext_blob();  // k1
  clavis::v1::BatchDecryptRequest dec;
  for (int i = 0; i < kItems; ++i) {
    auto* item = dec.add_requests();
    if (bad_indices.count(i) == 0) {
      item->set_ciphertext_blob(generated.items(i).result().ciphertext_blob());
      SetContext(item_context(i), item->mutable_encryption_context());
    }
  }
  dec.mutable_requests(17)->set_ciphertext_blob("\x07garbage");
  dec.mutable_requests(99)->set_ciphertext_blob(good_blob);
  SetContext({{"item", "wrong"}}, dec.mutable_requests(99)->mutable_encryption_context());
  dec.mutable_requests(150)->set_ciphertext_blob(good_blob);
  SetContext(item_context(2), dec.mutable_requests(150)->mutable_encryption_context());
  dec.mutable_requests(150)->set_key("tenants/acme/keys/k2");
  dec.mutable_requests(201)->set_ciphertext_blob(off_dk.ciphertext_blob());
  SetContext(ctx_, dec.mutable_requests(201)->mutable_encryption_context());
  dec.mutable_requests(299)->set_ciphertext_blob(good_blob.substr(0, good_blob.size() / 2));

  clavis::v1::BatchDecryptResponse decrypted;
  ASSERT_TRUE(IsOk(Call(&DataStub::BatchDecrypt, dec, &decrypted)));
  ASSERT_EQ(decrypted.items_size(), kItems);
  for (const auto& b : bad_decrypt) {
    const auto& item = decrypted.items(b.index);
    EXPECT_EQ(item.status().code(), static_cast<int>(b.code)) << b.index;
    EXPECT_NE(item.status().message().find(b.substring), std::string::npos)
        << b.index << ": " << item.status().message();
    EXPECT_FALSE(item.has_result()) << b.index;
  }
  for (int i = 0; i < kItems; ++i) {
    if (bad_indices.count(i) != 0) continue;
    const auto& item = decrypted.items(i);
    ASSERT_EQ(item.status().code(), 0) << i << ": " << item.status().message();
    EXPECT_EQ(item.result().plaintext(), generated.items(i).result().plaintext()) << i;
    EXPECT_EQ(item.result().key(), keys[i % 2]) << i;
    EXPECT_EQ(item.result().segment(), absl::StrCat("seg/", (i / 2) % 30)) << i;
  }

  // Empty batches are fine.
  clavis::v1::BatchDecryptResponse empty;
  ASSERT_TRUE(IsOk(Call(&DataStub::BatchDecrypt, clavis::v1::BatchDecryptRequest(), &empty)));
  EXPECT_EQ(empty.items_size(), 0);
}

TEST_F(DataPlaneTest, BatchCallsOverTheItemLimitAreRefusedAsAWhole) {
  const std::string key = MakeKey("acme", "crm");
  auto dk = MakeDataKey(key, "s1", ctx_);

  clavis::v1::BatchGenerateDataKeyRequest gen;
  for (int i = 0; i < 1001; ++i) {
    auto* item = gen.add_requests();
    item->set_key(key);
    item->set_segment(absl::StrCat("fresh/", i));
  }
  clavis::v1::BatchGenerateDataKeyResponse gen_out;
  EXPECT_TRUE(StatusIs(Call(&DataStub::BatchGenerateDataKey, gen, &gen_out),
                       StatusCode::INVALID_ARGUMENT, "batch has 1001 items; at most 1000"));
  EXPECT_EQ(gen_out.items_size(), 0);
  // Refused before any item ran: no segment was created.
  clavis::v1::SegmentRequest seg;
  seg.set_name(key + "/segments/fresh/0");
  EXPECT_TRUE(StatusIs(Call(&AdminStub::GetSegment, seg), StatusCode::NOT_FOUND, "not found"));

  clavis::v1::BatchDecryptRequest dec;
  for (int i = 0; i < 1001; ++i) {
    auto* item = dec.add_requests();
    item->set_ciphertext_blob(dk.ciphertext_blob());
    SetContext(ctx_, item->mutable_encryption_context());
  }
  clavis::v1::BatchDecryptResponse dec_out;
  EXPECT_TRUE(StatusIs(Call(&DataStub::BatchDecrypt, dec, &dec_out), StatusCode::INVALID_ARGUMENT,
                       "batch has 1001 items; at most 1000"));
  EXPECT_EQ(dec_out.items_size(), 0);

  // Exactly at the limit is fine.
  dec.mutable_requests()->RemoveLast();
  ASSERT_TRUE(IsOk(Call(&DataStub::BatchDecrypt, dec, &dec_out)));
  ASSERT_EQ(dec_out.items_size(), 1000);
  for (const auto& item : dec_out.items()) EXPECT_EQ(item.result().plaintext(), dk.plaintext());
  gen.mutable_requests()->RemoveLast();
  ASSERT_TRUE(IsOk(Call(&DataStub::BatchGenerateDataKey, gen, &gen_out)));
  ASSERT_EQ(gen_out.items_size(), 1000);
  for (const auto& item : gen_out.items()) EXPECT_EQ(item.status().code(), 0);
}

// Collects a WatchKeyEvents stream on a reader thread.
class EventWatcher {
 public:
  EventWatcher(DataStub* stub, const std::string& tenant, absl::Duration deadline) {
    ctx_ = ContextWithDeadline(deadline);
    clavis::v1::WatchKeyEventsRequest r;
    r.set_tenant(tenant);
    reader_ = stub->WatchKeyEvents(ctx_.get(), r);
    // clavisd sends headers once subscribed: after this, nothing is missed.
    reader_->WaitForInitialMetadata();
    thread_ = std::thread([this] {
      KeyEvent event;
      while (reader_->Read(&event)) {
        absl::MutexLock lock(&mu_);
        events_.push_back(event);
      }
      grpc::Status status = reader_->Finish();
      absl::MutexLock lock(&mu_);
      status_ = status;
      done_ = true;
    });
  }
  ~EventWatcher() { Stop(); }

  // Waits until at least `n` events arrived (or the stream ended).
  std::vector<KeyEvent> WaitFor(size_t n, absl::Duration timeout = absl::Seconds(5)) {
    absl::MutexLock lock(&mu_);
    auto ready = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return done_ || events_.size() >= n; };
    mu_.AwaitWithTimeout(absl::Condition(&ready), timeout);
    return events_;
  }
  std::vector<KeyEvent> events() {
    absl::MutexLock lock(&mu_);
    return events_;
  }
  void Stop() {
    if (!thread_.joinable()) return;
    ctx_->TryCancel();
    thread_.join();
  }
  // After Stop, or once the server ended the stream.
  grpc::Status status() {
    absl::MutexLock lock(&mu_);
    return status_;
  }
  bool done() {
    absl::MutexLock lock(&mu_);
    return done_;
  }

 private:
  std::unique_ptr<grpc::ClientContext> ctx_;
  std::unique_ptr<grpc::ClientReader<KeyEvent>> reader_;
  std::thread thread_;
  absl::Mutex mu_;
  std::vector<KeyEvent> events_ ABSL_GUARDED_BY(mu_);
  grpc::Status status_ ABSL_GUARDED_BY(mu_);
  bool done_ ABSL_GUARDED_BY(mu_) = false;
};

struct ExpectedEvent {
  KeyEvent::Type type;
  std::string key;
  std::string segment;
  uint32_t version;
};

void ExpectEvents(const std::vector<KeyEvent>& got, const std::vector<ExpectedEvent>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(got[i].type(), want[i].type) << i << ": got " << KeyEvent::Type_Name(got[i].type())
                                           << ", want " << KeyEvent::Type_Name(want[i].type);
    EXPECT_EQ(got[i].key(), want[i].key) << i;
    EXPECT_EQ(got[i].segment(), want[i].segment) << i;
    EXPECT_EQ(got[i].version(), want[i].version) << i;
    EXPECT_GT(got[i].time().seconds(), 0) << i;
    if (i > 0) {
      EXPECT_GT(got[i].sequence(), got[i - 1].sequence()) << i;
    }
  }
}

TEST_F(DataPlaneTest, WatchKeyEventsStreamsOnlyTheTenantsChangesInOrder) {
  const std::string crm = MakeKey("acme", "crm");
  const std::string globex_crm = MakeKey("globex", "crm");
  MakeDataKey(crm, "s1", ctx_);
  const std::string s1 = crm + "/segments/s1";

  EventWatcher acme(data_.get(), "tenants/acme", absl::Seconds(10));
  EventWatcher globex(DataFor("globex"), "tenants/globex", absl::Seconds(10));

  auto key_op = [&](auto method, const std::string& name) {
    EXPECT_TRUE(IsOk(KeyOp(method, name))) << name;
  };
  auto seg_op = [&](auto method, const std::string& name) {
    EXPECT_TRUE(IsOk(SegmentOp(method, name))) << name;
  };
  EXPECT_TRUE(IsOk(RotateKey(crm)));
  seg_op(&AdminStub::RotateSegment, s1);
  key_op(&AdminStub::DisableKey, crm);
  // Refused operations and data-plane calls change nothing: no events.
  EXPECT_FALSE(IsOk(RotateKey(crm)));
  EXPECT_FALSE(IsOk(KeyOp(&AdminStub::DestroyKey, crm)));
  key_op(&AdminStub::EnableKey, crm);
  MakeDataKey(crm, "s2", ctx_);
  seg_op(&AdminStub::RevokeSegment, s1);
  seg_op(&AdminStub::EnableSegment, s1);
  const std::string second = MakeKey("acme", "second");
  clavis::v1::UpdateKeySettingsRequest update;
  update.set_name(second);
  update.mutable_update_mask()->add_paths("description");
  update.set_description("watched");
  EXPECT_TRUE(IsOk(Call(&AdminStub::UpdateKeySettings, update)));
  EXPECT_TRUE(IsOk(VersionOp(&AdminStub::DisableKeyVersion, crm + "/versions/1")));
  EXPECT_TRUE(IsOk(VersionOp(&AdminStub::EnableKeyVersion, crm + "/versions/1")));
  EXPECT_TRUE(IsOk(ScheduleKeyDestruction(second, Seconds(3600))));
  key_op(&AdminStub::CancelKeyDestruction, second);
  EXPECT_TRUE(IsOk(ScheduleSegmentDestruction(s1, Seconds(3600))));
  seg_op(&AdminStub::CancelSegmentDestruction, s1);

  const std::vector<ExpectedEvent> want = {
      {KeyEvent::ROTATED, crm, "", 2},
      {KeyEvent::SEGMENT_ROTATED, crm, "s1", 2},
      {KeyEvent::DISABLED, crm, "", 0},
      {KeyEvent::ENABLED, crm, "", 0},
      {KeyEvent::SEGMENT_REVOKED, crm, "s1", 0},
      {KeyEvent::SEGMENT_ENABLED, crm, "s1", 0},
      {KeyEvent::CREATED, second, "", 0},
      {KeyEvent::SETTINGS_CHANGED, second, "", 0},
      {KeyEvent::VERSION_DISABLED, crm, "", 1},
      {KeyEvent::VERSION_ENABLED, crm, "", 1},
      {KeyEvent::DESTRUCTION_SCHEDULED, second, "", 0},
      {KeyEvent::DESTRUCTION_CANCELLED, second, "", 0},
      {KeyEvent::SEGMENT_DESTRUCTION_SCHEDULED, crm, "s1", 0},
      {KeyEvent::DESTRUCTION_CANCELLED, crm, "s1", 0},
  };
  std::vector<KeyEvent> got = acme.WaitFor(want.size());
  ExpectEvents(got, want);

  // globex saw none of it; its own change reaches it (and only it).
  EXPECT_TRUE(IsOk(RotateKey(globex_crm)));
  ExpectEvents(globex.WaitFor(1), {{KeyEvent::ROTATED, globex_crm, "", 2}});
  absl::SleepFor(absl::Milliseconds(300));
  EXPECT_EQ(acme.events().size(), want.size());
  EXPECT_EQ(globex.events().size(), 1u);

  acme.Stop();
  globex.Stop();
  EXPECT_TRUE(StatusIs(acme.status(), StatusCode::CANCELLED));
}

TEST_F(DataPlaneTest, SequenceNumbersOfATenantsStreamHaveNoGapsWhenNothingWasMissed) {
  const std::string acme_key = MakeKey("acme", "crm");
  const std::string globex_key = MakeKey("globex", "crm");
  EventWatcher acme(data_.get(), "tenants/acme", absl::Seconds(10));

  // Another tenant's activity between acme's changes.
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(IsOk(RotateKey(acme_key)));
    ASSERT_TRUE(IsOk(RotateKey(globex_key)));
  }
  std::vector<KeyEvent> got = acme.WaitFor(3);
  ASSERT_EQ(got.size(), 3u);
  for (size_t i = 1; i < got.size(); ++i) {
    EXPECT_GT(got[i].sequence(), got[i - 1].sequence());
    // Regression (found by this test, fixed): kms/keys/key_events.cc KeyEventBus::Publish numbers
    // events with one counter for all tenants, so a tenant's stream shows a gap whenever another
    // tenant changed a key in between. resources.proto says "a gap tells the client it missed
    // events and should drop its whole cache", so every client would drop its cache on every other
    // tenant's change. A stream that missed nothing must be gap-free (per-tenant numbering).
    EXPECT_EQ(got[i].sequence(), got[i - 1].sequence() + 1)
        << "acme's stream jumps from " << got[i - 1].sequence() << " to " << got[i].sequence()
        << " though it missed none of acme's events";
  }
}

TEST_F(DataPlaneTest, WatchKeyEventsRefusesAMalformedTenant) {
  for (const std::string& tenant :
       {std::string(""), std::string("acme"), std::string("tenants/"), std::string("tenants/ACME"),
        std::string("tenants/acme/keys/crm"), std::string("tenants/") + std::string(64, 'a')}) {
    auto ctx = ContextWithDeadline(absl::Seconds(5));
    clavis::v1::WatchKeyEventsRequest r;
    r.set_tenant(tenant);
    auto reader = data_->WatchKeyEvents(ctx.get(), r);
    KeyEvent event;
    EXPECT_FALSE(reader->Read(&event)) << tenant;
    EXPECT_TRUE(StatusIs(reader->Finish(), StatusCode::INVALID_ARGUMENT)) << tenant;
  }
  // A tenant with no keys yet is a valid, quiet stream.
  EventWatcher quiet(DataFor("initech"), "tenants/initech", absl::Seconds(5));
  absl::SleepFor(absl::Milliseconds(300));
  EXPECT_TRUE(quiet.events().empty());
  EXPECT_FALSE(quiet.done());
}

}  // namespace
}  // namespace clavis::testing
