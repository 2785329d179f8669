// A local HTTP endpoint serving GET /metrics in the Prometheus text format
// (libmicrohttpd, one internal thread). Anything else is 404. Bind it to
// loopback: the figures say which keys exist and when they rotate.
#ifndef CLAVIS_TOOLS_ROTATOR_METRICS_SERVER_H_
#define CLAVIS_TOOLS_ROTATOR_METRICS_SERVER_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"

struct MHD_Daemon;

namespace clavis::rotator {

class MetricsServer {
 public:
  // Listens on `host:port` (an IPv4 address; port 0 picks a free one) and
  // answers /metrics with what `render` returns.
  static absl::StatusOr<std::unique_ptr<MetricsServer>> Start(const std::string& listen,
                                                              std::function<std::string()> render);
  ~MetricsServer();
  int port() const { return port_; }

 private:
  MetricsServer() = default;
  std::function<std::string()> render_;
  MHD_Daemon* daemon_ = nullptr;
  int port_ = 0;
  friend struct MetricsServerAccess;
};

}  // namespace clavis::rotator

#endif  // CLAVIS_TOOLS_ROTATOR_METRICS_SERVER_H_
