#include "bench/load/scenarios.h"

#include <unistd.h>

#include <atomic>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "bench/load/echo.grpc.pb.h"
#include "bench/load/files.h"
#include "clavis/v1/access_control.grpc.pb.h"
#include "clavis/v1/key_admin.grpc.pb.h"
#include "clavis/v1/key_management.grpc.pb.h"

namespace clavis::bench {
namespace {

constexpr absl::Duration kCallDeadline = absl::Seconds(10);

void SetDeadline(grpc::ClientContext& context) {
  context.set_deadline(absl::ToChronoTime(absl::Now() + kCallDeadline));
}

// A typical context: what a CRM's orders table would bind.
void FillContext(google::protobuf::Map<std::string, std::string>* context) {
  (*context)["table"] = "orders";
  (*context)["tenant"] = "acme";
}

using DataStubs = std::vector<std::unique_ptr<v1::KeyManagement::Stub>>;

// Wrapped data keys to decrypt: `count` of them over 16 segments, so the
// server's segment-key cache is warm, as it is in a service in use.
std::vector<std::string> MakeBlobs(v1::KeyManagement::Stub& stub, int count) {
  std::vector<std::string> blobs;
  for (int i = 0; i < count; ++i) {
    v1::GenerateDataKeyRequest request;
    request.set_key(kBenchKey);
    request.set_segment(absl::StrCat("bench/s", i % 16));
    FillContext(request.mutable_encryption_context());
    v1::GenerateDataKeyResponse response;
    grpc::ClientContext context;
    SetDeadline(context);
    const grpc::Status status = stub.GenerateDataKey(&context, request, &response);
    if (!status.ok()) DieWith("GenerateDataKey failed: " + status.error_message());
    blobs.push_back(response.ciphertext_blob());
  }
  return blobs;
}

// Runs `make` once to learn the response size, then returns the scenario.
template <typename Request, typename Response>
Scenario Make(std::string name, int items, std::shared_ptr<DataStubs> stubs,
              std::shared_ptr<std::vector<Request>> requests,
              grpc::Status (v1::KeyManagement::Stub::*method)(grpc::ClientContext*, const Request&,
                                                              Response*)) {
  Scenario scenario;
  scenario.name = std::move(name);
  scenario.items_per_call = items;
  scenario.request_bytes = (*requests)[0].ByteSizeLong();
  Response sample;
  grpc::ClientContext context;
  SetDeadline(context);
  const grpc::Status status = ((*stubs)[0].get()->*method)(&context, (*requests)[0], &sample);
  if (!status.ok()) DieWith(scenario.name + " failed: " + status.error_message());
  scenario.response_bytes = sample.ByteSizeLong();
  scenario.call = [stubs, requests, method](int caller) {
    // Each caller (a thread of its own) walks the prepared requests.
    static thread_local size_t position = 0;
    const Request& request = (*requests)[(position++ + caller) % requests->size()];
    v1::KeyManagement::Stub* stub = (*stubs)[caller % stubs->size()].get();
    Response response;
    grpc::ClientContext context;
    SetDeadline(context);
    return (stub->*method)(&context, request, &response).ok();
  };
  return scenario;
}

}  // namespace

void PrepareBenchKey(const std::shared_ptr<grpc::Channel>& admin_channel,
                     const std::string& principal) {
  auto admin = v1::KeyAdmin::NewStub(admin_channel);
  {
    v1::CreateKeyRequest request;
    request.set_parent(kBenchTenant);
    request.set_key_id("k");
    v1::Key key;
    grpc::ClientContext context;
    SetDeadline(context);
    const grpc::Status status = admin->CreateKey(&context, request, &key);
    if (!status.ok() && status.error_code() != grpc::StatusCode::ALREADY_EXISTS) {
      DieWith("CreateKey failed: " + status.error_message());
    }
  }
  if (principal.empty()) return;  // development mode: no policies
  auto access = v1::AccessControl::NewStub(admin_channel);
  v1::SetKeyPolicyRequest request;
  request.set_key(kBenchKey);
  request.set_policy(absl::StrCat(
      R"({"version": "2026-11-01", "allowAdminAndDataToSamePrincipal": true, "statements": [)",
      R"({"sid": "bench", "effect": "Allow", "principals": [")", principal,
      R"("], "actions": ["*"]}]})"));
  v1::KeyPolicy policy;
  grpc::ClientContext context;
  SetDeadline(context);
  const grpc::Status status = access->SetKeyPolicy(&context, request, &policy);
  if (!status.ok()) DieWith("SetKeyPolicy failed: " + status.error_message());
}

std::vector<Scenario> ClavisScenarios(const std::vector<std::shared_ptr<grpc::Channel>>& channels,
                                      const std::vector<std::string>& names, int batch_items) {
  auto stubs = std::make_shared<DataStubs>();
  for (const auto& channel : channels) stubs->push_back(v1::KeyManagement::NewStub(channel));
  const std::vector<std::string> blobs = MakeBlobs(*(*stubs)[0], std::max(256, batch_items));

  std::vector<Scenario> scenarios;
  for (const std::string& name : names) {
    if (name == "generate") {
      auto requests = std::make_shared<std::vector<v1::GenerateDataKeyRequest>>();
      for (int s = 0; s < 16; ++s) {
        v1::GenerateDataKeyRequest request;
        request.set_key(kBenchKey);
        request.set_segment(absl::StrCat("bench/s", s));
        FillContext(request.mutable_encryption_context());
        requests->push_back(std::move(request));
      }
      scenarios.push_back(
          Make(name, 1, stubs, requests, &v1::KeyManagement::Stub::GenerateDataKey));
    } else if (name == "generate-new-segment") {
      // Every call names a segment never used before, so clavisd creates it:
      // a compare-and-set write to its store per call (the other scenarios
      // reuse 16 segments, which stay cached and write nothing).
      static std::atomic<uint64_t> scenarios_made{0};
      auto prefix = std::make_shared<std::string>(absl::StrCat(
          "bench/new-", ::getpid(), "-", absl::ToUnixNanos(absl::Now()), "-", scenarios_made++));
      auto next = std::make_shared<std::atomic<uint64_t>>(0);
      auto request = std::make_shared<v1::GenerateDataKeyRequest>();
      request->set_key(kBenchKey);
      FillContext(request->mutable_encryption_context());
      auto call = [stubs, prefix, next, request](int caller, v1::GenerateDataKeyResponse* out) {
        v1::GenerateDataKeyRequest r = *request;
        r.set_segment(absl::StrCat(*prefix, "/", next->fetch_add(1)));
        grpc::ClientContext context;
        SetDeadline(context);
        return (*stubs)[caller % stubs->size()]->GenerateDataKey(&context, r, out);
      };
      Scenario scenario;
      scenario.name = name;
      v1::GenerateDataKeyResponse sample;
      const grpc::Status status = call(0, &sample);
      if (!status.ok()) DieWith(name + " failed: " + status.error_message());
      scenario.request_bytes = request->ByteSizeLong() + prefix->size() + 8;
      scenario.response_bytes = sample.ByteSizeLong();
      scenario.call = [call](int caller) {
        v1::GenerateDataKeyResponse response;
        return call(caller, &response).ok();
      };
      scenarios.push_back(std::move(scenario));
    } else if (name == "decrypt") {
      auto requests = std::make_shared<std::vector<v1::DecryptRequest>>();
      for (const std::string& blob : blobs) {
        v1::DecryptRequest request;
        request.set_ciphertext_blob(blob);
        FillContext(request.mutable_encryption_context());
        requests->push_back(std::move(request));
      }
      scenarios.push_back(Make(name, 1, stubs, requests, &v1::KeyManagement::Stub::Decrypt));
    } else if (name == "batch-decrypt") {
      auto requests = std::make_shared<std::vector<v1::BatchDecryptRequest>>(1);
      for (int i = 0; i < batch_items; ++i) {
        v1::DecryptRequest* item = (*requests)[0].add_requests();
        item->set_ciphertext_blob(blobs[i % blobs.size()]);
        FillContext(item->mutable_encryption_context());
      }
      scenarios.push_back(
          Make(name, batch_items, stubs, requests, &v1::KeyManagement::Stub::BatchDecrypt));
    } else if (name == "reencrypt") {
      auto requests = std::make_shared<std::vector<v1::ReEncryptRequest>>();
      for (const std::string& blob : blobs) {
        v1::ReEncryptRequest request;
        request.set_ciphertext_blob(blob);
        FillContext(request.mutable_encryption_context());
        requests->push_back(std::move(request));
      }
      scenarios.push_back(Make(name, 1, stubs, requests, &v1::KeyManagement::Stub::ReEncrypt));
    } else if (name == "encrypt") {
      auto requests = std::make_shared<std::vector<v1::EncryptRequest>>();
      for (int s = 0; s < 16; ++s) {
        v1::EncryptRequest request;
        request.set_key(kBenchKey);
        request.set_segment(absl::StrCat("bench/s", s));
        request.set_plaintext(std::string(64, 'p'));  // a small secret: a card PAN, a token
        FillContext(request.mutable_encryption_context());
        requests->push_back(std::move(request));
      }
      scenarios.push_back(Make(name, 1, stubs, requests, &v1::KeyManagement::Stub::Encrypt));
    } else {
      DieWith("unknown scenario " + name +
              " (generate, generate-new-segment, decrypt, batch-decrypt, reencrypt, encrypt)");
    }
  }
  return scenarios;
}

Scenario EchoScenario(const std::vector<std::shared_ptr<grpc::Channel>>& channels,
                      const Scenario& like) {
  auto stubs = std::make_shared<std::vector<std::unique_ptr<Echo::Stub>>>();
  for (const auto& channel : channels) stubs->push_back(Echo::NewStub(channel));
  auto request = std::make_shared<EchoRequest>();
  // The payload field's own framing is a few bytes; close enough.
  request->set_payload(std::string(like.request_bytes, 'q'));
  request->set_response_bytes(static_cast<uint32_t>(like.response_bytes));
  Scenario scenario;
  scenario.name = "echo as " + like.name;
  scenario.items_per_call = like.items_per_call;
  scenario.request_bytes = request->ByteSizeLong();
  scenario.response_bytes = like.response_bytes;
  scenario.call = [stubs, request](int caller) {
    EchoResponse response;
    grpc::ClientContext context;
    SetDeadline(context);
    return (*stubs)[caller % stubs->size()]->Echo(&context, *request, &response).ok();
  };
  return scenario;
}

}  // namespace clavis::bench
