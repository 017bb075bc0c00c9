#include "bench/read_bench_limit.h"

#include <fcntl.h>
#include <unistd.h>
#include <xxhash.h>
#include <zstd.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "core/aligned_buffer.h"
#include "core/unique_fd.h"
#include "store/pack_scanner.h"

namespace lazyblob::bench {
namespace {

// pack id -> open fd, for every pack in the store.
Result<std::map<std::uint32_t, UniqueFd>> OpenPacks(const std::string& store_dir) {
  std::map<std::uint32_t, UniqueFd> packs;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(store_dir + "/packs", ec)) {
    const std::string name = e.path().filename().string();
    if (name.size() != 15 || name.rfind("pack-", 0) != 0 || name.substr(11) != ".lbp") continue;
    const auto id = static_cast<std::uint32_t>(std::stoul(name.substr(5, 6)));
    int fd = ::open(e.path().c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return Status::FromErrno(errno, "open " + e.path().string());
    packs.emplace(id, UniqueFd(fd));
  }
  if (ec) return IoError("listing " + store_dir + "/packs: " + ec.message());
  return packs;
}

Result<UniqueFd> CreateOutput(const std::string& out_dir, std::uint64_t blob_size) {
  std::filesystem::create_directories(out_dir);
  const std::string path = out_dir + "/limit.bin";
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_DIRECT | O_CLOEXEC, 0600);
  if (fd < 0) return Status::FromErrno(errno, "open " + path);
  UniqueFd out(fd);
  if (::ftruncate(fd, static_cast<off_t>(AlignUp(blob_size))) != 0) {
    return Status::FromErrno(errno, "ftruncate " + path);
  }
  return out;
}

Status PreadAll(int fd, std::uint8_t* buf, std::size_t n, std::uint64_t off) {
  while (n > 0) {
    ssize_t r = ::pread(fd, buf, n, static_cast<off_t>(off));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return Status::FromErrno(errno, "pread pack");
    if (r == 0) return IoError("pack is short");
    buf += r;
    n -= static_cast<std::size_t>(r);
    off += static_cast<std::uint64_t>(r);
  }
  return Status::Ok();
}

Status PwriteAll(int fd, const std::byte* buf, std::size_t n, std::uint64_t off) {
  while (n > 0) {
    ssize_t r = ::pwrite(fd, buf, n, static_cast<off_t>(off));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return Status::FromErrno(errno, "pwrite O_DIRECT");
    buf += r;
    n -= static_cast<std::size_t>(r);
    off += static_cast<std::uint64_t>(r);
  }
  return Status::Ok();
}

Status Decompress(const LimitChunk& c, const std::vector<std::uint8_t>& in, AlignedBuffer* out) {
  const std::size_t len = c.extent.length;
  if (c.zstd) {
    std::size_t r = ZSTD_decompress(out->data(), out->size(), in.data(), c.stored_len);
    if (ZSTD_isError(r) || r != len) return Corruption("zstd: bad chunk");
  } else {
    std::memcpy(out->data(), in.data(), len);
  }
  std::memset(out->data() + len, 0, AlignUp(len) - len);
  return Status::Ok();
}

}  // namespace

Result<std::vector<LimitChunk>> LocateChunks(const std::string& store_dir, const BlobMap& map) {
  std::unordered_map<ChunkKey, LimitChunk, ChunkKeyHash> found;
  for (const ChunkExtent& e : map.extents) found.emplace(e.key, LimitChunk{});
  LB_ASSIGN_OR_RETURN(auto packs, OpenPacks(store_dir));
  for (const auto& [id, fd] : packs) {
    LB_ASSIGN_OR_RETURN(auto scanner, PackScanner::Open(store_dir, id));
    std::vector<std::string> problems;
    while (true) {
      LB_ASSIGN_OR_RETURN(auto rec, scanner->Next(&problems));
      if (!rec) break;
      if (rec->header.type != RecordType::kChunk) continue;
      auto it = found.find(rec->header.key);
      if (it == found.end()) continue;
      it->second.pack_id = id;
      it->second.payload_offset = rec->offset + kRecordHeaderBytes;
      it->second.stored_len = rec->header.stored_len;
      it->second.zstd = rec->header.codec == Codec::kZstd;
    }
  }
  std::vector<LimitChunk> out;
  for (const ChunkExtent& e : map.extents) {
    LimitChunk c = found.at(e.key);
    if (c.stored_len == 0) return NotFound("chunk " + e.key.ToHex() + " not in any pack");
    c.extent = e;
    out.push_back(c);
  }
  return out;
}

Result<LimitRun> RunLimit(const std::string& store_dir, const std::vector<LimitChunk>& chunks,
                          std::uint64_t blob_size, const std::string& out_dir, int threads,
                          Pattern pattern) {
  LB_ASSIGN_OR_RETURN(auto packs, OpenPacks(store_dir));
  LB_ASSIGN_OR_RETURN(UniqueFd out, CreateOutput(out_dir, blob_size));
  // The plan is over chunk indexes (unit 1).
  auto plan = MakePlan(chunks.size(), 1, threads, pattern);
  std::atomic<bool> failed{false};
  std::string error;
  std::mutex error_mu;
  const Clock::time_point t0 = Clock::now();
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      std::vector<std::uint8_t> in;
      AlignedBuffer buf;
      for (const ReadOp& op : plan[t]) {
        const LimitChunk& c = chunks[op.offset];
        in.resize(c.stored_len);
        if (buf.size() < AlignUp(c.extent.length)) buf = AlignedBuffer(c.extent.length);
        Status s = PreadAll(packs.at(c.pack_id).get(), in.data(), c.stored_len, c.payload_offset);
        if (s.ok()) s = Decompress(c, in, &buf);
        if (s.ok())
          s = PwriteAll(out.get(), buf.data(), AlignUp(c.extent.length), c.extent.blob_offset);
        if (!s.ok()) {
          std::lock_guard lock(error_mu);
          error = s.ToString();
          failed = true;
          return;
        }
      }
    });
  }
  for (auto& w : workers) w.join();
  LimitRun run{SecondsSince(t0), blob_size};
  if (failed) return IoError("limit loop: " + error);
  return run;
}

Result<StageTimes> ProbeStages(ChunkStore* store, const std::string& store_dir,
                               const std::vector<LimitChunk>& chunks, std::uint64_t blob_size,
                               const std::string& out_dir) {
  LB_ASSIGN_OR_RETURN(auto packs, OpenPacks(store_dir));
  LB_ASSIGN_OR_RETURN(UniqueFd out, CreateOutput(out_dir, blob_size));
  StageTimes st;
  std::vector<std::uint8_t> in;
  AlignedBuffer buf;
  AlignedBuffer store_buf;
  for (const LimitChunk& c : chunks) {
    const std::size_t len = c.extent.length;
    if (buf.size() < AlignUp(len)) {
      buf = AlignedBuffer(len);
      store_buf = AlignedBuffer(len);
    }
    Clock::time_point t = Clock::now();
    ChunkReadTimings split;
    LB_RETURN_IF_ERROR(store->ReadChunk(c.extent, store_buf.span().first(AlignUp(len)), &split));
    st.store_read_chunk += SecondsSince(t);
    st.lookup += std::chrono::duration<double>(split.lookup).count();

    t = Clock::now();
    in.resize(c.stored_len);
    LB_RETURN_IF_ERROR(
        PreadAll(packs.at(c.pack_id).get(), in.data(), c.stored_len, c.payload_offset));
    const double read = SecondsSince(t);
    t = Clock::now();
    LB_RETURN_IF_ERROR(Decompress(c, in, &buf));
    const double decompress = SecondsSince(t);
    t = Clock::now();
    XXH128_hash_t h = XXH3_128bits(buf.data(), len);
    XXH128_canonical_t canon;
    XXH128_canonicalFromHash(&canon, h);
    const double verify = SecondsSince(t);
    if (std::memcmp(canon.digest, c.extent.key.bytes.data(), 16) != 0) {
      return Corruption("probe: chunk " + c.extent.key.ToHex() + " does not verify");
    }
    t = Clock::now();
    LB_RETURN_IF_ERROR(PwriteAll(out.get(), buf.data(), AlignUp(len), c.extent.blob_offset));
    st.write += SecondsSince(t);
    st.read += read;
    st.decompress += decompress;
    st.verify += verify;
    ++st.chunks;
  }
  return st;
}

}  // namespace lazyblob::bench
