// A loopback TCP port with nothing listening on it (bound to port 0, read
// back, closed), for tests of clients that must cope with a dead server.
// Another process could take it meanwhile; tests only need it to be dead
// for the few milliseconds they use it.
#ifndef CLAVIS_TESTS_TESTING_UNUSED_PORT_H_
#define CLAVIS_TESTS_TESTING_UNUSED_PORT_H_

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

namespace clavis::testing {

inline int UnusedLoopbackPort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

}  // namespace clavis::testing

#endif  // CLAVIS_TESTS_TESTING_UNUSED_PORT_H_
