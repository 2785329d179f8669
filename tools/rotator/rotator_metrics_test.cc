#include "tools/rotator/rotator_metrics.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tools/rotator/metrics_server.h"

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

// GET `path` from 127.0.0.1:`port` (HTTP/1.0); the whole response, or empty.
std::string HttpGet(int port, const std::string& path) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return "";
  sockaddr_in address = {};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string response;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0) {
    const std::string request = absl::StrCat("GET ", path, " HTTP/1.0\r\n\r\n");
    if (::write(fd, request.data(), request.size()) == static_cast<ssize_t>(request.size())) {
      char buf[4096];
      ssize_t n;
      while ((n = ::read(fd, buf, sizeof(buf))) > 0) response.append(buf, static_cast<size_t>(n));
    }
  }
  ::close(fd);
  return response;
}

// The value of sample `name` in an exposition text, or -1.
int64_t Sample(const std::string& text, const std::string& name) {
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (!absl::ConsumePrefix(&line, name + " ")) continue;
    int64_t value;
    if (absl::SimpleAtoi(line, &value)) return value;
  }
  return -1;
}

// The rotator bumps counters while the metrics server's thread renders them
// for scrapers: every scrape is complete, counters never go back, and the
// last one shows every increment.
TEST(RotatorMetricsTest, ScrapesWhileCountersMove) {
  RotatorMetrics m;
  auto server = MetricsServer::Start("127.0.0.1:0", [&m] { return m.Prometheus(); });
  ASSERT_TRUE(server.ok()) << server.status();
  const int port = (*server)->port();
  constexpr int kWriters = 2;
  constexpr int kBumps = 20000;
  std::atomic<int> writing{kWriters};
  std::vector<std::thread> threads;
  for (int w = 0; w < kWriters; ++w) {
    threads.emplace_back([&] {
      for (int i = 0; i < kBumps; ++i) {
        ++m.rotations;
        m.segments_rewrapped += 2;
        m.keys_overdue = static_cast<uint64_t>(i % 7);
        m.last_pass_end_unix = 1800000000 + i;
      }
      ++m.passes;
      --writing;
    });
  }
  std::atomic<int> scrapes{0};
  for (int r = 0; r < 2; ++r) {
    threads.emplace_back([&] {
      int64_t last = 0;
      do {
        const std::string response = HttpGet(port, "/metrics");
        ASSERT_THAT(response, HasSubstr("200 OK"));
        const int64_t rotations = Sample(response, "clavis_rotator_rotations_total");
        ASSERT_GE(rotations, last) << "a counter went back";
        EXPECT_GE(Sample(response, "clavis_rotator_keys_overdue"), 0);
        EXPECT_THAT(response, HasSubstr("clavis_rotator_last_pass_end_seconds "));
        last = rotations;
        ++scrapes;
      } while (writing > 0);
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_GE(scrapes.load(), 2);
  const std::string last = HttpGet(port, "/metrics");
  EXPECT_EQ(Sample(last, "clavis_rotator_rotations_total"), kWriters * kBumps);
  EXPECT_EQ(Sample(last, "clavis_rotator_segments_rewrapped_total"), 2 * kWriters * kBumps);
  EXPECT_EQ(Sample(last, "clavis_rotator_passes_total"), kWriters);
  EXPECT_THAT(HttpGet(port, "/other"), HasSubstr("404"));
}

}  // namespace
}  // namespace clavis::rotator
