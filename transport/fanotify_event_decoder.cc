#include "transport/fanotify_event_decoder.h"

#include <cstring>
#include <limits>
#include <string>

#include "transport/fanotify_uapi.h"

namespace lazyblob {
namespace {

using fanotify_abi::EventMetadata;
using fanotify_abi::InfoHeader;
using fanotify_abi::InfoRange;

static_assert(sizeof(EventMetadata) == kFanotifyMetadataSize);
static_assert(sizeof(InfoRange) == kFanotifyRangeRecordSize);
static_assert(fanotify_abi::kPreAccess == kFanotifyPreAccess);
static_assert(FAN_Q_OVERFLOW == kFanotifyQueueOverflow);
static_assert((FAN_OPEN_PERM | FAN_ACCESS_PERM | FAN_OPEN_EXEC_PERM | FAN_PRE_ACCESS) ==
              kFanotifyPermissionEvents);

template <typename T>
T Load(std::span<const std::byte> bytes, std::size_t at) {
  T v;
  std::memcpy(&v, bytes.data() + at, sizeof v);
  return v;
}

// Walks the info records of one framed event (`records` = bytes after the metadata).
Status DecodeRecords(std::span<const std::byte> records, FanotifyEvent& ev) {
  std::size_t at = 0;
  while (at < records.size()) {
    if (records.size() - at < sizeof(InfoHeader)) {
      return Malformed("info record header cut short: " + std::to_string(records.size() - at) +
                       " bytes left");
    }
    auto hdr = Load<InfoHeader>(records, at);
    if (hdr.len < sizeof(InfoHeader) || hdr.len > records.size() - at) {
      return Malformed("info record of type " + std::to_string(hdr.info_type) + " has len " +
                       std::to_string(hdr.len) + " with " + std::to_string(records.size() - at) +
                       " bytes left");
    }
    if (hdr.info_type == fanotify_abi::kInfoTypeRange) {
      if (hdr.len != sizeof(InfoRange)) {
        return Malformed("range record of " + std::to_string(hdr.len) + " bytes, not 24");
      }
      if (ev.range.has_value()) return Malformed("two range records in one event");
      auto r = Load<InfoRange>(records, at);
      if (r.hdr.pad != 0 || r.pad != 0) return Malformed("range record with nonzero padding");
      constexpr std::uint64_t kMax = std::numeric_limits<std::int64_t>::max();
      if (r.offset > kMax || r.count > kMax - r.offset) {
        return Malformed("range offset " + std::to_string(r.offset) + " + count " +
                         std::to_string(r.count) + " exceeds the largest file offset");
      }
      ev.range = FanotifyRange{r.offset, r.count};
    }
    at += hdr.len;
  }
  return Status::Ok();
}

// Checks one framed event whose fd is already owned by `ev`.
Status CheckEvent(const EventMetadata& m, std::span<const std::byte> records, FanotifyEvent& ev) {
  if (m.vers != fanotify_abi::kMetadataVersion) {
    return Malformed("metadata version " + std::to_string(m.vers) + ", expected 3");
  }
  if (m.metadata_len != kFanotifyMetadataSize) {
    return Malformed("metadata_len " + std::to_string(m.metadata_len) + ", expected 24");
  }
  LB_RETURN_IF_ERROR(DecodeRecords(records, ev));
  if (ev.pre_access()) {
    if (!ev.range.has_value()) return Malformed("FAN_PRE_ACCESS event without a range record");
    if (m.fd < 0)
      return Malformed("FAN_PRE_ACCESS event without a fd (" + std::to_string(m.fd) + ")");
  } else if (ev.range.has_value()) {
    return Malformed("range record on an event that is not FAN_PRE_ACCESS");
  }
  if ((m.mask & kFanotifyQueueOverflow) != 0 && m.fd != FAN_NOFD) {
    return Malformed("FAN_Q_OVERFLOW event with a fd");
  }
  if (ev.needs_answer() && m.fd < 0) return Malformed("permission event without a fd");
  return Status::Ok();
}

}  // namespace

FanotifyDecodeResult FanotifyEventDecoder::Decode(std::span<const std::byte> bytes,
                                                  FanotifyFdAdopter adopt) {
  FanotifyDecodeResult out;
  std::size_t at = 0;
  while (at < bytes.size()) {
    const std::size_t left = bytes.size() - at;
    if (left < kFanotifyMetadataSize) {
      out.framing_broken = true;
      out.rejected.push_back(
          {UniqueFd(), false,
           Malformed("trailing " + std::to_string(left) + " bytes are shorter than an event")});
      break;
    }
    auto m = Load<EventMetadata>(bytes, at);
    if (m.event_len < kFanotifyMetadataSize || m.event_len > left) {
      out.framing_broken = true;
      out.rejected.push_back({UniqueFd(), false,
                              Malformed("event_len " + std::to_string(m.event_len) + " with " +
                                        std::to_string(left) + " bytes left")});
      break;
    }
    FanotifyEvent ev;
    if (m.fd >= 0) ev.fd = adopt(m.fd);  // owned before any check, so a rejection closes it
    ev.pid = m.pid;
    ev.mask = m.mask;
    auto records = bytes.subspan(at + kFanotifyMetadataSize, m.event_len - kFanotifyMetadataSize);
    Status s = CheckEvent(m, records, ev);
    if (s.ok()) {
      out.events.push_back(std::move(ev));
    } else {
      bool answer = ev.needs_answer() && ev.fd.valid();
      out.rejected.push_back({std::move(ev.fd), answer, std::move(s)});
    }
    at += m.event_len;
  }
  return out;
}

}  // namespace lazyblob
