// The maintenance verbs that change the store: rm, gc, rebuild-index. They take the
// exclusive writer lock; a second writer makes them fail with exit 2.
#include <cstdio>

#include "tools/lazyblob_commands.h"
#include "tools/lazyblob_format.h"
#include "tools/lazyblob_output.h"
#include "tools/lazyblob_progress.h"

namespace lazyblob::cli {
namespace {
using ull = unsigned long long;
}  // namespace

ExitCode RunRm(const GlobalFlags& g, const std::string& id) {
  constexpr std::string_view kVerb = "rm";
  if (Status s = ChunkStore::ValidateBlobId(id); !s.ok()) return Fail(g, kVerb, s);
  auto store = OpenStore(g, /*writable=*/true);
  if (!store.ok()) return Fail(g, kVerb, store.status());
  if (Status s = (*store)->Remove(id); !s.ok()) {
    if (s.code() == StatusCode::kNotFound) s = NotFound("no blob '" + id + "' in " + g.store);
    return Fail(g, kVerb, s);
  }
  if (g.json) {
    PrintJson({{"id", id}, {"removed", true}});
  } else if (!g.quiet) {
    std::printf("removed %s (run 'lazyblob gc' to reclaim the space of its unshared chunks)\n",
                id.c_str());
  }
  return kExitOk;
}

ExitCode RunGc(const GlobalFlags& g, bool dry_run) {
  constexpr std::string_view kVerb = "gc";
  auto store = OpenStore(g, /*writable=*/true);
  if (!store.ok()) return Fail(g, kVerb, store.status());
  ProgressBar bar("gc", g.progress());
  bar.StartTicker();
  auto result = (*store)->Gc(dry_run);
  bar.Finish();
  if (!result.ok()) return Fail(g, kVerb, result.status());
  const GcResult& r = *result;
  if (g.json) {
    PrintJson(ToJson(r));
    return kExitOk;
  }
  if (g.quiet) return kExitOk;
  std::printf("gc%s: %s %llu unreferenced chunks, %s %s (%llu packs rewritten, %llu deleted)\n",
              dry_run ? " (dry run)" : "", dry_run ? "would remove" : "removed",
              static_cast<ull>(r.chunks_removed), dry_run ? "would reclaim" : "reclaimed",
              HumanBytes(r.bytes_reclaimed).c_str(), static_cast<ull>(r.packs_rewritten),
              static_cast<ull>(r.packs_deleted));
  return kExitOk;
}

ExitCode RunRebuildIndex(const GlobalFlags& g) {
  constexpr std::string_view kVerb = "rebuild-index";
  if (Status s = RequireStore(g.store); !s.ok()) return Fail(g, kVerb, s);
  ChunkStoreOptions options;
  options.path = g.store;
  options.writable = true;
  ProgressBar bar("rebuild-index", g.progress());
  bar.StartTicker();
  auto report = ChunkStore::RebuildIndex(options);
  bar.Finish();
  if (!report.ok()) return Fail(g, kVerb, report.status());
  const RebuildReport& r = *report;
  const ExitCode code = r.problems.empty() ? kExitOk : kExitDataProblem;
  if (g.json) {
    PrintJson(ToJson(r));
    return code;
  }
  for (const std::string& p : r.problems) std::printf("PROBLEM %s\n", p.c_str());
  std::printf(
      "rebuilt the index from %llu packs: %llu blobs, %llu chunks (%llu removed blobs, "
      "%llu records skipped)\n",
      static_cast<ull>(r.packs_scanned), static_cast<ull>(r.blobs), static_cast<ull>(r.chunks),
      static_cast<ull>(r.removed_blobs), static_cast<ull>(r.skipped_records));
  if (!g.quiet) {
    std::printf(
        "note: rebuild-index reads record headers only and does not check chunk payloads; "
        "run 'lazyblob verify' (and 'lazyblob verify --repair FILE...' for what it finds)\n");
  }
  return code;
}

}  // namespace lazyblob::cli
