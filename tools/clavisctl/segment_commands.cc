#include "tools/clavisctl/segment_commands.h"

#include <memory>
#include <utility>

#include "clavis/v1/key_admin.grpc.pb.h"
#include "tools/clavisctl/cli_checks.h"
#include "tools/clavisctl/resource_format.h"

namespace clavis::clavisctl {
namespace {

using clavis::v1::KeyAdmin;

constexpr char kSegmentName[] = "tenants/T/keys/K/segments/S";

}  // namespace

absl::Status CreateSegment(Session& session, const std::string& name) {
  return CallOnName(session, &KeyAdmin::StubInterface::CreateSegment, name);
}

absl::Status GetSegment(Session& session, const std::string& name) {
  return CallOnName(session, &KeyAdmin::StubInterface::GetSegment, name);
}

absl::Status RotateSegment(Session& session, const std::string& name) {
  return CallOnName(session, &KeyAdmin::StubInterface::RotateSegment, name);
}

absl::Status RevokeSegment(Session& session, const std::string& name) {
  return CallOnName(session, &KeyAdmin::StubInterface::RevokeSegment, name);
}

absl::Status EnableSegment(Session& session, const std::string& name) {
  return CallOnName(session, &KeyAdmin::StubInterface::EnableSegment, name);
}

absl::Status ScheduleSegmentDestruction(Session& session, const ScheduleDestroyArgs& args) {
  return CallScheduleDestruction(session, &KeyAdmin::StubInterface::ScheduleSegmentDestruction,
                                 args);
}

absl::Status CancelSegmentDestruction(Session& session, const std::string& name) {
  return CallOnName(session, &KeyAdmin::StubInterface::CancelSegmentDestruction, name);
}

absl::Status DestroySegment(Session& session, const std::string& name) {
  return CallOnName(session, &KeyAdmin::StubInterface::DestroySegment, name);
}

absl::Status ListSegments(Session& session, const ListSegmentsArgs& args) {
  clavis::v1::ListSegmentsRequest request;
  request.set_parent(args.parent);
  request.set_prefix(args.prefix);
  request.set_page_size(args.page_size);
  request.set_page_token(args.page_token);
  // As in ListKeys: --all accumulates into one response of the same shape.
  clavis::v1::ListSegmentsResponse all;
  while (true) {
    absl::StatusOr<clavis::v1::ListSegmentsResponse> page =
        session.Call(session.admin(), &KeyAdmin::StubInterface::ListSegments, request);
    if (!page.ok()) return page.status();
    for (clavis::v1::Segment& segment : *page->mutable_segments()) {
      *all.add_segments() = std::move(segment);
    }
    all.set_next_page_token(page->next_page_token());
    if (!args.all || page->next_page_token().empty()) break;
    if (page->next_page_token() == request.page_token()) {
      return absl::InternalError("the server returned the same page token twice");
    }
    request.set_page_token(page->next_page_token());
  }
  if (!session.json()) {
    if (all.segments().empty()) session.err() << "no segments in " << args.parent << "\n";
    if (!all.next_page_token().empty()) {
      session.err() << "more segments: rerun with --all, or with --page-token "
                    << all.next_page_token() << "\n";
    }
    if (all.segments().empty()) return absl::OkStatus();
  }
  return session.Print(all, FormatSegmentList(all.segments()));
}

void RegisterSegmentCommands(CommandRegistry& registry) {
  CLI::App* segment = registry.AddNoun(
      registry.root(), "segment", "Manage segment keys (one per data segment under a master key)",
      {"clavisctl segment revoke tenants/acme/keys/main/segments/acme/orders/2026-11",
       "clavisctl segment list tenants/acme/keys/main --prefix acme/orders/ --all"});
  auto add = [&](const NameCommand& command) {
    AddNameCommand(registry, *segment, command, kSegmentName, "The segment");
  };

  add({"create",
       "Create a segment key ahead of use (required when the key has "
       "--require-explicit-segments)",
       "clavisctl segment create tenants/acme/keys/main/segments/acme/orders/2026-11",
       &CreateSegment});
  add({"get", "Show a segment key and its versions",
       "clavisctl segment get tenants/acme/keys/main/segments/acme/orders/2026-11", &GetSegment});
  {
    auto args = std::make_shared<ListSegmentsArgs>();
    CLI::App* c = registry.AddCommand(
        *segment, "list", "List a key's segments, one row per segment",
        {"clavisctl segment list tenants/acme/keys/main --prefix acme/orders/ --all"},
        [args](Session& s) { return ListSegments(s, *args); });
    AddNameArg(c, &args->parent, "tenants/T/keys/K", "The master key");
    c->add_option("--prefix", args->prefix, "Only segments whose label starts with this");
    c->add_option("--page-size", args->page_size, "Segments per page (server default)")
        ->check(CountCheck());
    c->add_option("--page-token", args->page_token, "Continue a previous listing");
    c->add_flag("--all", args->all, "Follow page tokens and list every segment");
  }
  add({"rotate", "Add a new segment-key version for new data keys; older versions still decrypt",
       "clavisctl segment rotate tenants/acme/keys/main/segments/acme/orders/2026-11",
       &RotateSegment});
  add({"revoke",
       "Disable one segment: its data keys stop decrypting, other segments are untouched "
       "(reversible with enable)",
       "clavisctl segment revoke tenants/acme/keys/main/segments/acme/orders/2026-11",
       &RevokeSegment});
  add({"enable", "Re-enable a revoked segment",
       "clavisctl segment enable tenants/acme/keys/main/segments/acme/orders/2026-11",
       &EnableSegment});
  {
    auto args = std::make_shared<ScheduleDestroyArgs>();
    CLI::App* c = registry.AddCommand(
        *segment, "schedule-destroy", "Schedule crypto-shredding of one segment after a window",
        {"clavisctl segment schedule-destroy "
         "tenants/acme/keys/main/segments/acme/orders/2026-11 --pending-window 7d"},
        [args](Session& s) { return ScheduleSegmentDestruction(s, *args); });
    AddNameArg(c, &args->name, kSegmentName, "The segment");
    AddPendingWindowOption(c, &args->pending_window);
  }
  add({"cancel-destroy", "Cancel a segment's scheduled destruction",
       "clavisctl segment cancel-destroy tenants/acme/keys/main/segments/acme/orders/2026-11",
       &CancelSegmentDestruction});
  add({"destroy",
       "Crypto-shred one segment whose pending window has passed: its key is purged "
       "(irreversible)",
       "clavisctl segment destroy tenants/acme/keys/main/segments/acme/orders/2026-11",
       &DestroySegment});
}

}  // namespace clavis::clavisctl
