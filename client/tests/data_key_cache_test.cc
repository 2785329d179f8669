// DataKeyCache with RecordEncryptor over an in-memory DataKeySource: reuse
// within the limits (records, bytes, age, entries), single flight, batched
// misses, eviction, and reading v1 records.
#include "clavis/data_key_cache.h"

#include <atomic>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "clavis/record_encryptor.h"
#include "client/src/data_key_cache_core.h"
#include "client/src/sealed_record.h"
#include "client/tests/fake_data_key_source.h"
#include "client/tests/sealed_record_spec.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace clavis {
namespace {

using ::clavis::testing::FakeDataKeySource;
using ::testing::HasSubstr;

constexpr char kKey[] = "tenants/acme/keys/crm";
const EncryptionContext kContext = {{"table", "customers"}};

class DataKeyCacheTest : public ::testing::Test {
 protected:
  // `test_clock`: time moves only by Advance (this turns off the per-thread
  // fast path, which reads the real clock).
  void Make(DataKeyCacheOptions options = {}, bool test_clock = true) {
    auto cache = DataKeyCache::New(source_, options);
    ASSERT_TRUE(cache.ok()) << cache.status();
    cache_ = *cache;
    if (test_clock) {
      cache_->core().SetClockForTesting([this] {
        std::lock_guard<std::mutex> lock(clock_mu_);
        return now_;
      });
    }
    encryptor_ = *RecordEncryptor::New(cache_, kKey);
  }
  void Advance(absl::Duration d) {
    std::lock_guard<std::mutex> lock(clock_mu_);
    now_ += d;
  }
  std::string Seal(absl::string_view segment, absl::string_view plaintext = "record",
                   const EncryptionContext& context = kContext, absl::string_view ad = "") {
    absl::StatusOr<std::string> sealed = encryptor_->Encrypt(segment, plaintext, context, ad);
    EXPECT_TRUE(sealed.ok()) << sealed.status();
    return sealed.value_or("");
  }
  static std::string BlobOf(absl::string_view sealed) {
    return std::string(client_internal::ParseSealedRecord(sealed)->fields.data_key_blob);
  }

  std::shared_ptr<FakeDataKeySource> source_ = std::make_shared<FakeDataKeySource>();
  std::shared_ptr<DataKeyCache> cache_;
  std::unique_ptr<RecordEncryptor> encryptor_;
  std::mutex clock_mu_;
  absl::Time now_ = absl::FromUnixSeconds(1'800'000'000);
};

TEST_F(DataKeyCacheTest, RecordsOfOneSegmentAndContextShareADataKey) {
  Make();
  std::set<std::string> nonces;
  std::vector<std::string> sealed;
  for (int i = 0; i < 100; ++i) {
    sealed.push_back(
        Seal("acme/customers", absl::StrCat("record ", i), kContext, absl::StrCat("customer ", i)));
    nonces.insert(std::string(client_internal::ParseSealedRecord(sealed.back())->nonce));
  }
  EXPECT_EQ(source_->generate_calls(), 1);
  EXPECT_EQ(nonces.size(), 100u) << "every record has its own nonce";
  for (int i = 0; i < 100; ++i) {
    absl::StatusOr<std::string> plain =
        encryptor_->Decrypt(sealed[i], kContext, absl::StrCat("customer ", i));
    ASSERT_TRUE(plain.ok()) << plain.status();
    EXPECT_EQ(*plain, absl::StrCat("record ", i));
  }
  // The cache knew the data key it issued: no Decrypt round trip.
  EXPECT_EQ(source_->decrypt_calls() + source_->batch_calls(), 0);
  EXPECT_EQ(cache_->stats().source_calls, 1u);
}

TEST_F(DataKeyCacheTest, AssociatedDataIsBoundToEachRecord) {
  Make();
  const std::string sealed = Seal("acme/customers", "ada", kContext, "customer 1");
  EXPECT_THAT(encryptor_->Decrypt(sealed, kContext, "customer 2").status().message(),
              HasSubstr("decryption failed"));
  EXPECT_THAT(encryptor_->Decrypt(sealed, kContext).status().message(),
              HasSubstr("decryption failed"));
}

TEST_F(DataKeyCacheTest, OtherContextsAndSegmentsGetTheirOwnDataKeys) {
  Make();
  const std::string a = Seal("acme/customers");
  const std::string b = Seal("acme/customers", "x", {{"table", "orders"}});
  const std::string c = Seal("acme/orders");
  EXPECT_EQ(source_->generate_calls(), 3);
  EXPECT_NE(BlobOf(a), BlobOf(b));
  EXPECT_NE(BlobOf(a), BlobOf(c));
  // A record presented with another context does not reuse the cached key:
  // the server is asked, and refuses.
  EXPECT_FALSE(encryptor_->Decrypt(a, {{"table", "orders"}}).ok());
  EXPECT_EQ(source_->decrypt_calls(), 1);
}

TEST_F(DataKeyCacheTest, RecordLimitStartsANewDataKey) {
  DataKeyCacheOptions options;
  options.max_records_per_data_key = 3;
  Make(options);
  std::set<std::string> blobs;
  for (int i = 0; i < 10; ++i) blobs.insert(BlobOf(Seal("acme/customers")));
  EXPECT_EQ(source_->generate_calls(), 4);  // 3 + 3 + 3 + 1
  EXPECT_EQ(blobs.size(), 4u);
}

TEST_F(DataKeyCacheTest, ByteLimitStartsANewDataKey) {
  DataKeyCacheOptions options;
  options.max_bytes_per_data_key = 100;
  Make(options);
  const std::string forty(40, 'x');
  for (int i = 0; i < 6; ++i) Seal("acme/customers", forty);
  EXPECT_EQ(source_->generate_calls(), 3);  // 2 records (80 bytes) per key
  // A record larger than the limit gets a data key of its own.
  Seal("acme/customers", std::string(150, 'y'));
  EXPECT_EQ(source_->generate_calls(), 4);
}

TEST_F(DataKeyCacheTest, AgeLimitExpiresEncryptionAndDecryptionKeys) {
  DataKeyCacheOptions options;
  options.max_age = absl::Minutes(5);
  Make(options);
  const std::string first = Seal("acme/customers");
  Advance(absl::Minutes(4));
  Seal("acme/customers");
  EXPECT_EQ(source_->generate_calls(), 1);
  ASSERT_TRUE(encryptor_->Decrypt(first, kContext).ok());
  EXPECT_EQ(source_->decrypt_calls(), 0);
  Advance(absl::Minutes(1));
  Seal("acme/customers");
  EXPECT_EQ(source_->generate_calls(), 2);
  ASSERT_TRUE(encryptor_->Decrypt(first, kContext).ok());
  EXPECT_EQ(source_->decrypt_calls(), 1) << "an expired data key is fetched again";
}

TEST_F(DataKeyCacheTest, EvictExpiredDropsOldEntriesWithoutALookup) {
  Make();
  Seal("acme/a");
  Seal("acme/b");
  EXPECT_GT(cache_->stats().entries, 0u);
  Advance(absl::Minutes(6));
  cache_->EvictExpired();
  EXPECT_EQ(cache_->stats().entries, 0u);
}

TEST_F(DataKeyCacheTest, EntryLimitEvictsTheOldest) {
  DataKeyCacheOptions options;
  options.max_entries = 4;
  Make(options);
  for (int i = 0; i < 20; ++i) Seal(absl::StrCat("acme/segment-", i));
  EXPECT_LE(cache_->stats().entries, 4u);
  EXPECT_GT(cache_->stats().evictions, 0u);
  // The newest segment is still cached, the oldest not.
  Seal("acme/segment-19");
  EXPECT_EQ(source_->generate_calls(), 20);
  Seal("acme/segment-0");
  EXPECT_EQ(source_->generate_calls(), 21);
}

TEST_F(DataKeyCacheTest, ConcurrentMissesForOneSegmentMakeOneCall) {
  Make();
  source_->set_delay(absl::Milliseconds(200));
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 16; ++t) {
    threads.emplace_back([&] {
      if (!encryptor_->Encrypt("acme/customers", "record", kContext).ok()) ++failures;
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(source_->generate_calls(), 1);
}

TEST_F(DataKeyCacheTest, ConcurrentDecryptMissesForOneBlobMakeOneCall) {
  Make();
  const std::string sealed = Seal("acme/customers");
  Make();  // a cold cache, as in another process
  source_->set_delay(absl::Milliseconds(200));
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 16; ++t) {
    threads.emplace_back([&] {
      absl::StatusOr<std::string> plain = encryptor_->Decrypt(sealed, kContext);
      if (!plain.ok() || *plain != "record") ++failures;
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(source_->decrypt_calls() + source_->batch_calls(), 1);
}

TEST_F(DataKeyCacheTest, ConcurrentMissesShareTheFailure) {
  Make();
  source_->set_disabled(true);
  source_->set_delay(absl::Milliseconds(200));
  std::vector<std::thread> threads;
  std::atomic<int> refused{0};
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      if (encryptor_->Encrypt("acme/customers", "r", kContext).status().code() ==
          absl::StatusCode::kFailedPrecondition) {
        ++refused;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(refused.load(), 8);
  EXPECT_EQ(source_->generate_calls(), 1);
  // Failures are not cached: the next call asks again.
  source_->set_delay(absl::ZeroDuration());
  source_->set_disabled(false);
  EXPECT_TRUE(encryptor_->Encrypt("acme/customers", "r", kContext).ok());
}

TEST_F(DataKeyCacheTest, DecryptManyBatchesTheMissingDataKeys) {
  Make();
  std::vector<std::string> sealed;
  for (int i = 0; i < 1000; ++i) {
    sealed.push_back(Seal(absl::StrCat("acme/segment-", i % 100), absl::StrCat("record ", i)));
  }
  Make();  // cold
  std::vector<RecordToDecrypt> batch;
  for (const std::string& s : sealed) batch.push_back(RecordToDecrypt{s, kContext, ""});
  // One broken record fails on its own.
  const std::string broken = "CLSR";
  batch.push_back(RecordToDecrypt{broken, kContext, ""});
  std::vector<absl::StatusOr<std::string>> plain = encryptor_->DecryptMany(batch);
  ASSERT_EQ(plain.size(), 1001u);
  for (int i = 0; i < 1000; ++i) {
    ASSERT_TRUE(plain[i].ok()) << plain[i].status();
    EXPECT_EQ(*plain[i], absl::StrCat("record ", i));
  }
  EXPECT_THAT(plain[1000].status().message(), HasSubstr("truncated"));
  EXPECT_EQ(source_->batch_calls(), 1);
  EXPECT_EQ(source_->batch_items(), 100u) << "one item per distinct data key";
  EXPECT_EQ(source_->decrypt_calls(), 0);
  // Warm: no more calls.
  encryptor_->DecryptMany(batch);
  EXPECT_EQ(source_->batch_calls(), 1);
}

TEST_F(DataKeyCacheTest, EvictionsForceNewRoundTrips) {
  Make();
  const std::string a = Seal("acme/a");
  const std::string b = Seal("acme/b");
  cache_->EvictSegment(kKey, "acme/a");
  Seal("acme/a");
  Seal("acme/b");
  EXPECT_EQ(source_->generate_calls(), 3) << "only segment a was evicted";
  cache_->EvictKey(kKey);
  ASSERT_TRUE(encryptor_->Decrypt(b, kContext).ok());
  EXPECT_EQ(source_->decrypt_calls(), 1);
  cache_->EvictTenant("tenants/acme");
  EXPECT_EQ(cache_->stats().entries, 0u);
  cache_->EvictTenant("tenants/other");  // no effect, no crash
}

TEST_F(DataKeyCacheTest, RetiredEncryptionKeysStillDecrypt) {
  Make();
  const std::string old_record = Seal("acme/a");
  cache_->RetireEncryptionKeys(kKey, "acme/a");
  const std::string new_record = Seal("acme/a");
  EXPECT_EQ(source_->generate_calls(), 2);
  EXPECT_NE(BlobOf(old_record), BlobOf(new_record));
  ASSERT_TRUE(encryptor_->Decrypt(old_record, kContext).ok());
  EXPECT_EQ(source_->decrypt_calls(), 0);
}

TEST_F(DataKeyCacheTest, RevokedKeyIsRefusedOnceEvicted) {
  Make();
  Seal("acme/a");
  source_->set_disabled(true);  // the server now refuses the key
  EXPECT_TRUE(encryptor_->Encrypt("acme/a", "r", kContext).ok()) << "cached until evicted";
  cache_->EvictKey(kKey);
  EXPECT_EQ(encryptor_->Encrypt("acme/a", "r", kContext).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(DataKeyCacheTest, ReadsVersion1Records) {
  Make();
  // A v1 record (salt per record) made from the spec with a data key the
  // source knows.
  absl::StatusOr<DataKey> dk = source_->GenerateDataKey(kKey, "acme/a", kContext);
  ASSERT_TRUE(dk.ok());
  testing::SpecRecord spec;
  spec.key = kKey;
  spec.segment = "acme/a";
  spec.data_key_blob = dk->ciphertext_blob;
  spec.version = 1;
  const std::string v1 = testing::SpecSeal(dk->plaintext, spec, "old record", kContext);
  absl::StatusOr<std::string> plain = encryptor_->Decrypt(v1, kContext);
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_EQ(*plain, "old record");
  // A second v1 record of the same data key with its own salt: the cached
  // data key serves it (no round trip), with its own derivation.
  spec.salt = crypto::RandomBytes(32);
  const std::string v1b = testing::SpecSeal(dk->plaintext, spec, "other", kContext);
  ASSERT_TRUE(encryptor_->Decrypt(v1b, kContext).ok());
  EXPECT_EQ(source_->decrypt_calls(), 1);
}

// With the real clock each thread remembers its last entry and skips the
// lock; every limit and eviction must still hold on that path.
TEST_F(DataKeyCacheTest, FastPathHonoursLimitsAndEvictions) {
  DataKeyCacheOptions options;
  options.max_records_per_data_key = 5;
  Make(options, /*test_clock=*/false);
  std::set<std::string> blobs;
  for (int i = 0; i < 12; ++i) blobs.insert(BlobOf(Seal("acme/a")));
  EXPECT_EQ(blobs.size(), 3u);  // 5 + 5 + 2
  EXPECT_EQ(source_->generate_calls(), 3);
  EXPECT_EQ(cache_->stats().hits, 9u);

  const std::string sealed = Seal("acme/b");
  ASSERT_TRUE(encryptor_->Decrypt(sealed, kContext).ok());
  ASSERT_TRUE(encryptor_->Decrypt(sealed, kContext).ok());
  EXPECT_EQ(source_->decrypt_calls(), 0);
  // Another context for the same blob never takes the remembered entry.
  EXPECT_FALSE(encryptor_->Decrypt(sealed, {{"table", "orders"}}).ok());
  EXPECT_EQ(source_->decrypt_calls(), 1);

  cache_->EvictSegment(kKey, "acme/b");
  ASSERT_TRUE(encryptor_->Decrypt(sealed, kContext).ok());
  EXPECT_EQ(source_->decrypt_calls(), 2) << "the evicted entry was not reused";
  Seal("acme/b");
  EXPECT_EQ(source_->generate_calls(), 5) << "nor for sealing";

  cache_->RetireEncryptionKeys(kKey, "acme/b");
  Seal("acme/b");
  EXPECT_EQ(source_->generate_calls(), 6);

  source_->set_disabled(true);
  cache_->EvictKey(kKey);
  EXPECT_EQ(encryptor_->Encrypt("acme/b", "r", kContext).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(encryptor_->Decrypt(sealed, kContext).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(DataKeyCacheTest, FastPathIsPerCache) {
  Make({}, /*test_clock=*/false);
  const std::string sealed = Seal("acme/a");
  ASSERT_TRUE(encryptor_->Decrypt(sealed, kContext).ok());
  // A second cache over another source must not see the first one's entry.
  auto other_source = std::make_shared<FakeDataKeySource>();
  auto other = *RecordEncryptor::New(*DataKeyCache::New(other_source), kKey);
  EXPECT_FALSE(other->Decrypt(sealed, kContext).ok());
  EXPECT_TRUE(other->Encrypt("acme/a", "x", kContext).ok());
  EXPECT_EQ(other_source->generate_calls(), 1);
}

// One thread, two caches (e.g. one per tenant on a shared pool): opening
// through one and sealing through the other must not let the second reach
// the first's remembered key.
TEST_F(DataKeyCacheTest, FastPathNeverCrossesCaches) {
  Make({}, /*test_clock=*/false);
  const std::string sealed = Seal("acme/a");
  ASSERT_TRUE(encryptor_->Decrypt(sealed, kContext).ok());  // remembered by cache A
  auto other_source = std::make_shared<FakeDataKeySource>();
  auto other = *RecordEncryptor::New(*DataKeyCache::New(other_source), kKey);
  ASSERT_TRUE(other->Encrypt("acme/b", "x", kContext).ok());  // a slow-path fill of cache B
  EXPECT_FALSE(other->Decrypt(sealed, kContext).ok()) << "B must ask its own source";
  EXPECT_EQ(other_source->decrypt_calls(), 1);
}

// The decrypt fast path recognises a record of the data key this thread
// opened last by its header bytes alone, before any parsing. Whatever starts
// with those bytes but is not a genuine record of that key (cut short,
// lengthened, a bit flipped anywhere, other associated data or context) must
// still be refused, and the genuine record must still open afterwards.
TEST_F(DataKeyCacheTest, HeaderFastPathRefusesEveryTamperedRecord) {
  Make({}, /*test_clock=*/false);
  const std::string sealed = Seal("acme/a", "the plaintext", kContext, "ad");
  ASSERT_EQ(encryptor_->Decrypt(sealed, kContext, "ad").value_or(""), "the plaintext");
  const uint64_t hits = cache_->stats().hits;
  ASSERT_EQ(encryptor_->Decrypt(sealed, kContext, "ad").value_or(""), "the plaintext");
  ASSERT_EQ(cache_->stats().hits, hits + 1) << "the second open took a cached path";
  const size_t header_size = client_internal::ParseSealedRecord(sealed)->header.size();
  ASSERT_LT(header_size, sealed.size());

  for (size_t n = 0; n < sealed.size(); ++n) {
    EXPECT_FALSE(encryptor_->Decrypt(sealed.substr(0, n), kContext, "ad").ok())
        << "cut to " << n << " bytes (header " << header_size << ")";
  }
  EXPECT_FALSE(encryptor_->Decrypt(sealed + "x", kContext, "ad").ok());
  for (size_t i = 0; i < sealed.size(); ++i) {
    for (int bit : {0, 7}) {
      std::string flipped = sealed;
      flipped[i] = static_cast<char>(flipped[i] ^ (1 << bit));
      EXPECT_FALSE(encryptor_->Decrypt(flipped, kContext, "ad").ok())
          << "bit " << bit << " of byte " << i << " (header " << header_size << ")";
    }
  }
  EXPECT_FALSE(encryptor_->Decrypt(sealed, kContext, "other").ok());
  EXPECT_FALSE(encryptor_->Decrypt(sealed, kContext, "").ok());
  EXPECT_FALSE(encryptor_->Decrypt(sealed, {{"table", "orders"}}, "ad").ok());
  // The same record presented to an encryptor of another key name.
  auto other_key = *RecordEncryptor::New(cache_, "tenants/acme/keys/other");
  EXPECT_FALSE(other_key->Decrypt(sealed, kContext, "ad").ok());

  ASSERT_EQ(encryptor_->Decrypt(sealed, kContext, "ad").value_or(""), "the plaintext");
  // A long associated data (past the fast path's stack buffer) and an empty
  // record take the same path.
  const std::string long_ad(5000, 'a');
  const std::string long_sealed = Seal("acme/a", "", kContext, long_ad);
  EXPECT_EQ(encryptor_->Decrypt(long_sealed, kContext, long_ad).value_or("x"), "");
  EXPECT_FALSE(encryptor_->Decrypt(long_sealed, kContext, long_ad.substr(1)).ok());
}

// The fast path reads the real clock: an entry past max_age is not used by
// it, the record is opened through the source again.
TEST_F(DataKeyCacheTest, HeaderFastPathStopsAtMaxAge) {
  DataKeyCacheOptions options;
  options.max_age = absl::Seconds(1);  // the smallest allowed
  Make(options, /*test_clock=*/false);
  const std::string sealed = Seal("acme/a");
  ASSERT_TRUE(encryptor_->Decrypt(sealed, kContext).ok());
  ASSERT_TRUE(encryptor_->Decrypt(sealed, kContext).ok());
  EXPECT_EQ(source_->decrypt_calls(), 0);
  absl::SleepFor(absl::Milliseconds(1100));
  ASSERT_TRUE(encryptor_->Decrypt(sealed, kContext).ok());
  EXPECT_EQ(source_->decrypt_calls(), 1) << "an expired entry was used";
  ASSERT_TRUE(encryptor_->Decrypt(sealed, kContext).ok());
  EXPECT_EQ(source_->decrypt_calls(), 1) << "the fresh entry is used again";
  // And a disabled key is refused once the remembered entry is evicted.
  source_->set_disabled(true);
  cache_->EvictKey(kKey);
  EXPECT_EQ(encryptor_->Decrypt(sealed, kContext).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

// Several threads, each alternating between records of two segments (so
// each thread's remembered entry keeps changing) while another thread evicts:
// every open returns the right plaintext or, never, another record's.
TEST_F(DataKeyCacheTest, HeaderFastPathUnderConcurrentEvictions) {
  Make({}, /*test_clock=*/false);
  const std::string a = Seal("acme/a", "record a");
  const std::string b = Seal("acme/b", "record b");
  std::atomic<bool> stop{false};
  std::atomic<int> wrong{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 4; ++t) {
    readers.emplace_back([&] {
      for (int i = 0; i < 2000; ++i) {
        const bool use_a = (i / 3) % 2 == 0;
        absl::StatusOr<std::string> opened = encryptor_->Decrypt(use_a ? a : b, kContext);
        if (!opened.ok() || *opened != (use_a ? "record a" : "record b")) wrong.fetch_add(1);
      }
    });
  }
  std::thread evictor([&] {
    while (!stop.load()) {
      cache_->EvictSegment(kKey, "acme/a");
      std::this_thread::yield();
      cache_->Clear();
    }
  });
  for (auto& r : readers) r.join();
  stop = true;
  evictor.join();
  EXPECT_EQ(wrong.load(), 0);
}

// A record that names another segment for a real blob must be refused by
// the source, even in one batch with the genuine record (which must still
// open), in either order.
TEST_F(DataKeyCacheTest, RelabelledRecordInTheSameBatchIsAskedAboutOnItsOwn) {
  for (bool forged_first : {false, true}) {
    Make();
    const std::string good = Seal("acme/a", "genuine");
    auto parsed = *client_internal::ParseSealedRecord(good);
    testing::SpecRecord spec;
    spec.key = kKey;
    spec.segment = "acme/other";
    spec.data_key_blob = std::string(parsed.fields.data_key_blob);
    // Sealed under a random key: only the framing matters here.
    const std::string forged = testing::SpecSeal(crypto::RandomSecret(32), spec, "x", kContext);
    Make();  // cold
    std::vector<RecordToDecrypt> batch = {{good, kContext, ""}, {forged, kContext, ""}};
    if (forged_first) std::swap(batch[0], batch[1]);
    std::vector<absl::StatusOr<std::string>> out = encryptor_->DecryptMany(batch);
    const auto& good_result = out[forged_first ? 1 : 0];
    const auto& forged_result = out[forged_first ? 0 : 1];
    ASSERT_TRUE(good_result.ok()) << good_result.status();
    EXPECT_EQ(*good_result, "genuine");
    EXPECT_FALSE(forged_result.ok());
    EXPECT_EQ(source_->batch_items(), 2u * (forged_first ? 2 : 1));
  }
}

// An eviction (a revocation event) that arrives while a key is being
// fetched must not be undone when the fetch lands.
TEST_F(DataKeyCacheTest, EvictionDuringAFetchIsNotUndone) {
  Make({}, /*test_clock=*/false);
  source_->set_delay(absl::Milliseconds(300));
  std::thread sealer([&] { EXPECT_TRUE(encryptor_->Encrypt("acme/a", "r", kContext).ok()); });
  absl::SleepFor(absl::Milliseconds(100));
  cache_->EvictKey(kKey);
  sealer.join();
  source_->set_delay(absl::ZeroDuration());
  EXPECT_EQ(cache_->stats().entries, 0u);
  ASSERT_TRUE(encryptor_->Encrypt("acme/a", "r", kContext).ok());
  EXPECT_EQ(source_->generate_calls(), 2) << "the key fetched across the eviction was not kept";
}

TEST_F(DataKeyCacheTest, OptionsAreChecked) {
  DataKeyCacheOptions o;
  o.max_age = absl::ZeroDuration();
  EXPECT_THAT(DataKeyCache::New(source_, o).status().message(), HasSubstr("max_age"));
  o = {};
  o.max_records_per_data_key = (uint64_t{1} << 32) + 1;
  EXPECT_THAT(DataKeyCache::New(source_, o).status().message(),
              HasSubstr("max_records_per_data_key"));
  o = {};
  o.max_bytes_per_data_key = 0;
  EXPECT_THAT(DataKeyCache::New(source_, o).status().message(),
              HasSubstr("max_bytes_per_data_key"));
  o = {};
  o.max_entries = 0;
  EXPECT_THAT(DataKeyCache::New(source_, o).status().message(), HasSubstr("max_entries"));
  EXPECT_FALSE(DataKeyCache::New(nullptr).ok());
  EXPECT_FALSE(RecordEncryptor::New(std::shared_ptr<DataKeyCache>(), kKey).ok());
}

TEST_F(DataKeyCacheTest, ManyThreadsEncryptAndDecryptAcrossSegments) {
  DataKeyCacheOptions options;
  options.max_records_per_data_key = 50;
  options.max_entries = 16;
  Make(options, /*test_clock=*/false);
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 300; ++i) {
        const std::string segment = absl::StrCat("acme/s", (t + i) % 24);
        const std::string msg = absl::StrCat(t, ":", i);
        absl::StatusOr<std::string> sealed = encryptor_->Encrypt(segment, msg, kContext, msg);
        if (!sealed.ok()) {
          ++failures;
          continue;
        }
        if (i % 10 == 0) cache_->EvictSegment(kKey, segment);
        absl::StatusOr<std::string> plain = encryptor_->Decrypt(*sealed, kContext, msg);
        if (!plain.ok() || *plain != msg) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_LE(cache_->stats().entries, 16u);
}

}  // namespace
}  // namespace clavis
