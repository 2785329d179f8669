// The closed-loop load generator of clavis-bench: N callers, each making
// one call after another for a fixed time after a warm-up, and the
// latencies of the calls made in the measured window.
//
// With a target rate the callers are paced instead (each starts its calls
// on a fixed schedule, together the target rate) and a call's latency is
// counted from when it was due, not when it started: a server that falls
// behind shows the wait (no "coordinated omission").
#ifndef CLAVIS_BENCH_LOAD_LOAD_GENERATOR_H_
#define CLAVIS_BENCH_LOAD_LOAD_GENERATOR_H_

#include <cstdint>
#include <functional>

#include "absl/time/time.h"

namespace clavis::bench {

struct LoadOptions {
  int callers = 16;
  absl::Duration warmup = absl::Seconds(1);
  absl::Duration duration = absl::Seconds(5);
  double target_calls_per_second = 0;  // 0: as fast as the server answers
};

struct LoadResult {
  int64_t calls = 0;   // successful calls in the measured window
  int64_t errors = 0;  // failed calls in the measured window
  double seconds = 0;
  double calls_per_second = 0;
  absl::Duration p50, p99, p999;
  double server_cpu_seconds = 0;  // in the measured window
  // Server CPU time per successful call.
  absl::Duration ServerCpuPerCall() const;
};

// `call(caller)` makes one call as caller number `caller` (0..callers-1)
// and says whether it succeeded. `server_cpu_seconds()` reads the server's
// CPU time so far.
LoadResult RunLoad(const LoadOptions& options, const std::function<bool(int)>& call,
                   const std::function<double()>& server_cpu_seconds);

}  // namespace clavis::bench

#endif  // CLAVIS_BENCH_LOAD_LOAD_GENERATOR_H_
