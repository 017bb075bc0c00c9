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
  std::string id;  // rm, verify, pull
  bool dry_run = false;
  RegistryFlags registry;
  std::vector<std::string> ids;  // push
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
  pull->footer(Footer(
      "  lazyblob --store /srv/lb pull --registry registry.example.com/lazy app-v1\n"
      "  lazyblob pull --registry http://127.0.0.1:5000/lazy app-v2 --auth-file auth.json --json\n"
      "JSON keys: id, registry, manifest_digest, size, chunks, fetched_chunks, fetched_bytes,\n"
      "requests, range_ignored, stored_bytes, already_present, created_store.\n" +
      std::string(kRegistryHelp)));
  run[pull] = [fp] { return RunPull(fp->global, fp->registry, fp->id); };
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

  CLI::App* ls = app.add_subcommand(
      "ls",
      "List the blobs: id, size, chunks, creation time. With --registry: the lazyblob blobs "
      "a registry repository holds.");
  AddOutputFlags(ls, f, false);
  AddRegistryFlags(ls, f.registry, false);
  ls->footer(Footer(
      "  lazyblob ls\n  lazyblob ls --json | jq -r '.blobs[].id'\n"
      "  lazyblob ls --registry registry.example.com/lazy\n"
      "JSON: {\"blobs\": [{id, size, chunks, chunker, sha256, created, created_unix_s}]}\n"
      "With --registry: {\"registry\", \"blobs\": [{id, tag, size, chunks, sha256, created,\n"
      "manifest_digest}]}\n" +
      std::string(kRegistryHelp)));
  run[ls] = [fp] {
    return fp->registry.registry.empty() ? RunLs(fp->global)
                                         : RunLsRegistry(fp->global, fp->registry);
  };

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
      "delete the old packs. Refused (exit 2) while lazyblobd serves the store; exit 1, "
      "changing nothing, if a pack to rewrite holds a chunk a blob uses that cannot be read "
      "('lazyblob verify' names the blobs).");
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
  AddRegistryVerbs(app, f, run);
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
                   "verify, rm, gc, rebuild-index, push, pull; see 'lazyblob --help')\n",
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
