#include "kms/keys/key_lifecycle.h"

#include <algorithm>
#include <set>

#include "absl/strings/str_cat.h"
#include "crypto/random.h"
#include "kms/keys/key_import.h"
#include "kms/keys/resource_views.h"

namespace clavis::kms {
namespace {

using clavis::v1::KeyEvent;
using clavis::v1::KeyState;

constexpr size_t kMasterKeySize = 32;
constexpr size_t kSegmentKeySize = 32;

std::string Since(int64_t micros) { return FormatTimestamp(FromMicros(micros)); }

std::string DescribeDuration(absl::Duration d) { return absl::FormatDuration(d); }

absl::Status Refuse(absl::string_view what, absl::string_view name, KeyState state,
                    int64_t since_us, absl::string_view advice) {
  return absl::FailedPreconditionError(absl::StrCat(what, " ", name, " is ", StateName(state),
                                                    " since ", Since(since_us),
                                                    advice.empty() ? "" : "; ", advice));
}

absl::Status ValidateDescription(const std::string& description) {
  if (description.size() > 1024) {
    return absl::InvalidArgumentError("description is longer than 1024 bytes");
  }
  return absl::OkStatus();
}

// Labels as the clouds have them: at most 64, keys 1-63 characters of
// [a-z0-9_-], values at most 63 characters of the same plus upper case.
absl::Status ValidateLabels(const std::map<std::string, std::string>& labels) {
  if (labels.size() > 64) return absl::InvalidArgumentError("more than 64 labels");
  auto ok_chars = [](absl::string_view s, bool allow_upper) {
    for (char c : s) {
      const bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
                      (allow_upper && c >= 'A' && c <= 'Z');
      if (!ok) return false;
    }
    return true;
  };
  for (const auto& [key, value] : labels) {
    if (key.empty() || key.size() > 63 || !ok_chars(key, false)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "label key ", QuoteForError(key), " must be 1-63 characters of a-z, 0-9, '_' and '-'"));
    }
    if (value.size() > 63 || !ok_chars(value, true)) {
      return absl::InvalidArgumentError(
          absl::StrCat("value of label ", QuoteForError(key),
                       " must be at most 63 characters of letters, digits, '_' and '-'"));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateScheduleTime(absl::Time t) {
  if (t < absl::UnixEpoch() || t > absl::FromUnixSeconds(253402300799)) {
    return absl::InvalidArgumentError(
        "next_rotation_time must lie between 1970-01-01T00:00:00Z and 9999-12-31T23:59:59Z");
  }
  return absl::OkStatus();
}

absl::Status CheckRetirement(clavis::v1::VersionRetirement retirement) {
  if (!clavis::v1::VersionRetirement_IsValid(retirement)) {
    return absl::InvalidArgumentError(
        absl::StrCat("version_retirement ", static_cast<int>(retirement),
                     " is unknown; use KEEP_UNUSED_VERSIONS, DISABLE_UNUSED_VERSIONS or "
                     "DESTROY_UNUSED_VERSIONS"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status KeyLifecycle::CheckPeriod(absl::string_view what, absl::Duration period) const {
  if (period == absl::ZeroDuration()) return absl::OkStatus();
  if (period < limits_.min_rotation_period || period > limits_.max_rotation_period) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " ", DescribeDuration(period), " is outside the allowed range ",
                     DescribeDuration(limits_.min_rotation_period), " to ",
                     DescribeDuration(limits_.max_rotation_period)));
  }
  return absl::OkStatus();
}

absl::Status KeyNotUsable(const KeyName& name, const internal::KeyRecord& r) {
  switch (r.state()) {
    case KeyState::ENABLED:
      return absl::OkStatus();
    case KeyState::DISABLED:
      return Refuse("key", name.ToString(), r.state(), r.state_change_time_us(),
                    "an admin can enable it again (clavisctl key enable)");
    case KeyState::PENDING_DESTRUCTION:
      return absl::FailedPreconditionError(absl::StrCat(
          "key ", name.ToString(), " is PENDING_DESTRUCTION until ", Since(r.destroy_time_us()),
          "; run `clavisctl key cancel-destroy ", name.ToString(), "` to keep it"));
    case KeyState::DESTROYED:
      return Refuse("key", name.ToString(), r.state(), r.state_change_time_us(),
                    "its material is gone for good");
    case KeyState::PENDING_IMPORT:
      return Refuse("key", name.ToString(), r.state(), r.state_change_time_us(),
                    absl::StrCat(r.versions_size() == 0
                                     ? "its material was never imported"
                                     : "the imported material of its primary version expired",
                                 "; import it (clavisctl key import ", name.ToString(), ")"));
    default:
      return Refuse("key", name.ToString(), r.state(), r.state_change_time_us(), "");
  }
}

// An imported version whose material is gone (expired and purged).
bool MaterialAbsent(const internal::KeyVersionRecord& v) {
  return !v.material_fingerprint().empty() && v.root_wrapped_material().empty() &&
         v.state() != KeyState::DESTROYED;
}

// Whether a key of origin EXTERNAL has no usable primary material (never
// imported, or expired): enabling it then leads to PENDING_IMPORT.
bool PrimaryMaterialAbsent(const internal::KeyRecord& r) {
  if (r.origin() != clavis::v1::EXTERNAL) return false;
  for (const auto& v : r.versions()) {
    if (v.version() == r.primary_version()) return MaterialAbsent(v);
  }
  return true;
}

bool ImportedMaterialExpired(const internal::KeyVersionRecord& v, absl::Time now) {
  return v.material_expire_time_us() != 0 && !v.root_wrapped_material().empty() &&
         now >= FromMicros(v.material_expire_time_us());
}

absl::Status SegmentNotUsable(const SegmentName& name, const internal::SegmentRecord& r) {
  switch (r.state()) {
    case KeyState::ENABLED:
      return absl::OkStatus();
    case KeyState::DISABLED:
      return Refuse("segment", name.ToString(), r.state(), r.state_change_time_us(),
                    "it was revoked; an admin can enable it again (clavisctl segment enable)");
    case KeyState::PENDING_DESTRUCTION:
      return absl::FailedPreconditionError(absl::StrCat(
          "segment ", name.ToString(), " is PENDING_DESTRUCTION until ", Since(r.destroy_time_us()),
          "; run `clavisctl segment cancel-destroy ", name.ToString(), "` to keep it"));
    case KeyState::DESTROYED:
      return Refuse("segment", name.ToString(), r.state(), r.state_change_time_us(),
                    "its key is gone for good; new data needs a new segment label");
    default:
      return Refuse("segment", name.ToString(), r.state(), r.state_change_time_us(), "");
  }
}

KeyLifecycle::KeyLifecycle(KeyRepository* repository, const Clock* clock, KeyEventBus* events,
                           KeyPolicyLimits limits)
    : repository_(repository), clock_(clock), events_(events), limits_(limits) {}

void KeyLifecycle::Publish(const KeyName& key, KeyEvent::Type type, const std::string& segment,
                           uint32_t version) {
  if (events_ == nullptr) return;
  KeyEvent event;
  event.set_type(type);
  event.set_key(key.ToString());
  event.set_segment(segment);
  event.set_version(version);
  const int64_t now = ToMicros(clock_->Now());
  event.mutable_time()->set_seconds(now / 1000000);
  event.mutable_time()->set_nanos(static_cast<int32_t>((now % 1000000) * 1000));
  events_->Publish(key.tenant, std::move(event));
}

absl::StatusOr<absl::Duration> KeyLifecycle::CheckWindow(
    std::optional<absl::Duration> window) const {
  const absl::Duration w = window.value_or(limits_.default_destruction_window);
  if (w < limits_.min_destruction_window || w > limits_.max_destruction_window) {
    return absl::InvalidArgumentError(
        absl::StrCat("pending window ", DescribeDuration(w), " is outside the allowed range ",
                     DescribeDuration(limits_.min_destruction_window), " to ",
                     DescribeDuration(limits_.max_destruction_window)));
  }
  return w;
}

absl::StatusOr<clavis::v1::Key> KeyLifecycle::CreateKey(const CreateKeyParams& p) {
  if (auto s = ValidateTenantId(p.tenant); !s.ok()) return s;
  if (auto s = ValidateKeyId(p.key_id); !s.ok()) return s;
  if (auto s = ValidateDescription(p.description); !s.ok()) return s;
  if (auto s = ValidateLabels(p.labels); !s.ok()) return s;
  if (p.next_rotation_time.has_value()) {
    if (auto s = ValidateScheduleTime(*p.next_rotation_time); !s.ok()) return s;
  }
  if (auto s = CheckPeriod("rotation period", p.rotation_period); !s.ok()) return s;
  if (auto s = CheckPeriod("segment rotation period", p.segment_rotation_period); !s.ok()) {
    return s;
  }
  if (auto s = CheckRetirement(p.version_retirement); !s.ok()) return s;
  const bool external = p.origin == clavis::v1::EXTERNAL;
  if (p.origin != clavis::v1::GENERATED && !external) {
    return absl::InvalidArgumentError("origin must be GENERATED or EXTERNAL");
  }
  if (external && (p.rotation_period != absl::ZeroDuration() || p.next_rotation_time.has_value())) {
    return absl::InvalidArgumentError(
        "a key of origin EXTERNAL cannot rotate on a schedule: clavisd cannot make its material; "
        "rotate it by importing new material as a new version (clavisctl key import "
        "--new-version)");
  }
  const KeyName name{p.tenant, p.key_id};
  const absl::Time now = clock_->Now();
  std::string wrapped, kcv;
  if (!external) {
    crypto::SecretBytes material = crypto::RandomSecret(kMasterKeySize);
    auto w = repository_->WrapMasterMaterial(name, 1, material);
    if (!w.ok()) return w.status();
    auto k = KeyCheckValue(material);
    if (!k.ok()) return k.status();
    wrapped = *std::move(w);
    kcv = *std::move(k);
  }

  internal::KeyRecord r;
  r.set_format_version(1);
  r.set_tenant(p.tenant);
  r.set_key_id(p.key_id);
  r.set_state(external ? KeyState::PENDING_IMPORT : KeyState::ENABLED);
  r.set_origin(p.origin);
  r.set_description(p.description);
  r.mutable_labels()->insert(p.labels.begin(), p.labels.end());
  r.set_create_time_us(ToMicros(now));
  r.set_state_change_time_us(ToMicros(now));
  r.set_rotation_period_s(absl::ToInt64Seconds(p.rotation_period));
  if (p.next_rotation_time.has_value()) {
    r.set_next_rotation_time_us(ToMicros(*p.next_rotation_time));
  } else if (p.rotation_period != absl::ZeroDuration()) {
    r.set_next_rotation_time_us(ToMicros(now + p.rotation_period));
  }
  r.set_require_explicit_segments(p.require_explicit_segments);
  r.set_version_retirement(p.version_retirement);
  r.set_segment_rotation_period_s(absl::ToInt64Seconds(p.segment_rotation_period));
  if (p.approvals_required > kMaxApprovalsRequired) {
    return absl::InvalidArgumentError(
        absl::StrCat("approvals_required must be at most ", kMaxApprovalsRequired));
  }
  r.set_policy_json(p.policy_json);
  r.set_approvals_required(p.approvals_required);
  if (!external) {  // an external key gets version 1 from its first import
    r.set_primary_version(1);
    internal::KeyVersionRecord* v = r.add_versions();
    v->set_version(1);
    v->set_state(KeyState::ENABLED);
    v->set_create_time_us(ToMicros(now));
    v->set_state_change_time_us(ToMicros(now));
    v->set_root_wrapped_material(wrapped);
    v->set_key_check_value(kcv);
  }
  if (auto s = repository_->CreateKey(name, r); !s.ok()) return s;
  Publish(name, KeyEvent::CREATED);
  return KeyView(r);
}

absl::StatusOr<std::shared_ptr<const KeyEntry>> KeyLifecycle::CurrentKey(const KeyName& name) {
  auto entry = repository_->GetKey(name);
  if (!entry.ok()) return entry.status();
  const absl::Time now = clock_->Now();
  for (const auto& v : (*entry)->record().versions()) {
    if (!ImportedMaterialExpired(v, now)) continue;
    if (auto expired = ExpireImportedMaterial(name); !expired.ok()) return expired.status();
    return repository_->GetKey(name);
  }
  return entry;
}

absl::StatusOr<clavis::v1::Key> KeyLifecycle::GetKey(const KeyName& name) {
  auto entry = CurrentKey(name);
  if (!entry.ok()) return entry.status();
  return KeyView((*entry)->record());
}

absl::StatusOr<std::vector<clavis::v1::Key>> KeyLifecycle::ListKeys(const std::string& tenant,
                                                                    const std::string& start_after,
                                                                    size_t limit,
                                                                    std::string* next) {
  if (auto s = ValidateTenantId(tenant); !s.ok()) return s;
  // One more than asked tells whether another page follows, so the last
  // page carries no token (AIP-158).
  auto records = repository_->ListKeys(tenant, start_after, limit == 0 ? 0 : limit + 1);
  if (!records.ok()) return records.status();
  next->clear();
  if (limit != 0 && records->size() > limit) {
    records->resize(limit);
    *next = records->back().key_id();
  }
  std::vector<clavis::v1::Key> out;
  for (const auto& r : *records) out.push_back(KeyView(r));
  return out;
}

absl::StatusOr<clavis::v1::Key> KeyLifecycle::RotateKey(
    const KeyName& name, std::optional<absl::Time> if_next_rotation_time) {
  // Material is made once, outside the retry loop; the version number is
  // fixed inside it (it depends on the record read).
  crypto::SecretBytes material = crypto::RandomSecret(kMasterKeySize);
  auto kcv = KeyCheckValue(material);
  if (!kcv.ok()) return kcv.status();
  uint32_t new_version = 0;
  auto updated = repository_->UpdateKey(name, [&](internal::KeyRecord* r) -> absl::Status {
    if (r->origin() == clavis::v1::EXTERNAL) {
      return absl::FailedPreconditionError(absl::StrCat(
          "key ", name.ToString(),
          " holds imported material (origin EXTERNAL), which clavisd cannot make; rotate it by "
          "importing new material as a new version (clavisctl key import --new-version)"));
    }
    if (r->state() != KeyState::ENABLED) return KeyNotUsable(name, *r);
    if (if_next_rotation_time.has_value() &&
        r->next_rotation_time_us() != ToMicros(*if_next_rotation_time)) {
      return absl::AbortedError(
          absl::StrCat("key ", name.ToString(), " is no longer due for the rotation at ",
                       FormatTimestamp(*if_next_rotation_time), " (next rotation now ",
                       r->next_rotation_time_us() == 0 ? "none" : Since(r->next_rotation_time_us()),
                       "): it was rotated already"));
    }
    auto added = AddPrimaryVersion(name, material, *kcv, r);
    if (!added.ok()) return added.status();
    new_version = *added;
    return absl::OkStatus();
  });
  if (!updated.ok()) return updated.status();
  Publish(name, KeyEvent::ROTATED, "", new_version);
  return KeyView(*updated);
}

absl::StatusOr<uint32_t> KeyLifecycle::AddPrimaryVersion(const KeyName& name,
                                                         const crypto::SecretBytes& material,
                                                         const std::string& key_check_value,
                                                         internal::KeyRecord* r) {
  uint32_t max_version = 0;
  for (const auto& v : r->versions()) max_version = std::max(max_version, v.version());
  const uint32_t new_version = max_version + 1;
  auto wrapped = repository_->WrapMasterMaterial(name, new_version, material);
  if (!wrapped.ok()) return wrapped.status();
  const int64_t now = ToMicros(clock_->Now());
  internal::KeyVersionRecord* v = r->add_versions();
  v->set_version(new_version);
  v->set_state(KeyState::ENABLED);
  v->set_create_time_us(now);
  v->set_state_change_time_us(now);
  v->set_root_wrapped_material(*wrapped);
  v->set_key_check_value(key_check_value);
  r->set_primary_version(new_version);
  if (r->rotation_period_s() > 0) {
    r->set_next_rotation_time_us(now + r->rotation_period_s() * 1000000);
  }
  return new_version;
}

absl::StatusOr<clavis::v1::Key> KeyLifecycle::MarkKeyVersionCompromised(
    const KeyVersionName& name) {
  // Material for the replacement primary is made outside the write, like
  // RotateKey; it is only used when the primary itself is compromised.
  crypto::SecretBytes material = crypto::RandomSecret(kMasterKeySize);
  auto kcv = KeyCheckValue(material);
  if (!kcv.ok()) return kcv.status();
  uint32_t rotated_to = 0;
  bool newly_marked = false;
  auto updated = repository_->UpdateKey(name.key, [&](internal::KeyRecord* r) -> absl::Status {
    rotated_to = 0;
    newly_marked = false;
    if (r->state() == KeyState::DESTROYED) return KeyNotUsable(name.key, *r);
    internal::KeyVersionRecord* target = nullptr;
    for (auto& v : *r->mutable_versions()) {
      if (v.version() == name.version) target = &v;
    }
    if (target == nullptr) {
      return absl::NotFoundError(absl::StrCat("key version ", name.ToString(), " not found"));
    }
    if (target->compromise_time_us() != 0) return absl::OkStatus();  // already marked
    if (target->state() == KeyState::DESTROYED) {
      return absl::FailedPreconditionError(
          absl::StrCat("key version ", name.ToString(), " is DESTROYED since ",
                       Since(target->state_change_time_us()),
                       ": its material is gone, so it protects nothing any more"));
    }
    if (target->version() == r->primary_version()) {
      if (r->origin() == clavis::v1::EXTERNAL) {
        return absl::FailedPreconditionError(absl::StrCat(
            "key version ", name.ToString(),
            " is the primary version of a key of imported material, and clavisd cannot make a "
            "replacement; import new material first (clavisctl key import --new-version), then "
            "mark this version compromised"));
      }
      // Also for a disabled key (or one pending destruction): it must not
      // come back with the leaked version still primary.
      auto added = AddPrimaryVersion(name.key, material, *kcv, r);
      if (!added.ok()) return added.status();
      rotated_to = *added;
      // add_versions may have moved the target: find it again.
      for (auto& v : *r->mutable_versions()) {
        if (v.version() == name.version) target = &v;
      }
    }
    target->set_compromise_time_us(ToMicros(clock_->Now()));
    newly_marked = true;
    return absl::OkStatus();
  });
  if (!updated.ok()) return updated.status();
  if (rotated_to != 0) Publish(name.key, KeyEvent::ROTATED, "", rotated_to);
  if (newly_marked) Publish(name.key, KeyEvent::VERSION_COMPROMISED, "", name.version);
  return KeyView(*updated);
}

absl::Status VersionCompromised(const KeyVersionName& name,
                                const internal::KeyVersionRecord& version) {
  if (version.compromise_time_us() == 0) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(
      "key version ", name.ToString(), " was marked compromised at ",
      Since(version.compromise_time_us()),
      " and decrypts nothing; re-wrap the key's segments onto the primary version (clavisctl key "
      "rewrap ",
      name.key.ToString(), "; clavis-rotator does it at once), then try again"));
}

absl::StatusOr<clavis::v1::Key> KeyLifecycle::EnableKey(const KeyName& name) {
  auto updated = repository_->UpdateKey(name, [&](internal::KeyRecord* r) -> absl::Status {
    if (r->state() == KeyState::ENABLED) return absl::OkStatus();  // idempotent
    if (r->state() != KeyState::DISABLED) return KeyNotUsable(name, *r);
    // Without primary material (never imported, or expired while disabled)
    // the key can only wait for an import.
    r->set_state(PrimaryMaterialAbsent(*r) ? KeyState::PENDING_IMPORT : KeyState::ENABLED);
    r->set_state_change_time_us(ToMicros(clock_->Now()));
    return absl::OkStatus();
  });
  if (!updated.ok()) return updated.status();
  Publish(name, KeyEvent::ENABLED);
  return KeyView(*updated);
}

absl::StatusOr<clavis::v1::Key> KeyLifecycle::DisableKey(const KeyName& name) {
  auto updated = repository_->UpdateKey(name, [&](internal::KeyRecord* r) -> absl::Status {
    if (r->state() == KeyState::DISABLED) return absl::OkStatus();
    if (r->state() != KeyState::ENABLED && r->state() != KeyState::PENDING_IMPORT) {
      return KeyNotUsable(name, *r);
    }
    r->set_state(KeyState::DISABLED);
    r->set_state_change_time_us(ToMicros(clock_->Now()));
    return absl::OkStatus();
  });
  if (!updated.ok()) return updated.status();
  Publish(name, KeyEvent::DISABLED);
  return KeyView(*updated);
}

absl::StatusOr<clavis::v1::Key> KeyLifecycle::ScheduleKeyDestruction(
    const KeyName& name, std::optional<absl::Duration> window) {
  auto w = CheckWindow(window);
  if (!w.ok()) return w.status();
  auto updated = repository_->UpdateKey(name, [&](internal::KeyRecord* r) -> absl::Status {
    if (r->state() != KeyState::ENABLED && r->state() != KeyState::DISABLED &&
        r->state() != KeyState::PENDING_IMPORT) {
      return KeyNotUsable(name, *r);
    }
    const absl::Time now = clock_->Now();
    r->set_state(KeyState::PENDING_DESTRUCTION);
    r->set_state_change_time_us(ToMicros(now));
    r->set_destroy_time_us(ToMicros(now + *w));
    return absl::OkStatus();
  });
  if (!updated.ok()) return updated.status();
  Publish(name, KeyEvent::DESTRUCTION_SCHEDULED);
  return KeyView(*updated);
}

absl::StatusOr<clavis::v1::Key> KeyLifecycle::CancelKeyDestruction(const KeyName& name) {
  auto updated = repository_->UpdateKey(name, [&](internal::KeyRecord* r) -> absl::Status {
    if (r->state() != KeyState::PENDING_DESTRUCTION) {
      return absl::FailedPreconditionError(
          absl::StrCat("key ", name.ToString(), " is ", StateName(r->state()),
                       ", not PENDING_DESTRUCTION; there is no destruction to cancel"));
    }
    r->set_state(KeyState::DISABLED);  // as the clouds do: re-enable explicitly
    r->set_state_change_time_us(ToMicros(clock_->Now()));
    r->set_destroy_time_us(0);
    return absl::OkStatus();
  });
  if (!updated.ok()) return updated.status();
  Publish(name, KeyEvent::DESTRUCTION_CANCELLED);
  return KeyView(*updated);
}

absl::StatusOr<clavis::v1::Key> KeyLifecycle::DestroyKey(const KeyName& name) {
  auto updated = repository_->UpdateKeyAndPurge(
      name,
      [&](internal::KeyRecord* r) -> absl::Status {
        // Destroying again re-runs the purge (it may have failed, or the
        // process died, after the commit): idempotent, nothing else changes.
        if (r->state() == KeyState::DESTROYED) return absl::OkStatus();
        if (r->state() != KeyState::PENDING_DESTRUCTION) {
          return absl::FailedPreconditionError(absl::StrCat(
              "key ", name.ToString(), " is ", StateName(r->state()),
              "; only a key PENDING_DESTRUCTION whose window has passed can be destroyed "
              "(clavisctl key schedule-destroy)"));
        }
        const absl::Time now = clock_->Now();
        if (now < FromMicros(r->destroy_time_us())) {
          return absl::FailedPreconditionError(
              absl::StrCat("key ", name.ToString(), " is PENDING_DESTRUCTION until ",
                           Since(r->destroy_time_us()), "; it cannot be destroyed before then"));
        }
        r->set_state(KeyState::DESTROYED);
        r->set_state_change_time_us(ToMicros(now));
        for (auto& v : *r->mutable_versions()) {
          if (v.state() != KeyState::DESTROYED) {
            v.set_state(KeyState::DESTROYED);
            v.set_state_change_time_us(ToMicros(now));
          }
          v.clear_root_wrapped_material();
        }
        return absl::OkStatus();
      },
      /*delete_all_segments=*/true);
  if (!updated.ok()) return updated.status();
  Publish(name, KeyEvent::DESTROYED);
  return KeyView(*updated);
}

absl::StatusOr<clavis::v1::Key> KeyLifecycle::UpdateKeySettings(const KeyName& name,
                                                                const KeySettingsUpdate& u) {
  if (u.description.has_value()) {
    if (auto s = ValidateDescription(*u.description); !s.ok()) return s;
  }
  if (u.labels.has_value()) {
    if (auto s = ValidateLabels(*u.labels); !s.ok()) return s;
  }
  if (u.next_rotation_time.has_value() && *u.next_rotation_time != absl::InfinitePast()) {
    if (auto s = ValidateScheduleTime(*u.next_rotation_time); !s.ok()) return s;
  }
  if (u.rotation_period.has_value()) {
    if (auto s = CheckPeriod("rotation period", *u.rotation_period); !s.ok()) return s;
  }
  if (u.segment_rotation_period.has_value()) {
    if (auto s = CheckPeriod("segment rotation period", *u.segment_rotation_period); !s.ok()) {
      return s;
    }
  }
  if (u.version_retirement.has_value()) {
    if (auto s = CheckRetirement(*u.version_retirement); !s.ok()) return s;
  }
  auto updated = repository_->UpdateKey(name, [&](internal::KeyRecord* r) -> absl::Status {
    if (r->state() == KeyState::DESTROYED) return KeyNotUsable(name, *r);
    if (r->origin() == clavis::v1::EXTERNAL &&
        ((u.rotation_period.has_value() && *u.rotation_period != absl::ZeroDuration()) ||
         (u.next_rotation_time.has_value() && *u.next_rotation_time != absl::InfinitePast()))) {
      return absl::FailedPreconditionError(absl::StrCat(
          "key ", name.ToString(),
          " holds imported material (origin EXTERNAL), which clavisd cannot make, so it cannot "
          "rotate on a schedule; rotate it by importing new material (clavisctl key import "
          "--new-version)"));
    }
    if (u.description.has_value()) r->set_description(*u.description);
    if (u.labels.has_value()) {
      r->mutable_labels()->clear();
      r->mutable_labels()->insert(u.labels->begin(), u.labels->end());
    }
    if (u.rotation_period.has_value()) {
      r->set_rotation_period_s(absl::ToInt64Seconds(*u.rotation_period));
      if (*u.rotation_period == absl::ZeroDuration()) {
        r->set_next_rotation_time_us(0);
      } else if (!u.next_rotation_time.has_value() && r->next_rotation_time_us() == 0) {
        r->set_next_rotation_time_us(ToMicros(clock_->Now() + *u.rotation_period));
      }
    }
    if (u.next_rotation_time.has_value()) {
      r->set_next_rotation_time_us(
          *u.next_rotation_time == absl::InfinitePast() ? 0 : ToMicros(*u.next_rotation_time));
    }
    if (u.require_explicit_segments.has_value()) {
      r->set_require_explicit_segments(*u.require_explicit_segments);
    }
    if (u.version_retirement.has_value()) r->set_version_retirement(*u.version_retirement);
    if (u.segment_rotation_period.has_value()) {
      r->set_segment_rotation_period_s(absl::ToInt64Seconds(*u.segment_rotation_period));
    }
    return absl::OkStatus();
  });
  if (!updated.ok()) return updated.status();
  Publish(name, KeyEvent::SETTINGS_CHANGED);
  return KeyView(*updated);
}

absl::StatusOr<clavis::v1::Key> KeyLifecycle::UpdateKeyAccess(const KeyName& name,
                                                              const KeyAccessUpdate& u) {
  if (u.approvals_required.has_value() && *u.approvals_required > kMaxApprovalsRequired) {
    return absl::InvalidArgumentError(
        absl::StrCat("approvals_required must be at most ", kMaxApprovalsRequired));
  }
  auto updated = repository_->UpdateKey(name, [&](internal::KeyRecord* r) -> absl::Status {
    if (r->state() == KeyState::DESTROYED) return KeyNotUsable(name, *r);
    if (u.policy_json.has_value()) r->set_policy_json(*u.policy_json);
    if (u.approvals_required.has_value()) r->set_approvals_required(*u.approvals_required);
    return absl::OkStatus();
  });
  if (!updated.ok()) return updated.status();
  Publish(name, KeyEvent::SETTINGS_CHANGED);
  return KeyView(*updated);
}

absl::StatusOr<clavis::v1::Key> KeyLifecycle::UpdateVersion(
    const KeyVersionName& name, KeyEvent::Type event,
    const std::function<absl::Status(internal::KeyRecord*, internal::KeyVersionRecord*)>& fn) {
  const bool purge = event == KeyEvent::VERSION_DESTROYED;
  auto mutate = [&](internal::KeyRecord* r) -> absl::Status {
    if (r->state() == KeyState::DESTROYED) return KeyNotUsable(name.key, *r);
    for (auto& v : *r->mutable_versions()) {
      if (v.version() == name.version) return fn(r, &v);
    }
    return absl::NotFoundError(absl::StrCat("key version ", name.ToString(), " not found"));
  };
  auto updated = purge ? repository_->UpdateKeyAndPurge(name.key, mutate, false)
                       : repository_->UpdateKey(name.key, mutate);
  if (!updated.ok()) return updated.status();
  Publish(name.key, event, "", name.version);
  return KeyView(*updated);
}

absl::StatusOr<clavis::v1::Key> KeyLifecycle::EnableKeyVersion(const KeyVersionName& name) {
  return UpdateVersion(
      name, KeyEvent::VERSION_ENABLED,
      [&](internal::KeyRecord*, internal::KeyVersionRecord* v) -> absl::Status {
        if (v->state() == KeyState::ENABLED) return absl::OkStatus();
        if (v->state() != KeyState::DISABLED) {
          return Refuse("key version", name.ToString(), v->state(), v->state_change_time_us(), "");
        }
        // Expired while disabled: it waits for its material.
        v->set_state(MaterialAbsent(*v) ? KeyState::PENDING_IMPORT : KeyState::ENABLED);
        v->set_state_change_time_us(ToMicros(clock_->Now()));
        return absl::OkStatus();
      });
}

absl::StatusOr<clavis::v1::Key> KeyLifecycle::DisableKeyVersion(const KeyVersionName& name) {
  return UpdateVersion(
      name, KeyEvent::VERSION_DISABLED,
      [&](internal::KeyRecord* r, internal::KeyVersionRecord* v) -> absl::Status {
        if (v->state() == KeyState::DISABLED) return absl::OkStatus();
        if (v->version() == r->primary_version()) {
          return absl::FailedPreconditionError(
              absl::StrCat("key version ", name.ToString(),
                           " is the primary version; rotate the key first (clavisctl key rotate)"));
        }
        if (v->state() != KeyState::ENABLED && v->state() != KeyState::PENDING_IMPORT) {
          return Refuse("key version", name.ToString(), v->state(), v->state_change_time_us(), "");
        }
        v->set_state(KeyState::DISABLED);
        v->set_state_change_time_us(ToMicros(clock_->Now()));
        return absl::OkStatus();
      });
}

absl::StatusOr<clavis::v1::Key> KeyLifecycle::ScheduleKeyVersionDestruction(
    const KeyVersionName& name, std::optional<absl::Duration> window) {
  auto w = CheckWindow(window);
  if (!w.ok()) return w.status();
  return UpdateVersion(
      name, KeyEvent::VERSION_DESTRUCTION_SCHEDULED,
      [&](internal::KeyRecord* r, internal::KeyVersionRecord* v) -> absl::Status {
        if (v->version() == r->primary_version()) {
          return absl::FailedPreconditionError(
              absl::StrCat("key version ", name.ToString(),
                           " is the primary version; rotate the key first (clavisctl key rotate)"));
        }
        if (v->state() != KeyState::ENABLED && v->state() != KeyState::DISABLED &&
            v->state() != KeyState::PENDING_IMPORT) {
          return Refuse("key version", name.ToString(), v->state(), v->state_change_time_us(), "");
        }
        const absl::Time now = clock_->Now();
        v->set_state(KeyState::PENDING_DESTRUCTION);
        v->set_state_change_time_us(ToMicros(now));
        v->set_destroy_time_us(ToMicros(now + *w));
        return absl::OkStatus();
      });
}

absl::StatusOr<clavis::v1::Key> KeyLifecycle::CancelKeyVersionDestruction(
    const KeyVersionName& name) {
  return UpdateVersion(name, KeyEvent::DESTRUCTION_CANCELLED,
                       [&](internal::KeyRecord*, internal::KeyVersionRecord* v) -> absl::Status {
                         if (v->state() != KeyState::PENDING_DESTRUCTION) {
                           return absl::FailedPreconditionError(absl::StrCat(
                               "key version ", name.ToString(), " is ", StateName(v->state()),
                               ", not PENDING_DESTRUCTION; there is no destruction to cancel"));
                         }
                         v->set_state(KeyState::DISABLED);
                         v->set_state_change_time_us(ToMicros(clock_->Now()));
                         v->set_destroy_time_us(0);
                         return absl::OkStatus();
                       });
}

absl::StatusOr<clavis::v1::Key> KeyLifecycle::DestroyKeyVersion(const KeyVersionName& name) {
  return UpdateVersion(
      name, KeyEvent::VERSION_DESTROYED,
      [&](internal::KeyRecord*, internal::KeyVersionRecord* v) -> absl::Status {
        if (v->state() == KeyState::DESTROYED) return absl::OkStatus();  // re-purge
        if (v->state() != KeyState::PENDING_DESTRUCTION) {
          return absl::FailedPreconditionError(
              absl::StrCat("key version ", name.ToString(), " is ", StateName(v->state()),
                           "; only a version PENDING_DESTRUCTION whose window has passed can be "
                           "destroyed"));
        }
        const absl::Time now = clock_->Now();
        if (now < FromMicros(v->destroy_time_us())) {
          return absl::FailedPreconditionError(
              absl::StrCat("key version ", name.ToString(), " is PENDING_DESTRUCTION until ",
                           Since(v->destroy_time_us()), "; it cannot be destroyed before then"));
        }
        v->set_state(KeyState::DESTROYED);
        v->set_state_change_time_us(ToMicros(now));
        v->clear_root_wrapped_material();
        return absl::OkStatus();
      });
}

absl::StatusOr<internal::SegmentRecord> KeyLifecycle::NewSegmentRecord(const KeyEntry& key,
                                                                       const std::string& segment) {
  const uint32_t key_version = key.record().primary_version();
  crypto::SecretBytes segment_key = crypto::RandomSecret(kSegmentKeySize);
  auto wrapped = repository_->WrapSegmentKey(key, key_version, segment, 1, segment_key);
  if (!wrapped.ok()) return wrapped.status();
  const int64_t now = ToMicros(clock_->Now());
  internal::SegmentRecord r;
  r.set_format_version(1);
  r.set_segment(segment);
  r.set_state(KeyState::ENABLED);
  r.set_create_time_us(now);
  r.set_state_change_time_us(now);
  r.set_primary_version(1);
  internal::SegmentVersionRecord* v = r.add_versions();
  v->set_version(1);
  v->set_key_version(key_version);
  v->set_wrapped_key(*wrapped);
  v->set_create_time_us(now);
  return r;
}

absl::StatusOr<std::shared_ptr<const SegmentEntry>> KeyLifecycle::GetOrCreateSegment(
    const KeyEntry& key, const SegmentName& name) {
  auto existing = repository_->GetSegment(name);
  if (existing.ok() || !absl::IsNotFound(existing.status())) return existing;
  if (key.record().require_explicit_segments()) {
    return absl::FailedPreconditionError(
        absl::StrCat("segment ", name.ToString(), " does not exist and key ", key.name().ToString(),
                     " requires segments to be created first (clavisctl segment create)"));
  }
  auto record = NewSegmentRecord(key, name.segment);
  if (!record.ok()) return record.status();
  absl::Status created = repository_->CreateSegment(name, *record);
  // AlreadyExists: another request created it first; use theirs.
  if (!created.ok() && !absl::IsAlreadyExists(created)) return created;
  return repository_->GetSegment(name);
}

absl::StatusOr<clavis::v1::Segment> KeyLifecycle::CreateSegment(const SegmentName& name) {
  auto key = CurrentKey(name.key);
  if (!key.ok()) return key.status();
  if (auto s = KeyNotUsable(name.key, (*key)->record()); !s.ok()) return s;
  auto record = NewSegmentRecord(**key, name.segment);
  if (!record.ok()) return record.status();
  if (auto s = repository_->CreateSegment(name, *record); !s.ok()) return s;
  return SegmentView(name.key, *record);
}

absl::StatusOr<clavis::v1::Segment> KeyLifecycle::GetSegment(const SegmentName& name) {
  auto key = repository_->GetKey(name.key);
  if (!key.ok()) return key.status();
  auto entry = repository_->GetSegment(name);
  if (!entry.ok()) return entry.status();
  return SegmentView(name.key, (*entry)->record());
}

absl::StatusOr<std::vector<clavis::v1::Segment>> KeyLifecycle::ListSegments(
    const KeyName& key, const std::string& label_prefix, const std::string& start_after,
    size_t limit, std::string* next) {
  auto entry = repository_->GetKey(key);
  if (!entry.ok()) return entry.status();
  auto records =
      repository_->ListSegments(key, label_prefix, start_after, limit == 0 ? 0 : limit + 1);
  if (!records.ok()) return records.status();
  next->clear();
  if (limit != 0 && records->size() > limit) {
    records->resize(limit);
    *next = records->back().segment();
  }
  std::vector<clavis::v1::Segment> out;
  for (const auto& r : *records) out.push_back(SegmentView(key, r));
  return out;
}

absl::StatusOr<clavis::v1::Segment> KeyLifecycle::RotateSegment(
    const SegmentName& name, std::optional<uint32_t> if_primary_version) {
  auto key = CurrentKey(name.key);
  if (!key.ok()) return key.status();
  if (auto s = KeyNotUsable(name.key, (*key)->record()); !s.ok()) return s;
  const uint32_t key_version = (*key)->record().primary_version();
  crypto::SecretBytes segment_key = crypto::RandomSecret(kSegmentKeySize);
  uint32_t new_version = 0;
  auto updated = repository_->UpdateSegment(name, [&](internal::SegmentRecord* r) -> absl::Status {
    if (r->state() != KeyState::ENABLED) return SegmentNotUsable(name, *r);
    if (if_primary_version.has_value() && r->primary_version() != *if_primary_version) {
      return absl::AbortedError(absl::StrCat(
          "segment ", name.ToString(), " is no longer on primary version ", *if_primary_version,
          " (now ", r->primary_version(), "): it was rotated already"));
    }
    uint32_t max_version = 0;
    for (const auto& v : r->versions()) max_version = std::max(max_version, v.version());
    new_version = max_version + 1;
    auto wrapped =
        repository_->WrapSegmentKey(**key, key_version, name.segment, new_version, segment_key);
    if (!wrapped.ok()) return wrapped.status();
    const int64_t now = ToMicros(clock_->Now());
    internal::SegmentVersionRecord* v = r->add_versions();
    v->set_version(new_version);
    v->set_key_version(key_version);
    v->set_wrapped_key(*wrapped);
    v->set_create_time_us(now);
    r->set_primary_version(new_version);
    return absl::OkStatus();
  });
  if (!updated.ok()) return updated.status();
  Publish(name.key, KeyEvent::SEGMENT_ROTATED, name.segment, new_version);
  return SegmentView(name.key, *updated);
}

absl::StatusOr<clavis::v1::Segment> KeyLifecycle::UpdateSegmentState(
    const SegmentName& name, KeyEvent::Type event,
    const std::function<absl::Status(internal::SegmentRecord*)>& fn) {
  auto key = repository_->GetKey(name.key);
  if (!key.ok()) return key.status();
  if ((*key)->record().state() == KeyState::DESTROYED) {
    return KeyNotUsable(name.key, (*key)->record());
  }
  const bool purge = event == KeyEvent::SEGMENT_DESTROYED;
  auto updated =
      purge ? repository_->UpdateSegmentAndPurge(name, fn) : repository_->UpdateSegment(name, fn);
  if (!updated.ok()) return updated.status();
  Publish(name.key, event, name.segment);
  return SegmentView(name.key, *updated);
}

absl::StatusOr<clavis::v1::Segment> KeyLifecycle::RevokeSegment(const SegmentName& name) {
  return UpdateSegmentState(name, KeyEvent::SEGMENT_REVOKED,
                            [&](internal::SegmentRecord* r) -> absl::Status {
                              if (r->state() == KeyState::DISABLED) return absl::OkStatus();
                              if (r->state() != KeyState::ENABLED) {
                                return SegmentNotUsable(name, *r);
                              }
                              r->set_state(KeyState::DISABLED);
                              r->set_state_change_time_us(ToMicros(clock_->Now()));
                              return absl::OkStatus();
                            });
}

absl::StatusOr<clavis::v1::Segment> KeyLifecycle::EnableSegment(const SegmentName& name) {
  return UpdateSegmentState(name, KeyEvent::SEGMENT_ENABLED,
                            [&](internal::SegmentRecord* r) -> absl::Status {
                              if (r->state() == KeyState::ENABLED) return absl::OkStatus();
                              if (r->state() != KeyState::DISABLED) {
                                return SegmentNotUsable(name, *r);
                              }
                              r->set_state(KeyState::ENABLED);
                              r->set_state_change_time_us(ToMicros(clock_->Now()));
                              return absl::OkStatus();
                            });
}

absl::StatusOr<clavis::v1::Segment> KeyLifecycle::ScheduleSegmentDestruction(
    const SegmentName& name, std::optional<absl::Duration> window) {
  auto w = CheckWindow(window);
  if (!w.ok()) return w.status();
  return UpdateSegmentState(
      name, KeyEvent::SEGMENT_DESTRUCTION_SCHEDULED,
      [&](internal::SegmentRecord* r) -> absl::Status {
        if (r->state() != KeyState::ENABLED && r->state() != KeyState::DISABLED) {
          return SegmentNotUsable(name, *r);
        }
        const absl::Time now = clock_->Now();
        r->set_state(KeyState::PENDING_DESTRUCTION);
        r->set_state_change_time_us(ToMicros(now));
        r->set_destroy_time_us(ToMicros(now + *w));
        return absl::OkStatus();
      });
}

absl::StatusOr<clavis::v1::Segment> KeyLifecycle::CancelSegmentDestruction(
    const SegmentName& name) {
  return UpdateSegmentState(
      name, KeyEvent::DESTRUCTION_CANCELLED, [&](internal::SegmentRecord* r) -> absl::Status {
        if (r->state() != KeyState::PENDING_DESTRUCTION) {
          return absl::FailedPreconditionError(
              absl::StrCat("segment ", name.ToString(), " is ", StateName(r->state()),
                           ", not PENDING_DESTRUCTION; there is no destruction to cancel"));
        }
        r->set_state(KeyState::DISABLED);
        r->set_state_change_time_us(ToMicros(clock_->Now()));
        r->set_destroy_time_us(0);
        return absl::OkStatus();
      });
}

absl::StatusOr<clavis::v1::Segment> KeyLifecycle::DestroySegment(const SegmentName& name) {
  return UpdateSegmentState(
      name, KeyEvent::SEGMENT_DESTROYED, [&](internal::SegmentRecord* r) -> absl::Status {
        if (r->state() == KeyState::DESTROYED) return absl::OkStatus();  // re-purge
        if (r->state() != KeyState::PENDING_DESTRUCTION) {
          return absl::FailedPreconditionError(absl::StrCat(
              "segment ", name.ToString(), " is ", StateName(r->state()),
              "; only a segment PENDING_DESTRUCTION whose window has passed can be destroyed "
              "(clavisctl segment schedule-destroy)"));
        }
        const absl::Time now = clock_->Now();
        if (now < FromMicros(r->destroy_time_us())) {
          return absl::FailedPreconditionError(
              absl::StrCat("segment ", name.ToString(), " is PENDING_DESTRUCTION until ",
                           Since(r->destroy_time_us()), "; it cannot be destroyed before then"));
        }
        r->set_state(KeyState::DESTROYED);
        r->set_state_change_time_us(ToMicros(now));
        for (auto& v : *r->mutable_versions()) v.clear_wrapped_key();
        return absl::OkStatus();
      });
}

absl::StatusOr<clavis::v1::Key> KeyLifecycle::ImportKeyMaterial(const KeyName& name,
                                                                const crypto::SecretBytes& material,
                                                                const ImportTarget& target) {
  if (material.size() != kMasterKeySize) {
    return absl::InvalidArgumentError(
        absl::StrCat("imported key material must be ", kMasterKeySize, " bytes"));
  }
  const absl::Time now = clock_->Now();
  if (target.valid_to.has_value() &&
      (*target.valid_to <= now || *target.valid_to > absl::FromUnixSeconds(253402300799))) {
    return absl::InvalidArgumentError(absl::StrCat(
        "valid_to ", FormatTimestamp(*target.valid_to),
        " must lie in the future (and before 9999-12-31); leave it unset for material that "
        "never expires"));
  }
  auto fingerprint = ImportedMaterialFingerprint(material);
  if (!fingerprint.ok()) return fingerprint.status();
  auto kcv = KeyCheckValue(material);
  if (!kcv.ok()) return kcv.status();
  const int64_t expire_us = target.valid_to.has_value() ? ToMicros(*target.valid_to) : 0;
  uint32_t imported_version = 0;
  auto updated = repository_->UpdateKey(name, [&](internal::KeyRecord* r) -> absl::Status {
    if (r->origin() != clavis::v1::EXTERNAL) {
      return absl::FailedPreconditionError(absl::StrCat(
          "key ", name.ToString(), " has origin ", clavis::v1::KeyOrigin_Name(r->origin()),
          "; only keys created with origin EXTERNAL take imported material "
          "(clavisctl key create --origin external)"));
    }
    if (r->state() != KeyState::ENABLED && r->state() != KeyState::DISABLED &&
        r->state() != KeyState::PENDING_IMPORT) {
      return KeyNotUsable(name, *r);
    }
    const int64_t now_us = ToMicros(clock_->Now());
    if (r->versions_size() == 0 || target.new_version) {
      uint32_t max_version = 0;
      for (const auto& v : r->versions()) {
        max_version = std::max(max_version, v.version());
        if (crypto::ConstantTimeEquals(v.material_fingerprint(), *fingerprint)) {
          return absl::FailedPreconditionError(absl::StrCat(
              "this material is already version ", v.version(), " of key ", name.ToString(),
              "; a new version needs new material (to restore that version's material, import "
              "without --new-version)"));
        }
      }
      imported_version = max_version + 1;
      auto wrapped = repository_->WrapMasterMaterial(name, imported_version, material);
      if (!wrapped.ok()) return wrapped.status();
      internal::KeyVersionRecord* v = r->add_versions();
      v->set_version(imported_version);
      v->set_state(KeyState::ENABLED);
      v->set_create_time_us(now_us);
      v->set_state_change_time_us(now_us);
      v->set_root_wrapped_material(*wrapped);
      v->set_key_check_value(*kcv);
      v->set_material_fingerprint(*fingerprint);
      v->set_material_expire_time_us(expire_us);
      r->set_primary_version(imported_version);
    } else {
      imported_version = target.version != 0 ? target.version : r->primary_version();
      internal::KeyVersionRecord* v = nullptr;
      for (auto& candidate : *r->mutable_versions()) {
        if (candidate.version() == imported_version) v = &candidate;
      }
      const std::string version_name = KeyVersionName{name, imported_version}.ToString();
      if (v == nullptr) {
        return absl::NotFoundError(absl::StrCat("key version ", version_name, " not found"));
      }
      if (v->state() == KeyState::DESTROYED || v->state() == KeyState::PENDING_DESTRUCTION) {
        return Refuse("key version", version_name, v->state(), v->state_change_time_us(),
                      "material cannot be imported into it");
      }
      if (!crypto::ConstantTimeEquals(v->material_fingerprint(), *fingerprint)) {
        return absl::FailedPreconditionError(
            absl::StrCat("this is not the material of key version ", version_name,
                         " (key check value ", v->key_check_value(), ", yours is ", *kcv,
                         "); a version only takes back its own material; import new material with "
                         "--new-version"));
      }
      auto wrapped = repository_->WrapMasterMaterial(name, imported_version, material);
      if (!wrapped.ok()) return wrapped.status();
      v->set_root_wrapped_material(*wrapped);
      v->set_material_expire_time_us(expire_us);
      if (v->state() == KeyState::PENDING_IMPORT) {
        v->set_state(KeyState::ENABLED);
        v->set_state_change_time_us(now_us);
      }
      if (imported_version != r->primary_version()) return absl::OkStatus();
    }
    if (r->state() == KeyState::PENDING_IMPORT) {
      r->set_state(KeyState::ENABLED);
      r->set_state_change_time_us(now_us);
    }
    return absl::OkStatus();
  });
  if (!updated.ok()) return updated.status();
  Publish(name, KeyEvent::MATERIAL_IMPORTED, "", imported_version);
  return KeyView(*updated);
}

absl::StatusOr<clavis::v1::Key> KeyLifecycle::ExpireImportedMaterial(const KeyName& name) {
  std::vector<uint32_t> expired;
  auto updated = repository_->UpdateKeyAndPurge(
      name,
      [&](internal::KeyRecord* r) -> absl::Status {
        expired.clear();
        const absl::Time now = clock_->Now();
        for (auto& v : *r->mutable_versions()) {
          if (!ImportedMaterialExpired(v, now)) continue;
          expired.push_back(v.version());
          v.clear_root_wrapped_material();
          if (v.state() == KeyState::ENABLED) {
            v.set_state(KeyState::PENDING_IMPORT);
            v.set_state_change_time_us(v.material_expire_time_us());
          }
          if (v.version() == r->primary_version() && r->state() == KeyState::ENABLED) {
            r->set_state(KeyState::PENDING_IMPORT);
            r->set_state_change_time_us(v.material_expire_time_us());
          }
        }
        // Nothing expired: write nothing.
        return expired.empty() ? absl::CancelledError("nothing expired") : absl::OkStatus();
      },
      /*delete_all_segments=*/false);
  if (absl::IsCancelled(updated.status())) {
    auto entry = repository_->GetKey(name);
    if (!entry.ok()) return entry.status();
    return KeyView((*entry)->record());
  }
  if (!updated.ok()) return updated.status();
  for (uint32_t version : expired) Publish(name, KeyEvent::MATERIAL_EXPIRED, "", version);
  return KeyView(*updated);
}

absl::StatusOr<std::map<uint32_t, VersionUsage>> KeyLifecycle::KeyVersionUsage(const KeyName& name,
                                                                               uint64_t* scanned) {
  auto key = CurrentKey(name);
  if (!key.ok()) return key.status();
  std::map<uint32_t, VersionUsage> usage;
  for (const auto& v : (*key)->record().versions()) usage[v.version()];
  *scanned = 0;
  std::string start_after;
  constexpr size_t kPage = 1000;
  while (true) {
    auto page = repository_->ListSegments(name, "", start_after, kPage);
    if (!page.ok()) return page.status();
    for (const internal::SegmentRecord& segment : *page) {
      ++*scanned;
      std::set<uint32_t> seen;
      for (const auto& v : segment.versions()) {
        if (v.wrapped_key().empty()) continue;  // destroyed: protects nothing
        ++usage[v.key_version()].segment_key_versions;
        if (seen.insert(v.key_version()).second) ++usage[v.key_version()].segments;
      }
    }
    if (page->size() < kPage) break;
    start_after = page->back().segment();
  }
  return usage;
}

absl::StatusOr<RewrapProgress> KeyLifecycle::RewrapSegments(const KeyName& name,
                                                            const std::string& start_after,
                                                            size_t batch_size) {
  RewrapProgress progress;
  if (auto s = RewrapSegments(name, start_after, batch_size, &progress); !s.ok()) return s;
  return progress;
}

namespace {

// Segment keys that existed before `version` stopped being primary may have
// been wrapped under it at some point (created under it, or re-wrapped onto
// it), so a holder of its material and of an old copy of the store may know
// them: the time its successor was created, or InfinitePast if it has none.
absl::Time ExposedBefore(const internal::KeyRecord& key, uint32_t version) {
  absl::Time replaced = absl::InfiniteFuture();
  for (const auto& v : key.versions()) {
    if (v.version() > version) replaced = std::min(replaced, FromMicros(v.create_time_us()));
  }
  return replaced == absl::InfiniteFuture() ? absl::InfinitePast() : replaced;
}

// After a compromise, segments whose primary key was created before this
// time get a fresh one (see RewrapSegments); InfinitePast if no version of
// `key` is compromised.
absl::Time FreshSegmentKeyBefore(const internal::KeyRecord& key) {
  absl::Time fresh_key_before = absl::InfinitePast();
  for (const auto& v : key.versions()) {
    if (v.compromise_time_us() != 0) {
      fresh_key_before = std::max(fresh_key_before, ExposedBefore(key, v.version()));
    }
  }
  return fresh_key_before;
}

}  // namespace

absl::Status KeyLifecycle::RewrapSegmentRecord(const KeyEntry& key, uint32_t primary,
                                               internal::SegmentRecord* r, SegmentRewrap* outcome) {
  *outcome = SegmentRewrap();
  const absl::Time fresh_key_before = FreshSegmentKeyBefore(key.record());
  int64_t primary_created_us = 0;
  for (auto& v : *r->mutable_versions()) {
    if (v.version() == r->primary_version()) primary_created_us = v.create_time_us();
    if (v.key_version() == primary || v.wrapped_key().empty()) continue;
    auto plain = repository_->UnwrapSegmentKey(key, r->segment(), v);
    // A version wrapped under destroyed master material is already
    // crypto-shredded: nothing to move.
    if (absl::IsFailedPrecondition(plain.status())) continue;
    if (!plain.ok()) return plain.status();
    auto wrapped = repository_->WrapSegmentKey(key, primary, r->segment(), v.version(), *plain);
    if (!wrapped.ok()) return wrapped.status();
    const internal::KeyVersionRecord* old_version = key.FindVersion(v.key_version());
    if (old_version != nullptr && old_version->compromise_time_us() != 0) {
      outcome->uses.push_back({r->segment(), v.key_version(), v.version()});
    }
    v.set_key_version(primary);
    v.set_wrapped_key(*std::move(wrapped));
    outcome->changed = true;
  }
  // Whoever holds compromised material and a copy of the store from while
  // it was primary may know this segment's primary key: new data gets a
  // fresh one (also for a disabled segment, before it is enabled again).
  // Old data keeps decrypting under the older version (re-encrypt it with
  // ReEncrypt to leave the exposed key behind entirely).
  if (r->state() != KeyState::DESTROYED && FromMicros(primary_created_us) <= fresh_key_before) {
    uint32_t max_version = 0;
    for (const auto& v : r->versions()) max_version = std::max(max_version, v.version());
    crypto::SecretBytes fresh = crypto::RandomSecret(kSegmentKeySize);
    auto wrapped = repository_->WrapSegmentKey(key, primary, r->segment(), max_version + 1, fresh);
    if (!wrapped.ok()) return wrapped.status();
    internal::SegmentVersionRecord* v = r->add_versions();
    v->set_version(max_version + 1);
    v->set_key_version(primary);
    v->set_wrapped_key(*std::move(wrapped));
    v->set_create_time_us(ToMicros(clock_->Now()));
    r->set_primary_version(max_version + 1);
    outcome->rotated = true;
    outcome->changed = true;
  }
  return absl::OkStatus();
}

void KeyLifecycle::CountRewrap(const KeyName& name, const std::string& segment,
                               uint32_t primary_version, SegmentRewrap outcome,
                               RewrapProgress* progress) {
  if (!outcome.changed) {
    ++progress->already_current;
    return;
  }
  ++progress->rewrapped;
  for (auto& use : outcome.uses) progress->compromised_uses.push_back(std::move(use));
  if (outcome.rotated) {
    ++progress->segments_rotated;
    Publish(name, KeyEvent::SEGMENT_ROTATED, segment, primary_version);
  }
}

absl::StatusOr<bool> KeyLifecycle::RewrapChunk(const KeyName& name,
                                               const std::vector<StoredSegment>& chunk,
                                               RewrapProgress* progress) {
  // Read once for the chunk (a cached entry); the commit below only applies
  // if the key record is still exactly this one, so a version marked
  // compromised, or a rotation, while the chunk is prepared aborts it.
  auto key = repository_->GetKey(name);
  if (!key.ok()) return key.status();
  const uint32_t primary = (*key)->record().primary_version();
  std::vector<SegmentUpdate> updates;
  std::vector<SegmentRewrap> outcomes(chunk.size());
  for (size_t i = 0; i < chunk.size(); ++i) {
    SegmentUpdate update;
    update.record = chunk[i].record;
    // A segment that cannot be re-wrapped (e.g. damaged): one at a time,
    // the segments before it are still re-wrapped and the error returned.
    if (!RewrapSegmentRecord(**key, primary, &update.record, &outcomes[i]).ok()) return false;
    if (!outcomes[i].changed) continue;
    update.segment = chunk[i].record.segment();
    update.expected_raw = chunk[i].raw;
    updates.push_back(std::move(update));
  }
  absl::Status committed = repository_->CommitSegmentUpdates(**key, updates);
  if (absl::IsAborted(committed)) return false;
  if (!committed.ok()) return committed;
  size_t next_update = 0;
  for (size_t i = 0; i < chunk.size(); ++i) {
    const uint32_t segment_primary =
        outcomes[i].changed ? updates[next_update++].record.primary_version() : 0;
    CountRewrap(name, chunk[i].record.segment(), segment_primary, std::move(outcomes[i]), progress);
    progress->next_segment = chunk[i].record.segment();
  }
  return true;
}

absl::Status KeyLifecycle::RewrapOneByOne(const KeyName& name,
                                          const std::vector<StoredSegment>& chunk,
                                          RewrapProgress* progress) {
  for (const StoredSegment& listed : chunk) {
    // Read per segment (a cached entry): a version marked compromised while
    // this runs is treated as such from the next segment on.
    auto current = repository_->GetKey(name);
    if (!current.ok()) return current.status();
    const uint32_t primary = (*current)->record().primary_version();
    const SegmentName segment_name{name, listed.record.segment()};
    SegmentRewrap outcome;
    auto updated =
        repository_->UpdateSegment(segment_name, [&](internal::SegmentRecord* r) -> absl::Status {
          if (auto s = RewrapSegmentRecord(**current, primary, r, &outcome); !s.ok()) return s;
          // Nothing to do: an error stops the write, mapped to "current" below.
          return outcome.changed ? absl::OkStatus() : absl::CancelledError("current");
        });
    if (updated.ok()) {
      CountRewrap(name, listed.record.segment(), updated->primary_version(), std::move(outcome),
                  progress);
    } else if (absl::IsCancelled(updated.status()) || absl::IsNotFound(updated.status())) {
      ++progress->already_current;  // or deleted meanwhile
    } else {
      // What committed before the failure stays in `progress` (the caller
      // audits its compromised uses); a new call redoes the rest.
      return updated.status();
    }
    progress->next_segment = listed.record.segment();
  }
  return absl::OkStatus();
}

absl::Status KeyLifecycle::RewrapSegments(const KeyName& name, const std::string& start_after,
                                          size_t batch_size, RewrapProgress* progress) {
  *progress = RewrapProgress();
  // Expired material is purged first: nothing moves from, or onto, it.
  auto key = CurrentKey(name);
  if (!key.ok()) return key.status();
  if (auto s = KeyNotUsable(name, (*key)->record()); !s.ok()) return s;
  auto segments =
      repository_->ListStoredSegments(name, start_after, batch_size == 0 ? 0 : batch_size + 1);
  if (!segments.ok()) return segments.status();
  const bool more = batch_size != 0 && segments->size() > batch_size;
  if (more) segments->resize(batch_size);
  // Chunks of segments are re-wrapped in one atomic, conditional write each
  // (one WAL sync per chunk instead of one per segment). A chunk that meets
  // a concurrent change of one of its segments, or of the key, is aborted
  // whole and redone one segment at a time, each with its own
  // compare-and-set, as concurrent writers need.
  for (size_t begin = 0; begin < segments->size(); begin += kRewrapChunk) {
    const size_t end = std::min(segments->size(), begin + kRewrapChunk);
    const std::vector<StoredSegment> chunk(std::make_move_iterator(segments->begin() + begin),
                                           std::make_move_iterator(segments->begin() + end));
    auto batched = RewrapChunk(name, chunk, progress);
    if (!batched.ok()) return batched.status();
    if (*batched) continue;
    if (auto s = RewrapOneByOne(name, chunk, progress); !s.ok()) return s;
  }
  if (!more) progress->next_segment.clear();
  return absl::OkStatus();
}

}  // namespace clavis::kms
