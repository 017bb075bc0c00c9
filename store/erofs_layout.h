// ErofsLayout: which bytes of an EROFS image the kernel reads as metadata and which as file
// data, for a file-backed mount whose backing files are filled on fanotify events.
//
// On an EROFS file-backed mount (fs/erofs/fileio.c, data.c, 6.12-6.18) two read paths
// reach the backing files:
// - metadata (superblock block, device table, compression configs, inodes with their
//   inline xattrs and inline (tail-packed) data, shared xattrs, chunk indexes, compressed
//   indexes and inline pclusters) is read through erofs_bread() on the PRIMARY backing
//   file's page cache (read_mapping_folio): no FAN_PRE_ACCESS event is raised, so these
//   bytes must be present before the mount and before any lookup;
// - data (flat file blocks, chunks, directory blocks that are not inline, non-inline
//   symlink targets, compressed pclusters) is read by vfs_iocb_iter_read() on the backing
//   file of its device: a FAN_PRE_ACCESS event is raised first, so it can be filled lazily.
// The parser computes both sets (FANOTIFY_FACTS.md checks them against the kernel).
//
// Supported: what mkfs.erofs 1.5+ writes: 4 KiB (any 512 B..64 KiB) blocks, compact and
// extended inodes, flat plain, flat inline, chunk-based files (4-byte block maps and
// 8-byte indexes, on the primary or an extra device: --blobdev), compressed files (full
// and compact indexes, ztailpacking), inline and shared xattrs, the device table and a
// packed inode (whose own metadata is listed; fragment data is data of the packed inode).
// Not decoded: where each pcluster of a compressed file lies. Those blocks are data
// (their reads raise events) and are not listed one by one: `compressed_data_unlisted`
// is set, and PrimaryDataRanges() returns everything on the primary device that is not
// metadata, which covers them. Directories must be flat (mkfs.erofs does not compress
// them) and live on the primary device. Images with long xattr name prefixes or a
// metabox (6.17+) are rejected as kUnsupported.
//
// The image is untrusted: every count, address and size is bounded (ErofsLayoutOptions),
// each inode is visited once (directory cycles end), nothing is read outside
// [0, image_size), and a bad image is kCorruption, never a crash.
//
// Thread-safety: Parse is a pure function of the reader; call from any thread.
#ifndef LAZYBLOB_STORE_EROFS_LAYOUT_H_
#define LAZYBLOB_STORE_EROFS_LAYOUT_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "core/status.h"

namespace lazyblob {

inline constexpr std::uint32_t kErofsMagic = 0xE0F5E1E2;
inline constexpr std::uint64_t kErofsSuperblockOffset = 1024;

enum class ErofsRangeKind : std::uint8_t {
  // Metadata: read through the primary backing file's page cache, no event.
  kSuperblock,         // the whole first block (its checksum covers [1024, block end))
  kCompressionConfig,  // per-algorithm configs after the superblock
  kDeviceTable,        // extra_devices slots of 128 bytes
  kInode,              // on-disk inode and its inline xattrs
  kInlineData,         // tail-packed file/directory/symlink bytes after the inode
  kSharedXattr,        // a shared xattr entry in the xattr area
  kChunkIndex,         // a chunk-based file's block map or chunk indexes
  kCompressedIndex,    // map header and lcluster indexes of a compressed file
  kInlinePcluster,     // ztailpacking: the compressed tail stored after the indexes
  // Data: read with vfs_iocb_iter_read on the backing file of `device`, raises an event.
  kFileData,
  kDirectoryData,
  kSymlinkData,
};

bool IsErofsMetadata(ErofsRangeKind kind);
const char* ErofsRangeKindName(ErofsRangeKind kind);

struct ErofsRange {
  std::uint16_t device = 0;  // 0 = the primary image, k = the k-th extra device
  std::uint64_t offset = 0;  // bytes, on that device
  std::uint64_t length = 0;
  ErofsRangeKind kind = ErofsRangeKind::kFileData;
  std::uint64_t nid = 0;  // the inode it belongs to (0 for superblock-level ranges)

  std::uint64_t end() const { return offset + length; }
};

struct ErofsDevice {
  std::string tag;  // up to 64 bytes (NULs trimmed): the cookie key / blob name
  std::uint32_t blocks = 0;
  std::uint32_t mapped_blkaddr = 0;
};

struct ErofsSuperblock {
  std::uint8_t blkszbits = 0;
  std::uint32_t feature_compat = 0;
  std::uint32_t feature_incompat = 0;
  std::uint64_t root_nid = 0;
  std::uint64_t inos = 0;
  std::uint32_t blocks = 0;
  std::uint32_t meta_blkaddr = 0;
  std::uint32_t xattr_blkaddr = 0;
  std::uint16_t extra_devices = 0;
  std::uint16_t devt_slotoff = 0;
  std::uint64_t packed_nid = 0;
  std::uint16_t available_compr_algs = 0;
  std::uint8_t extslots = 0;    // superblock extension slots (16 bytes each) after byte 1152
  std::uint8_t dirblkbits = 0;  // directory block size over the block size; 0 on every image seen

  std::uint64_t block_size() const { return std::uint64_t{1} << blkszbits; }
};

struct ErofsLayout {
  ErofsSuperblock sb;
  std::vector<ErofsDevice> devices;  // the extra devices, in table order (device k = [k-1])
  std::vector<ErofsRange> metadata;  // all on device 0, in walk order
  std::vector<ErofsRange> data;      // per device, in walk order (pclusters not listed)
  std::uint64_t inodes = 0;
  std::uint64_t regular_files = 0;
  std::uint64_t directories = 0;
  std::uint64_t symlinks = 0;
  std::uint64_t compressed_files = 0;
  std::uint64_t chunk_based_files = 0;
  bool compressed_data_unlisted = false;  // some compressed file's pclusters are not in `data`

  // Metadata ranges widened to whole `align`-byte blocks, sorted and merged.
  std::vector<ErofsRange> MergedMetadata(std::uint64_t align) const;
  // Everything on the primary image of `image_size` bytes outside MergedMetadata(align):
  // all data there (including unlisted pclusters) lies in these ranges.
  std::vector<ErofsRange> PrimaryDataRanges(std::uint64_t image_size, std::uint64_t align) const;
};

struct ErofsLayoutOptions {
  std::uint64_t max_inodes = 10'000'000;           // distinct inodes walked
  std::uint64_t max_directory_bytes = 256u << 20;  // one directory's size
  std::uint64_t max_ranges = 50'000'000;           // metadata + data ranges
  std::uint64_t max_chunks_per_file = 64u << 20;   // chunk / lcluster indexes of one file

  Status Validate() const;
};

// Fills `out` with the image's bytes at `offset` (whole, or an error).
using ErofsReadFn = std::function<Status(std::uint64_t offset, std::span<std::byte> out)>;

class ErofsLayoutParser {
 public:
  // Parses the image of `image_size` bytes that `read` gives access to.
  static Result<ErofsLayout> Parse(const ErofsReadFn& read, std::uint64_t image_size,
                                   const ErofsLayoutOptions& options = {});
  // Convenience: an image held in memory.
  static Result<ErofsLayout> ParseBytes(std::span<const std::byte> image,
                                        const ErofsLayoutOptions& options = {});
};

}  // namespace lazyblob

#endif  // LAZYBLOB_STORE_EROFS_LAYOUT_H_
