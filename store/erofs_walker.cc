// The walk behind ErofsLayoutParser (store/erofs_layout.h): from the superblock, every
// inode reachable from the root (and the packed inode) breadth-first, each listed with the
// metadata it occupies and the data extents it maps. Every offset is checked against the
// image before it is read; limits in ErofsLayoutOptions bound the work an image can cause.
#include "store/erofs_walker.h"

#include <algorithm>
#include <cstring>
#include <deque>
#include <limits>
#include <string>
#include <unordered_set>

#include "store/erofs_superblock.h"

namespace lazyblob {
namespace {

// On-disk offsets (fs/erofs/erofs_fs.h, little-endian; this code assumes a little-endian
// host, as the project does everywhere).
constexpr std::uint64_t kSbSize = 128;
constexpr std::uint64_t kDeviceSlotSize = 128;
constexpr std::uint32_t kIncompatKnown = 0x3f;  // up to FRAGMENTS/DEDUPE (6.1)
constexpr std::uint32_t kIncompatComprCfgs = 0x02;
constexpr std::uint32_t kIncompatDeviceTable = 0x08;
constexpr std::uint32_t kNullAddr = 0xffffffff;
constexpr unsigned kLayoutCompressedFull = 1, kLayoutFlatInline = 2, kLayoutCompressedCompact = 3,
                   kLayoutChunkBased = 4;
constexpr std::uint16_t kChunkFormatIndexes = 0x20;
constexpr std::uint16_t kZAdviseCompacted2B = 0x01, kZAdviseInlinePcluster = 0x08;
constexpr std::uint32_t kModeFmt = 0170000, kModeDir = 0040000, kModeReg = 0100000,
                        kModeLnk = 0120000;

std::uint64_t AlignUp(std::uint64_t v, std::uint64_t a) { return (v + a - 1) / a * a; }
std::uint64_t DivUp(std::uint64_t v, std::uint64_t d) { return v / d + (v % d != 0); }

template <typename T>
T Get(const std::byte* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

struct Inode {
  std::uint64_t nid = 0;
  std::uint64_t iloc = 0;
  std::uint64_t isize = 0;        // 32 or 64
  std::uint64_t xattr_isize = 0;  // inline xattr body after the inode
  unsigned layout = 0;
  std::uint32_t mode = 0;
  std::uint64_t size = 0;
  std::uint32_t iu = 0;  // raw_blkaddr / compressed_blocks / chunk format
  std::uint64_t meta_end() const { return iloc + isize + xattr_isize; }
};

// One piece of an inode's logical content and where it lies.
struct Extent {
  std::uint64_t logical = 0;
  std::uint64_t length = 0;
  std::uint16_t device = 0;
  std::uint64_t physical = 0;
  bool is_inline = false;  // in the metadata, right after the inode
};

class Walker {
 public:
  Walker(const ErofsReadFn& read, std::uint64_t image_size, const ErofsLayoutOptions& o,
         ErofsLayout& out)
      : read_(read), image_size_(image_size), o_(o), out_(out) {}

  Status Run() {
    LB_RETURN_IF_ERROR(ReadSuperblock());
    LB_RETURN_IF_ERROR(Enqueue(out_.sb.root_nid));
    if (out_.sb.packed_nid != 0) LB_RETURN_IF_ERROR(Enqueue(out_.sb.packed_nid));
    while (!queue_.empty()) {
      std::uint64_t nid = queue_.front();
      queue_.pop_front();
      LB_RETURN_IF_ERROR(Visit(nid).WithContext("inode " + std::to_string(nid)));
    }
    return Status::Ok();
  }

 private:
  std::uint64_t bs() const { return out_.sb.block_size(); }

  Status ReadAt(std::uint64_t off, std::span<std::byte> buf) {
    if (off > image_size_ || buf.size() > image_size_ - off) {
      return Corruption("read of " + std::to_string(buf.size()) + " bytes at " +
                        std::to_string(off) + " is outside the " + std::to_string(image_size_) +
                        "-byte image");
    }
    return read_(off, buf);
  }
  Result<std::vector<std::byte>> Bytes(std::uint64_t off, std::uint64_t len) {
    if (off > image_size_ || len > image_size_ - off) {  // before allocating `len` bytes
      return Corruption("read of " + std::to_string(len) + " bytes at " + std::to_string(off) +
                        " is outside the " + std::to_string(image_size_) + "-byte image");
    }
    std::vector<std::byte> b(len);
    LB_RETURN_IF_ERROR(ReadAt(off, b));
    return b;
  }
  Status CountRange() {
    if (out_.metadata.size() + out_.data.size() >= o_.max_ranges) {
      return Corruption("more than " + std::to_string(o_.max_ranges) + " ranges");
    }
    return Status::Ok();
  }
  Status AddMeta(ErofsRangeKind kind, std::uint64_t off, std::uint64_t len, std::uint64_t nid) {
    if (len == 0) return Status::Ok();
    if (off > image_size_ || len > image_size_ - off) {
      return Corruption(std::string(ErofsRangeKindName(kind)) + " at " + std::to_string(off) + "+" +
                        std::to_string(len) + " is outside the image");
    }
    LB_RETURN_IF_ERROR(CountRange());
    out_.metadata.push_back({0, off, len, kind, nid});
    return Status::Ok();
  }
  Status AddData(const Extent& e, ErofsRangeKind kind, std::uint64_t nid) {
    if (e.length == 0) return Status::Ok();
    std::uint64_t limit = std::numeric_limits<std::uint64_t>::max();
    if (e.device == 0) {
      limit = image_size_;
    } else if (e.device > out_.devices.size()) {
      return Corruption("device id " + std::to_string(e.device) + " but " +
                        std::to_string(out_.devices.size()) + " extra devices");
    } else if (out_.devices[e.device - 1].blocks != 0) {
      limit = std::uint64_t{out_.devices[e.device - 1].blocks} << out_.sb.blkszbits;
    }
    if (e.physical > limit || e.length > limit - e.physical) {
      return Corruption("data at " + std::to_string(e.physical) + "+" + std::to_string(e.length) +
                        " is outside device " + std::to_string(e.device));
    }
    if (!out_.data.empty()) {  // coalesce contiguous pieces of one inode
      ErofsRange& last = out_.data.back();
      if (last.nid == nid && last.device == e.device && last.kind == kind &&
          last.end() == e.physical) {
        last.length += e.length;
        return Status::Ok();
      }
    }
    LB_RETURN_IF_ERROR(CountRange());
    out_.data.push_back({e.device, e.physical, e.length, kind, nid});
    return Status::Ok();
  }
  Status Enqueue(std::uint64_t nid) {
    if (!visited_.insert(nid).second) return Status::Ok();  // cycles and hard links end here
    if (visited_.size() > o_.max_inodes) {
      return Corruption("more than " + std::to_string(o_.max_inodes) + " inodes");
    }
    queue_.push_back(nid);
    return Status::Ok();
  }

  Status ReadSuperblock();
  Result<Inode> ReadInode(std::uint64_t nid);
  Status Visit(std::uint64_t nid);
  Status AddXattrs(const Inode& ino);
  Result<std::vector<Extent>> MapFlat(const Inode& ino);
  Result<std::vector<Extent>> MapChunks(const Inode& ino);
  Status AddCompressed(const Inode& ino);
  Status ReadDirectory(const Inode& ino, const std::vector<Extent>& extents);
  Status ParseDirBlock(std::span<const std::byte> blk);

  const ErofsReadFn& read_;
  const std::uint64_t image_size_;
  const ErofsLayoutOptions& o_;
  ErofsLayout& out_;
  std::unordered_set<std::uint64_t> visited_;
  std::unordered_set<std::uint32_t> shared_xattrs_;
  std::deque<std::uint64_t> queue_;
};

Status Walker::ReadSuperblock() {
  LB_ASSIGN_OR_RETURN(auto head, Bytes(0, kErofsSuperblockOffset + kSbSize));
  auto sb_or = ParseErofsSuperblock(
      std::span(reinterpret_cast<const std::uint8_t*>(head.data()), head.size()));
  if (!sb_or.ok()) return Corruption(sb_or.status().message());
  ErofsSuperblock& sb = out_.sb;
  sb = *sb_or;
  if ((sb.feature_incompat & ~kIncompatKnown) != 0) {
    return Status(StatusCode::kUnsupported,
                  "EROFS incompat features 0x" + std::to_string(sb.feature_incompat) +
                      " include some this parser does not know (long xattr prefixes, 48-bit, "
                      "metabox...)");
  }
  if (sb.dirblkbits != 0) return Status(StatusCode::kUnsupported, "dirblkbits != 0");
  // The kernel reads (and checksums) the whole first block.
  LB_RETURN_IF_ERROR(AddMeta(ErofsRangeKind::kSuperblock, 0, std::min(bs(), image_size_), 0));
  if ((sb.feature_incompat & kIncompatComprCfgs) != 0 && sb.available_compr_algs != 0) {
    std::uint64_t pos = kErofsSuperblockOffset + kSbSize + std::uint64_t{sb.extslots} * 16;
    for (int alg = 0; alg < 16; ++alg) {
      if ((sb.available_compr_algs & (1u << alg)) == 0) continue;
      LB_ASSIGN_OR_RETURN(auto len, Bytes(pos, 2));
      std::uint64_t n = 2 + Get<std::uint16_t>(len.data());
      LB_RETURN_IF_ERROR(AddMeta(ErofsRangeKind::kCompressionConfig, pos, n, 0));
      pos += n;
    }
  }
  if ((sb.feature_incompat & kIncompatDeviceTable) != 0 && sb.extra_devices != 0) {
    std::uint64_t pos = std::uint64_t{sb.devt_slotoff} * kDeviceSlotSize;
    std::uint64_t len = std::uint64_t{sb.extra_devices} * kDeviceSlotSize;
    LB_RETURN_IF_ERROR(AddMeta(ErofsRangeKind::kDeviceTable, pos, len, 0));
    LB_ASSIGN_OR_RETURN(auto t, Bytes(pos, len));
    for (std::uint16_t i = 0; i < sb.extra_devices; ++i) {
      const std::byte* s = t.data() + i * kDeviceSlotSize;
      ErofsDevice d;
      d.tag.assign(reinterpret_cast<const char*>(s), 64);
      d.tag.resize(std::strlen(d.tag.c_str()));
      d.blocks = Get<std::uint32_t>(s + 64);
      d.mapped_blkaddr = Get<std::uint32_t>(s + 68);
      out_.devices.push_back(std::move(d));
    }
  }
  return Status::Ok();
}

Result<Inode> Walker::ReadInode(std::uint64_t nid) {
  Inode ino;
  ino.nid = nid;
  const std::uint64_t meta = std::uint64_t{out_.sb.meta_blkaddr} << out_.sb.blkszbits;
  if (nid > (image_size_ >> 5)) return Corruption("nid outside the image");
  ino.iloc = meta + (nid << 5);
  LB_ASSIGN_OR_RETURN(auto c, Bytes(ino.iloc, 32));
  const std::uint16_t fmt = Get<std::uint16_t>(c.data());
  if ((fmt & ~0xfu) != 0) return Corruption("unknown inode format bits");
  ino.layout = (fmt >> 1) & 7;
  const std::uint16_t icount = Get<std::uint16_t>(c.data() + 2);
  ino.xattr_isize = icount == 0 ? 0 : 12 + 4 * (std::uint64_t{icount} - 1);
  ino.mode = Get<std::uint16_t>(c.data() + 4);
  if ((fmt & 1) == 0) {
    ino.isize = 32;
    ino.size = Get<std::uint32_t>(c.data() + 8);
    ino.iu = Get<std::uint32_t>(c.data() + 16);
  } else {
    ino.isize = 64;
    LB_ASSIGN_OR_RETURN(auto e, Bytes(ino.iloc, 64));
    ino.size = Get<std::uint64_t>(e.data() + 8);
    ino.iu = Get<std::uint32_t>(e.data() + 16);
  }
  if (ino.size > (std::uint64_t{1} << 50)) return Corruption("inode size above 1 PiB");
  if (ino.layout > kLayoutChunkBased) return Corruption("unknown data layout");
  return ino;
}

Status Walker::AddXattrs(const Inode& ino) {
  if (ino.xattr_isize == 0) return Status::Ok();
  LB_ASSIGN_OR_RETURN(auto h, Bytes(ino.iloc + ino.isize, 12));
  const std::uint8_t shared = Get<std::uint8_t>(h.data() + 4);
  if (12 + 4 * std::uint64_t{shared} > ino.xattr_isize) {
    return Corruption("more shared xattr ids than the inline xattr body holds");
  }
  LB_ASSIGN_OR_RETURN(auto ids, Bytes(ino.iloc + ino.isize + 12, 4 * std::uint64_t{shared}));
  const std::uint64_t area = std::uint64_t{out_.sb.xattr_blkaddr} << out_.sb.blkszbits;
  for (std::uint8_t i = 0; i < shared; ++i) {
    std::uint32_t id = Get<std::uint32_t>(ids.data() + 4 * i);
    if (!shared_xattrs_.insert(id).second) continue;
    std::uint64_t pos = area + std::uint64_t{id} * 4;
    LB_ASSIGN_OR_RETURN(auto e, Bytes(pos, 4));
    std::uint64_t len =
        AlignUp(4 + Get<std::uint8_t>(e.data()) + Get<std::uint16_t>(e.data() + 2), 4);
    LB_RETURN_IF_ERROR(AddMeta(ErofsRangeKind::kSharedXattr, pos, len, ino.nid));
  }
  return Status::Ok();
}

Result<std::vector<Extent>> Walker::MapFlat(const Inode& ino) {
  std::vector<Extent> ext;
  const std::uint64_t nblocks = DivUp(ino.size, bs());
  const bool tail_inline = ino.layout == kLayoutFlatInline && nblocks > 0;
  const std::uint64_t full = tail_inline ? nblocks - 1 : nblocks;
  if (full > 0) {
    if (ino.iu == kNullAddr) return Corruption("flat inode with data at the null address");
    ext.push_back({0, full * bs(), 0, std::uint64_t{ino.iu} << out_.sb.blkszbits, false});
  }
  if (tail_inline) {
    std::uint64_t tail = ino.size - full * bs();
    std::uint64_t at = ino.meta_end();
    if (at % bs() + tail > bs()) return Corruption("inline tail crosses a block boundary");
    ext.push_back({full * bs(), tail, 0, at, true});
  }
  return ext;
}

Result<std::vector<Extent>> Walker::MapChunks(const Inode& ino) {
  const std::uint16_t format = static_cast<std::uint16_t>(ino.iu & 0xffff);
  if ((format & ~0x3fu) != 0) return Corruption("unknown chunk format bits");
  const unsigned chunkbits = out_.sb.blkszbits + (format & 0x1f);
  if (chunkbits > 48) return Corruption("chunk size above 2^48");
  const std::uint64_t chunk = std::uint64_t{1} << chunkbits;
  const std::uint64_t n = DivUp(ino.size, chunk);
  if (n > o_.max_chunks_per_file) return Corruption(std::to_string(n) + " chunks in one file");
  const bool indexes = (format & kChunkFormatIndexes) != 0;
  const std::uint64_t unit = indexes ? 8 : 4;
  const std::uint64_t pos = AlignUp(ino.meta_end(), unit);
  LB_RETURN_IF_ERROR(AddMeta(ErofsRangeKind::kChunkIndex, pos, n * unit, ino.nid));
  LB_ASSIGN_OR_RETURN(auto idx, Bytes(pos, n * unit));
  std::uint16_t mask = 0;  // roundup_pow_of_two(extra_devices + 1) - 1, as the kernel
  while (mask < out_.sb.extra_devices) mask = static_cast<std::uint16_t>((mask << 1) | 1);
  std::vector<Extent> ext;
  for (std::uint64_t c = 0; c < n; ++c) {
    std::uint16_t device = 0;
    std::uint32_t blk;
    if (indexes) {
      device = Get<std::uint16_t>(idx.data() + c * 8 + 2) & mask;
      blk = Get<std::uint32_t>(idx.data() + c * 8 + 4);
    } else {
      blk = Get<std::uint32_t>(idx.data() + c * 4);
    }
    if (blk == kNullAddr) continue;  // a hole: reads as zeros, no I/O
    std::uint64_t len = std::min(chunk, AlignUp(ino.size - c * chunk, bs()));
    ext.push_back({c * chunk, len, device, std::uint64_t{blk} << out_.sb.blkszbits, false});
  }
  return ext;
}

Status Walker::AddCompressed(const Inode& ino) {
  ++out_.compressed_files;
  const std::uint64_t hpos = AlignUp(ino.meta_end(), 8);
  LB_ASSIGN_OR_RETURN(auto h, Bytes(hpos, 8));
  const std::uint16_t idata = Get<std::uint16_t>(h.data() + 2);
  const std::uint16_t advise = Get<std::uint16_t>(h.data() + 4);
  const std::uint8_t clusterbits = Get<std::uint8_t>(h.data() + 7);
  std::uint64_t end = hpos + 8;                     // the map header
  if ((clusterbits & 0x80) == 0 && ino.size > 0) {  // else: the whole file is a fragment
    const std::uint64_t totalidx = DivUp(ino.size, bs());
    if (totalidx > o_.max_chunks_per_file) return Corruption("too many lclusters");
    if (ino.layout == kLayoutCompressedFull) {
      if ((advise & 0x01) != 0) {
        return Status(StatusCode::kUnsupported, "compressed extents (6.15+) are not parsed");
      }
      const std::uint64_t lcluster = bs() << (clusterbits & 15);
      end = hpos + 16 + DivUp(ino.size, lcluster) * 8;
    } else {
      // zmap.c z_erofs_load_compact_lcluster: 4-byte packs up to a 32-byte boundary,
      // then 2-byte packs of 16 (when enabled), then 4-byte packs of 2.
      const std::uint64_t ebase = hpos + 8;
      const std::uint64_t initial = ((32 - ebase % 32) / 4) & 7;
      std::uint64_t c2b = 0;
      if ((advise & kZAdviseCompacted2B) != 0 && initial < totalidx) {
        c2b = (totalidx - initial) / 16 * 16;
      }
      const std::uint64_t rest = totalidx - std::min(totalidx, initial) - c2b;
      end = ebase + std::min(totalidx, initial) * 4 + c2b * 2 + AlignUp(rest, 2) * 4;
    }
  }
  LB_RETURN_IF_ERROR(AddMeta(ErofsRangeKind::kCompressedIndex, hpos, end - hpos, ino.nid));
  if ((advise & kZAdviseInlinePcluster) != 0) {
    LB_RETURN_IF_ERROR(AddMeta(ErofsRangeKind::kInlinePcluster, end, idata, ino.nid));
  }
  if (ino.iu != 0) out_.compressed_data_unlisted = true;  // compressed_blocks > 0
  return Status::Ok();
}

Status Walker::ParseDirBlock(std::span<const std::byte> blk) {
  if (blk.size() < 12) return Corruption("directory block shorter than one dirent");
  const std::uint16_t first = Get<std::uint16_t>(blk.data() + 8);
  if (first < 12 || first % 12 != 0 || first > blk.size()) return Corruption("bad first nameoff");
  const std::size_t n = first / 12;
  for (std::size_t i = 0; i < n; ++i) {
    const std::byte* d = blk.data() + i * 12;
    const std::uint64_t nid = Get<std::uint64_t>(d);
    const std::uint16_t off = Get<std::uint16_t>(d + 8);
    std::size_t end = i + 1 < n ? Get<std::uint16_t>(d + 20) : blk.size();
    if (off < first || end < off || end > blk.size()) return Corruption("bad dirent nameoff");
    std::string_view name(reinterpret_cast<const char*>(blk.data()) + off, end - off);
    name = name.substr(0, name.find('\0'));
    if (name.empty()) return Corruption("empty directory entry name");
    if (name == "." || name == "..") continue;
    LB_RETURN_IF_ERROR(Enqueue(nid));
  }
  return Status::Ok();
}

Status Walker::ReadDirectory(const Inode& ino, const std::vector<Extent>& extents) {
  if (ino.size > o_.max_directory_bytes) return Corruption("directory too large");
  for (const Extent& e : extents) {
    if (e.device != 0) return Status(StatusCode::kUnsupported, "directory data on an extra device");
    if (e.logical >= ino.size) continue;
    const std::uint64_t len = std::min(e.length, ino.size - e.logical);
    for (std::uint64_t at = 0; at < len; at += bs()) {
      LB_ASSIGN_OR_RETURN(auto blk, Bytes(e.physical + at, std::min(bs(), len - at)));
      LB_RETURN_IF_ERROR(ParseDirBlock(blk));
    }
  }
  return Status::Ok();
}

Status Walker::Visit(std::uint64_t nid) {
  LB_ASSIGN_OR_RETURN(Inode ino, ReadInode(nid));
  ++out_.inodes;
  LB_RETURN_IF_ERROR(AddMeta(ErofsRangeKind::kInode, ino.iloc, ino.isize + ino.xattr_isize, nid));
  LB_RETURN_IF_ERROR(AddXattrs(ino));
  const std::uint32_t type = ino.mode & kModeFmt;
  const bool dir = type == kModeDir, reg = type == kModeReg, lnk = type == kModeLnk;
  out_.directories += dir;
  out_.regular_files += reg;
  out_.symlinks += lnk;
  if (!dir && !reg && !lnk) return Status::Ok();  // devices, fifos, sockets: no data
  if (ino.layout == kLayoutCompressedFull || ino.layout == kLayoutCompressedCompact) {
    if (!reg) return Status(StatusCode::kUnsupported, "compressed directory or symlink");
    return AddCompressed(ino);
  }
  std::vector<Extent> extents;
  if (ino.layout == kLayoutChunkBased) {
    ++out_.chunk_based_files;
    LB_ASSIGN_OR_RETURN(extents, MapChunks(ino));
  } else {
    LB_ASSIGN_OR_RETURN(extents, MapFlat(ino));
  }
  const ErofsRangeKind kind = dir   ? ErofsRangeKind::kDirectoryData
                              : lnk ? ErofsRangeKind::kSymlinkData
                                    : ErofsRangeKind::kFileData;
  for (const Extent& e : extents) {
    if (e.is_inline) {
      LB_RETURN_IF_ERROR(AddMeta(ErofsRangeKind::kInlineData, e.physical, e.length, nid));
    } else {
      LB_RETURN_IF_ERROR(AddData(e, kind, nid));
    }
  }
  if (dir) LB_RETURN_IF_ERROR(ReadDirectory(ino, extents));
  return Status::Ok();
}

}  // namespace

Status WalkErofs(const ErofsReadFn& read, std::uint64_t image_size,
                 const ErofsLayoutOptions& options, ErofsLayout& out) {
  return Walker(read, image_size, options, out).Run();
}

}  // namespace lazyblob
