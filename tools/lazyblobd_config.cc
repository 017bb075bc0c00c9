#include "tools/lazyblobd_config.h"

#include <toml++/toml.h>
#include <CLI/CLI.hpp>

#include <cctype>
#include <cstdio>

namespace lazyblob {

Status DaemonConfig::Validate() const {
  if (store_dir.empty() && !origin.enabled()) return InvalidArgument("--store is required");
  if (sim_socket.empty() && cache_dir.empty()) {
    return InvalidArgument("--cache-dir is required with /dev/cachefiles (or use --sim-socket)");
  }
  if (worker_threads < 0) return InvalidArgument("--threads must be >= 0");
  LB_RETURN_IF_ERROR(origin.Validate());
  if (log_level != "debug" && log_level != "info" && log_level != "warn" && log_level != "error" &&
      log_level != "off") {
    return InvalidArgument("--log-level must be debug, info, warn, error or off");
  }
  return Status();
}

ReloadableFlags& GivenAsFlags() {
  static ReloadableFlags flags;
  return flags;
}

Result<std::uint64_t> ParseSize(const std::string& text) {
  std::size_t i = 0;
  std::uint64_t value = 0;
  while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
    if (value > (UINT64_MAX - 9) / 10) return InvalidArgument("size too large: " + text);
    value = value * 10 + static_cast<std::uint64_t>(text[i++] - '0');
  }
  if (i == 0) return InvalidArgument("not a size: '" + text + "'");
  std::string unit = text.substr(i);
  for (char& c : unit) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  int shift = 0;
  if (unit.empty() || unit == "b") {
    shift = 0;
  } else if (unit == "k" || unit == "kb" || unit == "kib") {
    shift = 10;
  } else if (unit == "m" || unit == "mb" || unit == "mib") {
    shift = 20;
  } else if (unit == "g" || unit == "gb" || unit == "gib") {
    shift = 30;
  } else {
    return InvalidArgument("unknown size unit in '" + text + "' (use K, M or G)");
  }
  if (shift != 0 && value > (UINT64_MAX >> shift)) return InvalidArgument("size too large");
  return value << shift;
}

namespace {

// Applies the TOML file's keys to `c` for every option not given on the command line.
Status ApplyToml(const std::string& path, const CLI::App& app, DaemonConfig* c) {
  toml::table t;
  try {
    t = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    return InvalidArgument("config " + path + ": " + std::string(e.description()));
  }
  auto unset = [&](const char* flag) { return app.count(flag) == 0; };
  auto str = [&](const char* key, const char* flag, std::string* out) {
    if (auto v = t[key].value<std::string>(); v && unset(flag)) *out = *v;
  };
  str("store", "--store", &c->store_dir);
  str("cache_dir", "--cache-dir", &c->cache_dir);
  str("device", "--device", &c->device_path);
  str("sim_socket", "--sim-socket", &c->sim_socket);
  str("metrics_listen", "--metrics-listen", &c->metrics_listen);
  str("log_level", "--log-level", &c->log_level);
  if (auto v = t["threads"].value<std::int64_t>(); v && unset("--threads")) {
    c->worker_threads = static_cast<int>(*v);
  }
  if (auto v = t["prefetch"].value<bool>(); v && unset("--prefetch")) c->prefetch_on_open = *v;
  if (auto v = t["supervisor"].value<bool>(); v && unset("--no-supervisor")) c->supervisor = *v;
  for (auto [key, flag, out] :
       {std::tuple{"write_ahead", "--write-ahead", &c->write_ahead_bytes},
        std::tuple{"chunk_cache", "--chunk-cache", &c->chunk_cache_bytes}}) {
    if (!unset(flag)) continue;
    if (auto s = t[key].value<std::string>()) {
      LB_ASSIGN_OR_RETURN(*out, ParseSize(*s));
    } else if (auto n = t[key].value<std::int64_t>(); n && *n >= 0) {
      *out = static_cast<std::uint64_t>(*n);
    }
  }
  return ApplyOriginToml(t, app, &c->origin);
}

}  // namespace

ParsedArgs ParseDaemonArgs(int argc, char** argv) {
  ParsedArgs out;
  DaemonConfig& c = out.config;
  CLI::App app{
      "lazyblobd: serves EROFS blobs from a lazyblob chunk store to the kernel's "
      "cachefiles on-demand mode"};
  app.option_defaults()->always_capture_default();
  app.footer(R"(How it works:
  A supervisor opens /dev/cachefiles (dir, tag, bind ondemand) and keeps that fd for its
  whole life; a forked worker serves OPEN/READ/CLOSE from the store. If the worker dies
  the supervisor starts a new one, which writes `restore`: the kernel re-sends the open
  objects and pending READs, so readers see no error. Under systemd (Type=notify) the fd
  also goes into the fd store (FDSTORE=1), so a restarted service gets it back.
  A worker that fails before it is ready (no store, port in use) is not restarted: the
  daemon exits with its status, so a broken start is seen at once.

Mounting a blob (its id in the store is the EROFS fsid):
  lazyblob --store /var/lib/lazyblob import image.erofs --id myimage
  lazyblobd --store /var/lib/lazyblob --cache-dir /var/cache/lazyblob/fscache &
  mount -t erofs none -o fsid=myimage /mnt

Serving from a registry (what `lazyblob push` published; only fetched ranges are sent):
  lazyblobd --origin registry.example.com/lazy --origin-cache /var/lib/lazyblob/origin \
            --cache-dir /var/cache/lazyblob/fscache
  mount -t erofs none -o fsid=app-v1 /mnt

Examples:
  lazyblobd --store /var/lib/lazyblob --cache-dir /srv/fscache --metrics-listen 127.0.0.1:9150
  lazyblobd --config /etc/lazyblob/lazyblobd.toml --log-level debug

Signals: SIGTERM/SIGINT finish and answer every request in flight, then exit 0.
  SIGHUP re-reads the config file: log level, write-ahead, and the store gauges.
Exit status: 0 clean stop, 2 bad flags or config, 3 the device failed; other failures 1.
The cache dir must be on ext4 or xfs (cachefiles refuses tmpfs); the kernel needs
CONFIG_CACHEFILES_ONDEMAND and CONFIG_EROFS_FS_ONDEMAND (Linux >= 5.19).)");
  std::string write_ahead = "1M", chunk_cache = "256M";
  bool no_supervisor = false;
  app.add_option("--store", c.store_dir,
                 "Chunk store directory (opened read-only; optional with --origin)");
  app.add_option("--cache-dir", c.cache_dir, "cachefiles cache directory (ext4/xfs)");
  app.add_option("--device", c.device_path, "cachefiles device");
  app.add_option("--sim-socket", c.sim_socket,
                 "Connect to a KernelSimulator socket instead of the device (tests)");
  app.add_option("--config", c.config_file, "TOML config file; flags win over it");
  app.add_option("--threads", c.worker_threads,
                 "Request worker threads (0 = 4 per hardware thread, at least 8)");
  app.add_option("--write-ahead", write_ahead,
                 "Bytes of following chunks written with each READ (K/M/G); doubles for "
                 "each sequential READ, up to 8x; 0 = off");
  app.add_option("--chunk-cache", chunk_cache, "Decompressed chunk cache size (K/M/G)");
  app.add_flag("--prefetch", c.prefetch_on_open, "Prefetch each blob in the background at OPEN");
  app.add_option("--metrics-listen", c.metrics_listen,
                 "Serve Prometheus /metrics on ADDR:PORT (empty: off)");
  app.add_option("--log-level", c.log_level, "debug, info, warn, error or off");
  app.add_flag("--no-supervisor", no_supervisor,
               "Run the worker in this process (no restart; the device closes with it)");
  OriginFlagText origin_text;
  AddOriginFlags(app, &c.origin, &origin_text);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    out.exit_code = app.exit(e);
    return out;
  }
  auto fail = [&](const Status& s) {
    std::fprintf(stderr, "lazyblobd: %s\n", s.message().c_str());
    out.exit_code = 2;
    return out;
  };
  if (app.count("--write-ahead") != 0) {
    auto v = ParseSize(write_ahead);
    if (!v.ok()) return fail(v.status());
    c.write_ahead_bytes = *v;
  }
  if (app.count("--chunk-cache") != 0) {
    auto v = ParseSize(chunk_cache);
    if (!v.ok()) return fail(v.status());
    c.chunk_cache_bytes = *v;
  }
  if (Status o = FinishOriginFlags(app, origin_text, &c.origin); !o.ok()) return fail(o);
  if (no_supervisor) c.supervisor = false;
  GivenAsFlags().log_level = app.count("--log-level") != 0;
  GivenAsFlags().write_ahead = app.count("--write-ahead") != 0;
  if (!c.config_file.empty()) {
    Status s = ApplyToml(c.config_file, app, &c);
    if (!s.ok()) return fail(s);
  }
  Status s = c.Validate();
  if (!s.ok()) return fail(s);
  return out;
}

Status ReloadConfig(DaemonConfig* config, const ReloadableFlags& given_as_flags) {
  if (config->config_file.empty()) return Status();
  toml::table t;
  try {
    t = toml::parse_file(config->config_file);
  } catch (const toml::parse_error& e) {
    return InvalidArgument("config " + config->config_file + ": " + std::string(e.description()));
  }
  if (!given_as_flags.log_level) {
    if (auto v = t["log_level"].value<std::string>()) config->log_level = *v;
  }
  if (!given_as_flags.write_ahead) {
    if (auto s = t["write_ahead"].value<std::string>()) {
      LB_ASSIGN_OR_RETURN(config->write_ahead_bytes, ParseSize(*s));
    } else if (auto n = t["write_ahead"].value<std::int64_t>(); n && *n >= 0) {
      config->write_ahead_bytes = static_cast<std::uint64_t>(*n);
    }
  }
  return config->Validate();
}

}  // namespace lazyblob
