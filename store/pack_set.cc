#include "store/pack_set.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <mutex>

#include "core/aligned_buffer.h"
#include "store/hashing.h"

namespace lazyblob {
namespace {

struct DCtxDeleter {
  void operator()(ZSTD_DCtx* c) const { ZSTD_freeDCtx(c); }
};

ZSTD_DCtx* ThreadDCtx() {
  thread_local std::unique_ptr<ZSTD_DCtx, DCtxDeleter> ctx(ZSTD_createDCtx());
  return ctx.get();
}

std::vector<std::uint8_t>& ThreadRecordBuffer() {
  thread_local std::vector<std::uint8_t> buf;
  return buf;
}

}  // namespace

std::string PackSet::PackDir(const std::string& store_dir) { return store_dir + "/packs"; }

std::string PackSet::PackPath(const std::string& store_dir, std::uint32_t pack_id) {
  char name[32];
  std::snprintf(name, sizeof name, "/pack-%06u.lbp", pack_id);
  return PackDir(store_dir) + name;
}

Result<std::vector<std::uint32_t>> PackSet::ListPackIds(const std::string& store_dir) {
  const std::string dir = PackDir(store_dir);
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) {
    if (errno == ENOENT) return std::vector<std::uint32_t>();
    return Status::FromErrno(errno, "list " + dir);
  }
  std::vector<std::uint32_t> ids;
  while (dirent* e = readdir(d)) {
    unsigned id = 0;
    char tail[8] = {};
    if (std::sscanf(e->d_name, "pack-%6u.%4s", &id, tail) == 2 && std::strcmp(tail, "lbp") == 0 &&
        std::strlen(e->d_name) == 15) {
      ids.push_back(id);
    }
  }
  closedir(d);
  std::sort(ids.begin(), ids.end());
  return ids;
}

Result<std::shared_ptr<UniqueFd>> PackSet::Fd(std::uint32_t pack_id) {
  const std::string path = PackPath(dir_, pack_id);
  std::shared_ptr<UniqueFd> cached;
  if (lookups_.fetch_add(1, std::memory_order_relaxed) % kSweepEveryLookups == 0) {
    DropUnlinked();
  }
  {
    ReaderLock lock(&mu_);
    auto it = fds_.find(pack_id);
    if (it != fds_.end()) cached = it->second;
  }
  if (cached) {
    // gc (another process) unlinks a pack only after committing the new places of its
    // records. A cached fd of an unlinked pack is dropped, so its space is freed, and the
    // read reports the pack missing: the caller finds the record again after a catch-up
    // (FORMAT.md "gc while a daemon serves").
    struct stat st {};
    if (::fstat(cached->get(), &st) != 0) return Status::FromErrno(errno, "fstat " + path);
    if (st.st_nlink > 0) return cached;
    Forget(pack_id);
    return NotFound("pack " + std::to_string(pack_id) + " was deleted (moved by gc)");
  }
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return Status::FromErrno(errno, "open " + path);
  auto shared = std::make_shared<UniqueFd>(std::move(fd));
  DropUnlinked();  // typically a pack gc just moved records into: drop the ones it emptied
  WriterLock lock(&mu_);
  // Bounded: packs are large (1 GiB by default), so a store rarely has many, but the daemon
  // must not hold an fd per pack of a huge store. Dropping any entry only costs a reopen.
  if (fds_.size() >= kMaxOpenPacks && fds_.count(pack_id) == 0) fds_.erase(fds_.begin());
  auto [it, inserted] = fds_.emplace(pack_id, shared);
  return it->second;
}

void PackSet::DropUnlinked() {
  WriterLock lock(&mu_);
  std::erase_if(fds_, [](const auto& entry) {
    struct stat st {};
    return ::fstat(entry.second->get(), &st) == 0 && st.st_nlink == 0;
  });
}

void PackSet::Forget(std::uint32_t pack_id) {
  WriterLock lock(&mu_);
  fds_.erase(pack_id);
}

Status PackSet::ReadAt(std::uint32_t pack_id, std::uint64_t offset, std::span<std::uint8_t> out) {
  LB_ASSIGN_OR_RETURN(auto fd, Fd(pack_id));
  std::size_t done = 0;
  while (done < out.size()) {
    ssize_t n =
        ::pread(fd->get(), out.data() + done, out.size() - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno(errno, "read pack " + std::to_string(pack_id));
    }
    if (n == 0) {
      return Corruption("pack " + std::to_string(pack_id) + " ends before offset " +
                        std::to_string(offset + out.size()));
    }
    done += static_cast<std::size_t>(n);
  }
  return Status::Ok();
}

Status PackSet::ReadChunk(const ChunkKey& key, const ChunkLocation& loc, std::span<std::byte> out,
                          bool check_sha256, ChunkReadTimings* timings) {
  auto fail = [&](std::string_view why) {
    return Corruption("chunk " + key.ToHex() + " in pack " + std::to_string(loc.pack_id) +
                      " at offset " + std::to_string(loc.offset) + ": " + std::string(why));
  };
  if (out.size() < AlignUp(loc.raw_len)) return InvalidArgument("ReadChunk: output too small");
  ChunkReadStopwatch watch(timings);
  std::vector<std::uint8_t>& rec = ThreadRecordBuffer();
  rec.resize(kRecordHeaderBytes + loc.stored_len);
  Status s = ReadAt(loc.pack_id, loc.offset, rec);
  watch.Lap(&ChunkReadTimings::read);
  if (s.code() == StatusCode::kCorruption) return fail("record is truncated");
  LB_RETURN_IF_ERROR(s);
  auto header = DecodeRecordHeader(rec);
  if (!header.ok()) return fail(header.status().message());
  if (header->type != RecordType::kChunk || header->key != key || header->raw_len != loc.raw_len ||
      header->stored_len != loc.stored_len) {
    return fail("record header does not match the index");
  }
  const std::uint8_t* payload = rec.data() + kRecordHeaderBytes;
  if (header->codec == Codec::kRaw) {
    if (loc.stored_len != loc.raw_len) return fail("raw record with a compressed length");
    std::memcpy(out.data(), payload, loc.raw_len);
  } else {
    std::size_t n =
        ZSTD_decompressDCtx(ThreadDCtx(), out.data(), loc.raw_len, payload, loc.stored_len);
    if (ZSTD_isError(n)) return fail(std::string("zstd: ") + ZSTD_getErrorName(n));
    if (n != loc.raw_len) return fail("decompressed length differs");
  }
  watch.Lap(&ChunkReadTimings::decompress);
  std::span<const std::byte> raw = out.first(loc.raw_len);
  const bool key_ok = ChunkKeyOf(raw) == key;
  const bool sha_ok =
      !check_sha256 || (Sha256Of(raw) == loc.sha256 && header->sha256 == loc.sha256);
  watch.Lap(&ChunkReadTimings::verify);
  if (!key_ok) return fail("payload hash mismatch");
  if (!sha_ok) return fail("payload SHA-256 mismatch");
  std::memset(out.data() + loc.raw_len, 0, AlignUp(loc.raw_len) - loc.raw_len);
  return Status::Ok();
}

}  // namespace lazyblob
