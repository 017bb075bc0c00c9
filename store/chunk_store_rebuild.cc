// RebuildIndexFromPacks: recreates <store>/index from the pack files alone
// (FORMAT.md "Rebuilding the index").
#include <openssl/rand.h>

#include <filesystem>
#include <map>
#include <unordered_set>

#include "store/chunk_store_impl.h"
#include "store/hashing.h"
#include "store/pack_scanner.h"

namespace lazyblob {
namespace {

constexpr std::size_t kBatchEntries = 50000;

// The newest record (by seq) seen for one blob id.
struct BlobState {
  std::uint64_t seq = 0;
  bool removed = false;
  BlobManifest manifest;
  std::uint32_t pack = 0;
  std::uint64_t offset = 0;
};

// A manifest or tombstone record as a BlobState (pack and offset left for the caller);
// an error when its payload does not check out.
Result<BlobState> DecodeBlobState(const ScannedRecord& rec) {
  const RecordHeader& h = rec.header;
  if (Sha256Of(std::as_bytes(std::span(rec.payload))) != h.sha256) {
    return Corruption("record payload checksum mismatch");
  }
  BlobState st;
  if (h.type == RecordType::kManifest) {
    LB_ASSIGN_OR_RETURN(st.manifest, DecodeManifest(rec.payload));
    st.seq = st.manifest.seq;
  } else {
    LB_ASSIGN_OR_RETURN(Tombstone t, DecodeTombstone(rec.payload));
    st.seq = t.seq;
    st.removed = true;
    st.manifest.id = t.id;
  }
  return st;
}

// One rebuild: the new index, the batch being filled (committed every kBatchEntries), and
// what the scan found so far. Not thread-safe; `options` must outlive it.
class IndexRebuild {
 public:
  IndexRebuild(const ChunkStoreOptions& options, std::unique_ptr<StoreIndex> index)
      : options_(options), index_(std::move(index)), batch_(index_->NewBatch()) {
    meta_.default_chunker = options.default_chunker;
  }

  Result<RebuildReport> Run(const std::vector<std::uint32_t>& pack_ids) {
    for (std::uint32_t pack : pack_ids) LB_RETURN_IF_ERROR(ScanPack(pack));
    LB_RETURN_IF_ERROR(PutLiveBlobs());
    if (!have_identity_ && RAND_bytes(meta_.store_uuid.data(), 16) != 1) {
      return Internal("RAND_bytes failed");
    }
    batch_.PutMeta(meta_);
    LB_RETURN_IF_ERROR(index_->Commit(batch_));
    return report_;
  }

 private:
  Status FlushIfFull() {
    if (batch_.count() < kBatchEntries) return Status::Ok();
    LB_RETURN_IF_ERROR(index_->Commit(batch_));
    batch_ = index_->NewBatch();
    return Status::Ok();
  }

  // Indexes the chunks of `pack` (the first record of each key wins), collects its blob
  // records, and commits its end as the end of its valid records.
  Status ScanPack(std::uint32_t pack) {
    auto scanner = PackScanner::Open(options_.path, pack);
    if (!scanner.ok()) {
      // Keep the pack as it is (a committed end = its size, so no writer truncates or
      // deletes it): its bytes may still be salvageable by hand.
      report_.problems.push_back(scanner.status().message() + "; pack ignored");
      std::error_code size_ec;
      auto size = std::filesystem::file_size(PackSet::PackPath(options_.path, pack), size_ec);
      if (!size_ec) batch_.PutPackEnd(pack, size);
      return Status::Ok();
    }
    ++report_.packs_scanned;
    meta_.store_uuid = (*scanner)->header().store_uuid;
    meta_.default_chunker = (*scanner)->header().default_chunker;
    have_identity_ = true;
    while (true) {
      LB_ASSIGN_OR_RETURN(auto rec, (*scanner)->Next(&report_.problems));
      if (!rec) break;
      const RecordHeader& h = rec->header;
      if (h.type != RecordType::kChunk) {
        AddBlobRecord(pack, *rec);
      } else if (seen_.insert(h.key).second) {
        batch_.PutChunk(
            h.key, ChunkLocation{pack, rec->offset, h.stored_len, h.raw_len, h.codec, h.sha256});
        ++report_.chunks;
        LB_RETURN_IF_ERROR(FlushIfFull());
      }
    }
    report_.skipped_records += (*scanner)->skipped_records();
    batch_.PutPackEnd(pack, (*scanner)->valid_end());
    return Status::Ok();
  }

  // Keeps the record if it is the newest (by seq) for its blob id; one that does not
  // decode is reported and skipped.
  void AddBlobRecord(std::uint32_t pack, const ScannedRecord& rec) {
    auto st = DecodeBlobState(rec);
    if (!st.ok()) {
      report_.problems.push_back("pack " + std::to_string(pack) + " offset " +
                                 std::to_string(rec.offset) + ": " + st.status().message() +
                                 "; skipped");
      ++report_.skipped_records;
      return;
    }
    st->pack = pack;
    st->offset = rec.offset;
    meta_.next_seq = std::max(meta_.next_seq, st->seq + 1);
    BlobState& cur = blobs_[st->manifest.id];
    if (st->seq >= cur.seq) cur = std::move(*st);
  }

  // The blobs whose newest record is a manifest.
  Status PutLiveBlobs() {
    for (auto& [id, st] : blobs_) {
      if (st.removed) {
        ++report_.removed_blobs;
        continue;
      }
      BlobRecord r;
      const BlobManifest& m = st.manifest;
      r.info = BlobInfo{m.id, m.size, m.extents.size(), m.chunker, m.sha256, m.created_unix_s};
      r.seq = m.seq;
      r.manifest_pack = st.pack;
      r.manifest_offset = st.offset;
      batch_.PutBlob(r, m.extents);
      ++report_.blobs;
      LB_RETURN_IF_ERROR(FlushIfFull());
    }
    return Status::Ok();
  }

  const ChunkStoreOptions& options_;
  std::unique_ptr<StoreIndex> index_;
  StoreIndex::Batch batch_;
  RebuildReport report_;
  StoreMeta meta_;
  bool have_identity_ = false;
  std::unordered_set<ChunkKey, ChunkKeyHash> seen_;
  std::map<std::string, BlobState> blobs_;
};

}  // namespace

Result<RebuildReport> RebuildIndexFromPacks(const ChunkStoreOptions& options) {
  const std::string index_dir = options.path + "/index";
  std::error_code ec;
  std::filesystem::remove_all(index_dir, ec);
  if (ec) return Status::FromErrno(ec.value(), "remove " + index_dir);
  LB_ASSIGN_OR_RETURN(auto index, StoreIndex::OpenPrimary(index_dir, true, options.test_index_env));
  LB_ASSIGN_OR_RETURN(auto ids, PackSet::ListPackIds(options.path));
  IndexRebuild rebuild(options, std::move(index));
  return rebuild.Run(ids);
}

}  // namespace lazyblob
