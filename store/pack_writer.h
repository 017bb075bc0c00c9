// PackWriter: the writer's append path into the pack files, with all-or-nothing
// transactions: records appended since Begin() are either made durable by Sync() (and
// then referenced by an index commit) or removed by Rollback() (pack truncated back,
// packs created since Begin() deleted). See FORMAT.md "Write order".
//
// Thread-safety: none; used by the store's single writer under its writer mutex.
#ifndef LAZYBLOB_STORE_PACK_WRITER_H_
#define LAZYBLOB_STORE_PACK_WRITER_H_

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "core/status.h"
#include "core/unique_fd.h"
#include "store/file_ops.h"
#include "store/pack_format.h"

namespace lazyblob {

struct RecordLocation {
  std::uint32_t pack_id = 0;
  std::uint64_t offset = 0;
};

class PackWriter {
 public:
  // `committed_ends`: the index's pack_end entries. The last pack is truncated to its
  // committed end (bytes past it were never referenced: crash debris); a last pack with
  // no committed end is deleted. `ops` (borrowed, outlives the writer) makes the writes
  // durable: PosixFileOps() outside tests.
  static Result<std::unique_ptr<PackWriter>> Open(
      const std::string& store_dir, const PackHeader& header_template,
      std::uint64_t pack_target_bytes,
      const std::vector<std::pair<std::uint32_t, std::uint64_t>>& committed_ends, FileOps* ops);
  ~PackWriter();

  void Begin();
  // Appends header + payload; the record's location.
  Result<RecordLocation> Append(const RecordHeader& header, std::span<const std::uint8_t> payload);
  // Appends an already encoded record (gc copies).
  Result<RecordLocation> AppendEncoded(std::span<const std::uint8_t> record);
  // Makes the next Append start a new pack.
  void StartNewPack() { force_new_pack_ = true; }
  // Writes buffered bytes and fdatasyncs every pack touched since Begin (and packs/).
  Status Sync();
  // Undoes everything since Begin(). Best effort; returns the first failure.
  Status Rollback();
  // Ends of the packs touched since Begin() (for the index's pack_end entries).
  std::vector<std::pair<std::uint32_t, std::uint64_t>> TouchedEnds() const;
  std::uint32_t current_pack() const { return pack_id_; }

 private:
  PackWriter() = default;
  Status OpenNewPack();
  Status Flush();

  FileOps* ops_ = nullptr;
  std::string dir_;
  PackHeader header_template_;
  std::uint64_t target_bytes_ = 0;
  UniqueFd fd_;
  std::uint32_t pack_id_ = 0;  // 0: no open pack
  std::uint32_t next_id_ = 1;
  std::uint64_t end_ = 0;      // logical end including buffered bytes
  std::uint64_t flushed_ = 0;  // bytes on disk
  std::vector<std::uint8_t> buf_;
  bool force_new_pack_ = false;
  bool dir_dirty_ = false;
  // Transaction state.
  std::uint32_t begin_pack_ = 0;
  std::uint64_t begin_end_ = 0;
  std::uint32_t begin_next_id_ = 1;
  std::vector<std::uint32_t> created_;              // packs created since Begin
  std::map<std::uint32_t, std::uint64_t> touched_;  // pack -> end since Begin
  std::vector<UniqueFd> to_sync_;                   // fds of rotated-out packs
};

}  // namespace lazyblob

#endif  // LAZYBLOB_STORE_PACK_WRITER_H_
