#include "core/access_trace.h"

#include <algorithm>
#include <cstring>
#include <unordered_map>
#include <unordered_set>

namespace lazyblob {
namespace {

constexpr char kMagic[4] = {'L', 'B', 'T', 'R'};
constexpr std::uint8_t kVersion = 1;
constexpr std::size_t kHeaderBytes = 4 + 1 + 8 + 4;

void PutLe(std::string* out, std::uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

std::uint64_t GetLe(std::string_view in, std::size_t at, int bytes) {
  std::uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) {
    v |= static_cast<std::uint64_t>(static_cast<std::uint8_t>(in[at + i])) << (8 * i);
  }
  return v;
}

}  // namespace

std::string AccessTrace::Encode() const {
  std::string out(kMagic, sizeof kMagic);
  out.push_back(static_cast<char>(kVersion));
  PutLe(&out, blob_size, 8);
  PutLe(&out, blocks.size(), 4);
  std::uint64_t previous = 0;
  for (std::uint64_t block : blocks) {
    const std::int64_t delta = static_cast<std::int64_t>(block - previous);
    std::uint64_t zigzag =
        (static_cast<std::uint64_t>(delta) << 1) ^ static_cast<std::uint64_t>(delta >> 63);
    do {
      const std::uint8_t low = zigzag & 0x7f;
      zigzag >>= 7;
      out.push_back(static_cast<char>(low | (zigzag != 0 ? 0x80 : 0)));
    } while (zigzag != 0);
    previous = block;
  }
  return out;
}

Result<AccessTrace> AccessTrace::Decode(std::string_view in) {
  if (in.size() < kHeaderBytes || std::memcmp(in.data(), kMagic, sizeof kMagic) != 0) {
    return Malformed("access trace: bad magic or short header");
  }
  if (static_cast<std::uint8_t>(in[4]) != kVersion) {
    return Malformed("access trace: unknown version " +
                     std::to_string(static_cast<std::uint8_t>(in[4])));
  }
  AccessTrace trace;
  trace.blob_size = GetLe(in, 5, 8);
  const std::uint64_t count = GetLe(in, 13, 4);
  if (count > kMaxEntries) return Malformed("access trace: too many entries");
  const std::uint64_t block_limit = (trace.blob_size + kBlockBytes - 1) / kBlockBytes;
  trace.blocks.reserve(std::min<std::uint64_t>(count, in.size()));
  std::size_t at = kHeaderBytes;
  std::uint64_t previous = 0;
  for (std::uint64_t n = 0; n < count; ++n) {
    std::uint64_t zigzag = 0;
    for (int shift = 0;; shift += 7) {
      if (at >= in.size() || shift > 63) return Malformed("access trace: truncated entry");
      const auto byte = static_cast<std::uint8_t>(in[at++]);
      zigzag |= static_cast<std::uint64_t>(byte & 0x7f) << shift;
      if ((byte & 0x80) == 0) break;
    }
    const auto delta = static_cast<std::int64_t>((zigzag >> 1) ^ (~(zigzag & 1) + 1));
    const std::uint64_t block = previous + static_cast<std::uint64_t>(delta);
    if (block >= block_limit) return Malformed("access trace: block past the blob");
    trace.blocks.push_back(block);
    previous = block;
  }
  if (at != in.size()) return Malformed("access trace: trailing bytes");
  return trace;
}

AccessTrace AccessTrace::Merge(const AccessTrace& base, const AccessTrace& other) {
  if (base.blob_size != other.blob_size || other.blocks.empty()) return base;
  if (base.blocks.empty()) return other;
  // Each block only `other` names follows the block `other` read just before it (its
  // "anchor"); the ones it read before any block of base's lead the record.
  std::unordered_set<std::uint64_t> held(base.blocks.begin(), base.blocks.end());
  std::vector<std::uint64_t> lead;
  std::unordered_map<std::uint64_t, std::vector<std::uint64_t>> following;
  const std::uint64_t* anchor = nullptr;
  for (const std::uint64_t& block : other.blocks) {
    if (held.insert(block).second) (anchor ? following[*anchor] : lead).push_back(block);
    anchor = &block;
  }
  AccessTrace merged;
  merged.blob_size = base.blob_size;
  merged.blocks.reserve(std::min<std::size_t>(held.size(), kMaxEntries));
  // Depth-first: a block, then what follows it (an extra can anchor further extras).
  std::vector<std::uint64_t> stack;
  std::unordered_set<std::uint64_t> emitted;  // a decoded base may name a block twice
  auto emit = [&](std::uint64_t block) {
    stack.push_back(block);
    while (!stack.empty() && merged.blocks.size() < kMaxEntries) {
      const std::uint64_t b = stack.back();
      stack.pop_back();
      if (!emitted.insert(b).second) continue;
      merged.blocks.push_back(b);
      if (auto it = following.find(b); it != following.end()) {
        stack.insert(stack.end(), it->second.rbegin(), it->second.rend());
      }
    }
  };
  for (std::uint64_t block : lead) emit(block);
  for (std::uint64_t block : base.blocks) emit(block);
  return merged;
}

std::vector<std::size_t> AccessTrace::ChunksOf(const BlobMap& map) const {
  std::vector<std::size_t> chunks;
  if (map.size != blob_size) return chunks;
  std::unordered_set<std::size_t> seen;
  for (std::uint64_t block : blocks) {
    const std::uint64_t offset = block * kBlockBytes;
    const auto [first, end] = map.Covering(offset, 1);
    if (first == end || map.extents[first].blob_offset != offset) continue;
    if (seen.insert(first).second) chunks.push_back(first);
  }
  return chunks;
}

}  // namespace lazyblob
