// A development-mode clavisd inside the benchmark's process (loopback gRPC,
// no authentication, no rate limit) with one key, tenants/bench/keys/k, so
// that benchmarks measure the service and the SDK, not process start-up.
#ifndef CLAVIS_BENCH_IN_PROCESS_CLAVISD_H_
#define CLAVIS_BENCH_IN_PROCESS_CLAVISD_H_

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "clavis/v1/key_admin.grpc.pb.h"
#include "grpcpp/create_channel.h"
#include "kms/server/server.h"

namespace clavis::bench {

inline constexpr char kBenchKey[] = "tenants/bench/keys/k";

class InProcessClavisd {
 public:
  // Starts on a fresh data directory; `configure` may change the config
  // (e.g. the audit log settings) before the start. Exits the process with a
  // message if anything fails: a benchmark has nothing sensible to measure.
  explicit InProcessClavisd(const std::function<void(server::ServerConfig&)>& configure =
                                [](server::ServerConfig&) {}) {
    dir_ = (std::filesystem::temp_directory_path() /
            absl::StrCat("clavis-bench-", ::getpid(), "-", counter_++))
               .string();
    std::filesystem::remove_all(dir_);
    server::ServerConfig config;
    config.set_listen_address("127.0.0.1:0");
    config.set_data_dir(dir_);
    config.set_create_if_missing(true);
    config.set_insecure_dev_no_auth(true);
    config.set_log_level("warn");
    config.mutable_rate_limit()->set_disabled(true);
    configure(config);
    auto server = kms::Server::BuildAndStart(config);
    if (!server.ok()) Die(absl::StrCat("cannot start clavisd: ", server.status().message()));
    server_ = std::move(*server);
    address_ = absl::StrCat("127.0.0.1:", server_->port());
    auto admin =
        v1::KeyAdmin::NewStub(grpc::CreateChannel(address_, grpc::InsecureChannelCredentials()));
    grpc::ClientContext ctx;
    v1::CreateKeyRequest create;
    create.set_parent("tenants/bench");
    create.set_key_id("k");
    v1::Key key;
    if (!admin->CreateKey(&ctx, create, &key).ok()) Die("CreateKey failed");
  }

  ~InProcessClavisd() {
    server_->Shutdown(absl::Seconds(5));
    server_->Wait();
    server_.reset();
    std::filesystem::remove_all(dir_);
  }

  const std::string& address() const { return address_; }

  [[noreturn]] static void Die(const std::string& what) {
    std::fprintf(stderr, "benchmark: %s\n", what.c_str());
    std::exit(1);
  }

 private:
  static inline int counter_ = 0;
  std::string dir_;
  std::string address_;
  std::unique_ptr<kms::Server> server_;
};

}  // namespace clavis::bench

#endif  // CLAVIS_BENCH_IN_PROCESS_CLAVISD_H_
