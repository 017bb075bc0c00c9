// read_bench: how close the request engine gets to the limit of serving READs from the
// chunk store, side by side in one run (bench/run.sh drives it; bench/report/ plots it).
//
//   read_bench prepare  --store S --image IMG --blob ID     import IMG (store API) if absent
//   read_bench run      --store S --blob ID --work DIR ...  engine vs limit, JSON results
//   read_bench serve    --store S --blob ID --work DIR ...  one engine pass + RSS (scale)
//   read_bench variants --store S --image IMG ...           import mutated variants (scale)
//
// Figures are medians over --reps repetitions; ratios are paired within a repetition (the
// engine and the limit run back to back, so the shared machine's load hits both).
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>
#include <sstream>
#include <string>

#include "bench/read_bench_engine.h"
#include "bench/read_bench_limit.h"
#include "bench/read_bench_util.h"
#include "core/engine_stats.h"
#include "store/chunk_store.h"

namespace lazyblob::bench {
namespace {

using nlohmann::json;

std::vector<std::string> Split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string item; std::getline(ss, item, ',');) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

Result<std::unique_ptr<ChunkStore>> OpenReader(const std::string& path) {
  ChunkStoreOptions so;
  so.path = path;
  so.hold_serving_lock = true;  // as the daemon does
  return ChunkStore::Open(so);
}

Result<std::unique_ptr<ChunkStore>> OpenWriter(const std::string& path) {
  ChunkStoreOptions so;
  so.path = path;
  so.writable = true;
  so.create_if_missing = true;
  return ChunkStore::Open(so);
}

int Fail(const Status& s) {
  std::fprintf(stderr, "read_bench: %s\n", s.ToString().c_str());
  return 1;
}

bool WriteJson(const std::string& path, const json& j) {
  if (path.empty()) return true;
  std::ofstream out(path);
  out << j.dump(1) << "\n";
  return static_cast<bool>(out);
}

// The engine's per-stage times of one run: seconds and operations by stage, and the share
// of the worker threads' time (threads x wall) each stage took.
json StagesJson(const EngineRun& r, double occupancy_seconds) {
  json seconds = json::object(), ops = json::object(), share = json::object();
  for (int i = 0; i < kStageCount; ++i) {
    const std::string name(StageName(static_cast<Stage>(i)));
    seconds[name] = r.stage_seconds[i];
    ops[name] = r.stage_ops[i];
    share[name] = r.stage_seconds[i] / occupancy_seconds;
  }
  return {{"seconds", seconds}, {"operations", ops}, {"worker_share", share}};
}

json LatencyJson(const std::vector<double>& s) {
  return {{"count", s.size()},
          {"p50_us", Percentile(s, 0.5) * 1e6},
          {"p90_us", Percentile(s, 0.9) * 1e6},
          {"p99_us", Percentile(s, 0.99) * 1e6},
          {"max_us", Percentile(s, 1.0) * 1e6}};
}

// A coarse latency histogram (log2 buckets of microseconds) for the plots.
json Histogram(const std::vector<double>& s) {
  std::vector<std::uint64_t> buckets(24, 0);
  for (double v : s) {
    int b = 0;
    for (double us = v * 1e6; us >= 2 && b < 23; us /= 2) ++b;
    buckets[b]++;
  }
  return buckets;
}

struct RunArgs {
  std::string store, blob, work, out, verify_image, threads = "1,2,4", sizes = "131072,1048576",
                                                    patterns = "seq,rand";
  int reps = 3;
  std::uint64_t max_mib = 0;
};

int Run(const RunArgs& a) {
  auto store_or = OpenReader(a.store);
  if (!store_or.ok()) return Fail(store_or.status());
  ChunkStore* store = store_or->get();
  auto blob = store->OpenBlob(a.blob);
  if (!blob.ok()) return Fail(blob.status());
  const std::shared_ptr<const BlobMap> map = blob->map;
  auto chunks = LocateChunks(a.store, *map);
  if (!chunks.ok()) return Fail(chunks.status());
  const std::uint64_t max_bytes = a.max_mib << 20;
  const std::uint64_t size = max_bytes ? std::min(max_bytes, map->size) : map->size;
  std::vector<LimitChunk> limit_chunks;  // the chunks covering [0, size)
  for (const LimitChunk& c : *chunks) {
    if (c.extent.blob_offset < size) limit_chunks.push_back(c);
  }

  // Warm-up, discarded: the first O_DIRECT writes after an import compete with the pack's
  // writeback and with block allocation of a new file system region.
  auto warm = RunLimit(a.store, limit_chunks, size, a.work + "/warmup", 1, Pattern::kSequential);
  std::filesystem::remove_all(a.work + "/warmup");
  if (!warm.ok()) return Fail(warm.status());
  // The engine's warm-up, discarded too: the first engine run of a process fills a fresh
  // decompressed-chunk cache with memory the process never touched (~67k minor faults for
  // 256 MiB, paid inside decompress), which a long-running daemon pays once at startup and
  // the limit loop (one reused buffer) never pays. Without it, whichever cell runs first
  // (1 thread, seq, 128 KiB) measured 0.47-0.56 instead of 0.8-1.3.
  {
    EngineRunOptions eo;
    eo.blob_id = a.blob;
    eo.cache_dir = a.work + "/warmup-engine";
    eo.worker_threads = 1;
    eo.reader_threads = 1;
    eo.pattern = Pattern::kSequential;
    eo.read_bytes = 1 << 20;
    eo.max_bytes = size;
    auto r = RunEngine(store, eo);
    std::filesystem::remove_all(eo.cache_dir);
    if (!r.ok()) return Fail(r.status());
    std::printf("engine warm-up (discarded): %.1f MB/s, %llu minor faults\n",
                r->bytes / r->seconds / 1e6, static_cast<unsigned long long>(r->minor_faults));
  }

  json runs = json::array();
  int n = 0;
  for (int rep = 0; rep < a.reps; ++rep) {
    for (const std::string& ts : Split(a.threads)) {
      const int threads = std::stoi(ts);
      for (const std::string& ps : Split(a.patterns)) {
        const Pattern pattern = ps == "rand" ? Pattern::kRandom : Pattern::kSequential;
        const std::string dir = a.work + "/run-" + std::to_string(n++);
        auto limit = RunLimit(a.store, limit_chunks, size, dir + "-limit", threads, pattern);
        std::filesystem::remove_all(dir + "-limit");
        if (!limit.ok()) return Fail(limit.status());
        for (const std::string& ss : Split(a.sizes)) {
          EngineRunOptions eo;
          eo.blob_id = a.blob;
          eo.cache_dir = dir + "-engine-" + ss;
          eo.worker_threads = threads;
          eo.reader_threads = threads;
          eo.pattern = pattern;
          eo.read_bytes = static_cast<std::uint32_t>(std::stoul(ss));
          eo.max_bytes = size;
          eo.verify_image = a.verify_image;
          auto r = RunEngine(store, eo);
          if (!r.ok()) return Fail(r.status());
          const double occupancy = r->seconds * threads;
          json j = {{"rep", rep},
                    {"threads", threads},
                    {"pattern", PatternName(pattern)},
                    {"read_bytes", eo.read_bytes},
                    {"bytes", r->bytes},
                    {"engine_seconds", r->seconds},
                    {"limit_seconds", limit->seconds},
                    {"engine_mb_s", r->bytes / r->seconds / 1e6},
                    {"limit_mb_s", limit->bytes / limit->seconds / 1e6},
                    {"ratio", limit->seconds / r->seconds},
                    {"engine_read_latency", LatencyJson(r->engine_read_seconds)},
                    {"reader_latency", LatencyJson(r->reader_seconds)},
                    {"engine_read_hist_log2us", Histogram(r->engine_read_seconds)},
                    {"reads_sent", r->reads_sent},
                    {"chunks_loaded", r->chunks_loaded},
                    {"cache_hits", r->cache_hits},
                    {"bytes_written", r->bytes_written},
                    {"ahead_bytes", r->ahead_bytes},
                    {"minor_faults", r->minor_faults},
                    {"worker_share",
                     {{"store_read_chunk", r->source_read_chunk / occupancy},
                      {"complete", r->device_complete / occupancy},
                      {"receive", r->device_receive / occupancy}}},
                    {"engine_stages", StagesJson(*r, occupancy)}};
          std::printf(
              "rep %d  %d thr  %-4s  %7u B READs: engine %7.1f MB/s  limit %7.1f MB/s  "
              "ratio %.2f  READ p50 %.0f us p99 %.0f us (%llu READs, %llu minor faults)\n",
              rep, threads, PatternName(pattern), eo.read_bytes, j["engine_mb_s"].get<double>(),
              j["limit_mb_s"].get<double>(), j["ratio"].get<double>(),
              j["engine_read_latency"]["p50_us"].get<double>(),
              j["engine_read_latency"]["p99_us"].get<double>(),
              static_cast<unsigned long long>(r->reads_sent),
              static_cast<unsigned long long>(r->minor_faults));
          std::printf("       engine stages (%% of %d thr x wall):", threads);
          for (int i = 0; i < kStageCount; ++i) {
            std::printf(" %s %.1f%%", std::string(StageName(static_cast<Stage>(i))).c_str(),
                        100 * r->stage_seconds[i] / occupancy);
          }
          std::printf("\n");
          std::fflush(stdout);
          runs.push_back(std::move(j));
        }
      }
    }
  }
  auto probe = ProbeStages(store, a.store, limit_chunks, size, a.work + "/probe");
  std::filesystem::remove_all(a.work + "/probe");
  if (!probe.ok()) return Fail(probe.status());
  const double total =
      probe->lookup + probe->read + probe->decompress + probe->verify + probe->write;
  json stages = {{"chunks", probe->chunks},
                 {"seconds",
                  {{"lookup", probe->lookup},
                   {"read", probe->read},
                   {"decompress", probe->decompress},
                   {"verify", probe->verify},
                   {"write", probe->write},
                   {"store_read_chunk", probe->store_read_chunk}}}};
  std::printf(
      "stage probe (1 thread, %llu chunks): lookup %.1f%% read %.1f%% decompress %.1f%% "
      "verify %.1f%% write %.1f%%\n",
      static_cast<unsigned long long>(probe->chunks), 100 * probe->lookup / total,
      100 * probe->read / total, 100 * probe->decompress / total, 100 * probe->verify / total,
      100 * probe->write / total);
  std::uint64_t stored = 0;
  for (const LimitChunk& c : limit_chunks) stored += c.stored_len;
  json out = {{"blob", a.blob},         {"blob_bytes", size}, {"chunks", limit_chunks.size()},
              {"stored_bytes", stored}, {"reps", a.reps},     {"runs", runs},
              {"stage_probe", stages}};
  return WriteJson(a.out, out) ? 0 : Fail(IoError("writing " + a.out));
}

struct ServeArgs {
  std::string store, blob, work, out, pattern = "rand";
  int threads = 1;
  std::uint32_t read_bytes = 128 * 1024;
  std::uint64_t chunk_cache_mib = 256;
  std::uint64_t max_mib = 0;
};

int Serve(const ServeArgs& a) {
  auto store = OpenReader(a.store);
  if (!store.ok()) return Fail(store.status());
  const Rss before = ReadRss();
  EngineRunOptions eo;
  eo.blob_id = a.blob;
  eo.cache_dir = a.work + "/serve";
  eo.worker_threads = a.threads;
  eo.reader_threads = a.threads;
  eo.pattern = a.pattern == "rand" ? Pattern::kRandom : Pattern::kSequential;
  eo.read_bytes = a.read_bytes;
  eo.chunk_cache_bytes = a.chunk_cache_mib << 20;
  eo.max_bytes = a.max_mib << 20;
  auto r = RunEngine(store->get(), eo);
  if (!r.ok()) return Fail(r.status());
  const Rss after = ReadRss();
  auto stats = (*store)->Stats();
  if (!stats.ok()) return Fail(stats.status());
  json j = {{"blob", a.blob},
            {"store_blobs", stats->blobs},
            {"store_chunks", stats->chunks},
            {"store_pack_bytes", stats->pack_file_bytes},
            {"chunk_cache_mib", a.chunk_cache_mib},
            {"bytes", r->bytes},
            {"mb_s", r->bytes / r->seconds / 1e6},
            {"engine_read_latency", LatencyJson(r->engine_read_seconds)},
            {"reader_latency", LatencyJson(r->reader_seconds)},
            {"rss_kib_after_open", before.rss_kib},
            {"rss_kib_peak", after.hwm_kib},
            {"rss_kib_end", after.rss_kib}};
  std::printf(
      "serve %s: %llu chunks in store, %.1f MB/s, READ p50 %.0f us p99 %.0f us, "
      "peak RSS %llu MiB (cache %llu MiB)\n",
      a.blob.c_str(), static_cast<unsigned long long>(stats->chunks), j["mb_s"].get<double>(),
      j["engine_read_latency"]["p50_us"].get<double>(),
      j["engine_read_latency"]["p99_us"].get<double>(),
      static_cast<unsigned long long>(after.hwm_kib >> 10),
      static_cast<unsigned long long>(a.chunk_cache_mib));
  return WriteJson(a.out, j) ? 0 : Fail(IoError("writing " + a.out));
}

struct VariantArgs {
  std::string store, image, work, out;
  int from = 0, to = 1;
  std::uint64_t prefix_mib = 32;
  double mutate = 0.05;
};

// Variant v: the image's first prefix_mib MiB with `mutate` of it overwritten by random
// 64 KiB runs (v = 0: unmodified). Imported as blob scale-NNNN.
int Variants(const VariantArgs& a) {
  std::ifstream in(a.image, std::ios::binary);
  std::vector<char> base(a.prefix_mib << 20);
  in.read(base.data(), static_cast<std::streamsize>(base.size()));
  base.resize(static_cast<std::size_t>(in.gcount()));
  if (base.size() < (1u << 20)) return Fail(InvalidArgument("image too small: " + a.image));
  auto store = OpenWriter(a.store);
  if (!store.ok()) return Fail(store.status());
  std::filesystem::create_directories(a.work);
  const std::string path = a.work + "/variant.img";
  json imports = json::array();
  constexpr std::size_t kRun = 64 * 1024;
  for (int v = a.from; v < a.to; ++v) {
    std::vector<char> img = base;
    if (v > 0) {
      std::mt19937_64 rng(static_cast<std::uint64_t>(v));
      const std::size_t runs = static_cast<std::size_t>(a.mutate * img.size() / kRun);
      for (std::size_t i = 0; i < runs; ++i) {
        const std::size_t off = (rng() % (img.size() / 4096)) * 4096;
        for (std::size_t b = off; b < std::min(off + kRun, img.size()); b += 8) {
          const std::uint64_t x = rng();
          std::memcpy(&img[b], &x, std::min<std::size_t>(8, img.size() - b));
        }
      }
    }
    {
      std::ofstream f(path, std::ios::binary | std::ios::trunc);
      f.write(img.data(), static_cast<std::streamsize>(img.size()));
    }
    char id[32];
    std::snprintf(id, sizeof id, "scale-%04d", v);
    ImportOptions io;
    io.id = id;
    const Clock::time_point t0 = Clock::now();
    auto r = (*store)->ImportBlob(path, io);
    const double s = SecondsSince(t0);
    if (!r.ok()) return Fail(r.status());
    imports.push_back({{"variant", v},
                       {"seconds", s},
                       {"mb_s", img.size() / s / 1e6},
                       {"chunks", r->chunks},
                       {"new_chunks", r->new_chunks},
                       {"new_stored_bytes", r->new_stored_bytes}});
  }
  std::filesystem::remove(path);
  return WriteJson(a.out, imports) ? 0 : Fail(IoError("writing " + a.out));
}

int Prepare(const std::string& store_dir, const std::string& image, const std::string& blob) {
  auto store = OpenWriter(store_dir);
  if (!store.ok()) return Fail(store.status());
  ImportOptions io;
  io.id = blob;
  const Clock::time_point t0 = Clock::now();
  auto r = (*store)->ImportBlob(image, io);
  if (!r.ok()) return Fail(r.status());
  std::printf("prepare: blob %s, %llu bytes, %llu chunks (%llu new) in %.1f s%s\n", blob.c_str(),
              static_cast<unsigned long long>(r->size), static_cast<unsigned long long>(r->chunks),
              static_cast<unsigned long long>(r->new_chunks), SecondsSince(t0),
              r->already_present ? " (already present)" : "");
  return 0;
}

}  // namespace
}  // namespace lazyblob::bench

int main(int argc, char** argv) {
  using namespace lazyblob::bench;
  CLI::App app{"read_bench: request engine vs the limit"};
  app.require_subcommand(1);
  std::string store, image, blob;
  auto* prep = app.add_subcommand("prepare", "import the image into the store");
  prep->add_option("--store", store)->required();
  prep->add_option("--image", image)->required();
  prep->add_option("--blob", blob)->required();

  RunArgs ra;
  auto* run = app.add_subcommand("run", "engine vs limit");
  run->add_option("--store", ra.store)->required();
  run->add_option("--blob", ra.blob)->required();
  run->add_option("--work", ra.work)->required();
  run->add_option("--out", ra.out);
  run->add_option("--threads", ra.threads);
  run->add_option("--sizes", ra.sizes);
  run->add_option("--patterns", ra.patterns);
  run->add_option("--reps", ra.reps);
  run->add_option("--max-mib", ra.max_mib);
  run->add_option("--verify-image", ra.verify_image);

  ServeArgs sa;
  auto* serve = app.add_subcommand("serve", "one engine pass, with RSS");
  serve->add_option("--store", sa.store)->required();
  serve->add_option("--blob", sa.blob)->required();
  serve->add_option("--work", sa.work)->required();
  serve->add_option("--out", sa.out);
  serve->add_option("--threads", sa.threads);
  serve->add_option("--pattern", sa.pattern);
  serve->add_option("--read-bytes", sa.read_bytes);
  serve->add_option("--chunk-cache-mib", sa.chunk_cache_mib);
  serve->add_option("--max-mib", sa.max_mib);

  VariantArgs va;
  auto* var = app.add_subcommand("variants", "import mutated variants of the image");
  var->add_option("--store", va.store)->required();
  var->add_option("--image", va.image)->required();
  var->add_option("--work", va.work)->required();
  var->add_option("--out", va.out);
  var->add_option("--from", va.from);
  var->add_option("--to", va.to);
  var->add_option("--prefix-mib", va.prefix_mib);
  var->add_option("--mutate", va.mutate);

  CLI11_PARSE(app, argc, argv);
  if (*prep) return Prepare(store, image, blob);
  if (*run) return Run(ra);
  if (*serve) return Serve(sa);
  return Variants(va);
}
