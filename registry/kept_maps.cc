#include "registry/kept_maps.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <vector>

#include "core/unique_fd.h"
#include "store/hashing.h"

namespace lazyblob {
namespace {

Status WriteAll(int fd, std::span<const std::uint8_t> bytes, const std::string& path) {
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno(errno, "write " + path);
    }
    done += static_cast<std::size_t>(n);
  }
  return Status::Ok();
}

}  // namespace

Result<KeptMaps> KeptMaps::Open(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Status::FromErrno(ec.value(), "create " + dir);
  return KeptMaps(dir);
}

std::string KeptMaps::FileName(std::string_view id) {
  std::span<const std::uint8_t> bytes(reinterpret_cast<const std::uint8_t*>(id.data()), id.size());
  if (id.size() <= 120) return HexOf(bytes) + ".lbrm";
  const Sha256Digest d = Sha256Of(std::as_bytes(bytes));
  return "s" + HexOf(d) + ".lbrm";
}

Result<std::optional<RemoteBlobMap>> KeptMaps::Load(std::string_view id) const {
  const std::string path = dir_ + "/" + FileName(id);
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) {
    if (errno == ENOENT) return std::optional<RemoteBlobMap>();
    return Status::FromErrno(errno, "open " + path);
  }
  std::vector<std::uint8_t> bytes;
  std::uint8_t buf[65536];
  for (;;) {
    const ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno(errno, "read " + path);
    }
    if (n == 0) break;
    bytes.insert(bytes.end(), buf, buf + n);
  }
  auto map = DecodeChunkMap(bytes);
  if (!map.ok()) return map.status().WithContext("kept map " + path);
  if (map->info.id != id) return Malformed("kept map " + path + " holds another blob");
  return std::optional<RemoteBlobMap>(std::move(*map));
}

Status KeptMaps::Save(const RemoteBlobMap& map) const {
  const std::string path = dir_ + "/" + FileName(map.info.id);
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  const std::vector<std::uint8_t> bytes = EncodeChunkMap(map);
  {
    UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (!fd) return Status::FromErrno(errno, "create " + tmp);
    Status s = WriteAll(fd.get(), bytes, tmp);
    if (s.ok() && ::fsync(fd.get()) != 0) s = Status::FromErrno(errno, "fsync " + tmp);
    if (!s.ok()) {
      ::unlink(tmp.c_str());
      return s;
    }
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    Status s = Status::FromErrno(errno, "rename " + tmp);
    ::unlink(tmp.c_str());
    return s;
  }
  UniqueFd dir(::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir || ::fsync(dir.get()) != 0) return Status::FromErrno(errno, "fsync " + dir_);
  return Status::Ok();
}

}  // namespace lazyblob
