#include "tools/lazyblob_output.h"

#include <algorithm>
#include <cstdio>

#include "tools/lazyblob_format.h"
#include "tools/tool_version.h"

namespace lazyblob::cli {

std::string Hex(const std::uint8_t* data, std::size_t size) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string s;
  s.reserve(size * 2);
  for (std::size_t i = 0; i < size; ++i) {
    s += kDigits[data[i] >> 4];
    s += kDigits[data[i] & 0xf];
  }
  return s;
}

nlohmann::json ToJson(const ImportResult& r) {
  const std::uint64_t reused = r.size - std::min(r.size, r.new_bytes);
  return {{"id", r.id},
          {"size", r.size},
          {"chunks", r.chunks},
          {"new_chunks", r.new_chunks},
          {"new_bytes", r.new_bytes},
          {"reused_bytes", reused},
          {"dedup_percent",
           r.size == 0 ? 0.0 : 100.0 * static_cast<double>(reused) / static_cast<double>(r.size)},
          {"stored_bytes", r.new_stored_bytes},
          {"already_present", r.already_present}};
}

nlohmann::json ToJson(const BlobInfo& b) {
  return {{"id", b.id},
          {"size", b.size},
          {"chunks", b.chunk_count},
          {"chunker", b.chunker.ToString()},
          {"sha256", Hex(b.sha256.data(), b.sha256.size())},
          {"created", IsoTimeUtc(b.created_unix_s)},
          {"created_unix_s", b.created_unix_s}};
}

nlohmann::json ToJson(const StoreStats& s) {
  return {{"blobs", s.blobs},
          {"chunks", s.chunks},
          {"logical_bytes", s.logical_bytes},
          {"unique_bytes", s.unique_bytes},
          {"stored_bytes", s.stored_bytes},
          {"dedup_ratio", s.dedup_ratio},
          {"compression_ratio", s.compression_ratio},
          {"packs", s.packs},
          {"pack_file_bytes", s.pack_file_bytes}};
}

nlohmann::json ToJson(const VerifyReport& r) {
  nlohmann::json corrupt = nlohmann::json::array();
  for (const CorruptChunk& c : r.corrupt) {
    corrupt.push_back({{"chunk", c.key.ToHex()},
                       {"pack", c.pack_id},
                       {"offset", c.offset},
                       {"reason", c.reason},
                       {"blobs", c.blobs}});
  }
  nlohmann::json missing = nlohmann::json::array();
  for (const MissingChunk& m : r.missing) {
    missing.push_back({{"chunk", m.key.ToHex()}, {"blobs", m.blobs}});
  }
  return {{"clean", r.clean()},
          {"blobs_checked", r.blobs_checked},
          {"chunks_checked", r.chunks_checked},
          {"corrupt", corrupt},
          {"missing", missing}};
}

nlohmann::json ToJson(const GcResult& g) {
  return {{"dry_run", g.dry_run},
          {"chunks_removed", g.chunks_removed},
          {"bytes_reclaimed", g.bytes_reclaimed},
          {"packs_rewritten", g.packs_rewritten},
          {"packs_deleted", g.packs_deleted}};
}

nlohmann::json ToJson(const RebuildReport& r) {
  return {{"packs_scanned", r.packs_scanned},
          {"chunks", r.chunks},
          {"blobs", r.blobs},
          {"removed_blobs", r.removed_blobs},
          {"skipped_records", r.skipped_records},
          {"problems", r.problems}};
}

nlohmann::json ErrorJson(const Status& status) {
  return {{"error",
           {{"code", std::string(StatusCodeName(status.code()))}, {"message", status.message()}}}};
}

void PrintJson(const nlohmann::json& doc) {
  nlohmann::json versioned = doc;
  if (versioned.is_object() && !versioned.contains("version")) versioned["version"] = ToolVersion();
  const std::string text = versioned.dump(2);
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fputc('\n', stdout);
}

}  // namespace lazyblob::cli
