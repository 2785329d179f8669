// The control plane's gRPC handlers (KeyAdminService, AccessControlService)
// called in process with arbitrary request messages, on a fresh in-memory
// domain per input holding tenants/acme/keys/crm (generated) and
// tenants/acme/keys/byok (external, no material yet).
//
// Input: a sequence of frames (fuzz_util.h FrameReader): the tag chooses
// the RPC (tag % kRpcs.size(), in the order of kRpcs below, which the seed
// generator shares), the body is its request message. Calls run in order
// on the same domain, so a sequence can create, rotate, disable, set
// policies and then read.
//
// Left out: GetImportParameters (each call makes an RSA key: seconds, not
// microseconds), and the streaming ExportEscrow (escrow_bundle_fuzzer covers
// its format).
//
// Checks: no handler answers UNKNOWN, INTERNAL, UNAVAILABLE or DATA_LOSS
// (rpc_call.h), and none crashes.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "tests/fuzz/fuzz_domain.h"
#include "tests/fuzz/rpc_admin_methods.h"
#include "tests/fuzz/rpc_call.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  clavis::fuzz::QuietLogs();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace clavis::fuzz;
  const std::vector<AdminRpc>& rpcs = AdminRpcs();
  FuzzDomain domain;
  FrameReader frames(AsView(data, size));
  uint8_t tag;
  absl::string_view body;
  // A bound on calls per input keeps every input fast.
  for (int calls = 0; calls < 16 && frames.Next(&tag, &body); ++calls) {
    rpcs[tag % rpcs.size()].call(domain, body);
  }
  return 0;
}
