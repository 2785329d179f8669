#include "kms/policy/policy_parser.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace clavis::kms::policy {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

const PolicyScope kScope{"acme", "crm"};

// A statement with `body` spliced in after the required fields.
std::string Doc(const std::string& statements) {
  return absl::StrCat(R"({"version": "2026-11-01", "statements": [)", statements, "]}");
}
constexpr char kGood[] =
    R"({"effect": "Allow", "principals": ["tenants/acme/principals/a"], "actions": ["GetKey"]})";

TEST(PolicyParserTest, ParsesEveryField) {
  absl::StatusOr<Policy> policy = ParsePolicy(Doc(R"(
    {"sid": "billing", "effect": "Allow",
     "principals": ["tenants/acme/principals/billing-app", "tenants/acme/groups/billing"],
     "actions": ["Decrypt", "GenerateDataKey"],
     "conditions": {"segmentPrefixes": ["acme/billing/", "acme/invoices"],
                    "encryptionContext": {"table": "orders"},
                    "notBefore": "2026-11-01T00:00:00Z", "notAfter": "2027-01-01T00:00:00+01:00",
                    "dailyHoursUtc": {"startHour": 22, "endHour": 6}}},
    {"effect": "Deny", "principals": ["tenants/acme/principals/mallory"], "actions": ["Get*"]})"),
                                              kScope);
  ASSERT_TRUE(policy.ok()) << policy.status();
  ASSERT_EQ(policy->statements.size(), 2u);
  const Statement& s = policy->statements[0];
  EXPECT_EQ(s.sid, "billing");
  EXPECT_EQ(s.effect, Effect::kAllow);
  EXPECT_EQ(s.principals.size(), 2u);
  EXPECT_EQ(s.actions, ToSet(Action::kDecrypt) | ToSet(Action::kGenerateDataKey));
  EXPECT_EQ(s.conditions.segment_prefixes,
            (std::vector<std::string>{"acme/billing", "acme/invoices"}));
  EXPECT_EQ(s.conditions.encryption_context.at("table"), "orders");
  EXPECT_EQ(*s.conditions.not_after,
            absl::FromCivil(absl::CivilSecond(2026, 12, 31, 23, 0, 0), absl::UTCTimeZone()));
  EXPECT_EQ(s.conditions.daily_hours_utc->start_hour, 22);
  const Statement& deny = policy->statements[1];
  EXPECT_EQ(deny.actions,
            ToSet(Action::kGetKey) | ToSet(Action::kGetSegment) | ToSet(Action::kGetPolicy));
  EXPECT_FALSE(policy->allow_admin_and_data_to_same_principal);
}

TEST(PolicyParserTest, IntegerVersionOneIsAccepted) {
  EXPECT_TRUE(
      ParsePolicy(absl::StrCat(R"({"version": 1, "statements": [)", kGood, "]}"), kScope).ok());
}

TEST(PolicyParserTest, RoundTripsThroughJson) {
  absl::StatusOr<Policy> policy = ParsePolicy(Doc(R"(
    {"sid": "a", "effect": "Allow", "principals": ["tenants/acme/groups/g"],
     "actions": ["Decrypt"],
     "conditions": {"segmentPrefixes": ["acme/billing"], "encryptionContext": {"k": "v"},
                    "notBefore": "2026-11-01T00:00:00Z", "notAfter": "2026-12-01T00:00:00Z",
                    "dailyHoursUtc": {"startHour": 9, "endHour": 17}}},
    {"effect": "Deny", "principals": ["tenants/acme/principals/m"], "actions": ["*", "Destroy*"]})"),
                                              kScope);
  ASSERT_TRUE(policy.ok()) << policy.status();
  std::string json = PolicyToJson(*policy);
  absl::StatusOr<Policy> again = ParsePolicy(json, kScope);
  ASSERT_TRUE(again.ok()) << again.status() << "\n" << json;
  EXPECT_EQ(PolicyToJson(*again), json);
  EXPECT_EQ(again->statements[0].conditions.segment_prefixes[0], "acme/billing");
  EXPECT_EQ(again->statements[0].conditions.daily_hours_utc->end_hour, 17);
  EXPECT_EQ(again->statements[1].actions.count(), kNumActions);
}

struct BadDocument {
  std::string name;
  std::string json;
  std::string message;  // expected prefix of the error message
};

std::vector<BadDocument> BadDocuments() {
  std::string big_principals;
  for (int i = 0; i < 101; ++i) {
    absl::StrAppend(&big_principals, i ? "," : "", "\"tenants/acme/principals/p", i, "\"");
  }
  std::string many_statements;
  for (int i = 0; i < 101; ++i) absl::StrAppend(&many_statements, i ? "," : "", kGood);
  std::string oversize = Doc(absl::StrCat(R"({"sid": ")", std::string(33 * 1024, 'a'), R"("})"));
  return {
      {"truncated", R"({"version": "2026-11-01", "statements": [{"effect": "Al)",
       "document: not valid JSON"},
      {"empty", "", "document: not valid JSON"},
      {"not an object", R"([1, 2])", "document: must be an object, not an array"},
      {"oversize", oversize, "document: 33"},
      {"missing version", R"({"statements": []})", "version: required"},
      {"bad version", R"({"version": "2012-10-17", "statements": []})",
       "version: unsupported policy version"},
      {"version two", R"({"version": 2, "statements": []})", "version: unsupported"},
      {"unknown top field", R"({"version": 1, "Statement": []})",
       "\"Statement\": unknown field (allowed: version, statements, "
       "allowAdminAndDataToSamePrincipal)"},
      {"missing statements", R"({"version": 1})", "statements: required"},
      {"empty statements", Doc(""), "statements: must list at least one statement"},
      {"statements not array", R"({"version": 1, "statements": {}})",
       "statements: must be an array, not an object"},
      {"too many statements", Doc(many_statements),
       "statements: has 101 entries; the limit is 100"},
      {"statement not object", Doc(R"("Allow")"), "statements[0]: must be an object, not a string"},
      {"unknown statement field",
       Doc(absl::StrCat(kGood, R"(, {"effect": "Allow", "principals": ["tenants/acme/principals/a"],
           "actions": ["GetKey"], "condition": {}})")),
       "statements[1].\"condition\": unknown field"},
      {"bad effect", Doc(R"({"effect": "allow", "principals": [], "actions": []})"),
       "statements[0].effect: must be \"Allow\" or \"Deny\""},
      {"effect wrong type", Doc(R"({"effect": true})"),
       "statements[0].effect: must be \"Allow\" or \"Deny\""},
      {"missing effect", Doc(R"({"principals": ["tenants/acme/principals/a"]})"),
       "statements[0].effect: required"},
      {"unknown action", Doc(absl::StrCat(kGood, ",", kGood, R"(, {"effect": "Allow",
           "principals": ["tenants/acme/principals/a"], "actions": ["Encrypt", "Decrpyt"]})")),
       "statements[2].actions[1]: unknown action \"Decrpyt\" (did you mean \"Decrypt\"?)"},
      {"action wrong type",
       Doc(R"({"effect": "Allow", "principals": ["tenants/acme/principals/a"], "actions": [7]})"),
       "statements[0].actions[0]: must be a string, not a number"},
      {"actions empty",
       Doc(R"({"effect": "Allow", "principals": ["tenants/acme/principals/a"], "actions": []})"),
       "statements[0].actions: must list at least one action"},
      {"actions string",
       Doc(R"({"effect": "Allow", "principals": ["tenants/acme/principals/a"], "actions": "*"})"),
       "statements[0].actions: must be an array, not a string"},
      {"prefix in allow", Doc(R"({"effect": "Allow", "principals": ["tenants/acme/principals/a"],
               "actions": ["Get*"]})"),
       "statements[0].actions[0]: action prefix \"Get*\" is allowed only in Deny statements"},
      {"prefix matches nothing",
       Doc(R"({"effect": "Deny", "principals": ["tenants/acme/principals/a"],
               "actions": ["Frob*"]})"),
       "statements[0].actions[0]: action prefix \"Frob*\" matches no action"},
      {"inner wildcard", Doc(R"({"effect": "Deny", "principals": ["tenants/acme/principals/a"],
               "actions": ["*Key"]})"),
       "statements[0].actions[0]: unknown action \"*Key\""},
      {"lowercase action", Doc(R"({"effect": "Deny", "principals": ["tenants/acme/principals/a"],
               "actions": ["decrypt"]})"),
       "statements[0].actions[0]: unknown action \"decrypt\" (did you mean \"Decrypt\"?)"},
      {"foreign tenant principal",
       Doc(R"({"effect": "Allow", "principals": ["tenants/acme/principals/a",
               "tenants/globex/principals/x"], "actions": ["GetKey"]})"),
       "statements[0].principals[1]: \"tenants/globex/principals/x\" belongs to tenant globex; a "
       "policy of tenants/acme/keys/crm may name only principals and groups of tenant acme"},
      {"foreign tenant group even in a deny",
       Doc(R"({"effect": "Deny", "principals": ["tenants/globex/groups/all"],
               "actions": ["*"]})"),
       "statements[0].principals[0]: \"tenants/globex/groups/all\" belongs to tenant globex"},
      {"malformed principal",
       Doc(R"({"effect": "Allow", "principals": ["acme/billing-app"], "actions": ["GetKey"]})"),
       "statements[0].principals[0]: \"acme/billing-app\" is not tenants/{tenant}/principals/{id}"},
      {"wildcard principal",
       Doc(R"({"effect": "Allow", "principals": ["*"], "actions": ["GetKey"]})"),
       "statements[0].principals[0]: \"*\" is not"},
      {"principal bad id", Doc(R"({"effect": "Allow", "principals": ["tenants/acme/principals/a b"],
               "actions": ["GetKey"]})"),
       "statements[0].principals[0]: principal id \"a b\" may contain only"},
      {"principals empty", Doc(R"({"effect": "Allow", "principals": [], "actions": ["GetKey"]})"),
       "statements[0].principals: must list at least one principal"},
      {"too many principals",
       Doc(absl::StrCat(R"({"effect": "Allow", "principals": [)", big_principals,
                        R"(], "actions": ["GetKey"]})")),
       "statements[0].principals: has 101 entries; the limit is 100"},
      {"sid wrong type",
       Doc(R"({"sid": 3, "effect": "Allow", "principals": ["tenants/acme/principals/a"],
               "actions": ["GetKey"]})"),
       "statements[0].sid: must be a string, not a number"},
      {"sid bad characters",
       Doc(R"({"sid": "a b", "effect": "Allow", "principals": ["tenants/acme/principals/a"],
               "actions": ["GetKey"]})"),
       "statements[0].sid: \"a b\" may contain only"},
      {"duplicate sid",
       Doc(R"({"sid": "x", "effect": "Allow", "principals": ["tenants/acme/principals/a"],
               "actions": ["GetKey"]},
              {"sid": "x", "effect": "Deny", "principals": ["tenants/acme/principals/a"],
               "actions": ["GetKey"]})"),
       "statements[1].sid: duplicate sid \"x\" (also statements[0])"},
      {"conditions not object",
       Doc(R"({"effect": "Allow", "principals": ["tenants/acme/principals/a"],
               "actions": ["GetKey"], "conditions": []})"),
       "statements[0].conditions: must be an object, not an array"},
      {"unknown condition", Doc(R"({"effect": "Allow", "principals": ["tenants/acme/principals/a"],
               "actions": ["GetKey"], "conditions": {"segmentPrefix": "acme/"}})"),
       "statements[0].conditions.\"segmentPrefix\": unknown field (allowed: segmentPrefixes, "},
      {"segment prefix not a list",
       Doc(R"({"effect": "Allow", "principals": ["tenants/acme/principals/a"],
               "actions": ["GetKey"], "conditions": {"segmentPrefixes": "acme/"}})"),
       "statements[0].conditions.segmentPrefixes: must be an array, not a string"},
      {"segment prefix empty string",
       Doc(R"({"effect": "Allow", "principals": ["tenants/acme/principals/a"],
               "actions": ["GetKey"], "conditions": {"segmentPrefixes": ["acme/", "/"]}})"),
       "statements[0].conditions.segmentPrefixes[1]: segment prefix \"/\" is not a segment label"},
      {"segment prefix dotdot",
       Doc(R"({"effect": "Allow", "principals": ["tenants/acme/principals/a"],
               "actions": ["GetKey"], "conditions": {"segmentPrefixes": ["acme/../hr/"]}})"),
       "statements[0].conditions.segmentPrefixes[0]: segment prefix \"acme/../hr/\""},
      {"context value not string",
       Doc(R"({"effect": "Allow", "principals": ["tenants/acme/principals/a"],
               "actions": ["GetKey"], "conditions": {"encryptionContext": {"n": 1}}})"),
       "statements[0].conditions.encryptionContext.\"n\": must be a string, not a number"},
      {"context empty", Doc(R"({"effect": "Allow", "principals": ["tenants/acme/principals/a"],
               "actions": ["GetKey"], "conditions": {"encryptionContext": {}}})"),
       "statements[0].conditions.encryptionContext: must hold at least one"},
      {"bad time", Doc(R"({"effect": "Allow", "principals": ["tenants/acme/principals/a"],
               "actions": ["GetKey"], "conditions": {"notBefore": "2026-11-01"}})"),
       "statements[0].conditions.notBefore: \"2026-11-01\" is not an RFC 3339 time"},
      {"window reversed", Doc(R"({"effect": "Allow", "principals": ["tenants/acme/principals/a"],
               "actions": ["GetKey"], "conditions": {"notBefore": "2026-12-01T00:00:00Z",
               "notAfter": "2026-11-01T00:00:00Z"}})"),
       "statements[0].conditions.notAfter: must be later than notBefore"},
      {"hour out of range", Doc(R"({"effect": "Allow", "principals": ["tenants/acme/principals/a"],
               "actions": ["GetKey"], "conditions": {"dailyHoursUtc":
               {"startHour": 9, "endHour": 25}}})"),
       "statements[0].conditions.dailyHoursUtc.endHour: must be an integer from 0 to 24"},
      {"hour fractional", Doc(R"({"effect": "Allow", "principals": ["tenants/acme/principals/a"],
               "actions": ["GetKey"], "conditions": {"dailyHoursUtc":
               {"startHour": 9.5, "endHour": 17}}})"),
       "statements[0].conditions.dailyHoursUtc.startHour: must be an integer from 0 to 23"},
      {"hours equal", Doc(R"({"effect": "Allow", "principals": ["tenants/acme/principals/a"],
               "actions": ["GetKey"], "conditions": {"dailyHoursUtc":
               {"startHour": 0, "endHour": 24}}})"),
       "statements[0].conditions.dailyHoursUtc.endHour: must differ from startHour"},
      {"hours missing end", Doc(R"({"effect": "Allow", "principals": ["tenants/acme/principals/a"],
               "actions": ["GetKey"], "conditions": {"dailyHoursUtc": {"startHour": 1}}})"),
       "statements[0].conditions.dailyHoursUtc.endHour: required"},
      // Parsers that disagree on duplicates ("Allow" or "Deny"?) are an attack
      // surface; protobuf's JSON parser refuses them.
      {"duplicate key",
       Doc(R"({"effect": "Deny", "effect": "Allow", "principals": ["tenants/acme/principals/a"],
               "actions": ["GetKey"]})"),
       "document: not valid JSON"},
      {"override wrong type",
       absl::StrCat(R"({"version": 1, "allowAdminAndDataToSamePrincipal": "yes", "statements": [)",
                    kGood, "]}"),
       "allowAdminAndDataToSamePrincipal: must be a boolean, not a string"},
  };
}

TEST(PolicyParserTest, ErrorsPointAtTheBadField) {
  for (const BadDocument& bad : BadDocuments()) {
    absl::StatusOr<Policy> policy = ParsePolicy(bad.json, kScope);
    ASSERT_FALSE(policy.ok()) << bad.name;
    EXPECT_EQ(policy.status().code(), absl::StatusCode::kInvalidArgument) << bad.name;
    EXPECT_THAT(std::string(policy.status().message()), StartsWith(bad.message)) << bad.name;
  }
}

TEST(PolicyParserTest, SizeLimitIsExactly32KiB) {
  std::string doc = Doc(kGood);
  std::string padded = doc + std::string(kMaxPolicyBytes - doc.size(), ' ');
  EXPECT_TRUE(ParsePolicy(padded, kScope).ok());
  EXPECT_FALSE(ParsePolicy(padded + " ", kScope).ok());
}

TEST(PolicyParserTest, HostileNestingIsRejectedNotCrashing) {
  std::string deep = std::string(16000, '[') + std::string(16000, ']');
  absl::Time start = absl::Now();
  EXPECT_THAT(std::string(ParsePolicy(deep, kScope).status().message()),
              StartsWith("document: nested deeper than 8 levels"));
  EXPECT_LT(absl::Now() - start, absl::Seconds(1));
  // Brackets inside strings do not count.
  std::string in_sid = Doc(absl::StrCat(R"({"sid": "[[[[[[[[[[\"[[[[", )", std::string(kGood + 1)));
  EXPECT_THAT(std::string(ParsePolicy(in_sid, kScope).status().message()),
              StartsWith("statements[0].sid: "));
}

TEST(PolicyParserTest, MalformedScopeIsRejected) {
  EXPECT_THAT(std::string(ParsePolicy(Doc(kGood), PolicyScope{"ACME", "crm"}).status().message()),
              StartsWith("policy scope: "));
}

TEST(PolicyParserTest, TenantScopeAcceptsOwnPrincipalsOnly) {
  EXPECT_TRUE(ParsePolicy(Doc(kGood), PolicyScope{"acme", ""}).ok());
  EXPECT_THAT(std::string(ParsePolicy(Doc(kGood), PolicyScope{"globex", ""}).status().message()),
              HasSubstr("a policy of tenants/globex may name only"));
}

}  // namespace
}  // namespace clavis::kms::policy
