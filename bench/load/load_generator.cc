#include "bench/load/load_generator.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

namespace clavis::bench {
namespace {

enum Phase : int { kWarmup, kMeasure, kStop };

using Clock = std::chrono::steady_clock;

absl::Duration Percentile(const std::vector<int64_t>& sorted_ns, double fraction) {
  if (sorted_ns.empty()) return absl::ZeroDuration();
  const size_t index =
      std::min(sorted_ns.size() - 1, static_cast<size_t>(fraction * sorted_ns.size()));
  return absl::Nanoseconds(sorted_ns[index]);
}

}  // namespace

absl::Duration LoadResult::ServerCpuPerCall() const {
  if (calls == 0) return absl::ZeroDuration();
  return absl::Seconds(server_cpu_seconds / static_cast<double>(calls));
}

LoadResult RunLoad(const LoadOptions& options, const std::function<bool(int)>& call,
                   const std::function<double()>& server_cpu_seconds) {
  std::atomic<int> phase{kWarmup};
  std::vector<std::vector<int64_t>> latencies(options.callers);
  std::vector<int64_t> errors(options.callers, 0);
  const bool paced = options.target_calls_per_second > 0;
  // Each caller's share of the target rate; callers start spread over one
  // interval so their calls do not arrive in bursts.
  const auto interval = paced ? std::chrono::nanoseconds(static_cast<int64_t>(
                                    1e9 * options.callers / options.target_calls_per_second))
                              : std::chrono::nanoseconds(0);
  const Clock::time_point start = Clock::now();

  std::vector<std::thread> callers;
  for (int c = 0; c < options.callers; ++c) {
    latencies[c].reserve(1 << 16);
    callers.emplace_back([&, c] {
      Clock::time_point due = start + interval * c / options.callers;
      while (true) {
        const int seen = phase.load(std::memory_order_relaxed);
        if (seen == kStop) break;
        if (paced) std::this_thread::sleep_until(due);
        const Clock::time_point began = paced ? due : Clock::now();
        const bool ok = call(c);
        const Clock::time_point ended = Clock::now();
        due += interval;
        if (seen != kMeasure || phase.load(std::memory_order_relaxed) != kMeasure) continue;
        if (ok) {
          latencies[c].push_back(
              std::chrono::duration_cast<std::chrono::nanoseconds>(ended - began).count());
        } else {
          ++errors[c];
        }
      }
    });
  }

  std::this_thread::sleep_for(std::chrono::nanoseconds(absl::ToInt64Nanoseconds(options.warmup)));
  const double cpu_before = server_cpu_seconds();
  const Clock::time_point measure_start = Clock::now();
  phase.store(kMeasure);
  std::this_thread::sleep_for(std::chrono::nanoseconds(absl::ToInt64Nanoseconds(options.duration)));
  phase.store(kStop);
  const Clock::time_point measure_end = Clock::now();
  const double cpu_after = server_cpu_seconds();
  for (auto& t : callers) t.join();

  LoadResult result;
  std::vector<int64_t> all;
  for (int c = 0; c < options.callers; ++c) {
    all.insert(all.end(), latencies[c].begin(), latencies[c].end());
    result.errors += errors[c];
  }
  std::sort(all.begin(), all.end());
  result.calls = static_cast<int64_t>(all.size());
  result.seconds = std::chrono::duration<double>(measure_end - measure_start).count();
  result.calls_per_second = result.seconds > 0 ? result.calls / result.seconds : 0;
  result.p50 = Percentile(all, 0.50);
  result.p99 = Percentile(all, 0.99);
  result.p999 = Percentile(all, 0.999);
  result.server_cpu_seconds = cpu_after - cpu_before;
  return result;
}

}  // namespace clavis::bench
