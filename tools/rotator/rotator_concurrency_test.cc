// Two clavis-rotators racing over one key domain, in one process and
// without gRPC threads: their KeyAdmin stub is a gmock stub that calls the
// key domain (KeyLifecycle over a MemoryStore) directly, as clavisd's
// KeyAdminService would after authorization and audit. Built under
// ThreadSanitizer too (scripts/setup --tsan). What it shows: however the
// passes interleave, each due rotation happens exactly once, concurrent
// re-wraps leave every segment key on the primary version, and the
// metrics can be rendered while the passes run.
#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "clavis/v1/key_admin_mock.grpc.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kms/keys/envelope.h"
#include "kms/keys/key_domain_testing.h"
#include "tools/rotator/rotator.h"

namespace clavis::rotator {
namespace {

using kms::KeyName;
using ::testing::_;
using ::testing::NiceMock;

grpc::Status ToGrpc(const absl::Status& s) {
  return s.ok() ? grpc::Status::OK
                : grpc::Status(static_cast<grpc::StatusCode>(s.code()), std::string(s.message()));
}

// "tenants/acme/keys/k0" -> {acme, k0}.
KeyName ParseKey(const std::string& name) {
  std::vector<std::string> parts = absl::StrSplit(name, '/');
  return parts.size() == 4 ? KeyName{parts[1], parts[3]} : KeyName{};
}

// The KeyAdmin calls a rotator makes, served by the key domain in process
// (page tokens are the last id itself). Everything else answers
// UNIMPLEMENTED, which the rotator would count as an error.
class InProcessKeyAdmin : public clavis::v1::MockKeyAdminStub {
 public:
  explicit InProcessKeyAdmin(kms::KeyLifecycle* lifecycle) : lifecycle_(lifecycle) {
    const grpc::Status unimplemented(grpc::StatusCode::UNIMPLEMENTED, "not in the fake");
    ON_CALL(*this, DestroyKey(_, _, _)).WillByDefault(::testing::Return(unimplemented));
    ON_CALL(*this, DestroyKeyVersion(_, _, _)).WillByDefault(::testing::Return(unimplemented));
    ON_CALL(*this, DestroySegment(_, _, _)).WillByDefault(::testing::Return(unimplemented));
    ON_CALL(*this, DisableKeyVersion(_, _, _)).WillByDefault(::testing::Return(unimplemented));
    ON_CALL(*this, ScheduleKeyVersionDestruction(_, _, _))
        .WillByDefault(::testing::Return(unimplemented));
    ON_CALL(*this, RotateSegment(_, _, _)).WillByDefault(::testing::Return(unimplemented));
    ON_CALL(*this, ListKeys(_, _, _))
        .WillByDefault([this](grpc::ClientContext*, const clavis::v1::ListKeysRequest& r,
                              clavis::v1::ListKeysResponse* out) {
          std::string next;
          const std::string tenant = r.parent().substr(std::string("tenants/").size());
          auto keys = lifecycle_->ListKeys(tenant, r.page_token(), r.page_size(), &next);
          if (!keys.ok()) return ToGrpc(keys.status());
          for (auto& k : *keys) *out->add_keys() = std::move(k);
          out->set_next_page_token(next);
          return grpc::Status::OK;
        });
    ON_CALL(*this, GetKey(_, _, _))
        .WillByDefault(
            [this](grpc::ClientContext*, const clavis::v1::GetKeyRequest& r, clavis::v1::Key* out) {
              auto key = lifecycle_->GetKey(ParseKey(r.name()));
              if (key.ok()) *out = *std::move(key);
              return ToGrpc(key.status());
            });
    ON_CALL(*this, RotateKey(_, _, _))
        .WillByDefault([this](grpc::ClientContext*, const clavis::v1::RotateKeyRequest& r,
                              clavis::v1::Key* out) {
          std::optional<absl::Time> if_next;
          if (r.has_if_next_rotation_time()) {
            if_next = absl::FromUnixSeconds(r.if_next_rotation_time().seconds()) +
                      absl::Nanoseconds(r.if_next_rotation_time().nanos());
          }
          auto key = lifecycle_->RotateKey(ParseKey(r.name()), if_next);
          if (key.ok()) *out = *std::move(key);
          return ToGrpc(key.status());
        });
    ON_CALL(*this, RewrapSegments(_, _, _))
        .WillByDefault([this](grpc::ClientContext*, const clavis::v1::RewrapSegmentsRequest& r,
                              clavis::v1::RewrapSegmentsResponse* out) {
          kms::RewrapProgress progress;
          absl::Status s = lifecycle_->RewrapSegments(ParseKey(r.name()), r.page_token(),
                                                      r.batch_size(), &progress);
          if (!s.ok()) return ToGrpc(s);
          out->set_rewrapped(progress.rewrapped);
          out->set_already_current(progress.already_current);
          out->set_compromised_rewrapped(progress.compromised_uses.size());
          out->set_segments_rotated(progress.segments_rotated);
          out->set_next_page_token(progress.next_segment);
          return grpc::Status::OK;
        });
    ON_CALL(*this, GetKeyVersionUsage(_, _, _))
        .WillByDefault([this](grpc::ClientContext*, const clavis::v1::KeyNameRequest& r,
                              clavis::v1::KeyVersionUsage* out) {
          const KeyName name = ParseKey(r.name());
          auto key = lifecycle_->GetKey(name);
          if (!key.ok()) return ToGrpc(key.status());
          uint64_t scanned = 0;
          auto usage = lifecycle_->KeyVersionUsage(name, &scanned);
          if (!usage.ok()) return ToGrpc(usage.status());
          out->set_name(r.name());
          for (const auto& v : key->versions()) {
            auto* version = out->add_versions();
            version->set_version(v.version());
            version->set_state(v.state());
            version->set_primary(v.version() == key->primary_version());
            auto found = usage->find(v.version());
            if (found == usage->end()) continue;
            version->set_segment_key_versions(found->second.segment_key_versions);
            version->set_segments(found->second.segments);
          }
          return grpc::Status::OK;
        });
    ON_CALL(*this, ListSegments(_, _, _))
        .WillByDefault([this](grpc::ClientContext*, const clavis::v1::ListSegmentsRequest& r,
                              clavis::v1::ListSegmentsResponse* out) {
          std::string next;
          auto segments = lifecycle_->ListSegments(ParseKey(r.parent()), r.prefix(), r.page_token(),
                                                   r.page_size(), &next);
          if (!segments.ok()) return ToGrpc(segments.status());
          for (auto& s : *segments) *out->add_segments() = std::move(s);
          out->set_next_page_token(next);
          return grpc::Status::OK;
        });
  }

 private:
  kms::KeyLifecycle* const lifecycle_;
};

class RotatorConcurrencyTest : public kms::testing::KeyDomainTest {};

TEST_F(RotatorConcurrencyTest, TwoRotatorsRotateEachDueKeyOnceAndRewrapEverySegment) {
  constexpr int kKeys = 6;
  constexpr int kSegments = 4;
  constexpr int kRounds = 3;
  std::vector<KeyName> keys;
  for (int k = 0; k < kKeys; ++k) {
    kms::CreateKeyParams p;
    p.tenant = "acme";
    p.key_id = absl::StrCat("k", k);
    p.rotation_period = absl::Hours(24);
    ASSERT_TRUE(lifecycle_->CreateKey(p).ok());
    keys.push_back(KeyName{"acme", p.key_id});
    for (int s = 0; s < kSegments; ++s) {
      ASSERT_TRUE(envelope_
                      ->GenerateDataKey(kms::SegmentName{keys.back(), absl::StrCat("s", s)},
                                        kms::EncryptionContext{})
                      .ok());
    }
  }
  NiceMock<InProcessKeyAdmin> admin(lifecycle_.get());
  RotatorOptions options;
  options.tenants = {"acme"};
  options.rewrap_batch_size = 3;                 // several pages per key
  options.retire_grace = absl::Hours(24 * 365);  // nothing retired: only rotations here
  RotatorMetrics metrics[2];
  std::vector<std::unique_ptr<Rotator>> rotators;
  for (RotatorMetrics& m : metrics) {
    rotators.push_back(
        std::make_unique<Rotator>(&admin, options, &m, [this] { return clock_.Now(); }));
  }

  for (int round = 1; round <= kRounds; ++round) {
    clock_.Advance(absl::Hours(25));  // every key is due again
    std::atomic<int> running{2};
    std::vector<std::thread> threads;
    for (auto& rotator : rotators) {
      threads.emplace_back([&, r = rotator.get()] {
        EXPECT_TRUE(r->RunOnce().ok());
        --running;
      });
    }
    // The metrics endpoint renders while the passes run.
    threads.emplace_back([&] {
      while (running > 0) {
        for (const RotatorMetrics& m : metrics) EXPECT_FALSE(m.Prometheus().empty());
      }
    });
    for (std::thread& t : threads) t.join();

    const uint64_t rotations = metrics[0].rotations + metrics[1].rotations;
    EXPECT_EQ(rotations, static_cast<uint64_t>(kKeys * round)) << "round " << round;
    for (const KeyName& key : keys) {
      auto got = lifecycle_->GetKey(key);
      ASSERT_TRUE(got.ok()) << got.status();
      EXPECT_EQ(got->primary_version(), static_cast<uint32_t>(1 + round)) << key.ToString();
      uint64_t scanned = 0;
      auto usage = lifecycle_->KeyVersionUsage(key, &scanned);
      ASSERT_TRUE(usage.ok()) << usage.status();
      for (const auto& [version, use] : *usage) {
        if (version != got->primary_version()) {
          EXPECT_EQ(use.segment_key_versions, 0u)
              << key.ToString() << " version " << version << " after round " << round;
        }
      }
    }
  }
  for (const RotatorMetrics& m : metrics) {
    EXPECT_EQ(m.errors, 0u);
    EXPECT_EQ(m.passes, static_cast<uint64_t>(kRounds));
  }
}

}  // namespace
}  // namespace clavis::rotator
