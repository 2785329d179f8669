// Unit tests of clavisctl's pure argument handling: durations, times,
// key=value entries, names, input decoding, endpoints, and the mapping of a
// final status to the documented exit codes.
#include <sstream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tools/clavisctl/args.h"
#include "tools/clavisctl/channel.h"
#include "tools/clavisctl/exit_codes.h"
#include "tools/clavisctl/input.h"

namespace clavis::clavisctl {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::Pair;
using ::testing::UnorderedElementsAre;

// --- durations ---------------------------------------------------------------

TEST(ParseDurationTest, AcceptsEachUnit) {
  EXPECT_EQ(*ParseDuration("90d"), absl::Hours(90 * 24));
  EXPECT_EQ(*ParseDuration("12h"), absl::Hours(12));
  EXPECT_EQ(*ParseDuration("5m"), absl::Minutes(5));
  EXPECT_EQ(*ParseDuration("45s"), absl::Seconds(45));
}

TEST(ParseDurationTest, AcceptsZero) {
  EXPECT_EQ(*ParseDuration("0s"), absl::ZeroDuration());
  EXPECT_EQ(*ParseDuration("0d"), absl::ZeroDuration());
}

TEST(ParseDurationTest, AcceptsCompoundLargestFirst) {
  EXPECT_EQ(*ParseDuration("1h30m"), absl::Minutes(90));
  EXPECT_EQ(*ParseDuration("1d12h"), absl::Hours(36));
  EXPECT_EQ(*ParseDuration("1d2h3m4s"), absl::Seconds(86400 + 7200 + 180 + 4));
  EXPECT_EQ(*ParseDuration("007s"), absl::Seconds(7));
}

TEST(ParseDurationTest, AcceptsTheProtobufMaximum) {
  EXPECT_EQ(*ParseDuration("315576000000s"), absl::Seconds(kMaxDurationSeconds));
}

TEST(ParseDurationTest, RejectsMalformed) {
  for (const char* bad : {"", "-1d", "+1d", "5x", "90", "d", "1.5h", " 1d", "1d ", "1 d", "1D",
                          "1h1h", "30m1h", "1s1d", "1dd", "1h30", "1ms", "0x10s"}) {
    absl::StatusOr<absl::Duration> d = ParseDuration(bad);
    EXPECT_EQ(d.status().code(), absl::StatusCode::kInvalidArgument) << "\"" << bad << "\"";
  }
}

TEST(ParseDurationTest, RejectsOverflow) {
  // Fits in int64 seconds but not in google.protobuf.Duration.
  EXPECT_THAT(ParseDuration("999999999999d").status().message(), HasSubstr("too long"));
  EXPECT_FALSE(ParseDuration("315576000001s").ok());
  // Does not fit in int64 at all.
  EXPECT_FALSE(ParseDuration("99999999999999999999999s").ok());
  EXPECT_FALSE(ParseDuration("106751991167300d").ok());
  // Each part fits, the sum does not.
  EXPECT_FALSE(ParseDuration("3652500d1s").ok());
  EXPECT_TRUE(ParseDuration("3652500d").ok());
}

TEST(ParseDurationTest, ErrorSaysHowToWriteIt) {
  EXPECT_THAT(ParseDuration("5x").status().message(), HasSubstr("90d"));
  EXPECT_THAT(ParseDuration("5x").status().message(), HasSubstr("unknown unit 'x'"));
}

TEST(FormatCompactDurationTest, RoundTrips) {
  for (const char* text : {"0s", "90d", "1h30m", "1d2h3m4s", "45s"}) {
    EXPECT_EQ(FormatCompactDuration(*ParseDuration(text)), text);
  }
  EXPECT_EQ(FormatCompactDuration(absl::Hours(48)), "2d");
  EXPECT_EQ(FormatCompactDuration(absl::Milliseconds(1500)), "1.5s");  // not whole seconds
}

TEST(ProtoConversionTest, DurationAndTimestamp) {
  const google::protobuf::Duration d = ToProtoDuration(absl::Hours(24 * 90));
  EXPECT_EQ(d.seconds(), 90 * 86400);
  EXPECT_EQ(d.nanos(), 0);
  EXPECT_EQ(FromProtoDuration(d), absl::Hours(24 * 90));

  const absl::Time t = absl::FromUnixSeconds(1'796'083'200) + absl::Milliseconds(250);
  const google::protobuf::Timestamp ts = ToProtoTimestamp(t);
  EXPECT_EQ(ts.seconds(), 1'796'083'200);
  EXPECT_EQ(ts.nanos(), 250'000'000);
  EXPECT_EQ(FromProtoTimestamp(ts), t);

  // Before 1970 the nanos stay non-negative, as Timestamp requires.
  const google::protobuf::Timestamp old = ToProtoTimestamp(absl::FromUnixMillis(-1500));
  EXPECT_EQ(old.seconds(), -2);
  EXPECT_EQ(old.nanos(), 500'000'000);
}

// --- times -------------------------------------------------------------------

TEST(ParseTimeTest, AcceptsRfc3339) {
  EXPECT_EQ(*ParseTime("2026-12-01T00:00:00Z"),
            absl::FromCivil(absl::CivilSecond(2026, 12, 1), absl::UTCTimeZone()));
  EXPECT_EQ(*ParseTime("2026-12-01T02:00:00+02:00"), *ParseTime("2026-12-01T00:00:00Z"));
  EXPECT_EQ(*ParseTime("2026-12-01T00:00:00.5Z"),
            *ParseTime("2026-12-01T00:00:00Z") + absl::Milliseconds(500));
}

TEST(ParseTimeTest, RejectsOtherForms) {
  for (const char* bad : {"", "2026-12-01", "2026-12-01 00:00:00Z", "2026-12-01T00:00:00",
                          "tomorrow", "2026-13-01T00:00:00Z"}) {
    EXPECT_EQ(ParseTime(bad).status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
  EXPECT_THAT(ParseTime("tomorrow").status().message(), HasSubstr("RFC 3339"));
}

TEST(ParseTimeTest, RejectsOutOfTimestampRange) {
  EXPECT_TRUE(ParseTime("9999-12-31T23:59:59Z").ok());
  EXPECT_FALSE(ParseTime("10000-01-01T00:00:00Z").ok());
  EXPECT_TRUE(ParseTime("0001-01-01T00:00:00Z").ok());
  EXPECT_FALSE(ParseTime("0000-12-31T23:59:59Z").ok());
}

// --- key=value ---------------------------------------------------------------

TEST(ParseKeyValueTest, SplitsAtTheFirstEquals) {
  EXPECT_THAT(*ParseKeyValue("k=v", "--context"), Pair("k", "v"));
  EXPECT_THAT(*ParseKeyValue("k=a=b", "--context"), Pair("k", "a=b"));
  EXPECT_THAT(*ParseKeyValue("k=", "--context"), Pair("k", ""));        // empty value is allowed
  EXPECT_THAT(*ParseKeyValue("k = v", "--context"), Pair("k ", " v"));  // taken literally
}

TEST(ParseKeyValueTest, RejectsMissingKeyOrEquals) {
  EXPECT_THAT(ParseKeyValue("=v", "--context").status().message(), HasSubstr("key"));
  EXPECT_EQ(ParseKeyValue("k", "--context").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseKeyValue("", "--context").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(ParseKeyValue("k", "--label").status().message(), HasSubstr("--label"));
}

TEST(ParseKeyValueTest, DoesNotEchoTheValueOfAnEmptyKeyEntry) {
  EXPECT_THAT(ParseKeyValue("=patient-1234", "--context").status().message(),
              Not(HasSubstr("patient-1234")));
}

TEST(ParseKeyValuesTest, BuildsAMap) {
  EXPECT_THAT(
      *ParseKeyValues({"table=orders", "customer=42", "note="}, "--context"),
      UnorderedElementsAre(Pair("table", "orders"), Pair("customer", "42"), Pair("note", "")));
  EXPECT_TRUE(ParseKeyValues({}, "--context")->empty());
}

TEST(ParseKeyValuesTest, RejectsDuplicateKeys) {
  const absl::Status s = ParseKeyValues({"a=1", "b=2", "a=1"}, "--context").status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("\"a\""));
  EXPECT_THAT(s.message(), HasSubstr("more than once"));
}

TEST(ParseKeyValuesTest, PropagatesAMalformedEntry) {
  EXPECT_FALSE(ParseKeyValues({"a=1", "b"}, "--context").ok());
  EXPECT_FALSE(ParseKeyValues({"=1"}, "--context").ok());
}

// --- names -------------------------------------------------------------------

TEST(SplitKeyNameTest, SplitsParentAndId) {
  const KeyNameParts parts = *SplitKeyName("tenants/acme/keys/main");
  EXPECT_EQ(parts.parent, "tenants/acme");
  EXPECT_EQ(parts.key_id, "main");
}

TEST(SplitKeyNameTest, RejectsOtherShapes) {
  for (const char* bad :
       {"", "tenants/acme", "tenants/acme/keys", "tenants/acme/keys/", "tenants//keys/main",
        "tenant/acme/keys/main", "tenants/acme/keys/main/versions/1", "/tenants/acme/keys/main"}) {
    EXPECT_EQ(SplitKeyName(bad).status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

// --- exit codes --------------------------------------------------------------

TEST(ExitCodeTest, MapsEveryDocumentedCode) {
  EXPECT_EQ(ExitCodeForStatus(absl::OkStatus()), 0);
  EXPECT_EQ(ExitCodeForStatus(absl::InternalError("x")), 1);
  EXPECT_EQ(ExitCodeForStatus(absl::UnknownError("x")), 1);
  EXPECT_EQ(ExitCodeForStatus(UsageError("x")), 2);
  EXPECT_EQ(ExitCodeForStatus(absl::NotFoundError("x")), 3);
  EXPECT_EQ(ExitCodeForStatus(absl::FailedPreconditionError("x")), 4);
  EXPECT_EQ(ExitCodeForStatus(absl::InvalidArgumentError("x")), 5);
  EXPECT_EQ(ExitCodeForStatus(absl::PermissionDeniedError("x")), 6);
  EXPECT_EQ(ExitCodeForStatus(absl::UnauthenticatedError("x")), 6);
  EXPECT_EQ(ExitCodeForStatus(absl::UnavailableError("x")), 7);
  EXPECT_EQ(ExitCodeForStatus(absl::DeadlineExceededError("x")), 7);
  EXPECT_EQ(ExitCodeForStatus(absl::AlreadyExistsError("x")), 8);
}

TEST(ExitCodeTest, OtherCodesAreGeneric) {
  for (absl::StatusCode code : {absl::StatusCode::kCancelled, absl::StatusCode::kResourceExhausted,
                                absl::StatusCode::kAborted, absl::StatusCode::kOutOfRange,
                                absl::StatusCode::kUnimplemented, absl::StatusCode::kDataLoss}) {
    EXPECT_EQ(ExitCodeForStatus(absl::Status(code, "x")), kExitGeneric) << code;
  }
}

TEST(ExitCodeTest, UsageMarkOnlyOnErrors) {
  EXPECT_TRUE(AsUsageError(absl::OkStatus()).ok());
  const absl::Status usage = AsUsageError(absl::InvalidArgumentError("bad duration"));
  EXPECT_TRUE(IsUsageError(usage));
  EXPECT_EQ(usage.message(), "bad duration");
  EXPECT_FALSE(IsUsageError(absl::InvalidArgumentError("from the server")));
}

TEST(FormatErrorTest, PrefixesTheMessage) {
  EXPECT_EQ(FormatError(absl::NotFoundError("key tenants/a/keys/b not found"), "127.0.0.1:7370"),
            "clavisctl: key tenants/a/keys/b not found\n");
}

TEST(FormatErrorTest, HintsAtClavisdWhenUnavailable) {
  const std::string text = FormatError(absl::UnavailableError("connection refused"), "h:1");
  EXPECT_THAT(text, HasSubstr("clavisctl: connection refused\n"));
  EXPECT_THAT(text, HasSubstr("is clavisd running on h:1?"));
  EXPECT_THAT(text, HasSubstr("scripts/run"));
  EXPECT_THAT(FormatError(absl::DeadlineExceededError("d"), "h:1"), HasSubstr("--timeout"));
}

TEST(FormatErrorTest, EmptyMessageFallsBackToTheCodeName) {
  EXPECT_EQ(FormatError(absl::Status(absl::StatusCode::kInternal, ""), "e"),
            "clavisctl: INTERNAL\n");
}

// --- input -------------------------------------------------------------------

TEST(ReadStreamTest, ReadsEverythingUpToTheLimit) {
  std::istringstream in(std::string("a\0b", 3));
  EXPECT_EQ(*ReadStream(in, "stdin"), std::string("a\0b", 3));
  std::istringstream big(std::string(10, 'x'));
  EXPECT_EQ(*ReadStream(big, "stdin", 10), std::string(10, 'x'));
  std::istringstream too_big(std::string(11, 'x'));
  EXPECT_THAT(ReadStream(too_big, "stdin", 10).status().message(), HasSubstr("larger than 10"));
}

TEST(ReadFileTest, MissingFileIsInvalidArgument) {
  EXPECT_EQ(ReadFile("/nonexistent/clavisctl-test").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(DecodeBase64Test, AcceptsStandardWithOrWithoutPadding) {
  EXPECT_EQ(*DecodeBase64("aGVsbG8=", "x"), "hello");
  EXPECT_EQ(*DecodeBase64("aGVsbG8", "x"), "hello");
  EXPECT_EQ(*DecodeBase64("  aGVsbG8=\n", "x"), "hello");
}

TEST(DecodeBase64Test, RejectsOtherText) {
  EXPECT_FALSE(DecodeBase64("", "x").ok());
  EXPECT_FALSE(DecodeBase64("aGVs bG8=", "x").ok());
  EXPECT_FALSE(DecodeBase64("aGVsbG8-", "x").ok());  // URL-safe alphabet is not what we print
  EXPECT_FALSE(DecodeBase64("a", "x").ok());
  EXPECT_THAT(DecodeBase64("!!", "--blob-base64").status().message(), HasSubstr("--blob-base64"));
}

TEST(DecodeBlobFileTest, TakesBase64TextOrRawBytes) {
  EXPECT_EQ(*DecodeBlobFile("AQEE\n"), std::string("\x01\x01\x04", 3));
  const std::string raw("\x01\x01\x04tenant", 9);
  EXPECT_EQ(*DecodeBlobFile(raw), raw);
  EXPECT_FALSE(DecodeBlobFile("").ok());
}

// --- endpoints ---------------------------------------------------------------

TEST(DefaultEndpointTest, EnvironmentThenBuiltIn) {
  EXPECT_EQ(DefaultEndpoint(nullptr), "127.0.0.1:7370");
  EXPECT_EQ(DefaultEndpoint(""), "127.0.0.1:7370");
  EXPECT_EQ(DefaultEndpoint("kms.internal:7370"), "kms.internal:7370");
}

TEST(IsLoopbackEndpointTest, Loopback) {
  for (const char* e :
       {"127.0.0.1:7370", "127.1.2.3:1", "localhost:7370", "LOCALHOST:1", "[::1]:7370", "::1",
        "unix:/run/clavis.sock", "dns:///localhost:7370", "ipv4:127.0.0.1:7370"}) {
    EXPECT_TRUE(IsLoopbackEndpoint(e)) << e;
  }
}

TEST(IsLoopbackEndpointTest, NotLoopback) {
  for (const char* e : {"10.0.0.1:7370", "kms.internal:7370", "127.example.com:7370",
                        "[2001:db8::1]:7370", "0.0.0.0:7370", ""}) {
    EXPECT_FALSE(IsLoopbackEndpoint(e)) << e;
  }
}

}  // namespace
}  // namespace clavis::clavisctl
