// lazyblob: the offline tool for a lazyblob chunk store. Parses the command line (CLI11)
// and hands each verb to tools/lazyblob_commands.h. Exit codes: tools/lazyblob_exit.h.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <exception>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "tools/lazyblob_atomic_file.h"
#include "tools/lazyblob_commands.h"
#include "tools/lazyblob_control_protocol.h"
#include "tools/lazyblob_exit.h"
#include "tools/tool_version.h"

namespace lazyblob::cli {
namespace {

constexpr const char* kExitCodes =
    "\nExit status:\n"
    "  0  success\n"
    "  1  a data problem was found (corrupt or missing chunks)\n"
    "  2  bad usage or input: missing/unreadable/empty file, unknown blob, id already used\n"
    "     for other content, no store, store locked by another writer, disk full\n"
    "  3  unexpected failure (I/O error, internal error)\n"
    "\nThe store is --store DIR, else $LAZYBLOB_STORE, else /var/lib/lazyblob.\n";

std::string Footer(const std::string& examples) { return "\nExamples:\n" + examples + kExitCodes; }

struct Flags {
  GlobalFlags global;
  ImportFlags import;
  ExportFlags exp;
  StatFlags stat;
  std::string id;  // rm, verify, pull, ls, stat
  bool dry_run = false;
  RegistryFlags registry;
  std::vector<std::string> ids;             // push
  std::vector<std::string> repair_sources;  // verify --repair
  MountFlags mount;
  UmountFlags umount;
};

CLI::Option* AddOutputFlags(CLI::App* sub, Flags& f, bool has_progress) {
  CLI::Option* json =
      sub->add_flag("--json", f.global.json, "Print the result as JSON on stdout (for scripts)");
  if (has_progress) {
    sub->add_flag("--no-progress", f.global.no_progress,
                  "Never draw a progress bar (drawn on stderr only when it is a terminal)");
  }
  sub->add_flag("-q,--quiet", f.global.quiet,
                "Print only errors, warnings and the result a script asks for (--json); no "
                "progress bar, no notes, no summary of a change");
  sub->add_flag("-v,--verbose", f.global.verbose, "Print more detail (chunker, timings)");
  return json;
}

// --lock-wait, for the verbs that take the store's writer lock.
void AddLockWait(CLI::App* sub, Flags& f) {
  sub->add_option("--lock-wait", f.global.lock_wait_s,
                  "Seconds to wait for another writer (an import, gc, ...) to release the "
                  "store's lock before giving up with exit 2. Default 0: fail at once")
      ->check(CLI::Range(0.0, 86400.0));
}

CLI::App* AddImport(CLI::App& app, Flags& f) {
  CLI::App* sub = app.add_subcommand(
      "import",
      "Import FILE (e.g. an EROFS image) as a blob: split it into chunks, store the chunks "
      "the store does not have yet (zstd-compressed), and record the blob's chunk map. "
      "Creates the store if its directory does not exist or is empty. Importing the same "
      "content under the same id again writes nothing. FILE must be an EROFS image the "
      "kernel can serve through cachefiles (EROFS magic, 4096-byte blocks, a size that "
      "matches the superblock); --force imports any bytes.");
  sub->add_option("FILE", f.import.file, "The file to import; - reads standard input")->required();
  sub->add_flag("--force", f.import.force,
                "Import FILE even if it is not an EROFS image, e.g. a raw blob such as an "
                "extra device made with mkfs.erofs --blobdev");
  sub->add_option("--id", f.import.id,
                  "Blob id, used as the EROFS fsid (mount -o fsid=ID): 1-255 bytes, no ',', "
                  "'/', whitespace or control characters. Default: derived from the content "
                  "(first 32 hex digits of its SHA-256). Must not start with '-'");
  sub->add_option("--chunker", f.import.chunker,
                  "cdc (content-defined, dedups shifted data) or fixed. Default: the store's "
                  "(cdc for a new store)")
      ->check(CLI::IsMember({"cdc", "fixed"}));
  sub->add_option("--avg-chunk", f.import.avg_chunk,
                  "Average chunk size (cdc) or the chunk size (fixed), a power of two, "
                  "multiple of 4K: 64K, 1M, 1MiB or bytes. Default 64K");
  sub->add_option("--min-chunk", f.import.min_chunk, "Smallest cdc chunk. Default avg/4 (16K)");
  sub->add_option("--max-chunk", f.import.max_chunk,
                  "Largest cdc chunk, at most 16M. Default avg*4 (256K)");
  sub->add_option("--zstd-level", f.import.zstd_level, "zstd level 1-19 (default 3)")
      ->check(CLI::Range(1, 19));
  AddOutputFlags(sub, f, true);
  AddLockWait(sub, f);
  sub->footer(
      Footer("  lazyblob --store /srv/lb import rootfs.erofs --id rootfs-v1\n"
             "  lazyblob import app.erofs --chunker fixed --avg-chunk 1M --json\n"
             "  curl -s https://example.org/app.erofs | lazyblob import - --id app-v2\n"
             "  lazyblob import blobdev.img --id app-data --force   # a raw blob device\n"
             "  mount -t erofs none -o fsid=rootfs-v1 /mnt   # once lazyblobd serves the store\n"
             "JSON keys: id, size, chunks, new_chunks, new_bytes, reused_bytes, dedup_percent,\n"
             "stored_bytes, already_present, elapsed_s, bytes_per_s, file, created_store,\n"
             "version.\n"));
  return sub;
}

CLI::App* AddStat(CLI::App& app, Flags& f) {
  CLI::App* sub = app.add_subcommand(
      "stat",
      "Show store totals: blobs, unique chunks, logical/unique/stored bytes, dedup "
      "and compression ratios, pack files. With ID: that blob's details.");
  sub->add_option("ID", f.id, "Only this blob");
  CLI::Option* json = AddOutputFlags(sub, f, false);
  auto* prom =
      sub->add_flag("--prometheus", f.stat.prometheus,
                    "Print the totals in the Prometheus text format (lazyblob_store_* gauges) for "
                    "node_exporter's textfile collector");
  prom->excludes(json);
  sub->get_option("ID")->excludes(prom);
  sub->add_option("--output", f.stat.output,
                  "With --prometheus: write to this file atomically (temp file + rename) "
                  "instead of stdout")
      ->needs(prom);
  sub->footer(
      Footer("  lazyblob stat\n"
             "  lazyblob stat rootfs-v1\n"
             "  lazyblob stat --json | jq .dedup_ratio\n"
             "  lazyblob stat --prometheus --output /var/lib/node_exporter/textfile/lazyblob.prom\n"
             "JSON keys: blobs, chunks, logical_bytes, unique_bytes, stored_bytes, dedup_ratio,\n"
             "compression_ratio, packs, pack_file_bytes, store, version; with ID: as 'ls'.\n"));
  return sub;
}

constexpr const char* kRegistryHelp =
    "\nRegistry: HOST[:PORT]/REPO is HTTPS with certificate verification (--ca-file adds a\n"
    "CA); http://HOST[:PORT]/REPO is plain HTTP, used only when written so.\n"
    "Credentials: the registry's entry in the \"auths\" of a docker config.json: --auth-file,\n"
    "else $DOCKER_CONFIG/config.json or ~/.docker/config.json when present. Never printed.\n"
    "Registry failures: exit 2 for wrong credentials (401/403), an unknown blob or\n"
    "repository (404) or an untrusted certificate; exit 1 for a chunk, map or manifest that\n"
    "fails verification; exit 3 when the registry cannot be reached (after --retries).\n";

void AddRegistryFlags(CLI::App* sub, RegistryFlags& r, bool required) {
  CLI::Option* reg = sub->add_option("--registry", r.registry,
                                     "[http://]HOST[:PORT]/REPO: the repository to talk to");
  if (required) reg->required();
  sub->add_option("--auth-file", r.auth_file,
                  "docker config.json with the registry's credentials (\"auths\" section)");
  sub->add_option("--ca-file", r.ca_file,
                  "PEM file of CA certificates to verify the registry with");
  sub->add_option("--timeout", r.timeout_s, "Seconds one HTTP request may take (default 60)");
  sub->add_option("--retries", r.retries,
                  "Extra attempts after a connection failure, timeout or 5xx, with jittered "
                  "backoff (default 3)");
}

void AddRegistryVerbs(CLI::App& app, Flags& f,
                      std::map<CLI::App*, std::function<ExitCode()>>& run) {
  Flags* fp = &f;
  CLI::App* push = app.add_subcommand(
      "push",
      "Publish blobs ID... from the store to an OCI registry: chunk bytes go up in bundle "
      "blobs, each blob's chunk map and manifest under tag lb-<escaped id> "
      "(registry/FORMAT.md). Only chunks the repository does not hold yet are uploaded.");
  push->add_option("ID", f.ids, "Blob ids to publish")->required();
  AddRegistryFlags(push, f.registry, true);
  push->add_option("--bundle-size", f.registry.bundle_size,
                   "Close a bundle blob once it holds this many bytes (default 8M; 0 = one "
                   "registry blob per chunk)");
  AddOutputFlags(push, f, true);
  push->footer(Footer(
      "  lazyblob push --registry registry.example.com/lazy app-v1 app-v2\n"
      "  lazyblob push --registry http://127.0.0.1:5000/lazy app-v2 --json\n"
      "JSON keys: registry, uploaded_bytes, skipped_bytes, http_requests, blobs[]: id, tag,\n"
      "manifest_digest, size, chunks, uploaded_chunks, uploaded_bytes, skipped_chunks,\n"
      "skipped_bytes, bundles_uploaded, map_bytes, already_present.\n" +
      std::string(kRegistryHelp)));
  run[push] = [fp] { return RunPush(fp->global, fp->registry, fp->ids); };

  CLI::App* pull = app.add_subcommand(
      "pull",
      "Bring blob ID from an OCI registry into the store (pre-warming, air-gapped nodes): "
      "fetch the chunks the store lacks with coalesced Range requests, verify each, then "
      "record the blob. All or nothing. Creates the store if its directory is missing or empty.");
  pull->add_option("ID", f.id, "The blob id")->required();
  AddRegistryFlags(pull, f.registry, true);
  pull->add_option("--parallel", f.registry.parallel, "Range requests in flight (default 4)")
      ->check(CLI::Range(1, 64));
  pull->add_option("--max-request", f.registry.max_request,
                   "Bytes one Range request may cover (default 8M)");
  AddOutputFlags(pull, f, true);
  AddLockWait(pull, f);
  pull->footer(Footer(
      "  lazyblob --store /srv/lb pull --registry registry.example.com/lazy app-v1\n"
      "  lazyblob pull --registry http://127.0.0.1:5000/lazy app-v2 --auth-file auth.json --json\n"
      "JSON keys: id, registry, manifest_digest, size, chunks, fetched_chunks, fetched_bytes,\n"
      "requests, range_ignored, stored_bytes, already_present, created_store.\n" +
      std::string(kRegistryHelp)));
  run[pull] = [fp] { return RunPull(fp->global, fp->registry, fp->id); };
}

void AddTraceVerbs(CLI::App& app, Flags& f, std::map<CLI::App*, std::function<ExitCode()>>& run) {
  Flags* fp = &f;
  CLI::App* trace = app.add_subcommand(
      "trace",
      "Access records: what a start of a blob read in its first seconds, in first-access "
      "order, recorded by lazyblobd (--trace-record) and replayed ahead of demand at OPEN.");
  trace->require_subcommand(1);
  CLI::App* show = trace->add_subcommand("show", "Print the access record of blob ID");
  show->add_option("ID", f.id, "The blob id")->required();
  AddOutputFlags(show, f, false);
  show->footer(
      Footer("  lazyblob trace show app-v1\n  lazyblob trace show app-v1 --json\n"
             "JSON keys: id, blob_size, chunks, offsets (first access first), path.\n"));
  run[show] = [fp] { return RunTraceShow(fp->global, fp->id); };
  CLI::App* rm = trace->add_subcommand(
      "rm", "Delete the access record of blob ID (the next start of it is recorded again)");
  rm->add_option("ID", f.id, "The blob id")->required();
  AddOutputFlags(rm, f, false);
  rm->footer(Footer("  lazyblob trace rm app-v1\n"));
  run[rm] = [fp] { return RunTraceRm(fp->global, fp->id); };
}

void AddVerbs(CLI::App& app, Flags& f, std::map<CLI::App*, std::function<ExitCode()>>& run) {
  Flags* fp = &f;
  CLI::App* init =
      app.add_subcommand("init",
                         "Create an empty store at the --store directory (which must be missing or "
                         "empty). Optional: import creates the store too.");
  AddOutputFlags(init, f, false);
  AddLockWait(init, f);
  init->footer(Footer("  lazyblob --store /srv/lb init\n"));
  run[init] = [fp] { return RunInit(fp->global); };

  CLI::App* import = AddImport(app, f);
  run[import] = [fp, import] {
    fp->import.id_given = import->count("--id") > 0;
    return RunImport(fp->global, fp->import);
  };

  CLI::App* ls = app.add_subcommand(
      "ls",
      "List the blobs: id, size, chunks, creation time. With ID: only that blob. With "
      "--registry: the lazyblob blobs a registry repository holds.");
  ls->add_option("ID", f.id, "Only this blob (exit 2 if the store has no such blob)");
  AddOutputFlags(ls, f, false);
  AddRegistryFlags(ls, f.registry, false);
  ls->footer(Footer(
      "  lazyblob ls\n  lazyblob ls rootfs-v1\n  lazyblob ls --json | jq -r '.blobs[].id'\n"
      "  lazyblob ls --registry registry.example.com/lazy\n"
      "JSON: {\"blobs\": [{id, size, chunks, chunker, sha256, created, created_unix_s}],\n"
      "\"version\"}\n"
      "With --registry: {\"registry\", \"blobs\": [{id, tag, size, chunks, sha256, created,\n"
      "manifest_digest}]}\n" +
      std::string(kRegistryHelp)));
  run[ls] = [fp, ls] {
    if (!fp->registry.registry.empty()) return RunLsRegistry(fp->global, fp->registry);
    std::optional<std::string> id;
    if (ls->count("ID") > 0) id = fp->id;
    return RunLs(fp->global, id);
  };

  CLI::App* stat = AddStat(app, f);
  run[stat] = [fp, stat] {
    std::optional<std::string> id;
    if (stat->count("ID") > 0) id = fp->id;
    return RunStat(fp->global, fp->stat, id);
  };

  CLI::App* exp = app.add_subcommand(
      "export",
      "Write blob ID's bytes to FILE, verifying every chunk. FILE appears only when "
      "complete (temp file + rename); '-' writes to stdout.");
  exp->add_option("ID", f.exp.id, "The blob id")->required();
  exp->add_option("FILE", f.exp.output, "Output path, or - for stdout")->required();
  exp->add_flag("-n,--no-clobber", f.exp.no_clobber,
                "Refuse (exit 2) if FILE exists, instead of replacing it");
  AddOutputFlags(exp, f, true);
  exp->footer(
      Footer("  lazyblob export rootfs-v1 /tmp/rootfs.erofs\n"
             "  lazyblob export --no-clobber rootfs-v1 rootfs.erofs\n"
             "  lazyblob export rootfs-v1 - | sha256sum\n"));
  run[exp] = [fp] { return RunExport(fp->global, fp->exp); };

  CLI::App* verify = app.add_subcommand(
      "verify",
      "Read and check every chunk (of blob ID only, if given) against its hash. "
      "Names each corrupt or missing chunk and the blobs that use it; exit 1 if any. "
      "With --repair FILE..., corrupt chunks are replaced by good copies found in FILEs "
      "(images once imported; matched by XXH3-128 and SHA-256), crash-safely, and the "
      "store is checked again: exit 0 if then clean.");
  verify->add_option("ID", f.id, "Only this blob");
  verify->add_option("--repair", f.repair_sources,
                     "Repair corrupt chunks from these source files (takes the writer lock)");
  AddOutputFlags(verify, f, true);
  AddLockWait(verify, f);
  verify->footer(
      Footer("  lazyblob verify\n  lazyblob verify rootfs-v1 --json\n"
             "  lazyblob verify --repair rootfs-v1.erofs rootfs-v2.erofs\n"
             "JSON keys: clean, blobs_checked, chunks_checked, corrupt, missing, elapsed_s,\n"
             "chunks_per_s, version; with --repair also chunks_repaired, bytes_repaired,\n"
             "not_repaired (chunk keys no FILE held).\n"));
  run[verify] = [fp, verify] {
    std::optional<std::string> id;
    if (verify->count("ID") > 0) id = fp->id;
    return RunVerify(fp->global, id, fp->repair_sources);
  };

  CLI::App* rm = app.add_subcommand(
      "rm",
      "Remove blob ID from the store. Its chunks stay on disk until 'gc'. Refused "
      "(exit 2) while lazyblobd serves the blob.");
  rm->add_option("ID", f.id, "The blob id")->required();
  AddOutputFlags(rm, f, false);
  AddLockWait(rm, f);
  rm->footer(Footer("  lazyblob rm rootfs-v1 && lazyblob gc\n"));
  run[rm] = [fp] { return RunRm(fp->global, fp->id); };

  CLI::App* gc = app.add_subcommand(
      "gc",
      "Reclaim the space of chunks no blob uses: rewrite pack files without them and "
      "delete the old packs. Safe while lazyblobd serves the store: chunks of served "
      "(and of all stored) blobs stay, and reads follow the chunks gc moves. Exit 1, "
      "changing nothing, if a pack to rewrite holds a chunk a blob uses that cannot be read "
      "('lazyblob verify' names the blobs).");
  gc->add_flag("--dry-run", f.dry_run, "Only report what would be reclaimed");
  AddOutputFlags(gc, f, true);
  AddLockWait(gc, f);
  gc->footer(Footer("  lazyblob gc --dry-run\n  lazyblob gc --json\n"));
  run[gc] = [fp] { return RunGc(fp->global, fp->dry_run); };

  CLI::App* rebuild =
      app.add_subcommand("rebuild-index",
                         "Recreate the RocksDB index (DIR/index) from the pack files alone, e.g. "
                         "after it was lost or damaged. Exit 1 if damaged records were skipped.");
  AddOutputFlags(rebuild, f, true);
  AddLockWait(rebuild, f);
  rebuild->footer(Footer("  lazyblob rebuild-index\n"));
  run[rebuild] = [fp] { return RunRebuildIndex(fp->global); };
  AddRegistryVerbs(app, f, run);
  AddTraceVerbs(app, f, run);
}

void AddMountVerbs(CLI::App& app, Flags& f, std::map<CLI::App*, std::function<ExitCode()>>& run) {
  Flags* fp = &f;
  const std::string socket_help = std::string("lazyblobd's control socket (default ") +
                                  kDefaultControlSocket + ", or $" + kControlSocketEnvVar + ")";
  CLI::App* mount = app.add_subcommand(
      "mount",
      "Mount blob ID (an EROFS image) on DIR through lazyblobd's fanotify front end: the "
      "daemon prepares the blob's sparse cache file (metadata present, data filled on first "
      "access), then this command does the file-backed mount(2) (read-only). Needs root and a "
      "running lazyblobd (--frontend fanotify or auto), which keeps serving the mount.");
  mount->add_option("ID", f.mount.id, "The blob id of the EROFS image")->required();
  mount->add_option("DIR", f.mount.dir, "The mount point (an existing directory)")->required();
  mount->add_option("--device", f.mount.devices,
                    "Blob id of an extra device of the image (mkfs.erofs --blobdev), once per "
                    "device, in order");
  mount->add_option("--control-socket", f.mount.control_socket, socket_help)
      ->envname(kControlSocketEnvVar)
      ->default_val(kDefaultControlSocket);
  AddOutputFlags(mount, f, false);
  mount->footer(
      Footer("  lazyblob mount app-v1 /mnt/app\n"
             "  mkfs.erofs --blobdev=data.img --chunksize=65536 meta.img rootfs/\n"
             "  lazyblob import meta.img --id app-meta && lazyblob import data.img --id app-data\n"
             "  lazyblob mount app-meta /mnt/app --device app-data\n"
             "JSON keys: id, device_ids, dir, mount_id, source, devices.\n"));
  run[mount] = [fp] { return RunMount(fp->global, fp->mount); };

  CLI::App* umount = app.add_subcommand(
      "umount", "Unmount DIR, a mount made by 'lazyblob mount', and tell lazyblobd. Busy: exit 2.");
  umount->add_option("DIR", f.umount.dir, "The mount point")->required();
  umount->add_option("--control-socket", f.umount.control_socket, socket_help)
      ->envname(kControlSocketEnvVar)
      ->default_val(kDefaultControlSocket);
  AddOutputFlags(umount, f, false);
  umount->footer(Footer("  lazyblob umount /mnt/app\n"));
  run[umount] = [fp] { return RunUmount(fp->global, fp->umount); };
}

// The verb being parsed when CLI11 failed, for the error line.
std::string VerbOf(CLI::App& app) {
  for (CLI::App* sub : app.get_subcommands()) return sub->get_name();
  return "usage";
}

// The first word that is neither an option nor --store's value, if it names no verb.
std::optional<std::string> UnknownVerb(CLI::App& app, int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--store" || arg == "--lock-wait") {
      ++i;
      continue;
    }
    if (arg.starts_with("-")) continue;
    for (const CLI::App* sub : app.get_subcommands({})) {
      if (sub->get_name() == arg) return std::nullopt;
    }
    return std::string(arg);
  }
  return std::nullopt;
}

int Main(int argc, char** argv) {
  Flags flags;
  CLI::App app(
      "lazyblob: manage a lazyblob chunk store, the deduplicating store that lazyblobd serves "
      "EROFS images from (cachefiles on-demand mode).",
      "lazyblob");
  app.add_option("--store", flags.global.store, "Store directory")
      ->envname(kStoreEnvVar)
      ->capture_default_str();
  // Also accepted before or after any verb (fallthrough); listed in the verbs' help.
  app.add_flag("--no-progress", flags.global.no_progress, "Never draw a progress bar")->group("");
  app.add_flag("-q,--quiet", flags.global.quiet, "Print only errors and results")->group("");
  app.add_flag("-v,--verbose", flags.global.verbose, "Print more detail")->group("");
  app.set_version_flag("--version", "lazyblob " + ToolVersion(), "Print the version and exit");
  app.require_subcommand(1);
  app.fallthrough();
  app.footer(std::string("\nRun 'lazyblob VERB --help' for a verb's options and examples.\n") +
             kExitCodes);
  std::map<CLI::App*, std::function<ExitCode()>> run;
  AddVerbs(app, flags, run);
  AddMountVerbs(app, flags, run);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
    if (argc <= 1) {
      std::fputs(app.help().c_str(), stderr);
      return kExitBadInput;
    }
    if (auto unknown = UnknownVerb(app, argc, argv)) {
      std::fprintf(
          stderr,
          "lazyblob: usage: unknown verb '%s' (verbs: init, import, ls, stat, export, "
          "verify, rm, gc, rebuild-index, push, pull, mount, umount; see 'lazyblob --help')\n",
          unknown->c_str());
      return kExitBadInput;
    }
    const std::string verb = VerbOf(app);
    std::fprintf(stderr, "lazyblob: %s: %s (see 'lazyblob %s--help')\n", verb.c_str(), e.what(),
                 verb == "usage" ? "" : (verb + " ").c_str());
    return kExitBadInput;
  }
  AtomicFile::InstallCleanupOnSignal();
  for (auto& [sub, fn] : run) {
    if (sub->parsed()) return fn();
  }
  return kExitBadInput;
}

}  // namespace
}  // namespace lazyblob::cli

int main(int argc, char** argv) {
  try {
    return lazyblob::cli::Main(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "lazyblob: internal error: %s\n", e.what());
    return lazyblob::cli::kExitFailure;
  }
}
