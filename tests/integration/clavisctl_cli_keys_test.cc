// Every `clavisctl key`, `key version` and `segment` command against a real
// clavisd: for each, a success with its --json output parsed and its human
// output checked for the key facts, and failures with their documented exit
// code and a message a person understands (docs/clavisctl.md).
//
// Permission refusals of these commands: clavisctl_cli_access_test.cc.
#include <set>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/clavisctl_cli_fixture.h"

namespace clavis::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::MatchesRegex;
using ::testing::SizeIs;

class ClavisctlKeyTest : public ClavisctlCliTest {};

// ---- key create ----

TEST_F(ClavisctlKeyTest, KeyCreatePrintsTheNewKeyAsJsonAndAsATable) {
  const std::string key = KeyName("create-json");
  CliResult created =
      Cli(absl::StrCat("key create ", key,
                       " --description 'orders KEK' --label env=prod --label team=core "
                       "--rotation-period 90d --json"));
  ASSERT_TRUE(Succeeded(created));
  Json json = ParseJson(created);
  EXPECT_EQ(json["name"], key);
  EXPECT_EQ(json["state"], "ENABLED");
  EXPECT_EQ(json["origin"], "GENERATED");
  EXPECT_EQ(json["description"], "orders KEK");
  EXPECT_EQ(json["labels"], (Json{{"env", "prod"}, {"team", "core"}}));
  EXPECT_EQ(json["rotationPeriod"], "7776000s");
  EXPECT_TRUE(json.contains("nextRotationTime"));
  EXPECT_EQ(json["primaryVersion"], 1);
  EXPECT_EQ(json["requireExplicitSegments"], false);
  EXPECT_EQ(json["approvalsRequired"], 0);
  ASSERT_THAT(json["versions"], SizeIs(1));
  EXPECT_EQ(json["versions"][0]["name"], key + "/versions/1");
  EXPECT_EQ(json["versions"][0]["state"], "ENABLED");
  EXPECT_THAT(json["versions"][0]["keyCheckValue"].get<std::string>(),
              MatchesRegex("[0-9a-f]{16}"));

  const std::string human_key = KeyName("create-human");
  CliResult human =
      Cli(absl::StrCat("key create ", human_key,
                       " --description 'orders KEK' --label env=prod --require-explicit-segments "
                       "--admin ",
                       Admin(), " --user ", Principal("app"), " --approvals 2"));
  ASSERT_TRUE(Succeeded(human));
  EXPECT_EQ(TableField(human.out, "name"), human_key);
  EXPECT_EQ(TableField(human.out, "state"), "ENABLED");
  EXPECT_EQ(TableField(human.out, "origin"), "GENERATED");
  EXPECT_EQ(TableField(human.out, "description"), "orders KEK");
  EXPECT_EQ(TableField(human.out, "labels"), "env=prod");
  EXPECT_EQ(TableField(human.out, "primary version"), "1");
  EXPECT_EQ(TableField(human.out, "rotation period"), "none");
  EXPECT_EQ(TableField(human.out, "explicit segments"), "required");
  EXPECT_EQ(TableField(human.out, "approvals required"), "2");
  EXPECT_THAT(human.out, MatchesRegex("(.|\n)*VERSION +STATE +CREATED +KEY CHECK VALUE\n"
                                      "1 \\(primary\\) +ENABLED +[0-9T:Z-]+ +[0-9a-f]{16}\n"));
  EXPECT_THAT(human.err, IsEmpty());
}

TEST_F(ClavisctlKeyTest, KeyCreateWithAPolicyFileTakesTheDocument) {
  const std::string key = KeyName("create-policy");
  const std::string policy = Path("policy.json");
  WriteTestFile(policy, absl::StrCat(R"({"version": "2026-11-01", "statements": [)",
                                     R"({"sid": "admins", "effect": "Allow", "principals": [")",
                                     Admin(), R"("], "actions": ["GetKey", "GetPolicy"]}]})"));
  ASSERT_TRUE(Succeeded(Cli(absl::StrCat("key create ", key, " --policy-file ", policy))));
  CliResult stored = Cli("policy get --json " + key);
  ASSERT_TRUE(Succeeded(stored));
  Json document = Json::parse(ParseJson(stored)["policy"].get<std::string>());
  EXPECT_EQ(document["statements"][0]["sid"], "admins");
  // The document gave no Rotate right, even to the creator.
  EXPECT_TRUE(FailedWith(Cli("key rotate " + key), kExitPermissionDenied, "Rotate"));
}

TEST_F(ClavisctlKeyTest, KeyCreateFailuresHaveTheirExitCodes) {
  const std::string key = KeyName("create-fail");
  MakeKey(key);
  EXPECT_TRUE(FailedWith(Cli("key create " + key), kExitAlreadyExists, "already exists"));
  EXPECT_TRUE(UsageError(Cli("key create not-a-key-name"), "bad key name"));
  EXPECT_TRUE(UsageError(Cli("key create " + KeyName("x") + " --rotation-period 5x"),
                         "bad duration \"5x\""));
  EXPECT_TRUE(UsageError(Cli("key create " + KeyName("x") + " --label env"), "not key=value"));
  EXPECT_TRUE(UsageError(Cli("key create " + KeyName("x") + " --label a=1 --label a=2"),
                         "given more than once"));
  EXPECT_TRUE(UsageError(Cli("key create " + KeyName("x") + " --approvals 11"), "--approvals"));
  EXPECT_TRUE(UsageError(Cli("key create " + KeyName("x") + " --origin imported"), "--origin"));
  EXPECT_TRUE(UsageError(
      Cli(absl::StrCat("key create ", KeyName("x"), " --policy-file p.json --admin ", Admin())),
      "excludes"));
  WriteTestFile(Path("empty.json"), "  \n");
  EXPECT_TRUE(UsageError(Cli("key create " + KeyName("x") + " --policy-file " + Path("empty.json")),
                         "the policy document is empty"));
  EXPECT_TRUE(UsageError(Cli("key create " + KeyName("x") + " --policy-file " + Path("missing")),
                         "cannot open"));
  // One principal both administrator and user: separation of duties (server).
  EXPECT_TRUE(FailedWith(Cli(absl::StrCat("key create ", KeyName("x"), " --admin ",
                                          Principal("app"), " --user ", Principal("app"))),
                         kExitInvalidArgument, "separation of duties"));
  // Nothing was created by any of these.
  EXPECT_TRUE(FailedWith(Cli("key get " + KeyName("x")), kExitNotFound, "not found"));
}

// ---- key list ----

TEST_F(ClavisctlKeyTest, KeyListPagesAndAllFollowsTheTokens) {
  // A tenant of its own, so the listing holds only this test's keys.
  const std::string tenant = "initech";
  const std::string admin = Principal("admin", tenant);
  CliResult none = Cli("key list tenants/" + tenant, admin);
  ASSERT_TRUE(Succeeded(none));
  EXPECT_THAT(none.out, IsEmpty());
  EXPECT_THAT(none.err, HasSubstr("no keys in tenants/initech"));

  const std::set<std::string> keys = {KeyName("a", tenant), KeyName("b", tenant),
                                      KeyName("c", tenant)};
  for (const std::string& key : keys) {
    ASSERT_TRUE(Succeeded(Cli("key create " + key + " --rotation-period 30d", admin)));
  }

  CliResult all = Cli("key list tenants/initech --json", admin);
  ASSERT_TRUE(Succeeded(all));
  Json json = ParseJson(all);
  std::set<std::string> names;
  for (const Json& key : json["keys"]) names.insert(key["name"].get<std::string>());
  EXPECT_EQ(names, keys);
  EXPECT_EQ(json["nextPageToken"], "");

  // Page by page: two, then the rest.
  CliResult first = Cli("key list tenants/initech --page-size 2 --json", admin);
  ASSERT_TRUE(Succeeded(first));
  Json page1 = ParseJson(first);
  ASSERT_THAT(page1["keys"], SizeIs(2));
  const std::string token = page1["nextPageToken"].get<std::string>();
  ASSERT_FALSE(token.empty());
  CliResult second =
      Cli("key list tenants/initech --page-size 2 --json --page-token " + token, admin);
  ASSERT_TRUE(Succeeded(second));
  Json page2 = ParseJson(second);
  ASSERT_THAT(page2["keys"], SizeIs(1));
  EXPECT_EQ(page2["nextPageToken"], "");
  std::set<std::string> paged = {page1["keys"][0]["name"], page1["keys"][1]["name"],
                                 page2["keys"][0]["name"]};
  EXPECT_EQ(paged, keys);

  // --all: pages of one, accumulated into one document of the same shape.
  CliResult followed = Cli("key list tenants/initech --page-size 1 --all --json", admin);
  ASSERT_TRUE(Succeeded(followed));
  Json accumulated = ParseJson(followed);
  EXPECT_THAT(accumulated["keys"], SizeIs(3));
  EXPECT_EQ(accumulated["nextPageToken"], "");

  // The table: one row per key; a cut listing says how to go on (stderr).
  CliResult table = Cli("key list tenants/initech --page-size 2", admin);
  ASSERT_TRUE(Succeeded(table));
  EXPECT_THAT(table.out, MatchesRegex("NAME +STATE +PRIMARY +ROTATION +CREATED\n(.|\n)*"));
  EXPECT_THAT(LinesStartingWith(table.out, "tenants/initech/keys/"), SizeIs(2));
  EXPECT_THAT(table.err, HasSubstr("more keys: rerun with --all, or with --page-token " + token));
  CliResult whole = Cli("key list tenants/initech --page-size 1 --all", admin);
  ASSERT_TRUE(Succeeded(whole));
  const auto rows = LinesStartingWith(whole.out, "tenants/initech/keys/");
  ASSERT_THAT(rows, SizeIs(3));
  EXPECT_THAT(rows[0], MatchesRegex("tenants/initech/keys/a +ENABLED +1 +30d +[0-9T:Z-]+"));
  EXPECT_THAT(whole.err, IsEmpty());
}

TEST_F(ClavisctlKeyTest, KeyListFailuresHaveTheirExitCodes) {
  EXPECT_TRUE(FailedWith(Cli("key list tenants/cli --page-token '!!!'"), kExitInvalidArgument,
                         "page_token is not one this server returned"));
  EXPECT_TRUE(UsageError(Cli("key list tenants/cli --page-size 0"), "--page-size"));
  EXPECT_TRUE(UsageError(Cli("key list"), "is required"));
  EXPECT_TRUE(FailedWith(Cli("key list tenants/globex"), kExitPermissionDenied,
                         "cross-tenant access is never allowed"));
}

// ---- key get ----

TEST_F(ClavisctlKeyTest, KeyGetShowsTheKeyAndItsVersions) {
  const std::string key = KeyName("get");
  MakeKey(key, "--description 'get me' --label env=test");
  ASSERT_TRUE(Succeeded(Cli("key rotate " + key)));

  CliResult got = Cli("key get " + key + " --json");
  ASSERT_TRUE(Succeeded(got));
  Json json = ParseJson(got);
  EXPECT_EQ(json["name"], key);
  EXPECT_EQ(json["description"], "get me");
  EXPECT_EQ(json["primaryVersion"], 2);
  ASSERT_THAT(json["versions"], SizeIs(2));
  EXPECT_EQ(json["versions"][1]["version"], 2);
  EXPECT_NE(json["versions"][0]["keyCheckValue"], json["versions"][1]["keyCheckValue"]);

  // --json before the command words does the same.
  CliResult before = Cli("--json key get " + key);
  ASSERT_TRUE(Succeeded(before));
  EXPECT_EQ(ParseJson(before)["name"], key);

  CliResult human = Cli("key get " + key);
  ASSERT_TRUE(Succeeded(human));
  EXPECT_EQ(TableField(human.out, "name"), key);
  EXPECT_EQ(TableField(human.out, "description"), "get me");
  EXPECT_EQ(TableField(human.out, "labels"), "env=test");
  EXPECT_EQ(TableField(human.out, "primary version"), "2");
  // One row per version, with its key check value.
  EXPECT_THAT(LinesStartingWith(human.out, "1 "),
              ElementsAre(MatchesRegex("1 +ENABLED +[0-9T:Z-]+ .* " +
                                       json["versions"][0]["keyCheckValue"].get<std::string>())));
  EXPECT_THAT(LinesStartingWith(human.out, "2 (primary)"), SizeIs(1));

  EXPECT_TRUE(FailedWith(Cli("key get " + KeyName("nope")), kExitNotFound,
                         "key tenants/cli/keys/nope not found"));
  EXPECT_TRUE(FailedWith(Cli("key get tenants/cli/nokeys/x"), kExitInvalidArgument, "tenants/"));
  EXPECT_TRUE(UsageError(Cli("key get"), "name is required"));
  EXPECT_TRUE(UsageError(Cli("key get " + key + " extra"), "extra"));
}

// ---- key rotate, key usage, key rewrap ----

TEST_F(ClavisctlKeyTest, KeyRotateUsageAndRewrapMoveSegmentsToTheNewVersion) {
  const std::string key = KeyName("rotate");
  MakeKey(key);
  for (const char* segment : {"s1", "s2"}) {
    ASSERT_TRUE(Succeeded(Cli(absl::StrCat("segment create ", key, "/segments/", segment))));
  }

  CliResult usage = Cli("key usage " + key + " --json");
  ASSERT_TRUE(Succeeded(usage));
  Json before = ParseJson(usage);
  EXPECT_EQ(before["name"], key);
  EXPECT_EQ(before["segmentsScanned"], "2");  // uint64: a string in proto3 JSON
  ASSERT_THAT(before["versions"], SizeIs(1));
  EXPECT_EQ(before["versions"][0]["segments"], "2");
  EXPECT_EQ(before["versions"][0]["primary"], true);

  CliResult rotated = Cli("key rotate " + key + " --json");
  ASSERT_TRUE(Succeeded(rotated));
  Json json = ParseJson(rotated);
  EXPECT_EQ(json["primaryVersion"], 2);
  ASSERT_THAT(json["versions"], SizeIs(2));
  EXPECT_EQ(json["versions"][0]["state"], "ENABLED");  // older versions still decrypt
  EXPECT_EQ(json["versions"][1]["state"], "ENABLED");
  CliResult rotated_human = Cli("key rotate " + key);
  ASSERT_TRUE(Succeeded(rotated_human));
  EXPECT_EQ(TableField(rotated_human.out, "primary version"), "3");
  EXPECT_THAT(LinesStartingWith(rotated_human.out, "3 (primary)"), SizeIs(1));

  // The segments are still on version 1 until the rewrap.
  CliResult table = Cli("key usage " + key);
  ASSERT_TRUE(Succeeded(table));
  EXPECT_THAT(table.out, MatchesRegex("VERSION +STATE +SEGMENTS +SEGMENT KEY VERSIONS\n"
                                      "1 +ENABLED +2 +2\n"
                                      "2 +ENABLED +0 +0\n"
                                      "3 \\(primary\\) +ENABLED +0 +0\n"
                                      "(.|\n)*"));
  EXPECT_THAT(table.out, HasSubstr("a version protecting none can be disabled and destroyed"));

  CliResult rewrap = Cli("key rewrap " + key + " --batch-size 1 --json");
  ASSERT_TRUE(Succeeded(rewrap));
  Json totals = ParseJson(rewrap);
  EXPECT_EQ(totals["rewrapped"], "2");
  EXPECT_EQ(totals["alreadyCurrent"], "0");
  EXPECT_EQ(totals["nextPageToken"], "");
  EXPECT_THAT(rewrap.err, HasSubstr("rewrap: batch 2: 1 re-wrapped"));  // progress per batch
  CliResult again = Cli("key rewrap " + key);
  ASSERT_TRUE(Succeeded(again));
  EXPECT_EQ(again.out, "re-wrapped 0 segment keys; 2 already on the primary version\n");

  Json after = ParseJson(Cli("key usage " + key + " --json"));
  ASSERT_THAT(after["versions"], SizeIs(3));
  EXPECT_EQ(after["versions"][0]["segments"], "0");  // version 1 protects nothing now
  EXPECT_EQ(after["versions"][2]["segments"], "2");

  EXPECT_TRUE(FailedWith(Cli("key rotate " + KeyName("nope")), kExitNotFound, "not found"));
  EXPECT_TRUE(FailedWith(Cli("key usage " + KeyName("nope")), kExitNotFound, "not found"));
  EXPECT_TRUE(FailedWith(Cli("key rewrap " + KeyName("nope")), kExitNotFound, "not found"));
  EXPECT_TRUE(UsageError(Cli("key rewrap " + key + " --batch-size 0"), "--batch-size"));
  EXPECT_TRUE(FailedWith(Cli("key rewrap " + key + " --page-token '!!!'"), kExitInvalidArgument,
                         "page_token"));
  ASSERT_TRUE(Succeeded(Cli("key disable " + key)));
  EXPECT_TRUE(FailedWith(Cli("key rotate " + key), kExitFailedPrecondition, "is DISABLED since"));
}

// ---- key enable, key disable ----

TEST_F(ClavisctlKeyTest, KeyDisableIsTheKillSwitchAndEnableUndoesIt) {
  const std::string key = KeyName("switch");
  MakeKey(key, "--user " + Principal("app"));
  CliResult disabled = Cli("key disable " + key + " --json");
  ASSERT_TRUE(Succeeded(disabled));
  EXPECT_EQ(ParseJson(disabled)["state"], "DISABLED");
  EXPECT_TRUE(FailedWith(Cli("datakey " + key + " --segment s", Principal("app")),
                         kExitFailedPrecondition, "is DISABLED since"));
  // Disabling twice is no error.
  CliResult again = Cli("key disable " + key);
  ASSERT_TRUE(Succeeded(again));
  EXPECT_EQ(TableField(again.out, "state"), "DISABLED");

  CliResult enabled = Cli("key enable " + key);
  ASSERT_TRUE(Succeeded(enabled));
  EXPECT_EQ(TableField(enabled.out, "state"), "ENABLED");
  CliResult enabled_json = Cli("key enable " + key + " --json");
  ASSERT_TRUE(Succeeded(enabled_json));
  EXPECT_EQ(ParseJson(enabled_json)["state"], "ENABLED");
  CliResult dk = Cli("datakey " + key + " --segment s --json", Principal("app"));
  dk.secret = true;
  EXPECT_TRUE(Succeeded(dk));

  EXPECT_TRUE(FailedWith(Cli("key disable " + KeyName("nope")), kExitNotFound, "not found"));
  EXPECT_TRUE(FailedWith(Cli("key enable " + KeyName("nope")), kExitNotFound, "not found"));
  ASSERT_TRUE(Succeeded(Cli("key schedule-destroy " + key + " --pending-window 1h")));
  EXPECT_TRUE(FailedWith(Cli("key enable " + key), kExitFailedPrecondition,
                         "clavisctl key cancel-destroy " + key));
  EXPECT_TRUE(FailedWith(Cli("key disable " + key), kExitFailedPrecondition,
                         "is PENDING_DESTRUCTION until"));
}

// ---- key schedule-destroy, cancel-destroy, destroy ----

TEST_F(ClavisctlKeyTest, KeyDestructionIsScheduledCancelledAndDoneAfterTheWindow) {
  const std::string key = KeyName("doomed");
  MakeKey(key);
  EXPECT_TRUE(FailedWith(Cli("key destroy " + key), kExitFailedPrecondition,
                         "only a key PENDING_DESTRUCTION whose window has passed"));
  EXPECT_TRUE(FailedWith(Cli("key cancel-destroy " + key), kExitFailedPrecondition,
                         "there is no destruction to cancel"));
  EXPECT_TRUE(
      UsageError(Cli("key schedule-destroy " + key + " --pending-window 1x"), "bad duration"));

  CliResult scheduled = Cli("key schedule-destroy " + key + " --pending-window 1h");
  ASSERT_TRUE(Succeeded(scheduled));
  EXPECT_EQ(TableField(scheduled.out, "state"), "PENDING_DESTRUCTION");
  EXPECT_THAT(TableField(scheduled.out, "destroy time"), MatchesRegex("[0-9]{4}-[0-9T:-]+Z"));
  EXPECT_TRUE(FailedWith(Cli("key destroy " + key), kExitFailedPrecondition,
                         "cannot be destroyed before then"));
  EXPECT_TRUE(FailedWith(Cli("key schedule-destroy " + key), kExitFailedPrecondition,
                         "is PENDING_DESTRUCTION until"));

  CliResult cancelled = Cli("key cancel-destroy " + key + " --json");
  ASSERT_TRUE(Succeeded(cancelled));
  Json json = ParseJson(cancelled);
  EXPECT_EQ(json["state"], "DISABLED");  // documented: cancelling leaves it disabled
  EXPECT_FALSE(json.contains("destroyTime"));

  // Without --pending-window the server's default (30 days) applies.
  CliResult by_default = Cli("key schedule-destroy " + key + " --json");
  ASSERT_TRUE(Succeeded(by_default));
  EXPECT_EQ(ParseJson(by_default)["state"], "PENDING_DESTRUCTION");
  ASSERT_TRUE(Succeeded(Cli("key cancel-destroy " + key)));

  CliResult soon = Cli("key schedule-destroy " + key + " --pending-window 1s --json");
  ASSERT_TRUE(Succeeded(soon));
  EXPECT_TRUE(ParseJson(soon).contains("destroyTime"));
  absl::SleepFor(absl::Milliseconds(1100));
  CliResult destroyed = Cli("key destroy " + key + " --json");
  ASSERT_TRUE(Succeeded(destroyed));
  Json gone = ParseJson(destroyed);
  EXPECT_EQ(gone["state"], "DESTROYED");
  EXPECT_EQ(gone["versions"][0]["state"], "DESTROYED");
  CliResult shown = Cli("key get " + key);
  EXPECT_EQ(TableField(shown.out, "state"), "DESTROYED");

  EXPECT_TRUE(
      FailedWith(Cli("key schedule-destroy " + KeyName("nope")), kExitNotFound, "not found"));
  EXPECT_TRUE(FailedWith(Cli("key cancel-destroy " + KeyName("nope")), kExitNotFound, "not found"));
  EXPECT_TRUE(FailedWith(Cli("key destroy " + KeyName("nope")), kExitNotFound, "not found"));
}

// ---- key set-rotation ----

TEST_F(ClavisctlKeyTest, KeySetRotationChangesOnlyTheSchedule) {
  const std::string key = KeyName("schedule");
  MakeKey(key, "--description kept --label env=prod");
  CliResult set =
      Cli("key set-rotation " + key + " --period 30d --next 2030-01-01T00:00:00Z --json");
  ASSERT_TRUE(Succeeded(set));
  Json json = ParseJson(set);
  EXPECT_EQ(json["rotationPeriod"], "2592000s");
  EXPECT_EQ(json["nextRotationTime"], "2030-01-01T00:00:00Z");
  EXPECT_EQ(json["description"], "kept");  // the update mask names only the schedule
  EXPECT_EQ(json["labels"], (Json{{"env", "prod"}}));

  CliResult human = Cli("key set-rotation " + key + " --period 1h30m");
  ASSERT_TRUE(Succeeded(human));
  EXPECT_EQ(TableField(human.out, "rotation period"), "1h30m");
  CliResult off = Cli("key set-rotation " + key + " --period 0s");
  ASSERT_TRUE(Succeeded(off));
  EXPECT_EQ(TableField(off.out, "rotation period"), "none");
  EXPECT_EQ(TableField(off.out, "next rotation"), "-");

  EXPECT_TRUE(UsageError(Cli("key set-rotation " + key), "--period"));
  EXPECT_TRUE(UsageError(Cli("key set-rotation " + key + " --period 90"), "bad duration"));
  EXPECT_TRUE(UsageError(Cli("key set-rotation " + key + " --period 1d --next tomorrow"),
                         "bad time \"tomorrow\""));
  EXPECT_TRUE(FailedWith(Cli("key set-rotation " + KeyName("nope") + " --period 1d"), kExitNotFound,
                         "not found"));
}

// ---- key version ... ----

TEST_F(ClavisctlKeyTest, KeyVersionCommandsChangeOneVersion) {
  const std::string key = KeyName("versions");
  const std::string v1 = key + "/versions/1";
  MakeKey(key);
  ASSERT_TRUE(Succeeded(Cli("key rotate " + key)));

  CliResult disabled = Cli("key version disable " + v1 + " --json");
  ASSERT_TRUE(Succeeded(disabled));
  Json json = ParseJson(disabled);
  EXPECT_EQ(json["name"], key);  // each command prints the whole key
  EXPECT_EQ(json["versions"][0]["state"], "DISABLED");
  EXPECT_EQ(json["versions"][1]["state"], "ENABLED");

  CliResult enabled = Cli("key version enable " + v1);
  ASSERT_TRUE(Succeeded(enabled));
  EXPECT_THAT(LinesStartingWith(enabled.out, "1 "), ElementsAre(MatchesRegex("1 +ENABLED .*")));

  EXPECT_TRUE(FailedWith(Cli("key version disable " + key + "/versions/2"), kExitFailedPrecondition,
                         "is the primary version; rotate the key first"));
  EXPECT_TRUE(FailedWith(Cli("key version destroy " + v1), kExitFailedPrecondition,
                         "only a version PENDING_DESTRUCTION"));
  EXPECT_TRUE(FailedWith(Cli("key version cancel-destroy " + v1), kExitFailedPrecondition,
                         "there is no destruction to cancel"));

  CliResult scheduled = Cli("key version schedule-destroy " + v1 + " --pending-window 1h");
  ASSERT_TRUE(Succeeded(scheduled));
  // A version pending destruction adds the DESTROY TIME column.
  EXPECT_THAT(scheduled.out, HasSubstr("DESTROY TIME"));
  EXPECT_THAT(LinesStartingWith(scheduled.out, "1 "),
              ElementsAre(MatchesRegex("1 +PENDING_DESTRUCTION +.*")));
  CliResult cancelled = Cli("key version cancel-destroy " + v1 + " --json");
  ASSERT_TRUE(Succeeded(cancelled));
  EXPECT_EQ(ParseJson(cancelled)["versions"][0]["state"], "DISABLED");

  CliResult soon = Cli("key version schedule-destroy " + v1 + " --pending-window 1s --json");
  ASSERT_TRUE(Succeeded(soon));
  EXPECT_TRUE(ParseJson(soon)["versions"][0].contains("destroyTime"));
  absl::SleepFor(absl::Milliseconds(1100));
  CliResult destroyed = Cli("key version destroy " + v1 + " --json");
  ASSERT_TRUE(Succeeded(destroyed));
  Json after = ParseJson(destroyed);
  EXPECT_EQ(after["versions"][0]["state"], "DESTROYED");
  EXPECT_EQ(after["versions"][1]["state"], "ENABLED");
  EXPECT_EQ(after["state"], "ENABLED");  // the key lives on
  EXPECT_TRUE(FailedWith(Cli("key version enable " + v1), kExitFailedPrecondition, "DESTROYED"));

  const std::string v9 = key + "/versions/9";
  EXPECT_TRUE(FailedWith(Cli("key version enable " + v9), kExitNotFound, "versions/9 not found"));
  EXPECT_TRUE(FailedWith(Cli("key version disable " + v9), kExitNotFound, "not found"));
  EXPECT_TRUE(FailedWith(Cli("key version schedule-destroy " + v9), kExitNotFound, "not found"));
  EXPECT_TRUE(FailedWith(Cli("key version cancel-destroy " + v9), kExitNotFound, "not found"));
  EXPECT_TRUE(FailedWith(Cli("key version destroy " + v9), kExitNotFound, "not found"));
  EXPECT_TRUE(FailedWith(Cli("key version disable " + key + "/versions/x"), kExitInvalidArgument,
                         "malformed key version name"));
  EXPECT_TRUE(UsageError(Cli("key version schedule-destroy " + v1 + " --pending-window 2w"),
                         "bad duration"));
  EXPECT_TRUE(UsageError(Cli("key version frobnicate " + v1), "frobnicate"));
}

TEST_F(ClavisctlKeyTest, SegmentRotationAndRetirementSettings) {
  const std::string key = KeyName("retire");
  CliResult created =
      Cli("key create " + key + " --segment-rotation-period 30d --retire-unused disable --json");
  ASSERT_TRUE(Succeeded(created));
  Json json = ParseJson(created);
  EXPECT_EQ(json["segmentRotationPeriod"], "2592000s");
  EXPECT_EQ(json["versionRetirement"], "DISABLE_UNUSED_VERSIONS");

  CliResult set = Cli("key set-rotation " + key + " --retire-unused destroy --segment-period 0s");
  ASSERT_TRUE(Succeeded(set));
  EXPECT_EQ(TableField(set.out, "unused versions"), "disable, then schedule destruction");
  EXPECT_EQ(TableField(set.out, "segment rotation"), "none");
  EXPECT_EQ(TableField(set.out, "rotation period"), "none") << "the key's own schedule untouched";

  EXPECT_TRUE(
      UsageError(Cli("key set-rotation " + key + " --retire-unused sometimes"), "--retire-unused"));
  // Over the 100-year maximum (the minimum is seconds on this test server).
  EXPECT_TRUE(FailedWith(Cli("key set-rotation " + key + " --segment-period 40000d"),
                         kExitInvalidArgument,
                         "segment_rotation_period must be a non-negative duration"));
}

TEST_F(ClavisctlKeyTest, KeyVersionCompromiseRefusesTheVersionUntilRewrapped) {
  const std::string key = KeyName("leaked");
  const std::string app = Principal("leaked-app");
  MakeKey(key, "--user " + app);
  CliResult sealed = Cli("encrypt " + key + " --segment s1", app, "secret");
  ASSERT_TRUE(Succeeded(sealed));
  const std::string blob_file = absl::StrCat(work_.path(), "/leaked.b64");
  WriteTestFile(blob_file, sealed.out);

  CliResult marked = Cli("key version compromise " + key + "/versions/1 --json");
  ASSERT_TRUE(Succeeded(marked));
  Json json = ParseJson(marked);
  EXPECT_EQ(json["primaryVersion"], 2) << "the primary of a generated key is replaced first";
  EXPECT_TRUE(json["versions"][0].contains("compromiseTime"));
  EXPECT_TRUE(FailedWith(Cli("decrypt --blob-file " + blob_file, app), kExitFailedPrecondition,
                         "marked compromised"));

  CliResult shown = Cli("key get " + key);
  ASSERT_TRUE(Succeeded(shown));
  EXPECT_THAT(shown.out, HasSubstr("COMPROMISED"));
  EXPECT_THAT(shown.out, HasSubstr("re-wrap: 0 of 1 segment keys on the primary version (0%)"));

  CliResult rewrap = Cli("key rewrap " + key);
  ASSERT_TRUE(Succeeded(rewrap));
  EXPECT_THAT(rewrap.out, HasSubstr("1 segment keys moved off compromised versions"));
  CliResult opened = Cli("decrypt --blob-file " + blob_file, app);
  ASSERT_TRUE(Succeeded(opened));
  EXPECT_EQ(opened.out, "secret");

  EXPECT_TRUE(
      FailedWith(Cli("key version compromise " + key + "/versions/9"), kExitNotFound, "not found"));
  EXPECT_TRUE(FailedWith(Cli("key version compromise " + key + "/versions/1", app),
                         kExitPermissionDenied, "denied"));
  EXPECT_TRUE(UsageError(Cli("key version compromise"), "name"));
}

// ---- key import-params, key import: the rest is in byok_test.cc ----

TEST_F(ClavisctlKeyTest, KeyImportCommandsRefuseWrongUsage) {
  EXPECT_TRUE(UsageError(Cli("key import-params"), "name is required"));
  EXPECT_TRUE(
      UsageError(Cli("key import-params " + KeyName("x") + " --algorithm AES"), "--algorithm"));
  EXPECT_TRUE(UsageError(Cli("key import " + KeyName("x") + " --wrapped-file w"),
                         "--import-token-file is required"));
}

// ---- segment ... ----

TEST_F(ClavisctlKeyTest, SegmentCreateAndGet) {
  const std::string key = KeyName("segments");
  const std::string segment = key + "/segments/acme/orders/2026-11";
  MakeKey(key);
  CliResult created = Cli("segment create " + segment + " --json");
  ASSERT_TRUE(Succeeded(created));
  Json json = ParseJson(created);
  EXPECT_EQ(json["name"], segment);
  EXPECT_EQ(json["segment"], "acme/orders/2026-11");
  EXPECT_EQ(json["state"], "ENABLED");
  EXPECT_EQ(json["primaryVersion"], 1);
  ASSERT_THAT(json["versions"], SizeIs(1));
  EXPECT_EQ(json["versions"][0]["wrappedUnderKeyVersion"], 1);

  CliResult got = Cli("segment get " + segment);
  ASSERT_TRUE(Succeeded(got));
  EXPECT_EQ(TableField(got.out, "name"), segment);
  EXPECT_EQ(TableField(got.out, "segment"), "acme/orders/2026-11");
  EXPECT_EQ(TableField(got.out, "state"), "ENABLED");
  EXPECT_THAT(got.out, MatchesRegex("(.|\n)*VERSION +WRAPPED UNDER KEY VERSION +CREATED\n"
                                    "1 \\(primary\\) +1 +[0-9T:Z-]+\n"));
  CliResult got_json = Cli("segment get " + segment + " --json");
  ASSERT_TRUE(Succeeded(got_json));
  EXPECT_EQ(ParseJson(got_json)["createTime"], json["createTime"]);

  EXPECT_TRUE(FailedWith(Cli("segment create " + segment), kExitAlreadyExists, "already exists"));
  EXPECT_TRUE(FailedWith(Cli("segment create " + key + "/segments/bad%"), kExitInvalidArgument,
                         "may contain only letters, digits"));
  EXPECT_TRUE(FailedWith(Cli("segment create " + KeyName("nope") + "/segments/s"), kExitNotFound,
                         "not found"));
  EXPECT_TRUE(FailedWith(Cli("segment get " + key + "/segments/nope"), kExitNotFound,
                         "segment " + key + "/segments/nope not found"));
  EXPECT_TRUE(UsageError(Cli("segment get"), "name is required"));
}

TEST_F(ClavisctlKeyTest, SegmentListFiltersAndPages) {
  const std::string key = KeyName("listed");
  MakeKey(key);
  const std::set<std::string> orders = {"acme/orders/1", "acme/orders/2", "acme/orders/3"};
  for (const std::string& s : orders)
    ASSERT_TRUE(Succeeded(Cli("segment create " + key + "/segments/" + s)));
  ASSERT_TRUE(Succeeded(Cli("segment create " + key + "/segments/acme/users/1")));

  CliResult table = Cli("segment list " + key);
  ASSERT_TRUE(Succeeded(table));
  EXPECT_THAT(table.out, MatchesRegex("SEGMENT +STATE +PRIMARY +CREATED\n(.|\n)*"));
  EXPECT_THAT(LinesStartingWith(table.out, "acme/"), SizeIs(4));
  EXPECT_THAT(LinesStartingWith(table.out, "acme/users/1 "),
              ElementsAre(MatchesRegex("acme/users/1 +ENABLED +1 +[0-9T:Z-]+")));

  CliResult filtered = Cli("segment list " + key + " --prefix acme/orders/ --json");
  ASSERT_TRUE(Succeeded(filtered));
  const Json filtered_json = ParseJson(filtered);
  std::set<std::string> labels;
  for (const Json& s : filtered_json["segments"]) labels.insert(s["segment"].get<std::string>());
  EXPECT_EQ(labels, orders);

  CliResult first = Cli("segment list " + key + " --page-size 3 --json");
  ASSERT_TRUE(Succeeded(first));
  Json page1 = ParseJson(first);
  EXPECT_THAT(page1["segments"], SizeIs(3));
  const std::string token = page1["nextPageToken"].get<std::string>();
  ASSERT_FALSE(token.empty());
  CliResult rest = Cli("segment list " + key + " --page-size 3 --json --page-token " + token);
  ASSERT_TRUE(Succeeded(rest));
  Json page2 = ParseJson(rest);
  ASSERT_THAT(page2["segments"], SizeIs(1));
  EXPECT_EQ(page2["segments"][0]["segment"], "acme/users/1");
  EXPECT_EQ(page2["nextPageToken"], "");

  CliResult cut = Cli("segment list " + key + " --page-size 3");
  ASSERT_TRUE(Succeeded(cut));
  EXPECT_THAT(cut.err, HasSubstr("more segments: rerun with --all, or with --page-token " + token));
  CliResult all = Cli("segment list " + key + " --page-size 1 --all --json");
  ASSERT_TRUE(Succeeded(all));
  Json accumulated = ParseJson(all);
  EXPECT_THAT(accumulated["segments"], SizeIs(4));
  EXPECT_EQ(accumulated["nextPageToken"], "");

  CliResult none = Cli("segment list " + key + " --prefix zzz");
  ASSERT_TRUE(Succeeded(none));
  EXPECT_THAT(none.out, IsEmpty());
  EXPECT_THAT(none.err, HasSubstr("no segments in " + key));

  EXPECT_TRUE(FailedWith(Cli("segment list " + KeyName("nope")), kExitNotFound, "not found"));
  EXPECT_TRUE(UsageError(Cli("segment list " + key + " --page-size 0"), "--page-size"));
  EXPECT_TRUE(FailedWith(Cli("segment list " + key + " --page-token '!!!'"), kExitInvalidArgument,
                         "page_token"));
}

TEST_F(ClavisctlKeyTest, SegmentRotateRevokeAndEnable) {
  const std::string key = KeyName("revocable");
  const std::string segment = key + "/segments/s1";
  MakeKey(key, "--user " + Principal("app"));
  ASSERT_TRUE(Succeeded(Cli("segment create " + segment)));

  CliResult rotated = Cli("segment rotate " + segment + " --json");
  ASSERT_TRUE(Succeeded(rotated));
  Json json = ParseJson(rotated);
  EXPECT_EQ(json["primaryVersion"], 2);
  EXPECT_THAT(json["versions"], SizeIs(2));
  CliResult rotated_human = Cli("segment rotate " + segment);
  ASSERT_TRUE(Succeeded(rotated_human));
  EXPECT_EQ(TableField(rotated_human.out, "primary version"), "3");
  EXPECT_THAT(LinesStartingWith(rotated_human.out, "3 (primary)"), SizeIs(1));

  CliResult revoked = Cli("segment revoke " + segment + " --json");
  ASSERT_TRUE(Succeeded(revoked));
  EXPECT_EQ(ParseJson(revoked)["state"], "DISABLED");
  EXPECT_TRUE(FailedWith(Cli("datakey " + key + " --segment s1", Principal("app")),
                         kExitFailedPrecondition, "it was revoked"));
  EXPECT_TRUE(FailedWith(Cli("segment rotate " + segment), kExitFailedPrecondition,
                         "an admin can enable it again"));
  CliResult revoked_human = Cli("segment revoke " + segment);
  ASSERT_TRUE(Succeeded(revoked_human));
  EXPECT_EQ(TableField(revoked_human.out, "state"), "DISABLED");

  CliResult enabled = Cli("segment enable " + segment);
  ASSERT_TRUE(Succeeded(enabled));
  EXPECT_EQ(TableField(enabled.out, "state"), "ENABLED");
  CliResult enabled_json = Cli("segment enable " + segment + " --json");
  ASSERT_TRUE(Succeeded(enabled_json));
  EXPECT_EQ(ParseJson(enabled_json)["state"], "ENABLED");
  CliResult dk = Cli("datakey " + key + " --segment s1 --json", Principal("app"));
  dk.secret = true;
  ASSERT_TRUE(Succeeded(dk));
  EXPECT_EQ(ParseJson(dk)["segmentKeyVersion"], 3);

  const std::string nope = key + "/segments/nope";
  for (const char* verb : {"rotate", "revoke", "enable"}) {
    EXPECT_TRUE(
        FailedWith(Cli(absl::StrCat("segment ", verb, " ", nope)), kExitNotFound, "not found"))
        << verb;
  }
}

TEST_F(ClavisctlKeyTest, SegmentDestructionIsScheduledCancelledAndDoneAfterTheWindow) {
  const std::string key = KeyName("shredded");
  const std::string segment = key + "/segments/s1";
  MakeKey(key);
  ASSERT_TRUE(Succeeded(Cli("segment create " + segment)));
  EXPECT_TRUE(FailedWith(Cli("segment destroy " + segment), kExitFailedPrecondition,
                         "only a segment PENDING_DESTRUCTION whose window has passed"));
  EXPECT_TRUE(FailedWith(Cli("segment cancel-destroy " + segment), kExitFailedPrecondition,
                         "there is no destruction to cancel"));
  EXPECT_TRUE(UsageError(Cli("segment schedule-destroy " + segment + " --pending-window 1w"),
                         "bad duration \"1w\""));

  CliResult scheduled = Cli("segment schedule-destroy " + segment + " --pending-window 1h");
  ASSERT_TRUE(Succeeded(scheduled));
  EXPECT_EQ(TableField(scheduled.out, "state"), "PENDING_DESTRUCTION");
  EXPECT_THAT(TableField(scheduled.out, "destroy time"), MatchesRegex("[0-9]{4}-[0-9T:-]+Z"));
  EXPECT_TRUE(FailedWith(Cli("segment destroy " + segment), kExitFailedPrecondition,
                         "cannot be destroyed before then"));
  CliResult cancelled = Cli("segment cancel-destroy " + segment + " --json");
  ASSERT_TRUE(Succeeded(cancelled));
  EXPECT_EQ(ParseJson(cancelled)["state"], "DISABLED");
  EXPECT_FALSE(ParseJson(cancelled).contains("destroyTime"));

  CliResult soon = Cli("segment schedule-destroy " + segment + " --pending-window 1s --json");
  ASSERT_TRUE(Succeeded(soon));
  Json json = ParseJson(soon);
  EXPECT_EQ(json["state"], "PENDING_DESTRUCTION");
  EXPECT_TRUE(json.contains("destroyTime"));
  absl::SleepFor(absl::Milliseconds(1100));
  CliResult destroyed = Cli("segment destroy " + segment + " --json");
  ASSERT_TRUE(Succeeded(destroyed));
  EXPECT_EQ(ParseJson(destroyed)["state"], "DESTROYED");
  EXPECT_EQ(TableField(Cli("segment get " + segment).out, "state"), "DESTROYED");

  const std::string nope = key + "/segments/nope";
  for (const char* verb : {"schedule-destroy", "cancel-destroy", "destroy"}) {
    EXPECT_TRUE(
        FailedWith(Cli(absl::StrCat("segment ", verb, " ", nope)), kExitNotFound, "not found"))
        << verb;
  }
}

}  // namespace
}  // namespace clavis::testing
