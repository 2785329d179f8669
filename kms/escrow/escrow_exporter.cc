#include "kms/escrow/escrow_exporter.h"

#include "absl/strings/str_cat.h"
#include "kms/escrow/escrow_bundle.h"
#include "kms/keys/resource_views.h"

namespace clavis::kms {
namespace {

constexpr size_t kSegmentsPerPage = 1000;

}  // namespace

EscrowExporter::EscrowExporter(KeyRepository* repository, const Clock* clock)
    : repository_(repository), clock_(clock) {}

absl::Status EscrowExporter::CheckExportable(const KeyName& name) {
  auto key = repository_->GetKey(name);
  if (!key.ok()) return key.status();
  const internal::KeyRecord& r = (*key)->record();
  if (r.origin() != clavis::v1::EXTERNAL) {
    return absl::FailedPreconditionError(absl::StrCat(
        "key ", name.ToString(), " has origin ", clavis::v1::KeyOrigin_Name(r.origin()),
        "; escrow bundles are wrapped under the customer's own imported material, and a "
        "generated key's material never leaves clavisd"));
  }
  if (r.state() == clavis::v1::DESTROYED) {
    return absl::FailedPreconditionError(
        absl::StrCat("key ", name.ToString(), " is DESTROYED; its segment keys are gone"));
  }
  return absl::OkStatus();
}

absl::Status EscrowExporter::Export(const KeyName& name, const EscrowSink& sink,
                                    size_t chunk_bytes) {
  if (auto s = CheckExportable(name); !s.ok()) return s;
  auto key = repository_->GetKey(name);
  if (!key.ok()) return key.status();
  EscrowHeader header;
  header.key = name;
  header.create_time = clock_->Now();
  for (const auto& v : (*key)->record().versions()) {
    header.key_versions.push_back({v.version(), v.key_check_value()});
  }
  std::string chunk = EncodeEscrowHeader(header);
  uint64_t segments = 0;
  std::string start_after;
  while (true) {
    auto page = repository_->ListSegments(name, "", start_after, kSegmentsPerPage);
    if (!page.ok()) return page.status();
    for (const internal::SegmentRecord& r : *page) {
      EscrowSegment segment;
      segment.segment = r.segment();
      segment.state = StateName(r.state());
      for (const auto& v : r.versions()) {
        if (v.wrapped_key().empty()) continue;  // destroyed: nothing to escrow
        segment.versions.push_back({v.version(), v.key_version(), v.wrapped_key()});
      }
      chunk += EncodeEscrowSegment(segment);
      ++segments;
      if (chunk.size() >= chunk_bytes) {
        if (auto s = sink(std::move(chunk)); !s.ok()) return s;
        chunk.clear();
      }
    }
    if (page->size() < kSegmentsPerPage) break;
    start_after = page->back().segment();
  }
  chunk += EncodeEscrowTrailer(segments);
  return sink(std::move(chunk));
}

}  // namespace clavis::kms
