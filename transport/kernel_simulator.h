// KernelSimulator: the kernel side of cachefiles on-demand mode, in user space, for tests
// and benchmarks of the daemon (PROTOCOL.md). It plays both kernel roles:
//
//  * the device: a SOCK_SEQPACKET socket whose daemon end behaves like a bound
//    /dev/cachefiles fd (SimDevice is the CacheDevice client). One frame = one message in
//    the kernel's wire bytes (MessageEncoder); an OPEN's anon fd travels with SCM_RIGHTS and
//    is a real O_WRONLY|O_DIRECT file in `cache_dir`. Replies are text frames: `copen
//    <id>,<size>`, `cread <id>` (stands for CACHEFILES_IOC_READ_COMPLETE, which a regular
//    file cannot take) and `restore`. The daemon end is a real fd: poll it, pass it to
//    another process, and when every copy is closed the cache is withdrawn.
//  * the reader (an EROFS mount): Mount() sends OPEN and waits for the copen; Read() serves
//    from the cache file where data is present (SEEK_DATA/SEEK_HOLE) and otherwise sends
//    READs shaped like readahead (4K, 16K, 32K, 64K, then doubling up to
//    max_readahead_bytes), one in flight per range, waits, re-checks the range for holes
//    (a hole => EIO, as the kernel) and optionally compares the bytes with a source image.
//
// Kernel rules reproduced (fs/cachefiles/ondemand.c, 6.12): msg_id allocated cyclically in
// [0, max_msg_id] skipping ids in use; object_id cyclic from 1; a CLOSE completes when sent
// and cancels the object's in-flight READs with EIO (their later cread is counted as
// late_completions, EINVAL in the kernel); a copen with a negative errno fails the mount
// with EIO, a malformed copen with ENOBUFS; unknown or duplicate copen/cread ids are
// protocol violations (EINVAL in the kernel); `restore` re-sends unanswered OPENs (same
// msg_id, new object_id and fd), re-opens every open object that has READs pending (new
// OPEN, new object_id, new fd) and after its copen re-delivers those READs with their
// original msg_ids, while an idle open object stays closed until its next READ, which
// first sends its OPEN (6.12, KERNEL_FACTS (l)); the cache file is truncated to round_up(size, 4
// KiB) and a size that changes across a reopen drops the cached data (and counts a violation); when
// the device closes, pending requests fail with EIO and existing mounts return ENOBUFS until
// remounted; ids restart with the next device. Known differences: replies are asynchronous, so an
// invalid copen/cread cannot fail the daemon's write (see counters()/violations()); the kernel's
// exact errnos on unaligned anon fd writes are enforced by the writer's WriteBlocks
// (core/anon_fd_writer.h); the simulator only guarantees, by probing the cache dir at Open(), that
// its anon fds refuse an unaligned buffer as the kernel's do.
//
// Thread-safety: every public method is thread-safe; Read() is meant to be called from many
// threads at once. Two internal threads (device commands, message sending) run until the
// destructor, which withdraws the cache and joins them.
#ifndef LAZYBLOB_TRANSPORT_KERNEL_SIMULATOR_H_
#define LAZYBLOB_TRANSPORT_KERNEL_SIMULATOR_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "core/unique_fd.h"

namespace lazyblob {

struct KernelSimulatorOptions {
  // Where cache files live: a filesystem whose O_DIRECT files refuse unaligned buffers with
  // EINVAL, as the kernel's cache files do (ext4, xfs). Open() probes it and refuses tmpfs
  // (cachefiles refuses it at bind) and any directory that ignores the alignment rule.
  std::string cache_dir;
  // Largest READ: a multiple of 4 KiB in [4 KiB, 1 MiB]. 128 KiB is the kernel's default
  // readahead; /sys/class/bdi/erofs-N/read_ahead_kb raises it on a real system.
  std::uint32_t max_readahead_bytes = 128 * 1024;
  // msg_ids are allocated cyclically in [0, max_msg_id]; tests shrink it to see wrapping.
  std::uint32_t max_msg_id = UINT32_MAX;
  // A reader (Mount/Read/Restore drain) waiting longer than this for the daemon fails with
  // ETIMEDOUT. A guard against hung tests; the kernel waits forever (killably).
  std::uint32_t reply_timeout_ms = 60'000;
  // A copen takes effect (the cache file is attached to the OPEN's anon fd, and the mount
  // goes on) this long after the daemon sent it. The kernel attaches the file some time
  // after the copen's write returned (tests/e2e/KERNEL_FACTS.md (b)); tests raise this to
  // catch a daemon that writes before (a violation: the kernel refuses with ENOBUFS).
  std::uint32_t attach_delay_ms = 0;

  Status Validate() const;
};

// Snapshot of what happened so far.
struct SimCounters {
  std::uint64_t opens_sent = 0;         // OPEN messages, including restore re-sends
  std::uint64_t reads_sent = 0;         // new READ requests
  std::uint64_t reads_redelivered = 0;  // READs re-sent after a restore
  std::uint64_t closes_sent = 0;
  std::uint64_t read_bytes_requested = 0;
  std::uint64_t reads_completed = 0;      // valid creads
  std::uint64_t eios = 0;                 // EIOs seen by readers (holes, failed opens, cancels)
  std::uint64_t protocol_violations = 0;  // unknown/duplicate ids, malformed commands, ...
  std::uint64_t late_completions = 0;     // cread of a READ cancelled by CLOSE or withdrawal
  std::uint64_t data_mismatches = 0;      // bytes differing from the mount's source image
  std::uint64_t restores = 0;
  std::uint64_t withdrawals = 0;  // device closed with the cache bound
};

// Test hook (KernelSimulator::MangleNext): how the next request of its kind goes out broken,
// the way a buggy kernel or a corrupted transport might send it. It still waits for its
// answer like any request.
enum class SimMangle {
  kNone,
  kOpenVolumeKeyWithoutNul,  // the next OPEN: its volume key's NUL replaced by 'x'
  kReadPayload17Bytes,       // the next READ: one byte too many, len says so
};

// A mounted blob, as returned by KernelSimulator::Mount.
struct SimMount {
  std::uint64_t id = 0;    // handle for Read/Unmount
  std::uint64_t size = 0;  // the copen size
};

class KernelSimulator {
 public:
  static Result<std::unique_ptr<KernelSimulator>> Open(const KernelSimulatorOptions& options);
  ~KernelSimulator();
  KernelSimulator(const KernelSimulator&) = delete;
  KernelSimulator& operator=(const KernelSimulator&) = delete;

  // --- Device side ---
  // Like open("/dev/cachefiles") + bind ondemand: returns the daemon end of a new device
  // (give it to SimDevice::Adopt, or to another process). kBusy while a device is attached.
  Result<UniqueFd> OpenDevice();
  // Accepts devices at `socket_path` (SimDevice::Connect); one attached at a time, further
  // connections are refused (SimDevice::Connect returns kBusy). Call at most once.
  Status Listen(const std::string& socket_path);
  bool device_attached() const;

  // --- Reader side ---
  // Mounts blob (`volume_key` e.g. "erofs,<fsid|domain>", `cookie_key` e.g. "<fsid>"): sends
  // OPEN and waits for the copen. Mounting an already-mounted blob shares its object (no
  // second OPEN, like blobs in one EROFS domain). When `source_image_path` is given, every
  // Read() compares the served bytes with it. Errors carry the errno a mount would see:
  // EIO (daemon failed the OPEN), ENOBUFS (malformed copen, or no device), ETIMEDOUT.
  Result<SimMount> Mount(std::string_view volume_key, std::string_view cookie_key,
                         const std::string& source_image_path = "");
  // Reads [offset, offset + out.size()) clipped to the blob size; returns the byte count.
  // EIO when the daemon left a hole or the READ was cancelled, ENOBUFS after the device was
  // closed, kCorruption when bytes differ from the source image.
  Result<std::size_t> Read(const SimMount& mount, std::uint64_t offset, std::span<std::byte> out);
  // Sends CLOSE when the last mount of the blob goes; in-flight READs then fail with EIO.
  Status Unmount(const SimMount& mount);

  // Sends the next OPEN or READ (by `mangle`'s kind) broken that way. One at a time.
  void MangleNext(SimMangle mangle);

  SimCounters counters() const;
  // Human-readable descriptions of the protocol violations (the most recent 256).
  std::vector<std::string> violations() const;
  // Requests sent (or held for a reopening object) and not yet answered.
  std::size_t pending_requests() const;

  // Implementation detail (kernel_simulator_state.h), not part of the API.
  struct State;

 private:
  explicit KernelSimulator(std::unique_ptr<State> state);
  std::unique_ptr<State> s_;
};

}  // namespace lazyblob

#endif  // LAZYBLOB_TRANSPORT_KERNEL_SIMULATOR_H_
