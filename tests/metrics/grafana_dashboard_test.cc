// docs/grafana-dashboard.json must only query metrics the daemon exports: every
// lazyblob_* name in a panel expression is checked against a full exposition.
#include <gtest/gtest.h>

#include <cctype>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "metrics/prometheus_engine_stats.h"
#include "metrics/prometheus_origin_stats.h"
#include "tests/metrics/exposition.h"

namespace lazyblob {
namespace {

void CollectExprs(const nlohmann::json& j, std::vector<std::string>& out) {
  if (j.is_object()) {
    for (auto it = j.begin(); it != j.end(); ++it) {
      if (it.key() == "expr" && it.value().is_string()) out.push_back(it.value());
      CollectExprs(it.value(), out);
    }
  } else if (j.is_array()) {
    for (const auto& e : j) CollectExprs(e, out);
  }
}

std::vector<std::string> DashboardExprs() {
  std::ifstream in(std::string(LAZYBLOB_SOURCE_DIR) + "/docs/grafana-dashboard.json");
  EXPECT_TRUE(in.good());
  const nlohmann::json dashboard = nlohmann::json::parse(in);  // throws (fails) if not JSON
  std::vector<std::string> exprs;
  CollectExprs(dashboard, exprs);
  return exprs;
}

// Every family the daemon can export, with all optional ones switched on and set.
std::set<std::string> ExportedFamilies() {
  auto stats = std::move(PrometheusEngineStats::Open({})).value();
  stats->OpenObjects(+1, "blob");
  stats->SetStoreGauges({});
  std::set<std::string> families = testing::DeclaredFamilies(stats->TextExposition());
  // A daemon with --origin also serves the lazyblob_origin_* families.
  for (const std::string& f : testing::DeclaredFamilies(PrometheusOriginStats().TextExposition())) {
    families.insert(f);
  }
  return families;
}

// Every lazyblob_* identifier in a PromQL expression. (No std::regex: g++ 12 reports a
// false maybe-uninitialized inside it under -fsanitize=address -Werror.)
std::vector<std::string> MetricNames(const std::string& expr) {
  std::vector<std::string> out;
  const auto ident = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; };
  for (std::size_t pos = expr.find("lazyblob_"); pos != std::string::npos;
       pos = expr.find("lazyblob_", pos)) {
    std::size_t end = pos;
    while (end < expr.size() && ident(expr[end])) ++end;
    if (pos == 0 || !ident(expr[pos - 1])) out.push_back(expr.substr(pos, end - pos));
    pos = end;
  }
  return out;
}

std::string StripSeriesSuffix(const std::string& name, const std::set<std::string>& families) {
  for (const char* suffix : {"_bucket", "_sum", "_count"}) {
    const std::string s(suffix);
    if (name.size() > s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0) {
      const std::string base = name.substr(0, name.size() - s.size());
      if (families.count(base)) return base;
    }
  }
  return name;
}

TEST(GrafanaDashboard, EveryQueriedMetricIsExported) {
  const std::set<std::string> families = ExportedFamilies();
  int names = 0;
  for (const std::string& expr : DashboardExprs()) {
    for (const std::string& found : MetricNames(expr)) {
      ++names;
      const std::string name = StripSeriesSuffix(found, families);
      EXPECT_TRUE(families.count(name)) << name << " in: " << expr;
    }
  }
  EXPECT_GT(names, 0);
}

TEST(GrafanaDashboard, HasTheAgreedPanels) {
  std::string all;
  for (const std::string& expr : DashboardExprs()) all += expr + "\n";
  EXPECT_NE(all.find("histogram_quantile"), std::string::npos);
  EXPECT_NE(all.find("lazyblob_read_latency_seconds_bucket"), std::string::npos);
  EXPECT_NE(all.find(R"(op="read")"), std::string::npos);  // read rate
  EXPECT_NE(all.find("cache_hit"), std::string::npos);     // hit ratio
  EXPECT_NE(all.find("error"), std::string::npos);         // errors
  EXPECT_NE(all.find("lazyblob_requests_in_flight"), std::string::npos);
}

// A fleet: every query is filtered by the dashboard's job and instance variables, and
// every aggregation keeps instances apart, so nodes are never summed into one line.
TEST(GrafanaDashboard, JobAndInstanceVariablesSelectEverySeries) {
  std::ifstream in(std::string(LAZYBLOB_SOURCE_DIR) + "/docs/grafana-dashboard.json");
  const nlohmann::json dashboard = nlohmann::json::parse(in);
  std::set<std::string> vars;
  for (const auto& v : dashboard["templating"]["list"]) vars.insert(v["name"].get<std::string>());
  EXPECT_TRUE(vars.count("job"));
  EXPECT_TRUE(vars.count("instance"));
  const std::string selector = R"({job=~"$job",instance=~"$instance")";
  for (const std::string& expr : DashboardExprs()) {
    for (std::size_t pos = expr.find("lazyblob_"); pos != std::string::npos;
         pos = expr.find("lazyblob_", pos + 1)) {
      const std::size_t brace = expr.find_first_of("{[ )", pos);
      EXPECT_EQ(expr.compare(brace, selector.size(), selector), 0) << expr;
    }
    for (std::size_t pos = expr.find("sum"); pos != std::string::npos;
         pos = expr.find("sum", pos + 1)) {
      if (expr.compare(pos, 4, "sum ") != 0 && expr.compare(pos, 4, "sum(") != 0) continue;
      EXPECT_EQ(expr.compare(pos, 16, "sum by (instance"), 0) << expr;
    }
  }
}

}  // namespace
}  // namespace lazyblob
