// clavisctl's data-plane, access-control and local commands against a real
// clavisd: datakey, encrypt, decrypt, policy, approval, whoami, audit (on
// the server's own audit directory), pki, token (credentials clavisd then
// accepts), escrow's usage errors, and principals without permission
// refused with exit code 6. Each command: a success with its --json output
// parsed, its human output, and failures with their documented exit code
// and message (docs/clavisctl.md).
#include <sys/stat.h>

#include <set>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/clavisctl_cli_fixture.h"

namespace clavis::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::MatchesRegex;
using ::testing::Not;
using ::testing::SizeIs;
using ::testing::StartsWith;

class ClavisctlAccessTest : public ClavisctlCliTest {
 protected:
  static std::string App() { return Principal("app"); }

  // A key administered by the tenant admin and used by App().
  std::string MakeAppKey(const std::string& id) {
    const std::string key = KeyName(id);
    MakeKey(key, "--user " + App());
    return key;
  }

  // clavisctl as App(); stdout may hold key material.
  CliResult AsApp(const std::string& args, const std::string& input = "") {
    CliResult r = Cli(args, App(), input);
    r.secret = true;
    return r;
  }

  static std::string Base64Decoded(const Json& value) {
    std::string out;
    if (!value.is_string() || !absl::Base64Unescape(value.get<std::string>(), &out)) return "";
    return out;
  }
};

// ---- datakey ----

TEST_F(ClavisctlAccessTest, DataKeyPrintsAKeyAndItsWrappedBlob) {
  const std::string key = MakeAppKey("datakey");
  CliResult made =
      AsApp("datakey " + key + " --segment acme/orders/2026-11 --context table=orders --json");
  ASSERT_TRUE(Succeeded(made));
  Json json = ParseJson(made);
  const std::string plaintext = Base64Decoded(json["plaintext"]);
  EXPECT_EQ(plaintext.size(), 32u);
  EXPECT_FALSE(Base64Decoded(json["ciphertextBlob"]).empty());
  EXPECT_EQ(json["keyVersion"], key + "/versions/1");
  EXPECT_EQ(json["segmentKeyVersion"], 1);

  // The wrapped key decrypts back to the same key, under the same context.
  CliResult unwrapped = AsApp("decrypt --base64 --context table=orders --blob-base64 " +
                              json["ciphertextBlob"].get<std::string>());
  ASSERT_TRUE(Succeeded(unwrapped));
  EXPECT_TRUE(absl::StripTrailingAsciiWhitespace(unwrapped.out) ==
              json["plaintext"].get<std::string>())
      << "the unwrapped data key differs";

  CliResult human = AsApp("datakey " + key + " --segment acme/orders/2026-11");
  ASSERT_TRUE(Succeeded(human));
  EXPECT_THAT(human.out, MatchesRegex("plaintext_base64 +[A-Za-z0-9+/]{43}=\n"
                                      "ciphertext_blob_base64 +[A-Za-z0-9+/=]+\n"
                                      "key_version +tenants/cli/keys/datakey/versions/1\n"
                                      "segment_key_version +1\n"));

  EXPECT_TRUE(UsageError(AsApp("datakey " + key), "--segment is required"));
  EXPECT_TRUE(UsageError(AsApp("datakey " + key + " --segment s --context table"),
                         "entry \"table\" is not key=value"));
  EXPECT_TRUE(UsageError(AsApp("datakey " + key + " --segment s --context a=1 --context a=2"),
                         "given more than once"));
  EXPECT_TRUE(FailedWith(AsApp("datakey " + key + " --segment 'bad%'"), kExitInvalidArgument,
                         "may contain only letters, digits"));
  ASSERT_TRUE(Succeeded(Cli("key disable " + key)));
  EXPECT_TRUE(FailedWith(AsApp("datakey " + key + " --segment s"), kExitFailedPrecondition,
                         "is DISABLED since"));
}

// ---- encrypt, decrypt ----

TEST_F(ClavisctlAccessTest, EncryptAndDecryptRoundTrip) {
  const std::string key = MakeAppKey("sealed");
  CliResult sealed = AsApp("encrypt " + key + " --segment acme/contacts --context customer=42",
                           "jane@example.com");
  ASSERT_TRUE(Succeeded(sealed));
  // One base64 line, so `blob=$(clavisctl encrypt ...)` works.
  EXPECT_THAT(sealed.out, MatchesRegex("[A-Za-z0-9+/]+=*\n"));
  const std::string blob = std::string(absl::StripTrailingAsciiWhitespace(sealed.out));
  WriteTestFile(Path("blob.b64"), sealed.out);

  CliResult sealed_json = AsApp("encrypt " + key + " --segment acme/contacts --json", "x");
  ASSERT_TRUE(Succeeded(sealed_json));
  Json json = ParseJson(sealed_json);
  EXPECT_FALSE(Base64Decoded(json["ciphertextBlob"]).empty());
  EXPECT_EQ(json["segmentKeyVersion"], 1);

  WriteTestFile(Path("record.txt"), "from a file");
  CliResult from_file =
      AsApp("encrypt " + key + " --segment acme/contacts --plaintext-file " + Path("record.txt"));
  ASSERT_TRUE(Succeeded(from_file));

  CliResult raw = AsApp("decrypt --blob-file " + Path("blob.b64") + " --context customer=42");
  ASSERT_TRUE(Succeeded(raw));
  EXPECT_TRUE(raw.out == "jane@example.com") << "decrypt printed another plaintext";
  CliResult b64 =
      AsApp("decrypt --blob-base64 " + blob + " --context customer=42 --base64 --key " + key);
  ASSERT_TRUE(Succeeded(b64));
  EXPECT_TRUE(b64.out == absl::Base64Escape("jane@example.com") + "\n");
  CliResult decrypted_json =
      AsApp("decrypt --blob-file - --context customer=42 --json", sealed.out);
  ASSERT_TRUE(Succeeded(decrypted_json));
  Json opened = ParseJson(decrypted_json);
  EXPECT_TRUE(Base64Decoded(opened["plaintext"]) == "jane@example.com");
  EXPECT_EQ(opened["key"], key);
  EXPECT_EQ(opened["segment"], "acme/contacts");
  EXPECT_EQ(opened["segmentKeyVersion"], 1);
  CliResult file_back = AsApp("decrypt --blob-base64 " +
                              std::string(absl::StripTrailingAsciiWhitespace(from_file.out)));
  ASSERT_TRUE(Succeeded(file_back));
  EXPECT_TRUE(file_back.out == "from a file");

  // Failures.
  EXPECT_TRUE(FailedWith(AsApp("decrypt --blob-base64 " + blob + " --context customer=43"),
                         kExitInvalidArgument, "decryption failed"));
  const std::string other = MakeAppKey("sealed-other");
  EXPECT_TRUE(
      FailedWith(AsApp("decrypt --blob-base64 " + blob + " --context customer=42 --key " + other),
                 kExitInvalidArgument, "was not made with key " + other));
  EXPECT_TRUE(FailedWith(AsApp("decrypt --blob-base64 AAAA"), kExitInvalidArgument,
                         "is this a Clavis ciphertext blob?"));
  EXPECT_TRUE(UsageError(AsApp("decrypt --blob-base64 '!!!'"), "is not valid base64"));
  EXPECT_TRUE(UsageError(AsApp("decrypt --context customer=42"),
                         "exactly one of --blob-base64 or --blob-file"));
  EXPECT_TRUE(UsageError(AsApp("decrypt --blob-base64 " + blob + " --blob-file f"), "excludes"));
  EXPECT_TRUE(UsageError(AsApp("decrypt --blob-file " + Path("missing")), "cannot open"));
  EXPECT_TRUE(FailedWith(AsApp("encrypt " + key + " --segment s", std::string(5000, 'x')),
                         kExitInvalidArgument, "Encrypt takes at most 4096"));
  EXPECT_TRUE(UsageError(
      AsApp("encrypt " + key + " --segment s --plaintext-file " + Path("missing")), "cannot open"));
  EXPECT_TRUE(UsageError(AsApp("encrypt " + key), "--segment is required"));
}

// ---- policy get, set, simulate ----

TEST_F(ClavisctlAccessTest, PolicyGetPrintsTheDocumentAndTheQuorum) {
  const std::string key = MakeAppKey("policy-get");
  CliResult got = Cli("policy get " + key);
  ASSERT_TRUE(Succeeded(got));
  // stdout holds only the document (so `policy get K > p.json` round-trips).
  Json document = ParseJson(got);
  ASSERT_THAT(document["statements"], SizeIs(2));
  EXPECT_EQ(document["statements"][0]["sid"], "key-administrators");
  EXPECT_EQ(document["statements"][0]["principals"], Json::array({Admin()}));
  EXPECT_EQ(document["statements"][1]["sid"], "key-users");
  EXPECT_EQ(document["statements"][1]["principals"], Json::array({App()}));
  EXPECT_THAT(got.err, HasSubstr("approvals required: none (" + key));

  CliResult json = Cli("policy get " + key + " --json");
  ASSERT_TRUE(Succeeded(json));
  Json message = ParseJson(json);
  EXPECT_EQ(message["key"], key);
  EXPECT_EQ(message["approvalsRequired"], 0);
  EXPECT_EQ(Json::parse(message["policy"].get<std::string>()), document);

  EXPECT_TRUE(FailedWith(Cli("policy get " + KeyName("nope")), kExitNotFound, "not found"));
  EXPECT_TRUE(UsageError(Cli("policy get"), "name is required"));
}

TEST_F(ClavisctlAccessTest, PolicySetReplacesTheDocument) {
  const std::string key = MakeAppKey("policy-set");
  const std::string viewer = Principal("viewer");
  EXPECT_TRUE(FailedWith(Cli("key get " + key, viewer), kExitPermissionDenied, "GetKey"));

  // Round trip: get, add a statement, set; the new right takes effect.
  Json document = ParseJson(Cli("policy get " + key));
  document["statements"].push_back(
      {{"sid", "viewers"}, {"effect", "Allow"}, {"principals", {viewer}}, {"actions", {"GetKey"}}});
  WriteTestFile(Path("policy.json"), document.dump(2));
  CliResult set = Cli("policy set " + key + " --file " + Path("policy.json"));
  ASSERT_TRUE(Succeeded(set));
  EXPECT_EQ(set.out, absl::StrCat("set the policy of ", key, "; approvals required: none (", key,
                                  " runs destructive changes without approval)\n"));
  EXPECT_TRUE(Succeeded(Cli("key get " + key, viewer)));

  // From stdin, with a quorum, as JSON.
  CliResult quorum =
      Cli("policy set " + key + " --file - --approvals 2 --json", Admin(), document.dump());
  ASSERT_TRUE(Succeeded(quorum));
  Json message = ParseJson(quorum);
  EXPECT_EQ(message["key"], key);
  EXPECT_EQ(message["approvalsRequired"], 2);
  EXPECT_EQ(Json::parse(message["policy"].get<std::string>())["statements"][2]["sid"], "viewers");

  WriteTestFile(Path("bad.json"), absl::StrCat(R"({"version": "2026-11-01", "statements": [)",
                                               R"({"effect": "Allow", "principals": [")", Admin(),
                                               R"("], "actions": ["Frobnicate"]}]})"));
  EXPECT_TRUE(FailedWith(Cli("policy set " + key + " --file " + Path("bad.json")),
                         kExitInvalidArgument, "unknown action \"Frobnicate\""));
  WriteTestFile(Path("empty.json"), "\n");
  EXPECT_TRUE(UsageError(Cli("policy set " + key + " --file " + Path("empty.json")),
                         "the policy document is empty"));
  EXPECT_TRUE(UsageError(Cli("policy set " + key), "--file is required"));
  EXPECT_TRUE(UsageError(Cli("policy set " + key + " --file " + Path("missing")), "cannot open"));
  EXPECT_TRUE(
      UsageError(Cli("policy set " + key + " --file " + Path("policy.json") + " --approvals 11"),
                 "--approvals"));
  EXPECT_TRUE(FailedWith(Cli("policy set " + KeyName("nope") + " --file " + Path("policy.json")),
                         kExitNotFound, "not found"));
}

TEST_F(ClavisctlAccessTest, PolicySetThatWidensAccessUnderAQuorumBecomesAnApprovalRequest) {
  const std::string key = KeyName("policy-quorum");
  MakeKey(key, absl::StrCat("--admin ", Admin(), " --admin ", Principal("ops2"), " --approvals 2"));
  Json document = ParseJson(Cli("policy get " + key));
  document["statements"].push_back(
      {{"effect", "Allow"}, {"principals", {Principal("viewer")}}, {"actions", {"GetKey"}}});
  WriteTestFile(Path("wider.json"), document.dump());
  CliResult widened = Cli("policy set " + key + " --file " + Path("wider.json"));
  EXPECT_TRUE(FailedWith(widened, kExitFailedPrecondition, "approval required"));
  const std::string request = ApprovalRequestIn(widened.err, kTenant);
  ASSERT_FALSE(request.empty()) << widened;
  EXPECT_THAT(widened.err, HasSubstr("run `clavisctl approval approve " + request + "`"));
  // Nothing changed yet.
  EXPECT_THAT(ParseJson(Cli("policy get " + key))["statements"], SizeIs(1));
}

TEST_F(ClavisctlAccessTest, PolicyValidateChecksWithoutChangingAnything) {
  const std::string key = KeyName("policy-validate");
  MakeKey(key, absl::StrCat("--admin ", Admin(), " --admin ", Principal("ops2"), " --user ", App(),
                            " --approvals 2"));
  const std::string before = Cli("policy get " + key).out;
  Json document = ParseJson(Cli("policy get " + key));
  WriteTestFile(Path("same.json"), document.dump());

  CliResult valid = Cli("policy validate " + key + " --policy-file " + Path("same.json"));
  ASSERT_TRUE(Succeeded(valid));
  EXPECT_EQ(valid.out, absl::StrCat("valid: a policy for ", key,
                                    "\nsetting it needs no approval: `policy set` would apply it "
                                    "at once\n"));
  CliResult json = Cli("policy validate " + key + " --file - --json", Admin(), document.dump());
  ASSERT_TRUE(Succeeded(json));
  Json message = ParseJson(json);
  EXPECT_EQ(message["key"], key);
  EXPECT_EQ(message["needsApproval"], false);
  EXPECT_EQ(message["approvalsRequired"], 2);
  EXPECT_EQ(Json::parse(message["policy"].get<std::string>()), document) << "normalized";

  // Wider: setting it would need the quorum's approval.
  Json wider = document;
  wider["statements"].push_back(
      {{"effect", "Allow"}, {"principals", {Principal("viewer")}}, {"actions", {"GetKey"}}});
  WriteTestFile(Path("wider.json"), wider.dump());
  CliResult widened = Cli("policy validate " + key + " --file " + Path("wider.json"));
  ASSERT_TRUE(Succeeded(widened));
  EXPECT_THAT(widened.out, HasSubstr("setting it needs approval: it widens access"));

  WriteTestFile(Path("malformed.json"), R"({"version": 1, "statements": [)");
  EXPECT_TRUE(FailedWith(Cli("policy validate " + key + " --file " + Path("malformed.json")),
                         kExitInvalidArgument, "policy: "));
  WriteTestFile(
      Path("unknown.json"),
      absl::StrCat(R"({"version": 1, "statements": [{"effect": "Allow", "principals": [")", App(),
                   R"("], "actions": ["Decrpyt"]}]})"));
  CliResult unknown = Cli("policy validate " + key + " --file " + Path("unknown.json"));
  EXPECT_TRUE(FailedWith(unknown, kExitInvalidArgument, "statements[0].actions[0]"));
  EXPECT_THAT(unknown.err, HasSubstr("did you mean \"Decrypt\""));
  WriteTestFile(
      Path("tenant.json"),
      absl::StrCat(R"({"version": 1, "statements": [{"effect": "Allow", "principals": [")",
                   Principal("app", "globex"), R"("], "actions": ["Decrypt"]}]})"));
  EXPECT_TRUE(FailedWith(Cli("policy validate " + key + " --file " + Path("tenant.json")),
                         kExitInvalidArgument, "statements[0].principals[0]"));
  WriteTestFile(Path("huge.json"), std::string(40000, ' ') + document.dump());
  EXPECT_TRUE(FailedWith(Cli("policy validate " + key + " --file " + Path("huge.json")),
                         kExitInvalidArgument, "the limit is"));
  EXPECT_TRUE(FailedWith(Cli("policy validate " + key + " --file " + Path("same.json"), App()),
                         kExitPermissionDenied, "SetPolicy"));

  // Nothing changed, and no approval request was made.
  EXPECT_EQ(Cli("policy get " + key).out, before);
  CliResult requests = Cli("approval list " + key + " --all --json");
  ASSERT_TRUE(Succeeded(requests));
  EXPECT_EQ(ParseJson(requests), (Json{{"requests", Json::array()}}));
}

TEST_F(ClavisctlAccessTest, PolicySimulateAnswersAllowAndDenyWithExitZero) {
  const std::string key = MakeAppKey("simulated");
  CliResult allow = Cli("policy simulate " + key + " --principal " + App() +
                        " --action Decrypt --segment acme/billing --context table=invoices "
                        "--time 2030-01-01T00:00:00Z");
  ASSERT_TRUE(Succeeded(allow));
  EXPECT_THAT(allow.out, StartsWith("ALLOW\n"));
  EXPECT_EQ(TableField(allow.out, "statement"), "1 (sid \"key-users\")");
  EXPECT_THAT(TableField(allow.out, "reason"), HasSubstr("allowed by statement 1"));

  CliResult deny =
      Cli("policy simulate " + key + " --principal " + App() + " --action Rotate --json");
  ASSERT_TRUE(Succeeded(deny));
  Json json = ParseJson(deny);
  EXPECT_EQ(json["allowed"], false);
  EXPECT_EQ(json["statementIndex"], -1);
  EXPECT_EQ(json["sid"], "");
  EXPECT_THAT(json["reason"].get<std::string>(), HasSubstr("no statement allows Rotate"));
  CliResult deny_human =
      Cli("policy simulate " + key + " --principal " + App() + " --action Rotate");
  ASSERT_TRUE(Succeeded(deny_human));
  EXPECT_THAT(deny_human.out, StartsWith("DENY\n"));
  EXPECT_EQ(TableField(deny_human.out, "statement"), "none (default deny)");

  // A draft that gives App() Rotate says ALLOW; the stored policy is unchanged.
  Json draft = ParseJson(Cli("policy get " + key));
  draft["statements"][1]["actions"].push_back("Rotate");
  draft["allowAdminAndDataToSamePrincipal"] = true;
  WriteTestFile(Path("draft.json"), draft.dump());
  CliResult drafted = Cli("policy simulate " + key + " --principal " + App() +
                          " --action Rotate --json --draft-file " + Path("draft.json"));
  ASSERT_TRUE(Succeeded(drafted));
  EXPECT_EQ(ParseJson(drafted)["allowed"], true);
  EXPECT_EQ(ParseJson(drafted)["sid"], "key-users");
  EXPECT_EQ(ParseJson(Cli("policy simulate " + key + " --principal " + App() +
                          " --action Rotate --json"))["allowed"],
            false);

  EXPECT_TRUE(
      UsageError(Cli("policy simulate " + key + " --principal " + App()), "--action is required"));
  EXPECT_TRUE(
      UsageError(Cli("policy simulate " + key + " --action Decrypt"), "--principal is required"));
  EXPECT_TRUE(UsageError(Cli("policy simulate " + key + " --principal " + App() +
                             " --action Decrypt --time yesterday"),
                         "bad time"));
  EXPECT_TRUE(UsageError(
      Cli("policy simulate " + key + " --principal " + App() + " --action Decrypt --context nope"),
      "is not key=value"));
  WriteTestFile(Path("bad.json"),
                R"({"version": "2026-11-01", "statements": [{"effect": "Maybe"}]})");
  EXPECT_TRUE(FailedWith(Cli("policy simulate " + key + " --principal " + App() +
                             " --action Decrypt --draft-file " + Path("bad.json")),
                         kExitInvalidArgument, "statements[0]"));
  EXPECT_TRUE(FailedWith(
      Cli("policy simulate " + KeyName("nope") + " --principal " + App() + " --action Decrypt"),
      kExitNotFound, "not found"));
}

// ---- approval list, get, approve ----

class ClavisctlApprovalTest : public ClavisctlAccessTest {
 protected:
  // A key whose destruction needs 2 of {admin, ops2, ops3}.
  std::string MakeGuardedKey(const std::string& id) {
    const std::string key = KeyName(id);
    MakeKey(key, absl::StrCat("--admin ", Admin(), " --admin ", Principal("ops2"), " --admin ",
                              Principal("ops3"), " --user ", App(), " --approvals 2"));
    return key;
  }

  // Asks for the key's destruction; returns the approval request it became.
  std::string RequestDestruction(const std::string& key) {
    CliResult asked = Cli("key schedule-destroy " + key);
    EXPECT_TRUE(FailedWith(asked, kExitFailedPrecondition, "approval required"));
    return ApprovalRequestIn(asked.err, kTenant);
  }
};

TEST_F(ClavisctlApprovalTest, ListGetAndApproveUntilTheActionRuns) {
  const std::string key = MakeGuardedKey("guarded");
  CliResult none = Cli("approval list " + key);
  ASSERT_TRUE(Succeeded(none));
  EXPECT_THAT(none.out, IsEmpty());
  EXPECT_THAT(none.err, HasSubstr("no pending approval requests for " + key));
  CliResult none_json = Cli("approval list " + key + " --json");
  ASSERT_TRUE(Succeeded(none_json));
  EXPECT_EQ(ParseJson(none_json), (Json{{"requests", Json::array()}}));

  // The guarded call becomes a request; the hint names it.
  CliResult asked = Cli("key schedule-destroy " + key + " --pending-window 1h");
  EXPECT_TRUE(
      FailedWith(asked, kExitFailedPrecondition, "needs 2 approvals for ScheduleDestruction"));
  const std::string request = ApprovalRequestIn(asked.err, kTenant);
  ASSERT_FALSE(request.empty()) << asked;
  EXPECT_THAT(asked.err, HasSubstr("(see `clavisctl approval get " + request + "`)"));
  EXPECT_EQ(TableField(Cli("key get " + key).out, "state"), "ENABLED");

  CliResult listed = Cli("approval list " + key);
  ASSERT_TRUE(Succeeded(listed));
  EXPECT_THAT(listed.out, StartsWith("NAME "));
  EXPECT_THAT(LinesStartingWith(listed.out, request),
              ElementsAre(MatchesRegex(request + " +ScheduleDestruction +" + key + " +" + Admin() +
                                       " +0/2 +PENDING +[0-9T:Z-]+")));
  CliResult listed_json = Cli("approval list " + key + " --json");
  ASSERT_TRUE(Succeeded(listed_json));
  Json requests = ParseJson(listed_json)["requests"];
  ASSERT_THAT(requests, SizeIs(1));
  EXPECT_EQ(requests[0]["name"], request);
  EXPECT_EQ(requests[0]["state"], "APPROVAL_PENDING");

  CliResult shown = Cli("approval get " + request);
  ASSERT_TRUE(Succeeded(shown));
  EXPECT_EQ(TableField(shown.out, "name"), request);
  EXPECT_EQ(TableField(shown.out, "key"), key);
  EXPECT_EQ(TableField(shown.out, "action"), "ScheduleDestruction");
  EXPECT_EQ(TableField(shown.out, "requester"), Admin());
  EXPECT_EQ(TableField(shown.out, "approvals"), "0/2");
  EXPECT_EQ(TableField(shown.out, "approvers"), "-");
  EXPECT_EQ(TableField(shown.out, "state"), "PENDING");
  EXPECT_THAT(TableField(shown.out, "summary"), HasSubstr("ScheduleDestruction on " + key));
  CliResult shown_json = Cli("approval get " + request + " --json");
  ASSERT_TRUE(Succeeded(shown_json));
  Json json = ParseJson(shown_json);
  EXPECT_EQ(json["key"], key);
  EXPECT_EQ(json["action"], "ScheduleDestruction");
  EXPECT_EQ(json["requester"], Admin());
  EXPECT_EQ(json["approvalsRequired"], 2);
  EXPECT_EQ(json["approvers"], Json::array());
  EXPECT_TRUE(json.contains("expireTime"));

  EXPECT_TRUE(FailedWith(Cli("approval approve " + request), kExitFailedPrecondition,
                         "cannot approve their own request"));
  CliResult first = Cli("approval approve " + request, Principal("ops2"));
  ASSERT_TRUE(Succeeded(first));
  EXPECT_EQ(TableField(first.out, "approvals"), "1/2");
  EXPECT_EQ(TableField(first.out, "approvers"), Principal("ops2"));
  EXPECT_THAT(first.err, HasSubstr("1 more approval needed before the ScheduleDestruction runs"));
  EXPECT_TRUE(FailedWith(Cli("approval approve " + request, Principal("ops2")),
                         kExitFailedPrecondition, "has already approved"));

  CliResult last = Cli("approval approve " + request + " --json", Principal("ops3"));
  ASSERT_TRUE(Succeeded(last));
  Json done = ParseJson(last);
  EXPECT_EQ(done["state"], "APPROVAL_EXECUTED");
  EXPECT_EQ(done["resultCode"], 0);
  EXPECT_EQ(done["approvers"], Json::array({Principal("ops2"), Principal("ops3")}));
  EXPECT_EQ(TableField(Cli("key get " + key).out, "state"), "PENDING_DESTRUCTION");

  CliResult executed = Cli("approval get " + request);
  EXPECT_EQ(TableField(executed.out, "state"), "EXECUTED");
  EXPECT_EQ(TableField(executed.out, "result"), "OK");
  EXPECT_TRUE(FailedWith(Cli("approval approve " + request, Principal("ops3")),
                         kExitFailedPrecondition, "is no longer pending"));
  CliResult pending = Cli("approval list " + key);
  ASSERT_TRUE(Succeeded(pending));
  EXPECT_THAT(pending.out, IsEmpty());
  CliResult all = Cli("approval list " + key + " --all");
  ASSERT_TRUE(Succeeded(all));
  EXPECT_THAT(LinesStartingWith(all.out, request),
              ElementsAre(MatchesRegex(".* +2/2 +EXECUTED +[0-9T:Z-]+")));
}

TEST_F(ClavisctlApprovalTest, ApproveExitsWithTheCodeOfAReleasedActionThatFailed) {
  const std::string key = MakeGuardedKey("guarded-twice");
  const std::string first = RequestDestruction(key);
  const std::string second = RequestDestruction(key);
  ASSERT_FALSE(first.empty());
  ASSERT_FALSE(second.empty());
  ASSERT_NE(first, second);
  for (const char* who : {"ops2", "ops3"})
    ASSERT_TRUE(Succeeded(Cli("approval approve " + first, Principal(who))));
  ASSERT_TRUE(Succeeded(Cli("approval approve " + second, Principal("ops2"))));
  // The key is already pending destruction: the second one runs and fails.
  CliResult failed = Cli("approval approve " + second, Principal("ops3"));
  EXPECT_TRUE(FailedWith(failed, kExitFailedPrecondition,
                         "approved, and the ScheduleDestruction ran but failed"));
  EXPECT_EQ(TableField(failed.out, "state"), "EXECUTED");  // printed before the error
  EXPECT_THAT(TableField(failed.out, "result"), StartsWith("FAILED_PRECONDITION: "));
}

TEST_F(ClavisctlApprovalTest, ApprovalFailuresHaveTheirExitCodes) {
  const std::string key = MakeGuardedKey("guarded-fail");
  const std::string missing = "tenants/cli/approvals/ar-0123456789abcdef01234567";
  EXPECT_TRUE(FailedWith(Cli("approval get " + missing), kExitNotFound,
                         "approval request " + missing + " not found"));
  EXPECT_TRUE(FailedWith(Cli("approval approve " + missing), kExitNotFound, "not found"));
  EXPECT_TRUE(
      FailedWith(Cli("approval get tenants/cli/approvals/nope"), kExitInvalidArgument,
                 "an approval request name looks like tenants/{tenant}/approvals/ar-{hex}"));
  EXPECT_TRUE(UsageError(Cli("approval get"), "name is required"));
}

TEST_F(ClavisctlApprovalTest, ApprovalListOfAMissingKeyIsNotFound) {
  EXPECT_TRUE(FailedWith(Cli("approval list " + KeyName("nope")), kExitNotFound, "not found"));
  EXPECT_TRUE(FailedWith(Cli("approval list " + KeyName("nope") + " --all --json"), kExitNotFound,
                         "not found"));
  // To a principal without rights it looks like any refused key.
  EXPECT_TRUE(
      FailedWith(Cli("approval list " + KeyName("nope"), App()), kExitPermissionDenied, "denied"));
}

TEST_F(ClavisctlApprovalTest, DenyStopsTheRequestForGood) {
  const std::string key = MakeGuardedKey("denied");
  const std::string request = RequestDestruction(key);
  ASSERT_FALSE(request.empty());
  ASSERT_TRUE(Succeeded(Cli("approval approve " + request, Principal("ops2"))));

  EXPECT_TRUE(
      FailedWith(Cli("approval deny " + request, App()), kExitPermissionDenied, "ApproveRequest"));
  EXPECT_TRUE(FailedWith(Cli("approval deny " + request, Principal("admin", "globex")),
                         kExitPermissionDenied, "cross-tenant"));

  CliResult denied =
      Cli("approval deny " + request + " --reason 'change freeze until Monday'", Principal("ops3"));
  ASSERT_TRUE(Succeeded(denied));
  EXPECT_EQ(TableField(denied.out, "state"), "DENIED");
  EXPECT_EQ(TableField(denied.out, "denied by"), Principal("ops3"));
  EXPECT_EQ(TableField(denied.out, "reason"), "change freeze until Monday");
  EXPECT_THAT(denied.err, HasSubstr("denied; the ScheduleDestruction will not run"));

  // Final: the approval that would have reached the quorum is refused.
  EXPECT_TRUE(FailedWith(Cli("approval approve " + request, Principal("ops3")),
                         kExitFailedPrecondition, "was denied by " + Principal("ops3")));
  EXPECT_EQ(TableField(Cli("key get " + key).out, "state"), "ENABLED");
  EXPECT_TRUE(FailedWith(Cli("approval deny " + request, Principal("ops2")),
                         kExitFailedPrecondition, "is DENIED already"));

  CliResult json = Cli("approval get " + request + " --json");
  ASSERT_TRUE(Succeeded(json));
  Json got = ParseJson(json);
  EXPECT_EQ(got["state"], "APPROVAL_DENIED");
  EXPECT_EQ(got["deniedBy"], Principal("ops3"));
  EXPECT_EQ(got["denyReason"], "change freeze until Monday");
  EXPECT_TRUE(got.contains("denyTime"));
  CliResult all = Cli("approval list " + key + " --all");
  EXPECT_THAT(LinesStartingWith(all.out, request),
              ElementsAre(MatchesRegex(".* +1/2 +DENIED +[0-9T:Z-]+")));

  // The requester may withdraw their own request.
  const std::string second = RequestDestruction(key);
  ASSERT_FALSE(second.empty());
  CliResult withdrawn = Cli("approval deny " + second + " --json");
  ASSERT_TRUE(Succeeded(withdrawn));
  EXPECT_EQ(ParseJson(withdrawn)["deniedBy"], Admin());
  EXPECT_EQ(ParseJson(withdrawn)["denyReason"], "");

  EXPECT_TRUE(FailedWith(Cli("approval deny tenants/cli/approvals/ar-0123456789abcdef01234567"),
                         kExitNotFound, "not found"));
  EXPECT_TRUE(UsageError(Cli("approval deny"), "name is required"));
}

// ---- whoami ----

TEST_F(ClavisctlAccessTest, WhoAmINamesTheCallerAndTheMethod) {
  CliResult json = Cli("whoami --json");
  ASSERT_TRUE(Succeeded(json));
  Json who = ParseJson(json);
  EXPECT_EQ(who["principal"], Admin());
  EXPECT_EQ(who["groups"], Json::array());
  EXPECT_EQ(who["method"], "mtls");
  EXPECT_THAT(who["peer"].get<std::string>(), StartsWith("ipv4:127.0.0.1:"));
  // The version `clavisd --version` prints.
  CommandResult version = RunShell(absl::StrCat(CLAVISD_BINARY, " --version"));
  ASSERT_EQ(version.exit_code, 0);
  EXPECT_EQ(absl::StrCat("clavisd ", who["serverVersion"].get<std::string>(), "\n"), version.out);

  CliResult human = Cli("whoami", App());
  ASSERT_TRUE(Succeeded(human));
  EXPECT_EQ(TableField(human.out, "principal"), App());
  EXPECT_EQ(TableField(human.out, "groups"), "-");
  EXPECT_EQ(TableField(human.out, "method"), "mtls");
  EXPECT_EQ(TableField(human.out, "server version"), who["serverVersion"]);

  // TLS without a client certificate or token: unauthenticated.
  EXPECT_TRUE(FailedWith(RunCli(absl::StrCat("--endpoint localhost:", clavisd_->port(),
                                             " --ca-cert ", clavisd_->ca_cert_file(), " whoami")),
                         kExitPermissionDenied, "no credentials"));
  // Nothing listens on port 1.
  CliResult down =
      RunCli("--endpoint 127.0.0.1:1 --ca-cert " + clavisd_->ca_cert_file() + " whoami");
  EXPECT_TRUE(FailedWith(down, kExitUnavailable, "is clavisd running on 127.0.0.1:1?"));
  const std::string prefix = clavisd_->client_cert_prefix(Admin());
  EXPECT_TRUE(UsageError(RunCli("--endpoint localhost:1 --ca-cert " + clavisd_->ca_cert_file() +
                                " --cert " + prefix + ".crt whoami"),
                         "--cert and --key go together"));
  EXPECT_TRUE(UsageError(Cli("whoami extra"), "extra"));
}

// ---- pki: certificates clavisd then accepts ----

TEST_F(ClavisctlAccessTest, PkiIssuesCertificatesThatClavisdAccepts) {
  const std::string ca = Path("ca");
  CliResult init = RunCli("pki init-ca --out " + ca + " --json");
  ASSERT_TRUE(Succeeded(init));
  Json made = ParseJson(init);
  EXPECT_EQ(made["certificateFile"], ca + "/ca.crt");
  EXPECT_EQ(made["privateKeyFile"], ca + "/ca.key");
  EXPECT_EQ(made["subject"], "CN=Clavis CA");
  EXPECT_EQ(made["isCa"], true);
  EXPECT_THAT(made["serial"].get<std::string>(), MatchesRegex("[0-9A-F]+"));
  struct stat st;
  ASSERT_EQ(::stat((ca + "/ca.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_TRUE(FailedWith(RunCli("pki init-ca --out " + ca), kExitAlreadyExists,
                         "already exists; use --force"));

  CliResult server = RunCli("pki issue-server --ca " + ca + " --out " + ca +
                            "/server --dns kms.internal --ip 10.0.0.5");
  ASSERT_TRUE(Succeeded(server));
  EXPECT_EQ(TableField(server.out, "certificate"), ca + "/server.crt");
  EXPECT_EQ(TableField(server.out, "dns names"), "kms.internal");
  EXPECT_EQ(TableField(server.out, "ip addresses"), "10.0.0.5");
  EXPECT_EQ(TableField(server.out, "issuer"), "CN=Clavis CA");
  EXPECT_THAT(server.out, Not(HasSubstr("PRIVATE KEY")));
  EXPECT_TRUE(
      UsageError(RunCli("pki issue-server --ca " + ca + " --out " + ca + "/bad --ip 999.1.1.1"),
                 "is not an IPv4 or IPv6 address"));

  // A client certificate from the CA clavisd trusts (the harness's) names
  // the caller and its group.
  const std::string viewer = Principal("viewer");
  CliResult client =
      RunCli(absl::StrCat("pki issue-client --ca ", clavisd_->pki_dir(), " --principal ", viewer,
                          " --group tenants/cli/groups/readers --out ", Path("viewer"), " --json"));
  ASSERT_TRUE(Succeeded(client));
  Json issued = ParseJson(client);
  EXPECT_EQ(issued["subject"], "CN=" + viewer);
  EXPECT_EQ(issued["uris"],
            Json::array({"clavis:" + viewer, "clavis-group:tenants/cli/groups/readers"}));
  EXPECT_EQ(issued["isCa"], false);
  CliResult who = RunCli(absl::StrCat("--endpoint localhost:", clavisd_->port(), " --ca-cert ",
                                      clavisd_->ca_cert_file(), " --cert ", Path("viewer.crt"),
                                      " --key ", Path("viewer.key"), " whoami --json"));
  ASSERT_TRUE(Succeeded(who));
  EXPECT_EQ(ParseJson(who)["principal"], viewer);
  EXPECT_EQ(ParseJson(who)["groups"], Json::array({"tenants/cli/groups/readers"}));

  // A certificate of another CA is refused by clavisd's handshake
  // (documented as UNAVAILABLE, with a hint).
  ASSERT_TRUE(Succeeded(RunCli("pki issue-client --ca " + ca + " --principal " + viewer +
                               " --out " + Path("stranger"))));
  CliResult stranger = RunCli(absl::StrCat(
      "--endpoint localhost:", clavisd_->port(), " --ca-cert ", clavisd_->ca_cert_file(),
      " --cert ", Path("stranger.crt"), " --key ", Path("stranger.key"), " whoami"));
  EXPECT_TRUE(FailedWith(stranger, kExitUnavailable, "or the TLS handshake failed"));

  EXPECT_TRUE(
      UsageError(RunCli("pki issue-client --ca " + ca + " --principal bogus --out " + Path("x")),
                 "\"bogus\" is not tenants/{tenant}/principals/{id}"));
  EXPECT_TRUE(UsageError(RunCli("pki issue-client --ca " + Path("no-ca") + " --principal " +
                                viewer + " --out " + Path("x")),
                         "--ca " + Path("no-ca")));
  EXPECT_TRUE(UsageError(RunCli("pki issue-client --ca " + ca + " --principal " + viewer +
                                " --group tenants/other/groups/g --out " + Path("x")),
                         "is of another tenant"));
}

// ---- token: service tokens clavisd then accepts ----

TEST_F(ClavisctlAccessTest, TokenKeygenAndIssueMakeTokensClavisdAccepts) {
  CliResult keygen = RunCli("token keygen --out " + Path("issuer") + " --key-id ops-2026 --json");
  ASSERT_TRUE(Succeeded(keygen));
  Json made = ParseJson(keygen);
  EXPECT_EQ(made["keyId"], "ops-2026");
  EXPECT_EQ(made["seedFile"], Path("issuer") + ".seed");
  EXPECT_EQ(Base64Decoded(made["publicKey"]).size(), 32u);
  struct stat st;
  ASSERT_EQ(::stat((Path("issuer") + ".seed").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  CliResult line = RunCli("token keygen --out " + Path("issuer2") + " --key-id ops-2027");
  ASSERT_TRUE(Succeeded(line));
  EXPECT_THAT(line.out, MatchesRegex("ops-2027 [A-Za-z0-9+/]{43}=\n"));  // the issuers-file line
  EXPECT_TRUE(FailedWith(RunCli("token keygen --out " + Path("issuer") + " --key-id ops-2026"),
                         kExitAlreadyExists, "already exists; use --force"));
  EXPECT_TRUE(UsageError(RunCli("token keygen --out " + Path("x") + " --key-id 'a b'"),
                         "--key-id must be 1-64 of"));

  // Signed with the issuer key clavisd trusts (the harness's).
  const std::string seed = Path("trusted.seed");
  WriteTestFile(seed, ReadTestFile(clavisd_->pki_dir() + "/issuer.seed"));
  ASSERT_EQ(::chmod(seed.c_str(), 0600), 0);
  const std::string issue = absl::StrCat("token issue --issuer-seed ", seed,
                                         " --key-id test-issuer --audience clavis-test ");
  CliResult issued = RunCli(issue + "--principal " + App() +
                            " --ttl 10m --token-id t-cli-1 --out " + Path("app.token") + " --json");
  ASSERT_TRUE(Succeeded(issued));
  Json claims = ParseJson(issued);
  EXPECT_EQ(claims["tokenId"], "t-cli-1");
  EXPECT_EQ(claims["principal"], App());
  EXPECT_EQ(claims["audience"], "clavis-test");
  EXPECT_EQ(claims["tokenFile"], Path("app.token"));
  EXPECT_THAT(claims["expiresAt"].get<std::string>(), MatchesRegex("[0-9T:-]+Z"));
  EXPECT_FALSE(claims.contains("token"));  // it went to the file
  ASSERT_EQ(::stat(Path("app.token").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  CliResult who = CliWithToken("whoami --json", Path("app.token"));
  ASSERT_TRUE(Succeeded(who));
  EXPECT_EQ(ParseJson(who)["principal"], App());
  EXPECT_EQ(ParseJson(who)["method"], "token");

  CliResult human = RunCli(issue + "--principal " + App() + " --out " + Path("app2.token"));
  ASSERT_TRUE(Succeeded(human));
  EXPECT_EQ(TableField(human.out, "token file"), Path("app2.token") + " (mode 0600)");
  EXPECT_EQ(TableField(human.out, "principal"), App());
  CliResult printed = RunCli(issue + "--principal " + App());
  printed.secret = true;
  ASSERT_TRUE(Succeeded(printed));
  EXPECT_THAT(printed.out, StartsWith("clavis-token.v1."));
  EXPECT_EQ(printed.out.find('\n'), printed.out.size() - 1) << "only the token on stdout";

  // Tokens clavisd does not accept: another issuer, another audience.
  ASSERT_TRUE(Succeeded(RunCli("token issue --issuer-seed " + Path("issuer.seed") +
                               " --key-id ops-2026 --audience clavis-test --principal " + App() +
                               " --out " + Path("stranger.token"))));
  EXPECT_TRUE(FailedWith(CliWithToken("whoami", Path("stranger.token")), kExitPermissionDenied,
                         "unknown token issuer key \"ops-2026\""));
  ASSERT_TRUE(Succeeded(RunCli("token issue --issuer-seed " + seed +
                               " --key-id test-issuer --audience elsewhere --principal " + App() +
                               " --out " + Path("elsewhere.token"))));
  EXPECT_TRUE(FailedWith(CliWithToken("whoami", Path("elsewhere.token")), kExitPermissionDenied,
                         "audience \"elsewhere\""));

  EXPECT_TRUE(FailedWith(RunCli(issue + "--principal " + App() + " --out " + Path("app.token")),
                         kExitAlreadyExists, "already exists; use --force"));
  EXPECT_TRUE(UsageError(RunCli(issue + "--principal " + App() + " --ttl 0s"),
                         "--ttl must be longer than 0s"));
  EXPECT_TRUE(UsageError(RunCli("token issue --issuer-seed " + clavisd_->ca_cert_file() +
                                " --key-id test-issuer --audience a --principal " + App()),
                         "does not hold an issuer seed"));
  EXPECT_TRUE(UsageError(RunCli(issue + "--principal tenants/cli/groups/g"), "is a group"));
  EXPECT_TRUE(UsageError(RunCli(issue), "--principal is required"));
}

// ---- audit, on clavisd's own audit directory ----

TEST_F(ClavisctlAccessTest, AuditReadsTheServersLog) {
  const std::string key = MakeAppKey("audited");
  CliResult dk = AsApp("datakey " + key + " --segment acme/audited");
  ASSERT_TRUE(Succeeded(dk));
  ASSERT_EQ(Cli("key rotate " + key, App()).exit_code, kExitPermissionDenied);
  const std::string dir = suite_dir_->path() + "/data/audit";

  CliResult tail = RunCli("audit tail --dir " + dir + " -n 2");
  ASSERT_TRUE(Succeeded(tail));
  const std::vector<std::string> lines = LinesStartingWith(tail.out, "20");
  ASSERT_THAT(lines, SizeIs(2)) << tail;
  EXPECT_THAT(lines[0], MatchesRegex("[0-9-]+T[0-9:.]+Z #[0-9]+ call " + App() +
                                     " GenerateDataKey " + key + " segment=acme/audited OK .*"));
  EXPECT_THAT(lines[1], HasSubstr(" call " + App() + " Rotate " + key +
                                  " PERMISSION_DENIED: denied: no statement allows Rotate"));
  CliResult tail_json = RunCli("audit tail --dir " + dir + " -n 1 --json");
  ASSERT_TRUE(Succeeded(tail_json));
  std::vector<Json> last = ParseJsonLines(tail_json);
  ASSERT_THAT(last, SizeIs(1));
  EXPECT_EQ(last[0]["kind"], "call");
  EXPECT_EQ(last[0]["action"], "Rotate");
  EXPECT_EQ(last[0]["result"]["code"], "PERMISSION_DENIED");

  CliResult query = RunCli("audit query --dir " + dir + " --principal " + App() + " --key " + key +
                           " --action GenerateDataKey --json");
  ASSERT_TRUE(Succeeded(query));
  std::vector<Json> found = ParseJsonLines(query);
  ASSERT_THAT(found, SizeIs(1));
  EXPECT_EQ(found[0]["principal"], App());
  EXPECT_EQ(found[0]["resource"], key);
  EXPECT_EQ(found[0]["segment"], "acme/audited");
  EXPECT_EQ(found[0]["result"]["code"], "OK");
  EXPECT_FALSE(found[0]["request_id"].get<std::string>().empty());
  CliResult by_key = RunCli("audit query --dir " + dir + " --key " + key);
  ASSERT_TRUE(Succeeded(by_key));
  EXPECT_THAT(LinesStartingWith(by_key.out, "20"), SizeIs(3));  // create, datakey, rotate
  CliResult limited = RunCli("audit query --dir " + dir + " --key " + key + " --limit 1");
  ASSERT_TRUE(Succeeded(limited));
  EXPECT_THAT(LinesStartingWith(limited.out, "20"),
              ElementsAre(HasSubstr(" CreateKey " + key + " OK")));
  CliResult future = RunCli("audit query --dir " + dir + " --since 2999-01-01T00:00:00Z");
  ASSERT_TRUE(Succeeded(future));
  EXPECT_THAT(future.out, IsEmpty());
  EXPECT_THAT(future.err, HasSubstr("no matching records"));

  CliResult exported = RunCli("audit export --dir " + dir + " --key " + key);
  ASSERT_TRUE(Succeeded(exported));
  std::vector<Json> records = ParseJsonLines(exported);
  ASSERT_THAT(records, SizeIs(3));
  EXPECT_EQ(records[0]["action"], "CreateKey");
  EXPECT_LT(records[0]["sequence"].get<int64_t>(), records[2]["sequence"].get<int64_t>());

  // clavisd is still running: the tail after the last checkpoint is not
  // signed yet, which verify reports with exit 4.
  const std::string verify = "audit verify --dir " + dir + " --public-key-file " +
                             suite_dir_->path() + "/data/audit-signing.pub";
  CliResult open = RunCli(verify + " --json");
  EXPECT_TRUE(FailedWith(open, kExitFailedPrecondition, "does not end with a closing checkpoint"));
  Json report = ParseJson(open);
  EXPECT_EQ(report["ok"], false);
  EXPECT_EQ(report["tampered"], false);
  EXPECT_EQ(report["cleanlyClosed"], false);
  EXPECT_GE(report["records"].get<int64_t>(), 3);
  EXPECT_GT(report["unverifiedTailRecords"].get<int64_t>(), 0);

  EXPECT_TRUE(UsageError(RunCli("audit tail"), "--dir is required"));
  EXPECT_TRUE(
      UsageError(RunCli("audit tail --dir " + Path("none")), "cannot open audit log directory"));
  EXPECT_TRUE(UsageError(RunCli("audit tail --dir " + dir + " -n 0"),
                         "--lines: must be a whole number of at least 1, not \"0\""));
  EXPECT_TRUE(UsageError(RunCli("audit query --dir " + dir + " --since yesterday"), "bad time"));
  EXPECT_TRUE(UsageError(RunCli("audit query --dir " + dir + " --limit 0"),
                         "--limit: must be a whole number of at least 1"));
  EXPECT_TRUE(
      UsageError(RunCli("audit export --dir " + Path("none")), "cannot open audit log directory"));
  EXPECT_TRUE(UsageError(RunCli("audit verify --dir " + dir),
                         "give exactly one of --public-key and --public-key-file"));
  EXPECT_TRUE(UsageError(RunCli("audit verify --dir " + dir + " --public-key AAAA"),
                         "the public key must be the base64 of 32 bytes"));
}

// A clavisd of its own, stopped cleanly: its log verifies.
class ClavisctlAuditVerifyTest : public ClavisctlAccessTest {};

TEST_F(ClavisctlAuditVerifyTest, VerifyPassesAClosedLogAndCatchesAWrongKey) {
  ASSERT_TRUE(Succeeded(Cli("key create " + KeyName("closed"))));
  const std::string data = suite_dir_->path() + "/data";
  const std::string pinned = ReadTestFile(data + "/audit-signing.pub");
  absl::Status stopped = clavisd_->Stop();
  ASSERT_TRUE(stopped.ok()) << stopped;

  const std::string verify = "audit verify --dir " + data + "/audit ";
  CliResult clean = RunCli(verify + "--public-key-file " + data + "/audit-signing.pub");
  ASSERT_TRUE(Succeeded(clean));
  EXPECT_THAT(clean.out, MatchesRegex("OK: [0-9]+ records \\([0-9]+ checkpoints\\) in 1 files, "
                                      "last sequence [0-9]+, closed cleanly\n"));
  CliResult json = RunCli(verify + "--public-key " +
                          std::string(absl::StripAsciiWhitespace(pinned)) + " --json");
  ASSERT_TRUE(Succeeded(json));
  Json report = ParseJson(json);
  EXPECT_EQ(report["ok"], true);
  EXPECT_EQ(report["cleanlyClosed"], true);
  EXPECT_EQ(report["tampered"], false);
  EXPECT_EQ(report["files"], 1);
  EXPECT_EQ(report["unverifiedTailRecords"], 0);
  EXPECT_EQ(report["records"], report["lastSequence"]);

  // Another signing key: the log is not vouched for (DATA_LOSS, exit 1).
  CliResult wrong = RunCli(verify + "--public-key " + absl::Base64Escape(std::string(32, '\0')));
  EXPECT_TRUE(FailedWith(wrong, kExitGeneric, "the audit log was changed or damaged"));
  EXPECT_THAT(wrong.out, HasSubstr("wrong signing key"));
}

// ---- escrow: usage errors (escrow_test.cc covers the export) ----

TEST_F(ClavisctlAccessTest, EscrowExportRefusesWrongUsage) {
  const std::string key = MakeAppKey("escrowed");
  EXPECT_TRUE(UsageError(Cli("escrow export " + key), "--out is required"));
  WriteTestFile(Path("bundle.jsonl"), "keep me");
  EXPECT_TRUE(UsageError(Cli("escrow export " + key + " --out " + Path("bundle.jsonl")),
                         "exists; remove it or pass --force"));
  EXPECT_EQ(ReadTestFile(Path("bundle.jsonl")), "keep me");
  EXPECT_TRUE(UsageError(Cli("escrow export " + key + " --out " + Path("no/such/dir/b.jsonl")),
                         "cannot write"));
  // A generated key has no escrow; nothing is left behind.
  EXPECT_TRUE(FailedWith(Cli("escrow export " + key + " --out " + Path("new.jsonl")),
                         kExitFailedPrecondition, "has origin GENERATED"));
  struct stat st;
  EXPECT_NE(::stat(Path("new.jsonl").c_str(), &st), 0);
  EXPECT_NE(::stat(Path("new.jsonl.partial").c_str(), &st), 0);
}

// ---- principals without permission: exit 6 ----

TEST_F(ClavisctlAccessTest, PrincipalsWithoutPermissionAreRefused) {
  const std::string key = MakeAppKey("guarded-by-policy");
  const std::string segment = key + "/segments/s1";
  ASSERT_TRUE(Succeeded(Cli("segment create " + segment)));
  CliResult sealed = AsApp("encrypt " + key + " --segment s1", "secret");
  ASSERT_TRUE(Succeeded(sealed));
  const std::string blob = std::string(absl::StripTrailingAsciiWhitespace(sealed.out));
  WriteTestFile(Path("policy.json"), ParseJson(Cli("policy get " + key)).dump());

  struct Refusal {
    std::string principal;
    std::string args;
    std::string phrase;
  };
  const std::string outsider = Principal("outsider");
  const std::vector<Refusal> refusals = {
      // Not a tenant administrator, and in no statement of the policy.
      {outsider, "key create " + KeyName("by-outsider"), "only the tenant's administrators may"},
      {outsider, "key list tenants/cli", "may not ListKeys on tenants/cli"},
      {outsider, "key get " + key, "no statement allows GetKey for " + outsider},
      {outsider, "key usage " + key, "no statement allows GetKey"},
      {outsider, "segment list " + key, "no statement allows ListSegments"},
      {outsider, "segment get " + segment, "no statement allows GetSegment"},
      {outsider, "policy get " + key, "no statement allows GetPolicy"},
      {outsider, "policy simulate " + key + " --principal " + App() + " --action Decrypt",
       "no statement allows GetPolicy"},
      {outsider, "approval list " + key, "no statement allows GetPolicy"},
      {outsider, "decrypt --blob-base64 " + blob, "Decrypt"},
      // A key user may use the key, not administer it.
      {App(), "key rotate " + key, "no statement allows Rotate for " + App()},
      {App(), "key disable " + key, "no statement allows Disable"},
      {App(), "key schedule-destroy " + key, "no statement allows ScheduleDestruction"},
      {App(), "key set-rotation " + key + " --period 1d", "no statement allows UpdateSettings"},
      {App(), "key rewrap " + key, "no statement allows RewrapSegments"},
      {App(), "key version disable " + key + "/versions/1", "no statement allows ManageVersions"},
      {App(), "segment create " + key + "/segments/s2", "no statement allows CreateSegment"},
      {App(), "segment revoke " + segment, "no statement allows RevokeSegment"},
      {App(), "segment schedule-destroy " + segment, "no statement allows"},
      {App(), "policy set " + key + " --file " + Path("policy.json"),
       "no statement allows SetPolicy"},
      // Separation of duties: the administrator may not use the key.
      {Admin(), "datakey " + key + " --segment s1", "no statement allows GenerateDataKey"},
      {Admin(), "encrypt " + key + " --segment s1 --plaintext-file " + Path("policy.json"),
       "no statement allows Encrypt"},
      {Admin(), "decrypt --blob-base64 " + blob, "no statement allows Decrypt"},
      // Another tenant's administrator.
      {Principal("admin", "globex"), "key get " + key, "cross-tenant access is never allowed"},
      {Principal("admin", "globex"), "key list tenants/cli", "cross-tenant"},
  };
  for (const Refusal& r : refusals) {
    CliResult refused = Cli(r.args, r.principal);
    refused.secret = true;  // a wrongly allowed datakey would print a key
    EXPECT_TRUE(FailedWith(refused, kExitPermissionDenied, r.phrase))
        << r.principal << ": clavisctl " << r.args;
    EXPECT_THAT(refused.out, IsEmpty()) << r.args;
  }
  // Nothing was changed by the refused calls.
  CliResult after = Cli("key get " + key + " --json");
  Json json = ParseJson(after);
  EXPECT_EQ(json["state"], "ENABLED");
  EXPECT_EQ(json["primaryVersion"], 1);

  // The same through a service token.
  const std::string seed = Path("trusted.seed");
  WriteTestFile(seed, ReadTestFile(clavisd_->pki_dir() + "/issuer.seed"));
  ASSERT_EQ(::chmod(seed.c_str(), 0600), 0);
  ASSERT_TRUE(Succeeded(RunCli("token issue --issuer-seed " + seed +
                               " --key-id test-issuer --audience clavis-test --principal " +
                               outsider + " --out " + Path("outsider.token"))));
  EXPECT_TRUE(FailedWith(CliWithToken("key get " + key, Path("outsider.token")),
                         kExitPermissionDenied, "no statement allows GetKey for " + outsider));
}

}  // namespace
}  // namespace clavis::testing
