// The calls clavis-bench measures, and the echo call that stands for each.
//
// A Scenario is one RPC with its request built in advance (so the client
// measures the call, not building it) and the sizes of its request and
// response as serialised, which the echo baseline repeats.
#ifndef CLAVIS_BENCH_LOAD_SCENARIOS_H_
#define CLAVIS_BENCH_LOAD_SCENARIOS_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "grpcpp/channel.h"

namespace clavis::bench {

struct Scenario {
  std::string name;
  int items_per_call = 1;  // > 1 for batch calls
  size_t request_bytes = 0;
  size_t response_bytes = 0;
  std::function<bool(int caller)> call;
};

inline constexpr char kBenchTenant[] = "tenants/bench";
inline constexpr char kBenchKey[] = "tenants/bench/keys/k";

// Creates kBenchKey through `admin_channel`, with a key policy that lets
// `principal` use it (no policy when `principal` is empty: development
// mode), unless it exists. Ends the process with a message if that fails.
void PrepareBenchKey(const std::shared_ptr<grpc::Channel>& admin_channel,
                     const std::string& principal);

// The Clavis scenarios over `channels` (caller c uses channels[c % size]).
// `names` picks them: generate, generate-new-segment (a new segment each
// call: a store write), decrypt, batch-decrypt, reencrypt, encrypt.
// `batch_items`: the items of one batch-decrypt call.
std::vector<Scenario> ClavisScenarios(const std::vector<std::shared_ptr<grpc::Channel>>& channels,
                                      const std::vector<std::string>& names, int batch_items);

// An echo call with the sizes of `like` over `channels`.
Scenario EchoScenario(const std::vector<std::shared_ptr<grpc::Channel>>& channels,
                      const Scenario& like);

}  // namespace clavis::bench

#endif  // CLAVIS_BENCH_LOAD_SCENARIOS_H_
