#include "metrics/metrics_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <string>

#include "core/unique_fd.h"
#include "metrics/process_metrics.h"
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

TEST(MetricsServer, ServesProcessMetricsAndNoExposerSeries) {
  auto server = MetricsServer::Start({.listen_address = "127.0.0.1:0", .stats = MakeStats()});
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  HttpGet((*server)->port(), "/metrics");  // prometheus-cpp's Exposer counts its scrapes
  const std::string resp = HttpGet((*server)->port(), "/metrics");
  const std::string text = resp.substr(resp.find("\r\n\r\n") + 4);
  // prometheus-cpp's Exposer adds exposer_* series (a summary with NaN quantiles): gone.
  EXPECT_EQ(text.find("exposer_"), std::string::npos) << text;
  EXPECT_EQ(text.find("NaN"), std::string::npos) << text;
  const auto m = testing::ParseExposition(text);
  for (const char* name :
       {"process_cpu_seconds_total", "process_start_time_seconds", "process_virtual_memory_bytes",
        "process_resident_memory_bytes", "process_open_fds", "process_max_fds"}) {
    ASSERT_EQ(m.count(name), 1u) << name << " missing:\n" << text;
  }
  EXPECT_GT(m.at("process_resident_memory_bytes"), 1 << 20);
  EXPECT_GT(m.at("process_open_fds"), 2);
  EXPECT_GT(m.at("process_start_time_seconds"), 1.5e9);
  EXPECT_NE(text.find("# TYPE process_cpu_seconds_total counter"), std::string::npos);
}

TEST(MetricsServer, UnknownPathsAre404) {
  auto server = MetricsServer::Start({.listen_address = "127.0.0.1:0", .stats = MakeStats()});
  ASSERT_TRUE(server.ok());
  const std::string resp = HttpGet((*server)->port(), "/nope");
  EXPECT_NE(resp.substr(0, resp.find("\r\n")).find(" 404 "), std::string::npos) << resp;
}

TEST(MetricsServer, Ipv6IsRefusedWithAReasonNotACivetwebError) {
  auto server = MetricsServer::Start({.listen_address = "[::1]:0", .stats = MakeStats()});
  // Debian 12's civetweb has no IPv6; should a build with it appear, this serves instead.
  if (server.ok()) GTEST_SKIP() << "civetweb with IPv6: [::1] is served";
  EXPECT_EQ(server.status().code(), StatusCode::kUnsupported);
  EXPECT_NE(server.status().message().find("IPv6 is not supported"), std::string::npos)
      << server.status().message();
}

TEST(ProcessMetrics, ParsesProcStatWithSpacesAndParensInTheName) {
  const std::string line =
      "1234 (a (weird) name) S 1 2 3 4 5 6 7 8 9 10 150 50 0 0 20 0 4 0 12345 8192000 300 "
      "18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0";
  auto st = ParseProcStat(line);
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(st->utime_ticks, 150);
  EXPECT_EQ(st->stime_ticks, 50);
  EXPECT_EQ(st->starttime_ticks, 12345);
  EXPECT_EQ(st->vsize_bytes, 8192000);
  EXPECT_EQ(st->rss_pages, 300);
  EXPECT_FALSE(ParseProcStat("1234 (x) S 1 2").has_value());
  EXPECT_FALSE(ParseProcStat("garbage").has_value());
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
                              "[::1:9150", ":9150", "[nonsense]:9150"}) {
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
