#include "kms/access/approvals.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "crypto/encoding.h"
#include "crypto/random.h"

namespace clavis::kms::access {
namespace {

constexpr int kMaxCasAttempts = 16;
constexpr size_t kMaxApprovalsListed = 1000;

int64_t Micros(absl::Time t) { return absl::ToUnixMicros(t); }

std::string Prefix(const std::string& tenant) {
  return absl::StrCat("a", std::string(1, '\0'), tenant, std::string(1, '\0'));
}

bool ValidId(absl::string_view id) {
  if (id.size() < 4 || id.size() > 64 || !absl::StartsWith(id, "ar-")) return false;
  return std::all_of(id.begin() + 3, id.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

absl::StatusOr<internal::ApprovalRecord> ParseRecord(const ApprovalName& name,
                                                     const std::optional<std::string>& raw) {
  if (!raw.has_value()) {
    return absl::NotFoundError(absl::StrCat("approval request ", name.ToString(), " not found"));
  }
  internal::ApprovalRecord r;
  if (!r.ParseFromString(*raw) || r.format_version() != 1) {
    return absl::DataLossError(
        absl::StrCat("stored approval request ", name.ToString(), " is damaged"));
  }
  return r;
}

// UTF-8 is already checked by protobuf (proto3 strings); this refuses C0
// controls, DEL and C1 controls (U+0080..U+009F, encoded C2 80..C2 9F).
absl::Status ValidateDenyReason(const std::string& reason) {
  if (reason.size() > kMaxDenyReasonBytes) {
    return absl::InvalidArgumentError(absl::StrCat("the deny reason is ", reason.size(),
                                                   " bytes; at most ", kMaxDenyReasonBytes,
                                                   " are kept"));
  }
  for (size_t i = 0; i < reason.size(); ++i) {
    const auto c = static_cast<unsigned char>(reason[i]);
    const bool c1 = c == 0xc2 && i + 1 < reason.size() &&
                    static_cast<unsigned char>(reason[i + 1]) >= 0x80 &&
                    static_cast<unsigned char>(reason[i + 1]) <= 0x9f;
    // U+2028/2029 (line breaks) and the bidi controls U+202A..202E,
    // U+2066..2069 can make approvers read something other than what is
    // stored: E2 80 A8..AE and E2 81 A6..A9 in UTF-8.
    const auto next = [&](size_t k) {
      return i + k < reason.size() ? static_cast<unsigned char>(reason[i + k]) : 0;
    };
    const bool layout = c == 0xe2 && ((next(1) == 0x80 && next(2) >= 0xa8 && next(2) <= 0xae) ||
                                      (next(1) == 0x81 && next(2) >= 0xa6 && next(2) <= 0xa9));
    if (c < 0x20 || c == 0x7f || c1 || layout) {
      return absl::InvalidArgumentError(
          absl::StrCat("the deny reason holds a control character at byte ", i,
                       "; use printable text on one line"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

std::string ApprovalName::ToString() const {
  return absl::StrCat("tenants/", tenant, "/approvals/", id);
}

absl::StatusOr<ApprovalName> ParseApprovalName(absl::string_view name) {
  std::vector<absl::string_view> parts = absl::StrSplit(name, '/');
  if (parts.size() != 4 || parts[0] != "tenants" || parts[2] != "approvals" ||
      !ValidateTenantId(parts[1]).ok() || !ValidId(parts[3])) {
    return absl::InvalidArgumentError(
        "an approval request name looks like tenants/{tenant}/approvals/ar-{hex}");
  }
  return ApprovalName{std::string(parts[1]), std::string(parts[3])};
}

ApprovalBook::ApprovalBook(Store* store, const Clock* clock, absl::Duration ttl)
    : store_(store), clock_(clock), ttl_(ttl) {}

std::string ApprovalBook::StoreKey(const std::string& tenant, const std::string& id) {
  return Prefix(tenant) + id;
}

absl::StatusOr<internal::ApprovalRecord> ApprovalBook::Create(const NewApproval& request) {
  internal::ApprovalRecord r;
  r.set_format_version(1);
  r.set_tenant(request.key.tenant);
  r.set_id("ar-" + crypto::HexEncode(crypto::RandomBytes(12)));
  r.set_key_id(request.key.key_id);
  r.set_action(request.action);
  r.set_resource(request.resource);
  r.set_requester(request.requester);
  r.set_approvals_required(request.approvals_required);
  r.set_state(kApprovalPending);
  const absl::Time now = clock_->Now();
  r.set_create_time_us(Micros(now));
  r.set_expire_time_us(Micros(now + ttl_));
  r.set_payload_type(request.payload_type);
  r.set_payload(request.payload);
  r.set_summary(request.summary);
  r.set_key_fingerprint(request.key_fingerprint);
  WriteBatch batch;
  const std::string key = StoreKey(r.tenant(), r.id());
  batch.Expect(key, std::nullopt).Put(key, r.SerializeAsString());
  if (auto s = store_->Commit(batch); !s.ok()) return s;
  return r;
}

absl::StatusOr<internal::ApprovalRecord> ApprovalBook::Get(const ApprovalName& name) {
  auto raw = store_->Get(StoreKey(name.tenant, name.id));
  if (!raw.ok()) return raw.status();
  auto parsed = ParseRecord(name, *raw);
  if (!parsed.ok()) return parsed.status();
  internal::ApprovalRecord r = *std::move(parsed);
  if (r.state() == kApprovalPending && clock_->Now() >= absl::FromUnixMicros(r.expire_time_us())) {
    r.set_state(kApprovalExpired);  // as seen; Approve persists it
  }
  return r;
}

absl::StatusOr<internal::ApprovalRecord> ApprovalBook::Update(
    const ApprovalName& name,
    const std::function<absl::Status(internal::ApprovalRecord*)>& mutate) {
  const std::string key = StoreKey(name.tenant, name.id);
  for (int attempt = 0; attempt < kMaxCasAttempts; ++attempt) {
    auto raw = store_->Get(key);
    if (!raw.ok()) return raw.status();
    auto parsed = ParseRecord(name, *raw);
    if (!parsed.ok()) return parsed.status();
    internal::ApprovalRecord r = *std::move(parsed);
    absl::Status verdict = mutate(&r);
    if (!verdict.ok() && !absl::IsDeadlineExceeded(verdict)) return verdict;
    WriteBatch batch;
    batch.Expect(key, **raw).Put(key, r.SerializeAsString());
    absl::Status committed = store_->Commit(batch);
    if (absl::IsAborted(committed)) continue;  // raced with another approval
    if (!committed.ok()) return committed;
    if (absl::IsDeadlineExceeded(verdict)) {
      // Persisted the expiry; report it as the precondition it is.
      return absl::FailedPreconditionError(verdict.message());
    }
    return r;
  }
  return absl::AbortedError("approval request is being changed concurrently; try again");
}

absl::StatusOr<ApprovalBook::Approved> ApprovalBook::Approve(const ApprovalName& name,
                                                             const std::string& approver) {
  bool run_now = false;
  auto updated = Update(name, [&](internal::ApprovalRecord* r) -> absl::Status {
    run_now = false;
    if (r->state() == kApprovalExpired) {
      return absl::FailedPreconditionError(
          absl::StrCat("approval request ", name.ToString(), " has expired"));
    }
    if (r->state() == kApprovalDenied) {
      return absl::FailedPreconditionError(absl::StrCat("approval request ", name.ToString(),
                                                        " was denied by ", r->denied_by(),
                                                        "; it can no longer be approved"));
    }
    if (r->state() != kApprovalPending || r->executing()) {
      return absl::FailedPreconditionError(
          absl::StrCat("approval request ", name.ToString(), " is no longer pending"));
    }
    const absl::Time expires = absl::FromUnixMicros(r->expire_time_us());
    if (clock_->Now() >= expires) {
      r->set_state(kApprovalExpired);
      return absl::DeadlineExceededError(absl::StrCat("approval request ", name.ToString(),
                                                      " expired at ", absl::FormatTime(expires)));
    }
    if (approver == r->requester()) {
      return absl::FailedPreconditionError(
          "the requester cannot approve their own request; another approver must");
    }
    const auto& list = r->approvers();
    if (std::find(list.begin(), list.end(), approver) != list.end()) {
      return absl::FailedPreconditionError(
          absl::StrCat(approver, " has already approved ", name.ToString(),
                       "; approvals must come from distinct principals"));
    }
    r->add_approvers(approver);
    if (static_cast<uint32_t>(r->approvers_size()) >= r->approvals_required()) {
      r->set_executing(true);
      run_now = true;
    }
    return absl::OkStatus();
  });
  if (!updated.ok()) return updated.status();
  return Approved{*std::move(updated), run_now};
}

absl::StatusOr<internal::ApprovalRecord> ApprovalBook::Deny(const ApprovalName& name,
                                                            const std::string& denier,
                                                            const std::string& reason) {
  if (auto s = ValidateDenyReason(reason); !s.ok()) return s;
  return Update(name, [&](internal::ApprovalRecord* r) -> absl::Status {
    const std::string id = name.ToString();
    if (r->state() == kApprovalExecuted) {
      return absl::FailedPreconditionError(absl::StrCat(
          "approval request ", id, " is EXECUTED (its action already ran); it cannot be denied"));
    }
    if (r->state() == kApprovalDenied) {
      return absl::FailedPreconditionError(
          absl::StrCat("approval request ", id, " is DENIED already (by ", r->denied_by(), ")"));
    }
    if (r->state() == kApprovalExpired) {
      return absl::FailedPreconditionError(
          absl::StrCat("approval request ", id, " is EXPIRED; it can no longer run"));
    }
    if (r->state() != kApprovalPending) {
      return absl::FailedPreconditionError(
          absl::StrCat("approval request ", id, " is in state ", r->state(), "; not pending"));
    }
    // The quorum was reached and the action is running: too late to stop it.
    if (r->executing()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "approval request ", id, " is EXECUTING (the quorum was reached); it cannot be denied"));
    }
    const absl::Time now = clock_->Now();
    const absl::Time expires = absl::FromUnixMicros(r->expire_time_us());
    if (now >= expires) {
      r->set_state(kApprovalExpired);
      return absl::DeadlineExceededError(absl::StrCat("approval request ", id, " is EXPIRED (at ",
                                                      absl::FormatTime(expires),
                                                      "); it can no longer run"));
    }
    r->set_state(kApprovalDenied);
    r->set_denied_by(denier);
    r->set_deny_reason(reason);
    r->set_deny_time_us(Micros(now));
    r->clear_payload();  // it will never run; nothing to keep
    return absl::OkStatus();
  });
}

absl::Status ApprovalBook::Complete(const ApprovalName& name, const absl::Status& result) {
  auto updated = Update(name, [&](internal::ApprovalRecord* r) -> absl::Status {
    r->set_state(kApprovalExecuted);
    r->set_executing(false);
    r->set_result_code(static_cast<int>(result.code()));
    r->set_result_message(std::string(result.message()));
    r->clear_payload();  // the action ran; nothing to keep
    return absl::OkStatus();
  });
  return updated.status();
}

absl::StatusOr<internal::ApprovalRecord> ApprovalBook::Redeem(const ApprovalName& name,
                                                              const std::string& requester,
                                                              absl::string_view action,
                                                              absl::string_view resource) {
  return Update(name, [&](internal::ApprovalRecord* r) -> absl::Status {
    const std::string id = name.ToString();
    if (r->action() != action || r->resource() != resource) {
      return absl::FailedPreconditionError(absl::StrCat("approval ", id, " is for ", r->action(),
                                                        " on ", r->resource(), ", not ", action,
                                                        " on ", resource));
    }
    if (r->requester() != requester) {
      return absl::FailedPreconditionError(absl::StrCat("approval ", id, " was requested by ",
                                                        r->requester(),
                                                        "; only the requester may use it"));
    }
    if (r->state() == kApprovalDenied) {
      return absl::FailedPreconditionError(
          absl::StrCat("approval ", id, " was denied by ", r->denied_by(), "; request a new one"));
    }
    if (r->state() == kApprovalPending) {
      return absl::FailedPreconditionError(
          absl::StrCat("approval ", id, " has ", r->approvers_size(), " of ",
                       r->approvals_required(), " approvals; it cannot be used yet"));
    }
    if (r->state() != kApprovalExecuted || r->result_code() != 0) {
      return absl::FailedPreconditionError(
          absl::StrCat("approval ", id, " was not granted (", r->result_message(), ")"));
    }
    if (r->redeem_time_us() != 0) {
      return absl::FailedPreconditionError(absl::StrCat(
          "approval ", id, " was already used at ",
          absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::FromUnixMicros(r->redeem_time_us()),
                           absl::UTCTimeZone()),
          "; request a new one"));
    }
    const absl::Time now = clock_->Now();
    if (now >= absl::FromUnixMicros(r->expire_time_us())) {
      return absl::FailedPreconditionError(
          absl::StrCat("approval ", id, " expired unused; request a new one"));
    }
    r->set_redeem_time_us(absl::ToUnixMicros(now));
    return absl::OkStatus();
  });
}

absl::StatusOr<std::vector<internal::ApprovalRecord>> ApprovalBook::List(const KeyName& key,
                                                                         bool include_finished) {
  auto entries = store_->Scan(Prefix(key.tenant), "", 0);
  if (!entries.ok()) return entries.status();
  std::vector<internal::ApprovalRecord> out;
  const absl::Time now = clock_->Now();
  for (const KeyValue& kv : *entries) {
    internal::ApprovalRecord r;
    if (!r.ParseFromString(kv.value) || r.key_id() != key.key_id) continue;
    if (r.state() == kApprovalPending && now >= absl::FromUnixMicros(r.expire_time_us())) {
      r.set_state(kApprovalExpired);
    }
    if (!include_finished && r.state() != kApprovalPending) continue;
    r.clear_payload();
    out.push_back(std::move(r));
    if (out.size() >= kMaxApprovalsListed) break;
  }
  std::sort(out.begin(), out.end(),
            [](const auto& a, const auto& b) { return a.create_time_us() < b.create_time_us(); });
  return out;
}

}  // namespace clavis::kms::access
