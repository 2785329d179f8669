#include "tools/clavisctl/key_version_commands.h"

#include <memory>

#include "clavis/v1/key_admin.grpc.pb.h"

namespace clavis::clavisctl {
namespace {

using clavis::v1::KeyAdmin;

constexpr char kVersionName[] = "tenants/T/keys/K/versions/N";

}  // namespace

absl::Status EnableKeyVersion(Session& session, const std::string& name) {
  return CallOnName(session, &KeyAdmin::StubInterface::EnableKeyVersion, name);
}

absl::Status DisableKeyVersion(Session& session, const std::string& name) {
  return CallOnName(session, &KeyAdmin::StubInterface::DisableKeyVersion, name);
}

absl::Status ScheduleKeyVersionDestruction(Session& session, const ScheduleDestroyArgs& args) {
  return CallScheduleDestruction(session, &KeyAdmin::StubInterface::ScheduleKeyVersionDestruction,
                                 args);
}

absl::Status CancelKeyVersionDestruction(Session& session, const std::string& name) {
  return CallOnName(session, &KeyAdmin::StubInterface::CancelKeyVersionDestruction, name);
}

absl::Status MarkKeyVersionCompromised(Session& session, const std::string& name) {
  return CallOnName(session, &KeyAdmin::StubInterface::MarkKeyVersionCompromised, name);
}

absl::Status DestroyKeyVersion(Session& session, const std::string& name) {
  return CallOnName(session, &KeyAdmin::StubInterface::DestroyKeyVersion, name);
}

void RegisterKeyVersionCommands(CommandRegistry& registry, CLI::App& key) {
  CLI::App* version =
      registry.AddNoun(key, "version", "Change the state of one master-key version",
                       {"clavisctl key version disable tenants/acme/keys/main/versions/1"});
  auto add = [&](const NameCommand& command) {
    AddNameCommand(registry, *version, command, kVersionName, "The key version");
  };

  add({"enable", "Enable a disabled version",
       "clavisctl key version enable tenants/acme/keys/main/versions/1", &EnableKeyVersion});
  add({"disable", "Disable a version: data wrapped under it stops decrypting (reversible)",
       "clavisctl key version disable tenants/acme/keys/main/versions/1", &DisableKeyVersion});
  {
    auto args = std::make_shared<ScheduleDestroyArgs>();
    CLI::App* c = registry.AddCommand(
        *version, "schedule-destroy", "Schedule destruction of a version after a pending window",
        {"clavisctl key version schedule-destroy tenants/acme/keys/main/versions/1 "
         "--pending-window 30d"},
        [args](Session& s) { return ScheduleKeyVersionDestruction(s, *args); });
    AddNameArg(c, &args->name, kVersionName, "The key version");
    AddPendingWindowOption(c, &args->pending_window);
  }
  add({"cancel-destroy", "Cancel a version's scheduled destruction (it becomes DISABLED)",
       "clavisctl key version cancel-destroy tenants/acme/keys/main/versions/1",
       &CancelKeyVersionDestruction});
  add({"compromise",
       "Mark a version compromised (final): it decrypts nothing from then on; its segment keys "
       "move to the primary version only by re-wrap (clavis-rotator does it on its next pass, "
       "or run key rewrap), every such use is audited, and their segments get a fresh segment "
       "key for new data. Marking the primary version of a generated key rotates the key first",
       "clavisctl key version compromise tenants/acme/keys/main/versions/3",
       &MarkKeyVersionCompromised});
  add({"destroy", "Destroy a version whose pending window has passed (irreversible)",
       "clavisctl key version destroy tenants/acme/keys/main/versions/1", &DestroyKeyVersion});
}

}  // namespace clavis::clavisctl
