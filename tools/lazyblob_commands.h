// The verbs of the `lazyblob` CLI, each a function from parsed flags to an exit code
// (tools/lazyblob_exit.h). Flag parsing and help texts live in lazyblob_main.cc; these
// functions print results (human text or --json on stdout, progress and errors on
// stderr) and never throw.
//
// Thread-safety: call from the main thread; one verb per process.
#ifndef LAZYBLOB_TOOLS_LAZYBLOB_COMMANDS_H_
#define LAZYBLOB_TOOLS_LAZYBLOB_COMMANDS_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"
#include "store/chunk_store.h"
#include "tools/lazyblob_exit.h"

namespace lazyblob::cli {

inline constexpr const char* kDefaultStorePath = "/var/lib/lazyblob";
inline constexpr const char* kStoreEnvVar = "LAZYBLOB_STORE";

// Flags every verb has.
struct GlobalFlags {
  std::string store = kDefaultStorePath;
  bool json = false;
  bool no_progress = false;
  bool quiet = false;      // -q: errors, warnings and --json output only
  bool verbose = false;    // -v: more detail
  double lock_wait_s = 0;  // --lock-wait: how long a writer waits for the store's lock
  // Draw progress bars: stderr is a terminal, and neither --no-progress nor -q was given.
  bool progress() const;
};

struct ImportFlags {
  std::string file;                             // "-": standard input
  bool force = false;                           // skip the EROFS checks (a raw blob)
  bool id_given = false;                        // --id was on the command line
  std::string id;                               // empty: derived from the content
  std::string chunker;                          // "", "cdc" or "fixed"
  std::string avg_chunk, min_chunk, max_chunk;  // size text ("64K"); "" = default
  int zstd_level = 3;
};

struct ExportFlags {
  std::string id;
  std::string output;  // a path or "-" for stdout
  bool no_clobber = false;
};

struct StatFlags {
  bool prometheus = false;
  std::string output;  // --prometheus only: write here atomically instead of stdout
};

// Flags of the verbs that talk to a registry (push, pull, ls --registry).
struct RegistryFlags {
  std::string registry;   // "[http://]HOST[:PORT]/REPO"; empty for a local ls
  std::string auth_file;  // docker config.json; "" = $DOCKER_CONFIG or ~/.docker, if present
  std::string ca_file;    // PEM CA bundle for TLS; "" = the system's
  double timeout_s = 60;  // per HTTP request attempt
  int retries = 3;        // extra attempts after a transport failure or 5xx
  std::string bundle_size = "8M";  // push: bundle blob target; 0 = one blob per chunk
  int parallel = 4;                // pull: Range GETs in flight
  std::string max_request = "8M";  // pull: bytes one Range GET may cover
};

// mount / umount: the fanotify front end's mounts (tools/lazyblob_cmd_mount.cc).
struct MountFlags {
  std::string id;
  std::string dir;
  std::vector<std::string> devices;  // blob ids of the image's extra devices, in order
  std::string control_socket;
};
struct UmountFlags {
  std::string dir;
  std::string control_socket;
};

ExitCode RunInit(const GlobalFlags& g);
ExitCode RunImport(const GlobalFlags& g, const ImportFlags& f);
ExitCode RunLs(const GlobalFlags& g, const std::optional<std::string>& id);
ExitCode RunStat(const GlobalFlags& g, const StatFlags& f, const std::optional<std::string>& id);
ExitCode RunExport(const GlobalFlags& g, const ExportFlags& f);
// `repair_sources` non-empty: verify --repair (FORMAT.md "Repairing chunks").
ExitCode RunVerify(const GlobalFlags& g, const std::optional<std::string>& id,
                   const std::vector<std::string>& repair_sources);
ExitCode RunRm(const GlobalFlags& g, const std::string& id);
ExitCode RunGc(const GlobalFlags& g, bool dry_run);
ExitCode RunRebuildIndex(const GlobalFlags& g);
ExitCode RunPush(const GlobalFlags& g, const RegistryFlags& r, const std::vector<std::string>& ids);
ExitCode RunPull(const GlobalFlags& g, const RegistryFlags& r, const std::string& id);
ExitCode RunLsRegistry(const GlobalFlags& g, const RegistryFlags& r);
ExitCode RunMount(const GlobalFlags& g, const MountFlags& f);
ExitCode RunUmount(const GlobalFlags& g, const UmountFlags& f);
ExitCode RunTraceShow(const GlobalFlags& g, const std::string& id);
ExitCode RunTraceRm(const GlobalFlags& g, const std::string& id);

// Shared by the verbs (lazyblob_commands.cc).

// Reports `status` for `verb` (one stderr line, plus {"error":...} on stdout with --json).
ExitCode Fail(const GlobalFlags& g, std::string_view verb, const Status& status);

// kNotFound "no store at DIR ..." unless DIR holds a store.
Status RequireStore(const std::string& dir);
// True when `dir` does not exist or is an empty directory (import may create a store).
bool StoreDirIsFresh(const std::string& dir);

// Opens the store at g.store: a secondary reader, or the exclusive writer. A writer waits
// up to g.lock_wait_s for a lock another process holds (kBusy after that).
Result<std::unique_ptr<ChunkStore>> OpenStore(const GlobalFlags& g, bool writable,
                                              bool create_if_missing = false);

}  // namespace lazyblob::cli

#endif  // LAZYBLOB_TOOLS_LAZYBLOB_COMMANDS_H_
