// PackScanner: walks the records of one pack file in order, from the pack alone (used by
// RebuildIndex and Gc). Damage is reported, not fatal: a record whose header does not
// decode is skipped by searching for the next valid header; a record cut short by the
// end of the file (a crash during an append) ends the scan.
//
// Thread-safety: none; one thread owns a scanner.
#ifndef LAZYBLOB_STORE_PACK_SCANNER_H_
#define LAZYBLOB_STORE_PACK_SCANNER_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"
#include "core/unique_fd.h"
#include "store/pack_format.h"

namespace lazyblob {

struct ScannedRecord {
  std::uint64_t offset = 0;  // of the record header
  RecordHeader header;
  std::vector<std::uint8_t> payload;
  std::uint64_t size() const { return kRecordHeaderBytes + payload.size(); }
};

class PackScanner {
 public:
  // kCorruption when the pack header is unreadable.
  static Result<std::unique_ptr<PackScanner>> Open(const std::string& store_dir,
                                                   std::uint32_t pack_id);

  // The next record, or nullopt at the end. Skipped damage is appended to `problems`.
  Result<std::optional<ScannedRecord>> Next(std::vector<std::string>* problems);

  const PackHeader& header() const { return header_; }
  // End of the last complete record returned so far (the pack's valid length).
  std::uint64_t valid_end() const { return valid_end_; }
  std::uint64_t skipped_records() const { return skipped_; }

 private:
  PackScanner() = default;
  Status ReadAt(std::uint64_t offset, std::uint8_t* out, std::size_t n);
  // Offset of the next decodable record header at or after `from`, or file size.
  Result<std::uint64_t> Resync(std::uint64_t from);

  UniqueFd fd_;
  std::uint32_t pack_id_ = 0;
  PackHeader header_;
  std::uint64_t file_size_ = 0;
  std::uint64_t pos_ = 0;
  std::uint64_t valid_end_ = 0;
  std::uint64_t skipped_ = 0;
};

}  // namespace lazyblob

#endif  // LAZYBLOB_STORE_PACK_SCANNER_H_
