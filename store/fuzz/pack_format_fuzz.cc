// libFuzzer target: the pack-file decoders read bytes from disk that may be damaged (a
// crash tail, a flipped bit). They must reject or decode any input without reading out
// of bounds, and whatever they accept must survive an encode/decode round trip.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

#include "store/pack_format.h"

namespace {

void Check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace lazyblob;
  if (size == 0) return 0;
  const std::span<const std::uint8_t> rest(data + 1, size - 1);
  switch (data[0] % 5) {
    case 0: {
      auto h = DecodePackHeader(rest);
      if (h.ok()) {
        auto again = EncodePackHeader(*h);
        Check(DecodePackHeader(again).ok());
      }
      break;
    }
    case 1: {
      auto h = DecodeRecordHeader(rest);
      if (h.ok()) {
        auto again = DecodeRecordHeader(EncodeRecordHeader(*h));
        Check(again.ok() && again->key == h->key && again->stored_len == h->stored_len);
      }
      break;
    }
    case 2: {
      auto m = DecodeManifest(rest);
      if (m.ok()) {
        auto again = DecodeManifest(EncodeManifest(*m));
        Check(again.ok() && again->id == m->id && again->size == m->size &&
              again->extents.size() == m->extents.size());
      }
      break;
    }
    case 3: {
      auto t = DecodeTombstone(rest);
      if (t.ok()) {
        auto again = DecodeTombstone(EncodeTombstone(*t));
        Check(again.ok() && again->id == t->id && again->seq == t->seq);
      }
      break;
    }
    default:
      DecodeChunkerParams(rest).status().IgnoreError();
      break;
  }
  return 0;
}
