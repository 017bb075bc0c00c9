#include "tools/lazyblob_commands.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdio>

#include "tools/lazyblob_format.h"
#include "tools/lazyblob_output.h"
#include "tools/lazyblob_progress.h"

namespace lazyblob::cli {

bool GlobalFlags::progress() const { return !no_progress && ProgressBar::StderrIsTerminal(); }

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
  return ChunkStore::Open(options);
}

ExitCode RunInit(const GlobalFlags& g) {
  if (RequireStore(g.store).ok()) {
    if (g.json)
      PrintJson({{"store", g.store}, {"created", false}});
    else
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
  } else {
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

void PrintImportHuman(const std::string& file, const ImportResult& r) {
  std::printf("imported %s\n", file.c_str());
  std::printf("  id      %s\n", r.id.c_str());
  std::printf("  size    %s (%llu bytes)\n", HumanBytes(r.size).c_str(),
              static_cast<unsigned long long>(r.size));
  std::printf("  chunks  %llu (%llu new)\n", static_cast<unsigned long long>(r.chunks),
              static_cast<unsigned long long>(r.new_chunks));
  if (r.already_present) {
    std::printf("  stored  nothing: the store already had this blob under this id\n");
  } else {
    std::printf("  stored  %s written to packs\n", HumanBytes(r.new_stored_bytes).c_str());
  }
}

}  // namespace

ExitCode RunImport(const GlobalFlags& g, const ImportFlags& f) {
  constexpr std::string_view kVerb = "import";
  if (Status s = CheckInputFile(f.file); !s.ok()) return Fail(g, kVerb, s);
  if (!f.id.empty()) {
    if (Status s = ChunkStore::ValidateBlobId(f.id); !s.ok()) {
      return Fail(g, kVerb, InvalidArgument("--id: " + s.message()));
    }
  }
  ImportOptions options;
  options.id = f.id;
  options.zstd_level = f.zstd_level;

  const bool fresh = StoreDirIsFresh(g.store);
  std::unique_ptr<ChunkStore> store;
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
    std::fprintf(stderr, "lazyblob: import: created a new store at %s (chunker %s)\n",
                 g.store.c_str(), chunker->ToString().c_str());
  } else {
    auto opened = OpenStore(g, /*writable=*/true);
    if (!opened.ok()) return Fail(g, kVerb, opened.status());
    store = std::move(*opened);
    if (AnyChunkerFlag(f)) {
      auto chunker = ChunkerFromFlags(f, store->default_chunker());
      if (!chunker.ok()) return Fail(g, kVerb, chunker.status());
      options.chunker = *chunker;
    }
  }
  if (Status s = options.Validate(); !s.ok()) return Fail(g, kVerb, s);

  ProgressBar bar("import", g.progress());
  auto result = store->ImportBlob(f.file, options, [&bar](std::uint64_t done, std::uint64_t total) {
    bar.Update(done, total);
  });
  bar.Finish();
  if (!result.ok()) {
    Status s = result.status();
    if (s.code() == StatusCode::kNoSpace) {
      s = Status(s.code(),
                 f.file + ": no space left on device in store " + g.store +
                     " (the store is unchanged; " + s.message() + ")",
                 s.errno_value());
    }
    return Fail(g, kVerb, s);
  }
  if (g.json) {
    nlohmann::json doc = ToJson(*result);
    doc["file"] = f.file;
    doc["created_store"] = fresh;
    PrintJson(doc);
  } else {
    PrintImportHuman(f.file, *result);
  }
  return kExitOk;
}

}  // namespace lazyblob::cli
