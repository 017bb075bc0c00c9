// The read-only verbs: ls, stat, export, verify. They open the store as a secondary
// reader, so they work while a writer imports.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>

#include "core/aligned_buffer.h"
#include "tools/lazyblob_atomic_file.h"
#include "tools/lazyblob_commands.h"
#include "tools/lazyblob_format.h"
#include "tools/lazyblob_output.h"
#include "tools/lazyblob_progress.h"
#include "tools/store_gauges_from_stats.h"

namespace lazyblob::cli {
namespace {

using ull = unsigned long long;

Status WriteAll(int fd, const std::byte* data, std::size_t size, const std::string& name) {
  while (size > 0) {
    const ssize_t n = write(fd, data, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno(errno, "write " + name);
    }
    data += n;
    size -= static_cast<std::size_t>(n);
  }
  return Status::Ok();
}

// Streams the blob's chunks, each verified by ReadChunk, into `fd` in order.
Status CopyBlob(ChunkStore& store, const BlobMap& map, int fd, const std::string& name,
                ProgressBar& bar) {
  std::uint32_t largest = 0;
  for (const ChunkExtent& e : map.extents) largest = std::max(largest, e.length);
  AlignedBuffer buf(AlignUp(std::max<std::uint32_t>(largest, 1)));
  std::uint64_t done = 0;
  for (const ChunkExtent& e : map.extents) {
    std::span<std::byte> out(buf.data(), AlignUp(e.length));
    LB_RETURN_IF_ERROR(store.ReadChunk(e, out).WithContext(map.id));
    LB_RETURN_IF_ERROR(WriteAll(fd, buf.data(), e.length, name));
    done += e.length;
    bar.Update(done, map.size);
  }
  return Status::Ok();
}

// The store's reason may repeat "chunk K in pack P at offset O: "; keep the cause only.
std::string Cause(const std::string& reason) {
  const auto colon = reason.rfind(": ");
  if (reason.rfind("chunk ", 0) == 0 && colon != std::string::npos) return reason.substr(colon + 2);
  return reason;
}

std::string JoinIds(const std::vector<std::string>& ids) {
  std::string s;
  for (const std::string& id : ids) {
    if (!s.empty()) s += ", ";
    s += id;
  }
  return s.empty() ? "(none)" : s;
}

// All blobs, or the one named `id` (kNotFound naming the store when it has none).
Result<std::vector<BlobInfo>> GetBlobs(ChunkStore& store, const GlobalFlags& g,
                                       const std::optional<std::string>& id) {
  if (!id) return store.ListBlobs();
  auto blob = store.GetBlob(*id);
  if (!blob.ok()) {
    if (blob.status().code() == StatusCode::kNotFound) {
      return NotFound("no blob '" + *id + "' in " + g.store);
    }
    return blob.status();
  }
  return std::vector<BlobInfo>{*blob};
}

ExitCode StatOneBlob(ChunkStore& store, const GlobalFlags& g, const std::string& id) {
  auto blobs = GetBlobs(store, g, id);
  if (!blobs.ok()) return Fail(g, "stat", blobs.status());
  const BlobInfo& b = blobs->front();
  if (g.json) {
    nlohmann::json doc = ToJson(b);
    doc["store"] = g.store;
    PrintJson(doc);
    return kExitOk;
  }
  std::printf("id       %s\n", b.id.c_str());
  std::printf("size     %s (%llu bytes)\n", HumanBytes(b.size).c_str(), static_cast<ull>(b.size));
  std::printf("chunks   %llu\n", static_cast<ull>(b.chunk_count));
  std::printf("chunker  %s\n", b.chunker.ToString().c_str());
  std::printf("sha256   %s\n", Hex(b.sha256.data(), b.sha256.size()).c_str());
  std::printf("created  %s\n", HumanTime(b.created_unix_s).c_str());
  std::printf("store    %s\n", g.store.c_str());
  return kExitOk;
}

}  // namespace

ExitCode RunLs(const GlobalFlags& g, const std::optional<std::string>& id) {
  if (id) {
    if (Status s = ChunkStore::ValidateBlobId(*id); !s.ok()) return Fail(g, "ls", s);
  }
  auto store = OpenStore(g, /*writable=*/false);
  if (!store.ok()) return Fail(g, "ls", store.status());
  auto blobs = GetBlobs(**store, g, id);
  if (!blobs.ok()) return Fail(g, "ls", blobs.status());
  if (g.json) {
    nlohmann::json arr = nlohmann::json::array();
    for (const BlobInfo& b : *blobs) arr.push_back(ToJson(b));
    PrintJson({{"blobs", arr}});
    return kExitOk;
  }
  if (blobs->empty()) {
    std::printf("(no blobs in %s)\n", g.store.c_str());
    return kExitOk;
  }
  std::size_t width = 2;
  for (const BlobInfo& b : *blobs) width = std::max(width, b.id.size());
  std::printf("%-*s  %10s  %7s  %s\n", static_cast<int>(width), "ID", "SIZE", "CHUNKS", "CREATED");
  for (const BlobInfo& b : *blobs) {
    std::printf("%-*s  %10s  %7llu  %s\n", static_cast<int>(width), b.id.c_str(),
                HumanBytes(b.size).c_str(), static_cast<ull>(b.chunk_count),
                HumanTime(b.created_unix_s).c_str());
  }
  return kExitOk;
}

ExitCode RunStat(const GlobalFlags& g, const StatFlags& f, const std::optional<std::string>& id) {
  if (id) {
    if (Status s = ChunkStore::ValidateBlobId(*id); !s.ok()) return Fail(g, "stat", s);
  }
  auto store = OpenStore(g, /*writable=*/false);
  if (!store.ok()) return Fail(g, "stat", store.status());
  if (id) return StatOneBlob(**store, g, *id);
  auto stats = (*store)->Stats();
  if (!stats.ok()) return Fail(g, "stat", stats.status());
  const StoreStats& s = *stats;
  if (f.prometheus) {
    const std::string text = StoreGaugesText(StoreGaugesFrom(s));
    if (f.output.empty() || f.output == "-") {
      std::fwrite(text.data(), 1, text.size(), stdout);
      return kExitOk;
    }
    auto file = AtomicFile::Create(f.output, 0644);
    if (!file.ok()) return Fail(g, "stat", file.status());
    if (Status st = file->Write(text); !st.ok()) return Fail(g, "stat", st);
    if (Status st = file->Commit(); !st.ok()) return Fail(g, "stat", st);
    return kExitOk;
  }
  if (g.json) {
    nlohmann::json doc = ToJson(s);
    doc["store"] = g.store;
    PrintJson(doc);
    return kExitOk;
  }
  const auto bytes = [](std::uint64_t v) {
    return HumanBytes(v) + " (" + std::to_string(v) + " bytes)";
  };
  std::printf("store        %s\n", g.store.c_str());
  std::printf("blobs        %llu\n", static_cast<ull>(s.blobs));
  std::printf("chunks       %llu unique\n", static_cast<ull>(s.chunks));
  std::printf("logical      %s  (sum of blob sizes)\n", bytes(s.logical_bytes).c_str());
  std::printf("unique       %s  (after dedup)\n", bytes(s.unique_bytes).c_str());
  std::printf("stored       %s  (after compression)\n", bytes(s.stored_bytes).c_str());
  std::printf("dedup        %s\n", HumanRatio(s.dedup_ratio).c_str());
  std::printf("compression  %s\n", HumanRatio(s.compression_ratio).c_str());
  std::printf("packs        %llu (%s on disk)\n", static_cast<ull>(s.packs),
              HumanBytes(s.pack_file_bytes).c_str());
  return kExitOk;
}

ExitCode RunExport(const GlobalFlags& g, const ExportFlags& f) {
  constexpr std::string_view kVerb = "export";
  const bool to_stdout = f.output == "-";
  if (to_stdout && g.json) {
    return Fail(g, kVerb,
                InvalidArgument("--json cannot be combined with '-' (stdout is the data)"));
  }
  if (to_stdout && isatty(STDOUT_FILENO)) {
    return Fail(g, kVerb,
                InvalidArgument("refusing to write binary data to a terminal; redirect stdout"));
  }
  if (!to_stdout) {
    struct stat st {};
    if (stat(f.output.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
      return Fail(g, kVerb, InvalidArgument(f.output + ": is a directory"));
    }
    if (f.no_clobber && lstat(f.output.c_str(), &st) == 0) {
      return Fail(g, kVerb, AlreadyExists(f.output + ": exists (--no-clobber); nothing written"));
    }
  }
  if (Status s = ChunkStore::ValidateBlobId(f.id); !s.ok()) return Fail(g, kVerb, s);
  auto store = OpenStore(g, /*writable=*/false);
  if (!store.ok()) return Fail(g, kVerb, store.status());
  auto blob = (*store)->OpenBlob(f.id);
  if (!blob.ok()) {
    Status s = blob.status();
    if (s.code() == StatusCode::kNotFound) s = NotFound("no blob '" + f.id + "' in " + g.store);
    return Fail(g, kVerb, s);
  }
  ProgressBar bar("export", g.progress());
  if (to_stdout) {
    Status s = CopyBlob(**store, *blob->map, STDOUT_FILENO, "stdout", bar);
    bar.Finish();
    return s.ok() ? kExitOk : Fail(g, kVerb, s);
  }
  auto file = AtomicFile::Create(f.output, 0644);
  if (!file.ok()) return Fail(g, kVerb, file.status());
  Status s = CopyBlob(**store, *blob->map, file->fd(), f.output, bar);
  // --no-clobber: the final rename must not replace a file that appeared meanwhile.
  if (s.ok()) s = file->Commit(/*replace=*/!f.no_clobber);
  bar.Finish();
  if (!s.ok()) return Fail(g, kVerb, s);
  if (g.json) {
    PrintJson({{"id", f.id}, {"size", blob->map->size}, {"output", f.output}});
  } else if (!g.quiet) {
    std::printf("exported %s to %s (%s)\n", f.id.c_str(), f.output.c_str(),
                HumanBytes(blob->map->size).c_str());
  }
  return kExitOk;
}

ExitCode RunVerify(const GlobalFlags& g, const std::optional<std::string>& id,
                   const std::vector<std::string>& repair_sources) {
  constexpr std::string_view kVerb = "verify";
  if (id) {
    if (Status s = ChunkStore::ValidateBlobId(*id); !s.ok()) return Fail(g, kVerb, s);
  }
  const bool repairing = !repair_sources.empty();
  auto store = OpenStore(g, /*writable=*/repairing);
  if (!store.ok()) return Fail(g, kVerb, store.status());
  ProgressBar bar("verify", g.progress());
  const auto start = std::chrono::steady_clock::now();
  const auto verify = [&] {
    return (*store)->Verify(id, [&bar](std::uint64_t done, std::uint64_t total) {
      bar.Update(done, total, /*bytes=*/false);
    });
  };
  auto report = verify();
  RepairResult repaired;
  if (repairing && report.ok() && !report->corrupt.empty()) {
    std::vector<ChunkKey> keys;
    for (const CorruptChunk& c : report->corrupt) keys.push_back(c.key);
    auto r = (*store)->RepairChunks(keys, repair_sources);
    if (!r.ok()) {
      bar.Finish();
      return Fail(g, kVerb, r.status());
    }
    repaired = std::move(*r);
    if (repaired.chunks_repaired > 0) report = verify();  // what is left
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double chunks_per_s =
      seconds > 0 && report.ok() ? static_cast<double>(report->chunks_checked) / seconds : 0.0;
  bar.Finish();
  if (!report.ok()) {
    Status s = report.status();
    if (s.code() == StatusCode::kNotFound && id)
      s = NotFound("no blob '" + *id + "' in " + g.store);
    return Fail(g, kVerb, s);
  }
  const VerifyReport& r = *report;
  if (g.json) {
    nlohmann::json doc = ToJson(r);
    doc["elapsed_s"] = seconds;
    doc["chunks_per_s"] = chunks_per_s;
    if (repairing) {
      nlohmann::json left = nlohmann::json::array();
      for (const ChunkKey& k : repaired.not_found) left.push_back(k.ToHex());
      doc["chunks_repaired"] = repaired.chunks_repaired;
      doc["bytes_repaired"] = repaired.bytes_repaired;
      doc["not_repaired"] = left;
    }
    PrintJson(doc);
    return r.clean() ? kExitOk : kExitDataProblem;
  }
  if (repairing) {
    if (!g.quiet) {
      std::printf("verify: repaired %llu corrupt chunks (%s) from %zu source files\n",
                  static_cast<ull>(repaired.chunks_repaired),
                  HumanBytes(repaired.bytes_repaired).c_str(), repair_sources.size());
    }
    for (const ChunkKey& k : repaired.not_found) {
      std::printf("NOT REPAIRED chunk %s: no source file holds it\n", k.ToHex().c_str());
    }
  }
  std::vector<std::string> hit;
  for (const CorruptChunk& c : r.corrupt) {
    std::printf("CORRUPT chunk %s (pack %u, offset %llu): %s; blobs: %s\n", c.key.ToHex().c_str(),
                c.pack_id, static_cast<ull>(c.offset), Cause(c.reason).c_str(),
                JoinIds(c.blobs).c_str());
    hit.insert(hit.end(), c.blobs.begin(), c.blobs.end());
  }
  for (const MissingChunk& m : r.missing) {
    std::printf("MISSING chunk %s; blobs: %s\n", m.key.ToHex().c_str(), JoinIds(m.blobs).c_str());
    hit.insert(hit.end(), m.blobs.begin(), m.blobs.end());
  }
  std::sort(hit.begin(), hit.end());
  hit.erase(std::unique(hit.begin(), hit.end()), hit.end());
  if (r.clean()) {
    if (!g.quiet) {
      std::printf("verify: OK: %llu blobs, %llu chunks checked in %s (%.0f chunks/s)\n",
                  static_cast<ull>(r.blobs_checked), static_cast<ull>(r.chunks_checked),
                  HumanSeconds(seconds).c_str(), chunks_per_s);
    }
    return kExitOk;
  }
  std::printf(
      "verify: FAILED: %zu corrupt and %zu missing chunks (%llu chunks checked in %s); "
      "blobs hit: %s\n",
      r.corrupt.size(), r.missing.size(), static_cast<ull>(r.chunks_checked),
      HumanSeconds(seconds).c_str(), JoinIds(hit).c_str());
  return kExitDataProblem;
}

}  // namespace lazyblob::cli
