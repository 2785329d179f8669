// Unit tests of clavisctl's output: tables, the human-readable resource
// views, and --json.
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tools/clavisctl/access_format.h"
#include "tools/clavisctl/json_output.h"
#include "tools/clavisctl/resource_format.h"
#include "tools/clavisctl/table.h"

namespace clavis::clavisctl {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

clavis::v1::Key SampleKey() {
  clavis::v1::Key key;
  key.set_name("tenants/acme/keys/main");
  key.set_state(clavis::v1::ENABLED);
  key.set_origin(clavis::v1::GENERATED);
  key.set_description("orders KEK");
  (*key.mutable_labels())["team"] = "payments";
  (*key.mutable_labels())["env"] = "prod";
  key.mutable_create_time()->set_seconds(1'796'083'200);  // 2026-12-01T00:00:00Z
  key.set_primary_version(2);
  key.mutable_rotation_period()->set_seconds(90 * 86400);
  for (uint32_t n : {1u, 2u}) {
    clavis::v1::KeyVersion* v = key.add_versions();
    v->set_name("tenants/acme/keys/main/versions/" + std::to_string(n));
    v->set_version(n);
    v->set_state(n == 1 ? clavis::v1::DISABLED : clavis::v1::ENABLED);
    v->mutable_create_time()->set_seconds(1'796'083'200 + n);
    v->set_key_check_value(n == 1 ? "0011223344556677" : "8899aabbccddeeff");
  }
  return key;
}

TEST(FormatTableTest, AlignsColumns) {
  EXPECT_EQ(FormatTable({{"NAME", "STATE"}, {"a", "ENABLED"}, {"longer", "X"}}),
            "NAME    STATE\n"
            "a       ENABLED\n"
            "longer  X\n");
}

TEST(FormatTableTest, NoTrailingBlanksAndRaggedRows) {
  EXPECT_EQ(FormatTable({{"a", ""}, {"bbb"}}), "a\nbbb\n");
}

TEST(FormatTableTest, CountsUtf8CodePoints) {
  EXPECT_EQ(FormatTable({{"\xc3\xa9t\xc3\xa9", "x"}, {"abc", "y"}}),
            "\xc3\xa9t\xc3\xa9  x\n"
            "abc  y\n");
}

TEST(TerminalSafeTest, EscapesControlCharacters) {
  EXPECT_EQ(TerminalSafe("ok\x1b[31mred\n"), "ok\\x1b[31mred\\n");
  EXPECT_EQ(TerminalSafe("caf\xc3\xa9"), "caf\xc3\xa9");
}

TEST(FormatTimestampTest, Rfc3339OrDash) {
  google::protobuf::Timestamp t;
  EXPECT_EQ(FormatTimestamp(t), "-");
  t.set_seconds(1'796'083'200);
  EXPECT_EQ(FormatTimestamp(t), "2026-12-01T00:00:00Z");
}

TEST(FormatPeriodTest, NoneWhenZero) {
  google::protobuf::Duration d;
  EXPECT_EQ(FormatPeriod(d), "none");
  d.set_seconds(5400);
  EXPECT_EQ(FormatPeriod(d), "1h30m");
}

TEST(FormatKeyTest, FieldsAndOneRowPerVersion) {
  const std::string text = FormatKey(SampleKey());
  EXPECT_THAT(text, HasSubstr("name               tenants/acme/keys/main\n"));
  EXPECT_THAT(text, HasSubstr("state              ENABLED\n"));
  EXPECT_THAT(text, HasSubstr("labels             env=prod, team=payments\n"));  // sorted
  EXPECT_THAT(text, HasSubstr("rotation period    90d\n"));
  EXPECT_THAT(text, HasSubstr("next rotation      -\n"));
  EXPECT_THAT(text, HasSubstr("VERSION      STATE     CREATED               KEY CHECK VALUE\n"));
  EXPECT_THAT(text, HasSubstr("1            DISABLED  2026-12-01T00:00:01Z  0011223344556677\n"));
  EXPECT_THAT(text, HasSubstr("2 (primary)  ENABLED   2026-12-01T00:00:02Z  8899aabbccddeeff\n"));
  EXPECT_THAT(text, Not(HasSubstr("DESTROY")));
}

TEST(FormatKeyTest, ShowsDestroyTimesWhenPending) {
  clavis::v1::Key key = SampleKey();
  key.mutable_versions(0)->set_state(clavis::v1::PENDING_DESTRUCTION);
  key.mutable_versions(0)->mutable_destroy_time()->set_seconds(1'798'675'200);
  const std::string text = FormatKey(key);
  EXPECT_THAT(text, HasSubstr("DESTROY TIME"));
  EXPECT_THAT(text, HasSubstr("PENDING_DESTRUCTION  2026-12-01T00:00:01Z  2026-12-31T00:00:00Z"));
}

TEST(FormatKeyListTest, OneRowPerKey) {
  google::protobuf::RepeatedPtrField<clavis::v1::Key> keys;
  *keys.Add() = SampleKey();
  EXPECT_EQ(FormatKeyList(keys),
            "NAME                    STATE    PRIMARY  ROTATION  CREATED\n"
            "tenants/acme/keys/main  ENABLED  2        90d       2026-12-01T00:00:00Z\n");
}

TEST(FormatSegmentTest, FieldsAndVersions) {
  clavis::v1::Segment s;
  s.set_name("tenants/acme/keys/main/segments/acme/orders/2026-11");
  s.set_segment("acme/orders/2026-11");
  s.set_state(clavis::v1::DISABLED);
  s.set_primary_version(1);
  clavis::v1::SegmentVersion* v = s.add_versions();
  v->set_version(1);
  v->set_wrapped_under_key_version(2);
  const std::string text = FormatSegment(s);
  EXPECT_THAT(text, HasSubstr("segment          acme/orders/2026-11\n"));
  EXPECT_THAT(text, HasSubstr("state            DISABLED\n"));
  EXPECT_THAT(text, HasSubstr("1 (primary)  2                          -\n"));

  google::protobuf::RepeatedPtrField<clavis::v1::Segment> list;
  *list.Add() = s;
  EXPECT_THAT(FormatSegmentList(list), HasSubstr("acme/orders/2026-11  DISABLED  1        -\n"));
}

TEST(FormatStateTest, UnknownValuesStillPrint) {
  EXPECT_EQ(FormatState(clavis::v1::PENDING_IMPORT), "PENDING_IMPORT");
  EXPECT_EQ(FormatState(static_cast<clavis::v1::KeyState>(42)), "STATE_42");
}

TEST(ToJsonTest, CamelCaseWithDefaultsAndNewline) {
  clavis::v1::Key key = SampleKey();
  const std::string json = *ToJson(key);
  EXPECT_THAT(json, HasSubstr("\"name\": \"tenants/acme/keys/main\""));
  EXPECT_THAT(json, HasSubstr("\"primaryVersion\": 2"));
  EXPECT_THAT(json, HasSubstr("\"rotationPeriod\": \"7776000s\""));
  EXPECT_THAT(json, HasSubstr("\"requireExplicitSegments\": false"));
  EXPECT_EQ(json.back(), '\n');
}

TEST(IndentJsonTest, IndentsKeepingOrderAndStrings) {
  EXPECT_EQ(IndentJson(R"({"b":1,"a":[true,null,"x, {y}: \"z\""],"e":{},"f":[ ]})"),
            "{\n"
            "  \"b\": 1,\n"
            "  \"a\": [\n"
            "    true,\n"
            "    null,\n"
            "    \"x, {y}: \\\"z\\\"\"\n"
            "  ],\n"
            "  \"e\": {},\n"
            "  \"f\": []\n"
            "}\n");
}

TEST(IndentJsonTest, ReindentsAlreadyIndentedText) {
  EXPECT_EQ(IndentJson("{\n    \"a\" :  [ 1 ,2 ]\n}\n"), "{\n  \"a\": [\n    1,\n    2\n  ]\n}\n");
}

TEST(IndentJsonTest, EscapesControlCharactersInStrings) {
  EXPECT_EQ(IndentJson(std::string("[\"a\x1b[2Jb\"]")), "[\n  \"a\\u001b[2Jb\"\n]\n");
}

TEST(IndentJsonTest, MalformedTextComesBackTerminalSafe) {
  EXPECT_EQ(IndentJson("{\"a\": [1}"), "{\"a\": [1}\n");
  EXPECT_EQ(IndentJson("{\"open"), "{\"open\n");
  EXPECT_EQ(IndentJson("not json\x1b"), "not json\\x1b\n");
  EXPECT_EQ(IndentJson(""), "\n");
}

clavis::v1::ApprovalRequest SampleApproval() {
  clavis::v1::ApprovalRequest r;
  r.set_name("tenants/acme/approvals/ar-1");
  r.set_key("tenants/acme/keys/crm");
  r.set_action("SetPolicy");
  r.set_resource("tenants/acme/keys/crm");
  r.set_requester("tenants/acme/principals/admin");
  r.add_approvers("tenants/acme/principals/ops2");
  r.add_approvers("tenants/acme/principals/ops3");
  r.set_approvals_required(2);
  r.set_state(clavis::v1::APPROVAL_EXECUTED);
  r.mutable_expire_time()->set_seconds(1'796'083'200);
  r.set_result_code(9);
  r.set_result_message("key is DESTROYED");
  return r;
}

TEST(AccessFormatTest, ApprovalRequest) {
  const std::string out = FormatApprovalRequest(SampleApproval());
  EXPECT_THAT(out, HasSubstr("approvals  2/2\n"));
  EXPECT_THAT(out,
              HasSubstr("approvers  tenants/acme/principals/ops2, tenants/acme/principals/ops3\n"));
  EXPECT_THAT(out, HasSubstr("state      EXECUTED\n"));
  EXPECT_THAT(out, HasSubstr("created    -\n"));
  EXPECT_THAT(out, HasSubstr("expires    2026-12-01T00:00:00Z\n"));
  EXPECT_THAT(out, HasSubstr("result     FAILED_PRECONDITION: key is DESTROYED\n"));
}

TEST(AccessFormatTest, ApprovalStates) {
  EXPECT_EQ(FormatApprovalState(clavis::v1::APPROVAL_PENDING), "PENDING");
  EXPECT_EQ(FormatApprovalState(clavis::v1::APPROVAL_EXPIRED), "EXPIRED");
  EXPECT_EQ(FormatApprovalState(static_cast<clavis::v1::ApprovalState>(42)), "STATE_42");
}

TEST(AccessFormatTest, SimulationAndWhoAmI) {
  clavis::v1::SimulatePolicyResponse deny;
  deny.set_reason("denied by statement 3");
  deny.set_statement_index(3);
  EXPECT_EQ(FormatSimulation(deny), "DENY\nreason     denied by statement 3\nstatement  3\n");
  clavis::v1::WhoAmIResponse me;
  me.set_principal("insecure-dev:anonymous");
  me.set_method("insecure-dev");
  EXPECT_EQ(FormatWhoAmI(me),
            "principal  insecure-dev:anonymous\ngroups     -\nmethod     insecure-dev\n"
            "peer       -\n");
}

TEST(ResourceFormatTest, KeyShowsApprovalsOnlyWhenSet) {
  clavis::v1::Key key = SampleKey();
  EXPECT_THAT(FormatKey(key), Not(HasSubstr("approvals")));
  key.set_approvals_required(3);
  EXPECT_THAT(FormatKey(key), HasSubstr("approvals required  3\n"));
}

}  // namespace
}  // namespace clavis::clavisctl
