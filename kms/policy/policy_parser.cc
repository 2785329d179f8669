#include "kms/policy/policy_parser.h"

#include <algorithm>
#include <cmath>
#include <initializer_list>
#include <map>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "kms/keys/encryption_context.h"
#include "kms/keys/names.h"
#include "kms/policy/principal.h"
#include "kms/policy/separation_of_duties.h"

namespace clavis::kms::policy {
namespace {

using ::google::protobuf::ListValue;
using ::google::protobuf::Struct;
using ::google::protobuf::Value;

absl::Status FieldError(absl::string_view path, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(path, ": ", what));
}

std::string Join(absl::string_view path, absl::string_view field) {
  return path.empty() ? std::string(field) : absl::StrCat(path, ".", field);
}

std::string Index(absl::string_view path, size_t i) { return absl::StrCat(path, "[", i, "]"); }

absl::string_view KindName(const Value& value) {
  switch (value.kind_case()) {
    case Value::kNullValue:
      return "null";
    case Value::kNumberValue:
      return "a number";
    case Value::kStringValue:
      return "a string";
    case Value::kBoolValue:
      return "a boolean";
    case Value::kStructValue:
      return "an object";
    case Value::kListValue:
      return "an array";
    default:
      return "empty";
  }
}

absl::Status WrongType(absl::string_view path, absl::string_view expected, const Value& value) {
  return FieldError(path, absl::StrCat("must be ", expected, ", not ", KindName(value)));
}

// Rejects any field of `object` not in `allowed`.
absl::Status CheckFields(const Struct& object, absl::string_view path,
                         std::initializer_list<absl::string_view> allowed) {
  // Sorted for a deterministic first error (protobuf maps are unordered).
  std::map<std::string, bool> fields;
  for (const auto& [name, unused] : object.fields()) fields.emplace(name, true);
  for (const auto& [name, unused] : fields) {
    bool known = false;
    for (absl::string_view candidate : allowed) known = known || candidate == name;
    if (!known) {
      return FieldError(
          Join(path, QuoteForError(name)),
          absl::StrCat("unknown field (allowed: ", absl::StrJoin(allowed, ", "), ")"));
    }
  }
  return absl::OkStatus();
}

const Value* Find(const Struct& object, absl::string_view name) {
  auto it = object.fields().find(std::string(name));
  return it == object.fields().end() ? nullptr : &it->second;
}

absl::StatusOr<const ListValue*> NonEmptyList(const Value& value, absl::string_view path,
                                              size_t max, absl::string_view what) {
  if (value.kind_case() != Value::kListValue) return WrongType(path, "an array", value);
  const ListValue& list = value.list_value();
  if (list.values_size() == 0)
    return FieldError(path, absl::StrCat("must list at least one ", what));
  if (static_cast<size_t>(list.values_size()) > max) {
    return FieldError(path,
                      absl::StrCat("has ", list.values_size(), " entries; the limit is ", max));
  }
  return &list;
}

absl::StatusOr<std::string> String(const Value& value, absl::string_view path) {
  if (value.kind_case() != Value::kStringValue) return WrongType(path, "a string", value);
  return value.string_value();
}

absl::StatusOr<int> Integer(const Value& value, absl::string_view path, int min, int max) {
  if (value.kind_case() != Value::kNumberValue) return WrongType(path, "an integer", value);
  double number = value.number_value();
  if (std::floor(number) != number || number < min || number > max) {
    return FieldError(path, absl::StrCat("must be an integer from ", min, " to ", max));
  }
  return static_cast<int>(number);
}

absl::StatusOr<absl::Time> Rfc3339(const Value& value, absl::string_view path) {
  absl::StatusOr<std::string> text = String(value, path);
  if (!text.ok()) return text.status();
  absl::Time time;
  std::string error;
  if (!absl::ParseTime(absl::RFC3339_full, *text, &time, &error)) {
    return FieldError(path, absl::StrCat(QuoteForError(*text),
                                         " is not an RFC 3339 time like 2026-11-01T00:00:00Z"));
  }
  return time;
}

absl::Status ParseVersion(const Value* value) {
  if (value == nullptr) {
    return FieldError("version", absl::StrCat("required (\"", kPolicyVersion, "\")"));
  }
  bool supported =
      (value->kind_case() == Value::kStringValue && value->string_value() == kPolicyVersion) ||
      (value->kind_case() == Value::kNumberValue && value->number_value() == 1);
  if (!supported) {
    return FieldError("version", absl::StrCat("unsupported policy version; supported: \"",
                                              kPolicyVersion, "\" (or 1)"));
  }
  return absl::OkStatus();
}

absl::Status ParseSid(const Value& value, absl::string_view path, std::string* sid) {
  absl::StatusOr<std::string> text = String(value, path);
  if (!text.ok()) return text.status();
  if (text->empty() || text->size() > kMaxSidLength) {
    return FieldError(path, absl::StrCat("must be 1-", kMaxSidLength, " characters"));
  }
  for (char c : *text) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.') {
      return FieldError(path, absl::StrCat(QuoteForError(*text),
                                           " may contain only A-Z, a-z, 0-9, '-', '_', '.'"));
    }
  }
  *sid = std::move(*text);
  return absl::OkStatus();
}

absl::Status ParseEffect(const Value* value, absl::string_view path, Effect* effect) {
  if (value == nullptr) return FieldError(path, "required (\"Allow\" or \"Deny\")");
  if (value->kind_case() == Value::kStringValue && value->string_value() == "Allow") {
    *effect = Effect::kAllow;
  } else if (value->kind_case() == Value::kStringValue && value->string_value() == "Deny") {
    *effect = Effect::kDeny;
  } else {
    return FieldError(path, "must be \"Allow\" or \"Deny\"");
  }
  return absl::OkStatus();
}

absl::Status ParsePrincipals(const Value* value, absl::string_view path, const PolicyScope& scope,
                             Statement* statement) {
  if (value == nullptr) return FieldError(path, "required");
  absl::StatusOr<const ListValue*> list =
      NonEmptyList(*value, path, kMaxPrincipalsPerStatement, "principal");
  if (!list.ok()) return list.status();
  for (int i = 0; i < (*list)->values_size(); ++i) {
    std::string item_path = Index(path, i);
    absl::StatusOr<std::string> name = String((*list)->values(i), item_path);
    if (!name.ok()) return name.status();
    absl::StatusOr<PrincipalName> parsed = ParsePrincipalOrGroup(*name);
    if (!parsed.ok()) return FieldError(item_path, parsed.status().message());
    // Tenant isolation is not a policy decision: no document may name
    // another tenant's identities.
    if (parsed->tenant != scope.tenant) {
      return FieldError(
          item_path, absl::StrCat(QuoteForError(*name), " belongs to tenant ", parsed->tenant,
                                  "; a policy of ", scope.ToString(),
                                  " may name only principals and groups of tenant ", scope.tenant));
    }
    statement->principals.push_back(std::move(*name));
  }
  return absl::OkStatus();
}

absl::Status ParseActionPattern(const std::string& pattern, absl::string_view path, Effect effect,
                                ActionSet* actions) {
  if (pattern == "*") {
    actions->set();
    return absl::OkStatus();
  }
  if (pattern.size() > 1 && pattern.back() == '*') {
    // Prefixes cut across classes ("Re*": ReEncrypt, RevokeSegment) and
    // would grant actions added later; in a Deny they can only fail closed.
    if (effect == Effect::kAllow) {
      return FieldError(path, absl::StrCat("action prefix ", QuoteForError(pattern),
                                           " is allowed only in Deny statements; list the "
                                           "actions to allow"));
    }
    absl::string_view prefix = absl::string_view(pattern).substr(0, pattern.size() - 1);
    ActionSet matched;
    for (Action action : AllActions()) {
      if (absl::StartsWith(ActionName(action), prefix)) matched |= ToSet(action);
    }
    if (matched.none()) {
      return FieldError(
          path, absl::StrCat("action prefix ", QuoteForError(pattern), " matches no action"));
    }
    *actions |= matched;
    return absl::OkStatus();
  }
  std::optional<Action> action = ParseAction(pattern);
  if (!action) {
    std::string message = absl::StrCat("unknown action ", QuoteForError(pattern));
    if (std::optional<Action> close = ClosestAction(pattern)) {
      absl::StrAppend(&message, " (did you mean \"", ActionName(*close), "\"?)");
    }
    return FieldError(path, message);
  }
  *actions |= ToSet(*action);
  return absl::OkStatus();
}

absl::Status ParseActions(const Value* value, absl::string_view path, Statement* statement) {
  if (value == nullptr) return FieldError(path, "required");
  absl::StatusOr<const ListValue*> list =
      NonEmptyList(*value, path, kMaxActionsPerStatement, "action");
  if (!list.ok()) return list.status();
  for (int i = 0; i < (*list)->values_size(); ++i) {
    std::string item_path = Index(path, i);
    absl::StatusOr<std::string> pattern = String((*list)->values(i), item_path);
    if (!pattern.ok()) return pattern.status();
    if (absl::Status s =
            ParseActionPattern(*pattern, item_path, statement->effect, &statement->actions);
        !s.ok()) {
      return s;
    }
    statement->action_patterns.push_back(std::move(*pattern));
  }
  return absl::OkStatus();
}

absl::Status ParseSegmentPrefixes(const Value& value, absl::string_view path,
                                  Conditions* conditions) {
  absl::StatusOr<const ListValue*> list =
      NonEmptyList(value, path, kMaxSegmentPrefixes, "segment prefix");
  if (!list.ok()) return list.status();
  for (int i = 0; i < (*list)->values_size(); ++i) {
    std::string item_path = Index(path, i);
    absl::StatusOr<std::string> prefix = String((*list)->values(i), item_path);
    if (!prefix.ok()) return prefix.status();
    // "acme/billing/" and "acme/billing" mean the same: prefixes match whole
    // '/'-separated parts, never a part's beginning.
    std::string normalized = *prefix;
    if (!normalized.empty() && normalized.back() == '/') normalized.pop_back();
    if (absl::Status s = ValidateSegment(normalized); !s.ok()) {
      return FieldError(item_path, absl::StrCat("segment prefix ", QuoteForError(*prefix),
                                                " is not a segment label with an optional "
                                                "trailing '/': ",
                                                s.message()));
    }
    conditions->segment_prefixes.push_back(std::move(normalized));
  }
  return absl::OkStatus();
}

absl::Status ParseContext(const Value& value, absl::string_view path, Conditions* conditions) {
  if (value.kind_case() != Value::kStructValue) return WrongType(path, "an object", value);
  std::map<std::string, std::string> context;
  for (const auto& [key, item] : value.struct_value().fields()) {
    std::string item_path = Join(path, QuoteForError(key));
    absl::StatusOr<std::string> text = String(item, item_path);
    if (!text.ok()) return text.status();
    context.emplace(key, std::move(*text));
  }
  if (context.empty()) return FieldError(path, "must hold at least one key/value pair");
  if (absl::Status s = ValidateEncryptionContext(context); !s.ok()) {
    return FieldError(path, s.message());
  }
  conditions->encryption_context = std::move(context);
  return absl::OkStatus();
}

absl::Status ParseDailyHours(const Value& value, absl::string_view path, Conditions* conditions) {
  if (value.kind_case() != Value::kStructValue) return WrongType(path, "an object", value);
  const Struct& object = value.struct_value();
  if (absl::Status s = CheckFields(object, path, {"startHour", "endHour"}); !s.ok()) return s;
  const Value* start = Find(object, "startHour");
  const Value* end = Find(object, "endHour");
  if (start == nullptr) return FieldError(Join(path, "startHour"), "required");
  if (end == nullptr) return FieldError(Join(path, "endHour"), "required");
  absl::StatusOr<int> start_hour = Integer(*start, Join(path, "startHour"), 0, 23);
  if (!start_hour.ok()) return start_hour.status();
  absl::StatusOr<int> end_hour = Integer(*end, Join(path, "endHour"), 0, 24);
  if (!end_hour.ok()) return end_hour.status();
  if (*start_hour == *end_hour % 24) {
    return FieldError(Join(path, "endHour"),
                      "must differ from startHour (omit dailyHoursUtc for all day)");
  }
  conditions->daily_hours_utc = DailyHours{*start_hour, *end_hour};
  return absl::OkStatus();
}

absl::Status ParseConditions(const Value& value, absl::string_view path, Conditions* conditions) {
  if (value.kind_case() != Value::kStructValue) return WrongType(path, "an object", value);
  const Struct& object = value.struct_value();
  if (absl::Status s = CheckFields(
          object, path,
          {"segmentPrefixes", "encryptionContext", "notBefore", "notAfter", "dailyHoursUtc"});
      !s.ok()) {
    return s;
  }
  if (const Value* v = Find(object, "segmentPrefixes")) {
    if (absl::Status s = ParseSegmentPrefixes(*v, Join(path, "segmentPrefixes"), conditions);
        !s.ok()) {
      return s;
    }
  }
  if (const Value* v = Find(object, "encryptionContext")) {
    if (absl::Status s = ParseContext(*v, Join(path, "encryptionContext"), conditions); !s.ok()) {
      return s;
    }
  }
  if (const Value* v = Find(object, "notBefore")) {
    absl::StatusOr<absl::Time> time = Rfc3339(*v, Join(path, "notBefore"));
    if (!time.ok()) return time.status();
    conditions->not_before = *time;
  }
  if (const Value* v = Find(object, "notAfter")) {
    absl::StatusOr<absl::Time> time = Rfc3339(*v, Join(path, "notAfter"));
    if (!time.ok()) return time.status();
    conditions->not_after = *time;
  }
  if (conditions->not_before && conditions->not_after &&
      *conditions->not_after <= *conditions->not_before) {
    return FieldError(Join(path, "notAfter"), "must be later than notBefore");
  }
  if (const Value* v = Find(object, "dailyHoursUtc")) {
    if (absl::Status s = ParseDailyHours(*v, Join(path, "dailyHoursUtc"), conditions); !s.ok()) {
      return s;
    }
  }
  return absl::OkStatus();
}

absl::Status ParseStatement(const Value& value, absl::string_view path, const PolicyScope& scope,
                            Statement* statement) {
  if (value.kind_case() != Value::kStructValue) return WrongType(path, "an object", value);
  const Struct& object = value.struct_value();
  if (absl::Status s =
          CheckFields(object, path, {"sid", "effect", "principals", "actions", "conditions"});
      !s.ok()) {
    return s;
  }
  if (const Value* v = Find(object, "sid")) {
    if (absl::Status s = ParseSid(*v, Join(path, "sid"), &statement->sid); !s.ok()) return s;
  }
  // Effect first: how action patterns are checked depends on it.
  if (absl::Status s =
          ParseEffect(Find(object, "effect"), Join(path, "effect"), &statement->effect);
      !s.ok()) {
    return s;
  }
  if (absl::Status s =
          ParsePrincipals(Find(object, "principals"), Join(path, "principals"), scope, statement);
      !s.ok()) {
    return s;
  }
  if (absl::Status s = ParseActions(Find(object, "actions"), Join(path, "actions"), statement);
      !s.ok()) {
    return s;
  }
  if (const Value* v = Find(object, "conditions")) {
    if (absl::Status s = ParseConditions(*v, Join(path, "conditions"), &statement->conditions);
        !s.ok()) {
      return s;
    }
  }
  return absl::OkStatus();
}

// The language nests at most 5 levels (document, statements, statement,
// conditions, dailyHoursUtc). protobuf's Struct parser takes seconds on a
// few KiB of "[[[[...", so depth is bounded in one linear pass first.
constexpr int kMaxNesting = 8;

absl::Status CheckNesting(absl::string_view json) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < json.size(); ++i) {
    char c = json[i];
    if (in_string) {
      if (c == '\\') {
        ++i;  // skip the escaped character
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      if (++depth > kMaxNesting) {
        return absl::InvalidArgumentError(
            absl::StrCat("document: nested deeper than ", kMaxNesting, " levels"));
      }
    } else if (c == '}' || c == ']') {
      --depth;
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateScope(const PolicyScope& scope) {
  if (absl::Status s = ValidateTenantId(scope.tenant); !s.ok()) return s;
  if (!scope.key_id.empty()) return ValidateKeyId(scope.key_id);
  return absl::OkStatus();
}

// --- writing ---

Value StringValue(absl::string_view text) {
  Value value;
  value.set_string_value(std::string(text));
  return value;
}

Value StringList(const std::vector<std::string>& items) {
  Value value;
  ListValue* list = value.mutable_list_value();
  for (const std::string& item : items) *list->add_values() = StringValue(item);
  return value;
}

std::string Rfc3339Text(absl::Time time) {
  return absl::FormatTime(absl::RFC3339_full, time, absl::UTCTimeZone());
}

// protobuf prints map entries in unspecified order; a stored policy should be
// stable and read in document order, so fields are written in the order of
// the language's own description, then (context keys) bytewise.
int FieldRank(const std::string& name) {
  static constexpr absl::string_view kOrder[] = {
      "version",         "allowAdminAndDataToSamePrincipal",
      "statements",      "sid",
      "effect",          "principals",
      "actions",         "conditions",
      "segmentPrefixes", "encryptionContext",
      "notBefore",       "notAfter",
      "dailyHoursUtc",   "startHour",
      "endHour"};
  for (size_t i = 0; i < sizeof(kOrder) / sizeof(kOrder[0]); ++i) {
    if (kOrder[i] == name) return static_cast<int>(i);
  }
  return sizeof(kOrder) / sizeof(kOrder[0]);
}

void AppendQuoted(const std::string& text, std::string* out) {
  // Let protobuf do the JSON string escaping.
  Value value;
  value.set_string_value(text);
  std::string quoted;
  (void)google::protobuf::util::MessageToJsonString(value, &quoted);
  out->append(quoted);
}

void AppendJson(const Value& value, int depth, std::string* out) {
  const std::string indent(2 * (depth + 1), ' ');
  const std::string closing_indent(2 * depth, ' ');
  switch (value.kind_case()) {
    case Value::kStringValue:
      AppendQuoted(value.string_value(), out);
      return;
    case Value::kNumberValue:
      // Only small integers (hours) are written.
      absl::StrAppend(out, static_cast<int64_t>(value.number_value()));
      return;
    case Value::kBoolValue:
      out->append(value.bool_value() ? "true" : "false");
      return;
    case Value::kListValue: {
      out->append("[");
      const ListValue& list = value.list_value();
      for (int i = 0; i < list.values_size(); ++i) {
        absl::StrAppend(out, i ? "," : "", "\n", indent);
        AppendJson(list.values(i), depth + 1, out);
      }
      absl::StrAppend(out, list.values_size() ? "\n" + closing_indent : "", "]");
      return;
    }
    case Value::kStructValue: {
      std::vector<const std::string*> names;
      for (const auto& [name, unused] : value.struct_value().fields()) names.push_back(&name);
      std::sort(names.begin(), names.end(), [](const std::string* a, const std::string* b) {
        return std::make_pair(FieldRank(*a), *a) < std::make_pair(FieldRank(*b), *b);
      });
      out->append("{");
      for (size_t i = 0; i < names.size(); ++i) {
        absl::StrAppend(out, i ? "," : "", "\n", indent);
        AppendQuoted(*names[i], out);
        out->append(": ");
        AppendJson(value.struct_value().fields().at(*names[i]), depth + 1, out);
      }
      absl::StrAppend(out, names.empty() ? "" : "\n" + closing_indent, "}");
      return;
    }
    default:
      out->append("null");
      return;
  }
}

Value ConditionsValue(const Conditions& conditions) {
  Value value;
  auto& fields = *value.mutable_struct_value()->mutable_fields();
  if (!conditions.segment_prefixes.empty()) {
    std::vector<std::string> prefixes;
    for (const std::string& prefix : conditions.segment_prefixes) {
      prefixes.push_back(prefix + "/");
    }
    fields["segmentPrefixes"] = StringList(prefixes);
  }
  if (!conditions.encryption_context.empty()) {
    auto& context = *fields["encryptionContext"].mutable_struct_value()->mutable_fields();
    for (const auto& [key, item] : conditions.encryption_context) context[key] = StringValue(item);
  }
  if (conditions.not_before) fields["notBefore"] = StringValue(Rfc3339Text(*conditions.not_before));
  if (conditions.not_after) fields["notAfter"] = StringValue(Rfc3339Text(*conditions.not_after));
  if (conditions.daily_hours_utc) {
    auto& hours = *fields["dailyHoursUtc"].mutable_struct_value()->mutable_fields();
    hours["startHour"].set_number_value(conditions.daily_hours_utc->start_hour);
    hours["endHour"].set_number_value(conditions.daily_hours_utc->end_hour);
  }
  return value;
}

}  // namespace

absl::StatusOr<Policy> ParsePolicy(absl::string_view json, const PolicyScope& scope) {
  if (absl::Status s = ValidateScope(scope); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("policy scope: ", s.message()));
  }
  if (json.size() > kMaxPolicyBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("document: ", json.size(), " bytes; the limit is ", kMaxPolicyBytes));
  }
  if (absl::Status s = CheckNesting(json); !s.ok()) return s;
  Value root;
  if (auto s = google::protobuf::util::JsonStringToMessage(
          google::protobuf::StringPiece(json.data(), json.size()), &root);
      !s.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("document: not valid JSON: ", QuoteForError(s.message().as_string())));
  }
  if (root.kind_case() != Value::kStructValue) return WrongType("document", "an object", root);
  const Struct& object = root.struct_value();
  if (absl::Status s = CheckFields(object, "", {"version", "statements", kSodOverrideField});
      !s.ok()) {
    return s;
  }
  if (absl::Status s = ParseVersion(Find(object, "version")); !s.ok()) return s;

  Policy policy;
  policy.scope = scope;
  if (const Value* v = Find(object, kSodOverrideField)) {
    if (v->kind_case() != Value::kBoolValue) return WrongType(kSodOverrideField, "a boolean", *v);
    policy.allow_admin_and_data_to_same_principal = v->bool_value();
  }
  const Value* statements = Find(object, "statements");
  if (statements == nullptr) return FieldError("statements", "required");
  absl::StatusOr<const ListValue*> list =
      NonEmptyList(*statements, "statements", kMaxStatements, "statement");
  if (!list.ok()) return list.status();
  std::map<std::string, size_t> sids;
  for (int i = 0; i < (*list)->values_size(); ++i) {
    std::string path = Index("statements", i);
    Statement statement;
    if (absl::Status s = ParseStatement((*list)->values(i), path, scope, &statement); !s.ok()) {
      return s;
    }
    if (!statement.sid.empty()) {
      auto [it, inserted] = sids.emplace(statement.sid, i);
      if (!inserted) {
        return FieldError(Join(path, "sid"),
                          absl::StrCat("duplicate sid \"", statement.sid, "\" (also statements[",
                                       it->second, "])"));
      }
    }
    policy.statements.push_back(std::move(statement));
  }
  if (!policy.allow_admin_and_data_to_same_principal) {
    if (absl::Status s = CheckSeparationOfDuties(policy); !s.ok()) return s;
  }
  return policy;
}

std::string PolicyToJson(const Policy& policy) {
  Value root;
  auto& fields = *root.mutable_struct_value()->mutable_fields();
  fields["version"] = StringValue(kPolicyVersion);
  if (policy.allow_admin_and_data_to_same_principal) fields[kSodOverrideField].set_bool_value(true);
  ListValue* statements = fields["statements"].mutable_list_value();
  for (const Statement& statement : policy.statements) {
    Value value;
    auto& s = *value.mutable_struct_value()->mutable_fields();
    if (!statement.sid.empty()) s["sid"] = StringValue(statement.sid);
    s["effect"] = StringValue(statement.effect == Effect::kAllow ? "Allow" : "Deny");
    s["principals"] = StringList(statement.principals);
    s["actions"] = StringList(statement.action_patterns);
    if (!statement.conditions.empty()) s["conditions"] = ConditionsValue(statement.conditions);
    *statements->add_values() = std::move(value);
  }
  std::string json;
  AppendJson(root, 0, &json);
  json.push_back('\n');
  return json;
}

}  // namespace clavis::kms::policy
