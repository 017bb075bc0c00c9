#include "store/pack_scanner.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "store/pack_set.h"

namespace lazyblob {

Result<std::unique_ptr<PackScanner>> PackScanner::Open(const std::string& store_dir,
                                                       std::uint32_t pack_id) {
  std::unique_ptr<PackScanner> s(new PackScanner());
  const std::string path = PackSet::PackPath(store_dir, pack_id);
  s->fd_ = UniqueFd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!s->fd_) return Status::FromErrno(errno, "open " + path);
  struct stat st {};
  if (::fstat(s->fd_.get(), &st) != 0) return Status::FromErrno(errno, "stat " + path);
  s->file_size_ = static_cast<std::uint64_t>(st.st_size);
  s->pack_id_ = pack_id;
  std::uint8_t h[kPackHeaderBytes];
  if (s->file_size_ < kPackHeaderBytes) return Corruption("pack " + path + " has no header");
  LB_RETURN_IF_ERROR(s->ReadAt(0, h, sizeof h));
  auto header = DecodePackHeader(h);
  if (!header.ok()) return header.status().WithContext(path);
  if (header->pack_id != pack_id) return Corruption(path + ": header names another pack id");
  s->header_ = *header;
  s->pos_ = s->valid_end_ = kPackHeaderBytes;
  return s;
}

Status PackScanner::ReadAt(std::uint64_t offset, std::uint8_t* out, std::size_t n) {
  std::size_t done = 0;
  while (done < n) {
    ssize_t r = ::pread(fd_.get(), out + done, n - done, static_cast<off_t>(offset + done));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return Status::FromErrno(errno, "read pack " + std::to_string(pack_id_));
    if (r == 0) return Corruption("pack " + std::to_string(pack_id_) + " is shorter than expected");
    done += static_cast<std::size_t>(r);
  }
  return Status::Ok();
}

Result<std::uint64_t> PackScanner::Resync(std::uint64_t from) {
  constexpr std::size_t kWindow = 1u << 20;
  std::vector<std::uint8_t> buf(kWindow + kRecordHeaderBytes);
  for (std::uint64_t base = from; base + kRecordHeaderBytes <= file_size_; base += kWindow) {
    const std::size_t n =
        static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), file_size_ - base));
    LB_RETURN_IF_ERROR(ReadAt(base, buf.data(), n));
    for (std::size_t i = 0; i + kRecordHeaderBytes <= n && i < kWindow; ++i) {
      if (buf[i] == 0x4C && buf[i + 1] == 0x42 && buf[i + 2] == 0x50 && buf[i + 3] == 0x52 &&
          DecodeRecordHeader(std::span(buf.data() + i, kRecordHeaderBytes)).ok()) {
        return base + i;
      }
    }
  }
  return file_size_;
}

Result<std::optional<ScannedRecord>> PackScanner::Next(std::vector<std::string>* problems) {
  const std::string where = "pack " + std::to_string(pack_id_) + ": ";
  while (pos_ < file_size_) {
    if (file_size_ - pos_ < kRecordHeaderBytes) {
      problems->push_back(where + "truncated record at offset " + std::to_string(pos_) +
                          " (crash during an append?); skipped");
      ++skipped_;
      pos_ = file_size_;
      break;
    }
    std::uint8_t h[kRecordHeaderBytes];
    LB_RETURN_IF_ERROR(ReadAt(pos_, h, sizeof h));
    auto header = DecodeRecordHeader(h);
    if (!header.ok()) {
      LB_ASSIGN_OR_RETURN(std::uint64_t next, Resync(pos_ + 1));
      problems->push_back(where + header.status().message() + " at offset " + std::to_string(pos_) +
                          "; skipped " + std::to_string(next - pos_) + " bytes");
      ++skipped_;
      pos_ = next;
      continue;
    }
    if (file_size_ - pos_ - kRecordHeaderBytes < header->stored_len) {
      problems->push_back(where + "truncated record at offset " + std::to_string(pos_) +
                          " (crash during an append?); skipped");
      ++skipped_;
      pos_ = file_size_;
      break;
    }
    ScannedRecord r;
    r.offset = pos_;
    r.header = *header;
    r.payload.resize(header->stored_len);
    LB_RETURN_IF_ERROR(ReadAt(pos_ + kRecordHeaderBytes, r.payload.data(), r.payload.size()));
    pos_ += r.size();
    valid_end_ = pos_;
    return std::optional<ScannedRecord>(std::move(r));
  }
  return std::optional<ScannedRecord>();
}

}  // namespace lazyblob
