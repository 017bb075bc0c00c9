// lazyblob: the offline tool for a lazyblob chunk store. Parses the command line (CLI11)
// and hands each verb to tools/lazyblob_commands.h. Exit codes: tools/lazyblob_exit.h.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <exception>
#include <functional>
#include <map>
#include <optional>
#include <string>

#include "tools/lazyblob_atomic_file.h"
#include "tools/lazyblob_commands.h"
#include "tools/lazyblob_control_protocol.h"
#include "tools/lazyblob_exit.h"

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
  std::string id;  // rm, verify
  bool dry_run = false;
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
  return json;
}

CLI::App* AddImport(CLI::App& app, Flags& f) {
  CLI::App* sub = app.add_subcommand(
      "import",
      "Import FILE (e.g. an EROFS image) as a blob: split it into chunks, store the chunks "
      "the store does not have yet (zstd-compressed), and record the blob's chunk map. "
      "Creates the store if its directory does not exist or is empty. Importing the same "
      "content under the same id again writes nothing.");
  sub->add_option("FILE", f.import.file, "The file to import")->required();
  sub->add_option("--id", f.import.id,
                  "Blob id, used as the EROFS fsid (mount -o fsid=ID): 1-255 bytes, no ',', "
                  "'/', whitespace or control characters. Default: derived from the content "
                  "(first 32 hex digits of its SHA-256)");
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
  sub->footer(
      Footer("  lazyblob --store /srv/lb import rootfs.erofs --id rootfs-v1\n"
             "  lazyblob import app.erofs --chunker fixed --avg-chunk 1M --json\n"
             "  mount -t erofs none -o fsid=rootfs-v1 /mnt   # once lazyblobd serves the store\n"
             "JSON keys: id, size, chunks, new_chunks, stored_bytes, already_present, file,\n"
             "created_store.\n"));
  return sub;
}

CLI::App* AddStat(CLI::App& app, Flags& f) {
  CLI::App* sub = app.add_subcommand(
      "stat",
      "Show store totals: blobs, unique chunks, logical/unique/stored bytes, dedup "
      "and compression ratios, pack files.");
  CLI::Option* json = AddOutputFlags(sub, f, false);
  auto* prom =
      sub->add_flag("--prometheus", f.stat.prometheus,
                    "Print the totals in the Prometheus text format (lazyblob_store_* gauges) for "
                    "node_exporter's textfile collector");
  prom->excludes(json);
  sub->add_option("--output", f.stat.output,
                  "With --prometheus: write to this file atomically (temp file + rename) "
                  "instead of stdout")
      ->needs(prom);
  sub->footer(
      Footer("  lazyblob stat\n"
             "  lazyblob stat --json | jq .dedup_ratio\n"
             "  lazyblob stat --prometheus --output /var/lib/node_exporter/textfile/lazyblob.prom\n"
             "JSON keys: blobs, chunks, logical_bytes, unique_bytes, stored_bytes, dedup_ratio,\n"
             "compression_ratio, packs, pack_file_bytes, store.\n"));
  return sub;
}

void AddVerbs(CLI::App& app, Flags& f, std::map<CLI::App*, std::function<ExitCode()>>& run) {
  Flags* fp = &f;
  CLI::App* init =
      app.add_subcommand("init",
                         "Create an empty store at the --store directory (which must be missing or "
                         "empty). Optional: import creates the store too.");
  AddOutputFlags(init, f, false);
  init->footer(Footer("  lazyblob --store /srv/lb init\n"));
  run[init] = [fp] { return RunInit(fp->global); };

  run[AddImport(app, f)] = [fp] { return RunImport(fp->global, fp->import); };

  CLI::App* ls = app.add_subcommand("ls", "List the blobs: id, size, chunks, creation time.");
  AddOutputFlags(ls, f, false);
  ls->footer(
      Footer("  lazyblob ls\n  lazyblob ls --json | jq -r '.blobs[].id'\n"
             "JSON: {\"blobs\": [{id, size, chunks, chunker, sha256, created, "
             "created_unix_s}]}\n"));
  run[ls] = [fp] { return RunLs(fp->global); };

  run[AddStat(app, f)] = [fp] { return RunStat(fp->global, fp->stat); };

  CLI::App* exp = app.add_subcommand(
      "export",
      "Write blob ID's bytes to FILE, verifying every chunk. FILE appears only when "
      "complete (temp file + rename); '-' writes to stdout.");
  exp->add_option("ID", f.exp.id, "The blob id")->required();
  exp->add_option("FILE", f.exp.output, "Output path, or - for stdout")->required();
  AddOutputFlags(exp, f, true);
  exp->footer(
      Footer("  lazyblob export rootfs-v1 /tmp/rootfs.erofs\n"
             "  lazyblob export rootfs-v1 - | sha256sum\n"));
  run[exp] = [fp] { return RunExport(fp->global, fp->exp); };

  CLI::App* verify = app.add_subcommand(
      "verify",
      "Read and check every chunk (of blob ID only, if given) against its hash. "
      "Names each corrupt or missing chunk and the blobs that use it; exit 1 if any.");
  verify->add_option("ID", f.id, "Only this blob");
  AddOutputFlags(verify, f, true);
  verify->footer(Footer("  lazyblob verify\n  lazyblob verify rootfs-v1 --json\n"));
  run[verify] = [fp, verify] {
    std::optional<std::string> id;
    if (verify->count("ID") > 0) id = fp->id;
    return RunVerify(fp->global, id);
  };

  CLI::App* rm = app.add_subcommand(
      "rm",
      "Remove blob ID from the store. Its chunks stay on disk until 'gc'. Refused "
      "(exit 2) while lazyblobd serves the blob.");
  rm->add_option("ID", f.id, "The blob id")->required();
  AddOutputFlags(rm, f, false);
  rm->footer(Footer("  lazyblob rm rootfs-v1 && lazyblob gc\n"));
  run[rm] = [fp] { return RunRm(fp->global, fp->id); };

  CLI::App* gc = app.add_subcommand(
      "gc",
      "Reclaim the space of chunks no blob uses: rewrite pack files without them and "
      "delete the old packs. Refused (exit 2) while lazyblobd serves the store.");
  gc->add_flag("--dry-run", f.dry_run, "Only report what would be reclaimed");
  AddOutputFlags(gc, f, true);
  gc->footer(Footer("  lazyblob gc --dry-run\n  lazyblob gc --json\n"));
  run[gc] = [fp] { return RunGc(fp->global, fp->dry_run); };

  CLI::App* rebuild =
      app.add_subcommand("rebuild-index",
                         "Recreate the RocksDB index (DIR/index) from the pack files alone, e.g. "
                         "after it was lost or damaged. Exit 1 if damaged records were skipped.");
  AddOutputFlags(rebuild, f, true);
  rebuild->footer(Footer("  lazyblob rebuild-index\n"));
  run[rebuild] = [fp] { return RunRebuildIndex(fp->global); };
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
    if (arg == "--store") {
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
  app.set_version_flag("--version", "lazyblob 0.1.0");
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
      std::fprintf(stderr,
                   "lazyblob: usage: unknown verb '%s' (verbs: init, import, ls, stat, export, "
                   "verify, rm, gc, rebuild-index, mount, umount; see 'lazyblob --help')\n",
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
