#include "kms/keys/key_repository.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "crypto/byte_io.h"
#include "crypto/encoding.h"
#include "crypto/kdf.h"
#include "crypto/random.h"

namespace clavis::kms {
namespace {

constexpr char kSep = '\0';

absl::Status Corrupt(absl::string_view what, absl::string_view name) {
  return absl::DataLossError(absl::StrCat("stored ", what, " record of ", name,
                                          " cannot be parsed (storage corruption?)"));
}

}  // namespace

std::string SegmentKeyWrapAssociatedData(const KeyName& key, uint32_t key_version,
                                         const std::string& segment, uint32_t segment_version) {
  std::string aad = "clavis segment key v1";
  aad.reserve(aad.size() + 1 + key.tenant.size() + 1 + key.key_id.size() + 2 + segment.size() + 8);
  crypto::ByteWriter w(&aad);
  w.U8Prefixed(key.tenant);
  w.U8Prefixed(key.key_id);
  w.U16Prefixed(segment);
  w.U32(segment_version);
  w.U32(key_version);
  return aad;
}

const internal::KeyVersionRecord* KeyEntry::FindVersion(uint32_t version) const {
  for (const auto& v : record_.versions()) {
    if (v.version() == version) return &v;
  }
  return nullptr;
}

const internal::SegmentVersionRecord* SegmentEntry::FindVersion(uint32_t version) const {
  for (const auto& v : record_.versions()) {
    if (v.version() == version) return &v;
  }
  return nullptr;
}

KeyRepository::KeyRepository(Store* store, RootKeyProvider* root, KeyRepositoryOptions options)
    : store_(store),
      root_(root),
      options_(options),
      key_cache_(std::max<size_t>(1, options.key_cache_entries)),
      segment_cache_(std::max<size_t>(1, options.segment_cache_entries)) {}

std::string KeyRepository::KeyStoreKey(const KeyName& name) {
  return absl::StrCat("k", std::string(1, kSep), name.tenant, std::string(1, kSep), name.key_id);
}

std::string KeyRepository::SegmentPrefix(const KeyName& key) {
  return absl::StrCat("s", std::string(1, kSep), key.tenant, std::string(1, kSep), key.key_id,
                      std::string(1, kSep));
}

std::string KeyRepository::SegmentStoreKey(const SegmentName& name) {
  return absl::StrCat(SegmentPrefix(name.key), name.segment);
}

std::optional<KeyName> KeyRepository::ParseKeyStoreKey(absl::string_view store_key) {
  std::vector<absl::string_view> parts = absl::StrSplit(store_key, kSep);
  if (parts.size() != 3 || parts[0] != "k") return std::nullopt;
  KeyName name{std::string(parts[1]), std::string(parts[2])};
  if (!ValidateTenantId(name.tenant).ok() || !ValidateKeyId(name.key_id).ok()) return std::nullopt;
  return name;
}

std::optional<SegmentName> KeyRepository::ParseSegmentStoreKey(absl::string_view store_key) {
  // Labels never hold the separator, so a segment key has exactly 4 parts.
  std::vector<absl::string_view> parts = absl::StrSplit(store_key, kSep);
  if (parts.size() != 4 || parts[0] != "s") return std::nullopt;
  SegmentName name{KeyName{std::string(parts[1]), std::string(parts[2])}, std::string(parts[3])};
  if (!ValidateTenantId(name.key.tenant).ok() || !ValidateKeyId(name.key.key_id).ok() ||
      !ValidateSegment(name.segment).ok()) {
    return std::nullopt;
  }
  return name;
}

template <typename Entry, typename Name>
absl::StatusOr<std::shared_ptr<const Entry>> KeyRepository::GetEntry(
    const Name& name, const std::string& store_key, absl::string_view what,
    LruCache<std::string, Entry>* cache) {
  if (cache_trusted_.load(std::memory_order_acquire)) {
    if (auto cached = cache->Get(store_key)) return cached;
  }
  const uint64_t epoch = CurrentEpoch();
  auto raw = store_->Get(store_key);
  if (!raw.ok()) return raw.status();
  if (!raw->has_value()) {
    return absl::NotFoundError(absl::StrCat(what, " ", name.ToString(), " not found"));
  }
  typename Entry::Record record;
  if (!record.ParseFromString(**raw)) return Corrupt(what, name.ToString());
  auto entry = std::make_shared<const Entry>(name, std::move(record), std::move(**raw));
  {
    std::lock_guard<std::mutex> lock(fill_mu_);
    if (epoch_ == epoch && !BeingWrittenLocked(store_key) &&
        cache_trusted_.load(std::memory_order_relaxed)) {
      cache->Put(store_key, entry);
    }
  }
  return entry;
}

absl::StatusOr<std::shared_ptr<const KeyEntry>> KeyRepository::GetKey(const KeyName& name) {
  return GetEntry(name, KeyStoreKey(name), "key", &key_cache_);
}

absl::StatusOr<std::shared_ptr<const SegmentEntry>> KeyRepository::GetSegment(
    const SegmentName& name) {
  return GetEntry(name, SegmentStoreKey(name), "segment", &segment_cache_);
}

absl::Status KeyRepository::CreateKey(const KeyName& name, const internal::KeyRecord& record) {
  WriteBatch batch;
  const std::string store_key = KeyStoreKey(name);
  batch.Expect(store_key, std::nullopt).Put(store_key, record.SerializeAsString());
  absl::Status s = CommitWrite({{store_key}, {}}, [&] { return store_->Commit(batch); });
  if (absl::IsAborted(s)) {
    return absl::AlreadyExistsError(absl::StrCat("key ", name.ToString(), " already exists"));
  }
  return s;
}

absl::Status KeyRepository::CreateSegment(const SegmentName& name,
                                          const internal::SegmentRecord& record) {
  WriteBatch batch;
  const std::string store_key = SegmentStoreKey(name);
  batch.Expect(store_key, std::nullopt).Put(store_key, record.SerializeAsString());
  absl::Status s = CommitWrite({{store_key}, {}}, [&] { return store_->Commit(batch); });
  if (absl::IsAborted(s)) {
    return absl::AlreadyExistsError(absl::StrCat("segment ", name.ToString(), " already exists"));
  }
  return s;
}

absl::StatusOr<internal::KeyRecord> KeyRepository::UpdateKey(const KeyName& name,
                                                             const KeyMutation& mutate) {
  return UpdateKeyImpl(name, mutate, /*purge=*/false, /*delete_all_segments=*/false);
}

absl::StatusOr<internal::KeyRecord> KeyRepository::UpdateKeyAndPurge(const KeyName& name,
                                                                     const KeyMutation& mutate,
                                                                     bool delete_all_segments) {
  return UpdateKeyImpl(name, mutate, /*purge=*/true, delete_all_segments);
}

template <typename Record>
absl::StatusOr<Record> KeyRepository::ReadModifyWrite(
    const std::string& store_key, absl::string_view what, const std::string& display_name,
    const std::function<absl::Status(Record*)>& mutate,
    const std::function<absl::Status(const WriteBatch&)>& commit, const WriteTargets& targets) {
  for (int attempt = 0; attempt < options_.max_update_attempts; ++attempt) {
    // Read from the store, not the cache: the precondition must be current.
    auto raw = store_->Get(store_key);
    if (!raw.ok()) return raw.status();
    if (!raw->has_value()) {
      return absl::NotFoundError(absl::StrCat(what, " ", display_name, " not found"));
    }
    Record record;
    if (!record.ParseFromString(**raw)) return Corrupt(what, display_name);
    if (absl::Status s = mutate(&record); !s.ok()) return s;
    WriteBatch batch;
    batch.Expect(store_key, **raw).Put(store_key, record.SerializeAsString());
    absl::Status s = CommitWrite(targets, [&] { return commit(batch); });
    if (absl::IsAborted(s)) continue;  // changed concurrently: read again
    if (!s.ok()) return s;
    return record;
  }
  return absl::AbortedError(
      absl::StrCat(what, " ", display_name, " is being changed concurrently; try again"));
}

absl::StatusOr<internal::KeyRecord> KeyRepository::UpdateKeyImpl(const KeyName& name,
                                                                 const KeyMutation& mutate,
                                                                 bool purge,
                                                                 bool delete_all_segments) {
  WriteTargets targets{{KeyStoreKey(name)}, {}};
  // A purge destroys material: segment keys unwrapped under it must not
  // linger in the cache either.
  if (purge || delete_all_segments) targets.prefixes.push_back(SegmentPrefix(name));
  return ReadModifyWrite<internal::KeyRecord>(
      KeyStoreKey(name), "key", name.ToString(), mutate,
      [&](const WriteBatch& batch) {
        if (!purge) return store_->Commit(batch);
        std::vector<std::string> prefixes;
        if (delete_all_segments) prefixes.push_back(SegmentPrefix(name));
        return store_->CommitAndPurge(batch, prefixes);
      },
      targets);
}

absl::StatusOr<internal::SegmentRecord> KeyRepository::UpdateSegment(
    const SegmentName& name, const SegmentMutation& mutate) {
  return UpdateSegmentImpl(name, mutate, /*purge=*/false);
}

absl::StatusOr<internal::SegmentRecord> KeyRepository::UpdateSegmentAndPurge(
    const SegmentName& name, const SegmentMutation& mutate) {
  return UpdateSegmentImpl(name, mutate, /*purge=*/true);
}

absl::StatusOr<internal::SegmentRecord> KeyRepository::UpdateSegmentImpl(
    const SegmentName& name, const SegmentMutation& mutate, bool purge) {
  return ReadModifyWrite<internal::SegmentRecord>(
      SegmentStoreKey(name), "segment", name.ToString(), mutate,
      [&](const WriteBatch& batch) {
        return purge ? store_->CommitAndPurge(batch, {}) : store_->Commit(batch);
      },
      WriteTargets{{SegmentStoreKey(name)}, {}});
}

absl::StatusOr<std::vector<internal::KeyRecord>> KeyRepository::ListKeys(
    const std::string& tenant, const std::string& start_after_key_id, size_t limit) {
  const std::string prefix = absl::StrCat("k", std::string(1, kSep), tenant, std::string(1, kSep));
  const std::string start_after =
      start_after_key_id.empty() ? std::string() : prefix + start_after_key_id;
  auto rows = store_->Scan(prefix, start_after, limit);
  if (!rows.ok()) return rows.status();
  std::vector<internal::KeyRecord> out;
  out.reserve(rows->size());
  for (const KeyValue& row : *rows) {
    internal::KeyRecord record;
    if (!record.ParseFromString(row.value)) {
      return Corrupt("key",
                     absl::StrCat("tenants/", tenant, "/keys/", row.key.substr(prefix.size())));
    }
    out.push_back(std::move(record));
  }
  return out;
}

absl::StatusOr<std::vector<internal::SegmentRecord>> KeyRepository::ListSegments(
    const KeyName& key, const std::string& label_prefix, const std::string& start_after_segment,
    size_t limit) {
  const std::string base = SegmentPrefix(key);
  const std::string prefix = base + label_prefix;
  const std::string start_after =
      start_after_segment.empty() ? std::string() : base + start_after_segment;
  auto rows = store_->Scan(prefix, start_after, limit);
  if (!rows.ok()) return rows.status();
  std::vector<internal::SegmentRecord> out;
  out.reserve(rows->size());
  for (const KeyValue& row : *rows) {
    internal::SegmentRecord record;
    if (!record.ParseFromString(row.value)) {
      return Corrupt("segment", SegmentName{key, row.key.substr(base.size())}.ToString());
    }
    out.push_back(std::move(record));
  }
  return out;
}

absl::StatusOr<std::vector<StoredSegment>> KeyRepository::ListStoredSegments(
    const KeyName& key, const std::string& start_after_segment, size_t limit) {
  const std::string base = SegmentPrefix(key);
  const std::string start_after =
      start_after_segment.empty() ? std::string() : base + start_after_segment;
  auto rows = store_->Scan(base, start_after, limit);
  if (!rows.ok()) return rows.status();
  std::vector<StoredSegment> out(rows->size());
  for (size_t i = 0; i < rows->size(); ++i) {
    KeyValue& row = (*rows)[i];
    if (!out[i].record.ParseFromString(row.value)) {
      return Corrupt("segment", SegmentName{key, row.key.substr(base.size())}.ToString());
    }
    out[i].raw = std::move(row.value);
  }
  return out;
}

absl::Status KeyRepository::CommitSegmentUpdates(const KeyEntry& key,
                                                 const std::vector<SegmentUpdate>& updates) {
  if (updates.empty()) return absl::OkStatus();
  WriteBatch batch;
  batch.Expect(KeyStoreKey(key.name()), key.raw());
  std::vector<std::string> store_keys;
  store_keys.reserve(updates.size());
  for (const SegmentUpdate& update : updates) {
    store_keys.push_back(SegmentStoreKey(SegmentName{key.name(), update.segment}));
    batch.Expect(store_keys.back(), update.expected_raw)
        .Put(store_keys.back(), update.record.SerializeAsString());
  }
  absl::Status s = CommitWrite({store_keys, {}}, [&] { return store_->Commit(batch); });
  if (absl::IsAborted(s)) {
    // The key record (or a segment) changed since `key` was read: the
    // caller retries, and must then read the key as stored, never unwrap
    // under a version destroyed or marked compromised meanwhile. Its writer
    // drops the cached entry too; this does not rely on that.
    std::lock_guard<std::mutex> lock(fill_mu_);
    ++epoch_;
    key_cache_.Erase(KeyStoreKey(key.name()));
  }
  return s;
}

absl::StatusOr<std::string> KeyRepository::WrapMasterMaterial(const KeyName& key, uint32_t version,
                                                              const crypto::SecretBytes& material) {
  return root_->Wrap(material, KeyVersionName{key, version}.ToString());
}

absl::StatusOr<std::shared_ptr<const crypto::Aead>> KeyRepository::MasterAead(const KeyEntry& key,
                                                                              uint32_t version) {
  {
    std::lock_guard<std::mutex> lock(key.mu_);
    auto it = key.master_.find(version);
    if (it != key.master_.end()) return it->second;
  }
  const internal::KeyVersionRecord* v = key.FindVersion(version);
  const std::string version_name = KeyVersionName{key.name(), version}.ToString();
  if (v == nullptr) {
    return absl::NotFoundError(absl::StrCat("key version ", version_name, " not found"));
  }
  if (v->root_wrapped_material().empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("key version ", version_name, " has no key material (it was destroyed)"));
  }
  auto material = root_->Unwrap(v->root_wrapped_material(), version_name);
  if (!material.ok()) return material.status();
  auto aead = crypto::Aead::New(crypto::AeadAlgorithm::kAes256Gcm, *std::move(material));
  if (!aead.ok()) return aead.status();
  std::shared_ptr<const crypto::Aead> shared = *std::move(aead);
  std::lock_guard<std::mutex> lock(key.mu_);
  key.master_.emplace(version, shared);
  return shared;
}

absl::StatusOr<std::string> KeyRepository::WrapSegmentKey(const KeyEntry& key, uint32_t key_version,
                                                          const std::string& segment,
                                                          uint32_t segment_version,
                                                          const crypto::SecretBytes& segment_key) {
  auto master = MasterAead(key, key_version);
  if (!master.ok()) return master.status();
  return (*master)->SealWithRandomNonce(
      segment_key.view(),
      SegmentKeyWrapAssociatedData(key.name(), key_version, segment, segment_version));
}

absl::StatusOr<crypto::SecretBytes> KeyRepository::UnwrapSegmentKey(
    const KeyEntry& key, const std::string& segment, const internal::SegmentVersionRecord& v) {
  auto master = MasterAead(key, v.key_version());
  if (!master.ok()) return master.status();
  const std::string& sealed = v.wrapped_key();
  const size_t nonce_size = (*master)->nonce_size();
  if (sealed.size() < nonce_size) {
    return absl::DataLossError(absl::StrCat("stored segment key of ",
                                            SegmentName{key.name(), segment}.ToString(),
                                            " is truncated (storage corruption?)"));
  }
  auto plain = (*master)->OpenSecret(
      absl::string_view(sealed).substr(0, nonce_size), absl::string_view(sealed).substr(nonce_size),
      SegmentKeyWrapAssociatedData(key.name(), v.key_version(), segment, v.version()));
  if (!plain.ok()) {
    return absl::DataLossError(
        absl::StrCat("stored segment key of ", SegmentName{key.name(), segment}.ToString(),
                     " version ", v.version(), " does not unwrap (storage corruption?)"));
  }
  return plain;
}

absl::StatusOr<std::shared_ptr<const crypto::Aead>> KeyRepository::SegmentAead(
    const KeyEntry& key, const SegmentEntry& segment, uint32_t segment_version) {
  {
    std::lock_guard<std::mutex> lock(segment.mu_);
    auto it = segment.keys_.find(segment_version);
    if (it != segment.keys_.end()) return it->second;
  }
  const internal::SegmentVersionRecord* v = segment.FindVersion(segment_version);
  if (v == nullptr || v->wrapped_key().empty()) {
    return absl::NotFoundError(absl::StrCat("segment key version ", segment_version, " of ",
                                            segment.name().ToString(), " not found"));
  }
  auto key_bytes = UnwrapSegmentKey(key, segment.name().segment, *v);
  if (!key_bytes.ok()) return key_bytes.status();
  auto aead = crypto::Aead::New(crypto::AeadAlgorithm::kAes256Gcm, *std::move(key_bytes));
  if (!aead.ok()) return aead.status();
  std::shared_ptr<const crypto::Aead> shared = *std::move(aead);
  std::lock_guard<std::mutex> lock(segment.mu_);
  segment.keys_.emplace(segment_version, shared);
  return shared;
}

uint64_t KeyRepository::CurrentEpoch() {
  std::lock_guard<std::mutex> lock(fill_mu_);
  return epoch_;
}

// Bumping the epoch and erasing under fill_mu_ makes (bump, erase) atomic
// with a reader's (check epoch, put): either the put came first and is
// erased, or the check sees the new epoch and does not put. Between
// BeginWrite and EndWrite no reader puts a target at all: one that read
// the store before the commit must not put the old value back after
// another reader cached (or merely saw) the new one.
void KeyRepository::BeginWrite(const WriteTargets& targets) {
  std::lock_guard<std::mutex> lock(fill_mu_);
  ++epoch_;
  for (const std::string& k : targets.keys) ++writing_keys_[k];
  for (const std::string& p : targets.prefixes) ++writing_prefixes_[p];
  DropLocked(targets);
}

void KeyRepository::EndWrite(const WriteTargets& targets) {
  std::lock_guard<std::mutex> lock(fill_mu_);
  ++epoch_;
  for (const std::string& k : targets.keys) {
    if (--writing_keys_[k] == 0) writing_keys_.erase(k);
  }
  for (const std::string& p : targets.prefixes) {
    if (--writing_prefixes_[p] == 0) writing_prefixes_.erase(p);
  }
  DropLocked(targets);
}

void KeyRepository::DropLocked(const WriteTargets& targets) {
  for (const std::string& k : targets.keys) {
    key_cache_.Erase(k);
    segment_cache_.Erase(k);
  }
  for (const std::string& p : targets.prefixes) {
    segment_cache_.EraseIf([&](const std::string& k) { return absl::StartsWith(k, p); });
  }
}

bool KeyRepository::BeingWrittenLocked(const std::string& store_key) const {
  if (writing_keys_.count(store_key) > 0) return true;
  for (const auto& [prefix, count] : writing_prefixes_) {
    if (absl::StartsWith(store_key, prefix)) return true;
  }
  return false;
}

absl::Status KeyRepository::CommitWrite(const WriteTargets& targets,
                                        const std::function<absl::Status()>& commit) {
  BeginWrite(targets);
  absl::Status s = commit();
  EndWrite(targets);
  return s;
}

void KeyRepository::InvalidateStoreKey(const std::string& store_key) {
  std::lock_guard<std::mutex> lock(fill_mu_);
  ++epoch_;
  key_cache_.Erase(store_key);
  segment_cache_.Erase(store_key);
}

void KeyRepository::InvalidateStorePrefix(const std::string& prefix) {
  std::lock_guard<std::mutex> lock(fill_mu_);
  ++epoch_;
  auto under = [&](const std::string& k) { return absl::StartsWith(k, prefix); };
  key_cache_.EraseIf(under);
  segment_cache_.EraseIf(under);
}

void KeyRepository::InvalidateAll(bool trusted) {
  std::lock_guard<std::mutex> lock(fill_mu_);
  ++epoch_;
  cache_trusted_.store(trusted, std::memory_order_release);
  key_cache_.Clear();
  segment_cache_.Clear();
}

absl::StatusOr<std::string> KeyCheckValue(const crypto::SecretBytes& material) {
  auto mac = crypto::HmacSha256(material, "clavis key check value v1");
  if (!mac.ok()) return mac.status();
  return crypto::HexEncode(absl::string_view(*mac).substr(0, 8));
}

}  // namespace clavis::kms
