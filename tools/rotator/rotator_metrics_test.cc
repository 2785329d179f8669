#include "tools/rotator/rotator_metrics.h"

#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace clavis::rotator {
namespace {

using ::testing::HasSubstr;

TEST(RotatorMetricsTest, EveryMetricHasHelpTypeAndValueInTheTextFormat) {
  RotatorMetrics m;
  m.rotations = 3;
  m.keys_overdue = 2;
  m.last_pass_end_unix = 1800000000;
  const std::string text = m.Prometheus();
  EXPECT_THAT(text, HasSubstr("# TYPE clavis_rotator_rotations_total counter\n"
                              "clavis_rotator_rotations_total 3\n"));
  EXPECT_THAT(text, HasSubstr("# TYPE clavis_rotator_keys_overdue gauge\n"
                              "clavis_rotator_keys_overdue 2\n"));
  EXPECT_THAT(text, HasSubstr("clavis_rotator_last_pass_end_seconds 1800000000\n"));
  // Each sample line is preceded by its HELP and TYPE lines, names match.
  std::vector<std::string> lines = absl::StrSplit(text, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size() % 3, 0u);
  for (size_t i = 0; i < lines.size(); i += 3) {
    const std::string name = lines[i + 2].substr(0, lines[i + 2].find(' '));
    EXPECT_EQ(lines[i].rfind("# HELP " + name + " ", 0), 0u) << lines[i];
    EXPECT_EQ(lines[i + 1].rfind("# TYPE " + name + " ", 0), 0u) << lines[i + 1];
  }
}

}  // namespace
}  // namespace clavis::rotator
