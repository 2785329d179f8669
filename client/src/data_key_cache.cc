#include "clavis/data_key_cache.h"

#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "client/src/data_key_cache_core.h"

namespace clavis {
namespace {

absl::Status ValidateOptions(const DataKeyCacheOptions& o) {
  if (o.max_age < absl::Seconds(1) || o.max_age > absl::Hours(24)) {
    return absl::InvalidArgumentError("DataKeyCacheOptions.max_age must be 1 s .. 24 h");
  }
  if (o.max_records_per_data_key < 1 || o.max_records_per_data_key > (uint64_t{1} << 32)) {
    return absl::InvalidArgumentError(
        "DataKeyCacheOptions.max_records_per_data_key must be 1 .. 2^32 (AES-GCM's limit for "
        "random nonces)");
  }
  if (o.max_bytes_per_data_key < 1 || o.max_bytes_per_data_key > (uint64_t{1} << 36)) {
    return absl::InvalidArgumentError(
        "DataKeyCacheOptions.max_bytes_per_data_key must be 1 .. 2^36");
  }
  if (o.max_entries < 1 || o.max_entries > 10'000'000) {
    return absl::InvalidArgumentError("DataKeyCacheOptions.max_entries must be 1 .. 10,000,000");
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::shared_ptr<DataKeyCache>> DataKeyCache::New(
    std::shared_ptr<DataKeySource> source, DataKeyCacheOptions options) {
  if (source == nullptr) return absl::InvalidArgumentError("data key source is null");
  if (absl::Status s = ValidateOptions(options); !s.ok()) return s;
  return std::shared_ptr<DataKeyCache>(new DataKeyCache(
      std::make_unique<client_internal::DataKeyCacheCore>(std::move(source), options)));
}

DataKeyCache::DataKeyCache(std::unique_ptr<client_internal::DataKeyCacheCore> core)
    : core_(std::move(core)) {}
DataKeyCache::~DataKeyCache() = default;

void DataKeyCache::EvictKey(absl::string_view key) {
  core_->Evict([&](const client_internal::CacheEntry& e) { return e.key == key; });
}

void DataKeyCache::EvictSegment(absl::string_view key, absl::string_view segment) {
  core_->Evict(
      [&](const client_internal::CacheEntry& e) { return e.key == key && e.segment == segment; });
}

void DataKeyCache::EvictTenant(absl::string_view tenant) {
  const std::string prefix = absl::StrCat(tenant, "/keys/");
  core_->Evict(
      [&](const client_internal::CacheEntry& e) { return absl::StartsWith(e.key, prefix); });
}

void DataKeyCache::RetireEncryptionKeys(absl::string_view key, absl::string_view segment) {
  core_->RetireEncryptionKeys(key, segment);
}

void DataKeyCache::Clear() {
  core_->Evict([](const client_internal::CacheEntry&) { return true; });
}

void DataKeyCache::EvictExpired() { core_->EvictExpired(); }

DataKeyCache::Stats DataKeyCache::stats() const { return core_->stats(); }
const DataKeyCacheOptions& DataKeyCache::options() const { return core_->options(); }
const std::shared_ptr<DataKeySource>& DataKeyCache::source() const { return core_->source(); }

}  // namespace clavis
