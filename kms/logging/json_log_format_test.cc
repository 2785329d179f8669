#include "kms/logging/json_log_format.h"

#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "spdlog/logger.h"
#include "spdlog/sinks/ostream_sink.h"

namespace clavis::logging {
namespace {

// The lines a logger with the JSON formatter writes for `log`.
std::vector<nlohmann::json> Logged(const std::function<void(spdlog::logger&)>& log) {
  std::ostringstream out;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_st>(out);
  spdlog::logger logger("rotator", sink);
  logger.set_formatter(MakeJsonLogFormatter());
  log(logger);
  std::vector<nlohmann::json> lines;
  for (absl::string_view line : absl::StrSplit(out.str(), '\n', absl::SkipEmpty())) {
    auto parsed = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    EXPECT_FALSE(parsed.is_discarded()) << "not JSON: " << line;
    lines.push_back(std::move(parsed));
  }
  return lines;
}

TEST(JsonLogFormatTest, EachRecordIsOneObjectWithTimeLevelLoggerAndMessage) {
  auto lines = Logged([](spdlog::logger& l) {
    l.info("rotated {} to version {}", "tenants/acme/keys/crm", 2);
    l.warn("second");
  });
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0]["level"], "info");
  EXPECT_EQ(lines[0]["logger"], "rotator");
  EXPECT_EQ(lines[0]["msg"], "rotated tenants/acme/keys/crm to version 2");
  EXPECT_THAT(
      lines[0]["time"].get<std::string>(),
      ::testing::MatchesRegex("[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z"));
  EXPECT_EQ(lines[1]["level"], "warning");
}

TEST(JsonLogFormatTest, HostileTextCannotBreakTheLineOrForgeAField) {
  const std::string hostile = "x\",\"level\":\"critical\"}\n{\"msg\":\"forged\\ \x01\xff\xfe end";
  auto lines = Logged([&](spdlog::logger& l) { l.error("failed: {}", hostile); });
  ASSERT_EQ(lines.size(), 1u) << "a newline in the message stays inside the record";
  EXPECT_EQ(lines[0]["level"], "error");
  const std::string msg = lines[0]["msg"];
  EXPECT_THAT(msg, ::testing::StartsWith("failed: x\",\"level\":\"critical\"}\n{"));
  EXPECT_THAT(msg, ::testing::HasSubstr("\xEF\xBF\xBD")) << "invalid UTF-8 is replaced";
}

TEST(JsonLogFormatTest, OnlyTextAndJsonAreFormats) {
  EXPECT_TRUE(SetLogFormat("text").ok());
  absl::Status bad = SetLogFormat("xml");
  EXPECT_EQ(bad.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad.message()), ::testing::HasSubstr("text or json"));
}

}  // namespace
}  // namespace clavis::logging
