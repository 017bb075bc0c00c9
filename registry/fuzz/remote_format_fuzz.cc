// libFuzzer target: everything lazyblob decodes from a registry is untrusted (a malicious
// or broken registry, a proxy in the middle): chunk maps, manifests, WWW-Authenticate
// challenges and tags. The decoders must reject or decode any input without reading out
// of bounds, and a chunk map they accept must survive an encode/decode round trip.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <string_view>

#include "registry/registry_auth.h"
#include "registry/registry_ref.h"
#include "registry/remote_format.h"

namespace {

void Check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace lazyblob;
  if (size == 0) return 0;
  const std::span<const std::uint8_t> rest(data + 1, size - 1);
  const std::string_view text(reinterpret_cast<const char*>(rest.data()), rest.size());
  switch (data[0] % 4) {
    case 0: {
      auto m = DecodeChunkMap(rest);
      if (m.ok()) {
        const auto again = EncodeChunkMap(*m);
        Check(std::equal(again.begin(), again.end(), rest.begin(), rest.end()));
      }
      break;
    }
    case 1:
      DecodeArtifactManifest(text).status().IgnoreError();
      break;
    case 2:
      ParseAuthChallenge(text).status().IgnoreError();
      break;
    case 3: {
      auto id = BlobIdForTag(text);
      // Decoding is exact: an accepted tag is what its id encodes to (when it fits).
      if (id.ok()) Check(text.size() > 128 || TagForBlobId(*id) == text);
      RegistryRef::Parse(text).status().IgnoreError();
      break;
    }
  }
  return 0;
}
