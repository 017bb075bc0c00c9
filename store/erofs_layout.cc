#include "store/erofs_layout.h"

#include <algorithm>
#include <cstring>
#include <string>

#include "store/erofs_walker.h"

namespace lazyblob {
namespace {

std::uint64_t AlignUp(std::uint64_t v, std::uint64_t a) { return (v + a - 1) / a * a; }

std::vector<ErofsRange> MergeAligned(std::vector<ErofsRange> v, std::uint64_t align) {
  for (ErofsRange& r : v) {
    std::uint64_t start = r.offset / align * align;
    r.length = AlignUp(r.end(), align) - start;
    r.offset = start;
  }
  std::sort(v.begin(), v.end(), [](const ErofsRange& a, const ErofsRange& b) {
    return a.device != b.device ? a.device < b.device : a.offset < b.offset;
  });
  std::vector<ErofsRange> out;
  for (const ErofsRange& r : v) {
    if (!out.empty() && out.back().device == r.device && r.offset <= out.back().end()) {
      out.back().length = std::max(out.back().end(), r.end()) - out.back().offset;
    } else {
      out.push_back(r);
      out.back().nid = 0;
    }
  }
  return out;
}

}  // namespace

bool IsErofsMetadata(ErofsRangeKind kind) { return kind < ErofsRangeKind::kFileData; }

const char* ErofsRangeKindName(ErofsRangeKind kind) {
  switch (kind) {
    case ErofsRangeKind::kSuperblock:
      return "superblock";
    case ErofsRangeKind::kCompressionConfig:
      return "compression-config";
    case ErofsRangeKind::kDeviceTable:
      return "device-table";
    case ErofsRangeKind::kInode:
      return "inode";
    case ErofsRangeKind::kInlineData:
      return "inline-data";
    case ErofsRangeKind::kSharedXattr:
      return "shared-xattr";
    case ErofsRangeKind::kChunkIndex:
      return "chunk-index";
    case ErofsRangeKind::kCompressedIndex:
      return "compressed-index";
    case ErofsRangeKind::kInlinePcluster:
      return "inline-pcluster";
    case ErofsRangeKind::kFileData:
      return "file-data";
    case ErofsRangeKind::kDirectoryData:
      return "directory-data";
    case ErofsRangeKind::kSymlinkData:
      return "symlink-data";
  }
  return "unknown";
}

std::vector<ErofsRange> ErofsLayout::MergedMetadata(std::uint64_t align) const {
  return MergeAligned(metadata, align);
}

std::vector<ErofsRange> ErofsLayout::PrimaryDataRanges(std::uint64_t image_size,
                                                       std::uint64_t align) const {
  std::vector<ErofsRange> out;
  std::uint64_t at = 0;
  for (const ErofsRange& m : MergedMetadata(align)) {
    if (m.offset > at) out.push_back({0, at, m.offset - at, ErofsRangeKind::kFileData, 0});
    at = std::max(at, m.end());
  }
  if (image_size > at) out.push_back({0, at, image_size - at, ErofsRangeKind::kFileData, 0});
  return out;
}

Status ErofsLayoutOptions::Validate() const {
  if (max_inodes == 0 || max_ranges == 0 || max_chunks_per_file == 0) {
    return InvalidArgument("ErofsLayoutOptions limits must be positive");
  }
  return Status::Ok();
}

Result<ErofsLayout> ErofsLayoutParser::Parse(const ErofsReadFn& read, std::uint64_t image_size,
                                             const ErofsLayoutOptions& options) {
  LB_RETURN_IF_ERROR(options.Validate());
  ErofsLayout layout;
  LB_RETURN_IF_ERROR(WalkErofs(read, image_size, options, layout));
  return layout;
}

Result<ErofsLayout> ErofsLayoutParser::ParseBytes(std::span<const std::byte> image,
                                                  const ErofsLayoutOptions& options) {
  ErofsReadFn read = [image](std::uint64_t off, std::span<std::byte> out) -> Status {
    std::memcpy(out.data(), image.data() + off, out.size());  // WalkErofs bounds-checked it
    return Status::Ok();
  };
  return Parse(read, image.size(), options);
}

}  // namespace lazyblob
