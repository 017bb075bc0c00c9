// libFuzzer target: FanotifyEventDecoder must decode or reject any bytes without reading
// out of bounds, must own (and so close) every fd it saw, and must keep its promises
// about what a decoded event holds.
#include <fcntl.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "transport/fanotify_event_decoder.h"

namespace {

int g_adopted = 0;

// Fd numbers in fuzz input are made up: each one becomes a real, fresh fd, so a leak or a
// double close shows up as a changed lowest free fd number.
lazyblob::UniqueFd AdoptFresh(std::int32_t) {
  ++g_adopted;
  return lazyblob::UniqueFd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
}

int LowestFreeFd() {
  int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  ::close(fd);
  return fd;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace lazyblob;
  const int lowest_before = LowestFreeFd();
  g_adopted = 0;
  {
    std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data), size);
    FanotifyDecodeResult r = FanotifyEventDecoder::Decode(bytes, &AdoptFresh);
    std::size_t owned = 0;
    for (const FanotifyEvent& e : r.events) {
      if (e.pre_access() != e.range.has_value()) std::abort();
      if (e.pre_access() && !e.fd.valid()) std::abort();
      if (e.range && e.range->end() < e.range->offset) std::abort();
      owned += e.fd.valid();
    }
    for (const RejectedFanotifyEvent& x : r.rejected) {
      if (x.why.ok()) std::abort();
      if (x.needs_answer && !x.fd.valid()) std::abort();
      owned += x.fd.valid();
    }
    if (owned != static_cast<std::size_t>(g_adopted)) std::abort();
    if (r.framing_broken && r.rejected.empty()) std::abort();
  }
  if (LowestFreeFd() != lowest_before) std::abort();  // every adopted fd was closed
  return 0;
}
