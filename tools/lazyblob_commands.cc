#include "tools/lazyblob_commands.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <thread>
#include <vector>

#include "core/unique_fd.h"
#include "store/erofs_superblock.h"
#include "tools/byte_size.h"
#include "tools/lazyblob_format.h"
#include "tools/lazyblob_output.h"
#include "tools/lazyblob_progress.h"

namespace lazyblob::cli {

bool GlobalFlags::progress() const {
  return !no_progress && !quiet && ProgressBar::StderrIsTerminal();
}

ExitCode Fail(const GlobalFlags& g, std::string_view verb, const Status& status) {
  if (g.json) PrintJson(ErrorJson(status));
  std::fflush(stdout);
  return ReportError(verb, status);
}

bool StoreDirIsFresh(const std::string& dir) {
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return errno == ENOENT;
  bool empty = true;
  while (dirent* e = readdir(d)) {
    const std::string_view name = e->d_name;
    if (name != "." && name != "..") {
      empty = false;
      break;
    }
  }
  closedir(d);
  return empty;
}

Status RequireStore(const std::string& dir) {
  struct stat st {};
  if (stat(dir.c_str(), &st) != 0) {
    if (errno == ENOENT) {
      return NotFound("no store at " + dir +
                      " (create one with 'lazyblob init' or by importing a file; "
                      "choose another with --store or LAZYBLOB_STORE)");
    }
    return Status::FromErrno(errno, dir);
  }
  if (!S_ISDIR(st.st_mode)) return InvalidArgument(dir + " is not a directory");
  struct stat packs {};
  if (stat((dir + "/packs").c_str(), &packs) != 0 || !S_ISDIR(packs.st_mode)) {
    return NotFound(dir + " is not a lazyblob store (it has no packs/ directory)");
  }
  return Status::Ok();
}

Result<std::unique_ptr<ChunkStore>> OpenStore(const GlobalFlags& g, bool writable,
                                              bool create_if_missing) {
  if (!create_if_missing) LB_RETURN_IF_ERROR(RequireStore(g.store));
  ChunkStoreOptions options;
  options.path = g.store;
  options.writable = writable;
  options.create_if_missing = create_if_missing;
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::milliseconds(static_cast<std::int64_t>(g.lock_wait_s * 1000));
  bool said = false;
  for (;;) {
    auto store = ChunkStore::Open(options);
    if (store.ok() || store.status().code() != StatusCode::kBusy || !writable ||
        std::chrono::steady_clock::now() >= deadline) {
      return store;
    }
    if (!said && !g.quiet) {
      std::fprintf(stderr, "lazyblob: %s; waiting up to %g s (--lock-wait)\n",
                   store.status().message().c_str(), g.lock_wait_s);
      said = true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

ExitCode RunInit(const GlobalFlags& g) {
  if (RequireStore(g.store).ok()) {
    if (g.json)
      PrintJson({{"store", g.store}, {"created", false}});
    else if (!g.quiet)
      std::printf("%s is already a lazyblob store\n", g.store.c_str());
    return kExitOk;
  }
  if (!StoreDirIsFresh(g.store)) {
    return Fail(g, "init",
                InvalidArgument(g.store + " is not empty and not a lazyblob store; refusing to "
                                          "create a store there"));
  }
  auto store = OpenStore(g, /*writable=*/true, /*create_if_missing=*/true);
  if (!store.ok()) return Fail(g, "init", store.status());
  if (g.json) {
    PrintJson({{"store", g.store},
               {"created", true},
               {"chunker", (*store)->default_chunker().ToString()}});
  } else if (!g.quiet) {
    std::printf("created an empty store at %s (chunker %s)\n", g.store.c_str(),
                (*store)->default_chunker().ToString().c_str());
  }
  return kExitOk;
}

namespace {

// One clear reason when FILE cannot be imported, before the store is touched.
Status CheckInputFile(const std::string& file) {
  struct stat st {};
  if (stat(file.c_str(), &st) != 0) {
    const int err = errno;
    if (err == ENOENT) return NotFound(file + ": no such file");
    if (err == EACCES)
      return Status(StatusCode::kPermissionDenied, file + ": permission denied", err);
    return Status::FromErrno(err, file);
  }
  if (S_ISDIR(st.st_mode)) return InvalidArgument(file + ": is a directory");
  if (!S_ISREG(st.st_mode)) return InvalidArgument(file + ": not a regular file");
  if (st.st_size == 0) return InvalidArgument(file + ": empty file (nothing to import)");
  const int fd = open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    if (err == EACCES)
      return Status(StatusCode::kPermissionDenied, file + ": permission denied", err);
    return Status::FromErrno(err, file);
  }
  close(fd);
  return Status::Ok();
}

Status ApplySize(const std::string& text, const char* flag, std::uint32_t* out) {
  if (text.empty()) return Status::Ok();
  auto v = ParseByteSize(text);
  if (!v.ok()) return InvalidArgument(std::string(flag) + ": " + v.status().message());
  if (*v > UINT32_MAX) return InvalidArgument(std::string(flag) + ": " + text + " is too large");
  *out = static_cast<std::uint32_t>(*v);
  return Status::Ok();
}

bool AnyChunkerFlag(const ImportFlags& f) {
  return !f.chunker.empty() || !f.avg_chunk.empty() || !f.min_chunk.empty() || !f.max_chunk.empty();
}

// The chunker the flags ask for, starting from `base` (the store's default).
Result<ChunkerOptions> ChunkerFromFlags(const ImportFlags& f, ChunkerOptions base) {
  if (f.chunker == "fixed")
    base.kind = ChunkerKind::kFixed;
  else if (f.chunker == "cdc")
    base.kind = ChunkerKind::kCdc;
  else if (!f.chunker.empty())
    return InvalidArgument("--chunker: '" + f.chunker + "' is not one of cdc, fixed");
  LB_RETURN_IF_ERROR(ApplySize(f.avg_chunk, "--avg-chunk", &base.avg_bytes));
  LB_RETURN_IF_ERROR(ApplySize(f.min_chunk, "--min-chunk", &base.min_bytes));
  LB_RETURN_IF_ERROR(ApplySize(f.max_chunk, "--max-chunk", &base.max_bytes));
  if (base.kind == ChunkerKind::kFixed) {
    // A fixed chunker has one size; min and max only keep the options valid.
    base.min_bytes = base.max_bytes = base.avg_bytes;
  } else if (f.min_chunk.empty() && f.max_chunk.empty() && !f.avg_chunk.empty()) {
    // Only the average was given: keep the usual 1/4 .. 4x spread around it.
    base.min_bytes = std::max<std::uint32_t>(4096, base.avg_bytes / 4);
    base.max_bytes = static_cast<std::uint32_t>(
        std::min<std::uint64_t>(16u << 20, std::uint64_t{base.avg_bytes} * 4));
  }
  Status valid = base.Validate();
  if (!valid.ok()) return InvalidArgument("chunker " + base.ToString() + ": " + valid.message());
  return base;
}

// --id given: 1..255 bytes of the store's id alphabet, and not an option look-alike.
Status CheckImportId(const ImportFlags& f) {
  if (!f.id_given) return Status::Ok();
  if (f.id.empty()) {
    return InvalidArgument(
        "--id: empty; give an id, or leave --id out to derive one from the content");
  }
  if (f.id.front() == '-') {
    return InvalidArgument("--id: '" + f.id +
                           "' starts with '-', which reads as an option in mount and lazyblob "
                           "commands");
  }
  if (Status s = ChunkStore::ValidateBlobId(f.id); !s.ok()) {
    return InvalidArgument("--id: " + s.message());
  }
  return Status::Ok();
}

// Copies standard input into an unlinked temp file in $TMPDIR (default /var/tmp, usually
// on disk): the store reads its input twice (hash, then chunk). Sets `*fd` and returns a
// path that opens it. Standard input that is a regular file is used in place.
Result<std::string> StdinAsFile(UniqueFd* fd) {
  struct stat st {};
  if (fstat(STDIN_FILENO, &st) == 0 && S_ISREG(st.st_mode)) {
    if (st.st_size == 0) return InvalidArgument("stdin: empty (nothing to import)");
    return std::string("/proc/self/fd/0");
  }
  const char* env = std::getenv("TMPDIR");
  const std::string dir = env != nullptr && *env != '\0' ? env : "/var/tmp";
  fd->reset(open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600));
  if (!fd->valid()) return Status::FromErrno(errno, "stdin: temp file in " + dir);
  std::vector<char> buf(1 << 20);
  std::uint64_t total = 0;
  for (;;) {
    const ssize_t n = read(STDIN_FILENO, buf.data(), buf.size());
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno(errno, "read stdin");
    }
    for (ssize_t off = 0; off < n;) {
      const ssize_t w = write(fd->get(), buf.data() + off, static_cast<std::size_t>(n - off));
      if (w < 0) {
        if (errno == EINTR) continue;
        return Status::FromErrno(errno, "stdin: temp file in " + dir);
      }
      off += w;
    }
    total += static_cast<std::uint64_t>(n);
  }
  if (total == 0) return InvalidArgument("stdin: empty (nothing to import)");
  return "/proc/self/fd/" + std::to_string(fd->get());
}

// The EROFS checks of `path` (shown to the user as `shown`), unless --force.
Status CheckErofsFile(const std::string& path, const std::string& shown, bool quiet) {
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return Status::FromErrno(errno, shown);
  struct stat st {};
  if (fstat(fd.get(), &st) != 0) return Status::FromErrno(errno, shown);
  std::vector<std::uint8_t> head(4096);
  std::size_t have = 0;
  while (have < head.size()) {
    const ssize_t n =
        pread(fd.get(), head.data() + have, head.size() - have, static_cast<off_t>(have));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::FromErrno(errno, "read " + shown);
    if (n == 0) break;
    have += static_cast<std::size_t>(n);
  }
  auto sb = ParseErofsSuperblock(std::span(head.data(), have));
  Status s = sb.ok() ? CheckErofsImageForCachefiles(*sb, static_cast<std::uint64_t>(st.st_size))
                     : sb.status();
  if (!s.ok()) {
    return InvalidArgument(shown + ": " + s.message() +
                           "; refusing to import it (--force imports any bytes as a raw blob, "
                           "e.g. an extra device made with mkfs.erofs --blobdev)");
  }
  if (sb->extra_devices > 0 && !quiet) {
    std::fprintf(stderr,
                 "lazyblob: import: note: %s uses %u extra device(s) (mkfs.erofs --blobdev): "
                 "import each with --force under the id the mount's device= option or the "
                 "device tag names\n",
                 shown.c_str(), static_cast<unsigned>(sb->extra_devices));
  }
  return Status::Ok();
}

void PrintImportHuman(const std::string& file, const ImportResult& r, double seconds, bool verbose,
                      const std::optional<ChunkerOptions>& chunker) {
  using ull = unsigned long long;
  const std::uint64_t reused = r.size - std::min(r.size, r.new_bytes);
  std::printf("imported %s\n", file.c_str());
  std::printf("  id      %s\n", r.id.c_str());
  std::printf("  size    %s (%llu bytes)\n", HumanBytes(r.size).c_str(), static_cast<ull>(r.size));
  std::printf("  chunks  %llu (%llu new)\n", static_cast<ull>(r.chunks),
              static_cast<ull>(r.new_chunks));
  std::printf("  reused  %s (%s deduplicated)\n", HumanBytes(reused).c_str(),
              HumanPercent(reused, r.size).c_str());
  if (r.already_present) {
    std::printf("  stored  nothing: the store already had this blob under this id\n");
  } else {
    std::printf("  stored  %s written to packs\n", HumanBytes(r.new_stored_bytes).c_str());
  }
  std::printf("  time    %s (%s/s)\n", HumanSeconds(seconds).c_str(),
              HumanBytes(BytesPerSecond(r.size, seconds)).c_str());
  if (verbose && chunker) std::printf("  chunker %s\n", chunker->ToString().c_str());
}

}  // namespace

ExitCode RunImport(const GlobalFlags& g, const ImportFlags& f) {
  constexpr std::string_view kVerb = "import";
  if (Status s = CheckImportId(f); !s.ok()) return Fail(g, kVerb, s);
  const bool from_stdin = f.file == "-";
  const std::string shown = from_stdin ? "stdin" : f.file;
  std::string path = f.file;
  UniqueFd spool;
  if (from_stdin) {
    auto p = StdinAsFile(&spool);
    if (!p.ok()) return Fail(g, kVerb, p.status());
    path = *p;
  } else if (Status s = CheckInputFile(f.file); !s.ok()) {
    return Fail(g, kVerb, s);
  }
  if (!f.force) {
    if (Status s = CheckErofsFile(path, shown, g.quiet); !s.ok()) return Fail(g, kVerb, s);
  }
  ImportOptions options;
  options.id = f.id;
  options.zstd_level = f.zstd_level;

  const bool fresh = StoreDirIsFresh(g.store);
  std::unique_ptr<ChunkStore> store;
  std::optional<ChunkerOptions> chunker_used;
  if (fresh) {
    // A new store records the chosen chunker as its default.
    auto chunker = ChunkerFromFlags(f, ChunkerOptions{});
    if (!chunker.ok()) return Fail(g, kVerb, chunker.status());
    ChunkStoreOptions so;
    so.path = g.store;
    so.writable = true;
    so.create_if_missing = true;
    so.default_chunker = *chunker;
    auto opened = ChunkStore::Open(so);
    if (!opened.ok()) return Fail(g, kVerb, opened.status());
    store = std::move(*opened);
    chunker_used = *chunker;
    if (!g.quiet) {
      std::fprintf(stderr, "lazyblob: import: created a new store at %s (chunker %s)\n",
                   g.store.c_str(), chunker->ToString().c_str());
    }
  } else {
    auto opened = OpenStore(g, /*writable=*/true);
    if (!opened.ok()) return Fail(g, kVerb, opened.status());
    store = std::move(*opened);
    chunker_used = store->default_chunker();
    if (AnyChunkerFlag(f)) {
      auto chunker = ChunkerFromFlags(f, store->default_chunker());
      if (!chunker.ok()) return Fail(g, kVerb, chunker.status());
      options.chunker = *chunker;
      chunker_used = *chunker;
      if (!(*chunker == store->default_chunker())) {
        // Chunks cut with other settings never match: the two kinds of blob share nothing.
        std::fprintf(stderr,
                     "lazyblob: import: warning: chunker %s differs from the store's %s: this "
                     "blob will not dedup against blobs imported with the store's settings\n",
                     chunker->ToString().c_str(), store->default_chunker().ToString().c_str());
      }
    }
  }
  if (Status s = options.Validate(); !s.ok()) return Fail(g, kVerb, s);

  ProgressBar bar("import", g.progress());
  const auto start = std::chrono::steady_clock::now();
  auto result = store->ImportBlob(
      path, options, [&bar](std::uint64_t done, std::uint64_t total) { bar.Update(done, total); });
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  bar.Finish();
  if (!result.ok()) {
    Status s = result.status();
    if (s.code() == StatusCode::kNoSpace) {
      s = Status(s.code(),
                 shown + ": no space left on device in store " + g.store +
                     " (the store is unchanged; " + s.message() + ")",
                 s.errno_value());
    }
    return Fail(g, kVerb, s);
  }
  if (g.json) {
    nlohmann::json doc = ToJson(*result);
    doc["file"] = shown;
    doc["created_store"] = fresh;
    doc["elapsed_s"] = seconds;
    doc["bytes_per_s"] = BytesPerSecond(result->size, seconds);
    PrintJson(doc);
  } else if (!g.quiet) {
    PrintImportHuman(shown, *result, seconds, g.verbose, chunker_used);
  }
  return kExitOk;
}

}  // namespace lazyblob::cli
