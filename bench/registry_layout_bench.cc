// registry_layout_bench: measures the registry layout choice of registry/FORMAT.md:
// bundle blobs of several target sizes vs one registry blob per chunk (bundle size 0).
// For each layout, against a running registry: push v1, push v2 (v1 + scattered
// changes), pull v1 into an empty store, and a lazy start (resolve v2 and fetch a few
// runs of neighbouring chunks, as a daemon would for the files a program opens).
// Prints one JSON object per line and a markdown table.
//
//   registry_layout_bench HOST:PORT LABEL [SIZE_MIB] [BUNDLE_SIZES...]
//
// Run through bench/registry/layout.sh (which starts the registry and a delaying proxy).
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "registry/blob_fetcher.h"
#include "registry/puller.h"
#include "registry/pusher.h"
#include "registry/registry_client.h"

namespace lazyblob {
namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

// Half zstd-compressible text, half random; v2 changes 8 scattered 128 KiB runs.
std::vector<char> MakeImage(std::size_t bytes, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<char> v(bytes);
  for (std::size_t i = 0; i < bytes; i += 8) {
    const std::uint64_t r = rng();
    for (std::size_t j = 0; j < 8 && i + j < bytes; ++j) {
      v[i + j] = (i / 65536) % 2 ? static_cast<char>(r >> (8 * j))
                                 : static_cast<char>('a' + (r >> (8 * j)) % 8);
    }
  }
  return v;
}

void Write(const std::string& path, const std::vector<char>& data) {
  std::ofstream(path, std::ios::binary)
      .write(data.data(), static_cast<std::streamsize>(data.size()));
}

std::unique_ptr<ChunkStore> Store(const std::string& dir) {
  ChunkStoreOptions o;
  o.path = dir;
  o.writable = true;
  o.create_if_missing = true;
  return ChunkStore::Open(o).value();
}

std::unique_ptr<RegistryClient> Client(const std::string& host, const std::string& repo) {
  RegistryOptions o;
  o.ref = RegistryRef::Parse("http://" + host + "/" + repo).value();
  o.push = true;
  return RegistryClient::Open(o).value();
}

struct Row {
  std::string label;
  std::uint64_t bundle = 0;
  double push1_s = 0, push2_s = 0, pull_s = 0, lazy_s = 0;
  std::uint64_t push1_req = 0, push2_req = 0, pull_req = 0, lazy_req = 0;
  std::uint64_t push2_uploaded = 0, lazy_bytes = 0, lazy_wanted = 0, registry_blobs = 0;
};

int Main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s HOST:PORT LABEL [SIZE_MIB] [BUNDLE_SIZES...]\n", argv[0]);
    return 2;
  }
  const std::string host = argv[1], label = argv[2];
  const std::size_t mib = argc > 3 ? std::stoul(argv[3]) : 32;
  std::vector<std::uint64_t> bundles;
  for (int i = 4; i < argc; ++i) bundles.push_back(std::stoull(argv[i]));
  if (bundles.empty()) bundles = {0, 1u << 20, 8u << 20, 32u << 20};

  const std::filesystem::path tmp =
      std::filesystem::temp_directory_path() / ("lazyblob-layout-" + std::to_string(::getpid()));
  std::filesystem::create_directories(tmp);
  std::vector<char> v1 = MakeImage(mib << 20, 1), v2 = v1;
  std::mt19937_64 rng(3);
  for (int i = 0; i < 8; ++i) {
    const std::size_t at = rng() % (v2.size() - (128 << 10));
    for (std::size_t j = 0; j < (128u << 10); ++j) v2[at + j] = static_cast<char>(rng());
  }
  Write(tmp / "v1", v1);
  Write(tmp / "v2", v2);
  auto src = Store(tmp / "src");
  ImportOptions io;
  io.id = "v1";
  src->ImportBlob(tmp / "v1", io).value();
  io.id = "v2";
  src->ImportBlob(tmp / "v2", io).value();

  std::vector<Row> rows;
  for (std::uint64_t bundle : bundles) {
    Row row;
    row.label = label;
    row.bundle = bundle;
    const std::string repo =
        "bench/" + label + "-b" + std::to_string(bundle) + "-" + std::to_string(::getpid());
    auto client = Client(host, repo);
    PushOptions po;
    po.bundle_target_bytes = bundle;
    auto t = Clock::now();
    auto p1 = PushBlobs(*client, *src, {"v1"}, po).value();
    row.push1_s = Seconds(t);
    row.push1_req = p1.http_requests;
    t = Clock::now();
    auto p2 = PushBlobs(*client, *src, {"v2"}, po).value();
    row.push2_s = Seconds(t);
    row.push2_req = p2.http_requests;
    row.push2_uploaded = p2.uploaded_bytes;
    row.registry_blobs = p1.blobs[0].bundles_uploaded + p2.blobs[0].bundles_uploaded;

    auto reader = Client(host, repo);
    auto dst = Store((tmp / ("dst-" + std::to_string(bundle))).string());
    t = Clock::now();
    auto pulled = PullBlob(*reader, *dst, "v1", PullOptions{}).value();
    row.pull_s = Seconds(t);
    row.pull_req = reader->stats().requests;

    // Lazy start: resolve v2, then 12 runs of 4 neighbouring chunks, one run at a time
    // (a daemon's READs of the files a program opens), default coalescing.
    auto lazy = Client(host, repo);
    BlobFetcher fetcher(lazy.get());
    t = Clock::now();
    auto blob = fetcher.Resolve("v2").value();
    std::mt19937_64 pick(11);
    for (int run = 0; run < 12; ++run) {
      const std::size_t first = pick() % (blob->map.chunks.size() - 4);
      std::vector<std::size_t> want = {first, first + 1, first + 2, first + 3};
      for (std::size_t i : want) row.lazy_wanted += blob->map.chunks[i].stored_len;
      FetchStats fs;
      for (const RangeRequest& r : BlobFetcher::Plan(blob->map, want, CoalesceOptions{})) {
        Status s = fetcher.Fetch(
            *blob, r, [](std::size_t, StoredChunk, auto) { return Status::Ok(); }, &fs);
        if (!s.ok()) {
          std::fprintf(stderr, "fetch: %s\n", s.ToString().c_str());
          return 1;
        }
      }
      row.lazy_bytes += fs.bytes;
    }
    row.lazy_s = Seconds(t);
    row.lazy_req = lazy->stats().requests;
    (void)pulled;
    std::printf(
        "{\"label\":\"%s\",\"bundle_bytes\":%llu,\"push_v1_s\":%.3f,\"push_v1_requests\":%llu,"
        "\"push_v2_s\":%.3f,\"push_v2_requests\":%llu,\"push_v2_uploaded_bytes\":%llu,"
        "\"registry_blobs\":%llu,\"pull_v1_s\":%.3f,\"pull_v1_requests\":%llu,"
        "\"lazy_s\":%.3f,\"lazy_requests\":%llu,\"lazy_bytes\":%llu,\"lazy_wanted_bytes\":%llu}\n",
        label.c_str(), static_cast<unsigned long long>(bundle), row.push1_s,
        static_cast<unsigned long long>(row.push1_req), row.push2_s,
        static_cast<unsigned long long>(row.push2_req),
        static_cast<unsigned long long>(row.push2_uploaded),
        static_cast<unsigned long long>(row.registry_blobs), row.pull_s,
        static_cast<unsigned long long>(row.pull_req), row.lazy_s,
        static_cast<unsigned long long>(row.lazy_req),
        static_cast<unsigned long long>(row.lazy_bytes),
        static_cast<unsigned long long>(row.lazy_wanted));
    std::fflush(stdout);
    rows.push_back(row);
  }
  std::printf(
      "\n| network | bundle | push v1 s (req) | push v2 s (req) | v2 uploaded | blobs | "
      "pull v1 s (req) | lazy start s (req) | lazy bytes / wanted |\n"
      "| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n");
  for (const Row& r : rows) {
    std::printf(
        "| %s | %s | %.2f (%llu) | %.2f (%llu) | %.2f MiB | %llu | %.2f (%llu) | %.3f (%llu) | "
        "%.2f |\n",
        r.label.c_str(),
        r.bundle == 0 ? "per chunk" : (std::to_string(r.bundle >> 20) + " MiB").c_str(), r.push1_s,
        static_cast<unsigned long long>(r.push1_req), r.push2_s,
        static_cast<unsigned long long>(r.push2_req), r.push2_uploaded / 1048576.0,
        static_cast<unsigned long long>(r.registry_blobs), r.pull_s,
        static_cast<unsigned long long>(r.pull_req), r.lazy_s,
        static_cast<unsigned long long>(r.lazy_req),
        r.lazy_wanted ? double(r.lazy_bytes) / double(r.lazy_wanted) : 0.0);
  }
  std::filesystem::remove_all(tmp);
  return 0;
}

}  // namespace
}  // namespace lazyblob

int main(int argc, char** argv) { return lazyblob::Main(argc, argv); }
