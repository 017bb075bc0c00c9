#include "metrics/metrics_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <string>

#include "core/unique_fd.h"
#include "tests/metrics/exposition.h"

namespace lazyblob {
namespace {

std::shared_ptr<PrometheusEngineStats> MakeStats() {
  auto stats = PrometheusEngineStats::Open({});
  EXPECT_TRUE(stats.ok());
  return std::move(stats).value();
}

// A listening loopback socket on a kernel-chosen port, standing in for "someone else".
UniqueFd ListenOnFreePort(int* port) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  EXPECT_EQ(::listen(fd.get(), 1), 0);
  socklen_t len = sizeof(a);
  EXPECT_EQ(::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&a), &len), 0);
  *port = ntohs(a.sin_port);
  return fd;
}

// GET `path` over loopback with HTTP/1.0; returns the whole response (headers + body).
std::string HttpGet(int port, const std::string& path) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) return "";
  const std::string req = "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
  if (::send(fd.get(), req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) {
    return "";
  }
  std::string resp;
  char buf[4096];
  ssize_t n;
  while ((n = ::recv(fd.get(), buf, sizeof(buf), 0)) > 0) resp.append(buf, static_cast<size_t>(n));
  return resp;
}

TEST(MetricsServer, ServesMetricsInTextFormatOverLoopback) {
  auto stats = MakeStats();
  stats->RequestDone(RequestOp::kRead, RequestResult::kOk, 0.001);
  stats->RequestDone(RequestOp::kRead, RequestResult::kOk, 0.001);
  auto server = MetricsServer::Start({.listen_address = "127.0.0.1:0", .stats = stats});
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  ASSERT_GT((*server)->port(), 0);

  const std::string resp = HttpGet((*server)->port(), "/metrics");
  ASSERT_EQ(resp.rfind("HTTP/1.1 200", 0), 0u) << resp.substr(0, 200);
  const std::size_t body = resp.find("\r\n\r\n");
  ASSERT_NE(body, std::string::npos);
  const std::string headers = resp.substr(0, body);
  EXPECT_NE(headers.find("text/plain"), std::string::npos) << headers;
  const std::string text = resp.substr(body + 4);
  EXPECT_NE(text.find("# TYPE lazyblob_requests_total counter"), std::string::npos);
  EXPECT_EQ(testing::ParseExposition(text).at(R"(lazyblob_requests_total{op="read",result="ok"})"),
            2);
}

TEST(MetricsServer, PortInUseIsAClearBusyError) {
  int port = 0;
  UniqueFd holder = ListenOnFreePort(&port);
  const std::string address = "127.0.0.1:" + std::to_string(port);
  auto server = MetricsServer::Start({.listen_address = address, .stats = MakeStats()});
  ASSERT_FALSE(server.ok());
  EXPECT_EQ(server.status().code(), StatusCode::kBusy);
  EXPECT_EQ(server.status().message(), "metrics endpoint " + address + ": address already in use");
}

TEST(MetricsServer, SecondServerOnSamePortIsBusy) {
  auto stats = MakeStats();
  auto first = MetricsServer::Start({.listen_address = "127.0.0.1:0", .stats = stats});
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  const std::string address = "127.0.0.1:" + std::to_string((*first)->port());
  auto second = MetricsServer::Start({.listen_address = address, .stats = stats});
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), StatusCode::kBusy);
}

TEST(MetricsServer, BadAddressesAreInvalidArguments) {
  auto stats = MakeStats();
  for (const char* address : {"", "127.0.0.1", "localhost:9150", "127.0.0.1:99999", "127.0.0.1:x",
                              "[::1:9150", ":9150"}) {
    auto server = MetricsServer::Start({.listen_address = address, .stats = stats});
    ASSERT_FALSE(server.ok()) << address;
    EXPECT_EQ(server.status().code(), StatusCode::kInvalidArgument) << address;
  }
}

TEST(MetricsServer, MissingStatsIsInvalidArgument) {
  MetricsServerOptions options;
  options.listen_address = "127.0.0.1:0";
  auto server = MetricsServer::Start(options);
  EXPECT_EQ(server.status().code(), StatusCode::kInvalidArgument);
}

TEST(MetricsServer, StatsOutliveTheCallersReference) {
  auto stats = MakeStats();
  auto server = MetricsServer::Start({.listen_address = "127.0.0.1:0", .stats = stats});
  ASSERT_TRUE(server.ok());
  stats->Restored();
  stats.reset();  // the server still holds it
  const std::string resp = HttpGet((*server)->port(), "/metrics");
  EXPECT_NE(resp.find("lazyblob_restores_total 1"), std::string::npos);
}

}  // namespace
}  // namespace lazyblob
