#include "store/chunker.h"

#include <algorithm>
#include <array>
#include <bit>
#include <charconv>

#include "core/aligned_buffer.h"

namespace lazyblob {
namespace {

constexpr std::uint32_t kMaxChunkLimit = 16u << 20;
// The gear hash forgets a byte after 64 shifts, so the hash at a block end depends only
// on the 64 bytes before it; hashing just those gives the same value as rolling over
// the whole block (FORMAT.md "Chunking").
constexpr std::size_t kGearWindow = 64;

// Frozen table: splitmix64 from seed 0x6c617a79626c6f62 ("lazyblob"). Changing it
// changes every cut point (FORMAT.md).
constexpr std::array<std::uint64_t, 256> MakeGearTable() {
  std::array<std::uint64_t, 256> t{};
  std::uint64_t x = 0x6c617a79626c6f62ull;
  for (auto& v : t) {
    x += 0x9e3779b97f4a7c15ull;
    std::uint64_t z = x;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    v = z ^ (z >> 31);
  }
  return t;
}
constexpr std::array<std::uint64_t, 256> kGear = MakeGearTable();

// Gear hash over the kGearWindow bytes ending at `end` (the whole block is longer).
inline std::uint64_t GearAt(const std::byte* end) {
  std::uint64_t h = 0;
  const std::byte* p = end - kGearWindow;
  for (std::size_t i = 0; i < kGearWindow; ++i) {
    h = (h << 1) + kGear[static_cast<std::uint8_t>(p[i])];
  }
  return h;
}

// Mask with `bits` ones at the top: the top bits of a gear hash mix the most bytes.
constexpr std::uint64_t TopMask(int bits) {
  return bits <= 0 ? 0 : (bits >= 64 ? ~0ull : ~0ull << (64 - bits));
}

}  // namespace

Status ChunkerOptions::Validate() const {
  if (kind != ChunkerKind::kCdc && kind != ChunkerKind::kFixed) {
    return InvalidArgument("chunker kind must be cdc or fixed");
  }
  for (std::uint32_t v : {min_bytes, avg_bytes, max_bytes}) {
    if (v == 0 || v % kBlockSize != 0) {
      return InvalidArgument("chunker sizes must be non-zero multiples of 4096: " + ToString());
    }
    if (v > kMaxChunkLimit) return InvalidArgument("chunker sizes must be <= 16 MiB");
  }
  if (!(min_bytes <= avg_bytes && avg_bytes <= max_bytes)) {
    return InvalidArgument("chunker needs min <= avg <= max: " + ToString());
  }
  if (!std::has_single_bit(avg_bytes)) {
    return InvalidArgument("chunker avg must be a power of two: " + ToString());
  }
  return Status::Ok();
}

std::string ChunkerOptions::ToString() const {
  if (kind == ChunkerKind::kFixed) return "fixed:" + std::to_string(avg_bytes);
  return "cdc:" + std::to_string(min_bytes) + ":" + std::to_string(avg_bytes) + ":" +
         std::to_string(max_bytes);
}

Result<ChunkerOptions> ChunkerOptions::Parse(std::string_view text) {
  auto number = [](std::string_view s, std::uint32_t* out) {
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
    return ec == std::errc() && p == s.data() + s.size();
  };
  std::vector<std::string_view> parts;
  std::size_t start = 0;
  while (true) {
    std::size_t colon = text.find(':', start);
    parts.push_back(text.substr(start, colon - start));
    if (colon == std::string_view::npos) break;
    start = colon + 1;
  }
  ChunkerOptions o;
  bool ok = false;
  if (parts[0] == "fixed" && parts.size() == 2) {
    o.kind = ChunkerKind::kFixed;
    ok = number(parts[1], &o.avg_bytes);
    o.min_bytes = o.max_bytes = o.avg_bytes;
  } else if (parts[0] == "cdc" && parts.size() == 4) {
    ok = number(parts[1], &o.min_bytes) && number(parts[2], &o.avg_bytes) &&
         number(parts[3], &o.max_bytes);
  }
  if (!ok) {
    return InvalidArgument("chunker must be 'cdc:MIN:AVG:MAX' or 'fixed:SIZE', got '" +
                           std::string(text) + "'");
  }
  LB_RETURN_IF_ERROR(o.Validate());
  return o;
}

Chunker::Chunker(const ChunkerOptions& options) : options_(options) {
  const int bits = std::countr_zero(options.avg_bytes / kBlockSize);
  mask_small_ = TopMask(bits + 1);
  mask_large_ = TopMask(bits - 1);
}

std::uint32_t Chunker::MaxChunkBytes() const {
  return options_.kind == ChunkerKind::kFixed ? options_.avg_bytes : options_.max_bytes;
}

std::size_t Chunker::NextCut(std::span<const std::byte> data, bool at_end) const {
  const std::size_t n = data.size();
  if (options_.kind == ChunkerKind::kFixed) return std::min<std::size_t>(n, options_.avg_bytes);
  if (n <= options_.min_bytes) return n;
  const std::size_t limit = std::min<std::size_t>(n, options_.max_bytes);
  // Candidate cut points: block ends from min_bytes on, excluding `limit` itself.
  for (std::size_t end = options_.min_bytes; end < limit; end += kBlockSize) {
    const std::uint64_t mask = end < options_.avg_bytes ? mask_small_ : mask_large_;
    if ((GearAt(data.data() + end) & mask) == 0) return end;
  }
  (void)at_end;  // a short tail without a cut is the blob's last chunk
  return limit;
}

std::vector<std::uint32_t> Chunker::SplitAll(std::span<const std::byte> blob) const {
  std::vector<std::uint32_t> lengths;
  std::size_t pos = 0;
  while (pos < blob.size()) {
    std::size_t len = NextCut(blob.subspan(pos), true);
    lengths.push_back(static_cast<std::uint32_t>(len));
    pos += len;
  }
  return lengths;
}

}  // namespace lazyblob
