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

}  // namespace

Result<RebuildReport> RebuildIndexFromPacks(const ChunkStoreOptions& options) {
  const std::string index_dir = options.path + "/index";
  std::error_code ec;
  std::filesystem::remove_all(index_dir, ec);
  if (ec) return Status::FromErrno(ec.value(), "remove " + index_dir);
  LB_ASSIGN_OR_RETURN(auto index, StoreIndex::OpenPrimary(index_dir, true, options.test_index_env));
  LB_ASSIGN_OR_RETURN(auto ids, PackSet::ListPackIds(options.path));

  RebuildReport report;
  StoreMeta meta;
  meta.default_chunker = options.default_chunker;
  bool have_identity = false;
  std::unordered_set<ChunkKey, ChunkKeyHash> seen;
  std::map<std::string, BlobState> blobs;
  auto batch = index->NewBatch();
  auto flush = [&]() -> Status {
    if (batch.count() < kBatchEntries) return Status::Ok();
    LB_RETURN_IF_ERROR(index->Commit(batch));
    batch = index->NewBatch();
    return Status::Ok();
  };

  for (std::uint32_t pack : ids) {
    auto scanner = PackScanner::Open(options.path, pack);
    if (!scanner.ok()) {
      // Keep the pack as it is (a committed end = its size, so no writer truncates or
      // deletes it): its bytes may still be salvageable by hand.
      report.problems.push_back(scanner.status().message() + "; pack ignored");
      std::error_code size_ec;
      auto size = std::filesystem::file_size(PackSet::PackPath(options.path, pack), size_ec);
      if (!size_ec) batch.PutPackEnd(pack, size);
      continue;
    }
    ++report.packs_scanned;
    meta.store_uuid = (*scanner)->header().store_uuid;
    meta.default_chunker = (*scanner)->header().default_chunker;
    have_identity = true;
    while (true) {
      LB_ASSIGN_OR_RETURN(auto rec, (*scanner)->Next(&report.problems));
      if (!rec) break;
      const RecordHeader& h = rec->header;
      if (h.type == RecordType::kChunk) {
        if (!seen.insert(h.key).second) continue;
        batch.PutChunk(
            h.key, ChunkLocation{pack, rec->offset, h.stored_len, h.raw_len, h.codec, h.sha256});
        ++report.chunks;
        LB_RETURN_IF_ERROR(flush());
        continue;
      }
      const std::string where =
          "pack " + std::to_string(pack) + " offset " + std::to_string(rec->offset) + ": ";
      if (Sha256Of(std::as_bytes(std::span(rec->payload))) != h.sha256) {
        report.problems.push_back(where + "record payload checksum mismatch; skipped");
        ++report.skipped_records;
        continue;
      }
      BlobState st;
      st.pack = pack;
      st.offset = rec->offset;
      if (h.type == RecordType::kManifest) {
        auto m = DecodeManifest(rec->payload);
        if (!m.ok()) {
          report.problems.push_back(where + m.status().message() + "; skipped");
          ++report.skipped_records;
          continue;
        }
        st.seq = m->seq;
        st.manifest = std::move(*m);
      } else {
        auto t = DecodeTombstone(rec->payload);
        if (!t.ok()) {
          report.problems.push_back(where + t.status().message() + "; skipped");
          ++report.skipped_records;
          continue;
        }
        st.seq = t->seq;
        st.removed = true;
        st.manifest.id = t->id;
      }
      meta.next_seq = std::max(meta.next_seq, st.seq + 1);
      BlobState& cur = blobs[st.manifest.id];
      if (st.seq >= cur.seq) cur = std::move(st);
    }
    report.skipped_records += (*scanner)->skipped_records();
    batch.PutPackEnd(pack, (*scanner)->valid_end());
  }
  for (auto& [id, st] : blobs) {
    if (st.removed) {
      ++report.removed_blobs;
      continue;
    }
    BlobRecord r;
    const BlobManifest& m = st.manifest;
    r.info = BlobInfo{m.id, m.size, m.extents.size(), m.chunker, m.sha256, m.created_unix_s};
    r.seq = m.seq;
    r.manifest_pack = st.pack;
    r.manifest_offset = st.offset;
    batch.PutBlob(r, m.extents);
    ++report.blobs;
    LB_RETURN_IF_ERROR(flush());
  }
  if (!have_identity && RAND_bytes(meta.store_uuid.data(), 16) != 1) {
    return Internal("RAND_bytes failed");
  }
  batch.PutMeta(meta);
  LB_RETURN_IF_ERROR(index->Commit(batch));
  return report;
}

}  // namespace lazyblob
