// `lazyblob trace show|rm ID`: the access records lazyblobd keeps in <store>/traces/ (what
// a start of the blob read, in first-access order; store/trace_dir.h). They take no store
// lock: a record is one file replaced atomically, and lazyblobd writes it while serving.
#include <cstdio>

#include "core/access_trace.h"
#include "store/trace_dir.h"
#include "tools/lazyblob_commands.h"
#include "tools/lazyblob_format.h"
#include "tools/lazyblob_output.h"

namespace lazyblob::cli {
namespace {

using ull = unsigned long long;

Result<AccessTrace> LoadRecord(const GlobalFlags& g, const std::string& id) {
  LB_RETURN_IF_ERROR(RequireStore(g.store));
  Result<AccessTrace> trace = TraceDir(g.store).Load(id);
  if (trace.status().code() == StatusCode::kNotFound) {
    return NotFound("no access record for blob '" + id + "' in " + g.store);
  }
  return trace;
}

}  // namespace

ExitCode RunTraceShow(const GlobalFlags& g, const std::string& id) {
  constexpr std::string_view kVerb = "trace show";
  Result<AccessTrace> trace = LoadRecord(g, id);
  if (!trace.ok()) return Fail(g, kVerb, trace.status());
  if (g.json) {
    nlohmann::json offsets = nlohmann::json::array();
    for (std::uint64_t block : trace->blocks) offsets.push_back(block * AccessTrace::kBlockBytes);
    PrintJson({{"id", id},
               {"blob_size", trace->blob_size},
               {"chunks", trace->blocks.size()},
               {"offsets", std::move(offsets)},
               {"path", TraceDir(g.store).PathOf(id)}});
    return kExitOk;
  }
  if (g.quiet) return kExitOk;
  std::printf("%s: %llu chunks read at start, in first-access order (blob %s)\n", id.c_str(),
              static_cast<ull>(trace->blocks.size()), HumanBytes(trace->blob_size).c_str());
  for (std::size_t i = 0; i < trace->blocks.size(); ++i) {
    std::printf("%6llu  offset %llu\n", static_cast<ull>(i + 1),
                static_cast<ull>(trace->blocks[i] * AccessTrace::kBlockBytes));
  }
  return kExitOk;
}

ExitCode RunTraceRm(const GlobalFlags& g, const std::string& id) {
  constexpr std::string_view kVerb = "trace rm";
  if (Status s = RequireStore(g.store); !s.ok()) return Fail(g, kVerb, s);
  if (Status s = TraceDir(g.store).Remove(id); !s.ok()) {
    if (s.code() == StatusCode::kNotFound) {
      s = NotFound("no access record for blob '" + id + "' in " + g.store);
    }
    return Fail(g, kVerb, s);
  }
  if (g.json) {
    PrintJson({{"id", id}, {"removed", true}});
  } else if (!g.quiet) {
    std::printf("removed the access record of %s\n", id.c_str());
  }
  return kExitOk;
}

}  // namespace lazyblob::cli
