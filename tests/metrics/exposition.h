// Test helper: parses the Prometheus text exposition format into {series -> value}, where
// a series is the sample's name and labels exactly as written
// (`lazyblob_requests_total{op="read",result="ok"}`).
#ifndef LAZYBLOB_TESTS_METRICS_EXPOSITION_H_
#define LAZYBLOB_TESTS_METRICS_EXPOSITION_H_

#include <cstdlib>
#include <map>
#include <set>
#include <sstream>
#include <string>

namespace lazyblob::testing {

inline std::map<std::string, double> ParseExposition(const std::string& text) {
  std::map<std::string, double> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    const std::size_t space = line.rfind(' ');
    if (space == std::string::npos) continue;
    out[line.substr(0, space)] = std::strtod(line.c_str() + space + 1, nullptr);
  }
  return out;
}

// Names declared by `# TYPE <name> <type>` lines.
inline std::set<std::string> DeclaredFamilies(const std::string& text) {
  std::set<std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("# TYPE ", 0) != 0) continue;
    std::istringstream words(line.substr(7));
    std::string name;
    words >> name;
    out.insert(name);
  }
  return out;
}

}  // namespace lazyblob::testing

#endif  // LAZYBLOB_TESTS_METRICS_EXPOSITION_H_
