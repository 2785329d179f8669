// clavis-bench-echo: the bare gRPC echo server of clavis-bench's baseline
// (echo.proto). Listens on a loopback port chosen at run time and writes it
// to --port_file; with --tls_cert_file/--tls_key_file/--client_ca_file it
// uses TLS with client certificates, as clavisd does. SIGTERM stops it.
#include <signal.h>

#include <fstream>
#include <string>

#include "CLI/CLI.hpp"
#include "bench/load/echo.grpc.pb.h"
#include "bench/load/files.h"
#include "crypto/openssl_process.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"

namespace {

class EchoService final : public clavis::bench::Echo::Service {
 public:
  grpc::Status Echo(grpc::ServerContext*, const clavis::bench::EchoRequest* request,
                    clavis::bench::EchoResponse* response) override {
    // A response of the size asked, so the transport moves what the Clavis
    // call it stands for moves; the bytes themselves do not matter.
    response->mutable_payload()->assign(request->response_bytes(), 'e');
    return grpc::Status::OK;
  }
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"clavis-bench-echo: the bare gRPC echo baseline of clavis-bench"};
  std::string listen = "127.0.0.1:0", port_file, cert, key, client_ca;
  app.add_option("--listen", listen, "address to listen on (port 0: any free port)");
  app.add_option("--port_file", port_file, "write the port here once listening")->required();
  app.add_option("--tls_cert_file", cert, "PEM server certificate (TLS)");
  app.add_option("--tls_key_file", key, "PEM private key of the certificate");
  app.add_option("--client_ca_file", client_ca, "PEM CA of client certificates (mTLS)");
  CLI11_PARSE(app, argc, argv);

  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  std::shared_ptr<grpc::ServerCredentials> credentials = grpc::InsecureServerCredentials();
  if (!cert.empty()) {
    grpc::SslServerCredentialsOptions options(
        client_ca.empty() ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
                          : GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
    options.pem_root_certs = client_ca.empty() ? "" : clavis::bench::ReadFileOrDie(client_ca);
    options.pem_key_cert_pairs.push_back(
        {clavis::bench::ReadFileOrDie(key), clavis::bench::ReadFileOrDie(cert)});
    credentials = grpc::SslServerCredentials(options);
  }
  EchoService service;
  int port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort(listen, credentials, &port);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || port == 0) {
    std::fprintf(stderr, "clavis-bench-echo: cannot listen on %s\n", listen.c_str());
    return 1;
  }
  clavis::bench::WriteFileOrDie(port_file, std::to_string(port));
  int signal = 0;
  sigwait(&signals, &signal);
  server->Shutdown();
  server.reset();
  clavis::crypto::ExitWithoutLibraryCleanUp(0);
}
